//! Checkpoints: small JSON documents kept under a run (`_import/<table>/checkpoint.json`,
//! and likewise for other jobs) that say how far a job got, so that a killed or failed job
//! resumes where it stopped. One mechanism for every job: a job only decides what its
//! position is and when it is durable enough to record.

use bytes::Bytes;
use object_store::PutPayload;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::store::Location;
use crate::{Error, Result};

/// Where a job keeps its checkpoints.
#[derive(Debug, Clone)]
pub struct Checkpoints {
    dir: Location,
}

impl Checkpoints {
    /// Checkpoints of `job` (`_import`, `_export`) for `name` under the run root `run`.
    pub fn new(run: &Location, job: &str, name: &str) -> Self {
        Self {
            dir: run.child(&format!("{job}/{name}")),
        }
    }

    /// The folder, for messages.
    pub fn url(&self) -> String {
        self.dir.url()
    }

    /// Read a checkpoint, or `None` if there is none.
    pub async fn load<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        let path = self.dir.join(name);
        let url = self.dir.url_of(&path);
        match self.dir.get_optional(&path).await? {
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Corrupt {
                    file: url,
                    message: format!("not a ddbx checkpoint: {e}"),
                }),
            None => Ok(None),
        }
    }

    /// Record a checkpoint (a whole-object write: it is either the old or the new one).
    pub async fn save<T: Serialize>(&self, name: &str, value: &T) -> Result<()> {
        let path = self.dir.join(name);
        let body = serde_json::to_vec_pretty(value).expect("checkpoints serialize");
        self.dir
            .store
            .put(&path, PutPayload::from(Bytes::from(body)))
            .await
            .map_err(|e| Error::store(self.dir.url_of(&path), e))?;
        Ok(())
    }
}

/// How far an import of one table got: files fully written, and how far into the next.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ImportPosition {
    /// Data files (URLs) whose every item is written.
    pub files_done: Vec<String>,
    /// The first unfinished file: its URL and the lines (from the start) all written.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub partial: Option<PartialFile>,
    /// Items written, each counted once.
    pub items_written: u64,
    /// Whether the whole table is done.
    pub complete: bool,
    /// The table written into (a checkpoint of another table of the same name, dropped and
    /// created again since, is not this import's: it is ignored, and said so).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub target: Option<crate::table::TableIdentity>,
}

/// A file written up to a line.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PartialFile {
    /// The file's URL.
    pub file: String,
    /// Every line up to and including this one is written.
    pub lines_done: u64,
}
