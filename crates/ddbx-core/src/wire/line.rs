//! The checked lines of data files: an import's DynamoDB JSON lines, read once, checked
//! as `decode_line` checks them, and written as the API's wire JSON. Most are read by
//! [`scanner`]'s checking reader; what it leaves, by `page`'s `serde_json` seeds.

use super::page::{check_line_with_serde, Declined, KeyWatch};
use super::scanner;
use crate::item::key::{KeyDigest, KeySchema};

/// Reads one DynamoDB JSON line (`{"Item":{...}}`, its line end allowed) and appends the
/// item's attribute map to `out` in the API's wire JSON, names sorted: byte for byte what
/// [`json::write_map`](crate::item::json::write_map) writes for the item
/// [`dynamodb_json::decode_line`](crate::item::dynamodb_json::decode_line) reads, and checked as
/// that checks it ([`validate_item`](crate::item::validate::validate_item)). Returns the item's
/// size. An import writes what this appends as it is, building no item.
///
/// Why: a profile of an import against the canned endpoint (`docs/BENCHMARKS.md`, issue
/// 16) put more than a third of its CPU in allocating and freeing the JSON tree and the
/// item maps `decode_line` builds, and in the SDK serialising them again.
///
/// `Err` (with nothing appended) for anything `decode_line` might read differently or
/// refuse: type keys in another letter case, a name given twice, base64 not in canonical
/// form, any invalid item, or (given `key`) an item that does not carry that key. The
/// caller then reads the line with `decode_line`, which takes it or names what is wrong.
pub fn checked_item(
    line: &[u8],
    out: &mut Vec<u8>,
    key: Option<&KeySchema>,
) -> Result<usize, Declined> {
    let watch = key.map(KeyWatch::new);
    check_line(line, out, watch.as_ref())
}

/// [`checked_item`] of an item that must carry `key`, with the digest of its key
/// ([`KeySchema::item_digest`] of the item `decode_line` reads).
pub fn checked_keyed_item(
    line: &[u8],
    out: &mut Vec<u8>,
    key: &KeySchema,
) -> Result<(usize, u64), Declined> {
    let watch = KeyWatch::new(key);
    let size = check_line(line, out, Some(&watch))?;
    Ok((size, watch.digest.get().finish()))
}

/// Most lines are read by `wire::scanner`'s checking reader; what it leaves, by the seeds
/// here.
fn check_line(line: &[u8], out: &mut Vec<u8>, key: Option<&KeyWatch>) -> Result<usize, Declined> {
    if let Some(size) = scanner::check_line(line, out, key) {
        return Ok(size);
    }
    if let Some(k) = key {
        // What the scanner added before it gave up.
        k.digest.set(KeyDigest::default());
    }
    check_line_with_serde(line, out, key)
}
