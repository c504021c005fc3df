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
//! 32), and anything that is not JSON. The tests in `item::wire_tests` hold it to that
//! reader on generated pages, on mutated ones and on the odd answers (`wire_scanner_*`),
//! and the fuzz target `item_decoders` on any bytes.

use super::page::{base64_len, key_to_continue, quoted, Consumed, Scalar, WirePage};
use crate::item::json::{has_line_separator, write_str};
use crate::item::number::number_size;

/// Nesting this reader takes (DynamoDB allows 32 levels of documents).
const MAX_DEPTH: usize = 40;

/// Reads a Scan answer, or `None` to leave it to the `serde_json` reader.
pub(super) fn parse(body: &[u8]) -> Option<WirePage> {
    // Checked whole, once: any string between two quotes is then UTF-8.
    let s = std::str::from_utf8(body).ok()?;
    let mut r = Reader {
        s,
        b: body,
        i: 0,
        names: Vec::new(),
    };
    let page = r.answer()?;
    r.ws();
    (r.i == body.len()).then_some(page)
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

struct Reader<'b> {
    s: &'b str,
    b: &'b [u8],
    i: usize,
    /// The attributes of every map being read, innermost last (one allocation per page).
    names: Vec<Entry<'b>>,
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

impl<'b> Reader<'b> {
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
                size += name.as_str().len() + self.value(out, depth)?;
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
        let size = match key {
            "S" => self.scalar(Scalar::S, out)?,
            "N" => self.scalar(Scalar::N, out)?,
            "B" => self.scalar(Scalar::B, out)?,
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

    /// One S, N or B value (or set member); its size.
    fn scalar(&mut self, kind: Scalar, out: &mut Vec<u8>) -> Option<usize> {
        let s = self.string()?;
        Some(match kind {
            Scalar::S => {
                text(&s, out);
                s.as_str().len()
            }
            Scalar::N => {
                text(&s, out);
                number_size(s.as_str())
            }
            Scalar::B => {
                // Base64 is taken only as written, in canonical form (see `wire`).
                let Str::Raw(s, _) = s else { return None };
                let len = base64_len(s).ok()?;
                quoted(s, out);
                len
            }
        })
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
        if self.peek()? == b']' {
            self.i += 1;
        } else {
            loop {
                size += match kind {
                    Some(kind) => self.scalar(kind, out)?,
                    None => self.value(out, depth)? + 1,
                };
                if !self.next_or_close(b']')? {
                    break;
                }
                out.push(b',');
            }
        }
        out.push(b']');
        Some(size)
    }
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
