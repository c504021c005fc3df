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
    let mut req = create_request(aws, target, s);
    let mut outcome = SettingsOutcome::default();
    if with_settings {
        req = AtCreation::of(s).apply(req, &mut outcome);
    }
    match s.settings.sse.as_ref().filter(|_| with_settings) {
        None => send_create(aws, target, req).await?,
        Some(sse) => {
            let key = sse.kms_master_key_arn.as_deref();
            create_encrypted(aws, target, req, key, &mut outcome).await?
        }
    }
    aws.wait_active(target).await?;
    if with_settings {
        aws.restore_settings(target, s, &mut outcome).await;
    }
    Ok((aws.describe_table(target).await?, outcome))
}

/// CreateTable for `target` as `s` describes it: keys, billing and indexes.
fn create_request(aws: &Aws, target: &str, s: &TableSchema) -> CreateTable {
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
    req
}

/// The settings a table is given when it is created (the others are put back once it is
/// ACTIVE), and what its report says of them.
#[derive(Debug, Default, PartialEq)]
struct AtCreation {
    stream: Option<ddb::StreamSpecification>,
    table_class: Option<ddb::TableClass>,
    deletion_protection: bool,
    warm_throughput: Option<ddb::WarmThroughput>,
    restored: Vec<String>,
}

impl AtCreation {
    /// What `s` records: a stream, a table class other than STANDARD, deletion
    /// protection, warm throughput (at least what the export's size needs, see
    /// [`warm_writes`]).
    fn of(s: &TableSchema) -> Self {
        let mut at = AtCreation::default();
        if let Some(st) = s
            .stream_specification
            .as_ref()
            .filter(|st| st.stream_enabled)
        {
            at.stream = Some(table::sdk_stream(st));
            at.restored.push("stream".into());
        }
        if let Some(c) = s.table_class.as_deref().filter(|c| *c != "STANDARD") {
            at.table_class = Some(ddb::TableClass::from(c));
            at.restored.push(format!("table class {c}"));
        }
        if s.deletion_protection_enabled == Some(true) {
            at.deletion_protection = true;
            at.restored.push("deletion protection".into());
        }
        let recorded = s.settings.warm_throughput.as_ref();
        let writes = warm_writes(s);
        if recorded.is_some() || writes.is_some() {
            let write = recorded.and_then(|w| w.write_units_per_second).max(writes);
            at.warm_throughput = Some(
                ddb::WarmThroughput::builder()
                    .set_read_units_per_second(recorded.and_then(|w| w.read_units_per_second))
                    .set_write_units_per_second(write)
                    .build(),
            );
            at.restored.push(match writes {
                Some(w) if Some(w) == write => format!(
                    "warm throughput ({w} writes/s, so {} MB go in about 10 minutes)",
                    s.table_size_bytes / 1_000_000
                ),
                _ => "warm throughput".into(),
            });
        }
        at
    }

    /// `req` with these settings; what they are, said in `outcome`.
    fn apply(self, mut req: CreateTable, outcome: &mut SettingsOutcome) -> CreateTable {
        if let Some(st) = self.stream {
            req = req.stream_specification(st);
        }
        if let Some(c) = self.table_class {
            req = req.table_class(c);
        }
        if self.deletion_protection {
            req = req.deletion_protection_enabled(true);
        }
        if let Some(w) = self.warm_throughput {
            req = req.warm_throughput(w);
        }
        outcome.restored.extend(self.restored);
        req
    }
}

/// CreateTable encrypted with the KMS key `key` (none: aws/dynamodb). A key this account
/// may not use (another account's, or the source account's AWS managed key): the
/// account's own managed key instead, said so in `outcome`.
async fn create_encrypted(
    aws: &Aws,
    target: &str,
    req: CreateTable,
    key: Option<&str>,
    outcome: &mut SettingsOutcome,
) -> Result<()> {
    let with_key = |req: CreateTable, key: Option<&str>| {
        req.sse_specification(
            ddb::SseSpecification::builder()
                .enabled(true)
                .sse_type(ddb::SseType::Kms)
                .set_kms_master_key_id(key.map(str::to_string))
                .build(),
        )
    };
    match send_create(aws, target, with_key(req.clone(), key)).await {
        Ok(()) => {
            outcome.restored.push(format!(
                "encryption (KMS key {})",
                key.unwrap_or("aws/dynamodb")
            ));
            Ok(())
        }
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
    use crate::aws::canned::Canned;

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

    fn schema(extra: serde_json::Value) -> TableSchema {
        let mut v = serde_json::json!({
            "TableName": "src",
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "BillingMode": "PAY_PER_REQUEST"
        });
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn a_table_with_nothing_recorded_gets_nothing_at_creation() {
        assert_eq!(
            AtCreation::of(&schema(serde_json::json!({}))),
            AtCreation::default()
        );
        let standard = schema(serde_json::json!({
            "TableClass": "STANDARD",
            "DeletionProtectionEnabled": false,
            "StreamSpecification": {"StreamEnabled": false}
        }));
        assert_eq!(AtCreation::of(&standard), AtCreation::default());
    }

    #[test]
    fn recorded_settings_are_given_at_creation_and_said() {
        let s = schema(serde_json::json!({
            "StreamSpecification": {"StreamEnabled": true, "StreamViewType": "NEW_IMAGE"},
            "TableClass": "STANDARD_INFREQUENT_ACCESS",
            "DeletionProtectionEnabled": true,
            "TableSizeBytes": 20_000_000_000i64,
            "WarmThroughput": {"ReadUnitsPerSecond": 12_000, "WriteUnitsPerSecond": 4_000}
        }));
        let at = AtCreation::of(&s);
        assert_eq!(
            at.stream
                .as_ref()
                .and_then(|st| st.stream_view_type.clone()),
            Some(ddb::StreamViewType::NewImage)
        );
        assert_eq!(
            at.table_class,
            Some(ddb::TableClass::StandardInfrequentAccess)
        );
        assert!(at.deletion_protection);
        let warm = at.warm_throughput.as_ref().unwrap();
        assert_eq!(warm.read_units_per_second, Some(12_000));
        assert_eq!(
            warm.write_units_per_second,
            Some(32_553),
            "what the size needs"
        );
        assert_eq!(
            at.restored,
            [
                "stream",
                "table class STANDARD_INFREQUENT_ACCESS",
                "deletion protection",
                "warm throughput (32553 writes/s, so 20000 MB go in about 10 minutes)"
            ]
        );

        let recorded_only = schema(serde_json::json!({
            "WarmThroughput": {"WriteUnitsPerSecond": 5_000}
        }));
        let at = AtCreation::of(&recorded_only);
        assert_eq!(at.restored, ["warm throughput"]);
        let aws = Aws::for_tests("http://127.0.0.1:9", crate::clock::ManualClock::default());
        let mut outcome = SettingsOutcome::default();
        let req = at.apply(create_request(&aws, "dst", &recorded_only), &mut outcome);
        assert_eq!(outcome.restored, ["warm throughput"]);
        let warm = req.get_warm_throughput().as_ref().unwrap();
        assert_eq!(warm.write_units_per_second, Some(5_000));
        assert_eq!(req.get_table_name().as_deref(), Some("dst"));
    }

    #[test]
    fn a_created_table_has_the_exports_local_indexes() {
        let s = schema(serde_json::json!({
            "KeySchema": [
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"}
            ],
            "AttributeDefinitions": [
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "at", "AttributeType": "N"}
            ],
            "LocalSecondaryIndexes": [{
                "IndexName": "by_at",
                "KeySchema": [
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "at", "KeyType": "RANGE"}
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"}
            }]
        }));
        let aws = Aws::for_tests("http://127.0.0.1:9", crate::clock::ManualClock::default());
        let req = create_request(&aws, "dst", &s);
        let lsis = req.get_local_secondary_indexes().as_ref().unwrap();
        assert_eq!(lsis.len(), 1);
        assert_eq!(lsis[0].index_name, "by_at");
        assert_eq!(req.get_key_schema().as_ref().unwrap().len(), 2);
        assert_eq!(
            req.get_billing_mode(),
            &Some(ddb::BillingMode::PayPerRequest)
        );
    }

    /// CreateTable encrypted with the key `arn:k`, against a canned endpoint giving
    /// `answers`: what was asked, what came of it, and what the report would say.
    async fn create_encrypted_against(
        answers: Vec<(u16, String)>,
    ) -> (Canned, Result<()>, SettingsOutcome) {
        let canned = Canned::start(answers).await;
        let aws = Aws::for_tests(&canned.url, crate::clock::ManualClock::default());
        let req = create_request(&aws, "dst", &schema(serde_json::json!({})));
        let mut outcome = SettingsOutcome::default();
        let r = create_encrypted(&aws, "dst", req, Some("arn:k"), &mut outcome).await;
        (canned, r, outcome)
    }

    const DENIED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ValidationException","message":"KMS key arn:k is not accessible"}"#;

    #[tokio::test]
    async fn a_kms_key_this_account_cannot_use_falls_back_to_the_managed_key_said_so() {
        let answers = vec![(400, DENIED.into()), (200, "{}".into())];
        let (canned, r, outcome) = create_encrypted_against(answers).await;
        r.unwrap();
        assert_eq!(canned.ops(), ["CreateTable", "CreateTable"]);
        let requests = canned.requests.lock().unwrap().clone();
        assert_eq!(requests[0].1["SSESpecification"]["KMSMasterKeyId"], "arn:k");
        let fallback = &requests[1].1["SSESpecification"];
        assert!(fallback.get("KMSMasterKeyId").is_none());
        assert_eq!(fallback["SSEType"], "KMS");
        assert!(outcome.restored.is_empty());
        assert!(
            outcome.not_restored[0].starts_with("encryption with KMS key arn:k: "),
            "{outcome:?}"
        );
    }

    #[tokio::test]
    async fn a_usable_kms_key_is_said_restored_and_another_failure_is_the_tables() {
        let (_, r, outcome) = create_encrypted_against(vec![(200, "{}".into())]).await;
        r.unwrap();
        assert_eq!(outcome.restored, ["encryption (KMS key arn:k)"]);

        let other = DENIED.replace("KMS key", "limit");
        let (canned, r, _) = create_encrypted_against(vec![(400, other)]).await;
        let err = r.unwrap_err();
        assert!(err.to_string().contains("limit"), "{err}");
        assert_eq!(canned.ops(), ["CreateTable"]);
    }
}
