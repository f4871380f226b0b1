//! Planner tests: one unit test per rule, a file per subject, then property tests against a
//! small model broker (properties.rs). This module holds the helpers they share.

use super::*;

use std::collections::{BTreeMap, BTreeSet};

use crate::kafka::ObservedConfig;

mod actions;
mod collisions;
mod configs;
mod creates;
mod partitions;
mod properties;
mod removals;

fn name(s: &str) -> TopicName {
    TopicName::parse(s).unwrap()
}

fn desired(n: &str, partitions: i32, rf: Option<i32>, config: &[(&str, &str)]) -> DesiredTopic {
    DesiredTopic {
        name: name(n),
        partitions,
        replication_factor: rf,
        config: config
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        deletion_policy: DeletionPolicy::Retain,
    }
}

fn dynamic(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: true,
        read_only: false,
    }
}

fn inherited(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: false,
        read_only: false,
    }
}

fn read_only(value: &str) -> ObservedConfig {
    ObservedConfig {
        value: Some(value.to_owned()),
        dynamic: false,
        read_only: true,
    }
}

fn topic(partitions: i32, rf: i32, configs: &[(&str, ObservedConfig)]) -> ObservedTopic {
    ObservedTopic {
        topic_id: Some("id".into()),
        partitions,
        replication_factor: rf,
        configs: configs
            .iter()
            .map(|(k, c)| ((*k).to_owned(), c.clone()))
            .collect(),
    }
}

fn snapshot(topics: &[(&str, ObservedTopic)]) -> BrokerSnapshot {
    BrokerSnapshot {
        topics: topics
            .iter()
            .map(|(n, t)| ((*n).to_owned(), t.clone()))
            .collect(),
        known_config_keys: None,
    }
}

fn known(keys: &[&str]) -> Option<BTreeSet<String>> {
    Some(keys.iter().map(|k| (*k).to_owned()).collect())
}

fn removal(n: &str, policy: DeletionPolicy) -> Removal {
    Removal {
        name: name(n),
        policy,
    }
}

fn set(key: &str, from: Option<&str>, to: &str) -> ConfigChange {
    ConfigChange::Set {
        key: key.into(),
        from: from.map(str::to_owned),
        to: to.into(),
    }
}

fn reset(key: &str, from: &str) -> ConfigChange {
    ConfigChange::Reset {
        key: key.into(),
        from: from.into(),
    }
}
