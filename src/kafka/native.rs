//! The admin operations rdkafka has no safe wrapper for (IncrementalAlterConfigs), or whose
//! wrapper drops the broker's error text (CreateTopics, CreatePartitions, DeleteTopics), called
//! through librdkafka's C API. Each call is one batched request: every topic of the call goes
//! to the broker together, and the per-topic results come back with the broker's own message.
//!
//! Safety: every librdkafka object created here is owned by a guard of [`super::ffi`]; the
//! client handle outlives the call because the caller holds the client for its whole duration.

use std::ptr;
use std::time::{Duration, Instant};

use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use super::ffi::{
    cstring, errbuf, rejection, text, ErrorObject, Event, Handle, Options, Queue, Requests,
    NO_ERROR,
};
use super::{BrokerError, ConfigChange, TopicOutcome};

/// Options, a private result queue, one submitted request, one awaited result event.
pub(super) struct Call {
    pub(super) options: Options,
    pub(super) queue: Queue,
    timeout: Duration,
}

impl Call {
    pub(super) unsafe fn new(
        handle: Handle,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
        wait_for_controller: bool,
    ) -> Result<Self, BrokerError> {
        Ok(Call {
            options: Options::new(handle, op, timeout, wait_for_controller)?,
            queue: Queue::new(handle),
            timeout,
        })
    }

    /// Waits for the result event, failing with the event's own error.
    pub(super) unsafe fn wait(&self, api: &'static str) -> Result<Event, BrokerError> {
        // The request timeout bounds the broker round trip; allow a little more for the
        // client's own queueing before declaring the call lost.
        let deadline = Instant::now() + self.timeout + Duration::from_secs(2);
        let event = self.queue.poll(deadline, api, self.timeout)?;
        event.check(api)?;
        Ok(event)
    }
}

fn outcome(name: String, code: rd::rd_kafka_resp_err_t, message: String) -> TopicOutcome {
    TopicOutcome {
        topic: name,
        result: if code == NO_ERROR {
            Ok(())
        } else {
            Err(rejection(code.into(), message))
        },
    }
}

unsafe fn topic_results(
    results: *mut *const rd::rd_kafka_topic_result_t,
    count: usize,
) -> Vec<TopicOutcome> {
    (0..count)
        .map(|i| {
            let r = *results.add(i);
            outcome(
                text(rd::rd_kafka_topic_result_name(r)),
                rd::rd_kafka_topic_result_error(r),
                text(rd::rd_kafka_topic_result_error_string(r)),
            )
        })
        .collect()
}

/// A topic to create.
pub(super) struct NewTopicRequest<'a> {
    pub name: &'a str,
    pub partitions: i32,
    /// -1: the broker's default.
    pub replication_factor: i32,
    pub config: Vec<(&'a str, &'a str)>,
}

pub(super) fn create_topics(
    handle: Handle,
    timeout: Duration,
    topics: &[NewTopicRequest<'_>],
) -> Result<Vec<TopicOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATETOPICS,
            timeout,
            true,
        )?;
        let mut natives = Requests::new(rd::rd_kafka_NewTopic_destroy_array);
        for t in topics {
            let mut err = errbuf();
            let nt = rd::rd_kafka_NewTopic_new(
                cstring(t.name)?.as_ptr(),
                t.partitions,
                t.replication_factor,
                err.as_mut_ptr(),
                err.len(),
            );
            if nt.is_null() {
                return Err(BrokerError::Client(format!(
                    "topic {}: {}",
                    t.name,
                    text(err.as_ptr())
                )));
            }
            natives.push(nt);
            for (k, v) in &t.config {
                let code = rd::rd_kafka_NewTopic_set_config(
                    nt,
                    cstring(k)?.as_ptr(),
                    cstring(v)?.as_ptr(),
                );
                if code != NO_ERROR {
                    return Err(BrokerError::Client(format!(
                        "topic {} config {k}: {}",
                        t.name,
                        RDKafkaErrorCode::from(code)
                    )));
                }
            }
        }
        rd::rd_kafka_CreateTopics(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("CreateTopics")?;
        let result = rd::rd_kafka_event_CreateTopics_result(event.ptr());
        let mut count = 0;
        let results = rd::rd_kafka_CreateTopics_result_topics(result, &mut count);
        Ok(topic_results(results, count))
    }
}

pub(super) fn create_partitions(
    handle: Handle,
    timeout: Duration,
    topics: &[(&str, usize)],
) -> Result<Vec<TopicOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_CREATEPARTITIONS,
            timeout,
            true,
        )?;
        let mut natives = Requests::new(rd::rd_kafka_NewPartitions_destroy_array);
        for (name, total) in topics {
            let mut err = errbuf();
            let np = rd::rd_kafka_NewPartitions_new(
                cstring(name)?.as_ptr(),
                *total,
                err.as_mut_ptr(),
                err.len(),
            );
            if np.is_null() {
                return Err(BrokerError::Client(format!(
                    "topic {name}: {}",
                    text(err.as_ptr())
                )));
            }
            natives.push(np);
        }
        rd::rd_kafka_CreatePartitions(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("CreatePartitions")?;
        let result = rd::rd_kafka_event_CreatePartitions_result(event.ptr());
        let mut count = 0;
        let results = rd::rd_kafka_CreatePartitions_result_topics(result, &mut count);
        Ok(topic_results(results, count))
    }
}

pub(super) fn delete_topics(
    handle: Handle,
    timeout: Duration,
    topics: &[&str],
) -> Result<Vec<TopicOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DELETETOPICS,
            timeout,
            true,
        )?;
        let mut natives = Requests::new(rd::rd_kafka_DeleteTopic_destroy_array);
        for name in topics {
            natives.push(rd::rd_kafka_DeleteTopic_new(cstring(name)?.as_ptr()));
        }
        rd::rd_kafka_DeleteTopics(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("DeleteTopics")?;
        let result = rd::rd_kafka_event_DeleteTopics_result(event.ptr());
        let mut count = 0;
        let results = rd::rd_kafka_DeleteTopics_result_topics(result, &mut count);
        Ok(topic_results(results, count))
    }
}

/// IncrementalAlterConfigs: SET the named keys, DELETE (reset) the undeclared ones; every key
/// not named keeps its value on the broker.
pub(super) fn incremental_alter_configs(
    handle: Handle,
    timeout: Duration,
    topics: &[(&str, &[ConfigChange])],
) -> Result<Vec<TopicOutcome>, BrokerError> {
    unsafe {
        let call = Call::new(
            handle,
            rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_INCREMENTALALTERCONFIGS,
            timeout,
            false,
        )?;
        let mut natives = Requests::new(rd::rd_kafka_ConfigResource_destroy_array);
        for (name, changes) in topics {
            let res = rd::rd_kafka_ConfigResource_new(
                rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                cstring(name)?.as_ptr(),
            );
            natives.push(res);
            for change in changes.iter() {
                let (op, key, value) = match change {
                    ConfigChange::Set { key, to, .. } => (
                        rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_SET,
                        key,
                        Some(cstring(to)?),
                    ),
                    ConfigChange::Reset { key, .. } => (
                        rd::rd_kafka_AlterConfigOpType_t::RD_KAFKA_ALTER_CONFIG_OP_TYPE_DELETE,
                        key,
                        None,
                    ),
                };
                let error = ErrorObject::take(rd::rd_kafka_ConfigResource_add_incremental_config(
                    res,
                    cstring(key)?.as_ptr(),
                    op,
                    value.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
                ));
                if let Some(error) = error {
                    return Err(BrokerError::Client(format!(
                        "topic {name} config {key}: {}",
                        error.message()
                    )));
                }
            }
        }
        rd::rd_kafka_IncrementalAlterConfigs(
            handle.0,
            natives.as_mut_ptr(),
            natives.len(),
            call.options.ptr(),
            call.queue.ptr(),
        );
        drop(natives);
        let event = call.wait("IncrementalAlterConfigs")?;
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event.ptr());
        let mut count = 0;
        let resources = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        Ok((0..count)
            .map(|i| {
                let r = *resources.add(i);
                outcome(
                    text(rd::rd_kafka_ConfigResource_name(r)),
                    rd::rd_kafka_ConfigResource_error(r),
                    text(rd::rd_kafka_ConfigResource_error_string(r)),
                )
            })
            .collect())
    }
}
