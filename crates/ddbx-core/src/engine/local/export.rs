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
use crate::plan::{table_folder, Compression, DataFormat, PlannedTable};
use crate::progress::TableProgress;
use crate::rate::RateLimiter;
use crate::store::Location;
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
    let table = TableExport::new(work, schema, progress);
    let prior = table.prior().await?;
    if let Some(done) = prior.as_ref().filter(|p| p.complete) {
        tracing::info!(table = %schema.table_name, "already exported by an earlier attempt");
        table.progress.add(done.items, done.bytes, 0.0);
        return Ok((done.files, done.items, done.bytes));
    }
    let started = Utc::now();
    let (layout, segments) = layout(
        (work.plan.format, work.plan.compression),
        table.table_dir.clone(),
        prior.as_ref(),
        planned.segments,
        started,
    );
    // No segment would read nothing and call it a backup: refused here too, whatever
    // checked the settings (a hand-edited checkpoint says 0).
    crate::bounds::SEGMENTS.check(segments)?;
    let layout = Arc::new(layout);
    let position = TablePosition {
        export_id: layout.export_id.clone(),
        segments,
        complete: false,
        items: 0,
        bytes: 0,
        files: 0,
    };
    let resumed = prior.is_some();
    if !resumed {
        table.begin(&layout, &position).await?;
    }
    let job = table.scan_job(planned.target_read_units, segments, workers);
    let mut handles = Vec::new();
    for segment in 0..segments {
        handles.push(table.segment(&job, &layout, pool, segment, resumed).await?);
    }
    let files = gather(handles, segments, &schema.table_name).await?;
    job.limiter.drain().await?;
    let position = table
        .finish(&layout, &files, resumed, started, position)
        .await?;
    Ok((position.files, position.items, position.bytes))
}

/// One table's export by the local engine: where it goes, its checkpoints, its counters.
struct TableExport<'a> {
    work: &'a ExportWork<'a>,
    schema: &'a TableSchema,
    progress: Arc<TableProgress>,
    table_dir: Location,
    checkpoints: Checkpoints,
}

impl<'a> TableExport<'a> {
    fn new(
        work: &'a ExportWork<'a>,
        schema: &'a TableSchema,
        progress: Arc<TableProgress>,
    ) -> Self {
        TableExport {
            table_dir: work.run_dir.child(&table_folder(&schema.table_name)),
            checkpoints: Checkpoints::new(work.run_dir, "_export", &schema.table_name),
            work,
            schema,
            progress,
        }
    }

    /// Where an earlier attempt left the table, when resuming.
    async fn prior(&self) -> Result<Option<TablePosition>> {
        if self.work.resume {
            self.checkpoints.load("table.json").await
        } else {
            Ok(None)
        }
    }

    /// A first attempt: `table.json`, the table's first checkpoint, and (native layout)
    /// the marker of an export started.
    async fn begin(&self, layout: &TableLayout, position: &TablePosition) -> Result<()> {
        self.table_dir.put_json("table.json", self.schema).await?;
        self.checkpoints.save("table.json", position).await?;
        if self.work.plan.format.is_native() {
            native::write_started(layout).await?;
        }
        Ok(())
    }

    /// The scan every segment of the table shares, at `units` a second.
    fn scan_job(&self, units: f64, segments: u32, workers: usize) -> Arc<ScanJob> {
        let (aws, schema) = (self.work.aws, self.schema);
        Arc::new(ScanJob {
            aws: aws.clone(),
            table: schema.table_name.clone(),
            limiter: RateLimiter::new(units, aws.clock.clone()).until_stopped(self.work.stop),
            segments,
            concurrency: workers.max(1) as u32,
            avg_item_bytes: (schema.item_count > 0)
                .then(|| schema.table_size_bytes as f64 / schema.item_count as f64),
            count_only: false,
            progress: self.progress.clone(),
            cancelled: AtomicBool::new(false),
            stop: self.work.stop.clone(),
        })
    }

    /// One segment: its files when an earlier attempt read it to its end, else a scan on
    /// `pool` from where its checkpoint says (its start when there is none), writing its
    /// files and checkpoints. A segment that fails stops the others.
    async fn segment(
        &self,
        job: &Arc<ScanJob>,
        layout: &Arc<TableLayout>,
        pool: &WorkerPool,
        segment: u32,
        resumed: bool,
    ) -> Result<SegmentTask> {
        let before: SegmentPosition = if resumed {
            self.checkpoints
                .load(&segment_name(segment))
                .await?
                .unwrap_or_default()
        } else {
            SegmentPosition::default()
        };
        let done_items: u64 = before.files.iter().map(|f| f.items).sum();
        let done_bytes: u64 = before.files.iter().map(|f| f.item_bytes).sum();
        self.progress.add(done_items, done_bytes, 0.0);
        if before.done {
            return Ok(tokio::spawn(std::future::ready(Ok(before.files))));
        }
        let start = before.start_key(&self.checkpoints.url())?;
        let job = job.clone();
        let mut sink = CheckpointedSink {
            writer: DataFileWriter::resume(layout.clone(), self.work.roll, before.files),
            checkpoints: self.checkpoints.clone(),
            segment,
        };
        Ok(pool.spawn(async move {
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
        }))
    }

    /// Every segment read: (resuming) the files no checkpoint lists deleted, the
    /// manifests written, and the table's checkpoint marked complete with its totals.
    async fn finish(
        &self,
        layout: &TableLayout,
        files: &[DataFile],
        resumed: bool,
        started: chrono::DateTime<Utc>,
        position: TablePosition,
    ) -> Result<TablePosition> {
        if resumed {
            remove_unlisted_data_files(layout, files).await?;
        }
        let ended = Utc::now();
        match self.work.plan.format {
            DataFormat::Emr => connector::write_manifest(layout, files).await?,
            _ => {
                let region = &self.work.aws.region;
                native::write_manifests(layout, self.schema, region, files, started, ended).await?;
            }
        }
        let position = completed(position, files);
        self.checkpoints.save("table.json", &position).await?;
        Ok(position)
    }
}

/// The table's layout and its number of segments: an earlier attempt's (its export id and
/// split kept), else new ones (`planned` segments, an id from `started`).
fn layout(
    (format, compression): (DataFormat, Compression),
    dir: Location,
    prior: Option<&TablePosition>,
    planned: u32,
    started: chrono::DateTime<Utc>,
) -> (TableLayout, u32) {
    match prior {
        Some(p) => (
            TableLayout::with_id(format, compression, dir, p.export_id.clone()),
            p.segments,
        ),
        None => (
            TableLayout::new(format, compression, dir, started.timestamp_millis()),
            planned,
        ),
    }
}

/// A segment's task: the files it wrote.
type SegmentTask = tokio::task::JoinHandle<Result<Vec<DataFile>>>;

/// The files of every segment, in order; else the first failure (a segment stopped because
/// another failed says "interrupted": the cause is kept), or, when fewer than `segments`
/// were read to their end, that.
async fn gather(handles: Vec<SegmentTask>, segments: u32, table: &str) -> Result<Vec<DataFile>> {
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
            "table {table}: {scanned} of {segments} scan segments were read to their end"
        )));
    }
    Ok(files)
}

/// The table's checkpoint once its manifests are written: complete, with its totals.
fn completed(mut position: TablePosition, files: &[DataFile]) -> TablePosition {
    position.items = files.iter().map(|f| f.items).sum();
    position.bytes = files.iter().map(|f| f.item_bytes).sum();
    position.files = files.len() as u64;
    position.complete = true;
    position
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, items: u64) -> DataFile {
        DataFile {
            path: path.into(),
            items,
            md5: String::new(),
            etag: None,
            stored_bytes: items * 10,
            item_bytes: items * 8,
        }
    }

    fn task(r: Result<Vec<DataFile>>) -> SegmentTask {
        tokio::spawn(std::future::ready(r))
    }

    #[tokio::test]
    async fn gathered_segments_keep_their_files_in_order() {
        let handles = vec![
            task(Ok(vec![file("a", 1), file("b", 2)])),
            task(Ok(vec![])),
            task(Ok(vec![file("c", 3)])),
        ];
        let files = gather(handles, 3, "T").await.unwrap();
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["a", "b", "c"]);
    }

    #[tokio::test]
    async fn a_failed_segment_is_the_cause_not_the_ones_it_stopped() {
        let handles = vec![
            task(Err(Error::Interrupted)),
            task(Err(Error::Failed("disk full".into()))),
            task(Err(Error::Interrupted)),
            task(Ok(vec![file("a", 1)])),
        ];
        let err = gather(handles, 4, "T").await.unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");

        let only_stopped = vec![task(Err(Error::Interrupted)), task(Ok(vec![]))];
        assert!(gather(only_stopped, 2, "T")
            .await
            .unwrap_err()
            .is_interrupted());
    }

    #[tokio::test]
    async fn a_segment_task_that_died_or_never_ran_fails_the_table() {
        let died: SegmentTask = tokio::spawn(async { panic!("boom") });
        let err = gather(vec![died], 1, "T").await.unwrap_err();
        assert!(err.to_string().contains("a segment task died"), "{err}");

        let err = gather(vec![task(Ok(vec![]))], 2, "T").await.unwrap_err();
        assert!(
            err.to_string().contains("table T: 1 of 2 scan segments"),
            "{err}"
        );
    }

    #[test]
    fn a_completed_position_holds_the_totals_of_its_files() {
        let p = TablePosition {
            export_id: "id".into(),
            segments: 2,
            complete: false,
            items: 0,
            bytes: 0,
            files: 0,
        };
        let done = completed(p, &[file("a", 2), file("b", 3)]);
        assert!(done.complete);
        assert_eq!((done.files, done.items, done.bytes), (2, 5, 40));
        assert_eq!((done.export_id.as_str(), done.segments), ("id", 2));
    }

    #[test]
    fn a_resumed_layout_keeps_the_earlier_attempts_id_and_split() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = crate::store::Storage::default()
            .open(tmp.path().to_str().unwrap())
            .unwrap();
        let plan = (DataFormat::DynamodbJson, Compression::Gzip);
        let started = chrono::DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let (fresh, n) = layout(plan, dir.clone(), None, 6, started);
        assert_eq!(n, 6);
        assert!(
            fresh.export_id.starts_with("01700000000000-"),
            "{}",
            fresh.export_id
        );
        let prior = TablePosition {
            export_id: "01600000000000-abcdef01".into(),
            segments: 3,
            complete: false,
            items: 0,
            bytes: 0,
            files: 0,
        };
        let (resumed, n) = layout(plan, dir, Some(&prior), 6, started);
        assert_eq!(n, 3);
        assert_eq!(resumed.export_id, prior.export_id);
    }
}
