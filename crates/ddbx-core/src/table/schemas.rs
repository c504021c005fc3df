//! The descriptions of a run's planned tables, in the plan's order, kept out of memory.
//!
//! An export describes every table it selects before it starts (its plan needs their keys,
//! sizes and capacities), but needs a table's whole description (its settings, for
//! `table.json`) only when that table's turn comes. A fleet's descriptions are megabytes
//! (about 1 KB a table): they wait in a [`Spool`] (an unnamed temporary file past a few
//! hundred kilobytes), and each is read back when its table starts.

use chrono::{DateTime, Utc};

use super::TableSchema;
use crate::spool::Spool;
use crate::Result;

/// Each planned table's description, in the plan's order.
pub struct Schemas {
    spool: Spool<TableSchema>,
    /// What each description's JSON form leaves out.
    unsaved: Vec<(i64, Option<DateTime<Utc>>)>,
}

impl std::fmt::Debug for Schemas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schemas")
            .field("tables", &self.len())
            .finish_non_exhaustive()
    }
}

impl Default for Schemas {
    fn default() -> Self {
        Self::with(Spool::new("the table descriptions"))
    }
}

impl Schemas {
    fn with(spool: Spool<TableSchema>) -> Self {
        Self {
            spool,
            unsaved: Vec::new(),
        }
    }

    /// Descriptions kept in memory, as when no temporary file can be made.
    #[cfg(test)]
    fn in_memory() -> Self {
        Self::with(Spool::in_memory("the table descriptions"))
    }

    /// Add the next table's description.
    pub fn push(&mut self, schema: &TableSchema) -> Result<()> {
        self.spool.push(schema)?;
        self.unsaved
            .push((schema.decreases_today, schema.creation_date_time));
        Ok(())
    }

    /// How many tables.
    pub fn len(&self) -> usize {
        self.spool.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.spool.is_empty()
    }

    /// The `i`th table's description, as it was pushed.
    pub fn get(&self, i: usize) -> Result<TableSchema> {
        let mut schema = self.spool.get(i)?;
        (schema.decreases_today, schema.creation_date_time) = self.unsaved[i];
        Ok(schema)
    }

    /// Every description, in order (the engines that plan all tables at once).
    pub fn all(&self) -> Result<Vec<TableSchema>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
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
