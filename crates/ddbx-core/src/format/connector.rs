//! The emr-dynamodb-connector's layout (docs/FORMATS.md §2): UUID-named data files directly in
//! the table's folder and one uncompressed `manifest` (format version 3) listing them by
//! absolute URL.

use bytes::Bytes;
use object_store::PutPayload;

use crate::format::{DataFile, TableLayout};
use crate::{Error, Result};

/// The manifest's file name.
pub const MANIFEST: &str = "manifest";

/// The bytes of a version-3 manifest listing `urls`.
pub fn manifest_bytes(urls: &[String]) -> Vec<u8> {
    let mut out = String::from("{\"name\":\"DynamoDB-export\",\"version\":3,\n\"entries\": [\n");
    for (i, url) in urls.iter().enumerate() {
        if i > 0 {
            out.push_str(",\n");
        }
        out.push_str("{\"url\":");
        out.push_str(&serde_json::to_string(url).expect("serializes"));
        out.push_str(",\"mandatory\":true}");
    }
    out.push_str("\n]}");
    out.into_bytes()
}

/// Write the manifest once every data file is stored.
pub async fn write_manifest(layout: &TableLayout, files: &[DataFile]) -> Result<()> {
    let dir = &layout.table_dir;
    let urls: Vec<String> = files
        .iter()
        .map(|f| format!("{}/{}", dir.root_url, f.path))
        .collect();
    let path = dir.join(MANIFEST);
    dir.store
        .put(&path, PutPayload::from(Bytes::from(manifest_bytes(&urls))))
        .await
        .map_err(|e| Error::store(dir.url_of(&path), e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_matches_the_connectors_shape() {
        let text = String::from_utf8(manifest_bytes(&[
            "s3://b/p/1.gz".into(),
            "s3://b/p/2.gz".into(),
        ]))
        .unwrap();
        assert_eq!(
            text,
            "{\"name\":\"DynamoDB-export\",\"version\":3,\n\"entries\": [\n{\"url\":\"s3://b/p/1.gz\",\"mandatory\":true},\n{\"url\":\"s3://b/p/2.gz\",\"mandatory\":true}\n]}"
        );
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["entries"].as_array().unwrap().len(), 2);
    }
}
