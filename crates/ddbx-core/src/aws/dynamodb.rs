//! DynamoDB control-plane calls used by every engine: listing and describing tables.

use aws_sdk_dynamodb::types::TableDescription;

use crate::aws::Aws;
use crate::table::TableSchema;
use crate::Result;

impl Aws {
    /// Every table name in the region, following ListTables' pages (100 names each).
    pub async fn list_tables(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut start: Option<String> = None;
        loop {
            let page = self
                .call(
                    || "listing tables".to_string(),
                    None,
                    || {
                        self.dynamodb
                            .list_tables()
                            .set_exclusive_start_table_name(start.clone())
                            .limit(100)
                            .send()
                    },
                )
                .await?;
            names.extend(page.table_names().iter().cloned());
            match page.last_evaluated_table_name() {
                Some(last) => start = Some(last.to_string()),
                None => return Ok(names),
            }
        }
    }

    /// DescribeTable's answer, as the SDK gives it.
    pub async fn describe_raw(&self, table: &str) -> Result<TableDescription> {
        let out = self
            .call(
                || format!("table {table}: DescribeTable"),
                None,
                || self.dynamodb.describe_table().table_name(table).send(),
            )
            .await?;
        out.table().cloned().ok_or_else(|| {
            crate::Error::Failed(format!("table {table}: DescribeTable returned no table"))
        })
    }

    /// Wait until a table is ACTIVE (after CreateTable or UpdateTable), polling
    /// DescribeTable, for at most 10 minutes.
    pub async fn wait_active(&self, table: &str) -> Result<()> {
        let step = std::time::Duration::from_millis(250);
        let mut waited = std::time::Duration::ZERO;
        loop {
            let status = self
                .describe_raw(table)
                .await?
                .table_status()
                .map(|s| s.as_str().to_string());
            if status.as_deref() == Some("ACTIVE") {
                return Ok(());
            }
            if waited > std::time::Duration::from_secs(600) {
                return Err(crate::Error::Failed(format!(
                    "table {table}: still {status:?} after 10 minutes"
                )));
            }
            self.clock.sleep(step).await;
            waited += step;
        }
    }

    /// Describe a table, with its time-to-live settings when the endpoint has them.
    pub async fn describe_table(&self, table: &str) -> Result<TableSchema> {
        let desc = self.describe_raw(table).await?;
        // Some compatible endpoints do not implement DescribeTimeToLive: TTL is then unknown.
        let ttl = match self
            .call(
                || format!("table {table}: DescribeTimeToLive"),
                None,
                || {
                    self.dynamodb
                        .describe_time_to_live()
                        .table_name(table)
                        .send()
                },
            )
            .await
        {
            Ok(t) => t.time_to_live_description().cloned(),
            Err(e) => {
                tracing::debug!(%table, error = %e, "no time-to-live description");
                None
            }
        };
        Ok(TableSchema::from_description(&desc, ttl.as_ref()))
    }

    /// Time to live as `table.json` has it, on a table just created.
    pub async fn apply_ttl(&self, target: &str, s: &TableSchema) -> Result<()> {
        let Some(ttl) = s
            .time_to_live
            .as_ref()
            .filter(|t| t.time_to_live_status.starts_with("ENABL"))
        else {
            return Ok(());
        };
        let Some(attr) = &ttl.attribute_name else {
            return Ok(());
        };
        self.call(
            || format!("table {target}: UpdateTimeToLive"),
            None,
            || {
                self.dynamodb
                    .update_time_to_live()
                    .table_name(target)
                    .time_to_live_specification(
                        aws_sdk_dynamodb::types::TimeToLiveSpecification::builder()
                            .enabled(true)
                            .attribute_name(attr)
                            .build()
                            .expect("fields are set"),
                    )
                    .send()
            },
        )
        .await?;
        Ok(())
    }
    /// UpdateContinuousBackups: point-in-time recovery on or off.
    pub async fn set_pitr(&self, table: &str, enabled: bool) -> Result<()> {
        let spec = aws_sdk_dynamodb::types::PointInTimeRecoverySpecification::builder()
            .point_in_time_recovery_enabled(enabled)
            .build()
            .expect("enabled is set");
        self.call(
            || format!("table {table}: UpdateContinuousBackups"),
            None,
            || {
                self.dynamodb
                    .update_continuous_backups()
                    .table_name(table)
                    .point_in_time_recovery_specification(spec.clone())
                    .send()
            },
        )
        .await?;
        tracing::info!(%table, enabled, "point-in-time recovery set");
        Ok(())
    }
}
