//! librdkafka's C API (through `rdkafka-sys`), made safe to hold for the calls rdkafka 0.39 has
//! no (or no faithful) safe wrapper for: the [`Client`] every call on a cluster goes through —
//! built from the cluster's settings, servicing librdkafka's main queue — and RAII guards that
//! destroy every `rd_kafka_*` object a call creates (options, queues, events, request objects,
//! partition lists, topic collections, error objects), on every path, when they go out of scope.
//!
//! Requests still in flight when a call returns early (an error, a timeout) are harmless:
//! librdkafka keeps a private queue alive until they finish and then drops their results.

use std::ffi::{c_char, c_void, CStr, CString};
use std::ptr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::connection::explain_tls_failure;
use super::{BrokerError, ClientSettings, Rejection};

pub(super) const NO_ERROR: rd::rd_kafka_resp_err_t =
    rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;

const ERRSTR_LEN: usize = 512;

/// A raw client handle that may cross into a blocking thread; the [`Client`] owning it outlives
/// every call (see [`Client::blocking`]).
#[derive(Clone, Copy)]
pub(super) struct Handle(pub(super) *mut rd::rd_kafka_t);
// SAFETY: librdkafka handles are thread-safe; the client owning it outlives every call.
unsafe impl Send for Handle {}

// ---------------------------------------------------------------------------------------------
// The client.

/// One librdkafka client of a cluster, shared by its admin calls and its lag observations, with
/// what librdkafka last reported on its main queue.
pub(super) struct Client {
    admin: AdminClient<DefaultClientContext>,
    bootstrap: String,
    timeout: Duration,
    diagnostics: Mutex<Diagnostics>,
}

#[derive(Default)]
struct Diagnostics {
    /// The last connection-level error, for unreachable-cluster messages.
    last_error: Option<String>,
    /// The last statistics JSON (when `statistics.interval.ms` is set).
    stats: Option<String>,
}

impl Client {
    /// Builds the client from `settings`. Nothing is contacted until the first request.
    pub(super) fn connect(
        settings: &ClientSettings,
        client_id: &str,
    ) -> Result<Arc<Self>, BrokerError> {
        let admin: AdminClient<DefaultClientContext> = client_config(settings, client_id)
            .create()
            .map_err(|e| BrokerError::Client(e.to_string()))?;
        Ok(Arc::new(Self {
            admin,
            bootstrap: settings.bootstrap_servers.clone(),
            timeout: settings.timeout,
            diagnostics: Mutex::new(Diagnostics::default()),
        }))
    }

    /// rdkafka's safe admin client over the same handle.
    pub(super) fn admin(&self) -> &AdminClient<DefaultClientContext> {
        &self.admin
    }

    pub(super) fn handle(&self) -> Handle {
        Handle(self.admin.inner().native_ptr())
    }

    /// The request timeout of every call.
    pub(super) fn timeout(&self) -> Duration {
        self.timeout
    }

    fn diagnostics(&self) -> MutexGuard<'_, Diagnostics> {
        self.diagnostics.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Services librdkafka's main queue, where it posts its logs, client-level errors and
    /// statistics (no rdkafka wrapper services it for an admin client, so it would only grow):
    /// logs go to `tracing`; the latest error and statistics are kept.
    pub(super) fn drain(&self) {
        let (errors, stats) = drain_main_queue(self.handle());
        let mut d = self.diagnostics();
        if let Some(last) = latest_cause(&errors, d.last_error.is_some()) {
            d.last_error = Some(last);
        }
        if stats.is_some() {
            d.stats = stats;
        }
    }

    /// The latest statistics JSON librdkafka posted, if any.
    pub(super) fn stats(&self) -> Option<String> {
        self.drain();
        self.diagnostics().stats.clone()
    }

    /// The cluster did not answer: names it, the timeout, `detail` and librdkafka's last error;
    /// a [`BrokerError::Tls`] when that error is a failed TLS handshake, explained.
    pub(super) fn unreachable(&self, detail: impl std::fmt::Display) -> BrokerError {
        self.drain();
        let last = self.diagnostics().last_error.clone();
        if let Some((last, meaning)) = last
            .as_deref()
            .and_then(|l| explain_tls_failure(l).map(|m| (l, m)))
        {
            return BrokerError::Tls(format!("{}: {meaning} ({last})", self.bootstrap));
        }
        let why = last
            .map(|l| format!(" (last error: {l})"))
            .unwrap_or_default();
        BrokerError::Unreachable(format!(
            "{} did not answer within {:?}: {detail}{why}",
            self.bootstrap, self.timeout
        ))
    }

    /// A whole-call error as the caller reports it: a lost connection or a timeout becomes
    /// [`Client::unreachable`] with librdkafka's last error.
    pub(super) fn explain(&self, error: BrokerError) -> BrokerError {
        match error {
            BrokerError::Unreachable(d) => self.unreachable(d),
            BrokerError::Timeout { api, .. } => self.unreachable(format!("{api} timed out")),
            other => other,
        }
    }

    /// Runs blocking native work (`what`, for the panic message) off the async runtime,
    /// keeping the client alive meanwhile.
    pub(super) async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        what: &str,
        work: impl FnOnce(&Client) -> T + Send + 'static,
    ) -> Result<T, BrokerError> {
        let client = self.clone();
        tokio::task::spawn_blocking(move || work(&client))
            .await
            .map_err(|e| BrokerError::Client(format!("{what} panicked: {e}")))
    }
}

/// The error an unreachable cluster is reported with, from the errors librdkafka posted since
/// the last look (oldest first), or `None` to keep the one kept so far (`have_one`): the newest
/// that names a cause, in the words that stay the same from one occurrence to the next. So a
/// cluster failing the same way reads the same at every probe, and its status is not rewritten
/// (librdkafka alternates a cause, e.g. a refused SASL handshake, with the aggregate "1/1
/// brokers are down", and counts suppressed repeats in the text).
fn latest_cause(errors: &[String], have_one: bool) -> Option<String> {
    let stable: Vec<String> = errors.iter().map(|e| stable_error(e)).collect();
    let aggregate = |e: &String| e.ends_with("brokers are down");
    match stable.iter().rev().find(|e| !aggregate(e)) {
        Some(cause) => Some(cause.clone()),
        None if have_one => None,
        None => stable.last().cloned(),
    }
}

/// `message` without librdkafka's parts that vary between occurrences of one error: the
/// `[thrd:NAME]: ` prefix of a log line and the `(after Nms in state S[, N identical error(s)
/// suppressed])` suffix.
fn stable_error(message: &str) -> String {
    let mut text = message.trim();
    if let Some(rest) = text.strip_prefix("[thrd:") {
        if let Some((_, after)) = rest.split_once("]: ") {
            text = after;
        }
    }
    if let Some(start) = text.rfind(" (after ") {
        if text.ends_with(')') && text[start..].contains("ms in state ") {
            text = &text[..start];
        }
    }
    text.to_owned()
}

/// The librdkafka configuration of a client of the cluster `settings` describe: the cluster's
/// properties (secrets included, never logged), its timeouts, no client telemetry.
pub(super) fn client_config(settings: &ClientSettings, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    let timeout_ms = settings.timeout.as_millis().to_string();
    config
        .set("bootstrap.servers", &settings.bootstrap_servers)
        .set("client.id", client_id)
        .set("socket.connection.setup.timeout.ms", &timeout_ms)
        .set("log.connection.close", "false")
        // No KIP-714 client telemetry: requests of no use to the operator.
        .set("enable.metrics.push", "false")
        // Connection failures are logged at error level; they become the reason an
        // unreachable cluster is reported with (see `Client::drain`).
        .set_log_level(RDKafkaLogLevel::Error);
    for (k, v) in &settings.properties {
        config.set(k, v);
    }
    for (k, v) in &settings.secret_properties {
        config.set(k, v.expose());
    }
    config
}

/// Drains the client's main queue: logs go to `tracing`; returns the messages of errors and
/// error-level logs (e.g. "Connect to ipv4#127.0.0.1:9092 failed: Connection refused"), oldest
/// first, and the latest statistics JSON.
fn drain_main_queue(handle: Handle) -> (Vec<String>, Option<String>) {
    let mut errors = Vec::new();
    let mut stats = None;
    // SAFETY: the main queue reference and every event are owned by guards.
    unsafe {
        let queue = Queue::main(handle);
        while let Some(event) = queue.poll_now() {
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

/// The id of the cluster's controller broker, or `None` if the broker does not say in time.
pub(super) fn controller_id(handle: Handle, timeout: Duration) -> Option<i32> {
    // SAFETY: a plain query on a live handle.
    let id = unsafe { rd::rd_kafka_controllerid(handle.0, millis(timeout)) };
    (id >= 0).then_some(id)
}

// ---------------------------------------------------------------------------------------------
// Text and errors.

pub(super) fn cstring(s: &str) -> Result<CString, BrokerError> {
    CString::new(s).map_err(|_| BrokerError::Client(format!("'{s}' contains a NUL byte")))
}

/// A C string librdkafka owns, copied (empty for null).
pub(super) unsafe fn text(p: *const c_char) -> String {
    if p.is_null() {
        String::new()
    } else {
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// A buffer for librdkafka's `errstr` out-parameters.
pub(super) fn errbuf() -> Vec<c_char> {
    vec![0; ERRSTR_LEN]
}

/// A duration as librdkafka's `int` milliseconds.
pub(super) fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

pub(super) fn is_unsupported(code: RDKafkaErrorCode) -> bool {
    matches!(
        code,
        RDKafkaErrorCode::UnsupportedFeature | RDKafkaErrorCode::UnsupportedVersion
    )
}

/// The broker's refusal of one item, with its text (librdkafka's name of the code when the
/// broker gave none).
pub(super) fn rejection(code: RDKafkaErrorCode, message: String) -> Rejection {
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

/// A whole-call failure, classified.
pub(super) fn call_error(
    api: &'static str,
    code: RDKafkaErrorCode,
    message: String,
) -> BrokerError {
    match code {
        c if is_unsupported(c) => BrokerError::Unsupported { api, message },
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

// ---------------------------------------------------------------------------------------------
// RAII guards.

/// A queue: a private one for a call's results, or a reference to the client's main queue.
pub(super) struct Queue(*mut rd::rd_kafka_queue_t);

impl Queue {
    pub(super) unsafe fn new(handle: Handle) -> Self {
        Queue(rd::rd_kafka_queue_new(handle.0))
    }

    unsafe fn main(handle: Handle) -> Self {
        Queue(rd::rd_kafka_queue_get_main(handle.0))
    }

    pub(super) fn ptr(&self) -> *mut rd::rd_kafka_queue_t {
        self.0
    }

    /// The next event, or a timeout naming `api` (after `timeout`) once `deadline` passes.
    pub(super) unsafe fn poll(
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
            let event = rd::rd_kafka_queue_poll(self.0, millis(left.max(Duration::from_millis(1))));
            if !event.is_null() {
                return Ok(Event(event));
            }
        }
    }

    /// The next event if one is waiting.
    unsafe fn poll_now(&self) -> Option<Event> {
        let event = rd::rd_kafka_queue_poll(self.0, 0);
        (!event.is_null()).then_some(Event(event))
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: created (or referenced) in `Queue::new`/`Queue::main`, released exactly once.
        unsafe { rd::rd_kafka_queue_destroy(self.0) }
    }
}

/// An event polled from a queue.
pub(super) struct Event(*mut rd::rd_kafka_event_t);

impl Event {
    pub(super) fn ptr(&self) -> *mut rd::rd_kafka_event_t {
        self.0
    }

    /// The opaque the request was submitted with (see [`Options::set_opaque`]).
    pub(super) unsafe fn opaque(&self) -> usize {
        rd::rd_kafka_event_opaque(self.0) as usize
    }

    /// The event's own (whole-call) error.
    pub(super) unsafe fn error(&self, api: &'static str) -> Option<BrokerError> {
        let code = rd::rd_kafka_event_error(self.0);
        (code != NO_ERROR).then(|| {
            call_error(
                api,
                code.into(),
                text(rd::rd_kafka_event_error_string(self.0)),
            )
        })
    }

    pub(super) unsafe fn check(&self, api: &'static str) -> Result<(), BrokerError> {
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
pub(super) struct Options(*mut rd::rd_kafka_AdminOptions_t);

impl Options {
    /// `wait_for_controller`: the operation timeout too, for the requests the controller
    /// completes (topic creation, partitions, deletion).
    pub(super) unsafe fn new(
        handle: Handle,
        op: rd::rd_kafka_admin_op_t,
        timeout: Duration,
        wait_for_controller: bool,
    ) -> Result<Self, BrokerError> {
        let options = Options(rd::rd_kafka_AdminOptions_new(handle.0, op));
        let ms = millis(timeout);
        let mut err = errbuf();
        if rd::rd_kafka_AdminOptions_set_request_timeout(options.0, ms, err.as_mut_ptr(), err.len())
            != NO_ERROR
        {
            return Err(BrokerError::Client(text(err.as_ptr())));
        }
        if wait_for_controller
            && rd::rd_kafka_AdminOptions_set_operation_timeout(
                options.0,
                ms,
                err.as_mut_ptr(),
                err.len(),
            ) != NO_ERROR
        {
            return Err(BrokerError::Client(text(err.as_ptr())));
        }
        Ok(options)
    }

    pub(super) fn ptr(&self) -> *mut rd::rd_kafka_AdminOptions_t {
        self.0
    }

    /// The opaque the next request submitted with these options carries to its result event.
    pub(super) unsafe fn set_opaque(&self, tag: usize) {
        rd::rd_kafka_AdminOptions_set_opaque(self.0, tag as *mut c_void);
    }
}

impl Drop for Options {
    fn drop(&mut self) {
        // SAFETY: created in `Options::new`, destroyed exactly once.
        unsafe { rd::rd_kafka_AdminOptions_destroy(self.0) }
    }
}

/// A topic-partition list, every offset set to one value.
pub(super) struct PartitionList(*mut rd::rd_kafka_topic_partition_list_t);

impl PartitionList {
    pub(super) unsafe fn new(
        partitions: &[(String, i32)],
        offset: i64,
    ) -> Result<Self, BrokerError> {
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

    /// A list with one offset per partition.
    pub(super) unsafe fn with_offsets(
        offsets: &[((String, i32), i64)],
    ) -> Result<Self, BrokerError> {
        let list = PartitionList(rd::rd_kafka_topic_partition_list_new(
            i32::try_from(offsets.len()).unwrap_or(i32::MAX),
        ));
        for ((topic, p), offset) in offsets {
            let name = cstring(topic)?;
            let tp = rd::rd_kafka_topic_partition_list_add(list.0, name.as_ptr(), *p);
            (*tp).offset = *offset;
        }
        Ok(list)
    }

    pub(super) fn ptr(&self) -> *mut rd::rd_kafka_topic_partition_list_t {
        self.0
    }
}

impl Drop for PartitionList {
    fn drop(&mut self) {
        // SAFETY: created in `PartitionList::new`, destroyed exactly once.
        unsafe { rd::rd_kafka_topic_partition_list_destroy(self.0) }
    }
}

/// A collection of topic names (`DescribeTopics`).
pub(super) struct TopicCollection(*mut rd::rd_kafka_TopicCollection_t);

impl TopicCollection {
    pub(super) unsafe fn of_names(names: &[CString]) -> Self {
        let mut ptrs: Vec<*const c_char> = names.iter().map(|n| n.as_ptr()).collect();
        TopicCollection(rd::rd_kafka_TopicCollection_of_topic_names(
            ptrs.as_mut_ptr(),
            ptrs.len(),
        ))
    }

    pub(super) fn ptr(&self) -> *mut rd::rd_kafka_TopicCollection_t {
        self.0
    }
}

impl Drop for TopicCollection {
    fn drop(&mut self) {
        // SAFETY: created in `TopicCollection::of_names`, destroyed exactly once.
        unsafe { rd::rd_kafka_TopicCollection_destroy(self.0) }
    }
}

/// An error object a call returned (null: no error).
pub(super) struct ErrorObject(*mut rd::rd_kafka_error_t);

impl ErrorObject {
    pub(super) unsafe fn take(error: *mut rd::rd_kafka_error_t) -> Option<Self> {
        (!error.is_null()).then_some(ErrorObject(error))
    }

    pub(super) unsafe fn message(&self) -> String {
        text(rd::rd_kafka_error_string(self.0))
    }
}

impl Drop for ErrorObject {
    fn drop(&mut self) {
        // SAFETY: returned to us by librdkafka, destroyed exactly once.
        unsafe { rd::rd_kafka_error_destroy(self.0) }
    }
}

/// The request objects of one admin call (new topics, config resources, ...), destroyed
/// together by their `*_destroy_array` function.
pub(super) struct Requests<T> {
    items: Vec<*mut T>,
    destroy: unsafe extern "C" fn(*mut *mut T, usize),
}

impl<T> Requests<T> {
    pub(super) fn new(destroy: unsafe extern "C" fn(*mut *mut T, usize)) -> Self {
        Self {
            items: Vec::new(),
            destroy,
        }
    }

    /// Takes ownership of `item` (not null).
    pub(super) fn push(&mut self, item: *mut T) {
        debug_assert!(!item.is_null());
        self.items.push(item);
    }

    pub(super) fn as_mut_ptr(&mut self) -> *mut *mut T {
        self.items.as_mut_ptr()
    }

    pub(super) fn len(&self) -> usize {
        self.items.len()
    }
}

impl<T> Drop for Requests<T> {
    fn drop(&mut self) {
        if !self.items.is_empty() {
            // SAFETY: every item was created by the matching `*_new` and is destroyed once.
            unsafe { (self.destroy)(self.items.as_mut_ptr(), self.items.len()) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{latest_cause, stable_error};

    const SASL: &str = "sasl_plaintext://127.0.0.1:41589/bootstrap: SASL PLAIN mechanism handshake failed: Broker: Unsupported SASL mechanism: broker's supported mechanisms: PLAIN";

    #[test]
    fn an_error_reads_the_same_at_each_occurrence() {
        for raw in [
            format!("{SASL} (after 0ms in state AUTH_HANDSHAKE)"),
            format!("{SASL} (after 1ms in state AUTH_HANDSHAKE, 3 identical error(s) suppressed)"),
            format!("[thrd:sasl_plaintext://127.0.0.1:41589/bootstrap]: {SASL} (after 0ms in state AUTH_HANDSHAKE)"),
        ] {
            assert_eq!(stable_error(&raw), SASL, "{raw}");
        }
        let refused = "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused (after 0ms in state CONNECT)";
        assert_eq!(
            stable_error(refused),
            "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused"
        );
        // Parentheses of the message itself stay.
        assert_eq!(stable_error("Broker: Unknown (x)"), "Broker: Unknown (x)");
    }

    #[test]
    fn the_cause_wins_over_the_aggregate_and_is_kept() {
        let down = "[thrd:sasl_plaintext://127.0.0.1:41589/bootstrap]: 1/1 brokers are down";
        let errors = [
            format!("{SASL} (after 0ms in state AUTH_HANDSHAKE)"),
            down.to_owned(),
        ];
        assert_eq!(latest_cause(&errors, false).as_deref(), Some(SASL));
        // Only the aggregate since: the cause kept so far stays.
        assert_eq!(latest_cause(&[down.to_owned()], true), None);
        // Nothing better known: the aggregate is what there is.
        assert_eq!(
            latest_cause(&[down.to_owned()], false).as_deref(),
            Some("1/1 brokers are down")
        );
        assert_eq!(latest_cause(&[], false), None);
    }
}
