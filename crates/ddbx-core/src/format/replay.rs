//! Rebuilding a table as of a time from its chain of native exports: the full export the
//! chain starts from (the one of a named run, or the last at or before the time), then
//! every incremental window after it that ends at or before the time, in order. A window
//! is applied whole or not at all, so the table reaches the last window's end, which the
//! replay says.

use chrono::{DateTime, Utc};

use crate::format::chain::{self, Chain, LinkKind};
use crate::format::source::{open_table, Selected, Selection, TableSource};
use crate::plan::TableFilter;
use crate::store::{Location, Storage};
use crate::table::TableSchema;
use crate::{Error, Result};

/// What rebuilds one table.
#[derive(Debug, Clone)]
pub struct Replay {
    /// The full export it starts from.
    pub base: TableSource,
    /// The windows applied over it, in order.
    pub changes: Vec<TableSource>,
    /// The instant the table is at once every window is applied.
    pub reached: DateTime<Utc>,
}

/// The replay of `table` as of `at`, from its chain in `app_dir`; from the full export of
/// the run `from_run` when given (else the chain's last full export at or before `at`).
pub async fn replay(
    storage: &Storage,
    app_dir: &Location,
    table: &str,
    from_run: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Replay> {
    let chain = Chain::load(app_dir, table).await?.ok_or_else(|| {
        Error::Plan(format!(
            "table {table}: no chain of native exports under {} (made by `ddbx export --engine native`)",
            app_dir.url()
        ))
    })?;
    let chain = match from_run {
        None => chain,
        Some(run) => {
            let run = run.trim_end_matches('/');
            let i = chain
                .links
                .iter()
                .position(|l| l.kind == LinkKind::Full && l.run.trim_end_matches('/') == run)
                .ok_or_else(|| {
                    Error::Plan(format!(
                        "table {table}: its chain has no full export made by {run}"
                    ))
                })?;
            Chain {
                table: chain.table.clone(),
                links: std::iter::once(chain.links[i].clone())
                    .chain(
                        chain.links[i + 1..]
                            .iter()
                            .filter(|l| l.kind == LinkKind::Incremental)
                            .cloned(),
                    )
                    .collect(),
            }
        }
    };
    let links = chain.replay_to(at).map_err(Error::Plan)?;
    let mut sources = Vec::new();
    for l in &links {
        let source = open_table(storage.open_existing(&l.export)?, None).await?;
        let want_changes = l.kind == LinkKind::Incremental;
        if source.changes != want_changes {
            return Err(Error::Corrupt {
                file: l.export.clone(),
                message: format!(
                    "the chain says {} export, the export's manifest says otherwise",
                    if want_changes {
                        "an incremental"
                    } else {
                        "a full"
                    }
                ),
            });
        }
        sources.push(source);
    }
    let reached = links.last().map(|l| l.to).expect("a replay has its base");
    let mut sources = sources.into_iter();
    let mut base = sources.next().expect("a replay has its base");
    base.table.get_or_insert_with(|| table.to_string());
    Ok(Replay {
        base,
        changes: sources.collect(),
        reached,
    })
}

/// The tables of an app folder's chains, each replayed to `at`.
pub(crate) async fn select_chains(
    storage: &Storage,
    sel: &Selection,
    app: &Location,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<Selected>> {
    let filter = TableFilter::new(&sel.tables, &sel.excludes)?;
    let mut selected = Vec::new();
    for source_table in chain::chained_tables(app).await? {
        if !filter.matches(&source_table) {
            continue;
        }
        let target_table = sel
            .table_map
            .iter()
            .find(|(s, _)| *s == source_table)
            .map(|(_, d)| d.clone())
            .unwrap_or_else(|| source_table.clone());
        let (table, changes, reached) = match replay(storage, app, &source_table, None, at).await {
            Ok(r) => (Ok(r.base), r.changes, Some(r.reached)),
            Err(e) => (Err(e), Vec::new(), None),
        };
        let key = table
            .as_ref()
            .ok()
            .and_then(|t| t.schema.as_ref())
            .map(TableSchema::key);
        selected.push(Selected {
            source_table,
            target_table,
            step: None,
            table,
            key,
            changes,
            reached,
        });
    }
    if selected.is_empty() {
        return Err(Error::Plan(format!(
            "{}: no chained table selected (after --tables/--exclude)",
            app.url()
        )));
    }
    Ok(selected)
}
