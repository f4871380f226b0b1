//! Kubernetes Events, aggregated: the first Event of a kind about an object is created; a repeat
//! within [`SERIES_TTL`] (same object, type, reason and action) patches that Event's series
//! (count and last time) instead of creating another, as kube-runtime's `Recorder` does.
//!
//! Kept here rather than using that `Recorder` because of its cost at scale: it sweeps its
//! whole cache on every publish (a burst of n topics' first Events costs n² checks) and keeps
//! every Event it made in full for the TTL. [`SeriesCache`] expires entries in the order they
//! were last seen (a queue: each publish does a constant amount of work on average) and keeps
//! per series only what the patch needs.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::events::{Event, EventType, Reporter};
use kube::Client;

/// How long a series stays open for repeats after its last Event (kube-runtime's figure).
pub const SERIES_TTL: Duration = Duration::from_secs(6 * 60);

/// What identifies a series: the object, and the Event's type, reason and action.
fn series_key(ev: &Event, regarding: &ObjectReference) -> u64 {
    let mut h = DefaultHasher::new();
    matches!(ev.type_, EventType::Warning).hash(&mut h);
    ev.reason.hash(&mut h);
    ev.action.hash(&mut h);
    regarding.uid.hash(&mut h);
    regarding.namespace.hash(&mut h);
    regarding.name.hash(&mut h);
    regarding.kind.hash(&mut h);
    regarding.api_version.hash(&mut h);
    ev.secondary
        .as_ref()
        .map(|s| (&s.uid, &s.name))
        .hash(&mut h);
    h.finish()
}

/// One open series: the Event to patch and how often it was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Series {
    name: String,
    namespace: String,
    count: i32,
    last: Timestamp,
}

/// What to do for one Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publish {
    /// Create a new Event.
    Create,
    /// Patch Event `name` in `namespace`: seen `count` times now.
    Repeat {
        name: String,
        namespace: String,
        count: i32,
    },
}

/// The open series, expired oldest first (pure; the clock is passed in).
#[derive(Debug, Default)]
pub struct SeriesCache {
    series: HashMap<u64, Series>,
    /// (last seen, key) in the order seen; an entry whose series was seen again since is stale.
    order: VecDeque<(Timestamp, u64)>,
    ttl: Duration,
    /// Queue entries examined by expiry so far (for the cost tests).
    examined: u64,
}

impl SeriesCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            ..Default::default()
        }
    }

    /// Whether the Event of `key` at `now` creates a new Event or repeats an open series.
    pub fn publish(&mut self, key: u64, now: Timestamp) -> Publish {
        self.expire(now);
        match self.series.get(&key) {
            Some(s) => Publish::Repeat {
                name: s.name.clone(),
                namespace: s.namespace.clone(),
                count: s.count + 1,
            },
            None => Publish::Create,
        }
    }

    /// Records that the Event of `key` was written (created as `name`, or repeated).
    pub fn written(&mut self, key: u64, name: &str, namespace: &str, now: Timestamp) {
        let series = self.series.entry(key).or_insert_with(|| Series {
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            count: 0,
            last: now,
        });
        series.count += 1;
        series.last = now;
        self.order.push_back((now, key));
    }

    /// Closes the series not seen for the TTL.
    fn expire(&mut self, now: Timestamp) {
        let ttl = k8s_openapi::jiff::SignedDuration::try_from(self.ttl).unwrap_or_default();
        while let Some((seen, key)) = self.order.front().copied() {
            if seen.saturating_add(ttl).unwrap_or(seen) > now {
                break;
            }
            self.examined += 1;
            self.order.pop_front();
            if self.series.get(&key).is_some_and(|s| s.last <= seen) {
                self.series.remove(&key);
            }
        }
    }

    /// Open series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// Publishes Events through the API server, aggregating repeats.
pub struct Recorder {
    client: Client,
    reporter: Reporter,
    cache: Mutex<SeriesCache>,
}

impl Recorder {
    pub fn new(client: Client, reporter: Reporter) -> Self {
        Self {
            client,
            reporter,
            cache: Mutex::new(SeriesCache::new(SERIES_TTL)),
        }
    }

    /// Creates the Event, or patches its open series.
    pub async fn publish(
        &self,
        ev: &Event,
        regarding: &ObjectReference,
    ) -> Result<(), kube::Error> {
        let now = Timestamp::now();
        let key = series_key(ev, regarding);
        let action = self.cache.lock().unwrap().publish(key, now);
        let namespace = regarding.namespace.clone().unwrap_or("default".into());
        match action {
            Publish::Repeat {
                name,
                namespace,
                count,
            } => {
                let patch = serde_json::json!({
                    "note": ev.note,
                    "series": { "count": count, "lastObservedTime": MicroTime(now) },
                });
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                self.cache
                    .lock()
                    .unwrap()
                    .written(key, &name, &namespace, now);
            }
            Publish::Create => {
                let event = self.event(ev, regarding, now);
                let name = event.metadata.name.clone().unwrap_or_default();
                Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
                    .create(&PostParams::default(), &event)
                    .await?;
                self.cache
                    .lock()
                    .unwrap()
                    .written(key, &name, &namespace, now);
            }
        }
        Ok(())
    }

    fn event(&self, ev: &Event, regarding: &ObjectReference, now: Timestamp) -> K8sEvent {
        K8sEvent {
            action: Some(ev.action.clone()),
            reason: Some(ev.reason.clone()),
            event_time: Some(MicroTime(now)),
            regarding: Some(regarding.clone()),
            note: ev.note.clone(),
            metadata: ObjectMeta {
                namespace: regarding.namespace.clone(),
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_ref().unwrap_or(&self.reporter.controller),
                    now.as_nanosecond()
                )),
                ..Default::default()
            },
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            type_: Some(match ev.type_ {
                EventType::Normal => "Normal".into(),
                EventType::Warning => "Warning".into(),
            }),
            related: ev.secondary.clone(),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    #[test]
    fn a_repeat_within_the_ttl_patches_the_series_and_one_after_it_creates_anew() {
        let mut cache = SeriesCache::new(Duration::from_secs(60));
        assert_eq!(cache.publish(7, at(0)), Publish::Create);
        cache.written(7, "t.1", "ns", at(0));
        assert_eq!(
            cache.publish(7, at(30)),
            Publish::Repeat {
                name: "t.1".into(),
                namespace: "ns".into(),
                count: 2
            }
        );
        cache.written(7, "t.1", "ns", at(30));
        // Seen again at 30 s: still open at 80 s, closed 60 s after its last sighting.
        assert!(matches!(
            cache.publish(7, at(80)),
            Publish::Repeat { count: 3, .. }
        ));
        assert_eq!(cache.publish(7, at(91)), Publish::Create);
        assert!(cache.is_empty());
    }

    #[test]
    fn distinct_series_are_kept_apart_and_expire_in_order() {
        let mut cache = SeriesCache::new(Duration::from_secs(60));
        for (i, key) in [1u64, 2, 3].into_iter().enumerate() {
            assert_eq!(cache.publish(key, at(i as i64 * 20)), Publish::Create);
            cache.written(key, &format!("e{key}"), "ns", at(i as i64 * 20));
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.publish(9, at(70)), Publish::Create, "key 1 closed");
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_burst_of_distinct_events_costs_linear_work() {
        // kube-runtime's Recorder swept its whole cache on every publish: n first Events cost
        // n * (n - 1) / 2 checks. Here each written Event is examined by expiry at most once.
        let mut cache = SeriesCache::new(Duration::from_secs(360));
        let n = 5_000u64;
        for key in 0..n {
            let now = at((key / 100) as i64);
            assert_eq!(cache.publish(key, now), Publish::Create);
            cache.written(key, "e", "ns", now);
        }
        assert_eq!(cache.len(), n as usize, "all within the TTL");
        assert_eq!(cache.examined, 0);
        cache.publish(u64::MAX, at(10_000));
        assert!(cache.is_empty());
        assert_eq!(cache.examined, n, "each examined once");
    }

    /// A burst of identical Events — the same reason and action about the same object, as
    /// 10,000 reconciles reporting the same thing would make — is one Event object whose series
    /// counts them, as Kubernetes' event recorder aggregates: one POST, then PATCHes of its
    /// series, never 10,000 objects.
    #[tokio::test]
    async fn ten_thousand_identical_events_are_one_event_with_a_series_count() {
        use http::{Method, Request, Response};
        use kube::client::Body;

        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let client = Client::new(service, "default");
        // The API server: created Events by name, and every series count patched in.
        let server = tokio::spawn(async move {
            let (mut created, mut counts) = (Vec::<serde_json::Value>::new(), Vec::<i64>::new());
            while let Some((request, respond)) = handle.next_request().await {
                let method = request.method().clone();
                let path = request.uri().path().to_owned();
                let body = http_body_util::BodyExt::collect(request.into_body())
                    .await
                    .unwrap()
                    .to_bytes();
                let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let answer = if method == Method::POST {
                    assert!(path.ends_with("/namespaces/booking/events"), "{path}");
                    created.push(body.clone());
                    body
                } else {
                    assert_eq!(method, Method::PATCH);
                    let name = path.rsplit('/').next().unwrap();
                    let event = created
                        .iter()
                        .find(|e| e["metadata"]["name"] == name)
                        .unwrap_or_else(|| panic!("PATCH of {name}, which was never created"));
                    counts.push(body["series"]["count"].as_i64().unwrap());
                    event.clone()
                };
                respond.send_response(
                    Response::builder()
                        .status(if method == Method::POST { 201 } else { 200 })
                        .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                        .unwrap(),
                );
            }
            (created, counts)
        });
        let recorder = Recorder::new(
            client,
            Reporter {
                controller: "tributary".into(),
                instance: None,
            },
        );
        let regarding = ObjectReference {
            api_version: Some("tributary.io/v1alpha1".into()),
            kind: Some("StreamTopology".into()),
            name: Some("shop".into()),
            namespace: Some("booking".into()),
            uid: Some("u-1".into()),
            ..Default::default()
        };
        let event = Event {
            type_: EventType::Normal,
            reason: "Created".into(),
            note: Some("topic created".into()),
            action: "Create".into(),
            secondary: None,
        };
        let n = 10_000;
        for _ in 0..n {
            recorder.publish(&event, &regarding).await.unwrap();
        }
        drop(recorder);
        let (created, counts) = server.await.unwrap();
        assert_eq!(
            created.len(),
            1,
            "one Event object for {n} identical Events"
        );
        assert_eq!(created[0]["reason"], "Created");
        assert_eq!(counts.len(), n - 1, "every repeat patches the series");
        assert_eq!(
            counts.last(),
            Some(&(n as i64)),
            "the series counts all {n}"
        );
        assert!(counts.windows(2).all(|w| w[1] == w[0] + 1));
    }
}
