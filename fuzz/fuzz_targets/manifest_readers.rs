//! Any bytes into the manifest and plan readers: they parse or return an error, never panic,
//! and no data-file name they return can leave the export's folder.
#![no_main]

use ddbx_core::format::source::{parse_connector_manifest, parse_manifest_files};
use ddbx_core::plan::RestorePlan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = parse_manifest_files("fuzz", data) {
        for (_, file) in entries {
            let name = file.name;
            assert!(!name.contains('/') && name != "." && name != ".." && !name.is_empty());
        }
    }
    let _ = parse_connector_manifest("fuzz", data);
    if let Ok(plan) = RestorePlan::parse("fuzz", data) {
        for step in plan.tables {
            assert!(!step.path.split('/').any(|p| p == ".."));
        }
    }
});
