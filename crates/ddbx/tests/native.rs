//! `--engine native` against fakecloud, a DynamoDB and S3 that nobody here wrote, which
//! implements ExportTableToPointInTime (full and incremental, from its point-in-time
//! history), ImportTable and continuous backups. Each test has its own instance, whose
//! clock it moves forward (incremental windows are 15 minutes at least).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement,
    KeyType, LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput,
    ScalarAttributeType,
};

use crate::support::fakecloud::FakeCloud;
use crate::support::{digests, items, json_stdout, table_error, table_report, TestEnv};

/// A test's fakecloud, its bucket, and ddbx aimed at both.
pub struct Native {
    pub env: TestEnv,
    pub fc: FakeCloud,
    pub bucket: String,
}

/// How a test table is made.
#[derive(Clone, Copy)]
pub enum Kind {
    /// 5/5 provisioned, string `pk`, number `sk`, a GSI and an LSI.
    ProvisionedWithIndexes,
    /// On demand, string `pk` only.
    OnDemand,
    /// 5/5 provisioned, string `pk`, number `sk`, a GSI (no LSI).
    ProvisionedWithGsi,
}

impl Native {
    pub async fn new(name: &str) -> Self {
        let env = TestEnv::new(name).await;
        let fc = FakeCloud::start(&env).await;
        let bucket = env
            .prefix
            .to_lowercase()
            .replace('_', "-")
            .trim_end_matches('-')
            .to_string();
        fc.create_bucket(&env, &bucket);
        Self { env, fc, bucket }
    }

    /// `ddbx` with DynamoDB and S3 both fakecloud's.
    pub fn ddbx(&self, args: &[&str]) -> std::process::Output {
        self.ddbx_via(&self.fc.url, args)
    }

    /// `ddbx` with DynamoDB at `dynamodb` (a proxy in front of fakecloud), S3 fakecloud's.
    pub fn ddbx_via(&self, dynamodb: &str, args: &[&str]) -> std::process::Output {
        let o = self
            .env
            .ddbx_with(dynamodb, &self.fc.url)
            .args(args)
            .output()
            .unwrap();
        eprintln!(
            "ddbx {args:?} -> {:?}\nstdout:\n{}\nstderr:\n{}",
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        o
    }

    /// `ddbx export --engine native` of every table of this test, the run named by
    /// fakecloud's clock (runs a test makes minutes apart on it are seconds apart here).
    pub fn export(&self, extra: &[&str]) -> std::process::Output {
        self.export_via(&self.fc.url, extra)
    }

    /// [`Native::export`] with DynamoDB at `dynamodb`.
    pub fn export_via(&self, dynamodb: &str, extra: &[&str]) -> std::process::Output {
        let args = self.export_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ddbx_via(dynamodb, &args)
    }

    /// [`Native::export`] started with DynamoDB at `dynamodb`, left running.
    pub fn spawn_export(&self, dynamodb: &str, extra: &[&str]) -> std::process::Child {
        self.env
            .ddbx_with(dynamodb, &self.fc.url)
            .args(self.export_args(extra))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }

    fn export_args(&self, extra: &[&str]) -> Vec<String> {
        let to = format!("s3://{}/b", self.bucket);
        let tables = format!("{}*", self.env.prefix);
        let run_time = self
            .fc
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let mut args = vec![
            "export",
            "--engine",
            "native",
            "--app",
            "app",
            "--tables",
            &tables,
            "--to",
            &to,
            "--poll-seconds",
            "0.05",
            "--output",
            "json",
            "--run-time",
            &run_time,
        ];
        args.extend(extra);
        args.into_iter().map(str::to_string).collect()
    }

    /// A table of `kind`, with point-in-time recovery on when `pitr`.
    pub async fn table(&self, short: &str, kind: Kind, pitr: bool) -> String {
        let name = self.env.table(short);
        let def = |n: &str, t: ScalarAttributeType| {
            AttributeDefinition::builder()
                .attribute_name(n)
                .attribute_type(t)
                .build()
                .unwrap()
        };
        let key = |n: &str, t: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(n)
                .key_type(t)
                .build()
                .unwrap()
        };
        let mut req = self
            .fc
            .ddb
            .create_table()
            .table_name(&name)
            .attribute_definitions(def("pk", ScalarAttributeType::S))
            .key_schema(key("pk", KeyType::Hash));
        req = match kind {
            Kind::ProvisionedWithIndexes | Kind::ProvisionedWithGsi => {
                let units = ProvisionedThroughput::builder()
                    .read_capacity_units(5)
                    .write_capacity_units(5)
                    .build()
                    .unwrap();
                req.attribute_definitions(def("sk", ScalarAttributeType::N))
                    .attribute_definitions(def("s", ScalarAttributeType::S))
                    .key_schema(key("sk", KeyType::Range))
                    .billing_mode(BillingMode::Provisioned)
                    .provisioned_throughput(units.clone())
                    .global_secondary_indexes(
                        GlobalSecondaryIndex::builder()
                            .index_name("by_s")
                            .key_schema(key("s", KeyType::Hash))
                            .projection(
                                Projection::builder()
                                    .projection_type(ProjectionType::All)
                                    .build(),
                            )
                            .provisioned_throughput(units)
                            .build()
                            .unwrap(),
                    )
                    .set_local_secondary_indexes(matches!(kind, Kind::ProvisionedWithIndexes).then(
                        || {
                            vec![LocalSecondaryIndex::builder()
                                .index_name("by_pk_s")
                                .key_schema(key("pk", KeyType::Hash))
                                .key_schema(key("s", KeyType::Range))
                                .projection(
                                    Projection::builder()
                                        .projection_type(ProjectionType::KeysOnly)
                                        .build(),
                                )
                                .build()
                                .unwrap()]
                        },
                    ))
            }
            Kind::OnDemand => req.billing_mode(BillingMode::PayPerRequest),
        };
        req.send().await.unwrap();
        if pitr {
            self.fc.set_pitr(&name, true).await;
        }
        name
    }

    /// `items` items of every type into `table` (`sk` for the provisioned kind).
    pub async fn fill(
        &self,
        table: &str,
        kind: Kind,
        from: usize,
        count: usize,
    ) -> Vec<items::Item> {
        let written: Vec<_> = (from..from + count)
            .map(|i| items::mixed(i, !matches!(kind, Kind::OnDemand)))
            .collect();
        self.fc.put(table, &written).await;
        written
    }

    /// The run root URL of a summary.
    pub fn root(o: &std::process::Output) -> String {
        json_stdout(o)["runRoot"].as_str().unwrap().to_string()
    }

    /// The key of a URL in this test's bucket.
    pub fn key_of<'a>(&self, url: &'a str) -> &'a str {
        url.strip_prefix(&format!("s3://{}/", self.bucket)).unwrap()
    }
}

pub(crate) fn key(pk: &str, sk: Option<&str>) -> HashMap<String, AttributeValue> {
    let mut k = HashMap::from([("pk".to_string(), AttributeValue::S(pk.into()))]);
    if let Some(sk) = sk {
        k.insert("sk".into(), AttributeValue::N(sk.into()));
    }
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_is_exported_at_one_instant_without_pitr_only_where_asked() {
    let n = Native::new("natfleet").await;
    let prov = n.table("prov", Kind::ProvisionedWithIndexes, true).await;
    let od = n.table("od", Kind::OnDemand, true).await;
    let off = n.table("off", Kind::OnDemand, false).await;
    let prov_items = n.fill(&prov, Kind::ProvisionedWithIndexes, 0, 40).await;
    let od_items = n.fill(&od, Kind::OnDemand, 100, 30).await;
    let off_items = n.fill(&off, Kind::OnDemand, 200, 10).await;
    n.fc.advance_minutes(1);

    // Without --enable-pitr, the table without recovery fails alone, named.
    let o = n.export(&[]);
    assert_eq!(o.status.code(), Some(4));
    let summary = json_stdout(&o);
    let why = table_error(&summary, &off);
    assert!(
        why.contains("point-in-time recovery is off") && why.contains("--enable-pitr"),
        "{why}"
    );
    assert_eq!(table_report(&summary, &prov)["items"], 40);
    assert_eq!(table_report(&summary, &od)["items"], 30);
    assert_eq!(
        table_report(&summary, &prov)["units"],
        0.0,
        "no read capacity"
    );
    assert!(!n.fc.pitr(&off).await, "left as it was");

    // One instant for the run: recorded, and every export's ExportTime.
    let root = Native::root(&o);
    let prefix = n.key_of(&root).to_string();
    let instant: serde_json::Value = serde_json::from_slice(&n.fc.object(
        &n.env,
        &n.bucket,
        &format!("{prefix}/_export/native.json"),
    ))
    .unwrap();
    let keys = n.fc.keys(&n.env, &n.bucket, &prefix);
    let summaries: Vec<&String> = keys
        .iter()
        .filter(|k| k.ends_with("manifest-summary.json"))
        .collect();
    assert_eq!(summaries.len(), 2, "{keys:?}");
    let at = chrono::DateTime::parse_from_rfc3339(instant["exportTime"].as_str().unwrap()).unwrap();
    for k in summaries {
        let s: serde_json::Value =
            serde_json::from_slice(&n.fc.object(&n.env, &n.bucket, k)).unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(s["exportTime"].as_str().unwrap()).unwrap();
        assert_eq!(t.timestamp(), at.timestamp(), "{k}");
    }
    for t in [&prov, &od] {
        assert!(
            keys.contains(&format!("{prefix}/{t}/table.json")),
            "{keys:?}"
        );
    }
    let plan: serde_json::Value = serde_json::from_slice(&n.fc.object(
        &n.env,
        &n.bucket,
        &format!("{prefix}/export-plan.json"),
    ))
    .unwrap();
    assert_eq!(plan["engine"], "native");
    assert!(
        plan["note"].as_str().unwrap().contains("one instant"),
        "{plan}"
    );
    // The summary says the instant too (every table that succeeded is as of it).
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(summary["asOf"].as_str().unwrap())
            .unwrap()
            .timestamp(),
        at.timestamp()
    );

    // With --enable-pitr: turned on (recorded first), exported, turned off again.
    let tables = off.clone();
    let to = format!("s3://{}/b", n.bucket);
    let o = n.ddbx(&[
        "export",
        "--engine",
        "native",
        "--app",
        "other",
        "--table",
        &tables,
        "--to",
        &to,
        "--enable-pitr",
        "--poll-seconds",
        "0.05",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(table_report(&json_stdout(&o), &off)["items"], 10);
    assert!(!n.fc.pitr(&off).await, "turned off again after the export");
    let off_root = Native::root(&o);
    let record: serde_json::Value = serde_json::from_slice(&n.fc.object(
        &n.env,
        &n.bucket,
        &format!("{}/_capacity/{off}-pitr.json", n.key_of(&off_root)),
    ))
    .unwrap();
    assert_eq!(record["restored"], true);

    // The runs read like any other: a local import (and verify --deep) of each table.
    for (from, t, written) in [
        (&root, &prov, &prov_items),
        (&root, &od, &od_items),
        (&off_root, &off, &off_items),
    ] {
        let map = format!("{t}={t}_copy");
        let o = n.ddbx(&[
            "import",
            "--from",
            from,
            "--table-map",
            &map,
            "--create-missing",
            "--tables",
            t,
            "--max-write-units",
            "2000",
        ]);
        assert_eq!(o.status.code(), Some(0), "{t}");
        assert_eq!(
            digests(&n.fc.scan_all(&format!("{t}_copy")).await),
            digests(written),
            "{t}"
        );
        let o = n.ddbx(&[
            "verify",
            "--from",
            from,
            "--table-map",
            &map,
            "--tables",
            t,
            "--deep",
        ]);
        assert_eq!(o.status.code(), Some(0), "{t}");
    }

    // Native export refuses what the service cannot do.
    let local = n.env.out().join("local");
    let o = n.ddbx(&[
        "export",
        "--engine",
        "native",
        "--app",
        "x",
        "--tables",
        &n.env.prefix,
        "--to",
        local.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("only to S3"));
    let _ = key("x", None);
}

/// A model of a table: its items by key text.
pub(crate) type Model = std::collections::BTreeMap<String, items::Item>;

pub(crate) fn key_text(item: &items::Item) -> String {
    let pk = match &item["pk"] {
        AttributeValue::S(s) => s.clone(),
        _ => unreachable!(),
    };
    match item.get("sk") {
        Some(AttributeValue::N(n)) => format!("{pk}|{n}"),
        _ => pk,
    }
}

pub(crate) fn model_of(items: &[items::Item]) -> Model {
    items.iter().map(|i| (key_text(i), i.clone())).collect()
}

pub(crate) fn values(m: &Model) -> Vec<items::Item> {
    m.values().cloned().collect()
}

/// Changes to a table and its model: `[updated, deleted, added]` item numbers (items
/// rewritten, removed, new), each write stamped by fakecloud's clock.
pub(crate) async fn change(
    n: &Native,
    table: &str,
    kind: Kind,
    model: &mut Model,
    [updated, deleted, added]: [std::ops::Range<usize>; 3],
    tag: &str,
) {
    let sk = !matches!(kind, Kind::OnDemand);
    let mut puts = Vec::new();
    for i in updated {
        let mut item = items::mixed(i, sk);
        item.insert(
            "s".into(),
            AttributeValue::S(format!("updated {i} in {tag}")),
        );
        model.insert(key_text(&item), item.clone());
        puts.push(item);
    }
    for i in added {
        let item = items::mixed(i, sk);
        model.insert(key_text(&item), item.clone());
        puts.push(item);
    }
    n.fc.put(table, &puts).await;
    for i in deleted {
        let item = items::mixed(i, sk);
        model.remove(&key_text(&item));
        let sks = (i % 7).to_string();
        n.fc.delete(
            table,
            key(&format!("key-{i:06}"), sk.then_some(sks.as_str())),
        )
        .await;
    }
}

pub(crate) fn instant_of(n: &Native, root: &str) -> chrono::DateTime<chrono::Utc> {
    let v: serde_json::Value = serde_json::from_slice(&n.fc.object(
        &n.env,
        &n.bucket,
        &format!("{}/_export/native.json", n.key_of(root)),
    ))
    .unwrap();
    chrono::DateTime::parse_from_rfc3339(v["exportTime"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_runs_chain_and_replay_to_a_point_in_time_exactly() {
    let n = Native::new("natchain").await;
    let prov = n.table("prov", Kind::ProvisionedWithIndexes, true).await;
    let od = n.table("od", Kind::OnDemand, true).await;
    let mut m_prov = model_of(&n.fill(&prov, Kind::ProvisionedWithIndexes, 0, 30).await);
    let mut m_od = model_of(&n.fill(&od, Kind::OnDemand, 0, 30).await);
    n.fc.advance_minutes(1);

    // The first incremental run has no chain: a full export, said so.
    let o = n.export(&["--incremental"]);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    assert!(
        table_report(&s, &prov)["note"]
            .as_str()
            .unwrap()
            .contains("exported in full: no earlier export"),
        "{s}"
    );
    let run1 = Native::root(&o);

    // Puts, updates and deletes; 20 minutes later, a window of just those.
    change(
        &n,
        &prov,
        Kind::ProvisionedWithIndexes,
        &mut m_prov,
        [0..5, 5..10, 100..105],
        "A",
    )
    .await;
    change(
        &n,
        &od,
        Kind::OnDemand,
        &mut m_od,
        [3..6, 0..3, 200..203],
        "A",
    )
    .await;
    let (s2_prov, s2_od) = (m_prov.clone(), m_od.clone());
    n.fc.advance_minutes(20);
    let o = n.export(&["--incremental"]);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    let note = table_report(&s, &prov)["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("1 incremental window") && note.contains(&run1),
        "{note}"
    );
    assert_eq!(
        table_report(&s, &prov)["items"],
        15,
        "5 updates, 5 deletes, 5 puts"
    );
    let run2 = Native::root(&o);
    let t2 = instant_of(&n, &run2);
    assert!(t2 > instant_of(&n, &run1));

    // A minute later there is nothing to export yet: deferred, said so, not a failure.
    n.fc.advance_minutes(1);
    let o = n.export(&["--incremental"]);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    for t in [&prov, &od] {
        let r = table_report(&s, t);
        assert_eq!(r["status"], "deferred");
        assert!(
            r["note"].as_str().unwrap().contains("15 minutes at least"),
            "{r}"
        );
    }

    // More changes, and the next window starts where the chain ended (not at the
    // deferred run).
    change(
        &n,
        &prov,
        Kind::ProvisionedWithIndexes,
        &mut m_prov,
        [100..102, 0..2, 300..310],
        "B",
    )
    .await;
    change(
        &n,
        &od,
        Kind::OnDemand,
        &mut m_od,
        [200..203, 10..20, 400..401],
        "B",
    )
    .await;
    n.fc.advance_minutes(20);
    let o = n.export(&["--incremental"]);
    assert_eq!(o.status.code(), Some(0));
    let run4 = Native::root(&o);
    let t4 = instant_of(&n, &run4);

    // A point in time between the two incremental runs: the full export, then the first
    // window (the second ends after it), into new tables, exactly as they were at T2.
    let between = (t2 + chrono::Duration::minutes(10)).to_rfc3339();
    let maps = [format!("{prov}={prov}_pit"), format!("{od}={od}_pit")];
    let restore = |from: &str, flag: &str, at: &str, maps: &[String]| {
        let mut args = vec![
            "import",
            "--from",
            from,
            flag,
            at,
            "--create-missing",
            "--max-write-units",
            "2000",
            "--output",
            "json",
        ];
        for m in maps {
            args.extend(["--table-map", m.as_str()]);
        }
        n.ddbx(&args)
    };
    let o = restore(&run1, "--until", &between, &maps);
    assert_eq!(o.status.code(), Some(0));
    let note = table_report(&json_stdout(&o), &format!("{prov}_pit"))["note"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        note.contains("a full export and 1 incremental window"),
        "{note}"
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{prov}_pit")).await),
        digests(&values(&s2_prov))
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{od}_pit")).await),
        digests(&values(&s2_od))
    );
    // Replaying again gives the same tables.
    assert_eq!(
        restore(&run1, "--until", &between, &maps).status.code(),
        Some(0)
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{prov}_pit")).await),
        digests(&values(&s2_prov))
    );
    let verify = |from: &str, flag: &str, at: &str, maps: &[String]| {
        let mut args = vec![
            "verify", "--from", from, flag, at, "--deep", "--output", "json",
        ];
        for m in maps {
            args.extend(["--table-map", m.as_str()]);
        }
        n.ddbx(&args)
    };
    assert_eq!(
        verify(&run1, "--until", &between, &maps).status.code(),
        Some(0)
    );
    // The live tables are past that point: verify says they differ.
    let o = verify(&run1, "--until", &between, &[]);
    assert_eq!(o.status.code(), Some(4));

    // From the app's folder, as of the last run: the last full export and both windows.
    let app = format!("s3://{}/b/us-east-1/app", n.bucket);
    let now = (t4 + chrono::Duration::seconds(1)).to_rfc3339();
    let maps = [format!("{prov}={prov}_now"), format!("{od}={od}_now")];
    assert_eq!(restore(&app, "--at", &now, &maps).status.code(), Some(0));
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{prov}_now")).await),
        digests(&values(&m_prov))
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{od}_now")).await),
        digests(&values(&m_od))
    );
    assert_eq!(verify(&app, "--at", &now, &maps).status.code(), Some(0));
    assert_eq!(
        verify(&app, "--at", &now, &[]).status.code(),
        Some(0),
        "the live tables are at T4"
    );

    // An incremental run alone is not a table: refused, naming the way.
    let o = n.ddbx(&[
        "import",
        "--from",
        &run2,
        "--create-missing",
        "--output",
        "json",
        "--table-map",
        &format!("{prov}={prov}_x"),
        "--tables",
        &prov,
    ]);
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &format!("{prov}_x"));
    assert!(why.contains("--until"), "{why}");

    // Point-in-time recovery turned off and on breaks the chain: a full export, said so.
    n.fc.set_pitr(&od, false).await;
    n.fc.set_pitr(&od, true).await;
    n.fc.advance_minutes(20);
    let o = n.export(&["--incremental", "--exclude", "*_pit", "--exclude", "*_now"]);
    assert_eq!(o.status.code(), Some(0));
    let s = json_stdout(&o);
    assert!(
        table_report(&s, &od)["note"]
            .as_str()
            .unwrap()
            .contains("earliest restorable"),
        "{s}"
    );
    assert!(
        table_report(&s, &prov)["note"]
            .as_str()
            .unwrap()
            .contains("incremental window"),
        "{s}"
    );
    let run5 = Native::root(&o);

    // `ddbx list` shows the five runs, newest first, each incremental one with the run it
    // continues.
    let base = format!("s3://{}/b", n.bucket);
    let o = n.ddbx(&["list", "--to", &base, "--app", "app", "--output", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let listed = json_stdout(&o);
    let roots: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["runRoot"].as_str().unwrap())
        .collect();
    let run3 = roots[2].to_string();
    assert_eq!(
        [roots[0], roots[1], roots[3], roots[4]],
        [run5.as_str(), run4.as_str(), run2.as_str(), run1.as_str()]
    );
    assert_eq!(listed[0]["backup"]["continues"], serde_json::json!([run4]));
    assert_eq!(listed[3]["backup"]["continues"], serde_json::json!([run1]));
    assert!(listed[4]["backup"].get("continues").is_none());
    assert_eq!(listed[0]["backup"]["engine"], "native");

    // The newest success is incremental: `--from latest` replays the chains to its instant.
    let verify_latest = |extra: &[&str]| {
        let mut args = vec!["verify", "--from", "latest", "--to", &base, "--app", "app"];
        args.extend([
            "--tables",
            &prov,
            "--tables",
            &od,
            "--exclude",
            "*_pit",
            "--exclude",
            "*_now",
        ]);
        args.extend_from_slice(extra);
        n.ddbx(&args)
    };
    let o = verify_latest(&["--deep"]);
    assert_eq!(o.status.code(), Some(0));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains(&format!("latest successful run: {run5}")) && said.contains("replaying"),
        "{said}"
    );

    // Keeping the last one keeps every run its windows build on: only the run that
    // deferred everything goes, and the chains still replay.
    let o = n.ddbx(&[
        "prune",
        "--to",
        &base,
        "--app",
        "app",
        "--keep-last",
        "1",
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let report = json_stdout(&o);
    let gone: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["delete"] == true)
        .map(|r| r["runRoot"].as_str().unwrap())
        .collect();
    assert_eq!(gone, [run3.as_str()], "{report}");
    let base_of_chain = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["runRoot"] == run1.as_str())
        .unwrap();
    assert!(
        base_of_chain["keptBecause"][0]
            .as_str()
            .unwrap()
            .contains("builds on it"),
        "{base_of_chain}"
    );
    assert!(n.fc.keys(&n.env, &n.bucket, n.key_of(&run3)).is_empty());
    let o = verify_latest(&[]);
    assert_eq!(o.status.code(), Some(0));

    // The app synced to a folder elsewhere (`ddbx copy`, issue 28): its four runs, oldest
    // first; the folder's chains name the copies, not the bucket; and the replay of the
    // newest run reads the folder alone.
    let dr = n.env.dir.path().join("dr");
    let dr_base = dr.to_str().unwrap();
    let sync = || {
        let copy = [
            "copy",
            "--app",
            "app",
            "--from-base",
            &base,
            "--to",
            dr_base,
        ];
        let o = n.ddbx(&[&copy[..], &["--output", "json"]].concat());
        assert_eq!(o.status.code(), Some(0));
        json_stdout(&o)
    };
    let report = sync();
    let copied: Vec<&str> = report["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["from"].as_str().unwrap())
        .collect();
    assert_eq!(
        copied,
        [run1.as_str(), run2.as_str(), run4.as_str(), run5.as_str()]
    );
    for t in [&prov, &od] {
        let file = dr.join(format!("us-east-1/app/_chains/{t}.json"));
        let chain = std::fs::read_to_string(&file).unwrap();
        assert!(
            !chain.contains("s3://") && chain.contains(dr_base),
            "{chain}"
        );
    }
    let mut args = vec![
        "verify", "--from", "latest", "--to", dr_base, "--app", "app",
    ];
    args.extend(["--tables", &prov, "--tables", &od, "--deep"]);
    args.extend(["--exclude", "*_pit", "--exclude", "*_now"]);
    let o = n.ddbx(&args);
    assert_eq!(o.status.code(), Some(0));
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains("replaying") && said.contains(dr_base),
        "{said}"
    );
    // A second sync finds nothing to copy.
    assert_eq!(sync()["runs"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_import_creates_new_tables_with_import_table_and_refuses_what_it_cannot() {
    let n = Native::new("natimport").await;
    let od = n.table("od", Kind::OnDemand, true).await;
    let gsi = n.table("gsi", Kind::ProvisionedWithGsi, true).await;
    let lsi = n.table("lsi", Kind::ProvisionedWithIndexes, true).await;
    let od_items = n.fill(&od, Kind::OnDemand, 0, 25).await;
    let gsi_items = n.fill(&gsi, Kind::ProvisionedWithGsi, 0, 35).await;
    n.fill(&lsi, Kind::ProvisionedWithIndexes, 0, 5).await;
    n.fc.advance_minutes(1);
    let o = n.export(&["--format", "ion"]);
    assert_eq!(o.status.code(), Some(0));
    let root = Native::root(&o);
    let import = || {
        n.ddbx(&[
            "import",
            "--engine",
            "native",
            "--from",
            &root,
            "--poll-seconds",
            "0.05",
            "--output",
            "json",
            "--table-map",
            &format!("{od}={od}_n"),
            "--table-map",
            &format!("{gsi}={gsi}_n"),
            "--table-map",
            &format!("{lsi}={lsi}_n"),
        ])
    };
    let o = import();
    assert_eq!(o.status.code(), Some(4), "the table with an LSI is refused");
    let s = json_stdout(&o);
    assert_eq!(table_report(&s, &format!("{od}_n"))["items"], 25);
    assert_eq!(table_report(&s, &format!("{gsi}_n"))["items"], 35);
    let why = table_error(&s, &format!("{lsi}_n"));
    assert!(
        why.contains("local secondary indexes") && why.contains("local engine"),
        "{why}"
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{od}_n")).await),
        digests(&od_items)
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{gsi}_n")).await),
        digests(&gsi_items)
    );
    // Created as the export's table.json says: billing, capacity, the GSI.
    let d =
        n.fc.ddb
            .describe_table()
            .table_name(format!("{gsi}_n"))
            .send()
            .await
            .unwrap();
    let t = d.table().unwrap();
    assert_eq!(
        t.provisioned_throughput().unwrap().read_capacity_units(),
        Some(5)
    );
    assert_eq!(t.global_secondary_indexes()[0].index_name(), Some("by_s"));
    assert_eq!(t.table_status().unwrap().as_str(), "ACTIVE");
    // ImportTable makes new tables only: the same import again is refused, table by table.
    let o = import();
    assert_eq!(o.status.code(), Some(4));
    let why = table_error(&json_stdout(&o), &format!("{od}_n"));
    assert!(
        why.contains("exists") && why.contains("local engine"),
        "{why}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_native_export_resumes_its_exports_without_starting_others() {
    use crate::support::fault_proxy::{FaultProxy, Faults, Kind as Fault, RandomFaults};
    let n = Native::new("natkill").await;
    let on = n.table("on", Kind::OnDemand, true).await;
    let off = n.table("off", Kind::OnDemand, false).await;
    let on_items = n.fill(&on, Kind::OnDemand, 0, 20).await;
    let off_items = n.fill(&off, Kind::OnDemand, 100, 20).await;
    n.fc.advance_minutes(1);
    // Exports that take their time: killed while ddbx polls them.
    let slow = FaultProxy::start(
        &n.fc.url,
        Faults {
            exports_in_progress: true,
            ..Faults::default()
        },
    )
    .await;
    let to = format!("s3://{}/b", n.bucket);
    let tables = format!("{}*", n.env.prefix);
    let mut child = n
        .env
        .ddbx_with(&slow.url, &n.fc.url)
        .args([
            "export",
            "--engine",
            "native",
            "--app",
            "app",
            "--tables",
            &tables,
            "--to",
            &to,
            "--enable-pitr",
            "--poll-seconds",
            "0.05",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    crate::support::wait_for(&mut child, "both exports polled", || {
        slow.stats.count("dynamodb:DescribeExport") >= 4
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(slow.stats.count("dynamodb:ExportTableToPointInTime"), 2);
    assert!(n.fc.pitr(&off).await, "left on by the killed run");
    let root =
        n.fc.keys(&n.env, &n.bucket, "b/")
            .into_iter()
            .find_map(|k| k.strip_suffix("/export-plan.json").map(str::to_string))
            .map(|k| format!("s3://{}/{k}", n.bucket))
            .unwrap();

    // Resumed through throttles and 5xx: the exports recorded are polled, none started.
    let flaky = FaultProxy::start(
        &n.fc.url,
        Faults {
            random: Some(RandomFaults {
                kind: Fault::Throttle,
                rate: 0.3,
                seed: 11,
            }),
            ..Faults::default()
        },
    )
    .await;
    let o = n
        .env
        .ddbx_with(&flaky.url, &n.fc.url)
        .args([
            "export",
            "--resume",
            &root,
            "--engine",
            "native",
            "--enable-pitr",
            "--poll-seconds",
            "0.05",
            "--output",
            "json",
        ])
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0));
    assert!(crate::support::fault_proxy::Stats::get(&flaky.stats.random_faults) > 0);
    assert_eq!(
        flaky.stats.count("dynamodb:ExportTableToPointInTime"),
        0,
        "no second export"
    );
    let s = json_stdout(&o);
    assert_eq!(table_report(&s, &on)["items"], 20);
    assert_eq!(table_report(&s, &off)["items"], 20);
    assert!(
        !n.fc.pitr(&off).await,
        "turned off again by the resumed run"
    );
    assert!(n.fc.pitr(&on).await, "a table that had it keeps it");
    let map = [format!("{on}={on}_c"), format!("{off}={off}_c")];
    let o = n.ddbx(&[
        "import",
        "--from",
        &root,
        "--create-missing",
        "--table-map",
        &map[0],
        "--table-map",
        &map[1],
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{on}_c")).await),
        digests(&on_items)
    );
    assert_eq!(
        digests(&n.fc.scan_all(&format!("{off}_c")).await),
        digests(&off_items)
    );

    // Killed again and not resumed: `ddbx capacity restore` turns recovery back off.
    let off2 = n.table("later", Kind::OnDemand, false).await;
    let mut child = n
        .env
        .ddbx_with(&slow.url, &n.fc.url)
        .args([
            "export",
            "--engine",
            "native",
            "--app",
            "app2",
            "--table",
            &off2,
            "--to",
            &to,
            "--enable-pitr",
            "--poll-seconds",
            "0.05",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let before = slow.stats.count("dynamodb:DescribeExport");
    crate::support::wait_for(&mut child, "the export polled", || {
        slow.stats.count("dynamodb:DescribeExport") > before
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(n.fc.pitr(&off2).await);
    let root2 =
        n.fc.keys(&n.env, &n.bucket, "b/us-east-1/app2/")
            .into_iter()
            .find_map(|k| k.strip_suffix("/export-plan.json").map(str::to_string))
            .map(|k| format!("s3://{}/{k}", n.bucket))
            .unwrap();
    let o = n.ddbx(&["capacity", "restore", "--from", &root2]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!n.fc.pitr(&off2).await, "turned off by capacity restore");
}
