//! Any bytes into every reader of a control file a run leaves (plans, manifests, listings,
//! status flags, locks, checkpoints, `table.json`, chains): they parse or refuse, never
//! panic, and what they accept keeps its promises (`ddbx_core::testing`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ddbx_core::testing::control_file_readers(data);
});
