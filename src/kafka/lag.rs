//! Consumer-group lag, observed in one batched pass per cluster.
//!
//! A warm pass over any number of groups makes, whatever the number of groups and partitions,
//! `3 + coordinator brokers` requests on the wire (4 on a single broker; measured by a proxy in
//! front of the broker, `tests/integration/lag_wire.rs`, and `benches/lag.rs`):
//!
//! 1. one Metadata request (librdkafka `DescribeTopics`) for every topic of every group: the live
//!    partition count and each partition's leader;
//! 2. then, all at once and awaited together (one round trip of wall time, plus a lookup when a
//!    coordinator is not known yet):
//!    * `ListOffsets` for the end (LATEST) offset of every partition, and another for the start
//!      (EARLIEST) offset of every partition — librdkafka sends one request per leader broker for
//!      each, so 2 requests on a single-broker cluster, 2 × brokers at most;
//!    * committed offsets, on connections of our own ([`batched`], over [`crate::kafka::wire`],
//!      with the cluster's TLS and SASL): the coordinator of every group is cached per cluster;
//!      the groups not cached are looked up in one FindCoordinator v4 (KIP-699), then each
//!      coordinator broker gets one OffsetFetch v8 (KIP-709) for all of its groups. A cached
//!      coordinator that answers NOT_COORDINATOR / COORDINATOR_NOT_AVAILABLE /
//!      COORDINATOR_LOAD_IN_PROGRESS, or whose connection fails, is forgotten and its groups
//!      looked up and asked again once in the same pass.
//!    * optionally (see [`RdKafkaLagObserver::describe_members`]) the member count and state of
//!      every group: one DescribeGroups per coordinator broker, beside its OffsetFetch.
//!
//! librdkafka cannot do the third part batched: 2.12's `rd_kafka_ListConsumerGroupOffsets`
//! accepts exactly one group per call ("Exactly one ListConsumerGroupOffsets must be passed"),
//! so one OffsetFetch per group; it sends a FindCoordinator per group before it and caches only
//! 11 coordinators (`rdkafka_coord.c`), so beyond 11 groups nearly every pass paid one
//! FindCoordinator per group too (about 400 requests for 200 groups), and
//! `DescribeConsumerGroups` sends one request per group. That remains the fallback: a broker
//! whose ApiVersions lacks FindCoordinator v4 or OffsetFetch v8 (Kafka before 3.0), or a
//! cluster whose client properties need what only librdkafka implements (e.g.
//! `ssl.ca.location`), keeps librdkafka's per-group requests — logged once per cluster (a
//! warning with the reason), and tallied as `OffsetFetch(per-group)` /
//! `DescribeGroups(per-group)` so the metrics show it.
//!
//! The start offsets are read for every partition, not only for groups that never committed: a
//! committed offset below the log start (retention deleted the data) or beyond the end (the
//! topic was recreated) is out of range, and the consumer resumes at its reset point, so the
//! lag is measured from there — never from records that no longer exist.
//!
//! What the broker cannot do is an error, never a silent skip: a broker without one of these
//! APIs fails the whole pass with [`BrokerError::Unsupported`] and the broker's (or
//! librdkafka's) text — including where librdkafka 2.12 itself is silent: a failed
//! `ListOffsets` sub-request comes back as offsets of -1001 without an error, which is caught
//! and diagnosed (see `native::pass::diagnose_unanswered`). What
//! fails for one group only (its committed offsets, an offset of a partition it reads) fails
//! that group only, with the broker's text in its [`Rejection`].

pub mod batched;
#[cfg(any(test, feature = "test-util"))]
mod memory;
pub(in crate::kafka) mod native;

use std::collections::{BTreeMap, BTreeSet};

use futures::future::BoxFuture;

use super::{BrokerError, Rejection, RequestTally};

#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryLagObserver;
pub use native::RdKafkaLagObserver;

/// Where a consumer starts reading a partition the group has no (valid) committed offset for:
/// Kafka's `auto.offset.reset`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OffsetReset {
    /// The oldest retained record: everything retained is lag.
    Earliest,
    /// The end of the log: a group that never committed has no lag. Kafka's default.
    #[default]
    Latest,
}

/// One consumer group to observe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupQuery {
    pub group_id: String,
    /// The topics the group reads.
    pub topics: Vec<String>,
    /// The group's `auto.offset.reset`.
    pub reset: OffsetReset,
}

impl GroupQuery {
    pub fn new(group_id: impl Into<String>, topics: &[&str], reset: OffsetReset) -> Self {
        Self {
            group_id: group_id.into(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            reset,
        }
    }
}

/// One partition of a group's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    /// The log start offset (earliest retained record).
    pub log_start: i64,
    /// The log end offset (high watermark: the offset the next record will get).
    pub log_end: i64,
    /// The group's committed offset; `None` if it never committed on this partition.
    pub committed: Option<i64>,
    /// Where the group resumes: the committed offset when it lies in `log_start..=log_end`,
    /// else the reset point.
    pub position: i64,
    /// `log_end - position`: records the group has yet to read.
    pub lag: u64,
}

/// The lag of a group on one of its topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLag {
    pub topic: String,
    /// False when the topic does not exist on the broker (it then has 0 partitions and 0 lag).
    pub exists: bool,
    /// Live partition count, from this pass's metadata.
    pub partitions: i32,
    pub partitions_with_lag: i32,
    pub lag: u64,
}

/// A group's lag over all its topics.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Lag {
    /// Sum over every partition of every topic.
    pub total: u64,
    /// One entry per topic of the query, in the query's order.
    pub topics: Vec<TopicLag>,
    /// One entry per partition, by topic (query order) then partition.
    pub partitions: Vec<PartitionLag>,
    /// Live partitions of all the group's existing topics: the most consumers that can work.
    pub partition_count: i32,
    /// Partitions whose lag is above 0.
    pub partitions_with_lag: i32,
    /// The topics of the query that do not exist on the broker.
    pub missing_topics: Vec<String>,
    /// The group has a committed offset on at least one partition of its topics.
    pub has_committed: bool,
    /// Members of the group, when asked for (`None` otherwise); 0 for a group the broker does
    /// not know (it never joined, or all its members left and it expired).
    pub members: Option<i32>,
    /// The group's state as the broker names it (`Stable`, `Empty`, `Dead`, ...), when members
    /// were asked for.
    pub state: Option<String>,
}

/// The observation of one group of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    pub group_id: String,
    /// The group's lag, or why it could not be measured (this group only: the other groups of
    /// the pass are unaffected). Never a partial measurement.
    pub result: Result<Lag, Rejection>,
}

/// Observes consumer-group lag on one cluster.
pub trait LagObserver: Send + Sync {
    /// The lag of every group of `groups`, in the same order (a group listed twice is observed
    /// once and reported twice). A failure of the whole pass (cluster unreachable, an API the
    /// broker lacks) is the `Err`; a failure for one group is that group's `result`. The
    /// requests of the pass, by API and outcome, are added to `requests`.
    fn observe_tallied<'a>(
        &'a self,
        groups: &'a [GroupQuery],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>>;

    /// [`LagObserver::observe_tallied`], uncounted.
    fn observe<'a>(
        &'a self,
        groups: &'a [GroupQuery],
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>> {
        Box::pin(async move {
            self.observe_tallied(groups, &mut RequestTally::default())
                .await
        })
    }
}

impl<T: LagObserver + ?Sized> LagObserver for std::sync::Arc<T> {
    fn observe_tallied<'a>(
        &'a self,
        groups: &'a [GroupQuery],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>> {
        (**self).observe_tallied(groups, requests)
    }
}

// ---------------------------------------------------------------------------------------------
// The pure part: raw offsets in, lag out. Shared by the librdkafka observer and the fake.

/// What one pass learnt about one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TopicState {
    Missing,
    Failed(Rejection),
    /// The partition ids, ascending.
    Partitions(Vec<i32>),
}

/// Raw facts of one pass, keyed by name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    pub topics: BTreeMap<String, TopicState>,
    /// Log start offsets.
    pub starts: Offsets,
    /// Log end offsets.
    pub ends: Offsets,
    /// group → `(topic, partition)` → committed offset (`None`: never committed).
    pub commits: BTreeMap<String, Commits>,
    /// group → `(members, state)`, when members were asked for.
    pub members: Members,
}

/// `(topic, partition)` → offset.
pub(crate) type Offsets = BTreeMap<(String, i32), Result<i64, Rejection>>;
/// One group's committed offsets: `(topic, partition)` → offset (`None`: never committed).
pub(crate) type Commits =
    Result<BTreeMap<(String, i32), Result<Option<i64>, Rejection>>, Rejection>;
/// group → `(members, state)`.
pub(crate) type Members = BTreeMap<String, Result<(i32, String), Rejection>>;

/// The distinct topics of `groups`, sorted.
pub(crate) fn topics_of(groups: &[GroupQuery]) -> Vec<String> {
    groups
        .iter()
        .flat_map(|g| g.topics.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// The distinct group ids of `groups`, first-seen order.
pub(crate) fn group_ids(groups: &[GroupQuery]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    groups
        .iter()
        .filter(|g| seen.insert(g.group_id.as_str()))
        .map(|g| g.group_id.clone())
        .collect()
}

/// The partitions of existing topics a group reads, per distinct group id (union over its
/// queries), for the committed-offsets requests.
pub(crate) fn group_partitions(
    groups: &[GroupQuery],
    topics: &BTreeMap<String, TopicState>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut out: BTreeMap<String, BTreeSet<(String, i32)>> = BTreeMap::new();
    for g in groups {
        let entry = out.entry(g.group_id.clone()).or_default();
        for t in &g.topics {
            if let Some(TopicState::Partitions(ps)) = topics.get(t) {
                entry.extend(ps.iter().map(|p| (t.clone(), *p)));
            }
        }
    }
    out.into_iter()
        .map(|(g, ps)| (g, ps.into_iter().collect()))
        .collect()
}

/// Where a consumer of this partition resumes.
pub(crate) fn position(committed: Option<i64>, start: i64, end: i64, reset: OffsetReset) -> i64 {
    match committed {
        Some(c) if (start..=end).contains(&c) => c,
        _ => match reset {
            OffsetReset::Earliest => start,
            OffsetReset::Latest => end,
        },
    }
}

fn rejected(what: String, r: &Rejection) -> Rejection {
    Rejection {
        code: r.code.clone(),
        message: format!("{what}: {}", r.message),
        unsupported: r.unsupported,
    }
}

/// One group's lag from the facts of the pass.
pub(crate) fn assemble(query: &GroupQuery, facts: &Facts, with_members: bool) -> GroupLag {
    GroupLag {
        group_id: query.group_id.clone(),
        result: assemble_lag(query, facts, with_members),
    }
}

fn assemble_lag(query: &GroupQuery, facts: &Facts, with_members: bool) -> Result<Lag, Rejection> {
    let empty = BTreeMap::new();
    let commits = match facts.commits.get(&query.group_id) {
        Some(Ok(c)) => c,
        Some(Err(r)) => {
            return Err(rejected(
                format!("committed offsets of group {}", query.group_id),
                r,
            ))
        }
        None => &empty,
    };
    let mut lag = Lag::default();
    let mut seen = BTreeSet::new();
    for topic in &query.topics {
        if !seen.insert(topic.as_str()) {
            continue;
        }
        let partitions = match facts.topics.get(topic) {
            Some(TopicState::Partitions(ps)) => ps,
            Some(TopicState::Failed(r)) => return Err(rejected(format!("topic {topic}"), r)),
            Some(TopicState::Missing) | None => {
                lag.missing_topics.push(topic.clone());
                lag.topics.push(TopicLag {
                    topic: topic.clone(),
                    exists: false,
                    partitions: 0,
                    partitions_with_lag: 0,
                    lag: 0,
                });
                continue;
            }
        };
        let mut topic_lag = TopicLag {
            topic: topic.clone(),
            exists: true,
            partitions: partitions.len() as i32,
            partitions_with_lag: 0,
            lag: 0,
        };
        for &p in partitions {
            let key = (topic.clone(), p);
            let offset =
                |map: &BTreeMap<(String, i32), Result<i64, Rejection>>, what: &str| match map
                    .get(&key)
                {
                    Some(Ok(o)) => Ok(*o),
                    Some(Err(r)) => Err(rejected(format!("{what} offset of {topic}/{p}"), r)),
                    None => Err(Rejection {
                        code: "Missing".into(),
                        message: format!(
                            "the broker did not return the {what} offset of {topic}/{p}"
                        ),
                        unsupported: false,
                    }),
                };
            let start = offset(&facts.starts, "start")?;
            let end = offset(&facts.ends, "end")?;
            let committed = match commits.get(&key) {
                Some(Ok(c)) => *c,
                Some(Err(r)) => {
                    return Err(rejected(
                        format!(
                            "committed offset of group {} on {topic}/{p}",
                            query.group_id
                        ),
                        r,
                    ))
                }
                None => None,
            };
            let at = position(committed, start, end, query.reset);
            let n = end.saturating_sub(at).max(0) as u64;
            lag.has_committed |= committed.is_some();
            topic_lag.lag += n;
            topic_lag.partitions_with_lag += i32::from(n > 0);
            lag.partitions.push(PartitionLag {
                topic: topic.clone(),
                partition: p,
                log_start: start,
                log_end: end,
                committed,
                position: at,
                lag: n,
            });
        }
        lag.total += topic_lag.lag;
        lag.partition_count += topic_lag.partitions;
        lag.partitions_with_lag += topic_lag.partitions_with_lag;
        lag.topics.push(topic_lag);
    }
    if with_members {
        match facts.members.get(&query.group_id) {
            Some(Ok((members, state))) => {
                lag.members = Some(*members);
                lag.state = Some(state.clone());
            }
            Some(Err(r)) => {
                return Err(rejected(format!("members of group {}", query.group_id), r))
            }
            None => {
                lag.members = Some(0);
            }
        }
    }
    Ok(lag)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        let mut f = Facts::default();
        f.topics
            .insert("orders".into(), TopicState::Partitions(vec![0, 1, 2]));
        f.topics.insert("gone".into(), TopicState::Missing);
        for (p, start, end) in [(0, 0, 100), (1, 50, 80), (2, 10, 10)] {
            f.starts.insert(("orders".into(), p), Ok(start));
            f.ends.insert(("orders".into(), p), Ok(end));
        }
        f
    }

    fn commits(f: &mut Facts, group: &str, c: &[(i32, Option<i64>)]) {
        f.commits.insert(
            group.into(),
            Ok(c.iter()
                .map(|(p, o)| (("orders".to_string(), *p), Ok(*o)))
                .collect()),
        );
    }

    #[test]
    fn a_group_that_never_committed_lags_by_its_reset_policy() {
        let f = facts();
        let earliest = assemble(
            &GroupQuery::new("g", &["orders"], OffsetReset::Earliest),
            &f,
            false,
        )
        .result
        .unwrap();
        assert_eq!(earliest.total, 100 + 30);
        assert_eq!(earliest.partition_count, 3);
        assert_eq!(earliest.partitions_with_lag, 2);
        assert!(!earliest.has_committed);
        assert_eq!(earliest.members, None);
        let latest = assemble(
            &GroupQuery::new("g", &["orders"], OffsetReset::Latest),
            &f,
            false,
        )
        .result
        .unwrap();
        assert_eq!(latest.total, 0);
        assert_eq!(latest.partitions_with_lag, 0);
        assert_eq!(latest.partition_count, 3);
    }

    #[test]
    fn committed_offsets_in_range_count_and_out_of_range_ones_reset() {
        let mut f = facts();
        // p0 committed at 40 (lag 60); p1 committed at 20, below the log start 50 (retention
        // deleted it): resumes at the reset point; p2 never committed.
        commits(&mut f, "g", &[(0, Some(40)), (1, Some(20)), (2, None)]);
        let q = GroupQuery::new("g", &["orders", "gone"], OffsetReset::Earliest);
        let lag = assemble(&q, &f, false).result.unwrap();
        assert_eq!(lag.total, 60 + 30);
        assert_eq!(lag.partitions[1].position, 50);
        assert!(lag.has_committed);
        assert_eq!(lag.missing_topics, ["gone"]);
        assert_eq!(lag.topics.len(), 2);
        assert!(!lag.topics[1].exists);
        let q = GroupQuery::new("g", &["orders"], OffsetReset::Latest);
        assert_eq!(assemble(&q, &f, false).result.unwrap().total, 60);
    }

    #[test]
    fn a_failure_for_one_partition_fails_the_group_with_the_brokers_text() {
        let mut f = facts();
        f.ends.insert(
            ("orders".into(), 1),
            Err(Rejection {
                code: "LeaderNotAvailable".into(),
                message: "Broker: Leader not available".into(),
                unsupported: false,
            }),
        );
        let err = assemble(
            &GroupQuery::new("g", &["orders"], OffsetReset::Latest),
            &f,
            false,
        )
        .result
        .unwrap_err();
        assert_eq!(err.code, "LeaderNotAvailable");
        assert_eq!(
            err.message,
            "end offset of orders/1: Broker: Leader not available"
        );
        // A group that does not read the topic is unaffected.
        assert!(assemble(
            &GroupQuery::new("h", &["gone"], OffsetReset::Latest),
            &f,
            false
        )
        .result
        .is_ok());
    }

    #[test]
    fn topics_and_groups_are_deduplicated_for_the_requests() {
        let groups = vec![
            GroupQuery::new("a", &["x", "y"], OffsetReset::Latest),
            GroupQuery::new("b", &["y", "z"], OffsetReset::Earliest),
            GroupQuery::new("a", &["z"], OffsetReset::Latest),
        ];
        assert_eq!(topics_of(&groups), ["x", "y", "z"]);
        assert_eq!(group_ids(&groups), ["a", "b"]);
        let topics = BTreeMap::from([
            ("x".to_string(), TopicState::Partitions(vec![0])),
            ("y".to_string(), TopicState::Missing),
            ("z".to_string(), TopicState::Partitions(vec![0, 1])),
        ]);
        let parts = group_partitions(&groups, &topics);
        assert_eq!(
            parts["a"],
            [
                ("x".to_string(), 0),
                ("z".to_string(), 0),
                ("z".to_string(), 1)
            ]
        );
        assert_eq!(parts["b"], [("z".to_string(), 0), ("z".to_string(), 1)]);
    }
}
