//! The admin operations rdkafka has no safe wrapper for (IncrementalAlterConfigs), or whose
//! wrapper drops the broker's error text (CreateTopics, CreatePartitions, DeleteTopics), called
//! through librdkafka's C API. Each call is one batched request: every topic of the call goes
//! to the broker together, and the per-topic results come back with the broker's own message.
//!
//! Safety: every librdkafka object created here is destroyed here, on every path; the client
//! handle outlives the call because the caller holds the client for its whole duration.

use std::ffi::{c_char, CStr, CString};
use std::ptr;
use std::time::Duration;

use rdkafka::bindings as rd;
use rdkafka::types::RDKafkaErrorCode;

use super::{BrokerError, Rejection, TopicOutcome};
use crate::topics::plan::ConfigChange;

/// A raw client handle that may cross into a blocking thread; the owner keeps it alive.
#[derive(Clone, Copy)]
pub(super) struct Handle(pub *mut rd::rd_kafka_t);
// SAFETY: librdkafka handles are thread-safe; the admin client owning it outlives every call.
unsafe impl Send for Handle {}

const ERRSTR_LEN: usize = 512;

fn cstring(s: &str) -> Result<CString, BrokerError> {
    CString::new(s).map_err(|_| BrokerError::Client(format!("'{s}' contains a NUL byte")))
}

unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

fn errbuf() -> Vec<c_char> {
    vec![0; ERRSTR_LEN]
}

/// Options, a private result queue, one submitted request, one awaited result event.
struct Call {
    handle: Handle,
    options: *mut rd::rd_kafka_AdminOptions_t,
    queue: *mut rd::rd_kafka_queue_t,
    timeout: Duration,
}

impl Call {
    unsafe fn new(
        handle: Handle,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
        wait_for_controller: bool,
    ) -> Result<Self, BrokerError> {
        let options = rd::rd_kafka_AdminOptions_new(handle.0, op);
        let queue = rd::rd_kafka_queue_new(handle.0);
        let call = Call {
            handle,
            options,
            queue,
            timeout,
        };
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut err = errbuf();
        if rd::rd_kafka_AdminOptions_set_request_timeout(options, ms, err.as_mut_ptr(), err.len())
            != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            return Err(BrokerError::Client(text(err.as_ptr())));
        }
        if wait_for_controller
            && rd::rd_kafka_AdminOptions_set_operation_timeout(
                options,
                ms,
                err.as_mut_ptr(),
                err.len(),
            ) != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
        {
            return Err(BrokerError::Client(text(err.as_ptr())));
        }
        Ok(call)
    }

    /// Waits for the result event; the caller destroys it with `rd_kafka_event_destroy`.
    unsafe fn wait(&self, api: &'static str) -> Result<*mut rd::rd_kafka_event_t, BrokerError> {
        // The request timeout bounds the broker round trip; allow a little more for the
        // client's own queueing before declaring the call lost.
        let ms =
            i32::try_from((self.timeout + Duration::from_secs(2)).as_millis()).unwrap_or(i32::MAX);
        let event = rd::rd_kafka_queue_poll(self.queue, ms);
        if event.is_null() {
            return Err(BrokerError::Timeout {
                api,
                after: self.timeout,
            });
        }
        let code = rd::rd_kafka_event_error(event);
        if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
            let message = text(rd::rd_kafka_event_error_string(event));
            rd::rd_kafka_event_destroy(event);
            return Err(call_error(api, code.into(), message));
        }
        Ok(event)
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        // SAFETY: both were created in `Call::new` and are destroyed exactly once.
        unsafe {
            rd::rd_kafka_AdminOptions_destroy(self.options);
            rd::rd_kafka_queue_destroy(self.queue);
        }
        let _ = self.handle;
    }
}

/// A whole-call failure, classified.
pub(super) fn call_error(
    api: &'static str,
    code: RDKafkaErrorCode,
    message: String,
) -> BrokerError {
    match code {
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion => {
            BrokerError::Unsupported { api, message }
        }
        RDKafkaErrorCode::OperationTimedOut | RDKafkaErrorCode::RequestTimedOut => {
            BrokerError::Unreachable(format!("{api}: {message}"))
        }
        RDKafkaErrorCode::BrokerTransportFailure
        | RDKafkaErrorCode::AllBrokersDown
        | RDKafkaErrorCode::Resolve => BrokerError::Unreachable(format!("{api}: {message}")),
        _ => BrokerError::Rejected {
            api,
            code: format!("{code:?}"),
            message,
        },
    }
}

fn outcome(name: String, code: rd::rd_kafka_resp_err_t, message: String) -> TopicOutcome {
    if code == rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
        return TopicOutcome {
            topic: name,
            result: Ok(()),
        };
    }
    let code: RDKafkaErrorCode = code.into();
    let unsupported = matches!(
        code,
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion
    );
    let message = if message.is_empty() {
        code.to_string()
    } else {
        message
    };
    TopicOutcome {
        topic: name,
        result: Err(Rejection {
            code: format!("{code:?}"),
            message,
            unsupported,
        }),
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
        let mut natives: Vec<*mut rd::rd_kafka_NewTopic_t> = Vec::with_capacity(topics.len());
        let built = (|| {
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
                    if code != rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR {
                        return Err(BrokerError::Client(format!(
                            "topic {} config {k}: {}",
                            t.name,
                            RDKafkaErrorCode::from(code)
                        )));
                    }
                }
            }
            Ok(())
        })();
        if built.is_ok() {
            rd::rd_kafka_CreateTopics(
                handle.0,
                natives.as_mut_ptr(),
                natives.len(),
                call.options,
                call.queue,
            );
        }
        rd::rd_kafka_NewTopic_destroy_array(natives.as_mut_ptr(), natives.len());
        built?;
        let event = call.wait("CreateTopics")?;
        let result = rd::rd_kafka_event_CreateTopics_result(event);
        let mut count = 0;
        let results = rd::rd_kafka_CreateTopics_result_topics(result, &mut count);
        let out = topic_results(results, count);
        rd::rd_kafka_event_destroy(event);
        Ok(out)
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
        let mut natives = Vec::with_capacity(topics.len());
        let built = (|| {
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
            Ok(())
        })();
        if built.is_ok() {
            rd::rd_kafka_CreatePartitions(
                handle.0,
                natives.as_mut_ptr(),
                natives.len(),
                call.options,
                call.queue,
            );
        }
        rd::rd_kafka_NewPartitions_destroy_array(natives.as_mut_ptr(), natives.len());
        built?;
        let event = call.wait("CreatePartitions")?;
        let result = rd::rd_kafka_event_CreatePartitions_result(event);
        let mut count = 0;
        let results = rd::rd_kafka_CreatePartitions_result_topics(result, &mut count);
        let out = topic_results(results, count);
        rd::rd_kafka_event_destroy(event);
        Ok(out)
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
        let mut natives = Vec::with_capacity(topics.len());
        let built = (|| {
            for name in topics {
                natives.push(rd::rd_kafka_DeleteTopic_new(cstring(name)?.as_ptr()));
            }
            Ok(())
        })();
        if built.is_ok() {
            rd::rd_kafka_DeleteTopics(
                handle.0,
                natives.as_mut_ptr(),
                natives.len(),
                call.options,
                call.queue,
            );
        }
        rd::rd_kafka_DeleteTopic_destroy_array(natives.as_mut_ptr(), natives.len());
        built?;
        let event = call.wait("DeleteTopics")?;
        let result = rd::rd_kafka_event_DeleteTopics_result(event);
        let mut count = 0;
        let results = rd::rd_kafka_DeleteTopics_result_topics(result, &mut count);
        let out = topic_results(results, count);
        rd::rd_kafka_event_destroy(event);
        Ok(out)
    }
}

/// IncrementalAlterConfigs: SET the named keys, DELETE (reset) the released ones; every key
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
        let mut natives = Vec::with_capacity(topics.len());
        let built = (|| {
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
                    let err = rd::rd_kafka_ConfigResource_add_incremental_config(
                        res,
                        cstring(key)?.as_ptr(),
                        op,
                        value.as_ref().map_or(ptr::null(), |v| v.as_ptr()),
                    );
                    if !err.is_null() {
                        let message = text(rd::rd_kafka_error_string(err));
                        rd::rd_kafka_error_destroy(err);
                        return Err(BrokerError::Client(format!(
                            "topic {name} config {key}: {message}"
                        )));
                    }
                }
            }
            Ok(())
        })();
        if built.is_ok() {
            rd::rd_kafka_IncrementalAlterConfigs(
                handle.0,
                natives.as_mut_ptr(),
                natives.len(),
                call.options,
                call.queue,
            );
        }
        rd::rd_kafka_ConfigResource_destroy_array(natives.as_mut_ptr(), natives.len());
        built?;
        let event = call.wait("IncrementalAlterConfigs")?;
        let result = rd::rd_kafka_event_IncrementalAlterConfigs_result(event);
        let mut count = 0;
        let resources = rd::rd_kafka_IncrementalAlterConfigs_result_resources(result, &mut count);
        let out = (0..count)
            .map(|i| {
                let r = *resources.add(i);
                outcome(
                    text(rd::rd_kafka_ConfigResource_name(r)),
                    rd::rd_kafka_ConfigResource_error(r),
                    text(rd::rd_kafka_ConfigResource_error_string(r)),
                )
            })
            .collect();
        rd::rd_kafka_event_destroy(event);
        Ok(out)
    }
}

/// Drains the client's main queue, where librdkafka posts its logs and client-level errors
/// (no rdkafka wrapper services it for an admin client, so it would only grow). Everything is
/// logged through `tracing`; the messages of errors and error-level logs (e.g. "Connect to
/// ipv4#127.0.0.1:9092 failed: Connection refused") are returned, oldest first.
pub(super) fn drain_main_queue(handle: Handle) -> Vec<String> {
    let mut errors = Vec::new();
    // SAFETY: the main queue reference is released, and every event destroyed, before return.
    unsafe {
        let queue = rd::rd_kafka_queue_get_main(handle.0);
        loop {
            let event = rd::rd_kafka_queue_poll(queue, 0);
            if event.is_null() {
                break;
            }
            match rd::rd_kafka_event_type(event) {
                rd::RD_KAFKA_EVENT_LOG => {
                    let (mut facility, mut message, mut level) = (ptr::null(), ptr::null(), 0);
                    rd::rd_kafka_event_log(event, &mut facility, &mut message, &mut level);
                    let message = text(message);
                    tracing::debug!(target: "librdkafka", facility = %text(facility), level, "{message}");
                    if level <= 3 {
                        errors.push(message);
                    }
                }
                rd::RD_KAFKA_EVENT_ERROR => {
                    let message = text(rd::rd_kafka_event_error_string(event));
                    tracing::debug!(target: "librdkafka", "{message}");
                    errors.push(message);
                }
                _ => {}
            }
            rd::rd_kafka_event_destroy(event);
        }
        rd::rd_kafka_queue_destroy(queue);
    }
    errors
}

/// The id of the cluster's controller broker, or `None` if the broker does not say in time.
pub(super) fn controller_id(handle: Handle, timeout: Duration) -> Option<i32> {
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: a plain query on a live handle.
    let id = unsafe { rd::rd_kafka_controllerid(handle.0, ms) };
    (id >= 0).then_some(id)
}
