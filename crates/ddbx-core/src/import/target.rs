//! The table an import writes into: checked against the export's key schema before any
//! write, or created from `table.json` (keys, indexes, billing, then TTL) when asked.

use aws_sdk_dynamodb::types as ddb;

use crate::aws::Aws;
use crate::table::{Index, KeyAttribute, TableSchema};
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

fn key_schema(k: &[crate::table::KeyElement]) -> Vec<ddb::KeySchemaElement> {
    k.iter()
        .map(|e| {
            ddb::KeySchemaElement::builder()
                .attribute_name(&e.attribute_name)
                .key_type(ddb::KeyType::from(e.key_type.as_str()))
                .build()
                .expect("name and type are set")
        })
        .collect()
}

fn projection(i: &Index) -> ddb::Projection {
    ddb::Projection::builder()
        .projection_type(ddb::ProjectionType::from(
            i.projection.projection_type.as_str(),
        ))
        .set_non_key_attributes(
            (!i.projection.non_key_attributes.is_empty())
                .then(|| i.projection.non_key_attributes.clone()),
        )
        .build()
}

fn throughput(t: &crate::table::Throughput) -> ddb::ProvisionedThroughput {
    ddb::ProvisionedThroughput::builder()
        .read_capacity_units(t.read_capacity_units.max(1))
        .write_capacity_units(t.write_capacity_units.max(1))
        .build()
        .expect("units are set")
}

fn on_demand(o: &crate::table::OnDemandThroughput) -> ddb::OnDemandThroughput {
    ddb::OnDemandThroughput::builder()
        .set_max_read_request_units(o.max_read_request_units)
        .set_max_write_request_units(o.max_write_request_units)
        .build()
}

async fn create_table(aws: &Aws, target: &str, s: &TableSchema) -> Result<TableSchema> {
    tracing::info!(table = %target, from = %s.table_name, "creating the table from the export's table.json");
    let provisioned = !s.is_on_demand();
    let mut req = aws
        .dynamodb
        .create_table()
        .table_name(target)
        .set_key_schema(Some(key_schema(&s.key_schema)))
        .set_attribute_definitions(Some(
            s.attribute_definitions
                .iter()
                .map(|a| {
                    ddb::AttributeDefinition::builder()
                        .attribute_name(&a.attribute_name)
                        .attribute_type(ddb::ScalarAttributeType::from(a.attribute_type.as_str()))
                        .build()
                        .expect("name and type are set")
                })
                .collect(),
        ))
        .billing_mode(if provisioned {
            ddb::BillingMode::Provisioned
        } else {
            ddb::BillingMode::PayPerRequest
        });
    if provisioned {
        if let Some(t) = &s.provisioned_throughput {
            req = req.provisioned_throughput(throughput(t));
        }
    } else if let Some(o) = s
        .on_demand_throughput
        .as_ref()
        .filter(|o| o.max_read_request_units.is_some() || o.max_write_request_units.is_some())
    {
        req = req.on_demand_throughput(on_demand(o));
    }
    for g in &s.global_secondary_indexes {
        let mut b = ddb::GlobalSecondaryIndex::builder()
            .index_name(&g.index_name)
            .set_key_schema(Some(key_schema(&g.key_schema)))
            .projection(projection(g));
        if provisioned {
            let t = g
                .provisioned_throughput
                .clone()
                .or_else(|| s.provisioned_throughput.clone());
            if let Some(t) = t {
                b = b.provisioned_throughput(throughput(&t));
            }
        }
        req = req.global_secondary_indexes(b.build().expect("index fields are set"));
    }
    for l in &s.local_secondary_indexes {
        req = req.local_secondary_indexes(
            ddb::LocalSecondaryIndex::builder()
                .index_name(&l.index_name)
                .set_key_schema(Some(key_schema(&l.key_schema)))
                .projection(projection(l))
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
    if let Some(ttl) = s
        .time_to_live
        .as_ref()
        .filter(|t| t.time_to_live_status.starts_with("ENABL"))
    {
        if let Some(attr) = &ttl.attribute_name {
            aws.call(
                || format!("table {target}: UpdateTimeToLive"),
                None,
                || {
                    aws.dynamodb
                        .update_time_to_live()
                        .table_name(target)
                        .time_to_live_specification(
                            ddb::TimeToLiveSpecification::builder()
                                .enabled(true)
                                .attribute_name(attr)
                                .build()
                                .expect("fields are set"),
                        )
                        .send()
                },
            )
            .await?;
        }
    }
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
