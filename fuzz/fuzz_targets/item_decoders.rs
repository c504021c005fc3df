//! Any bytes into the four line decoders: no panic, and whatever decodes re-encodes to a
//! line that decodes to the same item. And the import's one-pass reader of DynamoDB JSON
//! (`wire::checked_item`) against `decode_line`: it takes nothing `decode_line` refuses,
//! and what it takes it writes as `encode_line` writes `decode_line`'s item, same size.
//! And the export's reader of Scan answers: whatever its fast path (`wire::scanner`)
//! reads, the `serde_json` reader reads the same, and what that refuses is refused.
#![no_main]

use ddbx_core::wire::WirePage;
use ddbx_core::item::{connector, data_pipeline, dynamodb_json, ion, validate, wire};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(item) = dynamodb_json::decode_line(data) {
        let mut line = Vec::new();
        dynamodb_json::encode_line(&item, &mut line);
        assert_eq!(dynamodb_json::decode_line(&line).as_ref(), Ok(&item));
    }
    if let Ok(item) = connector::decode_line(data) {
        let mut line = Vec::new();
        connector::encode_line(&item, &mut line);
        assert_eq!(connector::decode_line(&line).as_ref(), Ok(&item));
    }
    if let Ok(item) = ion::decode_line(data) {
        let mut line = Vec::new();
        ion::encode_line(&item, &mut line);
        let again = ion::decode_line(&line).expect("what ion writes, ion reads");
        // Numbers come back canonical; the digest compares them so.
        assert_eq!(
            ddbx_core::item::canonical::item_digest(&again),
            ddbx_core::item::canonical::item_digest(&item)
        );
    }
    let _ = data_pipeline::decode_line(data);
    let mut map = Vec::new();
    match (wire::checked_item(data, &mut map), dynamodb_json::decode_line(data)) {
        (Ok(size), Ok(item)) => {
            let mut line = Vec::new();
            dynamodb_json::encode_line(&item, &mut line);
            assert_eq!(line, [&b"{\"Item\":"[..], &map, b"}\n"].concat());
            assert_eq!(size, validate::item_size(&item));
        }
        (Ok(_), Err(e)) => panic!("checked_item took a line decode_line refuses: {e}"),
        (Err(_), _) => assert!(map.is_empty(), "nothing appended on refusal"),
    }
    assert_eq!(WirePage::parse(data), WirePage::parse_with_serde(data));
});
