//! What the fuzz targets (`fuzz/`) and the property tests feed hostile bytes to: every
//! reader of a control file a run leaves (plans, manifests, listings, status flags, locks,
//! checkpoints, `table.json`, chains). Each takes the bytes or refuses them; none panics,
//! and what one accepts keeps its promises (no path leaves its folder, a lock's state and a
//! checkpoint's key can be worked out).
//!
//! And the paths integration tests cannot reach at their real sizes: a server-side copy in
//! parts, which `ddbx copy` takes only past 5 GiB.

use std::time::Duration;

use crate::checkpoint::ImportPosition;
use crate::engine::local::positions::SegmentPosition;
use crate::format::chain::Chain;
use crate::format::hive::parse_listing;
use crate::format::source::{parse_connector_manifest, parse_manifest_files};
use crate::plan::{validate_table_name, ExportPlan, RestorePlan};
use crate::report::RunSummary;
use crate::run::lock::{Held, LockBody};
use crate::table::TableSchema;

/// Every control file reader on `bytes`; panics only if one breaks a promise.
pub fn control_file_readers(bytes: &[u8]) {
    if let Ok(entries) = parse_manifest_files("fuzz", bytes) {
        let mut names = std::collections::HashSet::new();
        for (_, file) in entries {
            let name = file.name;
            assert!(!name.contains('/') && name != "." && name != ".." && !name.is_empty());
            assert!(
                names.insert((name, file.shared)),
                "a file listed twice was taken"
            );
        }
    }
    let _ = parse_connector_manifest("fuzz", bytes);
    if let Ok(plan) = RestorePlan::parse("fuzz", bytes) {
        for step in plan.tables {
            assert!(!step.path.split('/').any(|p| p == ".." || p == "."));
            assert!(validate_table_name(&step.target_table).is_ok());
            assert!(crate::bounds::RATIO.contains(step.write_ratio));
        }
    }
    if let Ok(listing) = parse_listing("fuzz", bytes) {
        for f in listing.files {
            assert!(!f.path.split('/').any(|p| p.is_empty() || p == ".."));
        }
    }
    let _ = serde_json::from_slice::<ExportPlan>(bytes);
    let _ = serde_json::from_slice::<RunSummary>(bytes);
    let lock = serde_json::from_slice::<LockBody>(bytes).map_err(|e| e.to_string());
    let _ = Held::of(&lock, Duration::from_secs(15 * 60));
    let _ = serde_json::from_slice::<ImportPosition>(bytes);
    if let Ok(p) = serde_json::from_slice::<SegmentPosition>(bytes) {
        let _ = p.start_key("fuzz");
    }
    if let Ok(t) = serde_json::from_slice::<TableSchema>(bytes) {
        let _ = (t.key_check(), t.identity());
    }
    let _ = serde_json::from_slice::<Chain>(bytes);
}

/// A server-side copy of the object `rel` (`size` bytes) from the run root `from` to the
/// run root `to`, both in S3, in parts of `part` bytes: the UploadPartCopy path `ddbx copy`
/// takes past CopyObject's 5 GiB, taken here at a size a test can afford.
pub async fn copy_server_side_in_parts(
    from: &crate::store::Location,
    to: &crate::store::Location,
    rel: &str,
    size: u64,
    part: u64,
) -> crate::Result<()> {
    use crate::copy::objects::{copy_sized, Object};
    let o = Object {
        rel: rel.to_string(),
        size,
    };
    let sizes = crate::store::s3::CopySizes {
        single_max: part,
        part,
    };
    copy_sized(from, to, &o, crate::copy::Transfer::ServerSide, sizes).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Control files as a run writes them, mangled: the fuzz target's seeds, in every
    /// `cargo test`.
    fn seeds() -> Vec<&'static str> {
        vec![
            r#"{"owner":"h:1","run":"export x","token":"t","acquiredAt":"2026-11-24T03:00:00Z","refreshedAt":"2099-11-24T03:00:00Z"}"#,
            r#"{"filesDone":["a"],"itemsWritten":3,"complete":false,"target":{"tableId":"x"}}"#,
            r#"{"files":[],"nextKey":"{\"Item\":{\"pk\":{\"S\":\"x\"}}}","done":false}"#,
            r#"{"version":1,"app":"a","region":"r","exportedAt":"2026-11-24T03:00:00Z","tables":[{"sourceTable":"abc","targetTable":"abc","path":"abc","format":"dynamodb-json","keySchema":[],"writeRatio":0.8}]}"#,
            r#"{"format":"data-pipeline","files":[{"path":"data/000000_0","bytes":1}]}"#,
            "{\"itemCount\":1,\"md5Checksum\":\"x\",\"dataFileS3Key\":\"a/data/f\"}\n",
        ]
    }

    #[test]
    fn the_seeds_are_read() {
        for s in seeds() {
            control_file_readers(s.as_bytes());
        }
    }

    proptest! {
        #[test]
        fn hostile_control_files_never_panic_a_reader(
            seed in prop::sample::select(seeds()),
            cut in any::<prop::sample::Index>(),
            junk in prop::collection::vec(any::<u8>(), 0..40),
        ) {
            // A seed cut anywhere with junk after it, and the junk alone.
            let mut bytes = seed.as_bytes()[..cut.index(seed.len() + 1)].to_vec();
            bytes.extend(&junk);
            control_file_readers(&bytes);
            control_file_readers(&junk);
        }
    }
}
