//! Amazon Ion lines as AWS "Export to S3" writes them with `ExportFormat=ION` and
//! "Import from S3" reads them: `$ion_1_0 {Item:{id:"x",n:6d2,tags:$dynamodb_SS::["a"]}}`.
//!
//! | DynamoDB | Ion |
//! |---|---|
//! | S | string |
//! | N | decimal (`103.`, `6d2`, `12.5`); read also from an int |
//! | B | blob `{{base64}}` |
//! | BOOL, NULL | bool, null |
//! | L, M | list, struct |
//! | SS, NS, BS | a list annotated `$dynamodb_SS::`, `$dynamodb_NS::`, `$dynamodb_BS::` |
//!
//! Reading is `ion-rs`'s `Element` API (text or binary, any spelling Ion allows). Writing is
//! done here, because ion-rs 1.2's text writer leaves control characters raw in strings and
//! symbols, which its own reader (and the Ion spec) refuses, and leaves U+2028, U+2029 and
//! U+0085 raw, which line readers split on; the property tests read what this writes back
//! through ion-rs.

use std::fmt::Write as _;

use aws_smithy_types::Blob;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ion_rs::{Element, IonType, Value};

use super::json::{line_separator_escape, Path};
use super::number::{canonical_number, Decimal};
use super::validate::validate_item;
use super::{check_change_keys, AttributeValue, Change, Item, ItemError};

const SS: &str = "$dynamodb_SS";
const NS: &str = "$dynamodb_NS";
const BS: &str = "$dynamodb_BS";

/// Appends `$ion_1_0 {Item:{...}}\n` for `item`: attribute names sorted (so equal items
/// give equal lines), numbers as Ion decimals. Does not validate.
pub fn encode_line(item: &Item, out: &mut Vec<u8>) {
    let mut text = String::with_capacity(256);
    text.push_str("$ion_1_0 {Item:");
    write_struct(item, &mut text);
    text.push_str("}\n");
    out.extend_from_slice(text.as_bytes());
}

/// Reads one line holding one `{Item:{...}}` struct (an Ion version marker before it, and
/// a trailing `\n`, are fine). The item is checked with [`validate_item`].
pub fn decode_line(line: &[u8]) -> Result<Item, ItemError> {
    let top = top_struct(line, "{Item:{...}}")?;
    let fields = top.as_struct().expect("a struct");
    let mut found = None;
    for (name, value) in fields {
        match name.text() {
            Some("Item") if found.is_none() => found = Some(value),
            other => {
                return Err(ItemError::Shape(format!(
                    "expected only the field Item, found {:?}",
                    other.unwrap_or("$0")
                )))
            }
        }
    }
    let item = match found {
        Some(v) => image(v, "Item")?,
        None => return Err(ItemError::Shape("expected {Item:{...}}".into())),
    };
    validate_item(&item)?;
    Ok(item)
}

/// Reads one line of an incremental export in Ion:
/// `{Metadata:{WriteTimestampMicros:...},Keys:{...},OldImage:{...},NewImage:{...}}` (no
/// NewImage: the item was deleted). The images are checked with [`validate_item`], and the
/// keys must be the new image's.
pub fn decode_change(line: &[u8]) -> Result<Change, ItemError> {
    let top = top_struct(line, "{Keys:{...},NewImage:{...}}")?;
    let (mut keys, mut new_image, mut write_micros) = (None, None, None);
    for (name, value) in top.as_struct().expect("a struct") {
        match name.text() {
            Some("Keys") if keys.is_none() => keys = Some(image(value, "Keys")?),
            Some("NewImage") if new_image.is_none() => {
                let item = image(value, "NewImage")?;
                validate_item(&item)?;
                new_image = Some(item);
            }
            Some("OldImage") => validate_item(&image(value, "OldImage")?)?,
            Some("Metadata") => {
                write_micros = value
                    .as_struct()
                    .and_then(|m| m.get("WriteTimestampMicros"))
                    .and_then(|t| match t.value() {
                        Value::Int(i) => i.as_i64().and_then(|i| u64::try_from(i).ok()),
                        Value::Decimal(_) | Value::String(_) => {
                            number(t, &Path::Root).ok().and_then(|n| n.parse().ok())
                        }
                        _ => None,
                    })
            }
            other => {
                return Err(ItemError::Shape(format!(
                    "an incremental export's line has Metadata, Keys, OldImage and NewImage, found {:?}",
                    other.unwrap_or("$0")
                )))
            }
        }
    }
    let keys = keys.ok_or_else(|| {
        ItemError::Shape("expected {Keys:{...}, ...} (an incremental export's line)".into())
    })?;
    check_change_keys(&keys, new_image.as_ref())?;
    Ok(Change {
        keys,
        new_image,
        write_micros,
    })
}

/// Containers (structs, lists, s-expressions) a line may nest before ion-rs reads it: the
/// line's struct, its `Item`, then DynamoDB's 32 levels, with room to spare. ion-rs and
/// the reader below recurse once per level, and a line of 16 KB can nest 4,000 deep:
/// enough to overflow the stack, which aborts the process.
const MAX_ION_NESTING: usize = 64;

/// The most digits a symbol ID (`$123`) is read with: any 19 digits fit a usize.
const MAX_SYMBOL_ID_DIGITS: usize = 19;

/// The one unannotated struct a line holds (`what` names the expected shape).
fn top_struct(line: &[u8], what: &str) -> Result<Element, ItemError> {
    // AWS's Ion exports are text, one value a line; binary Ion holds newlines anywhere.
    if line.starts_with(&[0xE0, 0x01, 0x00, 0xEA]) {
        return Err(ItemError::Ion(
            "binary Ion: an Ion export is text, one value a line".into(),
        ));
    }
    // Ion text is UTF-8; ion-rs 1.2 panics on a string that is not (found by the fuzz
    // target `item_decoders`), so the line is checked first.
    std::str::from_utf8(line).map_err(|e| ItemError::Ion(format!("not UTF-8: {e}")))?;
    let shape = text_shape(line);
    if shape.deepest > MAX_ION_NESTING {
        return Err(ItemError::Shape(format!(
            "nested deeper than {MAX_ION_NESTING} levels (DynamoDB allows 32)"
        )));
    }
    // ion-rs 1.2 panics on a symbol ID too large for a usize (`$` and 20 digits or more:
    // found by the fuzz target `item_decoders`); no symbol table has one.
    if shape.longest_symbol_id > MAX_SYMBOL_ID_DIGITS {
        return Err(ItemError::Ion(format!(
            "a symbol ID of {} digits: no symbol table holds one",
            shape.longest_symbol_id
        )));
    }
    // ion-rs 1.2 panics on an escape `\U` beyond Unicode's last code point (found by the
    // fuzz target `item_decoders`).
    if let Some(escape) = shape.escape_beyond_unicode {
        return Err(ItemError::Ion(format!(
            "the escape \\U{escape:08x}: beyond Unicode's last code point, 10FFFF"
        )));
    }
    // And whatever else in ion-rs panics on hostile text ends as this line's error, not
    // the run's: its reader holds nothing beyond this call.
    let read = std::panic::catch_unwind(|| Element::read_all(line)).map_err(|_| {
        ItemError::Ion("Ion text its reader (ion-rs) cannot read: it panicked on it".into())
    })?;
    let values = read.map_err(|e| ItemError::Ion(first_line(&e)))?;
    let mut values = values.into_iter();
    let (Some(top), None) = (values.next(), values.next()) else {
        return Err(ItemError::Shape(format!(
            "expected one Ion value such as {what} on the line"
        )));
    };
    match top.value() {
        Value::Struct(_) if top.annotations().is_empty() => Ok(top),
        _ => Err(ItemError::Shape(format!(
            "expected an Ion struct such as {what}, found {}",
            describe(&top)
        ))),
    }
}

/// A field holding an item (a struct of attributes).
fn image(v: &Element, field: &str) -> Result<Item, ItemError> {
    if v.ion_type() == IonType::Struct && !v.is_null() {
        read_struct(v, &Path::Root)
    } else {
        Err(ItemError::Shape(format!(
            "{field} must be an Ion struct, found {}",
            describe(v)
        )))
    }
}

/// The first line of an ion-rs error (its later lines quote the input at length), with
/// the Rust debug text ion-rs leaves in some said in words.
fn first_line(e: &ion_rs::IonError) -> String {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or_default();
    if first.contains("ParseIntError") {
        return "a number whose exponent is too large to read (DynamoDB's numbers are from 1E-130 to 9.99E+125)".into();
    }
    first.to_string()
}

/// What Ion text holds that its reader must not meet, found without parsing it.
struct TextShape {
    /// The deepest nesting of containers.
    deepest: usize,
    /// The most digits of a symbol ID (`$` and digits, starting a token).
    longest_symbol_id: usize,
    /// The first escape `\U` in quotes whose code point is beyond Unicode's (surrogates
    /// ion-rs pairs or refuses).
    escape_beyond_unicode: Option<u32>,
}

/// Ion text scanned outside strings, symbols in quotes, comments and lobs (`{{...}}`):
/// `{`, `[` and `(` open a container, and a token that starts with `$` and a digit is a
/// symbol ID. What it cannot tell apart it counts, so it never says less than the text
/// holds.
fn text_shape(text: &[u8]) -> TextShape {
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    let mut longest_symbol_id = 0;
    // Where the last symbol ID ended: ion-rs starts a token there (`$3$3` is two), whatever
    // the byte before it.
    let mut symbol_id_end = None;
    let mut escape_beyond_unicode = None;
    // Skip past the end of a quoted run opened by `quote` at `i` (escapes honoured).
    let mut skip_quoted = |i: usize, quote: &[u8]| -> usize {
        let mut j = i + quote.len();
        while j < text.len() {
            if text[j] == b'\\' {
                if text.get(j + 1) == Some(&b'U') {
                    let code = text
                        .get(j + 2..j + 10)
                        .and_then(|h| std::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    if let Some(c) = code.filter(|&c| c > 0x10FFFF) {
                        escape_beyond_unicode.get_or_insert(c);
                    }
                }
                j += 2;
            } else if text[j..].starts_with(quote) {
                return j + quote.len();
            } else {
                j += 1;
            }
        }
        text.len()
    };
    while i < text.len() {
        match text[i] {
            b'"' => i = skip_quoted(i, b"\""),
            b'\'' if text[i..].starts_with(b"\'\'\'") => i = skip_quoted(i, b"\'\'\'"),
            b'\'' => i = skip_quoted(i, b"\'"),
            b'/' if text.get(i + 1) == Some(&b'/') => {
                i = memchr::memchr(b'\n', &text[i..]).map_or(text.len(), |n| i + n + 1);
            }
            b'/' if text.get(i + 1) == Some(&b'*') => {
                i = memchr::memmem::find(&text[i + 2..], b"*/").map_or(text.len(), |n| i + n + 4);
            }
            b'{' if text.get(i + 1) == Some(&b'{') => {
                // A blob or a clob: base64, or one string, up to `}}`.
                let mut j = i + 2;
                while j < text.len() && !text[j..].starts_with(b"}}") {
                    j = match text[j] {
                        b'"' => skip_quoted(j, b"\""),
                        b'\'' if text[j..].starts_with(b"\'\'\'") => skip_quoted(j, b"\'\'\'"),
                        _ => j + 1,
                    };
                }
                i = j + 2;
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
                i += 1;
            }
            b'}' | b']' | b')' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'$' if i == 0 || !is_identifier_byte(text[i - 1]) || symbol_id_end == Some(i) => {
                let digits = text[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                longest_symbol_id = longest_symbol_id.max(digits);
                i += 1 + digits;
                if digits > 0 {
                    symbol_id_end = Some(i);
                }
            }
            _ => i += 1,
        }
    }
    TextShape {
        deepest,
        longest_symbol_id,
        escape_beyond_unicode,
    }
}

/// A byte an Ion identifier may hold (`$` and `_` included): a `$` after one is inside
/// the identifier, not the start of a symbol ID.
fn is_identifier_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$'
}

/// What an Ion value is, for messages.
fn describe(e: &Element) -> String {
    let ann: Vec<&str> = e.annotations().iter().filter_map(|a| a.text()).collect();
    if ann.is_empty() {
        format!("{}", e.ion_type())
    } else {
        format!("{} annotated {}", e.ion_type(), ann.join("::"))
    }
}

fn read_struct(e: &Element, path: &Path) -> Result<Item, ItemError> {
    let s = e.as_struct().expect("checked by the caller");
    let mut item = Item::with_capacity(s.len());
    for (name, value) in s {
        let name = name
            .text()
            .ok_or_else(|| path.bad("a field name without text ($0)"))?;
        let v = read_value(value, &Path::Name(path, name))?;
        if item.insert(name.to_string(), v).is_some() {
            return Err(path.bad(format!("the field {name:?} appears twice")));
        }
    }
    Ok(item)
}

/// One value, by its type and its annotation (`$dynamodb_SS::` and the like for sets).
fn read_value(e: &Element, path: &Path) -> Result<AttributeValue, ItemError> {
    let mut annotations = e.annotations().iter();
    let set = match (annotations.next(), annotations.next()) {
        (None, _) => None,
        (Some(a), None) => match a.text() {
            Some(t @ (SS | NS | BS)) => Some(t),
            other => {
                return Err(ItemError::UnknownType {
                    attribute: path.render(),
                    key: format!("{}::", other.unwrap_or("$0")),
                })
            }
        },
        (Some(_), Some(_)) => {
            return Err(path.bad(format!("{} is not a DynamoDB value", describe(e))))
        }
    };
    if let Some(kind) = set {
        let list = match e.value() {
            Value::List(l) => l,
            _ => {
                return Err(path.bad(format!(
                    "{kind}:: must annotate a list, found {}",
                    describe(e)
                )))
            }
        };
        let members = list
            .iter()
            .enumerate()
            .map(|(i, m)| (m, Path::Index(path, i)));
        return Ok(match kind {
            SS => AttributeValue::Ss(
                members
                    .map(|(m, p)| string(m, &p))
                    .collect::<Result<_, _>>()?,
            ),
            NS => AttributeValue::Ns(
                members
                    .map(|(m, p)| number(m, &p))
                    .collect::<Result<_, _>>()?,
            ),
            _ => AttributeValue::Bs(
                members
                    .map(|(m, p)| blob(m, &p))
                    .collect::<Result<_, _>>()?,
            ),
        });
    }
    if e.is_null() {
        return Ok(AttributeValue::Null(true));
    }
    Ok(match e.value() {
        Value::String(_) => AttributeValue::S(string(e, path)?),
        Value::Decimal(_) | Value::Int(_) => AttributeValue::N(number(e, path)?),
        Value::Blob(_) => AttributeValue::B(blob(e, path)?),
        Value::Bool(b) => AttributeValue::Bool(*b),
        Value::List(l) => AttributeValue::L(
            l.iter()
                .enumerate()
                .map(|(i, m)| read_value(m, &Path::Index(path, i)))
                .collect::<Result<_, _>>()?,
        ),
        Value::Struct(_) => AttributeValue::M(read_struct(e, path)?),
        Value::Float(_) => {
            return Err(path.bad(
                "an Ion float is not exact: DynamoDB numbers are Ion decimals (1.5, not 1.5e0)",
            ))
        }
        _ => return Err(path.bad(format!("{} is not a DynamoDB value", describe(e)))),
    })
}

fn string(e: &Element, path: &Path) -> Result<String, ItemError> {
    match e.value() {
        Value::String(s) if e.annotations().is_empty() => Ok(s.text().to_string()),
        _ => Err(path.bad(format!("expected a string, found {}", describe(e)))),
    }
}

fn blob(e: &Element, path: &Path) -> Result<Blob, ItemError> {
    match e.value() {
        Value::Blob(b) if e.annotations().is_empty() => Ok(Blob::new(b.as_ref().to_vec())),
        _ => Err(path.bad(format!("expected a blob, found {}", describe(e)))),
    }
}

/// An Ion decimal (or int) as DynamoDB's canonical number text, never through a float.
fn number(e: &Element, path: &Path) -> Result<String, ItemError> {
    let text = match e.value() {
        Value::Decimal(d) if e.annotations().is_empty() => {
            let c = d.coefficient();
            format!(
                "{}{}E{}",
                if c.is_negative() { "-" } else { "" },
                c.magnitude(),
                d.exponent()
            )
        }
        Value::Int(i) if e.annotations().is_empty() => i.to_string(),
        _ => return Err(path.bad(format!("expected a decimal, found {}", describe(e)))),
    };
    canonical_number(&text).map_err(|e| ItemError::BadNumber {
        attribute: path.render(),
        value: e.to_string(),
        message: e.to_string(),
    })
}

/// Appends a struct of attributes, names sorted.
fn write_struct(m: &Item, out: &mut String) {
    let mut names: Vec<(&String, &AttributeValue)> = m.iter().collect();
    names.sort_unstable_by(|a, b| a.0.cmp(b.0));
    out.push('{');
    for (i, (name, v)) in names.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_symbol(name, out);
        out.push(':');
        write_value(v, out);
    }
    out.push('}');
}

fn write_value(v: &AttributeValue, out: &mut String) {
    match v {
        AttributeValue::S(s) => write_string(s, out),
        AttributeValue::N(n) => write_decimal(n, out),
        AttributeValue::B(b) => write_blob(b.as_ref(), out),
        AttributeValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        AttributeValue::Null(_) => out.push_str("null"),
        AttributeValue::Ss(ss) => write_set(SS, ss, out, |s, out| write_string(s, out)),
        AttributeValue::Ns(ns) => write_set(NS, ns, out, |n, out| write_decimal(n, out)),
        AttributeValue::Bs(bs) => write_set(BS, bs, out, |b, out| write_blob(b.as_ref(), out)),
        AttributeValue::L(l) => {
            out.push('[');
            for (i, e) in l.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(e, out);
            }
            out.push(']');
        }
        AttributeValue::M(m) => write_struct(m, out),
        // A type this SDK does not know: written so that every reader refuses it.
        _ => out.push_str("$dynamodb_UNKNOWN::null"),
    }
}

fn write_set<T>(annotation: &str, members: &[T], out: &mut String, f: impl Fn(&T, &mut String)) {
    out.push_str(annotation);
    out.push_str("::[");
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        f(m, out);
    }
    out.push(']');
}

fn write_blob(b: &[u8], out: &mut String) {
    out.push_str("{{");
    STANDARD.encode_string(b, out);
    out.push_str("}}");
}

/// A field name: bare when it is an identifier that cannot be read as anything else, as
/// AWS writes `Item` and `Authors`; otherwise a quoted symbol (`'my-attr'`).
fn write_symbol(name: &str, out: &mut String) {
    let identifier = name
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !matches!(name, "null" | "true" | "false" | "nan");
    if identifier {
        out.push_str(name);
    } else {
        out.push('\'');
        write_escaped(name, '\'', out);
        out.push('\'');
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push('"');
    write_escaped(s, '"', out);
    out.push('"');
}

/// Appends text for inside `quote`s: the quote, backslash, control characters and the
/// line separators escaped, everything else as it is (UTF-8).
fn write_escaped(s: &str, quote: char, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => match line_separator_escape(c) {
                Some(escape) => out.push_str(escape),
                None => out.push(c),
            },
        }
    }
}

/// Appends a DynamoDB number as an Ion decimal: its significant digits and exponent,
/// spelt as AWS's exports spell them (`103.`, `6d2`, `12.5`, `0.05`, `5d-200`). Text that
/// is not a number is written as a symbol, which every reader refuses as a number.
fn write_decimal(n: &str, out: &mut String) {
    let Some((negative, digits, exponent)) = Decimal::parse(n).map(|d| d.significand()) else {
        write_symbol(n, out);
        return;
    };
    if negative {
        out.push('-');
    }
    let len = digits.len() as i64;
    if exponent == 0 {
        out.push_str(&digits);
        out.push('.');
    } else if exponent < 0 && -exponent < len {
        let point = (len + exponent) as usize;
        out.push_str(&digits[..point]);
        out.push('.');
        out.push_str(&digits[point..]);
    } else if exponent < 0 && -exponent - len < 6 {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', (-exponent - len) as usize));
        out.push_str(&digits);
    } else {
        let _ = write!(out, "{digits}d{exponent}");
    }
}

#[cfg(test)]
#[path = "ion_tests.rs"]
mod tests;
