//! The coordinator of each consumer group, cached per cluster (pure: no I/O). A pass looks up
//! only the groups not cached, in one FindCoordinator v4, and then sends one request per
//! coordinator broker for all of its groups. An entry is dropped when its broker says it is
//! not (or not yet) the coordinator, or when the connection to that broker fails.

use std::collections::{BTreeMap, BTreeSet};

/// Kafka error codes that mean "ask for the coordinator again": COORDINATOR_LOAD_IN_PROGRESS
/// (14), COORDINATOR_NOT_AVAILABLE (15), NOT_COORDINATOR (16).
pub const LOAD_IN_PROGRESS: i16 = 14;
pub const NOT_AVAILABLE: i16 = 15;
pub const NOT_COORDINATOR: i16 = 16;

/// Whether a group-level error code means the cached coordinator is stale.
pub fn moves_coordinator(code: i16) -> bool {
    matches!(code, LOAD_IN_PROGRESS | NOT_AVAILABLE | NOT_COORDINATOR)
}

/// A group's coordinator: a broker by id and the address to reach it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Coordinator {
    pub node_id: i32,
    /// `host:port`.
    pub address: String,
}

/// group id → coordinator.
#[derive(Debug, Default, Clone)]
pub struct CoordinatorCache {
    by_group: BTreeMap<String, Coordinator>,
}

impl CoordinatorCache {
    /// The groups of `groups` without a cached coordinator, in order, each once.
    pub fn uncached<'a>(&self, groups: impl IntoIterator<Item = &'a String>) -> Vec<String> {
        let mut seen = BTreeSet::new();
        groups
            .into_iter()
            .filter(|g| !self.by_group.contains_key(*g) && seen.insert(g.as_str()))
            .cloned()
            .collect()
    }

    pub fn insert(&mut self, group: String, coordinator: Coordinator) {
        self.by_group.insert(group, coordinator);
    }

    pub fn get(&self, group: &str) -> Option<&Coordinator> {
        self.by_group.get(group)
    }

    /// Forgets `group`'s coordinator.
    pub fn invalidate(&mut self, group: &str) {
        self.by_group.remove(group);
    }

    /// Forgets every group coordinated at `address` (the connection to it failed); returns
    /// them.
    pub fn invalidate_broker(&mut self, address: &str) -> Vec<String> {
        let gone: Vec<String> = self
            .by_group
            .iter()
            .filter(|(_, c)| c.address == address)
            .map(|(g, _)| g.clone())
            .collect();
        for g in &gone {
            self.by_group.remove(g);
        }
        gone
    }

    /// The cached groups of `groups` by coordinator, each group once, in first-seen order
    /// within its coordinator; groups without a cached coordinator are left out.
    pub fn by_coordinator<'a>(
        &self,
        groups: impl IntoIterator<Item = &'a String>,
    ) -> BTreeMap<Coordinator, Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut out: BTreeMap<Coordinator, Vec<String>> = BTreeMap::new();
        for g in groups {
            if let Some(c) = self.by_group.get(g) {
                if seen.insert(g.as_str()) {
                    out.entry(c.clone()).or_default().push(g.clone());
                }
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.by_group.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_group.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn c(id: i32) -> Coordinator {
        Coordinator {
            node_id: id,
            address: format!("b{id}:9092"),
        }
    }

    #[test]
    fn only_uncached_groups_are_looked_up_and_the_rest_go_by_coordinator() {
        let mut cache = CoordinatorCache::default();
        let groups: Vec<String> = ["a", "b", "c", "a"].map(String::from).to_vec();
        assert_eq!(cache.uncached(&groups), ["a", "b", "c"]);
        cache.insert("a".into(), c(1));
        cache.insert("c".into(), c(1));
        assert_eq!(cache.uncached(&groups), ["b"]);
        cache.insert("b".into(), c(2));
        assert!(cache.uncached(&groups).is_empty());
        let plan = cache.by_coordinator(&groups);
        assert_eq!(plan.len(), 2, "one request per coordinator broker");
        assert_eq!(plan[&c(1)], ["a", "c"]);
        assert_eq!(plan[&c(2)], ["b"]);
    }

    #[test]
    fn stale_entries_are_dropped_by_group_or_by_broker() {
        let mut cache = CoordinatorCache::default();
        for (g, id) in [("a", 1), ("b", 2), ("c", 1)] {
            cache.insert(g.into(), c(id));
        }
        cache.invalidate("b");
        assert_eq!(cache.get("b"), None);
        assert_eq!(cache.invalidate_broker("b1:9092"), ["a", "c"]);
        assert!(cache.is_empty());
        assert!(moves_coordinator(NOT_COORDINATOR));
        assert!(moves_coordinator(NOT_AVAILABLE));
        assert!(moves_coordinator(LOAD_IN_PROGRESS));
        assert!(!moves_coordinator(0));
        assert!(
            !moves_coordinator(30),
            "GROUP_AUTHORIZATION_FAILED stays put"
        );
    }

    proptest! {
        /// However groups are spread over brokers, a warm plan has one entry per coordinator
        /// broker (never one per group) and covers every group exactly once.
        #[test]
        fn a_warm_plan_is_one_request_per_coordinator(
            spread in proptest::collection::vec(0i32..5, 1..300)
        ) {
            let mut cache = CoordinatorCache::default();
            let groups: Vec<String> = (0..spread.len()).map(|i| format!("g{i}")).collect();
            for (g, b) in groups.iter().zip(&spread) {
                cache.insert(g.clone(), c(*b));
            }
            prop_assert!(cache.uncached(&groups).is_empty());
            let plan = cache.by_coordinator(&groups);
            let brokers: BTreeSet<i32> = spread.iter().copied().collect();
            prop_assert_eq!(plan.len(), brokers.len());
            let covered: usize = plan.values().map(Vec::len).sum();
            prop_assert_eq!(covered, groups.len());
        }
    }
}
