//! The table an import writes into: checked against the export's key schema before any
//! write, or created from `table.json` when asked: keys, indexes and billing, with its
//! settings (stream, class, encryption, deletion protection, warm throughput at creation;
//! time to live, tags, point-in-time recovery, resource policy and auto scaling once it is
//! ACTIVE) unless `--no-settings`.

use aws_sdk_dynamodb::types as ddb;

use crate::aws::Aws;
use crate::table::settings::SettingsOutcome;
use crate::table::{self, KeyAttribute, TableSchema};
use crate::{Error, Result};

/// How a missing target is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// It must exist.
    No,
    /// Created from `table.json` with its settings.
    WithSettings,
    /// Created with keys, indexes and billing only (`--no-settings`).
    Bare,
}

/// Compare a target table's key with the export's; `None` when they match.
pub fn key_difference(
    table: &str,
    expected: &[KeyAttribute],
    actual: &[KeyAttribute],
) -> Option<String> {
    let show = |k: &[KeyAttribute]| {
        k.iter()
            .map(|a| format!("{} {} ({})", a.key_type, a.attribute_name, a.attribute_type))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let same = expected.len() == actual.len()
        && expected.iter().zip(actual).all(|(e, a)| {
            e.attribute_name == a.attribute_name
                && e.key_type == a.key_type
                && e.attribute_type == a.attribute_type
        });
    (!same).then(|| {
        format!(
            "table {table}: key schema differs from the export's: the table has [{}], the export has [{}]",
            show(actual),
            show(expected)
        )
    })
}

/// The table named `target` as it is now, or `None` when there is none.
pub async fn describe(aws: &Aws, target: &str) -> Result<Option<TableSchema>> {
    match aws.describe_table(target).await {
        Ok(t) => Ok(Some(t)),
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceNotFoundException" => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the target, as it is now (`existing`), can take the export before anything is
/// read: its key is the export's, or it is missing and may be created.
pub fn precheck(
    target: &str,
    existing: Option<&TableSchema>,
    expected_key: Option<&[KeyAttribute]>,
    create: Create,
) -> Result<()> {
    match (existing, expected_key) {
        (Some(t), Some(expected)) => match key_difference(target, expected, &t.key()) {
            Some(diff) => Err(Error::Usage(diff)),
            None => Ok(()),
        },
        (Some(_), None) => Ok(()),
        (None, _) if create == Create::No => Err(Error::Usage(format!(
            "table {target} does not exist (create it with the export's key schema, or pass --create-missing)"
        ))),
        (None, _) => Ok(()),
    }
}

/// A target ready to write.
#[derive(Debug)]
pub struct Ensured {
    /// Its description (after creation, for a table this import created).
    pub table: TableSchema,
    /// Whether this import created it.
    pub created: bool,
    /// For a table created with its settings, what became of them.
    pub settings: Option<SettingsOutcome>,
}

/// Make sure `target` exists with the export's key: `existing` (as [`describe`] found
/// it), or created from `source` as `create` says.
pub async fn ensure_table(
    aws: &Aws,
    target: &str,
    existing: Option<TableSchema>,
    source: Option<&TableSchema>,
    expected_key: Option<&[KeyAttribute]>,
    create: Create,
) -> Result<Ensured> {
    let created = existing.is_none();
    let (described, outcome) = match existing {
        Some(t) => (t, None),
        None if create != Create::No => {
            let source = source.ok_or_else(|| {
                Error::Usage(format!(
                    "table {target} does not exist and the export has no table.json to create it from"
                ))
            })?;
            let with_settings = create == Create::WithSettings;
            let (t, o) = create_table(aws, target, source, with_settings).await?;
            (t, with_settings.then_some(o))
        }
        None => {
            return Err(Error::Usage(format!(
                "table {target} does not exist (create it with the export's key schema, or pass --create-missing)"
            )))
        }
    };
    if let Some(expected) = expected_key {
        if let Some(diff) = key_difference(target, expected, &described.key()) {
            return Err(Error::Usage(diff));
        }
    } else {
        tracing::warn!(table = %target, "the export records no key schema: the table's key cannot be checked");
    }
    Ok(Ensured {
        table: described,
        created,
        settings: outcome,
    })
}

/// A target that an engine creates itself (the native engine's ImportTable): what the
/// export's `table.json` says to create (renamed to `target`). When a table of that name
/// exists already, its ARN is in the returned `table_arn` (else none): the engine decides
/// (the native engine takes up the import it started, or refuses).
pub async fn to_create(
    aws: &Aws,
    target: &str,
    source: Option<&TableSchema>,
) -> Result<TableSchema> {
    let existing = match aws.describe_raw(target).await {
        Ok(t) => Some(t.table_arn().unwrap_or_default().to_string()),
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceNotFoundException" => None,
        Err(e) => return Err(e),
    };
    let s = source.ok_or_else(|| {
        Error::Usage(format!(
            "the export has no table.json, which ImportTable needs (key schema, indexes, billing) to create {target}"
        ))
    })?;
    Ok(TableSchema {
        table_name: target.to_string(),
        table_arn: existing,
        table_id: None,
        creation_date_time: None,
        ..s.clone()
    })
}

async fn create_table(
    aws: &Aws,
    target: &str,
    s: &TableSchema,
    with_settings: bool,
) -> Result<(TableSchema, SettingsOutcome)> {
    tracing::info!(table = %target, from = %s.table_name, "creating the table from the export's table.json");
    let c = table::sdk_creation(s);
    let mut req = aws
        .dynamodb
        .create_table()
        .table_name(target)
        .set_key_schema(Some(table::sdk_key_schema(&s.key_schema)))
        .set_attribute_definitions(Some(table::sdk_attribute_definitions(s)))
        .billing_mode(c.billing)
        .set_provisioned_throughput(c.provisioned)
        .set_on_demand_throughput(c.on_demand)
        .set_global_secondary_indexes(c.gsis);
    for l in &s.local_secondary_indexes {
        req = req.local_secondary_indexes(
            ddb::LocalSecondaryIndex::builder()
                .index_name(&l.index_name)
                .set_key_schema(Some(table::sdk_key_schema(&l.key_schema)))
                .projection(table::sdk_projection(l))
                .build()
                .expect("index fields are set"),
        );
    }
    let mut outcome = SettingsOutcome::default();
    if with_settings {
        if let Some(st) = s
            .stream_specification
            .as_ref()
            .filter(|st| st.stream_enabled)
        {
            req = req.stream_specification(table::sdk_stream(st));
            outcome.restored.push("stream".into());
        }
        if let Some(c) = s.table_class.as_deref().filter(|c| *c != "STANDARD") {
            req = req.table_class(ddb::TableClass::from(c));
            outcome.restored.push(format!("table class {c}"));
        }
        if s.deletion_protection_enabled == Some(true) {
            req = req.deletion_protection_enabled(true);
            outcome.restored.push("deletion protection".into());
        }
        let recorded = s.settings.warm_throughput.as_ref();
        let writes = warm_writes(s);
        if recorded.is_some() || writes.is_some() {
            let write = recorded.and_then(|w| w.write_units_per_second).max(writes);
            req = req.warm_throughput(
                ddb::WarmThroughput::builder()
                    .set_read_units_per_second(recorded.and_then(|w| w.read_units_per_second))
                    .set_write_units_per_second(write)
                    .build(),
            );
            outcome.restored.push(match writes {
                Some(w) if Some(w) == write => format!(
                    "warm throughput ({w} writes/s, so {} MB go in about 10 minutes)",
                    s.table_size_bytes / 1_000_000
                ),
                _ => "warm throughput".into(),
            });
        }
    }
    let sse = s.settings.sse.as_ref().filter(|_| with_settings);
    let with_key = |req: CreateTable, key: Option<&str>| {
        req.sse_specification(
            ddb::SseSpecification::builder()
                .enabled(true)
                .sse_type(ddb::SseType::Kms)
                .set_kms_master_key_id(key.map(str::to_string))
                .build(),
        )
    };
    let created = match sse {
        None => send_create(aws, target, req).await,
        Some(sse) => {
            let key = sse.kms_master_key_arn.as_deref();
            match send_create(aws, target, with_key(req.clone(), key)).await {
                Ok(()) => {
                    outcome.restored.push(format!(
                        "encryption (KMS key {})",
                        key.unwrap_or("aws/dynamodb")
                    ));
                    Ok(())
                }
                // A key this account may not use (another account's, or the source
                // account's AWS managed key): the account's own managed key instead, said so.
                Err(e) if key.is_some() && e.to_string().to_ascii_lowercase().contains("kms") => {
                    outcome.not_restored.push(format!(
                        "encryption with KMS key {}: {e}; the table is encrypted with this account's AWS managed key (aws/dynamodb) instead",
                        key.unwrap_or_default()
                    ));
                    send_create(aws, target, with_key(req, None)).await
                }
                Err(e) => Err(e),
            }
        }
    };
    created?;
    aws.wait_active(target).await?;
    if with_settings {
        aws.restore_settings(target, s, &mut outcome).await;
    }
    Ok((aws.describe_table(target).await?, outcome))
}

/// The warm write throughput a new on-demand table needs to take the export's size in
/// about ten minutes, when that is more than a new table takes (4,000 a second), within the
/// table's maximum (or the 40,000 quota). Warm throughput is billed once, so nothing is
/// asked for a table a new one can fill in time.
fn warm_writes(s: &TableSchema) -> Option<i64> {
    if !s.is_on_demand() {
        return None;
    }
    let needed = (s.table_size_bytes as f64 / 1024.0 / 600.0).ceil();
    let cap = s
        .on_demand_throughput
        .as_ref()
        .and_then(|o| o.max_write_request_units)
        .filter(|m| *m > 0)
        .map_or(table::ON_DEMAND_DEFAULT_UNITS, |m| m as f64);
    (needed > table::NEW_ON_DEMAND_WRITE_UNITS).then(|| needed.min(cap) as i64)
}

type CreateTable = aws_sdk_dynamodb::operation::create_table::builders::CreateTableFluentBuilder;

/// CreateTable, once: a retried call whose first attempt took effect (its answer was lost),
/// or another creator, finds the table there, and the caller checks its key like any other.
async fn send_create(aws: &Aws, target: &str, req: CreateTable) -> Result<()> {
    match aws
        .call(
            || format!("table {target}: CreateTable"),
            None,
            || req.clone().send(),
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceInUseException" => {
            tracing::info!(table = %target, "the table exists already (created by an earlier attempt of this call, or by someone else)");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str, kt: &str, at: &str) -> KeyAttribute {
        KeyAttribute {
            attribute_name: name.into(),
            key_type: kt.into(),
            attribute_type: at.into(),
        }
    }

    #[test]
    fn a_large_on_demand_export_asks_for_warm_writes_a_small_one_does_not() {
        let mut s: TableSchema = serde_json::from_value(serde_json::json!({
            "TableName": "t", "KeySchema": [], "AttributeDefinitions": [],
            "BillingMode": "PAY_PER_REQUEST", "TableSizeBytes": 1_000_000_000
        }))
        .unwrap();
        assert_eq!(
            warm_writes(&s),
            None,
            "1 GB: a new table takes it in 10 minutes"
        );
        s.table_size_bytes = 20_000_000_000;
        assert_eq!(warm_writes(&s), Some(32_553));
        s.table_size_bytes = 100_000_000_000;
        assert_eq!(warm_writes(&s), Some(40_000), "within the quota");
        s.billing_mode = "PROVISIONED".into();
        assert_eq!(warm_writes(&s), None);
    }

    #[test]
    fn key_differences_are_named() {
        let export = vec![k("pk", "HASH", "S"), k("sk", "RANGE", "N")];
        assert!(key_difference("t", &export, &export.clone()).is_none());
        let d = key_difference(
            "orders",
            &export,
            &[k("pk", "HASH", "S"), k("sk", "RANGE", "S")],
        )
        .unwrap();
        assert!(
            d.contains("orders") && d.contains("RANGE sk (S)") && d.contains("RANGE sk (N)"),
            "{d}"
        );
        assert!(key_difference("t", &export, &[k("pk", "HASH", "S")]).is_some());
    }
}
