//! Tests of `wire`: its pages and lines against this crate's own encoder and
//! `decode_line` (the SDK comparison is in `wire::scan`).

use super::*;
use crate::item::dynamodb_json::encode_line;
use crate::item::test_support::item;
use crate::item::validate::item_size;
use crate::item::AttributeValue;
use crate::wire::line::{checked_item, checked_keyed_item};
use proptest::prelude::*;

fn page(body: &str) -> Result<WirePage, Declined> {
    WirePage::parse(body.as_bytes())
}

#[test]
fn a_page_with_everything() {
    let body = r#"{"Count":2,"Items":[{"z":{"N":"1"},"a":{"M":{"y":{"BOOL":true},"b":{"L":[{"S":"\u00e9\/"},{"NULL":true}]}}}},{"k":{"BS":["aGk=","AA=="]}}],"ScannedCount":3,"LastEvaluatedKey":{"k":{"S":"x"}},"ConsumedCapacity":{"TableName":"T","CapacityUnits":1.5},"Other":[1,{"a":null}]}"#;
    let p = page(body).unwrap();
    let lines: Vec<_> = p
        .lines()
        .map(|(l, _)| String::from_utf8(l.to_vec()).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "{\"Item\":{\"a\":{\"M\":{\"b\":{\"L\":[{\"S\":\"é/\"},{\"NULL\":true}]},\"y\":{\"BOOL\":true}}},\"z\":{\"N\":\"1\"}}}\n",
            "{\"Item\":{\"k\":{\"BS\":[\"aGk=\",\"AA==\"]}}}\n",
        ]
    );
    assert_eq!(p.count, Some(2));
    assert_eq!(p.scanned_count, Some(3));
    assert_eq!(p.consumed_table.as_deref(), Some("T"));
    assert_eq!(p.consumed_units, Some(1.5));
    assert_eq!(
        p.last_evaluated_key.as_ref().unwrap()["k"],
        AttributeValue::S("x".into())
    );
    for (line, size) in p.lines() {
        let item = crate::item::dynamodb_json::decode_line(line).unwrap();
        assert_eq!(size, item_size(&item) as u64);
    }
    assert_eq!(p.item_bytes(), 21 + 4);
}

#[test]
fn empty_and_null_items() {
    assert_eq!(page(r#"{"Items":[],"Count":0}"#).unwrap().items, vec![]);
    assert_eq!(page(r#"{"Items":null}"#).unwrap().lines, b"");
    assert_eq!(page("{}").unwrap(), WirePage::default());
    assert_eq!(page(r#"{"Items":[{}]}"#).unwrap().lines, b"{\"Item\":{}}\n");
}

#[test]
fn refuses_what_it_does_not_reproduce() {
    for body in [
        r#"{"Items":[{"a":{"S":"x"},"a":{"S":"y"}}]}"#,
        r#"{"Items":[{"b":{"S":"x"},"a":{"S":"y"},"b":{"S":"z"}}]}"#,
        r#"{"Items":[{"a":{"s":"x"}}]}"#,
        r#"{"Items":[{"a":{"X":"x"}}]}"#,
        r#"{"Items":[{"a":{}}]}"#,
        r#"{"Items":[{"a":{"S":"x","N":"1"}}]}"#,
        r#"{"Items":[{"a":{"S":null}}]}"#,
        r#"{"Items":[{"a":null}]}"#,
        r#"{"Items":[null]}"#,
        r#"{"Items":[{"a":{"L":[null]}}]}"#,
        r#"{"Items":[{"a":{"SS":["x",null]}}]}"#,
        r#"{"Items":[{"a":{"B":"aGk"}}]}"#,
        r#"{"Items":[{"a":{"B":"AM+\/"}}]}"#,
        r#"{"Items":[{"a":{"B":"aGl="}}]}"#,
        r#"{"Items":[{"a":{"B":"a-k="}}]}"#,
        r#"{"Items":[{"a":{"BS":["aGk=","%%"]}}]}"#,
        r#"{"Items":[{"a":{"N":1}}]}"#,
        r#"{"Items":[{"a":{"BOOL":"true"}}]}"#,
        r#"{"Items":[],"Items":[]}"#,
        r#"{"Items":[]} x"#,
        r#"{"Items":[{"a":{"S":"\ud800"}}]}"#,
        r#"{"LastEvaluatedKey":{"k":{"X":"1"}}}"#,
        r#"{"LastEvaluatedKey":{"k":{"s":"1"}}}"#,
        r#"{"LastEvaluatedKey":{"k":{"M":{}}}}"#,
        "[]",
        "",
    ] {
        assert!(page(body).is_err(), "{body}");
    }
}

/// An item as DynamoDB might send it: names in the given order, strings escaped
/// either way.
pub(crate) fn wire_json(item: &Item, ascii: bool, pretty: bool) -> String {
    let v = serde_json::Value::Object(
        item.iter()
            .map(|(k, v)| (k.clone(), wire_value(v)))
            .collect(),
    );
    let mut out = Vec::new();
    if pretty {
        serde_json::to_writer_pretty(&mut out, &v).unwrap();
    } else {
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Escaping { ascii });
        serde::Serialize::serialize(&v, &mut ser).unwrap();
    }
    String::from_utf8(out).unwrap()
}

fn wire_value(v: &AttributeValue) -> serde_json::Value {
    use serde_json::json;
    let b64 = |b: &aws_smithy_types::Blob| STANDARD.encode(b.as_ref());
    match v {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": b64(b)}),
        AttributeValue::Ss(s) => json!({"SS": s}),
        AttributeValue::Ns(s) => json!({"NS": s}),
        AttributeValue::Bs(s) => json!({"BS": s.iter().map(b64).collect::<Vec<_>>()}),
        AttributeValue::M(m) => json!({"M": serde_json::Value::Object(
            m.iter().map(|(k, v)| (k.clone(), wire_value(v))).collect()
        )}),
        AttributeValue::L(l) => json!({"L": l.iter().map(wire_value).collect::<Vec<_>>()}),
        AttributeValue::Null(b) => json!({"NULL": b}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        _ => unreachable!(),
    }
}

/// Writes every non-ASCII character as a `\u` escape, as some JSON writers do. (Not
/// `\/`: the SDK cannot read base64 written so, see `base64`.)
struct Escaping {
    ascii: bool,
}

impl serde_json::ser::Formatter for Escaping {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        if !self.ascii {
            return w.write_all(fragment.as_bytes());
        }
        for c in fragment.chars() {
            match c {
                c if c.is_ascii() => w.write_all(&[c as u8])?,
                c => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        write!(w, "\\u{u:04x}")?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// What `decode_line` makes of a line, written as `checked_item` writes it.
fn decoded(line: &[u8]) -> Option<(String, usize)> {
    let item = crate::item::dynamodb_json::decode_line(line).ok()?;
    let mut out = Vec::new();
    crate::item::json::write_map(&item, &crate::item::json::UPPER_KEYS, &mut out);
    Some((String::from_utf8(out).unwrap(), item_size(&item)))
}

fn checked(line: &[u8]) -> Option<(String, usize)> {
    let mut out = b"before".to_vec();
    match checked_item(line, &mut out, None) {
        Ok(size) => Some((String::from_utf8(out[6..].to_vec()).unwrap(), size)),
        Err(_) => {
            assert_eq!(out, b"before", "nothing appended on refusal");
            None
        }
    }
}

#[test]
fn checked_items_refuse_what_decode_line_refuses_or_might_read_otherwise() {
    let big = format!(r#"{{"Item":{{"a":{{"S":"{}"}}}}}}"#, "x".repeat(400 * 1024));
    let nested = |n: usize| {
        format!(
            r#"{{"Item":{{"a":{}{{"S":"x"}}{}}}}}"#,
            r#"{"M":{"b":"#.repeat(n),
            "}}".repeat(n)
        )
    };
    let (deep, deepest) = (nested(32), nested(31));
    let long_name = format!(r#"{{"Item":{{"{}":{{"S":"x"}}}}}}"#, "n".repeat(70_000));
    for line in [
        &deep,
        &long_name,
        r#"{"Item":{"":{"S":"x"}}}"#,
        r#"{"Item":{"a":{"SS":[]}}}"#,
        r#"{"Item":{"a":{"SS":["x","x"]}}}"#,
        r#"{"Item":{"a":{"SS":["x","x"]}}}"#,
        r#"{"Item":{"a":{"NS":["1","1.0"]}}}"#,
        r#"{"Item":{"a":{"BS":["aGk=","aGk="]}}}"#,
        r#"{"Item":{"a":{"M":{"b":{"L":[{"NS":[]}]}}}}}"#,
        r#"{"Item":{"a":{"N":"1e400"}}}"#,
        r#"{"Item":{"a":{"N":"x"}}}"#,
        r#"{"Item":{"a":{"N":"123456789012345678901234567890123456789"}}}"#,
        r#"{"Item":{"a":{"NULL":false}}}"#,
        r#"{"Item":{"a":{"s":"x"}}}"#,
        r#"{"Item":{"a":{"S":"x"},"a":{"S":"y"}}}"#,
        r#"{"Item":{"a":{"B":"aGk"}}}"#,
        r#"{"Item":{"a":{"S":"x"}},"Other":1}"#,
        r#"{"Other":1,"Item":{"a":{"S":"x"}}}"#,
        r#"{"Keys":{"a":{"S":"x"}}}"#,
        r#"{"Item":{"a":{"S":"x"}}} x"#,
        r#"{"Item":[]}"#,
        &big,
    ] {
        assert_eq!(checked(line.as_bytes()), None, "{line}");
    }
    assert_eq!(checked(b"{\"Item\":{\"a\":{\"S\":\"\xff\"}}}"), None);
    assert!(checked(deepest.as_bytes()).is_some(), "31 maps are taken");
    assert!(decoded(deepest.as_bytes()).is_some());
    assert_eq!(decoded(deep.as_bytes()), None);
    // Every one of those is refused or read otherwise by decode_line too.
    assert_eq!(decoded(br#"{"Item":{"a":{"NS":["1","1.0"]}}}"#), None);
    assert!(decoded(br#"{"Item":{"a":{"s":"x"}}}"#).is_some());
    assert_eq!(
        checked(b"{\"Item\":{\"b\":{\"N\":\"1.50\"},\"a\":{\"NULL\":true}}}\r\n"),
        Some((r#"{"a":{"NULL":true},"b":{"N":"1.50"}}"#.to_string(), 5))
    );
}

#[test]
fn checked_items_carry_the_key_they_are_given() {
    use crate::item::key::{KeyPart, KeySchema, KeyType};
    let key = KeySchema {
        parts: vec![KeyPart {
            name: "id".into(),
            ty: KeyType::N,
            partition: true,
        }],
    };
    let check = |line: &str| {
        let mut out = Vec::new();
        checked_item(line.as_bytes(), &mut out, Some(&key)).inspect_err(|_| assert!(out.is_empty()))
    };
    assert_eq!(check(r#"{"Item":{"id":{"N":"1"},"a":{"S":"x"}}}"#), Ok(6));
    // The key's digest is the one the item read otherwise has (numbers by value).
    for line in [
        r#"{"Item":{"a":{"S":"x"},"id":{"N":"1.0"}}}"#,
        r#"{"Item":{"id":{"N":"1"}}}"#,
    ] {
        let item = crate::item::dynamodb_json::decode_line(line.as_bytes()).unwrap();
        let (_, digest) = checked_keyed_item(line.as_bytes(), &mut Vec::new(), &key).unwrap();
        assert_eq!(Some(digest), key.item_digest(&item), "{line}");
        assert_eq!(
            key.item_digest(&item),
            key.item_digest(&crate::item::test_support::one(
                "id",
                AttributeValue::N("1".into())
            ))
        );
    }
    for (line, why) in [
        (
            r#"{"Item":{"id":{"S":"1"}}}"#,
            "is S, but the table's partition key is N",
        ),
        (r#"{"Item":{"a":{"S":"1"}}}"#, "\"id\" is missing"),
        (
            r#"{"Item":{"a":{"M":{"id":{"N":"1"}}}}}"#,
            "\"id\" is missing",
        ),
    ] {
        let e = check(line).unwrap_err();
        assert!(e.to_string().contains(why), "{line}: {e}");
    }
}

/// A type object as a hand-written file might hold it, valid or not.
fn loose_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    let numbers = prop::sample::select(vec![
        "1", "1.0", "-0.50", "2", "1e400", "x", "", "1E+2", "100",
    ]);
    let base64 = prop::sample::select(vec!["aGk=", "aGk", "AA==", "AAA=", "%%"]);
    let leaf = prop_oneof![
        "[ab\u{e9}\u{2028}\"]{0,3}".prop_map(|s| json!({"S": s})),
        numbers.clone().prop_map(|n| json!({"N": n})),
        base64.clone().prop_map(|b| json!({"B": b})),
        prop::collection::vec("[ab]{0,2}", 0..4).prop_map(|m| json!({"SS": m})),
        prop::collection::vec(numbers, 0..4).prop_map(|m| json!({"NS": m})),
        prop::collection::vec(base64, 0..4).prop_map(|m| json!({"BS": m})),
        any::<bool>().prop_map(|b| json!({"NULL": b})),
        any::<bool>().prop_map(|b| json!({"BOOL": b})),
        Just(json!({"s": "x"})),
        Just(json!({"Bool": true})),
        Just(json!({"S": 1})),
        Just(json!({})),
        Just(json!({"S": "x", "N": "1"})),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|l| json!({"L": l})),
            prop::collection::hash_map("[abc]", inner, 0..4)
                .prop_map(|m| json!({"M": m.into_iter().collect::<serde_json::Map<_, _>>()})),
        ]
    })
}

proptest! {
    /// Read from the wire or decoded, an item's key has one digest, in any spelling.
    #[test]
    fn key_digests_are_the_same_both_ways(
        mut item in item(),
        id in crate::item::test_support::number_text(),
        sk in crate::item::test_support::text(6),
        ascii in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        item.insert("id".into(), AttributeValue::N(id));
        item.insert("sk".into(), AttributeValue::S(sk));
        let key = id_sk();
        let line = format!("{{\"Item\":{}}}\n", wire_json(&item, ascii, pretty));
        let decoded = crate::item::dynamodb_json::decode_line(line.as_bytes()).unwrap();
        if key.check_item(&decoded).is_ok() {
            let (_, digest) = checked_keyed_item(line.as_bytes(), &mut Vec::new(), &key).unwrap();
            prop_assert_eq!(Some(digest), key.item_digest(&decoded));
        }
    }

    /// `checked_item` writes what `json::write_map` writes for `decode_line`'s item,
    /// with its size, for every valid item, in any order of names and escaping.
    #[test]
    fn checked_items_are_what_decode_line_reads(
        item in item(),
        ascii in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let line = format!("{{\"Item\":{}}}\n", wire_json(&item, ascii, pretty));
        let want = decoded(line.as_bytes());
        prop_assert!(want.is_some());
        prop_assert_eq!(checked(line.as_bytes()), want);
    }

    /// On lines that may be wrong: whatever `checked_item` takes, `decode_line` takes
    /// and reads the same; whatever `decode_line` refuses, `checked_item` refuses.
    #[test]
    fn checked_items_take_nothing_decode_line_would_not(
        attrs in prop::collection::hash_map("[abc]", loose_value(), 0..4),
    ) {
        let line = serde_json::to_vec(&serde_json::json!({
            "Item": attrs.into_iter().collect::<serde_json::Map<_, _>>()
        })).unwrap();
        let (got, want) = (checked(&line), decoded(&line));
        if got.is_some() || want.is_none() {
            prop_assert_eq!(got, want);
        }
    }

    /// Against this crate's own encoder and sizes (the SDK comparison is in
    /// `wire::scan`).
    #[test]
    fn lines_and_sizes_match_the_plain_encoder(
        items in prop::collection::vec(item(), 0..4),
        ascii in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let body = format!(
            "{{\"Items\":[{}],\"Count\":{}}}",
            items.iter().map(|i| wire_json(i, ascii, pretty)).collect::<Vec<_>>().join(","),
            items.len()
        );
        let p = WirePage::parse(body.as_bytes()).unwrap();
        let mut want = Vec::new();
        for i in &items {
            encode_line(i, &mut want);
        }
        prop_assert_eq!(String::from_utf8(p.lines.clone()).unwrap(), String::from_utf8(want).unwrap());
        let sizes: Vec<u64> = p.items.iter().map(|&(_, s)| s).collect();
        let want: Vec<u64> = items.iter().map(|i| item_size(i) as u64).collect();
        prop_assert_eq!(sizes, want);
    }
}

/// What `wire_scanner` makes of a body, next to what the `serde_json` reader makes of it:
/// whatever the scanner reads, the `serde_json` reader reads the same.
fn scanned(body: &[u8]) -> Option<WirePage> {
    let fast = crate::wire::scanner::parse(body);
    if let Some(fast) = &fast {
        assert_eq!(
            Ok(fast),
            WirePage::parse_with_serde(body).as_ref(),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    fast
}

#[test]
fn wire_scanner_reads_what_serde_reads() {
    let deep = format!(
        r#"{{"Items":[{{"a":{}{{"S":"x"}}{}}}]}}"#,
        r#"{"L":["#.repeat(32),
        "]}".repeat(32)
    );
    for body in [
        r#"{"Count":2,"Items":[{"z":{"N":"1"},"a":{"M":{"y":{"BOOL":true},"b":{"L":[{"S":"\u00e9\/"},{"NULL":true}]}}}},{"k":{"BS":["aGk=","AA=="]}}],"ScannedCount":3,"LastEvaluatedKey":{"k":{"S":"x"}},"ConsumedCapacity":{"TableName":"T","CapacityUnits":1.5}}"#,
        r#"{"Items":[{"q":{"S":"say \"hi\"\\\n\t\u0000\ud83d\ude00 \u2028"},"p\u00e9":{"N":"\u0031"}}]}"#,
        "{\"Items\":[{\"s\":{\"S\":\"raw \u{2028} \u{85} \u{2029} é\"}}]}",
        " { \"Items\" : [ { \"a\" : { \"SS\" : [ \"x\" , \"y\" ] } } ] , \"Count\" : 1 } ",
        r#"{"Items":[{"b":{"S":"1"},"a":{"S":"2"},"c":{"M":{"z":{"N":"1"},"y":{"NS":["1","2"]}}}}]}"#,
        r#"{"Items":[],"Count":0,"ScannedCount":0}"#,
        r#"{"Items":null,"ConsumedCapacity":null,"LastEvaluatedKey":null}"#,
        r#"{"LastEvaluatedKey":{"k":{"S":"a,}]\"b"},"n":{"N":"1"}},"Items":[{}]}"#,
        &deep,
    ] {
        assert!(scanned(body.as_bytes()).is_some(), "{body}");
    }
}

#[test]
fn wire_scanner_leaves_the_unusual_to_serde() {
    let deep = format!(
        r#"{{"Items":[{{"a":{}{{"S":"x"}}{}}}]}}"#,
        r#"{"M":{"b":"#.repeat(60),
        "}}".repeat(60)
    );
    for body in [
        // serde_json reads these, the scanner does not.
        r#"{"Items":[{"a":{"\u0053":"x"}}]}"#,
        r#"{"Items":[],"Other":1}"#,
        &deep,
        // Neither reads these.
        r#"{"Items":[{"a":{"S":"x"},"a":{"S":"y"}}]}"#,
        r#"{"Items":[{"b":{"S":"x"},"a":{"S":"y"},"b":{"S":"z"}}]}"#,
        r#"{"Items":[{"a":{"S":"\ud800"}}]}"#,
        r#"{"Items":[{"a":{"S":"\udc00"}}]}"#,
        r#"{"Items":[{"a":{"S":"\ud800\u0041"}}]}"#,
        r#"{"Items":[{"a":{"S":"\x"}}]}"#,
        "{\"Items\":[{\"a\":{\"S\":\"\u{1}\"}}]}",
        r#"{"Items":[{"a":{"B":"AM+\/"}}]}"#,
        r#"{"Items":[{"a":{"B":"aGl="}}]}"#,
        r#"{"Items":[{"a":{"BOOL":tru}}]}"#,
        r#"{"Items":[{"a":{"S":"x","N":"1"}}]}"#,
        r#"{"Items":[{"a":{}}]}"#,
        r#"{"Items":[null]}"#,
        r#"{"Items":[{"a":{"S":"x"}},]}"#,
        r#"{"Items":[],}"#,
        r#"{"Count":1,"Count":2}"#,
        r#"{"Count":}"#,
        r#"{"Count":1 2}"#,
        r#"{"Items":[]} x"#,
        r#"{"Items":[{"a":{"S":"x"}}]"#,
        r#"{"LastEvaluatedKey":{"k":{"M":{}}}}"#,
    ] {
        assert!(scanned(body.as_bytes()).is_none(), "{body}");
    }
    assert!(WirePage::parse_with_serde(br#"{"Items":[{"a":{"\u0053":"x"}}]}"#).is_ok());
    assert!(WirePage::parse_with_serde(br#"{"Items":[],"Other":1}"#).is_ok());
    assert_eq!(scanned(b"{\"Items\":[{\"a\":{\"S\":\"\xff\"}}]}"), None);
}

/// A Scan answer as DynamoDB might write it, with the given items, key to continue from
/// and consumed capacity.
pub(crate) fn page_body(
    items: &[Item],
    next: Option<&Item>,
    units: Option<f64>,
    ascii: bool,
    pretty: bool,
) -> String {
    let mut body = format!(
        "{{\"Items\":[{}],\"Count\":{},\"ScannedCount\":{}",
        items
            .iter()
            .map(|i| wire_json(i, ascii, pretty))
            .collect::<Vec<_>>()
            .join(","),
        items.len(),
        items.len(),
    );
    if let Some(k) = next {
        body.push_str(&format!(
            ",\"LastEvaluatedKey\":{}",
            wire_json(k, ascii, pretty)
        ));
    }
    if let Some(u) = units {
        body.push_str(&format!(
            ",\"ConsumedCapacity\":{{\"TableName\":\"T\",\"CapacityUnits\":{u}}}"
        ));
    }
    body.push('}');
    body
}

proptest! {
    /// On every generated page, in any order of names and escaping, the scanner reads it,
    /// and reads what the `serde_json` reader reads.
    #[test]
    fn wire_scanner_reads_every_page_as_serde_does(
        items in prop::collection::vec(item(), 0..4),
        next in prop::option::of(item()),
        ascii in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let next = next.map(|k| k.into_iter().filter(|(_, v)| {
            matches!(v, AttributeValue::S(_) | AttributeValue::N(_) | AttributeValue::B(_))
        }).collect());
        let body = page_body(&items, next.as_ref(), Some(2.5), ascii, pretty);
        prop_assert!(scanned(body.as_bytes()).is_some(), "{}", body);
    }

    /// On pages with a byte taken out, put in or changed: whatever the scanner reads, the
    /// `serde_json` reader reads the same (checked in `scanned`).
    #[test]
    fn wire_scanner_reads_nothing_serde_reads_otherwise(
        items in prop::collection::vec(item(), 1..3),
        ascii in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"\"\\{}[],: 0u\x01ntfSNB".to_vec()),
        how in 0..3u8,
    ) {
        let mut body = page_body(&items, None, Some(2.5), ascii, false).into_bytes();
        let at = at.index(body.len());
        match how {
            0 => { body.remove(at); }
            1 => body.insert(at, byte),
            _ => body[at] = byte,
        }
        scanned(&body);
    }
}

/// What `wire::scanner`'s checking reader makes of a line (its item, size and key
/// digest), next to what the seeds make of it: whatever it takes, the seeds take and
/// read the same, and it appends nothing when it declines.
fn line_scanned(line: &[u8], key: Option<&KeySchema>) -> Option<(String, usize, u64)> {
    let watch = key.map(KeyWatch::new);
    let mut out = b"before".to_vec();
    let Some(size) = crate::wire::scanner::check_line(line, &mut out, watch.as_ref()) else {
        assert_eq!(out, b"before", "nothing appended when declined");
        return None;
    };
    let digest = |w: Option<KeyWatch>| w.map_or(0, |w| w.digest.get().finish());
    let slow_watch = key.map(KeyWatch::new);
    let mut slow = b"before".to_vec();
    let want = check_line_with_serde(line, &mut slow, slow_watch.as_ref());
    let shown = String::from_utf8_lossy(line);
    assert_eq!(want, Ok(size), "{shown}");
    assert_eq!(
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&slow),
        "{shown}"
    );
    let (got, wanted) = (digest(watch), digest(slow_watch));
    assert_eq!(got, wanted, "{shown}");
    Some((String::from_utf8(out[6..].to_vec()).unwrap(), size, got))
}

use crate::item::test_support::id_sk;

#[test]
fn the_line_scanner_refuses_what_the_seeds_refuse() {
    let nested = |n: usize, open: &str, close: &str| {
        format!(
            r#"{{"Item":{{"a":{}{{"S":"x"}}{}}}}}"#,
            open.repeat(n),
            close.repeat(n)
        )
    };
    let big = format!(r#"{{"Item":{{"a":{{"S":"{}"}}}}}}"#, "x".repeat(400 * 1024));
    let long_name = format!(r#"{{"Item":{{"{}":{{"S":"x"}}}}}}"#, "n".repeat(70_000));
    for line in [
        nested(32, r#"{"M":{"b":"#, "}}"),
        nested(32, r#"{"L":["#, "]}"),
        big,
        long_name,
        r#"{"Item":{"":{"S":"x"}}}"#.into(),
        r#"{"Item":{"a":{"SS":[]}}}"#.into(),
        r#"{"Item":{"a":{"SS":["x","x"]}}}"#.into(),
        r#"{"Item":{"a":{"SS":["x","\u0078"]}}}"#.into(),
        r#"{"Item":{"a":{"NS":["1","1.0"]}}}"#.into(),
        r#"{"Item":{"a":{"BS":["aGk=","aGk="]}}}"#.into(),
        r#"{"Item":{"a":{"M":{"b":{"L":[{"NS":[]}]}}}}}"#.into(),
        r#"{"Item":{"a":{"N":"1e400"}}}"#.into(),
        r#"{"Item":{"a":{"N":"x"}}}"#.into(),
        r#"{"Item":{"a":{"N":"123456789012345678901234567890123456789"}}}"#.into(),
        r#"{"Item":{"a":{"NULL":false}}}"#.into(),
        r#"{"Item":{"a":{"L":[{"NULL":false}]}}}"#.into(),
        r#"{"Item":{"a":{"s":"x"}}}"#.into(),
        r#"{"Item":{"a":{"S":"x"},"a":{"S":"y"}}}"#.into(),
        r#"{"Item":{"a":{"B":"aGk"}}}"#.into(),
        r#"{"Item":{"a":{"S":"x"}},"Other":1}"#.into(),
        r#"{"Other":1,"Item":{"a":{"S":"x"}}}"#.into(),
        r#"{"Keys":{"a":{"S":"x"}}}"#.into(),
        r#"{"Item":{"a":{"S":"x"}}} x"#.into(),
        r#"{"Item":[]}"#.into(),
        // The seeds take this one; the scanner leaves it to them.
        r#"{"\u0049tem":{"a":{"S":"x"}}}"#.into(),
    ] {
        assert_eq!(line_scanned(line.as_bytes(), None), None, "{line}");
    }
    assert_eq!(
        line_scanned(b"{\"Item\":{\"a\":{\"S\":\"\xff\"}}}", None),
        None
    );
    for line in [
        nested(31, r#"{"M":{"b":"#, "}}"),
        nested(31, r#"{"L":["#, "]}"),
        r#"{"Item":{"a":{"M":{"":{"S":"x"}}}}}"#.into(),
        r#"{"Item":{"a":{"SS":["x","\u0079"]},"b":{"NS":["1","1.5"]}}}"#.into(),
        " { \"Item\" : { \"a\" : { \"S\" : \"x\" } } } \r\n".into(),
    ] {
        assert!(line_scanned(line.as_bytes(), None).is_some(), "{line}");
    }
    assert_eq!(
        line_scanned(
            b"{\"Item\":{\"b\":{\"N\":\"1.50\"},\"a\":{\"NULL\":true}}}\r\n",
            None
        ),
        Some((r#"{"a":{"NULL":true},"b":{"N":"1.50"}}"#.to_string(), 5, 0))
    );
}

#[test]
fn the_line_scanner_checks_the_key() {
    let key = id_sk();
    for line in [
        r#"{"Item":{"id":{"S":"1"},"sk":{"S":"a"}}}"#,
        r#"{"Item":{"sk":{"S":"a"}}}"#,
        r#"{"Item":{"id":{"N":"1"}}}"#,
        r#"{"Item":{"id":{"N":"1"},"a":{"M":{"sk":{"S":"a"}}}}}"#,
        r#"{"Item":{"id":{"N":"1"},"sk":{"S":""}}}"#,
    ] {
        assert_eq!(line_scanned(line.as_bytes(), Some(&key)), None, "{line}");
        assert!(checked_item(line.as_bytes(), &mut Vec::new(), Some(&key)).is_err());
    }
    let (_, size, digest) = line_scanned(
        br#"{"Item":{"sk":{"S":"a"},"x":{"S":"y"},"id":{"N":"1.0"}}}"#,
        Some(&key),
    )
    .unwrap();
    assert_eq!(size, 9);
    let item =
        crate::item::dynamodb_json::decode_line(br#"{"Item":{"id":{"N":"1"},"sk":{"S":"a"}}}"#)
            .unwrap();
    assert_eq!(Some(digest), key.item_digest(&item), "numbers by value");
}

proptest! {
    /// Every valid generated line, in any order of names and escaping, with a key or
    /// without: the scanner reads it, as the seeds read it.
    #[test]
    fn the_line_scanner_reads_every_valid_line_as_the_seeds_do(
        mut item in item(),
        id in crate::item::test_support::number_text(),
        sk in crate::item::test_support::text(6),
        keyed in any::<bool>(),
        ascii in any::<bool>(),
        pretty in any::<bool>(),
    ) {
        let key = id_sk();
        if keyed {
            item.insert("id".into(), AttributeValue::N(id));
            item.insert("sk".into(), AttributeValue::S(sk));
        }
        let line = format!("{{\"Item\":{}}}\n", wire_json(&item, ascii, pretty));
        let key = (keyed && key.check_item(&item).is_ok()).then_some(&key);
        prop_assert!(line_scanned(line.as_bytes(), key).is_some(), "{}", line);
    }

    /// Lines that may be wrong: whatever the scanner takes, the seeds take the same (in
    /// `line_scanned`); what `decode_line` refuses, the scanner refuses.
    #[test]
    fn the_line_scanner_takes_nothing_the_seeds_would_not(
        attrs in prop::collection::hash_map("[abc]", loose_value(), 0..4),
    ) {
        let line = serde_json::to_vec(&serde_json::json!({
            "Item": attrs.into_iter().collect::<serde_json::Map<_, _>>()
        })).unwrap();
        let got = line_scanned(&line, None);
        if decoded(&line).is_none() {
            prop_assert_eq!(got, None);
        }
    }

    /// Lines with a byte taken out, put in or changed, read with the key: whatever the
    /// scanner takes, the seeds take the same (in `line_scanned`).
    #[test]
    fn the_line_scanner_reads_no_damaged_line_otherwise(
        mut item in item(),
        id in crate::item::test_support::number_text(),
        ascii in any::<bool>(),
        at in any::<prop::sample::Index>(),
        byte in prop::sample::select(b"\"\\{}[],: 0u\x01ntfSNBL".to_vec()),
        how in 0..3u8,
    ) {
        item.insert("id".into(), AttributeValue::N(id));
        item.insert("sk".into(), AttributeValue::S("k".into()));
        let mut line = format!("{{\"Item\":{}}}", wire_json(&item, ascii, false)).into_bytes();
        let at = at.index(line.len());
        match how {
            0 => { line.remove(at); }
            1 => line.insert(at, byte),
            _ => line[at] = byte,
        }
        line_scanned(&line, Some(&id_sk()));
    }
}
