//! The operator's Prometheus metrics, served on `/metrics` in the Prometheus text exposition
//! format (version 0.0.4). Every name starts with `tributary_`.
//!
//! Counters and histograms are recorded where things happen: reconciles around every
//! reconciler ([`Metrics::reconciled`]), broker requests by the decorator every broker
//! connection is wrapped in ([`crate::runtime::instrumented`]), queue depth in the per-cluster batchers
//! ([`Metrics::pending`]). Gauges about Kubernetes objects (managed topics, consumer lag) are
//! read from the controllers' caches at scrape time ([`Metrics::collect_from`]), so an object
//! that is deleted simply stops being reported.
//!
//! One process-wide registry ([`global`]); a small, dependency-free implementation, since the
//! operator needs nothing beyond counters, gauges and one histogram.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use super::instrumented::RequestSink;
use crate::kafka::RequestTally;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds (seconds) of the reconcile duration histogram's buckets. A topic reconcile
/// includes the batch window (100 ms by default) and a broker round trip.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The queue of the per-cluster topic batchers ([`Metrics::pending`]).
pub const TOPIC_QUEUE: &str = "topics";
/// The queue of the per-cluster lag observers.
pub const LAG_QUEUE: &str = "lag";

/// Gauges read from the controllers' caches at scrape time.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ObjectGauges {
    /// `(namespace, ready)` → KafkaTopics.
    pub managed_topics: BTreeMap<(String, bool), i64>,
    /// `(namespace, KafkaConsumer name, consumer group)` → total lag in records.
    pub consumer_lag: BTreeMap<(String, String, String), i64>,
}

/// Adds what one set of caches holds to the gauges.
pub type Collector = Box<dyn Fn(&mut ObjectGauges) + Send + Sync>;

#[derive(Debug, Clone, PartialEq)]
struct Histogram {
    /// Observations per bucket of [`DURATION_BUCKETS`] (not cumulative); the last one is +Inf.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            buckets: vec![0; DURATION_BUCKETS.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        let i = DURATION_BUCKETS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(DURATION_BUCKETS.len());
        self.buckets[i] += 1;
        self.sum += seconds;
        self.count += 1;
    }
}

/// A registry of the operator's metrics.
#[derive(Default)]
pub struct Metrics {
    /// `(kind, result)` → reconciles.
    reconciles: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    durations: Mutex<BTreeMap<&'static str, Histogram>>,
    /// `(api, result)` → broker requests.
    broker_requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// queue → items submitted and not yet answered.
    queues: Mutex<BTreeMap<&'static str, i64>>,
    leader: AtomicI64,
    collectors: Mutex<Vec<(u64, Collector)>>,
    next_collector: AtomicU64,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The process-wide registry `/metrics` serves.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Broker requests counted by [`crate::runtime::instrumented::Instrumented`].
impl RequestSink for Metrics {
    fn record(&self, requests: &RequestTally) {
        for (api, result, n) in requests.counts() {
            self.broker_requests(api, result, n);
        }
    }
}

/// One item in a queue until dropped (see [`Metrics::pending`]).
pub struct Pending<'a> {
    metrics: &'a Metrics,
    queue: &'static str,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        *self
            .metrics
            .queues
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(self.queue)
            .or_insert(1) -= 1;
    }
}

/// Keeps a collector registered until dropped (see [`Metrics::collect_from`]).
pub struct CollectorGuard<'a> {
    metrics: &'a Metrics,
    id: u64,
}

impl Drop for CollectorGuard<'_> {
    fn drop(&mut self) {
        self.metrics
            .collectors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(id, _)| *id != self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Metrics {
    /// One reconcile of `kind` finished (`ok`: it returned an action rather than an error).
    pub fn reconciled(&self, kind: &'static str, ok: bool, took: Duration) {
        let result = if ok { "success" } else { "error" };
        *lock(&self.reconciles).entry((kind, result)).or_insert(0) += 1;
        lock(&self.durations)
            .entry(kind)
            .or_default()
            .observe(took.as_secs_f64());
    }

    pub fn broker_requests(&self, api: &'static str, result: &'static str, n: u64) {
        *lock(&self.broker_requests)
            .entry((api, result))
            .or_insert(0) += n;
    }

    /// One item enters `queue`; it leaves when the returned guard is dropped.
    pub fn pending(&self, queue: &'static str) -> Pending<'_> {
        *lock(&self.queues).entry(queue).or_insert(0) += 1;
        Pending {
            metrics: self,
            queue,
        }
    }

    /// Whether this process runs the controllers (it holds the lease, or runs without leader
    /// election).
    pub fn set_leader(&self, leader: bool) {
        self.leader.store(i64::from(leader), Ordering::Relaxed);
    }

    /// Reads gauges from `collector` at every scrape, until the guard is dropped.
    pub fn collect_from(&self, collector: Collector) -> CollectorGuard<'_> {
        let id = self.next_collector.fetch_add(1, Ordering::Relaxed);
        lock(&self.collectors).push((id, collector));
        CollectorGuard { metrics: self, id }
    }

    /// Every metric in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        header(
            &mut out,
            "tributary_build_info",
            "gauge",
            "Always 1; the version label says which Tributary runs.",
        );
        sample(
            &mut out,
            "tributary_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            1,
        );
        header(
            &mut out,
            "tributary_leader",
            "gauge",
            "1 when this process runs the controllers (it holds the leader-election lease, or runs without leader election), else 0.",
        );
        sample(
            &mut out,
            "tributary_leader",
            &[],
            self.leader.load(Ordering::Relaxed),
        );

        header(
            &mut out,
            "tributary_reconciles_total",
            "counter",
            "Reconciles by kind and result (success: an action was returned; error: retried with backoff).",
        );
        for ((kind, result), n) in lock(&self.reconciles).iter() {
            sample(
                &mut out,
                "tributary_reconciles_total",
                &[("kind", kind), ("result", result)],
                n,
            );
        }

        let name = "tributary_reconcile_duration_seconds";
        header(
            &mut out,
            name,
            "histogram",
            "Time each reconcile took, by kind.",
        );
        for (kind, h) in lock(&self.durations).iter() {
            let mut cumulative = 0;
            for (i, n) in h.buckets.iter().enumerate() {
                cumulative += n;
                let le = DURATION_BUCKETS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
                sample(
                    &mut out,
                    &format!("{name}_bucket"),
                    &[("kind", kind), ("le", &le)],
                    cumulative,
                );
            }
            sample(&mut out, &format!("{name}_sum"), &[("kind", kind)], h.sum);
            sample(
                &mut out,
                &format!("{name}_count"),
                &[("kind", kind)],
                h.count,
            );
        }

        header(
            &mut out,
            "tributary_broker_requests_total",
            "counter",
            "Kafka requests by API and result (ok, rejected, unsupported, unreachable, timeout, error); a batched request counts once, whatever the topics or groups in it.",
        );
        for ((api, result), n) in lock(&self.broker_requests).iter() {
            sample(
                &mut out,
                "tributary_broker_requests_total",
                &[("api", api), ("result", result)],
                n,
            );
        }

        header(
            &mut out,
            "tributary_queue_depth",
            "gauge",
            "Reconciles waiting in the per-cluster batchers for their broker round trip (queue topics: KafkaTopics; lag: KafkaConsumer lag observations).",
        );
        let mut queues = lock(&self.queues).clone();
        for q in [TOPIC_QUEUE, LAG_QUEUE] {
            queues.entry(q).or_insert(0);
        }
        for (queue, n) in &queues {
            sample(&mut out, "tributary_queue_depth", &[("queue", queue)], n);
        }

        let mut gauges = ObjectGauges::default();
        for (_, collect) in lock(&self.collectors).iter() {
            collect(&mut gauges);
        }
        header(
            &mut out,
            "tributary_managed_topics",
            "gauge",
            "KafkaTopics the operator manages (in its caches, not being deleted), by namespace and whether they are Ready.",
        );
        for ((namespace, ready), n) in &gauges.managed_topics {
            let ready = if *ready { "true" } else { "false" };
            sample(
                &mut out,
                "tributary_managed_topics",
                &[("namespace", namespace), ("ready", ready)],
                n,
            );
        }
        header(
            &mut out,
            "tributary_consumer_lag",
            "gauge",
            "Records a KafkaConsumer's group has yet to read, summed over its topics' partitions, as last observed.",
        );
        for ((namespace, name, group), n) in &gauges.consumer_lag {
            sample(
                &mut out,
                "tributary_consumer_lag",
                &[("namespace", namespace), ("name", name), ("group", group)],
                n,
            );
        }
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help.replace('\\', "\\\\"));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: impl std::fmt::Display) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(v));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {value}");
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        text.lines().filter(|l| l.starts_with(prefix)).collect()
    }

    #[test]
    fn reconciles_are_counted_by_kind_and_result_with_a_duration_histogram() {
        let m = Metrics::default();
        m.reconciled("KafkaTopic", true, Duration::from_millis(30));
        m.reconciled("KafkaTopic", true, Duration::from_millis(200));
        m.reconciled("KafkaTopic", false, Duration::from_secs(100));
        m.reconciled("KafkaCluster", true, Duration::from_millis(1));
        let text = m.render();
        assert_eq!(
            lines_of(&text, "tributary_reconciles_total"),
            [
                r#"tributary_reconciles_total{kind="KafkaCluster",result="success"} 1"#,
                r#"tributary_reconciles_total{kind="KafkaTopic",result="error"} 1"#,
                r#"tributary_reconciles_total{kind="KafkaTopic",result="success"} 2"#,
            ]
        );
        let topic = lines_of(
            &text,
            r#"tributary_reconcile_duration_seconds_bucket{kind="KafkaTopic""#,
        );
        assert_eq!(topic.len(), DURATION_BUCKETS.len() + 1);
        assert!(topic.contains(
            &r#"tributary_reconcile_duration_seconds_bucket{kind="KafkaTopic",le="0.025"} 0"#
        ));
        assert!(topic.contains(
            &r#"tributary_reconcile_duration_seconds_bucket{kind="KafkaTopic",le="0.05"} 1"#
        ));
        assert!(topic.contains(
            &r#"tributary_reconcile_duration_seconds_bucket{kind="KafkaTopic",le="0.25"} 2"#
        ));
        assert!(topic.contains(
            &r#"tributary_reconcile_duration_seconds_bucket{kind="KafkaTopic",le="60"} 2"#
        ));
        assert!(topic.contains(
            &r#"tributary_reconcile_duration_seconds_bucket{kind="KafkaTopic",le="+Inf"} 3"#
        ));
        assert!(
            text.contains("tributary_reconcile_duration_seconds_count{kind=\"KafkaTopic\"} 3\n")
        );
        assert!(
            text.contains("tributary_reconcile_duration_seconds_sum{kind=\"KafkaTopic\"} 100.2")
        );
        assert!(text.contains("# TYPE tributary_reconcile_duration_seconds histogram\n"));
    }

    #[test]
    fn broker_requests_queue_depth_and_leadership() {
        let m = Metrics::default();
        m.broker_requests("CreateTopics", "ok", 1);
        m.broker_requests("Metadata", "ok", 2);
        m.broker_requests("Metadata", "unreachable", 1);
        let text = m.render();
        assert_eq!(
            lines_of(&text, "tributary_broker_requests_total"),
            [
                r#"tributary_broker_requests_total{api="CreateTopics",result="ok"} 1"#,
                r#"tributary_broker_requests_total{api="Metadata",result="ok"} 2"#,
                r#"tributary_broker_requests_total{api="Metadata",result="unreachable"} 1"#,
            ]
        );
        assert!(text.contains("tributary_leader 0\n"));
        m.set_leader(true);
        let a = m.pending(TOPIC_QUEUE);
        let b = m.pending(TOPIC_QUEUE);
        let text = m.render();
        assert!(text.contains("tributary_leader 1\n"));
        assert_eq!(
            lines_of(&text, "tributary_queue_depth"),
            [
                r#"tributary_queue_depth{queue="lag"} 0"#,
                r#"tributary_queue_depth{queue="topics"} 2"#,
            ]
        );
        drop((a, b));
        assert!(m
            .render()
            .contains("tributary_queue_depth{queue=\"topics\"} 0\n"));
    }

    #[test]
    fn object_gauges_come_from_registered_collectors_until_their_guard_is_dropped() {
        let m = Metrics::default();
        let guard = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            *g.managed_topics
                .entry(("booking".into(), true))
                .or_insert(0) += 2;
            g.consumer_lag.insert(
                ("booking".into(), "fraud".into(), "fraud-\"v2\"".into()),
                1200,
            );
        }));
        let _other = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            *g.managed_topics
                .entry(("booking".into(), true))
                .or_insert(0) += 1;
        }));
        let text = m.render();
        assert!(text.contains("tributary_managed_topics{namespace=\"booking\",ready=\"true\"} 3\n"));
        assert!(text.contains(
            "tributary_consumer_lag{namespace=\"booking\",name=\"fraud\",group=\"fraud-\\\"v2\\\"\"} 1200\n"
        ));
        drop(guard);
        let text = m.render();
        assert!(text.contains("tributary_managed_topics{namespace=\"booking\",ready=\"true\"} 1\n"));
        assert!(!text.contains("tributary_consumer_lag{"));
    }

    #[test]
    fn every_metric_has_help_and_type_and_the_tributary_prefix() {
        let text = Metrics::default().render();
        let types: Vec<&str> = lines_of(&text, "# TYPE ")
            .iter()
            .map(|l| l.split(' ').nth(2).unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "tributary_build_info",
                "tributary_leader",
                "tributary_reconciles_total",
                "tributary_reconcile_duration_seconds",
                "tributary_broker_requests_total",
                "tributary_queue_depth",
                "tributary_managed_topics",
                "tributary_consumer_lag",
            ]
        );
        assert_eq!(lines_of(&text, "# HELP ").len(), types.len());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("tributary_"), "{line}");
        }
    }
}
