//! A table's key, as an item must carry it: each key attribute present, of the key's type
//! (S, N or B), not empty, and within DynamoDB's limits (2,048 bytes for a partition key,
//! 1,024 for a sort key). An import checks every item against its target's key before
//! any write, so an item DynamoDB would refuse ("The provided key element does not match
//! the schema") is named by file and line instead of failing a batch mid-table.

use std::hash::{Hash, Hasher};

use super::json::{write_value, UPPER_KEYS};
use super::number::{already_canonical, canonical_number};
use super::{AttributeValue, Item, ItemError};

/// The longest partition key value DynamoDB takes, in bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// The longest sort key value DynamoDB takes, in bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;

/// The scalar type of a key attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// A string.
    S,
    /// A number.
    N,
    /// Binary.
    B,
}

impl KeyType {
    /// The type from its name in a table's description (`S`, `N`, `B`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "S" => Some(Self::S),
            "N" => Some(Self::N),
            "B" => Some(Self::B),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::S => "S",
            Self::N => "N",
            Self::B => "B",
        }
    }
}

/// One key attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPart {
    /// Its name.
    pub name: String,
    /// Its type.
    pub ty: KeyType,
    /// The partition key (else the sort key).
    pub partition: bool,
}

/// A table's key: its partition key, and its sort key when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeySchema {
    /// The key attributes.
    pub parts: Vec<KeyPart>,
}

impl KeySchema {
    /// The key attribute named `name`, if it is one.
    pub fn part(&self, name: &str) -> Option<&KeyPart> {
        self.parts.iter().find(|p| p.name == name)
    }

    /// Check one key attribute of an item, given by its name, its type key (`S`, `SS`,
    /// `M`...) and its size (bytes of its string or binary): `Ok` when `name` is not a key
    /// attribute.
    pub fn check_attribute(
        &self,
        name: &str,
        type_key: &str,
        size: usize,
    ) -> Result<(), ItemError> {
        let Some(part) = self.part(name) else {
            return Ok(());
        };
        let bad = |message: String| ItemError::BadKey {
            attribute: name.to_string(),
            message,
        };
        if type_key != part.ty.name() {
            return Err(bad(format!(
                "is {type_key}, but the table's {} key is {}",
                part.role(),
                part.ty.name()
            )));
        }
        if size == 0 && part.ty != KeyType::N {
            return Err(bad(format!(
                "is empty, which DynamoDB refuses in a {} key",
                part.role()
            )));
        }
        let max = part.max_bytes();
        if size > max {
            return Err(bad(format!(
                "is {size} bytes, over DynamoDB's {max} for a {} key",
                part.role()
            )));
        }
        Ok(())
    }

    /// Check that `found` names every key attribute (after each was checked with
    /// [`check_attribute`](Self::check_attribute)).
    pub fn check_present(&self, mut found: impl FnMut(&str) -> bool) -> Result<(), ItemError> {
        match self.parts.iter().find(|p| !found(&p.name)) {
            None => Ok(()),
            Some(p) => Err(ItemError::BadKey {
                attribute: p.name.clone(),
                message: format!("is missing: every item needs the table's {} key", p.role()),
            }),
        }
    }

    /// The position of key attribute `name` (0: the partition key), if it is one.
    pub fn position(&self, name: &str) -> Option<usize> {
        self.parts.iter().position(|p| p.name == name)
    }

    /// A digest of an item's key, equal for two items DynamoDB would store under one key
    /// (numbers compared by value): the digest [`KeyDigest`] makes of the same item read
    /// from the wire. `None` when the item lacks a key attribute.
    pub fn item_digest(&self, item: &Item) -> Option<u64> {
        let mut digest = KeyDigest::default();
        let mut wire = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            wire.clear();
            write_value(item.get(&part.name)?, &UPPER_KEYS, &mut wire);
            digest.add(i, &wire);
        }
        Some(digest.finish())
    }

    /// Check an item's key attributes.
    pub fn check_item(&self, item: &Item) -> Result<(), ItemError> {
        for (name, v) in item {
            let (type_key, size) = describe(v);
            self.check_attribute(name, type_key, size)?;
        }
        self.check_present(|n| item.contains_key(n))
    }

    /// Check a key to delete (a change record's keys): exactly the key attributes.
    pub fn check_key(&self, key: &Item) -> Result<(), ItemError> {
        self.check_item(key)?;
        match key.keys().find(|n| self.part(n).is_none()) {
            None => Ok(()),
            Some(extra) => Err(ItemError::BadKey {
                attribute: extra.clone(),
                message: "is not an attribute of the table's key".into(),
            }),
        }
    }
}

/// The digest of a key, built from its values as wire JSON (`{"S":"x"}`, `{"N":"1.0"}`) in
/// any order: numbers by their canonical form, strings and binary as written (which is
/// canonical: escapes as `serde_json` writes them, standard padded base64).
#[derive(Debug, Default, Clone, Copy)]
pub struct KeyDigest {
    parts: [u64; 2],
}

impl KeyDigest {
    /// Add the value of key attribute `position`, as wire JSON.
    pub fn add(&mut self, position: usize, wire: &[u8]) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        match wire
            .strip_prefix(br#"{"N":""#)
            .and_then(|r| r.strip_suffix(br#""}"#))
        {
            Some(n) => {
                let text = std::str::from_utf8(n).unwrap_or_default();
                if already_canonical(text) {
                    // As its canonical String would hash: a String hashes as its str.
                    text.hash(&mut h);
                } else {
                    canonical_number(text)
                        .unwrap_or_else(|_| text.to_string())
                        .hash(&mut h);
                }
            }
            None => wire.hash(&mut h),
        }
        if let Some(slot) = self.parts.get_mut(position) {
            *slot = h.finish();
        }
    }

    /// The key's digest.
    pub fn finish(self) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.parts.hash(&mut h);
        h.finish()
    }
}

impl KeyPart {
    fn role(&self) -> &'static str {
        if self.partition {
            "partition"
        } else {
            "sort"
        }
    }

    fn max_bytes(&self) -> usize {
        if self.partition {
            MAX_PARTITION_KEY_BYTES
        } else {
            MAX_SORT_KEY_BYTES
        }
    }
}

/// A value's type key and, for a string or binary, its size.
fn describe(v: &AttributeValue) -> (&'static str, usize) {
    match v {
        AttributeValue::S(s) => ("S", s.len()),
        AttributeValue::N(n) => ("N", n.len()),
        AttributeValue::B(b) => ("B", b.as_ref().len()),
        AttributeValue::Ss(_) => ("SS", 0),
        AttributeValue::Ns(_) => ("NS", 0),
        AttributeValue::Bs(_) => ("BS", 0),
        AttributeValue::M(_) => ("M", 0),
        AttributeValue::L(_) => ("L", 0),
        AttributeValue::Null(_) => ("NULL", 0),
        AttributeValue::Bool(_) => ("BOOL", 0),
        _ => ("an unknown type", 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::one;
    use aws_smithy_types::Blob;

    fn schema() -> KeySchema {
        crate::item::test_support::id_sk()
    }

    fn message(r: Result<(), ItemError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn an_item_must_carry_the_key_as_the_table_types_it() {
        let k = schema();
        let mut item = one("id", AttributeValue::N("1".into()));
        item.insert("sk".into(), AttributeValue::S("a".into()));
        item.insert("other".into(), AttributeValue::Bool(true));
        assert_eq!(k.check_item(&item), Ok(()));
        let mut wrong = item.clone();
        wrong.insert("id".into(), AttributeValue::S("1".into()));
        assert_eq!(
            message(k.check_item(&wrong)),
            "key attribute \"id\" is S, but the table's partition key is N"
        );
        let mut missing = item.clone();
        missing.remove("sk");
        assert!(message(k.check_item(&missing)).contains("\"sk\" is missing"));
        let mut empty = item.clone();
        empty.insert("sk".into(), AttributeValue::S(String::new()));
        assert!(message(k.check_item(&empty)).contains("is empty"));
        let mut long = item.clone();
        long.insert("sk".into(), AttributeValue::S("x".repeat(1025)));
        assert!(message(k.check_item(&long)).contains("1025 bytes, over DynamoDB's 1024"));
        let binary = KeySchema {
            parts: vec![KeyPart {
                name: "b".into(),
                ty: KeyType::B,
                partition: true,
            }],
        };
        let big = one("b", AttributeValue::B(Blob::new(vec![0; 2049])));
        assert!(message(binary.check_item(&big)).contains("over DynamoDB's 2048"));
        assert_eq!(
            binary.check_item(&one("b", AttributeValue::B(Blob::new(vec![0; 2048])))),
            Ok(())
        );
    }

    #[test]
    fn keys_stored_as_one_have_one_digest() {
        let k = schema();
        let key = |id: &str, sk: &str| {
            let mut item = one("id", AttributeValue::N(id.into()));
            item.insert("sk".into(), AttributeValue::S(sk.into()));
            item.insert("x".into(), AttributeValue::S(id.into()));
            item
        };
        let d = |i: &Item| k.item_digest(i).unwrap();
        assert_eq!(d(&key("1", "a")), d(&key("1.0", "a")));
        assert_eq!(d(&key("10", "a")), d(&key("1E1", "a")));
        assert_ne!(d(&key("1", "a")), d(&key("1", "b")));
        assert_ne!(d(&key("1", "a")), d(&key("2", "a")));
        assert_eq!(
            k.item_digest(&one("id", AttributeValue::N("1".into()))),
            None
        );
    }

    #[test]
    fn a_key_to_delete_is_exactly_the_key() {
        let k = schema();
        let mut key = one("id", AttributeValue::N("1".into()));
        key.insert("sk".into(), AttributeValue::S("a".into()));
        assert_eq!(k.check_key(&key), Ok(()));
        key.insert("x".into(), AttributeValue::S("a".into()));
        assert!(message(k.check_key(&key)).contains("\"x\" is not an attribute of the table's key"));
    }
}
