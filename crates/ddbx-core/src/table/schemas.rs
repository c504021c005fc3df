//! The descriptions of a run's planned tables, in the plan's order, kept out of memory.
//!
//! An export describes every table it selects before it starts (its plan needs their keys,
//! sizes and capacities), but needs a table's whole description (its settings, for
//! `table.json`) only when that table's turn comes. A fleet's descriptions are megabytes
//! (about 1 KB a table): they wait in an unnamed temporary file, which the system removes
//! when the run ends however it ends (in memory where no temporary file can be made), and
//! each is read back when its table starts.

use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::TableSchema;
use crate::{Error, Result};

/// Each planned table's description, in the plan's order.
pub struct Schemas {
    spill: Mutex<Spill>,
    index: Vec<Entry>,
}

enum Spill {
    File { file: std::fs::File, len: u64 },
    Memory(Vec<u8>),
}

/// Where one description is, and what its JSON form leaves out.
struct Entry {
    at: u64,
    len: usize,
    decreases_today: i64,
    creation_date_time: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("tables", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl Default for Schemas {
    fn default() -> Self {
        let spill = match tempfile::tempfile() {
            Ok(file) => Spill::File { file, len: 0 },
            Err(e) => {
                tracing::debug!(
                    "no temporary file for the table descriptions ({e}): kept in memory"
                );
                Spill::Memory(Vec::new())
            }
        };
        Self::with(spill)
    }
}

impl Schemas {
    fn with(spill: Spill) -> Self {
        Self {
            spill: Mutex::new(spill),
            index: Vec::new(),
        }
    }

    /// Descriptions kept in memory, as when no temporary file can be made.
    #[cfg(test)]
    fn in_memory() -> Self {
        Self::with(Spill::Memory(Vec::new()))
    }

    /// Add the next table's description.
    pub fn push(&mut self, schema: &TableSchema) -> Result<()> {
        let body = serde_json::to_vec(schema).expect("descriptions serialize");
        let spill = self.spill.get_mut().unwrap_or_else(|p| p.into_inner());
        let at = match spill {
            Spill::File { file, len } => {
                file.seek(SeekFrom::Start(*len))
                    .and_then(|_| file.write_all(&body))
                    .map_err(spill_error)?;
                let at = *len;
                *len += body.len() as u64;
                at
            }
            Spill::Memory(bytes) => {
                bytes.extend_from_slice(&body);
                (bytes.len() - body.len()) as u64
            }
        };
        self.index.push(Entry {
            at,
            len: body.len(),
            decreases_today: schema.decreases_today,
            creation_date_time: schema.creation_date_time,
        });
        Ok(())
    }

    /// How many tables.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The `i`th table's description, as it was pushed.
    pub fn get(&self, i: usize) -> Result<TableSchema> {
        let e = &self.index[i];
        let mut body = vec![0; e.len];
        {
            let mut spill = self.spill.lock().unwrap_or_else(|p| p.into_inner());
            match &mut *spill {
                Spill::File { file, .. } => file
                    .seek(SeekFrom::Start(e.at))
                    .and_then(|_| file.read_exact(&mut body))
                    .map_err(spill_error)?,
                Spill::Memory(bytes) => {
                    body.copy_from_slice(&bytes[e.at as usize..e.at as usize + e.len])
                }
            }
        }
        let mut schema: TableSchema = serde_json::from_slice(&body).map_err(|e| {
            Error::Failed(format!(
                "a table description kept in a temporary file reads back wrong: {e}"
            ))
        })?;
        schema.decreases_today = e.decreases_today;
        schema.creation_date_time = e.creation_date_time;
        Ok(schema)
    }

    /// Every description, in order (the engines that plan all tables at once).
    pub fn all(&self) -> Result<Vec<TableSchema>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

fn spill_error(e: std::io::Error) -> Error {
    Error::Failed(format!(
        "keeping the table descriptions in a temporary file (TMPDIR): {e}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::TableSchema;

    fn schema(name: &str, decreases: i64) -> TableSchema {
        let mut s: TableSchema = serde_json::from_value(serde_json::json!({
            "TableName": name,
            "TableArn": format!("arn:aws:dynamodb:us-east-1:1:table/{name}"),
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST",
            "ItemCount": 3,
            "TableSizeBytes": 300,
            "Tags": [{"Key": "team", "Value": "ünïcode"}],
        }))
        .unwrap();
        s.decreases_today = decreases;
        s.creation_date_time = Some(DateTime::from_timestamp(1_700_000_000, 5).unwrap());
        s
    }

    #[test]
    fn descriptions_read_back_as_pushed_from_a_file_and_from_memory() {
        for mut kept in [Schemas::default(), Schemas::in_memory()] {
            let pushed: Vec<TableSchema> = (0..50).map(|i| schema(&format!("t{i}"), i)).collect();
            for s in &pushed {
                kept.push(s).unwrap();
            }
            assert_eq!(kept.len(), 50);
            // Out of order, and again: each read is its own.
            assert_eq!(kept.get(49).unwrap(), pushed[49]);
            assert_eq!(kept.get(0).unwrap(), pushed[0]);
            assert_eq!(kept.get(49).unwrap(), pushed[49]);
            assert_eq!(kept.all().unwrap(), pushed);
        }
    }
}
