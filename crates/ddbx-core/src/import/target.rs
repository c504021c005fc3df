//! The table an import writes into: checked against the export's key schema before any
//! write, or created from `table.json` (keys, indexes, billing, then TTL) when asked.

use aws_sdk_dynamodb::types as ddb;

use crate::aws::Aws;
use crate::table::{self, KeyAttribute, TableSchema};
use crate::{Error, Result};

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

/// Make sure `target` exists with the export's key, creating it from `source` when
/// `create_missing`. Returns the target's description.
pub async fn ensure_table(
    aws: &Aws,
    target: &str,
    source: Option<&TableSchema>,
    expected_key: Option<&[KeyAttribute]>,
    create_missing: bool,
) -> Result<TableSchema> {
    let existing = match aws.describe_table(target).await {
        Ok(t) => Some(t),
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceNotFoundException" => None,
        Err(e) => return Err(e),
    };
    let described = match existing {
        Some(t) => t,
        None if create_missing => {
            let source = source.ok_or_else(|| {
                Error::Invalid(format!(
                    "table {target} does not exist and the export has no table.json to create it from"
                ))
            })?;
            create_table(aws, target, source).await?
        }
        None => {
            return Err(Error::Invalid(format!(
                "table {target} does not exist (create it with the export's key schema, or pass --create-missing)"
            )))
        }
    };
    if let Some(expected) = expected_key {
        if let Some(diff) = key_difference(target, expected, &described.key()) {
            return Err(Error::Invalid(diff));
        }
    } else {
        tracing::warn!(table = %target, "the export records no key schema: the table's key cannot be checked");
    }
    Ok(described)
}

/// A target that an engine creates itself (the native engine's ImportTable): it must not
/// exist, and the export's `table.json` says what to create (renamed to `target`).
pub async fn absent(aws: &Aws, target: &str, source: Option<&TableSchema>) -> Result<TableSchema> {
    match aws.describe_table(target).await {
        Ok(_) => {
            return Err(Error::Invalid(format!(
                "table {target} exists: --engine native creates new tables only (DynamoDB's ImportTable); import into an existing table with the local engine"
            )))
        }
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceNotFoundException" => {}
        Err(e) => return Err(e),
    }
    let s = source.ok_or_else(|| {
        Error::Invalid(format!(
            "the export has no table.json, which ImportTable needs (key schema, indexes, billing) to create {target}"
        ))
    })?;
    Ok(TableSchema {
        table_name: target.to_string(),
        table_arn: None,
        table_id: None,
        ..s.clone()
    })
}

async fn create_table(aws: &Aws, target: &str, s: &TableSchema) -> Result<TableSchema> {
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
    if let Some(st) = &s.stream_specification {
        req = req.stream_specification(
            ddb::StreamSpecification::builder()
                .stream_enabled(st.stream_enabled)
                .set_stream_view_type(
                    st.stream_view_type
                        .as_deref()
                        .map(ddb::StreamViewType::from),
                )
                .build()
                .expect("enabled is set"),
        );
    }
    if let Some(c) = &s.table_class {
        req = req.table_class(ddb::TableClass::from(c.as_str()));
    }
    match aws
        .call(
            || format!("table {target}: CreateTable"),
            None,
            || req.clone().send(),
        )
        .await
    {
        Ok(_) => {}
        // A retried call whose first attempt took effect (its answer was lost), or another
        // creator: wait for the table, and the caller checks its key like any other.
        Err(Error::Aws {
            code: Some(code), ..
        }) if code == "ResourceInUseException" => {
            tracing::info!(table = %target, "the table exists already (created by an earlier attempt of this call, or by someone else)");
        }
        Err(e) => return Err(e),
    }
    aws.wait_active(target).await?;
    aws.apply_ttl(target, s).await?;
    aws.describe_table(target).await
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
