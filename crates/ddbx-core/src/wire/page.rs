//! The `serde_json` reader of Scan answers and data file lines (what `wire::scanner` is
//! held to and what takes what it leaves), and the page both produce.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::item::json::{has_line_separator, read_map, write_str, Path};
use crate::item::key::{KeyDigest, KeySchema};
use crate::item::number::{canonical_number, check_number, number_size};
use crate::item::{Item, MAX_ITEM_BYTES, MAX_NAME_BYTES, MAX_NESTED_CONTAINERS};

/// Why a one-pass reader here left its input to the reader it is held to (the SDK's, or
/// `decode_line`): what it does not reproduce exactly, not a judgement of the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Declined(pub String);

impl From<serde_json::Error> for Declined {
    fn from(e: serde_json::Error) -> Self {
        Declined(e.to_string())
    }
}

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
    /// The reader `wire::scanner` is held to, and the one that takes what it leaves.
    pub fn parse_with_serde(body: &[u8]) -> Result<WirePage, Declined> {
        let mut de = serde_json::Deserializer::from_str(utf8(body)?);
        let page = AnswerSeed.deserialize(&mut de).map_err(Declined::from)?;
        de.end().map_err(Declined::from)?;
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

/// The key an item must carry, and the digest of its key as the item is read.
pub(super) struct KeyWatch<'k> {
    pub(super) schema: &'k KeySchema,
    pub(super) digest: Cell<KeyDigest>,
}

impl<'k> KeyWatch<'k> {
    pub(super) fn new(schema: &'k KeySchema) -> Self {
        Self {
            schema,
            digest: Cell::default(),
        }
    }
}

/// [`check_line`](super::line) by the `serde_json` seeds alone.
pub(super) fn check_line_with_serde(
    line: &[u8],
    out: &mut Vec<u8>,
    key: Option<&KeyWatch>,
) -> Result<usize, Declined> {
    let start = out.len();
    let mut de = serde_json::Deserializer::from_str(utf8(line)?);
    let read = LineSeed(out, key)
        .deserialize(&mut de)
        .and_then(|size| de.end().map(|()| size));
    match read {
        Ok(size) if size <= MAX_ITEM_BYTES => Ok(size),
        Ok(size) => {
            out.truncate(start);
            Err(Declined(format!("item of {size} bytes")))
        }
        Err(e) => {
            out.truncate(start);
            Err(Declined::from(e))
        }
    }
}

/// The text of a body or line, checked as UTF-8 whole: a `serde_json` reader of a `str`
/// then checks no string again. (The profile of an export against the canned endpoint
/// had `from_utf8` on each string at 3.6 % of the CPU, issue 16.)
fn utf8(bytes: &[u8]) -> Result<&str, Declined> {
    std::str::from_utf8(bytes).map_err(|e| Declined(format!("not UTF-8: {e}")))
}

/// `{"Item":{...}}`, only that key; the item checked against the key, when given.
struct LineSeed<'o, 'k>(&'o mut Vec<u8>, Option<&'k KeyWatch<'k>>);

impl<'de> DeserializeSeed<'de> for LineSeed<'_, '_> {
    type Value = usize;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<usize, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for LineSeed<'_, '_> {
    type Value = usize;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("{\"Item\":{...}}")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<usize, A::Error> {
        match map.next_key_seed(Text)? {
            Some(key) if key == "Item" => {}
            _ => return Err(de::Error::custom("not an Item line")),
        }
        let (size, _) = map.next_value_seed(MapSeed(self.0, Check::item(), self.1))?;
        if map.next_key_seed(Text)?.is_some() {
            return Err(de::Error::custom("more than the key Item"));
        }
        Ok(size)
    }
}

/// The parts of `ConsumedCapacity` an export uses.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Consumed {
    pub(crate) table_name: Option<String>,
    pub(crate) capacity_units: Option<f64>,
}

/// `LastEvaluatedKey`, read. Key attributes are S, N or B, spelt so by DynamoDB; anything
/// else (which `read_map` would take in any letter case) is left to the SDK.
pub(crate) fn key_to_continue(
    key: Option<serde_json::Map<String, serde_json::Value>>,
) -> Result<Option<Item>, Declined> {
    let plain = |v: &serde_json::Value| {
        v.as_object().is_some_and(|o| {
            o.len() == 1 && o.keys().all(|k| matches!(k.as_str(), "S" | "N" | "B"))
        })
    };
    if key.as_ref().is_some_and(|k| !k.values().all(plain)) {
        return Err(Declined("a key to continue from with other types".into()));
    }
    key.map(|k| read_map(&k, &Path::Root))
        .transpose()
        .map_err(|e| Declined(e.to_string()))
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
                    page.last_evaluated_key =
                        key_to_continue(map.next_value()?).map_err(de::Error::custom)?
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
            match seq.next_element_seed(MapSeed(&mut page.lines, Check::Off, None))? {
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
struct MapSeed<'o, 'k>(&'o mut Vec<u8>, Check, Option<&'k KeyWatch<'k>>);

/// What the seeds check, as `validate_item` checks an item: nothing (a Scan answer, which
/// DynamoDB checked), or everything, for values nested in this many maps and lists.
#[derive(Clone, Copy)]
enum Check {
    Off,
    At(usize),
}

impl Check {
    /// The checks of an item's own attributes.
    fn item() -> Self {
        Check::At(0)
    }

    fn on(self) -> bool {
        matches!(self, Check::At(_))
    }

    /// The item's own attributes (whose names may not be empty).
    fn top(self) -> bool {
        matches!(self, Check::At(0))
    }

    /// The checks of a map's or list's members: one level deeper, if DynamoDB takes it.
    fn deeper<E: de::Error>(self) -> Result<Self, E> {
        match self {
            Check::Off => Ok(Check::Off),
            Check::At(d) if d >= MAX_NESTED_CONTAINERS => {
                Err(E::custom("nested deeper than DynamoDB's 32 levels"))
            }
            Check::At(d) => Ok(Check::At(d + 1)),
        }
    }
}

/// The type key of a value written as `{"S":...}`.
pub(super) fn type_key(value: &[u8]) -> &str {
    let inner = value.get(2..).unwrap_or_default();
    let end = inner.iter().position(|b| *b == b'"').unwrap_or(0);
    std::str::from_utf8(&inner[..end]).unwrap_or_default()
}

impl<'de> DeserializeSeed<'de> for MapSeed<'_, '_> {
    type Value = (usize, usize);
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MapSeed<'_, '_> {
    type Value = (usize, usize);
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an attribute map")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let MapSeed(out, check, key) = self;
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
            if check.on() && ((name.is_empty() && check.top()) || name.len() > MAX_NAME_BYTES) {
                return Err(de::Error::custom("an attribute name DynamoDB refuses"));
            }
            text(&name, out);
            out.push(b':');
            let start = out.len();
            let value = map.next_value_seed(ValueSeed(out, check))?;
            if let Some(k) = key {
                k.schema
                    .check_attribute(&name, type_key(&out[start..]), value)
                    .map_err(de::Error::custom)?;
                if let Some(position) = k.schema.position(&name) {
                    let mut digest = k.digest.get();
                    digest.add(position, &out[start..]);
                    k.digest.set(digest);
                }
            }
            size += name.len() + value;
            entries.push((name, start, out.len()));
        }
        if let Some(k) = key {
            k.schema
                .check_present(|n| entries.iter().any(|e| e.0 == n))
                .map_err(de::Error::custom)?;
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
struct ValueSeed<'o>(&'o mut Vec<u8>, Check);

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
                if check.on() {
                    check_number(&n).map_err(de::Error::custom)?;
                }
                scalar(Scalar::N, &n, out)?
            }
            "B" => scalar(Scalar::B, &map.next_value_seed(Text)?, out)?,
            "SS" => map.next_value_seed(ArraySeed(out, Some(Scalar::S), check))?,
            "NS" => map.next_value_seed(ArraySeed(out, Some(Scalar::N), check))?,
            "BS" => map.next_value_seed(ArraySeed(out, Some(Scalar::B), check))?,
            "M" => {
                let (size, len) = map.next_value_seed(MapSeed(out, check.deeper()?, None))?;
                3 + size + len
            }
            "L" => 3 + map.next_value_seed(ArraySeed(out, None, check.deeper()?))?,
            "NULL" | "BOOL" => {
                let b: bool = map.next_value()?;
                if check.on() && !b && &*key == "NULL" {
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
    let len = base64_len(text).map_err(|e| E::custom(format!("base64: {e}")))?;
    quoted(text, out);
    Ok(len)
}

/// The length of what base64 text decodes to, if it is in canonical form.
pub(crate) fn base64_len(text: &str) -> Result<usize, base64::DecodeError> {
    thread_local!(static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) });
    SCRATCH.with_borrow_mut(|scratch| {
        scratch.clear();
        STANDARD.decode_vec(text, scratch).map(|()| scratch.len())
    })
}

/// Appends `s` between quotes as it is: text that needs no escape.
pub(crate) fn quoted(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends a string as `json::write_str` would. A string borrowed from the answer had no
/// escapes in it, and JSON allows no raw quote, backslash or control character in a
/// string, so unless it holds a line separator (which `write_str` escapes) it is written
/// as it is, quoted (the profile showed re-escaping at 3 % of the CPU).
#[allow(clippy::ptr_arg)] // Which variant it is matters: borrowed means no escapes.
fn text(s: &Cow<str>, out: &mut Vec<u8>) {
    match s {
        Cow::Borrowed(s) if !has_line_separator(s) => quoted(s, out),
        _ => write_str(s, out),
    }
}

/// The types whose values are one string.
#[derive(Clone, Copy)]
pub(crate) enum Scalar {
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
struct ArraySeed<'o>(&'o mut Vec<u8>, Option<Scalar>, Check);

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
                        if check.on() {
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
        if check.on() && kind.is_some() {
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
#[path = "page_tests.rs"]
pub(crate) mod tests;
