//! The Hive (and AWS Data Pipeline) layout, docs/FORMATS.md §3: text files of
//! `name\u{3}{json}\u{2}...` lines as Hive writes them (`000000_0`, `000001_0.gz`, ...),
//! no manifest. An EMR-engine export puts them under `<table>/data/`, and ddbx lists them
//! in `<table>/files.json` once the step is done, so that a run reads exactly the files
//! its step wrote.

use serde::{Deserialize, Serialize};

use crate::store::Location;
use crate::{Error, Result};

/// The listing's file name, in the table's folder.
pub const LISTING: &str = "files.json";

/// The folder Hive writes a table's data files into, in the table's folder.
pub const DATA: &str = "data";

/// `files.json`: the data files of a table, relative to its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Listing {
    /// "data-pipeline" (the line format).
    pub format: String,
    /// The files, in order.
    pub files: Vec<ListedFile>,
}

/// One data file of a listing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListedFile {
    /// Its path, relative to the table's folder (`data/000000_0.gz`).
    pub path: String,
    /// Its size as stored.
    pub bytes: u64,
}

/// Whether an object's name is a data file Hive wrote (not a marker, staging file or
/// temporary file: those start with `_` or `.`).
pub fn is_data_file(name: &str) -> bool {
    !(name.is_empty() || name.starts_with('_') || name.starts_with('.'))
}

/// List the data files under `<table_dir>/data/` and write them to `files.json`.
pub async fn write_listing(table_dir: &Location) -> Result<Listing> {
    let data = table_dir.child(DATA);
    let listed = data.list_folder().await?;
    let mut files: Vec<ListedFile> = listed
        .objects
        .into_iter()
        .filter(|o| o.location.filename().is_some_and(is_data_file))
        .map(|o| ListedFile {
            path: format!("{DATA}/{}", o.location.filename().unwrap_or_default()),
            bytes: o.size,
        })
        .collect();
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let listing = Listing {
        format: "data-pipeline".into(),
        files,
    };
    table_dir.put_json(LISTING, &listing).await?;
    Ok(listing)
}

/// Read `files.json` of a table's folder, when there is one.
pub async fn read_listing(table_dir: &Location) -> Result<Option<Listing>> {
    let path = table_dir.join(LISTING);
    match table_dir.get_optional(&path).await? {
        None => Ok(None),
        Some(bytes) => parse_listing(&table_dir.url_of(&path), &bytes).map(Some),
    }
}

/// Parse and check a `files.json` (paths inside the table's folder, each once), naming
/// `origin` in errors.
pub fn parse_listing(origin: &str, bytes: &[u8]) -> Result<Listing> {
    let listing: Listing = serde_json::from_slice(bytes).map_err(|e| Error::Corrupt {
        file: origin.to_string(),
        message: format!("not a ddbx listing of data files: {e}"),
    })?;
    if let Some(bad) = listing.files.iter().find(|f| {
        f.path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..")
    }) {
        return Err(Error::Corrupt {
            file: origin.to_string(),
            message: format!(
                "path {} must stay inside the table's folder",
                crate::text::quote(&bad.path)
            ),
        });
    }
    let mut seen = std::collections::HashSet::new();
    if let Some(twice) = listing.files.iter().find(|f| !seen.insert(&f.path)) {
        return Err(Error::Corrupt {
            file: origin.to_string(),
            message: format!(
                "lists the data file {} twice",
                crate::text::quote(&twice.path)
            ),
        });
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Storage;

    #[tokio::test]
    async fn the_listing_names_hives_files_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let table = Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        for name in ["000001_0.gz", "000000_0.gz", "_SUCCESS", ".hive-staging_x"] {
            std::fs::write(data.join(name), b"x").unwrap();
        }
        let listing = write_listing(&table).await.unwrap();
        let paths: Vec<&str> = listing.files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["data/000000_0.gz", "data/000001_0.gz"]);
        assert_eq!(read_listing(&table).await.unwrap(), Some(listing));
        std::fs::write(
            dir.path().join(LISTING),
            r#"{"format":"data-pipeline","files":[{"path":"../x","bytes":1}]}"#,
        )
        .unwrap();
        assert!(read_listing(&table).await.is_err());
    }
}
