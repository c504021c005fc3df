//! Helpers shared by the JSON line codecs: attribute paths for error messages, writing
//! values straight into a byte buffer, and reading type objects with type keys in any
//! letter case.

use std::collections::HashMap;
use std::fmt::Write as _;

use aws_smithy_types::Blob;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{AttributeValue, Item, ItemError};

/// Where an attribute sits in its item, built on the stack while walking it and only
/// rendered (`a.b[2]`) when there is an error to report.
#[derive(Clone, Copy)]
pub(crate) enum Path<'a> {
    /// The item itself.
    Root,
    /// A named attribute of the item or of a map.
    Name(&'a Path<'a>, &'a str),
    /// An element of a list or set.
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    /// The path as text: `a`, `a.b`, `a.b[2]`.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Path::Root => {}
            Path::Name(parent, name) => {
                parent.render_into(out);
                if !matches!(parent, Path::Root) {
                    out.push('.');
                }
                out.push_str(name);
            }
            Path::Index(parent, i) => {
                parent.render_into(out);
                let _ = write!(out, "[{i}]");
            }
        }
    }

    /// A [`ItemError::BadValue`] at this path.
    pub(crate) fn bad(&self, message: impl Into<String>) -> ItemError {
        ItemError::BadValue {
            attribute: self.render(),
            message: message.into(),
        }
    }
}

/// The ten DynamoDB types, as named by one JSON dialect.
pub(crate) struct TypeKeys {
    s: &'static str,
    n: &'static str,
    b: &'static str,
    ss: &'static str,
    ns: &'static str,
    bs: &'static str,
    m: &'static str,
    l: &'static str,
    null: &'static str,
    bool: &'static str,
}

/// The DynamoDB API's (and AWS exports') type keys: `S`, `SS`, `NULL`, ...
pub(crate) const UPPER_KEYS: TypeKeys = TypeKeys {
    s: "S",
    n: "N",
    b: "B",
    ss: "SS",
    ns: "NS",
    bs: "BS",
    m: "M",
    l: "L",
    null: "NULL",
    bool: "BOOL",
};

/// The AWS SDK for Java v1's bean names, as the emr-dynamodb-connector writes them.
pub(crate) const CONNECTOR_KEYS: TypeKeys = TypeKeys {
    s: "s",
    n: "n",
    b: "b",
    ss: "sS",
    ns: "nS",
    bs: "bS",
    m: "m",
    l: "l",
    null: "nULL",
    bool: "bOOL",
};

/// Appends `s` as a JSON string, escaped by serde_json, with U+0085, U+2028 and U+2029
/// escaped too (see [`has_line_separator`]).
pub(crate) fn write_str(s: &str, out: &mut Vec<u8>) {
    if has_line_separator(s) {
        let mut ser = serde_json::Serializer::with_formatter(&mut *out, LineSafe);
        serde::Serialize::serialize(s, &mut ser)
    } else {
        serde_json::to_writer(&mut *out, s)
    }
    .expect("writing a string into a Vec cannot fail");
}

/// Whether `s` holds U+0085 (NEL), U+2028 or U+2029: valid raw in JSON, but common line
/// readers (Python's `str.splitlines()`, some JavaScript readline versions) end a line
/// there, so every line ddbx writes has them as `\u` escapes instead.
pub(crate) fn has_line_separator(s: &str) -> bool {
    let b = s.as_bytes();
    memchr::memchr2_iter(0xC2, 0xE2, b).any(|i| match b[i] {
        0xC2 => b.get(i + 1) == Some(&0x85),
        _ => b.get(i + 1) == Some(&0x80) && matches!(b.get(i + 2), Some(0xA8 | 0xA9)),
    })
}

/// The escape of a character that line readers split on, if it is one.
pub(crate) fn line_separator_escape(c: char) -> Option<&'static str> {
    match c {
        '\u{85}' => Some("\\u0085"),
        '\u{2028}' => Some("\\u2028"),
        '\u{2029}' => Some("\\u2029"),
        _ => None,
    }
}

/// serde_json's compact output, with the line separators escaped.
struct LineSafe;

impl serde_json::ser::Formatter for LineSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if let Some(escape) = line_separator_escape(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                writer.write_all(escape.as_bytes())?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

/// Appends `b` as a JSON string of standard, padded base64.
fn write_base64(b: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let start = out.len();
    out.resize(
        start + base64::encoded_len(b.len(), true).expect("blob too large"),
        0,
    );
    let n = STANDARD
        .encode_slice(b, &mut out[start..])
        .expect("buffer sized by encoded_len");
    out.truncate(start + n);
    out.push(b'"');
}

/// Appends `{"<key>":` for type key `key`.
fn open(key: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

/// Appends a JSON array of strings.
fn write_strs<'a>(items: impl Iterator<Item = &'a str>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, s) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(s, out);
    }
    out.push(b']');
}

/// Appends a type object such as `{"S":"x"}`, type keys from `keys`.
///
/// The SDK's `Unknown` variant (a type this SDK does not know) is written as
/// `{"UNKNOWN":true}`, which every reader refuses, rather than guessed at.
pub(crate) fn write_value(v: &AttributeValue, keys: &TypeKeys, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => {
            open(keys.s, out);
            write_str(s, out);
        }
        AttributeValue::N(n) => {
            open(keys.n, out);
            write_str(n, out);
        }
        AttributeValue::B(b) => {
            open(keys.b, out);
            write_base64(b.as_ref(), out);
        }
        AttributeValue::Ss(ss) => {
            open(keys.ss, out);
            write_strs(ss.iter().map(String::as_str), out);
        }
        AttributeValue::Ns(ns) => {
            open(keys.ns, out);
            write_strs(ns.iter().map(String::as_str), out);
        }
        AttributeValue::Bs(bs) => {
            open(keys.bs, out);
            out.push(b'[');
            for (i, b) in bs.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_base64(b.as_ref(), out);
            }
            out.push(b']');
        }
        AttributeValue::M(m) => {
            open(keys.m, out);
            write_map(m, keys, out);
        }
        AttributeValue::L(l) => {
            open(keys.l, out);
            out.push(b'[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(e, keys, out);
            }
            out.push(b']');
        }
        AttributeValue::Null(b) => {
            open(keys.null, out);
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        AttributeValue::Bool(b) => {
            open(keys.bool, out);
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        _ => {
            open("UNKNOWN", out);
            out.extend_from_slice(b"true");
        }
    }
    out.push(b'}');
}

/// Appends an attribute map as a JSON object, names sorted so output is deterministic.
pub(crate) fn write_map(m: &HashMap<String, AttributeValue>, keys: &TypeKeys, out: &mut Vec<u8>) {
    let mut names: Vec<(&String, &AttributeValue)> = m.iter().collect();
    names.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push(b'{');
    for (i, (name, v)) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(name, out);
        out.push(b':');
        write_value(v, keys, out);
    }
    out.push(b'}');
}

/// Parses one line of JSON (surrounding whitespace, such as the line end, allowed),
/// refusing an object that names a key twice: serde_json would keep the last one, and an
/// item whose attribute is given twice must not lose one silently (the Ion reader refuses
/// the same). A byte order mark is named as such.
pub(crate) fn parse(line: &[u8]) -> Result<Value, ItemError> {
    if line.starts_with(b"\xEF\xBB\xBF") {
        return Err(ItemError::Json(
            "the line starts with a byte order mark (U+FEFF), which JSON does not allow".into(),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(line);
    let v = StrictValue
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            let text = e.to_string();
            // serde_json's words for a `\u` escape of half a character.
            ItemError::Json(
                if text.contains("hex escape") || text.contains("surrogate") {
                    format!(
                        "a \\u escape that is not a whole character (a lone surrogate?): {text}"
                    )
                } else {
                    text
                },
            )
        })?;
    Ok(v)
}

/// A JSON value, read as serde_json reads one, but an object with a key given twice is an
/// error.
struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            items.push(v);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(StrictValue)?;
            if object.contains_key(&key) {
                return Err(de::Error::custom(format!(
                    "the key {} is given twice",
                    crate::text::quote(&key)
                )));
            }
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// A DynamoDB type, whatever the letter case of its key.
#[derive(Clone, Copy)]
enum Type {
    S,
    N,
    B,
    Ss,
    Ns,
    Bs,
    M,
    L,
    Null,
    Bool,
}

/// The type a key names, in any letter case.
fn type_of(key: &str) -> Option<Type> {
    const TYPES: [(&str, Type); 11] = [
        ("S", Type::S),
        ("N", Type::N),
        ("B", Type::B),
        ("SS", Type::Ss),
        ("NS", Type::Ns),
        ("BS", Type::Bs),
        ("M", Type::M),
        ("L", Type::L),
        ("NULL", Type::Null),
        ("BOOL", Type::Bool),
        // The connector 4.x (AWS SDK for Java v1 reflection) writes NULL as `nULLValue`.
        ("NULLVALUE", Type::Null),
    ];
    TYPES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|&(_, t)| t)
}

/// Base64 as written by AWS and the connector (standard alphabet); padding optional.
const BASE64_READ: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a base64 JSON string.
fn blob(v: &Value, path: &Path) -> Result<Blob, ItemError> {
    let s = v.as_str().ok_or_else(|| {
        path.bad(format!(
            "binary must be a base64 JSON string, found {}",
            kind(v)
        ))
    })?;
    BASE64_READ
        .decode(s)
        .map(Blob::new)
        .map_err(|e| path.bad(format!("invalid base64: {e}")))
}

/// A string member or value.
fn string(v: &Value, what: &str, path: &Path) -> Result<String, ItemError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        _ => Err(path.bad(format!("{what} must be a JSON string, found {}", kind(v)))),
    }
}

/// The members of a set, each converted by `f`.
fn set<T>(
    v: &Value,
    path: &Path,
    f: impl Fn(&Value, &Path) -> Result<T, ItemError>,
) -> Result<Vec<T>, ItemError> {
    let a = v
        .as_array()
        .ok_or_else(|| path.bad(format!("a set must be a JSON array, found {}", kind(v))))?;
    a.iter()
        .enumerate()
        .map(|(i, e)| f(e, &Path::Index(path, i)))
        .collect()
}

/// What kind of JSON value `v` is, for messages.
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a JSON number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Converts a type object such as `{"s":"x"}` (type key in any letter case).
pub(crate) fn read_value(v: &Value, path: &Path) -> Result<AttributeValue, ItemError> {
    let obj = v.as_object().ok_or_else(|| {
        path.bad(format!(
            "expected a type object such as {{\"S\":\"x\"}}, found {}",
            kind(v)
        ))
    })?;
    let mut entries = obj.iter();
    let (key, inner) = match (entries.next(), entries.next()) {
        (Some(only), None) => only,
        _ => {
            return Err(path.bad(format!(
                "a type object must have exactly one type key, found {}",
                obj.len()
            )))
        }
    };
    let ty = type_of(key).ok_or_else(|| ItemError::UnknownType {
        attribute: path.render(),
        key: key.clone(),
    })?;
    Ok(match ty {
        Type::S => AttributeValue::S(string(inner, "S", path)?),
        Type::N => AttributeValue::N(string(inner, "N", path)?),
        Type::B => AttributeValue::B(blob(inner, path)?),
        Type::Ss => AttributeValue::Ss(set(inner, path, |e, p| string(e, "an SS member", p))?),
        Type::Ns => AttributeValue::Ns(set(inner, path, |e, p| string(e, "an NS member", p))?),
        Type::Bs => AttributeValue::Bs(set(inner, path, blob)?),
        Type::M => match inner {
            Value::Object(m) => AttributeValue::M(read_map(m, path)?),
            _ => return Err(path.bad(format!("M must be a JSON object, found {}", kind(inner)))),
        },
        Type::L => match inner {
            Value::Array(a) => AttributeValue::L(
                a.iter()
                    .enumerate()
                    .map(|(i, e)| read_value(e, &Path::Index(path, i)))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(path.bad(format!("L must be a JSON array, found {}", kind(inner)))),
        },
        Type::Null => match inner {
            Value::Bool(true) => AttributeValue::Null(true),
            _ => return Err(path.bad("NULL must be true")),
        },
        Type::Bool => match inner {
            Value::Bool(b) => AttributeValue::Bool(*b),
            _ => return Err(path.bad(format!("BOOL must be true or false, found {}", kind(inner)))),
        },
    })
}

/// Converts a JSON object of attributes (an item, or the inside of an `M`).
pub(crate) fn read_map(m: &Map<String, Value>, path: &Path) -> Result<Item, ItemError> {
    let mut item = HashMap::with_capacity(m.len());
    for (name, v) in m {
        item.insert(name.clone(), read_value(v, &Path::Name(path, name))?);
    }
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render() {
        let root = Path::Root;
        let a = Path::Name(&root, "a");
        let b = Path::Name(&a, "b");
        let i = Path::Index(&b, 2);
        let c = Path::Name(&i, "c");
        assert_eq!(root.render(), "");
        assert_eq!(a.render(), "a");
        assert_eq!(i.render(), "a.b[2]");
        assert_eq!(c.render(), "a.b[2].c");
    }

    #[test]
    fn unknown_type_key_is_refused_on_read() {
        let v = parse(b"{\"UNKNOWN\":true}").unwrap();
        assert!(matches!(
            read_value(&v, &Path::Root),
            Err(ItemError::UnknownType { .. })
        ));
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        for line in [
            &br#"{"Item":{"id":{"S":"x"},"a":{"S":"x"},"a":{"S":"y"}}}"#[..],
            br#"{"Item":{"m":{"M":{"b":{"N":"1"},"b":{"N":"2"}}}}}"#,
            br#"{"Item":{"id":{"S":"x"}},"Item":{"id":{"S":"y"}}}"#,
        ] {
            let e = parse(line).unwrap_err().to_string();
            assert!(e.contains("is given twice"), "{e}");
        }
        assert!(parse(br#"{"a":[1,2.5,null,true,"x",{"b":{}}]}"#).is_ok());
        let bom = parse(b"\xEF\xBB\xBF{}").unwrap_err().to_string();
        assert!(bom.contains("byte order mark"), "{bom}");
    }

    #[test]
    fn base64_padding_optional_on_read() {
        let p = Path::Root;
        assert_eq!(blob(&Value::from("aGk="), &p).unwrap().as_ref(), b"hi");
        assert_eq!(blob(&Value::from("aGk"), &p).unwrap().as_ref(), b"hi");
        assert!(blob(&Value::from("a*k="), &p).is_err());
    }
}
