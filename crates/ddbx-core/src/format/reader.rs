//! Reading a data file as a stream of items: never whole in memory, decompressed on the
//! fly, every line decoded and validated (against the target's key too, when given), and
//! the stored bytes' MD5 checked at the end.
//!
//! What a file inflates to is bounded by what it holds: reading stops at the first item
//! past its manifest's count, at a line longer than [`MAX_LINE`] or padded past
//! [`MAX_LINE_PER_ITEM_BYTE`] times its item, and past [`MAX_BLANK_BYTES`] of blank lines,
//! so a small compressed file cannot make ddbx read terabytes.

use std::sync::{Arc, Mutex};

use async_compression::tokio::bufread::{GzipDecoder, ZlibDecoder, ZstdDecoder};
use base64::Engine as _;
use futures::TryStreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio_util::io::StreamReader;

use crate::format::compress::detect;
use crate::format::source::SourceFile;
use crate::format::vouch::{self, Line, Lines};
use crate::item::json::{write_map, UPPER_KEYS};
use crate::item::key::KeySchema;
use crate::item::validate::item_size;
use crate::item::{self, Change, Item, Record};
use crate::plan::{Compression, DataFormat};
use crate::store::Location;
use crate::wire;
use crate::{Error, Result};

/// The longest line accepted: a 400 KB item of control characters, escaped, is ~2.4 MB.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// The most bytes of a line per byte of its item (and [`LINE_SLACK`] more): a `NULL` or
/// an empty map, spelt out, is about ten times its size; more is padding.
const MAX_LINE_PER_ITEM_BYTE: usize = 16;
/// Bytes every line may have beyond [`MAX_LINE_PER_ITEM_BYTE`] times its item.
const LINE_SLACK: usize = 4096;
/// The most bytes of blank lines a data file may hold (writers leave none, or a last one).
const MAX_BLANK_BYTES: u64 = 1024 * 1024;

/// One record read by [`ItemReader::next_wire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireRecord {
    /// Its line.
    pub line: u64,
    /// A key to delete (replaying a change file), not an item to put.
    pub delete: bool,
    /// Its size by DynamoDB's rules.
    pub size: usize,
}

/// Reads one data file, item by item.
pub struct ItemReader {
    url: String,
    format: DataFormat,
    lines: Box<dyn AsyncBufRead + Send + Unpin>,
    md5: Arc<Mutex<Md5>>,
    expected_md5: Option<String>,
    expected_items: Option<u64>,
    line_no: u64,
    items: u64,
    blank_bytes: u64,
    buf: Vec<u8>,
    changes: bool,
    key: Option<Arc<KeySchema>>,
    last_key: Option<u64>,
    /// What [`check_next`](Self::check_next) saw of each line, when asked to record it.
    recording: Option<Lines>,
    /// What the check saw of each line, for [`next_wire`](Self::next_wire).
    vouched: Option<Lines>,
}

impl std::fmt::Debug for ItemReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItemReader")
            .field("url", &self.url)
            .field("line", &self.line_no)
            .finish()
    }
}

impl ItemReader {
    /// Open `file` of `loc`'s store, in `format`.
    pub async fn open(loc: &Location, file: &SourceFile, format: DataFormat) -> Result<Self> {
        let url = file.url.clone();
        let got = loc.store.get(&file.path).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::Corrupt {
                file: url.clone(),
                message: "data file listed in the manifest is missing".into(),
            },
            e => Error::store(&url, e),
        })?;
        let md5 = Arc::new(Mutex::new(Md5::new()));
        let hasher = md5.clone();
        let stream = crate::store::stream_of(got)
            .inspect_ok(move |chunk| hasher.lock().unwrap().update(chunk))
            .map_err(std::io::Error::other);
        let mut raw = BufReader::with_capacity(256 * 1024, StreamReader::new(stream));
        let head = raw
            .fill_buf()
            .await
            .map_err(|e| io_error(&url, e))?
            .to_vec();
        let name = file.path.filename().unwrap_or_default().to_string();
        // Hadoop's other codecs, by the extension Hadoop gives them: zlib (its default
        // codec, `.deflate`) is read; the others are refused by name, never read as text.
        if let Some(codec) = [".bz2", ".snappy", ".lz4", ".lzo", ".br"]
            .iter()
            .find(|e| name.ends_with(*e))
        {
            return Err(Error::Corrupt {
                file: url,
                message: format!(
                    "compressed with {}, which ddbx does not read (gzip, zstd, Hadoop's .deflate and uncompressed files are read)",
                    codec.trim_start_matches('.')
                ),
            });
        }
        if name.ends_with(".deflate") {
            return Ok(Self::with_lines(
                file,
                url,
                format,
                md5,
                Box::new(ZlibDecoder::new(raw)),
            ));
        }
        let decoded: Box<dyn AsyncRead + Send + Unpin> = match detect(&name, &head) {
            Compression::Gzip => {
                let mut d = GzipDecoder::new(raw);
                d.multiple_members(true);
                Box::new(d)
            }
            Compression::Zstd => {
                let mut d = ZstdDecoder::new(raw);
                d.multiple_members(true);
                Box::new(d)
            }
            Compression::None => Box::new(raw),
        };
        Ok(Self::with_lines(file, url, format, md5, decoded))
    }

    fn with_lines(
        file: &SourceFile,
        url: String,
        format: DataFormat,
        md5: Arc<Mutex<Md5>>,
        decoded: Box<dyn AsyncRead + Send + Unpin>,
    ) -> Self {
        Self {
            url,
            format,
            lines: Box::new(BufReader::with_capacity(256 * 1024, decoded)),
            md5,
            expected_md5: file.md5.clone(),
            expected_items: file.items,
            line_no: 0,
            items: 0,
            blank_bytes: 0,
            buf: Vec::with_capacity(4096),
            changes: false,
            key: None,
            last_key: None,
            recording: None,
            vouched: None,
        }
    }

    /// Have [`check_next`](Self::check_next) record what it sees of each line, for
    /// [`take_record`](Self::take_record) (`format::vouch`).
    pub fn recording(mut self) -> Self {
        self.recording = Some(Lines::default());
        self
    }

    /// What [`check_next`](Self::check_next) recorded.
    pub fn take_record(&mut self) -> Option<Lines> {
        self.recording.take()
    }

    /// Have [`next_wire`](Self::next_wire) send the lines the check recorded as sendable as
    /// they are, and fail the file where a line is not the one the check saw.
    pub fn vouched(mut self, lines: Option<Lines>) -> Self {
        self.vouched = lines;
        self
    }

    /// Check every item against `key` (its attributes present, typed, within limits), and
    /// every delete of a change file to be exactly a key.
    pub fn with_key(mut self, key: Option<Arc<KeySchema>>) -> Self {
        self.key = key;
        self
    }

    /// The file's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Read the lines as an incremental export's changes ([`next_record`](Self::next_record)
    /// then gives puts and deletes).
    pub fn changes(mut self, changes: bool) -> Self {
        self.changes = changes;
        self
    }

    /// The next item and its line number, or `None` at the end (after checking the
    /// file's MD5 and item count against its manifest). A change file's deletes are errors
    /// here: read those with [`next_record`](Self::next_record).
    pub async fn next(&mut self) -> Result<Option<(u64, Item)>> {
        match self.next_record().await? {
            None => Ok(None),
            Some((line, Record::Put(item))) => Ok(Some((line, item))),
            Some((line, Record::Delete(_))) => Err(Error::Corrupt {
                file: format!("{}, line {line}", self.url),
                message: "a delete of an incremental export, where items were expected".into(),
            }),
        }
    }

    /// The next record (an item to put, or for a change file, a delete) and its line.
    pub async fn next_record(&mut self) -> Result<Option<(u64, Record)>> {
        if !self.next_line().await? {
            return Ok(None);
        }
        let record = self.decode()?;
        self.check_record(&record)?;
        let (Record::Put(m) | Record::Delete(m)) = &record;
        self.check_padding(item_size(m))?;
        self.items += 1;
        Ok(Some((self.line_no, record)))
    }

    /// The next change of a change file (an incremental export's), with its line: the
    /// item's keys, what the window left of it (none: deleted), and when it was written.
    pub async fn next_change(&mut self) -> Result<Option<(u64, Change)>> {
        if !self.next_line().await? {
            return Ok(None);
        }
        let change = match self.format {
            DataFormat::DynamodbJson => item::dynamodb_json::decode_change(&self.buf),
            DataFormat::Ion => item::ion::decode_change(&self.buf),
            other => {
                return Err(Error::Corrupt {
                    file: self.url.clone(),
                    message: format!("a {} file holds no changes", other.name()),
                })
            }
        }
        .map_err(|source| Error::Item {
            file: self.url.clone(),
            line: self.line_no,
            source,
        })?;
        self.items += 1;
        Ok(Some((self.line_no, change)))
    }

    /// The next record as DynamoDB's wire JSON, for BatchWriteItem: the item to put (or
    /// the key to delete) appended to `out`, checked as [`next_record`](Self::next_record)
    /// checks it. A DynamoDB JSON item goes from the line to `out` in one pass, building
    /// no item ([`wire::checked_item`], and why); anything else, or a line that reader
    /// leaves, is decoded and written out.
    pub async fn next_wire(&mut self, out: &mut Vec<u8>) -> Result<Option<WireRecord>> {
        if !self.next_line().await? {
            return match self.vouched.as_ref().is_some_and(|v| !v.is_done()) {
                true => Err(self.changed("it has fewer lines")),
                false => Ok(None),
            };
        }
        if let Some(v) = self.vouched.as_mut() {
            match v.next() {
                Some(Line { len, as_is }) if len == self.buf.len() => {
                    if let Some((size, item)) = as_is.zip(vouch::item_of(&self.buf)) {
                        out.extend_from_slice(item);
                        self.items += 1;
                        return Ok(Some(WireRecord {
                            line: self.line_no,
                            delete: false,
                            size,
                        }));
                    }
                }
                Some(_) => return Err(self.changed("this line is not the one checked")),
                None => return Err(self.changed("it has more lines")),
            }
        }
        let key = self.key.as_deref();
        let record = match self
            .reads_wire()
            .then(|| wire::checked_item(&self.buf, out, key))
        {
            Some(Ok(size)) => WireRecord {
                line: self.line_no,
                delete: false,
                size,
            },
            _ => {
                let record = self.decode()?;
                self.check_record(&record)?;
                let (delete, map) = match record {
                    Record::Put(item) => (false, item),
                    Record::Delete(key) => (true, key),
                };
                write_map(&map, &UPPER_KEYS, out);
                WireRecord {
                    line: self.line_no,
                    delete,
                    size: item_size(&map),
                }
            }
        };
        self.check_padding(record.size)?;
        self.items += 1;
        Ok(Some(record))
    }

    /// Reads and checks the next record as [`next_wire`](Self::next_wire) does, keeping
    /// nothing but, given a key, the digest of the record's key
    /// ([`last_key`](Self::last_key)); `scratch` is working space. `false` at the end.
    pub async fn check_next(&mut self, scratch: &mut Vec<u8>) -> Result<bool> {
        if !self.next_line().await? {
            return Ok(false);
        }
        scratch.clear();
        let fast = match (self.reads_wire(), self.key.as_deref()) {
            (false, _) => None,
            (true, Some(key)) => wire::checked_keyed_item(&self.buf, scratch, key)
                .ok()
                .map(|(size, digest)| (size, Some(digest))),
            (true, None) => wire::checked_item(&self.buf, scratch, None)
                .ok()
                .map(|size| (size, None)),
        };
        let size = match fast {
            Some((size, digest)) => {
                self.last_key = digest;
                size
            }
            None => {
                let record = self.decode()?;
                self.check_record(&record)?;
                let (Record::Put(m) | Record::Delete(m)) = &record;
                self.last_key = self.key.as_deref().and_then(|k| k.item_digest(m));
                item_size(m)
            }
        };
        self.check_padding(size)?;
        if let Some(rec) = self.recording.as_mut() {
            let len = self.buf.len();
            let as_is = fast.is_some() && vouch::item_of(&self.buf) == Some(&scratch[..]);
            rec.push(Line {
                len,
                as_is: as_is.then_some(size),
            });
        }
        self.items += 1;
        Ok(true)
    }

    /// The file changed after the check: `why`.
    fn changed(&self, why: &str) -> Error {
        Error::Corrupt {
            file: format!("{}, line {}", self.url, self.line_no),
            message: format!("the file changed after the import checked it ({why}); nothing from this line on was written"),
        }
    }

    /// The digest of the key of the record [`check_next`](Self::check_next) read last
    /// (given a key).
    pub fn last_key(&self) -> Option<u64> {
        self.last_key
    }

    /// A record against the key, when one is given: an item carries it, a delete is it.
    fn check_record(&self, record: &Record) -> Result<()> {
        let Some(key) = self.key.as_deref() else {
            return Ok(());
        };
        match record {
            Record::Put(item) => key.check_item(item),
            Record::Delete(k) => key.check_key(k),
        }
        .map_err(|source| Error::Item {
            file: self.url.clone(),
            line: self.line_no,
            source,
        })
    }

    /// A line no longer than its item justifies (see [`MAX_LINE_PER_ITEM_BYTE`]).
    fn check_padding(&self, item_bytes: usize) -> Result<()> {
        let allowed = item_bytes
            .saturating_mul(MAX_LINE_PER_ITEM_BYTE)
            .saturating_add(LINE_SLACK);
        if self.buf.len() > allowed {
            return Err(Error::Corrupt {
                file: format!("{}, line {}", self.url, self.line_no),
                message: format!(
                    "a line of {} bytes for an item of {item_bytes}: padded far past what any writer writes",
                    self.buf.len()
                ),
            });
        }
        Ok(())
    }

    /// Whether a line's item goes to wire JSON in one pass: DynamoDB JSON items.
    fn reads_wire(&self) -> bool {
        matches!(self.format, DataFormat::DynamodbJson) && !self.changes
    }

    /// Reads the next line that is not blank into `buf`: `false` at the end, after
    /// checking the file's MD5 and item count.
    async fn next_line(&mut self) -> Result<bool> {
        loop {
            self.buf.clear();
            let n = (&mut self.lines)
                .take(MAX_LINE as u64 + 1)
                .read_until(b'\n', &mut self.buf)
                .await
                .map_err(|e| io_error(&self.url, e))?;
            if n == 0 {
                self.check_end()?;
                return Ok(false);
            }
            self.line_no += 1;
            if self.buf.len() > MAX_LINE {
                return Err(Error::Corrupt {
                    file: format!("{}, line {}", self.url, self.line_no),
                    message: format!("line longer than {MAX_LINE} bytes"),
                });
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                self.blank_bytes += n as u64;
                if self.blank_bytes > MAX_BLANK_BYTES {
                    return Err(Error::Corrupt {
                        file: format!("{}, line {}", self.url, self.line_no),
                        message: format!(
                            "more than {MAX_BLANK_BYTES} bytes of blank lines: not a data file"
                        ),
                    });
                }
                continue;
            }
            if let Some(expected) = self.expected_items.filter(|e| self.items >= *e) {
                return Err(Error::Corrupt {
                    file: format!("{}, line {}", self.url, self.line_no),
                    message: format!(
                        "more items than the {expected} its manifest lists (reading stopped here)"
                    ),
                });
            }
            return Ok(true);
        }
    }

    /// Decodes the line in `buf`.
    fn decode(&self) -> Result<Record> {
        let decoded = match (self.format, self.changes) {
            (DataFormat::DynamodbJson, true) => {
                item::dynamodb_json::decode_change(&self.buf).map(Change::into_record)
            }
            (DataFormat::Ion, true) => item::ion::decode_change(&self.buf).map(Change::into_record),
            (DataFormat::DynamodbJson, false) => {
                item::dynamodb_json::decode_line(&self.buf).map(Record::Put)
            }
            (DataFormat::Ion, false) => item::ion::decode_line(&self.buf).map(Record::Put),
            (DataFormat::Emr, _) => item::connector::decode_line(&self.buf).map(Record::Put),
            (DataFormat::DataPipeline, _) => {
                item::data_pipeline::decode_line(trim_newline(&self.buf)).map(Record::Put)
            }
        };
        decoded.map_err(|source| Error::Item {
            file: self.url.clone(),
            line: self.line_no,
            source,
        })
    }

    fn check_end(&self) -> Result<()> {
        if let Some(expected) = &self.expected_md5 {
            let got = base64::engine::general_purpose::STANDARD
                .encode(self.md5.lock().unwrap().clone().finalize());
            if &got != expected {
                return Err(Error::Corrupt {
                    file: self.url.clone(),
                    message: format!("MD5 {got} does not match the manifest's {expected}"),
                });
            }
        }
        if let Some(expected) = self.expected_items {
            if expected != self.items {
                return Err(Error::Corrupt {
                    file: self.url.clone(),
                    message: format!("{} items, but the manifest says {expected}", self.items),
                });
            }
        }
        Ok(())
    }
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn io_error(url: &str, e: std::io::Error) -> Error {
    Error::Corrupt {
        file: url.to_string(),
        message: format!("cannot read: {e}"),
    }
}
