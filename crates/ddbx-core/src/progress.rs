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
/// each in constant time, not by a search of those before it). A table that has ended and
/// whose counters no engine holds any more is folded into [`Retired`] once more than
/// [`LIVE`] are registered: a fleet's run holds the counters of the tables at work and of
/// the last few to end, not of every table.
#[derive(Debug, Default)]
struct Registered {
    order: Vec<Arc<TableProgress>>,
    index: std::collections::HashMap<String, usize>,
    retired: Retired,
    planned: usize,
    /// Registered tables past which the next sweep comes.
    sweep_at: usize,
}

/// What the tables folded away did, for the run's totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Retired {
    /// Tables that ended well.
    pub done: usize,
    /// Tables that failed.
    pub failed: usize,
    /// Their items.
    pub items: u64,
    /// Their bytes.
    pub bytes: u64,
}

/// Tables registered before ended ones are folded away.
pub const LIVE: usize = 256;

impl RunProgress {
    /// The counters of `table`, registered on first use (an engine that polls asks for
    /// them again and again: it gets the same counters, as long as it holds them or the
    /// table has not ended).
    pub fn table(&self, table: &str) -> Arc<TableProgress> {
        let mut tables = self.tables.lock().unwrap();
        if let Some(&i) = tables.index.get(table) {
            return tables.order[i].clone();
        }
        if tables.order.len() >= tables.sweep_at.max(LIVE) {
            tables.sweep();
        }
        let t = Arc::new(TableProgress::new(table));
        let i = tables.order.len();
        tables.order.push(t.clone());
        tables.index.insert(table.to_string(), i);
        t
    }

    /// Say how many tables the run has, registered or not yet (the display counts them).
    pub fn plan_tables(&self, tables: usize) {
        self.tables.lock().unwrap().planned = tables;
    }

    /// The tables of the run: those planned, or those registered if more.
    pub fn planned(&self) -> usize {
        let t = self.tables.lock().unwrap();
        t.planned
            .max(t.order.len() + t.retired.done + t.retired.failed)
    }

    /// Every registered table not folded away, in the order registered.
    pub fn tables(&self) -> Vec<Arc<TableProgress>> {
        self.tables.lock().unwrap().order.clone()
    }

    /// What the tables folded away did.
    pub fn retired(&self) -> Retired {
        self.tables.lock().unwrap().retired
    }
}

impl Registered {
    /// Fold away the tables that ended and whose counters only this holds.
    fn sweep(&mut self) {
        let retired = &mut self.retired;
        self.order.retain(|t| {
            let phase = t.phase();
            let ended = matches!(phase, Phase::Done | Phase::Failed);
            if !ended || Arc::strong_count(t) > 1 {
                return true;
            }
            if phase == Phase::Done {
                retired.done += 1;
            } else {
                retired.failed += 1;
            }
            retired.items += t.items.load(Ordering::Relaxed);
            retired.bytes += t.bytes.load(Ordering::Relaxed);
            false
        });
        self.index = self
            .order
            .iter()
            .enumerate()
            .map(|(i, t)| (t.table.clone(), i))
            .collect();
        // The next sweep once as many again are registered: constant time a table.
        self.sweep_at = self.order.len() * 2;
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

    #[test]
    fn ended_tables_no_engine_holds_are_folded_into_the_totals() {
        let run = RunProgress::default();
        run.plan_tables(3 * LIVE);
        let held = run.table("held");
        held.set_phase(Phase::Done);
        let running = run.table("running");
        running.set_phase(Phase::Running);
        let waiting = run.table("waiting");
        for i in 0..3 * LIVE {
            let t = run.table(&format!("t{i}"));
            t.add(2, 10, 0.0);
            t.set_phase(if i % 10 == 0 {
                Phase::Failed
            } else {
                Phase::Done
            });
        }
        let live = run.tables();
        assert!(live.len() <= 2 * LIVE, "{} live", live.len());
        // What is held or has not ended stays, with its counters.
        for kept in [&held, &running, &waiting] {
            assert!(live.iter().any(|t| Arc::ptr_eq(t, kept)), "{}", kept.table);
            assert!(Arc::ptr_eq(&run.table(&kept.table), kept));
        }
        // Every table is counted once, folded or not.
        let r = run.retired();
        let ended: Vec<_> = live.iter().filter(|t| t.table.starts_with('t')).collect();
        assert_eq!(r.done + r.failed + ended.len(), 3 * LIVE);
        let items: u64 = ended.iter().map(|t| t.items.load(Ordering::Relaxed)).sum();
        assert_eq!(r.items + items, 2 * 3 * LIVE as u64);
        let failed = ended.iter().filter(|t| t.phase() == Phase::Failed).count();
        assert_eq!(r.failed + failed, (3 * LIVE).div_ceil(10));
        assert_eq!(run.planned(), 3 * LIVE + 3);
    }
}
