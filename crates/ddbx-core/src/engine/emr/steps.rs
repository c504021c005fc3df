//! The steps an EMR cluster runs, one per table: a Hive step (`command-runner.jar` running
//! the table's `.q` file), or with `step_mode = "tools"` the connector's tool from the
//! user's jar; in the shape the seed wrote to `exportSteps_NN.json` / `importSteps_NN.json`
//! (what `aws emr create-cluster --steps file://...` takes). Also the split of a run's
//! tables over several clusters.

use serde::{Deserialize, Serialize};

use super::config::EmrConfig;

/// Step names start with this for exports; the table's name follows.
pub const EXPORT_PREFIX: &str = "Export Table:";
/// Step names start with this for imports; the target table's name follows.
pub const IMPORT_PREFIX: &str = "Import Table:";
/// EMR's limit on a step's name.
pub const MAX_NAME: usize = 256;
/// EMR's limit on a cluster's PENDING and RUNNING steps.
pub const MAX_PENDING_STEPS: usize = 256;

/// One step, as the AWS CLI's steps file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Step {
    /// `Export Table:<table>` or `Import Table:<table>`, cut to EMR's 256 characters.
    pub name: String,
    /// CONTINUE: one table failing never stops the others.
    pub action_on_failure: String,
    /// CUSTOM_JAR.
    #[serde(rename = "Type")]
    pub kind: String,
    /// `command-runner.jar` (Hive), or the connector's tools jar.
    pub jar: String,
    /// The program's arguments.
    pub args: Vec<String>,
    /// The step's table (not part of EMR's shape: names are cut, so steps are told apart
    /// by this and their ids).
    #[serde(skip)]
    pub table: String,
}

impl Step {
    /// The table this step exports or imports.
    pub fn table(&self) -> &str {
        if !self.table.is_empty() {
            return &self.table;
        }
        self.name
            .strip_prefix(EXPORT_PREFIX)
            .or_else(|| self.name.strip_prefix(IMPORT_PREFIX))
            .unwrap_or(&self.name)
    }
}

/// A step's name for a table, within EMR's 256 characters (a long table name is cut, and
/// the step is known by its table, not its name).
fn step_name(prefix: &str, table: &str) -> String {
    let mut name = format!("{prefix}{table}");
    if name.len() > MAX_NAME {
        let keep = MAX_NAME - 3;
        name.truncate(keep);
        name.push_str("...");
    }
    name
}

fn step(name: String, table: &str, jar: String, args: Vec<String>) -> Step {
    Step {
        name,
        action_on_failure: "CONTINUE".into(),
        kind: "CUSTOM_JAR".into(),
        jar,
        args,
        table: table.to_string(),
    }
}

/// A Hive step running the HiveQL file at `script` (an `s3://` URL).
pub fn hive_step(prefix: &str, table: &str, script: &str) -> Step {
    step(
        step_name(prefix, table),
        table,
        "command-runner.jar".into(),
        ["hive-script", "--run-hive-script", "--args", "-f", script]
            .map(String::from)
            .to_vec(),
    )
}

/// The connector's export tool: `<path> <table> <read ratio> [<segments>]`, with Hadoop
/// settings (`-D`) before them (the tools run through ToolRunner).
pub fn tools_export_step(
    config: &EmrConfig,
    region: &str,
    table: &str,
    path: &str,
    read_ratio: f64,
    segments: Option<u32>,
    hadoop: &[String],
) -> Step {
    let mut args = vec![config.export_class.clone()];
    args.extend(hadoop.iter().cloned());
    args.extend([path.to_string(), table.to_string(), ratio(read_ratio)]);
    if let Some(s) = segments {
        args.push(s.to_string());
    }
    step(
        step_name(EXPORT_PREFIX, table),
        table,
        config.jar(region).unwrap_or_default(),
        args,
    )
}

/// The connector's import tool: `<path> <table> <write ratio>`.
pub fn tools_import_step(
    config: &EmrConfig,
    region: &str,
    table: &str,
    path: &str,
    write_ratio: f64,
) -> Step {
    step(
        step_name(IMPORT_PREFIX, table),
        table,
        config.jar(region).unwrap_or_default(),
        vec![
            config.import_class.clone(),
            path.to_string(),
            table.to_string(),
            ratio(write_ratio),
        ],
    )
}

/// A ratio as the connector reads it (shortest exact decimal: 0.45, 1, 0.5).
pub fn ratio(r: f64) -> String {
    format!("{r}")
}

/// The names of `count` clusters: `<name>` alone, or `<name>_01` ... `<name>_NN`.
pub fn cluster_names(name: &str, count: usize) -> Vec<String> {
    if count <= 1 {
        vec![name.to_string()]
    } else {
        (1..=count).map(|i| format!("{name}_{i:02}")).collect()
    }
}

/// Split items of the given sizes over at most `clusters` groups balanced by total size:
/// largest first, each to the group with the least bytes so far (then the fewest items).
/// Returns the indices of each non-empty group, in input order within a group.
pub fn split_by_size(sizes: &[u64], clusters: usize) -> Vec<Vec<usize>> {
    let n = clusters.max(1).min(sizes.len().max(1));
    let mut order: Vec<usize> = (0..sizes.len()).collect();
    order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
    let mut groups: Vec<(u64, Vec<usize>)> = vec![(0, Vec::new()); n];
    for i in order {
        let g = (0..n)
            .min_by_key(|&g| (groups[g].0, groups[g].1.len(), g))
            .expect("at least one group");
        groups[g].0 += sizes[i];
        groups[g].1.push(i);
    }
    groups
        .into_iter()
        .map(|(_, mut g)| {
            g.sort_unstable();
            g
        })
        .filter(|g| !g.is_empty())
        .collect()
}

/// A steps file's name: `exportSteps_01.json`.
pub fn steps_file(job: &str, cluster: usize) -> String {
    format!("{job}Steps_{:02}.json", cluster + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_the_seeds_shape() {
        let steps = vec![
            hive_step(
                EXPORT_PREFIX,
                "BILLING_PROD_invoices",
                "s3://backups/ddb/us-east-1/billing/2026/11/24/03_00.00/_emr/export-BILLING_PROD_invoices.q",
            ),
        ];
        let golden = r#"[
  {
    "Name": "Export Table:BILLING_PROD_invoices",
    "ActionOnFailure": "CONTINUE",
    "Type": "CUSTOM_JAR",
    "Jar": "command-runner.jar",
    "Args": [
      "hive-script",
      "--run-hive-script",
      "--args",
      "-f",
      "s3://backups/ddb/us-east-1/billing/2026/11/24/03_00.00/_emr/export-BILLING_PROD_invoices.q"
    ]
  }
]"#;
        assert_eq!(serde_json::to_string_pretty(&steps).unwrap(), golden);
        let back: Vec<Step> = serde_json::from_str(golden).unwrap();
        assert_eq!(back[0].table(), "BILLING_PROD_invoices");

        let c = EmrConfig::parse(
            "step_mode = \"tools\"\nconnector_jar = \"s3://j/{region}/tools.jar\"",
        )
        .unwrap();
        let export = tools_export_step(
            &c,
            "us-east-1",
            "BILLING_PROD_users",
            "s3://b/p/BILLING_PROD_users",
            1.0,
            Some(8),
            &["-Dmapreduce.map.speculative=false".into()],
        );
        assert_eq!(export.jar, "s3://j/us-east-1/tools.jar");
        assert_eq!(
            export.args,
            [
                "org.apache.hadoop.dynamodb.tools.DynamoDBExport",
                "-Dmapreduce.map.speculative=false",
                "s3://b/p/BILLING_PROD_users",
                "BILLING_PROD_users",
                "1",
                "8"
            ]
        );
        let import = tools_import_step(&c, "eu-west-1", "RESTORED_users", "s3://b/p/x", 0.5);
        assert_eq!(import.name, "Import Table:RESTORED_users");
        assert_eq!(
            import.args,
            [
                "org.apache.hadoop.dynamodb.tools.DynamoDBImport",
                "s3://b/p/x",
                "RESTORED_users",
                "0.5"
            ]
        );
        assert_eq!(steps_file("export", 0), "exportSteps_01.json");
        assert_eq!(steps_file("import", 11), "importSteps_12.json");
    }

    #[test]
    fn a_step_name_stays_within_emrs_limit_and_the_step_knows_its_table() {
        let table = "t".repeat(255);
        let s = hive_step(EXPORT_PREFIX, &table, "s3://b/x.q");
        assert_eq!(s.name.len(), MAX_NAME);
        assert!(s.name.ends_with("..."));
        assert_eq!(s.table(), table);
    }

    #[test]
    fn clusters_are_named_as_the_seed_named_them() {
        assert_eq!(cluster_names("billing", 1), vec!["billing"]);
        assert_eq!(
            cluster_names("billing", 3),
            vec!["billing_01", "billing_02", "billing_03"]
        );
    }

    #[test]
    fn tables_are_split_by_size_not_by_count() {
        // One huge table and four small ones over two clusters: the huge one alone.
        let sizes = [10, 1_000, 20, 30, 40];
        assert_eq!(split_by_size(&sizes, 2), vec![vec![1], vec![0, 2, 3, 4]]);
        // Equal sizes (as an emulator reports: 0) spread by count.
        assert_eq!(
            split_by_size(&[0, 0, 0, 0], 2),
            vec![vec![0, 2], vec![1, 3]]
        );
        // More clusters than tables: one table each, no empty cluster.
        assert_eq!(split_by_size(&[5, 6], 4), vec![vec![1], vec![0]]);
        assert_eq!(split_by_size(&[5, 6], 1), vec![vec![0, 1]]);
    }

    proptest::proptest! {
        #[test]
        fn the_split_places_every_table_once_and_is_balanced(
            sizes in proptest::collection::vec(0u64..1_000_000, 1..40),
            clusters in 1usize..6,
        ) {
            let groups = split_by_size(&sizes, clusters);
            let mut all: Vec<usize> = groups.iter().flatten().copied().collect();
            all.sort_unstable();
            proptest::prop_assert_eq!(all, (0..sizes.len()).collect::<Vec<_>>());
            proptest::prop_assert!(groups.len() <= clusters);
            // Greedy bound: no group exceeds the ideal share by more than the largest table.
            let total: u64 = sizes.iter().sum();
            let largest = *sizes.iter().max().unwrap();
            for g in &groups {
                let sum: u64 = g.iter().map(|&i| sizes[i]).sum();
                proptest::prop_assert!(sum <= total / groups.len() as u64 + largest);
            }
        }
    }
}
