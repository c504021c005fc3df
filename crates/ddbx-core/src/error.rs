//! The library's error type: what went wrong and where (table, file, line).

use crate::item::ItemError;

/// A result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in ddbx-core.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to an AWS service failed (after retries, when it was worth retrying).
    #[error("{context}: {message}")]
    Aws {
        /// What was being done, naming the table.
        context: String,
        /// The service's error code, when it gave one.
        code: Option<String>,
        /// The error with its causes.
        message: String,
        /// Whether it was a throttle, a transient fault or permanent.
        class: ErrorClass,
    },
    /// Reading or writing the storage (S3 or a folder) failed.
    #[error("{path}: {}", crate::store::errors::describe(.source))]
    Store {
        /// The object or folder.
        path: String,
        /// The storage error.
        #[source]
        source: object_store::Error,
    },
    /// A line of a data file is not a valid item.
    #[error("{file}, line {line}: {source}")]
    Item {
        /// The data file.
        file: String,
        /// Its line number, from 1.
        line: u64,
        /// What is wrong.
        #[source]
        source: ItemError,
    },
    /// A file is damaged or not in the expected format (gzip, manifest, checksum...).
    #[error("{file}: {message}")]
    Corrupt {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The settings or the input cannot work (bad URL, bad name, nothing selected...).
    #[error("{0}")]
    Invalid(String),
    /// Planning found nothing to do, or could not plan (no table selected, listing failed).
    #[error("{0}")]
    Plan(String),
    /// Another run of the same app holds the lock.
    #[error("{0}")]
    Locked(String),
    /// AWS cannot be used as configured, whatever the tables: a profile that does not
    /// exist, no credentials, credentials refused or expired, an endpoint that cannot be
    /// reached, a bucket that does not exist or lives in another region. The message is
    /// one line that says what to fix.
    #[error("{0}")]
    Config(String),
    /// The run was interrupted.
    #[error("interrupted")]
    Interrupted,
}

impl Error {
    /// A storage error about `path`.
    pub fn store(path: impl std::fmt::Display, source: object_store::Error) -> Self {
        Self::Store {
            path: path.to_string(),
            source,
        }
    }
}

/// An error and its causes on one line (`a: b: c`), each said once, never a Debug form:
/// what a person reads. The Debug form, with every field, is for `-v`'s log.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        let text = e.to_string();
        // A wrapper often repeats its source's text ("io error: X" over "X"): keep one.
        let known = parts
            .iter()
            .any(|p| p.contains(text.as_str()) || text.is_empty());
        if !known {
            parts.retain(|p| !text.contains(p.as_str()));
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// What kind of failure an AWS error is (decided once, by `aws::classify`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// The service asked us to slow down: retry later and lower the rate.
    Throttled,
    /// A passing fault (5xx, timeout, dropped connection, garbled response): retry.
    Transient,
    /// Retrying will not help (validation, access denied, missing table...).
    Permanent,
}
