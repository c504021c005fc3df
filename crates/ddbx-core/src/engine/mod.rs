//! Engines run a plan. The local engine runs every table's pipeline in this process on a
//! shared pool of workers; it takes a plan and returns a report, and never prints.

pub mod emr;
pub mod local;
