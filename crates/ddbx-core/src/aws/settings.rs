//! A table's settings beyond DescribeTable (`table::settings`): read at export, put back
//! on a table an import created. Each setting stands alone: one that cannot be read or
//! restored is named with why, and the others go on.

use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};
use aws_sdk_dynamodb::types as ddb;

use super::Aws;
use crate::table::settings::{ScalableTarget, ScalingPolicy, SettingsOutcome, Tag};
use crate::table::TableSchema;
use crate::{Error, Result};

/// A resource policy with the source table's ARN made the target's wherever it names the
/// table or something under it (`<arn>/index/*`, `<arn>/stream/*`); nothing else changes
/// (another table whose name starts the same stays itself).
pub fn retarget_policy(policy: &str, source: &str, target: &str) -> String {
    fn walk(v: &mut serde_json::Value, source: &str, target: &str) {
        match v {
            serde_json::Value::String(s) => {
                if s == source {
                    *s = target.to_string();
                } else if let Some(rest) = s.strip_prefix(source).filter(|r| r.starts_with('/')) {
                    *s = format!("{target}{rest}");
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(|x| walk(x, source, target)),
            serde_json::Value::Object(o) => o.values_mut().for_each(|x| walk(x, source, target)),
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(policy) {
        Ok(mut v) => {
            walk(&mut v, source, target);
            v.to_string()
        }
        // Not JSON: PutResourcePolicy will say so.
        Err(_) => policy.to_string(),
    }
}

impl Aws {
    /// Read into `schema.settings` what DescribeTable does not say: tags, point-in-time
    /// recovery, auto scaling, and with `resource_policy` the resource policy.
    pub async fn read_settings(&self, schema: &mut TableSchema, resource_policy: bool) {
        let table = schema.table_name.clone();
        let indexes: Vec<String> = schema
            .global_secondary_indexes
            .iter()
            .map(|g| g.index_name.clone())
            .collect();
        let arn = schema.table_arn.clone();
        let st = &mut schema.settings;
        let no_arn = || Error::Failed("DescribeTable gave no ARN".into());
        let tags = match &arn {
            Some(arn) => self.tags(&table, arn).await,
            None => Err(no_arn()),
        };
        match tags {
            Ok(t) => st.tags = Some(t),
            Err(e) => st.not_recorded.push(format!("tags: {e}")),
        }
        match self.pitr_enabled(&table).await {
            Ok(on) => st.point_in_time_recovery_enabled = Some(on),
            Err(e) => st.not_recorded.push(format!("point-in-time recovery: {e}")),
        }
        if self.autoscaling_is_aws_beside_another_dynamodb() {
            st.not_recorded.push(
                "auto scaling: not asked: --endpoint-url names another DynamoDB, and no --autoscaling-endpoint-url (or AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING) says where its auto scaling is".into(),
            );
        } else {
            match self.scaling(&table, &indexes).await {
                Ok(targets) => st.auto_scaling = Some(targets),
                Err(e) => st.not_recorded.push(format!("auto scaling: {e}")),
            }
        }
        if resource_policy {
            let policy = match &arn {
                Some(arn) => self.resource_policy(&table, arn).await,
                None => Err(no_arn()),
            };
            match policy {
                Ok(p) => st.resource_policy = p,
                Err(e) => st.not_recorded.push(format!("resource policy: {e}")),
            }
        }
    }

    /// Whether Application Auto Scaling would be AWS's while DynamoDB is another endpoint
    /// (an emulator, Alternator): its answer would be about other tables, or none at all.
    fn autoscaling_is_aws_beside_another_dynamodb(&self) -> bool {
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
        self.settings.endpoint_url.is_some()
            && self.settings.autoscaling_endpoint_url.is_none()
            && !set("AWS_ENDPOINT_URL_APPLICATION_AUTO_SCALING")
            && !set("AWS_ENDPOINT_URL")
    }

    async fn tags(&self, table: &str, arn: &str) -> Result<Vec<Tag>> {
        let mut tags = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let out = self
                .call(
                    || format!("table {table}: ListTagsOfResource"),
                    None,
                    || {
                        self.dynamodb
                            .list_tags_of_resource()
                            .resource_arn(arn)
                            .set_next_token(next.clone())
                            .send()
                    },
                )
                .await?;
            tags.extend(out.tags().iter().map(|t| Tag {
                key: t.key().to_string(),
                value: t.value().to_string(),
            }));
            next = out.next_token().map(str::to_string);
            if next.is_none() {
                return Ok(tags);
            }
        }
    }

    async fn pitr_enabled(&self, table: &str) -> Result<bool> {
        let out = self
            .call(
                || format!("table {table}: DescribeContinuousBackups"),
                None,
                || {
                    self.dynamodb
                        .describe_continuous_backups()
                        .table_name(table)
                        .send()
                },
            )
            .await?;
        Ok(out
            .continuous_backups_description()
            .and_then(|d| d.point_in_time_recovery_description())
            .and_then(|p| p.point_in_time_recovery_status())
            == Some(&ddb::PointInTimeRecoveryStatus::Enabled))
    }

    async fn scaling(&self, table: &str, indexes: &[String]) -> Result<Vec<ScalableTarget>> {
        let mut ids = vec![format!("table/{table}")];
        ids.extend(indexes.iter().map(|i| format!("table/{table}/index/{i}")));
        let out = self
            .call(
                || format!("table {table}: DescribeScalableTargets"),
                None,
                || {
                    self.autoscaling
                        .describe_scalable_targets()
                        .service_namespace(ServiceNamespace::Dynamodb)
                        .set_resource_ids(Some(ids.clone()))
                        .send()
                },
            )
            .await?;
        let mut targets = Vec::new();
        for t in out.scalable_targets() {
            let index_name = t
                .resource_id()
                .split_once("/index/")
                .map(|(_, i)| i.to_string());
            let policies = self
                .call(
                    || format!("table {table}: DescribeScalingPolicies"),
                    None,
                    || {
                        self.autoscaling
                            .describe_scaling_policies()
                            .service_namespace(ServiceNamespace::Dynamodb)
                            .resource_id(t.resource_id())
                            .scalable_dimension(t.scalable_dimension().clone())
                            .send()
                    },
                )
                .await?;
            targets.push(ScalableTarget {
                index_name,
                scalable_dimension: t.scalable_dimension().as_str().to_string(),
                min_capacity: t.min_capacity(),
                max_capacity: t.max_capacity(),
                policies: policies
                    .scaling_policies()
                    .iter()
                    .filter_map(|p| {
                        let c = p.target_tracking_scaling_policy_configuration()?;
                        Some(ScalingPolicy {
                            policy_name: p.policy_name().to_string(),
                            target_value: c.target_value(),
                            predefined_metric_type: c
                                .predefined_metric_specification()
                                .map(|m| m.predefined_metric_type().as_str().to_string()),
                            scale_in_cooldown: c.scale_in_cooldown(),
                            scale_out_cooldown: c.scale_out_cooldown(),
                            disable_scale_in: c.disable_scale_in(),
                        })
                    })
                    .collect(),
            });
        }
        targets.sort_by(|a, b| {
            (&a.index_name, &a.scalable_dimension).cmp(&(&b.index_name, &b.scalable_dimension))
        });
        Ok(targets)
    }

    async fn resource_policy(&self, table: &str, arn: &str) -> Result<Option<String>> {
        match self
            .call(
                || format!("table {table}: GetResourcePolicy"),
                None,
                || self.dynamodb.get_resource_policy().resource_arn(arn).send(),
            )
            .await
        {
            Ok(out) => Ok(out.policy().map(str::to_string)),
            Err(Error::Aws {
                code: Some(code), ..
            }) if code == "PolicyNotFoundException" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Put back on `target` (just created from `s`, and ACTIVE) the settings that come
    /// after creation: time to live, tags, point-in-time recovery, the resource policy
    /// (with the source table's ARN in it made the target's), auto scaling. Adds each to
    /// `outcome` as restored or not, with why.
    pub async fn restore_settings(
        &self,
        target: &str,
        s: &TableSchema,
        outcome: &mut SettingsOutcome,
    ) {
        let mut step = |what: String, r: Result<()>| match r {
            Ok(()) => outcome.restored.push(what),
            Err(e) => outcome.not_restored.push(format!("{what}: {e}")),
        };
        if let Some(ttl) = s
            .time_to_live
            .as_ref()
            .filter(|t| t.time_to_live_status.starts_with("ENABL"))
        {
            let what = format!(
                "time to live ({})",
                ttl.attribute_name.as_deref().unwrap_or("?")
            );
            step(what, self.apply_ttl(target, s).await);
        }
        let st = &s.settings;
        let needs_arn =
            st.tags.as_ref().is_some_and(|t| !t.is_empty()) || st.resource_policy.is_some();
        let arn = if needs_arn {
            self.describe_raw(target).await.and_then(|d| {
                d.table_arn()
                    .map(str::to_string)
                    .ok_or_else(|| Error::Failed("DescribeTable gave no ARN".into()))
            })
        } else {
            Err(Error::Failed("not needed".into()))
        };
        if let Some(tags) = st.tags.as_ref().filter(|t| !t.is_empty()) {
            let r = match &arn {
                Ok(arn) => self.tag(target, arn, tags).await,
                Err(e) => Err(Error::Failed(e.to_string())),
            };
            step(format!("tags ({})", tags.len()), r);
        }
        if st.point_in_time_recovery_enabled == Some(true) {
            step(
                "point-in-time recovery".into(),
                self.set_pitr(target, true).await,
            );
        }
        if let Some(policy) = &st.resource_policy {
            let r = match (&arn, &s.table_arn) {
                (Ok(arn), Some(source)) => {
                    let policy = retarget_policy(policy, source, arn);
                    self.put_policy(target, arn, &policy).await
                }
                (Ok(arn), None) => self.put_policy(target, arn, policy).await,
                (Err(e), _) => Err(Error::Failed(e.to_string())),
            };
            step("resource policy".into(), r);
        }
        if let Some(targets) = st.auto_scaling.as_ref().filter(|t| !t.is_empty()) {
            let mut r = Ok(());
            for t in targets {
                r = self.scale(target, t).await;
                if r.is_err() {
                    break;
                }
            }
            step(format!("auto scaling ({} targets)", targets.len()), r);
        }
        for why in &st.not_recorded {
            outcome
                .not_restored
                .push(format!("{why} (when exported: not recorded)"));
        }
    }

    async fn tag(&self, target: &str, arn: &str, tags: &[Tag]) -> Result<()> {
        // TagResource takes 50 tags at most per call.
        for chunk in tags.chunks(50) {
            let tags: Vec<ddb::Tag> = chunk
                .iter()
                .map(|t| {
                    ddb::Tag::builder()
                        .key(&t.key)
                        .value(&t.value)
                        .build()
                        .expect("key and value are set")
                })
                .collect();
            self.call(
                || format!("table {target}: TagResource"),
                None,
                || {
                    self.dynamodb
                        .tag_resource()
                        .resource_arn(arn)
                        .set_tags(Some(tags.clone()))
                        .send()
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn put_policy(&self, target: &str, arn: &str, policy: &str) -> Result<()> {
        self.call(
            || format!("table {target}: PutResourcePolicy"),
            None,
            || {
                self.dynamodb
                    .put_resource_policy()
                    .resource_arn(arn)
                    .policy(policy)
                    .send()
            },
        )
        .await?;
        Ok(())
    }

    async fn scale(&self, target: &str, t: &ScalableTarget) -> Result<()> {
        let id = t.resource_id(target);
        let dimension = ScalableDimension::from(t.scalable_dimension.as_str());
        self.call(
            || format!("{id}: RegisterScalableTarget"),
            None,
            || {
                self.autoscaling
                    .register_scalable_target()
                    .service_namespace(ServiceNamespace::Dynamodb)
                    .resource_id(&id)
                    .scalable_dimension(dimension.clone())
                    .min_capacity(t.min_capacity)
                    .max_capacity(t.max_capacity)
                    .send()
            },
        )
        .await?;
        for p in &t.policies {
            let mut config = TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(p.target_value)
                .set_scale_in_cooldown(p.scale_in_cooldown)
                .set_scale_out_cooldown(p.scale_out_cooldown)
                .set_disable_scale_in(p.disable_scale_in);
            if let Some(m) = &p.predefined_metric_type {
                config = config.predefined_metric_specification(
                    PredefinedMetricSpecification::builder()
                        .predefined_metric_type(MetricType::from(m.as_str()))
                        .build()
                        .expect("the metric type is set"),
                );
            }
            let config = config.build().expect("the target value is set");
            self.call(
                || format!("{id}: PutScalingPolicy {}", p.policy_name),
                None,
                || {
                    self.autoscaling
                        .put_scaling_policy()
                        .policy_name(&p.policy_name)
                        .service_namespace(ServiceNamespace::Dynamodb)
                        .resource_id(&id)
                        .scalable_dimension(dimension.clone())
                        .policy_type(PolicyType::TargetTrackingScaling)
                        .target_tracking_scaling_policy_configuration(config.clone())
                        .send()
                },
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::retarget_policy;

    #[test]
    fn a_policy_names_the_target_table_and_nothing_else_changes() {
        let src = "arn:aws:dynamodb:us-east-1:111:table/orders";
        let policy = serde_json::json!({"Statement": [{
            "Resource": [src, format!("{src}/index/*"), format!("{src}_archive"), "*"],
            "Condition": {"StringEquals": {"aws:SourceArn": src}}
        }]})
        .to_string();
        let out: serde_json::Value = serde_json::from_str(&retarget_policy(
            &policy,
            src,
            "arn:aws:dynamodb:eu-west-1:222:table/orders_restored",
        ))
        .unwrap();
        let st = &out["Statement"][0];
        assert_eq!(
            st["Resource"],
            serde_json::json!([
                "arn:aws:dynamodb:eu-west-1:222:table/orders_restored",
                "arn:aws:dynamodb:eu-west-1:222:table/orders_restored/index/*",
                "arn:aws:dynamodb:us-east-1:111:table/orders_archive",
                "*"
            ])
        );
        assert_eq!(
            st["Condition"]["StringEquals"]["aws:SourceArn"],
            "arn:aws:dynamodb:eu-west-1:222:table/orders_restored"
        );
    }
}
