//! Values kept out of memory, in order, each read back when it is asked for.
//!
//! What a run holds per table (its description, its plan, its report) is about a kilobyte,
//! and it is needed all run long: a fleet of ten thousand tables would hold tens of
//! megabytes of it, and more while the run's documents that list every table are written.
//! A [`Spool`] keeps each value as its JSON: in memory up to [`SPILL_BYTES`], then in an
//! unnamed temporary file, which the system removes when the run ends however it ends. In
//! memory stays 16 bytes a value (where it is). Where no temporary file can be made, the
//! values stay in memory, said in the log.

use std::io::Write;
use std::marker::PhantomData;
use std::os::unix::fs::FileExt;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Error, Result};

/// Bytes of values kept in memory before they go to a temporary file: a run of a few
/// tables (and every test) makes no file.
pub const SPILL_BYTES: usize = 256 * 1024;

/// Values of `T`, in the order pushed.
pub struct Spool<T> {
    what: &'static str,
    kept: Mutex<Kept>,
    /// Where each value's JSON is: offset and length.
    index: Vec<(u64, u32)>,
    /// Whether it may go to a temporary file.
    spills: bool,
    of: PhantomData<fn() -> T>,
}

enum Kept {
    Memory(Vec<u8>),
    /// `len` bytes in the file, then `tail` (written once it holds [`TAIL_BYTES`]: a value
    /// is one write call in many, not one).
    File {
        file: std::fs::File,
        len: u64,
        tail: Vec<u8>,
    },
}

/// Bytes of values gathered before they are written to the file.
const TAIL_BYTES: usize = 64 * 1024;

impl<T> std::fmt::Debug for Spool<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spool")
            .field("what", &self.what)
            .field("values", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl<T: Serialize + DeserializeOwned> Spool<T> {
    /// An empty spool of `what` (named in its errors: "table reports").
    pub fn new(what: &'static str) -> Self {
        Self {
            what,
            kept: Mutex::new(Kept::Memory(Vec::new())),
            index: Vec::new(),
            spills: true,
            of: PhantomData,
        }
    }

    /// An empty spool that never goes to a file (values read from a document already in
    /// memory, and tests).
    pub fn in_memory(what: &'static str) -> Self {
        Self {
            spills: false,
            ..Self::new(what)
        }
    }

    /// Add a value at the end.
    pub fn push(&mut self, value: &T) -> Result<()> {
        let body = serde_json::to_vec(value).expect("spooled values serialize");
        let len = u32::try_from(body.len()).map_err(|_| {
            Error::Failed(format!(
                "keeping {}: a value of {} bytes",
                self.what,
                body.len()
            ))
        })?;
        let what = self.what;
        let spills = self.spills;
        let kept = self.kept.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Kept::Memory(bytes) = kept {
            if spills && bytes.len() + body.len() > SPILL_BYTES {
                match spilled(bytes) {
                    Ok(file) => *kept = file,
                    Err(e) => {
                        tracing::debug!("no temporary file for {what} ({e}): kept in memory");
                        self.spills = false;
                    }
                }
            }
        }
        let at = match kept {
            Kept::File { file, len, tail } => {
                let at = *len + tail.len() as u64;
                tail.extend_from_slice(&body);
                if tail.len() >= TAIL_BYTES {
                    if let Err(e) = file.write_all_at(tail, *len) {
                        // As if not pushed: the values before it still read back.
                        tail.truncate(tail.len() - body.len());
                        return Err(file_error(what, e));
                    }
                    *len += tail.len() as u64;
                    tail.clear();
                }
                at
            }
            Kept::Memory(bytes) => {
                bytes.extend_from_slice(&body);
                (bytes.len() - body.len()) as u64
            }
        };
        self.index.push((at, len));
        Ok(())
    }

    /// How many values.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The `i`th value, as it was pushed.
    pub fn get(&self, i: usize) -> Result<T> {
        let (at, len) = self.index[i];
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let read = |body: &[u8]| {
            serde_json::from_slice(body).map_err(|e| {
                Error::Failed(format!("{} kept aside read back wrong: {e}", self.what))
            })
        };
        match &mut *kept {
            Kept::File {
                tail, len: written, ..
            } if at >= *written => {
                let from = (at - *written) as usize;
                read(&tail[from..from + len as usize])
            }
            Kept::File { file, .. } => {
                let mut body = vec![0; len as usize];
                file.read_exact_at(&mut body, at)
                    .map_err(|e| file_error(self.what, e))?;
                read(&body)
            }
            Kept::Memory(bytes) => read(&bytes[at as usize..at as usize + len as usize]),
        }
    }

    /// Every value, in order, each read back as it comes.
    pub fn iter(&self) -> impl Iterator<Item = Result<T>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Every value, in order, in memory.
    pub fn to_vec(&self) -> Result<Vec<T>> {
        self.iter().collect()
    }

    /// Whether its values are in a temporary file.
    pub fn in_file(&self) -> bool {
        matches!(
            *self.kept.lock().unwrap_or_else(|p| p.into_inner()),
            Kept::File { .. }
        )
    }
}

/// A temporary file holding `bytes`.
fn spilled(bytes: &[u8]) -> std::io::Result<Kept> {
    let mut file = tempfile::tempfile()?;
    file.write_all(bytes)?;
    Ok(Kept::File {
        file,
        len: bytes.len() as u64,
        tail: Vec::with_capacity(TAIL_BYTES),
    })
}

fn file_error(what: &str, e: std::io::Error) -> Error {
    Error::Failed(format!("keeping {what} in a temporary file (TMPDIR): {e}"))
}

/// A spool's values are written as a JSON array, each read back in turn (a fleet's
/// documents are never whole in memory).
impl<T: Serialize + DeserializeOwned> Serialize for Spool<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_each(s, self.len(), self.iter())
    }
}

/// `len` values read back one at a time, as a JSON array (a value that cannot be read back
/// fails the serialization).
pub fn serialize_each<S: serde::Serializer, T: Serialize>(
    s: S,
    len: usize,
    values: impl Iterator<Item = Result<T>>,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::{Error as _, SerializeSeq};
    let mut seq = s.serialize_seq(Some(len))?;
    for value in values {
        seq.serialize_element(&value.map_err(S::Error::custom)?)?;
    }
    seq.end()
}

/// A JSON array read into a spool one value at a time.
impl<'de, T: Serialize + DeserializeOwned> serde::Deserialize<'de> for Spool<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Values<T>(PhantomData<fn() -> T>);
        impl<'de, T: Serialize + DeserializeOwned> serde::de::Visitor<'de> for Values<T> {
            type Value = Spool<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<Spool<T>, A::Error> {
                use serde::de::Error as _;
                let mut spool = Spool::new("the values of a document read");
                while let Some(value) = seq.next_element::<T>()? {
                    spool.push(&value).map_err(A::Error::custom)?;
                }
                Ok(spool)
            }
        }
        d.deserialize_seq(Values(PhantomData))
    }
}

impl<T: Serialize + DeserializeOwned> FromIterator<T> for Spool<T> {
    /// Values in memory (never spilled: they were in memory already).
    fn from_iter<I: IntoIterator<Item = T>>(values: I) -> Self {
        let mut spool = Spool::in_memory("values");
        for v in values {
            spool.push(&v).expect("in memory");
        }
        spool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn values_read_back_as_pushed_in_memory_and_past_the_spill(
            // Short texts (escapes, non-ASCII) repeated to up to ~4 KB: from none to well
            // past the spill.
            parts in proptest::collection::vec(("[a-z\"\\\n\u{e9}\u{1F600}]{0,8}", 0usize..500), 0..300),
        ) {
            let values: Vec<String> = parts.iter().map(|(s, n)| s.repeat(*n)).collect();
            let mut spool = Spool::new("strings");
            for v in &values {
                spool.push(v).unwrap();
            }
            let total: usize = values.iter().map(|v| serde_json::to_vec(v).unwrap().len()).sum();
            prop_assert_eq!(spool.in_file(), total > SPILL_BYTES);
            prop_assert_eq!(spool.len(), values.len());
            prop_assert_eq!(&spool.to_vec().unwrap(), &values);
            // Out of order, and again: each read is its own.
            if let Some(last) = values.last() {
                prop_assert_eq!(&spool.get(values.len() - 1).unwrap(), last);
                prop_assert_eq!(&spool.get(0).unwrap(), &values[0]);
            }
            // As a JSON array, both ways.
            let json = serde_json::to_string(&spool).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&values).unwrap());
            let back: Spool<String> = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(back.to_vec().unwrap(), values);
        }
    }

    #[test]
    fn an_in_memory_spool_never_makes_a_file() {
        let mut spool = Spool::in_memory("strings");
        let big = "x".repeat(100_000);
        for _ in 0..10 {
            spool.push(&big).unwrap();
        }
        assert!(!spool.in_file());
        assert_eq!(spool.get(9).unwrap(), big);
    }
}
