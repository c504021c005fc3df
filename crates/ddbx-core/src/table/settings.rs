//! A table's settings beyond its keys, indexes and capacity, as `table.json` records them:
//! tags, point-in-time recovery, encryption, warm throughput, auto scaling and (when asked)
//! the resource policy. A setting that could not be read is `None` and named in
//! `NotRecorded` with why, so an import can say what it could not put back and why.
//! (Stream, time to live, table class and deletion protection are in [`super::TableSchema`]
//! itself, as DescribeTable has them.) Reading and restoring are AWS calls: `aws::settings`.

use serde::{Deserialize, Serialize};

/// The settings of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TableSettings {
    /// Its tags (ListTagsOfResource).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    /// Whether point-in-time recovery is on (DescribeContinuousBackups).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub point_in_time_recovery_enabled: Option<bool>,
    /// Server-side encryption other than the AWS owned key (DescribeTable).
    #[serde(rename = "SSEDescription", skip_serializing_if = "Option::is_none")]
    pub sse: Option<Sse>,
    /// Warm throughput (DescribeTable).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_throughput: Option<WarmThroughput>,
    /// Auto-scaling targets and their policies, table and indexes (Application Auto Scaling).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_scaling: Option<Vec<ScalableTarget>>,
    /// The resource policy (GetResourcePolicy), with `export --resource-policy`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_policy: Option<String>,
    /// Settings that could not be read, with why (`tags: AccessDeniedException: ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_recorded: Vec<String>,
}

/// One tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    /// Its key.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// Server-side encryption with a KMS key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sse {
    /// `KMS`.
    #[serde(rename = "SSEType")]
    pub sse_type: String,
    /// The key (absent: the AWS managed key `aws/dynamodb`).
    #[serde(
        rename = "KMSMasterKeyArn",
        skip_serializing_if = "Option::is_none",
        default
    )]
    pub kms_master_key_arn: Option<String>,
}

/// Warm throughput: what the table is ready to serve at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WarmThroughput {
    /// Reads per second.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub read_units_per_second: Option<i64>,
    /// Writes per second.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub write_units_per_second: Option<i64>,
}

/// One auto-scaling target of the table or of one of its indexes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalableTarget {
    /// The index it scales, or none for the table.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub index_name: Option<String>,
    /// `dynamodb:table:ReadCapacityUnits`, `dynamodb:index:WriteCapacityUnits`, ...
    pub scalable_dimension: String,
    /// Its minimum.
    pub min_capacity: i32,
    /// Its maximum.
    pub max_capacity: i32,
    /// Its target-tracking policies.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub policies: Vec<ScalingPolicy>,
}

impl ScalableTarget {
    /// Its resource id on table `table`: `table/<t>` or `table/<t>/index/<i>`.
    pub fn resource_id(&self, table: &str) -> String {
        match &self.index_name {
            Some(i) => format!("table/{table}/index/{i}"),
            None => format!("table/{table}"),
        }
    }
}

/// A target-tracking scaling policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScalingPolicy {
    /// Its name.
    pub policy_name: String,
    /// The utilisation it keeps (percent).
    pub target_value: f64,
    /// `DynamoDBReadCapacityUtilization` or `DynamoDBWriteCapacityUtilization`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub predefined_metric_type: Option<String>,
    /// Seconds between scale-ins.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scale_in_cooldown: Option<i32>,
    /// Seconds between scale-outs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub scale_out_cooldown: Option<i32>,
    /// Never scale in.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub disable_scale_in: Option<bool>,
}

/// What an import did with a created table's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsOutcome {
    /// Put back (`tags (3)`, `point-in-time recovery`, ...).
    pub restored: Vec<String>,
    /// Not put back, each with why.
    pub not_restored: Vec<String>,
}

impl SettingsOutcome {
    /// One line for a table's report.
    pub fn note(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.restored.is_empty() {
            parts.push(format!("settings restored: {}", self.restored.join(", ")));
        }
        if !self.not_restored.is_empty() {
            parts.push(format!("NOT restored: {}", self.not_restored.join("; ")));
        }
        (!parts.is_empty()).then(|| parts.join("; "))
    }
}
