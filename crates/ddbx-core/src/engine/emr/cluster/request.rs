//! The RunJobFlow request of a cluster, and the steps as EMR takes them.

use std::collections::BTreeMap;

use aws_sdk_emr::types as emr;

use super::{ClusterPlan, Ctx};
use crate::engine::emr::config::Configuration;
use crate::engine::emr::steps::Step;
use crate::Result;

pub(super) fn step_config(s: &Step) -> emr::StepConfig {
    emr::StepConfig::builder()
        .name(&s.name)
        .action_on_failure(emr::ActionOnFailure::from(s.action_on_failure.as_str()))
        .hadoop_jar_step(
            emr::HadoopJarStepConfig::builder()
                .jar(&s.jar)
                .set_args(Some(s.args.clone()))
                .build(),
        )
        .build()
}

/// The Hadoop configurations of a cluster: ddbx's, with the config's merged over them
/// (a property the config sets wins).
fn configurations(ctx: &Ctx<'_>) -> Vec<Configuration> {
    let mut all: Vec<Configuration> = ctx.common.configurations.clone();
    for c in &ctx.config.configurations {
        match all
            .iter_mut()
            .find(|a| a.classification == c.classification)
        {
            Some(a) => a.properties.extend(c.properties.clone()),
            None => all.push(c.clone()),
        }
    }
    all
}

/// The RunJobFlow request of one cluster: its instances, applications, settings and tags,
/// and (without waves) its steps. Parameters a release does not take are not sent.
pub(super) fn request(
    ctx: &Ctx<'_>,
    plan: &ClusterPlan,
    steps: &[&Step],
) -> Result<aws_sdk_emr::operation::run_job_flow::builders::RunJobFlowFluentBuilder> {
    let config = ctx.config;
    let release = config.release()?;
    let ec2 = &config.ec2;
    let mut instances = emr::JobFlowInstancesConfig::builder()
        .keep_job_flow_alive_when_no_steps(ctx.waves)
        .termination_protected(false)
        .set_ec2_subnet_id(ec2.subnet_id.clone())
        .set_ec2_subnet_ids((!ec2.subnet_ids.is_empty()).then(|| ec2.subnet_ids.clone()))
        .set_ec2_key_name(ec2.key_name.clone())
        .set_emr_managed_master_security_group(ec2.master_security_group.clone())
        .set_emr_managed_slave_security_group(ec2.slave_security_group.clone())
        .set_service_access_security_group(ec2.service_access_security_group.clone());
    if config.instance_fleets.is_empty() {
        for g in &config.instance_groups {
            instances = instances.instance_groups(
                emr::InstanceGroupConfig::builder()
                    .instance_role(emr::InstanceRoleType::from(g.role.as_str()))
                    .instance_type(&g.instance_type)
                    .instance_count(g.count)
                    .set_market(g.market.as_deref().map(emr::MarketType::from))
                    .set_bid_price(g.bid_price.clone())
                    .build(),
            );
        }
    } else {
        for f in &config.instance_fleets {
            let mut fleet = emr::InstanceFleetConfig::builder()
                .instance_fleet_type(emr::InstanceFleetType::from(f.fleet_type.as_str()))
                .target_on_demand_capacity(f.target_on_demand_capacity)
                .target_spot_capacity(f.target_spot_capacity);
            for t in &f.instance_types {
                fleet = fleet.instance_type_configs(
                    emr::InstanceTypeConfig::builder()
                        .instance_type(&t.instance_type)
                        .weighted_capacity(t.weighted_capacity)
                        .set_bid_price_as_percentage_of_on_demand_price(
                            t.bid_price_as_percentage_of_on_demand_price,
                        )
                        .build(),
                );
            }
            instances = instances.instance_fleets(fleet.build());
        }
    }
    let mut req = ctx
        .aws
        .emr
        .run_job_flow()
        .name(&plan.name)
        .release_label(&config.release_label)
        .service_role(&config.service_role)
        .job_flow_role(&config.instance_profile)
        .set_log_uri(ctx.common.log_uri.clone())
        .visible_to_all_users(true)
        .set_security_configuration(config.security_configuration.clone())
        .instances(instances.build());
    for app in &ctx.common.applications {
        req = req.applications(emr::Application::builder().name(app).build());
    }
    if config.step_concurrency > 1 {
        req = req.step_concurrency_level(config.step_concurrency);
    }
    if release.has_auto_termination() {
        req = req.auto_termination_policy(
            emr::AutoTerminationPolicy::builder()
                .idle_timeout(config.idle_timeout_seconds)
                .build(),
        );
    }
    if !ctx.waves {
        for s in steps {
            req = req.steps(step_config(s));
        }
    }
    let mut tags: BTreeMap<String, String> = config.tags.clone();
    tags.extend(ctx.common.tags.clone());
    tags.entry("Name".into())
        .or_insert_with(|| plan.name.clone());
    for (k, v) in &tags {
        req = req.tags(emr::Tag::builder().key(k).value(v).build());
    }
    for c in configurations(ctx) {
        req = req.configurations(
            emr::Configuration::builder()
                .classification(&c.classification)
                .set_properties(Some(c.properties.clone().into_iter().collect()))
                .build(),
        );
    }
    Ok(req)
}
