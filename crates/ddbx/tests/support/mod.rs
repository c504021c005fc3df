//! Test support: the test kit (`crates/ddbx-testkit`), re-exported whole so that a test
//! names `crate::support::…` (`TestEnv`, `items`, `fault_proxy`, `emr_service`,
//! `command::{Ddbx, Exit}`, ...). What belongs to the tests of this binary alone lives in
//! the test files; what tests share lives in the kit, with tests of its own.

pub use ddbx_testkit::*;
