//! Scan answers as DynamoDB sends them, turned straight into native export lines.
//!
//! Why this is hand-written: profiling an export against the canned endpoint
//! (`docs/BENCHMARKS.md`) put 31 % of ddbx's CPU in the AWS SDK's deserialisation of Scan
//! answers and another 15 % in allocating and freeing the item maps it builds, against
//! 23 % for gzip. The native format is the wire format with names sorted, so a page can
//! go from the answer's bytes to export lines in one pass with `serde_json`, borrowing
//! every string that has no escapes and building no item.
//!
//! Most answers never reach these seeds: [`WirePage::parse`] first tries
//! `wire::scanner`, a reader written for DynamoDB's layout alone (why: the profile
//! after this reader, issue 16), which gives the same page or leaves the answer to them.
//!
//! What comes out is, byte for byte, what [`dynamodb_json::encode_line`] writes for the
//! item the SDK would have built, and each size is [`item_size`] of that item; the
//! property tests in `aws::wire_scan` check both against the SDK's own parser. Anything
//! unusual (a type key this code does not know, a `null`, a name given twice, base64
//! that is not in canonical form, two type keys in one value) makes [`WirePage::parse`]
//! refuse the whole page, and the caller falls back to the SDK's parse.
//!
//! [`dynamodb_json::encode_line`]: crate::item::dynamodb_json::encode_line
//! [`item_size`]: crate::item::validate::item_size
//!
//! The folder: [`page`] (the page and the `serde_json` reader), [`line`] (the checked lines
//! of data files, read by either), [`scanner`] (the fast reader), [`scan`] (the SDK hook that hands a Scan answer's
//! bytes to [`WirePage::parse`]) and [`write`] (BatchWriteItem calls whose requests are
//! already wire JSON).

pub(crate) mod line;
pub(crate) mod page;
pub(crate) mod scan;
pub(crate) mod scanner;
pub(crate) mod write;

pub use line::{checked_item, checked_keyed_item};
pub use page::{Declined, WirePage};

impl WirePage {
    /// Reads a Scan answer's body, or says why it leaves the page to the SDK.
    /// Most answers are read by [`scanner`]; what it leaves, by `serde_json`
    /// ([`WirePage::parse_with_serde`]).
    pub fn parse(body: &[u8]) -> Result<WirePage, Declined> {
        match scanner::parse(body) {
            Some(page) => Ok(page),
            None => WirePage::parse_with_serde(body),
        }
    }
}
