//! Property tests: plans for generated scenarios, executed against a small model broker.

use super::*;

use proptest::prelude::*;

use crate::model::topic_config;

// ---------------------------------------------------------------------------------------------
// Model broker
// ---------------------------------------------------------------------------------------------

/// Replication factor the model broker gives a topic created without one.
const BROKER_DEFAULT_RF: i32 = 1;

/// The broker-wide default of a config key, reported (non-dynamic) after a reset.
fn broker_default(key: &str) -> Option<&'static str> {
    Some(match key {
        "retention.ms" => "604800000",
        "cleanup.policy" => "delete",
        "segment.ms" => "604800000",
        "min.insync.replicas" => "1",
        "preallocate" => "false",
        "compression.type" => "producer",
        _ => return None,
    })
}

fn known_to(snapshot: &BrokerSnapshot, key: &str) -> bool {
    snapshot
        .known_config_keys
        .as_ref()
        .is_none_or(|known| known.contains(key))
}

/// Executes a plan the way a (strict) broker would, failing on anything a broker would reject.
fn apply(snapshot: &BrokerSnapshot, plan: &Plan) -> Result<BrokerSnapshot, String> {
    let mut s = snapshot.clone();
    for action in &plan.actions {
        match action {
            Action::Create {
                name,
                partitions,
                replication_factor,
                config,
            } => {
                if s.topics.contains_key(name.as_str()) {
                    return Err(format!("create {name}: topic exists"));
                }
                if let Some(other) = s
                    .topics
                    .keys()
                    .find(|t| t.replace('.', "_") == name.collision_key())
                {
                    return Err(format!("create {name}: collides with {other}"));
                }
                if *partitions < 1 {
                    return Err(format!("create {name}: {partitions} partitions"));
                }
                if let Some(key) = config.keys().find(|k| !known_to(&s, k)) {
                    return Err(format!("create {name}: unknown config {key}"));
                }
                s.topics.insert(
                    name.as_str().to_owned(),
                    ObservedTopic {
                        topic_id: Some(format!("id-{name}")),
                        partitions: *partitions,
                        replication_factor: replication_factor.unwrap_or(BROKER_DEFAULT_RF),
                        configs: config
                            .iter()
                            .map(|(k, v)| (k.clone(), dynamic(v)))
                            .collect(),
                    },
                );
            }
            Action::IncreasePartitions { name, from, to } => {
                let t = s
                    .topics
                    .get_mut(name.as_str())
                    .ok_or_else(|| format!("grow {name}: no such topic"))?;
                if t.partitions != *from || to <= from {
                    return Err(format!(
                        "grow {name}: {from} -> {to} but the topic has {}",
                        t.partitions
                    ));
                }
                t.partitions = *to;
            }
            Action::AlterConfigs { name, changes } => {
                if changes.is_empty() {
                    return Err(format!("configure {name}: no changes"));
                }
                let known = s.known_config_keys.clone();
                let t = s
                    .topics
                    .get_mut(name.as_str())
                    .ok_or_else(|| format!("configure {name}: no such topic"))?;
                for change in changes {
                    let key = change.key();
                    if known.as_ref().is_some_and(|k| !k.contains(key)) {
                        return Err(format!("configure {name}: unknown config {key}"));
                    }
                    if t.configs.get(key).is_some_and(|c| c.read_only) {
                        return Err(format!("configure {name}: {key} is read-only"));
                    }
                    match change {
                        ConfigChange::Set { key, to, .. } => {
                            t.configs.insert(key.clone(), dynamic(to));
                        }
                        ConfigChange::Reset { key, .. } => match broker_default(key) {
                            Some(v) => {
                                t.configs.insert(key.clone(), inherited(v));
                            }
                            None => {
                                t.configs.remove(key);
                            }
                        },
                    }
                }
            }
            Action::Delete { name } => {
                if s.topics.remove(name.as_str()).is_none() {
                    return Err(format!("delete {name}: no such topic"));
                }
            }
            Action::Refuse { .. } => {}
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

/// Topic names, several of which collide ('.' versus '_') on purpose.
const POOL: &[&str] = &[
    "a", "b", "ab", "a.b", "a_b", "b.c", "b_c", "c.a.b", "c_a.b", "c_a_b", "e-d", "ed",
];

/// Real topic config keys used by the generators.
const KEYS: &[&str] = &[
    "retention.ms",
    "cleanup.policy",
    "segment.ms",
    "min.insync.replicas",
    "preallocate",
    "compression.type",
];

/// Valid values per key, including pairs that are equal by meaning.
fn values(key: &str) -> &'static [&'static str] {
    match key {
        "retention.ms" => &["1000", "01000", "86400000", "-1", "604800000"],
        "cleanup.policy" => &["delete", "compact", "compact,delete", "delete, compact"],
        "segment.ms" => &["3600000", "604800000"],
        "min.insync.replicas" => &["1", "2", " 2"],
        "preallocate" => &["true", "false", "TRUE"],
        "compression.type" => &["zstd", "lz4", "producer"],
        _ => unreachable!("{key}"),
    }
}

fn pick(key: &str, i: usize) -> &'static str {
    let vs = values(key);
    vs[i % vs.len()]
}

/// A value of `key` equal by meaning to `want` (possibly spelt differently).
fn equivalent(key: &str, want: &str, i: usize) -> &'static str {
    let same: Vec<&'static str> = values(key)
        .iter()
        .copied()
        .filter(|v| topic_config::same_value(key, v, want))
        .collect();
    same[i % same.len()]
}

#[derive(Debug, Clone)]
struct ObservedSpec {
    partition_delta: i32,
    rf: i32,
    /// Per key of [`KEYS`]: (0 absent | 1 equal to desired | 2.. random, value index, dynamic,
    /// read-only).
    configs: Vec<(u8, usize, bool, bool)>,
}

#[derive(Debug, Clone)]
struct Entry {
    desired: bool,
    partitions: i32,
    /// 0: unset, 1: as observed, 2: `random_rf`.
    rf_choice: u8,
    random_rf: i32,
    config: Vec<Option<usize>>,
    removal: Option<DeletionPolicy>,
    observed: Option<ObservedSpec>,
}

fn entry() -> impl Strategy<Value = Entry> {
    let observed = (
        -2..=2i32,
        1..=3i32,
        prop::collection::vec(
            (0..4u8, 0..8usize, any::<bool>(), prop::bool::weighted(0.05)),
            KEYS.len(),
        ),
    )
        .prop_map(|(partition_delta, rf, configs)| ObservedSpec {
            partition_delta,
            rf,
            configs,
        });
    (
        prop::bool::weighted(0.6),
        1..=6i32,
        0..3u8,
        1..=3i32,
        prop::collection::vec(prop::option::weighted(0.5, 0..8usize), KEYS.len()),
        prop::option::weighted(
            0.35,
            prop_oneof![Just(DeletionPolicy::Retain), Just(DeletionPolicy::Delete)],
        ),
        prop::option::weighted(0.6, observed),
    )
        .prop_map(
            |(desired, partitions, rf_choice, random_rf, config, removal, observed)| Entry {
                desired,
                partitions,
                rf_choice,
                random_rf,
                config,
                removal,
                observed,
            },
        )
}

/// One planning problem: desired topics, removals and a broker snapshot.
#[derive(Debug, Clone)]
struct Scenario {
    desired: Vec<DesiredTopic>,
    removals: Vec<Removal>,
    observed: BrokerSnapshot,
}

impl Scenario {
    fn plan_against(&self, observed: &BrokerSnapshot) -> Plan {
        plan(&self.desired, &self.removals, observed)
    }

    fn plan(&self) -> Plan {
        self.plan_against(&self.observed)
    }

    fn desired_named(&self, n: &str) -> Option<&DesiredTopic> {
        self.desired.iter().find(|d| d.name.as_str() == n)
    }
}

fn build(order: &[usize], entries: &[Entry], known_keys: Option<Option<usize>>) -> Scenario {
    let mut sc = Scenario {
        desired: Vec::new(),
        removals: Vec::new(),
        observed: BrokerSnapshot {
            topics: BTreeMap::new(),
            known_config_keys: known_keys.map(|drop| {
                topic_config::known_keys()
                    .filter(|k| drop.is_none_or(|i| *k != KEYS[i]))
                    .map(str::to_owned)
                    .collect()
            }),
        },
    };
    for &i in order {
        let e = &entries[i];
        let n = POOL[i];
        let config: BTreeMap<String, String> = KEYS
            .iter()
            .zip(&e.config)
            .filter_map(|(k, v)| v.map(|v| ((*k).to_owned(), pick(k, v).to_owned())))
            .collect();
        if let Some(o) = &e.observed {
            let configs = KEYS
                .iter()
                .zip(&o.configs)
                .filter_map(|(k, &(choice, v, dynamic, read_only))| {
                    let value = match (choice, config.get(*k)) {
                        (0, _) => return None,
                        (1, Some(want)) => equivalent(k, want, v),
                        _ => pick(k, v),
                    };
                    Some((
                        (*k).to_owned(),
                        ObservedConfig {
                            value: Some(value.to_owned()),
                            dynamic: dynamic && !read_only,
                            read_only,
                        },
                    ))
                })
                .collect();
            sc.observed.topics.insert(
                n.to_owned(),
                ObservedTopic {
                    topic_id: Some(format!("id-{n}")),
                    partitions: (e.partitions + o.partition_delta).max(1),
                    replication_factor: o.rf,
                    configs,
                },
            );
        }
        if e.desired {
            let replication_factor = match e.rf_choice {
                0 => None,
                1 => Some(e.observed.as_ref().map_or(e.random_rf, |o| o.rf)),
                _ => Some(e.random_rf),
            };
            sc.desired.push(DesiredTopic {
                name: name(n),
                partitions: e.partitions,
                replication_factor,
                config,
                deletion_policy: e.removal.unwrap_or_default(),
            });
        }
        if let Some(policy) = e.removal {
            sc.removals.push(Removal {
                name: name(n),
                policy,
            });
        }
    }
    sc
}

/// Anything goes: a name may be desired and removed at once, and desired names may collide.
fn any_scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(entry(), POOL.len()),
        Just((0..POOL.len()).collect::<Vec<_>>()).prop_shuffle(),
        prop_oneof![
            Just(None),
            Just(Some(None)),
            (0..KEYS.len()).prop_map(|i| Some(Some(i)))
        ],
    )
        .prop_map(|(entries, order, known_keys)| build(&order, &entries, known_keys))
}

/// A consistent scenario: desired names do not collide with each other, and a removed topic is
/// neither desired nor colliding with a desired one (so deleting it cannot lift a refusal).
/// Desired topics may still collide with other topics on the broker.
fn consistent_scenario() -> impl Strategy<Value = Scenario> {
    any_scenario().prop_map(|mut sc| {
        let mut taken = BTreeSet::new();
        let mut keep = Vec::new();
        for d in sc.desired.drain(..) {
            if taken.insert(d.name.collision_key()) {
                keep.push(d);
            }
        }
        sc.desired = keep;
        sc.removals
            .retain(|r| !taken.contains(&r.name.collision_key()));
        sc
    })
}

fn is_refused(plan: &Plan, n: &TopicName) -> bool {
    plan.refusals().any(|a| a.topic() == n)
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The model broker accepts every plan, and afterwards every desired topic that was not
    /// refused matches its spec.
    #[test]
    fn applied_plan_reaches_the_desired_state(sc in consistent_scenario()) {
        let p = sc.plan();
        let after = apply(&sc.observed, &p);
        prop_assert!(after.is_ok(), "broker rejected the plan: {:?}\n{:?}", after, p);
        let after = after.unwrap();
        for d in &sc.desired {
            if is_refused(&p, &d.name) {
                // Nothing happened to it.
                prop_assert_eq!(
                    after.topics.get(d.name.as_str()),
                    sc.observed.topics.get(d.name.as_str())
                );
                continue;
            }
            let t = after.topics.get(d.name.as_str());
            prop_assert!(t.is_some(), "{} missing after {:?}", d.name, p);
            let t = t.unwrap();
            prop_assert_eq!(t.partitions, d.partitions, "{}", d.name);
            if let Some(rf) = d.replication_factor {
                prop_assert_eq!(t.replication_factor, rf, "{}", d.name);
            }
            for (key, want) in &d.config {
                let have = t.configs.get(key).and_then(|c| c.value.as_deref());
                prop_assert!(
                    have.is_some_and(|h| topic_config::same_value(key, h, want)),
                    "{} {}: have {:?}, want {:?}", d.name, key, have, want
                );
            }
            // The manifest's keys are the topic's only overrides.
            for (key, c) in &t.configs {
                prop_assert!(
                    !c.dynamic || d.config.contains_key(key),
                    "{} {}: override {:?} left although undeclared", d.name, key, c
                );
            }
        }
    }

    /// Planning again after applying yields the same refusals and nothing else.
    #[test]
    fn planning_is_idempotent(sc in consistent_scenario()) {
        let first = sc.plan();
        let after = apply(&sc.observed, &first).unwrap();
        let second = sc.plan_against(&after);
        let refusals: Vec<Action> = first.refusals().cloned().collect();
        prop_assert_eq!(&second.actions, &refusals, "first plan: {:?}", first);
        prop_assert_eq!(&second.retained, &first.retained);
        // And it stays there.
        prop_assert_eq!(apply(&after, &second).unwrap(), after);
    }

    /// Deletions happen only for removed topics whose policy is `Delete` and which exist; a
    /// topic that is desired and not removed is never deleted; `Retain` removals are listed.
    #[test]
    fn only_removals_with_delete_policy_are_deleted(sc in any_scenario()) {
        let p = sc.plan();
        for a in &p.actions {
            if let Action::Delete { name } = a {
                prop_assert!(sc.observed.topics.contains_key(name.as_str()), "{}", name);
                prop_assert!(
                    sc.removals.iter().any(|r| &r.name == name && r.policy == DeletionPolicy::Delete),
                    "{} deleted without a Delete removal", name
                );
                prop_assert!(
                    !sc.removals.iter().any(|r| &r.name == name && r.policy == DeletionPolicy::Retain),
                    "{} has a Retain removal but is deleted", name
                );
            }
        }
        for d in &sc.desired {
            if !sc.removals.iter().any(|r| r.name == d.name) {
                prop_assert!(
                    !p.actions.iter().any(|a| matches!(a, Action::Delete { name } if name == &d.name)),
                    "desired {} is deleted", d.name
                );
            }
        }
        let mut retained: Vec<TopicName> = sc
            .removals
            .iter()
            .filter(|r| r.policy == DeletionPolicy::Retain)
            .map(|r| r.name.clone())
            .collect();
        retained.sort();
        prop_assert_eq!(&p.retained, &retained);
    }

    /// Only declared keys are set; only undeclared overrides are reset; the configs of topics
    /// nobody declares are never touched.
    #[test]
    fn config_changes_are_the_manifests(sc in consistent_scenario()) {
        let p = sc.plan();
        for a in &p.actions {
            if let Action::AlterConfigs { name, changes } = a {
                let d = sc.desired_named(name.as_str()).expect("alter of a desired topic");
                for c in changes {
                    match c {
                        ConfigChange::Set { key, .. } => {
                            prop_assert!(d.config.contains_key(key), "{}: undeclared {} set", name, key);
                        }
                        ConfigChange::Reset { key, .. } => {
                            prop_assert!(!d.config.contains_key(key), "{}: declared {} reset", name, key);
                            prop_assert!(
                                sc.observed.topics[name.as_str()].configs[key].dynamic,
                                "{}: non-dynamic {} reset", name, key
                            );
                        }
                    }
                }
            }
        }
        let after = apply(&sc.observed, &p).unwrap();
        for (n, before) in &sc.observed.topics {
            if sc.desired_named(n).is_some() {
                continue;
            }
            if let Some(now) = after.topics.get(n) {
                prop_assert_eq!(&now.configs, &before.configs, "{}", n);
            }
        }
    }

    /// Structural invariants of any plan: sorted by kind then name, a refused topic gets no
    /// other action (unless it is also removed), at most one action of each kind per topic, no empty refusals or changes,
    /// and config changes are exact (a Set always changes the meaning of the value).
    #[test]
    fn plans_are_well_formed(sc in any_scenario()) {
        let p = sc.plan();
        let ranks: Vec<(u8, &TopicName)> = p.actions.iter().map(|a| (a.rank(), a.topic())).collect();
        prop_assert!(ranks.windows(2).all(|w| w[0] < w[1]), "unsorted or duplicated: {:?}", ranks);
        for a in &p.actions {
            let removed = sc.removals.iter().any(|r| &r.name == a.topic());
            if is_refused(&p, a.topic()) && !removed {
                prop_assert!(matches!(a, Action::Refuse { .. }), "refused topic also gets {:?}", a);
            }
            match a {
                Action::Refuse { reasons, .. } => prop_assert!(!reasons.is_empty()),
                Action::AlterConfigs { name, changes } => {
                    prop_assert!(!changes.is_empty());
                    let observed = &sc.observed.topics[name.as_str()];
                    for c in changes {
                        if let ConfigChange::Set { key, from, to } = c {
                            let have = observed.configs.get(key).and_then(|c| c.value.clone());
                            prop_assert_eq!(from, &have);
                            prop_assert!(
                                !from.as_deref().is_some_and(|f| topic_config::same_value(key, f, to)),
                                "{}: no-op set {:?}", name, c
                            );
                        }
                    }
                }
                Action::IncreasePartitions { name, from, to } => {
                    prop_assert!(from < to);
                    prop_assert_eq!(*from, sc.observed.topics[name.as_str()].partitions);
                }
                Action::Create { name, .. } => {
                    prop_assert!(!sc.observed.topics.contains_key(name.as_str()));
                }
                Action::Delete { .. } => {}
            }
        }
        // No creation collides with a topic on the broker or with another creation.
        let mut created = BTreeSet::new();
        for a in &p.actions {
            if let Action::Create { name, .. } = a {
                prop_assert!(
                    !sc.observed.topics.keys().any(|t| t.replace('.', "_") == name.collision_key()),
                    "{} collides with a topic on the broker", name
                );
                prop_assert!(created.insert(name.collision_key()), "{} collides with another creation", name);
            }
        }
        // Every desired topic that is missing gets either a creation or a refusal.
        for d in &sc.desired {
            if !sc.observed.topics.contains_key(d.name.as_str()) {
                prop_assert!(
                    p.actions.iter().any(|a| a.topic() == &d.name
                        && matches!(a, Action::Create { .. } | Action::Refuse { .. })),
                    "missing {} neither created nor refused", d.name
                );
            }
        }
    }
}

#[test]
fn generator_values_are_valid_configs() {
    for key in KEYS {
        for v in values(key) {
            assert_eq!(topic_config::check(key, v), Ok(()), "{key}={v}");
        }
        if let Some(v) = broker_default(key) {
            assert_eq!(topic_config::check(key, v), Ok(()), "{key}={v}");
        }
    }
    for n in POOL {
        name(n);
    }
}
