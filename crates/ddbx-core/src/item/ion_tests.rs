//! Tests of `item::ion`: Amazon Ion lines read and written, against the DynamoDB JSON
//! codec and on generated items.

use super::*;
use crate::item::canonical::item_digest;
use crate::item::test_support::{item, one, splits_in_line_readers};
use proptest::prelude::*;
use std::collections::HashMap;

/// A line the fuzz target found that made ion-rs panic: an error instead.
#[test]
fn symbol_ids_too_large_to_read_are_errors() {
    // The fuzzer's input (ion-rs 1.2 panics on it unchecked), and the same in an item.
    for line in [
        &b"$2113111111311311111131}["[..],
        b"{Item:{a:$123456789012345678901}}",
        // Symbol IDs one after another (the fuzzer's input of 2026-12-07).
        b"$3$3$3444444444444444444444444444444444444444444444",
        b"{Item:{a:$1$123456789012345678901}}",
    ] {
        match decode_line(line) {
            Err(ItemError::Ion(e)) => assert!(e.contains("symbol ID of"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    // A `$` inside an identifier or a string, and a symbol ID that fits, are read.
    let shape = text_shape(b"{Item:{a$123456789012345678901:\"$123456789012345678901\"}}");
    assert_eq!(shape.longest_symbol_id, 0);
    assert_eq!(
        text_shape(b"{Item:{a:$1234567890123456789}}").longest_symbol_id,
        19
    );
}

/// Another line the fuzz target found (2026-12-07): an escape beyond Unicode.
#[test]
fn escapes_beyond_unicode_are_errors() {
    for (line, escape) in [
        (
            &br#""l\uffff'\ufffff'lff\rffff"""fffffffff'\Uffffffffffff'\uffffffff"#[..],
            "ffffffff",
        ),
        (br#"{Item:{a:"\U00110000"}}"#, "00110000"),
        (br#"{Item:{'''\U7fffffff''':{S:"x"}}}"#, "7fffffff"),
    ] {
        match decode_line(line) {
            Err(ItemError::Ion(e)) => assert!(e.contains(escape), "{e}"),
            other => panic!("{other:?}"),
        }
    }
    // The last code point, and a pair of surrogates, are read.
    let item = decode_line(br#"{Item:{a:"\U0010ffff\ud83d\ude00"}}"#).unwrap();
    assert_eq!(item["a"], AttributeValue::S("\u{10ffff}\u{1f600}".into()));
}

#[test]
fn lines_that_are_not_utf8_are_errors() {
    for line in [
        &b"{Item:{a:\"xx\\\"\\\\u\xaa0g9\"}}"[..],
        b"{Item:{a:\"\xaa\"}}",
        b"$ion_1_0 {Item:{a:'\xff'}}",
    ] {
        match decode_line(line) {
            Err(ItemError::Ion(e)) => assert!(e.contains("UTF-8"), "{e}"),
            other => panic!("{other:?}"),
        }
    }
}

fn n(x: &str) -> AttributeValue {
    AttributeValue::N(x.to_string())
}

fn s(x: &str) -> AttributeValue {
    AttributeValue::S(x.to_string())
}

fn line(item: &Item) -> String {
    let mut out = Vec::new();
    encode_line(item, &mut out);
    String::from_utf8(out).unwrap()
}

fn err(text: &str) -> ItemError {
    decode_line(text.as_bytes()).unwrap_err()
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let nested = |n: usize| {
        format!(
            "{{Item:{{id:1.,d:{}1.{}}}}}",
            "{a:".repeat(n),
            "}".repeat(n)
        )
    };
    // DynamoDB's limit, from the item's own attributes: 31 maps taken, 32 refused.
    assert!(decode_line(nested(31).as_bytes()).is_ok());
    assert!(matches!(err(&nested(32)), ItemError::TooDeep { .. }));
    // Far deeper (the probe's 4,000 levels in 16 KB): refused before ion-rs recurses.
    for n in [100, 4_000, 100_000] {
        let e = err(&nested(n));
        assert!(
            e.to_string().contains("nested deeper than 64 levels"),
            "{n}: {e}"
        );
    }
    let lists = format!(
        "{{Item:{{id:1.,d:{}{}}}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    assert!(err(&lists).to_string().contains("nested deeper"));
    // Brackets inside strings, symbols, comments and lobs are not nesting.
    let quiet = format!(
        "{{Item:{{id:1.,s:\"{}\",q:'{}',b:{{{{aGk=}}}},c:{{{{\"{}\"}}}} /* {} */}}}} // {}",
        "{[(".repeat(100),
        "[".repeat(100),
        "}}{{".repeat(50),
        "[".repeat(100),
        "(".repeat(100)
    );
    assert_eq!(text_shape(quiet.as_bytes()).deepest, 2);
    assert!(
        err("\u{E0}\u{1}\u{0}\u{EA}")
            .to_string()
            .contains("binary Ion")
            || decode_line(&[0xE0, 0x01, 0x00, 0xEA])
                .unwrap_err()
                .to_string()
                .contains("binary Ion")
    );
}

#[test]
fn documented_example() {
    let text = r#"$ion_1_0 {Item:{Authors:$dynamodb_SS::["Author1","Author2"],Dimensions:"8.5 x 11.0 x 1.5",ISBN:"333-3333333333",Id:103.,InPublication:false,PageCount:6d2,Price:2d3,ProductCategory:"Book",Title:"Book 103 Title"}}"#;
    let item = decode_line(text.as_bytes()).unwrap();
    assert_eq!(
        item["Authors"],
        AttributeValue::Ss(vec!["Author1".into(), "Author2".into()])
    );
    assert_eq!(item["Id"], n("103"));
    assert_eq!(item["PageCount"], n("600"));
    assert_eq!(item["Price"], n("2000"));
    assert_eq!(item["InPublication"], AttributeValue::Bool(false));
    assert_eq!(line(&item), format!("{text}\n"), "written as AWS writes it");
}

#[test]
fn every_type() {
    let text = "$ion_1_0 {Item:{'my-attr':\"x\",b:{{aGk=}},bs:$dynamodb_BS::[{{AA==}},{{AQ==}}],ns:$dynamodb_NS::[1.,2.5,-3d-2],z:null,zz:null.string,l:[1.,\"a\",[],{}],m:{'k k':{q:true}},e:\"\",eb:{{}},i:42}}\n";
    let item = decode_line(text.as_bytes()).unwrap();
    assert_eq!(item["my-attr"], s("x"));
    assert_eq!(item["b"], AttributeValue::B(Blob::new(b"hi".to_vec())));
    assert_eq!(
        item["bs"],
        AttributeValue::Bs(vec![Blob::new(vec![0]), Blob::new(vec![1])])
    );
    assert_eq!(
        item["ns"],
        AttributeValue::Ns(vec!["1".into(), "2.5".into(), "-0.03".into()])
    );
    assert_eq!(item["z"], AttributeValue::Null(true));
    assert_eq!(item["zz"], AttributeValue::Null(true));
    assert_eq!(
        item["l"],
        AttributeValue::L(vec![
            n("1"),
            s("a"),
            AttributeValue::L(vec![]),
            AttributeValue::M(HashMap::new())
        ])
    );
    assert_eq!(
        item["m"],
        AttributeValue::M(one(
            "k k",
            AttributeValue::M(one("q", AttributeValue::Bool(true)))
        ))
    );
    assert_eq!(item["e"], s(""));
    assert_eq!(item["eb"], AttributeValue::B(Blob::new(vec![])));
    assert_eq!(item["i"], n("42"), "an Ion int is a number too");
}

#[test]
fn numbers_are_exact() {
    let d38 = "12345678901234567890123456789012345678";
    for (ion, want) in [
        ("6d2", "600".to_string()),
        ("-0.", "0".to_string()),
        ("0d-3", "0".to_string()),
        ("1.50", "1.5".to_string()),
        (&format!("{d38}."), d38.to_string()),
        (&format!("-{d38}d-40"), format!("-0.00{d38}")),
        (
            "9.9999999999999999999999999999999999999d125",
            format!("{}{}", "9".repeat(38), "0".repeat(88)),
        ),
        ("1d-130", format!("0.{}1", "0".repeat(129))),
    ] {
        let item = decode_line(format!("{{Item:{{n:{ion}}}}}").as_bytes()).unwrap();
        assert_eq!(item["n"], n(&want), "{ion}");
        // And back: the same number, as an Ion decimal.
        let again = decode_line(line(&item).as_bytes()).unwrap();
        assert_eq!(again, item, "{ion}");
    }
    for bad in ["1d126", "1d-131", &format!("1{d38}."), "1.5e0"] {
        let e = err(&format!("{{Item:{{n:{bad}}}}}"));
        assert!(
            matches!(e, ItemError::BadNumber { .. } | ItemError::BadValue { .. }),
            "{bad}: {e:?}"
        );
    }
    let mut out = String::new();
    for (text, want) in [
        ("103", "103."),
        ("600", "6d2"),
        ("12.5", "12.5"),
        ("0.05", "0.05"),
        ("-0.000001", "-0.000001"),
        ("0", "0."),
    ] {
        out.clear();
        write_decimal(text, &mut out);
        assert_eq!(out, want);
    }
}

#[test]
fn hard_names_and_strings_are_escaped() {
    let item = HashMap::from([
        (
            "it's".to_string(),
            s("q\"\\\n\r\t\u{0}\u{1}\u{7f}é😀\u{2028}\u{2029}\u{85}"),
        ),
        ("null".to_string(), s("keyword name")),
        ("$10".to_string(), s("looks like a symbol id")),
        (
            "m".to_string(),
            AttributeValue::M(HashMap::from([("".to_string(), s("empty name"))])),
        ),
        ("a.b-c d".to_string(), AttributeValue::Bool(true)),
    ]);
    let text = line(&item);
    assert_eq!(text.matches('\n').count(), 1);
    for sep in ['\u{2028}', '\u{2029}', '\u{85}'] {
        assert!(!text.contains(sep), "{sep:?} escaped");
    }
    assert_eq!(decode_line(text.as_bytes()).unwrap(), item);
}

#[test]
fn errors_name_the_attribute() {
    assert!(matches!(err("{Item:"), ItemError::Ion(_)));
    assert!(matches!(err(""), ItemError::Shape(_)));
    assert!(matches!(err("{Item:{}} {Item:{}}"), ItemError::Shape(_)));
    assert!(matches!(err("[1]"), ItemError::Shape(_)));
    assert!(matches!(err("{Other:{}}"), ItemError::Shape(_)));
    assert!(matches!(err("{Item:{}, x:1}"), ItemError::Shape(_)));
    assert!(matches!(err("{Item:[]}"), ItemError::Shape(_)));
    let bad_at = |text: &str| match err(text) {
        ItemError::BadValue { attribute, .. } => attribute,
        other => panic!("{text}: {other:?}"),
    };
    assert_eq!(bad_at("{Item:{a:1.5e0}}"), "a");
    assert_eq!(bad_at("{Item:{a:2026-01-01T}}"), "a");
    assert_eq!(bad_at("{Item:{a:sym}}"), "a");
    assert_eq!(bad_at("{Item:{a:$dynamodb_SS::[\"x\",1.]}}"), "a[1]");
    assert_eq!(bad_at("{Item:{a:$dynamodb_NS::\"x\"}}"), "a");
    assert_eq!(bad_at("{Item:{a:{b:[{{AA==}}, (x)]}}}"), "a.b[1]");
    assert_eq!(bad_at("{Item:{a:1., a:2.}}"), "");
    assert!(matches!(
        err("{Item:{a:$dynamodb_XS::[]}}"),
        ItemError::UnknownType { ref attribute, .. } if attribute == "a"
    ));
    assert!(matches!(
        err("{Item:{a:$dynamodb_SS::[]}}"),
        ItemError::EmptySet { .. }
    ));
    assert!(matches!(
        err("{Item:{a:$dynamodb_NS::[1., 1.0]}}"),
        ItemError::DuplicateSetMember { .. }
    ));
}

#[test]
fn incremental_lines_read_as_puts_and_deletes() {
    let put = "$ion_1_0 {Metadata:{WriteTimestampMicros:1680109764000000},Keys:{pk:\"a\"},OldImage:{pk:\"a\",v:1.},NewImage:{pk:\"a\",v:2.,tags:$dynamodb_SS::[\"x\"]}}\n";
    let c = decode_change(put.as_bytes()).unwrap();
    assert_eq!(c.write_micros, Some(1_680_109_764_000_000));
    let image = c.new_image.clone().unwrap();
    assert_eq!(image["v"], n("2"));
    assert_eq!(image["tags"], AttributeValue::Ss(vec!["x".into()]));
    let del = "{Keys:{pk:\"a\"},OldImage:{pk:\"a\"}}";
    assert_eq!(
        decode_change(del.as_bytes()).unwrap().into_record(),
        crate::item::Record::Delete(crate::item::test_support::one("pk", s("a")))
    );
    for bad in [
        "{Item:{pk:\"a\"}}",
        "{Keys:{pk:\"a\"},NewImage:{pk:\"b\"}}",
        "{NewImage:{pk:\"a\"}}",
        "{Keys:{pk:\"a\"},NewImage:[]}",
    ] {
        assert!(decode_change(bad.as_bytes()).is_err(), "{bad}");
    }
}

proptest! {
    #[test]
    fn round_trip(it in item()) {
        let mut out = Vec::new();
        encode_line(&it, &mut out);
        prop_assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        prop_assert!(!splits_in_line_readers(&out), "one line for every line reader");
        prop_assert!(out.starts_with(b"$ion_1_0 {Item:"), "starts with the marker");
        // The same item, its numbers in their canonical spelling (as DynamoDB keeps
        // them): the canonical digest says so.
        let back = decode_line(&out).unwrap();
        prop_assert_eq!(item_digest(&back), item_digest(&it));
        // Deterministic: the item read back writes the same line.
        let mut again = Vec::new();
        encode_line(&back, &mut again);
        prop_assert_eq!(out, again);
    }
}
