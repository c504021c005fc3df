//! The range of every numeric setting, in one place. A value outside its range is refused
//! before anything is read or written: a zero, a negative number or NaN where it would
//! hang a run (a rate of 0), empty it (0 scan segments), or take a live lock over (a lock
//! stale after 0 minutes). The command line parses its flags with [`Bound::parse`], so a
//! bad flag is a usage error naming the flag; the library checks the same bounds on
//! whatever reaches it by other ways (a restore plan's `writeRatio`, a caller of the
//! library) with [`Bound::check`], naming the setting.

use std::fmt::Display;
use std::str::FromStr;

use crate::{Error, Result};

/// The range of one numeric setting.
#[derive(Debug, Clone, Copy)]
pub struct Bound<T> {
    /// The setting's name, for messages (`read ratio`, `scan segments`).
    pub setting: &'static str,
    /// The lowest value allowed.
    pub min: T,
    /// Whether `min` itself is refused (a ratio must be above 0).
    pub min_excluded: bool,
    /// The highest value allowed.
    pub max: T,
    /// Why the range is what it is, for messages.
    pub why: &'static str,
}

impl<T: Copy + PartialOrd + Display + FromStr> Bound<T> {
    /// Whether `v` is inside the range (NaN never is).
    pub fn contains(&self, v: T) -> bool {
        let above = if self.min_excluded {
            v > self.min
        } else {
            v >= self.min
        };
        above && v <= self.max
    }

    /// What the range is, in words: `0 < value <= 1.5`.
    pub fn describe(&self) -> String {
        let op = if self.min_excluded { "<" } else { "<=" };
        format!("{} {op} value <= {}", self.min, self.max)
    }

    fn refusal(&self, shown: impl Display) -> String {
        format!(
            "{shown} is out of range ({}; {})",
            self.describe(),
            self.why
        )
    }

    /// `v`, or a usage error naming the setting.
    pub fn check(&self, v: T) -> Result<T> {
        if self.contains(v) {
            Ok(v)
        } else {
            Err(Error::Usage(format!(
                "{}: {}",
                self.setting,
                self.refusal(v)
            )))
        }
    }

    /// `v` when given, checked.
    pub fn check_opt(&self, v: Option<T>) -> Result<Option<T>> {
        v.map(|v| self.check(v)).transpose()
    }

    /// Parse a command-line value (clap's value parser): the message names the value, and
    /// clap adds the flag.
    pub fn parse(&self, s: &str) -> crate::Result<T> {
        let v: T = s
            .trim()
            .parse()
            .map_err(|_| Error::Usage(format!("{s:?} is not a number")))?;
        if self.contains(v) {
            Ok(v)
        } else {
            Err(Error::Usage(self.refusal(format!("{s:?}"))))
        }
    }
}

/// A fraction of a table's capacity (read or write).
pub const RATIO: Bound<f64> = Bound {
    setting: "capacity ratio",
    min: 0.0,
    min_excluded: true,
    max: 1.5,
    why: "a fraction of the table's capacity; above 1 borrows from its burst",
};

/// Capacity units a second for one table (read or write).
pub const UNITS: Bound<f64> = Bound {
    setting: "units per second",
    min: 1.0,
    min_excluded: false,
    max: 1e9,
    why: "DynamoDB's smallest capacity is 1 unit a second, and a rate of 0 never finishes",
};

/// Scan segments of one table.
pub const SEGMENTS: Bound<u32> = Bound {
    setting: "scan segments",
    min: 1,
    min_excluded: false,
    max: 1_000_000,
    why: "DynamoDB's TotalSegments is 1 to 1,000,000, and 0 would read nothing",
};

/// Concurrent workers (scan segments or batch writers).
pub const WORKERS: Bound<usize> = Bound {
    setting: "workers",
    min: 1,
    min_excluded: false,
    max: 1024,
    why: "0 would do nothing",
};

/// Tables worked on at once.
pub const PARALLEL_TABLES: Bound<usize> = Bound {
    setting: "tables at once",
    min: 1,
    min_excluded: false,
    max: 1024,
    why: "0 would do nothing",
};

/// Items per data file at most.
pub const FILE_ITEMS: Bound<u64> = Bound {
    setting: "items per data file",
    min: 1,
    min_excluded: false,
    max: u64::MAX,
    why: "a file holds at least one item",
};

/// Uncompressed bytes per data file at most.
pub const FILE_BYTES: Bound<u64> = Bound {
    setting: "bytes per data file",
    min: 1024,
    min_excluded: false,
    max: 1 << 40,
    why: "from 1 KiB to 1 TiB",
};

/// Minutes without a refresh after which a lock is stale. A live owner rewrites its lock
/// every minute, so anything shorter than two would take a live run's lock over.
pub const STALE_LOCK_MINUTES: Bound<u64> = Bound {
    setting: "stale lock minutes",
    min: 2,
    min_excluded: false,
    max: 7 * 24 * 60,
    why: "a live run refreshes its lock every minute",
};

/// Seconds: one attempt of one request, or a first poll.
pub const SECONDS: Bound<f64> = Bound {
    setting: "seconds",
    min: 0.0,
    min_excluded: true,
    max: 3600.0,
    why: "more than 0 and at most an hour",
};

/// Days of runs kept by prune.
pub const KEEP_DAYS: Bound<u32> = Bound {
    setting: "days kept",
    min: 0,
    min_excluded: false,
    max: 36_500,
    why: "at most a hundred years",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_nan_and_infinity_are_refused_where_they_would_hang_or_empty_a_run() {
        for bad in ["0", "0.5", "-1", "NaN", "nan", "inf", "1e10", "", "x"] {
            assert!(UNITS.parse(bad).is_err(), "units {bad:?}");
        }
        for bad in ["0", "-0.1", "NaN", "1.6"] {
            assert!(RATIO.parse(bad).is_err(), "ratio {bad:?}");
        }
        assert_eq!(RATIO.parse("1.5").ok(), Some(1.5));
        assert_eq!(RATIO.parse(" 0.45 ").ok(), Some(0.45));
        assert!(SEGMENTS.parse("0").is_err());
        assert!(SEGMENTS.parse("1000001").is_err());
        assert_eq!(SEGMENTS.parse("1000000").ok(), Some(1_000_000));
        assert!(WORKERS.parse("0").is_err());
        assert!(STALE_LOCK_MINUTES.parse("0").is_err());
        assert!(SECONDS.parse("0").is_err());
        assert!(UNITS.check(f64::NAN).is_err());
    }

    #[test]
    fn messages_name_the_setting_and_the_range() {
        let e = SEGMENTS.check(0).unwrap_err().to_string();
        assert!(
            e.starts_with("scan segments: 0 is out of range (1 <= value <= 1000000"),
            "{e}"
        );
        let e = RATIO.parse("0").unwrap_err().to_string();
        assert!(e.contains("\"0\" is out of range (0 < value <= 1.5"), "{e}");
    }
}
