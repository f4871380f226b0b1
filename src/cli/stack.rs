//! Stacks, for `apply --prune`: the topics an earlier `apply` of a named stack created or
//! adopted (declared), kept on the cluster itself as one JSON document per stack in the
//! compacted topic [`STATE_TOPIC`], and the pure planning of what a prune removes.
//!
//! A topic is pruned only when this stack's state lists it, its last declared policy was
//! `Delete`, the manifests no longer declare it, and no other stack's state lists it.
//!
//! The state also lists the principals of the stack's KafkaUsers (a field added within
//! version 1, absent when there are none): a principal the manifests no longer declare, and
//! no other stack lists, is pruned — its ACLs and SCRAM credentials removed.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::api::DeletionPolicy;
use crate::model::TopicName;

/// The compacted topic, on each cluster, that holds every stack's state (key: the stack name).
pub const STATE_TOPIC: &str = "__tributary_stacks";

/// The version of the state document's schema.
pub const STATE_VERSION: u32 = 1;

/// One stack's state: the topics it created or adopted, each with its last declared policy.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StackState {
    pub version: u32,
    pub topics: BTreeMap<String, StackTopic>,
    /// The principals of the stack's KafkaUsers (`User:<name>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub principals: BTreeMap<String, StackPrincipal>,
}

/// A principal of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackPrincipal {
    /// The KafkaUser that declared it, `namespace/name`.
    pub resource: String,
    /// Its SCRAM user, whose credentials a prune removes; none for TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scram_user: Option<String>,
}

/// What a prune of one stack does to its principals.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PrincipalPruning {
    /// The stack's principals no longer declared and listed by no other stack.
    pub prune: Vec<(String, StackPrincipal)>,
    /// No longer declared here but listed by another stack (principal, that stack): kept.
    pub shared: Vec<(String, String)>,
}

/// Plans the prune of `stack`'s principals from every stack's state and the principals the
/// manifests declare. Pure.
pub fn plan_prune_principals(
    stack: &str,
    states: &BTreeMap<String, StackState>,
    declared: &BTreeSet<String>,
) -> PrincipalPruning {
    let mut out = PrincipalPruning::default();
    let Some(own) = states.get(stack) else {
        return out;
    };
    for (principal, entry) in &own.principals {
        if declared.contains(principal) {
            continue;
        }
        let owner = states
            .iter()
            .find(|(name, state)| {
                name.as_str() != stack && state.principals.contains_key(principal)
            })
            .map(|(name, _)| name.clone());
        match owner {
            Some(owner) => out.shared.push((principal.clone(), owner)),
            None => out.prune.push((principal.clone(), entry.clone())),
        }
    }
    out
}

/// The stack's principals after a run: the declared ones, and the earlier ones not removed
/// (`removed`: pruned without a failure). Pure.
pub fn next_principals(
    previous: Option<&StackState>,
    declared: &BTreeMap<String, StackPrincipal>,
    removed: &BTreeSet<String>,
) -> BTreeMap<String, StackPrincipal> {
    let mut out: BTreeMap<String, StackPrincipal> = previous
        .into_iter()
        .flat_map(|p| &p.principals)
        .filter(|(principal, _)| !removed.contains(*principal))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    out.extend(declared.iter().map(|(k, v)| (k.clone(), v.clone())));
    out
}

/// A topic of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StackTopic {
    /// The policy the manifests last declared for it.
    pub deletion_policy: DeletionPolicy,
    /// The KafkaTopic that declared it, `namespace/name`: tells a renamed `topicName`.
    pub resource: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StateError {
    #[error("stack '{stack}' in {STATE_TOPIC}: not a stack state document ({detail})")]
    Malformed { stack: String, detail: String },
    #[error("stack '{stack}' in {STATE_TOPIC}: state version {found}, this tributary reads version {STATE_VERSION}; upgrade tributary")]
    Version { stack: String, found: u32 },
}

impl StackState {
    pub fn parse(stack: &str, bytes: &[u8]) -> Result<Self, StateError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let malformed = |e: serde_json::Error| StateError::Malformed {
            stack: stack.to_owned(),
            detail: e.to_string(),
        };
        let versioned: Versioned = serde_json::from_slice(bytes).map_err(malformed)?;
        if versioned.version != STATE_VERSION {
            return Err(StateError::Version {
                stack: stack.to_owned(),
                found: versioned.version,
            });
        }
        serde_json::from_slice(bytes).map_err(malformed)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a stack state serializes")
    }
}

/// A topic the manifests declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    pub name: TopicName,
    pub policy: DeletionPolicy,
    /// The KafkaTopic, `namespace/name`.
    pub resource: String,
}

/// A KafkaTopic whose `topicName` changed since the stack's state was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rename {
    pub resource: String,
    pub from: String,
    pub to: TopicName,
    /// The old topic's last declared policy.
    pub policy: DeletionPolicy,
}

/// What a prune of one stack removes, and what it leaves and why.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pruning {
    /// Topics to delete: this stack's, last declared `Delete`, no longer declared, and listed
    /// by no other stack.
    pub prune: Vec<TopicName>,
    /// No longer declared but last declared `Retain`: left on the broker.
    pub retained: Vec<String>,
    /// No longer declared here but listed by another stack: left on the broker.
    pub shared: Vec<(String, String)>,
    /// Declared topics whose KafkaTopic declared another name before.
    pub renames: Vec<Rename>,
}

/// Plans the prune of `stack` from every stack's state (`states`, keyed by stack name) and the
/// declared topics. Pure.
pub fn plan_prune(
    stack: &str,
    states: &BTreeMap<String, StackState>,
    declared: &[Declared],
) -> Pruning {
    let mut out = Pruning::default();
    let Some(own) = states.get(stack) else {
        return out;
    };
    let names: BTreeSet<&str> = declared.iter().map(|d| d.name.as_str()).collect();
    let other = |topic: &str| {
        states
            .iter()
            .find(|(name, state)| name.as_str() != stack && state.topics.contains_key(topic))
            .map(|(name, _)| name.clone())
    };
    for (topic, entry) in &own.topics {
        if names.contains(topic.as_str()) {
            continue;
        }
        if let Some(d) = declared.iter().find(|d| d.resource == entry.resource) {
            out.renames.push(Rename {
                resource: entry.resource.clone(),
                from: topic.clone(),
                to: d.name.clone(),
                policy: entry.deletion_policy,
            });
        }
        if let Some(owner) = other(topic) {
            out.shared.push((topic.clone(), owner));
            continue;
        }
        match (entry.deletion_policy, TopicName::parse(topic)) {
            (DeletionPolicy::Delete, Ok(name)) => out.prune.push(name),
            _ => out.retained.push(topic.clone()),
        }
    }
    out
}

/// The stack's state after a run: every declared topic that is on the broker afterwards (with
/// its declared policy), and every earlier topic no longer declared that is still on the
/// broker (with its last declared policy). `present` tells whether a topic is on the broker
/// after the run (a failed create is not; a deleted topic is not). Pure.
pub fn next_state(
    previous: Option<&StackState>,
    declared: &[Declared],
    present: impl Fn(&str) -> bool,
) -> StackState {
    let mut topics: BTreeMap<String, StackTopic> = BTreeMap::new();
    if let Some(previous) = previous {
        for (topic, entry) in &previous.topics {
            if present(topic) {
                topics.insert(topic.clone(), entry.clone());
            }
        }
    }
    for d in declared {
        if present(d.name.as_str()) {
            topics.insert(
                d.name.to_string(),
                StackTopic {
                    deletion_policy: d.policy,
                    resource: d.resource.clone(),
                },
            );
        }
    }
    StackState {
        version: STATE_VERSION,
        topics,
        principals: previous.map(|p| p.principals.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use DeletionPolicy::{Delete, Retain};

    fn name(s: &str) -> TopicName {
        TopicName::parse(s).unwrap()
    }

    fn declared(topic: &str, policy: DeletionPolicy) -> Declared {
        Declared {
            name: name(topic),
            policy,
            resource: format!("default/{topic}"),
        }
    }

    fn state(entries: &[(&str, DeletionPolicy)]) -> StackState {
        StackState {
            version: STATE_VERSION,
            topics: entries
                .iter()
                .map(|(t, p)| {
                    (
                        (*t).to_owned(),
                        StackTopic {
                            deletion_policy: *p,
                            resource: format!("default/{t}"),
                        },
                    )
                })
                .collect(),
            principals: BTreeMap::new(),
        }
    }

    fn states(list: &[(&str, StackState)]) -> BTreeMap<String, StackState> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect()
    }

    #[test]
    fn an_undeclared_delete_topic_of_the_stack_is_pruned() {
        let all = states(&[("s", state(&[("a", Delete), ("b", Delete)]))]);
        let p = plan_prune("s", &all, &[declared("a", Delete)]);
        assert_eq!(p.prune, vec![name("b")]);
        assert!(p.retained.is_empty() && p.shared.is_empty() && p.renames.is_empty());
    }

    #[test]
    fn a_retain_topic_is_never_pruned() {
        let all = states(&[("s", state(&[("a", Retain), ("b", Delete)]))]);
        let p = plan_prune("s", &all, &[declared("b", Delete)]);
        assert!(p.prune.is_empty());
        assert_eq!(p.retained, vec!["a".to_owned()]);
    }

    #[test]
    fn another_stacks_topic_is_never_pruned() {
        let all = states(&[
            ("s", state(&[("mine", Delete), ("both", Delete)])),
            ("t", state(&[("theirs", Delete), ("both", Delete)])),
        ]);
        let p = plan_prune("s", &all, &[]);
        assert_eq!(p.prune, vec![name("mine")]);
        assert_eq!(p.shared, vec![("both".to_owned(), "t".to_owned())]);
        // And a stack with no state prunes nothing, whatever the others hold.
        assert_eq!(plan_prune("u", &all, &[]), Pruning::default());
    }

    #[test]
    fn a_renamed_topic_name_is_a_rename_and_the_old_topic_is_pruned() {
        let all = states(&[("s", state(&[("orders", Delete)]))]);
        let new = Declared {
            name: name("orders-v2"),
            policy: Delete,
            resource: "default/orders".to_owned(),
        };
        let p = plan_prune("s", &all, &[new]);
        assert_eq!(p.prune, vec![name("orders")]);
        assert_eq!(
            p.renames,
            vec![Rename {
                resource: "default/orders".to_owned(),
                from: "orders".to_owned(),
                to: name("orders-v2"),
                policy: Delete,
            }]
        );
    }

    #[test]
    fn the_next_state_keeps_what_exists_and_drops_failed_creates_and_deletions() {
        let previous = state(&[("old-kept", Retain), ("old-gone", Delete), ("a", Retain)]);
        let present: BTreeSet<&str> = ["old-kept", "a"].into();
        let next = next_state(
            Some(&previous),
            &[declared("a", Delete), declared("failed", Delete)],
            |t| present.contains(t),
        );
        assert_eq!(next, state(&[("a", Delete), ("old-kept", Retain)]));
    }

    #[test]
    fn the_state_document_round_trips_and_refuses_other_versions() {
        let s = state(&[("a", Delete), ("b", Retain)]);
        let json = s.to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"version":1,"topics":{"a":{"deletionPolicy":"Delete","resource":"default/a"},"b":{"deletionPolicy":"Retain","resource":"default/b"}}}"#
        );
        assert_eq!(StackState::parse("s", &json).unwrap(), s);
        assert!(matches!(
            StackState::parse("s", br#"{"version":2,"topics":{}}"#),
            Err(StateError::Version { found: 2, .. })
        ));
        assert!(matches!(
            StackState::parse("s", b"not json"),
            Err(StateError::Malformed { .. })
        ));
    }

    fn principal(user: &str) -> (String, StackPrincipal) {
        (
            format!("User:{user}"),
            StackPrincipal {
                resource: format!("shop/{user}"),
                scram_user: Some(user.to_owned()),
            },
        )
    }

    fn with_principals(users: &[&str]) -> StackState {
        StackState {
            principals: users.iter().map(|u| principal(u)).collect(),
            ..state(&[])
        }
    }

    #[test]
    fn an_undeclared_principal_of_the_stack_is_pruned_unless_another_stack_lists_it() {
        let all = states(&[
            ("s", with_principals(&["kept", "gone", "shared"])),
            ("t", with_principals(&["shared"])),
        ]);
        let declared: BTreeSet<String> = ["User:kept".to_owned()].into();
        let p = plan_prune_principals("s", &all, &declared);
        assert_eq!(p.prune, vec![principal("gone")]);
        assert_eq!(p.shared, vec![("User:shared".to_owned(), "t".to_owned())]);
        assert_eq!(
            plan_prune_principals("u", &all, &declared),
            PrincipalPruning::default()
        );
    }

    #[test]
    fn the_next_principals_are_the_declared_and_the_earlier_not_removed() {
        let previous = with_principals(&["a", "b", "c"]);
        let declared: BTreeMap<String, StackPrincipal> = [principal("d")].into();
        let removed: BTreeSet<String> = ["User:b".to_owned()].into();
        let next = next_principals(Some(&previous), &declared, &removed);
        assert_eq!(
            next.keys().map(String::as_str).collect::<Vec<_>>(),
            ["User:a", "User:c", "User:d"]
        );
        // The document carries them; a state without principals reads as before.
        let s = StackState {
            principals: next,
            ..state(&[])
        };
        let json = String::from_utf8(s.to_json()).unwrap();
        assert!(
            json.contains(r#""User:a":{"resource":"shop/a","scramUser":"a"}"#),
            "{json}"
        );
        assert_eq!(StackState::parse("s", json.as_bytes()).unwrap(), s);
        let old = StackState::parse("s", br#"{"version":1,"topics":{}}"#).unwrap();
        assert!(old.principals.is_empty());
    }

    fn policy() -> impl Strategy<Value = DeletionPolicy> {
        prop_oneof![Just(Delete), Just(Retain)]
    }

    proptest! {
        /// Whatever the states and the manifests: a pruned topic is this stack's, last
        /// declared Delete, undeclared, and no other stack's.
        #[test]
        fn only_own_undeclared_delete_topics_unclaimed_elsewhere_are_pruned(
            own in proptest::collection::btree_map("[a-e]", policy(), 0..5),
            other in proptest::collection::btree_map("[a-e]", policy(), 0..5),
            declared_names in proptest::collection::btree_set("[a-e]", 0..5),
        ) {
            let own_entries: Vec<(&str, DeletionPolicy)> = own.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let other_entries: Vec<(&str, DeletionPolicy)> = other.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let all = states(&[("s", state(&own_entries)), ("t", state(&other_entries))]);
            let decl: Vec<Declared> = declared_names.iter().map(|n| declared(n, Delete)).collect();
            let p = plan_prune("s", &all, &decl);
            for pruned in &p.prune {
                let t = pruned.as_str();
                prop_assert_eq!(own.get(t), Some(&Delete));
                prop_assert!(!declared_names.contains(t));
                prop_assert!(!other.contains_key(t));
            }
            // And every such topic is pruned.
            let expected = own.iter().filter(|(t, p)| **p == Delete && !declared_names.contains(*t) && !other.contains_key(*t)).count();
            prop_assert_eq!(p.prune.len(), expected);
        }
    }
}
