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
    default_segments, table_folder, ExportPlan, PlanSelection, PlannedTable, RestorePlan,
    RestoreStep, RunLayout, DEFAULT_WRITE_RATIO,
};
use crate::report::{TableReport, TableStatus};
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
        tables: Vec::new(),
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
                plan.tables.push(planned);
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

/// What restores the run: a step per table that succeeded, with the item count of its
/// report (the seed's importSteps; users may edit targets and write ratios).
pub(super) fn restore_plan(
    layout: &RunLayout,
    plan: &ExportPlan,
    reports: &[TableReport],
) -> RestorePlan {
    // By name: a fleet's plan is matched with its reports in one pass, not a search of
    // every report for each table.
    let reports: std::collections::HashMap<&str, &TableReport> =
        reports.iter().map(|r| (r.table.as_str(), r)).collect();
    RestorePlan {
        version: 1,
        app: layout.app.clone(),
        region: layout.region.clone(),
        exported_at: layout.started,
        tables: plan
            .tables
            .iter()
            .filter_map(|t| {
                let r = reports.get(t.table.as_str())?;
                (r.status == TableStatus::Succeeded).then(|| RestoreStep {
                    source_table: t.table.clone(),
                    target_table: t.table.clone(),
                    path: table_folder(&t.table),
                    format: plan.format,
                    key_schema: t.key_schema.clone(),
                    write_ratio: DEFAULT_WRITE_RATIO,
                    item_count: (!r.items_unknown).then_some(r.items),
                })
            })
            .collect(),
    }
}
