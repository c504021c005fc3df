//! Proptest strategies shared by the item tests: random items of every type.

use std::collections::{HashMap, HashSet};

use aws_smithy_types::Blob;
use proptest::prelude::*;

use super::number::canonical_number;
use super::{AttributeValue, Item};

/// Valid numbers in many spellings: sign, padding zeros, point anywhere, exponent in
/// either case; 1 to 38 significant digits, magnitude within DynamoDB's range.
pub(crate) fn number_text() -> impl Strategy<Value = String> {
    (
        "[1-9][0-9]{0,37}",
        any::<prop::sample::Index>(),
        -130i64..=125,
        0usize..3,
        0usize..3,
        prop_oneof![Just(""), Just("-"), Just("+")],
        any::<bool>(),
    )
        .prop_map(|(digits, point, adjusted, lead, trail, sign, upper)| {
            let point = point.index(digits.len() + 1);
            let exp = adjusted - point as i64 + 1;
            let mut s = sign.to_string();
            s.push_str(&"0".repeat(lead));
            s.push_str(&digits[..point]);
            if point == 0 && lead == 0 {
                s.push('0');
            }
            if point < digits.len() || trail > 0 {
                s.push('.');
            }
            s.push_str(&digits[point..]);
            s.push_str(&"0".repeat(trail));
            if exp != 0 || upper {
                s.push(if upper { 'E' } else { 'e' });
                s.push_str(&exp.to_string());
            }
            s
        })
}

/// Any text: unicode, control characters, quotes, empty; often the characters that
/// codecs must escape (line separators that line readers split on among them).
pub(crate) fn text(max: usize) -> impl Strategy<Value = String> {
    let hard = prop::sample::select(vec![
        '\u{2028}', '\u{2029}', '\u{85}', '\n', '\r', '\t', '"', '\'', '\\', '\u{0}', '\u{1}',
        '\u{2}', '\u{3}', '\u{7f}', '$', 'é', '😀',
    ]);
    let character = prop_oneof![6 => any::<char>(), 1 => hard];
    prop::collection::vec(character, 0..max).prop_map(String::from_iter)
}

/// Whether an encoded line holds a character that line readers (Python's
/// `str.splitlines()`) split on, other than its final `\n`.
pub(crate) fn splits_in_line_readers(line: &[u8]) -> bool {
    let text = String::from_utf8_lossy(line);
    let body = text.strip_suffix('\n').unwrap_or(&text);
    body.contains([
        '\n', '\r', '\u{b}', '\u{c}', '\u{1c}', '\u{1d}', '\u{1e}', '\u{85}', '\u{2028}',
        '\u{2029}',
    ])
}

/// Any bytes, empty included.
pub(crate) fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..40)
}

/// A non-empty number set, members distinct after canonicalization.
fn number_set() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(number_text(), 1..5).prop_map(|v| {
        let mut seen = HashSet::new();
        v.into_iter()
            .filter(|n| seen.insert(canonical_number(n).unwrap()))
            .collect()
    })
}

/// Values without nesting.
pub(crate) fn leaf() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        text(20).prop_map(AttributeValue::S),
        number_text().prop_map(AttributeValue::N),
        bytes().prop_map(|b| AttributeValue::B(Blob::new(b))),
        any::<bool>().prop_map(AttributeValue::Bool),
        Just(AttributeValue::Null(true)),
        prop::collection::hash_set(text(10), 1..5)
            .prop_map(|s| AttributeValue::Ss(s.into_iter().collect())),
        number_set().prop_map(AttributeValue::Ns),
        prop::collection::hash_set(bytes(), 1..5)
            .prop_map(|s| AttributeValue::Bs(s.into_iter().map(Blob::new).collect())),
    ]
}

/// Any value, lists and maps nested up to 4 levels.
pub(crate) fn value() -> impl Strategy<Value = AttributeValue> {
    leaf().prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(AttributeValue::L),
            prop::collection::hash_map(text(8), inner, 0..4).prop_map(AttributeValue::M),
        ]
    })
}

/// Any item of up to 6 attributes (top-level names of at least one byte, as DynamoDB
/// wants; names inside maps may be empty).
pub(crate) fn item() -> impl Strategy<Value = Item> {
    prop::collection::hash_map(
        text(8).prop_filter("a top-level name", |n| !n.is_empty()),
        value(),
        0..6,
    )
}

/// An item of one attribute, for error tests.
pub(crate) fn one(name: &str, v: AttributeValue) -> Item {
    HashMap::from([(name.to_string(), v)])
}

/// The key of the tests' keyed items: `id` (N, partition) and `sk` (S, sort).
pub fn id_sk() -> crate::item::key::KeySchema {
    use crate::item::key::{KeyPart, KeySchema, KeyType};
    KeySchema {
        parts: vec![
            KeyPart {
                name: "id".into(),
                ty: KeyType::N,
                partition: true,
            },
            KeyPart {
                name: "sk".into(),
                ty: KeyType::S,
                partition: false,
            },
        ],
    }
}
