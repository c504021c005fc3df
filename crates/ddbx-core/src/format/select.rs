//! What an import or a verify reads: the tables of an export (`format::source`) picked by
//! the selection, each with its target, or each table's chain of native exports replayed
//! to an instant (`format::replay`).

use crate::format::chain;
use crate::format::replay;
use crate::format::source::{open, Selected, Selection, TableSource};
use crate::plan::{validate_table_name, RestorePlan, RestoreStep, TableFilter};
use crate::store::{Location, Storage};
use crate::table::{KeyAttribute, TableSchema};
use crate::{Error, Result};

/// Open `sel.from` and pick its tables, each with its target.
pub async fn select(
    storage: &Storage,
    sel: &Selection,
) -> Result<(Location, Option<RestorePlan>, Vec<Selected>)> {
    check_table_map(&sel.table_map)?;
    // --recover-deleted: read past delete markers.
    let storage = &if sel.recover_deleted {
        storage.recovering()
    } else {
        storage.clone()
    };
    let root = storage.open_existing(&sel.from)?;
    if let Some(chains) = replay_of_app(storage, sel, &root).await? {
        return Ok((root, None, chains));
    }
    let mut source = open(root.clone(), sel.format).await?;
    if sel.target_table.is_some() && source.plan.is_some() {
        return Err(Error::Usage(
            "--target-table is for a single table's export; use --table-map SRC=DST for a run"
                .into(),
        ));
    }
    let filter = TableFilter::new(&sel.tables, &sel.excludes)?;
    let mut selected = Vec::new();
    for (step, table) in std::mem::take(&mut source.tables) {
        let source_table = source_table(sel, &root, step.as_ref(), &table)?;
        if filter.matches(&source_table) {
            selected.push(pick(storage, sel, &root, source_table, step, table).await);
        }
    }
    if selected.is_empty() {
        return Err(Error::Plan(format!(
            "{}: no table selected (after --tables/--exclude)",
            root.url()
        )));
    }
    refuse_shared_targets(&selected)?;
    Ok((root, source.plan, selected))
}

/// Every name of a table map is a table name.
fn check_table_map(table_map: &[(String, String)]) -> Result<()> {
    for (s, d) in table_map {
        for n in [s, d] {
            validate_table_name(n).map_err(|e| Error::Usage(format!("--table-map: {e}")))?;
        }
    }
    Ok(())
}

/// With an instant, a folder that is not a run but holds chains: every chained table
/// replayed to it. `None` when the run's own tables are to be read.
async fn replay_of_app(
    storage: &Storage,
    sel: &Selection,
    root: &Location,
) -> Result<Option<Vec<Selected>>> {
    let Some(at) = sel.at else {
        return Ok(None);
    };
    if root.exists("restore-plan.json").await? {
        return Ok(None);
    }
    if !chain::chained_tables(root).await?.is_empty() {
        return Ok(Some(replay::select_chains(storage, sel, root, at).await?));
    }
    Err(Error::Usage(format!(
        "{}: --until/--at replay chains of native exports: pass a run holding a full native export, or the app's folder (<base>/<region>/<app>) holding _chains/",
        root.url()
    )))
}

/// The exported table's name: the restore plan's, the export's own, or the one given.
fn source_table(
    sel: &Selection,
    root: &Location,
    step: Option<&RestoreStep>,
    table: &Result<TableSource>,
) -> Result<String> {
    step.map(|s| s.source_table.clone())
        .or_else(|| table.as_ref().ok().and_then(|t| t.table.clone()))
        .or_else(|| sel.target_table.clone())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{}: the export does not name its table; pass --target-table",
                root.url()
            ))
        })
}

/// One selected table: its target, its key, and with an instant its chain replayed.
async fn pick(
    storage: &Storage,
    sel: &Selection,
    root: &Location,
    source_table: String,
    step: Option<RestoreStep>,
    table: Result<TableSource>,
) -> Selected {
    let target_table = target_of(sel, &source_table, step.as_ref());
    let key = key_of(step.as_ref(), &table);
    let (table, changes, reached) = match sel.at {
        None => (table, Vec::new(), None),
        Some(at) => {
            let app = chain::app_dir_of_run(root);
            match replay::replay(storage, &app, &source_table, Some(&root.url()), at).await {
                Ok(r) => (Ok(r.base), r.changes, Some(r.reached)),
                Err(e) => (Err(e), Vec::new(), None),
            }
        }
    };
    Selected {
        source_table,
        target_table,
        step,
        table,
        key,
        changes,
        reached,
    }
}

/// The table `source_table` goes into: the table map's, else the target given, else the
/// restore plan's, else its own name.
fn target_of(sel: &Selection, source_table: &str, step: Option<&RestoreStep>) -> String {
    sel.table_map
        .iter()
        .find(|(s, _)| s == source_table)
        .map(|(_, d)| d.clone())
        .or_else(|| sel.target_table.clone())
        .or_else(|| step.map(|s| s.target_table.clone()))
        .unwrap_or_else(|| source_table.to_string())
}

/// The key the target must have: the restore plan's, or the export's schema's.
fn key_of(step: Option<&RestoreStep>, table: &Result<TableSource>) -> Option<Vec<KeyAttribute>> {
    step.map(|s| s.key_schema.clone())
        .filter(|k| !k.is_empty())
        .or_else(|| {
            table
                .as_ref()
                .ok()
                .and_then(|t| t.schema.as_ref())
                .map(TableSchema::key)
        })
}

/// Two tables into one target would each overwrite the other's items.
fn refuse_shared_targets(selected: &[Selected]) -> Result<()> {
    let mut targets: Vec<&str> = selected.iter().map(|s| s.target_table.as_str()).collect();
    targets.sort_unstable();
    match targets.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(Error::Usage(format!(
            "two tables of the export would be written into {} (check --table-map and the restore plan's targets)",
            w[0]
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::source::tests::{folder, step, table};

    #[test]
    fn a_table_map_names_tables() {
        check_table_map(&[("Orders".into(), "Orders-2".into())]).unwrap();
        let err = check_table_map(&[("Orders".into(), "no/slash".into())]).unwrap_err();
        assert!(matches!(err, Error::Usage(_)) && err.to_string().starts_with("--table-map: "));
    }

    #[test]
    fn a_tables_name_comes_from_the_plan_the_export_or_the_target_given() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let mut sel = Selection::default();
        let s = step("Planned", "Dst", &[]);
        let named = table(&root, Some("Named"));
        let unnamed = table(&root, None);
        assert_eq!(
            source_table(&sel, &root, Some(&s), &named).unwrap(),
            "Planned"
        );
        assert_eq!(source_table(&sel, &root, None, &named).unwrap(), "Named");
        let err = source_table(&sel, &root, None, &unnamed).unwrap_err();
        assert!(err.to_string().contains("pass --target-table"), "{err}");
        sel.target_table = Some("Given".into());
        assert_eq!(source_table(&sel, &root, None, &unnamed).unwrap(), "Given");
    }

    #[test]
    fn a_tables_target_is_the_maps_the_one_given_the_plans_or_its_own_name() {
        let s = step("A", "PlannedA", &[]);
        let mut sel = Selection::default();
        assert_eq!(target_of(&sel, "A", None), "A");
        assert_eq!(target_of(&sel, "A", Some(&s)), "PlannedA");
        sel.target_table = Some("Given".into());
        assert_eq!(target_of(&sel, "A", Some(&s)), "Given");
        sel.table_map = vec![
            ("B".into(), "MappedB".into()),
            ("A".into(), "MappedA".into()),
        ];
        assert_eq!(target_of(&sel, "A", Some(&s)), "MappedA");
    }

    #[test]
    fn a_tables_key_is_the_plans_else_its_descriptions() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let described: TableSchema = serde_json::from_value(serde_json::json!({
            "TableName": "T",
            "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        }))
        .unwrap();
        let mut t = table(&root, Some("T"));
        t.as_mut().unwrap().schema = Some(described);
        let names = |k: Option<Vec<KeyAttribute>>| {
            k.map(|k| k.into_iter().map(|a| a.attribute_name).collect::<Vec<_>>())
        };
        let planned = step("T", "T", &["pk"]);
        assert_eq!(names(key_of(Some(&planned), &t)), Some(vec!["pk".into()]));
        let keyless = step("T", "T", &[]);
        assert_eq!(names(key_of(Some(&keyless), &t)), Some(vec!["id".into()]));
        assert_eq!(names(key_of(None, &table(&root, None))), None);
    }

    #[test]
    fn two_tables_into_one_target_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let sel = |target: &str| Selected {
            source_table: "S".into(),
            target_table: target.into(),
            step: None,
            table: table(&root, None),
            key: None,
            changes: Vec::new(),
            reached: None,
        };
        refuse_shared_targets(&[sel("a"), sel("b")]).unwrap();
        let err = refuse_shared_targets(&[sel("b"), sel("a"), sel("b")]).unwrap_err();
        assert!(err.to_string().contains("written into b"), "{err}");
    }

    #[tokio::test]
    async fn a_replay_of_a_folder_that_is_neither_a_run_nor_an_apps_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = folder(&tmp);
        let at = chrono::DateTime::from_timestamp(1, 0).unwrap();
        let storage = Storage::default();
        let sel = Selection {
            at: Some(at),
            ..Selection::default()
        };
        let err = replay_of_app(&storage, &sel, &root).await.unwrap_err();
        assert!(err.to_string().contains("holding _chains/"), "{err}");
        std::fs::write(tmp.path().join("restore-plan.json"), "{}").unwrap();
        let run = replay_of_app(&storage, &sel, &root).await;
        assert!(
            run.unwrap().is_none(),
            "a run's tables are selected as any run's"
        );
    }
}
