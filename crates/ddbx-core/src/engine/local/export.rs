//! The local engine's export of one table: its description, every Scan segment on the
//! shared worker pool (each from its checkpoint when resuming), then the manifests.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use chrono::Utc;

use super::pool::WorkerPool;
use super::positions::{segment_name, CheckpointedSink, SegmentPosition, TablePosition};
use super::scan::{scan_segment, ScanJob};
use crate::checkpoint::Checkpoints;
use crate::engine::interface::ExportWork;
use crate::format::writer::DataFileWriter;
use crate::format::{connector, native, DataFile, TableLayout};
use crate::plan::{table_folder, DataFormat, PlannedTable};
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::table::TableSchema;
use crate::{Error, Result};

/// Export one table: `table.json`, the segments (each from its checkpoint when
/// resuming), then the manifests. Returns (files, items, bytes).
pub(super) async fn export_table(
    work: &ExportWork<'_>,
    schema: &TableSchema,
    planned: &PlannedTable,
    progress: Arc<TableProgress>,
    pool: &WorkerPool,
    workers: usize,
) -> Result<(u64, u64, u64)> {
    let (aws, run_dir, plan) = (work.aws, work.run_dir, work.plan);
    let table_dir = run_dir.child(&table_folder(&schema.table_name));
    let checkpoints = Checkpoints::new(run_dir, "_export", &schema.table_name);
    let prior: Option<TablePosition> = if work.resume {
        checkpoints.load("table.json").await?
    } else {
        None
    };
    if let Some(done) = prior.as_ref().filter(|p| p.complete) {
        tracing::info!(table = %schema.table_name, "already exported by an earlier attempt");
        progress.add(done.items, done.bytes, 0.0);
        return Ok((done.files, done.items, done.bytes));
    }
    let started = Utc::now();
    let (layout, segments) = match &prior {
        Some(p) => (
            TableLayout::with_id(
                plan.format,
                plan.compression,
                table_dir.clone(),
                p.export_id.clone(),
            ),
            p.segments,
        ),
        None => (
            TableLayout::new(
                plan.format,
                plan.compression,
                table_dir.clone(),
                started.timestamp_millis(),
            ),
            planned.segments,
        ),
    };
    // No segment would read nothing and call it a backup: refused here too, whatever
    // checked the settings (a hand-edited checkpoint says 0).
    crate::bounds::SEGMENTS.check(segments)?;
    let layout = Arc::new(layout);
    let mut position = TablePosition {
        export_id: layout.export_id.clone(),
        segments,
        complete: false,
        items: 0,
        bytes: 0,
        files: 0,
    };
    if prior.is_none() {
        table_dir.put_json("table.json", schema).await?;
        checkpoints.save("table.json", &position).await?;
        if plan.format.is_native() {
            native::write_started(&layout).await?;
        }
    }
    let job = Arc::new(ScanJob {
        aws: aws.clone(),
        table: schema.table_name.clone(),
        limiter: RateLimiter::new(planned.target_read_units, aws.clock.clone())
            .until_stopped(work.stop),
        segments,
        concurrency: workers.max(1) as u32,
        avg_item_bytes: (schema.item_count > 0)
            .then(|| schema.table_size_bytes as f64 / schema.item_count as f64),
        count_only: false,
        progress: progress.clone(),
        cancelled: AtomicBool::new(false),
        stop: work.stop.clone(),
    });
    let mut handles = Vec::new();
    for segment in 0..segments {
        let name = segment_name(segment);
        let before: SegmentPosition = if prior.is_some() {
            checkpoints.load(&name).await?.unwrap_or_default()
        } else {
            SegmentPosition::default()
        };
        let done_items: u64 = before.files.iter().map(|f| f.items).sum();
        let done_bytes: u64 = before.files.iter().map(|f| f.item_bytes).sum();
        progress.add(done_items, done_bytes, 0.0);
        if before.done {
            handles.push(tokio::spawn(std::future::ready(Ok(before.files))));
            continue;
        }
        let start = before.start_key(&checkpoints.url())?;
        let job = job.clone();
        let mut sink = CheckpointedSink {
            writer: DataFileWriter::resume(layout.clone(), work.roll, before.files),
            checkpoints: checkpoints.clone(),
            segment,
        };
        handles.push(pool.spawn(async move {
            let r = match scan_segment(&job, segment, start, &mut sink).await {
                Ok(()) => sink.finish().await,
                Err(e) => {
                    sink.writer.abort().await;
                    Err(e)
                }
            };
            if r.is_err() {
                job.cancelled
                    .store(true, std::sync::atomic::Ordering::Relaxed);
            }
            r
        }));
    }
    let mut files: Vec<DataFile> = Vec::new();
    let mut first_error: Option<Error> = None;
    let mut scanned = 0u32;
    for h in handles {
        match h.await {
            Ok(Ok(f)) => {
                scanned += 1;
                files.extend(f);
            }
            Ok(Err(e)) => {
                // Segments stopped because another failed say "interrupted": keep the cause.
                if first_error.as_ref().is_none_or(Error::is_interrupted) {
                    first_error = Some(e);
                }
            }
            Err(join) => {
                first_error =
                    first_error.or(Some(Error::Failed(format!("a segment task died: {join}"))))
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    // The table is exported only if every segment it planned was read to its end.
    if scanned != segments {
        return Err(Error::Failed(format!(
            "table {}: {scanned} of {segments} scan segments were read to their end",
            schema.table_name
        )));
    }
    job.limiter.drain().await?;
    if prior.is_some() {
        remove_unlisted_data_files(&layout, &files).await?;
    }
    let ended = Utc::now();
    match plan.format {
        DataFormat::Emr => connector::write_manifest(&layout, &files).await?,
        _ => {
            native::write_manifests(&layout, schema, &aws.region, &files, started, ended).await?;
        }
    }
    position.items = files.iter().map(|f| f.items).sum();
    position.bytes = files.iter().map(|f| f.item_bytes).sum();
    position.files = files.len() as u64;
    position.complete = true;
    checkpoints.save("table.json", &position).await?;
    Ok((position.files, position.items, position.bytes))
}

/// After a crash: data files a killed attempt left behind (never listed in a checkpoint,
/// or an unfinished upload's staging file) are deleted, so that the folder holds exactly
/// what the manifests list.
async fn remove_unlisted_data_files(layout: &TableLayout, files: &[DataFile]) -> Result<()> {
    let listed: std::collections::HashSet<&str> = files.iter().map(|f| f.path.as_str()).collect();
    let dir = match layout.format {
        DataFormat::Emr => layout.table_dir.clone(),
        _ => layout.native_dir().child("data"),
    };
    let listing = dir.list_folder().await?;
    for object in listing.objects {
        let name = object.location.filename().unwrap_or_default();
        let is_data = match layout.format {
            DataFormat::Emr => name.len() >= 36 && uuid::Uuid::parse_str(&name[..36]).is_ok(),
            _ => true,
        };
        if is_data && !listed.contains(object.location.as_ref()) {
            tracing::info!(file = %dir.url_of(&object.location), "removing a data file left by an interrupted attempt");
            match dir.store.delete(&object.location).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(Error::store(dir.url_of(&object.location), e)),
            }
        }
    }
    // A local folder: object_store stages each file as `<name>#<n>` and hides such files
    // from listings; a killed upload leaves one behind. (On S3 an unfinished multipart
    // upload is invisible and expires under the bucket's lifecycle rules.)
    if let Some(root) = dir.root_url.strip_prefix("file://") {
        let folder = std::path::Path::new(root).join(dir.prefix.as_ref());
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().to_string();
                let staging = name
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if staging {
                    tracing::info!(file = %entry.path().display(), "removing an upload left unfinished by an interrupted attempt");
                    std::fs::remove_file(entry.path()).map_err(|e| {
                        Error::Failed(format!("{}: cannot remove: {e}", entry.path().display()))
                    })?;
                }
            }
        }
    }
    Ok(())
}
