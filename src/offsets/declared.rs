//! A `KafkaOffsetReset`'s spec, validated into what the controller acts on ([`Declared`]), and
//! the recorded plan in status and back ([`to_status`], [`from_status`]). Pure: the offline
//! check of a spec is the same the controller makes (every problem named with its field and
//! the fix; nothing happens to an invalid reset).

use std::collections::BTreeMap;
use std::time::Duration;

use super::plan::{PartitionChange, Plan, Selection};
use super::target::Target;
use crate::api::{KafkaOffsetResetSpec, PartitionReset};
use crate::model::FieldError;

/// The longest the consumer's pods may take to go and the group to empty, unless set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// How long members may outlive the consumer's pods before they count as foreign: a consumer
/// killed without leaving the group stays a member until its session times out (librdkafka's
/// `session.timeout.ms` defaults to 45 s); at most half the timeout.
pub fn foreign_grace(timeout: Duration) -> Duration {
    Duration::from_secs(45).min(timeout / 2)
}

/// Whose group is reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A KafkaConsumer of the reset's namespace: held at zero replicas meanwhile.
    Consumer(String),
    /// A raw group on a KafkaCluster of the reset's namespace: it must already be empty.
    Group { cluster: String, group: String },
}

/// A valid reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub source: Source,
    pub selection: Selection,
    pub target: Target,
    pub dry_run: bool,
    pub force: bool,
    pub timeout: Duration,
}

/// Checks a spec; every problem, each naming its field.
pub fn validate(spec: &KafkaOffsetResetSpec) -> Result<Declared, Vec<FieldError>> {
    let mut errors = Vec::new();
    fn nonblank(v: &Option<String>) -> Option<&str> {
        v.as_deref().map(str::trim).filter(|v| !v.is_empty())
    }
    let source = match (
        nonblank(&spec.consumer_ref),
        nonblank(&spec.group),
        nonblank(&spec.cluster_ref),
    ) {
        (Some(c), None, None) => Some(Source::Consumer(c.to_owned())),
        (None, Some(g), Some(c)) => Some(Source::Group {
            cluster: c.to_owned(),
            group: g.to_owned(),
        }),
        (Some(_), Some(_), _) => {
            errors.push(FieldError::new(
                "spec",
                "set exactly one of consumerRef and group, not both",
            ));
            None
        }
        (Some(_), None, Some(_)) => {
            errors.push(FieldError::new(
                "spec.clusterRef",
                "clusterRef goes with group only: a consumerRef brings its own cluster; remove it",
            ));
            None
        }
        (None, Some(_), None) => {
            errors.push(FieldError::new(
                "spec.clusterRef",
                "a raw group needs the KafkaCluster it lives on: set clusterRef",
            ));
            None
        }
        (None, None, _) => {
            errors.push(FieldError::new(
                "spec",
                "name the group: set consumerRef (a KafkaConsumer) or group with clusterRef",
            ));
            None
        }
    };
    for (i, t) in spec.topics.iter().enumerate() {
        if t.trim().is_empty() {
            errors.push(FieldError::new(
                format!("spec.topics[{i}]"),
                "a topic name cannot be empty",
            ));
        }
    }
    for (i, p) in spec.partitions.iter().enumerate() {
        if *p < 0 {
            errors.push(FieldError::new(
                format!("spec.partitions[{i}]"),
                format!("partition {p} is negative: partitions count from 0"),
            ));
        }
    }
    let target = target(&spec.target, &mut errors);
    if matches!(target, Some(Target::Offsets(_))) && !spec.partitions.is_empty() {
        errors.push(FieldError::new(
            "spec.partitions",
            "target.offsets names its own partitions: remove spec.partitions",
        ));
    }
    let timeout = match spec.timeout_seconds {
        None => DEFAULT_TIMEOUT,
        Some(s) if (1..=86_400).contains(&s) => Duration::from_secs(s as u64),
        Some(s) => {
            errors.push(FieldError::new(
                "spec.timeoutSeconds",
                format!("{s} is out of range: give 1 to 86400 seconds"),
            ));
            DEFAULT_TIMEOUT
        }
    };
    match (source, target) {
        (Some(source), Some(target)) if errors.is_empty() => Ok(Declared {
            source,
            selection: Selection {
                topics: spec.topics.iter().map(|t| t.trim().to_owned()).collect(),
                partitions: spec.partitions.clone(),
            },
            target,
            dry_run: spec.dry_run,
            force: spec.force,
            timeout,
        }),
        _ => Err(errors),
    }
}

fn target(t: &crate::api::ResetTarget, errors: &mut Vec<FieldError>) -> Option<Target> {
    let mut set = Vec::new();
    if let Some(e) = t.earliest {
        set.push("earliest");
        if !e {
            errors.push(FieldError::new(
                "spec.target.earliest",
                "earliest can only be true: leave it out instead",
            ));
        }
    }
    if let Some(l) = t.latest {
        set.push("latest");
        if !l {
            errors.push(FieldError::new(
                "spec.target.latest",
                "latest can only be true: leave it out instead",
            ));
        }
    }
    if t.timestamp.is_some() {
        set.push("timestamp");
    }
    if t.shift_by.is_some() {
        set.push("shiftBy");
    }
    if t.offsets.is_some() {
        set.push("offsets");
    }
    if set.len() != 1 {
        errors.push(FieldError::new(
            "spec.target",
            if set.is_empty() {
                "set one of earliest, latest, timestamp, shiftBy and offsets".to_owned()
            } else {
                format!(
                    "set exactly one of earliest, latest, timestamp, shiftBy and offsets, not {}",
                    set.join(" and ")
                )
            },
        ));
        return None;
    }
    if t.earliest.is_some() {
        return Some(Target::Earliest);
    }
    if t.latest.is_some() {
        return Some(Target::Latest);
    }
    if let Some(n) = t.shift_by {
        return Some(Target::ShiftBy(n));
    }
    if let Some(ts) = &t.timestamp {
        return match ts.trim().parse() {
            Ok(at) => Some(Target::Timestamp(at)),
            Err(e) => {
                errors.push(FieldError::new(
                    "spec.target.timestamp",
                    format!("'{ts}' is not an RFC 3339 date-time ({e}): write it as 2026-12-07T08:00:00Z"),
                ));
                None
            }
        };
    }
    let offsets = t.offsets.as_deref().unwrap_or_default();
    let mut out = BTreeMap::new();
    for (i, o) in offsets.iter().enumerate() {
        if o.topic.trim().is_empty() {
            errors.push(FieldError::new(
                format!("spec.target.offsets[{i}].topic"),
                "a topic name cannot be empty",
            ));
        }
        if o.partition < 0 || o.offset < 0 {
            errors.push(FieldError::new(
                format!("spec.target.offsets[{i}]"),
                "partition and offset count from 0",
            ));
        }
        if out
            .insert((o.topic.trim().to_owned(), o.partition), o.offset)
            .is_some()
        {
            errors.push(FieldError::new(
                format!("spec.target.offsets[{i}]"),
                format!(
                    "{}/{} is given twice: give each partition once",
                    o.topic, o.partition
                ),
            ));
        }
    }
    Some(Target::Offsets(out))
}

/// The plan as status records it.
pub fn to_status(plan: &Plan) -> Vec<PartitionReset> {
    plan.changes
        .iter()
        .map(|c| PartitionReset {
            topic: c.topic.clone(),
            partition: c.partition,
            log_start: c.start,
            log_end: c.end,
            before: c.before,
            after: c.after,
            re_read: i64::try_from(c.reread()).unwrap_or(i64::MAX),
            skipped: i64::try_from(c.skipped()).unwrap_or(i64::MAX),
            clamped: c.clamped,
        })
        .collect()
}

/// The plan status recorded: what is written, exactly as computed before.
pub fn from_status(partitions: &[PartitionReset]) -> Plan {
    Plan {
        changes: partitions
            .iter()
            .map(|p| PartitionChange {
                topic: p.topic.clone(),
                partition: p.partition,
                start: p.log_start,
                end: p.log_end,
                before: p.before,
                after: p.after,
                clamped: p.clamped,
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{PartitionOffset, ResetTarget};

    fn spec(json: serde_json::Value) -> KafkaOffsetResetSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_consumer_reset_validates_with_its_defaults() {
        let d = validate(&spec(serde_json::json!({
            "consumerRef": "analytics",
            "topics": ["trip-events"],
            "target": {"timestamp": "2026-12-07T08:00:00Z"},
        })))
        .unwrap();
        assert_eq!(d.source, Source::Consumer("analytics".into()));
        assert_eq!(
            d.target,
            Target::Timestamp("2026-12-07T08:00:00Z".parse().unwrap())
        );
        assert_eq!(d.timeout, DEFAULT_TIMEOUT);
        assert!(!d.dry_run && !d.force);
        assert_eq!(foreign_grace(d.timeout), Duration::from_secs(45));
        assert_eq!(
            foreign_grace(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn every_problem_is_named_with_its_field_and_nothing_validates() {
        let cases: Vec<(serde_json::Value, &str, &str)> = vec![
            (
                serde_json::json!({"consumerRef": "a", "group": "g", "clusterRef": "c", "target": {"latest": true}}),
                "spec",
                "not both",
            ),
            (
                serde_json::json!({"group": "g", "target": {"latest": true}}),
                "spec.clusterRef",
                "set clusterRef",
            ),
            (
                serde_json::json!({"consumerRef": "a", "clusterRef": "c", "target": {"latest": true}}),
                "spec.clusterRef",
                "remove it",
            ),
            (
                serde_json::json!({"target": {"latest": true}}),
                "spec",
                "consumerRef",
            ),
            (
                serde_json::json!({"consumerRef": "a", "target": {}}),
                "spec.target",
                "set one of",
            ),
            (
                serde_json::json!({"consumerRef": "a", "target": {"earliest": true, "shiftBy": -10}}),
                "spec.target",
                "not earliest and shiftBy",
            ),
            (
                serde_json::json!({"consumerRef": "a", "target": {"earliest": false}}),
                "spec.target.earliest",
                "only be true",
            ),
            (
                serde_json::json!({"consumerRef": "a", "target": {"timestamp": "yesterday"}}),
                "spec.target.timestamp",
                "2026-12-07T08:00:00Z",
            ),
            (
                serde_json::json!({"consumerRef": "a", "timeoutSeconds": 0, "target": {"latest": true}}),
                "spec.timeoutSeconds",
                "1 to 86400",
            ),
            (
                serde_json::json!({"consumerRef": "a", "partitions": [0], "target": {"offsets": [{"topic": "t", "partition": 0, "offset": 5}]}}),
                "spec.partitions",
                "remove spec.partitions",
            ),
            (
                serde_json::json!({"consumerRef": "a", "target": {"offsets": [{"topic": "t", "partition": 0, "offset": 5}, {"topic": "t", "partition": 0, "offset": 6}]}}),
                "spec.target.offsets[1]",
                "twice",
            ),
        ];
        for (json, path, words) in cases {
            let errors = validate(&spec(json.clone())).unwrap_err();
            assert!(
                errors
                    .iter()
                    .any(|e| e.path == path && e.message.contains(words)),
                "{json}: {errors:?}"
            );
        }
    }

    #[test]
    fn explicit_offsets_and_a_raw_group_validate() {
        let d = validate(&KafkaOffsetResetSpec {
            consumer_ref: None,
            group: Some("legacy".into()),
            cluster_ref: Some("local".into()),
            topics: vec![],
            partitions: vec![],
            target: ResetTarget {
                offsets: Some(vec![PartitionOffset {
                    topic: "t".into(),
                    partition: 1,
                    offset: 7,
                }]),
                ..Default::default()
            },
            dry_run: true,
            force: false,
            timeout_seconds: Some(20),
        })
        .unwrap();
        assert_eq!(
            d.source,
            Source::Group {
                cluster: "local".into(),
                group: "legacy".into()
            }
        );
        assert_eq!(
            d.target,
            Target::Offsets(BTreeMap::from([(("t".to_owned(), 1), 7)]))
        );
        assert_eq!(d.timeout, Duration::from_secs(20));
    }

    #[test]
    fn the_recorded_plan_reads_back_as_computed() {
        let plan = Plan {
            changes: vec![
                PartitionChange {
                    topic: "t".into(),
                    partition: 0,
                    start: 0,
                    end: 100,
                    before: Some(100),
                    after: 40,
                    clamped: false,
                },
                PartitionChange {
                    topic: "t".into(),
                    partition: 1,
                    start: 5,
                    end: 50,
                    before: None,
                    after: 5,
                    clamped: true,
                },
            ],
        };
        let recorded = to_status(&plan);
        assert_eq!(recorded[0].re_read, 60);
        assert_eq!(recorded[0].skipped, 0);
        assert_eq!(from_status(&recorded), plan);
    }
}
