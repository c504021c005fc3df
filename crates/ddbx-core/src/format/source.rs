//! Finding what to restore under a location: a ddbx run root (its `restore-plan.json`),
//! one table's folder, an AWS native export (`AWSDynamoDB/<id>/`), an emr-dynamodb-connector
//! export (`manifest` v3) or an old Data Pipeline export (no manifest). The data files of
//! each are resolved inside the location, so an export that was moved to another bucket or
//! prefix still reads, and no manifest entry can point outside it.

use object_store::path::Path;
use serde::Deserialize;

use crate::format::connector::MANIFEST;
use crate::format::hive;
use crate::format::native::{self, ManifestFile};
use crate::plan::{DataFormat, RestorePlan, RestoreStep};
use crate::store::Location;
use crate::table::{KeyAttribute, TableSchema};
use crate::{Error, Result};

/// Which tables of an export to take and where each goes (shared by import and verify).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// The export: a run root, a table folder, an AWS or connector export folder.
    pub from: String,
    /// Only these source tables (prefixes or globs).
    pub tables: Vec<String>,
    /// Never these source tables.
    pub excludes: Vec<String>,
    /// Source table → target table.
    pub table_map: Vec<(String, String)>,
    /// The target of a single table's export.
    pub target_table: Option<String>,
    /// Force a format instead of detecting it.
    pub format: Option<DataFormat>,
    /// Replay each table's chain of native exports to this time (`--until`, `--at`):
    /// `from` is then a run holding a full native export, or the app's folder.
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One selected table of an export.
#[derive(Debug)]
pub struct Selected {
    /// The exported table's name.
    pub source_table: String,
    /// The table to write into or compare with.
    pub target_table: String,
    /// The restore plan's step, for a run root.
    pub step: Option<RestoreStep>,
    /// The table's data, or why it cannot be read.
    pub table: Result<TableSource>,
    /// The key the target must have, when the export records it.
    pub key: Option<Vec<KeyAttribute>>,
    /// With a replay: the incremental windows applied over `table`, in order.
    pub changes: Vec<TableSource>,
    /// With a replay: the instant the table reaches.
    pub reached: Option<chrono::DateTime<chrono::Utc>>,
}

/// One data file to read.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its path in the store.
    pub path: Path,
    /// Its URL, for messages.
    pub url: String,
    /// The base64 MD5 the manifest gives, if any.
    pub md5: Option<String>,
    /// The item count the manifest gives, if any.
    pub items: Option<u64>,
}

/// One exported table, ready to read.
#[derive(Debug, Clone)]
pub struct TableSource {
    /// The table's folder (where `table.json` is, when there is one).
    pub dir: Location,
    /// The exported table's name, when known.
    pub table: Option<String>,
    /// The data format.
    pub format: DataFormat,
    /// Data files, in manifest order.
    pub files: Vec<SourceFile>,
    /// `table.json`, when there is one.
    pub schema: Option<TableSchema>,
    /// Items the manifests promise, when they say.
    pub expected_items: Option<u64>,
    /// An incremental export: its lines are changes (puts and deletes), applied over the
    /// export before it in its chain.
    pub changes: bool,
}

/// Everything under a `--from` location.
#[derive(Debug)]
pub struct Source {
    /// The location given.
    pub root: Location,
    /// The run's restore plan, for a ddbx run root.
    pub plan: Option<RestorePlan>,
    /// The tables: the plan's step (for a run root) and the table, or why it cannot be read.
    pub tables: Vec<(Option<RestoreStep>, Result<TableSource>)>,
}

/// Open whatever `root` holds. `force` skips detection of a table's format.
pub async fn open(root: Location, force: Option<DataFormat>) -> Result<Source> {
    let plan_path = root.join("restore-plan.json");
    if let Some(bytes) = root.get_optional(&plan_path).await? {
        let plan = RestorePlan::parse(&root.url_of(&plan_path), &bytes)?;
        let mut tables = Vec::new();
        for step in &plan.tables {
            let dir = root.child(&step.path);
            let table = open_table(dir, force.or(Some(step.format)))
                .await
                .map(|mut t| {
                    t.table.get_or_insert_with(|| step.source_table.clone());
                    t
                });
            tables.push((Some(step.clone()), table));
        }
        return Ok(Source {
            root,
            plan: Some(plan),
            tables,
        });
    }
    let table = match open_table(root.clone(), force).await {
        Ok(t) => t,
        // A ddbx run whose export has not ended has no restore plan yet.
        Err(_) if root.exists("BACKUP_RUNNING").await? => {
            return Err(Error::Usage(format!(
                "{}: its export is still RUNNING (or was killed: `ddbx export --resume {}` finishes it); import it once it has ended",
                root.url(),
                root.url()
            )))
        }
        Err(e) => return Err(e),
    };
    Ok(Source {
        root,
        plan: None,
        tables: vec![(None, Ok(table))],
    })
}

/// What an import or a verify of the run at `root` should warn of: an export that failed
/// (its restore plan holds only the tables that succeeded).
pub async fn export_warning(root: &Location) -> Result<Option<String>> {
    Ok(root.exists("BACKUP_COMPLETE_FAILED").await?.then(|| {
        format!(
            "the export of {} failed (BACKUP_COMPLETE_FAILED): its restore plan holds only the tables it exported; the others are not here",
            root.url()
        )
    }))
}

/// Open one table's folder (or an `AWSDynamoDB/<id>` folder).
pub async fn open_table(dir: Location, force: Option<DataFormat>) -> Result<TableSource> {
    let schema = read_schema(&dir, "table.json").await?;
    let want = |f: DataFormat| force.is_none_or(|x| x == f);
    if want(DataFormat::DynamodbJson) || want(DataFormat::Ion) {
        if let Some(mut t) = open_native(&dir, schema.clone()).await? {
            // A format forced on the command line wins over the summary's.
            t.format = force.unwrap_or(t.format);
            return Ok(t);
        }
    }
    if want(DataFormat::Emr) {
        if let Some(t) = open_connector(&dir, schema.clone()).await? {
            return Ok(t);
        }
    }
    if want(DataFormat::DataPipeline) {
        // An EMR-engine (Hive) export lists its files; else Hive's `data/` folder, else
        // the folder itself (an old Data Pipeline export).
        let listed = hive::read_listing(&dir).await?;
        let found = listed.is_some();
        let files = match listed {
            Some(listing) => listing
                .files
                .iter()
                .map(|f| {
                    let path = dir.join(&f.path);
                    SourceFile {
                        url: dir.url_of(&path),
                        path,
                        md5: None,
                        items: None,
                    }
                })
                .collect(),
            None => match list_plain_files(&dir.child(hive::DATA)).await? {
                files if !files.is_empty() => files,
                _ => list_plain_files(&dir).await?,
            },
        };
        if found || !files.is_empty() {
            return Ok(TableSource {
                table: schema.as_ref().map(|s| s.table_name.clone()),
                dir,
                format: DataFormat::DataPipeline,
                files,
                schema,
                expected_items: None,
                changes: false,
            });
        }
    }
    Err(Error::Usage(format!(
        "{}: no export found here (looked for restore-plan.json, AWSDynamoDB/<id>/manifest-files.json, a connector manifest{})",
        dir.url(),
        if want(DataFormat::DataPipeline) { " and data files" } else { "" }
    )))
}

async fn open_native(dir: &Location, schema: Option<TableSchema>) -> Result<Option<TableSource>> {
    // Either the export id folder itself, or a table folder holding AWSDynamoDB/<id>/.
    let (id_dir, schema) = if dir.exists("manifest-files.json").await? {
        let parent_schema = match schema {
            Some(s) => Some(s),
            None => {
                let parts: Vec<_> = dir.prefix.parts().collect();
                if parts.len() >= 2 && parts[parts.len() - 2].as_ref() == "AWSDynamoDB" {
                    let table_dir = Location {
                        prefix: Path::from_iter(parts[..parts.len() - 2].iter().cloned()),
                        ..dir.clone()
                    };
                    read_schema(&table_dir, "table.json").await?
                } else {
                    None
                }
            }
        };
        (dir.clone(), parent_schema)
    } else {
        let base = dir.child("AWSDynamoDB");
        let listing = base.list_folder().await?;
        let mut ids: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        ids.sort();
        let mut found = None;
        // The newest complete export (ids start with a millisecond timestamp).
        for id in ids.iter().rev() {
            let candidate = dir.child(&format!("AWSDynamoDB/{id}"));
            if candidate.exists("manifest-summary.json").await? {
                found = Some(candidate);
                break;
            }
        }
        match found {
            Some(d) => (d, schema),
            None if !ids.is_empty() => {
                return Err(Error::Corrupt {
                    file: base.url(),
                    message: "no complete export here (no manifest-summary.json): was the export interrupted?".into(),
                })
            }
            None => return Ok(None),
        }
    };
    let manifest_path = id_dir.join("manifest-files.json");
    let manifest_url = id_dir.url_of(&manifest_path);
    let bytes = id_dir
        .get_optional(&manifest_path)
        .await?
        .ok_or_else(|| Error::Corrupt {
            file: manifest_url.clone(),
            message: "missing".into(),
        })?;
    check_manifest_checksum(&id_dir, "manifest-files.json", &bytes).await?;
    let summary_bytes = id_dir
        .get_optional(&id_dir.join("manifest-summary.json"))
        .await?;
    if let Some(b) = &summary_bytes {
        check_manifest_checksum(&id_dir, "manifest-summary.json", b).await?;
    }
    let summary: Option<serde_json::Value> =
        summary_bytes.and_then(|b| serde_json::from_slice(&b).ok());
    // Incremental exports keep their data in the folder beside the export folders.
    let parts: Vec<_> = id_dir.prefix.parts().collect();
    let shared_dir = match parts.as_slice() {
        [aws_dir @ .., _id] if aws_dir.last().is_some_and(|p| p.as_ref() == "AWSDynamoDB") => {
            Location {
                prefix: Path::from_iter(aws_dir.iter().cloned()),
                ..id_dir.clone()
            }
        }
        _ => id_dir.clone(),
    };
    let mut files = Vec::new();
    for (entry, file) in parse_manifest_files(&manifest_url, &bytes)? {
        let dir = if file.shared { &shared_dir } else { &id_dir };
        let path = dir.join(&format!("data/{}", file.name));
        files.push(SourceFile {
            url: dir.url_of(&path),
            path,
            md5: Some(entry.md5_checksum),
            items: Some(entry.item_count),
        });
    }
    let format = match summary.as_ref().and_then(|s| s["outputFormat"].as_str()) {
        Some(f) if f.eq_ignore_ascii_case("ION") => DataFormat::Ion,
        Some(_) => DataFormat::DynamodbJson,
        // No summary to say: the data files' names do (`.ion.gz`, `.json.gz`).
        None if files.iter().any(|f| f.url.contains(".ion")) => DataFormat::Ion,
        None => DataFormat::DynamodbJson,
    };
    let from_arn = summary
        .as_ref()
        .and_then(|s| s["tableArn"].as_str())
        .and_then(|arn| arn.rsplit_once("table/"))
        .map(|(_, name)| name.split('/').next().unwrap_or(name).to_string());
    let changes = summary
        .as_ref()
        .and_then(|s| s["exportType"].as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case("INCREMENTAL_EXPORT"));
    // Counts that do not add up in 64 bits are not an export's.
    let expected_items = files
        .iter()
        .filter_map(|f| f.items)
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| Error::Corrupt {
            file: manifest_url.clone(),
            message: "its item counts add up to more than 2^64".into(),
        })?;
    Ok(Some(TableSource {
        table: schema.as_ref().map(|s| s.table_name.clone()).or(from_arn),
        expected_items: Some(expected_items),
        dir: id_dir,
        format,
        files,
        schema,
        changes,
    }))
}

/// A manifest's checksum file, when there is one (`.md5` as AWS writes it, or `.checksum`),
/// must hold the manifest's MD5; neither is required.
async fn check_manifest_checksum(dir: &Location, manifest: &str, bytes: &[u8]) -> Result<()> {
    let stem = manifest.trim_end_matches(".json");
    for suffix in native::CHECKSUM_SUFFIXES {
        let path = dir.join(&format!("{stem}{suffix}"));
        if let Some(checksum) = dir.get_optional(&path).await? {
            if !native::checksum_matches(&checksum, bytes) {
                return Err(Error::Corrupt {
                    file: dir.url_of(&dir.join(manifest)),
                    message: format!(
                        "does not match its checksum {} ({})",
                        dir.url_of(&path),
                        crate::text::quote(String::from_utf8_lossy(&checksum).trim())
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Where a `manifest-files.json` entry's data file is: its name, in the export's own
/// `data/` folder, or (`shared`) in the `AWSDynamoDB/data/` folder that the incremental
/// exports of one prefix share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileName {
    /// The file's name (the last part of its key, never `.`, `..` or empty).
    pub name: String,
    /// Whether the key ends in `AWSDynamoDB/data/<name>`.
    pub shared: bool,
}

/// Parse `manifest-files.json` (a JSON line per data file) into its entries, each with
/// where its data file is (only the last part of its key is used, so no entry can point
/// outside the export), naming `origin` and the line in errors.
pub fn parse_manifest_files(
    origin: &str,
    bytes: &[u8],
) -> Result<Vec<(ManifestFile, DataFileName)>> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::Corrupt {
        file: origin.to_string(),
        message: "not UTF-8 text".into(),
    })?;
    let mut entries = Vec::new();
    let mut seen: std::collections::HashMap<(String, bool), usize> = Default::default();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{origin}, line {}", n + 1);
        let entry: ManifestFile = serde_json::from_str(line).map_err(|e| Error::Corrupt {
            file: at(),
            message: format!("not a manifest-files entry: {e}"),
        })?;
        let mut parts = entry.data_file_s3_key.rsplit('/');
        let name = parts
            .next()
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .ok_or_else(|| Error::Corrupt {
                file: at(),
                message: format!(
                    "bad dataFileS3Key {}",
                    crate::text::quote(&entry.data_file_s3_key)
                ),
            })?
            .to_string();
        let shared = parts.next() == Some("data") && parts.next() == Some("AWSDynamoDB");
        // One file listed twice would be imported twice (and its items counted twice).
        if let Some(first) = seen.insert((name.clone(), shared), n + 1) {
            return Err(Error::Corrupt {
                file: at(),
                message: format!(
                    "lists the data file {} again (first on line {first})",
                    crate::text::quote(&name)
                ),
            });
        }
        entries.push((entry, DataFileName { name, shared }));
    }
    Ok(entries)
}

/// Parse a connector `manifest` (version 3) into its entries, naming `origin` in errors.
pub fn parse_connector_manifest(origin: &str, bytes: &[u8]) -> Result<Vec<ConnectorEntry>> {
    let m: ConnectorManifest = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        file: origin.to_string(),
        message: format!("not a connector manifest: {e}"),
    })?;
    if m.version != 3 {
        return Err(Error::Corrupt {
            file: origin.to_string(),
            message: format!("manifest version {} (only version 3 is known)", m.version),
        });
    }
    if m.name.as_deref().is_some_and(|n| n != "DynamoDB-export") {
        tracing::warn!(manifest = %origin, name = ?m.name, "unexpected manifest name");
    }
    Ok(m.entries)
}

#[derive(Deserialize)]
struct ConnectorManifest {
    name: Option<String>,
    version: u32,
    entries: Vec<ConnectorEntry>,
}

/// One entry of a connector manifest.
#[derive(Debug, Deserialize)]
pub struct ConnectorEntry {
    /// The data file's URL where it was written.
    pub url: String,
    /// Whether the file must exist.
    #[serde(default = "yes")]
    pub mandatory: bool,
}

fn yes() -> bool {
    true
}

async fn open_connector(
    dir: &Location,
    schema: Option<TableSchema>,
) -> Result<Option<TableSource>> {
    let path = dir.join(MANIFEST);
    let url = dir.url_of(&path);
    let Some(bytes) = dir.get_optional(&path).await? else {
        return Ok(None);
    };
    let entries = parse_connector_manifest(&url, &bytes)?;
    let mut files = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for e in entries {
        // Entries are absolute URLs from where the export was written; the files sit
        // beside the manifest, so resolve them here (the export may have been moved).
        let name = e
            .url
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty() && *n != "." && *n != "..")
            .ok_or_else(|| Error::Corrupt {
                file: url.clone(),
                message: format!("bad entry {}", crate::text::quote(&e.url)),
            })?;
        if !seen.insert(name.to_string()) {
            return Err(Error::Corrupt {
                file: url.clone(),
                message: format!("lists the data file {} twice", crate::text::quote(name)),
            });
        }
        let local = dir.join(name);
        if !e.mandatory && !dir.exists(name).await? {
            continue;
        }
        files.push(SourceFile {
            url: dir.url_of(&local),
            path: local,
            md5: None,
            items: None,
        });
    }
    Ok(Some(TableSource {
        table: schema.as_ref().map(|s| s.table_name.clone()),
        dir: dir.clone(),
        format: DataFormat::Emr,
        files,
        schema,
        expected_items: None,
        changes: false,
    }))
}

/// Data files of a folder with no manifest (Data Pipeline): every plain file but ddbx's own.
async fn list_plain_files(dir: &Location) -> Result<Vec<SourceFile>> {
    let listing = dir.list_folder().await?;
    let mut files: Vec<SourceFile> = listing
        .objects
        .into_iter()
        .filter(|o| {
            let name = o.location.filename().unwrap_or_default();
            !(!hive::is_data_file(name)
                || name.ends_with(".json")
                || name == MANIFEST
                || name.contains("BACKUP_")
                || name.contains("RESTORE_"))
        })
        .map(|o| SourceFile {
            url: dir.url_of(&o.location),
            path: o.location,
            md5: None,
            items: None,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(files)
}

async fn read_schema(dir: &Location, rel: &str) -> Result<Option<TableSchema>> {
    let path = dir.join(rel);
    match dir.get_optional(&path).await? {
        None => Ok(None),
        Some(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Corrupt {
                file: dir.url_of(&path),
                message: format!("not a table description: {e}"),
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn manifest_entries_never_point_outside() {
        let text = concat!(
            r#"{"itemCount":1,"md5Checksum":"x","dataFileS3Key":"a/AWSDynamoDB/1/data/f.json.gz"}"#,
            "\n",
            r#"{"itemCount":1,"md5Checksum":"x","dataFileS3Key":"../../other-bucket/../evil.json.gz"}"#,
            "\n",
        );
        let names: Vec<String> = parse_manifest_files("m", text.as_bytes())
            .unwrap()
            .into_iter()
            .map(|(_, n)| n.name)
            .collect();
        assert_eq!(
            names,
            ["f.json.gz", "evil.json.gz"],
            "only the last part of a key is used"
        );
        let shared = parse_manifest_files(
            "m",
            br#"{"itemCount":1,"md5Checksum":"x","dataFileS3Key":"p/AWSDynamoDB/data/i.json.gz"}"#,
        )
        .unwrap();
        assert!(
            shared[0].1.shared,
            "an incremental export's shared data folder"
        );
        let err = parse_manifest_files(
            "m",
            br#"{"itemCount":1,"md5Checksum":"x","dataFileS3Key":"a/.."}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("m, line 1"), "{err}");
        let err = parse_connector_manifest(
            "man",
            br#"{"name":"DynamoDB-export","version":2,"entries":[]}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("version 2"), "{err}");
    }

    proptest! {
        // Hostile bytes never panic a manifest reader: they parse or give an error.
        #[test]
        fn manifest_readers_take_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = parse_manifest_files("m", &bytes);
            let _ = parse_connector_manifest("m", &bytes);
            let _ = RestorePlan::parse("p", &bytes);
        }
    }
}
