//! ddbx-core: the library behind the `ddbx` command.
//!
//! It knows DynamoDB items and the formats they are stored in, how to select tables and
//! lay out a run, how to read and write at a chosen fraction of a table's capacity, and
//! how to run all of it. It never parses flags, prints, or exits: the binary does that.
//!
//! The API a caller needs is re-exported here: the jobs ([`export::run`], [`import::run`],
//! [`verify::run`], the [`catalog`]'s list, latest and prune) with their settings and
//! reports, the engine choice, the clients ([`Aws`]) and the progress and stop a caller
//! watches and raises. Modules stay public where the binary, the benchmarks or the fuzz
//! targets name more (formats, items, plans); the engines' and formats' machinery is
//! crate-private (`scripts/api-surface` counts what another crate can reach), and what
//! fuzz targets and property tests feed is [`testing`].
#![deny(missing_docs)]

pub mod aws;
pub mod bounds;
pub mod capacity;
pub mod catalog;
pub(crate) mod checkpoint;
pub mod clock;
pub(crate) mod concurrent;
pub mod copy;
pub mod diagnosis;
pub mod engine;
mod error;
pub mod export;
pub mod format;
pub mod import;
pub mod item;
pub mod plan;
pub mod progress;
pub(crate) mod rate;
pub mod report;
pub(crate) mod retry;
pub mod run;
pub mod spool;
pub mod stop;
pub mod store;
pub(crate) mod table;
pub mod testing;
pub(crate) mod text;
pub mod verify;
pub mod wire;
pub use error::{Error, Kind as ErrorKind, Result};

pub use aws::{Aws, AwsSettings};
pub use engine::local::LocalEngine;
pub use engine::native::NativeEngine;
pub use engine::EngineChoice;
pub use export::ExportSettings;
pub use import::ImportSettings;
pub use progress::RunProgress;
pub use report::{RunSummary, TableReport, TableStatus};
pub use stop::StopSignal;
pub use verify::VerifySettings;
