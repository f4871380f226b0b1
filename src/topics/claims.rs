//! Who claims which broker topic. Two KafkaTopics of one namespace may name the same broker
//! topic on the same cluster; the oldest claimant (by creation time, then name) keeps it and
//! the others report a conflict. A claimant being deleted no longer counts.
//!
//! [`conflict_owner`] is the definition, over a list of KafkaTopics. [`Claims`] answers the
//! same question in O(1): an index of the KafkaTopic watch by (namespace, clusterRef, broker
//! topic name), kept in step with every watch event ([`crate::runtime::Index`]), so that a
//! reconcile neither copies the cache nor scans it — a burst of n topics costs n, not n².

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use k8s_openapi::jiff::Timestamp;
use kube::runtime::watcher::Event;
use kube::ResourceExt;

use crate::api::KafkaTopic;
use crate::runtime::Index;

/// The KafkaTopic that owns `topic_name` on this topic's cluster, when it is another one:
/// the oldest claimant (by creation time, then name) keeps the topic.
pub fn conflict_owner(
    me: &KafkaTopic,
    topic_name: &str,
    all: &[Arc<KafkaTopic>],
) -> Option<String> {
    let rank = |t: &KafkaTopic| {
        (
            t.metadata.creation_timestamp.clone().map(|c| c.0),
            t.name_any(),
        )
    };
    let mine = rank(me);
    all.iter()
        .filter(|t| t.metadata.uid != me.metadata.uid)
        .filter(|t| t.namespace() == me.namespace() && t.spec.cluster_ref == me.spec.cluster_ref)
        .filter(|t| t.metadata.deletion_timestamp.is_none())
        .filter(|t| t.broker_topic_name() == Some(topic_name))
        .filter(|t| rank(t) < mine)
        .min_by_key(|t| rank(t))
        .map(|t| t.name_any())
}

/// The claims index of one KafkaTopic watch: what [`conflict_owner`] says over the watch's
/// cache, without the scan. It holds names and ranks, never whole objects (a few hundred bytes
/// a topic).
///
/// A KafkaTopic without a namespace is filed under the namespace `""`.
#[derive(Debug, Default)]
pub struct Claims {
    /// What the cache holds now.
    live: RwLock<State>,
    /// During a relist (after `Init`): the objects listed so far, which replace `live` at
    /// `InitDone` — the cache is swapped then too.
    relisting: Mutex<Option<State>>,
}

impl Claims {
    /// The KafkaTopic that owns `topic_name` on `me`'s cluster, when it is another one: exactly
    /// [`conflict_owner`] over the KafkaTopics this index has seen.
    pub fn owner(&self, me: &KafkaTopic, topic_name: &str) -> Option<String> {
        let live = self.live.read().unwrap();
        let claimants = live
            .namespaces
            .get(me.metadata.namespace.as_deref().unwrap_or_default())?
            .claims
            .get(me.spec.cluster_ref.as_str())?
            .get(topic_name)?;
        // The claimants are in rank order: the first that is not `me` outranks every other.
        let first = claimants
            .iter()
            .find(|c| c.uid.as_deref() != me.metadata.uid.as_deref())?;
        let created = me.metadata.creation_timestamp.as_ref().map(|c| c.0);
        let name = me.name_any();
        ((first.created, &*first.name) < (created, name.as_str())).then(|| first.name.to_string())
    }
}

impl Index<KafkaTopic> for Claims {
    fn observe(&self, event: &Event<KafkaTopic>) {
        match event {
            Event::Apply(topic) => self.live.write().unwrap().apply(topic),
            Event::Delete(topic) => self.live.write().unwrap().remove(topic),
            Event::Init => *self.relisting.lock().unwrap() = Some(State::default()),
            Event::InitApply(topic) => self
                .relisting
                .lock()
                .unwrap()
                .get_or_insert_with(State::default)
                .apply(topic),
            Event::InitDone => {
                let listed = self.relisting.lock().unwrap().take().unwrap_or_default();
                // The old state is dropped after the lock is released.
                let _old = std::mem::replace(&mut *self.live.write().unwrap(), listed);
            }
        }
    }
}

/// The claims of the KafkaTopics of every namespace.
#[derive(Debug, Default)]
struct State {
    namespaces: HashMap<Arc<str>, Namespace>,
}

/// The claims of one namespace's KafkaTopics.
#[derive(Debug, Default)]
struct Namespace {
    /// KafkaTopic name → where it is filed in `claims`: only the claimants that count (not
    /// being deleted, with a broker topic name).
    filed: HashMap<Arc<str>, Filed>,
    /// clusterRef → broker topic name → its claimants, lowest rank first.
    claims: HashMap<Arc<str>, HashMap<Arc<str>, Vec<Claimant>>>,
}

/// Where one KafkaTopic is filed (the strings are shared with the keys of the claims).
#[derive(Debug)]
struct Filed {
    cluster: Arc<str>,
    topic: Arc<str>,
}

/// One claimant, ordered by rank: creation time, then name (the uid only breaks ties between
/// two incarnations of one name, which the cache never holds together).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Claimant {
    created: Option<Timestamp>,
    name: Arc<str>,
    uid: Option<Arc<str>>,
}

impl State {
    /// `topic` as it is now: its former claim withdrawn, its present one (if it counts) filed.
    fn apply(&mut self, topic: &KafkaTopic) {
        self.remove(topic);
        let Some(name) = topic.metadata.name.as_deref() else {
            return;
        };
        if topic.metadata.deletion_timestamp.is_some() {
            return;
        }
        let Some(broker_topic) = topic.broker_topic_name() else {
            return;
        };
        let namespace = topic.metadata.namespace.as_deref().unwrap_or_default();
        let (_, ns) = slot(&mut self.namespaces, namespace);
        let (cluster, topics) = slot(&mut ns.claims, &topic.spec.cluster_ref);
        let (broker_topic, claimants) = slot(topics, broker_topic);
        let claimant = Claimant {
            created: topic.metadata.creation_timestamp.as_ref().map(|c| c.0),
            name: Arc::from(name),
            uid: topic.metadata.uid.as_deref().map(Arc::from),
        };
        let at = claimants.partition_point(|c| *c < claimant);
        claimants.reserve_exact(1);
        claimants.insert(at, claimant.clone());
        ns.filed.insert(
            claimant.name,
            Filed {
                cluster,
                topic: broker_topic,
            },
        );
    }

    /// Withdraws the claim of the KafkaTopic so named, if it has one.
    fn remove(&mut self, topic: &KafkaTopic) {
        let namespace = topic.metadata.namespace.as_deref().unwrap_or_default();
        let Some(name) = topic.metadata.name.as_deref() else {
            return;
        };
        let Some(ns) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let Some(filed) = ns.filed.remove(name) else {
            return;
        };
        if let Some(topics) = ns.claims.get_mut(&filed.cluster) {
            if let Some(claimants) = topics.get_mut(&filed.topic) {
                claimants.retain(|c| &*c.name != name);
                if claimants.is_empty() {
                    topics.remove(&filed.topic);
                }
            }
            if topics.is_empty() {
                ns.claims.remove(&filed.cluster);
            }
        }
        if ns.filed.is_empty() {
            self.namespaces.remove(namespace);
        }
    }
}

/// The entry of `map` for `key`, made empty when missing, with its key (to share the string).
fn slot<'m, V: Default>(map: &'m mut HashMap<Arc<str>, V>, key: &str) -> (Arc<str>, &'m mut V) {
    let key = match map.get_key_value(key) {
        Some((k, _)) => k.clone(),
        None => Arc::from(key),
    };
    let value = map.entry(key.clone()).or_default();
    (key, value)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use kube::runtime::reflector::store::Writer;
    use proptest::prelude::*;

    use super::*;
    use crate::api::{DeletionPolicy, KafkaTopicSpec};

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    fn topic(name: &str, topic_name: Option<&str>, created: i64) -> KafkaTopic {
        let mut t = KafkaTopic::new(
            name,
            KafkaTopicSpec {
                cluster_ref: "prod".into(),
                topic_name: topic_name.map(Into::into),
                partitions: 3,
                replication_factor: None,
                config: BTreeMap::new(),
                deletion_policy: DeletionPolicy::Retain,
            },
        );
        t.metadata.namespace = Some("booking".into());
        t.metadata.uid = Some(format!("uid-{name}"));
        t.metadata.creation_timestamp = Some(at(created));
        t
    }

    fn in_namespace(mut t: KafkaTopic, namespace: &str) -> KafkaTopic {
        t.metadata.namespace = Some(namespace.into());
        t
    }

    fn on_cluster(mut t: KafkaTopic, cluster: &str) -> KafkaTopic {
        t.spec.cluster_ref = cluster.into();
        t
    }

    fn deleting(mut t: KafkaTopic) -> KafkaTopic {
        t.metadata.deletion_timestamp = Some(at(1_000));
        t
    }

    fn observe(claims: &Claims, events: impl IntoIterator<Item = Event<KafkaTopic>>) {
        for e in events {
            claims.observe(&e);
        }
    }

    fn is_empty(claims: &Claims) -> bool {
        claims.live.read().unwrap().namespaces.is_empty()
    }

    /// What the scan says over `all`, checked against the index fed the same topics.
    fn owner(me: &KafkaTopic, topic_name: &str, all: &[&KafkaTopic]) -> Option<String> {
        let cache: Vec<Arc<KafkaTopic>> = all.iter().map(|t| Arc::new((*t).clone())).collect();
        let scanned = conflict_owner(me, topic_name, &cache);
        let claims = Claims::default();
        observe(&claims, all.iter().map(|t| Event::Apply((*t).clone())));
        assert_eq!(claims.owner(me, topic_name), scanned, "index and scan");
        scanned
    }

    #[test]
    fn the_oldest_claimant_keeps_the_topic() {
        let old = topic("bookings", None, 100);
        let new = topic("bookings-copy", Some("bookings"), 200);
        let unrelated = topic("refunds", None, 50);
        let all = [&old, &new, &unrelated];
        assert_eq!(owner(&new, "bookings", &all), Some("bookings".into()));
        assert_eq!(owner(&old, "bookings", &all), None);
        assert_eq!(owner(&unrelated, "refunds", &all), None);
    }

    #[test]
    fn claimants_on_other_clusters_or_being_deleted_do_not_conflict() {
        let old = topic("bookings", None, 100);
        let other_cluster = on_cluster(topic("b2", Some("bookings"), 50), "dev");
        let deleting = deleting(topic("b3", Some("bookings"), 10));
        let all = [&old, &other_cluster, &deleting];
        assert_eq!(owner(&old, "bookings", &all), None);
    }

    #[test]
    fn equal_creation_times_rank_by_name() {
        let b = topic("b", Some("shared"), 100);
        let a = topic("a", Some("shared"), 100);
        let c = topic("c", Some("shared"), 100);
        let all = [&b, &c, &a];
        assert_eq!(owner(&c, "shared", &all), Some("a".into()));
        assert_eq!(owner(&b, "shared", &all), Some("a".into()));
        assert_eq!(owner(&a, "shared", &all), None);
    }

    #[test]
    fn an_applied_claimant_is_found_and_a_reapplied_one_is_not_filed_twice() {
        let claims = Claims::default();
        let old = topic("bookings", None, 100);
        let new = topic("bookings-copy", Some("bookings"), 200);
        observe(&claims, [Event::Apply(old.clone())]);
        assert_eq!(claims.owner(&new, "bookings"), Some("bookings".into()));
        observe(
            &claims,
            [Event::Apply(new.clone()), Event::Apply(old.clone())],
        );
        assert_eq!(claims.owner(&new, "bookings"), Some("bookings".into()));
        assert_eq!(claims.owner(&old, "bookings"), None);
        observe(&claims, [Event::Delete(old.clone())]);
        assert_eq!(claims.owner(&new, "bookings"), None, "filed once only");
    }

    /// `spec.topicName` is immutable by the CRD's rule, but the index does not rely on it.
    #[test]
    fn a_renamed_claim_moves_to_its_new_topic() {
        let claims = Claims::default();
        let old = topic("bookings", None, 100);
        let copy = topic("copy", Some("bookings"), 50);
        let new = topic("bookings-new", Some("bookings"), 200);
        observe(
            &claims,
            [Event::Apply(old.clone()), Event::Apply(copy.clone())],
        );
        assert_eq!(claims.owner(&old, "bookings"), Some("copy".into()));
        let mut renamed = copy.clone();
        renamed.spec.topic_name = Some("archive".into());
        observe(&claims, [Event::Apply(renamed)]);
        assert_eq!(claims.owner(&old, "bookings"), None, "no longer claims it");
        assert_eq!(claims.owner(&new, "bookings"), Some("bookings".into()));
        let archive = topic("archive", None, 300);
        assert_eq!(claims.owner(&archive, "archive"), Some("copy".into()));
    }

    #[test]
    fn a_deleted_claimant_releases_the_topic() {
        let claims = Claims::default();
        let old = topic("bookings", None, 100);
        let new = topic("bookings-copy", Some("bookings"), 200);
        observe(
            &claims,
            [Event::Apply(old.clone()), Event::Apply(new.clone())],
        );
        assert_eq!(claims.owner(&new, "bookings"), Some("bookings".into()));
        observe(&claims, [Event::Delete(old.clone())]);
        assert_eq!(claims.owner(&new, "bookings"), None);
        observe(&claims, [Event::Delete(new.clone())]);
        assert!(is_empty(&claims), "nothing is left behind");
    }

    #[test]
    fn a_claimant_being_deleted_no_longer_counts_but_is_still_answered() {
        let claims = Claims::default();
        let old = topic("bookings", None, 100);
        let new = topic("bookings-copy", Some("bookings"), 200);
        observe(
            &claims,
            [Event::Apply(old.clone()), Event::Apply(new.clone())],
        );
        observe(&claims, [Event::Apply(deleting(old.clone()))]);
        assert_eq!(claims.owner(&new, "bookings"), None);
        // The newer one, being deleted, is still told that the topic is not its own (so that
        // its cleanup leaves the broker topic alone).
        observe(&claims, [Event::Apply(old.clone())]);
        let leaving = deleting(new.clone());
        observe(&claims, [Event::Apply(leaving.clone())]);
        assert_eq!(claims.owner(&leaving, "bookings"), Some("bookings".into()));
    }

    /// After a 410 Gone the watch relists; objects deleted meanwhile are simply not listed.
    #[test]
    fn a_relist_replaces_the_claims_when_it_is_done() {
        let claims = Claims::default();
        let old = topic("bookings", None, 100);
        let new = topic("bookings-copy", Some("bookings"), 200);
        let other = topic("refunds", Some("bookings"), 150);
        observe(
            &claims,
            [Event::Apply(old.clone()), Event::Apply(new.clone())],
        );
        observe(
            &claims,
            [
                Event::Init,
                Event::InitApply(new.clone()),
                Event::InitApply(other.clone()),
            ],
        );
        assert_eq!(
            claims.owner(&new, "bookings"),
            Some("bookings".into()),
            "until the relist is done, the claims are those of the cache as it was"
        );
        observe(&claims, [Event::InitDone]);
        assert_eq!(claims.owner(&new, "bookings"), Some("refunds".into()));
        observe(
            &claims,
            [Event::Init, Event::InitApply(new.clone()), Event::InitDone],
        );
        assert_eq!(
            claims.owner(&new, "bookings"),
            None,
            "gone without a Delete"
        );
        observe(&claims, [Event::Init, Event::InitDone]);
        assert!(is_empty(&claims));
    }

    #[test]
    fn claims_of_two_namespaces_or_two_clusters_are_apart() {
        let claims = Claims::default();
        let here = topic("bookings", None, 100);
        let there = in_namespace(topic("bookings", None, 50), "elsewhere");
        let dev = on_cluster(topic("copy", Some("bookings"), 10), "dev");
        observe(
            &claims,
            [
                Event::Apply(here.clone()),
                Event::Apply(there.clone()),
                Event::Apply(dev.clone()),
            ],
        );
        assert_eq!(claims.owner(&here, "bookings"), None);
        assert_eq!(claims.owner(&there, "bookings"), None);
        assert_eq!(claims.owner(&dev, "bookings"), None);
        let late_dev = on_cluster(topic("late", Some("bookings"), 500), "dev");
        assert_eq!(claims.owner(&late_dev, "bookings"), Some("copy".into()));
        let late_there = in_namespace(topic("late", Some("bookings"), 500), "elsewhere");
        assert_eq!(
            claims.owner(&late_there, "bookings"),
            Some("bookings".into())
        );
    }

    #[test]
    fn a_recreated_topic_is_not_its_own_rival() {
        let claims = Claims::default();
        let first = topic("bookings", None, 100);
        let mut again = topic("bookings", None, 100);
        again.metadata.uid = Some("uid-again".into());
        observe(&claims, [Event::Apply(first.clone())]);
        observe(&claims, [Event::Apply(again.clone())]);
        assert_eq!(claims.owner(&again, "bookings"), None);
        assert_eq!(
            claims.owner(&first, "bookings"),
            None,
            "same rank, not older"
        );
    }

    /// A raw watch event over a small universe, so that names, topics and ranks collide often.
    fn event() -> impl Strategy<Value = Event<KafkaTopic>> {
        let object = (
            (0..2usize, 0..4usize, 0..2usize, 0..4usize),
            (proptest::option::of(0..3i64), any::<bool>(), 0..3usize),
        )
            .prop_map(|((ns, name, cluster, topic_name), (created, gone, uid))| {
                let mut t = KafkaTopic::new(
                    &format!("t{name}"),
                    KafkaTopicSpec {
                        cluster_ref: ["x", "y"][cluster].into(),
                        topic_name: [None, Some("p"), Some("q"), Some("t0")][topic_name]
                            .map(Into::into),
                        partitions: 1,
                        replication_factor: None,
                        config: BTreeMap::new(),
                        deletion_policy: DeletionPolicy::Retain,
                    },
                );
                t.metadata.namespace = Some(["a", "b"][ns].into());
                t.metadata.uid = Some(format!("u{uid}"));
                t.metadata.creation_timestamp = created.map(at);
                if gone {
                    t.metadata.deletion_timestamp = Some(at(9));
                }
                t
            });
        prop_oneof![
            4 => object.clone().prop_map(Event::Apply),
            2 => object.clone().prop_map(Event::Delete),
            1 => Just(Event::Init),
            3 => object.prop_map(Event::InitApply),
            1 => Just(Event::InitDone),
        ]
    }

    proptest! {
        /// After every event — in any order, relists included — for every object the cache
        /// holds (and a few it does not) and every topic name, the index answers exactly what
        /// the scan of the cache answers.
        #[test]
        fn the_index_answers_what_the_scan_of_the_cache_answers(
            events in proptest::collection::vec(event(), 0..60),
            probes in proptest::collection::vec(event(), 0..4),
        ) {
            let mut writer: Writer<KafkaTopic> = Writer::default();
            let store = writer.as_reader();
            let claims = Claims::default();
            let probes: Vec<&KafkaTopic> = probes
                .iter()
                .filter_map(|p| match p {
                    Event::Apply(t) | Event::Delete(t) | Event::InitApply(t) => Some(t),
                    Event::Init | Event::InitDone => None,
                })
                .collect();
            for e in &events {
                writer.apply_watcher_event(e);
                claims.observe(e);
                let cache = store.state();
                for me in cache.iter().map(|t| &**t).chain(probes.iter().copied()) {
                    for name in ["p", "q", "t0", "t1", "t2", "t3"] {
                        prop_assert_eq!(
                            claims.owner(me, name),
                            conflict_owner(me, name, &cache),
                            "{} asking for {} after {:?}", me.name_any(), name, e
                        );
                    }
                }
            }
        }
    }
}
