//! Scan answers as DynamoDB sends them, turned straight into native export lines.
//!
//! Why this is hand-written: profiling an export against the canned endpoint
//! (`docs/BENCHMARKS.md`) put 31 % of ddbx's CPU in the AWS SDK's deserialisation of Scan
//! answers and another 15 % in allocating and freeing the item maps it builds, against
//! 23 % for gzip. The native format is the wire format with names sorted, so a page can
//! go from the answer's bytes to export lines in one pass with `serde_json`, borrowing
//! every string that has no escapes and building no item.
//!
//! What comes out is, byte for byte, what [`dynamodb_json::encode_line`] writes for the
//! item the SDK would have built, and each size is [`item_size`] of that item; the
//! property tests in `aws::wire_scan` check both against the SDK's own parser. Anything
//! unusual (a type key this code does not know, a `null`, a name given twice, base64
//! that is not in canonical form, two type keys in one value) makes [`WirePage::parse`]
//! refuse the whole page, and the caller falls back to the SDK's parse.
//!
//! [`dynamodb_json::encode_line`]: super::dynamodb_json::encode_line
//! [`item_size`]: super::validate::item_size

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::json::{has_line_separator, read_map, write_str, Path};
use super::number::{canonical_number, number_size};
use super::{Item, MAX_ITEM_BYTES};

/// One Scan page, its items already encoded as native export lines.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WirePage {
    /// Every item's `{"Item":{...}}\n` line, one after another.
    pub lines: Vec<u8>,
    /// For each item: where its line ends in `lines`, and its size by DynamoDB's rules.
    pub items: Vec<(usize, u64)>,
    /// `Count`.
    pub count: Option<i32>,
    /// `ScannedCount`.
    pub scanned_count: Option<i32>,
    /// `LastEvaluatedKey`.
    pub last_evaluated_key: Option<Item>,
    /// `ConsumedCapacity.TableName`.
    pub consumed_table: Option<String>,
    /// `ConsumedCapacity.CapacityUnits`.
    pub consumed_units: Option<f64>,
}

impl WirePage {
    /// Reads a Scan answer's body, or says why it leaves the page to the SDK.
    pub fn parse(body: &[u8]) -> Result<WirePage, String> {
        let mut de = serde_json::Deserializer::from_str(utf8(body)?);
        let page = AnswerSeed.deserialize(&mut de).map_err(|e| e.to_string())?;
        de.end().map_err(|e| e.to_string())?;
        Ok(page)
    }

    /// Each item's line and size, in order.
    pub fn lines(&self) -> impl Iterator<Item = (&[u8], u64)> + '_ {
        let mut start = 0;
        self.items.iter().map(move |&(end, size)| {
            let line = &self.lines[start..end];
            start = end;
            (line, size)
        })
    }

    /// The sum of the items' sizes.
    pub fn item_bytes(&self) -> u64 {
        self.items.iter().map(|&(_, size)| size).sum()
    }
}

/// Reads one DynamoDB JSON line (`{"Item":{...}}`, its line end allowed) and appends the
/// item's attribute map to `out` in the API's wire JSON, names sorted: byte for byte what
/// [`json::write_map`](super::json::write_map) writes for the item
/// [`dynamodb_json::decode_line`](super::dynamodb_json::decode_line) reads, and checked as
/// that checks it ([`validate_item`](super::validate::validate_item)). Returns the item's
/// size. An import writes what this appends as it is, building no item.
///
/// Why: a profile of an import against the canned endpoint (`docs/BENCHMARKS.md`, issue
/// 16) put more than a third of its CPU in allocating and freeing the JSON tree and the
/// item maps `decode_line` builds, and in the SDK serialising them again.
///
/// `Err` (with nothing appended) for anything `decode_line` might read differently or
/// refuse: type keys in another letter case, a name given twice, base64 not in canonical
/// form or any invalid item. The caller then reads the line with `decode_line`, which
/// takes it or names what is wrong.
pub fn checked_item(line: &[u8], out: &mut Vec<u8>) -> Result<usize, String> {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(utf8(line)?);
    let read = LineSeed(out)
        .deserialize(&mut de)
        .and_then(|size| de.end().map(|()| size));
    match read {
        Ok(size) if size <= MAX_ITEM_BYTES => Ok(size),
        Ok(size) => {
            out.truncate(start);
            Err(format!("item of {size} bytes"))
        }
        Err(e) => {
            out.truncate(start);
            Err(e.to_string())
        }
    }
}

/// The text of a body or line, checked as UTF-8 whole: a `serde_json` reader of a `str`
/// then checks no string again. (The profile of an export against the canned endpoint
/// had `from_utf8` on each string at 3.6 % of the CPU, issue 16.)
fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("not UTF-8: {e}"))
}

/// `{"Item":{...}}`, only that key.
struct LineSeed<'o>(&'o mut Vec<u8>);

impl<'de> DeserializeSeed<'de> for LineSeed<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("{\"Item\":{...}}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        match map.next_key_seed(Text)? {
            Some(key) if key == "Item" => {}
            _ => return Err(de::Error::custom("not an Item line")),
        }
        let (size, _) = map.next_value_seed(MapSeed(self.0, true))?;
        if map.next_key_seed(Text)?.is_some() {
            return Err(de::Error::custom("more than the key Item"));
        }
        Ok(size)
    }
}

/// The parts of `ConsumedCapacity` an export uses.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Consumed {
    table_name: Option<String>,
    capacity_units: Option<f64>,
}

/// The whole answer: a JSON object whose `Items` are written as they are read.
struct AnswerSeed;

impl<'de> DeserializeSeed<'de> for AnswerSeed {
    type Value = WirePage;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<WirePage, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for AnswerSeed {
    type Value = WirePage;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Scan answer")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WirePage, A::Error> {
        let mut page = WirePage::default();
        let mut seen = [false; 5];
        while let Some(key) = map.next_key_seed(Text)? {
            let field = match &*key {
                "Items" => 0,
                "Count" => 1,
                "ScannedCount" => 2,
                "LastEvaluatedKey" => 3,
                "ConsumedCapacity" => 4,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if std::mem::replace(&mut seen[field], true) {
                return Err(de::Error::custom(format!("{key} given twice")));
            }
            match field {
                0 => map.next_value_seed(ItemsSeed(&mut page))?,
                1 => page.count = map.next_value()?,
                2 => page.scanned_count = map.next_value()?,
                3 => {
                    let key: Option<serde_json::Map<String, serde_json::Value>> =
                        map.next_value()?;
                    // Key attributes are S, N or B, spelt so by DynamoDB; anything else
                    // (which this reader would take in any letter case) is left to the SDK.
                    let plain = |v: &serde_json::Value| {
                        v.as_object().is_some_and(|o| {
                            o.len() == 1 && o.keys().all(|k| matches!(k.as_str(), "S" | "N" | "B"))
                        })
                    };
                    if key.as_ref().is_some_and(|k| !k.values().all(plain)) {
                        return Err(de::Error::custom("a key to continue from with other types"));
                    }
                    page.last_evaluated_key = key
                        .map(|k| read_map(&k, &Path::Root))
                        .transpose()
                        .map_err(de::Error::custom)?;
                }
                _ => {
                    if let Some(c) = map.next_value::<Option<Consumed>>()? {
                        page.consumed_table = c.table_name;
                        page.consumed_units = c.capacity_units;
                    }
                }
            }
        }
        Ok(page)
    }
}

/// `Items`: `null` or an array of items, each appended to the page as a line.
struct ItemsSeed<'p>(&'p mut WirePage);

impl<'de> DeserializeSeed<'de> for ItemsSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ItemsSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of items")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let page = self.0;
        loop {
            let start = page.lines.len();
            page.lines.extend_from_slice(b"{\"Item\":");
            match seq.next_element_seed(MapSeed(&mut page.lines, false))? {
                Some((size, _)) => {
                    page.lines.extend_from_slice(b"}\n");
                    page.items.push((page.lines.len(), size as u64));
                }
                None => {
                    page.lines.truncate(start);
                    return Ok(());
                }
            }
        }
    }
}

/// A string, borrowed from the answer when it has no escapes.
struct Text;

impl<'de> DeserializeSeed<'de> for Text {
    type Value = Cow<'de, str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Text {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

/// An attribute map (an item, or the inside of an `M`), written with its names sorted
/// as `json::write_map` sorts them. Its value: the sum of names' and values' sizes, and
/// the number of attributes.
struct MapSeed<'o>(&'o mut Vec<u8>, bool);

impl<'de> DeserializeSeed<'de> for MapSeed<'_> {
    type Value = (usize, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed<'_> {
    type Value = (usize, usize);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let MapSeed(out, check) = self;
        let base = out.len();
        // Written as they come; if the names were not in order, written again sorted
        // from the recorded value ranges and moved back over the first attempt.
        let mut entries: Vec<(Cow<'de, str>, usize, usize)> = Vec::new();
        let mut in_order = true;
        let mut size = 0;
        out.push(b'{');
        while let Some(name) = map.next_key_seed(Text)? {
            if let Some((last, ..)) = entries.last() {
                out.push(b',');
                in_order &= *last < name;
            }
            text(&name, out);
            out.push(b':');
            let start = out.len();
            size += name.len() + map.next_value_seed(ValueSeed(out, check))?;
            entries.push((name, start, out.len()));
        }
        out.push(b'}');
        if !in_order {
            entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            if entries.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(de::Error::custom("an attribute name given twice"));
            }
            let sorted = out.len();
            out.push(b'{');
            for (i, (name, start, end)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                text(name, out);
                out.push(b':');
                out.extend_from_within(*start..*end);
            }
            out.push(b'}');
            out.copy_within(sorted.., base);
            out.truncate(out.len() - (sorted - base));
        }
        Ok((size, entries.len()))
    }
}

/// One type object such as `{"S":"x"}`; its value is the value's size.
struct ValueSeed<'o>(&'o mut Vec<u8>, bool);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a type object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        let ValueSeed(out, check) = self;
        let key = map
            .next_key_seed(Text)?
            .ok_or_else(|| de::Error::custom("a type object with no type"))?;
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        let size = match &*key {
            "S" => scalar(Scalar::S, &map.next_value_seed(Text)?, out)?,
            "N" => {
                let n = map.next_value_seed(Text)?;
                if check {
                    canonical_number(&n).map_err(de::Error::custom)?;
                }
                scalar(Scalar::N, &n, out)?
            }
            "B" => scalar(Scalar::B, &map.next_value_seed(Text)?, out)?,
            "SS" => map.next_value_seed(ArraySeed(out, Some(Scalar::S), check))?,
            "NS" => map.next_value_seed(ArraySeed(out, Some(Scalar::N), check))?,
            "BS" => map.next_value_seed(ArraySeed(out, Some(Scalar::B), check))?,
            "M" => {
                let (size, len) = map.next_value_seed(MapSeed(out, check))?;
                3 + size + len
            }
            "L" => 3 + map.next_value_seed(ArraySeed(out, None, check))?,
            "NULL" | "BOOL" => {
                let b: bool = map.next_value()?;
                if check && !b && &*key == "NULL" {
                    return Err(de::Error::custom("NULL must be true"));
                }
                out.extend_from_slice(if b { b"true" } else { b"false" });
                1
            }
            other => return Err(de::Error::custom(format!("type key {other:?}"))),
        };
        if map.next_key_seed(Text)?.is_some() {
            return Err(de::Error::custom("a type object with two types"));
        }
        out.push(b'}');
        Ok(size)
    }
}

/// Appends base64 text that is in canonical form (standard alphabet, padded, no stray
/// bits), so that decoding and encoding it again, as the plain path does, gives it back.
/// Returns the decoded length. Text with JSON escapes (`\/`) is refused: reading a Scan
/// answer, the SDK decodes the text as written, escapes included, and fails; reading an
/// import's line, `decode_line` reads it instead.
#[allow(clippy::ptr_arg)] // Which variant it is matters: borrowed means no escapes.
fn base64<E: de::Error>(text: &Cow<str>, out: &mut Vec<u8>) -> Result<usize, E> {
    let Cow::Borrowed(text) = text else {
        return Err(E::custom("base64 with JSON escapes"));
    };
    thread_local!(static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) });
    let len = SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        STANDARD.decode_vec(text, scratch).map(|()| scratch.len())
    });
    let len = len.map_err(|e| E::custom(format!("base64: {e}")))?;
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
    Ok(len)
}

/// Appends a string as `json::write_str` would. A string borrowed from the answer had no
/// escapes in it, and JSON allows no raw quote, backslash or control character in a
/// string, so unless it holds a line separator (which `write_str` escapes) it is written
/// as it is, quoted (the profile showed re-escaping at 3 % of the CPU).
#[allow(clippy::ptr_arg)] // Which variant it is matters: borrowed means no escapes.
fn text(s: &Cow<str>, out: &mut Vec<u8>) {
    match s {
        Cow::Borrowed(s) if !has_line_separator(s) => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        _ => write_str(s, out),
    }
}

/// The types whose values are one string.
#[derive(Clone, Copy)]
enum Scalar {
    S,
    N,
    B,
}

/// Appends one S, N or B value (or set member); returns its size.
#[allow(clippy::ptr_arg)] // Which variant it is matters: borrowed means no escapes.
fn scalar<E: de::Error>(kind: Scalar, s: &Cow<str>, out: &mut Vec<u8>) -> Result<usize, E> {
    Ok(match kind {
        Scalar::S => {
            text(s, out);
            s.len()
        }
        Scalar::N => {
            text(s, out);
            number_size(s)
        }
        Scalar::B => base64(s, out)?,
    })
}

/// An array: a set's members (`Some` of their type), or an `L`'s type objects (`None`).
/// Its value is the members' total size, plus one per element of an `L`.
struct ArraySeed<'o>(&'o mut Vec<u8>, Option<Scalar>, bool);

impl<'de> DeserializeSeed<'de> for ArraySeed<'_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<usize, A::Error> {
        let ArraySeed(out, kind, check) = self;
        let mut size = 0;
        // Checking a set: its members (numbers in canonical form), to find one given twice.
        let mut members: Vec<Cow<'de, str>> = Vec::new();
        out.push(b'[');
        let mut first = true;
        loop {
            // The comma goes first; taken back if there is no next element.
            let mark = out.len();
            if !first {
                out.push(b',');
            }
            let element = match kind {
                Some(kind) => match seq.next_element_seed(Text)? {
                    Some(s) => {
                        let size = scalar(kind, &s, out)?;
                        if check {
                            members.push(match kind {
                                Scalar::N => {
                                    Cow::Owned(canonical_number(&s).map_err(de::Error::custom)?)
                                }
                                // Base64 taken only in canonical form: equal text, equal bytes.
                                Scalar::S | Scalar::B => s,
                            });
                        }
                        Some(size)
                    }
                    None => None,
                },
                None => seq.next_element_seed(ValueSeed(out, check))?.map(|s| s + 1),
            };
            match element {
                Some(s) => size += s,
                None => {
                    out.truncate(mark);
                    break;
                }
            }
            first = false;
        }
        out.push(b']');
        if check && kind.is_some() {
            if first {
                return Err(de::Error::custom("an empty set"));
            }
            members.sort_unstable();
            if members.windows(2).any(|w| w[0] == w[1]) {
                return Err(de::Error::custom("a set member given twice"));
            }
        }
        Ok(size)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::item::dynamodb_json::encode_line;
    use crate::item::test_support::item;
    use crate::item::validate::item_size;
    use crate::item::AttributeValue;
    use proptest::prelude::*;

    fn page(body: &str) -> Result<WirePage, String> {
        WirePage::parse(body.as_bytes())
    }

    #[test]
    fn a_page_with_everything() {
        let body = r#"{"Count":2,"Items":[{"z":{"N":"1"},"a":{"M":{"y":{"BOOL":true},"b":{"L":[{"S":"\u00e9\/"},{"NULL":true}]}}}},{"k":{"BS":["aGk=","AA=="]}}],"ScannedCount":3,"LastEvaluatedKey":{"k":{"S":"x"}},"ConsumedCapacity":{"TableName":"T","CapacityUnits":1.5},"Other":[1,{"a":null}]}"#;
        let p = page(body).unwrap();
        let lines: Vec<_> = p
            .lines()
            .map(|(l, _)| String::from_utf8(l.to_vec()).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "{\"Item\":{\"a\":{\"M\":{\"b\":{\"L\":[{\"S\":\"é/\"},{\"NULL\":true}]},\"y\":{\"BOOL\":true}}},\"z\":{\"N\":\"1\"}}}\n",
                "{\"Item\":{\"k\":{\"BS\":[\"aGk=\",\"AA==\"]}}}\n",
            ]
        );
        assert_eq!(p.count, Some(2));
        assert_eq!(p.scanned_count, Some(3));
        assert_eq!(p.consumed_table.as_deref(), Some("T"));
        assert_eq!(p.consumed_units, Some(1.5));
        assert_eq!(
            p.last_evaluated_key.as_ref().unwrap()["k"],
            AttributeValue::S("x".into())
        );
        for (line, size) in p.lines() {
            let item = crate::item::dynamodb_json::decode_line(line).unwrap();
            assert_eq!(size, item_size(&item) as u64);
        }
        assert_eq!(p.item_bytes(), 21 + 4);
    }

    #[test]
    fn empty_and_null_items() {
        assert_eq!(page(r#"{"Items":[],"Count":0}"#).unwrap().items, vec![]);
        assert_eq!(page(r#"{"Items":null}"#).unwrap().lines, b"");
        assert_eq!(page("{}").unwrap(), WirePage::default());
        assert_eq!(page(r#"{"Items":[{}]}"#).unwrap().lines, b"{\"Item\":{}}\n");
    }

    #[test]
    fn refuses_what_it_does_not_reproduce() {
        for body in [
            r#"{"Items":[{"a":{"S":"x"},"a":{"S":"y"}}]}"#,
            r#"{"Items":[{"b":{"S":"x"},"a":{"S":"y"},"b":{"S":"z"}}]}"#,
            r#"{"Items":[{"a":{"s":"x"}}]}"#,
            r#"{"Items":[{"a":{"X":"x"}}]}"#,
            r#"{"Items":[{"a":{}}]}"#,
            r#"{"Items":[{"a":{"S":"x","N":"1"}}]}"#,
            r#"{"Items":[{"a":{"S":null}}]}"#,
            r#"{"Items":[{"a":null}]}"#,
            r#"{"Items":[null]}"#,
            r#"{"Items":[{"a":{"L":[null]}}]}"#,
            r#"{"Items":[{"a":{"SS":["x",null]}}]}"#,
            r#"{"Items":[{"a":{"B":"aGk"}}]}"#,
            r#"{"Items":[{"a":{"B":"AM+\/"}}]}"#,
            r#"{"Items":[{"a":{"B":"aGl="}}]}"#,
            r#"{"Items":[{"a":{"B":"a-k="}}]}"#,
            r#"{"Items":[{"a":{"BS":["aGk=","%%"]}}]}"#,
            r#"{"Items":[{"a":{"N":1}}]}"#,
            r#"{"Items":[{"a":{"BOOL":"true"}}]}"#,
            r#"{"Items":[],"Items":[]}"#,
            r#"{"Items":[]} x"#,
            r#"{"Items":[{"a":{"S":"\ud800"}}]}"#,
            r#"{"LastEvaluatedKey":{"k":{"X":"1"}}}"#,
            r#"{"LastEvaluatedKey":{"k":{"s":"1"}}}"#,
            r#"{"LastEvaluatedKey":{"k":{"M":{}}}}"#,
            "[]",
            "",
        ] {
            assert!(page(body).is_err(), "{body}");
        }
    }

    /// An item as DynamoDB might send it: names in the given order, strings escaped
    /// either way.
    pub(crate) fn wire_json(item: &Item, ascii: bool, pretty: bool) -> String {
        let v = serde_json::Value::Object(
            item.iter()
                .map(|(k, v)| (k.clone(), wire_value(v)))
                .collect(),
        );
        let mut out = Vec::new();
        if pretty {
            serde_json::to_writer_pretty(&mut out, &v).unwrap();
        } else {
            let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping { ascii });
            serde::Serialize::serialize(&v, &mut ser).unwrap();
        }
        String::from_utf8(out).unwrap()
    }

    fn wire_value(v: &AttributeValue) -> serde_json::Value {
        use serde_json::json;
        let b64 = |b: &aws_smithy_types::Blob| STANDARD.encode(b.as_ref());
        match v {
            AttributeValue::S(s) => json!({"S": s}),
            AttributeValue::N(n) => json!({"N": n}),
            AttributeValue::B(b) => json!({"B": b64(b)}),
            AttributeValue::Ss(s) => json!({"SS": s}),
            AttributeValue::Ns(s) => json!({"NS": s}),
            AttributeValue::Bs(s) => json!({"BS": s.iter().map(b64).collect::<Vec<_>>()}),
            AttributeValue::M(m) => json!({"M": serde_json::Value::Object(
                m.iter().map(|(k, v)| (k.clone(), wire_value(v))).collect()
            )}),
            AttributeValue::L(l) => json!({"L": l.iter().map(wire_value).collect::<Vec<_>>()}),
            AttributeValue::Null(b) => json!({"NULL": b}),
            AttributeValue::Bool(b) => json!({"BOOL": b}),
            _ => unreachable!(),
        }
    }

    /// Writes every non-ASCII character as a `\u` escape, as some JSON writers do. (Not
    /// `\/`: the SDK cannot read base64 written so, see `base64`.)
    struct Escaping {
        ascii: bool,
    }

    impl serde_json::ser::Formatter for Escaping {
        fn write_string_fragment<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            fragment: &str,
        ) -> std::io::Result<()> {
            if !self.ascii {
                return w.write_all(fragment.as_bytes());
            }
            for c in fragment.chars() {
                match c {
                    c if c.is_ascii() => w.write_all(&[c as u8])?,
                    c => {
                        let mut units = [0u16; 2];
                        for u in c.encode_utf16(&mut units) {
                            write!(w, "\\u{u:04x}")?;
                        }
                    }
                }
            }
            Ok(())
        }
    }

    /// What `decode_line` makes of a line, written as `checked_item` writes it.
    fn decoded(line: &[u8]) -> Option<(String, usize)> {
        let item = crate::item::dynamodb_json::decode_line(line).ok()?;
        let mut out = Vec::new();
        crate::item::json::write_map(&item, &crate::item::json::UPPER_KEYS, &mut out);
        Some((String::from_utf8(out).unwrap(), item_size(&item)))
    }

    fn checked(line: &[u8]) -> Option<(String, usize)> {
        let mut out = b"before".to_vec();
        match checked_item(line, &mut out) {
            Ok(size) => Some((String::from_utf8(out[6..].to_vec()).unwrap(), size)),
            Err(_) => {
                assert_eq!(out, b"before", "nothing appended on refusal");
                None
            }
        }
    }

    #[test]
    fn checked_items_refuse_what_decode_line_refuses_or_might_read_otherwise() {
        let big = format!(r#"{{"Item":{{"a":{{"S":"{}"}}}}}}"#, "x".repeat(400 * 1024));
        for line in [
            r#"{"Item":{"a":{"SS":[]}}}"#,
            r#"{"Item":{"a":{"SS":["x","x"]}}}"#,
            r#"{"Item":{"a":{"SS":["x","x"]}}}"#,
            r#"{"Item":{"a":{"NS":["1","1.0"]}}}"#,
            r#"{"Item":{"a":{"BS":["aGk=","aGk="]}}}"#,
            r#"{"Item":{"a":{"M":{"b":{"L":[{"NS":[]}]}}}}}"#,
            r#"{"Item":{"a":{"N":"1e400"}}}"#,
            r#"{"Item":{"a":{"N":"x"}}}"#,
            r#"{"Item":{"a":{"N":"123456789012345678901234567890123456789"}}}"#,
            r#"{"Item":{"a":{"NULL":false}}}"#,
            r#"{"Item":{"a":{"s":"x"}}}"#,
            r#"{"Item":{"a":{"S":"x"},"a":{"S":"y"}}}"#,
            r#"{"Item":{"a":{"B":"aGk"}}}"#,
            r#"{"Item":{"a":{"S":"x"}},"Other":1}"#,
            r#"{"Other":1,"Item":{"a":{"S":"x"}}}"#,
            r#"{"Keys":{"a":{"S":"x"}}}"#,
            r#"{"Item":{"a":{"S":"x"}}} x"#,
            r#"{"Item":[]}"#,
            &big,
        ] {
            assert_eq!(checked(line.as_bytes()), None, "{line}");
        }
        assert_eq!(checked(b"{\"Item\":{\"a\":{\"S\":\"\xff\"}}}"), None);
        // Every one of those is refused or read otherwise by decode_line too.
        assert_eq!(decoded(br#"{"Item":{"a":{"NS":["1","1.0"]}}}"#), None);
        assert!(decoded(br#"{"Item":{"a":{"s":"x"}}}"#).is_some());
        assert_eq!(
            checked(b"{\"Item\":{\"b\":{\"N\":\"1.50\"},\"a\":{\"NULL\":true}}}\r\n"),
            Some((r#"{"a":{"NULL":true},"b":{"N":"1.50"}}"#.to_string(), 5))
        );
    }

    /// A type object as a hand-written file might hold it, valid or not.
    fn loose_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::json;
        let numbers = prop::sample::select(vec![
            "1", "1.0", "-0.50", "2", "1e400", "x", "", "1E+2", "100",
        ]);
        let base64 = prop::sample::select(vec!["aGk=", "aGk", "AA==", "AAA=", "%%"]);
        let leaf = prop_oneof![
            "[ab\u{e9}\u{2028}\"]{0,3}".prop_map(|s| json!({"S": s})),
            numbers.clone().prop_map(|n| json!({"N": n})),
            base64.clone().prop_map(|b| json!({"B": b})),
            prop::collection::vec("[ab]{0,2}", 0..4).prop_map(|m| json!({"SS": m})),
            prop::collection::vec(numbers, 0..4).prop_map(|m| json!({"NS": m})),
            prop::collection::vec(base64, 0..4).prop_map(|m| json!({"BS": m})),
            any::<bool>().prop_map(|b| json!({"NULL": b})),
            any::<bool>().prop_map(|b| json!({"BOOL": b})),
            Just(json!({"s": "x"})),
            Just(json!({"Bool": true})),
            Just(json!({"S": 1})),
            Just(json!({})),
            Just(json!({"S": "x", "N": "1"})),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|l| json!({"L": l})),
                prop::collection::hash_map("[abc]", inner, 0..4)
                    .prop_map(|m| json!({"M": m.into_iter().collect::<serde_json::Map<_, _>>()})),
            ]
        })
    }

    proptest! {
        /// `checked_item` writes what `json::write_map` writes for `decode_line`'s item,
        /// with its size, for every valid item, in any order of names and escaping.
        #[test]
        fn checked_items_are_what_decode_line_reads(
            item in item(),
            ascii in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let line = format!("{{\"Item\":{}}}\n", wire_json(&item, ascii, pretty));
            let want = decoded(line.as_bytes());
            prop_assert!(want.is_some());
            prop_assert_eq!(checked(line.as_bytes()), want);
        }

        /// On lines that may be wrong: whatever `checked_item` takes, `decode_line` takes
        /// and reads the same; whatever `decode_line` refuses, `checked_item` refuses.
        #[test]
        fn checked_items_take_nothing_decode_line_would_not(
            attrs in prop::collection::hash_map("[abc]", loose_value(), 0..4),
        ) {
            let line = serde_json::to_vec(&serde_json::json!({
                "Item": attrs.into_iter().collect::<serde_json::Map<_, _>>()
            })).unwrap();
            let (got, want) = (checked(&line), decoded(&line));
            if got.is_some() || want.is_none() {
                prop_assert_eq!(got, want);
            }
        }

        /// Against this crate's own encoder and sizes (the SDK comparison is in
        /// `aws::wire_scan`).
        #[test]
        fn lines_and_sizes_match_the_plain_encoder(
            items in prop::collection::vec(item(), 0..4),
            ascii in any::<bool>(),
            pretty in any::<bool>(),
        ) {
            let body = format!(
                "{{\"Items\":[{}],\"Count\":{}}}",
                items.iter().map(|i| wire_json(i, ascii, pretty)).collect::<Vec<_>>().join(","),
                items.len()
            );
            let p = WirePage::parse(body.as_bytes()).unwrap();
            let mut want = Vec::new();
            for i in &items {
                encode_line(i, &mut want);
            }
            prop_assert_eq!(String::from_utf8(p.lines.clone()).unwrap(), String::from_utf8(want).unwrap());
            let sizes: Vec<u64> = p.items.iter().map(|&(_, s)| s).collect();
            let want: Vec<u64> = items.iter().map(|i| item_size(i) as u64).collect();
            prop_assert_eq!(sizes, want);
        }
    }
}
