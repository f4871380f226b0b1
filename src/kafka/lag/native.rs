//! [`LagObserver`] over librdkafka's admin C API (`DescribeTopics`, `ListOffsets`,
//! `ListConsumerGroupOffsets`, `DescribeConsumerGroups`), which rdkafka 0.39 has no safe
//! wrapper for.
//!
//! Safety: every librdkafka object created here (options, queue, topic collection, partition
//! lists, request objects, events) is destroyed here, on every path, by the RAII guards below;
//! the client handle outlives every call because the blocking task holds the client for its
//! whole duration. Requests still in flight when a call returns early (an error, a timeout) are
//! harmless: librdkafka keeps the private queue alive until they finish and then drops their
//! results.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::FutureExt;
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::{
    assemble, group_ids, group_partitions, topics_of, Commits, Facts, GroupLag, GroupQuery,
    LagObserver, Members, Offsets, TopicState,
};
use crate::kafka::native::{call_error, Handle};
use crate::kafka::{BrokerError, ClientSettings, Rejection};
use crate::runtime::metrics::RequestTally;

const ERRSTR_LEN: usize = 512;
const NO_ERROR: rd::rd_kafka_resp_err_t = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;

/// Lag of consumer groups on one cluster, through librdkafka.
pub struct RdKafkaLagObserver {
    client: Arc<AdminClient<DefaultClientContext>>,
    bootstrap: String,
    timeout: Duration,
    members: bool,
    requests: Arc<AtomicU64>,
    /// The last connection-level error and the last statistics librdkafka reported.
    diagnostics: Mutex<Diagnostics>,
}

#[derive(Default)]
struct Diagnostics {
    last_error: Option<String>,
    stats: Option<String>,
}

impl RdKafkaLagObserver {
    /// Builds the client from the same settings as [`crate::kafka::RdKafkaAdmin::connect`].
    /// Nothing is contacted until the first pass.
    pub fn connect(settings: &ClientSettings) -> Result<Self, BrokerError> {
        let mut config = ClientConfig::new();
        let timeout_ms = settings.timeout.as_millis().to_string();
        config
            .set("bootstrap.servers", &settings.bootstrap_servers)
            .set("client.id", "tributary-lag")
            .set("socket.connection.setup.timeout.ms", &timeout_ms)
            .set("log.connection.close", "false")
            // No KIP-714 client telemetry: requests of no use to the operator.
            .set("enable.metrics.push", "false")
            .set_log_level(RDKafkaLogLevel::Error);
        for (k, v) in &settings.properties {
            config.set(k, v);
        }
        for (k, v) in &settings.secret_properties {
            config.set(k, v.expose());
        }
        let client: AdminClient<DefaultClientContext> = config
            .create()
            .map_err(|e| BrokerError::Client(e.to_string()))?;
        Ok(Self {
            client: Arc::new(client),
            bootstrap: settings.bootstrap_servers.clone(),
            timeout: settings.timeout,
            members: false,
            requests: Arc::new(AtomicU64::new(0)),
            diagnostics: Mutex::new(Diagnostics::default()),
        })
    }

    /// Also report each group's member count and state ([`super::Lag::members`]). Off by
    /// default: librdkafka sends one DescribeGroups request per group (in the same round trip
    /// as the offsets, so it costs requests, not wall time).
    pub fn describe_members(mut self, yes: bool) -> Self {
        self.members = yes;
        self
    }

    fn handle(&self) -> Handle {
        Handle(self.client.inner().native_ptr())
    }

    fn diagnostics(&self) -> std::sync::MutexGuard<'_, Diagnostics> {
        self.diagnostics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Services librdkafka's main queue: logs go to `tracing`, the latest error and
    /// statistics are kept.
    fn drain(&self) {
        let (errors, stats) = drain_main_queue(self.handle());
        let mut d = self.diagnostics();
        if let Some(last) = errors.into_iter().last() {
            d.last_error = Some(last);
        }
        if stats.is_some() {
            d.stats = stats;
        }
    }

    fn unreachable(&self, detail: impl std::fmt::Display) -> BrokerError {
        self.drain();
        let why = self
            .diagnostics()
            .last_error
            .clone()
            .map(|l| format!(" (last error: {l})"))
            .unwrap_or_default();
        BrokerError::Unreachable(format!(
            "{} did not answer within {:?}: {detail}{why}",
            self.bootstrap, self.timeout
        ))
    }

    /// Requests librdkafka itself counted on the wire, by Kafka API name, summed over brokers
    /// (connection set-up — ApiVersions, SASL — excluded), from its latest statistics. `None`
    /// unless the client was configured with `statistics.interval.ms` (a `ClientSettings`
    /// property) and an interval has elapsed. Unlike [`LagObserver::requests_made`] this
    /// includes what librdkafka sends on its own: FindCoordinator lookups and metadata
    /// refreshes. It lacks OffsetFetch: librdkafka leaves consumer requests out of the
    /// statistics of admin (producer-type) clients; there is exactly one per group and pass.
    /// For benchmarks and diagnostics.
    pub fn wire_requests(&self) -> Option<BTreeMap<String, u64>> {
        self.drain();
        let stats = self.diagnostics().stats.clone()?;
        let json: serde_json::Value = serde_json::from_str(&stats).ok()?;
        let mut out = BTreeMap::new();
        for broker in json.get("brokers")?.as_object()?.values() {
            let Some(req) = broker.get("req").and_then(|r| r.as_object()) else {
                continue;
            };
            for (api, n) in req {
                let n = n.as_u64().unwrap_or(0);
                if n == 0
                    || matches!(
                        api.as_str(),
                        "ApiVersion" | "ApiVersions" | "SaslHandshake" | "SaslAuthenticate"
                    )
                {
                    continue;
                }
                *out.entry(api.clone()).or_insert(0) += n;
            }
        }
        Some(out)
    }
}

impl LagObserver for RdKafkaLagObserver {
    fn observe<'a>(
        &'a self,
        groups: &'a [GroupQuery],
    ) -> BoxFuture<'a, Result<Vec<GroupLag>, BrokerError>> {
        async move {
            if groups.is_empty() {
                return Ok(Vec::new());
            }
            self.drain();
            let queries = groups.to_vec();
            let client = self.client.clone();
            let handle = self.handle();
            let timeout = self.timeout;
            let members = self.members;
            let requests = self.requests.clone();
            let facts = tokio::task::spawn_blocking(move || {
                let mut sent = Sent {
                    total: &requests,
                    tally: RequestTally::default(),
                };
                let out = gather(handle, timeout, &queries, members, &mut sent);
                sent.tally.finish(out.as_ref().map(|_| ()));
                drop(client);
                out
            })
            .await
            .map_err(|e| BrokerError::Client(format!("lag observation panicked: {e}")))?
            .map_err(|e| match e {
                BrokerError::Unreachable(d) => self.unreachable(d),
                BrokerError::Timeout { api, .. } => self.unreachable(format!("{api} timed out")),
                other => other,
            })?;
            self.drain();
            Ok(groups
                .iter()
                .map(|q| assemble(q, &facts, self.members))
                .collect())
        }
        .boxed()
    }

    fn requests_made(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

// ---------------------------------------------------------------------------------------------
// The blocking pass.

/// Tags of the result events of round two (the event's opaque): which call it answers.
const TAG_END: usize = 1;
const TAG_START: usize = 2;
const TAG_MEMBERS: usize = 3;
/// Committed offsets of group `i` carry `TAG_GROUP_BASE + i`.
const TAG_GROUP_BASE: usize = 16;

/// The requests of one pass: the observer's running count, and (by API, with their outcome)
/// the metrics.
struct Sent<'a> {
    total: &'a AtomicU64,
    tally: RequestTally,
}

impl Sent<'_> {
    fn add(&mut self, api: &'static str, n: u64) {
        self.total.fetch_add(n, Ordering::Relaxed);
        self.tally.sent(api, n);
    }
}

fn gather(
    handle: Handle,
    timeout: Duration,
    queries: &[GroupQuery],
    members: bool,
    requests: &mut Sent<'_>,
) -> Result<Facts, BrokerError> {
    let mut facts = Facts::default();
    let topics = topics_of(queries);
    let ids = group_ids(queries);
    // SAFETY: see the module documentation; every object is owned by a guard.
    unsafe {
        let queue = Queue::new(handle);

        // Round one: one Metadata request for every topic.
        let mut leaders: BTreeMap<(String, i32), i32> = BTreeMap::new();
        if !topics.is_empty() {
            requests.add("Metadata", 1);
            facts.topics = describe_topics(handle, &queue, timeout, &topics, &mut leaders)?;
            requests.tally.answered("Metadata", 1, Ok(()));
        }

        // Round two: everything else at once.
        let partitions: Vec<(String, i32)> = leaders.keys().cloned().collect();
        let mut outstanding: BTreeMap<usize, &'static str> = BTreeMap::new();
        let brokers = leaders.values().collect::<BTreeSet<_>>().len().max(1) as u64;
        if !partitions.is_empty() {
            let options = Options::new(
                handle,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTOFFSETS,
                timeout,
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
                rd::rd_kafka_AdminOptions_set_opaque(options.0, tag as *mut c_void);
                requests.add("ListOffsets", brokers);
                rd::rd_kafka_ListOffsets(handle.0, list.0, options.0, queue.0);
                outstanding.insert(tag, "ListOffsets");
            }
        }
        let per_group = group_partitions(queries, &facts.topics);
        {
            let options = Options::new(
                handle,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS,
                timeout,
            )?;
            for (i, id) in ids.iter().enumerate() {
                let Some(parts) = per_group.get(id).filter(|p| !p.is_empty()) else {
                    continue;
                };
                let list = PartitionList::new(parts, rd::RD_KAFKA_OFFSET_INVALID as i64)?;
                let group = cstring(id)?;
                let mut request = [rd::rd_kafka_ListConsumerGroupOffsets_new(
                    group.as_ptr(),
                    list.0,
                )];
                let tag = TAG_GROUP_BASE + i;
                rd::rd_kafka_AdminOptions_set_opaque(options.0, tag as *mut c_void);
                requests.add("OffsetFetch", 1);
                rd::rd_kafka_ListConsumerGroupOffsets(
                    handle.0,
                    request.as_mut_ptr(),
                    1,
                    options.0,
                    queue.0,
                );
                rd::rd_kafka_ListConsumerGroupOffsets_destroy_array(request.as_mut_ptr(), 1);
                outstanding.insert(tag, "OffsetFetch");
            }
        }
        if members && !ids.is_empty() {
            let options = Options::new(
                handle,
                rd::rd_kafka_admin_op_t::RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS,
                timeout,
            )?;
            let names = ids
                .iter()
                .map(|g| cstring(g))
                .collect::<Result<Vec<_>, _>>()?;
            let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
            rd::rd_kafka_AdminOptions_set_opaque(options.0, TAG_MEMBERS as *mut c_void);
            requests.add("DescribeGroups", ids.len() as u64);
            rd::rd_kafka_DescribeConsumerGroups(
                handle.0,
                ptrs.as_mut_ptr(),
                ptrs.len(),
                options.0,
                queue.0,
            );
            outstanding.insert(TAG_MEMBERS, "DescribeGroups");
        }

        let deadline = Instant::now() + timeout + Duration::from_secs(2);
        while let Some(waiting) = outstanding.values().next().copied() {
            let event = queue.poll(deadline, waiting, timeout)?;
            let tag = rd::rd_kafka_event_opaque(event.0) as usize;
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
                        requests.add("ListOffsets", 2);
                        let why = diagnose_unanswered(handle, timeout, &topic, partition)?;
                        let failed = BrokerError::Rejected {
                            api,
                            code: why.code.clone(),
                            message: why.message.clone(),
                        };
                        requests.tally.answered(api, brokers, Err(&failed));
                        for v in offsets.values_mut() {
                            if matches!(v, Ok(o) if *o < 0) {
                                *v = Err(why.clone());
                            }
                        }
                    } else {
                        requests.tally.answered(api, brokers, Ok(()));
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
                    requests.tally.answered(api, ids.len() as u64, Ok(()));
                }
                _ => {
                    let id = &ids[tag - TAG_GROUP_BASE];
                    let error = event.error(api);
                    requests
                        .tally
                        .answered(api, 1, error.as_ref().map_or(Ok(()), Err));
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
    )?;
    let names = topics
        .iter()
        .map(|t| cstring(t))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
    let collection = rd::rd_kafka_TopicCollection_of_topic_names(ptrs.as_mut_ptr(), ptrs.len());
    rd::rd_kafka_DescribeTopics(handle.0, collection, options.0, queue.0);
    rd::rd_kafka_TopicCollection_destroy(collection);
    let event = queue.poll(
        Instant::now() + timeout + Duration::from_secs(2),
        api,
        timeout,
    )?;
    event.check(api)?;
    let result = rd::rd_kafka_event_DescribeTopics_result(event.0);
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
    // A topic the broker left out of its answer is not known to it.
    for t in topics {
        out.entry(t.clone()).or_insert(TopicState::Missing);
    }
    Ok(out)
}

unsafe fn list_offsets(event: &Event) -> Result<Offsets, BrokerError> {
    let result = rd::rd_kafka_event_ListOffsets_result(event.0);
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

/// librdkafka 2.12 reports a `ListOffsets` sub-request that failed as a whole (the broker
/// lacks ListOffsets v0-7, the request timed out, the connection broke) as its partitions with
/// offset -1001 and no error at all: its fan-out merge drops the error. The cause is asked of
/// the legacy watermark query for one such partition, which reports it: a broker without the
/// API fails the pass with `Unsupported`; anything else fails those partitions with the text.
unsafe fn diagnose_unanswered(
    handle: Handle,
    timeout: Duration,
    topic: &str,
    partition: i32,
) -> Result<Rejection, BrokerError> {
    let name = cstring(topic)?;
    let (mut low, mut high) = (0i64, 0i64);
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    let code = rd::rd_kafka_query_watermark_offsets(
        handle.0,
        name.as_ptr(),
        partition,
        &mut low,
        &mut high,
        ms,
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

unsafe fn committed_offsets(event: &Event) -> Result<Commits, BrokerError> {
    let result = rd::rd_kafka_event_ListConsumerGroupOffsets_result(event.0);
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

unsafe fn describe_groups(event: &Event) -> Result<Members, BrokerError> {
    let result = rd::rd_kafka_event_DescribeConsumerGroups_result(event.0);
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

fn is_unsupported(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion
    )
}

fn rejection(code: RDKafkaErrorCode, message: String) -> Rejection {
    Rejection {
        code: format!("{code:?}"),
        message: if message.is_empty() {
            code.to_string()
        } else {
            message
        },
        unsupported: is_unsupported(code),
    }
}

/// A whole-call error of one group's request, as that group's rejection.
fn rejection_of(e: &BrokerError) -> Rejection {
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

// ---------------------------------------------------------------------------------------------
// RAII guards over librdkafka objects.

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

/// A private result queue.
struct Queue(*mut rd::rd_kafka_queue_t);

impl Queue {
    unsafe fn new(handle: Handle) -> Self {
        Queue(rd::rd_kafka_queue_new(handle.0))
    }

    /// The next result event, or a timeout naming `api` once `deadline` passes.
    unsafe fn poll(
        &self,
        deadline: Instant,
        api: &'static str,
        timeout: Duration,
    ) -> Result<Event, BrokerError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(BrokerError::Timeout {
                    api,
                    after: timeout,
                });
            }
            let ms = i32::try_from(left.as_millis().max(1)).unwrap_or(i32::MAX);
            let event = rd::rd_kafka_queue_poll(self.0, ms);
            if !event.is_null() {
                return Ok(Event(event));
            }
        }
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created in `Queue::new`, destroyed exactly once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

struct Event(*mut rd::rd_kafka_event_t);

impl Event {
    /// The event's own (whole-call) error.
    unsafe fn error(&self, api: &'static str) -> Option<BrokerError> {
        let code = rd::rd_kafka_event_error(self.0);
        (code != NO_ERROR).then(|| {
            call_error(
                api,
                code.into(),
                text(rd::rd_kafka_event_error_string(self.0)),
            )
        })
    }

    unsafe fn check(&self, api: &'static str) -> Result<(), BrokerError> {
        self.error(api).map_or(Ok(()), Err)
    }
}

impl Drop for Event {
    fn drop(&mut self) {
        // SAFETY: polled from a queue, destroyed exactly once.
        unsafe { rd::rd_kafka_event_destroy(self.0) }
    }
}

/// Admin options with the request timeout set.
struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Options {
    unsafe fn new(
        handle: Handle,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
    ) -> Result<Self, BrokerError> {
        let options = Options(rd::rd_kafka_AdminOptions_new(handle.0, op));
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        let mut err = vec![0 as c_char; ERRSTR_LEN];
        if rd::rd_kafka_AdminOptions_set_request_timeout(options.0, ms, err.as_mut_ptr(), err.len())
            != NO_ERROR
        {
            return Err(BrokerError::Client(text(err.as_ptr())));
        }
        Ok(options)
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created in `Options::new`, destroyed exactly once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

/// A topic-partition list, every offset set to `offset`.
struct PartitionList(*mut rd::rd_kafka_topic_partition_list_t);

impl PartitionList {
    unsafe fn new(partitions: &[(String, i32)], offset: i64) -> Result<Self, BrokerError> {
        let list = PartitionList(rd::rd_kafka_topic_partition_list_new(
            i32::try_from(partitions.len()).unwrap_or(i32::MAX),
        ));
        for (topic, p) in partitions {
            let name = cstring(topic)?;
            let tp = rd::rd_kafka_topic_partition_list_add(list.0, name.as_ptr(), *p);
            (*tp).offset = offset;
        }
        Ok(list)
    }
}

impl Drop for PartitionList {
    fn drop(&mut self) {
        // SAFETY: created in `PartitionList::new`, destroyed exactly once.
        unsafe { rd::rd_kafka_topic_partition_list_destroy(self.0) }
    }
}

/// Drains the client's main queue (logs, client-level errors, statistics): logs go to
/// `tracing`; returns the messages of errors and error-level logs, oldest first, and the
/// latest statistics JSON.
fn drain_main_queue(handle: Handle) -> (Vec<String>, Option<String>) {
    let mut errors = Vec::new();
    let mut stats = None;
    // SAFETY: the main queue reference is released, and every event destroyed, before return.
    unsafe {
        let queue = Queue(rd::rd_kafka_queue_get_main(handle.0));
        loop {
            let event = rd::rd_kafka_queue_poll(queue.0, 0);
            if event.is_null() {
                break;
            }
            let event = Event(event);
            match rd::rd_kafka_event_type(event.0) {
                rd::RD_KAFKA_EVENT_LOG => {
                    let (mut facility, mut message, mut level) = (ptr::null(), ptr::null(), 0);
                    rd::rd_kafka_event_log(event.0, &mut facility, &mut message, &mut level);
                    let message = text(message);
                    tracing::debug!(target: "librdkafka", facility = %text(facility), level, "{message}");
                    if level <= 3 {
                        errors.push(message);
                    }
                }
                rd::RD_KAFKA_EVENT_ERROR => {
                    let message = text(rd::rd_kafka_event_error_string(event.0));
                    tracing::debug!(target: "librdkafka", "{message}");
                    errors.push(message);
                }
                rd::RD_KAFKA_EVENT_STATS => {
                    stats = Some(text(rd::rd_kafka_event_stats(event.0)));
                }
                _ => {}
            }
        }
    }
    (errors, stats)
}
