//! The fast path of [`WirePage::parse`]: a reader written for Scan answers as DynamoDB
//! writes them, and nothing else.
//!
//! Why it exists: the profile of an export against the canned endpoint
//! (`docs/BENCHMARKS.md`, "Export against compression alone", issue 16) had ~29 % of
//! ddbx's CPU in `serde_json` and the wire reader's seeds, reading answers at ~300 MB/s of
//! one core beside gzip's ~250 MB/s. An answer's layout is fixed (`Items`, an array of
//! attribute maps of type objects, and four small members), so this reads it in one pass
//! over the bytes: strings are found eight bytes at a time, copied as they are when they
//! hold no escape, and no allocation is made per item.
//!
//! It either gives, byte for byte, the page the `serde_json` reader in `wire` gives
//! (lines, sizes, count, key to continue from, capacity), or `None`, and then that reader
//! reads the answer as before. `None` covers everything unusual: a member other than the
//! five, a type key with an escape or that the reader does not know, base64 with an
//! escape, an invalid surrogate escape, nesting deeper than 40 levels (DynamoDB allows
//! 32), and anything that is not JSON. The tests in `wire::page_tests` hold it to that
//! reader on generated pages, on mutated ones and on the odd answers (`wire_scanner_*`),
//! and the fuzz target `item_decoders` on any bytes.
//!
//! [`check_line`] reads a data file's line with the same reader, checking the item as
//! `wire::page`'s seeds check it (`Reader`'s `CHECK`); see there.

use std::borrow::Cow;

use super::page::{base64_len, key_to_continue, quoted, Consumed, KeyWatch, Scalar, WirePage};
use crate::item::json::{has_line_separator, write_str};
use crate::item::number::{canonical_number, check_number, number_size};
use crate::item::{MAX_ITEM_BYTES, MAX_NAME_BYTES, MAX_NESTED_CONTAINERS};

/// Nesting this reader takes (DynamoDB allows 32 levels of documents).
const MAX_DEPTH: usize = 40;

/// Reads a Scan answer, or `None` to leave it to the `serde_json` reader.
pub(super) fn parse(body: &[u8]) -> Option<WirePage> {
    // Checked whole, once: any string between two quotes is then UTF-8.
    let s = std::str::from_utf8(body).ok()?;
    let mut r = Reader::<false>::new(s, None);
    let page = r.answer()?;
    r.ws();
    (r.i == body.len()).then_some(page)
}

/// Reads a data file's line `{"Item":{...}}`, appending the item's attribute map to `out`
/// as [`checked_item`](super::checked_item) does, with the same checks (names, canonical
/// numbers, sets, `NULL`, nesting, size, and `key`'s attributes, its digest added to
/// `key`), and returns the item's size; or `None`, with nothing appended, to leave the
/// line to the `serde_json` reader, which then takes it or says what is wrong with it.
///
/// Why: an import reads every line twice (the check before writing, then the writing),
/// and that reader's seeds were a quarter of an import's CPU (profile in
/// `docs/BENCHMARKS.md`, issue 26). The tests in `wire::page_tests` hold this to that
/// reader on generated lines, valid and not.
pub(super) fn check_line(line: &[u8], out: &mut Vec<u8>, key: Option<&KeyWatch>) -> Option<usize> {
    let s = std::str::from_utf8(line).ok()?;
    let start = out.len();
    let size = Reader::<true>::new(s, key).line(out);
    if size.is_none() {
        out.truncate(start);
    }
    size
}

/// A string read from the answer.
enum Str<'b> {
    /// Written with no escape; `true` if it has a byte beyond ASCII.
    Raw(&'b str, bool),
    /// Written with escapes, decoded.
    Decoded(String),
}

impl Str<'_> {
    fn as_str(&self) -> &str {
        match self {
            Str::Raw(s, _) => s,
            Str::Decoded(s) => s,
        }
    }
}

/// One attribute of the map being read: its name, and where its value is in the output.
struct Entry<'b> {
    name: Str<'b>,
    /// The name's first eight bytes, big-endian, zero-padded: names compare as these do
    /// unless these are equal (why: most names are short, and the sort of every item's
    /// names called `memcmp` for each comparison, 3 % of an export's CPU, issue 26).
    prefix: u64,
    start: usize,
    end: usize,
}

impl Entry<'_> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prefix
            .cmp(&other.prefix)
            .then_with(|| self.name.as_str().cmp(other.name.as_str()))
    }
}

/// The first eight bytes of `name`, big-endian, zero-padded. Comparing two of these
/// orders two names as their bytes do wherever the prefixes differ: a zero pad sorts
/// before any byte, as a shorter name sorts before a longer one it begins.
fn prefix_of(name: &str) -> u64 {
    let b = name.as_bytes();
    let mut word = [0u8; 8];
    let n = b.len().min(8);
    word[..n].copy_from_slice(&b[..n]);
    u64::from_be_bytes(word)
}

/// The reader; with `CHECK`, of a data file's line, whose item it checks as
/// `wire::page`'s seeds do (a Scan answer's items DynamoDB checked).
struct Reader<'b, 'k, const CHECK: bool> {
    s: &'b str,
    b: &'b [u8],
    i: usize,
    /// The attributes of every map being read, innermost last (one allocation per page).
    names: Vec<Entry<'b>>,
    /// The key the item must carry (`CHECK` only).
    key: Option<&'k KeyWatch<'k>>,
}

/// Bit 7 of each byte of a word (little-endian) that is zero. A byte above a zero one may
/// be flagged too, by the borrow, but the lowest flagged byte is always zero.
const fn zero_bytes(w: u64) -> u64 {
    w.wrapping_sub(0x0101_0101_0101_0101) & !w & 0x8080_8080_8080_8080
}

/// Bit 7 of each byte that is `"`, `\` or a control character (and perhaps of bytes above
/// one of those): what ends a run of plain string bytes.
const fn specials(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    zero_bytes(w ^ (ONES * b'"' as u64))
        | zero_bytes(w ^ (ONES * b'\\' as u64))
        | (w.wrapping_sub(ONES * 0x20) & !w & 0x8080_8080_8080_8080)
}

/// From `i`, where the next `"`, `\\` or control character is (or the end), and whether
/// a byte beyond ASCII comes before it.
fn plain_run(b: &[u8], mut i: usize) -> (usize, bool) {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut wide = 0u64;
    while let Some(chunk) = b.get(i..i + 8) {
        let w = u64::from_le_bytes(chunk.try_into().expect("eight bytes"));
        let hit = specials(w);
        if hit != 0 {
            // The lowest flagged byte is always a real one (see `zero_bytes`).
            let first = hit.trailing_zeros() as usize / 8;
            wide |= w & (u64::MAX >> (56 - 8 * first)) & HIGH;
            return (i + first, wide != 0);
        }
        wide |= w & HIGH;
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            break;
        }
        wide |= u64::from(c & 0x80);
        i += 1;
    }
    (i, wide != 0)
}

impl<'b, 'k, const CHECK: bool> Reader<'b, 'k, CHECK> {
    fn new(s: &'b str, key: Option<&'k KeyWatch<'k>>) -> Self {
        Reader {
            s,
            b: s.as_bytes(),
            i: 0,
            // Room for the attributes of most items (one allocation a line, or a page).
            names: Vec::with_capacity(16),
            key,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after white space, not taken.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// Takes `c` after white space.
    fn eat(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// Takes `,` and says `true`, or `close` and says `false`.
    fn next_or_close(&mut self, close: u8) -> Option<bool> {
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(true)
            }
            c if c == close => {
                self.i += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// Takes the literal `word`.
    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        let end = self.i + word.len();
        (self.b.get(self.i..end)? == word).then(|| self.i = end)
    }

    /// A JSON string, after white space.
    fn string(&mut self) -> Option<Str<'b>> {
        self.eat(b'"')?;
        let start = self.i;
        let (end, wide) = plain_run(self.b, start);
        match *self.b.get(end)? {
            b'"' => {
                self.i = end + 1;
                // Both ends are at an ASCII quote, so on character boundaries.
                Some(Str::Raw(self.s.get(start..end)?, wide))
            }
            b'\\' => self.escaped(start, end).map(Str::Decoded),
            _ => None,
        }
    }

    /// A string from `start` with escapes decoded, the first escape at `at`.
    fn escaped(&mut self, start: usize, mut at: usize) -> Option<String> {
        let b = self.b;
        let mut out = String::with_capacity(at - start + 16);
        let mut from = start;
        loop {
            out.push_str(self.s.get(from..at)?);
            match *b.get(at)? {
                b'"' => break,
                b'\\' => {}
                _ => return None,
            }
            let c = match *b.get(at + 1)? {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'u' => {
                    let unit = hex4(b.get(at + 2..at + 6)?)?;
                    at += 4;
                    let c = match unit {
                        0xD800..=0xDBFF => {
                            if b.get(at + 2..at + 4)? != b"\\u" {
                                return None;
                            }
                            let low = hex4(b.get(at + 4..at + 8)?)?;
                            if !(0xDC00..=0xDFFF).contains(&low) {
                                return None;
                            }
                            at += 6;
                            0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                        }
                        0xDC00..=0xDFFF => return None,
                        unit => unit,
                    };
                    char::from_u32(c)?
                }
                _ => return None,
            };
            out.push(c);
            from = at + 2;
            at = plain_run(b, from).0;
        }
        self.i = at + 1;
        Some(out)
    }

    /// A data file's line, `{"Item":{...}}` and nothing else: the item's size.
    fn line(&mut self, out: &mut Vec<u8>) -> Option<usize> {
        self.eat(b'{')?;
        let Str::Raw("Item", _) = self.string()? else {
            return None;
        };
        self.eat(b':')?;
        let (size, _) = self.map(out, 0)?;
        self.eat(b'}')?;
        self.ws();
        (self.i == self.b.len() && size <= MAX_ITEM_BYTES).then_some(size)
    }

    /// The whole answer.
    fn answer(&mut self) -> Option<WirePage> {
        let mut page = WirePage::default();
        let mut seen = [false; 5];
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(page);
        }
        loop {
            let Str::Raw(key, _) = self.string()? else {
                return None;
            };
            let field = match key {
                "Items" => 0,
                "Count" => 1,
                "ScannedCount" => 2,
                "LastEvaluatedKey" => 3,
                "ConsumedCapacity" => 4,
                _ => return None,
            };
            if std::mem::replace(&mut seen[field], true) {
                return None;
            }
            self.eat(b':')?;
            if field == 0 {
                self.items(&mut page)?;
            } else {
                let value = self.skip()?;
                match field {
                    1 => page.count = serde_json::from_str(value).ok()?,
                    2 => page.scanned_count = serde_json::from_str(value).ok()?,
                    3 => {
                        page.last_evaluated_key =
                            key_to_continue(serde_json::from_str(value).ok()?).ok()?
                    }
                    _ => {
                        if let Some(c) = serde_json::from_str::<Option<Consumed>>(value).ok()? {
                            page.consumed_table = c.table_name;
                            page.consumed_units = c.capacity_units;
                        }
                    }
                }
            }
            if !self.next_or_close(b'}')? {
                return Some(page);
            }
        }
    }

    /// The text of the next value, for `serde_json` to read: it only has to end where the
    /// value ends, as `serde_json` then reads all of it.
    fn skip(&mut self) -> Option<&'b str> {
        self.ws();
        let start = self.i;
        let mut depth = 0usize;
        loop {
            match *self.b.get(self.i)? {
                b'"' => {
                    self.string()?;
                }
                b'{' | b'[' => {
                    depth += 1;
                    self.i += 1;
                }
                b'}' | b']' if depth > 0 => {
                    depth -= 1;
                    self.i += 1;
                }
                b',' | b'}' | b']' if depth == 0 => break,
                _ => self.i += 1,
            }
            if depth == 0 && matches!(self.peek(), Some(b',' | b'}' | b']')) {
                break;
            }
        }
        self.s.get(start..self.i)
    }

    /// `Items`: `null`, or an array of items, each appended to the page as a line.
    fn items(&mut self, page: &mut WirePage) -> Option<()> {
        if self.peek()? == b'n' {
            return self.literal(b"null");
        }
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            page.lines.extend_from_slice(b"{\"Item\":");
            let (size, _) = self.map(&mut page.lines, 0)?;
            page.lines.extend_from_slice(b"}\n");
            page.items.push((page.lines.len(), size as u64));
            if !self.next_or_close(b']')? {
                return Some(());
            }
        }
    }

    /// An attribute map, written with its names sorted (as `wire`'s `MapSeed`
    /// writes it): the sum of names' and values' sizes, and the number of attributes.
    fn map(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<(usize, usize)> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'{')?;
        let base = out.len();
        let first = self.names.len();
        let mut in_order = true;
        let mut size = 0;
        out.push(b'{');
        if self.peek()? != b'}' {
            loop {
                let name = self.string()?;
                if CHECK && !name_taken(name.as_str(), depth) {
                    return None;
                }
                let prefix = prefix_of(name.as_str());
                if self.names.len() > first {
                    out.push(b',');
                    let last = self.names.last()?;
                    in_order &= last.prefix < prefix
                        || (last.prefix == prefix && last.name.as_str() < name.as_str());
                }
                text(&name, out);
                self.eat(b':')?;
                out.push(b':');
                let start = out.len();
                let value = self.value(out, depth)?;
                if CHECK && depth == 0 {
                    self.key_attribute(name.as_str(), &out[start..], value)?;
                }
                size += name.as_str().len() + value;
                let end = out.len();
                self.names.push(Entry {
                    name,
                    prefix,
                    start,
                    end,
                });
                if !self.next_or_close(b'}')? {
                    break;
                }
            }
        } else {
            self.i += 1;
        }
        out.push(b'}');
        if CHECK && depth == 0 {
            let names = &self.names[first..];
            let key = self.key.map(|k| k.schema);
            key.map_or(Ok(()), |k| {
                k.check_present(|n| names.iter().any(|e| e.name.as_str() == n))
            })
            .ok()?;
        }
        let entries = &mut self.names[first..];
        let len = entries.len();
        if !in_order {
            entries.sort_unstable_by(Entry::cmp);
            if entries
                .windows(2)
                .any(|w| w[0].cmp(&w[1]) == std::cmp::Ordering::Equal)
            {
                return None;
            }
            let sorted = out.len();
            out.push(b'{');
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                text(&e.name, out);
                out.push(b':');
                out.extend_from_within(e.start..e.end);
            }
            out.push(b'}');
            out.copy_within(sorted.., base);
            out.truncate(out.len() - (sorted - base));
        }
        self.names.truncate(first);
        Some((size, len))
    }

    /// One type object such as `{"S":"x"}`; its value's size.
    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<usize> {
        let key = self.type_key()?;
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        if CHECK && matches!(key, "M" | "L") && depth >= MAX_NESTED_CONTAINERS {
            return None;
        }
        let size = match key {
            "S" => self.scalar(Scalar::S, out)?.0,
            "N" => self.scalar(Scalar::N, out)?.0,
            "B" => self.scalar(Scalar::B, out)?.0,
            "SS" => self.array(out, Some(Scalar::S), depth)?,
            "NS" => self.array(out, Some(Scalar::N), depth)?,
            "BS" => self.array(out, Some(Scalar::B), depth)?,
            "M" => {
                let (size, len) = self.map(out, depth + 1)?;
                3 + size + len
            }
            "L" => 3 + self.array(out, None, depth + 1)?,
            "NULL" | "BOOL" => {
                let word: &[u8] = if self.peek()? == b't' {
                    b"true"
                } else {
                    b"false"
                };
                self.literal(word)?;
                if CHECK && key == "NULL" && word == b"false" {
                    return None;
                }
                out.extend_from_slice(word);
                1
            }
            _ => return None,
        };
        self.eat(b'}')?;
        out.push(b'}');
        Some(size)
    }

    /// The `{"S":` that opens a type object: its type key. DynamoDB writes it with no
    /// white space, which is read here straight from the bytes (why: it is a third of the
    /// strings of an answer, issue 26); anything else is read token by token.
    fn type_key(&mut self) -> Option<&'b str> {
        let i = self.i;
        if self.b.get(i..i + 2) == Some(b"{\"") {
            let tail = self.b.get(i + 2..(i + 8).min(self.b.len()))?;
            if let Some(end) = tail.iter().position(|&c| c == b'"') {
                if self.b.get(i + 2 + end + 1) == Some(&b':') {
                    self.i = i + 2 + end + 2;
                    return self.s.get(i + 2..i + 2 + end);
                }
            }
        }
        self.eat(b'{')?;
        let Str::Raw(key, _) = self.string()? else {
            return None;
        };
        self.eat(b':')?;
        Some(key)
    }

    /// One S, N or B value (or set member): its size, and the string read (with
    /// `CHECK`, a number's checked).
    fn scalar(&mut self, kind: Scalar, out: &mut Vec<u8>) -> Option<(usize, Str<'b>)> {
        let s = self.string()?;
        let size = match kind {
            Scalar::S => {
                text(&s, out);
                s.as_str().len()
            }
            Scalar::N => {
                if CHECK {
                    check_number(s.as_str()).ok()?;
                }
                text(&s, out);
                number_size(s.as_str())
            }
            Scalar::B => {
                // Base64 is taken only as written, in canonical form (see `wire`).
                let Str::Raw(raw, _) = s else { return None };
                let len = base64_len(raw).ok()?;
                quoted(raw, out);
                len
            }
        };
        Some((size, s))
    }

    /// With `CHECK`, an attribute of the item itself: as the key it may be, checked, and
    /// its value added to the key's digest.
    fn key_attribute(&self, name: &str, value: &[u8], size: usize) -> Option<()> {
        let Some(k) = self.key else { return Some(()) };
        k.schema
            .check_attribute(name, super::page::type_key(value), size)
            .ok()?;
        if let Some(position) = k.schema.position(name) {
            let mut digest = k.digest.get();
            digest.add(position, value);
            k.digest.set(digest);
        }
        Some(())
    }

    /// An array: a set's members (`Some` of their type), or an `L`'s type objects
    /// (`None`). Its members' total size, plus one per element of an `L`.
    fn array(&mut self, out: &mut Vec<u8>, kind: Option<Scalar>, depth: usize) -> Option<usize> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.eat(b'[')?;
        out.push(b'[');
        let mut size = 0;
        // Checking a set: its members (numbers in canonical form), to find one given twice.
        let mut members: Vec<Cow<'b, str>> = Vec::new();
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                size += match kind {
                    Some(kind) => {
                        let (size, s) = self.scalar(kind, out)?;
                        if CHECK {
                            members.push(member(kind, s)?);
                        }
                        size
                    }
                    None => self.value(out, depth)? + 1,
                };
                if !self.next_or_close(b']')? {
                    break;
                }
                out.push(b',');
            }
        }
        out.push(b']');
        if CHECK && kind.is_some() {
            members.sort_unstable();
            if members.is_empty() || members.windows(2).any(|w| w[0] == w[1]) {
                return None;
            }
        }
        Some(size)
    }
}

/// Whether an attribute name at `depth` is one DynamoDB takes (an item's own may not be
/// empty), as `wire::page`'s seeds check it.
fn name_taken(name: &str, depth: usize) -> bool {
    !(name.is_empty() && depth == 0) && name.len() <= MAX_NAME_BYTES
}

/// A set member as two equal members compare equal: a number in canonical form, a string
/// or base64 (taken only in canonical form) as it is.
fn member(kind: Scalar, s: Str<'_>) -> Option<Cow<'_, str>> {
    Some(match (kind, s) {
        (Scalar::N, s) => Cow::Owned(canonical_number(s.as_str()).ok()?),
        (_, Str::Raw(s, _)) => Cow::Borrowed(s),
        (_, Str::Decoded(s)) => Cow::Owned(s),
    })
}

/// Appends a string as `json::write_str` would: as it was written when it had no escape
/// and no line separator (JSON allows no raw quote, backslash or control character).
fn text(s: &Str, out: &mut Vec<u8>) {
    match s {
        Str::Raw(s, wide) if !(*wide && has_line_separator(s)) => quoted(s, out),
        s => write_str(s.as_str(), out),
    }
}

/// Four hexadecimal digits.
fn hex4(digits: &[u8]) -> Option<u32> {
    digits
        .iter()
        .try_fold(0, |n, &d| Some(n * 16 + char::from(d).to_digit(16)?))
}
