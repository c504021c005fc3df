//! Progress while a run goes. On a terminal: a run line (tables done of all, items, bytes,
//! elapsed time, and an ETA when every unfinished table's size is known), then a line per
//! table (every running one, and others while there is room: a fleet of thousands keeps
//! the lines of the few that matter, not one per table): a bar when its size is known, a
//! counter with its rate when it is not (DynamoDB's estimate is 0, or already passed), and
//! what an engine that polls last saw. Elsewhere: a
//! log line per running table and one for the run every ten seconds. Log lines go through
//! the bars so they never tear.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ddbx_core::progress::{Phase, Retired, RunProgress, TableProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::oneshot;

static BARS: OnceLock<MultiProgress> = OnceLock::new();

/// Writes log lines above the bars when bars are drawn, to stderr otherwise.
#[derive(Debug, Default, Clone, Copy)]
pub struct LogWriter;

/// One log line being written.
pub struct LogLine(Vec<u8>);

impl Write for LogLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        let text = text.trim_end_matches('\n');
        match BARS.get() {
            Some(bars) if !bars.is_hidden() => {
                let _ = bars.println(text);
            }
            _ => eprintln!("{text}"),
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = LogLine;
    fn make_writer(&'a self) -> LogLine {
        LogLine(Vec::new())
    }
}

/// A running renderer.
pub struct Renderer {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Renderer {
    /// Draw a last time and stop.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// One table as the display sees it at one moment.
#[derive(Debug, Clone, PartialEq)]
struct Snapshot {
    phase: Phase,
    items: u64,
    expected: u64,
    bytes: u64,
    units: f64,
    /// Seconds since the table started running.
    seconds: f64,
    state: Option<String>,
}

impl Snapshot {
    fn of(t: &TableProgress, seconds: f64) -> Self {
        Self {
            phase: t.phase(),
            items: t.items.load(Ordering::Relaxed),
            expected: t.expected_items.load(Ordering::Relaxed),
            bytes: t.bytes.load(Ordering::Relaxed),
            units: t.units(),
            seconds,
            state: t.state(),
        }
    }

    /// Whether the table's size is known: an estimate that has not been passed.
    fn sized(&self) -> bool {
        self.expected > 0 && self.items <= self.expected
    }

    fn finished(&self) -> bool {
        matches!(self.phase, Phase::Done | Phase::Failed)
    }

    /// Items per second so far.
    fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.items as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// The text after a table's bar or counter.
fn table_message(s: &Snapshot, unit_word: &str) -> String {
    let mut parts = Vec::new();
    match s.phase {
        Phase::Waiting => parts.push("waiting".to_string()),
        Phase::Done => parts.push("done".to_string()),
        Phase::Failed => parts.push("FAILED".to_string()),
        Phase::Running => {}
    }
    if s.items > 0 || s.phase == Phase::Running {
        parts.push(human_bytes(s.bytes));
        if s.seconds > 0.0 {
            parts.push(format!("{:.0} items/s", s.rate()));
            parts.push(format!("{:.1} {unit_word} units/s", s.units / s.seconds));
        }
        if s.phase == Phase::Running {
            if s.sized() && s.rate() > 0.0 && s.items < s.expected {
                let left = (s.expected - s.items) as f64 / s.rate();
                parts.push(format!("ETA {}", human_seconds(left)));
            } else if s.expected > 0 && !s.sized() {
                parts.push(format!("past the estimate of {}", s.expected));
            } else if s.expected == 0 {
                parts.push("size unknown".to_string());
            }
            parts.push(human_seconds(s.seconds));
        }
    }
    if let Some(state) = &s.state {
        if !s.finished() {
            parts.push(state.clone());
        }
    }
    parts.join("  ")
}

/// The run line: tables done of all, items, bytes, elapsed, and an ETA when every
/// unfinished table has a known size and they are moving (at their own rates so far).
/// `tables` are the registered tables' snapshots; `retired` what those folded away did,
/// and `planned` the run's tables (some not registered yet).
fn run_line(tables: &[Snapshot], retired: Retired, planned: usize, elapsed: f64) -> String {
    let folded = retired.done + retired.failed;
    let done = tables.iter().filter(|t| t.finished()).count() + folded;
    let failed = tables.iter().filter(|t| t.phase == Phase::Failed).count() + retired.failed;
    let items: u64 = tables.iter().map(|t| t.items).sum::<u64>() + retired.items;
    let bytes: u64 = tables.iter().map(|t| t.bytes).sum::<u64>() + retired.bytes;
    let all = planned.max(tables.len() + folded);
    let mut line = format!(
        "run: {done}/{all} tables{}  {items} items  {}  {}",
        if failed > 0 {
            format!(" ({failed} failed)")
        } else {
            String::new()
        },
        human_bytes(bytes),
        human_seconds(elapsed)
    );
    // The pace of what is left: the unfinished tables' own rates (none for a table not
    // started yet, whose size is not known).
    let unfinished: Vec<&Snapshot> = tables.iter().filter(|t| !t.finished()).collect();
    let rate: f64 = unfinished.iter().map(|t| t.rate()).sum();
    let all_registered = all == tables.len() + folded;
    if !unfinished.is_empty()
        && all_registered
        && unfinished.iter().all(|t| t.sized())
        && rate > 0.0
    {
        let left: u64 = unfinished.iter().map(|t| t.expected - t.items).sum();
        line.push_str(&format!("  ETA {}", human_seconds(left as f64 / rate)));
    }
    line
}

/// The most lines of tables drawn at once. A running table always has one; a waiting or
/// finished one only while there is room, and finished tables' lines give way, oldest
/// first: a run of ten thousand tables draws (and keeps) the few that matter, and counts
/// the rest in its run line.
const MAX_LINES: usize = 40;

/// The tables drawn, each with its line, keyed by their counters' address (kept alive by
/// the run's progress for the whole run).
#[derive(Default)]
struct Lines {
    drawn: std::collections::HashMap<usize, Line>,
    /// Lines added so far (each line's age).
    added: u64,
}

struct Line {
    bar: ProgressBar,
    /// The table's counters, held while the line is drawn: its key (their address) is
    /// not another table's while the line lives.
    _counters: Arc<TableProgress>,
    /// When the table started running.
    since: Option<Instant>,
    age: u64,
}

impl Lines {
    /// `t`'s line: the one it has, else a new one when it runs or there is room.
    fn line_of(
        &mut self,
        t: &Arc<TableProgress>,
        multi: &MultiProgress,
        style: &ProgressStyle,
    ) -> Option<&mut Line> {
        let key = Arc::as_ptr(t) as usize;
        if !self.drawn.contains_key(&key) {
            let phase = t.phase();
            let room = phase == Phase::Waiting && self.drawn.len() < MAX_LINES;
            if phase != Phase::Running && !room {
                return None;
            }
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(style.clone());
            bar.set_prefix(t.table.clone());
            self.added += 1;
            let age = self.added;
            self.drawn.insert(
                key,
                Line {
                    bar,
                    _counters: t.clone(),
                    since: None,
                    age,
                },
            );
        }
        self.drawn.get_mut(&key)
    }

    /// Remove finished tables' lines, oldest first, while there are more than
    /// [`MAX_LINES`].
    fn make_room(&mut self, multi: &MultiProgress) {
        if self.drawn.len() <= MAX_LINES {
            return;
        }
        let mut finished: Vec<(u64, usize)> = self
            .drawn
            .iter()
            .filter(|(_, l)| l.bar.is_finished())
            .map(|(k, l)| (l.age, *k))
            .collect();
        finished.sort_unstable();
        let excess = self.drawn.len() - MAX_LINES;
        for (_, key) in finished.into_iter().take(excess) {
            if let Some(line) = self.drawn.remove(&key) {
                multi.remove(&line.bar);
            }
        }
    }
}

impl Line {
    /// Bring the line up to `t`'s counters; their snapshot.
    fn draw(
        &mut self,
        t: &TableProgress,
        bar_style: &ProgressStyle,
        counter_style: &ProgressStyle,
        unit_word: &str,
    ) -> Snapshot {
        if t.phase() != Phase::Waiting && self.since.is_none() {
            self.since = Some(Instant::now());
        }
        let seconds = self.since.map_or(0.0, |s| s.elapsed().as_secs_f64());
        let s = Snapshot::of(t, seconds);
        if self.bar.is_finished() {
            return s;
        }
        if s.sized() {
            self.bar.set_style(bar_style.clone());
            self.bar.set_length(s.expected);
        } else {
            self.bar.set_style(counter_style.clone());
            self.bar.tick();
        }
        self.bar.set_position(s.items);
        self.bar.set_message(table_message(&s, unit_word));
        if s.finished() {
            // (finish() would fill the bar: a counter would then show 0.)
            self.bar.abandon();
        }
        s
    }
}

/// Start rendering `run`'s progress; `bars` allows bars when stderr is a terminal.
/// `unit_word` names the capacity ("read" or "write").
pub fn start(run: RunProgress, bars: bool, unit_word: &'static str) -> Renderer {
    let use_bars = bars && std::io::stderr().is_terminal();
    let multi = BARS.get_or_init(|| MultiProgress::with_draw_target(ProgressDrawTarget::hidden()));
    if use_bars {
        multi.set_draw_target(ProgressDrawTarget::stderr());
    }
    let multi = multi.clone();
    let (stop, mut stopped) = oneshot::channel();
    let bar_style =
        ProgressStyle::with_template("{prefix:30!} [{bar:24}] {pos:>10}/{len} items  {msg}")
            .expect("valid template")
            .progress_chars("=> ");
    let counter_style =
        ProgressStyle::with_template("{prefix:30!} {spinner} {pos:>10} items  {msg}")
            .expect("valid template");
    let task = tokio::spawn(async move {
        let started = Instant::now();
        let header = multi.add(ProgressBar::new(0));
        header.set_style(ProgressStyle::with_template("{msg}").expect("valid template"));
        let mut lines = Lines::default();
        let mut last_log = Instant::now();
        let tick = if use_bars {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(1)
        };
        loop {
            let done = tokio::select! {
                _ = tokio::time::sleep(tick) => false,
                _ = &mut stopped => true,
            };
            let log_now = !use_bars && last_log.elapsed() >= Duration::from_secs(10);
            let tables = run.tables();
            let mut snapshots = Vec::with_capacity(tables.len());
            for t in &tables {
                let Some(line) = lines.line_of(t, &multi, &counter_style) else {
                    // Not drawn: counted in the run line only (it has not started, or it
                    // ended before a line was free).
                    snapshots.push(Snapshot::of(t, 0.0));
                    continue;
                };
                let s = line.draw(t, &bar_style, &counter_style, unit_word);
                if log_now && s.phase == Phase::Running {
                    tracing::info!(table = %t.table, items = s.items, expected = s.expected, bytes = s.bytes, units_per_s = format!("{:.1}", s.units / s.seconds.max(0.001)), state = s.state.as_deref().unwrap_or(""), "progress");
                }
                snapshots.push(s);
            }
            lines.make_room(&multi);
            let line = run_line(
                &snapshots,
                run.retired(),
                run.planned(),
                started.elapsed().as_secs_f64(),
            );
            header.set_message(line.clone());
            if log_now {
                if !snapshots.is_empty() {
                    tracing::info!("{line}");
                }
                last_log = Instant::now();
            }
            if done {
                header.abandon();
                for line in lines.drawn.values() {
                    line.bar.abandon();
                }
                let _ = multi.clear();
                return;
            }
        }
    });
    Renderer { stop, task }
}

/// Bytes as a person reads them (1.5 MiB).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}

fn human_seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running(items: u64, expected: u64, seconds: f64) -> Snapshot {
        Snapshot {
            phase: Phase::Running,
            items,
            expected,
            bytes: items * 100,
            units: items as f64 * 0.5,
            seconds,
            state: None,
        }
    }

    #[test]
    fn a_table_of_unknown_size_is_a_counter_not_a_full_bar() {
        // dynalite reports ItemCount 0: no bar, a rate and the time instead.
        let s = running(14_600, 0, 10.0);
        assert!(!s.sized());
        let m = table_message(&s, "read");
        assert!(
            m.contains("1460 items/s") && m.contains("size unknown") && m.contains("10s"),
            "{m}"
        );
        assert!(!m.contains("ETA"), "{m}");
    }

    #[test]
    fn an_estimate_passed_stops_pretending() {
        let s = running(25_000, 20_000, 10.0);
        assert!(!s.sized());
        let m = table_message(&s, "read");
        assert!(
            m.contains("past the estimate of 20000") && !m.contains("ETA"),
            "{m}"
        );
    }

    #[test]
    fn a_table_of_known_size_has_a_bar_and_an_eta() {
        let s = running(1_000, 4_000, 10.0);
        assert!(s.sized());
        let m = table_message(&s, "write");
        assert!(
            m.contains("ETA 30s") && m.contains("50.0 write units/s"),
            "{m}"
        );
    }

    #[test]
    fn the_run_line_counts_tables_and_has_an_eta_only_when_every_size_is_known() {
        let done = Snapshot {
            phase: Phase::Done,
            ..running(500, 500, 5.0)
        };
        let none = Retired::default();
        let line = run_line(&[done.clone(), running(500, 2_000, 10.0)], none, 0, 10.0);
        assert!(line.starts_with("run: 1/2 tables  1000 items"), "{line}");
        // 1,500 left at the running table's 50 items/s.
        assert!(line.ends_with("ETA 30s"), "{line}");
        // A table not registered yet has no known size: no ETA.
        let line = run_line(&[done.clone(), running(500, 2_000, 10.0)], none, 3, 10.0);
        assert!(line.starts_with("run: 1/3 tables"), "{line}");
        assert!(!line.contains("ETA"), "{line}");
        let line = run_line(&[done, running(500, 0, 10.0)], none, 0, 10.0);
        assert!(!line.contains("ETA"), "{line}");
        // Tables folded away count in every total.
        let retired = Retired {
            done: 7,
            failed: 2,
            items: 100,
            bytes: 2048,
        };
        let line = run_line(&[running(500, 2_000, 10.0)], retired, 10, 10.0);
        assert!(
            line.starts_with("run: 9/10 tables (2 failed)  600 items  50.8 KiB"),
            "{line}"
        );
        assert!(line.ends_with("ETA 30s"), "{line}");
        let failed = Snapshot {
            phase: Phase::Failed,
            ..running(0, 0, 1.0)
        };
        assert!(run_line(&[failed], none, 1, 2.0).contains("1/1 tables (1 failed)"));
    }

    #[test]
    fn an_engine_that_polls_shows_what_it_saw() {
        let s = Snapshot {
            state: Some("cluster j-1 RUNNING, step PENDING".into()),
            ..running(0, 0, 30.0)
        };
        assert!(table_message(&s, "read").contains("cluster j-1 RUNNING, step PENDING"));
    }

    #[test]
    fn a_fleet_draws_its_running_tables_and_no_more_lines_than_fit() {
        let multi = MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template("{prefix} {msg}").unwrap();
        let run = RunProgress::default();
        let tables: Vec<_> = (0..1000).map(|i| run.table(&format!("T{i:04}"))).collect();
        let mut lines = Lines::default();
        let tick = |lines: &mut Lines| {
            for t in run.tables() {
                if let Some(line) = lines.line_of(&t, &multi, &style) {
                    line.draw(&t, &style, &style, "read");
                }
            }
            lines.make_room(&multi);
        };
        // Waiting tables take the room there is, no more.
        tick(&mut lines);
        assert_eq!(lines.drawn.len(), MAX_LINES);
        // Tables far down the list that run get a line though the room is taken...
        for t in &tables[500..504] {
            t.set_phase(Phase::Running);
        }
        tick(&mut lines);
        assert!(tables[500..504]
            .iter()
            .all(|t| lines.drawn.contains_key(&(Arc::as_ptr(t) as usize))));
        // ...and when the first tables end, their lines give way: the lines drawn come
        // back to the limit, the running ones kept.
        for t in &tables[..10] {
            t.set_phase(Phase::Done);
        }
        tick(&mut lines);
        assert_eq!(lines.drawn.len(), MAX_LINES);
        assert!(tables[500..504]
            .iter()
            .all(|t| lines.drawn.contains_key(&(Arc::as_ptr(t) as usize))));
        assert!(!lines
            .drawn
            .contains_key(&(Arc::as_ptr(&tables[0]) as usize)));
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_seconds(59.4), "59s");
        assert_eq!(human_seconds(125.0), "2m05s");
        assert_eq!(human_seconds(7300.0), "2h01m");
    }
}
