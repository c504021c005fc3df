//! Any bytes into the four line decoders: no panic, and whatever decodes re-encodes to a
//! line that decodes to the same item.
#![no_main]

use ddbx_core::item::{connector, data_pipeline, dynamodb_json, ion};
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
});
