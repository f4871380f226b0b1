//! [`GroupAdmin`] over librdkafka's admin C API (`DescribeConsumerGroups`, `DescribeTopics`,
//! `ListConsumerGroupOffsets`, `ListOffsets`, `AlterConsumerGroupOffsets`, `DeleteGroups`),
//! which rdkafka 0.39 has no safe wrapper for. The results of `DescribeTopics`, `ListOffsets`
//! and `ListConsumerGroupOffsets` are decoded by the lag pass's decoders.
//!
//! Safety: every librdkafka object created by a call is owned by a guard of
//! [`crate::kafka::ffi`]; the client handle outlives every call because the blocking task holds
//! the client for its whole duration.

use std::collections::BTreeMap;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use super::{
    GroupAdmin, GroupDeletion, GroupDescription, Member, OffsetSpec, PartitionOutcome,
    TopicPartition, TopicPartitions,
};
use crate::kafka::ffi::{
    call_error, cstring, is_unsupported, rejection, text, Client, Event, Handle, Options,
    PartitionList, Queue, Requests, TopicCollection, NO_ERROR,
};
use crate::kafka::lag::native::pass::diagnose_unanswered;
use crate::kafka::lag::native::results::{committed_offsets, list_offsets, topic_descriptions};
use crate::kafka::lag::TopicState;
use crate::kafka::{BrokerError, ClientSettings, Rejection, RequestTally};

/// Consumer-group offsets on one cluster, through librdkafka.
pub struct RdKafkaGroupAdmin {
    client: Arc<Client>,
}

impl RdKafkaGroupAdmin {
    /// Builds a client of its own from the cluster's settings (to share an admin's client, see
    /// [`crate::kafka::RdKafkaAdmin::group_admin`]). Nothing is contacted until the first call.
    pub fn connect(settings: &ClientSettings) -> Result<Self, BrokerError> {
        Ok(Self::with_client(Client::connect(
            settings,
            "tributary-offsets",
        )?))
    }

    pub(in crate::kafka) fn with_client(client: Arc<Client>) -> Self {
        Self { client }
    }

    /// Runs one native call of `api` off the async runtime, counted as one request.
    async fn call<T: Send + 'static>(
        &self,
        api: &'static str,
        requests: &mut RequestTally,
        f: impl FnOnce(Handle, Duration) -> Result<T, BrokerError> + Send + 'static,
    ) -> Result<T, BrokerError> {
        self.client.drain();
        requests.sent(api, 1);
        let result = self
            .client
            .blocking("offsets call", move |c| f(c.handle(), c.timeout()))
            .await?;
        requests.answered(api, 1, result.as_ref().map(|_| ()));
        result.map_err(|e| self.client.explain(e))
    }
}

/// Waits for the one result event of a call submitted on `queue`, failing with its own error.
unsafe fn wait(queue: &Queue, api: &'static str, timeout: Duration) -> Result<Event, BrokerError> {
    let event = queue.poll(
        Instant::now() + timeout + Duration::from_secs(2),
        api,
        timeout,
    )?;
    event.check(api)?;
    Ok(event)
}

/// An error object's code and text, or `None` when it is no error.
unsafe fn error_of(error: *const rd::rd_kafka_error_t) -> Option<(RDKafkaErrorCode, String)> {
    if error.is_null() || rd::rd_kafka_error_code(error) == NO_ERROR {
        return None;
    }
    Some((
        rd::rd_kafka_error_code(error).into(),
        text(rd::rd_kafka_error_string(error)),
    ))
}

fn refused_partition(api: &'static str, (topic, p): &TopicPartition, r: &Rejection) -> BrokerError {
    if r.unsupported {
        return BrokerError::Unsupported {
            api,
            message: format!("{topic}/{p}: {}", r.message),
        };
    }
    BrokerError::Rejected {
        api,
        code: r.code.clone(),
        message: format!("{topic}/{p}: {}", r.message),
    }
}

unsafe fn partitions_of(list: *const rd::rd_kafka_topic_partition_list_t) -> Vec<TopicPartition> {
    if list.is_null() {
        return Vec::new();
    }
    (0..(*list).cnt.max(0) as usize)
        .map(|j| {
            let tp = &*(*list).elems.add(j);
            (text(tp.topic), tp.partition)
        })
        .collect()
}

fn describe(
    handle: Handle,
    timeout: Duration,
    group: &str,
) -> Result<GroupDescription, BrokerError> {
    let api = "DescribeGroups";
    // SAFETY: every librdkafka object is owned by a guard; the handle outlives the call.
    unsafe {
        let queue = Queue::new(handle);
        let options = Options::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
            timeout,
            false,
        )?;
        let name = cstring(group)?;
        let mut names = [name.as_ptr()];
        rd::rd_kafka_DescribeConsumerGroups(
            handle.0,
            names.as_mut_ptr(),
            1,
            options.ptr(),
            queue.ptr(),
        );
        let event = wait(&queue, api, timeout)?;
        let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.ptr());
        let mut count = 0;
        let groups = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
        for i in 0..count {
            let g = *groups.add(i);
            if text(rd::rd_kafka_ConsumerGroupDescription_group_id(g)) != group {
                continue;
            }
            if let Some((code, message)) = error_of(rd::rd_kafka_ConsumerGroupDescription_error(g))
            {
                if code == RDKafkaErrorCode::GroupIdNotFound {
                    break;
                }
                return Err(call_error(api, code, message));
            }
            let state = text(rd::rd_kafka_consumer_group_state_name(
                rd::rd_kafka_ConsumerGroupDescription_state(g),
            ));
            let members = (0..rd::rd_kafka_ConsumerGroupDescription_member_count(g))
                .map(|j| {
                    let m = rd::rd_kafka_ConsumerGroupDescription_member(g, j);
                    let assignment = rd::rd_kafka_MemberDescription_assignment(m);
                    Member {
                        member_id: text(rd::rd_kafka_MemberDescription_consumer_id(m)),
                        client_id: text(rd::rd_kafka_MemberDescription_client_id(m)),
                        host: text(rd::rd_kafka_MemberDescription_host(m)),
                        assignment: if assignment.is_null() {
                            Vec::new()
                        } else {
                            partitions_of(rd::rd_kafka_MemberAssignment_partitions(assignment))
                        },
                    }
                })
                .collect();
            return Ok(GroupDescription {
                group_id: group.to_owned(),
                state,
                members,
            });
        }
        Ok(GroupDescription {
            group_id: group.to_owned(),
            state: "Dead".to_owned(),
            members: Vec::new(),
        })
    }
}

fn topics(
    handle: Handle,
    timeout: Duration,
    names: &[String],
) -> Result<TopicPartitions, BrokerError> {
    let api = "Metadata";
    // SAFETY: as in `describe`.
    unsafe {
        let queue = Queue::new(handle);
        let options = Options::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBETOPICS,
            timeout,
            false,
        )?;
        let cnames = names
            .iter()
            .map(|t| cstring(t))
            .collect::<Result<Vec<_>, _>>()?;
        let collection = TopicCollection::of_names(&cnames);
        rd::rd_kafka_DescribeTopics(handle.0, collection.ptr(), options.ptr(), queue.ptr());
        drop(collection);
        let event = wait(&queue, api, timeout)?;
        let states = topic_descriptions(&event, &mut BTreeMap::new())?;
        let mut out = BTreeMap::new();
        for name in names {
            let partitions = match states.get(name) {
                Some(TopicState::Partitions(ps)) => Some(ps.clone()),
                Some(TopicState::Failed(r)) => {
                    return Err(BrokerError::Rejected {
                        api,
                        code: r.code.clone(),
                        message: format!("topic {name}: {}", r.message),
                    })
                }
                Some(TopicState::Missing) | None => None,
            };
            out.insert(name.clone(), partitions);
        }
        Ok(out)
    }
}

fn committed(
    handle: Handle,
    timeout: Duration,
    group: &str,
    partitions: Option<&[TopicPartition]>,
) -> Result<BTreeMap<TopicPartition, i64>, BrokerError> {
    let api = "OffsetFetch";
    // SAFETY: as in `describe`.
    unsafe {
        let queue = Queue::new(handle);
        let options = Options::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
            timeout,
            false,
        )?;
        let list = partitions
            .map(|ps| PartitionList::new(ps, rd::RD_KAFKA_OFFSET_INVALID as i64))
            .transpose()?;
        let name = cstring(group)?;
        let mut request = Requests::new(rd::rd_kafka_ListConsumerGroupOffsets_destroy_array);
        request.push(rd::rd_kafka_ListConsumerGroupOffsets_new(
            name.as_ptr(),
            list.as_ref().map_or(ptr::null(), |l| l.ptr()),
        ));
        rd::rd_kafka_ListConsumerGroupOffsets(
            handle.0,
            request.as_mut_ptr(),
            request.len(),
            options.ptr(),
            queue.ptr(),
        );
        let event = wait(&queue, api, timeout)?;
        let commits = committed_offsets(&event)?.map_err(|r| BrokerError::Rejected {
            api,
            code: r.code.clone(),
            message: format!("group {group}: {}", r.message),
        })?;
        let mut out = BTreeMap::new();
        for (tp, value) in commits {
            match value {
                Ok(Some(offset)) => {
                    out.insert(tp, offset);
                }
                Ok(None) => {}
                Err(r) => return Err(refused_partition(api, &tp, &r)),
            }
        }
        Ok(out)
    }
}

fn offsets(
    handle: Handle,
    timeout: Duration,
    partitions: &[TopicPartition],
    spec: OffsetSpec,
) -> Result<BTreeMap<TopicPartition, Option<i64>>, BrokerError> {
    let api = "ListOffsets";
    let value = match spec {
        OffsetSpec::Earliest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_EARLIEST as i64,
        OffsetSpec::Latest => rd::rd_kafka_OffsetSpec_t::RD_KAFKA_OFFSET_SPEC_LATEST as i64,
        OffsetSpec::Timestamp(ms) => ms.max(0),
    };
    // SAFETY: as in `describe`.
    unsafe {
        let queue = Queue::new(handle);
        let options = Options::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
            timeout,
            false,
        )?;
        let list = PartitionList::new(partitions, value)?;
        rd::rd_kafka_ListOffsets(handle.0, list.ptr(), options.ptr(), queue.ptr());
        let event = wait(&queue, api, timeout)?;
        let stamps = result_timestamps(&event);
        let mut out = BTreeMap::new();
        for (tp, offset) in list_offsets(&event)? {
            let offset = match offset {
                Err(r) => return Err(refused_partition(api, &tp, &r)),
                // A timestamp later than every record: Kafka answers -1.
                Ok(-1) if matches!(spec, OffsetSpec::Timestamp(_)) => None,
                // librdkafka 2.12 reports a failed sub-request as offset -1001 without its
                // error: asked again for the cause (see the lag pass).
                Ok(o) if o < 0 => {
                    let why = diagnose_unanswered(handle, timeout, &tp.0, tp.1)?;
                    return Err(refused_partition(api, &tp, &why));
                }
                Ok(o) => {
                    if let OffsetSpec::Timestamp(ms) = spec {
                        check_lookup(&tp, ms, o, stamps.get(&tp).copied())?;
                    }
                    Some(o)
                }
            };
            out.insert(tp, offset);
        }
        for tp in partitions {
            if !out.contains_key(tp) {
                return Err(BrokerError::Rejected {
                    api,
                    code: "Missing".into(),
                    message: format!("{}/{}: the broker returned no offset", tp.0, tp.1),
                });
            }
        }
        Ok(out)
    }
}

/// The record timestamp of each partition of a `ListOffsets` result (-1: none).
unsafe fn result_timestamps(event: &Event) -> BTreeMap<TopicPartition, i64> {
    let result = rd::rd_kafka_event_ListOffsets_result(event.ptr());
    let mut count = 0;
    let infos = rd::rd_kafka_ListOffsets_result_infos(result, &mut count);
    (0..count)
        .map(|i| {
            let info = *infos.add(i);
            let tp = &*rd::rd_kafka_ListOffsetsResultInfo_topic_partition(info);
            (
                (text(tp.topic), tp.partition),
                rd::rd_kafka_ListOffsetsResultInfo_timestamp(info),
            )
        })
        .collect()
}

/// A lookup by timestamp must answer with a record at or after it (Kafka returns the found
/// record's timestamp with its offset). A broker that answers with an earlier record, or with
/// no timestamp (-1), does not implement the lookup faithfully: that is reported as
/// `Unsupported`, never used — a reset there would replay from the wrong place.
fn check_lookup(
    (topic, p): &TopicPartition,
    wanted: i64,
    offset: i64,
    stamp: Option<i64>,
) -> Result<(), BrokerError> {
    match stamp {
        Some(found) if found >= wanted => Ok(()),
        found => Err(BrokerError::Unsupported {
            api: "ListOffsets",
            message: format!(
                "the lookup by timestamp {wanted} on {topic}/{p} answered offset {offset} with record timestamp {}: the broker does not implement ListOffsets by timestamp",
                found.unwrap_or(-1)
            ),
        }),
    }
}

/// The one group result of a group call's event.
unsafe fn group_result(
    groups: *mut *const rd::rd_kafka_group_result_t,
    count: usize,
) -> Option<*const rd::rd_kafka_group_result_t> {
    (count > 0).then(|| *groups)
}

fn alter(
    handle: Handle,
    timeout: Duration,
    group: &str,
    offsets: &[(TopicPartition, i64)],
) -> Result<Vec<PartitionOutcome>, BrokerError> {
    let api = "OffsetCommit";
    // SAFETY: as in `describe`.
    unsafe {
        let queue = Queue::new(handle);
        let options = Options::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
            timeout,
            false,
        )?;
        let list = PartitionList::with_offsets(offsets)?;
        let name = cstring(group)?;
        let mut request = Requests::new(rd::rd_kafka_AlterConsumerGroupOffsets_destroy_array);
        request.push(rd::rd_kafka_AlterConsumerGroupOffsets_new(
            name.as_ptr(),
            list.ptr(),
        ));
        rd::rd_kafka_AlterConsumerGroupOffsets(
            handle.0,
            request.as_mut_ptr(),
            request.len(),
            options.ptr(),
            queue.ptr(),
        );
        let event = wait(&queue, api, timeout)?;
        let result = rd::rd_kafka_event_AlterConsumerGroupOffsets_result(event.ptr());
        let mut count = 0;
        let groups = rd::rd_kafka_AlterConsumerGroupOffsets_result_groups(result, &mut count);
        let Some(g) = group_result(groups, count) else {
            return Err(BrokerError::Rejected {
                api,
                code: "Missing".into(),
                message: format!("group {group}: the broker returned no result"),
            });
        };
        if let Some((code, message)) = error_of(rd::rd_kafka_group_result_error(g)) {
            return Err(call_error(api, code, format!("group {group}: {message}")));
        }
        let list = rd::rd_kafka_group_result_partitions(g);
        let mut out = Vec::new();
        if !list.is_null() {
            for j in 0..(*list).cnt.max(0) as usize {
                let tp = &*(*list).elems.add(j);
                let result = if tp.err == NO_ERROR {
                    Ok(())
                } else {
                    let code: RDKafkaErrorCode = tp.err.into();
                    if is_unsupported(code) {
                        return Err(BrokerError::Unsupported {
                            api,
                            message: text(rd::rd_kafka_err2str(tp.err)),
                        });
                    }
                    Err(rejection(code, text(rd::rd_kafka_err2str(tp.err))))
                };
                out.push(PartitionOutcome {
                    topic: text(tp.topic),
                    partition: tp.partition,
                    result,
                });
            }
        }
        Ok(out)
    }
}

fn delete(handle: Handle, timeout: Duration, group: &str) -> Result<GroupDeletion, BrokerError> {
    let api = "DeleteGroups";
    // SAFETY: as in `describe`.
    unsafe {
        let queue = Queue::new(handle);
        let options = Options::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETEGROUPS,
            timeout,
            false,
        )?;
        let name = cstring(group)?;
        let mut request = Requests::new(rd::rd_kafka_DeleteGroup_destroy_array);
        request.push(rd::rd_kafka_DeleteGroup_new(name.as_ptr()));
        rd::rd_kafka_DeleteGroups(
            handle.0,
            request.as_mut_ptr(),
            request.len(),
            options.ptr(),
            queue.ptr(),
        );
        let event = wait(&queue, api, timeout)?;
        let result = rd::rd_kafka_event_DeleteGroups_result(event.ptr());
        let mut count = 0;
        let groups = rd::rd_kafka_DeleteGroups_result_groups(result, &mut count);
        let Some(g) = group_result(groups, count) else {
            return Err(BrokerError::Rejected {
                api,
                code: "Missing".into(),
                message: format!("group {group}: the broker returned no result"),
            });
        };
        match error_of(rd::rd_kafka_group_result_error(g)) {
            None => Ok(GroupDeletion::Deleted),
            Some((RDKafkaErrorCode::GroupIdNotFound, _)) => Ok(GroupDeletion::NotFound),
            Some((code, message)) => {
                Err(call_error(api, code, format!("group {group}: {message}")))
            }
        }
    }
}

impl GroupAdmin for RdKafkaGroupAdmin {
    fn describe_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDescription, BrokerError>> {
        let group = group.to_owned();
        self.call("DescribeGroups", requests, move |h, t| {
            describe(h, t, &group)
        })
        .boxed()
    }

    fn topic_partitions<'a>(
        &'a self,
        names: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<TopicPartitions, BrokerError>> {
        async move {
            if names.is_empty() {
                return Ok(BTreeMap::new());
            }
            let names = names.to_vec();
            self.call("Metadata", requests, move |h, t| topics(h, t, &names))
                .await
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
            let group = group.to_owned();
            let partitions = partitions.map(<[_]>::to_vec);
            self.call("OffsetFetch", requests, move |h, t| {
                committed(h, t, &group, partitions.as_deref())
            })
            .await
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
            let partitions = partitions.to_vec();
            // librdkafka sends one ListOffsets per partition leader; counted as one request
            // (a single-broker cluster's count).
            self.call("ListOffsets", requests, move |h, t| {
                offsets(h, t, &partitions, spec)
            })
            .await
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
            let group = group.to_owned();
            let offsets = offsets.to_vec();
            self.call("OffsetCommit", requests, move |h, t| {
                alter(h, t, &group, &offsets)
            })
            .await
        }
        .boxed()
    }

    fn delete_group<'a>(
        &'a self,
        group: &'a str,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<GroupDeletion, BrokerError>> {
        let group = group.to_owned();
        self.call("DeleteGroups", requests, move |h, t| delete(h, t, &group))
            .boxed()
    }
}
