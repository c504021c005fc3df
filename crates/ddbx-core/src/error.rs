//! The library's error type: what went wrong and where (table, file, line), as kinds a
//! caller can match on (object_store's `Error` is the model): what the user asked for
//! cannot work ([`Error::Usage`]), a run's work failed ([`Error::Failed`]), a service or
//! the storage failed, a file is damaged, someone else holds the app or the run root, the
//! run was stopped. Context added on the way up ([`Error::Noted`]) keeps the cause, its
//! kind and its `source()` chain.

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
    #[error("{path}: {said}")]
    Store {
        /// The object or folder.
        path: String,
        /// The storage error.
        #[source]
        source: object_store::Error,
        /// What it means, on one line (`store::errors::describe`, by [`Error::store`]).
        said: String,
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
    /// What was asked for cannot work: a setting out of range, a bad name or location, a
    /// table that does not fit, a combination the engine cannot do. Nothing was started.
    #[error("{0}")]
    Usage(String),
    /// The work of a run failed while it ran (a writer that died, counts that disagree,
    /// a job the service failed).
    #[error("{0}")]
    Failed(String),
    /// Planning found nothing to do, or could not plan (no table selected, listing failed).
    #[error("{0}")]
    Plan(String),
    /// Another run of the same app holds the lock.
    #[error("{0}")]
    Locked(String),
    /// The run root a new run would write already holds a run.
    #[error("{0}")]
    RunRootTaken(String),
    /// AWS cannot be used as configured, whatever the tables: a profile that does not
    /// exist, no credentials, credentials refused or expired, an endpoint that cannot be
    /// reached, a bucket that does not exist or lives in another region. The message is
    /// one line that says what to fix (a usage error: exit 1).
    #[error("{0}")]
    Config(String),
    /// The run was interrupted (Ctrl-C, SIGTERM...).
    #[error("interrupted")]
    Interrupted,
    /// A cause, with what the caller adds to it (how far the work got, what to do next).
    #[error("{source} ({note})")]
    Noted {
        /// What went wrong.
        #[source]
        source: Box<Error>,
        /// What the caller adds.
        note: String,
    },
}

/// What kind of failure an [`Error`] is, seen through the context added to it: what the
/// binary maps to an exit code, and what a table's report records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// What was asked for cannot work (exit 1).
    Usage,
    /// Someone else holds the app's lock, or the run root is taken (exit 2).
    Held,
    /// Nothing to do, or planning failed (exit 3).
    Plan,
    /// The run was stopped.
    Interrupted,
    /// Anything else failed (exit 4).
    Failed,
}

impl Error {
    /// This error with `note` added (the cause, its kind and its chain kept).
    pub fn noted(self, note: impl Into<String>) -> Self {
        Self::Noted {
            source: Box::new(self),
            note: note.into(),
        }
    }

    /// The error the notes were added to.
    pub fn cause(&self) -> &Error {
        match self {
            Self::Noted { source, .. } => source.cause(),
            e => e,
        }
    }

    /// What kind of failure it is (see [`Kind`]).
    pub fn kind(&self) -> Kind {
        match self.cause() {
            Self::Usage(_) | Self::Config(_) => Kind::Usage,
            Self::Locked(_) | Self::RunRootTaken(_) => Kind::Held,
            Self::Plan(_) => Kind::Plan,
            Self::Interrupted => Kind::Interrupted,
            _ => Kind::Failed,
        }
    }

    /// Whether the run was stopped (not failed).
    pub fn is_interrupted(&self) -> bool {
        self.kind() == Kind::Interrupted
    }

    /// The service's error code, when an AWS call failed.
    pub fn aws_code(&self) -> Option<&str> {
        match self.cause() {
            Self::Aws { code, .. } => code.as_deref(),
            _ => None,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_keep_the_kind_and_the_chain_of_their_cause() {
        let e = Error::Interrupted.noted("25 items written");
        assert_eq!(e.to_string(), "interrupted (25 items written)");
        assert!(e.is_interrupted());
        assert!(std::error::Error::source(&e).is_some());
        let e = Error::Usage("bad".into()).noted("a").noted("b");
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (Kind::Usage, "bad (a) (b)")
        );
        assert_eq!(Error::RunRootTaken("x".into()).kind(), Kind::Held);
        assert_eq!(Error::Failed("x".into()).kind(), Kind::Failed);
    }
}
