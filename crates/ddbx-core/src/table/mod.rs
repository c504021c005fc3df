//! A table's description as ddbx saves it in `table.json`: everything a restore needs to
//! check or recreate the table, in the field names of the DynamoDB API.

use aws_sdk_dynamodb::types as ddb;
use serde::{Deserialize, Serialize};

mod schemas;
pub mod settings;

pub use schemas::Schemas;

/// One key attribute: its name, its role (HASH or RANGE) and its scalar type (S, N, B).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyAttribute {
    /// Attribute name.
    pub attribute_name: String,
    /// `HASH` (partition key) or `RANGE` (sort key).
    pub key_type: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// Provisioned read and write capacity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Throughput {
    /// Read capacity units.
    pub read_capacity_units: i64,
    /// Write capacity units.
    pub write_capacity_units: i64,
}

/// On-demand maximums (absent or -1 when unlimited).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
pub struct OnDemandThroughput {
    /// Maximum read request units per second.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_read_request_units: Option<i64>,
    /// Maximum write request units per second.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_write_request_units: Option<i64>,
}

/// Which attributes an index copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Projection {
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    /// The attributes copied by an `INCLUDE` projection.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub non_key_attributes: Vec<String>,
}

/// A global or local secondary index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Index {
    /// Index name.
    pub index_name: String,
    /// `(attribute, HASH|RANGE)` pairs.
    pub key_schema: Vec<KeyElement>,
    /// Projected attributes.
    pub projection: Projection,
    /// Provisioned capacity of a GSI on a provisioned table.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provisioned_throughput: Option<Throughput>,
    /// On-demand maximums of a GSI.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub on_demand_throughput: Option<OnDemandThroughput>,
}

/// One element of a key schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyElement {
    /// Attribute name.
    pub attribute_name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

/// An attribute's declared scalar type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDefinition {
    /// Attribute name.
    pub attribute_name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// Time to live settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TimeToLive {
    /// `ENABLED`, `DISABLED`, `ENABLING` or `DISABLING`.
    pub time_to_live_status: String,
    /// The attribute holding the expiry time.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attribute_name: Option<String>,
}

/// Stream settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamSpecification {
    /// Whether a stream is on.
    pub stream_enabled: bool,
    /// What the stream carries.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stream_view_type: Option<String>,
}

/// Everything ddbx keeps about a table (`table.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableSchema {
    /// Table name.
    pub table_name: String,
    /// Provisioned-capacity decreases the table has had today (from DescribeTable; not
    /// kept in `table.json`).
    #[serde(skip)]
    pub decreases_today: i64,
    /// Table ARN.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table_arn: Option<String>,
    /// Table id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table_id: Option<String>,
    /// When the table was created (from DescribeTable; not kept in `table.json`).
    #[serde(skip)]
    pub creation_date_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Primary key.
    pub key_schema: Vec<KeyElement>,
    /// Types of the key attributes (table and indexes).
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// `PROVISIONED` or `PAY_PER_REQUEST`.
    pub billing_mode: String,
    /// Provisioned capacity (provisioned tables).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub provisioned_throughput: Option<Throughput>,
    /// On-demand maximums.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub on_demand_throughput: Option<OnDemandThroughput>,
    /// Global secondary indexes.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub global_secondary_indexes: Vec<Index>,
    /// Local secondary indexes.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub local_secondary_indexes: Vec<Index>,
    /// Stream settings.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub stream_specification: Option<StreamSpecification>,
    /// Time to live.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub time_to_live: Option<TimeToLive>,
    /// `STANDARD` or `STANDARD_INFREQUENT_ACCESS`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table_class: Option<String>,
    /// Whether deletion protection is on.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub deletion_protection_enabled: Option<bool>,
    /// Approximate item count when described (updated by DynamoDB every ~6 hours).
    #[serde(default)]
    pub item_count: i64,
    /// Approximate size in bytes when described.
    #[serde(default)]
    pub table_size_bytes: i64,
    /// The rest of its settings (tags, point-in-time recovery, encryption, ...).
    #[serde(flatten)]
    pub settings: settings::TableSettings,
}

/// Which table a name stood for when something was recorded about it: a table dropped and
/// created again under its name has another id and creation time (its ARN is the same).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TableIdentity {
    /// `TableId`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table_id: Option<String>,
    /// `TableArn`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub table_arn: Option<String>,
    /// `CreationDateTime`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub created_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl TableIdentity {
    /// Whether this and `other` are known to be one table: their ids, else their ARNs
    /// and creation times, are given and equal.
    pub fn same_table(&self, other: &TableIdentity) -> bool {
        match (&self.table_id, &other.table_id) {
            (Some(a), Some(b)) => a == b && self.created_at == other.created_at,
            _ => {
                self.table_arn.is_some()
                    && self.created_at.is_some()
                    && self.table_arn == other.table_arn
                    && self.created_at == other.created_at
            }
        }
    }
}

/// DynamoDB's default table quota, also what the EMR connector assumes for on-demand tables.
pub const ON_DEMAND_DEFAULT_UNITS: f64 = 40_000.0;

/// The writes a second a new on-demand table takes before it scales (its initial warm
/// throughput, as DescribeTable reports it), when the table does not say.
pub const NEW_ON_DEMAND_WRITE_UNITS: f64 = 4_000.0;

impl TableSchema {
    /// Which table this description is of (see [`TableIdentity`]).
    pub fn identity(&self) -> TableIdentity {
        TableIdentity {
            table_id: self.table_id.clone(),
            table_arn: self.table_arn.clone(),
            created_at: self.creation_date_time,
        }
    }

    /// The key its items must carry, as the item layer checks it.
    pub fn key_check(&self) -> crate::item::key::KeySchema {
        key_check(&self.key())
    }

    /// Build from DescribeTable's answer (and DescribeTimeToLive's, when known).
    pub fn from_description(
        t: &ddb::TableDescription,
        ttl: Option<&ddb::TimeToLiveDescription>,
    ) -> Self {
        let billing_mode = t
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str().to_string())
            .unwrap_or_else(|| "PROVISIONED".to_string());
        let on_demand = billing_mode == "PAY_PER_REQUEST";
        Self {
            table_name: t.table_name().unwrap_or_default().to_string(),
            decreases_today: t
                .provisioned_throughput()
                .and_then(|p| p.number_of_decreases_today())
                .unwrap_or(0),
            table_arn: t.table_arn().map(str::to_string),
            table_id: t.table_id().map(str::to_string),
            creation_date_time: t
                .creation_date_time()
                .and_then(|d| chrono::DateTime::from_timestamp(d.secs(), d.subsec_nanos())),
            key_schema: t.key_schema().iter().map(key_element).collect(),
            attribute_definitions: t
                .attribute_definitions()
                .iter()
                .map(|a| AttributeDefinition {
                    attribute_name: a.attribute_name().to_string(),
                    attribute_type: a.attribute_type().as_str().to_string(),
                })
                .collect(),
            provisioned_throughput: if on_demand {
                None
            } else {
                t.provisioned_throughput().map(throughput)
            },
            on_demand_throughput: t.on_demand_throughput().map(on_demand_throughput),
            billing_mode,
            global_secondary_indexes: t
                .global_secondary_indexes()
                .iter()
                .map(|g| Index {
                    index_name: g.index_name().unwrap_or_default().to_string(),
                    key_schema: g.key_schema().iter().map(key_element).collect(),
                    projection: projection(g.projection()),
                    provisioned_throughput: if on_demand {
                        None
                    } else {
                        g.provisioned_throughput().map(throughput)
                    },
                    on_demand_throughput: g.on_demand_throughput().map(on_demand_throughput),
                })
                .collect(),
            local_secondary_indexes: t
                .local_secondary_indexes()
                .iter()
                .map(|l| Index {
                    index_name: l.index_name().unwrap_or_default().to_string(),
                    key_schema: l.key_schema().iter().map(key_element).collect(),
                    projection: projection(l.projection()),
                    provisioned_throughput: None,
                    on_demand_throughput: None,
                })
                .collect(),
            stream_specification: t.stream_specification().map(|s| StreamSpecification {
                stream_enabled: s.stream_enabled(),
                stream_view_type: s.stream_view_type().map(|v| v.as_str().to_string()),
            }),
            time_to_live: ttl.map(|d| TimeToLive {
                time_to_live_status: d
                    .time_to_live_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|| "DISABLED".into()),
                attribute_name: d.attribute_name().map(str::to_string),
            }),
            table_class: t
                .table_class_summary()
                .and_then(|c| c.table_class())
                .map(|c| c.as_str().to_string()),
            deletion_protection_enabled: t.deletion_protection_enabled(),
            item_count: t.item_count().unwrap_or(0),
            table_size_bytes: t.table_size_bytes().unwrap_or(0),
            settings: settings::TableSettings {
                sse: t
                    .sse_description()
                    .filter(|s| s.sse_type() == Some(&ddb::SseType::Kms))
                    .map(|s| settings::Sse {
                        sse_type: "KMS".into(),
                        kms_master_key_arn: s.kms_master_key_arn().map(str::to_string),
                    }),
                warm_throughput: t.warm_throughput().and_then(|w| {
                    let (r, wr) = (w.read_units_per_second(), w.write_units_per_second());
                    (r.is_some() || wr.is_some()).then_some(settings::WarmThroughput {
                        read_units_per_second: r,
                        write_units_per_second: wr,
                    })
                }),
                ..Default::default()
            },
        }
    }

    /// The writes a second an on-demand table takes now (its warm throughput, or what a new
    /// table takes when it does not say); `None` for a provisioned table.
    pub fn accepted_write_units(&self) -> Option<f64> {
        self.is_on_demand().then(|| {
            self.settings
                .warm_throughput
                .as_ref()
                .and_then(|w| w.write_units_per_second)
                // An endpoint that reports none (0) has not said.
                .filter(|w| *w > 0)
                .map_or(NEW_ON_DEMAND_WRITE_UNITS, |w| w as f64)
        })
    }

    /// The table's key: partition key first, then the sort key if any, with their types.
    pub fn key(&self) -> Vec<KeyAttribute> {
        let mut keys: Vec<KeyAttribute> = self
            .key_schema
            .iter()
            .map(|k| KeyAttribute {
                attribute_name: k.attribute_name.clone(),
                key_type: k.key_type.clone(),
                attribute_type: self
                    .attribute_definitions
                    .iter()
                    .find(|a| a.attribute_name == k.attribute_name)
                    .map(|a| a.attribute_type.clone())
                    .unwrap_or_default(),
            })
            .collect();
        keys.sort_by_key(|k| k.key_type != "HASH");
        keys
    }

    /// Whether the table is billed per request.
    pub fn is_on_demand(&self) -> bool {
        self.billing_mode == "PAY_PER_REQUEST"
    }

    /// The read units per second that `ratio` of this table's capacity is.
    ///
    /// Provisioned: ratio × RCU. On demand: ratio × MaxReadRequestUnits when set, else
    /// ratio × 40,000 (DynamoDB's default quota, as the EMR connector assumes).
    pub fn read_units(&self, ratio: f64) -> f64 {
        ratio * self.capacity(|t| t.read_capacity_units, |o| o.max_read_request_units)
    }

    /// The write units per second that `ratio` of this table's capacity is.
    pub fn write_units(&self, ratio: f64) -> f64 {
        ratio * self.capacity(|t| t.write_capacity_units, |o| o.max_write_request_units)
    }

    fn capacity(
        &self,
        provisioned: impl Fn(&Throughput) -> i64,
        on_demand: impl Fn(&OnDemandThroughput) -> Option<i64>,
    ) -> f64 {
        if !self.is_on_demand() {
            if let Some(units) = self.provisioned_throughput.as_ref().map(&provisioned) {
                if units > 0 {
                    return units as f64;
                }
            }
        }
        self.on_demand_throughput
            .as_ref()
            .and_then(on_demand)
            .filter(|u| *u > 0)
            .map(|u| u as f64)
            .unwrap_or(ON_DEMAND_DEFAULT_UNITS)
    }
}

fn key_element(k: &ddb::KeySchemaElement) -> KeyElement {
    KeyElement {
        attribute_name: k.attribute_name().to_string(),
        key_type: k.key_type().as_str().to_string(),
    }
}

fn throughput(p: &ddb::ProvisionedThroughputDescription) -> Throughput {
    Throughput {
        read_capacity_units: p.read_capacity_units().unwrap_or(0),
        write_capacity_units: p.write_capacity_units().unwrap_or(0),
    }
}

fn on_demand_throughput(o: &ddb::OnDemandThroughput) -> OnDemandThroughput {
    OnDemandThroughput {
        max_read_request_units: o.max_read_request_units(),
        max_write_request_units: o.max_write_request_units(),
    }
}

fn projection(p: Option<&ddb::Projection>) -> Projection {
    Projection {
        projection_type: p
            .and_then(|p| p.projection_type())
            .map(|t| t.as_str().to_string())
            .unwrap_or_else(|| "ALL".into()),
        non_key_attributes: p
            .map(|p| p.non_key_attributes().to_vec())
            .unwrap_or_default(),
    }
}

// ---- As the SDK takes them (CreateTable, ImportTable) ----

/// What CreateTable and ImportTable's TableCreationParameters share, from a table.json:
/// its billing, its capacity (provisioned) or maximums (on demand), and its GSIs (with
/// their own capacity, else the table's, or their own on-demand maximums).
pub(crate) struct SdkCreation {
    pub billing: aws_sdk_dynamodb::types::BillingMode,
    pub provisioned: Option<aws_sdk_dynamodb::types::ProvisionedThroughput>,
    pub on_demand: Option<aws_sdk_dynamodb::types::OnDemandThroughput>,
    pub gsis: Option<Vec<aws_sdk_dynamodb::types::GlobalSecondaryIndex>>,
}

/// The [`SdkCreation`] of a table.json.
pub(crate) fn sdk_creation(s: &TableSchema) -> SdkCreation {
    use aws_sdk_dynamodb::types as sdk;
    let provisioned = !s.is_on_demand();
    let gsis: Vec<sdk::GlobalSecondaryIndex> = s
        .global_secondary_indexes
        .iter()
        .map(|g| {
            let t = g
                .provisioned_throughput
                .clone()
                .or_else(|| s.provisioned_throughput.clone())
                .filter(|_| provisioned);
            sdk::GlobalSecondaryIndex::builder()
                .index_name(&g.index_name)
                .set_key_schema(Some(sdk_key_schema(&g.key_schema)))
                .projection(sdk_projection(g))
                .set_provisioned_throughput(t.as_ref().map(sdk_throughput))
                .set_on_demand_throughput(
                    g.on_demand_throughput
                        .as_ref()
                        .filter(|o| {
                            !provisioned
                                && (o.max_read_request_units.is_some()
                                    || o.max_write_request_units.is_some())
                        })
                        .map(sdk_on_demand),
                )
                .build()
                .expect("index fields are set")
        })
        .collect();
    SdkCreation {
        billing: if provisioned {
            sdk::BillingMode::Provisioned
        } else {
            sdk::BillingMode::PayPerRequest
        },
        provisioned: s
            .provisioned_throughput
            .as_ref()
            .filter(|_| provisioned)
            .map(sdk_throughput),
        on_demand: s
            .on_demand_throughput
            .as_ref()
            .filter(|o| {
                !provisioned
                    && (o.max_read_request_units.is_some() || o.max_write_request_units.is_some())
            })
            .map(sdk_on_demand),
        gsis: (!gsis.is_empty()).then_some(gsis),
    }
}

/// A stream specification as the SDK takes it (CreateTable, UpdateTable).
pub(crate) fn sdk_stream(st: &StreamSpecification) -> ddb::StreamSpecification {
    ddb::StreamSpecification::builder()
        .stream_enabled(st.stream_enabled)
        .set_stream_view_type(
            st.stream_view_type
                .as_deref()
                .map(ddb::StreamViewType::from),
        )
        .build()
        .expect("enabled is set")
}

pub(crate) fn sdk_key_schema(k: &[KeyElement]) -> Vec<aws_sdk_dynamodb::types::KeySchemaElement> {
    k.iter()
        .map(|e| {
            aws_sdk_dynamodb::types::KeySchemaElement::builder()
                .attribute_name(&e.attribute_name)
                .key_type(aws_sdk_dynamodb::types::KeyType::from(e.key_type.as_str()))
                .build()
                .expect("name and type are set")
        })
        .collect()
}

pub(crate) fn sdk_projection(i: &Index) -> aws_sdk_dynamodb::types::Projection {
    aws_sdk_dynamodb::types::Projection::builder()
        .projection_type(aws_sdk_dynamodb::types::ProjectionType::from(
            i.projection.projection_type.as_str(),
        ))
        .set_non_key_attributes(
            (!i.projection.non_key_attributes.is_empty())
                .then(|| i.projection.non_key_attributes.clone()),
        )
        .build()
}

pub(crate) fn sdk_throughput(t: &Throughput) -> aws_sdk_dynamodb::types::ProvisionedThroughput {
    aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
        .read_capacity_units(t.read_capacity_units.max(1))
        .write_capacity_units(t.write_capacity_units.max(1))
        .build()
        .expect("units are set")
}

pub(crate) fn sdk_on_demand(o: &OnDemandThroughput) -> aws_sdk_dynamodb::types::OnDemandThroughput {
    aws_sdk_dynamodb::types::OnDemandThroughput::builder()
        .set_max_read_request_units(o.max_read_request_units)
        .set_max_write_request_units(o.max_write_request_units)
        .build()
}

/// The attribute definitions of a table.json.
pub(crate) fn sdk_attribute_definitions(
    s: &TableSchema,
) -> Vec<aws_sdk_dynamodb::types::AttributeDefinition> {
    s.attribute_definitions
        .iter()
        .map(|a| {
            aws_sdk_dynamodb::types::AttributeDefinition::builder()
                .attribute_name(&a.attribute_name)
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::from(
                    a.attribute_type.as_str(),
                ))
                .build()
                .expect("name and type are set")
        })
        .collect()
}

/// A key as the item layer checks it (attributes of another type than S, N or B, which
/// DynamoDB does not have, are left out).
pub fn key_check(key: &[KeyAttribute]) -> crate::item::key::KeySchema {
    use crate::item::key::{KeyPart, KeySchema, KeyType};
    KeySchema {
        parts: key
            .iter()
            .filter_map(|k| {
                Some(KeyPart {
                    name: k.attribute_name.clone(),
                    ty: KeyType::parse(&k.attribute_type)?,
                    partition: k.key_type == "HASH",
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(billing: &str) -> TableSchema {
        TableSchema {
            table_name: "t".into(),
            decreases_today: 0,
            table_arn: None,
            table_id: None,
            creation_date_time: None,
            key_schema: vec![
                KeyElement {
                    attribute_name: "sk".into(),
                    key_type: "RANGE".into(),
                },
                KeyElement {
                    attribute_name: "pk".into(),
                    key_type: "HASH".into(),
                },
            ],
            attribute_definitions: vec![
                AttributeDefinition {
                    attribute_name: "pk".into(),
                    attribute_type: "S".into(),
                },
                AttributeDefinition {
                    attribute_name: "sk".into(),
                    attribute_type: "N".into(),
                },
            ],
            billing_mode: billing.into(),
            provisioned_throughput: Some(Throughput {
                read_capacity_units: 200,
                write_capacity_units: 50,
            }),
            on_demand_throughput: None,
            global_secondary_indexes: vec![],
            local_secondary_indexes: vec![],
            stream_specification: None,
            time_to_live: None,
            table_class: None,
            deletion_protection_enabled: None,
            item_count: 0,
            table_size_bytes: 0,
            settings: Default::default(),
        }
    }

    #[test]
    fn table_json_keeps_every_setting_and_reads_older_files() {
        let mut s = schema("PROVISIONED");
        s.settings = settings::TableSettings {
            tags: Some(vec![settings::Tag {
                key: "team".into(),
                value: "ops".into(),
            }]),
            point_in_time_recovery_enabled: Some(true),
            sse: Some(settings::Sse {
                sse_type: "KMS".into(),
                kms_master_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k".into()),
            }),
            warm_throughput: Some(settings::WarmThroughput {
                read_units_per_second: Some(12000),
                write_units_per_second: Some(4000),
            }),
            auto_scaling: Some(vec![settings::ScalableTarget {
                index_name: Some("by-g".into()),
                scalable_dimension: "dynamodb:index:ReadCapacityUnits".into(),
                min_capacity: 5,
                max_capacity: 500,
                policies: vec![settings::ScalingPolicy {
                    policy_name: "p".into(),
                    target_value: 70.0,
                    predefined_metric_type: Some("DynamoDBReadCapacityUtilization".into()),
                    scale_in_cooldown: Some(60),
                    scale_out_cooldown: None,
                    disable_scale_in: None,
                }],
            }]),
            resource_policy: Some("{}".into()),
            not_recorded: vec!["nothing".into()],
        };
        let json = serde_json::to_value(&s).unwrap();
        // Flat, in DynamoDB's own spelling.
        assert_eq!(json["Tags"][0]["Key"], "team");
        assert_eq!(
            json["SSEDescription"]["KMSMasterKeyArn"],
            "arn:aws:kms:us-east-1:111122223333:key/k"
        );
        assert_eq!(json["PointInTimeRecoveryEnabled"], true);
        let back: TableSchema = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
        // A table.json of an older ddbx has none of them.
        let mut old = serde_json::to_value(schema("PROVISIONED")).unwrap();
        old.as_object_mut().unwrap().remove("Tags");
        let old: TableSchema = serde_json::from_value(old).unwrap();
        assert_eq!(old.settings, settings::TableSettings::default());
    }

    #[test]
    fn capacity_targets() {
        let p = schema("PROVISIONED");
        assert_eq!(p.read_units(0.5), 100.0);
        assert_eq!(p.write_units(0.8), 40.0);
        let mut o = schema("PAY_PER_REQUEST");
        assert_eq!(o.read_units(0.5), 20_000.0);
        o.on_demand_throughput = Some(OnDemandThroughput {
            max_read_request_units: Some(1000),
            max_write_request_units: Some(-1),
        });
        assert_eq!(o.read_units(0.5), 500.0);
        assert_eq!(o.write_units(0.5), 20_000.0);
    }

    #[test]
    fn key_puts_partition_key_first() {
        let k = schema("PROVISIONED").key();
        assert_eq!(k[0].attribute_name, "pk");
        assert_eq!(k[0].attribute_type, "S");
        assert_eq!(k[1].attribute_name, "sk");
        assert_eq!(k[1].attribute_type, "N");
    }
}
