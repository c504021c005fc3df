//! What an import's check saw of each line of its export, so that the writing pass does
//! not check those lines again.
//!
//! An import reads every data file twice: first to check it before the target is touched,
//! then to write it. A DynamoDB JSON line's item is checked by turning it into the API's
//! wire JSON ([`wire::checked_item`](crate::wire::checked_item)). For ddbx's own exports
//! that wire JSON is the line's own bytes. For such a line the check records the line's
//! length and the item's size, and the writing pass sends the line's item as it is, with
//! that size, parsing nothing again (why: checking lines was 39 % of an import's CPU, half
//! of it the second time; without the second, a validating import of a million items took
//! 3.29 s of CPU instead of 3.82: docs/BENCHMARKS.md, issue 26).
//!
//! Every other line is checked again, as before. A line whose length is not the one the
//! check saw, or a file with more or fewer lines, fails the file: it changed after the
//! check. The file's MD5, checked at its end, says so too.
//!
//! The records wait in an unnamed temporary file, about four bytes a line; those of the
//! file being read are in memory. Where no such file can be made, nothing is recorded, and
//! every line is checked twice.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::{Arc, Mutex};

use crate::item::key::KeySchema;
use crate::{Error, Result};

/// The records of an export's files, for the writing pass.
pub struct Vouched {
    spill: Mutex<Spill>,
    /// The key the lines were checked against.
    key: Option<Arc<KeySchema>>,
}

/// The records, and where each file's are in them.
struct Spill {
    file: std::fs::File,
    /// Offset and length of each file's records (by the file's URL).
    files: HashMap<String, (u64, usize)>,
}

impl std::fmt::Debug for Vouched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vouched")
            .field(
                "files",
                &self.spill.lock().map(|s| s.files.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

impl Vouched {
    /// Records of lines checked against `key`; `None` when no temporary file can be made.
    pub fn new(key: Option<Arc<KeySchema>>) -> Option<Self> {
        match tempfile::tempfile() {
            Ok(file) => Some(Self {
                spill: Mutex::new(Spill {
                    file,
                    files: HashMap::new(),
                }),
                key,
            }),
            Err(e) => {
                tracing::debug!(
                    "no temporary file for the check's records ({e}): every line is checked twice"
                );
                None
            }
        }
    }

    /// Whether lines checked against this key may be sent as they were checked to a
    /// table whose items must carry `key`.
    pub fn checked_against(&self, key: Option<&KeySchema>) -> bool {
        self.key.as_deref() == key
    }

    /// Keep the records of the file at `url`.
    pub fn keep(&self, url: &str, lines: Lines) -> Result<()> {
        let mut spill = self.spill.lock().unwrap_or_else(|p| p.into_inner());
        let Spill { file, files } = &mut *spill;
        let at = file
            .seek(SeekFrom::End(0))
            .and_then(|at| file.write_all(&lines.bytes).map(|()| at))
            .map_err(spill_error)?;
        files.insert(url.to_string(), (at, lines.bytes.len()));
        Ok(())
    }

    /// The records of the file at `url`, if it was checked.
    pub fn lines(&self, url: &str) -> Result<Option<Lines>> {
        let mut spill = self.spill.lock().unwrap_or_else(|p| p.into_inner());
        let Spill { file, files } = &mut *spill;
        let Some(&(at, len)) = files.get(url) else {
            return Ok(None);
        };
        let mut bytes = vec![0; len];
        file.seek(SeekFrom::Start(at))
            .and_then(|_| file.read_exact(&mut bytes))
            .map_err(spill_error)?;
        Ok(Some(Lines { bytes, at: 0 }))
    }
}

fn spill_error(e: std::io::Error) -> Error {
    Error::Failed(format!("the temporary file of the check's records: {e}"))
}

/// What the check saw of each line of one file, in order: its length, and the item's size
/// when the line may be sent as it is.
#[derive(Debug, Default, Clone)]
pub struct Lines {
    bytes: Vec<u8>,
    at: usize,
}

/// One line as the check saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Line {
    /// Its length, its line end included.
    pub len: usize,
    /// The item's size, when its bytes are the wire JSON the check made of them.
    pub as_is: Option<usize>,
}

impl Lines {
    /// Record the next line.
    pub fn push(&mut self, line: Line) {
        put_varint(&mut self.bytes, line.len as u64);
        let size = line.as_is.map_or(0, |s| (s as u64) << 1 | 1);
        put_varint(&mut self.bytes, size);
    }

    /// The next line, or `None` after the last.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<Line> {
        let len = take_varint(&self.bytes, &mut self.at)?;
        let size = take_varint(&self.bytes, &mut self.at)?;
        Some(Line {
            len: len as usize,
            as_is: (size & 1 == 1).then_some((size >> 1) as usize),
        })
    }

    /// Whether every line recorded was taken.
    pub fn is_done(&self) -> bool {
        self.at >= self.bytes.len()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn take_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// The item of a DynamoDB JSON line `{"Item":{...}}` as its bytes stand (its line end
/// left out), or `None` for a line not written exactly so.
pub fn item_of(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.strip_prefix(b"{\"Item\":")?.strip_suffix(b"}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lines_read_back_as_recorded(
            lines in prop::collection::vec((0usize..10_000_000, prop::option::of(0usize..500_000)), 0..200)
        ) {
            let mut rec = Lines::default();
            for &(len, as_is) in &lines {
                rec.push(Line { len, as_is });
            }
            let vouched = Vouched::new(None).unwrap();
            vouched.keep("f1", Lines::default()).unwrap();
            vouched.keep("f2", rec).unwrap();
            let mut back = vouched.lines("f2").unwrap().unwrap();
            for &(len, as_is) in &lines {
                prop_assert_eq!(back.next(), Some(Line { len, as_is }));
            }
            prop_assert!(back.is_done());
            prop_assert_eq!(back.next(), None);
            prop_assert!(vouched.lines("f1").unwrap().unwrap().is_done());
            prop_assert!(vouched.lines("f3").unwrap().is_none());
        }
    }

    #[test]
    fn an_item_is_taken_from_a_line_written_exactly_so() {
        assert_eq!(
            item_of(b"{\"Item\":{\"k\":{\"S\":\"a\"}}}\n"),
            Some(&b"{\"k\":{\"S\":\"a\"}}"[..])
        );
        assert_eq!(item_of(b"{\"Item\":{}}\r\n"), Some(&b"{}"[..]));
        assert_eq!(item_of(b"{\"Item\":{}}"), Some(&b"{}"[..]));
        assert_eq!(item_of(b"{ \"Item\":{}}\n"), None);
        assert_eq!(item_of(b"{\"item\":{}}\n"), None);
        assert_eq!(item_of(b"{\"Item\":{}} \n"), None);
    }

    /// A data file's lines, checked with records kept, then read for writing with and
    /// without them: the same items, sizes and bytes, most lines taken as they are; then
    /// the file changed after its check fails where it changed.
    #[tokio::test]
    async fn vouched_lines_are_written_as_the_lines_checked_again_would_be() {
        use crate::format::reader::ItemReader;
        use crate::format::source::SourceFile;
        use crate::plan::DataFormat;
        use proptest::strategy::ValueTree;
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut text = Vec::new();
        for _ in 0..300 {
            let item = crate::item::test_support::item()
                .new_tree(&mut runner)
                .unwrap()
                .current();
            crate::item::dynamodb_json::encode_line(&item, &mut text);
        }
        // Lines ddbx does not write so: names out of order, an escape, spaces, CRLF.
        text.extend_from_slice(b"{\"Item\":{\"z\":{\"S\":\"1\"},\"a\":{\"N\":\"2\"}}}\n");
        text.extend_from_slice(b"{\"Item\":{\"k\":{\"S\":\"\\u0041\"}}}\n");
        text.extend_from_slice(b"{ \"Item\" : {\"k\":{\"N\":\"1.50\"}} }\r\n");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("d.json"), &text).unwrap();
        let loc = crate::store::Storage::default()
            .open(dir.path().to_str().unwrap())
            .unwrap();
        let file = SourceFile {
            path: loc.join("d.json"),
            url: "file:///d.json".into(),
            md5: None,
            items: None,
        };
        let open = || ItemReader::open(&loc, &file, DataFormat::DynamodbJson);

        let mut r = open().await.unwrap().recording();
        let mut scratch = Vec::new();
        while r.check_next(&mut scratch).await.unwrap() {}
        let lines = r.take_record().unwrap();
        let write = |vouched: Option<Lines>| async {
            let mut r = open().await.unwrap().vouched(vouched);
            let mut out = Vec::new();
            let mut records = Vec::new();
            while let Some(rec) = r.next_wire(&mut out).await? {
                records.push((rec, std::mem::take(&mut out)));
            }
            Ok::<_, Error>(records)
        };
        let checked_again = write(None).await.unwrap();
        let as_checked = write(Some(lines.clone())).await.unwrap();
        assert_eq!(as_checked.len(), 303);
        assert_eq!(as_checked, checked_again);
        let mut seen = lines.clone();
        let taken = std::iter::from_fn(|| seen.next())
            .filter(|l| l.as_is.is_some())
            .count();
        assert!(taken >= 290, "{taken} of 303 lines taken as they are");

        // Changed after the check: a line of another length, or lines added or gone.
        let third = text
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .nth(1)
            .unwrap()
            .0
            + 1;
        let cases = [
            (
                [
                    &text[..third],
                    b"{\"Item\":{\"k\":{\"S\":\"x\"}}}\n",
                    &text[third..],
                ]
                .concat(),
                "line 3",
                "not the one checked",
            ),
            (
                [&text[..], b"{\"Item\":{\"k\":{\"S\":\"x\"}}}\n"].concat(),
                "line 304",
                "more lines",
            ),
            (text[..third].to_vec(), "line 2", "fewer lines"),
        ];
        for (changed, line, why) in cases {
            std::fs::write(dir.path().join("d.json"), &changed).unwrap();
            let err = write(Some(lines.clone())).await.unwrap_err().to_string();
            assert!(
                err.contains("file:///d.json, ") && err.contains(line),
                "{err}"
            );
            assert!(
                err.contains("changed after the import checked it") && err.contains(why),
                "{err}"
            );
        }
    }

    #[test]
    fn a_key_checked_is_the_key_written() {
        let key = Arc::new(crate::item::test_support::id_sk());
        let v = Vouched::new(Some(key.clone())).unwrap();
        assert!(v.checked_against(Some(&key)));
        assert!(!v.checked_against(None));
        assert!(Vouched::new(None).unwrap().checked_against(None));
    }
}
