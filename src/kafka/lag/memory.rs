//! An in-memory [`LagObserver`] for controller tests: topics with start and end offsets,
//! committed offsets per group, member counts, and an injectable failure of the whole pass.
//! Lag is computed by the same code as the librdkafka observer's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures::future::BoxFuture;
use futures::FutureExt;

use super::{
    assemble, group_ids, group_partitions, topics_of, Facts, GroupLag, GroupQuery, LagObserver,
    TopicState,
};
use crate::kafka::{BrokerError, RequestTally};

#[derive(Default)]
struct State {
    /// topic → `(start, end)` per partition.
    topics: BTreeMap<String, Vec<(i64, i64)>>,
    /// `(group, topic, partition)` → committed offset.
    commits: BTreeMap<(String, String, i32), i64>,
    members: BTreeMap<String, i32>,
    fail: Option<BrokerError>,
}

/// A fake cluster's consumer-group lag.
#[derive(Default)]
pub struct MemoryLagObserver {
    state: Mutex<State>,
    members: bool,
}

impl MemoryLagObserver {
    pub fn new() -> Self {
        Self::default()
    }

    /// Report member counts, as [`super::RdKafkaLagObserver::describe_members`].
    pub fn describe_members(mut self, yes: bool) -> Self {
        self.members = yes;
        self
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates (or grows) a topic to `partitions` empty partitions.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        let mut s = self.state();
        let t = s.topics.entry(topic.to_owned()).or_default();
        t.resize(partitions.max(0) as usize, (0, 0));
    }

    pub fn delete_topic(&self, topic: &str) {
        self.state().topics.remove(topic);
    }

    /// Appends `records` to a partition of an existing topic.
    pub fn produce(&self, topic: &str, partition: i32, records: i64) {
        if let Some(p) = self
            .state()
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(partition as usize))
        {
            p.1 += records;
        }
    }

    /// Retention: the partition now starts at `start`.
    pub fn truncate(&self, topic: &str, partition: i32, start: i64) {
        if let Some(p) = self
            .state()
            .topics
            .get_mut(topic)
            .and_then(|t| t.get_mut(partition as usize))
        {
            p.0 = start.min(p.1);
        }
    }

    pub fn commit(&self, group: &str, topic: &str, partition: i32, offset: i64) {
        self.state()
            .commits
            .insert((group.to_owned(), topic.to_owned(), partition), offset);
    }

    pub fn set_members(&self, group: &str, members: i32) {
        self.state().members.insert(group.to_owned(), members);
    }

    /// Every pass fails with this error until cleared with `None`.
    pub fn fail_with(&self, error: Option<BrokerError>) {
        self.state().fail = error;
    }
}

impl LagObserver for MemoryLagObserver {
    fn observe_tallied<'a>(
        &'a self,
        groups: &'a [GroupQuery],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>> {
        async move {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            let s = self.state();
            let mut facts = Facts::default();
            let topics = topics_of(groups);
            let mut partitions = 0;
            if !topics.is_empty() {
                requests.sent("Metadata", 1);
            }
            if let Some(e) = &s.fail {
                requests.finish(Err(e));
                return Err(e.clone());
            }
            requests.finish(Ok(()));
            for t in topics {
                let state = match s.topics.get(&t) {
                    None => TopicState::Missing,
                    Some(ps) => {
                        for (p, (start, end)) in ps.iter().enumerate() {
                            facts.starts.insert((t.clone(), p as i32), Ok(*start));
                            facts.ends.insert((t.clone(), p as i32), Ok(*end));
                            partitions += 1;
                        }
                        TopicState::Partitions((0..ps.len() as i32).collect())
                    }
                };
                facts.topics.insert(t, state);
            }
            if partitions > 0 {
                requests.request("ListOffsets", Ok(()));
                requests.request("ListOffsets", Ok(()));
            }
            for (group, parts) in group_partitions(groups, &facts.topics) {
                if parts.is_empty() {
                    continue;
                }
                requests.request("OffsetFetch", Ok(()));
                let commits = parts
                    .into_iter()
                    .map(|(t, p)| {
                        let c = s.commits.get(&(group.clone(), t.clone(), p)).copied();
                        ((t, p), Ok(c))
                    })
                    .collect();
                facts.commits.insert(group, Ok(commits));
            }
            if self.members {
                for id in group_ids(groups) {
                    requests.request("DescribeGroups", Ok(()));
                    let n = s.members.get(&id).copied().unwrap_or(0);
                    let state = if n > 0 { "Stable" } else { "Empty" };
                    facts.members.insert(id, Ok((n, state.to_owned())));
                }
            }
            Ok(groups
                .iter()
                .map(|q| assemble(q, &facts, self.members))
                .collect())
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::lag::OffsetReset;

    #[tokio::test]
    async fn lag_follows_produce_and_commit() {
        let fake = MemoryLagObserver::new().describe_members(true);
        fake.create_topic("orders", 2);
        fake.produce("orders", 0, 10);
        fake.produce("orders", 1, 5);
        fake.set_members("g", 2);
        let q = [GroupQuery::new(
            "g",
            &["orders", "absent"],
            OffsetReset::Earliest,
        )];
        let lag = fake.observe(&q).await.unwrap().remove(0).result.unwrap();
        assert_eq!(
            (lag.total, lag.partition_count, lag.members),
            (15, 2, Some(2))
        );
        assert_eq!(lag.missing_topics, ["absent"]);
        fake.commit("g", "orders", 0, 7);
        let lag = fake.observe(&q).await.unwrap().remove(0).result.unwrap();
        assert_eq!((lag.total, lag.partitions_with_lag), (8, 2));
        assert!(lag.has_committed);
        fake.fail_with(Some(BrokerError::Unreachable("down".into())));
        assert!(fake.observe(&q).await.is_err());
    }
}
