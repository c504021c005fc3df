//! emr-dynamodb-connector lines, as its DynamoDBExport/DynamoDBImport tools write and
//! read them: `{"id":{"s":"x"}}`, with the AWS SDK for Java v1's type keys
//! (`s n b sS nS bS m l nULL bOOL`).

use super::json::{self, Path, CONNECTOR_KEYS};
use super::validate::validate_item;
use super::{Item, ItemError};

/// Appends `{"name":{"s":"x"},...}\n` for `item`: attribute names sorted, SDK-v1 type
/// keys, binary as standard padded base64, numbers as their text. Does not validate.
pub fn encode_line(item: &Item, out: &mut Vec<u8>) {
    json::write_map(item, &CONNECTOR_KEYS, out);
    out.push(b'\n');
}

/// Reads one connector line (a trailing `\n` or `\r\n` is fine). Type keys may be in any
/// letter case. The item is checked with [`validate_item`].
pub fn decode_line(line: &[u8]) -> Result<Item, ItemError> {
    match json::parse(line)? {
        serde_json::Value::Object(attrs) => {
            let item = json::read_map(&attrs, &Path::Root)?;
            validate_item(&item)?;
            Ok(item)
        }
        _ => Err(ItemError::Shape(
            "expected a JSON object such as {\"id\":{\"s\":\"x\"}}".to_string(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::test_support::{item, one, splits_in_line_readers};
    use crate::item::AttributeValue;
    use aws_smithy_types::Blob;
    use proptest::prelude::*;

    fn line(item: &Item) -> String {
        let mut out = Vec::new();
        encode_line(item, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn err(line: &str) -> ItemError {
        decode_line(line.as_bytes()).unwrap_err()
    }

    #[test]
    fn documented_example() {
        let text = r#"{"id":{"s":"Seattle"},"scores":{"nS":["100","30"]},"price":{"n":"12.50"},"ok":{"bOOL":true},"gone":{"nULL":true},"blob":{"b":"aGk="},"blobs":{"bS":["AAE="]},"tags":{"sS":["a"]},"list":{"l":[{"s":"x"}]},"map":{"m":{"k":{"s":"v"}}}}"#;
        let item = decode_line(format!("{text}\r\n").as_bytes()).unwrap();
        assert_eq!(item["id"], AttributeValue::S("Seattle".into()));
        assert_eq!(
            item["scores"],
            AttributeValue::Ns(vec!["100".into(), "30".into()])
        );
        assert_eq!(item["price"], AttributeValue::N("12.50".into()));
        assert_eq!(item["ok"], AttributeValue::Bool(true));
        assert_eq!(item["gone"], AttributeValue::Null(true));
        assert_eq!(item["blob"], AttributeValue::B(Blob::new(b"hi".to_vec())));
        assert_eq!(
            item["blobs"],
            AttributeValue::Bs(vec![Blob::new(vec![0, 1])])
        );
        assert_eq!(item["tags"], AttributeValue::Ss(vec!["a".into()]));
        assert_eq!(
            item["list"],
            AttributeValue::L(vec![AttributeValue::S("x".into())])
        );
        assert_eq!(
            item["map"],
            AttributeValue::M(one("k", AttributeValue::S("v".into())))
        );
        assert_eq!(
            line(&item),
            r#"{"blob":{"b":"aGk="},"blobs":{"bS":["AAE="]},"gone":{"nULL":true},"id":{"s":"Seattle"},"list":{"l":[{"s":"x"}]},"map":{"m":{"k":{"s":"v"}}},"ok":{"bOOL":true},"price":{"n":"12.50"},"scores":{"nS":["100","30"]},"tags":{"sS":["a"]}}"#.to_string() + "\n"
        );
    }

    #[test]
    fn null_as_sdk_v1_writes_it() {
        // The connector 4.x (AWS SDK for Java v1 reflection) spells NULL `nULLValue`.
        let item =
            decode_line(br#"{"a":{"nULLValue":true},"b":{"l":[{"NULLVALUE":true}]}}"#).unwrap();
        assert_eq!(item["a"], AttributeValue::Null(true));
        assert_eq!(
            item["b"],
            AttributeValue::L(vec![AttributeValue::Null(true)])
        );
        assert!(matches!(
            err(r#"{"a":{"nULLValue":false}}"#),
            ItemError::BadValue { .. }
        ));
    }

    #[test]
    fn upper_case_keys_accepted() {
        let item = decode_line(br#"{"a":{"S":"x"},"b":{"NULL":true},"c":{"SS":["y"]}}"#).unwrap();
        assert_eq!(item.len(), 3);
    }

    #[test]
    fn errors() {
        assert!(matches!(err("{"), ItemError::Json(_)));
        assert!(matches!(err("\"x\""), ItemError::Shape(_)));
        assert!(matches!(err("[{\"s\":\"x\"}]"), ItemError::Shape(_)));
        assert_eq!(
            err(r#"{"a":{"m":{"b":{"q":"1"}}}}"#),
            ItemError::UnknownType {
                attribute: "a.b".into(),
                key: "q".into()
            }
        );
        for bad in [
            r#"{"a":{}}"#,
            r#"{"a":{"s":"x","n":"1"}}"#,
            r#"{"a":{"n":12}}"#,
            r#"{"a":{"s":true}}"#,
            r#"{"a":{"b":"***"}}"#,
            r#"{"a":{"nULL":false}}"#,
            r#"{"a":{"bOOL":1}}"#,
        ] {
            assert!(
                matches!(err(bad), ItemError::BadValue { ref attribute, .. } if attribute == "a"),
                "{bad}"
            );
        }
        assert_eq!(
            err(r#"{"a":{"bS":[]}}"#),
            ItemError::EmptySet {
                attribute: "a".into()
            }
        );
        assert_eq!(
            err(r#"{"a":{"sS":["x","x"]}}"#),
            ItemError::DuplicateSetMember {
                attribute: "a".into()
            }
        );
        assert!(
            matches!(err(r#"{"a":{"l":[{"n":"1e999"}]}}"#), ItemError::BadNumber { ref attribute, .. } if attribute == "a[0]")
        );
    }

    proptest! {
        #[test]
        fn round_trip(it in item()) {
            let mut out = Vec::new();
            encode_line(&it, &mut out);
            prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
            prop_assert!(!splits_in_line_readers(&out), "one line for every line reader");
            prop_assert_eq!(decode_line(&out).unwrap(), it);
        }
    }
}
