//! Progress while a run goes: a bar per table on a terminal, a log line per running
//! table every ten seconds otherwise. Log lines go through the bars so they never tear.

use std::io::{IsTerminal, Write};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use ddbx_core::progress::{Phase, RunProgress, TableProgress};
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
    let task = tokio::spawn(async move {
        let mut shown: Vec<(Arc<TableProgress>, ProgressBar, Instant)> = Vec::new();
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
            for t in run.tables() {
                if !shown.iter().any(|(s, ..)| Arc::ptr_eq(s, &t)) {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(
                        ProgressStyle::with_template("{prefix:30!} {bar:24} {pos:>10} items {msg}")
                            .expect("valid template"),
                    );
                    bar.set_prefix(t.table.clone());
                    shown.push((t, bar, Instant::now()));
                }
            }
            let log_now = !use_bars && last_log.elapsed() >= Duration::from_secs(10);
            for (t, bar, since) in &mut shown {
                if bar.is_finished() {
                    continue;
                }
                if t.phase() == Phase::Waiting {
                    *since = Instant::now();
                }
                let items = t.items.load(Ordering::Relaxed);
                let expected = t.expected_items.load(Ordering::Relaxed);
                let secs = since.elapsed().as_secs_f64().max(0.001);
                let units_rate = t.units() / secs;
                let bytes = t.bytes.load(Ordering::Relaxed);
                let eta = if expected > items && items > 0 {
                    let remaining = (expected - items) as f64 * secs / items as f64;
                    format!(" ETA {}s", remaining.round())
                } else {
                    String::new()
                };
                let phase = match t.phase() {
                    Phase::Waiting => "waiting",
                    Phase::Running => "",
                    Phase::Done => "done",
                    Phase::Failed => "FAILED",
                };
                bar.set_length(expected.max(items));
                bar.set_position(items);
                bar.set_message(format!(
                    "{} {:.1} {unit_word} units/s{eta} {phase}",
                    human_bytes(bytes),
                    units_rate
                ));
                if log_now && t.phase() == Phase::Running {
                    tracing::info!(table = %t.table, items, expected, bytes, units_per_s = format!("{units_rate:.1}"), "progress");
                }
                if matches!(t.phase(), Phase::Done | Phase::Failed) && !bar.is_finished() {
                    bar.finish();
                }
            }
            if log_now {
                last_log = Instant::now();
            }
            if done {
                for (_, bar, _) in &shown {
                    bar.finish();
                }
                let _ = multi.clear();
                return;
            }
        }
    });
    Renderer { stop, task }
}

fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", UNITS[u])
}
