//! Layouts of an exported table: where data files go, how they are named, encoded and
//! compressed, and which manifests describe them.
//!
//! - [`native`]: AWS "Export to S3" (`AWSDynamoDB/<id>/data/*.json.gz` or `*.ion.gz` + manifests);
//! - [`connector`]: the emr-dynamodb-connector (UUID-named files + `manifest` v3);
//! - [`hive`]: Hive and AWS Data Pipeline (`data/000000_0.gz`, no manifest; ddbx's
//!   `files.json` beside an EMR-engine export);
//! - [`chain`]: an app's chains of native exports (a full export, then incremental
//!   windows), and [`replay`]: what rebuilds a table from its chain as of a time.
//!
//! Item encoding lives in [`crate::item`]; this module adds files around it.

pub(crate) mod chain;
pub mod compress;
pub(crate) mod connector;
pub(crate) mod hive;
pub(crate) mod native;
pub(crate) mod reader;
pub(crate) mod replay;
pub(crate) mod select;
pub mod source;
pub(crate) mod vouch;
pub(crate) mod writer;

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::item::{self, Item};
use crate::plan::{Compression, DataFormat};
use crate::store::Location;

/// A data file once it is durably stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DataFile {
    /// Its path in the store.
    pub path: String,
    /// Items in it.
    pub items: u64,
    /// MD5 of the bytes as stored.
    pub md5: String,
    /// The store's ETag, when it gave one.
    pub etag: Option<String>,
    /// Size as stored.
    pub stored_bytes: u64,
    /// Size of its items by DynamoDB's rules.
    pub item_bytes: u64,
}

/// How one table's export is written.
#[derive(Debug, Clone)]
pub struct TableLayout {
    /// The format.
    pub format: DataFormat,
    /// The compression of data files.
    pub compression: Compression,
    /// The table's folder (`<run>/<table>`).
    pub table_dir: Location,
    /// AWS-style export id, `<ms timestamp>-<8 hex>` (native layout only).
    pub export_id: String,
}

impl TableLayout {
    /// A layout for a table folder, with an export id made from `now_ms` and randomness.
    pub fn new(
        format: DataFormat,
        compression: Compression,
        table_dir: Location,
        now_ms: i64,
    ) -> Self {
        let export_id = format!(
            "{:014}-{}",
            now_ms,
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self::with_id(format, compression, table_dir, export_id)
    }

    /// A layout for a table folder with a known export id (a resumed export).
    pub fn with_id(
        format: DataFormat,
        compression: Compression,
        table_dir: Location,
        export_id: String,
    ) -> Self {
        Self {
            format,
            compression,
            table_dir,
            export_id,
        }
    }

    /// The folder holding the native export's manifests: `AWSDynamoDB/<id>`.
    pub fn native_dir(&self) -> Location {
        self.table_dir
            .child(&format!("AWSDynamoDB/{}", self.export_id))
    }

    /// A fresh, unique path for a new data file.
    pub fn new_data_file(&self) -> Path {
        let id = uuid::Uuid::new_v4();
        match self.format {
            DataFormat::Emr => self
                .table_dir
                .join(&format!("{id}{}", self.compression.extension())),
            _ => self.native_dir().join(&format!(
                "data/{}.{}{}",
                id.simple(),
                if self.format == DataFormat::Ion {
                    "ion"
                } else {
                    "json"
                },
                self.compression.extension()
            )),
        }
    }

    /// Append one item's line in this layout's encoding.
    pub fn encode(&self, item: &Item, out: &mut Vec<u8>) {
        match self.format {
            DataFormat::Emr => item::connector::encode_line(item, out),
            DataFormat::Ion => item::ion::encode_line(item, out),
            _ => item::dynamodb_json::encode_line(item, out),
        }
    }

    /// Whether [`TableLayout::encode`] writes native DynamoDB JSON lines (which the
    /// export reads straight from the wire).
    pub fn writes_native_lines(&self) -> bool {
        self.format == DataFormat::DynamodbJson
    }

    /// Whether an export with no item still leaves a data file, an empty one (AWS does).
    pub fn writes_empty_files(&self) -> bool {
        self.format.is_native()
    }
}
