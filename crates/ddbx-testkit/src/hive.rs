//! The EMR stand-in's Hive (3.1, as emr-6/7 ship it), written from Apache Hive's source and
//! none of ddbx's code: a script is read as the Hive CLI reads it (`CliDriver`: lines
//! starting with `--` dropped, commands split at `;` outside quotes), each command goes to
//! the processor Hive gives it (`SET` to `SetProcessor`, `ADD` to `AddResourceProcessor`,
//! the rest to the SQL driver), and the SQL is tokenized (`HiveLexer`: quoted strings with
//! backslash escapes, `unescapeSQLString`) and parsed for the statements an export or an
//! import needs (external tables over the DynamoDB storage handler or text in S3, single
//! and multi-inserts into tables and directories, `SELECT TRANSFORM` with its row
//! formats), then carried out against the emulators through [`Io`].
//!
//! What it refuses, as Hive does: a quoted `ADD FILE` path (`java.net.URI`), a `SET` of a
//! `hive.*` key Hive does not know or of a value of the wrong type (`hive.conf.validation`,
//! on by default; the known keys are a short list, those ddbx may use), `LINES TERMINATED
//! BY` other than `'\n'`, a SerDe class not on the classpath, a TRANSFORM script that is
//! not an added file, an environment string over Linux's 128 KiB (Hive copies the job's
//! settings, the query's text included, into the script's environment); and, as the
//! connector does not (it ignores them), any `dynamodb.*` property the connector does not
//! read.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::PathBuf;

use aws_sdk_dynamodb::types::AttributeValue;

use crate::connector;

/// A DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// What a Hive step reaches: S3, DynamoDB, and a scratch folder on its node.
pub trait Io {
    fn get(&self, url: &str) -> Option<Vec<u8>>;
    fn put(&self, url: &str, body: &[u8]);
    /// Every object under a folder's URL, as URLs.
    fn list(&self, folder: &str) -> Vec<String>;
    fn delete_under(&self, folder: &str);
    /// The table's `AttributeDefinitions` names (DescribeTable).
    fn attribute_names(&self, table: &str) -> Result<Vec<String>, String>;
    fn scan(&self, table: &str, segment: i32, total: i32) -> Result<Vec<Item>, String>;
    fn write(&self, table: &str, items: Vec<Item>) -> Result<(), String>;
    fn scratch(&self) -> PathBuf;
}

/// The `hive.*` settings this Hive knows (HiveConf), with their types: any other `hive.*`
/// key is refused.
const HIVE_KEYS: &[(&str, Kind)] = &[
    (
        "hive.execution.engine",
        Kind::OneOf(&["mr", "tez", "spark"]),
    ),
    ("hive.merge.mapfiles", Kind::Bool),
    ("hive.merge.mapredfiles", Kind::Bool),
    ("hive.stats.autogather", Kind::Bool),
    ("hive.stats.column.autogather", Kind::Bool),
    ("hive.exec.compress.output", Kind::Bool),
    ("hive.script.operator.truncate.env", Kind::Bool),
    ("hive.script.operator.env.blacklist", Kind::Text),
    ("hive.blobstore.use.output-committer", Kind::Bool),
];

/// `HIVESCRIPT_ENV_BLACKLIST`'s default in Hive 3.
const ENV_BLACKLIST: &str = "hive.txn.valid.txns,hive.txn.tables.valid.writeids,hive.txn.valid.writeids,hive.script.operator.env.blacklist";

/// The properties the connector reads (`DynamoDBConstants`, connector 5.x).
const CONNECTOR_KEYS: &[&str] = &[
    "dynamodb.awsAccessKeyId",
    "dynamodb.awsSecretAccessKey",
    "dynamodb.awsSessionToken",
    "dynamodb.customAWSCredentialsProvider",
    "dynamodb.customClientBuilderTransformer",
    "dynamodb.column.mapping",
    "dynamodb.type.mapping",
    "dynamodb.null.serialization",
    "dynamodb.table.keyNames",
    "dynamodb.filter.pushdown",
    "dynamodb.endpoint",
    "dynamodb.regionid",
    "dynamodb.region",
    "dynamodb.proxy.hostname",
    "dynamodb.proxy.port",
    "dynamodb.proxy.username",
    "dynamodb.proxy.password",
    "dynamodb.table.name",
    "dynamodb.output.tableName",
    "dynamodb.input.tableName",
    "dynamodb.throughput.write.percent",
    "dynamodb.throughput.read.percent",
    "dynamodb.throughput.read",
    "dynamodb.throughput.write",
    "dynamodb.throughput.read.autoscaling",
    "dynamodb.throughput.write.autoscaling",
    "dynamodb.item.average.size",
    "dynamodb.item.count",
    "dynamodb.table.size-bytes",
    "dynamodb.max.map.tasks",
    "dynamodb.max.item.size",
    "dynamodb.max.batch.size",
    "dynamodb.max.batch.items",
    "dynamodb.deletion.mode",
    "dynamodb.split.size",
    "dynamodb.yarn.enabled",
    "dynamodb.scan.segments",
    "dynamodb.export.format.version",
];

const HANDLER: &str = "org.apache.hadoop.hive.dynamodb.DynamoDBStorageHandler";
const LAZY_SIMPLE: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
/// Linux's limit on one environment string, its NUL included (MAX_ARG_STRLEN).
const MAX_ARG_STRLEN: usize = 32 * 4096;
/// The room for arguments and environment together (ARG_MAX with an 8 MiB stack).
const ARG_MAX: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, Copy)]
enum Kind {
    Bool,
    Text,
    OneOf(&'static [&'static str]),
}

// ---- the CLI ----

/// The commands of a script as the Hive CLI reads them.
pub fn commands(text: &str) -> Vec<String> {
    let text: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .map(|l| format!("{l}\n"))
        .collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        match (quote, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => quote = Some(c),
            (None, ';') => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// One Hive CLI session: its settings, added files and tables.
pub struct Session<'a> {
    io: &'a dyn Io,
    /// The release's `python3` (major, minor): its stdio in a YARN container.
    python: (u32, u32),
    settings: BTreeMap<String, String>,
    files: HashMap<String, PathBuf>,
    tables: HashMap<String, Table>,
}

impl<'a> Session<'a> {
    pub fn new(io: &'a dyn Io, python: (u32, u32)) -> Self {
        Self {
            io,
            python,
            settings: BTreeMap::new(),
            files: HashMap::new(),
            tables: HashMap::new(),
        }
    }

    /// Run a script (`hive -f`): the first command that fails stops it.
    pub fn run_script(&mut self, text: &str) -> Result<(), String> {
        for cmd in commands(text) {
            let first = cmd.split_whitespace().next().unwrap_or("").to_lowercase();
            let rest = cmd[first.len()..].trim();
            match first.as_str() {
                "set" => self.set(rest)?,
                "add" => self.add(rest)?,
                _ => self.sql(&cmd)?,
            }
        }
        Ok(())
    }

    /// `SetProcessor`: `key=value`, trimmed; `hive.*` keys validated.
    fn set(&mut self, command: &str) -> Result<(), String> {
        let (key, value) = command
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .ok_or_else(|| format!("this stand-in sets values only: SET {command}"))?;
        if key.starts_with("hive.") {
            let kind = HIVE_KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, t)| *t)
                .ok_or_else(|| format!("Query returned non-zero code: 1, cause: hive configuration {key} does not exists."))?;
            let ok = match kind {
                Kind::Bool => {
                    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
                }
                Kind::Text => true,
                Kind::OneOf(v) => v.iter().any(|x| x.eq_ignore_ascii_case(value)),
            };
            if !ok {
                return Err(format!(
                    "'SET {key}={value}' FAILED in validation : {kind:?} expected."
                ));
            }
        }
        check_connector_key(key)?;
        self.settings.insert(key.to_string(), value.to_string());
        Ok(())
    }

    /// `AddResourceProcessor`: the command split on whitespace, each path handed to
    /// `java.net.URI` as it is, quotes included, then fetched to the node.
    fn add(&mut self, command: &str) -> Result<(), String> {
        let tokens: Vec<&str> = command.split_whitespace().collect();
        let kind = tokens.first().map(|t| t.to_uppercase()).unwrap_or_default();
        if tokens.len() < 2
            || !matches!(
                kind.as_str(),
                "FILE" | "FILES" | "JAR" | "JARS" | "ARCHIVE" | "ARCHIVES"
            )
        {
            return Err("Usage: add [FILE|JAR|ARCHIVE] <value> [<value>]*".into());
        }
        for path in &tokens[1..] {
            let key = java_uri_path(path)?;
            let body = self.io.get(&key).ok_or_else(|| {
                format!("java.io.FileNotFoundException: File does not exist: {path}")
            })?;
            let name = key.rsplit('/').next().unwrap_or("").to_string();
            let dir = self
                .io
                .scratch()
                .join(format!("hive-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(&name), body).unwrap();
            self.files.insert(name.clone(), dir.join(name));
        }
        Ok(())
    }

    fn sql(&mut self, cmd: &str) -> Result<(), String> {
        let tokens = lex(cmd)?;
        let mut p = Parser { t: &tokens, at: 0 };
        let stmt = p.statement()?;
        if p.at != tokens.len() {
            return Err(format!(
                "ParseException: extraneous input {:?} in {cmd:?}",
                tokens[p.at]
            ));
        }
        match stmt {
            Stmt::Create(name, table) => self.create(name, table),
            Stmt::Drop(name) => {
                self.tables.remove(&name);
                Ok(())
            }
            Stmt::Insert(from, inserts) => self.insert(cmd, from, inserts),
        }
    }
}

/// The S3 location `java.net.URI` makes of an ADD FILE path, or its refusal.
fn java_uri_path(path: &str) -> Result<String, String> {
    let bad = |at: usize, what: &str| {
        Err(format!(
            "java.lang.IllegalArgumentException: java.net.URISyntaxException: Illegal character in {what} at index {at}: {path}"
        ))
    };
    let Some(colon) = path.find(':') else {
        return Err(format!("this stand-in adds files from s3:// only: {path}"));
    };
    for (i, c) in path[..colon].char_indices() {
        if !(c.is_ascii_alphabetic() || (i > 0 && (c.is_ascii_digit() || "+-.".contains(c)))) {
            return bad(i, "scheme name");
        }
    }
    // RFC 2396 as java.net.URI reads it: these never appear raw; `?` and `#` end the path.
    for (i, c) in path.char_indices().skip(colon + 1) {
        if c.is_control() || c.is_whitespace() || "\"<>\\^`{|}[]".contains(c) {
            return bad(i, "path");
        }
        if c == '%' && !path[i + 1..].chars().take(2).all(|h| h.is_ascii_hexdigit()) {
            return Err(format!(
                "java.net.URISyntaxException: Malformed escape pair at index {i}: {path}"
            ));
        }
    }
    if !path.starts_with("s3://") {
        return Err(format!("this stand-in adds files from s3:// only: {path}"));
    }
    Ok(path.split(['?', '#']).next().unwrap_or(path).to_string())
}

fn check_connector_key(key: &str) -> Result<(), String> {
    if key.starts_with("dynamodb.") && !CONNECTOR_KEYS.contains(&key) {
        return Err(format!(
            "{key}: not a property the connector reads (it would be ignored)"
        ));
    }
    Ok(())
}

// ---- tokens ----

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Sym(String),
}

/// `HiveLexer`, for what ddbx's statements hold.
fn lex(text: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '\'' || c == '"' {
            let mut raw = String::new();
            i += 1;
            loop {
                let Some(&d) = chars.get(i) else {
                    return Err(format!("ParseException: unterminated string in {text:?}"));
                };
                i += 1;
                if d == '\\' {
                    raw.push(d);
                    raw.push(*chars.get(i).ok_or("ParseException: unterminated string")?);
                    i += 1;
                } else if d == c {
                    break;
                } else {
                    raw.push(d);
                }
            }
            out.push(Tok::Str(unescape(&raw)));
        } else if c.is_ascii_alphanumeric() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Tok::Word(chars[start..i].iter().collect()));
        } else if c == '`' {
            let end = chars[i + 1..]
                .iter()
                .position(|&d| d == '`')
                .ok_or("ParseException: `")?;
            out.push(Tok::Word(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if "(),=<>.*;".contains(c) {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            if ["<>", "<=", ">=", "!="].contains(&two.as_str()) {
                out.push(Tok::Sym(two));
                i += 2;
            } else {
                out.push(Tok::Sym(c.to_string()));
                i += 1;
            }
        } else if c == '!' && chars.get(i + 1) == Some(&'=') {
            out.push(Tok::Sym("!=".into()));
            i += 2;
        } else {
            return Err(format!(
                "ParseException: character {c:?} not supported here"
            ));
        }
    }
    Ok(out)
}

/// `BaseSemanticAnalyzer.unescapeSQLString`.
fn unescape(raw: &str) -> String {
    let c: Vec<char> = raw.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < c.len() {
        if c[i] != '\\' || i + 1 >= c.len() {
            out.push(c[i]);
            i += 1;
            continue;
        }
        let octal = |k: usize| c.get(k).is_some_and(|d| ('0'..='7').contains(d));
        if i + 3 < c.len() && ('0'..='1').contains(&c[i + 1]) && octal(i + 2) && octal(i + 3) {
            let s: String = c[i + 1..i + 4].iter().collect();
            out.push(char::from(u8::from_str_radix(&s, 8).unwrap()));
            i += 4;
            continue;
        }
        if matches!(c[i + 1], '%' | '_') {
            out.push('\\');
        }
        out.push(match c[i + 1] {
            '0' => '\0',
            'b' => '\u{8}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'Z' => '\u{1a}',
            d => d,
        });
        i += 2;
    }
    out
}

// ---- statements ----

#[derive(Debug, Clone, PartialEq)]
enum Type {
    String,
    Map,
}

/// A row format (`ROW FORMAT DELIMITED ...` or LazySimpleSerDe), its defaults filled in.
#[derive(Debug, Clone)]
struct RowFormat {
    field: char,
    items: char,
    keys: char,
    null: String,
}

impl RowFormat {
    fn text() -> Self {
        Self {
            field: '\u{1}',
            items: '\u{2}',
            keys: '\u{3}',
            null: "\\N".into(),
        }
    }

    /// A TRANSFORM's default: tab-separated (`hive.script.serde`, LazySimpleSerDe).
    fn script() -> Self {
        Self {
            field: '\t',
            ..Self::text()
        }
    }
}

#[derive(Debug, Clone)]
enum Table {
    Dynamo {
        table: String,
        column: String,
        properties: HashMap<String, String>,
    },
    Text {
        location: String,
        columns: Vec<(String, Type)>,
        format: RowFormat,
    },
}

enum Stmt {
    Create(String, Table),
    Drop(String),
    Insert(Source, Vec<Insert>),
}

enum Source {
    Table(String),
    Transform(Box<Transform>),
}

struct Transform {
    inputs: Vec<Expr>,
    in_format: RowFormat,
    command: String,
    outputs: Vec<(String, Type)>,
    out_format: RowFormat,
    from: String,
    filter: Option<Expr>,
}

struct Insert {
    target: Target,
    select: Expr,
    filter: Option<Expr>,
}

enum Target {
    Table(String),
    Directory(String),
}

#[derive(Debug, Clone)]
enum Expr {
    Str(String),
    Int(i64),
    Column(String),
    Call(String, Vec<Expr>),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Eq(Box<Expr>, Box<Expr>),
    Rlike(Box<Expr>, Box<Expr>),
    In(Box<Expr>, Vec<Expr>),
}

struct Parser<'t> {
    t: &'t [Tok],
    at: usize,
}

impl Parser<'_> {
    fn peek_kw(&self, kw: &str) -> bool {
        matches!(self.t.get(self.at), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(kw))
    }
    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.peek_kw(kw);
        self.at += yes as usize;
        yes
    }
    fn kws(&mut self, kws: &str) -> Result<(), String> {
        for kw in kws.split(' ') {
            if !self.eat_kw(kw) {
                return Err(format!(
                    "ParseException: expected {kw} near {:?}",
                    self.t.get(self.at)
                ));
            }
        }
        Ok(())
    }
    fn sym(&mut self, s: &str) -> bool {
        let yes = matches!(self.t.get(self.at), Some(Tok::Sym(x)) if x == s);
        self.at += yes as usize;
        yes
    }
    fn expect(&mut self, s: &str) -> Result<(), String> {
        if self.sym(s) {
            Ok(())
        } else {
            Err(format!(
                "ParseException: expected {s:?} near {:?}",
                self.t.get(self.at)
            ))
        }
    }
    fn ident(&mut self) -> Result<String, String> {
        match self.t.get(self.at) {
            Some(Tok::Word(w)) => {
                self.at += 1;
                Ok(w.to_lowercase())
            }
            other => Err(format!("ParseException: expected a name near {other:?}")),
        }
    }
    fn string(&mut self) -> Result<String, String> {
        match self.t.get(self.at) {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Ok(s.clone())
            }
            other => Err(format!(
                "ParseException: expected a string literal near {other:?}"
            )),
        }
    }

    fn statement(&mut self) -> Result<Stmt, String> {
        if self.eat_kw("CREATE") {
            if !self.eat_kw("EXTERNAL") {
                return Err("this stand-in creates EXTERNAL tables only".into());
            }
            self.kws("TABLE")?;
            let name = self.ident()?;
            return self.create().map(|t| Stmt::Create(name, t));
        }
        if self.eat_kw("DROP") {
            self.kws("TABLE")?;
            return Ok(Stmt::Drop(self.ident()?));
        }
        if self.peek_kw("INSERT") {
            let mut insert = self.insert_clause()?;
            self.kws("FROM")?;
            let from = self.ident()?;
            insert.filter = self.filter()?;
            return Ok(Stmt::Insert(Source::Table(from), vec![insert]));
        }
        self.kws("FROM")?;
        let source = if self.sym("(") {
            let t = self.transform()?;
            self.expect(")")?;
            self.ident()?; // the subquery's alias
            Source::Transform(Box::new(t))
        } else {
            Source::Table(self.ident()?)
        };
        let mut inserts = Vec::new();
        while self.peek_kw("INSERT") {
            let mut i = self.insert_clause()?;
            i.filter = self.filter()?;
            inserts.push(i);
        }
        if inserts.is_empty() {
            return Err("ParseException: FROM without INSERT".into());
        }
        Ok(Stmt::Insert(source, inserts))
    }

    /// `INSERT OVERWRITE (TABLE t | DIRECTORY 'd') SELECT expr`.
    fn insert_clause(&mut self) -> Result<Insert, String> {
        self.kws("INSERT OVERWRITE")?;
        let target = if self.eat_kw("TABLE") {
            Target::Table(self.ident()?)
        } else {
            self.kws("DIRECTORY")?;
            Target::Directory(self.string()?)
        };
        self.kws("SELECT")?;
        Ok(Insert {
            target,
            select: self.expr()?,
            filter: None,
        })
    }

    fn filter(&mut self) -> Result<Option<Expr>, String> {
        Ok(if self.eat_kw("WHERE") {
            Some(self.expr()?)
        } else {
            None
        })
    }

    fn create(&mut self) -> Result<Table, String> {
        let columns = self.columns()?;
        let format = self.row_format()?;
        let mut handler = None;
        if self.eat_kw("STORED") {
            if self.eat_kw("BY") {
                handler = Some(self.string()?);
            } else {
                self.kws("AS")?;
                let f = self.ident()?;
                if f != "textfile" {
                    return Err(format!("this stand-in stores TEXTFILE only, not {f}"));
                }
            }
        }
        let location = if self.eat_kw("LOCATION") {
            Some(self.string()?)
        } else {
            None
        };
        let mut properties = HashMap::new();
        if self.eat_kw("TBLPROPERTIES") {
            self.expect("(")?;
            loop {
                let k = self.string()?;
                self.expect("=")?;
                properties.insert(k, self.string()?);
                if !self.sym(",") {
                    break;
                }
            }
            self.expect(")")?;
        }
        match handler {
            Some(h) if h == HANDLER => {
                let [(column, Type::Map)] = &columns[..] else {
                    return Err(
                        "MetaException: this stand-in maps one item column (MAP<STRING,STRING>)"
                            .into(),
                    );
                };
                Ok(Table::Dynamo {
                    table: String::new(),
                    column: column.clone(),
                    properties,
                })
            }
            Some(h) => Err(format!("SemanticException: Cannot find class '{h}'")),
            None => Ok(Table::Text {
                location: location.ok_or("SemanticException: this stand-in needs a LOCATION")?,
                columns,
                format: format.unwrap_or_else(RowFormat::text),
            }),
        }
    }

    fn columns(&mut self) -> Result<Vec<(String, Type)>, String> {
        self.expect("(")?;
        let mut cols = Vec::new();
        loop {
            let name = self.ident()?;
            let ty = if self.eat_kw("MAP") {
                self.expect("<")?;
                self.kws("STRING")?;
                self.expect(",")?;
                self.kws("STRING")?;
                self.expect(">")?;
                Type::Map
            } else if self.eat_kw("STRING") {
                Type::String
            } else {
                return Err(format!(
                    "this stand-in knows STRING and MAP<STRING,STRING> columns only ({name})"
                ));
            };
            cols.push((name, ty));
            if !self.sym(",") {
                break;
            }
        }
        self.expect(")")?;
        Ok(cols)
    }

    /// `ROW FORMAT DELIMITED` with its clauses in the grammar's order, or a SerDe.
    fn row_format(&mut self) -> Result<Option<RowFormat>, String> {
        if !self.eat_kw("ROW") {
            return Ok(None);
        }
        self.kws("FORMAT")?;
        let mut f = RowFormat::text();
        if self.eat_kw("SERDE") {
            let class = self.string()?;
            if class != LAZY_SIMPLE {
                return Err(format!("SemanticException: Cannot find class '{class}'"));
            }
            return Ok(Some(f));
        }
        self.kws("DELIMITED")?;
        let byte = |s: String| -> Result<char, String> {
            // LazySerDeParameters.getByte: a number is a byte's value, else the first char.
            match s.parse::<u8>() {
                Ok(b) => Ok(char::from(b)),
                Err(_) => s
                    .chars()
                    .next()
                    .ok_or_else(|| "an empty delimiter".to_string()),
            }
        };
        if self.eat_kw("FIELDS") {
            self.kws("TERMINATED BY")?;
            f.field = byte(self.string()?)?;
            if self.eat_kw("ESCAPED") {
                return Err("this stand-in does not escape (ESCAPED BY)".into());
            }
        }
        if self.eat_kw("COLLECTION") {
            self.kws("ITEMS TERMINATED BY")?;
            f.items = byte(self.string()?)?;
        }
        if self.eat_kw("MAP") {
            self.kws("KEYS TERMINATED BY")?;
            f.keys = byte(self.string()?)?;
        }
        if self.eat_kw("LINES") {
            self.kws("TERMINATED BY")?;
            if self.string()? != "\n" {
                return Err(
                    "SemanticException: LINES TERMINATED BY only supports newline '\\n' right now"
                        .into(),
                );
            }
        }
        if self.eat_kw("NULL") {
            self.kws("DEFINED AS")?;
            f.null = self.string()?;
        }
        Ok(Some(f))
    }

    /// `SELECT TRANSFORM (exprs) [format] USING 'cmd' AS (cols) [format] FROM t [WHERE e]`.
    fn transform(&mut self) -> Result<Transform, String> {
        self.kws("SELECT TRANSFORM")?;
        self.expect("(")?;
        let mut inputs = vec![self.expr()?];
        while self.sym(",") {
            inputs.push(self.expr()?);
        }
        self.expect(")")?;
        let in_format = self.row_format()?.unwrap_or_else(RowFormat::script);
        self.kws("USING")?;
        let command = self.string()?;
        self.kws("AS")?;
        let outputs = self.columns()?;
        let out_format = self.row_format()?.unwrap_or_else(RowFormat::script);
        self.kws("FROM")?;
        let from = self.ident()?;
        let filter = self.filter()?;
        Ok(Transform {
            inputs,
            in_format,
            command,
            outputs,
            out_format,
            from,
            filter,
        })
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let mut e = self.and()?;
        while self.eat_kw("OR") {
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr, String> {
        let mut e = self.not()?;
        while self.eat_kw("AND") {
            e = Expr::And(Box::new(e), Box::new(self.not()?));
        }
        Ok(e)
    }
    fn not(&mut self) -> Result<Expr, String> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.not()?)));
        }
        let left = self.primary()?;
        if self.sym("=") {
            return Ok(Expr::Eq(Box::new(left), Box::new(self.primary()?)));
        }
        if self.eat_kw("RLIKE") || self.eat_kw("REGEXP") {
            return Ok(Expr::Rlike(Box::new(left), Box::new(self.primary()?)));
        }
        let negated = self.peek_kw("NOT")
            && matches!(self.t.get(self.at + 1), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN"));
        if negated {
            self.at += 1;
        }
        if self.eat_kw("IN") {
            self.expect("(")?;
            let mut list = vec![self.expr()?];
            while self.sym(",") {
                list.push(self.expr()?);
            }
            self.expect(")")?;
            let e = Expr::In(Box::new(left), list);
            return Ok(if negated { Expr::Not(Box::new(e)) } else { e });
        }
        Ok(left)
    }
    fn primary(&mut self) -> Result<Expr, String> {
        match self.t.get(self.at).cloned() {
            Some(Tok::Str(s)) => {
                self.at += 1;
                Ok(Expr::Str(s))
            }
            Some(Tok::Sym(s)) if s == "(" => {
                self.at += 1;
                let e = self.expr()?;
                self.expect(")")?;
                Ok(e)
            }
            Some(Tok::Word(w)) if w.chars().all(|c| c.is_ascii_digit()) => {
                self.at += 1;
                Ok(Expr::Int(w.parse().map_err(|e| format!("{e}"))?))
            }
            Some(Tok::Word(_)) => {
                let name = self.ident()?;
                if !self.sym("(") {
                    return Ok(Expr::Column(name));
                }
                let mut args = Vec::new();
                if !self.sym(")") {
                    args.push(self.expr()?);
                    while self.sym(",") {
                        args.push(self.expr()?);
                    }
                    self.expect(")")?;
                }
                Ok(Expr::Call(name, args))
            }
            other => Err(format!(
                "ParseException: cannot recognize input near {other:?}"
            )),
        }
    }
}

// ---- values ----

#[derive(Debug, Clone, PartialEq)]
enum V {
    Null,
    Str(String),
    Int(i64),
    Bool(bool),
    Bytes(Vec<u8>),
    Array(Vec<V>),
    /// A map, in its order: keys and values (NULL values kept as None).
    Map(Vec<(String, Option<String>)>),
}

type Row = HashMap<String, V>;

fn eval(e: &Expr, row: &Row) -> Result<V, String> {
    let text = |v: V| -> Option<String> {
        match v {
            V::Str(s) => Some(s),
            V::Int(i) => Some(i.to_string()),
            V::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    Ok(match e {
        Expr::Str(s) => V::Str(s.clone()),
        Expr::Int(i) => V::Int(*i),
        Expr::Column(c) => row.get(c).cloned().ok_or_else(|| {
            format!(
                "SemanticException [Error 10004]: Invalid table alias or column reference '{c}'"
            )
        })?,
        Expr::Not(x) => match eval(x, row)? {
            V::Bool(b) => V::Bool(!b),
            _ => V::Null,
        },
        Expr::And(a, b) => {
            V::Bool(eval(a, row)? == V::Bool(true) && eval(b, row)? == V::Bool(true))
        }
        Expr::Or(a, b) => V::Bool(eval(a, row)? == V::Bool(true) || eval(b, row)? == V::Bool(true)),
        Expr::Eq(a, b) => match (text(eval(a, row)?), text(eval(b, row)?)) {
            (Some(x), Some(y)) => V::Bool(x == y),
            _ => V::Null,
        },
        Expr::Rlike(a, b) => match (text(eval(a, row)?), text(eval(b, row)?)) {
            (Some(s), Some(p)) => V::Bool(
                regex::Regex::new(&p)
                    .map_err(|e| e.to_string())?
                    .is_match(&s),
            ),
            _ => V::Null,
        },
        Expr::In(a, list) => {
            let Some(x) = text(eval(a, row)?) else {
                return Ok(V::Null);
            };
            let mut found = false;
            for l in list {
                found |= text(eval(l, row)?).as_deref() == Some(x.as_str());
            }
            V::Bool(found)
        }
        Expr::Call(f, args) => {
            let args: Vec<V> = args
                .iter()
                .map(|a| eval(a, row))
                .collect::<Result<_, _>>()?;
            call(f, args)?
        }
    })
}

/// Hive's built-in functions that ddbx's statements use.
fn call(f: &str, args: Vec<V>) -> Result<V, String> {
    let arity = |n: usize| {
        if args.len() == n {
            Ok(())
        } else {
            Err(format!(
                "SemanticException [Error 10015]: Line 1: {f} takes {n} arguments"
            ))
        }
    };
    Ok(match f {
        "map_keys" => {
            arity(1)?;
            match &args[0] {
                V::Map(m) => V::Array(m.iter().map(|(k, _)| V::Str(k.clone())).collect()),
                V::Null => V::Null,
                other => return Err(format!("map_keys: argument is not a map: {other:?}")),
            }
        }
        "concat_ws" => {
            let V::Str(sep) = args.first().cloned().unwrap_or(V::Null) else {
                return Ok(V::Null);
            };
            let mut parts = Vec::new();
            for a in &args[1..] {
                match a {
                    V::Str(s) => parts.push(s.clone()),
                    V::Array(xs) => parts.extend(xs.iter().filter_map(|x| match x {
                        V::Str(s) => Some(s.clone()),
                        _ => None,
                    })),
                    _ => {}
                }
            }
            V::Str(parts.join(&sep))
        }
        "encode" => {
            arity(2)?;
            match (&args[0], &args[1]) {
                (V::Str(s), V::Str(cs)) if cs.eq_ignore_ascii_case("UTF-8") => {
                    V::Bytes(s.as_bytes().to_vec())
                }
                (V::Null, _) => V::Null,
                other => return Err(format!("encode: {other:?}")),
            }
        }
        "base64" => {
            use base64::Engine as _;
            arity(1)?;
            match &args[0] {
                V::Bytes(b) => V::Str(base64::engine::general_purpose::STANDARD.encode(b)),
                V::Null => V::Null,
                other => return Err(format!("base64 only takes binary: {other:?}")),
            }
        }
        "regexp_extract" => {
            arity(3)?;
            match (&args[0], &args[1], &args[2]) {
                (V::Str(s), V::Str(p), V::Int(g)) => {
                    let re = regex::Regex::new(p).map_err(|e| e.to_string())?;
                    V::Str(
                        re.captures(s)
                            .and_then(|c| c.get(*g as usize))
                            .map_or(String::new(), |m| m.as_str().to_string()),
                    )
                }
                _ => V::Null,
            }
        }
        other => {
            return Err(format!(
                "SemanticException [Error 10011]: Invalid function {other}"
            ))
        }
    })
}

/// A value as a text table (LazySimpleSerDe) writes it.
fn serialize(v: &V, f: &RowFormat) -> String {
    match v {
        V::Null => f.null.clone(),
        V::Str(s) => s.clone(),
        V::Int(i) => i.to_string(),
        V::Bool(b) => b.to_string(),
        V::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
        V::Array(xs) => xs
            .iter()
            .map(|x| serialize(x, f))
            .collect::<Vec<_>>()
            .join(&f.items.to_string()),
        V::Map(m) => m
            .iter()
            .map(|(k, v)| format!("{k}{}{}", f.keys, v.as_deref().unwrap_or(&f.null)))
            .collect::<Vec<_>>()
            .join(&f.items.to_string()),
    }
}

/// A text field read back (LazySimpleSerDe): NULL for the null text; a map's entries split,
/// a NULL key dropped and a repeated key's first value kept (`LazyMap`).
fn deserialize(text: &str, ty: &Type, f: &RowFormat) -> V {
    if text == f.null {
        return V::Null;
    }
    match ty {
        Type::String => V::Str(text.to_string()),
        Type::Map => {
            let mut m: Vec<(String, Option<String>)> = Vec::new();
            if text.is_empty() {
                return V::Map(m);
            }
            for entry in text.split(f.items) {
                let (k, v) = entry.split_once(f.keys).unwrap_or((entry, &f.null));
                if k == f.null || m.iter().any(|(x, _)| x == k) {
                    continue;
                }
                m.push((k.to_string(), (v != f.null).then(|| v.to_string())));
            }
            V::Map(m)
        }
    }
}

/// A row of text (LazyStruct): fields split, missing ones NULL, extra ones dropped.
fn text_row(line: &str, columns: &[(String, Type)], f: &RowFormat) -> Row {
    let mut fields = line.split(f.field);
    columns
        .iter()
        .map(|(name, ty)| {
            (
                name.clone(),
                fields.next().map_or(V::Null, |t| deserialize(t, ty, f)),
            )
        })
        .collect()
}

fn gunzip(url: &str, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body)
        .read_to_end(&mut out)
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(out)
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(b).unwrap();
    e.finish().unwrap()
}

/// `java.net.URLEncoder.encode(s, "UTF-8")`, as `HiveConf.setQueryString` stores a query.
fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

// ---- carrying statements out ----

impl Session<'_> {
    fn create(&mut self, name: String, table: Table) -> Result<(), String> {
        let table = match table {
            Table::Dynamo {
                column, properties, ..
            } => {
                for k in properties.keys() {
                    check_connector_key(k)?;
                }
                let target = properties
                    .get("dynamodb.table.name")
                    .cloned()
                    .ok_or("MetaException: dynamodb.table.name is required")?;
                // DynamoDBStorageHandler.checkTableSchemaType: the item column may not be
                // named as any attribute the table defines.
                if self
                    .io
                    .attribute_names(&target)?
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(&column))
                {
                    return Err(format!("MetaException: Column name {column} cannot be the same as an attribute of {target}"));
                }
                Table::Dynamo {
                    table: target,
                    column,
                    properties,
                }
            }
            t => t,
        };
        self.tables.insert(name, table);
        Ok(())
    }

    fn table(&self, name: &str) -> Result<&Table, String> {
        self.tables
            .get(name)
            .ok_or_else(|| format!("SemanticException [Error 10001]: Table not found {name}"))
    }

    fn gzip_output(&self) -> Result<bool, String> {
        if self
            .settings
            .get("hive.exec.compress.output")
            .map(String::as_str)
            != Some("true")
        {
            return Ok(false);
        }
        match self
            .settings
            .get("mapreduce.output.fileoutputformat.compress.codec")
        {
            Some(c) if c == "org.apache.hadoop.io.compress.GzipCodec" => Ok(true),
            other => Err(format!(
                "this stand-in compresses with GzipCodec only, not {other:?}"
            )),
        }
    }

    /// The rows a source yields, by map task (one task a scan segment, or a file).
    fn source_rows(&self, cmd: &str, from: &Source) -> Result<Vec<Vec<Row>>, String> {
        match from {
            Source::Table(name) => match self.table(name)?.clone() {
                Table::Dynamo {
                    table,
                    column,
                    properties,
                } => {
                    if !properties.contains_key("dynamodb.throughput.read") {
                        return Err(
                            "this stand-in expects the read rate in the table's properties".into(),
                        );
                    }
                    let segments: i32 = self
                        .settings
                        .get("dynamodb.scan.segments")
                        .and_then(|s| s.parse().ok())
                        .unwrap_or(1);
                    (0..segments)
                        .map(|seg| {
                            let items = self.io.scan(&table, seg, segments)?;
                            Ok(items
                                .iter()
                                .map(|i| {
                                    Row::from([(column.clone(), V::Map(connector::item_map(i)))])
                                })
                                .collect())
                        })
                        .collect()
                }
                Table::Text {
                    location,
                    columns,
                    format,
                } => self.text_rows(&location, &columns, &format),
            },
            Source::Transform(t) => self.transform(cmd, t).map(|rows| vec![rows]),
        }
    }

    /// A text table's rows, by file: hidden files skipped, a sub-folder refused (Hive's
    /// FileInputFormat), `.gz` decompressed, lines ended by `\n`, `\r` or `\r\n`.
    fn text_rows(
        &self,
        location: &str,
        columns: &[(String, Type)],
        f: &RowFormat,
    ) -> Result<Vec<Vec<Row>>, String> {
        let folder = format!("{}/", location.trim_end_matches('/'));
        let mut out = Vec::new();
        for url in self.io.list(&folder) {
            let rel = &url[folder.len()..];
            if rel
                .split('/')
                .any(|p| p.starts_with('_') || p.starts_with('.'))
            {
                continue;
            }
            if let Some((dir, _)) = rel.split_once('/') {
                return Err(format!("java.io.IOException: Not a file: {folder}{dir}"));
            }
            let body = self.io.get(&url).ok_or_else(|| format!("{url}: gone"))?;
            let body = if url.ends_with(".gz") {
                gunzip(&url, &body)?
            } else {
                body
            };
            let text = String::from_utf8(body).map_err(|e| format!("{url}: {e}"))?;
            let mut rows = Vec::new();
            for line in text
                .split('\n')
                .flat_map(|l| l.split('\r'))
                .filter(|l| !l.is_empty())
            {
                let mut row = text_row(line, columns, f);
                row.insert("input__file__name".into(), V::Str(url.clone()));
                rows.push(row);
            }
            out.push(rows);
        }
        Ok(out)
    }

    fn insert(&mut self, cmd: &str, from: Source, inserts: Vec<Insert>) -> Result<(), String> {
        let tasks = self.source_rows(cmd, &from)?;
        let gzip_out = self.gzip_output()?;
        for insert in &inserts {
            let mut chosen: Vec<Vec<V>> = Vec::new();
            for rows in &tasks {
                let mut task = Vec::new();
                for row in rows {
                    let keep = match &insert.filter {
                        Some(f) => eval(f, row)? == V::Bool(true),
                        None => true,
                    };
                    if keep {
                        task.push(eval(&insert.select, row)?);
                    }
                }
                chosen.push(task);
            }
            match &insert.target {
                Target::Table(name) => {
                    match self.table(name)?.clone() {
                        Table::Dynamo {
                            table, properties, ..
                        } => {
                            if !properties.contains_key("dynamodb.throughput.write") {
                                return Err("this stand-in expects the write rate in the table's properties".into());
                            }
                            let mut items = Vec::new();
                            for v in chosen.into_iter().flatten() {
                                // DynamoDBSerDe: the item column to AttributeValues (a typeless
                                // value fails the task, an empty map is refused).
                                let V::Map(m) = v else {
                                    return Err("Hive data cannot be null.".into());
                                };
                                items.push(connector::from_entries(&m)?);
                            }
                            self.io.write(&table, items)?;
                        }
                        Table::Text {
                            location, format, ..
                        } => self.write_text(&location, &chosen, &format, gzip_out),
                    }
                }
                Target::Directory(dir) => {
                    self.write_text(dir, &chosen, &RowFormat::text(), gzip_out)
                }
            }
        }
        Ok(())
    }

    /// INSERT OVERWRITE into S3 text: what was there removed, a file per map task (empty
    /// when the task chose nothing).
    fn write_text(&self, location: &str, tasks: &[Vec<V>], f: &RowFormat, gzip_out: bool) {
        self.io.delete_under(location);
        for (n, rows) in tasks
            .iter()
            .enumerate()
            .chain(tasks.is_empty().then_some((0, &Vec::new())))
        {
            let mut text = String::new();
            for v in rows {
                text.push_str(&serialize(v, f));
                text.push('\n');
            }
            let name = format!("{n:06}_0{}", if gzip_out { ".gz" } else { "" });
            let body = if gzip_out {
                gzip(text.as_bytes())
            } else {
                text.into_bytes()
            };
            self.io
                .put(&format!("{}/{name}", location.trim_end_matches('/')), &body);
        }
    }

    /// `ScriptOperator`: the script run over the source's rows, its output read back into
    /// the declared columns.
    fn transform(&self, cmd: &str, t: &Transform) -> Result<Vec<Row>, String> {
        let args: Vec<&str> = t.command.split_whitespace().collect();
        if args.first() != Some(&"python3") {
            return Err(format!(
                "this stand-in runs python3 scripts only: {:?}",
                t.command
            ));
        }
        let script = args.get(1).and_then(|s| self.files.get(*s)).ok_or_else(|| {
            format!("[Error 20003]: An error occurred when trying to close the Operator running your custom script. (python3: can't open file {:?}: [Errno 2] No such file or directory; ADD FILE it)", args.get(1))
        })?;
        let Table::Text {
            location,
            columns,
            format,
        } = self.table(&t.from)?.clone()
        else {
            return Err(format!(
                "this stand-in transforms text tables only ({})",
                t.from
            ));
        };
        let mut input = String::new();
        for row in self
            .text_rows(&location, &columns, &format)?
            .into_iter()
            .flatten()
        {
            if let Some(f) = &t.filter {
                if eval(f, &row)? != V::Bool(true) {
                    continue;
                }
            }
            let fields: Vec<String> = t
                .inputs
                .iter()
                .map(|e| eval(e, &row).map(|v| serialize(&v, &t.in_format)))
                .collect::<Result<_, _>>()?;
            input.push_str(&fields.join(&t.in_format.field.to_string()));
            input.push('\n');
        }
        let env = self.script_env(cmd)?;
        let out = self.run_python(script, &args[2..], env, input)?;
        let text = String::from_utf8(out).map_err(|e| format!("the script's output: {e}"))?;
        Ok(text
            .split('\n')
            .flat_map(|l| l.split('\r'))
            .filter(|l| !l.is_empty())
            .map(|l| text_row(l, &t.outputs, &t.out_format))
            .collect())
    }

    /// The script's environment as `ScriptOperator.addJobConfToEnvironment` makes it: every
    /// setting of the job (the query's text among them, URL-encoded), names made safe,
    /// values truncated to 20 KB when `hive.script.operator.truncate.env` is on; refused as
    /// Linux refuses it (E2BIG) past its limits.
    fn script_env(&self, cmd: &str) -> Result<Vec<(String, String)>, String> {
        let mut conf = self.settings.clone();
        conf.insert("hive.query.string".into(), url_encode(cmd));
        let blacklist = conf
            .get("hive.script.operator.env.blacklist")
            .cloned()
            .unwrap_or_else(|| ENV_BLACKLIST.into());
        let truncate = conf
            .get("hive.script.operator.truncate.env")
            .map(String::as_str)
            == Some("true");
        let mut env = Vec::new();
        let mut total = 0;
        for (k, v) in &conf {
            if blacklist.split(',').any(|b| b == k) {
                continue;
            }
            let name: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let value: String = if truncate && v.chars().count() > 20 * 1024 {
                v.chars().take(20 * 1024).collect()
            } else {
                v.clone()
            };
            let size = name.len() + value.len() + 2;
            total += size + 8;
            if size > MAX_ARG_STRLEN || total > ARG_MAX {
                return Err(format!("[Error 20000]: Unable to initialize custom script. (java.io.IOException: Cannot run program \"python3\": error=7, Argument list too long; {name} is {size} bytes)"));
            }
            env.push((name, value));
        }
        Ok(env)
    }

    /// This machine's Python, as the release's runs in a YARN container: no locale; before
    /// 3.7 its stdio is then ASCII (strict before 3.5, surrogateescape after) unless
    /// PYTHONIOENCODING says otherwise.
    fn run_python(
        &self,
        script: &PathBuf,
        args: &[&str],
        env: Vec<(String, String)>,
        input: String,
    ) -> Result<Vec<u8>, String> {
        let mut c = std::process::Command::new("python3");
        c.arg(script).args(args).env_clear();
        if let Ok(path) = std::env::var("PATH") {
            c.env("PATH", path);
        }
        let set_encoding = env.iter().any(|(k, _)| k == "PYTHONIOENCODING");
        c.envs(env);
        if self.python < (3, 7) {
            c.env("LC_ALL", "C")
                .env("PYTHONCOERCECLOCALE", "0")
                .env("PYTHONUTF8", "0");
            if !set_encoding {
                let handler = if self.python < (3, 5) {
                    "strict"
                } else {
                    "surrogateescape"
                };
                c.env("PYTHONIOENCODING", format!("ascii:{handler}"));
            }
        }
        let mut child = c
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        // Fed from a thread of its own, as Hive's operator does: the script writes while it
        // reads, and a pipe holds only so much.
        let mut stdin = child.stdin.take().unwrap();
        let feeder = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        let fed = feeder.join().unwrap();
        if !out.status.success() {
            return Err(format!(
                "[Error 20003]: An error occurred when trying to close the Operator running your custom script. ({}: {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or("")
            ));
        }
        fed.map_err(|e| format!("feeding the script: {e}"))?;
        Ok(out.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_splits_commands_as_hive_does() {
        let cmds = commands("-- a comment; not a command\nSET a=1;\nADD FILE s3://b/x.py;\nCREATE X ('a;b', \"c;'d\", 'e\\';f');");
        assert_eq!(
            cmds,
            [
                "SET a=1",
                "ADD FILE s3://b/x.py",
                "CREATE X ('a;b', \"c;'d\", 'e\\';f')"
            ]
        );
    }

    #[test]
    fn add_file_refuses_a_quoted_path_as_java_net_uri_does() {
        let e = java_uri_path("'s3://b/state/_emr/ddbx_import.py'").unwrap_err();
        assert!(
            e.contains("Illegal character in scheme name at index 0"),
            "{e}"
        );
        assert!(java_uri_path("s3://b/a b").is_err());
        assert!(java_uri_path("s3://b/a%zz").is_err());
        assert_eq!(java_uri_path("s3://b/x.py").unwrap(), "s3://b/x.py");
    }

    #[test]
    fn strings_are_unescaped_as_hive_does() {
        assert_eq!(unescape("\\001"), "\u{1}");
        assert_eq!(unescape("[\\n\\r\\002\\003]"), "[\n\r\u{2}\u{3}]");
        assert_eq!(unescape("it\\'s"), "it's");
        assert_eq!(unescape("[^/]+$"), "[^/]+$");
    }

    #[test]
    fn the_environment_is_refused_past_linuxs_limit_unless_truncated() {
        struct NoIo;
        impl Io for NoIo {
            fn get(&self, _: &str) -> Option<Vec<u8>> {
                None
            }
            fn put(&self, _: &str, _: &[u8]) {}
            fn list(&self, _: &str) -> Vec<String> {
                Vec::new()
            }
            fn delete_under(&self, _: &str) {}
            fn attribute_names(&self, _: &str) -> Result<Vec<String>, String> {
                Ok(Vec::new())
            }
            fn scan(&self, _: &str, _: i32, _: i32) -> Result<Vec<Item>, String> {
                Ok(Vec::new())
            }
            fn write(&self, _: &str, _: Vec<Item>) -> Result<(), String> {
                Ok(())
            }
            fn scratch(&self) -> PathBuf {
                PathBuf::new()
            }
        }
        let mut s = Session::new(&NoIo, (3, 9));
        let long = format!("FROM x IN ({})", vec!["'000000_0.gz'"; 8_000].join(", "));
        let e = s.script_env(&long).unwrap_err();
        assert!(e.contains("Argument list too long"), "{e}");
        s.set("hive.script.operator.truncate.env=true").unwrap();
        assert!(s.script_env(&long).is_ok());
        let e = s
            .set("hive.script.operator.truncate.envs=true")
            .unwrap_err();
        assert!(e.contains("does not exists"), "{e}");
        assert!(s.set("hive.exec.compress.output=yes").is_err());
        assert!(s.set("dynamodb.throughput.reads=1").is_err());
        assert!(s.set("mapreduce.map.speculative=false").is_ok());
    }
}
