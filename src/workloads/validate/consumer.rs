//! A `KafkaConsumer`, validated: its group, topics, template and scaling.

use std::time::Duration;

use super::template::check_template;
use super::topics::{check_topics, TopicRef};
use super::{check_cluster_ref, check_replicas, name_of, Owner};
use crate::api::{Autoscaling, KafkaConsumer, OffsetResetPolicy, WorkloadTemplate};
use crate::model::FieldError;
use crate::workloads::env::consumer_env_names;

/// Lag-based scaling, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoscalingPolicy {
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Lag one replica is expected to handle; > 0.
    pub lag_threshold: i64,
    pub scale_down_stabilization: Duration,
    pub poll_interval: Duration,
    pub limit_to_partitions_with_lag: bool,
    pub offset_reset_policy: OffsetResetPolicy,
    pub assignment_strategy: crate::api::AssignmentStrategy,
}

/// How many replicas a consumer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scaling {
    Fixed(i32),
    Autoscaled(AutoscalingPolicy),
}

/// A `KafkaConsumer`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedConsumer {
    pub owner: Owner,
    pub cluster_ref: String,
    /// `spec.groupId`, else `metadata.name`.
    pub group_id: String,
    pub topics: Vec<TopicRef>,
    pub template: WorkloadTemplate,
    pub scaling: Scaling,
}

/// Longest consumer group id accepted (Kafka itself sets no limit; this keeps ids sane and
/// matches the CRD's `maxLength`).
const MAX_GROUP_ID_LEN: usize = 255;
const MAX_AUTOSCALING_SECONDS: i32 = 3600;

/// Validates a `KafkaConsumer`. Every problem is reported.
pub fn validate_consumer(consumer: &KafkaConsumer) -> Result<ValidatedConsumer, Vec<FieldError>> {
    let spec = &consumer.spec;
    let mut errors = Vec::new();
    let name = name_of(consumer.metadata.name.as_deref(), false, &mut errors);
    check_cluster_ref(&spec.cluster_ref, "reads from", &mut errors);
    if let Some(group) = &spec.group_id {
        if group.trim().is_empty() {
            errors.push(FieldError::new(
                "spec.groupId",
                "must not be empty (leave it unset to use metadata.name)",
            ));
        } else if group.len() > MAX_GROUP_ID_LEN {
            errors.push(FieldError::new(
                "spec.groupId",
                format!(
                    "is {} characters long; at most {MAX_GROUP_ID_LEN}",
                    group.len()
                ),
            ));
        }
    }
    let topics = check_topics(&spec.topics, &mut errors);
    check_template(&spec.template, &consumer_env_names(), &mut errors);

    let scaling = match (spec.replicas, &spec.autoscaling) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "spec",
                "set exactly one of replicas and autoscaling, not both",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "spec",
                "set exactly one of replicas and autoscaling",
            ));
            None
        }
        (Some(replicas), None) => {
            check_replicas(replicas, &mut errors);
            Some(Scaling::Fixed(replicas))
        }
        (None, Some(a)) => check_autoscaling(a, &mut errors).map(Scaling::Autoscaled),
    };

    match (name, scaling) {
        (Some(name), Some(scaling)) if errors.is_empty() => Ok(ValidatedConsumer {
            owner: Owner::of(consumer, &name),
            cluster_ref: spec.cluster_ref.clone(),
            group_id: spec.group_id.clone().unwrap_or_else(|| name.to_string()),
            topics,
            template: spec.template.clone(),
            scaling,
        }),
        _ => Err(errors),
    }
}

fn check_autoscaling(a: &Autoscaling, errors: &mut Vec<FieldError>) -> Option<AutoscalingPolicy> {
    let before = errors.len();
    let path = |field: &str| format!("spec.autoscaling.{field}");
    if a.min_replicas < 0 {
        errors.push(FieldError::new(
            path("minReplicas"),
            format!("must be >= 0, got {}", a.min_replicas),
        ));
    }
    if a.max_replicas < 1 {
        errors.push(FieldError::new(
            path("maxReplicas"),
            format!("must be >= 1, got {}", a.max_replicas),
        ));
    }
    if a.min_replicas > a.max_replicas {
        errors.push(FieldError::new(
            path("minReplicas"),
            format!(
                "must be <= maxReplicas ({}), got {}",
                a.max_replicas, a.min_replicas
            ),
        ));
    }
    if a.lag_threshold <= 0 {
        errors.push(FieldError::new(
            path("lagThreshold"),
            format!(
                "must be > 0 (messages per replica), got {}",
                a.lag_threshold
            ),
        ));
    }
    for (field, value, min) in [
        (
            "scaleDownStabilizationSeconds",
            a.scale_down_stabilization_seconds,
            0,
        ),
        ("pollIntervalSeconds", a.poll_interval_seconds, 1),
    ] {
        if !(min..=MAX_AUTOSCALING_SECONDS).contains(&value) {
            errors.push(FieldError::new(
                path(field),
                format!("must be between {min} and {MAX_AUTOSCALING_SECONDS}, got {value}"),
            ));
        }
    }
    (errors.len() == before).then(|| AutoscalingPolicy {
        min_replicas: a.min_replicas,
        max_replicas: a.max_replicas,
        lag_threshold: a.lag_threshold,
        scale_down_stabilization: Duration::from_secs(a.scale_down_stabilization_seconds as u64),
        poll_interval: Duration::from_secs(a.poll_interval_seconds as u64),
        limit_to_partitions_with_lag: a.limit_to_partitions_with_lag,
        offset_reset_policy: a.offset_reset_policy,
        assignment_strategy: a.assignment_strategy,
    })
}
