//! The EMR cluster's settings: a TOML file (`ddbx emr init` writes a commented example),
//! overridable by flags. Every field has a default that works on current EMR releases.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How ddbx creates, runs and retries its EMR clusters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmrConfig {
    /// EMR release.
    pub release_label: String,
    /// The role EMR acts as.
    pub service_role: String,
    /// The instance profile of the cluster's EC2 instances.
    pub instance_profile: String,
    /// An EMR security configuration (encryption at rest and in transit), by name.
    pub security_configuration: Option<String>,
    /// Where EMR writes its logs (default: `<run>/emr-logs/`).
    pub log_uri: Option<String>,
    /// Steps run at once on one cluster (1 runs the tables one after the other).
    pub step_concurrency: i32,
    /// The cluster terminates after this many idle seconds (60 to 604,800): when ddbx
    /// stops adding steps (it was killed), the cluster ends itself.
    pub idle_timeout_seconds: i64,
    /// A cluster still STARTING or BOOTSTRAPPING after this long is terminated and tried
    /// again (spot instance groups can wait for capacity for ever).
    pub start_timeout_seconds: f64,
    /// How a table is exported and imported on the cluster: `hive` (a Hive step over the
    /// DynamoDB storage handler EMR installs; nothing to build or upload) or `tools` (the
    /// connector's DynamoDBExport/DynamoDBImport, from a jar you bring).
    pub step_mode: StepMode,
    /// The jar holding the connector's tools, built for the release (`tools` only;
    /// `{region}` is replaced).
    pub connector_jar: Option<String>,
    /// The connector's export tool (`tools` only).
    pub export_class: String,
    /// The connector's import tool (`tools` only).
    pub import_class: String,
    /// Attempts at creating a cluster that starts (capacity, spot and bootstrap failures).
    pub create_attempts: u32,
    /// Seconds between two attempts.
    pub retry_delay_seconds: f64,
    /// Seconds between two polls of a running cluster.
    pub poll_seconds: f64,
    /// Seconds between two polls while a step may be about to end (it has run as long as
    /// the shortest step of its cluster), so that the next table's step is queued and the
    /// cluster terminated without waiting a whole `poll_seconds`.
    pub fast_poll_seconds: f64,
    /// Network and access of the instances.
    pub ec2: Ec2,
    /// Instance groups (ignored when `instance_fleets` is set).
    pub instance_groups: Vec<InstanceGroup>,
    /// Instance fleets, for spot capacity across instance types.
    pub instance_fleets: Vec<InstanceFleet>,
    /// Tags of the cluster (ddbx adds `ddbx:app` and `ddbx:run`).
    pub tags: BTreeMap<String, String>,
    /// Hadoop configurations (`mapred-site`, ...).
    pub configurations: Vec<Configuration>,
}

/// AWS's default name for the EMR service role under `AmazonEMRServicePolicy_v2`.
pub const V2_SERVICE_ROLE: &str = "EMR_DefaultRole_V2";

/// How tables are exported and imported on the cluster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepMode {
    /// A Hive step over the DynamoDB storage handler that EMR installs (the default).
    #[default]
    Hive,
    /// The connector's tools from a jar the user brings (`connector_jar`).
    Tools,
}

/// EC2 attributes of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Ec2 {
    /// The subnet (instance groups).
    pub subnet_id: Option<String>,
    /// Candidate subnets (instance fleets).
    pub subnet_ids: Vec<String>,
    /// An EC2 key pair for SSH.
    pub key_name: Option<String>,
    /// Security group of the primary node.
    pub master_security_group: Option<String>,
    /// Security group of the other nodes.
    pub slave_security_group: Option<String>,
    /// Security group for the EMR service (private subnets).
    pub service_access_security_group: Option<String>,
}

/// One instance group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceGroup {
    /// MASTER, CORE or TASK.
    pub role: String,
    /// EC2 instance type.
    pub instance_type: String,
    /// Instances.
    pub count: i32,
    /// ON_DEMAND (default) or SPOT.
    #[serde(default)]
    pub market: Option<String>,
    /// Highest spot price in USD per hour (SPOT; default: the on-demand price).
    #[serde(default)]
    pub bid_price: Option<String>,
}

/// One instance fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceFleet {
    /// MASTER, CORE or TASK.
    pub fleet_type: String,
    /// On-demand capacity units.
    #[serde(default)]
    pub target_on_demand_capacity: i32,
    /// Spot capacity units.
    #[serde(default)]
    pub target_spot_capacity: i32,
    /// Acceptable instance types.
    pub instance_types: Vec<FleetInstanceType>,
}

/// One instance type of a fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetInstanceType {
    /// EC2 instance type.
    pub instance_type: String,
    /// Capacity units one instance counts for.
    #[serde(default = "one")]
    pub weighted_capacity: i32,
    /// Highest spot price, as a percentage of the on-demand price.
    #[serde(default)]
    pub bid_price_as_percentage_of_on_demand_price: Option<f64>,
}

fn one() -> i32 {
    1
}

/// One Hadoop configuration classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Configuration {
    /// `mapred-site`, `yarn-site`, ...
    pub classification: String,
    /// Its properties.
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

impl Default for EmrConfig {
    fn default() -> Self {
        Self {
            release_label: "emr-7.5.0".into(),
            service_role: "EMR_DefaultRole".into(),
            instance_profile: "EMR_EC2_DefaultRole".into(),
            security_configuration: None,
            log_uri: None,
            step_concurrency: 1,
            idle_timeout_seconds: 3600,
            start_timeout_seconds: 1800.0,
            step_mode: StepMode::Hive,
            connector_jar: None,
            export_class: "org.apache.hadoop.dynamodb.tools.DynamoDBExport".into(),
            import_class: "org.apache.hadoop.dynamodb.tools.DynamoDBImport".into(),
            create_attempts: 5,
            retry_delay_seconds: 60.0,
            poll_seconds: 30.0,
            fast_poll_seconds: 5.0,
            ec2: Ec2::default(),
            instance_groups: vec![
                InstanceGroup {
                    role: "MASTER".into(),
                    instance_type: "m5.xlarge".into(),
                    count: 1,
                    market: None,
                    bid_price: None,
                },
                InstanceGroup {
                    role: "CORE".into(),
                    instance_type: "m5.xlarge".into(),
                    count: 1,
                    market: None,
                    bid_price: None,
                },
            ],
            instance_fleets: Vec::new(),
            tags: BTreeMap::new(),
            configurations: Vec::new(),
        }
    }
}

impl EmrConfig {
    /// Parse the TOML text of a config file.
    pub fn parse(text: &str) -> crate::Result<Self> {
        Self::parse_with(text, &[])
    }

    /// Read an optional config file, then apply `key=value` overrides (`--emr-set`): a
    /// dotted key (`ec2.subnet_id`, `tags.team`) and a TOML value (a bare word is a string).
    pub fn load_with(path: Option<&Path>, overrides: &[String]) -> Result<Self> {
        let (origin, text) = match path {
            Some(p) => (
                p.display().to_string(),
                std::fs::read_to_string(p)
                    .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?,
            ),
            None => ("--emr-set".to_string(), String::new()),
        };
        Self::parse_with(&text, overrides).map_err(|e| Error::Usage(format!("{origin}: {e}")))
    }

    fn parse_with(text: &str, overrides: &[String]) -> crate::Result<Self> {
        let mut doc: toml::Table = toml::from_str(text).map_err(|e| Error::Usage(e.to_string()))?;
        for o in overrides {
            let (key, raw) = o
                .split_once('=')
                .ok_or_else(|| Error::Usage(format!("--emr-set {o:?}: expected KEY=VALUE")))?;
            let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(raw.to_string()));
            let mut table = &mut doc;
            let parts: Vec<&str> = key.trim().split('.').collect();
            for part in &parts[..parts.len() - 1] {
                table = table
                    .entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .ok_or_else(|| {
                        Error::Usage(format!("--emr-set {o:?}: {part} is not a table"))
                    })?;
            }
            table.insert(parts[parts.len() - 1].to_string(), value);
        }
        let config: Self = toml::Value::Table(doc)
            .try_into()
            .map_err(|e: toml::de::Error| Error::Usage(e.to_string()))?;
        config.check()?;
        Ok(config)
    }

    /// What EMR would refuse at RunJobFlow (after minutes of retries), refused here.
    fn check(&self) -> crate::Result<()> {
        if self.create_attempts == 0 {
            return Err(Error::Usage("create_attempts must be at least 1".into()));
        }
        if !(self.poll_seconds > 0.0
            && self.fast_poll_seconds > 0.0
            && self.retry_delay_seconds >= 0.0
            && self.start_timeout_seconds > 0.0)
        {
            return Err(Error::Usage("poll_seconds, fast_poll_seconds and start_timeout_seconds must be positive and retry_delay_seconds not negative".into()));
        }
        if let Some((k, v)) = self
            .tags
            .iter()
            .find(|(k, v)| k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256)
        {
            return Err(Error::Usage(format!(
                "tag {k:?} = {v:?}: EMR takes tag keys of 1 to 128 characters and values of at most 256"
            )));
        }
        if self.service_role == V2_SERVICE_ROLE
            && self.ec2.subnet_id.is_none()
            && self.ec2.subnet_ids.is_empty()
        {
            return Err(Error::Usage(format!(
                "service_role {V2_SERVICE_ROLE} (AmazonEMRServicePolicy_v2) launches instances only into subnets tagged for-use-with-amazon-emr-managed-policies=true, and without ec2.subnet_id EMR picks a subnet of the default VPC, which nobody tagged: tag a subnet (and the security groups you name) so and set ec2.subnet_id (or subnet_ids with instance fleets)"
            )));
        }
        if !(1..=256).contains(&self.step_concurrency) {
            return Err(Error::Usage(format!(
                "step_concurrency {} is out of EMR's range (1 to 256)",
                self.step_concurrency
            )));
        }
        if !(60..=604_800).contains(&self.idle_timeout_seconds) {
            return Err(Error::Usage(format!(
                "idle_timeout_seconds {} is out of EMR's range (60 to 604800)",
                self.idle_timeout_seconds
            )));
        }
        let release = self.release()?;
        if self.instance_fleets.is_empty() {
            if !self.instance_groups.iter().any(|g| g.role == "MASTER") {
                return Err(Error::Usage(
                    "instance_groups needs a MASTER group (or use instance_fleets)".into(),
                ));
            }
            if !self.ec2.subnet_ids.is_empty() {
                return Err(Error::Usage(
                    "ec2.subnet_ids is for instance fleets; with instance groups use ec2.subnet_id"
                        .into(),
                ));
            }
            if let Some(g) = self
                .instance_groups
                .iter()
                .find(|g| g.bid_price.is_some() && g.market.as_deref() != Some("SPOT"))
            {
                return Err(Error::Usage(format!(
                    "instance group {}: bid_price needs market = \"SPOT\"",
                    g.role
                )));
            }
        } else if !self
            .instance_fleets
            .iter()
            .any(|f| f.fleet_type == "MASTER")
        {
            return Err(Error::Usage("instance_fleets needs a MASTER fleet".into()));
        }
        if self.step_concurrency > 1 && !release.at_least(5, 28) {
            return Err(Error::Usage(format!(
                "{}: step_concurrency above 1 needs emr-5.28.0 or later",
                self.release_label
            )));
        }
        match self.step_mode {
            StepMode::Hive if release.major < 5 => Err(Error::Usage(format!(
                "{}: Hive steps need emr-5.x or later",
                self.release_label
            ))),
            StepMode::Hive => Ok(()),
            StepMode::Tools => {
                let jar = self.connector_jar.as_deref().ok_or_else(|| Error::Usage(
                    "step_mode = \"tools\" needs connector_jar: a tools jar built for the release (the connector branch of its emr-ddb component)"
                    .into()))?;
                let legacy = jar.contains("emr-ddb-2.1.0")
                    || self.export_class.ends_with("DynamoDbExport")
                    || self.import_class.ends_with("DynamoDbImport");
                if legacy && release.major >= 6 {
                    return Err(Error::Usage(format!(
                        "{}: the emr-ddb-2.1.0.jar tools (DynamoDbExport, DynamoDbImport) belong to emr-4.x and cannot run beside the connector 5.x of emr-6/7; use step_mode = \"hive\", or a tools jar built for the release",
                        self.release_label
                    )));
                }
                Ok(())
            }
        }
    }

    /// The release, as numbers (`emr-7.5.0` is 7.5.0).
    pub fn release(&self) -> crate::Result<Release> {
        Release::parse(&self.release_label)
    }

    /// The connector jar for a region (`tools` only).
    pub fn jar(&self, region: &str) -> Option<String> {
        self.connector_jar
            .as_ref()
            .map(|j| j.replace("{region}", region))
    }
}

/// An EMR release label's numbers: what its API accepts depends on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Release {
    /// 7 of emr-7.5.0.
    pub major: u32,
    /// 5 of emr-7.5.0.
    pub minor: u32,
}

impl Release {
    fn parse(label: &str) -> crate::Result<Self> {
        let bad = || Error::Usage(format!("release_label {label:?}: expected emr-X.Y.Z"));
        let mut parts = label.strip_prefix("emr-").ok_or_else(bad)?.split('.');
        let major = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        let minor = parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)?;
        Ok(Self { major, minor })
    }

    /// Whether the release is `major.minor` or later.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }

    /// Whether RunJobFlow takes an AutoTerminationPolicy (emr-5.30.0 and 6.1.0 or later).
    pub fn has_auto_termination(&self) -> bool {
        match self.major {
            5 => self.minor >= 30,
            6 => self.minor >= 1,
            m => m > 6,
        }
    }
}

/// A commented example config (what `ddbx emr init` writes). It parses to the defaults
/// plus the example's tags.
pub const EXAMPLE: &str = r#"# ddbx EMR engine settings (ddbx export|import --engine emr --emr-config THIS_FILE).
# Every key is optional; what is shown is the default unless marked "example".

release_label = "emr-7.5.0"
service_role = "EMR_DefaultRole"          # the role EMR itself acts as (see iam/README.md). Under
                                          # AmazonEMRServicePolicy_v2 (AWS's role EMR_DefaultRole_V2)
                                          # EMR launches only into a subnet and security groups
                                          # tagged for-use-with-amazon-emr-managed-policies=true:
                                          # ddbx tags the cluster; tag the subnet and groups yourself
                                          # and name the subnet in [ec2] (without one, EMR picks an
                                          # untagged subnet of the default VPC and the launch fails)
instance_profile = "EMR_EC2_DefaultRole"  # the instances' role: see iam/emr-cluster-policy.json
# security_configuration = "dynamodb-backups"   # example: an EMR security configuration
# log_uri = "s3://my-bucket/emr-logs/"          # default: <run root>/emr-logs/
step_concurrency = 1          # steps (tables) running at once on one cluster (1 to 256)
idle_timeout_seconds = 3600   # the cluster ends itself after this long idle (60 to 604800): when
                              # ddbx stops adding steps, even if ddbx itself was killed
start_timeout_seconds = 1800  # a cluster not running after this long is terminated and tried again

# How each table is exported and imported on the cluster:
#   "hive"   a Hive step over the DynamoDB storage handler that EMR installs: nothing to build
#            or upload (the default)
#   "tools"  the connector's DynamoDBExport / DynamoDBImport, from a tools jar built for the
#            release (the connector branch of the release's emr-ddb component)
step_mode = "hive"
# connector_jar = "s3://my-bucket/jars/emr-dynamodb-tools-5.7.0.jar"   # example: tools only ({region} is replaced)
export_class = "org.apache.hadoop.dynamodb.tools.DynamoDBExport"
import_class = "org.apache.hadoop.dynamodb.tools.DynamoDBImport"

create_attempts = 5           # a cluster that fails to start (capacity, spot, bootstrap) is tried again
retry_delay_seconds = 60
poll_seconds = 30
fast_poll_seconds = 5         # polls while a step may be ending, so the next one is queued at once

[ec2]
# subnet_id = "subnet-0123456789abcdef0"        # example (instance groups); tagged as above under v2
# subnet_ids = ["subnet-0123", "subnet-4567"]   # example (instance fleets)
# key_name = "ops"                               # example: SSH key pair
# master_security_group = "sg-0123"             # example
# slave_security_group = "sg-4567"              # example
# service_access_security_group = "sg-89ab"     # example (private subnets)

[[instance_groups]]
role = "MASTER"
instance_type = "m5.xlarge"
count = 1

[[instance_groups]]
role = "CORE"
instance_type = "m5.xlarge"
count = 1
# market = "SPOT"          # example
# bid_price = "0.10"       # example: USD per hour

# Instance fleets replace the groups above when present (example):
# [[instance_fleets]]
# fleet_type = "MASTER"
# target_on_demand_capacity = 1
# instance_types = [{ instance_type = "m5.xlarge" }]
# [[instance_fleets]]
# fleet_type = "CORE"
# target_spot_capacity = 4
# instance_types = [
#   { instance_type = "m5.xlarge", weighted_capacity = 1, bid_price_as_percentage_of_on_demand_price = 60.0 },
#   { instance_type = "m5.2xlarge", weighted_capacity = 2, bid_price_as_percentage_of_on_demand_price = 60.0 },
# ]

[tags]                       # ddbx adds Name, ddbx:app, ddbx:run and for-use-with-amazon-emr-managed-policies
# team = "ops"              # example

# Hadoop configurations, merged with ddbx's (speculative execution off; with --sse, EMRFS's
# server-side encryption) (example):
# [[configurations]]
# classification = "mapred-site"
# properties = { "mapreduce.map.memory.mb" = "2560" }
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_parses_to_the_defaults() {
        assert_eq!(EmrConfig::parse(EXAMPLE).unwrap(), EmrConfig::default());
        assert_eq!(EmrConfig::parse("").unwrap(), EmrConfig::default());
    }

    #[test]
    fn the_examples_commented_lines_parse_when_uncommented() {
        let uncommented: String = EXAMPLE
            .lines()
            .map(|l| {
                l.strip_prefix("# ")
                    .filter(|r| r.contains('=') || r.starts_with('[') || r.trim() == "]")
                    .unwrap_or(l)
            })
            .map(|l| format!("{l}\n"))
            .collect();
        // Uncommenting yields a second `[[instance_fleets]]` section and more; it must parse.
        let c = EmrConfig::parse(&uncommented).unwrap();
        assert_eq!(c.instance_fleets.len(), 2);
        assert_eq!(c.ec2.subnet_ids.len(), 2);
        assert_eq!(c.configurations[0].classification, "mapred-site");
    }

    #[test]
    fn flags_override_the_file() {
        let file = "release_label = \"emr-6.15.0\"\n[ec2]\nkey_name = \"ops\"\n";
        let c = EmrConfig::parse_with(
            file,
            &[
                "release_label=emr-7.6.0".into(),
                "ec2.subnet_id=subnet-1".into(),
                "tags.team=ops".into(),
                "create_attempts=2".into(),
                "poll_seconds=0.5".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.release_label, "emr-7.6.0");
        assert_eq!(c.ec2.subnet_id.as_deref(), Some("subnet-1"));
        assert_eq!(c.ec2.key_name.as_deref(), Some("ops"));
        assert_eq!(c.tags["team"], "ops");
        assert_eq!((c.create_attempts, c.poll_seconds), (2, 0.5));
        let bad = EmrConfig::parse_with("", &["creat_attempts=2".into()]).unwrap_err();
        assert!(bad.to_string().contains("creat_attempts"), "{bad}");
        assert!(EmrConfig::parse_with("", &["no-equals".into()]).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(EmrConfig::parse("relase_label = \"emr-7\"")
            .unwrap_err()
            .to_string()
            .contains("relase_label"));
        assert!(EmrConfig::parse("create_attempts = 0").is_err());
        assert!(EmrConfig::parse("instance_groups = []").is_err());
        assert_eq!(EmrConfig::default().jar("eu-west-1"), None);
        let c =
            EmrConfig::parse("step_mode = \"tools\"\nconnector_jar = \"s3://j/{region}/t.jar\"")
                .unwrap();
        assert_eq!(
            c.jar("eu-west-1").as_deref(),
            Some("s3://j/eu-west-1/t.jar")
        );
    }

    #[test]
    fn what_emr_refuses_at_run_job_flow_is_refused_here() {
        for (text, why) in [
            ("idle_timeout_seconds = 30", "60 to 604800"),
            ("idle_timeout_seconds = 700000", "60 to 604800"),
            ("step_concurrency = 300", "1 to 256"),
            ("[ec2]\nsubnet_ids = [\"subnet-1\"]", "instance fleets"),
            ("release_label = \"emr-5.20.0\"\nstep_concurrency = 2", "emr-5.28.0"),
            ("release_label = \"7.5.0\"", "emr-X.Y.Z"),
            ("step_mode = \"tools\"", "connector_jar"),
            ("fast_poll_seconds = 0", "fast_poll_seconds"),
            (
                "service_role = \"EMR_DefaultRole_V2\"",
                "for-use-with-amazon-emr-managed-policies=true",
            ),
            ("[tags]\nteam = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"", "at most 256"),
            (
                "step_mode = \"tools\"\nconnector_jar = \"s3://dynamodb-emr-{region}/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar\"",
                "belong to emr-4.x",
            ),
            (
                "step_mode = \"tools\"\nconnector_jar = \"s3://b/tools.jar\"\nexport_class = \"org.apache.hadoop.dynamodb.tools.DynamoDbExport\"",
                "belong to emr-4.x",
            ),
            (
                "[[instance_groups]]\nrole = \"MASTER\"\ninstance_type = \"m5.xlarge\"\ncount = 1\nbid_price = \"0.1\"",
                "needs market",
            ),
            (
                "[[instance_fleets]]\nfleet_type = \"CORE\"\ninstance_types = [{ instance_type = \"m5.xlarge\" }]",
                "MASTER fleet",
            ),
        ] {
            let err = EmrConfig::parse(text).unwrap_err();
            assert!(err.to_string().contains(why), "{text}: {err}");
        }
        // The v2 role with a subnet named (tagged, as its policy needs).
        assert!(EmrConfig::parse(
            "service_role = \"EMR_DefaultRole_V2\"\n[ec2]\nsubnet_id = \"subnet-1\""
        )
        .is_ok());
        // The legacy jar on the release it was made for.
        assert!(EmrConfig::parse(
            "release_label = \"emr-4.7.0\"\nstep_mode = \"tools\"\nconnector_jar = \"s3://dynamodb-emr-{region}/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar\""
        )
        .is_ok());
    }

    #[test]
    fn releases_say_what_they_accept() {
        let r = |l: &str| Release::parse(l).unwrap();
        assert!(r("emr-7.5.0").has_auto_termination());
        assert!(r("emr-6.1.0").has_auto_termination());
        assert!(!r("emr-6.0.0").has_auto_termination());
        assert!(r("emr-5.30.1").has_auto_termination());
        assert!(!r("emr-5.22.0").has_auto_termination());
        assert!(r("emr-5.28.0").at_least(5, 28) && !r("emr-5.27.0").at_least(5, 28));
    }
}
