//! An in-memory [`GroupAdmin`] for tests: topics whose records carry timestamps, committed
//! offsets and members per group, an injectable failure per API, and a count of the offset
//! writes (so a test can see offsets written exactly once).

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{
    GroupAdmin, GroupDeletion, GroupDescription, Member, OffsetSpec, PartitionOutcome,
    TopicPartition, TopicPartitions,
};
use crate::kafka::{BrokerError, Rejection, RequestTally};

#[derive(Debug, Clone, Default)]
struct Log {
    /// The log start offset.
    start: i64,
    /// The timestamp of each record from offset 0 (those below `start` are gone).
    timestamps: Vec<i64>,
}

impl Log {
    fn end(&self) -> i64 {
        self.timestamps.len() as i64
    }
}

#[derive(Default)]
struct State {
    topics: BTreeMap<String, Vec<Log>>,
    commits: BTreeMap<String, BTreeMap<TopicPartition, i64>>,
    members: BTreeMap<String, Vec<Member>>,
    fail: BTreeMap<&'static str, BrokerError>,
    alters: u64,
    deletes: u64,
}

/// A fake cluster's consumer groups and topics.
#[derive(Default)]
pub struct MemoryGroupAdmin {
    state: Mutex<State>,
}

impl MemoryGroupAdmin {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates (or grows) a topic to `partitions` empty partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let mut s = self.state();
        let t = s.topics.entry(topic.to_owned()).or_default();
        t.resize(partitions.max(0) as usize, Log::default());
    }

    /// Appends one record per timestamp (milliseconds) to a partition of an existing topic.
    pub fn produce(&self, topic: &str, partition: i32, timestamps: &[i64]) {
        if let Some(log) = self
            .state()
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(partition as usize))
        {
            log.timestamps.extend_from_slice(timestamps);
        }
    }

    /// Retention: the partition now starts at `start`.
    pub fn truncate(&self, topic: &str, partition: i32, start: i64) {
        if let Some(log) = self
            .state()
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(partition as usize))
        {
            log.start = start.clamp(0, log.end());
        }
    }

    /// Commits `offset` for the group, as a consumer would.
    pub fn commit(&self, group: &str, topic: &str, partition: i32, offset: i64) {
        self.state()
            .commits
            .entry(group.to_owned())
            .or_default()
            .insert((topic.to_owned(), partition), offset);
    }

    /// The group's committed offsets.
    pub fn commits(&self, group: &str) -> BTreeMap<TopicPartition, i64> {
        self.state().commits.get(group).cloned().unwrap_or_default()
    }

    /// Sets the group's members (empty: the group is empty).
    pub fn set_members(&self, group: &str, members: Vec<Member>) {
        self.state().members.insert(group.to_owned(), members);
    }

    /// Every later call of `api` (`DescribeGroups`, `Metadata`, `OffsetFetch`, `ListOffsets`,
    /// `OffsetCommit`, `DeleteGroups`) fails with `error`; `None` heals it.
    pub fn fail(&self, api: &'static str, error: Option<BrokerError>) {
        let mut s = self.state();
        match error {
            Some(e) => s.fail.insert(api, e),
            None => s.fail.remove(api),
        };
    }

    /// The `AlterConsumerGroupOffsets` calls made so far.
    pub fn alter_calls(&self) -> u64 {
        self.state().alters
    }

    /// The `DeleteGroups` calls made so far.
    pub fn delete_calls(&self) -> u64 {
        self.state().deletes
    }

    fn check(&self, api: &'static str, requests: &mut RequestTally) -> Result<(), BrokerError> {
        let result = match self.state().fail.get(api) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        };
        requests.request(api, result.as_ref().map(|_| ()));
        result
    }

    fn is_empty_group(s: &State, group: &str) -> bool {
        s.members.get(group).is_none_or(Vec::is_empty)
    }
}

fn missing(api: &'static str, (topic, p): &TopicPartition) -> BrokerError {
    BrokerError::Rejected {
        api,
        code: "UnknownTopicOrPartition".into(),
        message: format!("{topic}/{p}: Broker: Unknown topic or partition"),
    }
}

impl GroupAdmin for MemoryGroupAdmin {
    fn describe_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDescription, BrokerError>> {
        async move {
            self.check("DescribeGroups", requests)?;
            let s = self.state();
            let members = s.members.get(group).cloned().unwrap_or_default();
            let state = if !members.is_empty() {
                "Stable"
            } else if s.commits.contains_key(group) || s.members.contains_key(group) {
                "Empty"
            } else {
                "Dead"
            };
            Ok(GroupDescription {
                group_id: group.to_owned(),
                state: state.to_owned(),
                members,
            })
        }
        .boxed()
    }

    fn topic_partitions<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<TopicPartitions, BrokerError>> {
        async move {
            if topics.is_empty() {
                return Ok(BTreeMap::new());
            }
            self.check("Metadata", requests)?;
            let s = self.state();
            Ok(topics
                .iter()
                .map(|t| {
                    let ps = s.topics.get(t).map(|logs| (0..logs.len() as i32).collect());
                    (t.clone(), ps)
                })
                .collect())
        }
        .boxed()
    }

    fn committed<'a>(
        &'a self,
        group: &'a str,
        partitions: Option<&'a [TopicPartition]>,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>, BrokerError>> {
        async move {
            if partitions.is_some_and(<[_]>::is_empty) {
                return Ok(BTreeMap::new());
            }
            self.check("OffsetFetch", requests)?;
            let all = self.commits(group);
            Ok(match partitions {
                None => all,
                Some(ps) => all.into_iter().filter(|(tp, _)| ps.contains(tp)).collect(),
            })
        }
        .boxed()
    }

    fn list_offsets<'a>(
        &'a self,
        partitions: &'a [TopicPartition],
        spec: OffsetSpec,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, Option<i64>>, BrokerError>> {
        async move {
            if partitions.is_empty() {
                return Ok(BTreeMap::new());
            }
            self.check("ListOffsets", requests)?;
            let s = self.state();
            let mut out = BTreeMap::new();
            for tp in partitions {
                let log = s
                    .topics
                    .get(&tp.0)
                    .and_then(|t| usize::try_from(tp.1).ok().and_then(|p| t.get(p)))
                    .ok_or_else(|| missing("ListOffsets", tp))?;
                let offset = match spec {
                    OffsetSpec::Earliest => Some(log.start),
                    OffsetSpec::Latest => Some(log.end()),
                    OffsetSpec::Timestamp(ms) => log
                        .timestamps
                        .iter()
                        .enumerate()
                        .skip(log.start as usize)
                        .find(|(_, t)| **t >= ms)
                        .map(|(o, _)| o as i64),
                };
                out.insert(tp.clone(), offset);
            }
            Ok(out)
        }
        .boxed()
    }

    fn alter_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: &'a [(TopicPartition, i64)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<PartitionOutcome>, BrokerError>> {
        async move {
            if offsets.is_empty() {
                return Ok(Vec::new());
            }
            self.check("OffsetCommit", requests)?;
            let mut s = self.state();
            s.alters += 1;
            if !Self::is_empty_group(&s, group) {
                return Err(BrokerError::Rejected {
                    api: "OffsetCommit",
                    code: "UnknownMemberId".into(),
                    message: format!("group {group}: Broker: Unknown member"),
                });
            }
            let mut out = Vec::new();
            for ((topic, p), offset) in offsets {
                let exists = s
                    .topics
                    .get(topic)
                    .is_some_and(|t| (0..t.len() as i32).contains(p));
                let result = if exists {
                    s.commits
                        .entry(group.to_owned())
                        .or_default()
                        .insert((topic.clone(), *p), *offset);
                    Ok(())
                } else {
                    Err(Rejection {
                        code: "UnknownTopicOrPartition".into(),
                        message: "Broker: Unknown topic or partition".into(),
                        unsupported: false,
                    })
                };
                out.push(PartitionOutcome {
                    topic: topic.clone(),
                    partition: *p,
                    result,
                });
            }
            Ok(out)
        }
        .boxed()
    }

    fn delete_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDeletion, BrokerError>> {
        async move {
            self.check("DeleteGroups", requests)?;
            let mut s = self.state();
            s.deletes += 1;
            if !Self::is_empty_group(&s, group) {
                return Err(BrokerError::Rejected {
                    api: "DeleteGroups",
                    code: "NonEmptyGroup".into(),
                    message: format!("group {group}: Broker: The group is not empty"),
                });
            }
            let known = s.commits.remove(group).is_some() | s.members.remove(group).is_some();
            Ok(if known {
                GroupDeletion::Deleted
            } else {
                GroupDeletion::NotFound
            })
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(t: &str, p: i32) -> TopicPartition {
        (t.to_owned(), p)
    }

    #[tokio::test]
    async fn offsets_by_spec_and_writes_refused_while_the_group_has_members() {
        let admin = MemoryGroupAdmin::new();
        admin.create_topic("trips", 2);
        admin.produce("trips", 0, &[10, 20, 30, 40]);
        admin.produce("trips", 1, &[5]);
        admin.truncate("trips", 0, 1);
        let mut t = RequestTally::default();
        let parts = [tp("trips", 0), tp("trips", 1)];
        let at = |spec| {
            let admin = &admin;
            let parts = &parts;
            async move {
                admin
                    .list_offsets(parts, spec, &mut RequestTally::default())
                    .await
                    .unwrap()
            }
        };
        assert_eq!(
            at(OffsetSpec::Earliest).await,
            BTreeMap::from([(tp("trips", 0), Some(1)), (tp("trips", 1), Some(0))])
        );
        assert_eq!(
            at(OffsetSpec::Latest).await,
            BTreeMap::from([(tp("trips", 0), Some(4)), (tp("trips", 1), Some(1))])
        );
        // The record at offset 0 (timestamp 10) is gone: the first retained one at or after 5.
        assert_eq!(
            at(OffsetSpec::Timestamp(5)).await,
            BTreeMap::from([(tp("trips", 0), Some(1)), (tp("trips", 1), Some(0))])
        );
        assert_eq!(
            at(OffsetSpec::Timestamp(25)).await,
            BTreeMap::from([(tp("trips", 0), Some(2)), (tp("trips", 1), None)])
        );
        let unknown = admin.describe_group("g", &mut t).await.unwrap();
        assert_eq!((unknown.state.as_str(), unknown.is_empty()), ("Dead", true));
        admin.set_members(
            "g",
            vec![Member {
                member_id: "m".into(),
                client_id: "c".into(),
                host: "/10.0.0.1".into(),
                assignment: parts.to_vec(),
            }],
        );
        let err = admin
            .alter_offsets("g", &[(tp("trips", 0), 2)], &mut t)
            .await
            .unwrap_err();
        assert!(matches!(err, BrokerError::Rejected { .. }), "{err}");
        admin.set_members("g", Vec::new());
        let out = admin
            .alter_offsets("g", &[(tp("trips", 0), 2), (tp("nope", 0), 1)], &mut t)
            .await
            .unwrap();
        assert!(out[0].result.is_ok());
        assert_eq!(
            out[1].result.as_ref().unwrap_err().code,
            "UnknownTopicOrPartition"
        );
        assert_eq!(admin.commits("g"), BTreeMap::from([(tp("trips", 0), 2)]));
        assert_eq!(admin.alter_calls(), 2);
        assert_eq!(
            admin.delete_group("g", &mut t).await.unwrap(),
            GroupDeletion::Deleted
        );
        assert_eq!(
            admin.delete_group("g", &mut t).await.unwrap(),
            GroupDeletion::NotFound
        );
        admin.fail(
            "DescribeGroups",
            Some(BrokerError::Unsupported {
                api: "DescribeGroups",
                message: "no".into(),
            }),
        );
        assert!(admin.describe_group("g", &mut t).await.is_err());
        assert_eq!(t.total(), 6);
    }
}
