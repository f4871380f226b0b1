//! One blocking lag pass in two rounds: round one ([`round_one`]: one `DescribeTopics` for
//! every topic), then round two ([`round_two`]: `ListOffsets` end and start and — on the
//! per-group path only — one `ListConsumerGroupOffsets` per group and optionally
//! `DescribeConsumerGroups`) submitted at once on one private queue and awaited together.
//! Every request is added to the pass's [`RequestTally`] when sent and when answered; the
//! per-group requests under their own labels ([`PER_GROUP_OFFSET_FETCH`],
//! [`PER_GROUP_DESCRIBE_GROUPS`]), so the fallback shows in the metrics.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::c_char;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use super::results::{
    committed_offsets, describe_groups, list_offsets, rejection_of, topic_descriptions,
};
use crate::kafka::ffi::{
    cstring, is_unsupported, millis, rejection, Handle, Options, PartitionList, Queue, Requests,
    TopicCollection, NO_ERROR,
};
use crate::kafka::lag::batched::{PER_GROUP_DESCRIBE_GROUPS, PER_GROUP_OFFSET_FETCH};
use crate::kafka::lag::{group_ids, group_partitions, topics_of, Facts, GroupQuery, TopicState};
use crate::kafka::{BrokerError, Rejection, RequestTally};

/// Tags of the result events of round two (the event's opaque): which call it answers.
const TAG_END: usize = 1;
const TAG_START: usize = 2;
const TAG_MEMBERS: usize = 3;
/// Committed offsets of group `i` carry `TAG_GROUP_BASE + i`.
const TAG_GROUP_BASE: usize = 16;

/// The leader broker of each partition of round one.
pub(super) type Leaders = BTreeMap<(String, i32), i32>;

/// The tally label of a request of round two.
fn label(api: &'static str) -> &'static str {
    match api {
        "OffsetFetch" => PER_GROUP_OFFSET_FETCH,
        "DescribeGroups" => PER_GROUP_DESCRIBE_GROUPS,
        other => other,
    }
}

/// Round one over `queries`: the topics' states (in the returned facts) and the partitions'
/// leaders.
pub(super) fn round_one(
    handle: Handle,
    timeout: Duration,
    queries: &[GroupQuery],
    requests: &mut RequestTally,
) -> Result<(Facts, Leaders), BrokerError> {
    let mut facts = Facts::default();
    let topics = topics_of(queries);
    let mut leaders = Leaders::new();
    if topics.is_empty() {
        return Ok((facts, leaders));
    }
    // SAFETY: every librdkafka object is owned by a guard; the handle outlives the pass.
    unsafe {
        let queue = Queue::new(handle);
        requests.sent("Metadata", 1);
        facts.topics = describe_topics(handle, &queue, timeout, &topics, &mut leaders)?;
        requests.answered("Metadata", 1, Ok(()));
    }
    Ok((facts, leaders))
}

/// Where round two gets the groups' committed offsets and members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Groups {
    /// Not here: the batched requests fetch them.
    Elsewhere,
    /// Through librdkafka, one request per group; the members too when `members`.
    PerGroup { members: bool },
}

/// Round two over `queries`, after round one's `facts` and `leaders`: the log start and end
/// offsets, and the groups' as `groups` says.
pub(super) fn round_two(
    handle: Handle,
    timeout: Duration,
    queries: &[GroupQuery],
    (mut facts, leaders): (Facts, Leaders),
    groups: Groups,
    requests: &mut RequestTally,
) -> Result<Facts, BrokerError> {
    let (ids, members) = match groups {
        Groups::PerGroup { members } => (group_ids(queries), members),
        Groups::Elsewhere => (Vec::new(), false),
    };
    // SAFETY: every librdkafka object is owned by a guard; the handle outlives the pass.
    unsafe {
        let queue = Queue::new(handle);

        // Round two: everything else at once.
        let partitions: Vec<(String, i32)> = leaders.keys().cloned().collect();
        let mut outstanding: BTreeMap<usize, &'static str> = BTreeMap::new();
        let brokers = leaders.values().collect::<BTreeSet<_>>().len().max(1) as u64;
        if !partitions.is_empty() {
            let options = Options::new(
                handle,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
                timeout,
                false,
            )?;
            for (tag, spec) in [
                (
                    TAG_END,
                    rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST,
                ),
                (
                    TAG_START,
                    rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_EARLIEST,
                ),
            ] {
                let list = PartitionList::new(&partitions, spec as i64)?;
                options.set_opaque(tag);
                requests.sent("ListOffsets", brokers);
                rd::rd_kafka_ListOffsets(handle.0, list.ptr(), options.ptr(), queue.ptr());
                outstanding.insert(tag, "ListOffsets");
            }
        }
        let group_parts = group_partitions(queries, &facts.topics);
        {
            let options = Options::new(
                handle,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                timeout,
                false,
            )?;
            for (i, id) in ids.iter().enumerate() {
                let Some(parts) = group_parts.get(id).filter(|p| !p.is_empty()) else {
                    continue;
                };
                let list = PartitionList::new(parts, rd::RD_KAFKA_OFFSET_INVALID as i64)?;
                let group = cstring(id)?;
                let mut request =
                    Requests::new(rd::rd_kafka_ListConsumerGroupOffsets_destroy_array);
                request.push(rd::rd_kafka_ListConsumerGroupOffsets_new(
                    group.as_ptr(),
                    list.ptr(),
                ));
                let tag = TAG_GROUP_BASE + i;
                options.set_opaque(tag);
                requests.sent(label("OffsetFetch"), 1);
                rd::rd_kafka_ListConsumerGroupOffsets(
                    handle.0,
                    request.as_mut_ptr(),
                    request.len(),
                    options.ptr(),
                    queue.ptr(),
                );
                outstanding.insert(tag, "OffsetFetch");
            }
        }
        if members && !ids.is_empty() {
            let options = Options::new(
                handle,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                timeout,
                false,
            )?;
            let names = ids
                .iter()
                .map(|g| cstring(g))
                .collect::<Result<Vec<_>, _>>()?;
            let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
            options.set_opaque(TAG_MEMBERS);
            requests.sent(label("DescribeGroups"), ids.len() as u64);
            rd::rd_kafka_DescribeConsumerGroups(
                handle.0,
                ptrs.as_mut_ptr(),
                ptrs.len(),
                options.ptr(),
                queue.ptr(),
            );
            outstanding.insert(TAG_MEMBERS, "DescribeGroups");
        }

        let deadline = Instant::now() + timeout + Duration::from_secs(2);
        while let Some(waiting) = outstanding.values().next().copied() {
            let event = queue.poll(deadline, waiting, timeout)?;
            let tag = event.opaque();
            let Some(api) = outstanding.remove(&tag) else {
                continue;
            };
            match tag {
                TAG_END | TAG_START => {
                    event.check(api)?;
                    let mut offsets = list_offsets(&event)?;
                    let unanswered = offsets
                        .iter()
                        .find(|(_, v)| matches!(v, Ok(o) if *o < 0))
                        .map(|(k, _)| k.clone());
                    if let Some((topic, partition)) = unanswered {
                        requests.sent("ListOffsets", 2);
                        let why = diagnose_unanswered(handle, timeout, &topic, partition)?;
                        let failed = BrokerError::Rejected {
                            api,
                            code: why.code.clone(),
                            message: why.message.clone(),
                        };
                        requests.answered(api, brokers, Err(&failed));
                        for v in offsets.values_mut() {
                            if matches!(v, Ok(o) if *o < 0) {
                                *v = Err(why.clone());
                            }
                        }
                    } else {
                        requests.answered(api, brokers, Ok(()));
                    }
                    if tag == TAG_END {
                        facts.ends = offsets;
                    } else {
                        facts.starts = offsets;
                    }
                }
                TAG_MEMBERS => {
                    event.check(api)?;
                    facts.members = describe_groups(&event)?;
                    requests.answered(label(api), ids.len() as u64, Ok(()));
                }
                _ => {
                    let id = &ids[tag - TAG_GROUP_BASE];
                    let error = event.error(api);
                    requests.answered(label(api), 1, error.as_ref().map_or(Ok(()), Err));
                    let commits = match error {
                        Some(e @ BrokerError::Unsupported { .. }) => return Err(e),
                        Some(e) => Err(rejection_of(&e)),
                        None => committed_offsets(&event)?,
                    };
                    facts.commits.insert(id.clone(), commits);
                }
            }
        }
    }
    Ok(facts)
}

/// `DescribeTopics`: each topic's state; the leader of each partition goes to `leaders`.
unsafe fn describe_topics(
    handle: Handle,
    queue: &Queue,
    timeout: Duration,
    topics: &[String],
    leaders: &mut BTreeMap<(String, i32), i32>,
) -> Result<BTreeMap<String, TopicState>, BrokerError> {
    let api = "Metadata";
    let options = Options::new(
        handle,
        rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
        timeout,
        false,
    )?;
    let names = topics
        .iter()
        .map(|t| cstring(t))
        .collect::<Result<Vec<_>, _>>()?;
    let collection = TopicCollection::of_names(&names);
    rd::rd_kafka_DescribeTopics(handle.0, collection.ptr(), options.ptr(), queue.ptr());
    drop(collection);
    let event = queue.poll(
        Instant::now() + timeout + Duration::from_secs(2),
        api,
        timeout,
    )?;
    event.check(api)?;
    let mut out = topic_descriptions(&event, leaders)?;
    // A topic the broker left out of its answer is not known to it.
    for t in topics {
        out.entry(t.clone()).or_insert(TopicState::Missing);
    }
    Ok(out)
}

/// librdkafka 2.12 reports a `ListOffsets` sub-request that failed as a whole (the broker
/// lacks ListOffsets v0-7, the request timed out, the connection broke) as its partitions with
/// offset -1001 and no error at all: its fan-out merge drops the error. The cause is asked of
/// the legacy watermark query for one such partition, which reports it: a broker without the
/// API fails the pass with `Unsupported`; anything else fails those partitions with the text.
pub(in crate::kafka) unsafe fn diagnose_unanswered(
    handle: Handle,
    timeout: Duration,
    topic: &str,
    partition: i32,
) -> Result<Rejection, BrokerError> {
    let name = cstring(topic)?;
    let (mut low, mut high) = (0i64, 0i64);
    let code = rd::rd_kafka_query_watermark_offsets(
        handle.0,
        name.as_ptr(),
        partition,
        &mut low,
        &mut high,
        millis(timeout),
    );
    if code == NO_ERROR {
        return Ok(Rejection {
            code: "NoOffset".into(),
            message: format!(
                "ListOffsets returned no offset for {topic}/{partition}, though a retry did: transient"
            ),
            unsupported: false,
        });
    }
    let code: RDKafkaErrorCode = code.into();
    let message = format!("ListOffsets returned no offset for {topic}/{partition}: {code}");
    if is_unsupported(code) {
        return Err(BrokerError::Unsupported {
            api: "ListOffsets",
            message,
        });
    }
    Ok(rejection(code, message))
}
