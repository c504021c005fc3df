//! Command-line flags: plain typed values, turned into the library's settings by each
//! command's module.

use clap::{Args, Parser, Subcommand, ValueEnum};
use ddbx_core::bounds;
use ddbx_core::plan::{Compression, DataFormat};

/// Back up and restore fleets of DynamoDB tables to S3 or a local folder.
#[derive(Debug, Parser)]
#[command(name = "ddbx", version, about, long_about = None)]
pub struct Cli {
    /// Settings for every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// AWS profile (default: the standard chain: environment, config files, SSO, instance role).
    #[arg(
        long,
        global = true,
        env = "AWS_PROFILE",
        help_heading = "AWS (every command)"
    )]
    pub profile: Option<String>,
    /// AWS region of the tables.
    #[arg(long, global = true, help_heading = "AWS (every command)")]
    pub region: Option<String>,
    /// DynamoDB-compatible endpoint (a local emulator, ScyllaDB Alternator).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "AWS (every command)"
    )]
    pub endpoint_url: Option<String>,
    /// Application Auto Scaling-compatible endpoint (a test service), for capacity spikes.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "AWS (every command)"
    )]
    pub autoscaling_endpoint_url: Option<String>,
    /// EMR-compatible endpoint (a test service), for --engine emr.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "AWS (every command)"
    )]
    pub emr_endpoint_url: Option<String>,
    /// S3-compatible endpoint for s3:// locations.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        help_heading = "S3 (every command)"
    )]
    pub s3_endpoint_url: Option<String>,
    /// Region of the S3 bucket, when it differs from the tables' region.
    #[arg(
        long,
        global = true,
        value_name = "REGION",
        help_heading = "S3 (every command)"
    )]
    pub s3_region: Option<String>,
    /// Server-side encryption of everything written to S3: AES256 (SSE-S3) or aws:kms (SSE-KMS).
    #[arg(
        long,
        global = true,
        value_name = "ALGORITHM",
        help_heading = "S3 (every command)"
    )]
    pub sse: Option<String>,
    /// The KMS key (id or ARN) for --sse aws:kms (default: the account's AWS managed key).
    #[arg(
        long,
        global = true,
        value_name = "KEY",
        help_heading = "S3 (every command)"
    )]
    pub sse_kms_key_id: Option<String>,
    /// Credentials for S3 from this profile (a bucket in another account), instead of the run's.
    #[arg(
        long,
        global = true,
        value_name = "PROFILE",
        help_heading = "S3 (every command)"
    )]
    pub s3_profile: Option<String>,
    /// A role S3 is reached as (a bucket in another account), assumed from --s3-profile's credentials or the run's.
    #[arg(
        long,
        global = true,
        value_name = "ARN",
        help_heading = "S3 (every command)"
    )]
    pub s3_role_arn: Option<String>,
    /// The external id --s3-role-arn's trust policy asks for.
    #[arg(
        long,
        global = true,
        value_name = "ID",
        requires = "s3_role_arn",
        help_heading = "S3 (every command)"
    )]
    pub s3_external_id: Option<String>,
    /// Storage class of the data files written to S3 (files under 128 KiB, such as flags and plans, stay STANDARD).
    #[arg(long, global = true, value_enum, help_heading = "S3 (every command)")]
    pub storage_class: Option<StorageClassArg>,
    /// Refuse to use a bucket that this account does not own.
    #[arg(
        long,
        global = true,
        value_name = "ACCOUNT_ID",
        help_heading = "S3 (every command)"
    )]
    pub expected_bucket_owner: Option<String>,
    /// A role the run assumes for DynamoDB, EMR and auto scaling (and S3, unless --s3-profile or --s3-role-arn), renewed as long as the run lasts.
    #[arg(
        long,
        global = true,
        value_name = "ARN",
        help_heading = "AWS (every command)"
    )]
    pub role_arn: Option<String>,
    /// The external id --role-arn's trust policy asks for.
    #[arg(
        long,
        global = true,
        value_name = "ID",
        requires = "role_arn",
        help_heading = "AWS (every command)"
    )]
    pub external_id: Option<String>,
    /// Seconds one attempt of one AWS request may take before it is abandoned and retried (default: 60 for DynamoDB, 30 for S3).
    #[arg(long, global = true, value_name = "SECONDS", value_parser = seconds, help_heading = "AWS (every command)")]
    pub request_timeout: Option<f64>,
    /// Final summary as text or JSON (on stdout).
    #[arg(long, global = true, value_enum, default_value_t = Output::Text, help_heading = "Output (every command)")]
    pub output: Output,
    /// More logging (RUST_LOG overrides).
    #[arg(long, short, global = true, help_heading = "Output (every command)")]
    pub verbose: bool,
    /// Never draw progress bars, even on a terminal.
    #[arg(long, global = true, help_heading = "Output (every command)")]
    pub no_progress: bool,
}

/// S3 storage classes a run's data may be written in (those read back without a restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StorageClassArg {
    /// S3 Standard.
    Standard,
    /// Standard-Infrequent Access.
    StandardIa,
    /// One Zone-Infrequent Access.
    OnezoneIa,
    /// Intelligent-Tiering.
    IntelligentTiering,
    /// Glacier Instant Retrieval.
    GlacierIr,
}

impl EngineArgs {
    /// The engine-specific flags given, each with the engine it belongs to: a flag of
    /// another engine than the run's is refused, never ignored.
    pub fn given(&self) -> Vec<(&'static str, EngineArg)> {
        let flags = [
            (
                "--cluster-name",
                EngineArg::Emr,
                self.cluster_name.is_some(),
            ),
            ("--clusters", EngineArg::Emr, self.clusters.is_some()),
            ("--emr-config", EngineArg::Emr, self.emr_config.is_some()),
            ("--emr-set", EngineArg::Emr, !self.emr_set.is_empty()),
            (
                "--on-interrupt",
                EngineArg::Emr,
                self.on_interrupt.is_some(),
            ),
            ("--max-jobs", EngineArg::Native, self.max_jobs.is_some()),
            ("--max-wait", EngineArg::Native, self.max_wait.is_some()),
            (
                "--poll-seconds",
                EngineArg::Native,
                self.poll_seconds.is_some(),
            ),
        ];
        flags
            .into_iter()
            .filter(|(_, _, given)| *given)
            .map(|(flag, engine, _)| (flag, engine))
            .collect()
    }
}

impl EngineArg {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Emr => "emr",
            Self::Native => "native",
        }
    }
}

impl StorageClassArg {
    /// The name S3 knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Self::Standard => "STANDARD",
            Self::StandardIa => "STANDARD_IA",
            Self::OnezoneIa => "ONEZONE_IA",
            Self::IntelligentTiering => "INTELLIGENT_TIERING",
            Self::GlacierIr => "GLACIER_IR",
        }
    }
}

/// How the final summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable.
    Text,
    /// One JSON document.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Export every selected table of an app to a dated run folder.
    Export(ExportArgs),
    /// Put an export back into tables (existing, or created from table.json).
    Import(ImportArgs),
    /// Check that tables hold exactly what an export holds.
    Verify(VerifyArgs),
    /// EMR engine helpers.
    #[command(subcommand)]
    Emr(EmrCommand),
    /// Capacity spikes.
    #[command(subcommand)]
    Capacity(CapacityCommand),
    /// Every run under a base, newest first, from its flags (the data is not read).
    List(ListArgs),
    /// Delete an app's old runs (never its newest success, a running run, what a kept incremental run builds on, or a run still retained by Object Lock).
    Prune(PruneArgs),
    /// Copy a run to another bucket, account, region or folder (server-side where it can), checked there; or, with --app and --from-base, every run of the app the target lacks.
    Copy(CopyArgs),
    /// Whether an app's newest backup is a success younger than --max-age: exit 0, or a distinct code and one line (stale 5, failed 6, incomplete 7, running too long 8), for cron, systemd OnFailure= and monitoring checks.
    Check(CheckArgs),
    /// Shell completions generated from these flags: `ddbx completions bash > /etc/bash_completion.d/ddbx`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page generated from these flags (roff): ddbx(1) on stdout, or with --out-dir every page (ddbx-export(1), ...).
    Man {
        /// Write ddbx.1 and one page per command into this folder.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<std::path::PathBuf>,
    },
}

/// `ddbx check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The base location the app's runs are under: a folder, file:// URL or s3://bucket/prefix.
    #[arg(long, value_name = "LOCATION")]
    pub to: String,
    /// The app (with --region when it has runs in several).
    #[arg(long)]
    pub app: String,
    /// The newest success must have started at most this long ago: 26h, 90m, 2d.
    #[arg(long, default_value = "26h", value_name = "DURATION", value_parser = parse_wait)]
    pub max_age: std::time::Duration,
    /// A run still going after this long is reported (exit 8); a shorter one is left to end and the run before it is judged.
    #[arg(long, default_value = "12h", value_name = "DURATION", value_parser = parse_wait)]
    pub max_running: std::time::Duration,
    /// Also read the newest success's restore plan and manifests (each against its checksum file) and look up every data file they list (no data is read: `ddbx verify --deep` compares items).
    #[arg(long)]
    pub deep: bool,
    /// Write the check's outcome to this file in the Prometheus text format (for node_exporter's textfile collector), atomically.
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<std::path::PathBuf>,
}

/// `ddbx copy`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["from", "app"])))]
pub struct CopyArgs {
    /// The run to copy (its root: <base>/<region>/<app>/YYYY/MM/DD/HH_MM.SS), read with the run's credentials (--profile, --role-arn).
    #[arg(long, value_name = "RUN_ROOT", conflicts_with_all = ["app", "from_base"])]
    pub from: Option<String>,
    /// Copy every run of this app under --from-base that --to lacks, oldest first, each incremental chain whole.
    #[arg(long, requires = "from_base")]
    pub app: Option<String>,
    /// With --app: the base its runs are under.
    #[arg(long, value_name = "LOCATION", requires = "app")]
    pub from_base: Option<String>,
    /// The target base (a folder or s3://bucket/prefix): the run goes to the same <region>/<app>/YYYY/MM/DD/HH_MM.SS under it. S3 is reached with --s3-profile / --s3-role-arn when given.
    #[arg(long, value_name = "LOCATION")]
    pub to: String,
    /// The target bucket's region (default: --s3-region, else the run's region).
    #[arg(long, value_name = "REGION")]
    pub to_region: Option<String>,
    /// Retention of the copy's backup objects on the target.
    #[command(flatten)]
    pub lock: ObjectLockArgs,
    /// Objects copied at once.
    #[arg(long, default_value_t = 8, value_parser = workers)]
    pub workers: usize,
    /// Say what would be copied; copy nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take over the target app's lock if its owner stopped refreshing it long ago.
    #[arg(long)]
    pub break_stale_lock: bool,
    /// Read the source past delete markers (each object's newest version that is not deleted), as `ddbx list --include-deleted` shows it; copied streamed.
    #[arg(long)]
    pub recover_deleted: bool,
}

/// S3 Object Lock on what a run writes (export, copy).
#[derive(Debug, Args)]
pub struct ObjectLockArgs {
    /// Write every object of the backup (data, manifests and their .md5, table.json, plans, the final flag) retained with S3 Object Lock in this mode; the bucket must have Object Lock enabled. With --retain.
    #[arg(long, value_enum, requires = "retain", help_heading = "Destination")]
    pub object_lock: Option<ObjectLockArg>,
    /// Days the backup's objects are retained, from now (1 to 36,500). With --object-lock.
    #[arg(long, value_name = "DAYS", value_parser = retain_days, requires = "object_lock", help_heading = "Destination")]
    pub retain: Option<u32>,
}

/// S3 Object Lock's retention modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ObjectLockArg {
    /// Nobody (the account's root user included) deletes a version before its date.
    Compliance,
    /// Only a principal with s3:BypassGovernanceRetention, asking for it, can.
    Governance,
}

/// `ddbx list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// The base location: a folder, file:// URL or s3://bucket/prefix.
    #[arg(long, value_name = "LOCATION")]
    pub to: String,
    /// Only this app's runs.
    #[arg(long)]
    pub app: Option<String>,
    /// Also the runs whose objects were deleted (delete markers on a versioned bucket): each is listed as its newest versions that hold data, with how many of its objects are deleted.
    #[arg(long)]
    pub include_deleted: bool,
}

/// `ddbx prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The base location: a folder, file:// URL or s3://bucket/prefix.
    #[arg(long, value_name = "LOCATION")]
    pub to: String,
    /// The app whose runs are pruned (with --region when it has runs in several).
    #[arg(long)]
    pub app: String,
    /// Keep the N newest successful runs.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub keep_last: u32,
    /// Keep every run younger than D days as well.
    #[arg(long, value_name = "D", value_parser = keep_days)]
    pub keep_days: Option<u32>,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Take over the app's lock when it was not refreshed for 15 minutes (its owner died).
    #[arg(long)]
    pub break_stale_lock: bool,
}

/// `ddbx capacity ...`
#[derive(Debug, Subcommand)]
pub enum CapacityCommand {
    /// Put back every capacity a run raised and did not restore (after a crash).
    Restore {
        /// The run root (export or import).
        #[arg(long, value_name = "RUN_ROOT")]
        from: String,
    },
}

/// `ddbx emr ...`
#[derive(Debug, Subcommand)]
pub enum EmrCommand {
    /// Write a commented example of the EMR settings file.
    Init {
        /// Where to write it.
        #[arg(default_value = "ddbx-emr.toml")]
        path: std::path::PathBuf,
        /// Replace an existing file.
        #[arg(long)]
        force: bool,
    },
}

/// Where the work runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EngineArg {
    /// In this process (the default).
    Local,
    /// On AWS EMR clusters (Hive steps over EMR's DynamoDB connector).
    Emr,
    /// DynamoDB's own services: ExportTableToPointInTime (no read capacity; one instant for the run) and ImportTable (new tables, no write capacity).
    Native,
}

/// What happens to EMR clusters when ddbx is interrupted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnInterruptArg {
    /// Ask on the terminal (without one: terminate).
    Ask,
    /// Terminate them.
    Terminate,
    /// Leave them running to finish their steps.
    Leave,
}

/// The engine flags of export and import.
#[derive(Debug, Args)]
pub struct EngineArgs {
    /// Where the work runs [default: local; with export --resume: the run's engine].
    #[arg(long, value_enum, help_heading = "Engine")]
    pub engine: Option<EngineArg>,
    /// The EMR cluster's name (--engine emr); with --clusters N: NAME_01 ... NAME_NN.
    #[arg(long, value_name = "NAME", help_heading = "EMR engine")]
    pub cluster_name: Option<String>,
    /// EMR clusters to split the tables over, balanced by table size [default: 1].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=99), help_heading = "EMR engine")]
    pub clusters: Option<u16>,
    /// EMR cluster settings, TOML (`ddbx emr init` writes a commented example).
    #[arg(long, value_name = "PATH", help_heading = "EMR engine")]
    pub emr_config: Option<std::path::PathBuf>,
    /// Override one EMR setting: KEY=VALUE with the config file's keys (release_label=emr-7.6.0, ec2.subnet_id=subnet-1, tags.team=ops). Repeatable.
    #[arg(long, value_name = "KEY=VALUE", help_heading = "EMR engine")]
    pub emr_set: Vec<String>,
    /// On Ctrl-C or SIGTERM with --engine emr: ask, terminate the clusters, or leave them running [default: ask].
    #[arg(long, value_enum, help_heading = "EMR engine")]
    pub on_interrupt: Option<OnInterruptArg>,
    /// Exports (or imports: at most 50, DynamoDB's quota) DynamoDB runs at once, all tables together (--engine native) [default: 25].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=300), help_heading = "Native engine")]
    pub max_jobs: Option<u16>,
    /// How long an export or import that DynamoDB refuses for the account's quota (LimitExceededException) waits in line for one to end: 90s, 30m, 6h (--engine native) [default: 6h].
    #[arg(long, value_name = "DURATION", value_parser = parse_wait, help_heading = "Native engine")]
    pub max_wait: Option<std::time::Duration>,
    /// Seconds before the first poll of an export or import, growing by half to 60 (--engine native) [default: 5].
    #[arg(long, value_name = "SECONDS", value_parser = seconds, help_heading = "Native engine")]
    pub poll_seconds: Option<f64>,
}

/// Which tables of an export, and where they go (import and verify).
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Replay each table's chain of native exports to TIME (RFC 3339): --from is the run of the full export; its incremental windows that end by TIME follow.
    #[arg(long, value_name = "TIME", value_parser = parse_time, conflicts_with = "at", help_heading = "Source")]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// Rebuild each chained table as of TIME (RFC 3339): --from is the app's folder (<base>/<region>/<app>); the last full export by TIME, then its windows.
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Source")]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// The export: a ddbx run root, one table's folder, an AWSDynamoDB/<id> folder, a connector export (folder or s3://); or `latest` (also `latest-success`), with --to and --app: the app's newest successful run.
    #[arg(long, value_name = "LOCATION", help_heading = "Source")]
    pub from: String,
    /// With --from latest: the base location the app's runs are under.
    #[arg(long, value_name = "LOCATION", help_heading = "Source")]
    pub to: Option<String>,
    /// With --from latest: the app.
    #[arg(long, help_heading = "Source")]
    pub app: Option<String>,
    /// Only these source tables (prefix or glob). Repeatable.
    #[arg(
        long = "tables",
        value_name = "PREFIX_OR_GLOB",
        help_heading = "Selection"
    )]
    pub tables: Vec<String>,
    /// Never these source tables. Repeatable.
    #[arg(long = "exclude", value_name = "NAME", help_heading = "Selection")]
    pub excludes: Vec<String>,
    /// Write source table SRC into table DST. Repeatable.
    #[arg(long = "table-map", value_name = "SRC=DST", help_heading = "Selection")]
    pub table_map: Vec<String>,
    /// The target table of a single table's export.
    #[arg(long, help_heading = "Selection")]
    pub target_table: Option<String>,
    /// The export's format (default: detected).
    #[arg(long, value_enum, help_heading = "Source")]
    pub format: Option<DataFormat>,
    /// Read each object's newest version that is not deleted (past delete markers, on a versioned bucket): a run whose objects were deleted, as `ddbx list --include-deleted` shows. Nothing is written into it.
    #[arg(long, help_heading = "Source")]
    pub recover_deleted: bool,
    /// Tables worked on at once.
    #[arg(long, default_value_t = 4, value_parser = parallel_tables, help_heading = "Concurrency")]
    pub parallel_tables: usize,
    /// Workers per table (writers for import; shared scan workers for verify).
    #[arg(long, default_value_t = 8, value_parser = workers, help_heading = "Concurrency")]
    pub workers: usize,
}

/// `ddbx import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The export and the tables.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Fraction of each target's write capacity (default: the restore plan's, else 0.8).
    #[arg(long, value_name = "RATIO", value_parser = ratio, help_heading = "Rate")]
    pub write_ratio: Option<f64>,
    /// Write units per second per table, overriding ratios.
    #[arg(long, value_name = "UNITS", value_parser = units, help_heading = "Rate")]
    pub max_write_units: Option<f64>,
    /// Raise each provisioned target's write capacity to UNITS for its import, and put it back after (tables that auto-scale get their minimum raised).
    #[arg(long, value_name = "UNITS", value_parser = clap::value_parser!(i64).range(1..), help_heading = "Rate")]
    pub spike_write_units: Option<i64>,
    /// Where the work runs.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Create missing tables from the export's table.json: keys, indexes, billing, and every setting it records (stream, class, encryption, deletion protection, warm throughput, time to live, tags, point-in-time recovery, resource policy, auto scaling).
    #[arg(long, help_heading = "Run")]
    pub create_missing: bool,
    /// Write on-demand targets at the full rate from the first second, instead of starting at what the table takes now (its warm throughput; 4,000 writes/s for a new one) and climbing as it scales.
    #[arg(long, help_heading = "Rate")]
    pub no_ramp: bool,
    /// With --create-missing: keys, indexes and billing only, none of the other settings.
    #[arg(long, requires = "create_missing", help_heading = "Run")]
    pub no_settings: bool,
    /// Where the import keeps its flags and checkpoints (a folder or s3://). Default: the run root of a ddbx run this import may write; for anything else (an AWS export, a bucket it may only read) ~/.local/state/ddbx/imports/<source>. Pass the same value with --resume.
    #[arg(long, value_name = "LOCATION", help_heading = "Run")]
    pub state_to: Option<String>,
    /// Continue an import that was killed or failed, from its checkpoints.
    #[arg(long, help_heading = "Run")]
    pub resume: bool,
    /// Say what would be written where and at what rate; write nothing.
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,
    /// Skip reading every file once before writing (faster; a bad line then fails a table mid-way).
    #[arg(long, help_heading = "Run")]
    pub no_validate_first: bool,
    /// Write the import's outcome to this file in the Prometheus text format (for node_exporter's textfile collector), atomically: per table items, bytes, seconds, success; the run's duration and last success time.
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub metrics_file: Option<std::path::PathBuf>,
}

/// `ddbx verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The export and the tables.
    #[command(flatten)]
    pub source: SourceArgs,
    /// Compare every item (order-independent digests), not only counts.
    #[arg(long, help_heading = "Run")]
    pub deep: bool,
    /// Fraction of each table's read capacity for the scan.
    #[arg(long, default_value_t = 0.5, value_name = "RATIO", value_parser = ratio, help_heading = "Rate")]
    pub read_ratio: f64,
    /// Read units per second per table, overriding --read-ratio.
    #[arg(long, value_name = "UNITS", value_parser = units, help_heading = "Rate")]
    pub max_read_units: Option<f64>,
}

impl From<FormatArg> for DataFormat {
    fn from(f: FormatArg) -> Self {
        match f {
            FormatArg::DynamodbJson => DataFormat::DynamodbJson,
            FormatArg::Ion => DataFormat::Ion,
            FormatArg::Emr => DataFormat::Emr,
        }
    }
}

/// The data formats an export writes (an import also reads `data-pipeline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// AWS "Export to S3" DynamoDB JSON (AWSDynamoDB/<id>/ with manifests).
    DynamodbJson,
    /// AWS "Export to S3" in Amazon Ion (the same layout, `.ion.gz` data files), as ExportFormat=ION writes it and Import from S3 reads it.
    Ion,
    /// The emr-dynamodb-connector layout (manifest v3), as the seed's EMR steps wrote.
    Emr,
}

/// `ddbx export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A friendly name for the set of tables (a folder of the layout; one run per app at a time).
    #[arg(long, required_unless_present = "resume", help_heading = "Selection")]
    pub app: Option<String>,
    /// Tables to export: a plain value is a prefix (MYAPP_PROD selects MYAPP_PROD*), one with * or ? is a glob. Repeatable.
    #[arg(
        long = "tables",
        value_name = "PREFIX_OR_GLOB",
        required_unless_present_any = ["resume", "table_names"]
    , help_heading = "Selection")]
    pub tables: Vec<String>,
    /// A table to export, named exactly. Repeatable. With only --table, the region's tables are not listed (no dynamodb:ListTables needed).
    #[arg(long = "table", value_name = "NAME", help_heading = "Selection")]
    pub table_names: Vec<String>,
    /// A table never to export (name or glob). Repeatable. <to>/excludes is also honoured.
    #[arg(long = "exclude", value_name = "NAME", help_heading = "Selection")]
    pub excludes: Vec<String>,
    /// Another excludes file, one table name a line (path or URL).
    #[arg(long, value_name = "PATH_OR_URL", help_heading = "Selection")]
    pub exclude_file: Option<String>,
    /// Base location: a folder, file:// URL or s3://bucket/prefix.
    #[arg(
        long,
        value_name = "LOCATION",
        required_unless_present = "resume",
        help_heading = "Destination"
    )]
    pub to: Option<String>,
    /// The run's time, which names its folder (RFC 3339, e.g. the schedule's 2026-11-24T03:00:00Z; default: now).
    #[arg(long, value_name = "TIME", help_heading = "Destination")]
    pub run_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Retention of the run's backup objects (S3 Object Lock).
    #[command(flatten)]
    pub object_lock: ObjectLockArgs,
    /// Take a --run-time more than a day after now (refused otherwise: a mistyped year would make that run the newest for years).
    #[arg(long, requires = "run_time", help_heading = "Destination")]
    pub allow_future_run_time: bool,
    /// Data format [default: dynamodb-json].
    #[arg(long, value_enum, help_heading = "Destination")]
    pub format: Option<FormatArg>,
    /// Compression of data files [default: gzip].
    #[arg(long, value_enum, help_heading = "Destination")]
    pub compression: Option<Compression>,
    /// Items per data file at most [default: 1,000,000; 100,000 for --format emr, as the connector].
    #[arg(long, value_parser = file_items, help_heading = "Destination")]
    pub file_items: Option<u64>,
    /// Uncompressed bytes per data file at most [default: 1 GiB].
    #[arg(long, value_parser = file_bytes, help_heading = "Destination")]
    pub file_bytes: Option<u64>,
    /// Fraction of each table's read capacity to use (on-demand: of MaxReadRequestUnits, else 40,000) [default: 0.5].
    #[arg(long, value_name = "RATIO", value_parser = ratio, help_heading = "Rate")]
    pub read_ratio: Option<f64>,
    /// Read units per second per table, overriding --read-ratio.
    #[arg(long, value_name = "UNITS", value_parser = units, help_heading = "Rate")]
    pub max_read_units: Option<f64>,
    /// Scan segments per table, 1 to 1,000,000 (default: from the table's size and target rate).
    #[arg(long, value_parser = segments, help_heading = "Rate")]
    pub segments: Option<u32>,
    /// Raise each provisioned table's read capacity to UNITS for its export, and put it back after (tables that auto-scale get their minimum raised).
    #[arg(long, value_name = "UNITS", value_parser = clap::value_parser!(i64).range(1..), help_heading = "Rate")]
    pub spike_read_units: Option<i64>,
    /// Tables exported at once.
    #[arg(long, default_value_t = 4, value_parser = parallel_tables, help_heading = "Concurrency")]
    pub parallel_tables: usize,
    /// Scan workers shared by all tables.
    #[arg(long, default_value_t = 8, value_parser = workers, help_heading = "Concurrency")]
    pub workers: usize,
    /// Where the work runs.
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Turn point-in-time recovery on for tables that lack it (recorded first, turned off again after, even on failure; `ddbx capacity restore` after a crash) (--engine native).
    #[arg(long, help_heading = "Native engine")]
    pub enable_pitr: bool,
    /// Export what changed since each table's last native export of this app (windows of at most 24 hours; a full export when there is none, or the chain was broken) (--engine native).
    #[arg(long, help_heading = "Native engine")]
    pub incremental: bool,
    /// The instant every table is exported as of (RFC 3339; default: the latest every table can restore to) (--engine native).
    #[arg(long, value_name = "TIME", value_parser = parse_time, help_heading = "Native engine")]
    pub export_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Record each table's resource policy in table.json (needs dynamodb:GetResourcePolicy), for import --create-missing to put back.
    #[arg(long, help_heading = "Destination")]
    pub resource_policy: bool,
    /// Read every data file the export wrote in full to check its MD5 and item count (else each file's ETag against the manifest) (--engine native).
    #[arg(long, help_heading = "Native engine")]
    pub deep: bool,
    /// Continue a killed, interrupted or failed export: the run root to resume (its plan and checkpoints are used). The rest of the original command line may stay: flags that agree with the run's plan are accepted, flags that contradict it are refused.
    #[arg(
        long,
        value_name = "RUN_ROOT",
        conflicts_with = "dry_run",
        help_heading = "Run"
    )]
    pub resume: Option<String>,
    /// Print the plan and write nothing.
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,
    /// Take over the app's lock if its owner stopped refreshing it long ago.
    #[arg(long, help_heading = "Run")]
    pub break_stale_lock: bool,
    /// Minutes without refresh after which a lock is stale (at least 2: a live run refreshes its lock every minute).
    #[arg(long, default_value_t = 15, value_parser = stale_lock_minutes, help_heading = "Run")]
    pub stale_lock_minutes: u64,
    /// Write the export's outcome to this file in the Prometheus text format (for node_exporter's textfile collector), atomically: per table items, bytes, seconds, success; the run's duration and last success time.
    #[arg(long, value_name = "PATH", help_heading = "Output")]
    pub metrics_file: Option<std::path::PathBuf>,
}

// Value parsers: every numeric flag's range is the library's (`ddbx_core::bounds`).
fn ratio(s: &str) -> Result<f64, ddbx_core::Error> {
    bounds::RATIO.parse(s)
}
fn units(s: &str) -> Result<f64, ddbx_core::Error> {
    bounds::UNITS.parse(s)
}
fn segments(s: &str) -> Result<u32, ddbx_core::Error> {
    bounds::SEGMENTS.parse(s)
}
fn workers(s: &str) -> Result<usize, ddbx_core::Error> {
    bounds::WORKERS.parse(s)
}
fn parallel_tables(s: &str) -> Result<usize, ddbx_core::Error> {
    bounds::PARALLEL_TABLES.parse(s)
}
fn file_items(s: &str) -> Result<u64, ddbx_core::Error> {
    bounds::FILE_ITEMS.parse(s)
}
fn file_bytes(s: &str) -> Result<u64, ddbx_core::Error> {
    bounds::FILE_BYTES.parse(s)
}
fn stale_lock_minutes(s: &str) -> Result<u64, ddbx_core::Error> {
    bounds::STALE_LOCK_MINUTES.parse(s)
}
fn seconds(s: &str) -> Result<f64, ddbx_core::Error> {
    bounds::SECONDS.parse(s)
}
fn keep_days(s: &str) -> Result<u32, ddbx_core::Error> {
    bounds::KEEP_DAYS.parse(s)
}
fn retain_days(s: &str) -> Result<u32, ddbx_core::Error> {
    bounds::RETAIN_DAYS.parse(s)
}

/// A wait on the command line: a number of seconds, or with a unit (`90s`, `30m`, `6h`,
/// `2d`).
pub fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        _ => return Err(format!("{s:?}: a wait such as 90s, 30m, 6h or 2d")),
    };
    match number.parse::<f64>() {
        Ok(n) if n >= 0.0 && n.is_finite() => Ok(std::time::Duration::from_secs_f64(n * scale)),
        _ => Err(format!("{s:?}: a wait such as 90s, 30m, 6h or 2d")),
    }
}

/// A time on the command line: RFC 3339 (`2026-12-01T10:00:00Z`).
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{s:?}: not an RFC 3339 time such as 2026-12-01T10:00:00Z ({e})"))
}

/// What `--object-lock MODE --retain DAYS` asks for, if given.
pub fn lock_request(a: &ObjectLockArgs) -> Option<ddbx_core::store::retention::LockRequest> {
    use ddbx_core::store::retention::{LockMode, LockRequest};
    Some(LockRequest {
        mode: match a.object_lock? {
            ObjectLockArg::Compliance => LockMode::Compliance,
            ObjectLockArg::Governance => LockMode::Governance,
        },
        days: a.retain?,
    })
}
