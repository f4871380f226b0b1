//! The RBAC table (`src/operator/rbac.rs`, what `tributary rbac` prints and the Helm chart grants) is
//! exactly what the operator needs.
//!
//! The real operator (`tributary::operator::process::serve`: leader election, then the controllers) runs
//! in process against the API-server emulator and the test broker, through a scenario that
//! touches every kind: KafkaClusters, KafkaTopics (created, edited twice, deleted with `Delete`
//! and `Retain`), a KafkaConsumer (and a dry-run KafkaOffsetReset of its group), a KafkaProducer
//! with a Service and one whose Secret is missing, a StreamTopology whose children are created,
//! then pruned, and a SCRAM KafkaUser (its Secret written, then the user deleted). Its client goes
//! through a tap that records each request the operator makes (and only those: the test's own
//! requests use another client). Every request is mapped to `(apiGroup, resource, verb)` the
//! way the API server's authorizer sees it and must be allowed by the table, in the namespace
//! the chart grants it in (an owner reference with `blockOwnerDeletion` also needs `update` on
//! the owner's `finalizers`, as the OwnerReferencesPermissionEnforcement admission plugin
//! checks); and every grant in the table must have been used, except those
//! listed in [`NOT_EXERCISED`] with their reason.
//!
//! The operator runs twice: once with leader election, watching a list of namespaces (every
//! request must stay in them, or be about its Lease in its own namespace: what the chart's
//! per-namespace Roles and Lease Role allow), once watching all namespaces (cluster-wide list
//! and watch, what the ClusterRole allows).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::broker::{broker, unique};
use crate::support::scenarios::{spec, Env};
use http::{Request, Response};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::client::Body;
use kube::{Api, Client};
use kube_emulator::ApiServer;
use serde_json::json;
use tokio::sync::oneshot;
use tributary::api::{
    crds, ConditionStatus, DeletionPolicy, KafkaConsumer, KafkaOffsetReset, KafkaProducer,
    KafkaProducerStatus, ResetPhase, StreamTopology,
};
use tributary::operator::process::{self as operate, Election, Process};
use tributary::operator::rbac::{self, LEADER_ELECTION, WATCHED};
use tributary::runtime::{self, Options};

const BOOKING: &str = "booking";
const SHOP: &str = "shop";

/// Where the operator's Lease lives (the chart's release namespace).
const OPERATOR_NAMESPACE: &str = "tributary-system";

/// Grants the scenario does not exercise, with the reason: none today. A grant listed here
/// that the operator uses after all fails the test, so this list can only shrink.
const NOT_EXERCISED: &[(&str, &str, &[&str], &str)] = &[];

/// One request the operator made, as recorded by the tap.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    status: u16,
    /// The owners a written object names with `blockOwnerDeletion: true`, as
    /// `(apiVersion, kind)`.
    blocking_owners: Vec<(String, String)>,
}

/// What the authorizer checks for one request.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Access {
    group: String,
    resource: String,
    verb: &'static str,
    namespace: Option<String>,
}

/// Maps a request to the authorizer's attributes, as the API server does
/// (`k8s.io/apiserver` request info): `GET` of a collection is `list`, with `watch=true` (or
/// the legacy `/watch/` prefix) `watch`, of a name `get`; `POST` `create`; `PUT` `update`;
/// `PATCH` `patch`; `DELETE` `delete` (`deletecollection` without a name). A server-side apply
/// that created the object (201) is also authorized for `create`.
fn accesses(seen: &Seen) -> Vec<Access> {
    let (path, query) = seen.path.split_once('?').unwrap_or((&seen.path, ""));
    let watch_param = form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "watch" && (v == "true" || v == "1"));
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, mut rest) = match segments.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => panic!("a non-resource request: {} {}", seen.method, seen.path),
    };
    let legacy_watch = rest.first() == Some(&"watch");
    if legacy_watch {
        rest = &rest[1..];
    }
    let mut namespace = None;
    if rest.len() >= 3 && rest[0] == "namespaces" {
        namespace = Some(rest[1].to_owned());
        rest = &rest[2..];
    }
    let resource = match rest {
        [resource] | [resource, _] => resource.to_string(),
        [resource, _, sub] => format!("{resource}/{sub}"),
        _ => panic!("cannot read {} {}", seen.method, seen.path),
    };
    let named = rest.len() >= 2;
    let verb = match (seen.method.as_str(), named) {
        ("GET", _) if watch_param || legacy_watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        (m, _) => panic!("unexpected method {m} {}", seen.path),
    };
    let access = |verb| Access {
        group: group.to_owned(),
        resource: resource.clone(),
        verb,
        namespace: namespace.clone(),
    };
    let mut out = vec![access(verb)];
    if verb == "patch" && seen.status == 201 {
        out.push(access("create"));
    }
    // The OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift and hardened
    // clusters): an owner reference that blocks its owner's deletion needs `update` on the
    // owner's `finalizers` subresource.
    for (api_version, kind) in &seen.blocking_owners {
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        out.push(Access {
            group: group.to_owned(),
            resource: format!("{}/finalizers", plural(kind)),
            verb: "update",
            namespace: namespace.clone(),
        });
    }
    out
}

/// The resource name of an owner kind.
fn plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    match lower.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{lower}s"),
    }
}

/// The owners a request body names with `blockOwnerDeletion: true`.
fn blocking_owners(body: &[u8]) -> Vec<(String, String)> {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Vec::new();
    };
    value["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|o| o["blockOwnerDeletion"] == json!(true))
        .filter_map(|o| {
            Some((
                o["apiVersion"].as_str()?.to_owned(),
                o["kind"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

#[test]
fn requests_map_to_the_authorizers_attributes() {
    let seen = |method: &str, path: &str, status| {
        accesses(&Seen {
            method: method.into(),
            path: path.into(),
            status,
            blocking_owners: Vec::new(),
        })
        .into_iter()
        .map(|a| (a.group, a.resource, a.verb, a.namespace))
        .collect::<Vec<_>>()
    };
    let ns = || Some("shop".to_string());
    assert_eq!(
        seen(
            "GET",
            "/apis/tributary.io/v1alpha1/kafkatopics?&watch=true&resourceVersion=5",
            200
        ),
        [("tributary.io".into(), "kafkatopics".into(), "watch", None)]
    );
    assert_eq!(
        seen(
            "GET",
            "/apis/tributary.io/v1alpha1/namespaces/shop/kafkatopics?limit=500",
            200
        ),
        [("tributary.io".into(), "kafkatopics".into(), "list", ns())]
    );
    assert_eq!(
        seen("GET", "/api/v1/namespaces/shop/secrets/creds", 404),
        [("".into(), "secrets".into(), "get", ns())]
    );
    assert_eq!(
        seen(
            "PATCH",
            "/apis/apps/v1/namespaces/shop/deployments/web?fieldManager=tributary&force=true",
            201
        ),
        [
            ("apps".into(), "deployments".into(), "patch", ns()),
            ("apps".into(), "deployments".into(), "create", ns())
        ]
    );
    assert_eq!(
        seen(
            "PATCH",
            "/apis/tributary.io/v1alpha1/namespaces/shop/kafkatopics/orders/status?force=true",
            200
        ),
        [(
            "tributary.io".into(),
            "kafkatopics/status".into(),
            "patch",
            ns()
        )]
    );
    assert_eq!(
        seen("GET", "/api/v1/watch/namespaces/shop/services", 200),
        [("".into(), "services".into(), "watch", ns())]
    );
    assert_eq!(
        seen("DELETE", "/api/v1/namespaces/shop/services", 200),
        [("".into(), "services".into(), "deletecollection", ns())]
    );
    assert_eq!(
        seen("GET", "/api/v1/namespaces/shop", 200),
        [("".into(), "namespaces".into(), "get", None)]
    );
    let owned = Seen {
        method: "PATCH".into(),
        path: "/apis/tributary.io/v1alpha1/namespaces/shop/kafkatopics/rides-zones?force=true".into(),
        status: 200,
        blocking_owners: blocking_owners(
            br#"{"metadata": {"ownerReferences": [{"apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology", "name": "rides", "uid": "1", "blockOwnerDeletion": true}, {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "2"}]}}"#,
        ),
    };
    assert_eq!(
        accesses(&owned)
            .into_iter()
            .map(|a| (a.group, a.resource, a.verb))
            .collect::<Vec<_>>(),
        [
            ("tributary.io".into(), "kafkatopics".into(), "patch"),
            (
                "tributary.io".into(),
                "streamtopologies/finalizers".into(),
                "update"
            ),
        ]
    );
    assert_eq!(plural("KafkaConsumer"), "kafkaconsumers");
}

/// A kube client whose every request is recorded, then sent on to `upstream`.
fn tapped(upstream: Client) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Some((request, respond)) = handle.next_request().await {
            let upstream = upstream.clone();
            let record = record.clone();
            tokio::spawn(async move {
                let method = request.method().to_string();
                let path = request
                    .uri()
                    .path_and_query()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                // Read the body (to see the owner references it sets), then send it on.
                let (parts, body) = request.into_parts();
                let body = http_body_util::BodyExt::collect(body)
                    .await
                    .expect("a request body")
                    .to_bytes();
                let blocking_owners = blocking_owners(&body);
                let request = Request::from_parts(parts, Body::from(body.to_vec()));
                match upstream.send(request).await {
                    Ok(response) => {
                        record.lock().unwrap().push(Seen {
                            method,
                            path,
                            status: response.status().as_u16(),
                            blocking_owners,
                        });
                        respond.send_response(response);
                    }
                    Err(e) => respond.send_error(e),
                }
            });
        }
    });
    (Client::new(service, "default"), seen)
}

fn options(namespaces: &[&str]) -> Options {
    Options {
        namespaces: namespaces.iter().map(|n| n.to_string()).collect(),
        resync: Duration::from_secs(2),
        orphan_grace: Duration::from_secs(3),
        batch_window: Duration::from_millis(50),
        probe_interval: Duration::from_secs(2),
        backoff_base: Duration::from_millis(300),
        backoff_max: Duration::from_secs(2),
        ..Default::default()
    }
}

/// The operator process, running with a tapped client.
struct Operator {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<std::process::ExitCode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn start_operator(api: &ApiServer, namespaces: &[&str], leader_election: bool) -> Operator {
    let (client, seen) = tapped(api.client());
    let (stop, stopped) = oneshot::channel::<()>();
    let process = Process {
        http_address: "127.0.0.1:0".parse().unwrap(),
        election: leader_election.then(|| Election {
            namespace: OPERATOR_NAMESPACE.into(),
            lease_name: "tributary-leader".into(),
            identity: "tributary-rbac-test".into(),
            lease_duration: Duration::from_secs(5),
        }),
    };
    let task = tokio::spawn(operate::serve(
        client,
        options(namespaces),
        runtime::rdkafka_connect(),
        process,
        async move {
            let _ = stopped.await;
        },
    ));
    Operator { stop, task, seen }
}

impl Operator {
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    async fn stop(self) -> Vec<Seen> {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(20), self.task)
            .await
            .expect("the operator shuts down gracefully")
            .unwrap()
            .expect("the operator exits cleanly");
        self.seen.lock().unwrap().clone()
    }
}

fn env(api: &ApiServer, namespace: &str) -> Env {
    Env {
        client: api.client(),
        namespace: namespace.into(),
        bootstrap: broker().bootstrap.clone(),
        patience: Duration::from_secs(40),
    }
}

async fn ready(env: &Env, name: &str) {
    env.eventually(&format!("KafkaTopic {name} is Ready"), || async {
        matches!(env.ready(name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
}

async fn set_retention(env: &Env, name: &str, value: &str) {
    env.topics()
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"config": {"retention.ms": value}}})),
        )
        .await
        .unwrap();
    env.eventually("the config reaches the broker", || async {
        env.broker(&[name]).await.topics[name].configs["retention.ms"]
            .value
            .as_deref()
            == Some(value)
    })
    .await;
}

/// Topics: created (finalizer, status, Event), edited twice (the second `ConfigUpdated` Event
/// patches the first's series), deleted with `Delete` (broker topic deleted, finalizer
/// released) and with `Retain`.
async fn topics(env: &Env, operator: &Operator) {
    env.apply_cluster("local", &env.bootstrap).await;
    let kept = unique("bookings");
    let dropped = unique("seat-holds");
    env.create_topic(&kept, spec("local", 2, &[("retention.ms", "1000")]))
        .await;
    let mut s = spec("local", 1, &[]);
    s.deletion_policy = DeletionPolicy::Delete;
    env.create_topic(&dropped, s).await;
    ready(env, &kept).await;
    ready(env, &dropped).await;
    set_retention(env, &kept, "2000").await;
    set_retention(env, &kept, "3000").await;
    env.eventually("the repeated Event is patched", || async {
        operator
            .requests()
            .iter()
            .any(|r| r.method == "PATCH" && r.path.contains("/events/"))
    })
    .await;
    for name in [&kept, &dropped] {
        env.topics()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap();
    }
    for name in [&kept, &dropped] {
        env.eventually("the KafkaTopic is gone", || async {
            env.topics().get_opt(name).await.unwrap().is_none()
        })
        .await;
    }
    env.eventually("Delete removed the broker topic", || async {
        !env.broker(&[]).await.topics.contains_key(&dropped)
    })
    .await;
}

/// A consumer and a producer (with a Service) roll out once their topic is Ready; a producer
/// whose cluster's Secret is missing says so.
/// A SCRAM KafkaUser: its Secret is written (owned, blocking its owner's deletion), its status
/// reported; then it is deleted and its finalizer released.
async fn users(env: &Env) {
    use tributary::api::KafkaUser;
    let user: KafkaUser = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaUser",
        "metadata": {"name": "checkout", "namespace": env.namespace},
        "spec": {"clusterRef": "local", "authentication": {"type": "scram-sha-512"},
                 "authorization": {"acls": [{"resource": {"type": "topic", "name": "orders"},
                                             "operations": ["Write"]}]}}
    }))
    .unwrap();
    let users = Api::<KafkaUser>::namespaced(env.client.clone(), &env.namespace);
    users.create(&PostParams::default(), &user).await.unwrap();
    let secrets =
        Api::<k8s_openapi::api::core::v1::Secret>::namespaced(env.client.clone(), &env.namespace);
    env.eventually("the KafkaUser's Secret and status", || async {
        let secret = secrets.get_opt("checkout-kafka").await.ok().flatten();
        let status = users
            .get_opt("checkout")
            .await
            .ok()
            .flatten()
            .and_then(|u| u.status);
        secret.is_some() && status.is_some_and(|s| !s.conditions.is_empty())
    })
    .await;
    users
        .delete("checkout", &DeleteParams::default())
        .await
        .unwrap();
    env.eventually("the KafkaUser is gone", || async {
        users.get_opt("checkout").await.ok().flatten().is_none()
    })
    .await;
}

async fn workloads(env: &Env) {
    env.apply_cluster("local", &env.bootstrap).await;
    let topic = unique("orders");
    env.create_topic(&topic, spec("local", 2, &[])).await;
    ready(env, &topic).await;

    let consumer: KafkaConsumer = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaConsumer",
        "metadata": {"name": "fulfilment", "namespace": env.namespace},
        "spec": {"clusterRef": "local", "topics": [topic], "replicas": 1,
                 "template": {"image": "ghcr.io/example/fulfilment:1.0.0"}}
    }))
    .unwrap();
    Api::<KafkaConsumer>::namespaced(env.client.clone(), &env.namespace)
        .create(&PostParams::default(), &consumer)
        .await
        .unwrap();
    let producer: KafkaProducer = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaProducer",
        "metadata": {"name": "checkout", "namespace": env.namespace},
        "spec": {"clusterRef": "local", "topics": [topic], "replicas": 1,
                 "template": {"image": "ghcr.io/example/checkout:1.0.0"},
                 "service": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    }))
    .unwrap();
    let producers = Api::<KafkaProducer>::namespaced(env.client.clone(), &env.namespace);
    producers
        .create(&PostParams::default(), &producer)
        .await
        .unwrap();
    let deployments = Api::<Deployment>::namespaced(env.client.clone(), &env.namespace);
    let services = Api::<Service>::namespaced(env.client.clone(), &env.namespace);
    env.eventually("both Deployments and the Service are applied", || async {
        deployments.get_opt("fulfilment").await.unwrap().is_some()
            && deployments.get_opt("checkout").await.unwrap().is_some()
            && services.get_opt("checkout").await.unwrap().is_some()
    })
    .await;

    // A dry-run reset of the consumer's group: finalizer, status, then deleted.
    let reset: KafkaOffsetReset = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaOffsetReset",
        "metadata": {"name": "replay", "namespace": env.namespace},
        "spec": {"consumerRef": "fulfilment", "target": {"earliest": true}, "dryRun": true}
    }))
    .unwrap();
    let resets = Api::<KafkaOffsetReset>::namespaced(env.client.clone(), &env.namespace);
    resets.create(&PostParams::default(), &reset).await.unwrap();
    env.eventually("the dry-run reset Succeeded", || async {
        resets
            .get_opt("replay")
            .await
            .ok()
            .flatten()
            .and_then(|r| r.status)
            .is_some_and(|s| s.phase == Some(ResetPhase::Succeeded))
    })
    .await;
    resets.delete("replay", &Default::default()).await.unwrap();
    env.eventually("the reset is gone", || async {
        resets.get_opt("replay").await.unwrap().is_none()
    })
    .await;

    let secured: tributary::api::KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": "secured", "namespace": env.namespace},
        "spec": {"bootstrapServers": [env.bootstrap],
                 "sasl": {"mechanism": "SCRAM-SHA-512", "username": {"value": "svc"},
                          "password": {"secretKeyRef": {"name": "kafka-credentials", "key": "password"}}}}
    }))
    .unwrap();
    env.clusters()
        .create(&PostParams::default(), &secured)
        .await
        .unwrap();
    let mut lonely = producer.clone();
    lonely.metadata.name = Some("audit".into());
    lonely.spec.cluster_ref = "secured".into();
    producers
        .create(&PostParams::default(), &lonely)
        .await
        .unwrap();
    env.eventually("SecretNotFound", || async {
        let status: Option<KafkaProducerStatus> = producers
            .get_opt("audit")
            .await
            .ok()
            .flatten()
            .and_then(|p| p.status);
        status.is_some_and(|s| s.conditions.iter().any(|c| c.reason == "SecretNotFound"))
    })
    .await;
}

/// A StreamTopology's children are applied (created), then those that leave its spec are
/// deleted.
async fn topology(env: &Env) {
    let parcels = unique("parcels");
    let labels = unique("labels");
    let topologies = Api::<StreamTopology>::namespaced(env.client.clone(), &env.namespace);
    let topology: StreamTopology = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": "shipping", "namespace": env.namespace},
        "spec": {
            "clusterRef": "local",
            "defaults": {"partitions": 1, "deletionPolicy": "Delete"},
            "topics": [{"name": parcels}, {"name": labels}],
            "producers": [{"name": "label-printer", "topics": [labels],
                           "template": {"image": "ghcr.io/example/label-printer:1.0.0"}}],
            "consumers": [{"name": "tracker", "topics": [parcels], "replicas": 1,
                           "template": {"image": "ghcr.io/example/tracker:1.0.0"}}]
        }
    }))
    .unwrap();
    topologies
        .create(&PostParams::default(), &topology)
        .await
        .unwrap();
    let consumers = Api::<KafkaConsumer>::namespaced(env.client.clone(), &env.namespace);
    let producers = Api::<KafkaProducer>::namespaced(env.client.clone(), &env.namespace);
    let children = || async {
        let topic = env.topics().get_opt(&format!("shipping-{parcels}")).await;
        let consumer = consumers.get_opt("shipping-tracker").await;
        let producer = producers.get_opt("shipping-label-printer").await;
        [
            topic.unwrap().is_some(),
            consumer.unwrap().is_some(),
            producer.unwrap().is_some(),
        ]
    };
    env.eventually("the topology's children exist", || async {
        children().await == [true; 3]
    })
    .await;
    ready(env, &format!("shipping-{labels}")).await;
    env.eventually("the topology reports its status", || async {
        topologies
            .get_opt("shipping")
            .await
            .ok()
            .flatten()
            .and_then(|t| t.status)
            .is_some_and(|s| !s.conditions.is_empty())
    })
    .await;
    let fewer =
        json!({"spec": {"topics": [{"name": labels}], "producers": null, "consumers": null}});
    topologies
        .patch("shipping", &PatchParams::default(), &Patch::Merge(fewer))
        .await
        .unwrap();
    env.eventually("the children that left the spec are deleted", || async {
        children().await == [false; 3]
    })
    .await;
}

type Grant = (String, String, &'static str);

fn grant(a: &Access) -> Grant {
    (a.group.clone(), a.resource.clone(), a.verb)
}

/// Every access must be allowed by the table; returns the grants used.
fn check_allowed(phase: &str, seen: &[Seen], watched: Option<&[&str]>) -> BTreeSet<Grant> {
    assert!(!seen.is_empty(), "{phase}: the tap saw no request");
    let mut used = BTreeSet::new();
    let mut refused = BTreeSet::new();
    for request in seen {
        for a in accesses(request) {
            let allowed = if a.group == "coordination.k8s.io" {
                // The Lease Role is in the operator's own namespace only.
                a.namespace.as_deref() == Some(OPERATOR_NAMESPACE)
                    && rbac::allows(LEADER_ELECTION, &a.group, &a.resource, a.verb)
            } else {
                let in_scope = match (watched, &a.namespace) {
                    (None, _) => true,
                    (Some(list), Some(ns)) => list.contains(&ns.as_str()),
                    (Some(_), None) => false,
                };
                in_scope && rbac::allows(WATCHED, &a.group, &a.resource, a.verb)
            };
            if !allowed {
                refused.insert(format!(
                    "{} {} -> {:?} {} {} in {:?}",
                    request.method, request.path, a.group, a.resource, a.verb, a.namespace
                ));
            }
            used.insert(grant(&a));
        }
    }
    assert!(
        refused.is_empty(),
        "{phase}: requests the RBAC table (src/operator/rbac.rs) does not allow{}:\n{}",
        if watched.is_some() {
            " in the watched namespaces"
        } else {
            ""
        },
        refused.into_iter().collect::<Vec<_>>().join("\n")
    );
    used
}

fn summary(seen: &[Seen]) -> BTreeMap<Grant, usize> {
    let mut counts = BTreeMap::new();
    for request in seen {
        for a in accesses(request) {
            *counts.entry(grant(&a)).or_insert(0) += 1;
        }
    }
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rbac_table_is_exactly_what_the_operator_uses() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TRIBUTARY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
    let api = ApiServer::start().await;
    api.register_crds(&crds::all());
    api.create_namespace(BOOKING);
    api.create_namespace(SHOP);
    api.create_namespace("elsewhere");
    api.create_namespace(OPERATOR_NAMESPACE);

    // With leader election, watching a list of namespaces: every request stays inside them,
    // but for the Lease in the operator's own namespace.
    let watched = [BOOKING, SHOP];
    let operator = start_operator(&api, &watched, true);
    let booking = env(&api, BOOKING);
    let shop = env(&api, SHOP);
    topics(&booking, &operator).await;
    workloads(&shop).await;
    topology(&shop).await;
    users(&shop).await;
    // Something outside the watched namespaces is never looked at.
    let elsewhere = env(&api, "elsewhere");
    elsewhere.apply_cluster("local", &elsewhere.bootstrap).await;
    let ignored = unique("ignored");
    elsewhere
        .create_topic(&ignored, spec("local", 1, &[]))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let namespaced = operator.stop().await;
    assert!(
        elsewhere.ready(&ignored).await.is_none(),
        "a namespace that is not watched is left alone"
    );
    let mut used = check_allowed(
        "leader election, watching booking and shop",
        &namespaced,
        Some(&watched),
    );

    // Watching all namespaces: cluster-wide lists and watches.
    let operator = start_operator(&api, &[], false);
    ready(&elsewhere, &ignored).await;
    let everywhere = operator.stop().await;
    assert!(
        everywhere.iter().any(|r| r.method == "GET"
            && r.path
                .starts_with("/apis/tributary.io/v1alpha1/kafkatopics?")),
        "watching all namespaces lists cluster-wide"
    );
    used.extend(check_allowed("watching all namespaces", &everywhere, None));

    println!("requests by grant (namespaced run, then all namespaces):");
    for (phase, seen) in [("namespaced", &namespaced), ("all", &everywhere)] {
        for ((group, resource, verb), n) in summary(seen) {
            println!("  {phase:10} {group:>20} {resource:28} {verb:8} {n}");
        }
    }

    // Every grant is used, or listed (with its reason) as not exercised here.
    let exempt = |g: &Grant| {
        NOT_EXERCISED
            .iter()
            .find(|(group, resource, verbs, _)| {
                g.0 == *group && g.1 == *resource && verbs.contains(&g.2)
            })
            .map(|e| e.3)
    };
    let mut unused = Vec::new();
    for (group, resource, verb) in rbac::grants(WATCHED)
        .into_iter()
        .chain(rbac::grants(LEADER_ELECTION))
    {
        let g: Grant = (group.into(), resource.into(), verb);
        match (used.contains(&g), exempt(&g)) {
            (true, Some(_)) => {
                panic!(
                    "{g:?} is used now: remove it from NOT_EXERCISED in tests/integration/rbac.rs"
                )
            }
            (false, None) => unused.push(format!("{g:?}")),
            (false, Some(why)) => println!("not exercised: {g:?}: {why}"),
            (true, None) => {}
        }
    }
    assert!(
        unused.is_empty(),
        "granted in src/operator/rbac.rs but never used by the operator (remove them, or list them in \
         NOT_EXERCISED with the reason):\n{}",
        unused.join("\n")
    );
    for (group, resource, verbs, _) in NOT_EXERCISED {
        for verb in *verbs {
            assert!(
                rbac::allows(WATCHED, group, resource, verb),
                "NOT_EXERCISED lists {group} {resource} {verb}, which src/operator/rbac.rs does not grant"
            );
        }
    }
}
