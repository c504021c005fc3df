//! Progress of a run, as counters the engines bump and the binary renders (bars on a
//! terminal, log lines otherwise). The library never prints.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

/// Where one table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Not started.
    Waiting = 0,
    /// Reading or writing items.
    Running = 1,
    /// Finished well.
    Done = 2,
    /// Failed.
    Failed = 3,
}

/// Counters of one table.
#[derive(Debug)]
pub struct TableProgress {
    /// The table's name.
    pub table: String,
    /// Items expected (DynamoDB's estimate or the manifest's count; 0 when unknown).
    pub expected_items: AtomicU64,
    /// Bytes expected (0 when unknown).
    pub expected_bytes: AtomicU64,
    /// Items done.
    pub items: AtomicU64,
    /// Bytes done (item sizes by DynamoDB's rules).
    pub bytes: AtomicU64,
    /// Capacity units consumed, in thousandths.
    pub milli_units: AtomicU64,
    phase: AtomicU8,
    /// The error that failed it.
    pub error: Mutex<Option<String>>,
    /// What an engine that polls last saw (`cluster j-1 RUNNING, step PENDING`).
    pub state: Mutex<Option<String>>,
}

impl TableProgress {
    /// New counters for `table`.
    pub fn new(table: &str) -> Self {
        Self {
            table: table.to_string(),
            expected_items: AtomicU64::new(0),
            expected_bytes: AtomicU64::new(0),
            items: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            milli_units: AtomicU64::new(0),
            phase: AtomicU8::new(Phase::Waiting as u8),
            error: Mutex::new(None),
            state: Mutex::new(None),
        }
    }

    /// Say what the table's work is doing, as an engine that polls sees it.
    pub fn set_state(&self, state: impl Into<String>) {
        *self.state.lock().unwrap() = Some(state.into());
    }

    /// What the table's work was last seen doing.
    pub fn state(&self) -> Option<String> {
        self.state.lock().unwrap().clone()
    }

    /// Count items, bytes and capacity units done.
    pub fn add(&self, items: u64, bytes: u64, units: f64) {
        self.items.fetch_add(items, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.milli_units
            .fetch_add((units * 1000.0).round() as u64, Ordering::Relaxed);
    }

    /// What the table is expected to hold (DynamoDB's estimate, or the manifests' count).
    pub fn expect(&self, items: u64, bytes: u64) {
        self.expected_items.store(items, Ordering::Relaxed);
        self.expected_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The table failed with `error`.
    pub fn fail(&self, error: &str) {
        self.set_phase(Phase::Failed);
        *self.error.lock().unwrap() = Some(error.to_string());
    }

    /// Capacity units consumed so far.
    pub fn units(&self) -> f64 {
        self.milli_units.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Move to `phase`.
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.phase.load(Ordering::Relaxed) {
            0 => Phase::Waiting,
            1 => Phase::Running,
            2 => Phase::Done,
            _ => Phase::Failed,
        }
    }
}

/// The counters of every table of a run, shared between the engine and the renderer.
#[derive(Debug, Default, Clone)]
pub struct RunProgress {
    tables: Arc<Mutex<Registered>>,
}

/// The tables registered, in order, and where each is (a fleet of thousands registers
/// each in constant time, not by a search of those before it).
#[derive(Debug, Default)]
struct Registered {
    order: Vec<Arc<TableProgress>>,
    index: std::collections::HashMap<String, usize>,
}

impl RunProgress {
    /// The counters of `table`, registered on first use (an engine that polls asks for
    /// them again and again: it gets the same counters).
    pub fn table(&self, table: &str) -> Arc<TableProgress> {
        let mut tables = self.tables.lock().unwrap();
        if let Some(&i) = tables.index.get(table) {
            return tables.order[i].clone();
        }
        let t = Arc::new(TableProgress::new(table));
        let i = tables.order.len();
        tables.order.push(t.clone());
        tables.index.insert(table.to_string(), i);
        t
    }

    /// Every registered table, in the order registered.
    pub fn tables(&self) -> Vec<Arc<TableProgress>> {
        self.tables.lock().unwrap().order.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_asked_for_twice_has_one_set_of_counters() {
        let run = RunProgress::default();
        let a = run.table("a");
        a.add(3, 30, 1.5);
        run.table("a").add(1, 10, 0.5);
        run.table("b");
        assert_eq!(run.tables().len(), 2);
        assert_eq!(a.items.load(Ordering::Relaxed), 4);
        assert_eq!(a.units(), 2.0);
    }
}
