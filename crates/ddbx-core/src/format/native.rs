//! AWS's native "Export to S3" layout (docs/FORMATS.md §1): under `<table>/AWSDynamoDB/<id>/`,
//! `_started`, `data/*.json.gz` (or `*.ion.gz`), `manifest-files.json` (a line per data
//! file), `manifest-summary.json`, and beside each manifest a `.md5` holding its base64
//! MD5, as the service writes them (its guide says `.checksum`; real exports and the
//! readers written against them use `.md5`).

use base64::Engine as _;
use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use md5::{Digest, Md5};
use object_store::PutPayload;
use serde::{Deserialize, Serialize};

use crate::format::{DataFile, TableLayout};
use crate::plan::DataFormat;
use crate::store::Location;
use crate::table::TableSchema;
use crate::{Error, Result};

/// One line of `manifest-files.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestFile {
    /// Items in the file.
    pub item_count: u64,
    /// Base64 MD5 of the stored object.
    pub md5_checksum: String,
    /// The object's ETag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The object's key from the bucket's root.
    pub data_file_s3_key: String,
}

/// `manifest-summary.json`, in AWS's field order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ManifestSummary {
    /// "2020-06-30" for full exports.
    pub version: String,
    /// The export's ARN.
    pub export_arn: String,
    /// When the export started.
    pub start_time: String,
    /// When it ended.
    pub end_time: String,
    /// The table's ARN.
    pub table_arn: String,
    /// The table's id.
    pub table_id: String,
    /// The point in time exported.
    pub export_time: String,
    /// Bucket (null for a local folder).
    pub s3_bucket: Option<String>,
    /// The prefix the export was asked to write under.
    pub s3_prefix: Option<String>,
    /// Server-side encryption algorithm.
    #[serde(rename = "s3SseAlgorithm")]
    pub s3_sse_algorithm: Option<String>,
    /// KMS key id.
    #[serde(rename = "s3SseKmsKeyId")]
    pub s3_sse_kms_key_id: Option<String>,
    /// Key of `manifest-files.json`.
    pub manifest_files_s3_key: String,
    /// Bytes of items (DynamoDB's sizes).
    pub billed_size_bytes: u64,
    /// Items exported.
    pub item_count: u64,
    /// "DYNAMODB_JSON" or "ION".
    pub output_format: String,
    /// "FULL_EXPORT" (real exports carry it, and readers such as `aws-dynamodb-io` need it).
    pub export_type: String,
}

/// The checksum files a manifest may have beside it: `.md5` as AWS writes them, and the
/// `.checksum` that AWS's guide names (and earlier ddbx versions wrote, in hex).
pub const CHECKSUM_SUFFIXES: [&str; 2] = [".md5", ".checksum"];

/// Whether a checksum file's content (base64 or hex MD5, surrounding whitespace allowed)
/// is the MD5 of `manifest`.
pub fn checksum_matches(checksum: &[u8], manifest: &[u8]) -> bool {
    let text = String::from_utf8_lossy(checksum);
    let text = text.trim();
    let digest = Md5::digest(manifest);
    text == base64_md5_of(&digest) || text.eq_ignore_ascii_case(&hex::encode(digest))
}

/// The name AWS's summary gives a format.
pub fn output_format(format: DataFormat) -> &'static str {
    match format {
        DataFormat::Ion => "ION",
        _ => "DYNAMODB_JSON",
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn base64_md5_of(digest: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// The base64 MD5 of `bytes`, as AWS's `.md5` files hold it (24 bytes, no newline).
fn base64_md5(bytes: &[u8]) -> String {
    base64_md5_of(&Md5::digest(bytes))
}

async fn put(loc: &Location, rel: &str, body: Vec<u8>) -> Result<()> {
    let path = loc.join(rel);
    loc.store
        .put(&path, PutPayload::from(Bytes::from(body)))
        .await
        .map_err(|e| Error::store(loc.url_of(&path), e))?;
    Ok(())
}

/// Write the empty `_started` marker, first of all.
pub async fn write_started(layout: &TableLayout) -> Result<()> {
    put(&layout.native_dir(), "_started", Vec::new()).await
}

/// Write both manifests and their checksums once every data file is stored.
pub async fn write_manifests(
    layout: &TableLayout,
    table: &TableSchema,
    region: &str,
    files: &[DataFile],
    started: DateTime<Utc>,
    ended: DateTime<Utc>,
) -> Result<ManifestSummary> {
    let dir = layout.native_dir();
    let mut lines = Vec::new();
    for f in files {
        serde_json::to_writer(
            &mut lines,
            &ManifestFile {
                item_count: f.items,
                md5_checksum: f.md5.clone(),
                etag: f.etag.clone(),
                data_file_s3_key: f.path.clone(),
            },
        )
        .expect("serializes");
        lines.push(b'\n');
    }
    let files_checksum = base64_md5(&lines);
    put(&dir, "manifest-files.json", lines).await?;
    put(&dir, "manifest-files.md5", files_checksum.into_bytes()).await?;

    let table_arn = table.table_arn.clone().unwrap_or_else(|| {
        format!(
            "arn:aws:dynamodb:{region}:000000000000:table/{}",
            table.table_name
        )
    });
    let summary = ManifestSummary {
        version: "2020-06-30".into(),
        export_arn: format!("{table_arn}/export/{}", layout.export_id),
        start_time: ts(started),
        end_time: ts(ended),
        table_arn,
        table_id: table.table_id.clone().unwrap_or_default(),
        export_time: ts(started),
        s3_bucket: layout.table_dir.bucket.clone(),
        s3_prefix: Some(layout.table_dir.prefix.to_string()),
        s3_sse_algorithm: layout
            .table_dir
            .encryption
            .as_ref()
            .map(|e| e.manifest_name().to_string()),
        s3_sse_kms_key_id: match &layout.table_dir.encryption {
            Some(crate::store::Encryption::Kms(key)) => key.clone(),
            _ => None,
        },
        manifest_files_s3_key: dir.join("manifest-files.json").to_string(),
        billed_size_bytes: files.iter().map(|f| f.item_bytes).sum(),
        item_count: files.iter().map(|f| f.items).sum(),
        output_format: output_format(layout.format).into(),
        export_type: "FULL_EXPORT".into(),
    };
    let body = serde_json::to_vec(&summary).expect("serializes");
    let checksum = base64_md5(&body);
    put(&dir, "manifest-summary.json", body).await?;
    put(&dir, "manifest-summary.md5", checksum.into_bytes()).await?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_in_either_spelling() {
        let manifest = b"{\"itemCount\":1}\n";
        let b64 = base64_md5(manifest);
        assert_eq!(b64.len(), 24, "as AWS writes it");
        assert!(checksum_matches(b64.as_bytes(), manifest));
        assert!(checksum_matches(format!("{b64}\n").as_bytes(), manifest));
        let hex = hex::encode(Md5::digest(manifest));
        assert!(checksum_matches(hex.as_bytes(), manifest));
        assert!(checksum_matches(hex.to_uppercase().as_bytes(), manifest));
        assert!(!checksum_matches(b64.as_bytes(), b"other"));
        assert!(!checksum_matches(b"", manifest));
    }
}
