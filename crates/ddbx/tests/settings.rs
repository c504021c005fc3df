//! Whole table settings: recorded at export, put back by `import --create-missing`, against
//! moto's DynamoDB and Application Auto Scaling (dynalite has no point-in-time recovery,
//! time to live updates or resource policies), and a KMS key the target account may not use
//! refused through the fault proxy.

use serde_json::{json, Value};

use crate::support::fault_proxy::{FaultProxy, Faults};
use crate::support::{json_stdout, table_report, TestEnv};

const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/source-account-key";

/// The settings of `table` in moto, as one JSON document.
fn settings_of(env: &TestEnv, table: &str) -> Value {
    env.boto3(
        "dynamodb",
        r#"import boto3 as b
t = sys.argv[2]
d = c.describe_table(TableName=t)['Table']
a = b.client('application-autoscaling', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t')
ids = ['table/' + t, 'table/' + t + '/index/by-g']
targets = a.describe_scalable_targets(ServiceNamespace='dynamodb', ResourceIds=ids)['ScalableTargets']
pols = a.describe_scaling_policies(ServiceNamespace='dynamodb')['ScalingPolicies']
try:
    pol = c.get_resource_policy(ResourceArn=d['TableArn'])['Policy']
except Exception:
    pol = None
mine = lambda rid: rid == 'table/' + t or rid.startswith('table/' + t + '/')
r = {'tags': c.list_tags_of_resource(ResourceArn=d['TableArn'])['Tags'],
     'ttl': c.describe_time_to_live(TableName=t)['TimeToLiveDescription'],
     'pitr': c.describe_continuous_backups(TableName=t)['ContinuousBackupsDescription']['PointInTimeRecoveryDescription']['PointInTimeRecoveryStatus'],
     'protected': d.get('DeletionProtectionEnabled'),
     'sse': d.get('SSEDescription', {}).get('KMSMasterKeyArn'),
     'stream': d.get('StreamSpecification'),
     'warm': {k: v for k, v in d.get('WarmThroughput', {}).items() if k != 'Status'},
     'scaling': sorted([(x['ResourceId'].replace(t, 'T'), x['ScalableDimension'], x['MinCapacity'], x['MaxCapacity']) for x in targets if mine(x['ResourceId'])]),
     'policies': sorted([(p['ResourceId'].replace(t, 'T'), p['PolicyName'], p['TargetTrackingScalingPolicyConfiguration']['TargetValue']) for p in pols if mine(p['ResourceId'])]),
     'policy': pol, 'arn': d['TableArn']}"#,
        &[table],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_table_setting_is_recorded_and_restored_and_what_cannot_be_is_said() {
    let env = TestEnv::new("settings").await;
    let moto = env.emulators.s3.clone();
    let t = env.table("t");
    // A provisioned table with a GSI and every setting, in moto.
    env.boto3(
        "dynamodb",
        r#"import json
import boto3 as b
t = sys.argv[2]
c.create_table(TableName=t, KeySchema=[{'AttributeName': 'pk', 'KeyType': 'HASH'}],
    AttributeDefinitions=[{'AttributeName': 'pk', 'AttributeType': 'S'}, {'AttributeName': 'g', 'AttributeType': 'S'}],
    ProvisionedThroughput={'ReadCapacityUnits': 10, 'WriteCapacityUnits': 10},
    GlobalSecondaryIndexes=[{'IndexName': 'by-g', 'KeySchema': [{'AttributeName': 'g', 'KeyType': 'HASH'}],
        'Projection': {'ProjectionType': 'ALL'}, 'ProvisionedThroughput': {'ReadCapacityUnits': 5, 'WriteCapacityUnits': 5}}],
    StreamSpecification={'StreamEnabled': True, 'StreamViewType': 'NEW_AND_OLD_IMAGES'},
    SSESpecification={'Enabled': True, 'SSEType': 'KMS', 'KMSMasterKeyId': sys.argv[3]},
    DeletionProtectionEnabled=True, WarmThroughput={'ReadUnitsPerSecond': 12000, 'WriteUnitsPerSecond': 4500},
    Tags=[{'Key': 'team', 'Value': 'ops'}, {'Key': 'cost-center', 'Value': '42'}])
arn = c.describe_table(TableName=t)['Table']['TableArn']
c.update_time_to_live(TableName=t, TimeToLiveSpecification={'Enabled': True, 'AttributeName': 'expires'})
c.update_continuous_backups(TableName=t, PointInTimeRecoverySpecification={'PointInTimeRecoveryEnabled': True})
c.put_resource_policy(ResourceArn=arn, Policy=json.dumps({'Version': '2012-10-17', 'Statement': [{'Effect': 'Allow',
    'Principal': {'AWS': 'arn:aws:iam::123456789012:role/reader'}, 'Action': 'dynamodb:GetItem', 'Resource': arn}]}))
for i in range(20):
    c.put_item(TableName=t, Item={'pk': {'S': 'k%d' % i}, 'g': {'S': 'g%d' % (i % 3)}, 'expires': {'N': '1900000000'}})
a = b.client('application-autoscaling', endpoint_url=sys.argv[1], region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t')
for rid, dim, lo, hi in [('table/' + t, 'dynamodb:table:ReadCapacityUnits', 10, 400),
                         ('table/' + t, 'dynamodb:table:WriteCapacityUnits', 10, 200),
                         ('table/' + t + '/index/by-g', 'dynamodb:index:ReadCapacityUnits', 5, 100)]:
    a.register_scalable_target(ServiceNamespace='dynamodb', ResourceId=rid, ScalableDimension=dim, MinCapacity=lo, MaxCapacity=hi)
    m = 'DynamoDBReadCapacityUtilization' if 'Read' in dim else 'DynamoDBWriteCapacityUtilization'
    a.put_scaling_policy(PolicyName=dim.split(':')[-1] + '-tracking', ServiceNamespace='dynamodb', ResourceId=rid, ScalableDimension=dim,
        PolicyType='TargetTrackingScaling', TargetTrackingScalingPolicyConfiguration={'TargetValue': 70.0,
            'PredefinedMetricSpecification': {'PredefinedMetricType': m}, 'ScaleInCooldown': 60})
r = True"#,
        &[&t, KEY],
    );
    let original = settings_of(&env, &t);
    assert_eq!(original["tags"].as_array().unwrap().len(), 2, "{original}");
    assert_eq!(
        original["scaling"].as_array().unwrap().len(),
        3,
        "{original}"
    );

    let out = env.out();
    let o = env
        .ddbx_with(&moto, &moto)
        .args([
            "export",
            "--app",
            "app",
            "--table",
            &t,
            "--to",
            out.to_str().unwrap(),
            "--resource-policy",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let run = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
    let run_dir = run.strip_prefix("file://").unwrap().to_string();
    let recorded: Value =
        crate::support::read_json(&std::path::Path::new(&run_dir).join(&t).join("table.json"));
    assert_eq!(recorded["PointInTimeRecoveryEnabled"], true, "{recorded}");
    assert_eq!(recorded["SSEDescription"]["KMSMasterKeyArn"], KEY);
    assert!(recorded.get("NotRecorded").is_none(), "{recorded}");

    // Restored into a new table: every setting back, the policy naming the new table.
    let restored = format!("{t}_restored");
    let import = |dynamodb: &str, target: &str, extra: &[&str]| {
        let o = env
            .ddbx_with(dynamodb, &moto)
            .args([
                "import",
                "--from",
                &run,
                "--create-missing",
                "--output",
                "json",
            ])
            .args(["--table-map", &format!("{t}={target}")])
            .args(extra)
            .output()
            .unwrap();
        eprintln!(
            "{}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(o.status.code(), Some(0));
        json_stdout(&o)
    };
    let summary = import(&moto, &restored, &[]);
    let report = table_report(&summary, &restored);
    assert_eq!(report["items"], 20);
    assert_eq!(report["settings"]["notRestored"], json!([]), "{report}");
    let said = report["settings"]["restored"].to_string();
    for s in [
        "stream",
        "deletion protection",
        "warm throughput",
        "encryption",
        "time to live (expires)",
        "tags (2)",
        "point-in-time recovery",
        "resource policy",
        "auto scaling (3 targets)",
    ] {
        assert!(said.contains(s), "{s} in {said}");
    }
    let back = settings_of(&env, &restored);
    for field in [
        "tags",
        "ttl",
        "pitr",
        "protected",
        "sse",
        "stream",
        "warm",
        "scaling",
        "policies",
    ] {
        assert_eq!(back[field], original[field], "{field}");
    }
    let policy: Value = serde_json::from_str(back["policy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["Statement"][0]["Resource"], back["arn"], "{policy}");

    // A KMS key this account may not use: the table is made with its own managed key, and
    // the summary says so; the rest is restored.
    let proxy = FaultProxy::start(
        &moto,
        Faults {
            refuse_kms_key: Some(KEY),
            ..Faults::default()
        },
    )
    .await;
    let elsewhere = format!("{t}_elsewhere");
    let summary = import(&proxy.url, &elsewhere, &[]);
    let report = table_report(&summary, &elsewhere);
    let not = report["settings"]["notRestored"].to_string();
    assert!(
        not.contains("encryption with KMS key") && not.contains("aws/dynamodb"),
        "{report}"
    );
    assert!(report["settings"]["restored"]
        .to_string()
        .contains("tags (2)"));
    assert_eq!(settings_of(&env, &elsewhere)["tags"], original["tags"]);

    // --no-settings: keys, indexes and billing only.
    let bare = format!("{t}_bare");
    let summary = import(&moto, &bare, &["--no-settings"]);
    assert!(table_report(&summary, &bare).get("settings").is_none());
    let b = settings_of(&env, &bare);
    assert_eq!(b["tags"], json!([]));
    assert_eq!(b["pitr"], "DISABLED");
    assert_eq!(b["scaling"], json!([]));
}
