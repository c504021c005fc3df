//! DynamoDB's rules for an item: its size as DynamoDB counts it, and the checks every
//! reader applies so that a backup never holds an item DynamoDB would refuse.

use std::collections::{HashMap, HashSet};

use super::json::Path;
use super::number::{canonical_number, number_size};
use super::{
    AttributeValue, Item, ItemError, MAX_ITEM_BYTES, MAX_NAME_BYTES, MAX_NESTED_CONTAINERS,
};

/// The item's size by DynamoDB's rules: for every attribute, the UTF-8 length of its
/// name plus the size of its value, where
/// - `S` is its UTF-8 length and `B` its raw byte count;
/// - `N` is about one byte per two significant digits, plus one;
/// - `BOOL` and `NULL` are 1 byte;
/// - `L` and `M` are 3 bytes plus, per element, 1 byte, its value and (for `M`) its name;
/// - sets are the sum of their members.
pub fn item_size(item: &Item) -> usize {
    item.iter()
        .map(|(name, v)| name.len() + value_size(v))
        .sum()
}

/// The size of one value (see [`item_size`]).
fn value_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(ss) => ss.iter().map(String::len).sum(),
        AttributeValue::Ns(ns) => ns.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(bs) => bs.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| k.len() + value_size(v) + 1)
                .sum::<usize>()
        }
        AttributeValue::L(l) => 3 + l.iter().map(|v| value_size(v) + 1).sum::<usize>(),
        AttributeValue::Null(_) | AttributeValue::Bool(_) => 1,
        _ => 1,
    }
}

/// Checks what DynamoDB would check: every number valid ([`canonical_number`]), no
/// empty set, no set holding the same member twice (numbers compared by value), no
/// `NULL` other than `true`, attribute names of at most [`MAX_NAME_BYTES`] bytes (and
/// at least one for the item's own), no
/// attribute nested in more than [`MAX_NESTED_CONTAINERS`] maps and lists, and
/// [`item_size`] at most [`MAX_ITEM_BYTES`].
///
/// Every reader calls this on every item; writers do not.
pub fn validate_item(item: &Item) -> Result<(), ItemError> {
    check_map(item, &Path::Root, 0)?;
    let size = item_size(item);
    if size > MAX_ITEM_BYTES {
        return Err(ItemError::TooLarge { size });
    }
    Ok(())
}

/// A map's attributes, `depth` maps and lists deep (0: the item's own).
fn check_map(
    m: &HashMap<String, AttributeValue>,
    path: &Path,
    depth: usize,
) -> Result<(), ItemError> {
    m.iter().try_for_each(|(name, v)| {
        let at = Path::Name(path, name);
        check_name(name, depth == 0, &at)?;
        check_value(v, &at, depth)
    })
}

/// An attribute name DynamoDB takes: at most [`MAX_NAME_BYTES`] bytes, and for the
/// item's own attributes (`top`) at least one. (A name inside a map may be empty: its
/// documented rule is for attribute names, and a restore must never refuse what a table
/// may hold.)
pub(crate) fn check_name(name: &str, top: bool, path: &Path) -> Result<(), ItemError> {
    if (top && name.is_empty()) || name.len() > MAX_NAME_BYTES {
        return Err(ItemError::BadName {
            attribute: path.render(),
            size: name.len(),
        });
    }
    Ok(())
}

/// The depth of a map's or list's members, if DynamoDB takes it.
pub(crate) fn deeper(depth: usize, path: &Path) -> Result<usize, ItemError> {
    if depth >= MAX_NESTED_CONTAINERS {
        return Err(ItemError::TooDeep {
            attribute: path.render(),
        });
    }
    Ok(depth + 1)
}

fn check_number(n: &str, path: &Path) -> Result<String, ItemError> {
    canonical_number(n).map_err(|e| ItemError::BadNumber {
        attribute: path.render(),
        value: n.to_string(),
        message: e.to_string(),
    })
}

fn check_set<T: Eq + std::hash::Hash>(
    members: impl ExactSizeIterator<Item = T>,
    path: &Path,
) -> Result<(), ItemError> {
    if members.len() == 0 {
        return Err(ItemError::EmptySet {
            attribute: path.render(),
        });
    }
    let mut seen = HashSet::with_capacity(members.len());
    for m in members {
        if !seen.insert(m) {
            return Err(ItemError::DuplicateSetMember {
                attribute: path.render(),
            });
        }
    }
    Ok(())
}

fn check_value(v: &AttributeValue, path: &Path, depth: usize) -> Result<(), ItemError> {
    match v {
        AttributeValue::N(n) => check_number(n, path).map(drop),
        AttributeValue::Ns(ns) => {
            let canonical = ns
                .iter()
                .enumerate()
                .map(|(i, n)| check_number(n, &Path::Index(path, i)))
                .collect::<Result<Vec<_>, _>>()?;
            check_set(canonical.iter(), path)
        }
        AttributeValue::Ss(ss) => check_set(ss.iter(), path),
        AttributeValue::Bs(bs) => check_set(bs.iter().map(|b| b.as_ref()), path),
        AttributeValue::M(m) => check_map(m, path, deeper(depth, path)?),
        AttributeValue::L(l) => {
            let inner = deeper(depth, path)?;
            l.iter()
                .enumerate()
                .try_for_each(|(i, e)| check_value(e, &Path::Index(path, i), inner))
        }
        AttributeValue::Null(true) => Ok(()),
        AttributeValue::Null(false) => Err(path.bad("NULL must be true")),
        AttributeValue::S(_) | AttributeValue::B(_) | AttributeValue::Bool(_) => Ok(()),
        _ => Err(ItemError::UnknownType {
            attribute: path.render(),
            key: "(a type this SDK does not know)".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::{item, one};
    use aws_smithy_types::Blob;
    use proptest::prelude::*;

    fn s(x: &str) -> AttributeValue {
        AttributeValue::S(x.to_string())
    }
    fn n(x: &str) -> AttributeValue {
        AttributeValue::N(x.to_string())
    }
    fn strs(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn sizes() {
        assert_eq!(item_size(&Item::new()), 0);
        assert_eq!(item_size(&one("ab", s("héllo"))), 2 + 6);
        assert_eq!(item_size(&one("a", s(""))), 1);
        assert_eq!(item_size(&one("a", n("12345"))), 1 + 4);
        assert_eq!(item_size(&one("a", n("-0.00100"))), 1 + 2);
        assert_eq!(
            item_size(&one("a", AttributeValue::B(Blob::new(vec![0; 7])))),
            8
        );
        assert_eq!(item_size(&one("a", AttributeValue::Bool(false))), 2);
        assert_eq!(item_size(&one("a", AttributeValue::Null(true))), 2);
        assert_eq!(
            item_size(&one("a", AttributeValue::Ss(strs(&["xy", "z"])))),
            4
        );
        assert_eq!(
            item_size(&one("a", AttributeValue::Ns(strs(&["1", "123"])))),
            1 + 2 + 3
        );
        assert_eq!(
            item_size(&one(
                "a",
                AttributeValue::Bs(vec![Blob::new(vec![1, 2]), Blob::new(vec![3])])
            )),
            4
        );
        assert_eq!(item_size(&one("a", AttributeValue::L(vec![]))), 4);
        assert_eq!(
            item_size(&one("a", AttributeValue::L(vec![s("xy"), s("")]))),
            1 + 3 + 3 + 1
        );
        assert_eq!(
            item_size(&one("a", AttributeValue::M(one("bc", s("xyz"))))),
            1 + 3 + 2 + 3 + 1
        );
    }

    #[test]
    fn size_limit() {
        // name (1 byte) + string fills exactly 400 KB.
        let at_limit = one("a", s(&"x".repeat(MAX_ITEM_BYTES - 1)));
        assert_eq!(item_size(&at_limit), MAX_ITEM_BYTES);
        assert_eq!(validate_item(&at_limit), Ok(()));
        let over = one("ab", s(&"x".repeat(MAX_ITEM_BYTES - 1)));
        assert_eq!(
            validate_item(&over),
            Err(ItemError::TooLarge {
                size: MAX_ITEM_BYTES + 1
            })
        );
    }

    #[test]
    fn bad_numbers() {
        let item = one(
            "a",
            AttributeValue::M(one("b", AttributeValue::L(vec![s("x"), n("1e200")]))),
        );
        match validate_item(&item) {
            Err(ItemError::BadNumber {
                attribute, value, ..
            }) => {
                assert_eq!(attribute, "a.b[1]");
                assert_eq!(value, "1e200");
            }
            other => panic!("{other:?}"),
        }
        let item = one("ns", AttributeValue::Ns(strs(&["1", "x"])));
        assert!(matches!(
            validate_item(&item),
            Err(ItemError::BadNumber { attribute, .. }) if attribute == "ns[1]"
        ));
        assert!(validate_item(&one("a", n(&"1".repeat(39)))).is_err());
        assert!(validate_item(&one("a", n(""))).is_err());
    }

    #[test]
    fn empty_sets() {
        for v in [
            AttributeValue::Ss(vec![]),
            AttributeValue::Ns(vec![]),
            AttributeValue::Bs(vec![]),
        ] {
            let item = one("x", AttributeValue::L(vec![v]));
            assert_eq!(
                validate_item(&item),
                Err(ItemError::EmptySet {
                    attribute: "x[0]".into()
                })
            );
        }
    }

    #[test]
    fn duplicate_members() {
        for v in [
            AttributeValue::Ss(strs(&["a", "b", "a"])),
            AttributeValue::Ns(strs(&["1.50", "2", "15e-1"])),
            AttributeValue::Ns(strs(&["0", "-0"])),
            AttributeValue::Bs(vec![Blob::new(vec![0]), Blob::new(vec![0])]),
        ] {
            assert_eq!(
                validate_item(&one("x", v)),
                Err(ItemError::DuplicateSetMember {
                    attribute: "x".into()
                })
            );
        }
        // Distinct members, including the empty string and empty binary.
        assert_eq!(
            validate_item(&one("x", AttributeValue::Ss(strs(&["", "a"])))),
            Ok(())
        );
        assert_eq!(
            validate_item(&one("x", AttributeValue::Ns(strs(&["1.5", "1.05"])))),
            Ok(())
        );
    }

    #[test]
    fn null_must_be_true() {
        assert!(matches!(
            validate_item(&one("x", AttributeValue::Null(false))),
            Err(ItemError::BadValue { attribute, .. }) if attribute == "x"
        ));
    }

    /// An attribute `a` wrapped in `maps` maps, or `lists` lists.
    fn nested(maps: usize, lists: usize) -> Item {
        let mut v = s("leaf");
        for _ in 0..maps {
            v = AttributeValue::M(one("a", v));
        }
        for _ in 0..lists {
            v = AttributeValue::L(vec![v]);
        }
        one("a", v)
    }

    #[test]
    fn nesting_stops_where_dynamodb_stops() {
        // Real DynamoDB takes an attribute wrapped in 31 maps and refuses 32 (32 levels,
        // the top-level attribute counted as the first).
        assert_eq!(validate_item(&nested(31, 0)), Ok(()));
        assert_eq!(validate_item(&nested(20, 11)), Ok(()));
        for (maps, lists) in [(32, 0), (0, 32), (16, 16), (200, 0)] {
            assert!(
                matches!(
                    validate_item(&nested(maps, lists)),
                    Err(ItemError::TooDeep { .. })
                ),
                "{maps} maps, {lists} lists"
            );
        }
    }

    #[test]
    fn names_are_one_byte_to_64_kb() {
        assert_eq!(validate_item(&one(&"n".repeat(65_535), s("x"))), Ok(()));
        for name in [String::new(), "n".repeat(70_000)] {
            let e = validate_item(&one(&name, s("x"))).unwrap_err();
            assert_eq!(
                e,
                ItemError::BadName {
                    attribute: name.clone(),
                    size: name.len()
                }
            );
            // The message never copies a long name whole.
            assert!(e.to_string().len() < 200, "{e}");
        }
        let inner = one("a", AttributeValue::M(one("", s("x"))));
        assert_eq!(validate_item(&inner), Ok(()));
        let long = one("a", AttributeValue::M(one(&"n".repeat(65_536), s("x"))));
        assert!(matches!(
            validate_item(&long),
            Err(ItemError::BadName { size: 65_536, .. })
        ));
    }

    proptest! {
        #[test]
        fn generated_items_are_valid(it in item()) {
            prop_assert_eq!(validate_item(&it), Ok(()));
        }
    }
}
