//! An export's plan: per selected table its key, capacity, target rate, segments and
//! capacity spike, and at the end the restore plan of what succeeded.

use chrono::Utc;
use futures::StreamExt;

use crate::aws::Aws;
use crate::capacity;
use crate::engine::Engine;
use crate::export::select::select_tables;
use crate::export::{ExportSettings, Prepared};
use crate::plan::{
    default_segments, table_folder, ExportPlan, PlanSelection, PlannedTable, RestoreStep,
    RunLayout, DEFAULT_WRITE_RATIO,
};
use crate::report::{Reports, TableReport, TableStatus};
use crate::run::lifecycle::{document, Document};
use crate::spool::Spool;
use crate::store::Location;
use crate::table::{Schemas, TableSchema};
use crate::Result;

/// Select the tables of a new run and plan each.
pub(super) async fn prepare(
    aws: &Aws,
    settings: &ExportSettings,
    engine: &dyn Engine,
) -> Result<Prepared> {
    let format = engine.export_format(settings.format)?;
    let now = Utc::now();
    let started = settings.run_time.unwrap_or(now);
    if started > now + chrono::Duration::days(1) && !settings.allow_future_run_time {
        return Err(crate::Error::Usage(format!(
            "run time {started} is more than a day after now ({now}): a typo? Runs are ranked by their time, so that run would be the newest (for --from latest, and what prune keeps) until then; pass --allow-future-run-time if it is meant"
        )));
    }
    let selection = select_tables(aws, settings, started).await?;
    let run_dir = selection.base.child(&selection.layout.run_dir());
    let mut plan = ExportPlan {
        ddbx_version: env!("CARGO_PKG_VERSION").into(),
        app: settings.app.clone(),
        region: aws.region.clone(),
        run_root: run_dir.url(),
        started_at: started,
        format,
        compression: settings.compression(),
        read_ratio: settings.read_ratio(),
        engine: engine.name().into(),
        selection: Some(PlanSelection {
            excluded: selection.excluded.clone(),
            ..settings.selection()
        }),
        note: engine.plan_note(),
        engine_settings: engine.plan_settings(),
        storage_class: aws.storage.storage_class().map(str::to_string),
        // Counted from now, when the objects are written (not from a --run-time past).
        object_lock: settings.object_lock.map(|asked| asked.from(now)),
        tables: Spool::new("the plan's tables"),
    };
    let mut failed_early = Vec::new();
    let mut schemas = Schemas::default();
    // Eight tables described at a time, each kept (in `Schemas`) as it comes, in order:
    // a fleet's descriptions are never all in memory at once.
    let mut described = futures::stream::iter(selection.tables)
        .map(|name| async {
            let planned = described_and_planned(aws, settings, engine, &run_dir, &name).await;
            (name, planned)
        })
        .buffered(DESCRIBED_AT_ONCE);
    while let Some((name, planned)) = described.next().await {
        match planned {
            Ok((schema, planned)) => {
                schemas.push(&schema)?;
                plan.tables.push(&planned)?;
            }
            Err(e) => failed_early.push(TableReport::failed(&name, e)),
        }
    }
    drop(described);
    // Credentials refused or an endpoint never reached: no table can be exported.
    if let Some(stop) = aws.stopped() {
        return Err(stop);
    }
    Ok(Prepared {
        base: selection.base,
        layout: selection.layout,
        run_dir,
        plan,
        schemas,
        failed_early,
    })
}

/// Tables described (and their settings read) at once.
const DESCRIBED_AT_ONCE: usize = 8;

/// One table described, its settings read, and planned.
async fn described_and_planned(
    aws: &Aws,
    settings: &ExportSettings,
    engine: &dyn Engine,
    run_dir: &Location,
    name: &str,
) -> Result<(TableSchema, PlannedTable)> {
    let mut schema = aws.describe_table(name).await?;
    aws.read_settings(&mut schema, settings.resource_policy)
        .await;
    let destination = run_dir.child(&table_folder(name)).url();
    let mut planned = planned_table(aws, settings, &schema, destination)
        .await
        .map_err(|e| crate::Error::Failed(format!("planning the capacity spike: {e}")))?;
    engine.adjust_plan(&mut planned, &schema, settings.segments);
    Ok((schema, planned))
}

/// One table's plan: the rate follows the capacity the table will have during its export
/// (spiked when `--spike-read-units` raises it), and the segments follow the rate.
async fn planned_table(
    aws: &Aws,
    settings: &ExportSettings,
    schema: &TableSchema,
    destination: String,
) -> Result<PlannedTable> {
    let ratio = settings.read_ratio();
    let spike = match settings.spike_read_units {
        Some(to) => {
            let spike = capacity::plan(aws, schema, capacity::Dimension::Read, to).await?;
            if let Some(w) = &spike.warning {
                tracing::warn!(table = %schema.table_name, "{w}");
            }
            Some(spike)
        }
        None => None,
    };
    let units = settings.max_read_units.unwrap_or_else(|| {
        spike
            .as_ref()
            .and_then(|s| s.units(ratio))
            .unwrap_or_else(|| schema.read_units(ratio))
    });
    Ok(PlannedTable {
        table: schema.table_name.clone(),
        key_schema: schema.key(),
        billing_mode: schema.billing_mode.clone(),
        read_capacity_units: schema
            .provisioned_throughput
            .as_ref()
            .map(|p| p.read_capacity_units),
        size_bytes: schema.table_size_bytes,
        item_count_estimate: schema.item_count,
        target_read_units: units,
        segments: settings
            .segments
            .unwrap_or_else(|| default_segments(schema.table_size_bytes, units)),
        destination,
        capacity_spike: spike,
    })
}

/// Every table of `plan`, planned: the RUNNING flag's reports (and a dry run's).
pub(super) fn planned_reports(plan: &ExportPlan) -> Result<Reports> {
    let mut planned = Reports::default();
    for t in plan.tables.iter() {
        planned.push(TableReport::planned(&t?.table))?;
    }
    Ok(planned)
}

/// `restore-plan.json` of the run, from its plan and its `reports` (sorted by table).
pub(super) fn restore_plan(
    layout: &RunLayout,
    plan: &ExportPlan,
    reports: &Reports,
) -> Result<Document> {
    let of = RestorePlanOf {
        layout,
        plan,
        reports,
    };
    document("restore-plan.json", &of)
}

/// What restores the run: a step per table that succeeded, with the item count of its
/// report (the seed's importSteps; users may edit targets and write ratios). Written as
/// `restore-plan.json` is, step by step: each table's plan and report are read back as its
/// step is written (`reports` sorted by table), so a fleet's restore plan is never whole
/// in memory. It reads back as a [`RestorePlan`].
pub(super) struct RestorePlanOf<'a> {
    layout: &'a RunLayout,
    plan: &'a ExportPlan,
    reports: &'a Reports,
}

impl serde::Serialize for RestorePlanOf<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut plan = s.serialize_struct("RestorePlan", 5)?;
        plan.serialize_field("version", &1u32)?;
        plan.serialize_field("app", &self.layout.app)?;
        plan.serialize_field("region", &self.layout.region)?;
        plan.serialize_field("exportedAt", &self.layout.started)?;
        plan.serialize_field("tables", &Steps(self))?;
        plan.end()
    }
}

/// The steps of a [`RestorePlanOf`], each made as it is written.
struct Steps<'a>(&'a RestorePlanOf<'a>);

impl serde::Serialize for Steps<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        let RestorePlanOf { plan, reports, .. } = self.0;
        let mut steps = s.serialize_seq(None)?;
        for planned in plan.tables.iter() {
            let t = planned.map_err(S::Error::custom)?;
            let Some(r) = reports.find(&t.table).map_err(S::Error::custom)? else {
                continue;
            };
            if r.status != TableStatus::Succeeded {
                continue;
            }
            steps.serialize_element(&RestoreStep {
                source_table: t.table.clone(),
                target_table: t.table.clone(),
                path: table_folder(&t.table),
                format: plan.format,
                key_schema: t.key_schema,
                write_ratio: DEFAULT_WRITE_RATIO,
                item_count: (!r.items_unknown).then_some(r.items),
            })?;
        }
        steps.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Compression, DataFormat, RestorePlan};
    use crate::table::KeyAttribute;

    fn planned(name: &str) -> PlannedTable {
        PlannedTable {
            table: name.into(),
            key_schema: vec![KeyAttribute {
                attribute_name: format!("{name}_pk"),
                key_type: "HASH".into(),
                attribute_type: "S".into(),
            }],
            billing_mode: "PAY_PER_REQUEST".into(),
            read_capacity_units: None,
            size_bytes: 0,
            item_count_estimate: 0,
            target_read_units: 10.0,
            segments: 1,
            destination: format!("file:///base/{name}"),
            capacity_spike: None,
        }
    }

    fn plan() -> ExportPlan {
        ExportPlan {
            ddbx_version: "0".into(),
            app: "billing".into(),
            region: "eu-west-1".into(),
            run_root: "file:///base".into(),
            started_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            format: DataFormat::DynamodbJson,
            compression: Compression::Gzip,
            read_ratio: 0.5,
            engine: "local".into(),
            selection: None,
            storage_class: None,
            object_lock: None,
            note: None,
            engine_settings: None,
            tables: Spool::new("the plan's tables"),
        }
    }

    #[test]
    fn the_restore_plan_lists_what_succeeded_in_the_plans_order_and_reads_back() {
        let layout = RunLayout {
            region: "eu-west-1".into(),
            app: "billing".into(),
            started: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
        };
        let names: Vec<String> = (0..3000).map(|i| format!("T{i:05}")).collect();
        let mut tables = Spool::new("the plan's tables");
        for name in &names {
            tables.push(&planned(name)).unwrap();
        }
        let plan = ExportPlan { tables, ..plan() };
        // Reports come as tables end, not in the plan's order; every seventh failed, every
        // eleventh has no count (EMR), one table has none at all.
        let mut reports = Reports::default();
        for (i, name) in names.iter().enumerate().rev().filter(|(i, _)| *i != 5) {
            let mut r = TableReport {
                status: TableStatus::Succeeded,
                items: i as u64,
                items_unknown: i % 11 == 0,
                ..TableReport::planned(name)
            };
            if i % 7 == 0 {
                r = TableReport::failed(name, "boom");
            }
            reports.push(r).unwrap();
        }
        reports.sort_by_table();
        let of = RestorePlanOf {
            layout: &layout,
            plan: &plan,
            reports: &reports,
        };
        let written = serde_json::to_vec_pretty(&of).unwrap();
        let read = RestorePlan::parse("restore-plan.json", &written).unwrap();
        let expected: Vec<(String, Option<u64>)> = (0..3000usize)
            .filter(|i| i % 7 != 0 && *i != 5)
            .map(|i| (names[i].clone(), (i % 11 != 0).then_some(i as u64)))
            .collect();
        let got: Vec<(String, Option<u64>)> = read
            .tables
            .iter()
            .map(|s| (s.source_table.clone(), s.item_count))
            .collect();
        assert_eq!(got, expected);
        assert_eq!(
            (read.version, read.app.as_str(), read.exported_at),
            (1, "billing", layout.started)
        );
        let step = &read.tables[0];
        assert_eq!(step.path, table_folder(&step.source_table));
        assert_eq!(step.key_schema, planned(&step.source_table).key_schema);
        assert_eq!(step.write_ratio, DEFAULT_WRITE_RATIO);
        assert_eq!(step.format, DataFormat::DynamodbJson);
    }
}
