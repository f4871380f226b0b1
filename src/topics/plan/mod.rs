//! The planner: a pure function from desired topics × observed broker state to ordered actions.
//! No I/O here; every rule is unit- and property-tested.

use std::collections::BTreeMap;
use std::fmt;

use super::desired::DesiredTopic;
use crate::api::DeletionPolicy;
use crate::api::Reason;
pub use crate::kafka::ConfigChange;
use crate::kafka::{BrokerSnapshot, ObservedTopic};
use crate::model::{topic_config, TopicName};

#[cfg(test)]
mod tests;

/// A topic whose resource is gone (or going), with the policy that decides its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    pub name: TopicName,
    pub policy: DeletionPolicy,
}

/// Why something will not be done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    PartitionDecrease {
        observed: i32,
        desired: i32,
    },
    ReplicationFactorChange {
        observed: i32,
        desired: i32,
    },
    UnknownConfig {
        key: String,
    },
    ReadOnlyConfig {
        key: String,
    },
    NameCollision {
        existing: String,
    },
    /// Two desired topics whose names Kafka treats alike; neither is created.
    DesiredNameCollision {
        other: String,
    },
}

impl Refusal {
    /// The condition reason a controller reports for this refusal.
    pub fn reason(&self) -> Reason {
        match self {
            Refusal::PartitionDecrease { .. } => Reason::PartitionDecrease,
            Refusal::ReplicationFactorChange { .. } => Reason::ReplicationFactorChange,
            Refusal::UnknownConfig { .. } | Refusal::ReadOnlyConfig { .. } => Reason::InvalidConfig,
            Refusal::NameCollision { .. } | Refusal::DesiredNameCollision { .. } => {
                Reason::TopicNameCollision
            }
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::PartitionDecrease { observed, desired } => write!(
                f,
                "partitions cannot decrease ({observed} on the broker, {desired} desired): Kafka cannot remove partitions; create a new topic instead"
            ),
            Refusal::ReplicationFactorChange { observed, desired } => write!(
                f,
                "replication factor is {observed} on the broker, {desired} desired: changing it needs a partition reassignment, which Tributary does not do yet"
            ),
            Refusal::UnknownConfig { key } => {
                write!(f, "the broker does not know topic config '{key}'")
            }
            Refusal::ReadOnlyConfig { key } => {
                write!(f, "topic config '{key}' is read-only on this broker")
            }
            Refusal::NameCollision { existing } => write!(
                f,
                "collides with existing topic '{existing}': Kafka treats '.' and '_' alike in topic names"
            ),
            Refusal::DesiredNameCollision { other } => write!(
                f,
                "collides with '{other}', also desired: Kafka treats '.' and '_' alike in topic names, so only one can exist"
            ),
        }
    }
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create {
        name: TopicName,
        partitions: i32,
        replication_factor: Option<i32>,
        config: BTreeMap<String, String>,
    },
    IncreasePartitions {
        name: TopicName,
        from: i32,
        to: i32,
    },
    AlterConfigs {
        name: TopicName,
        changes: Vec<ConfigChange>,
    },
    Delete {
        name: TopicName,
    },
    /// Nothing is done to this topic, for the reasons given.
    Refuse {
        name: TopicName,
        reasons: Vec<Refusal>,
    },
}

impl Action {
    pub fn topic(&self) -> &TopicName {
        match self {
            Action::Create { name, .. }
            | Action::IncreasePartitions { name, .. }
            | Action::AlterConfigs { name, .. }
            | Action::Delete { name }
            | Action::Refuse { name, .. } => name,
        }
    }

    /// Execution order: refusals are reported first, then creations, growth, config changes
    /// and deletions, each group executed as one batched broker request.
    fn rank(&self) -> u8 {
        match self {
            Action::Refuse { .. } => 0,
            Action::Create { .. } => 1,
            Action::IncreasePartitions { .. } => 2,
            Action::AlterConfigs { .. } => 3,
            Action::Delete { .. } => 4,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Create {
                name,
                partitions,
                replication_factor,
                config,
            } => {
                let rf = replication_factor
                    .map(|r| r.to_string())
                    .unwrap_or_else(|| "broker default".into());
                write!(
                    f,
                    "+ create {name}: partitions={partitions} replicationFactor={rf}"
                )?;
                for (k, v) in config {
                    write!(f, "\n    {k} = {v}")?;
                }
                Ok(())
            }
            Action::IncreasePartitions { name, from, to } => {
                write!(f, "~ grow {name}: partitions {from} -> {to}")
            }
            Action::AlterConfigs { name, changes } => {
                write!(f, "~ configure {name}:")?;
                for change in changes {
                    match change {
                        ConfigChange::Set {
                            key,
                            from: Some(old),
                            to,
                        } => write!(f, "\n    {key}: {old} -> {to}")?,
                        ConfigChange::Set {
                            key,
                            from: None,
                            to,
                        } => write!(f, "\n    {key}: (unset) -> {to}")?,
                        ConfigChange::Reset { key, from } => {
                            write!(f, "\n    {key}: {from} -> (broker default)")?
                        }
                    }
                }
                Ok(())
            }
            Action::Delete { name } => write!(f, "- delete {name}"),
            Action::Refuse { name, reasons } => {
                write!(f, "! refuse {name}:")?;
                for r in reasons {
                    write!(f, " {r}.")?;
                }
                Ok(())
            }
        }
    }
}

/// What to do, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub actions: Vec<Action>,
    /// Removed topics kept on the broker because their policy is `Retain`.
    pub retained: Vec<TopicName>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.actions.is_empty()
    }

    pub fn refusals(&self) -> impl Iterator<Item = &Action> {
        self.actions
            .iter()
            .filter(|a| matches!(a, Action::Refuse { .. }))
    }
}

/// Plans desired topics and removals against a broker snapshot.
///
/// Rules: a missing topic is created; partitions only grow; the replication factor is never
/// changed; the topic's config overrides are made exactly the declared ones (the topic's own
/// keys over its cluster's `topicDefaults`): a declared key that differs is set, and every
/// other override on the broker is reset to the broker default — except the replication
/// throttles Kafka's own reassignment tools set ([`topic_config::set_by_kafka_tools`]), left
/// alone unless declared; a removed topic is deleted only when its policy is `Delete`. A topic
/// with any refusal gets no other action.
///
/// The plan is a function of the manifests and the broker alone — no memory of earlier runs —
/// so the CLI and the operator, given the same manifests and broker, plan the same changes.
pub fn plan(desired: &[DesiredTopic], removals: &[Removal], observed: &BrokerSnapshot) -> Plan {
    let collision_index: BTreeMap<String, &str> = observed
        .topics
        .keys()
        .map(|name| (name.replace('.', "_"), name.as_str()))
        .collect();
    let mut desired_index: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for d in desired {
        desired_index
            .entry(d.name.collision_key())
            .or_default()
            .push(d.name.as_str());
    }
    let mut out = Plan::default();

    for d in desired {
        match observed.topics.get(d.name.as_str()) {
            None => out
                .actions
                .push(plan_create(d, &collision_index, &desired_index, observed)),
            Some(topic) => out.actions.extend(plan_existing(d, topic, observed)),
        }
    }

    for removal in removals {
        match removal.policy {
            DeletionPolicy::Retain => out.retained.push(removal.name.clone()),
            DeletionPolicy::Delete => {
                if observed.topics.contains_key(removal.name.as_str()) {
                    out.actions.push(Action::Delete {
                        name: removal.name.clone(),
                    });
                }
            }
        }
    }

    out.actions
        .sort_by(|a, b| (a.rank(), a.topic()).cmp(&(b.rank(), b.topic())));
    out.retained.sort();
    out
}

fn plan_create(
    d: &DesiredTopic,
    collision_index: &BTreeMap<String, &str>,
    desired_index: &BTreeMap<String, Vec<&str>>,
    observed: &BrokerSnapshot,
) -> Action {
    let key = d.name.collision_key();
    let mut reasons = Vec::new();
    if let Some(existing) = collision_index.get(&key) {
        reasons.push(Refusal::NameCollision {
            existing: (*existing).to_owned(),
        });
    }
    let others = desired_index.get(&key).into_iter().flatten();
    for other in others.filter(|o| **o != d.name.as_str()) {
        reasons.push(Refusal::DesiredNameCollision {
            other: (*other).to_owned(),
        });
    }
    reasons.extend(config_refusals(
        d.config.keys().map(String::as_str),
        None,
        observed,
    ));
    if reasons.is_empty() {
        Action::Create {
            name: d.name.clone(),
            partitions: d.partitions,
            replication_factor: d.replication_factor,
            config: d.config.clone(),
        }
    } else {
        Action::Refuse {
            name: d.name.clone(),
            reasons,
        }
    }
}

fn plan_existing(
    d: &DesiredTopic,
    topic: &ObservedTopic,
    observed: &BrokerSnapshot,
) -> Vec<Action> {
    let mut reasons = Vec::new();
    if d.partitions < topic.partitions {
        reasons.push(Refusal::PartitionDecrease {
            observed: topic.partitions,
            desired: d.partitions,
        });
    }
    if let Some(rf) = d.replication_factor {
        if rf != topic.replication_factor {
            reasons.push(Refusal::ReplicationFactorChange {
                observed: topic.replication_factor,
                desired: rf,
            });
        }
    }
    let changes = config_changes(d, topic);
    reasons.extend(config_refusals(
        changes.iter().map(ConfigChange::key),
        Some(topic),
        observed,
    ));
    if !reasons.is_empty() {
        return vec![Action::Refuse {
            name: d.name.clone(),
            reasons,
        }];
    }

    let mut actions = Vec::new();
    if d.partitions > topic.partitions {
        actions.push(Action::IncreasePartitions {
            name: d.name.clone(),
            from: topic.partitions,
            to: d.partitions,
        });
    }
    if !changes.is_empty() {
        actions.push(Action::AlterConfigs {
            name: d.name.clone(),
            changes,
        });
    }
    actions
}

/// The exact key diff: declared keys whose value differs, and overrides nobody declared.
fn config_changes(d: &DesiredTopic, topic: &ObservedTopic) -> Vec<ConfigChange> {
    let mut changes = Vec::new();
    for (key, want) in &d.config {
        let have = topic.configs.get(key).and_then(|c| c.value.as_deref());
        if !have.is_some_and(|h| topic_config::same_value(key, h, want)) {
            changes.push(ConfigChange::Set {
                key: key.clone(),
                from: have.map(str::to_owned),
                to: want.clone(),
            });
        }
    }
    let undeclared = topic.configs.iter().filter(|(key, c)| {
        c.dynamic
            && !c.read_only
            && !d.config.contains_key(*key)
            && !topic_config::set_by_kafka_tools(key)
    });
    for (key, c) in undeclared {
        changes.push(ConfigChange::Reset {
            key: key.clone(),
            from: c.value.clone().unwrap_or_default(),
        });
    }
    changes
}

fn config_refusals<'k>(
    keys: impl Iterator<Item = &'k str>,
    topic: Option<&ObservedTopic>,
    observed: &BrokerSnapshot,
) -> Vec<Refusal> {
    keys.filter_map(|key| {
        let unknown = observed
            .known_config_keys
            .as_ref()
            .is_some_and(|known| !known.contains(key));
        let read_only = topic
            .and_then(|t| t.configs.get(key))
            .is_some_and(|c| c.read_only);
        if unknown {
            Some(Refusal::UnknownConfig {
                key: key.to_owned(),
            })
        } else if read_only {
            Some(Refusal::ReadOnlyConfig {
                key: key.to_owned(),
            })
        } else {
            None
        }
    })
    .collect()
}
