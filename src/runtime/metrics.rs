//! The operator's Prometheus metrics, on the `prometheus-client` crate, served on `/metrics` in
//! the Prometheus text exposition format (version 0.0.4). Every name starts with `tributary_`.
//!
//! One [`Metrics`] per operator: the process creates it (it travels in
//! [`crate::runtime::Options::metrics`]), the controllers' [`crate::runtime::Context`] holds it
//! and the HTTP endpoint serves it; there is no global registry. Counters and histograms are
//! recorded where things happen: reconciles around every reconciler ([`Metrics::reconciled`]),
//! broker requests by the decorator every broker connection is wrapped in
//! ([`crate::runtime::instrumented`]), queue depth in the per-cluster batchers
//! ([`Metrics::queue`]). Gauges about Kubernetes objects (managed topics, consumer lag) are read
//! from the controllers' caches at scrape time ([`Metrics::collect_from`]), so an object that is
//! deleted simply stops being reported.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus_client::collector::Collector as ScrapeCollector;
use prometheus_client::encoding::{
    prometheus_text, DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::instrumented::RequestSink;
use crate::kafka::RequestTally;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the reconcile duration histogram's buckets. A topic reconcile
/// includes the batch window (100 ms by default) and a broker round trip.
pub const DURATION_BUCKETS: [f64; 13] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The queue of the per-cluster topic batchers ([`Metrics::queue`]).
pub const TOPIC_QUEUE: &str = "topics";
/// The queue of the per-cluster lag observers.
pub const LAG_QUEUE: &str = "lag";

/// Gauges read from the controllers' caches at scrape time.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ObjectGauges {
    /// `(namespace, KafkaCluster name, ready)` → KafkaTopics.
    pub managed_topics: BTreeMap<(String, String, bool), i64>,
    /// `(namespace, KafkaConsumer name, consumer group)` → total lag in records.
    pub consumer_lag: BTreeMap<(String, String, String), i64>,
    /// `(namespace, KafkaConsumer name, consumer group)` of the consumers whose lag is unknown
    /// (topic missing on the broker, broker unreachable): absent from `consumer_lag`.
    pub consumer_lag_unknown: std::collections::BTreeSet<(String, String, String)>,
    /// `(namespace, KafkaConsumer name, consumer group)` → replicas the Deployment was given.
    pub consumer_replicas: BTreeMap<(String, String, String), i64>,
    /// `(namespace, KafkaConsumer name, consumer group)` → how many replicas can get a
    /// partition (the ceiling of the scaling).
    pub consumer_partitions: BTreeMap<(String, String, String), i64>,
    /// `(namespace, KafkaConsumer name, consumer group)` → `spec.autoscaling.lagThreshold`
    /// (autoscaled consumers only).
    pub consumer_lag_threshold: BTreeMap<(String, String, String), i64>,
    /// `(kind, namespace, name)` → `(reason, stalled)` of every object whose `Ready`
    /// condition is not `True`.
    pub not_ready: BTreeMap<(String, String, String), (String, bool)>,
    /// `(kind, namespace)` → whether that watch is answering (empty namespace: all).
    pub watches_up: BTreeMap<(String, String), bool>,
}

/// Adds what one set of caches holds to the gauges.
pub type Collector = Box<dyn Fn(&mut ObjectGauges) + Send + Sync>;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReconcileLabels {
    kind: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    api: &'static str,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QueueLabels {
    queue: &'static str,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// The operator's metrics and the registry that serves them.
pub struct Metrics {
    registry: Registry,
    reconciles: Family<ReconcileLabels, Counter>,
    durations: Family<KindLabels, Histogram, fn() -> Histogram>,
    broker_requests: Family<RequestLabels, Counter>,
    conflicts: Family<KindLabels, Counter>,
    queue_depth: Family<QueueLabels, Gauge>,
    leader: Gauge,
    objects: Arc<ObjectCollectors>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric of the operator. (Help texts are given without their final
    /// period: the registry adds it.)
    pub fn new() -> Self {
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        let durations: Family<KindLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        let broker_requests = Family::<RequestLabels, Counter>::default();
        let conflicts = Family::<KindLabels, Counter>::default();
        let queue_depth = Family::<QueueLabels, Gauge>::default();
        for queue in [TOPIC_QUEUE, LAG_QUEUE] {
            let _ = queue_depth.get_or_create(&QueueLabels { queue });
        }
        let leader = Gauge::default();
        let objects = Arc::new(ObjectCollectors::default());

        let mut registry = Registry::default();
        registry.register(
            "tributary_build",
            "Always 1; the version label says which Tributary runs",
            Info::new([("version", env!("CARGO_PKG_VERSION"))]),
        );
        registry.register(
            "tributary_leader",
            "1 when this process runs the controllers (it holds the leader-election lease, or runs without leader election), else 0",
            leader.clone(),
        );
        registry.register(
            "tributary_reconciles",
            "Reconciles by kind and result (success: an action was returned; error: retried with backoff)",
            Listed(reconciles.clone()),
        );
        registry.register(
            "tributary_reconcile_duration_seconds",
            "Time each reconcile took, by kind",
            Listed(durations.clone()),
        );
        registry.register(
            "tributary_broker_requests",
            "Kafka requests by API and result (ok, rejected, unsupported, unreachable, timeout, error); a batched request counts once, whatever the topics or groups in it",
            Listed(broker_requests.clone()),
        );
        registry.register(
            "tributary_conflicts",
            "Writes refused because the cached copy they were based on was stale (409, or a finalizer patch whose test failed), by kind; each is retried after a short backoff of its own",
            Listed(conflicts.clone()),
        );
        registry.register(
            "tributary_queue_depth",
            "Reconciles waiting in the per-cluster batchers for their broker round trip (queue topics: KafkaTopics; lag: KafkaConsumer lag observations)",
            Listed(queue_depth.clone()),
        );
        registry.register_collector(Box::new(objects.clone()));
        Self {
            registry,
            reconciles,
            durations,
            broker_requests,
            conflicts,
            queue_depth,
            leader,
            objects,
        }
    }

    /// One reconcile of `kind` finished with `result` (`success`, or the error's
    /// [`crate::runtime::Error::metric_label`]).
    pub fn reconciled(&self, kind: &'static str, result: &'static str, took: Duration) {
        self.reconciles
            .get_or_create(&ReconcileLabels { kind, result })
            .inc();
        self.durations
            .get_or_create(&KindLabels { kind })
            .observe(took.as_secs_f64());
    }

    /// A write of a `kind` object refused as a conflict (see [`crate::runtime::conflict`]).
    pub fn conflict(&self, kind: &'static str) {
        self.conflicts.get_or_create(&KindLabels { kind }).inc();
    }

    /// `n` broker requests of `api` that ended with `result`.
    pub fn broker_requests(&self, api: &'static str, result: &'static str, n: u64) {
        self.broker_requests
            .get_or_create(&RequestLabels { api, result })
            .inc_by(n);
    }

    /// The depth of `queue` ([`TOPIC_QUEUE`], [`LAG_QUEUE`]).
    pub fn queue(&self, queue: &'static str) -> QueueDepth {
        QueueDepth(
            self.queue_depth
                .get_or_create(&QueueLabels { queue })
                .clone(),
        )
    }

    /// Whether this process runs the controllers (it holds the lease, or runs without leader
    /// election).
    pub fn set_leader(&self, leader: bool) {
        self.leader.set(i64::from(leader));
    }

    /// Reads gauges from `collector` at every scrape, until the guard is dropped.
    pub fn collect_from(&self, collector: Collector) -> CollectorGuard<'_> {
        let id = self.objects.next.fetch_add(1, Ordering::Relaxed);
        self.objects.collectors().push((id, collector));
        CollectorGuard { metrics: self, id }
    }

    /// Every metric in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if prometheus_text::encode(&mut out, &self.registry).is_err() {
            tracing::warn!("encoding the metrics failed; serving what was encoded");
        }
        out
    }
}

/// Broker requests counted by [`crate::runtime::instrumented::Instrumented`].
impl RequestSink for Metrics {
    fn record(&self, requests: &RequestTally) {
        for (api, result, n) in requests.counts() {
            self.broker_requests(api, result, n);
        }
    }
}

/// The depth gauge of one queue: items submitted and not yet answered.
#[derive(Debug, Clone, Default)]
pub struct QueueDepth(Gauge);

impl QueueDepth {
    /// One item enters the queue; it leaves when the returned guard is dropped.
    pub fn pending(&self) -> Pending {
        self.0.inc();
        Pending(self.0.clone())
    }
}

/// One item in a queue until dropped (see [`QueueDepth::pending`]).
pub struct Pending(Gauge);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.dec();
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
            .objects
            .collectors()
            .retain(|(id, _)| *id != self.id);
    }
}

/// A registered metric family whose HELP and TYPE lines are served even before its first
/// sample (`prometheus-client` leaves out a family with no samples; the operator always listed
/// every metric).
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }
}

/// The object gauges, from the registered [`Collector`]s at every scrape.
#[derive(Default)]
struct ObjectCollectors {
    collectors: Mutex<Vec<(u64, Collector)>>,
    next: AtomicU64,
}

impl ObjectCollectors {
    fn collectors(&self) -> MutexGuard<'_, Vec<(u64, Collector)>> {
        self.collectors.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl std::fmt::Debug for ObjectCollectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectCollectors").finish_non_exhaustive()
    }
}

impl ScrapeCollector for ObjectCollectors {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut gauges = ObjectGauges::default();
        for (_, collect) in self.collectors().iter() {
            collect(&mut gauges);
        }
        {
            let mut family = encoder.encode_descriptor(
                "tributary_managed_topics",
                "KafkaTopics the operator manages (in its caches, not being deleted), by namespace, KafkaCluster and whether they are Ready.",
                None,
                MetricType::Gauge,
            )?;
            for ((namespace, cluster, ready), n) in &gauges.managed_topics {
                let ready = if *ready { "true" } else { "false" };
                let labels = [
                    ("namespace", namespace.as_str()),
                    ("cluster", cluster.as_str()),
                    ("ready", ready),
                ];
                ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "tributary_consumer_lag",
                "Records a KafkaConsumer's group has yet to read, summed over its topics' partitions, as last observed.",
                None,
                MetricType::Gauge,
            )?;
            for ((namespace, name, group), n) in &gauges.consumer_lag {
                let labels = [
                    ("namespace", namespace.as_str()),
                    ("name", name.as_str()),
                    ("group", group.as_str()),
                ];
                ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "tributary_consumer_lag_unknown",
                "1 for a KafkaConsumer whose lag could not be observed at its last poll (a topic missing on the broker, the broker unreachable); such a consumer is absent from tributary_consumer_lag.",
                None,
                MetricType::Gauge,
            )?;
            for (namespace, name, group) in &gauges.consumer_lag_unknown {
                let labels = [
                    ("namespace", namespace.as_str()),
                    ("name", name.as_str()),
                    ("group", group.as_str()),
                ];
                ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
            }
        }
        for (metric, help, values) in [
            (
                "tributary_consumer_replicas",
                "Replicas a KafkaConsumer's Deployment was given (status.replicas).",
                &gauges.consumer_replicas,
            ),
            (
                "tributary_consumer_partitions",
                "How many replicas of a KafkaConsumer can get a partition (status.partitions): more would sit idle, so the operator never scales past it.",
                &gauges.consumer_partitions,
            ),
            (
                "tributary_consumer_lag_threshold",
                "spec.autoscaling.lagThreshold of an autoscaled KafkaConsumer: the lag one replica is expected to handle.",
                &gauges.consumer_lag_threshold,
            ),
        ] {
            let mut family =
                encoder.encode_descriptor(metric, help, None, MetricType::Gauge)?;
            for ((namespace, name, group), n) in values {
                let labels = [
                    ("namespace", namespace.as_str()),
                    ("name", name.as_str()),
                    ("group", group.as_str()),
                ];
                ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
            }
        }
        {
            let mut family = encoder.encode_descriptor(
                "tributary_object_not_ready",
                "1 for each object whose Ready condition is not True, with the condition's reason and whether it is Stalled (needs a person); a Ready object is absent.",
                None,
                MetricType::Gauge,
            )?;
            for ((kind, namespace, name), (reason, stalled)) in &gauges.not_ready {
                let stalled = if *stalled { "true" } else { "false" };
                let labels = [
                    ("kind", kind.as_str()),
                    ("namespace", namespace.as_str()),
                    ("name", name.as_str()),
                    ("reason", reason.as_str()),
                    ("stalled", stalled),
                ];
                ConstGauge::new(1i64).encode(family.encode_family(&labels)?)?;
            }
        }
        let mut family = encoder.encode_descriptor(
            "tributary_watch_up",
            "1 while the watch of a kind in a namespace (empty: all namespaces) is answering, 0 while its requests fail (it retries every 0.5 to 5 s).",
            None,
            MetricType::Gauge,
        )?;
        for ((kind, namespace), up) in &gauges.watches_up {
            let labels = [("kind", kind.as_str()), ("namespace", namespace.as_str())];
            ConstGauge::new(i64::from(*up)).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines starting with `prefix`, sorted (a family's samples come in no fixed order).
    fn lines_of<'a>(text: &'a str, prefix: &str) -> Vec<&'a str> {
        let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        lines.sort_unstable();
        lines
    }

    #[test]
    fn reconciles_are_counted_by_kind_and_result_with_a_duration_histogram() {
        let m = Metrics::default();
        m.reconciled("KafkaTopic", "success", Duration::from_millis(30));
        m.reconciled("KafkaTopic", "success", Duration::from_millis(200));
        m.reconciled("KafkaTopic", "error", Duration::from_secs(100));
        m.reconciled("KafkaCluster", "success", Duration::from_millis(1));
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
        assert!(text.contains("# TYPE tributary_reconciles_total counter\n"));
    }

    #[test]
    fn broker_requests_queue_depth_and_leadership() {
        let m = Metrics::default();
        m.broker_requests("CreateTopics", "ok", 1);
        m.broker_requests("Metadata", "ok", 2);
        m.broker_requests("Metadata", "unreachable", 1);
        let mut tally = RequestTally::default();
        tally.request("Metadata", Ok(()));
        m.record(&tally);
        let text = m.render();
        assert_eq!(
            lines_of(&text, "tributary_broker_requests_total"),
            [
                r#"tributary_broker_requests_total{api="CreateTopics",result="ok"} 1"#,
                r#"tributary_broker_requests_total{api="Metadata",result="ok"} 3"#,
                r#"tributary_broker_requests_total{api="Metadata",result="unreachable"} 1"#,
            ]
        );
        assert!(text.contains("# TYPE tributary_broker_requests_total counter\n"));
        assert!(text.contains("tributary_leader 0\n"));
        m.set_leader(true);
        let topics = m.queue(TOPIC_QUEUE);
        let a = topics.pending();
        let b = m.queue(TOPIC_QUEUE).pending();
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
    fn watch_health_is_a_gauge_per_kind_and_namespace() {
        let m = Metrics::default();
        let _gauges = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            g.watches_up
                .insert(("KafkaTopic".into(), "booking".into()), true);
            g.watches_up
                .insert(("Deployment".into(), String::new()), false);
        }));
        assert_eq!(
            lines_of(&m.render(), "tributary_watch_up"),
            [
                r#"tributary_watch_up{kind="Deployment",namespace=""} 0"#,
                r#"tributary_watch_up{kind="KafkaTopic",namespace="booking"} 1"#,
            ]
        );
    }

    #[test]
    fn conflicts_are_counted_by_kind() {
        let m = Metrics::default();
        let text = m.render();
        assert!(
            text.contains("# TYPE tributary_conflicts_total counter\n"),
            "listed before any"
        );
        m.conflict("KafkaTopic");
        m.conflict("KafkaTopic");
        m.conflict("KafkaConsumer");
        assert_eq!(
            lines_of(&m.render(), "tributary_conflicts_total"),
            [
                r#"tributary_conflicts_total{kind="KafkaConsumer"} 1"#,
                r#"tributary_conflicts_total{kind="KafkaTopic"} 2"#,
            ]
        );
    }

    #[test]
    fn object_gauges_come_from_registered_collectors_until_their_guard_is_dropped() {
        let m = Metrics::default();
        let guard = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            *g.managed_topics
                .entry(("booking".into(), "main".into(), true))
                .or_insert(0) += 2;
            g.consumer_lag.insert(
                ("booking".into(), "fraud".into(), "fraud-\"v2\"\\\n".into()),
                1200,
            );
            g.consumer_lag_unknown
                .insert(("booking".into(), "audit".into(), "audit".into()));
        }));
        let _other = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            *g.managed_topics
                .entry(("booking".into(), "main".into(), true))
                .or_insert(0) += 1;
        }));
        let text = m.render();
        assert!(text.contains(
            "tributary_managed_topics{namespace=\"booking\",cluster=\"main\",ready=\"true\"} 3\n"
        ));
        assert!(text.contains(
            "tributary_consumer_lag{namespace=\"booking\",name=\"fraud\",group=\"fraud-\\\"v2\\\"\\\\\\n\"} 1200\n"
        ));
        assert!(text.contains(
            "tributary_consumer_lag_unknown{namespace=\"booking\",name=\"audit\",group=\"audit\"} 1\n"
        ));
        assert!(!text.contains("tributary_consumer_lag{namespace=\"booking\",name=\"audit\""));
        drop(guard);
        let text = m.render();
        assert!(text.contains(
            "tributary_managed_topics{namespace=\"booking\",cluster=\"main\",ready=\"true\"} 1\n"
        ));
        assert!(!text.contains("tributary_consumer_lag{"));
    }

    #[test]
    fn consumer_scaling_and_objects_not_ready_are_gauges_named_by_object() {
        let m = Metrics::default();
        let _gauges = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            let key = (
                "booking".to_owned(),
                "fraud".to_owned(),
                "fraud-v2".to_owned(),
            );
            g.consumer_replicas.insert(key.clone(), 3);
            g.consumer_partitions.insert(key.clone(), 6);
            g.consumer_lag_threshold.insert(key, 1000);
            g.not_ready.insert(
                ("KafkaTopic".into(), "booking".into(), "orders".into()),
                ("PartitionDecrease".into(), true),
            );
            g.not_ready.insert(
                ("KafkaCluster".into(), "booking".into(), "main".into()),
                ("BrokerUnreachable".into(), false),
            );
        }));
        let text = m.render();
        for line in [
            r#"tributary_consumer_replicas{namespace="booking",name="fraud",group="fraud-v2"} 3"#,
            r#"tributary_consumer_partitions{namespace="booking",name="fraud",group="fraud-v2"} 6"#,
            r#"tributary_consumer_lag_threshold{namespace="booking",name="fraud",group="fraud-v2"} 1000"#,
            r#"tributary_object_not_ready{kind="KafkaTopic",namespace="booking",name="orders",reason="PartitionDecrease",stalled="true"} 1"#,
            r#"tributary_object_not_ready{kind="KafkaCluster",namespace="booking",name="main",reason="BrokerUnreachable",stalled="false"} 1"#,
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line} in\n{text}");
        }
    }

    #[test]
    fn every_metric_has_help_and_type_and_the_tributary_prefix() {
        let text = Metrics::default().render();
        let types: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("# TYPE "))
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
                "tributary_conflicts_total",
                "tributary_queue_depth",
                "tributary_managed_topics",
                "tributary_consumer_lag",
                "tributary_consumer_lag_unknown",
                "tributary_consumer_replicas",
                "tributary_consumer_partitions",
                "tributary_consumer_lag_threshold",
                "tributary_object_not_ready",
                "tributary_watch_up",
            ]
        );
        assert_eq!(lines_of(&text, "# HELP ").len(), types.len());
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("tributary_"), "{line}");
        }
    }

    /// What dashboards depend on, exactly as the hand-written registry wrote it: names, types,
    /// help texts, labels and values (sample order aside).
    #[test]
    fn the_exposition_is_that_of_the_hand_written_registry() {
        let m = Metrics::default();
        m.reconciled("KafkaCluster", "success", Duration::from_millis(1));
        m.broker_requests("Metadata", "timeout", 2);
        m.set_leader(true);
        let _queued = m.queue(TOPIC_QUEUE).pending();
        let _gauges = m.collect_from(Box::new(|g: &mut ObjectGauges| {
            g.managed_topics
                .insert(("booking".into(), "main".into(), false), 2);
        }));
        let text = m.render();
        let expected = format!(
            r#"# HELP tributary_build_info Always 1; the version label says which Tributary runs.
# TYPE tributary_build_info gauge
tributary_build_info{{version="{}"}} 1
# HELP tributary_leader 1 when this process runs the controllers (it holds the leader-election lease, or runs without leader election), else 0.
# TYPE tributary_leader gauge
tributary_leader 1
# HELP tributary_reconciles_total Reconciles by kind and result (success: an action was returned; error: retried with backoff).
# TYPE tributary_reconciles_total counter
tributary_reconciles_total{{kind="KafkaCluster",result="success"}} 1
# HELP tributary_reconcile_duration_seconds Time each reconcile took, by kind.
# TYPE tributary_reconcile_duration_seconds histogram
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.005"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.01"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.025"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.05"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.1"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.25"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="0.5"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="1"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="2.5"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="5"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="10"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="30"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="60"}} 1
tributary_reconcile_duration_seconds_bucket{{kind="KafkaCluster",le="+Inf"}} 1
tributary_reconcile_duration_seconds_sum{{kind="KafkaCluster"}} 0.001
tributary_reconcile_duration_seconds_count{{kind="KafkaCluster"}} 1
# HELP tributary_broker_requests_total Kafka requests by API and result (ok, rejected, unsupported, unreachable, timeout, error); a batched request counts once, whatever the topics or groups in it.
# TYPE tributary_broker_requests_total counter
tributary_broker_requests_total{{api="Metadata",result="timeout"}} 2
# HELP tributary_conflicts_total Writes refused because the cached copy they were based on was stale (409, or a finalizer patch whose test failed), by kind; each is retried after a short backoff of its own.
# TYPE tributary_conflicts_total counter
# HELP tributary_queue_depth Reconciles waiting in the per-cluster batchers for their broker round trip (queue topics: KafkaTopics; lag: KafkaConsumer lag observations).
# TYPE tributary_queue_depth gauge
tributary_queue_depth{{queue="lag"}} 0
tributary_queue_depth{{queue="topics"}} 1
# HELP tributary_managed_topics KafkaTopics the operator manages (in its caches, not being deleted), by namespace, KafkaCluster and whether they are Ready.
# TYPE tributary_managed_topics gauge
tributary_managed_topics{{namespace="booking",cluster="main",ready="false"}} 2
# HELP tributary_consumer_lag Records a KafkaConsumer's group has yet to read, summed over its topics' partitions, as last observed.
# TYPE tributary_consumer_lag gauge
# HELP tributary_consumer_lag_unknown 1 for a KafkaConsumer whose lag could not be observed at its last poll (a topic missing on the broker, the broker unreachable); such a consumer is absent from tributary_consumer_lag.
# TYPE tributary_consumer_lag_unknown gauge
# HELP tributary_consumer_replicas Replicas a KafkaConsumer's Deployment was given (status.replicas).
# TYPE tributary_consumer_replicas gauge
# HELP tributary_consumer_partitions How many replicas of a KafkaConsumer can get a partition (status.partitions): more would sit idle, so the operator never scales past it.
# TYPE tributary_consumer_partitions gauge
# HELP tributary_consumer_lag_threshold spec.autoscaling.lagThreshold of an autoscaled KafkaConsumer: the lag one replica is expected to handle.
# TYPE tributary_consumer_lag_threshold gauge
# HELP tributary_object_not_ready 1 for each object whose Ready condition is not True, with the condition's reason and whether it is Stalled (needs a person); a Ready object is absent.
# TYPE tributary_object_not_ready gauge
# HELP tributary_watch_up 1 while the watch of a kind in a namespace (empty: all namespaces) is answering, 0 while its requests fail (it retries every 0.5 to 5 s).
# TYPE tributary_watch_up gauge
"#,
            env!("CARGO_PKG_VERSION")
        );
        let sorted = |t: &str| {
            let mut lines: Vec<String> = t.lines().map(str::to_owned).collect();
            lines.sort();
            lines
        };
        assert_eq!(sorted(&text), sorted(&expected), "{text}");
    }
}
