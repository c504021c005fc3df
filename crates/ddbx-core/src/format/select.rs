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
    for (s, d) in &sel.table_map {
        for n in [s, d] {
            validate_table_name(n).map_err(|e| Error::Usage(format!("--table-map: {e}")))?;
        }
    }
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
    let target_table = sel
        .table_map
        .iter()
        .find(|(s, _)| *s == source_table)
        .map(|(_, d)| d.clone())
        .or_else(|| sel.target_table.clone())
        .or_else(|| step.as_ref().map(|s| s.target_table.clone()))
        .unwrap_or_else(|| source_table.clone());
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

    fn selected(source: &str, target: &str) -> Selected {
        Selected {
            source_table: source.into(),
            target_table: target.into(),
            step: None,
            table: Err(Error::Failed("not read".into())),
            key: None,
            changes: Vec::new(),
            reached: None,
        }
    }

    #[test]
    fn two_tables_into_one_target_are_refused() {
        assert!(refuse_shared_targets(&[selected("a", "x"), selected("b", "y")]).is_ok());
        let e = refuse_shared_targets(&[selected("a", "x"), selected("b", "x")]).unwrap_err();
        assert!(e.to_string().contains("written into x"), "{e}");
    }

    #[test]
    fn the_table_is_named_by_the_plan_then_the_export_then_the_flag() {
        let storage = Storage::new(crate::store::S3Settings::default(), "us-east-1", None);
        let root = storage.open("/tmp/ddbx-select-test").unwrap();
        let sel = Selection {
            target_table: Some("given".into()),
            ..Selection::default()
        };
        let none: Result<TableSource> = Err(Error::Failed("unread".into()));
        assert_eq!(source_table(&sel, &root, None, &none).unwrap(), "given");
        let e = source_table(&Selection::default(), &root, None, &none).unwrap_err();
        assert!(e.to_string().contains("--target-table"), "{e}");
    }
}
