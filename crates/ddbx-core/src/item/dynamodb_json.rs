//! DynamoDB JSON lines as AWS "Export to S3" writes them and "Import from S3" reads them:
//! `{"Item":{"id":{"S":"x"}}}`, with the DynamoDB API's upper-case type keys.

use super::json::{self, Path, UPPER_KEYS};
use super::validate::validate_item;
use super::{check_change_keys, AttributeValue, Change, Item, ItemError};

/// Appends `{"Item":{...}}\n` for `item`: attribute names sorted (so equal items give
/// equal lines), type keys `S N B SS NS BS M L NULL BOOL`, binary as standard padded
/// base64, numbers as their text. Does not validate.
pub fn encode_line(item: &Item, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"Item\":");
    json::write_map(item, &UPPER_KEYS, out);
    out.extend_from_slice(b"}\n");
}

/// Reads one `{"Item":{...}}` line (a trailing `\n` or `\r\n` is fine). Type keys may be
/// in any letter case. The item is checked with [`validate_item`].
pub fn decode_line(line: &[u8]) -> Result<Item, ItemError> {
    let v = json::parse(line)?;
    let serde_json::Value::Object(top) = &v else {
        return Err(ItemError::Shape(
            "expected a JSON object such as {\"Item\":{...}}".to_string(),
        ));
    };
    let attrs = match top.get("Item") {
        Some(serde_json::Value::Object(attrs)) if top.len() == 1 => attrs,
        Some(serde_json::Value::Object(_)) => {
            return Err(ItemError::Shape(format!(
                "expected only the key \"Item\", found {}",
                keys(top)
            )))
        }
        Some(_) => {
            return Err(ItemError::Shape(
                "\"Item\" must be a JSON object".to_string(),
            ))
        }
        None => {
            return Err(ItemError::Shape(format!(
                "expected {{\"Item\":{{...}}}}, found the keys {}",
                keys(top)
            )))
        }
    };
    let item = json::read_map(attrs, &Path::Root)?;
    validate_item(&item)?;
    Ok(item)
}

/// Reads one line of an incremental export:
/// `{"Metadata":{"WriteTimestampMicros":{"N":"..."}},"Keys":{...},"OldImage":{...},"NewImage":{...}}`
/// (no `NewImage`: the item was deleted; `OldImage` only under `NEW_AND_OLD_IMAGES`). The
/// images are checked with [`validate_item`], and the keys must be the new image's.
pub fn decode_change(line: &[u8]) -> Result<Change, ItemError> {
    let v = json::parse(line)?;
    let serde_json::Value::Object(top) = &v else {
        return Err(ItemError::Shape(
            "expected a JSON object such as {\"Keys\":{...},\"NewImage\":{...}}".to_string(),
        ));
    };
    if let Some(other) = top
        .keys()
        .find(|k| !matches!(k.as_str(), "Metadata" | "Keys" | "OldImage" | "NewImage"))
    {
        return Err(ItemError::Shape(format!(
            "an incremental export's line has Metadata, Keys, OldImage and NewImage, found {other:?} (the keys {})",
            keys(top)
        )));
    }
    let image = |name: &str| -> Result<Option<Item>, ItemError> {
        match top.get(name) {
            None => Ok(None),
            Some(serde_json::Value::Object(m)) => {
                let item = json::read_map(m, &Path::Root)?;
                validate_item(&item)?;
                Ok(Some(item))
            }
            Some(_) => Err(ItemError::Shape(format!(
                "\"{name}\" must be a JSON object"
            ))),
        }
    };
    let keys = match top.get("Keys") {
        Some(serde_json::Value::Object(m)) => json::read_map(m, &Path::Root)?,
        _ => {
            return Err(ItemError::Shape(format!(
            "expected {{\"Keys\":{{...}}, ...}} (an incremental export's line), found the keys {}",
            keys(top)
        )))
        }
    };
    image("OldImage")?;
    let new_image = image("NewImage")?;
    check_change_keys(&keys, new_image.as_ref())?;
    let write_micros = top
        .get("Metadata")
        .and_then(|m| m.get("WriteTimestampMicros"))
        .and_then(|t| t.get("N").or(Some(t)))
        .and_then(|n| match n {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_u64(),
            _ => None,
        });
    Ok(Change {
        keys,
        new_image,
        write_micros,
    })
}

/// Appends an incremental export's line for `change` (`NEW_IMAGE` view: no old image), as
/// AWS writes them. Does not validate.
pub fn encode_change(change: &Change, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{");
    if let Some(t) = change.write_micros {
        out.extend_from_slice(
            format!("\"Metadata\":{{\"WriteTimestampMicros\":{{\"N\":\"{t}\"}}}},").as_bytes(),
        );
    }
    out.extend_from_slice(b"\"Keys\":");
    json::write_map(&change.keys, &UPPER_KEYS, out);
    if let Some(image) = &change.new_image {
        out.extend_from_slice(b",\"NewImage\":");
        json::write_map(image, &UPPER_KEYS, out);
    }
    out.extend_from_slice(b"}\n");
}

/// The keys of a JSON object, for messages.
fn keys(m: &serde_json::Map<String, serde_json::Value>) -> String {
    let names: Vec<String> = m.keys().map(|k| format!("{k:?}")).collect();
    format!("[{}]", names.join(", "))
}

/// Appends one value as a DynamoDB JSON type object, such as `{"S":"x"}` or
/// `{"M":{"k":{"N":"1"}}}` (used for keys elsewhere). Does not validate.
pub fn encode_value(v: &AttributeValue, out: &mut Vec<u8>) {
    json::write_value(v, &UPPER_KEYS, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::{item, one, splits_in_line_readers};
    use aws_smithy_types::Blob;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn s(x: &str) -> AttributeValue {
        AttributeValue::S(x.to_string())
    }

    fn line(item: &Item) -> String {
        let mut out = Vec::new();
        encode_line(item, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn err(line: &str) -> ItemError {
        decode_line(line.as_bytes()).unwrap_err()
    }

    fn bad_at(line: &str) -> String {
        match err(line) {
            ItemError::BadValue { attribute, .. } => attribute,
            other => panic!("{line}: expected BadValue, got {other:?}"),
        }
    }

    #[test]
    fn documented_example() {
        let text = r#"{"Item":{"Id":{"N":"103"},"Tags":{"SS":["a","b"]},"Ok":{"BOOL":false},"Blob":{"B":"aGk="},"Gone":{"NULL":true},"L":{"L":[{"S":"x"}]},"M":{"M":{"k":{"S":"v"}}}}}"#;
        let item = decode_line(text.as_bytes()).unwrap();
        assert_eq!(item["Id"], AttributeValue::N("103".into()));
        assert_eq!(
            item["Tags"],
            AttributeValue::Ss(vec!["a".into(), "b".into()])
        );
        assert_eq!(item["Ok"], AttributeValue::Bool(false));
        assert_eq!(item["Blob"], AttributeValue::B(Blob::new(b"hi".to_vec())));
        assert_eq!(item["Gone"], AttributeValue::Null(true));
        assert_eq!(item["L"], AttributeValue::L(vec![s("x")]));
        assert_eq!(item["M"], AttributeValue::M(one("k", s("v"))));
        assert_eq!(
            line(&item),
            r#"{"Item":{"Blob":{"B":"aGk="},"Gone":{"NULL":true},"Id":{"N":"103"},"L":{"L":[{"S":"x"}]},"M":{"M":{"k":{"S":"v"}}},"Ok":{"BOOL":false},"Tags":{"SS":["a","b"]}}}"#.to_string() + "\n"
        );
    }

    #[test]
    fn line_ends_and_case() {
        let want = one("a", s("x"));
        for text in [
            "{\"Item\":{\"a\":{\"S\":\"x\"}}}",
            "{\"Item\":{\"a\":{\"S\":\"x\"}}}\n",
            "{\"Item\":{\"a\":{\"S\":\"x\"}}}\r\n",
            "{\"Item\":{\"a\":{\"s\":\"x\"}}}\n",
        ] {
            assert_eq!(decode_line(text.as_bytes()).unwrap(), want, "{text:?}");
        }
        let item = decode_line(
            br#"{"Item":{"a":{"Ss":["x"]},"b":{"bOOl":true},"c":{"nuLL":true},"d":{"ns":["1"]},"e":{"bs":["AA=="]},"f":{"m":{}},"g":{"l":[]}}}"#,
        )
        .unwrap();
        assert_eq!(item.len(), 7);
        assert_eq!(item["g"], AttributeValue::L(vec![]));
    }

    #[test]
    fn escapes_strings() {
        let item = one(
            "q\"\\\n\u{1}é\u{85}",
            s("\u{0}\t\"\\/\u{7f}\u{2028}😀\u{2029}"),
        );
        let text = line(&item);
        assert!(text.ends_with("}}\n") && text.matches('\n').count() == 1);
        // Valid JSON either way, but Python's splitlines() would cut the line there.
        assert!(text.contains(r"\u2028") && text.contains(r"\u2029") && text.contains(r"\u0085"));
        assert!(!splits_in_line_readers(text.as_bytes()));
        assert_eq!(decode_line(text.as_bytes()).unwrap(), item);
    }

    #[test]
    fn every_byte_and_empty_values() {
        let all: Vec<u8> = (0..=255).collect();
        let item = HashMap::from([
            ("b".to_string(), AttributeValue::B(Blob::new(all.clone()))),
            ("e".to_string(), AttributeValue::B(Blob::new(vec![]))),
            ("s".to_string(), s("")),
            ("m".to_string(), AttributeValue::M(one("", s("empty name")))),
        ]);
        let text = line(&item);
        assert!(text.contains(r#""e":{"B":""}"#));
        assert_eq!(decode_line(text.as_bytes()).unwrap(), item);
    }

    #[test]
    fn deep_nesting() {
        // As deep as DynamoDB takes: 31 maps and lists around the top-level attribute.
        let mut v = s("bottom");
        for i in 0..31 {
            v = if i % 2 == 0 {
                AttributeValue::L(vec![v])
            } else {
                AttributeValue::M(one("m", v))
            };
        }
        let item = one("deep", v);
        assert_eq!(decode_line(line(&item).as_bytes()).unwrap(), item);
    }

    #[test]
    fn numbers_kept_as_written() {
        let n38 = format!("-{}.{}E-100", "9".repeat(20), "1".repeat(18));
        let item = one("n", AttributeValue::N(n38.clone()));
        assert_eq!(decode_line(line(&item).as_bytes()).unwrap(), item);
        let e = err(r#"{"Item":{"n":{"N":"1E+126"}}}"#);
        assert!(
            matches!(e, ItemError::BadNumber { ref attribute, ref value, .. } if attribute == "n" && value == "1E+126")
        );
    }

    #[test]
    fn near_item_limit() {
        let big = one("a", s(&"x".repeat(crate::item::MAX_ITEM_BYTES - 1)));
        assert_eq!(decode_line(line(&big).as_bytes()).unwrap(), big);
        let over = one("ab", s(&"x".repeat(crate::item::MAX_ITEM_BYTES - 1)));
        assert!(matches!(
            decode_line(line(&over).as_bytes()),
            Err(ItemError::TooLarge { .. })
        ));
    }

    #[test]
    fn incremental_lines_read_as_puts_and_deletes() {
        let put = r#"{"Metadata":{"WriteTimestampMicros":{"N":"1680109764000000"}},"Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"},"v":{"N":"1"}},"NewImage":{"pk":{"S":"a"},"v":{"N":"2"}}}"#;
        let c = decode_change(put.as_bytes()).unwrap();
        assert_eq!(c.write_micros, Some(1_680_109_764_000_000));
        assert_eq!(
            c.clone().into_record(),
            crate::item::Record::Put(HashMap::from([
                ("pk".to_string(), s("a")),
                ("v".to_string(), AttributeValue::N("2".into()))
            ]))
        );
        let del = r#"{"Metadata":{"WriteTimestampMicros":{"N":"1"}},"Keys":{"pk":{"S":"a"}},"OldImage":{"pk":{"S":"a"}}}"#;
        assert_eq!(
            decode_change(del.as_bytes()).unwrap().into_record(),
            crate::item::Record::Delete(one("pk", s("a")))
        );
        // Not change lines: a full export's line, keys that disagree, no keys.
        for bad in [
            r#"{"Item":{"pk":{"S":"a"}}}"#,
            r#"{"Keys":{"pk":{"S":"a"}},"NewImage":{"pk":{"S":"b"}}}"#,
            r#"{"NewImage":{"pk":{"S":"b"}}}"#,
            r#"{"Keys":{}}"#,
            r#"{"Keys":{"pk":{"S":"a"}},"NewImage":[]}"#,
        ] {
            assert!(decode_change(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn change_lines_round_trip(image in item(), deleted in any::<bool>(), t in any::<u64>()) {
            let mut image = image;
            image.insert("pk".into(), s("key"));
            let change = Change {
                keys: one("pk", s("key")),
                new_image: (!deleted).then_some(image),
                write_micros: Some(t),
            };
            let mut out = Vec::new();
            encode_change(&change, &mut out);
            prop_assert_eq!(decode_change(&out).unwrap(), change);
        }
    }

    #[test]
    fn errors() {
        assert!(matches!(err("{\"Item\":"), ItemError::Json(_)));
        assert!(matches!(err(""), ItemError::Json(_)));
        assert!(matches!(
            decode_line(b"{\"Item\":{\"a\":{\"S\":\"\xff\"}}}"),
            Err(ItemError::Json(_))
        ));
        assert!(matches!(err("[]"), ItemError::Shape(_)));
        assert!(matches!(err("{}"), ItemError::Shape(_)));
        assert!(matches!(err(r#"{"a":{"S":"x"}}"#), ItemError::Shape(_)));
        assert!(matches!(err(r#"{"Item":[]}"#), ItemError::Shape(_)));
        assert!(matches!(
            err(r#"{"Item":{},"Other":1}"#),
            ItemError::Shape(_)
        ));
        assert!(matches!(
            err(r#"{"Keys":{},"NewImage":{}}"#),
            ItemError::Shape(_)
        ));
        assert_eq!(
            err(r#"{"Item":{"a":{"M":{"b":{"X":"1"}}}}}"#),
            ItemError::UnknownType {
                attribute: "a.b".into(),
                key: "X".into()
            }
        );
        assert!(matches!(
            err(r#"{"Item":{"a":{"S ":"1"}}}"#),
            ItemError::UnknownType { .. }
        ));
        assert_eq!(bad_at(r#"{"Item":{"a":{}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"S":"x","N":"1"}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":"x"}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"N":1}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"S":1}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"S":null}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"B":"not base64!"}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"B":5}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"BS":["AA==","%%"]}}}"#), "a[1]");
        assert_eq!(bad_at(r#"{"Item":{"a":{"SS":"x"}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"SS":["x",1]}}}"#), "a[1]");
        assert_eq!(bad_at(r#"{"Item":{"a":{"NS":[1]}}}"#), "a[0]");
        assert_eq!(bad_at(r#"{"Item":{"a":{"NULL":false}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"NULL":"true"}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"BOOL":"true"}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"BOOL":null}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"M":[]}}}"#), "a");
        assert_eq!(bad_at(r#"{"Item":{"a":{"L":{}}}}"#), "a");
        assert_eq!(
            bad_at(r#"{"Item":{"a":{"L":[{"S":"x"},{"M":{"b":{"L":[1]}}}]}}}"#),
            "a[1].b[0]"
        );
        assert_eq!(
            err(r#"{"Item":{"a":{"SS":[]}}}"#),
            ItemError::EmptySet {
                attribute: "a".into()
            }
        );
        assert_eq!(
            err(r#"{"Item":{"a":{"NS":["1","1.0"]}}}"#),
            ItemError::DuplicateSetMember {
                attribute: "a".into()
            }
        );
        assert!(matches!(
            err(r#"{"Item":{"a":{"N":"abc"}}}"#),
            ItemError::BadNumber { .. }
        ));
    }

    #[test]
    fn encode_value_form() {
        let mut out = Vec::new();
        encode_value(&s("x"), &mut out);
        assert_eq!(out, br#"{"S":"x"}"#);
        out.clear();
        encode_value(&AttributeValue::Ns(vec!["1".into(), "2".into()]), &mut out);
        assert_eq!(out, br#"{"NS":["1","2"]}"#);
    }

    proptest! {
        #[test]
        fn round_trip(it in item()) {
            let mut out = Vec::new();
            encode_line(&it, &mut out);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(!splits_in_line_readers(&out), "one line for every line reader");
            prop_assert_eq!(decode_line(&out).unwrap(), it.clone());
            // Deterministic: the same item encodes the same way after a round trip.
            let mut again = Vec::new();
            encode_line(&decode_line(&out).unwrap(), &mut again);
            prop_assert_eq!(out, again);
        }
    }
}
