//! The Kubernetes permissions the operator needs, and nothing more.
//!
//! Derived by reading every Kubernetes API call the operator makes (`kube::Api` in
//! the rooms' controllers, `src/kafka/connection.rs`, kube-runtime's watchers, finalizer helper and
//! the Events of `runtime::events`). `tributary rbac` prints this table; the Helm chart's ClusterRole / Roles
//! are checked against it (`scripts/check-chart.sh`), and `tests/integration/rbac.rs` runs the controllers
//! against the API-server emulator and checks that every request they make is allowed here and
//! that every rule here is used.
//!
//! Two scopes:
//! * [`WATCHED`]: in every namespace the operator watches (a ClusterRole bound cluster-wide
//!   when it watches all namespaces, else a Role in each watched namespace). Custom resources,
//!   their status, the Secrets credentials come from, the Deployments / Services of workloads
//!   and Events all live in the namespace of the object they concern.
//! * [`LEADER_ELECTION`]: only in the operator's own namespace, where its Lease lives.

use serde_json::{json, Value};

/// One RBAC rule, with where in the code it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub api_group: &'static str,
    pub resources: &'static [&'static str],
    /// Sorted.
    pub verbs: &'static [&'static str],
    /// The calls that need it.
    pub used_by: &'static str,
}

/// Granted in every watched namespace.
pub const WATCHED: &[Rule] = &[
    Rule {
        api_group: "tributary.io",
        resources: &["kafkaclusters"],
        verbs: &["list", "watch"],
        used_by: "the KafkaCluster controller and the topic controller's cluster watch (cache)",
    },
    Rule {
        api_group: "tributary.io",
        resources: &["kafkatopics", "kafkaconsumers", "kafkaproducers"],
        verbs: &["create", "delete", "list", "patch", "watch"],
        used_by: "controllers and caches (list, watch); the KafkaTopic finalizer (JSON patch); \
                  the StreamTopology controller server-side applies its children (patch; create \
                  when new) and deletes those that left its spec",
    },
    Rule {
        api_group: "tributary.io",
        resources: &["kafkausers"],
        verbs: &["list", "patch", "watch"],
        used_by: "the KafkaUser controller and its cache (list, watch); its finalizer (JSON patch)",
    },
    Rule {
        api_group: "tributary.io",
        resources: &["streamtopologies"],
        verbs: &["list", "watch"],
        used_by:
            "the StreamTopology controller (no finalizer: its children go by owner references)",
    },
    Rule {
        api_group: "tributary.io",
        resources: &["kafkaoffsetresets"],
        verbs: &["list", "patch", "watch"],
        used_by: "the KafkaOffsetReset controller and cache (list, watch); its finalizer (JSON \
                  patch); the hold it puts on a KafkaConsumer is a patch of kafkaconsumers",
    },
    Rule {
        api_group: "tributary.io",
        resources: &[
            "kafkaclusters/status",
            "kafkatopics/status",
            "kafkaconsumers/status",
            "kafkaproducers/status",
            "kafkausers/status",
            "streamtopologies/status",
            "kafkaoffsetresets/status",
        ],
        verbs: &["patch"],
        used_by: "status written by server-side apply (field manager `tributary`)",
    },
    Rule {
        api_group: "tributary.io",
        resources: &[
            "kafkaconsumers/finalizers",
            "kafkaproducers/finalizers",
            "streamtopologies/finalizers",
        ],
        verbs: &["update"],
        used_by: "owner references with blockOwnerDeletion (Deployments and Services of consumers \
                  and producers, a topology's children): clusters running the \
                  OwnerReferencesPermissionEnforcement admission plugin (OpenShift, hardened \
                  clusters) require update on the owner's finalizers",
    },
    Rule {
        api_group: "",
        resources: &["secrets"],
        verbs: &["create", "get", "patch"],
        used_by: "credentials from `secretKeyRef` (KubeSecrets), the workloads' Secret check and \
                  a KafkaUser's `passwordFrom` (get); a SCRAM KafkaUser's own Secret: read (get), \
                  server-side applied only when missing or not as it should be (patch; create \
                  when new); never listed, watched, updated or deleted (it goes with its owner)",
    },
    Rule {
        api_group: "apps",
        resources: &["deployments"],
        verbs: &["create", "get", "list", "patch", "watch"],
        used_by: "consumer/producer Deployments: server-side apply (patch; create when new) \
                  only when the one held (get: also the consumer's current replicas) lacks what \
                  Tributary manages, owned-object watch (list, watch); \
                  deleted by owner references, never by the operator",
    },
    Rule {
        api_group: "",
        resources: &["services"],
        verbs: &["create", "get", "list", "patch", "watch"],
        used_by: "producer Services: server-side apply (patch; create when new) only when the \
                  one held (get) lacks what Tributary manages, owned-object watch (list, \
                  watch)",
    },
    Rule {
        api_group: "events.k8s.io",
        resources: &["events"],
        verbs: &["create", "patch"],
        used_by: "runtime::events: a new Event (create), a repeated one (patch of its series)",
    },
];

/// Granted in the operator's own namespace when leader election is on.
pub const LEADER_ELECTION: &[Rule] = &[Rule {
    api_group: "coordination.k8s.io",
    resources: &["leases"],
    verbs: &["create", "get", "list", "update", "watch"],
    used_by:
        "leader election: read and watch the Lease, create it when missing, renew or take it over",
}];

/// Whether `rules` allow `verb` on `resource` (`plural` or `plural/subresource`) of `api_group`.
pub fn allows(rules: &[Rule], api_group: &str, resource: &str, verb: &str) -> bool {
    rules.iter().any(|r| {
        r.api_group == api_group && r.resources.contains(&resource) && r.verbs.contains(&verb)
    })
}

/// Every `(apiGroup, resource, verb)` the rules grant.
pub fn grants(rules: &[Rule]) -> Vec<(&'static str, &'static str, &'static str)> {
    let mut out = Vec::new();
    for r in rules {
        for resource in r.resources {
            for verb in r.verbs {
                out.push((r.api_group, *resource, *verb));
            }
        }
    }
    out
}

fn policy_rules(rules: &[Rule]) -> Value {
    Value::Array(
        rules
            .iter()
            .map(
                |r| json!({"apiGroups": [r.api_group], "resources": r.resources, "verbs": r.verbs}),
            )
            .collect(),
    )
}

/// The rules as Kubernetes `PolicyRule`s: `{"rules": [...], "leaderElectionRules": [...]}`.
pub fn to_json() -> Value {
    json!({
        "rules": policy_rules(WATCHED),
        "leaderElectionRules": policy_rules(LEADER_ELECTION),
    })
}

/// The same as YAML, each rule with a comment saying what uses it.
pub fn to_yaml() -> String {
    fn list(items: &[&str]) -> String {
        let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
        format!("[{}]", quoted.join(", "))
    }
    fn section(out: &mut String, key: &str, rules: &[Rule]) {
        out.push_str(key);
        out.push_str(":\n");
        for r in rules {
            out.push_str(&format!(
                "  # {}\n",
                r.used_by.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
            out.push_str(&format!("  - apiGroups: {}\n", list(&[r.api_group])));
            out.push_str(&format!("    resources: {}\n", list(r.resources)));
            out.push_str(&format!("    verbs: {}\n", list(r.verbs)));
        }
    }
    let mut out = String::from(
        "# In every watched namespace: a ClusterRole bound cluster-wide when the operator watches\n\
         # all namespaces, else a Role in each watched namespace.\n",
    );
    section(&mut out, "rules", WATCHED);
    out.push_str("# In the operator's own namespace, when leader election is on.\n");
    section(&mut out, "leaderElectionRules", LEADER_ELECTION);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn verbs_are_sorted_and_no_grant_is_repeated() {
        for r in WATCHED.iter().chain(LEADER_ELECTION) {
            let mut sorted = r.verbs.to_vec();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted, r.verbs, "{r:?}");
        }
        for rules in [WATCHED, LEADER_ELECTION] {
            let all = grants(rules);
            let unique: BTreeSet<_> = all.iter().collect();
            assert_eq!(unique.len(), all.len(), "a grant appears twice");
        }
    }

    #[test]
    fn nothing_broad_is_granted() {
        for (group, resource, verb) in grants(WATCHED).into_iter().chain(grants(LEADER_ELECTION)) {
            assert!(!group.contains('*') && !resource.contains('*') && !verb.contains('*'));
            assert!(
                !["escalate", "bind", "impersonate", "deletecollection"].contains(&verb),
                "{verb}"
            );
            assert!(
                resource != "secrets" || ["create", "get", "patch"].contains(&verb),
                "Secrets are read one by one by name, and a KafkaUser's own is applied: never \
                 listed, watched, updated or deleted ({verb})"
            );
        }
        assert!(allows(
            WATCHED,
            "tributary.io",
            "kafkatopics/status",
            "patch"
        ));
        assert!(!allows(
            WATCHED,
            "tributary.io",
            "kafkatopics/status",
            "update"
        ));
        assert!(!allows(WATCHED, "coordination.k8s.io", "leases", "get"));
        assert!(allows(
            LEADER_ELECTION,
            "coordination.k8s.io",
            "leases",
            "update"
        ));
    }

    #[test]
    fn yaml_and_json_say_the_same() {
        let from_yaml: Value = serde_saphyr::from_str(&to_yaml()).unwrap();
        assert_eq!(from_yaml, to_json());
    }
}
