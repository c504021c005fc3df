//! The final word of a command on stdout: text for people, JSON for scripts.

use std::io::Write as _;

use ddbx_core::plan::{ExportPlan, ImportStep};
use ddbx_core::report::{RunSummary, TableStatus};

use crate::args::Output;
use crate::exit_code;

/// Report an error that ended the command (one line; `-v` logs its every field);
/// returns its exit code.
pub fn fail(e: &ddbx_core::Error) -> u8 {
    tracing::debug!(error = ?e, "the error in full");
    eprintln!("ddbx: error: {e}");
    exit_code(Err(e))
}

fn units(n: f64) -> String {
    if n >= 100.0 {
        format!("{n:.0}")
    } else {
        format!("{n:.1}")
    }
}

/// Print `value` as pretty JSON, written as it is made (a fleet's summary, a base's runs
/// and a prune's decisions are read back one by one); the exit code of a failure.
pub fn print_json(value: &impl serde::Serialize) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer_pretty(&mut stdout, value)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout))
    {
        Ok(()) => crate::exit::OK,
        Err(e) => fail(&ddbx_core::Error::Failed(format!("printing: {e}"))),
    }
}

/// The values read back from a temporary file, up to one that cannot be, which is said.
fn until_unreadable<T>(
    values: impl Iterator<Item = ddbx_core::Result<T>>,
) -> impl Iterator<Item = T> {
    values.map_while(|v| v.map_err(|e| println!("error: {e}")).ok())
}

/// Print a run's summary.
pub fn summary(out: Output, s: &RunSummary) {
    if out == Output::Json {
        // (A summary that cannot be printed said so; the exit code is the run's.)
        print_json(s);
        return;
    }
    println!(
        "{} {}: {} ({} tables, {} failed)",
        s.job, s.run_root, s.status, s.tables, s.tables_failed
    );
    if let Some(state) = &s.state_root {
        println!("flags and checkpoints: {state}");
    }
    if let Some(t) = &s.as_of {
        println!("every table as of {t} (one instant for the run)");
    }
    println!(
        "{:<40} {:>10} {:>12} {:>12} {:>8} {:>9}",
        "TABLE", "STATUS", "ITEMS", "BYTES", "UNITS", "SECONDS"
    );
    for t in until_unreadable(s.table_reports.iter()) {
        let status = match t.status {
            TableStatus::Succeeded => "ok",
            TableStatus::Failed => "FAILED",
            TableStatus::Interrupted => "INTERRUPTED",
            TableStatus::Planned => "planned",
            TableStatus::Deferred => "deferred",
        };
        println!(
            "{:<40} {:>10} {:>12} {:>12} {:>8} {:>9.1}",
            t.table,
            status,
            t.items,
            t.bytes,
            units(t.units),
            t.seconds
        );
    }
    for (note, tables) in grouped_notes(s) {
        println!("note: {}: {note}", tables.join(", "));
    }
    if !s.excluded.is_empty() {
        println!(
            "excluded (by --exclude or an excludes file): {}",
            s.excluded.join(", ")
        );
    }
    for w in &s.warnings {
        println!("warning: {w}");
    }
    for e in &s.errors {
        println!("error: {e}");
    }
}

/// The tables' notes, each said once with the tables it is about (ten tables an
/// endpoint could not restore a setting of make one note, not ten), in the order their
/// first table comes. A note's own `table NAME: ` contexts (the source table an error
/// was about, recorded in its table.json) are left out: the line names the tables.
fn grouped_notes(s: &RunSummary) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    // (A report that cannot be read back was said in the table above.)
    for t in s.table_reports.iter().map_while(Result::ok) {
        let notes = t
            .note
            .iter()
            .cloned()
            .chain(t.settings.as_ref().and_then(|o| o.note()))
            .map(|n| without_table_contexts(&n));
        for note in notes {
            match groups.iter_mut().find(|(n, _)| *n == note) {
                Some((_, tables)) => tables.push(t.table.clone()),
                None => groups.push((note, vec![t.table.clone()])),
            }
        }
    }
    groups
}

/// `point-in-time recovery: table T: DescribeContinuousBackups: X` without `table T: `.
fn without_table_contexts(note: &str) -> String {
    let mut out = String::with_capacity(note.len());
    let mut rest = note;
    while let Some(at) = rest.find("table ") {
        let after = &rest[at + "table ".len()..];
        let name_end = after.find(|c: char| c.is_whitespace() || c == ':');
        let starts_word = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
        match name_end {
            Some(end) if starts_word && end > 0 && after[end..].starts_with(": ") => {
                out.push_str(&rest[..at]);
                rest = &after[end + 2..];
            }
            _ => {
                out.push_str(&rest[..at + "table ".len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Print an export plan (dry run).
pub fn plan(out: Output, p: &ExportPlan, s: &RunSummary) {
    if out == Output::Json {
        let v = serde_json::json!({ "plan": p, "summary": s });
        println!(
            "{}",
            serde_json::to_string_pretty(&v).expect("plans serialize")
        );
        return;
    }
    println!("dry run: nothing is written");
    println!("run root:    {}", p.run_root);
    println!(
        "format:      {} ({})",
        p.format.name(),
        p.compression.name()
    );
    println!("read ratio:  {}", p.read_ratio);
    println!("engine:      {}", p.engine);
    if let Some(note) = &p.note {
        println!("note:        {note}");
    }
    println!(
        "{:<36} {:<26} {:<16} {:>6} {:>12} {:>10} {:>10} {:>5}",
        "TABLE", "KEY", "BILLING", "RCU", "SIZE", "ITEMS~", "TARGET/s", "SEGS"
    );
    for t in until_unreadable(p.tables.iter()) {
        let key = t
            .key_schema
            .iter()
            .map(|k| format!("{}:{}", k.attribute_name, k.attribute_type))
            .collect::<Vec<_>>()
            .join(",");
        println!(
            "{:<36} {:<26} {:<16} {:>6} {:>12} {:>10} {:>10} {:>5}",
            t.table,
            key,
            t.billing_mode,
            t.read_capacity_units
                .map(|r| r.to_string())
                .unwrap_or_else(|| "-".into()),
            t.size_bytes,
            t.item_count_estimate,
            units(t.target_read_units),
            t.segments
        );
        println!("    -> {}", t.destination);
        if let Some(spike) = &t.capacity_spike {
            println!("    capacity: {spike}");
        }
    }
    for e in &s.errors {
        println!("error: {e}");
    }
}

/// Print what an import would do (dry run).
pub fn import_plan(out: Output, steps: &[ImportStep]) {
    if out == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(steps).expect("steps serialize")
        );
        return;
    }
    println!("dry run: nothing is written");
    for s in steps {
        println!(
            "{} -> {}: {} files ({}), {} items, write ratio {}, {} write units/s; target: {}",
            s.source_table,
            s.target_table,
            s.files,
            s.format.name(),
            s.expected_items
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into()),
            s.write_ratio,
            s.target_write_units
                .map(units)
                .unwrap_or_else(|| "?".into()),
            s.target_state
        );
        println!("    from {}", s.source);
    }
}

/// Print verify's verdicts.
pub fn verdicts(out: Output, vs: &[ddbx_core::verify::Verdict]) {
    if out == Output::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(vs).expect("verdicts serialize")
        );
        return;
    }
    for v in vs {
        let word = if v.matches { "MATCH" } else { "MISMATCH" };
        print!(
            "{word} {} -> {}: export {} items, table {} items",
            v.source_table, v.target_table, v.export_items, v.table_items
        );
        if let (Some(d), Some(m), Some(x)) = (v.differing, v.missing, v.extra) {
            print!(", {d} differing, {m} missing, {x} extra");
        }
        println!();
        if let Some(e) = &v.error {
            println!("    error: {e}");
        }
        for ex in &v.examples {
            println!("    {ex}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ddbx_core::plan::RunLayout;
    use ddbx_core::report::TableReport;

    #[test]
    fn a_note_repeated_per_table_is_said_once_naming_the_tables() {
        let layout = RunLayout {
            region: "r".into(),
            app: "a".into(),
            started: chrono::Utc::now(),
        };
        let tables = ["A", "B", "C"]
            .iter()
            .map(|t| TableReport {
                note: Some(if *t == "B" {
                    "other".into()
                } else {
                    "same".into()
                }),
                ..TableReport::planned(t)
            })
            .collect();
        let s = RunSummary::for_job("import", &layout, "root".into(), tables, None);
        assert_eq!(
            grouped_notes(&s),
            vec![
                ("same".into(), vec!["A".to_string(), "C".into()]),
                ("other".into(), vec!["B".into()])
            ]
        );
        // The same error about each table's own source: one note.
        let tables = ["A", "B"]
            .iter()
            .map(|t| TableReport {
                note: Some(format!("NOT restored: point-in-time recovery: table SRC_{t}: DescribeContinuousBackups: UnknownOperationException (when exported: not recorded)")),
                ..TableReport::planned(t)
            })
            .collect();
        let s = RunSummary::for_job("import", &layout, "root".into(), tables, None);
        assert_eq!(
            grouped_notes(&s),
            vec![("NOT restored: point-in-time recovery: DescribeContinuousBackups: UnknownOperationException (when exported: not recorded)".into(), vec!["A".to_string(), "B".into()])]
        );
        assert_eq!(
            without_table_contexts("a table T1 is big; table.json: x; Xtable Y: z"),
            "a table T1 is big; table.json: x; Xtable Y: z"
        );
    }
}
