//! Which data files (and how far into the next) are durably written, from the batches
//! that writers acknowledge in any order. A position never moves backwards, and it only
//! covers lines whose every earlier line is written too.

use std::collections::{BTreeSet, VecDeque};

use crate::checkpoint::{ImportPosition, PartialFile};

/// One file's batches. Only those from the first unacknowledged one on are kept, and the
/// written prefix is summed as it grows: what a position needs stays the same size and
/// costs the same to compute however many batches went before (at ten million items, a
/// position summed from every batch was a growing share of the import's CPU, issue 16).
#[derive(Debug, Default)]
struct FileTrack {
    url: String,
    /// Last line and items of each batch from `contiguous` on, by sequence number.
    pending: VecDeque<(u64, u64)>,
    /// Sequence numbers of acknowledged batches from `contiguous` on.
    acked: BTreeSet<usize>,
    /// Batches 0..contiguous are all acknowledged.
    contiguous: usize,
    /// Their items, and the last line of the last of them.
    done_items: u64,
    done_last_line: Option<u64>,
    read_to_end: bool,
}

impl FileTrack {
    fn complete(&self) -> bool {
        self.read_to_end && self.pending.is_empty()
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
    /// Files of this run written whole.
    complete_files: usize,
}

impl Tracker {
    /// Start from `base` (empty for a fresh import).
    pub fn new(base: ImportPosition) -> Self {
        Self {
            files: Vec::new(),
            base,
            written_now: 0,
            complete_files: 0,
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
        f.pending.push_back((last_line, items));
        f.contiguous + f.pending.len() - 1
    }

    /// The file was read to its end (every batch of it is sent).
    pub fn read_to_end(&mut self, file: usize) {
        let f = &mut self.files[file];
        let was = f.complete();
        f.read_to_end = true;
        self.complete_files += usize::from(!was && f.complete());
    }

    /// A batch was written.
    pub fn acked(&mut self, file: usize, seq: usize) {
        let f = &mut self.files[file];
        let was = f.complete();
        self.written_now += f.pending[seq - f.contiguous].1;
        f.acked.insert(seq);
        while f.acked.remove(&f.contiguous) {
            let (last_line, items) = f.pending.pop_front().expect("a sent batch");
            f.done_items += items;
            f.done_last_line = Some(last_line);
            f.contiguous += 1;
        }
        self.complete_files += usize::from(!was && f.complete());
    }

    /// How many files of this run are written whole: when it grows, a position is worth
    /// recording.
    pub fn complete_files(&self) -> usize {
        self.complete_files
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
            target: self.base.target.clone(),
        };
        let base_partial = self.base.partial.clone();
        for f in &self.files {
            let from_base = base_partial.as_ref().filter(|p| p.file == f.url);
            pos.items_written += f.done_items;
            if f.complete() {
                pos.files_done.push(f.url.clone());
                continue;
            }
            let lines_done = f
                .done_last_line
                .unwrap_or_else(|| from_base.map(|p| p.lines_done).unwrap_or(0));
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
        assert_eq!(t.complete_files(), 1);
        t.read_to_end(b);
        assert_eq!(t.complete_files(), 2);
        assert_eq!(
            t.position().files_done,
            vec!["a".to_string(), "b".to_string()]
        );
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
            target: None,
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
