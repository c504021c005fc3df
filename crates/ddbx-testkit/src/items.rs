//! Sample items of every DynamoDB type, deterministic from their index.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue as V, PutRequest, WriteRequest};

pub type Item = HashMap<String, V>;

/// Item `i`: key `pk` (string) and, when `sort_key`, `sk` (number); then every type.
pub fn mixed(i: usize, sort_key: bool) -> Item {
    let mut m = Item::new();
    m.insert("pk".into(), V::S(format!("key-{i:06}")));
    if sort_key {
        m.insert("sk".into(), V::N(format!("{}", i % 7)));
    }
    m.insert(
        "s".into(),
        V::S(format!("text {i} ünïcödé ✓ \"quoted\" \\ \n tab\t")),
    );
    m.insert("empty".into(), V::S(String::new()));
    m.insert(
        "n38".into(),
        V::N(format!("1234567890123456789012345678901234567{}", i % 10)),
    );
    m.insert("nsmall".into(), V::N("-1.5E-120".into()));
    m.insert("nlimit".into(), V::N("1E-130".into()));
    m.insert(
        "nbig".into(),
        V::N("9.9999999999999999999999999999999999999E+125".into()),
    );
    m.insert(
        "bin".into(),
        V::B(Blob::new(
            (0..=255u8)
                .map(|b| b.wrapping_add(i as u8))
                .collect::<Vec<_>>(),
        )),
    );
    m.insert("ok".into(), V::Bool(i % 2 == 0));
    m.insert("nothing".into(), V::Null(true));
    m.insert(
        "ss".into(),
        V::Ss(vec!["a".into(), format!("b{i}"), "".into()]),
    );
    m.insert(
        "ns".into(),
        V::Ns(vec!["1".into(), "2.5".into(), format!("{i}00")]),
    );
    m.insert(
        "bs".into(),
        V::Bs(vec![Blob::new(vec![0u8]), Blob::new(vec![255u8, i as u8])]),
    );
    m.insert(
        "list".into(),
        V::L(vec![
            V::S("x".into()),
            V::N("1".into()),
            V::L(vec![V::Null(true)]),
            V::M(HashMap::new()),
        ]),
    );
    let mut deep = V::S("bottom".into());
    for level in 0..20 {
        deep = V::M(HashMap::from([(format!("level{level}"), deep)]));
    }
    m.insert("deep".into(), deep);
    m.insert("名前".into(), V::S("unicode name".into()));
    // Characters that line readers (Python's splitlines) take as line ends.
    m.insert(
        "line\u{2028}seps".into(),
        V::S(format!("a\u{2028}b\u{2029}c\u{85}d\u{b}e\u{c}f\u{1c}g{i}")),
    );
    m
}

/// A small item of about `bytes` bytes.
pub fn sized(i: usize, bytes: usize) -> Item {
    let mut m = Item::new();
    m.insert("pk".into(), V::S(format!("key-{i:06}")));
    m.insert("pad".into(), V::S("x".repeat(bytes.saturating_sub(20))));
    m
}

/// An item holding `bytes` of incompressible binary (deterministic from `i`).
pub fn incompressible(i: usize, bytes: usize) -> Item {
    let mut state = (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut m = Item::new();
    m.insert("pk".into(), V::S(format!("key-{i:06}")));
    m.insert("blob".into(), V::B(Blob::new(data)));
    m
}

/// [`mixed`] without its empty map: an item the EMR connector can write (it cannot write an
/// empty list or map, at any depth).
pub fn connector_writable(i: usize, sort_key: bool) -> Item {
    let mut m = mixed(i, sort_key);
    m.insert(
        "list".into(),
        V::L(vec![
            V::S("x".into()),
            V::N("1".into()),
            V::L(vec![V::Null(true)]),
        ]),
    );
    m
}

/// A BatchWriteItem request putting each of `items`.
pub fn put_requests(items: &[Item]) -> Vec<WriteRequest> {
    items
        .iter()
        .map(|i| {
            WriteRequest::builder()
                .put_request(
                    PutRequest::builder()
                        .set_item(Some(i.clone()))
                        .build()
                        .expect("an item"),
                )
                .build()
        })
        .collect()
}
