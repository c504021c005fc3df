//! The local engine's check of an import's export, before its target is created or
//! written: every data file read once, as the writing pass will read it (decompressed,
//! every record decoded and checked against DynamoDB's rules and the target's key, MD5 and
//! item counts against the manifests), so that a bad file fails its table with nothing
//! written and no table created. On the way, the keys of the export's items are compared:
//! a key given twice (which a real export never holds) is counted and reported, since the
//! table then keeps one item where the export has two.

use crate::checkpoint::{Checkpoints, ImportPosition};
use crate::engine::interface::{SourceCheck, SourceChecked};
use crate::format::reader::ItemReader;
use crate::format::vouch::Vouched;
use crate::plan::DataFormat;
use crate::{Error, Result};

/// Keys compared at most per table: 8 bytes each, so at most 64 MB.
const MAX_KEYS_COMPARED: usize = 8_000_000;

/// The checkpoint of an import's `n`th part: 0 the export, then each window of a chain.
pub(super) fn checkpoint_name(n: usize) -> String {
    match n {
        0 => "checkpoint.json".to_string(),
        n => format!("checkpoint-window-{n:03}.json"),
    }
}

/// Check the export of one table (see the module's notes).
pub(super) async fn check_source(c: SourceCheck<'_>) -> Result<SourceChecked> {
    if c.resume && already_imported(&c).await? {
        return Ok(SourceChecked {
            validated: true,
            ..SourceChecked::default()
        });
    }
    c.progress.set_state("checking every file before any write");
    let mut keys: Vec<u64> = Vec::new();
    let mut capped = false;
    let mut scratch = Vec::new();
    // What the writing pass need not check again (`format::vouch`): the export's lines.
    let source = c.source;
    let vouched = (!source.changes && source.format == DataFormat::DynamodbJson)
        .then(|| Vouched::new(c.key.cloned()))
        .flatten();
    let parts = std::iter::once(source).chain(c.changes);
    for (n, src) in parts.enumerate() {
        // Only the export's own items: a window's records may repeat its keys.
        let compare = n == 0 && !src.changes && c.key.is_some();
        let record = n == 0 && vouched.is_some();
        for f in &src.files {
            let mut r = ItemReader::open(&src.dir, f, src.format)
                .await?
                .changes(src.changes)
                .with_key(c.key.cloned());
            if record {
                r = r.recording();
            }
            while r.check_next(&mut scratch).await? {
                if c.stop.is_stopped() {
                    return Err(Error::Interrupted);
                }
                match r.last_key() {
                    Some(k) if compare && keys.len() < MAX_KEYS_COMPARED => keys.push(k),
                    Some(_) if compare => capped = true,
                    _ => {}
                }
            }
            if let Some((v, lines)) = vouched.as_ref().zip(r.take_record()) {
                v.keep(&f.url, lines)?;
            }
        }
    }
    c.progress.state.lock().unwrap().take();
    let compared = keys.len();
    keys.sort_unstable();
    let duplicate_keys = keys.windows(2).filter(|w| w[0] == w[1]).count() as u64;
    Ok(SourceChecked {
        validated: true,
        duplicate_keys,
        duplicates_checked_up_to: capped.then_some(compared as u64),
        vouched: vouched.map(std::sync::Arc::new),
    })
}

/// Whether an earlier run of this import wrote the whole table into this very target
/// (every checkpoint of the table complete, and recorded for the table as it is now).
async fn already_imported(c: &SourceCheck<'_>) -> Result<bool> {
    let Some(existing) = c.existing else {
        return Ok(false);
    };
    let checkpoints = Checkpoints::new(c.state, "_import", c.target);
    for n in 0..=c.changes.len() {
        let pos: Option<ImportPosition> = checkpoints.load(&checkpoint_name(n)).await?;
        let done = pos.is_some_and(|p| {
            p.complete
                && p.target
                    .as_ref()
                    .is_some_and(|t| t.same_table(&existing.identity()))
        });
        if !done {
            return Ok(false);
        }
    }
    Ok(true)
}
