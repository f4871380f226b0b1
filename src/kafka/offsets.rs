//! A consumer group's offsets, read and written: what resetting or replaying a group needs of
//! the broker, knowing no kind.
//!
//! * [`GroupAdmin::describe_group`]: the group's state and members (`DescribeConsumerGroups`);
//! * [`GroupAdmin::topic_partitions`]: the partitions of topics (`DescribeTopics`, a Metadata
//!   request);
//! * [`GroupAdmin::committed`]: the group's committed offsets (`ListConsumerGroupOffsets`, an
//!   OffsetFetch), on the partitions named or on every partition it committed on;
//! * [`GroupAdmin::list_offsets`]: the earliest, the latest, or the first offset at or after a
//!   timestamp of each partition (`ListOffsets`);
//! * [`GroupAdmin::alter_offsets`]: new committed offsets for the group, every partition in one
//!   `AlterConsumerGroupOffsets` (an OffsetCommit); the broker refuses it while the group has
//!   members;
//! * [`GroupAdmin::delete_group`]: `DeleteGroups` for one group (refused while it has members).
//!
//! Every call adds its requests to a [`RequestTally`]. What the broker cannot do is
//! [`BrokerError::Unsupported`] naming the API, never a silent skip. The librdkafka
//! implementation ([`RdKafkaGroupAdmin`]) shares its decoders of `ListOffsets`,
//! `ListConsumerGroupOffsets` and `DescribeTopics` results with the lag pass
//! ([`super::lag`]); [`MemoryGroupAdmin`] is an in-memory double for tests.

#[cfg(any(test, feature = "test-util"))]
mod memory;
mod native;

use std::collections::BTreeMap;

use futures::future::BoxFuture;

use super::{BrokerError, Rejection, RequestTally};

#[cfg(any(test, feature = "test-util"))]
pub use memory::MemoryGroupAdmin;
pub use native::RdKafkaGroupAdmin;

/// A partition: `(topic, partition)`.
pub type TopicPartition = (String, i32);

/// topic → its partition ids, ascending (`None`: the broker does not know the topic).
pub type TopicPartitions = BTreeMap<String, Option<Vec<i32>>>;

/// Which offset of each partition [`GroupAdmin::list_offsets`] looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OffsetSpec {
    /// The log start offset: the oldest retained record.
    Earliest,
    /// The log end offset: the offset the next record will get.
    Latest,
    /// The offset of the first record whose timestamp is at or after this many milliseconds
    /// since the Unix epoch.
    Timestamp(i64),
}

/// One member of a consumer group, as the group coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member id the coordinator gave it.
    pub member_id: String,
    /// The `client.id` the consumer set.
    pub client_id: String,
    /// The host it connected from, as the broker saw it.
    pub host: String,
    /// The partitions assigned to it.
    pub assignment: Vec<TopicPartition>,
}

/// A consumer group as the coordinator describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    pub group_id: String,
    /// The state as the broker names it (`Stable`, `Empty`, `PreparingRebalance`, `Dead`, ...);
    /// `Dead` for a group the broker does not know (Kafka; Tansu 0.6 says `Empty`).
    pub state: String,
    pub members: Vec<Member>,
}

impl GroupDescription {
    /// No consumer is in the group: no member, and a state that has none (`Empty`, `Dead`).
    /// A `Stable` or rebalancing group counts as busy even when the broker lists no member
    /// (Tansu 0.6 describes a joined group as `Stable` without its members).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && matches!(self.state.as_str(), "Empty" | "Dead")
    }
}

/// The outcome for one partition of [`GroupAdmin::alter_offsets`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionOutcome {
    pub topic: String,
    pub partition: i32,
    pub result: Result<(), Rejection>,
}

/// What [`GroupAdmin::delete_group`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupDeletion {
    Deleted,
    /// The broker did not know the group: nothing to delete.
    NotFound,
}

/// Reads and writes consumer-group offsets on one cluster. Each call is one broker request
/// (librdkafka adds a FindCoordinator before a group request when the coordinator is not
/// cached).
pub trait GroupAdmin: Send + Sync {
    /// The group's state and members.
    fn describe_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDescription, BrokerError>>;

    /// The partition ids (ascending) of each topic; `None` for a topic the broker does not
    /// know.
    fn topic_partitions<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<TopicPartitions, BrokerError>>;

    /// The group's committed offsets on `partitions` (`None`: every partition it committed on);
    /// a partition it never committed on is absent.
    fn committed<'a>(
        &'a self,
        group: &'a str,
        partitions: Option<&'a [TopicPartition]>,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>, BrokerError>>;

    /// The offset `spec` names on each partition; `None` for a timestamp later than every
    /// record of the partition (a consumer starting there reads from the end). A partition the
    /// broker refuses fails the call, naming it.
    fn list_offsets<'a>(
        &'a self,
        partitions: &'a [TopicPartition],
        spec: OffsetSpec,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, Option<i64>>, BrokerError>>;

    /// Commits `offsets` for the group, all in one request; the result of each partition.
    fn alter_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: &'a [(TopicPartition, i64)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<PartitionOutcome>, BrokerError>>;

    /// Deletes the group (its committed offsets with it). A group with members is refused by
    /// the broker (`NonEmptyGroup`).
    fn delete_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDeletion, BrokerError>>;
}

impl<T: GroupAdmin + ?Sized> GroupAdmin for std::sync::Arc<T> {
    fn describe_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDescription, BrokerError>> {
        (**self).describe_group(group, requests)
    }
    fn topic_partitions<'a>(
        &'a self,
        topics: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<TopicPartitions, BrokerError>> {
        (**self).topic_partitions(topics, requests)
    }
    fn committed<'a>(
        &'a self,
        group: &'a str,
        partitions: Option<&'a [TopicPartition]>,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, i64>, BrokerError>> {
        (**self).committed(group, partitions, requests)
    }
    fn list_offsets<'a>(
        &'a self,
        partitions: &'a [TopicPartition],
        spec: OffsetSpec,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<BTreeMap<TopicPartition, Option<i64>>, BrokerError>> {
        (**self).list_offsets(partitions, spec, requests)
    }
    fn alter_offsets<'a>(
        &'a self,
        group: &'a str,
        offsets: &'a [(TopicPartition, i64)],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<PartitionOutcome>, BrokerError>> {
        (**self).alter_offsets(group, offsets, requests)
    }
    fn delete_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDeletion, BrokerError>> {
        (**self).delete_group(group, requests)
    }
}
