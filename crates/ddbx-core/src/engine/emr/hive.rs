//! The Hive steps of the EMR engine (docs/research/emr-on-cluster-path.md §4): HiveQL over the
//! DynamoDB storage handler that EMR installs with Hive, so a stock cluster runs them with
//! nothing to build or upload. One `.q` file per table, written beside the steps files
//! (`<run>/_emr/`), and run by `command-runner.jar hive-script --run-hive-script --args -f`.
//!
//! - Export: the table, through an item column (`MAP<STRING,STRING>`), into text files of
//!   the Hive/Data Pipeline line format (docs/FORMATS.md §3) under `<run>/<table>/data/`.
//! - Import: the export's data files, each line turned into the item column by a small
//!   script that ships with the step (`ddbx_import.py`, as a Hive TRANSFORM), which also
//!   sets aside what the connector cannot write (an empty list or map at any depth, or a
//!   name the text format cannot hold) into a folder that ddbx writes itself afterwards.
//!
//! Rates are given as absolute units in the table's properties (`dynamodb.throughput.read`
//! with a percent of 1.0), which the handler honours, so the plan's target rate is what the
//! cluster does.

use md5::{Digest, Md5};

use crate::plan::{Compression, DataFormat};
use crate::{Error, Result};

/// The storage handler EMR's Hive has on its classpath.
const HANDLER: &str = "org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler";

/// The script a Hive import ships with its step (a TRANSFORM).
pub const IMPORT_SCRIPT_NAME: &str = "ddbx_import.py";

/// `SET`s every ddbx Hive step starts with: MapReduce (AWS recommends it for DynamoDB;
/// Tez misreports write capacity), speculation off (a speculative attempt would scan or
/// write a segment twice, above the chosen rate), no merging or statistics jobs.
const COMMON: &str = "SET hive.execution.engine=mr;
SET mapreduce.map.speculative=false;
SET mapreduce.reduce.speculative=false;
SET hive.merge.mapfiles=false;
SET hive.merge.mapredfiles=false;
SET hive.stats.autogather=false;
SET hive.stats.column.autogather=false;
";

/// `SET`s of an import step besides [`COMMON`]: Hive copies every setting of the job, the
/// query's own text among them (`hive.query.string`, URL-encoded), into the TRANSFORM
/// script's environment, and Linux refuses to start a process with one environment string
/// over 128 KiB (`error=7, Argument list too long`): an import of thousands of data files
/// names them all in its query. Truncated to 20 KB each, the variables always fit
/// (`ScriptOperator.safeEnvVarValue`; the script reads none of them).
const IMPORT_SETTINGS: &str = "SET hive.script.operator.truncate.env=true;
SET hive.exec.compress.output=false;
";

/// The item column's name: `ddbx_item`, unless the table defines an attribute of that name
/// (any case: a key of the table or of an index), which the storage handler refuses beside
/// an item column (`DynamoDBStorageHandler.checkTableSchemaType` loops over the table's
/// `AttributeDefinitions`).
pub fn item_column(key_names: &[String]) -> String {
    let mut col = "ddbx_item".to_string();
    let mut n = 1;
    while key_names.iter().any(|k| k.eq_ignore_ascii_case(&col)) {
        n += 1;
        col = format!("ddbx_item_{n}");
    }
    col
}

/// Hive table names for one step: from the DynamoDB table's name, which may hold `.` and
/// `-` (not Hive identifiers), and unique among the steps sharing a cluster's metastore.
fn hive_name(kind: &str, table: &str) -> String {
    let digest = hex::encode(Md5::digest(table.as_bytes()));
    format!("ddbx_{kind}_{}", &digest[..12])
}

/// A text to go between single quotes in HiveQL: refused if it holds a quote, a backslash
/// or a line end (DynamoDB names never do; S3 locations might).
fn quoted(what: &str, text: &str) -> Result<String> {
    if text.contains(['\'', '\\', '\n', '\r', ';']) {
        return Err(Error::Usage(format!(
            "{what} {text:?}: a Hive step cannot name it (it holds a quote, a backslash, a semicolon or a line end)"
        )));
    }
    Ok(format!("'{text}'"))
}

/// A location as the Hive CLI's `ADD FILE` takes it: unquoted (the CLI splits the command
/// on whitespace and hands each word, quotes included, to `java.net.URI`), so refused when
/// it holds anything but letters, digits and `-_.~/:=+,@` (a quote, a space, `%`, `$`, `#`,
/// `?` or a non-ASCII letter would change or break what the cluster reads).
pub fn hive_cli_path(what: &str, url: &str) -> Result<String> {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_.~/:=+,@".contains(c);
    if !url.starts_with("s3://") || !url.chars().all(plain) {
        return Err(Error::Usage(format!(
            "{what} {url:?}: Hive's ADD FILE takes an S3 location of letters, digits and -_.~/:=+,@ only (it cannot be quoted); choose a location without the others"
        )));
    }
    Ok(url.to_string())
}

/// A folder's S3 location, ending with `/`.
fn folder(url: &str) -> String {
    format!("{}/", url.trim_end_matches('/'))
}

/// What an export step reads and writes.
#[derive(Debug, Clone)]
pub struct HiveExport<'a> {
    /// The table.
    pub table: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The attributes it defines (its keys and its indexes' keys): the item column must
    /// not be named as one.
    pub key_names: Vec<String>,
    /// Read units per second for the whole table.
    pub read_units: u64,
    /// Scan segments, when asked for (else the connector's own choice).
    pub segments: Option<u32>,
    /// gzip or none.
    pub compression: Compression,
    /// The folder the data files go to (`s3://.../<table>/data`).
    pub location: &'a str,
    /// Where the step lists the items it leaves out (`s3://.../_emr/names-<table>`): one
    /// line per item whose attribute names hold a line end, `\x02` or `\x03`, which the
    /// Data Pipeline text cannot hold (base64 of its names joined by `\x01`).
    pub odd_names: &'a str,
}

/// Items whose attribute names the Data Pipeline text cannot hold: a line end (Hive's
/// reader also ends a line at a bare CR) or one of the map's separators. The connector
/// writes names raw (`HiveDynamoDBItemType.buildHiveData`), so such a line would break.
fn odd_names_test(col: &str) -> String {
    format!("concat_ws('', map_keys({col})) RLIKE '[\\n\\r\\002\\003]'")
}

/// The HiveQL of one table's export: the items into the data folder, in one scan with
/// those whose names the text cannot hold listed apart (ddbx then fails the table, naming
/// them, rather than keep a backup that cannot be read back).
pub fn export_hql(e: &HiveExport<'_>) -> Result<String> {
    let col = item_column(&e.key_names);
    let (input, output) = (hive_name("in", e.table), hive_name("out", e.table));
    let mut q = format!("-- ddbx: export of {} into {}\n", e.table, e.location);
    q.push_str(COMMON);
    match e.compression {
        Compression::Gzip => q.push_str(
            "SET hive.exec.compress.output=true;\nSET mapreduce.output.fileoutputformat.compress=true;\nSET mapreduce.output.fileoutputformat.compress.codec=org.apache.hadoop.io.compress.GzipCodec;\n",
        ),
        Compression::None => q.push_str("SET hive.exec.compress.output=false;\n"),
        Compression::Zstd => {
            return Err(Error::Usage(
                "--engine emr writes gzip or no compression (Hadoop's zstd needs native support EMR does not promise): pass --compression gzip or none".into(),
            ))
        }
    }
    if let Some(n) = e.segments {
        q.push_str(&format!("SET dynamodb.scan.segments={n};\n"));
    }
    let odd = odd_names_test(&col);
    q.push_str(&format!(
        "CREATE EXTERNAL TABLE {input} ({col} MAP<STRING,STRING>)
  STORED BY '{HANDLER}'
  TBLPROPERTIES ('dynamodb.table.name'={}, 'dynamodb.region'={},
                 'dynamodb.throughput.read'='{}', 'dynamodb.throughput.read.percent'='1.0');
CREATE EXTERNAL TABLE {output} ({col} MAP<STRING,STRING>)
  ROW FORMAT DELIMITED COLLECTION ITEMS TERMINATED BY '\\002' MAP KEYS TERMINATED BY '\\003'
  LINES TERMINATED BY '\\n' STORED AS TEXTFILE
  LOCATION {};
FROM {input}
INSERT OVERWRITE TABLE {output} SELECT {col} WHERE NOT ({odd})
INSERT OVERWRITE DIRECTORY {} SELECT base64(encode(concat_ws('\\001', map_keys({col})), 'UTF-8')) WHERE {odd};
DROP TABLE {input};
DROP TABLE {output};
",
        quoted("table", e.table)?,
        quoted("region", e.region)?,
        e.read_units.max(1),
        quoted("location", &folder(e.location))?,
        quoted("location", &folder(e.odd_names))?,
    ));
    Ok(q)
}

/// What an import step reads and writes.
#[derive(Debug, Clone)]
pub struct HiveImport<'a> {
    /// The table written into.
    pub target: &'a str,
    /// Its region.
    pub region: &'a str,
    /// The attributes it defines (its keys and its indexes' keys).
    pub key_names: Vec<String>,
    /// Write units per second for the whole table.
    pub write_units: u64,
    /// The export's format (how the script reads a line).
    pub format: DataFormat,
    /// The folder holding the export's data files.
    pub location: &'a str,
    /// The data files of the export, by name (other files in the folder are not read);
    /// `None`: every file of the folder (Hive's own export folder holds nothing else).
    pub files: Option<Vec<String>>,
    /// Where the lines of items the connector cannot write go, as they were
    /// (`s3://.../_import/<target>/set-aside`): ddbx writes them after the step.
    pub set_aside: &'a str,
    /// Where lines that are not items go (`.../unreadable`): the table then fails.
    pub unreadable: &'a str,
    /// Where the script is (`s3://.../_emr/ddbx_import.py`).
    pub script: &'a str,
    /// The type key the cluster's connector reads NULL by: `nULL` (connector 5.x) or
    /// `nULLValue` (4.x, releases before emr-6.15).
    pub null_key: &'a str,
}

/// The HiveQL of one table's import.
pub fn import_hql(i: &HiveImport<'_>) -> Result<String> {
    let col = item_column(&i.key_names);
    let (src, dst) = (hive_name("src", i.target), hive_name("dst", i.target));
    let format =
        match i.format {
            DataFormat::DynamodbJson => "dynamodb-json",
            DataFormat::Emr => "connector",
            DataFormat::DataPipeline => "data-pipeline",
            DataFormat::Ion => return Err(Error::Usage(
                "Ion exports are imported by the local engine (EMR's clusters have no Ion reader)"
                    .into(),
            )),
        };
    let only = match &i.files {
        Some(files) if files.is_empty() => {
            return Err(Error::Usage(format!(
                "{}: no data file to import",
                i.location
            )))
        }
        Some(files) => {
            let names = files
                .iter()
                .map(|f| quoted("data file", f))
                .collect::<Result<Vec<_>>>()?;
            format!(
                "\n  WHERE regexp_extract(INPUT__FILE__NAME, '[^/]+$', 0) IN ({})",
                names.join(", ")
            )
        }
        None => String::new(),
    };
    let mut q = format!(
        "-- ddbx: import of {} ({format}) into {}\n",
        i.location, i.target
    );
    q.push_str(COMMON);
    q.push_str(IMPORT_SETTINGS);
    q.push_str(&format!(
        "ADD FILE {script};
CREATE EXTERNAL TABLE {src} (line STRING)
  ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\001' LINES TERMINATED BY '\\n'
  STORED AS TEXTFILE
  LOCATION {location};
CREATE EXTERNAL TABLE {dst} ({col} MAP<STRING,STRING>)
  STORED BY '{HANDLER}'
  TBLPROPERTIES ('dynamodb.table.name'={target}, 'dynamodb.region'={region},
                 'dynamodb.throughput.write'='{units}', 'dynamodb.throughput.write.percent'='1.0');
FROM (
  SELECT TRANSFORM (line)
    ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\001'
    USING 'python3 {IMPORT_SCRIPT_NAME} {format} {null_key}'
    AS (kind STRING, {col} MAP<STRING,STRING>, raw STRING)
    ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\001' COLLECTION ITEMS TERMINATED BY '\\002' MAP KEYS TERMINATED BY '\\003'
  FROM {src}{only}
) lines
INSERT OVERWRITE TABLE {dst} SELECT {col} WHERE kind = 'item'
INSERT OVERWRITE DIRECTORY {set_aside} SELECT raw WHERE kind = 'aside'
INSERT OVERWRITE DIRECTORY {unreadable} SELECT raw WHERE kind = 'bad';
DROP TABLE {src};
DROP TABLE {dst};
",
        script = hive_cli_path("the import script's location", i.script)?,
        location = quoted("location", &folder(i.location))?,
        target = quoted("table", i.target)?,
        region = quoted("region", i.region)?,
        units = i.write_units.max(1),
        null_key = i.null_key,
        set_aside = quoted("location", &folder(i.set_aside))?,
        unreadable = quoted("location", &folder(i.unreadable))?,
    ));
    Ok(q)
}

/// The TRANSFORM script of an import (Python 3, as EMR's nodes have it): one export line
/// in, one row out: `item`, the item as Hive's map text (each attribute's name, `\x03`, its
/// value as the connector's JSON, attributes joined by `\x02`); or `aside` with the line as
/// it was (an empty list or map at any depth, which the connector 5.x cannot write, or a
/// name the text format cannot hold), or `bad` with the line (not an item: ddbx fails the
/// table, naming it). Fields are joined by `\x01`.
pub const IMPORT_SCRIPT: &str = r#"#!/usr/bin/env python3
# ddbx: one export line in (argv[1] says its format), one row out for Hive's TRANSFORM.
# Python 3.4 or later; stdin and stdout are read and written as UTF-8 whatever the YARN
# container's locale (before 3.7, Python's stdio is ASCII in the C locale).
import io, json, sys

fmt, null_key = sys.argv[1], sys.argv[2]
KEYS = {"s": "s", "n": "n", "b": "b", "ss": "sS", "ns": "nS", "bs": "bS",
        "m": "m", "l": "l", "null": null_key, "nullvalue": null_key, "bool": "bOOL"}
BAD_NAME = ("\x01", "\x02", "\x03", "\n", "\r")
# Hive reads a map key spelt \N as NULL and drops it.
NULL_TEXT = "\\N"

def convert(v):
    # One typed value, its type key in the connector's spelling; None: not writable by it.
    if not isinstance(v, dict) or len(v) != 1:
        raise ValueError("not a typed value")
    (k, x), = v.items()
    key = KEYS[k.lower()]
    if key == "l":
        if not x:
            return None
        out = []
        for e in x:
            c = convert(e)
            if c is None:
                return None
            out.append(c)
        return {key: out}
    if key == "m":
        if not x:
            return None
        out = {}
        for n, e in x.items():
            c = convert(e)
            if c is None:
                return None
            out[n] = c
        return {key: out}
    return {key: x}

def item_of(line):
    if fmt == "dynamodb-json":
        top = json.loads(line)
        if set(top) != {"Item"}:
            raise ValueError("not an {\"Item\":...} line")
        return top["Item"]
    if fmt == "connector":
        return json.loads(line)
    item = {}
    for field in line.split("\x02"):
        name, value = field.split("\x03", 1)
        item[name] = json.loads(value)
    return item

text = dict(encoding="utf-8", errors="surrogateescape", newline="\n")
lines = io.TextIOWrapper(sys.stdin.buffer, **text)
out = io.TextIOWrapper(sys.stdout.buffer, **text)
for raw in lines:
    line = raw.rstrip("\n").rstrip("\r")
    if not line.strip():
        continue
    try:
        item = item_of(line)
        if not isinstance(item, dict) or not item:
            raise ValueError("not an item")
        attrs = []
        aside = False
        for name, value in item.items():
            c = convert(value)
            if c is None or name == NULL_TEXT or any(b in name for b in BAD_NAME):
                aside = True
                break
            attrs.append(name + "\x03" + json.dumps(c, ensure_ascii=False, separators=(",", ":")))
        row = ("aside\x01\x01" + line) if aside else ("item\x01" + "\x02".join(attrs) + "\x01")
        out.write(row + "\n")
    except Exception:
        out.write("bad\x01\x01" + line + "\n")
out.flush()
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn export() -> HiveExport<'static> {
        HiveExport {
            table: "BILLING.orders-2",
            region: "us-east-1",
            key_names: vec!["pk".into()],
            read_units: 225,
            segments: None,
            compression: Compression::Gzip,
            location: "s3://b/ddb/us-east-1/billing/2026/11/24/03_00.00/BILLING.orders-2/data",
            odd_names:
                "s3://b/ddb/us-east-1/billing/2026/11/24/03_00.00/_emr/names-BILLING.orders-2",
        }
    }

    #[test]
    fn an_export_reads_at_the_plans_rate_into_the_data_folder() {
        let q = export_hql(&export()).unwrap();
        for want in [
            "SET hive.execution.engine=mr;",
            "SET mapreduce.map.speculative=false;",
            "SET hive.merge.mapfiles=false;",
            "compress.codec=org.apache.hadoop.io.compress.GzipCodec;",
            "'dynamodb.table.name'='BILLING.orders-2'",
            "'dynamodb.throughput.read'='225', 'dynamodb.throughput.read.percent'='1.0'",
            "(ddbx_item MAP<STRING,STRING>)",
            "COLLECTION ITEMS TERMINATED BY '\\002' MAP KEYS TERMINATED BY '\\003'",
            "LOCATION 's3://b/ddb/us-east-1/billing/2026/11/24/03_00.00/BILLING.orders-2/data/';",
            "FROM ddbx_in_",
            "INSERT OVERWRITE TABLE ddbx_out_",
            "SELECT ddbx_item WHERE NOT (concat_ws('', map_keys(ddbx_item)) RLIKE '[\\n\\r\\002\\003]')",
            "INSERT OVERWRITE DIRECTORY 's3://b/ddb/us-east-1/billing/2026/11/24/03_00.00/_emr/names-BILLING.orders-2/' SELECT base64(encode(concat_ws('\\001', map_keys(ddbx_item)), 'UTF-8'))",
        ] {
            assert!(q.contains(want), "{want} in\n{q}");
        }
        assert!(!q.contains("dynamodb.scan.segments"));
        let q = export_hql(&HiveExport {
            segments: Some(8),
            compression: Compression::None,
            ..export()
        })
        .unwrap();
        assert!(q.contains("SET dynamodb.scan.segments=8;") && q.contains("compress.output=false"));
        assert!(export_hql(&HiveExport {
            compression: Compression::Zstd,
            ..export()
        })
        .is_err());
        assert!(export_hql(&HiveExport {
            location: "s3://b/it's",
            ..export()
        })
        .is_err());
    }

    #[test]
    fn the_item_column_never_takes_a_key_name() {
        assert_eq!(item_column(&["pk".into()]), "ddbx_item");
        assert_eq!(item_column(&["DDBX_ITEM".into()]), "ddbx_item_2");
        assert_eq!(
            item_column(&["ddbx_item".into(), "ddbx_item_2".into()]),
            "ddbx_item_3"
        );
    }

    #[test]
    fn steps_of_two_tables_never_share_a_hive_table() {
        assert_ne!(hive_name("in", "a.b"), hive_name("in", "a_b"));
        assert!(hive_name("in", "x-y.z")
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'));
    }

    #[test]
    fn an_import_reads_only_the_listed_files_and_sets_aside_what_the_connector_cannot_write() {
        let q = import_hql(&HiveImport {
            target: "RESTORED",
            region: "eu-west-1",
            key_names: vec!["id".into()],
            write_units: 800,
            format: DataFormat::DynamodbJson,
            location: "s3://b/run/T/AWSDynamoDB/0170-ab/data",
            files: Some(vec!["aaaa.json.gz".into(), "bbbb.json.gz".into()]),
            set_aside: "s3://b/state/_import/RESTORED/set-aside",
            unreadable: "s3://b/state/_import/RESTORED/unreadable",
            script: "s3://b/state/_emr/ddbx_import.py",
            null_key: "nULL",
        })
        .unwrap();
        for want in [
            "\nADD FILE s3://b/state/_emr/ddbx_import.py;\n",
            "SET hive.script.operator.truncate.env=true;",
            "USING 'python3 ddbx_import.py dynamodb-json nULL'",
            "IN ('aaaa.json.gz', 'bbbb.json.gz')",
            "'dynamodb.throughput.write'='800', 'dynamodb.throughput.write.percent'='1.0'",
            "INSERT OVERWRITE DIRECTORY 's3://b/state/_import/RESTORED/set-aside/' SELECT raw WHERE kind = 'aside'",
            "INSERT OVERWRITE DIRECTORY 's3://b/state/_import/RESTORED/unreadable/' SELECT raw WHERE kind = 'bad';",
        ] {
            assert!(q.contains(want), "{want} in\n{q}");
        }
    }

    /// The script itself, run by this machine's Python on the lines of each format.
    #[test]
    fn the_import_script_turns_lines_into_hive_rows() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join(IMPORT_SCRIPT_NAME);
        std::fs::write(&script, IMPORT_SCRIPT).unwrap();
        let run = |format: &str, input: &str| -> Vec<Vec<String>> {
            use std::io::Write;
            // As in a YARN container: no locale, and stdio as Python before 3.7 has it in
            // the C locale (ASCII, strict).
            let mut child = std::process::Command::new("python3")
                .arg(&script)
                .args([format, "nULL"])
                .env_remove("LANG")
                .env("LC_ALL", "C")
                .env("PYTHONCOERCECLOCALE", "0")
                .env("PYTHONUTF8", "0")
                .env("PYTHONIOENCODING", "ascii:strict")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(|l| l.split('\u{1}').map(str::to_string).collect())
                .collect()
        };
        let rows = run(
            "dynamodb-json",
            concat!(
                r#"{"Item":{"id":{"S":"a"},"n":{"N":"1.5"},"g":{"NULL":true},"l":{"L":[{"BOOL":true}]}}}"#,
                "\n",
                r#"{"Item":{"id":{"S":"b"},"deep":{"M":{"x":{"L":[]}}}}}"#,
                "\n",
                "not json\n",
            ),
        );
        assert_eq!(rows[0][0], "item");
        let mut attrs: Vec<&str> = rows[0][1].split('\u{2}').collect();
        attrs.sort();
        assert_eq!(
            attrs,
            [
                "g\u{3}{\"nULL\":true}",
                "id\u{3}{\"s\":\"a\"}",
                "l\u{3}{\"l\":[{\"bOOL\":true}]}",
                "n\u{3}{\"n\":\"1.5\"}"
            ]
        );
        assert_eq!(rows[1][0], "aside", "an empty list at depth 2");
        assert!(rows[1][2].contains("\"deep\""));
        assert_eq!(rows[2], ["bad", "", "not json"]);
        let rows = run(
            "data-pipeline",
            "id\u{3}{\"s\":\"x\"}\u{2}m\u{3}{\"m\":{}}\nid\u{3}{\"s\":\"y\"}\u{2}k\u{3}{\"nULLValue\":true}\n",
        );
        assert_eq!(rows[0][0], "aside");
        assert_eq!(rows[1][0], "item");
        assert!(rows[1][1].contains("k\u{3}{\"nULL\":true}"));
        let rows = run(
            "connector",
            "{\"id\":{\"s\":\"z\"},\"bad\\nname\":{\"s\":\"v\"}}\n",
        );
        assert_eq!(rows[0][0], "aside", "a name the text format cannot hold");
        // Non-ASCII names and values pass as UTF-8 whatever the locale; a name Hive would
        // read as NULL (\N) goes aside.
        let rows = run(
            "connector",
            "{\"id\":{\"s\":\"z\u{e9}\"},\"\u{fc}nic\u{f6}de \u{2713}\":{\"n\":\"1\"}}\n{\"id\":{\"s\":\"n\"},\"\\\\N\":{\"s\":\"v\"}}\n",
        );
        assert_eq!(rows[0][0], "item");
        assert!(
            rows[0][1].contains("\u{fc}nic\u{f6}de \u{2713}\u{3}{\"n\":\"1\"}"),
            "{:?}",
            rows[0]
        );
        assert!(rows[0][1].contains("id\u{3}{\"s\":\"z\u{e9}\"}"));
        assert_eq!(rows[1][0], "aside", "{:?}", rows[1]);
    }

    #[test]
    fn add_file_takes_its_location_unquoted_and_refuses_one_that_would_need_quotes() {
        assert_eq!(
            hive_cli_path("script", "s3://b/state/_emr/ddbx_import.py").unwrap(),
            "s3://b/state/_emr/ddbx_import.py"
        );
        for bad in [
            "s3://b/my state/_emr/ddbx_import.py",
            "s3://b/it's/_emr/ddbx_import.py",
            "s3://b/a%20b/x.py",
            "s3://b/${env}/x.py",
            "s3://b/a#b/x.py",
            "s3://b/caf\u{e9}/x.py",
            "/local/x.py",
        ] {
            let e = hive_cli_path("script", bad).unwrap_err().to_string();
            assert!(e.contains("ADD FILE"), "{bad}: {e}");
        }
    }
}
