//! Rebuilding a table as of a time from its chain of native exports: the full export the
//! chain starts from (the one of a named run, or the last at or before the time), then
//! every incremental window after it that ends at or before the time, in order. A window
//! is applied whole or not at all, so the table reaches the last window's end, which the
//! replay says. Within a window, the last write of a key is what it leaves
//! ([`superseded`]).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::format::chain::{self, Chain, LinkKind};
use crate::format::reader::ItemReader;
use crate::format::source::{open_table, Selected, Selection, TableSource};
use crate::item::canonical::item_digest;
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

/// The records of a window that a later write of the same key replaces, by file (its
/// index in the window's files) and line. DynamoDB is said to write one record per key in
/// a window (compacted, its final state); should two come (across the files of two
/// partitions, say), the one with the later `WriteTimestampMicros` is what the window
/// leaves, as it is in the table, and the other is passed over.
#[derive(Debug, Clone, Default)]
pub struct Superseded {
    lines: HashSet<(usize, u64)>,
}

impl Superseded {
    /// Whether the record at `line` of the window's file `file` is replaced.
    pub fn skips(&self, file: usize, line: u64) -> bool {
        self.lines.contains(&(file, line))
    }

    /// How many records are replaced.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    #[cfg(test)]
    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}

/// Read `window` (a change export) once, every record decoded (so a bad line fails it
/// before anything is written), and find the records a later write of their key replaces.
/// Memory: 16 bytes a record; a second read only when some key comes twice.
pub async fn superseded(window: &TableSource) -> Result<Superseded> {
    let mut seen: HashSet<[u8; 16]> = HashSet::new();
    let mut twice: HashSet<[u8; 16]> = HashSet::new();
    for f in &window.files {
        let mut r = ItemReader::open(&window.dir, f, window.format)
            .await?
            .changes(true);
        while let Some((_, change)) = r.next_change().await? {
            let d = item_digest(&change.keys);
            if !seen.insert(d) {
                twice.insert(d);
            }
        }
    }
    let mut out = Superseded::default();
    if twice.is_empty() {
        return Ok(out);
    }
    // The last write of each such key: (its time, file, line, where, for errors).
    let mut last: HashMap<[u8; 16], (Option<u64>, usize, u64, String)> = HashMap::new();
    for (i, f) in window.files.iter().enumerate() {
        let mut r = ItemReader::open(&window.dir, f, window.format)
            .await?
            .changes(true);
        while let Some((line, change)) = r.next_change().await? {
            let d = item_digest(&change.keys);
            if !twice.contains(&d) {
                continue;
            }
            let here = (
                change.write_micros,
                i,
                line,
                format!("{}, line {line}", f.url),
            );
            let Some(before) = last.remove(&d) else {
                last.insert(d, here);
                continue;
            };
            let (Some(a), Some(b)) = (before.0, here.0) else {
                return Err(Error::Corrupt {
                    file: here.3,
                    message: format!(
                        "the same key as {} in one incremental window, and no Metadata.WriteTimestampMicros to say which is the later",
                        before.3
                    ),
                });
            };
            let (winner, loser) = if b >= a {
                (here, before)
            } else {
                (before, here)
            };
            out.lines.insert((loser.1, loser.2));
            last.insert(d, winner);
        }
    }
    tracing::warn!(window = %window.dir.url(), replaced = out.len(), "keys with more than one record in one incremental window: the later write of each is applied");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::source::SourceFile;
    use crate::plan::DataFormat;

    fn change(pk: &str, v: u32, micros: Option<u64>) -> String {
        let meta = micros.map_or(String::new(), |m| {
            format!(r#""Metadata":{{"WriteTimestampMicros":{{"N":"{m}"}}}},"#)
        });
        format!(
            r#"{{{meta}"Keys":{{"pk":{{"S":"{pk}"}}}},"NewImage":{{"pk":{{"S":"{pk}"}},"v":{{"N":"{v}"}}}}}}"#
        )
    }

    /// A window of these files (each a list of lines), in a temporary folder.
    fn window(dir: &std::path::Path, files: &[Vec<String>]) -> TableSource {
        let loc = Storage::default().open(dir.to_str().unwrap()).unwrap();
        let mut sources = Vec::new();
        for (i, lines) in files.iter().enumerate() {
            let name = format!("f{i}.json");
            std::fs::write(dir.join(&name), lines.join("\n") + "\n").unwrap();
            let path = loc.join(&name);
            sources.push(SourceFile {
                url: loc.url_of(&path),
                path,
                md5: None,
                items: None,
            });
        }
        TableSource {
            dir: loc,
            table: Some("T".into()),
            format: DataFormat::DynamodbJson,
            files: sources,
            schema: None,
            expected_items: None,
            changes: true,
        }
    }

    #[tokio::test]
    async fn of_two_records_of_one_key_in_a_window_the_later_write_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        // The key "a" twice, its later write in the first file (the order files come in
        // is not the order of the writes); "b" three times in one file.
        let w = window(
            dir.path(),
            &[
                vec![change("a", 2, Some(200)), change("c", 1, Some(5))],
                vec![
                    change("b", 1, Some(10)),
                    change("a", 1, Some(100)),
                    change("b", 3, Some(30)),
                    change("b", 2, Some(20)),
                ],
            ],
        );
        let s = superseded(&w).await.unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.skips(1, 2), "a's earlier write");
        assert!(s.skips(1, 1) && s.skips(1, 4), "b's two earlier writes");
        assert!(!s.skips(0, 1) && !s.skips(1, 3) && !s.skips(0, 2));

        // One record per key (what AWS says it writes): nothing is passed over.
        let dir = tempfile::tempdir().unwrap();
        let w = window(
            dir.path(),
            &[vec![change("a", 1, None), change("b", 1, None)]],
        );
        assert!(superseded(&w).await.unwrap().is_empty());

        // Two records of a key with no time to order them: refused, naming both.
        let dir = tempfile::tempdir().unwrap();
        let w = window(
            dir.path(),
            &[vec![change("a", 1, None)], vec![change("a", 2, Some(3))]],
        );
        let err = superseded(&w).await.unwrap_err().to_string();
        assert!(
            err.contains("f0.json, line 1")
                && err.contains("f1.json, line 1")
                && err.contains("WriteTimestampMicros"),
            "{err}"
        );
    }
}
