//! The exact requests the KafkaTopic reconciler sends to the API server (kube with a
//! `tower-test` mock), with an in-memory broker behind the batcher.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use kube::client::Body;
use kube::runtime::reflector::{self, store::Writer};
use kube::runtime::watcher;
use kube::Client;
use serde_json::Value;

use super::{reconcile, Claims};
use crate::api::{
    DeletionPolicy, KafkaCluster, KafkaClusterSpec, KafkaTopic, KafkaTopicSpec, TopicDefaults,
};
use crate::kafka::memory::MemoryBroker;
use crate::kafka::BrokerAdmin;
use crate::runtime::{ClusterConnections, Context, Index, Options};

/// One request as the API server saw it.
#[derive(Debug)]
struct Seen {
    method: String,
    path: String,
    content_type: String,
    body: Value,
}

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

/// Answers every request by echoing its body (what create and patch return), recording it.
async fn serve(mut handle: Handle, expected: usize) -> Vec<Seen> {
    let mut seen = Vec::new();
    for _ in 0..expected {
        let (request, send) = handle.next_request().await.expect("another request");
        let method = request.method().to_string();
        let path = request.uri().to_string();
        let content_type = request
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = request.into_body().collect_bytes().await.unwrap();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let answer = if body.get("metadata").is_some() {
            body.clone()
        } else {
            topic_json()
        };
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                .unwrap(),
        );
        seen.push(Seen {
            method,
            path,
            content_type,
            body,
        });
    }
    seen
}

fn topic_json() -> Value {
    serde_json::to_value(topic(true)).unwrap()
}

fn topic(with_finalizer: bool) -> KafkaTopic {
    let mut t = KafkaTopic::new(
        "bookings",
        KafkaTopicSpec {
            cluster_ref: "local".into(),
            topic_name: None,
            partitions: 6,
            replication_factor: None,
            config: BTreeMap::from([("retention.ms".into(), "604800000".into())]),
            deletion_policy: DeletionPolicy::Retain,
        },
    );
    t.metadata.namespace = Some("booking".into());
    t.metadata.uid = Some("uid-1".into());
    t.metadata.generation = Some(4);
    t.metadata.resource_version = Some("10".into());
    if with_finalizer {
        t.metadata.finalizers = Some(vec![super::TOPIC_FINALIZER.into()]);
    }
    t
}

fn cluster() -> KafkaCluster {
    let mut c = KafkaCluster::new(
        "local",
        KafkaClusterSpec {
            bootstrap_servers: vec!["127.0.0.1:9092".into()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: None,
            topic_defaults: Some(TopicDefaults {
                replication_factor: Some(1),
                config: BTreeMap::new(),
            }),
        },
    );
    c.metadata.namespace = Some("booking".into());
    c
}

fn store<K: kube::Resource<DynamicType = ()> + Clone + 'static>(
    objects: Vec<K>,
) -> reflector::Store<K> {
    let mut writer: Writer<K> = Writer::default();
    let reader = writer.as_reader();
    writer.apply_watcher_event(&watcher::Event::Init);
    for o in objects {
        writer.apply_watcher_event(&watcher::Event::InitApply(o));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    reader
}

/// The claims index of a watch that listed `topics`.
fn claims(topics: &[KafkaTopic]) -> Arc<Claims> {
    let claims = Arc::new(Claims::default());
    claims.observe(&watcher::Event::Init);
    for t in topics {
        claims.observe(&watcher::Event::InitApply(t.clone()));
    }
    claims.observe(&watcher::Event::InitDone);
    claims
}

/// A context whose caches hold the cluster and `topics`, with the claims index of `topics`.
fn context(
    client: Client,
    broker: Arc<MemoryBroker>,
    topics: Vec<KafkaTopic>,
) -> (Arc<Context>, Arc<Claims>) {
    let connect: crate::runtime::ConnectFn = Arc::new(move |_| {
        Ok(crate::runtime::BrokerClients {
            admin: broker.clone() as Arc<dyn BrokerAdmin>,
            lag: Arc::new(crate::kafka::lag::MemoryLagObserver::new()),
            identity: Arc::new(crate::kafka::identity::memory::MemoryIdentity::new()),
            groups: Arc::new(crate::kafka::offsets::MemoryGroupAdmin::new()),
        })
    });
    let options = Options {
        batch_window: Duration::from_millis(1),
        ..Default::default()
    };
    let connections = Arc::new(ClusterConnections::new(connect, options.metrics.clone()));
    let claims = claims(&topics);
    let ctx = Arc::new(Context::new(
        client,
        options,
        connections,
        store(vec![cluster()]),
        store(topics),
    ));
    (ctx, claims)
}

#[tokio::test]
async fn a_new_topic_gets_the_finalizer_first_and_nothing_else() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let broker = Arc::new(MemoryBroker::new());
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![topic(false)],
    );
    let server = tokio::spawn(serve(handle, 1));
    reconcile(Arc::new(topic(false)), ctx, claims)
        .await
        .unwrap();
    let seen = server.await.unwrap();
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(
        seen[0].path,
        "/apis/tributary.io/v1alpha1/namespaces/booking/kafkatopics/bookings?"
    );
    assert_eq!(seen[0].content_type, "application/json-patch+json");
    assert!(
        seen[0].body.to_string().contains("tributary.io/topic"),
        "{}",
        seen[0].body
    );
    assert!(
        broker.calls().is_empty(),
        "no broker work before the finalizer is in place"
    );
}

#[tokio::test]
async fn creation_publishes_an_event_and_applies_status_server_side() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let broker = Arc::new(MemoryBroker::new());
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![topic(true)],
    );
    let server = tokio::spawn(serve(handle, 2));
    reconcile(Arc::new(topic(true)), ctx, claims).await.unwrap();
    let seen = server.await.unwrap();

    assert_eq!(broker.topics()["bookings"].partitions, 6);
    assert_eq!(
        (seen[0].method.as_str(), seen[0].path.as_str()),
        ("POST", "/apis/events.k8s.io/v1/namespaces/booking/events?")
    );
    assert_eq!(seen[0].body["reason"], "Created");
    assert_eq!(seen[0].body["regarding"]["name"], "bookings");

    let status = &seen[1];
    assert_eq!(status.method, "PATCH");
    assert_eq!(
        status.path,
        "/apis/tributary.io/v1alpha1/namespaces/booking/kafkatopics/bookings/status?&force=true&fieldManager=tributary"
    );
    assert_eq!(status.content_type, "application/apply-patch+yaml");
    assert_eq!(status.body["apiVersion"], "tributary.io/v1alpha1");
    assert_eq!(status.body["kind"], "KafkaTopic");
    assert_eq!(status.body["status"]["observedGeneration"], 4);
    assert_eq!(status.body["status"]["partitions"], 6);
    let ready = status.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Ready")
        .unwrap();
    assert_eq!(
        (ready["status"].as_str(), ready["reason"].as_str()),
        (Some("True"), Some("InSync"))
    );
    assert!(
        status.body.get("spec").is_none(),
        "a status write carries no spec"
    );
}

#[tokio::test]
async fn deleting_with_retain_releases_the_finalizer_without_touching_the_broker() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let broker = Arc::new(MemoryBroker::new());
    let mut t = topic(true);
    t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![t.clone()],
    );
    let server = tokio::spawn(serve(handle, 2));
    reconcile(Arc::new(t), ctx, claims).await.unwrap();
    let seen = server.await.unwrap();
    assert_eq!(seen[0].body["reason"], "Retained");
    assert_eq!(
        (seen[1].method.as_str(), seen[1].content_type.as_str()),
        ("PATCH", "application/json-patch+json")
    );
    assert!(
        seen[1].body.to_string().contains("\"op\":\"remove\""),
        "{}",
        seen[1].body
    );
    assert!(broker.calls().is_empty());
}

#[tokio::test]
async fn deleting_with_delete_removes_the_topic_then_the_finalizer() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let broker = Arc::new(MemoryBroker::new());
    broker
        .create_topics(&[crate::kafka::NewTopic {
            name: "bookings".into(),
            partitions: 6,
            replication_factor: Some(1),
            config: vec![],
        }])
        .await
        .unwrap();
    let mut t = topic(true);
    t.spec.deletion_policy = DeletionPolicy::Delete;
    t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![t.clone()],
    );
    let server = tokio::spawn(serve(handle, 2));
    reconcile(Arc::new(t), ctx, claims).await.unwrap();
    let seen = server.await.unwrap();
    assert!(broker.topics().is_empty(), "the topic is deleted");
    assert_eq!(seen[0].body["reason"], "Deleted");
    assert!(seen[1].body.to_string().contains("\"op\":\"remove\""));
}

#[tokio::test]
async fn delete_with_the_broker_down_keeps_the_finalizer_until_the_grace_period() {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let broker = Arc::new(MemoryBroker::new());
    broker.set_down(true);
    let mut t = topic(true);
    t.spec.deletion_policy = DeletionPolicy::Delete;
    t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now(),
    ));
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![t.clone()],
    );
    let err = reconcile(Arc::new(t.clone()), ctx, claims)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("down"), "{err}");
    drop(handle);

    // Past the grace period the topic is orphaned: a Warning event, then the finalizer goes.
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    t.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(600),
    ));
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![t.clone()],
    );
    let server = tokio::spawn(serve(handle, 2));
    reconcile(Arc::new(t), ctx, claims).await.unwrap();
    let seen = server.await.unwrap();
    assert_eq!(seen[0].body["reason"], "Orphaned");
    assert_eq!(seen[0].body["type"], "Warning");
    assert!(seen[1].body.to_string().contains("\"op\":\"remove\""));
}

/// The operator and the CLI agree on what "the broker matches the manifest" means: both plan
/// from the manifest and the broker alone, so an override the manifest does not declare (one
/// removed from it, or set by hand, remembered by nobody) is reset by the operator exactly as
/// `tributary plan` shows it.
#[tokio::test]
async fn an_override_the_manifest_does_not_declare_is_reset_as_the_cli_plans_it() {
    use crate::kafka::NewTopic;
    use crate::topics::desired::resolve_topic;
    use crate::topics::plan::{plan, Action, ConfigChange};

    let broker = Arc::new(MemoryBroker::new());
    broker
        .create_topics(&[NewTopic {
            name: "bookings".into(),
            partitions: 6,
            replication_factor: Some(1),
            config: vec![
                ("retention.ms".into(), "604800000".into()),
                ("max.message.bytes".into(), "2097152".into()),
            ],
        }])
        .await
        .unwrap();
    // What `tributary plan` computes for this manifest and this broker.
    let desired = resolve_topic(&topic(true), cluster().spec.topic_defaults.as_ref()).unwrap();
    let names = vec!["bookings".to_string()];
    let cli_plan = plan(&[desired], &[], &broker.snapshot(&names).await.unwrap());
    assert_eq!(
        cli_plan.actions,
        vec![Action::AlterConfigs {
            name: crate::model::TopicName::parse("bookings").unwrap(),
            changes: vec![ConfigChange::Reset {
                key: "max.message.bytes".into(),
                from: "2097152".into()
            }],
        }]
    );

    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let (ctx, claims) = context(
        Client::new(service, "default"),
        broker.clone(),
        vec![topic(true)],
    );
    let server = tokio::spawn(serve(handle, 2));
    reconcile(Arc::new(topic(true)), ctx, claims).await.unwrap();
    let seen = server.await.unwrap();
    assert_eq!(seen[0].body["reason"], "ConfigUpdated", "{}", seen[0].body);
    let configs = &broker.topics()["bookings"].configs;
    assert!(
        !configs.contains_key("max.message.bytes"),
        "the operator reset it: {configs:?}"
    );
    assert_eq!(configs["retention.ms"].value.as_deref(), Some("604800000"));
}
