//! DynamoDB items, kept lossless, and the line codecs that turn them into text and back.
//!
//! An item is the SDK's own `HashMap<String, AttributeValue>`: numbers stay decimal
//! strings, binary stays bytes, so nothing is ever routed through `f64`. The codecs:
//! - [`dynamodb_json`]: AWS "Export to S3" lines, `{"Item":{"id":{"S":"x"}}}` (upper-case type keys);
//! - [`ion`]: AWS "Export to S3" lines in Amazon Ion, `$ion_1_0 {Item:{id:"x"}}`;
//! - [`connector`]: emr-dynamodb-connector lines, `{"id":{"s":"x"}}` (SDK-v1 type keys);
//! - [`data_pipeline`]: old Data Pipeline lines, `id\u{3}{"s":"x"}\u{2}...` (read only).
//!
//! Readers accept type keys in any letter case and validate every value ([`validate`]).

pub mod canonical;
pub mod connector;
pub mod data_pipeline;
pub mod dynamodb_json;
pub mod ion;
pub(crate) mod json;
pub mod key;
pub mod number;
#[cfg(test)]
pub(crate) mod test_support;
pub mod validate;

use std::collections::HashMap;

pub use aws_sdk_dynamodb::types::AttributeValue;

/// One DynamoDB item: attribute name to value.
pub type Item = HashMap<String, AttributeValue>;

/// One line of an incremental export: the item's keys, its image at the end of the window
/// (none: it was deleted), and when it was last written.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// The item's key attributes.
    pub keys: Item,
    /// The item as the window left it; `None` when the window deleted it.
    pub new_image: Option<Item>,
    /// `Metadata.WriteTimestampMicros`, when the line has it.
    pub write_micros: Option<u64>,
}

/// What an import applies to a table: an item to put, or the key of an item to delete.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// Put this item.
    Put(Item),
    /// Delete the item with this key.
    Delete(Item),
}

impl Change {
    /// The change as what to apply: a put of its new image, or a delete of its key.
    pub fn into_record(self) -> Record {
        match self.new_image {
            Some(item) => Record::Put(item),
            None => Record::Delete(self.keys),
        }
    }
}

/// A change line's keys must be those of its new image.
pub(crate) fn check_change_keys(keys: &Item, new_image: Option<&Item>) -> Result<(), ItemError> {
    if keys.is_empty() {
        return Err(ItemError::Shape("\"Keys\" is empty".into()));
    }
    if let Some(image) = new_image {
        for (name, value) in keys {
            if image.get(name) != Some(value) {
                return Err(ItemError::BadValue {
                    attribute: name.clone(),
                    message: "the key in Keys differs from the one in NewImage".into(),
                });
            }
        }
    }
    Ok(())
}

/// DynamoDB's maximum item size, names included (400 KB).
pub const MAX_ITEM_BYTES: usize = 400 * 1024;

/// The most maps and lists DynamoDB nests in one attribute: it allows 32 levels, counting
/// the top-level attribute as level 1 (an attribute wrapped in 31 maps is taken, 32 are
/// refused, as real DynamoDB answers).
pub const MAX_NESTED_CONTAINERS: usize = 31;

/// The longest attribute name DynamoDB takes (under 64 KB), in bytes; the shortest is 1.
pub const MAX_NAME_BYTES: usize = 65_535;

use crate::text::Quoted;

/// What is wrong with one line or value. The caller adds the file and line number. Data
/// values (and attribute paths, which hold names) are cut to about a hundred characters
/// when shown (`crate::text`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ItemError {
    /// The text is not JSON.
    #[error("not valid JSON: {}", crate::text::cut(.0))]
    Json(String),
    /// The text is not Ion.
    #[error("not valid Ion: {}", crate::text::cut(.0))]
    Ion(String),
    /// Valid JSON (or Ion), but not the shape of an item line.
    #[error("not an item: {}", crate::text::cut(.0))]
    Shape(String),
    /// A type key DynamoDB does not have.
    #[error("attribute {}: unknown type key {}", Quoted(.attribute), Quoted(.key))]
    UnknownType {
        /// Path of the attribute (`a.b[2]`).
        attribute: String,
        /// The offending key.
        key: String,
    },
    /// A value that does not fit its type (bad base64, non-string number, ...).
    #[error("attribute {}: {}", Quoted(.attribute), crate::text::cut(.message))]
    BadValue {
        /// Path of the attribute.
        attribute: String,
        /// What is wrong.
        message: String,
    },
    /// A number DynamoDB would refuse (over 38 digits, out of range, not a number).
    #[error("attribute {}: invalid number {}: {}", Quoted(.attribute), Quoted(.value), crate::text::cut(.message))]
    BadNumber {
        /// Path of the attribute.
        attribute: String,
        /// The text as found.
        value: String,
        /// Why it is refused.
        message: String,
    },
    /// SS, NS or BS with no members (DynamoDB has no empty sets).
    #[error("attribute {}: empty set", Quoted(.attribute))]
    EmptySet {
        /// Path of the attribute.
        attribute: String,
    },
    /// A set with the same member twice.
    #[error("attribute {}: duplicate set member", Quoted(.attribute))]
    DuplicateSetMember {
        /// Path of the attribute.
        attribute: String,
    },
    /// Over DynamoDB's 400 KB item limit.
    #[error("item is {size} bytes, over DynamoDB's limit of {MAX_ITEM_BYTES}")]
    TooLarge {
        /// The item's size by DynamoDB's rules.
        size: usize,
    },
    /// Maps and lists nested deeper than DynamoDB allows.
    #[error("attribute {}: nested deeper than DynamoDB's 32 levels", Quoted(.attribute))]
    TooDeep {
        /// Path of the attribute where the limit is passed.
        attribute: String,
    },
    /// An attribute name DynamoDB refuses: empty, or 64 KB or longer.
    #[error("attribute {}: a name of {size} bytes (DynamoDB takes 1 to {MAX_NAME_BYTES})", Quoted(.attribute))]
    BadName {
        /// Path of the attribute.
        attribute: String,
        /// The name's length in bytes.
        size: usize,
    },
    /// The same attribute name twice in one map.
    #[error("attribute {}: given twice", Quoted(.attribute))]
    DuplicateName {
        /// Path of the attribute.
        attribute: String,
    },
    /// A key attribute that the table's key refuses (missing, of another type, empty,
    /// too long).
    #[error("key attribute {} {}", Quoted(.attribute), .message)]
    BadKey {
        /// The key attribute.
        attribute: String,
        /// What is wrong.
        message: String,
    },
}
