//! What a broker reported, in one batched pass: the input the planner compares against.

use std::collections::{BTreeMap, BTreeSet};

/// One config of one topic as DescribeConfigs reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedConfig {
    pub value: Option<String>,
    /// Set on the topic itself (source `DYNAMIC_TOPIC_CONFIG`), not inherited from a default.
    pub dynamic: bool,
    pub read_only: bool,
}

/// One topic as the broker reported it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedTopic {
    pub topic_id: Option<String>,
    pub partitions: i32,
    pub replication_factor: i32,
    pub configs: BTreeMap<String, ObservedConfig>,
}

/// A snapshot of the broker: every topic name (for collision checks) and the full description
/// of the topics of interest.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BrokerSnapshot {
    pub topics: BTreeMap<String, ObservedTopic>,
    /// Topic config keys this broker describes, when it describes any: a key outside this set
    /// is one the broker does not know. `None` when the broker gave no list to judge by.
    pub known_config_keys: Option<BTreeSet<String>>,
}
