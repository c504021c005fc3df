//! Capacity spikes: raise a provisioned table's read (export) or write (import) capacity
//! for the duration of its work, and always put it back. A table with an Application Auto
//! Scaling target gets its minimum raised instead (the seed's update-throughput script).
//! The original values are written into the run before any change (`_capacity/`), so a
//! crashed run is undone by `ddbx capacity restore --from RUN`. Point-in-time recovery
//! turned on for a native export (`--enable-pitr`) is recorded and undone the same way.

use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
use aws_sdk_dynamodb::types::ProvisionedThroughput;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::aws::Aws;
use crate::store::Location;
use crate::table::TableSchema;
use crate::{Error, Result};

/// DynamoDB allows a few decreases a day (four at any time, then one an hour): past this
/// many today, a reset may be refused.
pub const FREE_DECREASES: i64 = 4;

/// Which capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Dimension {
    /// Read capacity (exports).
    Read,
    /// Write capacity (imports).
    Write,
    /// Point-in-time recovery (native exports): `to` is 1 (on) for the work.
    Pitr,
}

impl Dimension {
    fn units(self) -> &'static str {
        match self {
            Self::Read => "RCU",
            Self::Write => "WCU",
            Self::Pitr => "point-in-time recovery",
        }
    }

    fn scalable(self) -> ScalableDimension {
        match self {
            Self::Read => ScalableDimension::DynamoDbTableReadCapacityUnits,
            Self::Write | Self::Pitr => ScalableDimension::DynamoDbTableWriteCapacityUnits,
        }
    }
}

/// How a spike is done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "via")]
pub enum Via {
    /// UpdateTable's provisioned throughput.
    #[serde(rename_all = "camelCase")]
    Table {
        /// Read units before.
        read_units: i64,
        /// Write units before.
        write_units: i64,
    },
    /// The Application Auto Scaling target's minimum (and maximum, if lower than the
    /// spike), then the table's provisioned capacity too, as the seed did: the new minimum
    /// is applied later, and a table with no traffic is never scaled back down by itself.
    #[serde(rename_all = "camelCase")]
    AutoScaling {
        /// Minimum before.
        min_capacity: i32,
        /// Maximum before.
        max_capacity: i32,
        /// Provisioned read units before (0 in records of ddbx before 0.2: not put back).
        #[serde(default)]
        read_units: i64,
        /// Provisioned write units before.
        #[serde(default)]
        write_units: i64,
    },
    /// UpdateContinuousBackups: point-in-time recovery was off, on for the work.
    #[serde(rename_all = "camelCase")]
    ContinuousBackups {},
    /// Nothing to do.
    #[serde(rename_all = "camelCase")]
    None {
        /// Why.
        reason: String,
    },
}

/// A planned (and, once applied, recorded) spike of one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spike {
    /// The table.
    pub table: String,
    /// Read or write.
    pub dimension: Dimension,
    /// The capacity during the work.
    pub to: i64,
    /// The capacity before, and how it is changed.
    #[serde(flatten)]
    pub via: Via,
    /// Provisioned-capacity decreases the table has had today.
    pub decreases_today: i64,
    /// A warning for the plan (a reset that may be refused).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub warning: Option<String>,
    /// When the original values were recorded.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub recorded_at: Option<DateTime<Utc>>,
    /// Whether the original values were put back.
    #[serde(default)]
    pub restored: bool,
}

impl Spike {
    /// Whether applying it changes anything.
    pub fn changes(&self) -> bool {
        !matches!(self.via, Via::None { .. })
    }

    /// The units per second that `ratio` of the capacity during the work is, when the
    /// spike changes it (`None`: the table's own capacity applies).
    pub fn units(&self, ratio: f64) -> Option<f64> {
        self.changes().then_some(self.to as f64 * ratio)
    }

    fn record_name(&self) -> String {
        format!(
            "{}-{}.json",
            self.table,
            match self.dimension {
                Dimension::Read => "read",
                Dimension::Write => "write",
                Dimension::Pitr => "pitr",
            }
        )
    }

    /// Point-in-time recovery turned on for `table`'s work, and off after.
    pub fn pitr(table: &str) -> Self {
        Self {
            table: table.to_string(),
            dimension: Dimension::Pitr,
            to: 1,
            via: Via::ContinuousBackups {},
            decreases_today: 0,
            warning: None,
            recorded_at: None,
            restored: false,
        }
    }

    fn before(&self) -> i64 {
        match &self.via {
            Via::Table {
                read_units,
                write_units,
            } => match self.dimension {
                Dimension::Read => *read_units,
                Dimension::Write | Dimension::Pitr => *write_units,
            },
            Via::AutoScaling { min_capacity, .. } => i64::from(*min_capacity),
            Via::ContinuousBackups {} | Via::None { .. } => 0,
        }
    }
}

impl std::fmt::Display for Spike {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let units = self.dimension.units();
        match &self.via {
            Via::Table { .. } => write!(
                f,
                "{} {units} raised to {} for the run, then put back",
                self.before(),
                self.to
            )?,
            Via::AutoScaling { .. } => write!(
                f,
                "auto-scaling minimum {} raised to {} {units} for the run, then put back",
                self.before(),
                self.to
            )?,
            Via::ContinuousBackups {} => write!(
                f,
                "point-in-time recovery turned on for the export, then off again"
            )?,
            Via::None { reason } => write!(f, "not raised: {reason}")?,
        }
        if let Some(w) = &self.warning {
            write!(f, " (warning: {w})")?;
        }
        Ok(())
    }
}

/// Plan a spike of a described table to `to` units: on-demand tables and tables already at or above
/// it are left alone; a table with an auto-scaling target gets its minimum raised.
pub async fn plan(aws: &Aws, schema: &TableSchema, dimension: Dimension, to: i64) -> Result<Spike> {
    let table = schema.table_name.as_str();
    let (read, write) = schema
        .provisioned_throughput
        .as_ref()
        .map_or((0, 0), |p| (p.read_capacity_units, p.write_capacity_units));
    let decreases_today = schema.decreases_today;
    let current = match dimension {
        Dimension::Read => read,
        Dimension::Write | Dimension::Pitr => write,
    };
    let via = if schema.is_on_demand() {
        Via::None {
            reason: "on-demand: left alone".into(),
        }
    } else if let Some((min, max)) = scalable_target(aws, table, dimension).await? {
        if i64::from(min) >= to {
            Via::None {
                reason: format!("auto-scaling minimum is already {min}"),
            }
        } else {
            Via::AutoScaling {
                min_capacity: min,
                max_capacity: max,
                read_units: read,
                write_units: write,
            }
        }
    } else if current >= to {
        Via::None {
            reason: format!("already at {current} {}", dimension.units()),
        }
    } else {
        Via::Table {
            read_units: read,
            write_units: write,
        }
    };
    let warning = (matches!(via, Via::Table { .. }) && decreases_today >= FREE_DECREASES).then(|| {
        format!(
            "{table} has had {decreases_today} capacity decreases today: DynamoDB may refuse the reset to {current} {}",
            dimension.units()
        )
    });
    Ok(Spike {
        table: table.to_string(),
        dimension,
        to,
        via,
        decreases_today,
        warning,
        recorded_at: None,
        restored: false,
    })
}

async fn scalable_target(
    aws: &Aws,
    table: &str,
    dimension: Dimension,
) -> Result<Option<(i32, i32)>> {
    let out = aws
        .call(
            || format!("table {table}: DescribeScalableTargets"),
            None,
            || {
                aws.autoscaling
                    .describe_scalable_targets()
                    .service_namespace(ServiceNamespace::Dynamodb)
                    .resource_ids(format!("table/{table}"))
                    .scalable_dimension(dimension.scalable())
                    .send()
            },
        )
        .await?;
    Ok(out
        .scalable_targets()
        .iter()
        .find(|t| t.resource_id() == format!("table/{table}"))
        .map(|t| (t.min_capacity(), t.max_capacity())))
}

/// Where a run keeps its spike records.
fn records(run_dir: &Location) -> Location {
    run_dir.child("_capacity")
}

/// Record the original values in the run, then raise the capacity and wait for ACTIVE.
pub async fn apply(aws: &Aws, run_dir: &Location, spike: &Spike) -> Result<()> {
    if !spike.changes() {
        return Ok(());
    }
    let recorded = Spike {
        recorded_at: Some(Utc::now()),
        restored: false,
        ..spike.clone()
    };
    records(run_dir)
        .put_json(&spike.record_name(), &recorded)
        .await?;
    if spike.dimension == Dimension::Pitr {
        tracing::info!(table = %spike.table, "turning point-in-time recovery on for the export (recorded: it is turned off after)");
    } else {
        tracing::info!(table = %spike.table, from = spike.before(), to = spike.to, "raising {} capacity", spike.dimension.units());
    }
    set(aws, spike, spike.to).await
}

/// Put the original values back (waiting for ACTIVE) and mark the record restored. On
/// failure the error says what capacity the table was left at.
pub async fn restore(aws: &Aws, run_dir: &Location, spike: &Spike) -> Result<()> {
    if !spike.changes() || spike.restored {
        return Ok(());
    }
    let before = spike.before();
    if let Err(e) = set(aws, spike, before).await {
        if spike.dimension == Dimension::Pitr {
            return Err(Error::Failed(format!(
                "table {}: could not turn point-in-time recovery back off ({e}): it is left on (and billed); retry with `ddbx capacity restore --from {}`",
                spike.table,
                run_dir.url()
            )));
        }
        return Err(Error::Failed(format!(
            "table {}: could not reset {} capacity from {} to {} ({e}): the table is left at {} {}{}; retry with `ddbx capacity restore --from {}`",
            spike.table,
            spike.dimension.units(),
            spike.to,
            before,
            spike.to,
            spike.dimension.units(),
            if matches!(spike.via, Via::AutoScaling { .. }) { " (auto-scaling minimum)" } else { "" },
            run_dir.url()
        )));
    }
    if spike.dimension == Dimension::Pitr {
        tracing::info!(table = %spike.table, "point-in-time recovery turned off again");
    } else {
        tracing::info!(table = %spike.table, to = before, "{} capacity restored", spike.dimension.units());
    }
    let done = Spike {
        restored: true,
        ..spike.clone()
    };
    records(run_dir).put_json(&spike.record_name(), &done).await
}

async fn set(aws: &Aws, spike: &Spike, units: i64) -> Result<()> {
    let table = &spike.table;
    match &spike.via {
        Via::Table {
            read_units,
            write_units,
        } => {
            let (read, write) = match spike.dimension {
                Dimension::Read => (units, *write_units),
                Dimension::Write | Dimension::Pitr => (*read_units, units),
            };
            update_throughput(aws, table, read, write).await?;
        }
        Via::AutoScaling {
            min_capacity,
            max_capacity,
            read_units,
            write_units,
        } => {
            let min = i32::try_from(units).unwrap_or(i32::MAX);
            // Restoring puts back both; spiking raises the maximum only when it must.
            let restoring = i64::from(*min_capacity) == units;
            let max = if restoring {
                *max_capacity
            } else {
                (*max_capacity).max(min)
            };
            aws.call(
                || format!("table {table}: RegisterScalableTarget"),
                None,
                || {
                    aws.autoscaling
                        .register_scalable_target()
                        .service_namespace(ServiceNamespace::Dynamodb)
                        .resource_id(format!("table/{table}"))
                        .scalable_dimension(spike.dimension.scalable())
                        .min_capacity(min)
                        .max_capacity(max)
                        .send()
                },
            )
            .await?;
            // The table itself to the spike (or back to what it had), not left to scaling.
            let (before_read, before_write) = (*read_units, *write_units);
            if before_read > 0 && before_write > 0 {
                let target = if restoring {
                    match spike.dimension {
                        Dimension::Read => before_read,
                        Dimension::Write | Dimension::Pitr => before_write,
                    }
                } else {
                    units
                };
                let current = aws.describe_table(table).await?;
                let (read, write) = current
                    .provisioned_throughput
                    .as_ref()
                    .map_or((before_read, before_write), |p| {
                        (p.read_capacity_units, p.write_capacity_units)
                    });
                let (read, write) = match spike.dimension {
                    Dimension::Read => (target, write),
                    Dimension::Write | Dimension::Pitr => (read, target),
                };
                update_throughput(aws, table, read, write).await?;
            }
        }
        Via::ContinuousBackups {} => return aws.set_pitr(table, units != 0).await,
        Via::None { .. } => return Ok(()),
    }
    aws.wait_active(table).await
}

/// UpdateTable to these provisioned units (a change to the same values is fine).
async fn update_throughput(aws: &Aws, table: &str, read: i64, write: i64) -> Result<()> {
    let throughput = ProvisionedThroughput::builder()
        .read_capacity_units(read)
        .write_capacity_units(write)
        .build()
        .expect("both units are set");
    let updated = aws
        .call(
            || format!("table {table}: UpdateTable"),
            None,
            || {
                aws.dynamodb
                    .update_table()
                    .table_name(table)
                    .provisioned_throughput(throughput.clone())
                    .send()
            },
        )
        .await;
    match updated {
        Ok(_) => Ok(()),
        // Already there (a resumed run, or a change whose answer was lost).
        Err(Error::Aws { message, .. }) if message.contains("will not change") => Ok(()),
        Err(e) => Err(e),
    }
}

/// Raise a table's capacity; if that fails, undo whatever part of the change took effect.
pub async fn apply_or_undo(aws: &Aws, run_dir: &Location, spike: &Spike) -> Result<()> {
    if let Err(e) = apply(aws, run_dir, spike).await {
        if let Err(r) = restore(aws, run_dir, spike).await {
            tracing::error!(table = %spike.table, error = %r, "capacity reset failed");
        }
        return Err(e);
    }
    Ok(())
}

/// Run `work` with the table's capacity spiked: raised before, put back after, whether
/// the work succeeded, failed or was interrupted. A failed reset fails the work's result,
/// saying what capacity the table was left at.
pub async fn during<T>(
    aws: &Aws,
    run_dir: &Location,
    spike: Option<&Spike>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let Some(spike) = spike.filter(|s| s.changes()) else {
        return work.await;
    };
    apply_or_undo(aws, run_dir, spike).await?;
    let result = work.await;
    match restore(aws, run_dir, spike).await {
        Ok(()) => result,
        // The work's own error stays the cause (its kind: interrupted, failed...).
        Err(r) => Err(match result {
            Ok(_) => Error::Failed(format!("the data is complete, but {r}")),
            Err(e) => e.noted(format!("and {r}")),
        }),
    }
}

/// Every spike a run recorded and has not put back (after a crash).
pub async fn unrestored(run_dir: &Location) -> Result<Vec<Spike>> {
    use futures::StreamExt;
    let dir = records(run_dir);
    let mut listing = dir.store.list(Some(&dir.prefix));
    let mut out = Vec::new();
    while let Some(meta) = listing.next().await {
        let meta = meta.map_err(|e| Error::store(dir.url(), e))?;
        let Some(bytes) = dir.get_optional(&meta.location).await? else {
            continue;
        };
        let spike: Spike = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            file: dir.url_of(&meta.location),
            message: format!("not a capacity record: {e}"),
        })?;
        if !spike.restored {
            out.push(spike);
        }
    }
    out.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_says_what_to_put_back() {
        let s = Spike {
            table: "T".into(),
            dimension: Dimension::Read,
            to: 100,
            via: Via::Table {
                read_units: 5,
                write_units: 7,
            },
            decreases_today: 0,
            warning: None,
            recorded_at: None,
            restored: false,
        };
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"table":"T","dimension":"read","to":100,"via":"table","readUnits":5,"writeUnits":7,"decreasesToday":0,"restored":false})
        );
        let back: Spike = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.before(), 5);
        assert_eq!(back.record_name(), "T-read.json");
        let auto = Spike {
            via: Via::AutoScaling {
                min_capacity: 10,
                max_capacity: 50,
                read_units: 5,
                write_units: 10,
            },
            dimension: Dimension::Write,
            ..s
        };
        assert_eq!(auto.before(), 10);
        assert!(auto.changes());
        // A record of ddbx 0.1 (no provisioned units) still reads.
        let old: Spike = serde_json::from_value(serde_json::json!({"table":"T","dimension":"write","to":100,"via":"autoScaling","minCapacity":10,"maxCapacity":50,"decreasesToday":0})).unwrap();
        assert!(matches!(old.via, Via::AutoScaling { read_units: 0, .. }));
    }
}
