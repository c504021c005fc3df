//! ddbx-core: the library behind the `ddbx` command.
//!
//! It knows DynamoDB items and the formats they are stored in, how to select tables and
//! lay out a run, how to read and write at a chosen fraction of a table's capacity, and
//! how to run all of it. It never parses flags, prints, or exits: the binary does that.
#![deny(missing_docs)]

pub mod aws;
pub mod bounds;
pub mod capacity;
pub mod catalog;
pub mod checkpoint;
pub mod clock;
pub mod concurrent;
pub mod diagnosis;
pub mod engine;
mod error;
pub mod export;
pub mod format;
pub mod import;
pub mod item;
pub mod plan;
pub mod progress;
pub mod rate;
pub mod report;
pub mod retry;
pub mod run;
pub mod stop;
pub mod store;
pub mod table;
pub mod testing;
pub mod text;
pub mod verify;
pub mod wire;
pub use error::{Error, Kind as ErrorKind, Result};
