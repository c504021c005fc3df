//! The native layout as AWS writes it, checked with what nobody here wrote: PyPI's
//! `aws-dynamodb-io` (written against real exports: `.md5` checksum files, the summary's
//! `exportType`, `str.splitlines()` over the data), boto3's `TypeDeserializer` and PyPI's
//! `amazon-ion`, both as a reader of ddbx's Ion and as the writer of Ion fixtures.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;

use base64::Engine as _;
use md5::{Digest, Md5};

use crate::support::{digests, files_named, json_stdout, TestEnv};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Reads one export folder (`AWSDynamoDB/<id>/` in S3) with aws-dynamodb-io: the export
/// from its folder (which checks the `.md5` files are there), its summary, then every data
/// file its manifest lists, split with `str.splitlines()`, each item deserialized by boto3
/// (JSON) or amazon-ion (Ion). Prints `[[pk, value], ...]` with every attribute in one
/// normal form, so two formats can be compared.
const READ_WITH_AWS_DYNAMODB_IO: &str = r#"
import sys, json, base64, boto3
from decimal import Context, Decimal
from boto3.dynamodb.types import TypeDeserializer, Binary
from amazon.ion.core import IonType
from aws_dynamodb_io.export_table import ExportJob, DataFile, ManifestSummary

endpoint, bucket, export_dir = sys.argv[1:4]
s3 = boto3.client('s3', endpoint_url=endpoint, region_name='us-east-1',
                  aws_access_key_id='t', aws_secret_access_key='t')
job = ExportJob.from_s3_dir(s3_client=s3, bucket=bucket, prefix=export_dir)
summary = ManifestSummary.from_dict(json.loads(
    s3.get_object(Bucket=bucket, Key=export_dir + 'manifest-summary.json')['Body'].read()))
assert summary.is_full_export(), summary.export_type

def num(d):
    d = Decimal(d).normalize(Context(prec=200))
    return '0' if d == 0 else str(d)

def b64(b):
    return base64.b64encode(bytes(b)).decode()

def from_ddb(v):
    if isinstance(v, bool): return ['BOOL', v]
    if v is None: return ['NULL']
    if isinstance(v, str): return ['S', v]
    if isinstance(v, Decimal): return ['N', num(v)]
    if isinstance(v, Binary): return ['B', b64(v.value)]
    if isinstance(v, set):
        first = next(iter(v))
        if isinstance(first, str): return ['SS', sorted(v)]
        if isinstance(first, Decimal): return ['NS', sorted(num(x) for x in v)]
        return ['BS', sorted(b64(x.value) for x in v)]
    if isinstance(v, dict): return ['M', {k: from_ddb(x) for k, x in v.items()}]
    if isinstance(v, list): return ['L', [from_ddb(x) for x in v]]
    raise Exception('unexpected %r' % (v,))

class Deserializer(TypeDeserializer):
    # boto3's 38-digit decimal context refuses a number such as 9.99...E+125 written out
    # in full (126 digits, 38 of them significant), as DynamoDB itself returns it.
    def _deserialize_n(self, value):
        return Decimal(value)

def wire(v):
    # Export files hold binary as base64 text, as the DynamoDB API's JSON does; botocore
    # decodes it before TypeDeserializer sees it, so do the same here.
    (t, x), = v.items()
    if t == 'B': return {t: base64.b64decode(x, validate=True)}
    if t == 'BS': return {t: [base64.b64decode(b, validate=True) for b in x]}
    if t == 'M': return {t: {k: wire(y) for k, y in x.items()}}
    if t == 'L': return {t: [wire(y) for y in x]}
    return v

def from_ion(v):
    annotations = [getattr(a, 'text', a) for a in getattr(v, 'ion_annotations', ())]
    t = getattr(v, 'ion_type', None)
    if annotations:
        kind = annotations[0]
        if kind == '$dynamodb_SS': return ['SS', sorted(str(x) for x in v)]
        if kind == '$dynamodb_NS': return ['NS', sorted(num(x) for x in v)]
        if kind == '$dynamodb_BS': return ['BS', sorted(b64(x) for x in v)]
        raise Exception('annotation %r' % kind)
    if v is None or t == IonType.NULL: return ['NULL']
    if t == IonType.BOOL or isinstance(v, bool): return ['BOOL', bool(v)]
    if t == IonType.STRING or isinstance(v, str): return ['S', str(v)]
    if t == IonType.DECIMAL or isinstance(v, Decimal): return ['N', num(v)]
    if t == IonType.BLOB or isinstance(v, bytes): return ['B', b64(v)]
    if t == IonType.STRUCT or isinstance(v, dict): return ['M', {k: from_ion(x) for k, x in v.items()}]
    if t == IonType.LIST or isinstance(v, list): return ['L', [from_ion(x) for x in v]]
    raise Exception('unexpected %r' % (v,))

out = []
manifest = s3.get_object(Bucket=bucket, Key=summary.manifest_files_s3_key)['Body'].read()
for line in manifest.decode().splitlines():
    e = json.loads(line)
    f = DataFile(item_count=e['itemCount'], md5=e['md5Checksum'], etag=e['etag'],
                 s3_bucket=bucket, s3_key=e['dataFileS3Key'], export_arn=job.arn,
                 export_format=summary.output_format)
    if summary.output_format == 'ION':
        got = [{k: from_ion(v) for k, v in item.items()} for item in f.read_amazon_ion(s3)]
    else:
        d = Deserializer()
        got = [{k: from_ddb(d.deserialize(wire(v))) for k, v in item.items()} for item in f.read_dynamodb_json(s3)]
    assert len(got) == e['itemCount'], (e, len(got))
    out.extend([i['pk'][1], i] for i in got)
assert len(out) == summary.item_count, (len(out), summary.item_count)
print(json.dumps(out))
"#;

fn read_with_aws_dynamodb_io(
    env: &TestEnv,
    bucket: &str,
    export_dir: &str,
) -> BTreeMap<String, serde_json::Value> {
    let out = std::process::Command::new(&env.emulators.python)
        .args([
            "-c",
            READ_WITH_AWS_DYNAMODB_IO,
            &env.emulators.s3,
            bucket,
            export_dir,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "aws-dynamodb-io could not read {export_dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<(String, serde_json::Value)> = serde_json::from_slice(&out.stdout).unwrap();
    rows.into_iter().collect()
}

/// The `AWSDynamoDB/<id>/` folder (as a key prefix) of a table under a run in S3.
fn export_dir(env: &TestEnv, bucket: &str, table_prefix: &str) -> String {
    let keys = env.s3_keys(bucket, table_prefix);
    let summary = keys
        .iter()
        .find(|k| k.ends_with("/manifest-summary.json"))
        .unwrap_or_else(|| panic!("no export under {table_prefix}: {keys:?}"));
    summary
        .trim_end_matches("manifest-summary.json")
        .to_string()
}

#[tokio::test]
async fn native_exports_are_read_by_readers_nobody_here_wrote() {
    let env = TestEnv::new("readers").await;
    let t = env.table("t");
    let written = env.mixed_table(&t, Some((100, 100)), 40).await;
    let bucket = env.bucket();
    let mut read = Vec::new();
    for format in ["dynamodb-json", "ion"] {
        let to = format!("s3://{bucket}/{format}");
        let o = env.run(&[
            "export",
            "--app",
            "app",
            "--table",
            &t,
            "--to",
            &to,
            "--format",
            format,
            "--segments",
            "3",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{format}");
        let root = json_stdout(&o)["runRoot"].as_str().unwrap().to_string();
        let table_prefix = format!(
            "{}/{t}/",
            root.trim_start_matches(&format!("s3://{bucket}/"))
        );
        let dir = export_dir(&env, &bucket, &table_prefix);
        let keys = env.s3_keys(&bucket, &dir);
        let ext = if format == "ion" {
            ".ion.gz"
        } else {
            ".json.gz"
        };
        assert!(
            keys.iter()
                .any(|k| k.contains("/data/") && k.ends_with(ext)),
            "{keys:?}"
        );
        read.push(read_with_aws_dynamodb_io(&env, &bucket, &dir));
    }
    let (json, ion) = (&read[0], &read[1]);
    assert_eq!(json.len(), written.len(), "every item, one line each");
    let pks: Vec<String> = written
        .iter()
        .map(|i| i["pk"].as_s().unwrap().clone())
        .collect();
    assert_eq!(json.keys().cloned().collect::<Vec<_>>(), {
        let mut p = pks.clone();
        p.sort();
        p
    });
    assert_eq!(
        json, ion,
        "boto3 over the JSON and amazon-ion over the Ion agree on every value"
    );
    // The line separators came through whole, inside their string.
    let one = &json[&pks[3]];
    assert_eq!(
        one["line\u{2028}seps"],
        serde_json::json!(["S", "a\u{2028}b\u{2029}c\u{85}d\u{b}e\u{c}f\u{1c}g3"])
    );
    assert_eq!(
        one["n38"],
        serde_json::json!(["N", "12345678901234567890123456789012345673"])
    );
}

/// An AWS-style Ion export written by PyPI's amazon-ion (nothing of ddbx's): every type,
/// the summary's `s3Prefix` null with keys from the bucket root, `.md5` files, and a file
/// in the data folder that the manifest does not list (not part of the export).
const WRITE_ION_EXPORT: &str = r#"
import sys, os, gzip, json, base64, hashlib
from decimal import Decimal
from amazon.ion import simpleion
from amazon.ion.core import IonType
from amazon.ion.simple_types import IonPyList, IonPyBytes, IonPyNull

root, export_id = sys.argv[1:3]
d = os.path.join(root, 'AWSDynamoDB', export_id)
os.makedirs(os.path.join(d, 'data'))
def annotated(kind, values):
    return IonPyList.from_value(IonType.LIST, values, ('$dynamodb_' + kind,))
def blob(b):
    return IonPyBytes.from_value(IonType.BLOB, b)
items = [
    {'pk': 'ion-0', 'n': Decimal('6E+2'), 'neg0': Decimal('-0'), 'frac': Decimal('-12.50'),
     'd38': Decimal('12345678901234567890123456789012345678'), 'tiny': Decimal('1E-130'),
     'huge': Decimal('9.9999999999999999999999999999999999999E+125'),
     'b': blob(bytes(range(256))), 'eb': blob(b''), 'gone': IonPyNull.from_value(IonType.NULL, None),
     'ok': True, 'no': False, 'e': '', 'sep': 'x\u2028y\u2029z\u0085w',
     'my-attr': 'quoted name', 'k k': {'inner': [Decimal('1.5'), True, [], {}]}},
    {'pk': 'ion-1', 'ss': annotated('SS', ['a', 'b', '']), 'ns': annotated('NS', [Decimal('1'), Decimal('2.5'), Decimal('-3E-2')]),
     'bs': annotated('BS', [blob(b'\x00'), blob(b'\xff\x01')]),
     'l': [Decimal('1'), 'a', [Decimal('2')], {'m': None}], 'm': {'deep': {'deeper': {'x': 'y'}}}},
    {'pk': 'ion-2'},
]
files = []
for n, chunk in enumerate([items[:2], items[2:]]):
    text = ''.join(simpleion.dumps({'Item': i}, binary=False) + '\n' for i in chunk)
    body = gzip.compress(text.encode())
    name = 'ABCDEFGHIJKLMNOPQRSTUVWXY%d.ion.gz' % n
    with open(os.path.join(d, 'data', name), 'wb') as f:
        f.write(body)
    files.append({'itemCount': len(chunk), 'md5Checksum': base64.b64encode(hashlib.md5(body).digest()).decode(),
                  'etag': hashlib.md5(body).hexdigest(), 'dataFileS3Key': 'AWSDynamoDB/%s/data/%s' % (export_id, name)})
with open(os.path.join(d, 'data', 'ZZZZZZZZZZZZZZZZZZZZZZZZZZ.ion.gz'), 'wb') as f:
    f.write(gzip.compress(simpleion.dumps({'Item': {'pk': 'not-listed'}}, binary=False).encode()))
manifest = ''.join(json.dumps(f) + '\n' for f in files).encode()
summary = json.dumps({'version': '2020-06-30', 'exportArn': 'arn:aws:dynamodb:us-east-1:123456789012:table/Books/export/' + export_id,
    'startTime': '2026-11-30T10:00:00.000Z', 'endTime': '2026-11-30T10:05:00.000Z',
    'tableArn': 'arn:aws:dynamodb:us-east-1:123456789012:table/Books', 'tableId': 'b1', 'exportTime': '2026-11-30T10:00:00.000Z',
    's3Bucket': 'someone-elses-bucket', 's3Prefix': None, 's3SseAlgorithm': 'AES256', 's3SseKmsKeyId': None,
    'manifestFilesS3Key': 'AWSDynamoDB/%s/manifest-files.json' % export_id, 'billedSizeBytes': 1000,
    'itemCount': len(items), 'outputFormat': 'ION', 'exportType': 'FULL_EXPORT'}).encode()
for name, body in [('manifest-files.json', manifest), ('manifest-summary.json', summary)]:
    with open(os.path.join(d, name), 'wb') as f:
        f.write(body)
    with open(os.path.join(d, name.replace('.json', '.md5')), 'w') as f:
        f.write(base64.b64encode(hashlib.md5(body).digest()).decode())
with open(os.path.join(d, '_started'), 'w'):
    pass
"#;

#[tokio::test]
async fn ion_fixtures_made_by_amazon_ion_import_and_verify_exactly() {
    use aws_sdk_dynamodb::primitives::Blob;
    use aws_sdk_dynamodb::types::AttributeValue as V;
    use std::collections::HashMap;
    let env = TestEnv::new("ionfix").await;
    let root = env.dir.path().join("ion-export");
    let out = std::process::Command::new(&env.emulators.python)
        .args(["-c", WRITE_ION_EXPORT, s(&root), "01764496800000-1a2b3c4d"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = env.table("books");
    env.create_table(&t, false, Some((50, 50))).await;
    let export = root.join("AWSDynamoDB/01764496800000-1a2b3c4d");
    // Both the export folder and its parent (where AWS puts it under the prefix) read.
    for from in [&export, &root] {
        let o = env.run(&[
            "import",
            "--from",
            s(from),
            "--target-table",
            &t,
            "--dry-run",
            "--output",
            "json",
        ]);
        assert_eq!(o.status.code(), Some(0));
        let plan = json_stdout(&o);
        assert_eq!(plan[0]["format"], "ion");
        assert_eq!(
            plan[0]["expectedItems"], 3,
            "the unlisted file is not part of the export"
        );
    }
    let o = env.run(&[
        "import",
        "--from",
        s(&export),
        "--target-table",
        &t,
        "--output",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 3);
    let o = env.run(&[
        "verify",
        "--from",
        s(&export),
        "--target-table",
        &t,
        "--deep",
    ]);
    assert_eq!(o.status.code(), Some(0), "verify --deep: MATCH");
    assert!(String::from_utf8_lossy(&o.stdout).contains("MATCH"));

    let n = |x: &str| V::N(x.into());
    let st = |x: &str| V::S(x.into());
    let mut zero = HashMap::from([
        ("pk".to_string(), st("ion-0")),
        ("n".to_string(), n("600")),
        ("neg0".to_string(), n("0")),
        ("frac".to_string(), n("-12.5")),
        (
            "d38".to_string(),
            n("12345678901234567890123456789012345678"),
        ),
        ("tiny".to_string(), n(&format!("0.{}1", "0".repeat(129)))),
        (
            "huge".to_string(),
            n(&format!("{}{}", "9".repeat(38), "0".repeat(88))),
        ),
        (
            "b".to_string(),
            V::B(Blob::new((0..=255u8).collect::<Vec<_>>())),
        ),
        ("eb".to_string(), V::B(Blob::new(vec![]))),
        ("gone".to_string(), V::Null(true)),
        ("ok".to_string(), V::Bool(true)),
        ("no".to_string(), V::Bool(false)),
        ("e".to_string(), st("")),
        ("sep".to_string(), st("x\u{2028}y\u{2029}z\u{85}w")),
        ("my-attr".to_string(), st("quoted name")),
    ]);
    zero.insert(
        "k k".into(),
        V::M(HashMap::from([(
            "inner".to_string(),
            V::L(vec![
                n("1.5"),
                V::Bool(true),
                V::L(vec![]),
                V::M(HashMap::new()),
            ]),
        )])),
    );
    let one = HashMap::from([
        ("pk".to_string(), st("ion-1")),
        (
            "ss".to_string(),
            V::Ss(vec!["a".into(), "b".into(), "".into()]),
        ),
        (
            "ns".to_string(),
            V::Ns(vec!["1".into(), "2.5".into(), "-0.03".into()]),
        ),
        (
            "bs".to_string(),
            V::Bs(vec![Blob::new(vec![0]), Blob::new(vec![255, 1])]),
        ),
        (
            "l".to_string(),
            V::L(vec![
                n("1"),
                st("a"),
                V::L(vec![n("2")]),
                V::M(HashMap::from([("m".to_string(), V::Null(true))])),
            ]),
        ),
        (
            "m".to_string(),
            V::M(HashMap::from([(
                "deep".to_string(),
                V::M(HashMap::from([(
                    "deeper".to_string(),
                    V::M(HashMap::from([("x".to_string(), st("y"))])),
                )])),
            )])),
        ),
    ]);
    let two = HashMap::from([("pk".to_string(), st("ion-2"))]);
    assert_eq!(
        digests(&env.scan_all(&t).await),
        digests(&[zero, one, two]),
        "exactly what amazon-ion wrote"
    );
    // Nothing was written into someone else's export.
    assert!(files_named(&root, "RESTORE_COMPLETE_SUCCESS").is_empty());
    assert!(!export.join("_import").exists());
}

#[tokio::test]
async fn manifest_checksums_are_checked_when_present_and_required_by_nothing() {
    let env = TestEnv::new("md5").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((50, 50)), 10).await;
    let run = env.export_all("app", &[]);
    let id_dir = files_named(&run.join(&t), "manifest-files.json")[0]
        .parent()
        .unwrap()
        .to_path_buf();
    let manifest = std::fs::read(id_dir.join("manifest-files.json")).unwrap();
    let copy = env.table("copy");
    let map = format!("{t}={copy}");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "import",
            "--from",
            s(&run),
            "--table-map",
            &map,
            "--create-missing",
        ];
        args.extend_from_slice(extra);
        env.run(&args)
    };
    // A checksum that does not match: the table fails, named, with nothing written.
    std::fs::write(
        id_dir.join("manifest-files.md5"),
        "AAAAAAAAAAAAAAAAAAAAAA==",
    )
    .unwrap();
    let o = import(&["--output", "json"]);
    assert_eq!(o.status.code(), Some(4));
    let err = json_stdout(&o)["errors"].to_string();
    assert!(
        err.contains("manifest-files.json") && err.contains("checksum"),
        "{err}"
    );
    assert!(!env.table_exists(&copy).await || env.scan_all(&copy).await.is_empty());
    // No checksum at all: fine. The guide's `.checksum` in hex (as ddbx 0.1 wrote): checked too.
    std::fs::remove_file(id_dir.join("manifest-files.md5")).unwrap();
    std::fs::remove_file(id_dir.join("manifest-summary.md5")).unwrap();
    let mut legacy = std::fs::File::create(id_dir.join("manifest-files.checksum")).unwrap();
    write!(legacy, "{}", hex::encode(Md5::digest(&manifest))).unwrap();
    let o = import(&["--output", "json"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(json_stdout(&o)["items"], 10);
    std::fs::write(
        id_dir.join("manifest-files.checksum"),
        base64::engine::general_purpose::STANDARD.encode(Md5::digest(b"other")),
    )
    .unwrap();
    let o = env.run(&["verify", "--from", s(&run), "--table-map", &map]);
    assert_eq!(o.status.code(), Some(4), "verify checks them too");
    assert!(String::from_utf8_lossy(&o.stdout).contains("checksum"));
}

#[tokio::test]
async fn an_export_written_with_line_separators_reads_line_by_line() {
    // What every ddbx line format writes, split as Python's str.splitlines() splits it.
    let env = TestEnv::new("seps").await;
    let t = env.table("t");
    env.mixed_table(&t, Some((50, 50)), 12).await;
    for (format, pattern) in [
        ("dynamodb-json", ".json.gz"),
        ("ion", ".ion.gz"),
        ("emr", ".gz"),
    ] {
        let app = format!("app-{format}");
        let run = env.export_all(&app, &["--format", format]);
        let files: Vec<_> = crate::support::files_under(&run.join(&t))
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(pattern))
            .collect();
        assert!(!files.is_empty(), "{format}");
        let script = "import sys, gzip\nprint(sum(len(gzip.open(p).read().decode().splitlines()) for p in sys.argv[1:]))";
        let out = std::process::Command::new(&env.emulators.python)
            .arg("-c")
            .arg(script)
            .args(&files)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "12",
            "{format}: one line per item for splitlines()"
        );
    }
}
