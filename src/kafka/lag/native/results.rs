//! Decoding the result events of a lag pass into its [`Facts`](crate::kafka::lag::Facts):
//! per-topic, per-partition and per-group errors become rejections of what they concern, and an
//! API the broker lacks fails the whole pass.

use std::collections::BTreeMap;

use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use crate::kafka::ffi::{is_unsupported, rejection, text, Event, NO_ERROR};
use crate::kafka::lag::{Commits, Members, Offsets, TopicState};
use crate::kafka::{BrokerError, Rejection};

/// The topics of a `DescribeTopics` result; the leader of each partition goes to `leaders`.
pub(in crate::kafka) unsafe fn topic_descriptions(
    event: &Event,
    leaders: &mut BTreeMap<(String, i32), i32>,
) -> Result<BTreeMap<String, TopicState>, BrokerError> {
    let api = "Metadata";
    let result = rd::rd_kafka_event_DescribeTopics_result(event.ptr());
    let mut count = 0;
    let descriptions = rd::rd_kafka_DescribeTopics_result_topics(result, &mut count);
    let mut out = BTreeMap::new();
    for i in 0..count {
        let d = *descriptions.add(i);
        if d.is_null() {
            continue;
        }
        let name = text(rd::rd_kafka_TopicDescription_name(d));
        let error = rd::rd_kafka_TopicDescription_error(d);
        let state = if !error.is_null() && rd::rd_kafka_error_code(error) != NO_ERROR {
            let code: RDKafkaErrorCode = rd::rd_kafka_error_code(error).into();
            match code {
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic => {
                    TopicState::Missing
                }
                RDKafkaErrorCode::UnsupportedVersion | RDKafkaErrorCode::UnsupportedFeature => {
                    return Err(BrokerError::Unsupported {
                        api,
                        message: format!(
                            "topic {name}: {}",
                            text(rd::rd_kafka_error_string(error))
                        ),
                    })
                }
                _ => TopicState::Failed(rejection(code, text(rd::rd_kafka_error_string(error)))),
            }
        } else {
            let mut n = 0;
            let infos = rd::rd_kafka_TopicDescription_partitions(d, &mut n);
            let mut ids = Vec::with_capacity(n);
            for j in 0..n {
                let info = *infos.add(j);
                let p = rd::rd_kafka_TopicPartitionInfo_partition(info);
                let leader = rd::rd_kafka_TopicPartitionInfo_leader(info);
                let leader = if leader.is_null() {
                    -1
                } else {
                    rd::rd_kafka_Node_id(leader)
                };
                leaders.insert((name.clone(), p), leader);
                ids.push(p);
            }
            ids.sort_unstable();
            TopicState::Partitions(ids)
        };
        out.insert(name, state);
    }
    Ok(out)
}

pub(in crate::kafka) unsafe fn list_offsets(event: &Event) -> Result<Offsets, BrokerError> {
    let result = rd::rd_kafka_event_ListOffsets_result(event.ptr());
    let mut count = 0;
    let infos = rd::rd_kafka_ListOffsets_result_infos(result, &mut count);
    let mut out = BTreeMap::new();
    for i in 0..count {
        let tp = rd::rd_kafka_ListOffsetsResultInfo_topic_partition(*infos.add(i));
        let tp = &*tp;
        let value = partition_value("ListOffsets", tp)?.map(|_| tp.offset);
        out.insert((text(tp.topic), tp.partition), value);
    }
    Ok(out)
}

pub(in crate::kafka) unsafe fn committed_offsets(event: &Event) -> Result<Commits, BrokerError> {
    let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.ptr());
    let mut count = 0;
    let groups = rd::rd_kafka_ListConsumerGroupOffsets_result_groups(result, &mut count);
    let mut out = BTreeMap::new();
    for i in 0..count {
        let g = *groups.add(i);
        let error = rd::rd_kafka_group_result_error(g);
        if !error.is_null() && rd::rd_kafka_error_code(error) != NO_ERROR {
            let code: RDKafkaErrorCode = rd::rd_kafka_error_code(error).into();
            let message = text(rd::rd_kafka_error_string(error));
            if is_unsupported(code) {
                return Err(BrokerError::Unsupported {
                    api: "OffsetFetch",
                    message,
                });
            }
            return Ok(Err(rejection(code, message)));
        }
        let list = rd::rd_kafka_group_result_partitions(g);
        if list.is_null() {
            continue;
        }
        for j in 0..(*list).cnt.max(0) as usize {
            let tp = &*(*list).elems.add(j);
            let value =
                partition_value("OffsetFetch", tp)?.map(|_| (tp.offset >= 0).then_some(tp.offset));
            out.insert((text(tp.topic), tp.partition), value);
        }
    }
    Ok(Ok(out))
}

pub(super) unsafe fn describe_groups(event: &Event) -> Result<Members, BrokerError> {
    let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.ptr());
    let mut count = 0;
    let groups = rd::rd_kafka_DescribeConsumerGroups_result_groups(result, &mut count);
    let mut out = BTreeMap::new();
    for i in 0..count {
        let g = *groups.add(i);
        let id = text(rd::rd_kafka_ConsumerGroupDescription_group_id(g));
        let error = rd::rd_kafka_ConsumerGroupDescription_error(g);
        let value = if !error.is_null() && rd::rd_kafka_error_code(error) != NO_ERROR {
            let code: RDKafkaErrorCode = rd::rd_kafka_error_code(error).into();
            let message = text(rd::rd_kafka_error_string(error));
            match code {
                RDKafkaErrorCode::GroupIdNotFound => Ok((0, "Dead".to_owned())),
                c if is_unsupported(c) => {
                    return Err(BrokerError::Unsupported {
                        api: "DescribeGroups",
                        message,
                    })
                }
                c => Err(rejection(c, message)),
            }
        } else {
            let members = rd::rd_kafka_ConsumerGroupDescription_member_count(g);
            let state = rd::rd_kafka_ConsumerGroupDescription_state(g);
            let state = text(rd::rd_kafka_consumer_group_state_name(state));
            Ok((i32::try_from(members).unwrap_or(i32::MAX), state))
        };
        out.insert(id, value);
    }
    Ok(out)
}

/// A partition's own error: `Ok(())`, a rejection for that partition, or — when the broker
/// lacks the API — the whole pass's error.
unsafe fn partition_value(
    api: &'static str,
    tp: &rd::rd_kafka_topic_partition_t,
) -> Result<Result<(), Rejection>, BrokerError> {
    if tp.err == NO_ERROR {
        return Ok(Ok(()));
    }
    let code: RDKafkaErrorCode = tp.err.into();
    let message = text(rd::rd_kafka_err2str(tp.err));
    if is_unsupported(code) {
        return Err(BrokerError::Unsupported {
            api,
            message: format!("{}/{}: {message}", text(tp.topic), tp.partition),
        });
    }
    Ok(Err(rejection(code, message)))
}

/// A whole-call error of one group's request, as that group's rejection.
pub(super) fn rejection_of(e: &BrokerError) -> Rejection {
    match e {
        BrokerError::Rejected { code, message, .. } => Rejection {
            code: code.clone(),
            message: message.clone(),
            unsupported: false,
        },
        other => Rejection {
            code: other.reason().to_string(),
            message: other.to_string(),
            unsupported: false,
        },
    }
}
