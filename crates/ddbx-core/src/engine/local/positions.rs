//! The export's checkpoints, kept with the run's one checkpoint mechanism
//! (`checkpoint`) under `_export/<table>/`: per table, its export id and whether it is
//! complete; per segment, the data files durably written and the key the scan continues
//! after. A segment's checkpoint moves only when a data file is complete in storage, and
//! files roll only between pages, so the key always covers exactly the items in its files.

use serde::{Deserialize, Serialize};

use super::scan::{PageSink, ScanKey};
use crate::checkpoint::Checkpoints;
use crate::format::writer::DataFileWriter;
use crate::format::DataFile;
use crate::item::{dynamodb_json, Item};
use crate::wire::WirePage;
use crate::{Error, Result};

/// One table's export, as far as it got.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TablePosition {
    /// The AWS-style export id (its folder name), kept across resumes.
    pub export_id: String,
    /// Scan segments (a resume keeps the same split).
    pub segments: u32,
    /// Whether the manifests are written.
    pub complete: bool,
    /// Items, once complete.
    #[serde(default)]
    pub items: u64,
    /// Item bytes, once complete.
    #[serde(default)]
    pub bytes: u64,
    /// Data files, once complete.
    #[serde(default)]
    pub files: u64,
}

/// One segment, as far as it got.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SegmentPosition {
    /// Data files complete in storage, in order.
    pub files: Vec<DataFile>,
    /// Where the scan continues (DynamoDB JSON of the key), unless done.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub next_key: Option<String>,
    /// Whether the segment was read to its end and its last file stored.
    pub done: bool,
}

impl SegmentPosition {
    /// The key to continue after, decoded.
    pub fn start_key(&self, origin: &str) -> Result<Option<ScanKey>> {
        self.next_key
            .as_deref()
            .map(|k| {
                dynamodb_json::decode_line(k.as_bytes()).map_err(|e| Error::Corrupt {
                    file: origin.to_string(),
                    message: format!("bad scan key: {e}"),
                })
            })
            .transpose()
    }
}

/// The checkpoint name of a segment.
pub fn segment_name(segment: u32) -> String {
    format!("segment-{segment:05}.json")
}

/// A segment's sink: writes data files and records a checkpoint each time one is stored.
#[derive(Debug)]
pub struct CheckpointedSink {
    /// The data files.
    pub writer: DataFileWriter,
    /// Where checkpoints go.
    pub checkpoints: Checkpoints,
    /// This segment.
    pub segment: u32,
}

impl CheckpointedSink {
    /// Store the last file and record the segment as done; returns every file. Only the
    /// first segment leaves an empty file (when the layout wants one, so that an empty table
    /// has one): a million segments of a small table do not make a million files.
    pub async fn finish(self) -> Result<Vec<DataFile>> {
        let files = self.writer.finish(self.segment == 0).await?;
        let pos = SegmentPosition {
            files: files.clone(),
            next_key: None,
            done: true,
        };
        self.checkpoints
            .save(&segment_name(self.segment), &pos)
            .await?;
        Ok(files)
    }
}

impl CheckpointedSink {
    /// After a page: if a file was just stored (the writer has no open file), record how
    /// far that is.
    async fn after_page(&mut self, next: Option<&ScanKey>) -> Result<()> {
        if self.writer.is_between_files() && !self.writer.completed().is_empty() {
            if let Some(next) = next {
                let mut key = Vec::new();
                dynamodb_json::encode_line(next, &mut key);
                let pos = SegmentPosition {
                    files: self.writer.completed().to_vec(),
                    next_key: Some(
                        String::from_utf8(key)
                            .expect("JSON is UTF-8")
                            .trim_end()
                            .to_string(),
                    ),
                    done: false,
                };
                self.checkpoints
                    .save(&segment_name(self.segment), &pos)
                    .await?;
            }
        }
        Ok(())
    }
}

impl PageSink for CheckpointedSink {
    async fn page(&mut self, items: &[Item], sizes: &[u64], next: Option<&ScanKey>) -> Result<()> {
        PageSink::page(&mut self.writer, items, sizes, next).await?;
        self.after_page(next).await
    }

    fn room(&self) -> Option<u64> {
        Some(self.writer.room())
    }

    fn takes_lines(&self) -> bool {
        self.writer.takes_lines()
    }

    async fn lines(&mut self, page: &WirePage, next: Option<&ScanKey>) -> Result<()> {
        self.writer.lines(page, next).await?;
        self.after_page(next).await
    }
}
