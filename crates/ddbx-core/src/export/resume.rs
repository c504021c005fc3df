//! `ddbx export --resume RUN` with the rest of a command line: a scheduler re-runs the
//! same command with `--resume` added, so every flag the run's plan records may be given
//! again. One that agrees with the plan is accepted; one that contradicts it is refused,
//! naming the plan's value (the run goes on as planned, or not at all).

use crate::aws::Aws;
use crate::engine::Engine;
use crate::export::{ExportSettings, Prepared};
use crate::plan::{table_folder, ExportPlan, PlanSelection, PlannedTable, RunLayout, TableFilter};
use crate::report::TableReport;
use crate::spool::Spool;
use crate::table::Schemas;
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
    let mut schemas = Schemas::default();
    let mut failed_early = Vec::new();
    let mut tables = Spool::new("the plan's tables");
    for t in plan.tables.iter() {
        let t = t?;
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
                schemas.push(&s)?;
                tables.push(&t)?;
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

/// Refuse an `--object-lock` the plan contradicts (a resumed run keeps its retention).
fn check_lock(settings: &ExportSettings, plan: &ExportPlan, plan_url: &str) -> Result<()> {
    let Some(asked) = settings.object_lock else {
        return Ok(());
    };
    let planned = match &plan.object_lock {
        Some(l) if l.request() == asked => return Ok(()),
        Some(l) => format!(
            "objectLock {} for {} days (until {})",
            l.mode.name(),
            l.days,
            l.retain_until
        ),
        None => "no objectLock".into(),
    };
    Err(Error::Usage(format!(
        "--object-lock {} --retain {} contradicts the run being resumed: its plan ({plan_url}) has {planned}; drop the flag or start a new run",
        asked.mode.name().to_lowercase(),
        asked.days
    )))
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
    let refusal = Refusal { plan_url };
    refusal.check_place(settings, plan, base, given_base)?;
    refusal.check_selection(&settings.selection(), plan)?;
    refusal.check_run_wide(settings, plan)?;
    check_lock(settings, plan, plan_url)?;
    for t in plan.tables.iter() {
        refusal.check_table(settings, &t?)?;
    }
    Ok(())
}

/// How a flag that contradicts the plan at `plan_url` is refused.
struct Refusal<'a> {
    plan_url: &'a str,
}

impl Refusal<'_> {
    /// Refuse `flag` given as `given`, naming what the plan has (`planned`).
    fn refuse(
        &self,
        flag: &str,
        given: &dyn std::fmt::Display,
        planned: &dyn std::fmt::Display,
    ) -> Result<()> {
        Err(Error::Usage(format!(
            "{flag} {given} contradicts the run being resumed: its plan ({}) has {planned}; drop the flag or start a new run",
            self.plan_url
        )))
    }

    /// The app, and the base the run lives under.
    fn check_place(
        &self,
        settings: &ExportSettings,
        plan: &ExportPlan,
        base: &str,
        given_base: Option<&str>,
    ) -> Result<()> {
        if !settings.app.is_empty() && settings.app != plan.app {
            return self.refuse("--app", &settings.app, &format!("app {}", plan.app));
        }
        if let Some(to) = given_base {
            if to.trim_end_matches('/') != base.trim_end_matches('/') {
                return self.refuse("--to", &to, &format!("the run under {base}"));
            }
        }
        Ok(())
    }

    /// The flags that select tables, when any is given: the plan's selection, in any
    /// order; or (a plan from before selections were recorded) ones that select every
    /// table it holds.
    fn check_selection(&self, given: &PlanSelection, plan: &ExportPlan) -> Result<()> {
        let selects = !(given.tables.is_empty()
            && given.table_names.is_empty()
            && given.excludes.is_empty()
            && given.exclude_file.is_none());
        if !selects {
            return Ok(());
        }
        let Some(planned) = &plan.selection else {
            let filter =
                TableFilter::new(&given.tables, &given.excludes)?.with_names(&given.table_names)?;
            let unselected = plan
                .tables
                .iter()
                .find(|t| t.as_ref().map_or(true, |t| !filter.matches(&t.table)));
            return match unselected.transpose()? {
                Some(t) => self.refuse(
                    "--tables/--table/--exclude",
                    &list(&given.tables),
                    &format!("table {} (which these flags do not select)", t.table),
                ),
                None => Ok(()),
            };
        };
        let checks = [
            ("--tables", &given.tables, &planned.tables),
            ("--table", &given.table_names, &planned.table_names),
            ("--exclude", &given.excludes, &planned.excludes),
        ];
        for (flag, g, p) in checks {
            if !same_set(g, p) {
                return self.refuse(flag, &list(g), &format!("{flag} {}", list(p)));
            }
        }
        if given.exclude_file != planned.exclude_file {
            return self.refuse(
                "--exclude-file",
                &given.exclude_file.as_deref().unwrap_or("(none)"),
                &format!(
                    "--exclude-file {}",
                    planned.exclude_file.as_deref().unwrap_or("(none)")
                ),
            );
        }
        Ok(())
    }

    /// What the plan records once for the run: read ratio, format, compression, start.
    fn check_run_wide(&self, settings: &ExportSettings, plan: &ExportPlan) -> Result<()> {
        if let Some(r) = settings.read_ratio {
            if (r - plan.read_ratio).abs() > 1e-9 {
                return self.refuse(
                    "--read-ratio",
                    &r,
                    &format!("readRatio {}", plan.read_ratio),
                );
            }
        }
        if let Some(f) = settings.format {
            if f != plan.format {
                return self.refuse(
                    "--format",
                    &f.name(),
                    &format!("format {}", plan.format.name()),
                );
            }
        }
        if let Some(c) = settings.compression {
            if c != plan.compression {
                return self.refuse(
                    "--compression",
                    &c.name(),
                    &format!("compression {}", plan.compression.name()),
                );
            }
        }
        if let Some(t) = settings.run_time {
            if t != plan.started_at {
                return self.refuse(
                    "--run-time",
                    &t.to_rfc3339(),
                    &format!("startedAt {}", plan.started_at.to_rfc3339()),
                );
            }
        }
        Ok(())
    }

    /// What the plan records per table: its read rate, its segments, its capacity spike.
    fn check_table(&self, settings: &ExportSettings, t: &PlannedTable) -> Result<()> {
        if let Some(u) = settings.max_read_units {
            if (u - t.target_read_units).abs() > 1e-6 {
                return self.refuse(
                    "--max-read-units",
                    &u,
                    &format!("targetReadUnits {} for {}", t.target_read_units, t.table),
                );
            }
        }
        if let Some(n) = settings.segments {
            if n != t.segments {
                return self.refuse(
                    "--segments",
                    &n,
                    &format!("segments {} for {}", t.segments, t.table),
                );
            }
        }
        if let Some(n) = settings.spike_read_units {
            return match &t.capacity_spike {
                Some(spike) if spike.to == n => Ok(()),
                Some(spike) => self.refuse(
                    "--spike-read-units",
                    &n,
                    &format!("a spike to {} for {}", spike.to, t.table),
                ),
                None => self.refuse(
                    "--spike-read-units",
                    &n,
                    &format!("no capacity spike for {}", t.table),
                ),
            };
        }
        Ok(())
    }
}

/// Whether `a` and `b` hold the same names, in any order.
fn same_set(a: &[String], b: &[String]) -> bool {
    let mut a = a.to_vec();
    let mut b = b.to_vec();
    a.sort();
    b.sort();
    a == b
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
    use crate::plan::{Compression, DataFormat};
    use chrono::TimeZone;

    fn plan() -> ExportPlan {
        ExportPlan {
            storage_class: None,
            object_lock: None,
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
            tables: [PlannedTable {
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
            }]
            .into_iter()
            .collect(),
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

    const REFUSAL: Refusal<'static> = Refusal { plan_url: "PLAN" };

    #[test]
    fn a_refusal_names_the_flag_what_was_given_and_the_plan() {
        let err = REFUSAL.refuse("--segments", &8, &"segments 2").unwrap_err();
        assert!(matches!(err, Error::Usage(_)));
        assert_eq!(
            err.to_string(),
            "--segments 8 contradicts the run being resumed: its plan (PLAN) has segments 2; drop the flag or start a new run"
        );
    }

    #[test]
    fn a_selection_is_compared_as_sets_and_only_when_given() {
        let mut p = plan();
        p.selection.as_mut().unwrap().tables = vec!["B_".into(), "A_".into()];
        let given = |tables: &[&str], excludes: &[&str]| PlanSelection {
            tables: tables.iter().map(|s| s.to_string()).collect(),
            excludes: excludes.iter().map(|s| s.to_string()).collect(),
            ..PlanSelection::default()
        };
        REFUSAL.check_selection(&given(&[], &[]), &p).unwrap();
        REFUSAL
            .check_selection(&given(&["A_", "B_"], &["BILLING_tmp"]), &p)
            .unwrap();
        let err = REFUSAL
            .check_selection(&given(&["A_"], &["BILLING_tmp"]), &p)
            .unwrap_err();
        assert!(err.to_string().contains("--tables A_ contradicts"), "{err}");
        let mut file = given(&["A_", "B_"], &["BILLING_tmp"]);
        file.exclude_file = Some("x.txt".into());
        let err = REFUSAL.check_selection(&file, &p).unwrap_err();
        assert!(
            err.to_string().contains("has --exclude-file (none)"),
            "{err}"
        );
    }

    #[test]
    fn each_planned_table_keeps_its_rate_segments_and_spike() {
        let t = &plan().tables.get(0).unwrap();
        let with = |f: fn(&mut ExportSettings)| {
            let mut s = ExportSettings::default();
            f(&mut s);
            REFUSAL.check_table(&s, t)
        };
        with(|_| {}).unwrap();
        with(|s| s.max_read_units = Some(45.0000001)).unwrap();
        let err = with(|s| s.segments = Some(3)).unwrap_err();
        assert!(
            err.to_string()
                .contains("has segments 2 for BILLING_orders"),
            "{err}"
        );
        let err = with(|s| s.spike_read_units = Some(10)).unwrap_err();
        assert!(
            err.to_string()
                .contains("no capacity spike for BILLING_orders"),
            "{err}"
        );
    }

    #[test]
    fn run_wide_settings_equal_to_the_plan_pass() {
        let p = plan();
        let mut s = ExportSettings {
            read_ratio: Some(0.45),
            compression: Some(Compression::Gzip),
            ..ExportSettings::default()
        };
        REFUSAL.check_run_wide(&s, &p).unwrap();
        s.compression = Some(Compression::Zstd);
        let err = REFUSAL.check_run_wide(&s, &p).unwrap_err();
        assert!(err.to_string().starts_with("--compression zstd"), "{err}");
    }

    #[test]
    fn same_set_ignores_order_not_content() {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(same_set(&v(&["a", "b"]), &v(&["b", "a"])));
        assert!(!same_set(&v(&["a"]), &v(&["a", "a"])));
        assert!(!same_set(&v(&["a"]), &v(&["b"])));
    }
}
