//! Which data files (and how far into the next) are durably written, from the batches
//! that writers acknowledge in any order. A position never moves backwards, and it only
//! covers lines whose every earlier line is written too.

use std::collections::BTreeSet;

use crate::run::checkpoint::{ImportPosition, PartialFile};

#[derive(Debug, Default)]
struct FileTrack {
    url: String,
    /// Last line of each batch, by sequence number.
    last_lines: Vec<u64>,
    /// Items of each batch, by sequence number.
    items: Vec<u64>,
    acked: BTreeSet<usize>,
    /// Batches 0..contiguous are all acknowledged.
    contiguous: usize,
    read_to_end: bool,
}

impl FileTrack {
    fn complete(&self) -> bool {
        self.read_to_end && self.contiguous == self.last_lines.len()
    }
}

/// Tracks an import's position.
#[derive(Debug)]
pub struct Tracker {
    files: Vec<FileTrack>,
    /// Position recorded before this run (resume): its files come first.
    base: ImportPosition,
    /// Items acknowledged in this run.
    written_now: u64,
}

impl Tracker {
    /// Start from `base` (empty for a fresh import).
    pub fn new(base: ImportPosition) -> Self {
        Self {
            files: Vec::new(),
            base,
            written_now: 0,
        }
    }

    /// A file starts being read; returns its index.
    pub fn open_file(&mut self, url: &str) -> usize {
        self.files.push(FileTrack {
            url: url.to_string(),
            ..FileTrack::default()
        });
        self.files.len() - 1
    }

    /// A batch of `items` items ending at `last_line` was sent; returns its sequence number.
    pub fn sent(&mut self, file: usize, last_line: u64, items: u64) -> usize {
        let f = &mut self.files[file];
        f.last_lines.push(last_line);
        f.items.push(items);
        f.last_lines.len() - 1
    }

    /// The file was read to its end (every batch of it is sent).
    pub fn read_to_end(&mut self, file: usize) {
        self.files[file].read_to_end = true;
    }

    /// A batch was written.
    pub fn acked(&mut self, file: usize, seq: usize) {
        let f = &mut self.files[file];
        self.written_now += f.items[seq];
        f.acked.insert(seq);
        while f.acked.contains(&f.contiguous) {
            f.contiguous += 1;
        }
    }

    /// Items written, each counted once (earlier runs included).
    pub fn items_written(&self) -> u64 {
        self.base.items_written + self.written_now
    }

    /// The position to record: files done in order, then how far into the first unfinished.
    pub fn position(&self) -> ImportPosition {
        let mut pos = ImportPosition {
            files_done: self.base.files_done.clone(),
            partial: None,
            items_written: self.base.items_written,
            complete: false,
        };
        let base_partial = self.base.partial.clone();
        for f in &self.files {
            let from_base = base_partial.as_ref().filter(|p| p.file == f.url);
            let done_items: u64 = f.items[..f.contiguous].iter().sum();
            pos.items_written += done_items;
            if f.complete() {
                pos.files_done.push(f.url.clone());
                continue;
            }
            let lines_done = if f.contiguous > 0 {
                f.last_lines[f.contiguous - 1]
            } else {
                from_base.map(|p| p.lines_done).unwrap_or(0)
            };
            pos.partial = (lines_done > 0).then(|| PartialFile {
                file: f.url.clone(),
                lines_done,
            });
            return pos;
        }
        if pos.partial.is_none() {
            pos.partial = base_partial.filter(|p| !self.files.iter().any(|f| f.url == p.file));
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_acks_only_advance_a_contiguous_prefix() {
        let mut t = Tracker::new(ImportPosition::default());
        let a = t.open_file("a");
        let s0 = t.sent(a, 25, 25);
        let s1 = t.sent(a, 50, 25);
        let s2 = t.sent(a, 60, 10);
        t.read_to_end(a);
        let b = t.open_file("b");
        let b0 = t.sent(b, 25, 25);
        t.acked(a, s1);
        t.acked(b, b0);
        assert_eq!(t.position().partial, None, "nothing contiguous yet");
        assert_eq!(t.position().items_written, 0);
        t.acked(a, s0);
        let p = t.position();
        assert_eq!(
            p.partial,
            Some(PartialFile {
                file: "a".into(),
                lines_done: 50
            })
        );
        assert_eq!(p.items_written, 50);
        t.acked(a, s2);
        let p = t.position();
        assert_eq!(p.files_done, vec!["a".to_string()]);
        assert_eq!(
            p.partial,
            Some(PartialFile {
                file: "b".into(),
                lines_done: 25
            })
        );
        assert_eq!(p.items_written, 85);
        assert_eq!(t.items_written(), 85);
    }

    #[test]
    fn resumed_position_keeps_earlier_progress() {
        let base = ImportPosition {
            files_done: vec!["a".into()],
            partial: Some(PartialFile {
                file: "b".into(),
                lines_done: 40,
            }),
            items_written: 100,
            complete: false,
        };
        let mut t = Tracker::new(base.clone());
        assert_eq!(t.position(), base, "no progress yet: same position");
        let b = t.open_file("b");
        let s = t.sent(b, 65, 25); // lines 41..65
        assert_eq!(t.position().partial.unwrap().lines_done, 40);
        t.acked(b, s);
        t.read_to_end(b);
        let p = t.position();
        assert_eq!(p.files_done, vec!["a".to_string(), "b".to_string()]);
        assert_eq!(p.items_written, 125);
    }
}
