//! A canonical encoding of items for `ddbx verify --deep`: equal for equal items,
//! whatever the order of their attributes or set members and however their numbers are
//! spelled, with MD5 digests of it and an order-independent digest of a whole table.
//!
//! The encoding is binary and unambiguous (every string is length-prefixed, every value
//! tagged with its type). It is only ever compared with digests computed by the same
//! version of ddbx, never stored as a format.

use md5::{Digest, Md5};

use super::number::canonical_number;
use super::{AttributeValue, Item};

/// Type tags of the canonical encoding.
mod tag {
    pub const UNKNOWN: u8 = 0;
    pub const S: u8 = 1;
    pub const N: u8 = 2;
    pub const B: u8 = 3;
    pub const SS: u8 = 4;
    pub const NS: u8 = 5;
    pub const BS: u8 = 6;
    pub const M: u8 = 7;
    pub const L: u8 = 8;
    pub const NULL: u8 = 9;
    pub const BOOL: u8 = 10;
}

/// Appends the canonical encoding of `item`: attributes sorted by name, set members
/// sorted, numbers in their [`canonical_number`] spelling (the text as found if it is not
/// a valid number), list order kept.
pub fn canonical_bytes(item: &Item, out: &mut Vec<u8>) {
    let mut attrs: Vec<(&str, &AttributeValue)> =
        item.iter().map(|(k, v)| (k.as_str(), v)).collect();
    write_attrs(&mut attrs, out);
}

/// MD5 of [`canonical_bytes`].
pub fn item_digest(item: &Item) -> [u8; 16] {
    let mut buf = Vec::with_capacity(256);
    canonical_bytes(item, &mut buf);
    Md5::digest(&buf).into()
}

/// MD5 of the canonical encoding of only the attributes named in `key_names` (in any
/// order; names the item lacks are left out). Equal to [`item_digest`] of an item holding
/// just those attributes.
pub fn key_digest(item: &Item, key_names: &[&str]) -> [u8; 16] {
    let mut attrs: Vec<(&str, &AttributeValue)> = item
        .iter()
        .filter(|(k, _)| key_names.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut buf = Vec::with_capacity(64);
    write_attrs(&mut attrs, &mut buf);
    Md5::digest(&buf).into()
}

/// An order-independent digest of a multiset of item digests: how many were added and
/// their sum (as big-endian integers, modulo 2^128). Digests of parts, computed in any
/// order or in parallel, [`merge`](SetDigest::merge) into the digest of the whole.
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
pub struct SetDigest {
    /// Digests added.
    pub count: u64,
    /// Their sum, wrapping.
    pub sum: u128,
}

impl SetDigest {
    /// Adds one digest (such as an [`item_digest`]).
    pub fn add(&mut self, d: [u8; 16]) {
        self.count += 1;
        self.sum = self.sum.wrapping_add(u128::from_be_bytes(d));
    }

    /// Adds every digest that `other` holds.
    pub fn merge(&mut self, other: SetDigest) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }

    /// 48 hex digits: the count (16) then the sum (32).
    pub fn to_hex(&self) -> String {
        format!("{:016x}{:032x}", self.count, self.sum)
    }
}

/// Appends `n` as LEB128.
fn write_len(mut n: usize, out: &mut Vec<u8>) {
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return;
        }
        out.push(low | 0x80);
    }
}

/// Appends length-prefixed bytes.
fn write_bytes(b: &[u8], out: &mut Vec<u8>) {
    write_len(b.len(), out);
    out.extend_from_slice(b);
}

/// Appends a map's attributes, sorting them by name first.
fn write_attrs(attrs: &mut [(&str, &AttributeValue)], out: &mut Vec<u8>) {
    attrs.sort_unstable_by(|a, b| a.0.cmp(b.0));
    write_len(attrs.len(), out);
    for (name, v) in attrs.iter() {
        write_bytes(name.as_bytes(), out);
        write_value(v, out);
    }
}

/// A number's canonical text, or the text as found if DynamoDB would refuse it.
fn number(n: &str) -> std::borrow::Cow<'_, str> {
    match canonical_number(n) {
        Ok(c) => c.into(),
        Err(_) => n.into(),
    }
}

/// Appends a set's members, sorted.
fn write_set<T: AsRef<[u8]> + Ord>(mut members: Vec<T>, out: &mut Vec<u8>) {
    members.sort_unstable();
    write_len(members.len(), out);
    for m in &members {
        write_bytes(m.as_ref(), out);
    }
}

fn write_value(v: &AttributeValue, out: &mut Vec<u8>) {
    match v {
        AttributeValue::S(s) => {
            out.push(tag::S);
            write_bytes(s.as_bytes(), out);
        }
        AttributeValue::N(n) => {
            out.push(tag::N);
            write_bytes(number(n).as_bytes(), out);
        }
        AttributeValue::B(b) => {
            out.push(tag::B);
            write_bytes(b.as_ref(), out);
        }
        AttributeValue::Ss(ss) => {
            out.push(tag::SS);
            write_set(ss.iter().map(String::as_bytes).collect(), out);
        }
        AttributeValue::Ns(ns) => {
            out.push(tag::NS);
            write_set(
                ns.iter()
                    .map(|n| number(n).into_owned().into_bytes())
                    .collect(),
                out,
            );
        }
        AttributeValue::Bs(bs) => {
            out.push(tag::BS);
            write_set(bs.iter().map(|b| b.as_ref()).collect(), out);
        }
        AttributeValue::M(m) => {
            out.push(tag::M);
            let mut attrs: Vec<(&str, &AttributeValue)> =
                m.iter().map(|(k, v)| (k.as_str(), v)).collect();
            write_attrs(&mut attrs, out);
        }
        AttributeValue::L(l) => {
            out.push(tag::L);
            write_len(l.len(), out);
            for e in l {
                write_value(e, out);
            }
        }
        AttributeValue::Null(b) => {
            out.push(tag::NULL);
            out.push(u8::from(*b));
        }
        AttributeValue::Bool(b) => {
            out.push(tag::BOOL);
            out.push(u8::from(*b));
        }
        _ => out.push(tag::UNKNOWN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::{item, one};
    use crate::item::{connector, dynamodb_json};
    use aws_smithy_types::Blob;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn bytes(item: &Item) -> Vec<u8> {
        let mut out = Vec::new();
        canonical_bytes(item, &mut out);
        out
    }

    fn s(x: &str) -> AttributeValue {
        AttributeValue::S(x.to_string())
    }

    fn strs(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|x| x.to_string()).collect()
    }

    /// The same number spelled differently: `0.DIGITS` times a power of ten, with zeros
    /// appended to the mantissa.
    fn respell_number(n: &str, zeros: usize) -> String {
        let c = canonical_number(n).unwrap();
        let (sign, body) = match c.strip_prefix('-') {
            Some(b) => ("-", b),
            None => ("", &c[..]),
        };
        let point = body.find('.').unwrap_or(body.len());
        let digits: String = body.chars().filter(|&ch| ch != '.').collect();
        format!("{sign}0.{digits}{}E{:+}", "0".repeat(zeros), point as i64)
    }

    /// An equal value: numbers respelled, set members rotated, maps rebuilt.
    fn respell(v: &AttributeValue, salt: usize) -> AttributeValue {
        fn rotate<T: Clone>(v: &[T], by: usize) -> Vec<T> {
            let mut v = v.to_vec();
            if !v.is_empty() {
                let k = by % v.len();
                v.rotate_left(k);
                v.reverse();
            }
            v
        }
        match v {
            AttributeValue::N(n) => AttributeValue::N(respell_number(n, salt % 3)),
            AttributeValue::Ns(ns) => AttributeValue::Ns(
                rotate(ns, salt)
                    .iter()
                    .enumerate()
                    .map(|(i, n)| respell_number(n, (salt + i) % 4))
                    .collect(),
            ),
            AttributeValue::Ss(ss) => AttributeValue::Ss(rotate(ss, salt)),
            AttributeValue::Bs(bs) => AttributeValue::Bs(rotate(bs, salt)),
            AttributeValue::L(l) => {
                AttributeValue::L(l.iter().map(|e| respell(e, salt + 1)).collect())
            }
            AttributeValue::M(m) => AttributeValue::M(respell_map(m, salt + 1)),
            other => other.clone(),
        }
    }

    fn respell_map(
        m: &HashMap<String, AttributeValue>,
        salt: usize,
    ) -> HashMap<String, AttributeValue> {
        let mut entries: Vec<_> = m.iter().collect();
        entries.sort_by(|a, b| b.0.cmp(a.0));
        let mut out = HashMap::new();
        for (k, v) in entries {
            out.insert(k.clone(), respell(v, salt));
        }
        out
    }

    #[test]
    fn numbers_and_sets() {
        let a = HashMap::from([
            ("n".to_string(), AttributeValue::N("1.50".into())),
            (
                "ns".to_string(),
                AttributeValue::Ns(strs(&["10", "-0.5", "3"])),
            ),
            ("ss".to_string(), AttributeValue::Ss(strs(&["b", "a"]))),
        ]);
        let b = HashMap::from([
            ("ss".to_string(), AttributeValue::Ss(strs(&["a", "b"]))),
            (
                "ns".to_string(),
                AttributeValue::Ns(strs(&["3.0", "1e1", "-5E-1"])),
            ),
            ("n".to_string(), AttributeValue::N("15e-1".into())),
        ]);
        assert_eq!(bytes(&a), bytes(&b));
        assert_eq!(item_digest(&a), item_digest(&b));
        // Invalid numbers fall back to their text.
        assert_ne!(
            bytes(&one("n", AttributeValue::N("x".into()))),
            bytes(&one("n", AttributeValue::N("y".into())))
        );
    }

    #[test]
    fn distinguishes_types_and_shapes() {
        let values = [
            s("1"),
            AttributeValue::N("1".into()),
            AttributeValue::B(Blob::new(b"1".to_vec())),
            AttributeValue::Ss(strs(&["1"])),
            AttributeValue::Ns(strs(&["1"])),
            AttributeValue::Bs(vec![Blob::new(b"1".to_vec())]),
            AttributeValue::Ss(strs(&["ab"])),
            AttributeValue::Ss(strs(&["a", "b"])),
            AttributeValue::L(vec![]),
            AttributeValue::M(HashMap::new()),
            AttributeValue::L(vec![s("a"), s("b")]),
            AttributeValue::L(vec![s("b"), s("a")]),
            AttributeValue::Null(true),
            AttributeValue::Bool(true),
            AttributeValue::Bool(false),
            s(""),
        ];
        let encoded: Vec<Vec<u8>> = values.iter().map(|v| bytes(&one("a", v.clone()))).collect();
        for i in 0..encoded.len() {
            for j in 0..i {
                assert_ne!(encoded[i], encoded[j], "{:?} vs {:?}", values[i], values[j]);
            }
        }
        assert_ne!(bytes(&one("a", s("bc"))), bytes(&one("ab", s("c"))));
    }

    #[test]
    fn keys() {
        let item = HashMap::from([
            ("pk".to_string(), s("x")),
            ("sk".to_string(), AttributeValue::N("1.0".into())),
            ("other".to_string(), s("y")),
        ]);
        let keys_only = HashMap::from([
            ("sk".to_string(), AttributeValue::N("1".into())),
            ("pk".to_string(), s("x")),
        ]);
        assert_eq!(key_digest(&item, &["pk", "sk"]), item_digest(&keys_only));
        assert_eq!(key_digest(&item, &["sk", "pk"]), item_digest(&keys_only));
        assert_ne!(key_digest(&item, &["pk"]), item_digest(&keys_only));
        assert_ne!(key_digest(&item, &["pk", "sk"]), item_digest(&item));
    }

    #[test]
    fn set_digest_hex() {
        let mut d = SetDigest::default();
        assert_eq!(d.to_hex(), "0".repeat(48));
        d.add([0xff; 16]);
        d.add([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(d.count, 2);
        assert_eq!(d.sum, 1);
        assert_eq!(d.to_hex(), format!("{:016x}{:032x}", 2, 1));
    }

    proptest! {
        #[test]
        fn invariant_under_respelling(it in item(), salt in 0usize..100) {
            let other = respell_map(&it, salt);
            prop_assert_eq!(bytes(&it), bytes(&other));
            prop_assert_eq!(item_digest(&it), item_digest(&other));
        }

        #[test]
        fn survives_both_codecs(it in item()) {
            let mut line = Vec::new();
            dynamodb_json::encode_line(&it, &mut line);
            prop_assert_eq!(item_digest(&dynamodb_json::decode_line(&line).unwrap()), item_digest(&it));
            line.clear();
            connector::encode_line(&it, &mut line);
            prop_assert_eq!(item_digest(&connector::decode_line(&line).unwrap()), item_digest(&it));
        }

        #[test]
        fn set_digest_order_independent(
            digests in prop::collection::vec(any::<[u8; 16]>(), 0..40),
            split in any::<prop::sample::Index>(),
            salt in any::<usize>(),
        ) {
            let mut forward = SetDigest::default();
            digests.iter().for_each(|d| forward.add(*d));
            let mut shuffled = digests.clone();
            if !shuffled.is_empty() {
                let k = salt % shuffled.len();
                shuffled.rotate_left(k);
                shuffled.reverse();
            }
            let mut backward = SetDigest::default();
            shuffled.iter().for_each(|d| backward.add(*d));
            prop_assert_eq!(forward, backward);
            let at = split.index(digests.len() + 1);
            let (mut left, mut right) = (SetDigest::default(), SetDigest::default());
            digests[..at].iter().for_each(|d| left.add(*d));
            digests[at..].iter().for_each(|d| right.add(*d));
            right.merge(left);
            prop_assert_eq!(right, forward);
            prop_assert_eq!(right.to_hex(), forward.to_hex());
            prop_assert_eq!(forward.count, digests.len() as u64);
        }
    }
}
