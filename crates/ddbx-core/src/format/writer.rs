//! The rolling data-file writer: items in, compressed files out, each stored durably
//! (a single PUT, or a multipart upload for large files) before it is reported.
//!
//! Memory stays bounded: compressed output is held only up to one upload part, of
//! [`RollLimits::part_bytes`] for S3 and at most [`LOCAL_PART_BYTES`] for a local folder
//! (where parts have no minimum size), per open file.

use std::sync::Arc;

use base64::Engine as _;
use md5::{Digest, Md5};
use object_store::path::Path;
use object_store::{MultipartUpload, PutMode, PutOptions, PutPayload};

use crate::format::compress::Compressor;
use crate::format::{DataFile, TableLayout};
use crate::item::Item;
use crate::{Error, Result};

/// When a data file is closed and a new one started.
#[derive(Debug, Clone, Copy)]
pub struct RollLimits {
    /// Items per file at most.
    pub max_items: u64,
    /// Uncompressed bytes per file at most (the page that crosses it is the last).
    pub max_bytes: u64,
    /// Compressed bytes buffered before they are uploaded as one part (at least 5 MiB for
    /// S3; a local folder uses at most [`LOCAL_PART_BYTES`]).
    pub part_bytes: usize,
}

impl Default for RollLimits {
    fn default() -> Self {
        Self {
            max_items: 1_000_000,
            max_bytes: 1024 * 1024 * 1024,
            part_bytes: 8 * 1024 * 1024,
        }
    }
}

/// The largest part written to a local folder at once: a local file takes parts of any
/// size, and a smaller part holds less memory for each open file.
pub const LOCAL_PART_BYTES: usize = 1024 * 1024;

/// Compressed bytes a part may overshoot its size by before it is written: one taken
/// chunk of compressor output (the compressor is emptied every 64 KiB of output).
const PART_SLACK: usize = 128 * 1024;

/// Writes the data files of one segment.
#[derive(Debug)]
pub struct DataFileWriter {
    layout: Arc<TableLayout>,
    limits: RollLimits,
    current: Option<OpenFile>,
    done: Vec<DataFile>,
    line: Vec<u8>,
}

struct OpenFile {
    path: Path,
    compressor: Compressor,
    md5: Md5,
    items: u64,
    item_bytes: u64,
    raw_bytes: u64,
    stored_bytes: u64,
    buffer: Vec<u8>,
    upload: Option<Box<dyn MultipartUpload>>,
}

impl std::fmt::Debug for OpenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenFile")
            .field("path", &self.path)
            .field("items", &self.items)
            .finish()
    }
}

impl DataFileWriter {
    /// A writer for files of `layout` that carries on after `done`, files an earlier run
    /// completed (none for a new table).
    pub fn resume(layout: Arc<TableLayout>, mut limits: RollLimits, done: Vec<DataFile>) -> Self {
        if layout.table_dir.bucket.is_none() {
            limits.part_bytes = limits.part_bytes.min(LOCAL_PART_BYTES);
        }
        Self {
            layout,
            limits,
            current: None,
            done,
            line: Vec::with_capacity(4096),
        }
    }

    /// Add one item whose size by DynamoDB's rules is `item_bytes`.
    pub async fn push(&mut self, item: &Item, item_bytes: u64) -> Result<()> {
        let mut line = std::mem::take(&mut self.line);
        line.clear();
        self.layout.encode(item, &mut line);
        let r = self.push_line(&line, item_bytes).await;
        self.line = line;
        r
    }

    /// Whether this writer's lines are native DynamoDB JSON, so that
    /// [`DataFileWriter::push_line`] can take lines made elsewhere.
    pub fn writes_native_lines(&self) -> bool {
        self.layout.writes_native_lines()
    }

    /// Add one item already encoded as a line of this layout's format (`\n` included).
    pub async fn push_line(&mut self, line: &[u8], item_bytes: u64) -> Result<()> {
        let file = self
            .current
            .get_or_insert_with(|| OpenFile::new(&self.layout));
        file.compressor.write(line);
        file.items += 1;
        file.item_bytes += item_bytes;
        file.raw_bytes += line.len() as u64;
        if file.compressor.pending() >= 64 * 1024 {
            let out = file.compressor.take();
            if file.buffer.capacity() == 0 {
                // The whole part at once: growing by doubling could hold twice its size.
                file.buffer
                    .reserve_exact(self.limits.part_bytes + PART_SLACK);
            }
            file.append(&out);
        }
        if file.buffer.len() >= self.limits.part_bytes {
            self.flush_part().await?;
        }
        Ok(())
    }

    /// How many more items the open file takes (callers size their pages with it, so that
    /// files roll between pages and a checkpoint can name the page a file ends with).
    pub fn room(&self) -> u64 {
        let used = self.current.as_ref().map_or(0, |f| f.items);
        self.limits.max_items.saturating_sub(used).max(1)
    }

    /// After a page: close the open file if it is full. Returns whether a file was closed.
    pub async fn end_page(&mut self) -> Result<bool> {
        let full = self.current.as_ref().is_some_and(|f| {
            f.items >= self.limits.max_items || f.raw_bytes >= self.limits.max_bytes
        });
        if full {
            self.close().await?;
        }
        Ok(full)
    }

    /// Whether no file is open (every item pushed so far is in a stored file).
    pub fn is_between_files(&self) -> bool {
        self.current.is_none()
    }

    /// Files completed so far.
    pub fn completed(&self) -> &[DataFile] {
        &self.done
    }

    /// Close the open file and return every file written. With `leave_empty`, a layout
    /// that wants a data file even for no items gets an empty one if no item came.
    pub async fn finish(mut self, leave_empty: bool) -> Result<Vec<DataFile>> {
        if leave_empty
            && self.current.is_none()
            && self.done.is_empty()
            && self.layout.writes_empty_files()
        {
            self.current = Some(OpenFile::new(&self.layout));
        }
        self.close().await?;
        Ok(self.done)
    }

    /// Give up: abort an unfinished upload so that no partial object is left behind.
    pub async fn abort(mut self) {
        if let Some(mut f) = self.current.take() {
            if let Some(mut upload) = f.upload.take() {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(file = %f.path, error = %e, "could not abort a multipart upload");
                }
            }
        }
    }

    async fn flush_part(&mut self) -> Result<()> {
        let file = self.current.as_mut().expect("open");
        let store = &self.layout.table_dir.store;
        let url = || self.layout.table_dir.url_of(&file.path);
        if file.upload.is_none() {
            file.upload = Some(
                store
                    .put_multipart(&file.path)
                    .await
                    .map_err(|e| Error::store(url(), e))?,
            );
        }
        let part = PutPayload::from(std::mem::take(&mut file.buffer));
        file.upload
            .as_mut()
            .expect("started")
            .put_part(part)
            .await
            .map_err(|e| Error::store(url(), e))?;
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        let Some(mut file) = self.current.take() else {
            return Ok(());
        };
        let tail = std::mem::replace(&mut file.compressor, Compressor::none()).finish();
        file.append(&tail);
        let store = &self.layout.table_dir.store;
        let url = self.layout.table_dir.url_of(&file.path);
        let result = match file.upload.as_mut() {
            // Create-if-absent: a data file is never overwritten, whatever happens.
            None => store
                .put_opts(
                    &file.path,
                    PutPayload::from(std::mem::take(&mut file.buffer)),
                    PutOptions::from(PutMode::Create),
                )
                .await
                .map_err(|e| Error::store(&url, e)),
            Some(upload) => {
                let mut r = Ok(());
                if !file.buffer.is_empty() {
                    r = upload
                        .put_part(PutPayload::from(std::mem::take(&mut file.buffer)))
                        .await
                        .map_err(|e| Error::store(&url, e));
                }
                match r {
                    Ok(()) => upload.complete().await.map_err(|e| Error::store(&url, e)),
                    Err(e) => Err(e),
                }
            }
        };
        let put = match result {
            Ok(put) => put,
            Err(e) => {
                if let Some(mut upload) = file.upload.take() {
                    let _ = upload.abort().await;
                }
                return Err(e);
            }
        };
        self.done.push(DataFile {
            path: file.path.to_string(),
            items: file.items,
            md5: base64::engine::general_purpose::STANDARD.encode(file.md5.finalize()),
            etag: put.e_tag.map(|t| t.trim_matches('"').to_string()),
            stored_bytes: file.stored_bytes,
            item_bytes: file.item_bytes,
        });
        Ok(())
    }
}

impl OpenFile {
    fn new(layout: &TableLayout) -> Self {
        Self {
            path: layout.new_data_file(),
            compressor: Compressor::new(layout.compression),
            md5: Md5::new(),
            items: 0,
            item_bytes: 0,
            raw_bytes: 0,
            stored_bytes: 0,
            buffer: Vec::new(),
            upload: None,
        }
    }

    fn append(&mut self, compressed: &[u8]) {
        self.md5.update(compressed);
        self.stored_bytes += compressed.len() as u64;
        self.buffer.extend_from_slice(compressed);
    }
}
