//! `ddbx export --resume RUN` with the rest of a command line: a scheduler re-runs the
//! same command with `--resume` added, so every flag the run's plan records may be given
//! again. One that agrees with the plan is accepted; one that contradicts it is refused,
//! naming the plan's value (the run goes on as planned, or not at all).

use crate::aws::Aws;
use crate::engine::Engine;
use crate::export::{ExportSettings, Prepared};
use crate::plan::{table_folder, ExportPlan, RunLayout, TableFilter};
use crate::report::TableReport;
use crate::{Error, Result};

/// The engine that made the run at `run_root` (its plan's), for `export --resume` without
/// `--engine`.
pub async fn engine_of(aws: &Aws, run_root: &str) -> Result<String> {
    Ok(load_plan(aws, run_root).await?.engine)
}

async fn load_plan(aws: &Aws, run_root: &str) -> Result<ExportPlan> {
    let run_dir = aws.storage.open_existing(run_root)?;
    let plan_path = run_dir.join("export-plan.json");
    let bytes = run_dir.get_optional(&plan_path).await?.ok_or_else(|| {
        Error::Usage(format!(
            "{}: no export-plan.json here: --resume takes the root of a ddbx export run",
            run_dir.url()
        ))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
        file: run_dir.url_of(&plan_path),
        message: format!("not an export plan: {e}"),
    })
}

/// Load the run at `run_root` to continue it: its plan (against which `settings` are
/// checked), its base and layout, and each table's description (from its `table.json`).
pub(super) async fn prepare(
    aws: &Aws,
    settings: &ExportSettings,
    engine: &dyn Engine,
    run_root: &str,
) -> Result<Prepared> {
    let run_dir = aws.storage.open_existing(run_root)?;
    let plan_path = run_dir.join("export-plan.json");
    let plan = load_plan(aws, run_root).await?;
    if plan.engine != engine.name() {
        return Err(Error::Usage(format!(
            "{}: this run was made by the {} engine: resume it with --engine {} (not {})",
            run_dir.url(),
            plan.engine,
            plan.engine,
            engine.name()
        )));
    }
    if !engine.resumes_exports() {
        return Err(Error::Usage(format!(
            "{}: this run was made by the {} engine, whose runs are not resumed (start a new run)",
            run_dir.url(),
            plan.engine
        )));
    }
    if plan.region != aws.region {
        return Err(Error::Usage(format!(
            "{}: the run exports tables of {}; pass --region {}",
            run_dir.url(),
            plan.region,
            plan.region
        )));
    }
    let layout = RunLayout {
        region: plan.region.clone(),
        app: plan.app.clone(),
        started: plan.started_at,
    };
    // The base location is the run root less `<region>/<app>/YYYY/MM/DD/HH_MM.SS`.
    let rel = layout.run_dir();
    let base_str = run_root
        .trim_end_matches('/')
        .strip_suffix(&rel)
        .map(|b| b.trim_end_matches('/'))
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{run_root}: its plan says the run lives at <base>/{rel}: give that path"
            ))
        })?;
    let base = aws.storage.open_existing(base_str)?;
    let given_base = match settings.to.as_str() {
        "" => None,
        to => Some(aws.storage.open_existing(to)?.url()),
    };
    check(
        settings,
        &plan,
        &run_dir.url_of(&plan_path),
        &base.url(),
        given_base.as_deref(),
    )?;
    let run_dir = base.child(&rel);
    let mut schemas = Vec::new();
    let mut failed_early = Vec::new();
    let mut tables = Vec::new();
    for t in &plan.tables {
        let table_json = run_dir.join(&format!("{}/table.json", table_folder(&t.table)));
        let schema = match run_dir.get_optional(&table_json).await? {
            Some(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt {
                file: run_dir.url_of(&table_json),
                message: format!("not a table description: {e}"),
            }),
            None => aws.describe_table(&t.table).await,
        };
        match schema {
            Ok(s) => {
                schemas.push(s);
                tables.push(t.clone());
            }
            Err(e) => failed_early.push(TableReport::failed(&t.table, e)),
        }
    }
    Ok(Prepared {
        base,
        layout,
        run_dir,
        plan: ExportPlan { tables, ..plan },
        schemas,
        failed_early,
    })
}

/// Refuse what `settings` gives that `plan` (read from `plan_url`) contradicts. `base` is
/// the base location the run lives under, and `given_base` the `--to` given, both as URLs.
pub(crate) fn check(
    settings: &ExportSettings,
    plan: &ExportPlan,
    plan_url: &str,
    base: &str,
    given_base: Option<&str>,
) -> Result<()> {
    let refuse = |flag: &str, given: &dyn std::fmt::Display, planned: &dyn std::fmt::Display| {
        Err(Error::Usage(format!(
            "{flag} {given} contradicts the run being resumed: its plan ({plan_url}) has {planned}; drop the flag or start a new run"
        )))
    };
    if !settings.app.is_empty() && settings.app != plan.app {
        return refuse("--app", &settings.app, &format!("app {}", plan.app));
    }
    if let Some(to) = given_base {
        if to.trim_end_matches('/') != base.trim_end_matches('/') {
            return refuse("--to", &to, &format!("the run under {base}"));
        }
    }
    let given = settings.selection();
    let selects = !(given.tables.is_empty()
        && given.table_names.is_empty()
        && given.excludes.is_empty()
        && given.exclude_file.is_none());
    if selects {
        match &plan.selection {
            Some(planned) => {
                let same = |a: &[String], b: &[String]| {
                    let mut a = a.to_vec();
                    let mut b = b.to_vec();
                    a.sort();
                    b.sort();
                    a == b
                };
                let checks = [
                    ("--tables", &given.tables, &planned.tables),
                    ("--table", &given.table_names, &planned.table_names),
                    ("--exclude", &given.excludes, &planned.excludes),
                ];
                for (flag, g, p) in checks {
                    if !same(g, p) {
                        return refuse(flag, &list(g), &format!("{flag} {}", list(p)));
                    }
                }
                if given.exclude_file != planned.exclude_file {
                    return refuse(
                        "--exclude-file",
                        &given.exclude_file.as_deref().unwrap_or("(none)"),
                        &format!(
                            "--exclude-file {}",
                            planned.exclude_file.as_deref().unwrap_or("(none)")
                        ),
                    );
                }
            }
            // A plan from before selections were recorded: the flags must at least select
            // every table it holds.
            None => {
                let filter = TableFilter::new(&given.tables, &given.excludes)?
                    .with_names(&given.table_names)?;
                if let Some(t) = plan.tables.iter().find(|t| !filter.matches(&t.table)) {
                    return refuse(
                        "--tables/--table/--exclude",
                        &list(&given.tables),
                        &format!("table {} (which these flags do not select)", t.table),
                    );
                }
            }
        }
    }
    if let Some(r) = settings.read_ratio {
        if (r - plan.read_ratio).abs() > 1e-9 {
            return refuse(
                "--read-ratio",
                &r,
                &format!("readRatio {}", plan.read_ratio),
            );
        }
    }
    if let Some(f) = settings.format {
        if f != plan.format {
            return refuse(
                "--format",
                &f.name(),
                &format!("format {}", plan.format.name()),
            );
        }
    }
    if let Some(c) = settings.compression {
        if c != plan.compression {
            return refuse(
                "--compression",
                &c.name(),
                &format!("compression {}", plan.compression.name()),
            );
        }
    }
    if let Some(t) = settings.run_time {
        if t != plan.started_at {
            return refuse(
                "--run-time",
                &t.to_rfc3339(),
                &format!("startedAt {}", plan.started_at.to_rfc3339()),
            );
        }
    }
    for t in &plan.tables {
        if let Some(u) = settings.max_read_units {
            if (u - t.target_read_units).abs() > 1e-6 {
                return refuse(
                    "--max-read-units",
                    &u,
                    &format!("targetReadUnits {} for {}", t.target_read_units, t.table),
                );
            }
        }
        if let Some(n) = settings.segments {
            if n != t.segments {
                return refuse(
                    "--segments",
                    &n,
                    &format!("segments {} for {}", t.segments, t.table),
                );
            }
        }
        if let Some(n) = settings.spike_read_units {
            match &t.capacity_spike {
                Some(spike) if spike.to == n => {}
                Some(spike) => {
                    return refuse(
                        "--spike-read-units",
                        &n,
                        &format!("a spike to {} for {}", spike.to, t.table),
                    )
                }
                None => {
                    return refuse(
                        "--spike-read-units",
                        &n,
                        &format!("no capacity spike for {}", t.table),
                    )
                }
            }
        }
    }
    Ok(())
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Compression, DataFormat, PlanSelection, PlannedTable};
    use chrono::TimeZone;

    fn plan() -> ExportPlan {
        ExportPlan {
            storage_class: None,
            ddbx_version: "0".into(),
            app: "billing".into(),
            region: "us-east-1".into(),
            run_root: "s3://b/base/us-east-1/billing/2026/11/24/03_00.00".into(),
            started_at: chrono::Utc.with_ymd_and_hms(2026, 11, 24, 3, 0, 0).unwrap(),
            format: DataFormat::DynamodbJson,
            compression: Compression::Gzip,
            read_ratio: 0.45,
            engine: "local".into(),
            note: None,
            engine_settings: None,
            selection: Some(PlanSelection {
                tables: vec!["BILLING_".into()],
                excludes: vec!["BILLING_tmp".into()],
                ..PlanSelection::default()
            }),
            tables: vec![PlannedTable {
                table: "BILLING_orders".into(),
                key_schema: vec![],
                billing_mode: "PROVISIONED".into(),
                read_capacity_units: Some(100),
                size_bytes: 0,
                item_count_estimate: 0,
                target_read_units: 45.0,
                segments: 2,
                destination: String::new(),
                capacity_spike: None,
            }],
        }
    }

    fn check_with(f: impl FnOnce(&mut ExportSettings)) -> Result<()> {
        let mut s = ExportSettings::default();
        f(&mut s);
        check(&s, &plan(), "PLAN", "s3://b/base", None)
    }

    #[test]
    fn the_same_command_line_is_accepted() {
        check_with(|_| {}).unwrap();
        check_with(|s| {
            s.app = "billing".into();
            s.tables = vec!["BILLING_".into()];
            s.excludes = vec!["BILLING_tmp".into()];
            s.read_ratio = Some(0.45);
            s.format = Some(DataFormat::DynamodbJson);
            s.compression = Some(Compression::Gzip);
            s.segments = Some(2);
            s.max_read_units = Some(45.0);
            s.run_time = Some(plan().started_at);
        })
        .unwrap();
        let s = ExportSettings::default();
        check(&s, &plan(), "PLAN", "s3://b/base", Some("s3://b/base/")).unwrap();
    }

    #[test]
    fn a_contradicting_flag_is_refused_naming_the_plan() {
        type Change = Box<dyn FnOnce(&mut ExportSettings)>;
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|s| s.app = "other".into()), "app billing"),
            (
                Box::new(|s| s.tables = vec!["OTHER".into()]),
                "--tables BILLING_",
            ),
            (
                Box::new(|s| s.tables = vec!["BILLING_".into()]),
                "--exclude BILLING_tmp",
            ),
            (Box::new(|s| s.read_ratio = Some(0.5)), "readRatio 0.45"),
            (
                Box::new(|s| s.format = Some(DataFormat::Emr)),
                "format dynamodb-json",
            ),
            (
                Box::new(|s| s.compression = Some(Compression::Zstd)),
                "compression gzip",
            ),
            (
                Box::new(|s| s.segments = Some(8)),
                "segments 2 for BILLING_orders",
            ),
            (
                Box::new(|s| s.max_read_units = Some(10.0)),
                "targetReadUnits 45",
            ),
            (
                Box::new(|s| s.spike_read_units = Some(500)),
                "no capacity spike",
            ),
            (
                Box::new(|s| s.run_time = Some(chrono::Utc::now())),
                "startedAt 2026-11-24T03:00:00",
            ),
        ];
        for (f, want) in cases {
            let err = check_with(f).unwrap_err().to_string();
            assert!(err.contains(want) && err.contains("PLAN"), "{err}");
        }
        let err = check(
            &ExportSettings::default(),
            &plan(),
            "PLAN",
            "s3://b/base",
            Some("s3://b/elsewhere"),
        )
        .unwrap_err();
        assert!(err.to_string().contains("s3://b/base"), "{err}");
    }

    #[test]
    fn an_old_plan_without_a_selection_checks_the_tables_it_holds() {
        let mut old = plan();
        old.selection = None;
        let mut s = ExportSettings {
            tables: vec!["BILLING_".into()],
            ..ExportSettings::default()
        };
        check(&s, &old, "PLAN", "s3://b/base", None).unwrap();
        s.tables = vec!["USERS_".into()];
        let err = check(&s, &old, "PLAN", "s3://b/base", None).unwrap_err();
        assert!(err.to_string().contains("BILLING_orders"), "{err}");
    }
}
