//! The steps an EMR cluster runs: one connector export (or import) per table, in the
//! shape the seed wrote to `exportSteps_NN.json` / `importSteps_NN.json` (what
//! `aws emr create-cluster --steps file://...` takes), and the split of a run's tables
//! over several clusters.

use serde::{Deserialize, Serialize};

use super::config::EmrConfig;

/// Step names start with this for exports; the table's name follows.
pub const EXPORT_PREFIX: &str = "Export Table:";
/// Step names start with this for imports; the target table's name follows.
pub const IMPORT_PREFIX: &str = "Import Table:";

/// One step, as the AWS CLI's steps file writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Step {
    /// `Export Table:<table>` or `Import Table:<table>`.
    pub name: String,
    /// CONTINUE: one table failing never stops the others.
    pub action_on_failure: String,
    /// CUSTOM_JAR.
    #[serde(rename = "Type")]
    pub kind: String,
    /// The connector's jar.
    pub jar: String,
    /// The tool's class, then its arguments.
    pub args: Vec<String>,
}

impl Step {
    /// The table this step exports or imports.
    pub fn table(&self) -> &str {
        self.name
            .strip_prefix(EXPORT_PREFIX)
            .or_else(|| self.name.strip_prefix(IMPORT_PREFIX))
            .unwrap_or(&self.name)
    }
}

fn step(config: &EmrConfig, region: &str, name: String, class: &str, args: Vec<String>) -> Step {
    Step {
        name,
        action_on_failure: "CONTINUE".into(),
        kind: "CUSTOM_JAR".into(),
        jar: config.jar(region),
        args: std::iter::once(class.to_string()).chain(args).collect(),
    }
}

/// The connector's export: `<path> <table> <read ratio> [<segments>]`.
pub fn export_step(
    config: &EmrConfig,
    region: &str,
    table: &str,
    path: &str,
    read_ratio: f64,
    segments: Option<u32>,
) -> Step {
    let mut args = vec![path.to_string(), table.to_string(), ratio(read_ratio)];
    if let Some(s) = segments {
        args.push(s.to_string());
    }
    step(
        config,
        region,
        format!("{EXPORT_PREFIX}{table}"),
        &config.export_class,
        args,
    )
}

/// The connector's import: `<path> <table> <write ratio>`.
pub fn import_step(
    config: &EmrConfig,
    region: &str,
    table: &str,
    path: &str,
    write_ratio: f64,
) -> Step {
    step(
        config,
        region,
        format!("{IMPORT_PREFIX}{table}"),
        &config.import_class,
        vec![path.to_string(), table.to_string(), ratio(write_ratio)],
    )
}

/// A ratio as the connector reads it (shortest exact decimal: 0.45, 1, 0.5).
fn ratio(r: f64) -> String {
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
    fn export_and_import_steps_match_the_seeds_shape() {
        let c = EmrConfig::default();
        let steps = vec![
            export_step(
                &c,
                "us-east-1",
                "BILLING_PROD_invoices",
                "s3://backups/ddb/us-east-1/billing/2026/11/24/03_00.00/BILLING_PROD_invoices",
                0.45,
                None,
            ),
            export_step(
                &c,
                "us-east-1",
                "BILLING_PROD_users",
                "s3://b/p/BILLING_PROD_users",
                1.0,
                Some(8),
            ),
        ];
        let golden = r#"[
  {
    "Name": "Export Table:BILLING_PROD_invoices",
    "ActionOnFailure": "CONTINUE",
    "Type": "CUSTOM_JAR",
    "Jar": "s3://dynamodb-emr-us-east-1/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar",
    "Args": [
      "org.apache.hadoop.dynamodb.tools.DynamoDbExport",
      "s3://backups/ddb/us-east-1/billing/2026/11/24/03_00.00/BILLING_PROD_invoices",
      "BILLING_PROD_invoices",
      "0.45"
    ]
  },
  {
    "Name": "Export Table:BILLING_PROD_users",
    "ActionOnFailure": "CONTINUE",
    "Type": "CUSTOM_JAR",
    "Jar": "s3://dynamodb-emr-us-east-1/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar",
    "Args": [
      "org.apache.hadoop.dynamodb.tools.DynamoDbExport",
      "s3://b/p/BILLING_PROD_users",
      "BILLING_PROD_users",
      "1",
      "8"
    ]
  }
]"#;
        assert_eq!(serde_json::to_string_pretty(&steps).unwrap(), golden);
        let back: Vec<Step> = serde_json::from_str(golden).unwrap();
        assert_eq!(back, steps);
        assert_eq!(back[1].table(), "BILLING_PROD_users");

        let import = import_step(
            &c,
            "eu-west-1",
            "RESTORED_users",
            "s3://b/p/BILLING_PROD_users",
            0.5,
        );
        let golden = r#"{
  "Name": "Import Table:RESTORED_users",
  "ActionOnFailure": "CONTINUE",
  "Type": "CUSTOM_JAR",
  "Jar": "s3://dynamodb-emr-eu-west-1/emr-ddb-storage-handler/2.1.0/emr-ddb-2.1.0.jar",
  "Args": [
    "org.apache.hadoop.dynamodb.tools.DynamoDbImport",
    "s3://b/p/BILLING_PROD_users",
    "RESTORED_users",
    "0.5"
  ]
}"#;
        assert_eq!(serde_json::to_string_pretty(&import).unwrap(), golden);
        assert_eq!(import.table(), "RESTORED_users");
        assert_eq!(steps_file("export", 0), "exportSteps_01.json");
        assert_eq!(steps_file("import", 11), "importSteps_12.json");
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
