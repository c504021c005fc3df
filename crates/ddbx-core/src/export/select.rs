//! Which tables an export takes: prefixes, globs, exact names, excludes (flags, the seed's
//! `<base>/excludes` and `--exclude-file`). The plan describes each (`export::plan`).

use bytes::Bytes;
use chrono::{DateTime, Utc};

use crate::aws::Aws;
use crate::export::ExportSettings;
use crate::plan::{validate_app_name, RunLayout, TableFilter};
use crate::store::Location;
use crate::{Error, Result};

/// The tables a run selects, with the layout of the run.
#[derive(Debug)]
pub struct Selection {
    /// The run's layout (region, app, start time).
    pub layout: RunLayout,
    /// The base location.
    pub base: Location,
    /// The selected tables, sorted by name.
    pub tables: Vec<String>,
    /// Tables the patterns took that an exclude left out.
    pub excluded: Vec<String>,
}

/// Check the settings, then list and filter the region's tables.
pub async fn select_tables(
    aws: &Aws,
    settings: &ExportSettings,
    started: DateTime<Utc>,
) -> Result<Selection> {
    validate_app_name(&settings.app)?;
    let base = aws.storage.open(&settings.to)?;
    let mut filter = TableFilter::new(&settings.tables, &settings.excludes)?
        .with_names(&settings.table_names)?;
    // The seed's `<base>/excludes`, when present.
    let default_excludes = base.join("excludes");
    if let Some(bytes) = base.get_optional(&default_excludes).await? {
        filter.exclude_file(&base.url_of(&default_excludes), &bytes)?;
    }
    if let Some(file) = &settings.exclude_file {
        let bytes = read_anywhere(aws, file).await?;
        filter.exclude_file(file, &bytes)?;
    }
    let listed = if filter.needs_listing() {
        let all = aws.list_tables().await.map_err(|e| match e {
            e if matches!(e.cause(), Error::Config(_)) => e,
            e => Error::Plan(format!("cannot list tables: {e}")),
        })?;
        Some(all)
    } else {
        None
    };
    let names = filter.select_with_names(listed.iter().flatten().map(String::as_str));
    let excluded = filter.excluded(listed.iter().flatten().map(String::as_str));
    if !excluded.is_empty() {
        tracing::info!(tables = %excluded.join(", "), "excluded (by --exclude or an excludes file)");
    }
    if names.is_empty() {
        return Err(Error::Plan(match &listed {
            Some(all) => format!(
                "no table in {} matches {:?} (after excludes); {} tables seen",
                aws.region,
                settings.tables,
                all.len()
            ),
            None => format!("every table named ({:?}) is excluded", settings.table_names),
        }));
    }
    Ok(Selection {
        layout: RunLayout {
            region: aws.region.clone(),
            app: settings.app.clone(),
            started,
        },
        base,
        tables: names,
        excluded,
    })
}

/// Read a whole small file given as a local path or URL (excludes files).
pub async fn read_anywhere(aws: &Aws, path_or_url: &str) -> Result<Bytes> {
    if path_or_url.starts_with("s3://") || path_or_url.starts_with("file://") {
        let (dir, name) = path_or_url
            .rsplit_once('/')
            .ok_or_else(|| Error::Usage(format!("{path_or_url}: not a file URL")))?;
        let loc = aws.storage.open_existing(dir)?;
        loc.get_optional(&loc.join(name))
            .await?
            .ok_or_else(|| Error::Usage(format!("{path_or_url}: no such file")))
    } else {
        let len = std::fs::metadata(path_or_url)
            .map_err(|e| Error::Usage(format!("{path_or_url}: {e}")))?
            .len();
        if len > crate::store::MAX_CONTROL_BYTES {
            return Err(Error::Usage(format!(
                "{path_or_url}: {len} bytes: not an excludes file"
            )));
        }
        std::fs::read(path_or_url)
            .map(Bytes::from)
            .map_err(|e| Error::Usage(format!("{path_or_url}: {e}")))
    }
}
