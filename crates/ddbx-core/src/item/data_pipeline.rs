//! AWS Data Pipeline (Hive) export lines, read only: attributes separated by `\u{2}`,
//! each name separated from its JSON type object (connector-style keys, any case) by
//! `\u{3}`: `id\u{3}{"s":"x"}\u{2}n\u{3}{"n":"1"}`.

use std::collections::hash_map::Entry;

use super::json::{self, Path};
use super::validate::validate_item;
use super::{Item, ItemError};

/// Separates attributes.
const ATTRIBUTE_SEPARATOR: u8 = 0x02;
/// Separates a name from its value.
const NAME_SEPARATOR: u8 = 0x03;

/// Reads one Data Pipeline line (a trailing `\n` or `\r\n` is fine). The item is
/// checked with [`validate_item`]; a name given twice is refused.
pub fn decode_line(line: &[u8]) -> Result<Item, ItemError> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let mut item = Item::new();
    for (i, field) in line.split(|&b| b == ATTRIBUTE_SEPARATOR).enumerate() {
        let Some(at) = field.iter().position(|&b| b == NAME_SEPARATOR) else {
            return Err(ItemError::Shape(format!(
                "attribute {} has no \\u0003 between its name and value",
                i + 1
            )));
        };
        let name = std::str::from_utf8(&field[..at]).map_err(|_| {
            ItemError::Shape(format!("attribute {} has a name that is not UTF-8", i + 1))
        })?;
        let value = json::parse(&field[at + 1..])
            .map_err(|e| ItemError::Json(format!("attribute {name:?}: {e}")))?;
        let value = json::read_value(&value, &Path::Name(&Path::Root, name))?;
        match item.entry(name.to_string()) {
            Entry::Occupied(_) => {
                return Err(ItemError::Shape(format!(
                    "attribute {name:?} appears twice"
                )))
            }
            Entry::Vacant(slot) => {
                slot.insert(value);
            }
        }
    }
    validate_item(&item)?;
    Ok(item)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::item;
    use crate::item::{connector, AttributeValue};
    use proptest::prelude::*;

    fn err(line: &str) -> ItemError {
        decode_line(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn documented_example() {
        let item = decode_line(
            "id\u{3}{\"s\":\"Seattle\"}\u{2}scores\u{3}{\"nS\":[\"100\",\"30\",\"45\"]}\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(item.len(), 2);
        assert_eq!(item["id"], AttributeValue::S("Seattle".into()));
        assert_eq!(
            item["scores"],
            AttributeValue::Ns(vec!["100".into(), "30".into(), "45".into()])
        );
    }

    #[test]
    fn any_case_and_nesting() {
        let item = decode_line(
            "a\u{3}{\"S\":\"x\"}\u{2}b\u{3}{\"m\":{\"c\":{\"l\":[{\"bOOL\":true},{\"nuLL\":true}]}}}\r\n".as_bytes(),
        )
        .unwrap();
        assert_eq!(item["a"], AttributeValue::S("x".into()));
        assert!(matches!(item["b"], AttributeValue::M(_)));
    }

    #[test]
    fn null_as_sdk_v1_writes_it() {
        let item =
            decode_line("a\u{3}{\"nULLValue\":true}\u{2}b\u{3}{\"s\":\"x\"}\n".as_bytes()).unwrap();
        assert_eq!(item["a"], AttributeValue::Null(true));
    }

    #[test]
    fn errors() {
        assert!(matches!(err(""), ItemError::Shape(_)));
        assert!(matches!(err("id{\"s\":\"x\"}"), ItemError::Shape(_)));
        assert!(matches!(
            err("a\u{3}{\"s\":\"x\"}\u{2}"),
            ItemError::Shape(_)
        ));
        assert!(matches!(
            err("a\u{3}{\"s\":\"x\"}\u{2}a\u{3}{\"s\":\"y\"}"),
            ItemError::Shape(_)
        ));
        assert!(matches!(
            decode_line(b"\xff\x03{\"s\":\"x\"}"),
            Err(ItemError::Shape(_))
        ));
        assert!(matches!(err("a\u{3}{\"s\":"), ItemError::Json(m) if m.contains("\"a\"")));
        assert_eq!(
            err("a\u{3}{\"x\":\"1\"}"),
            ItemError::UnknownType {
                attribute: "a".into(),
                key: "x".into()
            }
        );
        assert!(matches!(err("a\u{3}{\"n\":5}"), ItemError::BadValue { .. }));
        assert!(matches!(
            err("a\u{3}{\"n\":\"5x\"}"),
            ItemError::BadNumber { .. }
        ));
        assert!(matches!(
            err("a\u{3}{\"sS\":[]}"),
            ItemError::EmptySet { .. }
        ));
    }

    proptest! {
        #[test]
        fn reads_connector_values(it in item()) {
            // Names with the separators cannot be written in this format.
            let it: Item = it
                .into_iter()
                .filter(|(k, _)| !k.contains(['\u{2}', '\u{3}']))
                .collect();
            prop_assume!(!it.is_empty());
            let mut line = Vec::new();
            for (i, (name, v)) in it.iter().enumerate() {
                if i > 0 {
                    line.push(ATTRIBUTE_SEPARATOR);
                }
                line.extend_from_slice(name.as_bytes());
                line.push(NAME_SEPARATOR);
                let mut one = Vec::new();
                connector::encode_line(&crate::item::test_support::one("x", v.clone()), &mut one);
                // {"x":VALUE}\n -> VALUE
                line.extend_from_slice(&one[5..one.len() - 2]);
            }
            prop_assert_eq!(decode_line(&line).unwrap(), it);
        }
    }
}
