//! The emr-dynamodb-connector's item codec, as the EMR stand-in's steps use it. Written
//! from the connector's source (awslabs/emr-dynamodb-connector 5.x, `emr-dynamodb-hadoop`:
//! `AttributeValueSerializer`, `AttributeValueDeserializer`, `DynamoDBItemWritable`; and
//! `emr-dynamodb-hive`: `HiveDynamoDBItemType`), not from ddbx's code, so that what ddbx
//! writes for the connector, and reads of it, is checked by something it did not write.
//!
//! - A value is one JSON object with one key in the AWS SDK v1's field spelling
//!   (`s n b sS nS bS m l nULL bOOL`); N and NS are strings, B and BS standard padded
//!   base64, NULL and BOOL booleans.
//! - Reading matches the key case-insensitively and takes the first key it knows; an
//!   empty list or map (at any depth) is not taken (`!jsonArray.isEmpty()`,
//!   `jsonMap.size() != 0`) and falls through to an AttributeValue with no type, which
//!   DynamoDB refuses: such items cannot be written by the connector.
//! - Hive's item column is a map of attribute name to that JSON; in Hive's text files an
//!   attribute is `name\u{3}json` and attributes are joined by `\u{2}`, names raw.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use serde_json::{json, Map, Value};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `AttributeValueSerializer`: one value as the connector's JSON.
pub fn serialize(v: &AttributeValue) -> Value {
    match v {
        AttributeValue::S(s) => json!({ "s": s }),
        AttributeValue::N(n) => json!({ "n": n }),
        AttributeValue::B(b) => json!({ "b": b64(b.as_ref()) }),
        AttributeValue::Ss(ss) => json!({ "sS": ss }),
        AttributeValue::Ns(ns) => json!({ "nS": ns }),
        AttributeValue::Bs(bs) => {
            json!({ "bS": bs.iter().map(|b| b64(b.as_ref())).collect::<Vec<_>>() })
        }
        AttributeValue::M(m) => {
            let inner: Map<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), serialize(v))).collect();
            json!({ "m": inner })
        }
        AttributeValue::L(l) => json!({ "l": l.iter().map(serialize).collect::<Vec<_>>() }),
        AttributeValue::Null(b) => json!({ "nULL": b }),
        AttributeValue::Bool(b) => json!({ "bOOL": b }),
        _ => json!({}),
    }
}

/// Why a value cannot be written.
pub const TYPELESS: &str = "ValidationException: Supplied AttributeValue is empty, must contain exactly one of the supported datatypes";

/// `AttributeValueDeserializer`: the value, or `Err` when it comes out with no type.
pub fn deserialize(v: &Value) -> Result<AttributeValue, String> {
    let obj = v.as_object().ok_or("not a JSON object")?;
    for (key, x) in obj {
        let got = match key.to_ascii_lowercase().as_str() {
            "s" => x.as_str().map(|s| AttributeValue::S(s.into())),
            "n" => x.as_str().map(|s| AttributeValue::N(s.into())),
            "b" => x
                .as_str()
                .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
                .map(|b| AttributeValue::B(Blob::new(b))),
            "ss" => strings(x).map(AttributeValue::Ss),
            "ns" => strings(x).map(AttributeValue::Ns),
            "bs" => strings(x).map(|v| {
                AttributeValue::Bs(
                    v.iter()
                        .map(|s| {
                            Blob::new(
                                base64::engine::general_purpose::STANDARD
                                    .decode(s)
                                    .unwrap_or_default(),
                            )
                        })
                        .collect(),
                )
            }),
            "l" => match x.as_array() {
                Some(a) if !a.is_empty() => Some(AttributeValue::L(
                    a.iter().map(deserialize).collect::<Result<_, _>>()?,
                )),
                _ => None,
            },
            "m" => match x.as_object() {
                Some(m) if !m.is_empty() => Some(AttributeValue::M(
                    m.iter()
                        .map(|(k, v)| deserialize(v).map(|v| (k.clone(), v)))
                        .collect::<Result<HashMap<_, _>, _>>()?,
                )),
                _ => None,
            },
            "null" => x.as_bool().map(AttributeValue::Null),
            "bool" => x.as_bool().map(AttributeValue::Bool),
            _ => None,
        };
        if let Some(v) = got {
            return Ok(v);
        }
    }
    Err(TYPELESS.to_string())
}

fn strings(x: &Value) -> Option<Vec<String>> {
    x.as_array()?
        .iter()
        .map(|e| e.as_str().map(str::to_string))
        .collect()
}

/// An item as one line of Hive's text (`name\u{3}json\u{2}...`), names raw.
pub fn hive_line(item: &HashMap<String, AttributeValue>) -> String {
    item.iter()
        .map(|(k, v)| format!("{k}\u{3}{}", serialize(v)))
        .collect::<Vec<_>>()
        .join("\u{2}")
}

/// Hive's item column read back from its text: each value deserialized.
pub fn from_hive_map(text: &str) -> Result<HashMap<String, AttributeValue>, String> {
    if text.is_empty() {
        return Err("Hive data cannot be null.".into());
    }
    let mut item = HashMap::new();
    for entry in text.split('\u{2}') {
        let (k, v) = entry
            .split_once('\u{3}')
            .ok_or_else(|| format!("no \\u0003 in {entry:?}"))?;
        let v: Value = serde_json::from_str(v).map_err(|e| e.to_string())?;
        item.insert(k.to_string(), deserialize(&v)?);
    }
    Ok(item)
}

/// Hive's item column of an item (`HiveDynamoDBItemType.buildHiveData`): each attribute's
/// name and its JSON.
pub fn item_map(item: &HashMap<String, AttributeValue>) -> Vec<(String, Option<String>)> {
    item.iter()
        .map(|(k, v)| (k.clone(), Some(serialize(v).to_string())))
        .collect()
}

/// Hive's item column written back (`HiveDynamoDBItemType.parseDynamoDBData`): an empty
/// or NULL map is refused, each value deserialized.
pub fn from_entries(
    map: &[(String, Option<String>)],
) -> Result<HashMap<String, AttributeValue>, String> {
    if map.is_empty() {
        return Err("Hive data cannot be null.".into());
    }
    let mut item = HashMap::new();
    for (k, v) in map {
        let v = v.as_deref().ok_or("Null map value is not supported")?;
        let v: Value = serde_json::from_str(v).map_err(|e| e.to_string())?;
        item.insert(k.clone(), deserialize(&v)?);
    }
    Ok(item)
}

/// A connector tools line (`DynamoDBItemWritable.writeStream`): the item as one JSON object.
pub fn tools_line(item: &HashMap<String, AttributeValue>) -> String {
    let m: Map<String, Value> = item
        .iter()
        .map(|(k, v)| (k.clone(), serialize(v)))
        .collect();
    Value::Object(m).to_string()
}

/// A connector tools line read back.
pub fn from_tools_line(line: &str) -> Result<HashMap<String, AttributeValue>, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
    v.as_object()
        .ok_or("not an item")?
        .iter()
        .map(|(k, v)| deserialize(v).map(|v| (k.clone(), v)))
        .collect()
}

#[test]
fn empty_lists_and_maps_come_out_typeless_as_in_the_connector() {
    assert_eq!(
        deserialize(&json!({"l": []})).unwrap_err(),
        TYPELESS,
        "an empty list"
    );
    assert!(
        deserialize(&json!({"m": {"x": {"M": {}}}})).is_err(),
        "at depth 2"
    );
    assert_eq!(
        deserialize(&json!({"S": "x"})).unwrap(),
        AttributeValue::S("x".into()),
        "type keys in any case"
    );
    let item = HashMap::from([
        ("a".to_string(), AttributeValue::N("1.5".into())),
        ("b".to_string(), AttributeValue::Null(true)),
    ]);
    assert_eq!(from_hive_map(&hive_line(&item)).unwrap(), item);
    assert_eq!(from_tools_line(&tools_line(&item)).unwrap(), item);
}
