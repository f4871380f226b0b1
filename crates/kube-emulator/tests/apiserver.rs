//! The in-process API server (this crate), driven only through the real kube
//! client and kube-runtime: every feature the controller tests rely on, one test each.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, ObjectMeta, Patch, PatchParams,
    PostParams, VersionMatch, WatchEvent, WatchParams,
};
use kube::core::Status;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::{finalizer, watcher, Controller};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use kube_emulator::{ApiServer, Options};
use serde_json::{json, Value};
use tributary::api::{
    crds, ConditionStatus, KafkaCluster, KafkaClusterSpec, KafkaTopic, KafkaTopicSpec,
    KafkaTopicStatus,
};

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (ApiServer, Client) {
    let api = ApiServer::start().await;
    api.register_crds(&crds::all());
    let client = api.client();
    (api, client)
}

fn topic(name: &str, partitions: i32) -> KafkaTopic {
    KafkaTopic::new(
        name,
        KafkaTopicSpec {
            cluster_ref: "main".into(),
            topic_name: None,
            partitions,
            replication_factor: None,
            config: BTreeMap::new(),
            deletion_policy: Default::default(),
        },
    )
}

fn cluster(name: &str) -> KafkaCluster {
    KafkaCluster::new(
        name,
        KafkaClusterSpec {
            bootstrap_servers: vec!["kafka-0:9092".into()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: None,
            topic_defaults: None,
        },
    )
}

fn configmap(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    }
}

fn topics_api(client: &Client) -> Api<KafkaTopic> {
    Api::namespaced(client.clone(), "default")
}

/// The `Status` of a failed call.
fn status_of<T: std::fmt::Debug>(result: Result<T, kube::Error>) -> Status {
    match result {
        Err(kube::Error::Api(s)) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn dynamic_topics(client: &Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<KafkaTopic>(&()),
    )
}

fn raw_topic(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": name},
        "spec": spec,
    }))
    .unwrap()
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + WAIT;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn next_event<S, T>(stream: &mut S) -> T
where
    S: futures::Stream<Item = Result<T, kube::Error>> + Unpin,
    T: std::fmt::Debug,
{
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("a watch event in time")
        .expect("the watch stream goes on")
        .expect("a watch event, not an error")
}

fn managers(obj: &impl Resource) -> Vec<(String, String, String)> {
    obj.meta()
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
                m.subresource.clone().unwrap_or_default(),
            )
        })
        .collect()
}

fn owned_fields(obj: &impl Resource, manager: &str) -> String {
    obj.meta()
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.manager.as_deref() == Some(manager))
        .map(|m| serde_json::to_string(&m.fields_v1).unwrap())
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// CRUD

#[tokio::test]
async fn crud_with_not_found_and_conflicts() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);

    let created = topics
        .create(&PostParams::default(), &topic("orders", 3))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(
        meta.uid.as_deref().is_some_and(|u| u.len() == 36),
        "{meta:?}"
    );
    assert!(meta
        .resource_version
        .as_deref()
        .is_some_and(|rv| rv.parse::<u64>().is_ok()));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert_eq!(meta.generation, Some(1));
    assert_eq!(created.spec.partitions, 3);

    let got = topics.get("orders").await.unwrap();
    assert_eq!(got, created);
    let list = topics.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert!(list.metadata.resource_version.is_some());

    // 409 AlreadyExists.
    let s = status_of(
        topics
            .create(&PostParams::default(), &topic("orders", 3))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(
        s.message,
        "kafkatopics.tributary.io \"orders\" already exists"
    );

    // PUT with the current resourceVersion succeeds and bumps it.
    let mut changed = got.clone();
    changed.spec.partitions = 6;
    let replaced = topics
        .replace("orders", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.spec.partitions, 6);
    let rv_before: u64 = got.resource_version().unwrap().parse().unwrap();
    let rv_after: u64 = replaced.resource_version().unwrap().parse().unwrap();
    assert!(rv_after > rv_before);

    // PUT with a stale resourceVersion: 409 Conflict.
    let s = status_of(
        topics
            .replace("orders", &PostParams::default(), &changed)
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert!(
        s.message.contains("the object has been modified"),
        "{}",
        s.message
    );

    // Delete, then 404 NotFound everywhere.
    let deleted = topics
        .delete("orders", &DeleteParams::default())
        .await
        .unwrap();
    assert!(deleted.is_left());
    let s = status_of(topics.get("orders").await);
    assert_eq!((s.code, s.reason.as_str()), (404, "NotFound"));
    assert_eq!(s.message, "kafkatopics.tributary.io \"orders\" not found");
    assert_eq!(
        status_of(topics.delete("orders", &DeleteParams::default()).await).code,
        404
    );
    assert_eq!(
        status_of(
            topics
                .replace("orders", &PostParams::default(), &changed)
                .await
        )
        .code,
        404
    );
    assert!(topics.get_opt("orders").await.unwrap().is_none());

    // Built-ins: a ConfigMap, deleted with a Status answer.
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    cms.create(&PostParams::default(), &configmap("c", &[]))
        .await
        .unwrap();
    assert!(cms
        .delete("c", &DeleteParams::default())
        .await
        .unwrap()
        .is_right());

    // A namespace that does not exist.
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "nowhere");
    let s = status_of(
        elsewhere
            .create(&PostParams::default(), &configmap("c", &[]))
            .await,
    );
    assert_eq!(
        (s.code, s.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn generate_name_and_invalid_names() {
    let (_api, client) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    let mut cm = configmap("", &[]);
    cm.metadata.name = None;
    cm.metadata.generate_name = Some("gen-".into());
    let created = cms.create(&PostParams::default(), &cm).await.unwrap();
    assert!(created.name_any().starts_with("gen-") && created.name_any().len() == 9);
    let s = status_of(
        cms.create(&PostParams::default(), &configmap("Not_Valid", &[]))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(s.details.unwrap().causes[0].field, "metadata.name");
}

#[tokio::test]
async fn generation_bumps_only_on_spec_changes() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 3))
        .await
        .unwrap();
    let labelled = topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await
        .unwrap();
    assert_eq!(labelled.metadata.generation, Some(1));
    let with_status = topics
        .patch_status(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"partitions": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(with_status.metadata.generation, Some(1));
    let grown = topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(grown.metadata.generation, Some(2));
    // A write that changes nothing is no write: same resourceVersion.
    let again = topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(again.metadata.generation, Some(2));
    assert_eq!(again.resource_version(), grown.resource_version());
}

#[tokio::test]
async fn status_subresource_is_separate() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let mut t = topic("t", 3);
    t.status = Some(KafkaTopicStatus {
        topic_id: Some("from-create".into()),
        ..Default::default()
    });
    let created = topics.create(&PostParams::default(), &t).await.unwrap();
    assert_eq!(created.status, None, "status is dropped on create");

    // A status write changes only .status.
    let patched = topics
        .patch_status(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 99}, "status": {"topicId": "abc"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.spec.partitions, 3);
    assert_eq!(
        patched.status.as_ref().unwrap().topic_id.as_deref(),
        Some("abc")
    );

    // A main-resource write ignores .status.
    let mut changed = patched.clone();
    changed.spec.partitions = 5;
    changed.status.as_mut().unwrap().topic_id = Some("overwritten".into());
    let replaced = topics
        .replace("t", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(replaced.spec.partitions, 5);
    assert_eq!(
        replaced.status.as_ref().unwrap().topic_id.as_deref(),
        Some("abc")
    );

    // replace_status with a changed spec: only the status lands.
    let mut st = replaced.clone();
    st.spec.partitions = 50;
    st.status.as_mut().unwrap().partitions = Some(5);
    let after = topics
        .replace_status("t", &PostParams::default(), &st)
        .await
        .unwrap();
    assert_eq!(after.spec.partitions, 5);
    assert_eq!(after.status.as_ref().unwrap().partitions, Some(5));
    assert_eq!(topics.get_status("t").await.unwrap(), after);
}

// ---------------------------------------------------------------------------------------------
// Server-side apply

fn applied_topic(partitions: i32, config: &[(&str, &str)]) -> Value {
    let config: BTreeMap<&str, &str> = config.iter().cloned().collect();
    json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaTopic",
        "metadata": {"name": "t"},
        "spec": {"clusterRef": "main", "partitions": partitions, "config": config},
    })
}

#[tokio::test]
async fn server_side_apply_creates_tracks_owners_and_conflicts() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);

    let created = topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("retention.ms", "1000")])),
        )
        .await
        .unwrap();
    assert_eq!(created.spec.partitions, 3);
    assert_eq!(created.metadata.generation, Some(1));
    assert_eq!(
        managers(&created),
        vec![("alice".into(), "Apply".into(), "".into())]
    );
    assert!(owned_fields(&created, "alice").contains("\"f:partitions\""));
    assert!(owned_fields(&created, "alice").contains("\"f:retention.ms\""));

    // Bob sets alice's field to another value: 409 with the real message format.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("bob"),
                &Patch::Apply(applied_topic(5, &[])),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        s.message,
        "Apply failed with 1 conflict: conflict with \"alice\" using tributary.io/v1alpha1: .spec.partitions"
    );
    let causes = s.details.unwrap().causes;
    assert_eq!(causes[0].reason, "FieldManagerConflict");
    assert_eq!(causes[0].field, ".spec.partitions");

    // The same value is shared ownership, not a conflict.
    let shared = topics
        .patch(
            "t",
            &PatchParams::apply("bob"),
            &Patch::Apply(applied_topic(3, &[])),
        )
        .await
        .unwrap();
    assert!(owned_fields(&shared, "bob").contains("\"f:partitions\""));

    // Forced: bob takes the field.
    let forced = topics
        .patch(
            "t",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(applied_topic(5, &[])),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.partitions, 5);
    assert_eq!(forced.metadata.generation, Some(2));
    assert!(!owned_fields(&forced, "alice").contains("\"f:partitions\""));
    assert!(owned_fields(&forced, "bob").contains("\"f:partitions\""));

    // An Update (merge patch) manager conflicts with an applier too.
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicationFactor": 2}})),
        )
        .await
        .unwrap();
    let mut with_rf = applied_topic(5, &[]);
    with_rf["spec"]["replicationFactor"] = json!(3);
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("carol"),
                &Patch::Apply(with_rf.clone()),
            )
            .await,
    );
    assert_eq!(s.code, 409);
    assert!(
        s.message.contains("conflict with \"unknown\""),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn server_side_apply_removes_fields_a_manager_stops_applying() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("a", "1"), ("b", "2"), ("c", "3")])),
        )
        .await
        .unwrap();
    // Bob also applies c with the same value: c is shared.
    let mut bob = applied_topic(3, &[("c", "3")]);
    bob["spec"].as_object_mut().unwrap().remove("partitions");
    topics
        .patch("t", &PatchParams::apply("bob"), &Patch::Apply(bob))
        .await
        .unwrap();

    // Alice drops b and c: b goes (only alice owned it), c stays (bob owns it too).
    let after = topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("a", "1")])),
        )
        .await
        .unwrap();
    let keys: Vec<&str> = after.spec.config.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["a", "c"]);

    // Dropping a whole optional field removes it.
    let mut with_rf = applied_topic(3, &[("a", "1")]);
    with_rf["spec"]["replicationFactor"] = json!(2);
    let t = topics
        .patch("t", &PatchParams::apply("alice"), &Patch::Apply(with_rf))
        .await
        .unwrap();
    assert_eq!(t.spec.replication_factor, Some(2));
    let t = topics
        .patch(
            "t",
            &PatchParams::apply("alice"),
            &Patch::Apply(applied_topic(3, &[("a", "1")])),
        )
        .await
        .unwrap();
    assert_eq!(t.spec.replication_factor, None);
    assert_eq!(t.metadata.generation, Some(4));

    // What the schema forbids stays forbidden: topicName cannot be added later (CEL).
    let mut with_name = applied_topic(3, &[("a", "1")]);
    with_name["spec"]["topicName"] = json!("orders.v1");
    let s = status_of(
        topics
            .patch("t", &PatchParams::apply("alice"), &Patch::Apply(with_name))
            .await,
    );
    assert_eq!(s.code, 422);
    assert!(
        s.message.contains("spec.topicName is immutable"),
        "{}",
        s.message
    );
}

#[tokio::test]
async fn server_side_apply_merges_list_maps_by_key() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 3))
        .await
        .unwrap();
    let condition = |ty: &str, status: &str| json!({"type": ty, "status": status, "reason": "Test", "message": ""});
    let status_apply = |conditions: Vec<Value>| {
        Patch::Apply(json!({
            "apiVersion": "tributary.io/v1alpha1",
            "kind": "KafkaTopic",
            "metadata": {"name": "t"},
            "status": {"conditions": conditions},
        }))
    };
    let conditions = |t: &KafkaTopic| -> Vec<(String, ConditionStatus)> {
        t.status
            .as_ref()
            .unwrap()
            .conditions
            .iter()
            .map(|c| (c.type_.clone(), c.status))
            .collect()
    };

    topics
        .patch_status(
            "t",
            &PatchParams::apply("ready-ctl"),
            &status_apply(vec![condition("Ready", "True")]),
        )
        .await
        .unwrap();
    let both = topics
        .patch_status(
            "t",
            &PatchParams::apply("sync-ctl"),
            &status_apply(vec![condition("Synced", "True")]),
        )
        .await
        .unwrap();
    assert_eq!(
        conditions(&both),
        vec![
            ("Ready".into(), ConditionStatus::True),
            ("Synced".into(), ConditionStatus::True)
        ]
    );
    assert!(managers(&both).contains(&("ready-ctl".into(), "Apply".into(), "status".into())));
    assert!(owned_fields(&both, "ready-ctl").contains("k:{\\\"type\\\":\\\"Ready\\\"}"));

    let flipped = topics
        .patch_status(
            "t",
            &PatchParams::apply("ready-ctl"),
            &status_apply(vec![condition("Ready", "False")]),
        )
        .await
        .unwrap();
    assert_eq!(
        conditions(&flipped),
        vec![
            ("Ready".into(), ConditionStatus::False),
            ("Synced".into(), ConditionStatus::True)
        ]
    );
    let dropped = topics
        .patch_status("t", &PatchParams::apply("ready-ctl"), &status_apply(vec![]))
        .await
        .unwrap();
    assert_eq!(
        conditions(&dropped),
        vec![("Synced".into(), ConditionStatus::True)]
    );
    assert_eq!(dropped.spec.partitions, 3);
    assert_eq!(dropped.metadata.generation, Some(1));
}

#[tokio::test]
async fn apply_with_strict_validation_refuses_unknown_fields() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let mut applied = applied_topic(3, &[]);
    applied["spec"]["bogus"] = json!(true);
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("alice").validation_strict(),
                &Patch::Apply(applied.clone()),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    assert!(s.message.contains("spec.bogus"), "{}", s.message);
    // Without Strict the unknown field is pruned silently.
    let t = topics
        .patch("t", &PatchParams::apply("alice"), &Patch::Apply(applied))
        .await
        .unwrap();
    assert_eq!(t.spec.partitions, 3);
}

// ---------------------------------------------------------------------------------------------
// Patches and selectors

#[tokio::test]
async fn merge_patch_and_json_patch() {
    let (api, client) = setup().await;
    let topics = topics_api(&client);
    let mut t = topic("t", 3);
    t.spec.config.insert("a".into(), "1".into());
    t.spec.config.insert("b".into(), "2".into());
    topics.create(&PostParams::default(), &t).await.unwrap();
    let patched = topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"team": "core"}}, "spec": {"config": {"a": null, "c": "3"}}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.labels().get("team").map(String::as_str),
        Some("core")
    );
    let keys: Vec<&str> = patched.spec.config.keys().map(String::as_str).collect();
    assert_eq!(keys, vec!["b", "c"]);

    // A merge patch with a stale resourceVersion is a failed precondition.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"resourceVersion": "1"}, "spec": {"partitions": 4}}),
                ),
            )
            .await,
    );
    assert_eq!(s.code, 409);

    // JSON patch, sent raw.
    let body = serde_json::to_vec(&json!([
        {"op": "test", "path": "/spec/partitions", "value": 3},
        {"op": "replace", "path": "/spec/partitions", "value": 7},
        {"op": "add", "path": "/metadata/labels/tier", "value": "gold"},
        {"op": "remove", "path": "/spec/config/b"},
    ]))
    .unwrap();
    let req = http::Request::patch(format!(
        "{}/apis/tributary.io/v1alpha1/namespaces/default/kafkatopics/t",
        api.url()
    ))
    .header("Content-Type", "application/json-patch+json")
    .body(body)
    .unwrap();
    let after: KafkaTopic = client.request(req).await.unwrap();
    assert_eq!(after.spec.partitions, 7);
    assert_eq!(after.labels().get("tier").map(String::as_str), Some("gold"));
    assert!(!after.spec.config.contains_key("b"));
    // A failing test operation refuses the whole patch.
    let body = serde_json::to_vec(&json!([{"op": "test", "path": "/spec/partitions", "value": 3}]))
        .unwrap();
    let req = http::Request::patch(format!(
        "{}/apis/tributary.io/v1alpha1/namespaces/default/kafkatopics/t",
        api.url()
    ))
    .header("Content-Type", "application/json-patch+json")
    .body(body)
    .unwrap();
    assert_eq!(status_of(client.request::<KafkaTopic>(req).await).code, 422);
    // Strategic merge patch is not for custom resources.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Strategic(json!({"spec": {"partitions": 8}})),
            )
            .await,
    );
    assert_eq!(s.code, 415);
}

#[tokio::test]
async fn label_and_field_selectors_on_list() {
    let (_api, client) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    for (name, labels) in [
        ("a", vec![("env", "prod"), ("tier", "web")]),
        ("b", vec![("env", "dev"), ("tier", "web")]),
        ("c", vec![("env", "prod")]),
        ("d", vec![]),
    ] {
        cms.create(&PostParams::default(), &configmap(name, &labels))
            .await
            .unwrap();
    }
    let names = |selector: &'static str| {
        let cms = cms.clone();
        async move {
            let list = cms
                .list(&ListParams::default().labels(selector))
                .await
                .unwrap();
            list.items
                .iter()
                .map(|c| c.name_any())
                .collect::<Vec<_>>()
                .join(",")
        }
    };
    assert_eq!(names("env=prod").await, "a,c");
    assert_eq!(names("env==prod").await, "a,c");
    assert_eq!(names("env!=prod").await, "b,d");
    assert_eq!(names("env in (dev, prod)").await, "a,b,c");
    assert_eq!(names("env notin (prod)").await, "b,d");
    assert_eq!(names("tier").await, "a,b");
    assert_eq!(names("!tier").await, "c,d");
    assert_eq!(names("env=prod,tier").await, "a");
    assert_eq!(names("").await, "a,b,c,d");

    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(by_name.items.len(), 1);
    let not_b = cms
        .list(&ListParams::default().fields("metadata.name!=b,metadata.namespace=default"))
        .await
        .unwrap();
    assert_eq!(not_b.items.len(), 3);
    let s = status_of(cms.list(&ListParams::default().fields("data.k=v")).await);
    assert_eq!((s.code, s.reason.as_str()), (400, "BadRequest"));
    let s = status_of(cms.list(&ListParams::default().labels("env in prod")).await);
    assert_eq!(s.code, 400);

    // Across namespaces.
    let all: Api<ConfigMap> = Api::all(client.clone());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        4
    );
    let kube_system: Api<ConfigMap> = Api::namespaced(client, "kube-system");
    assert!(kube_system
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn lists_paginate_with_limit_and_continue() {
    let (_api, client) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    for i in 0..5 {
        cms.create(&PostParams::default(), &configmap(&format!("cm-{i}"), &[]))
            .await
            .unwrap();
    }
    let first = cms.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(first.items.len(), 2);
    assert_eq!(first.metadata.remaining_item_count, Some(3));
    let token = first.metadata.continue_.clone().unwrap();
    // A change between pages does not show: pages come from the first page's version.
    cms.create(&PostParams::default(), &configmap("cm-9", &[]))
        .await
        .unwrap();
    let mut names: Vec<String> = first.items.iter().map(|c| c.name_any()).collect();
    let mut token = Some(token);
    while let Some(t) = token {
        let mut lp = ListParams::default().limit(2);
        lp.continue_token = Some(t);
        let page = cms.list(&lp).await.unwrap();
        assert_eq!(
            page.metadata.resource_version,
            first.metadata.resource_version
        );
        names.extend(page.items.iter().map(|c| c.name_any()));
        token = page.metadata.continue_.filter(|c| !c.is_empty());
    }
    assert_eq!(names, vec!["cm-0", "cm-1", "cm-2", "cm-3", "cm-4"]);
}

// ---------------------------------------------------------------------------------------------
// Watch

#[tokio::test]
async fn watch_from_a_resource_version_gets_later_changes() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let a = topics
        .create(&PostParams::default(), &topic("a", 1))
        .await
        .unwrap();
    let from = a.resource_version().unwrap();
    topics
        .create(&PostParams::default(), &topic("b", 1))
        .await
        .unwrap();
    topics
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap();

    let mut stream = topics
        .watch(&WatchParams::default().disable_bookmarks(), &from)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Added(t) => assert_eq!(t.name_any(), "b"),
        other => panic!("{other:?}"),
    }
    match next_event(&mut stream).await {
        WatchEvent::Modified(t) => assert_eq!((t.name_any().as_str(), t.spec.partitions), ("a", 2)),
        other => panic!("{other:?}"),
    }
    topics.delete("b", &DeleteParams::default()).await.unwrap();
    match next_event(&mut stream).await {
        WatchEvent::Deleted(t) => {
            assert_eq!(t.name_any(), "b");
            assert!(
                t.resource_version().unwrap().parse::<u64>().unwrap()
                    > from.parse::<u64>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }

    // A watch of one object by name (kube-runtime's single-object watches).
    let mut one = topics
        .watch(
            &WatchParams::default()
                .fields("metadata.name=a")
                .disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    match next_event(&mut one).await {
        WatchEvent::Added(t) => assert_eq!(t.name_any(), "a"),
        other => panic!("{other:?}"),
    }
    topics
        .create(&PostParams::default(), &topic("c", 1))
        .await
        .unwrap();
    topics
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 3}})),
        )
        .await
        .unwrap();
    match next_event(&mut one).await {
        WatchEvent::Modified(t) => assert_eq!((t.name_any().as_str(), t.spec.partitions), ("a", 3)),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn watch_label_selector_transitions() {
    let (_api, client) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client);
    cms.create(&PostParams::default(), &configmap("x", &[("app", "a")]))
        .await
        .unwrap();
    let mut stream = cms
        .watch(
            &WatchParams::default().labels("app=a").disable_bookmarks(),
            "0",
        )
        .await
        .unwrap()
        .boxed();
    assert!(matches!(
        next_event(&mut stream).await,
        WatchEvent::Added(_)
    ));
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "b"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Deleted(c) if c.name_any() == "x"));
    cms.patch(
        "x",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "a"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Added(c) if c.name_any() == "x"));
}

#[tokio::test]
async fn bookmarks_only_when_asked_for() {
    let api = ApiServer::start_with(Options {
        bookmark_interval: Duration::from_millis(100),
        ..Default::default()
    })
    .await;
    api.register_crds(&crds::all());
    let topics = topics_api(&api.client());
    let t = topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    let rv = t.resource_version().unwrap();

    let mut with = topics
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut with).await {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.types.kind, "KafkaTopic");
            assert!(
                b.metadata.resource_version.parse::<u64>().unwrap() >= rv.parse::<u64>().unwrap()
            );
        }
        other => panic!("{other:?}"),
    }

    let mut without = topics
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let quiet = tokio::time::timeout(Duration::from_millis(400), without.next()).await;
    assert!(quiet.is_err(), "no event expected, got {quiet:?}");
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 2}})),
        )
        .await
        .unwrap();
    assert!(matches!(
        next_event(&mut without).await,
        WatchEvent::Modified(_)
    ));

    // The streaming list: initial ADDED events, then the initial-events-end bookmark.
    let mut streaming = topics
        .watch(&WatchParams::default().initial_events(), "0")
        .await
        .unwrap()
        .boxed();
    assert!(
        matches!(next_event(&mut streaming).await, WatchEvent::Added(t) if t.name_any() == "t")
    );
    match next_event(&mut streaming).await {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("{other:?}"),
    }

    // timeoutSeconds ends the stream.
    let started = Instant::now();
    let mut short = topics
        .watch(&WatchParams::default().disable_bookmarks().timeout(1), &rv)
        .await
        .unwrap()
        .boxed();
    let mut ended = false;
    while let Ok(next) = tokio::time::timeout(Duration::from_secs(5), short.next()).await {
        if next.is_none() {
            ended = true;
            break;
        }
    }
    assert!(ended && started.elapsed() >= Duration::from_millis(900));
}

#[tokio::test]
async fn expired_resource_versions_get_410() {
    let api = ApiServer::start_with(Options {
        history_limit: 3,
        ..Default::default()
    })
    .await;
    api.register_crds(&crds::all());
    let topics = topics_api(&api.client());
    let t = topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    let old = t.resource_version().unwrap();
    for p in 2..6 {
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"partitions": p}})),
            )
            .await
            .unwrap();
    }
    // A watch: HTTP 200, then an ERROR event with a 410 Status.
    let mut stream = topics
        .watch(&WatchParams::default(), &old)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(s) => {
            assert_eq!((s.code, s.reason.as_str()), (410, "Expired"));
            assert!(
                s.message.starts_with("too old resource version"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(tokio::time::timeout(WAIT, stream.next())
        .await
        .unwrap()
        .is_none());
    // An exact list at that version.
    let s = status_of(
        topics
            .list(&ListParams::default().at(&old).matching(VersionMatch::Exact))
            .await,
    );
    assert_eq!(s.code, 410);
    // Within the history, an exact list is the past state.
    let current = topics.get("t").await.unwrap();
    let rv: u64 = current.resource_version().unwrap().parse().unwrap();
    let past = topics
        .list(
            &ListParams::default()
                .at(&(rv - 1).to_string())
                .matching(VersionMatch::Exact),
        )
        .await
        .unwrap();
    assert_eq!(past.items[0].spec.partitions, 4);

    // compact() forgets everything.
    api.compact();
    let mut stream = topics
        .watch(&WatchParams::default(), &(rv - 1).to_string())
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut stream).await, WatchEvent::Error(s) if s.code == 410));
    let mut ok = topics
        .watch(&WatchParams::default().disable_bookmarks(), &rv.to_string())
        .await
        .unwrap()
        .boxed();
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 9}})),
        )
        .await
        .unwrap();
    assert!(matches!(next_event(&mut ok).await, WatchEvent::Modified(_)));
}

async fn until_init_done(
    stream: &mut (impl futures::Stream<Item = Result<watcher::Event<KafkaTopic>, watcher::Error>>
              + Unpin),
) -> Vec<String> {
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("watcher event in time")
        {
            Ok(Some(watcher::Event::InitApply(t))) => names.push(t.name_any()),
            Ok(Some(watcher::Event::InitDone)) => return names,
            Ok(Some(_)) => {}
            Ok(None) => panic!("watcher ended"),
            Err(e) => panic!("watcher error {e}"),
        }
    }
}

#[tokio::test]
async fn a_watcher_survives_dropped_watches() {
    let (api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    // The watcher only watches while polled: poll it from a task.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pump = tokio::spawn(async move {
        let mut stream = watcher(topics_api(&client), watcher::Config::default()).boxed();
        while let Some(event) = stream.next().await {
            if tx.send(event).is_err() {
                return;
            }
        }
    });
    let mut stream = Box::pin(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|e| (e, rx))
    }));
    assert_eq!(until_init_done(&mut stream).await, vec!["t"]);
    api.wait_for_watches(1).await;

    // Drop every watch and hold new ones back while a change is made.
    api.set_delay(("GET", "watch=true"), Duration::from_millis(500));
    api.drop_watches();
    eventually("the watch to close", || async { api.open_watches() == 0 }).await;
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 4}})),
        )
        .await
        .unwrap();
    loop {
        match tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("watcher event in time")
        {
            Ok(Some(watcher::Event::Apply(t))) if t.spec.partitions == 4 => break,
            Ok(Some(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    api.clear_faults();
    assert!(
        api.requests()
            .iter()
            .filter(|r| r.path.contains("watch=true"))
            .count()
            >= 2
    );

    // A change while dropped, then a compaction: the rewatch gets 410 and the watcher relists.
    api.wait_for_watches(1).await;
    api.set_delay(("GET", "watch=true"), Duration::from_millis(500));
    api.drop_watches();
    eventually("the watch to close", || async { api.open_watches() == 0 }).await;
    topics
        .create(&PostParams::default(), &topic("u", 1))
        .await
        .unwrap();
    api.compact();
    let mut saw_gone = false;
    loop {
        match tokio::time::timeout(WAIT, stream.next())
            .await
            .expect("watcher event in time")
        {
            Some(Err(watcher::Error::WatchError(s))) if s.code == 410 => saw_gone = true,
            Some(Ok(watcher::Event::InitDone)) if saw_gone => break,
            Some(Ok(watcher::Event::Apply(t))) => panic!("{} seen without a relist", t.name_any()),
            Some(_) => {}
            None => panic!("watcher ended"),
        }
    }
    api.clear_faults();
    let listed = topics.list(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    pump.abort();
}

// ---------------------------------------------------------------------------------------------
// Deletion

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let mut t = topic("t", 1);
    t.metadata.finalizers = Some(vec!["tributary.io/cleanup".into()]);
    let created = topics.create(&PostParams::default(), &t).await.unwrap();
    let mut stream = topics
        .watch(
            &WatchParams::default().disable_bookmarks(),
            &created.resource_version().unwrap(),
        )
        .await
        .unwrap()
        .boxed();

    let deleting = topics
        .delete("t", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    assert_eq!(deleting.metadata.generation, Some(2));
    assert!(
        matches!(next_event(&mut stream).await, WatchEvent::Modified(t) if t.metadata.deletion_timestamp.is_some())
    );
    let still = topics.get("t").await.unwrap();
    assert_eq!(still.finalizers(), ["tributary.io/cleanup".to_string()]);
    // A second delete changes nothing.
    let again = topics
        .delete("t", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(again.resource_version(), still.resource_version());

    // No new finalizers while being deleted.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(
                    json!({"metadata": {"finalizers": ["tributary.io/cleanup", "other"]}}),
                ),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert_eq!(s.details.unwrap().causes[0].field, "metadata.finalizers");

    // Removing the last finalizer deletes it: one DELETED event, showing the last stored state
    // (as etcd's previous value does on a real server), at a new resourceVersion.
    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    match next_event(&mut stream).await {
        WatchEvent::Deleted(t) => {
            assert!(t.metadata.deletion_timestamp.is_some());
            assert_ne!(t.resource_version(), still.resource_version());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(status_of(topics.get("t").await).code, 404);
}

fn owned_by(owner: &impl Resource<DynamicType = ()>) -> Vec<OwnerReference> {
    vec![owner.controller_owner_ref(&()).unwrap()]
}

#[tokio::test]
async fn owner_references_cascade() {
    let (_api, client) = setup().await;
    let clusters: Api<KafkaCluster> = Api::default_namespaced(client.clone());
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let topics = topics_api(&client);

    // Background (the default).
    let owner = clusters
        .create(&PostParams::default(), &cluster("main"))
        .await
        .unwrap();
    let mut cm = configmap("main-config", &[]);
    cm.metadata.owner_references = Some(owned_by(&owner));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let mut t = topic("orders", 1);
    t.metadata.owner_references = Some(owned_by(&owner));
    topics.create(&PostParams::default(), &t).await.unwrap();
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("main-creds".into()),
            owner_references: Some(owned_by(&owner)),
            finalizers: Some(vec!["tributary.io/keep".into()]),
            ..Default::default()
        },
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    clusters
        .delete("main", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(status_of(cms.get("main-config").await).code, 404);
    assert_eq!(status_of(topics.get("orders").await).code, 404);
    let held = secrets.get("main-creds").await.unwrap();
    assert!(
        held.metadata.deletion_timestamp.is_some(),
        "a dependent's own finalizers hold it"
    );
    secrets
        .patch(
            "main-creds",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
        )
        .await
        .unwrap();
    assert!(secrets.get_opt("main-creds").await.unwrap().is_none());

    // Orphan: the dependent stays, without the owner reference.
    let owner = clusters
        .create(&PostParams::default(), &cluster("second"))
        .await
        .unwrap();
    let mut cm = configmap("second-config", &[]);
    cm.metadata.owner_references = Some(owned_by(&owner));
    cms.create(&PostParams::default(), &cm).await.unwrap();
    clusters
        .delete("second", &DeleteParams::orphan())
        .await
        .unwrap();
    assert!(clusters.get_opt("second").await.unwrap().is_none());
    let orphan = cms.get("second-config").await.unwrap();
    assert!(orphan
        .metadata
        .owner_references
        .unwrap_or_default()
        .is_empty());

    // Foreground: dependents first, then the owner.
    let owner = clusters
        .create(&PostParams::default(), &cluster("third"))
        .await
        .unwrap();
    let mut cm = configmap("third-config", &[]);
    cm.metadata.owner_references = Some(owned_by(&owner));
    cm.metadata.finalizers = Some(vec!["tributary.io/hold".into()]);
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let deleting = clusters
        .delete("third", &DeleteParams::foreground())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleting
        .finalizers()
        .contains(&"foregroundDeletion".to_string()));
    assert!(clusters
        .get("third")
        .await
        .unwrap()
        .metadata
        .deletion_timestamp
        .is_some());
    cms.patch(
        "third-config",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("third-config").await.unwrap().is_none());
    assert!(clusters.get_opt("third").await.unwrap().is_none());
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_content() {
    let (api, client) = setup().await;
    api.create_namespace("team");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "team");
    cms.create(&PostParams::default(), &configmap("c", &[]))
        .await
        .unwrap();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    assert_eq!(
        namespaces
            .get("team")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Active")
    );
    namespaces
        .delete("team", &DeleteParams::default())
        .await
        .unwrap();
    assert!(cms.get_opt("c").await.unwrap().is_none());
    assert!(namespaces.get_opt("team").await.unwrap().is_none());
}

// ---------------------------------------------------------------------------------------------
// Validation

async fn invalid(
    result: Result<DynamicObject, kube::Error>,
) -> (String, Vec<(String, String, String)>) {
    let s = status_of(result);
    assert_eq!(
        (s.code, s.reason.as_str(), s.status.is_some()),
        (422, "Invalid", true),
        "{s:?}"
    );
    let d = s.details.expect("details");
    assert_eq!(
        (d.group.as_str(), d.kind.as_str()),
        ("tributary.io", "KafkaTopic")
    );
    let causes = d
        .causes
        .into_iter()
        .map(|c| (c.field, c.reason, c.message))
        .collect();
    (s.message, causes)
}

#[tokio::test]
async fn schema_validation_refuses_invalid_objects_with_422() {
    let (api, client) = setup().await;
    let raw = dynamic_topics(&client);
    let pp = PostParams::default();

    let (message, causes) = invalid(
        raw.create(
            &pp,
            &raw_topic("t", json!({"clusterRef": "main", "partitions": "three"})),
        )
        .await,
    )
    .await;
    assert!(
        message.starts_with(
            "KafkaTopic.tributary.io \"t\" is invalid: spec.partitions: Invalid value: \"string\""
        ),
        "{message}"
    );
    assert!(
        message.contains("spec.partitions in body must be of type integer: \"string\""),
        "{message}"
    );
    assert_eq!(causes[0].0, "spec.partitions");
    assert_eq!(causes[0].1, "FieldValueInvalid");

    let (message, causes) = invalid(
        raw.create(&pp, &raw_topic("t", json!({"partitions": 3})))
            .await,
    )
    .await;
    assert_eq!(
        message,
        "KafkaTopic.tributary.io \"t\" is invalid: spec.clusterRef: Required value"
    );
    assert_eq!(
        causes,
        vec![(
            "spec.clusterRef".into(),
            "FieldValueRequired".into(),
            "Required value".into()
        )]
    );

    let (message, _) = invalid(
        raw.create(
            &pp,
            &raw_topic("t", json!({"clusterRef": "main", "partitions": 0})),
        )
        .await,
    )
    .await;
    assert!(message.ends_with("spec.partitions: Invalid value: 0: spec.partitions in body should be greater than or equal to 1"), "{message}");

    let (message, causes) = invalid(
        raw.create(
            &pp,
            &raw_topic(
                "t",
                json!({"clusterRef": "main", "partitions": 1, "deletionPolicy": "Destroy"}),
            ),
        )
        .await,
    )
    .await;
    assert!(message.contains("spec.deletionPolicy: Unsupported value: \"Destroy\": supported values: \"Retain\", \"Delete\""), "{message}");
    assert_eq!(causes[0].1, "FieldValueNotSupported");

    let (message, _) = invalid(
        raw.create(
            &pp,
            &raw_topic(
                "t",
                json!({"clusterRef": "main", "partitions": 1, "topicName": "no spaces"}),
            ),
        )
        .await,
    )
    .await;
    assert!(
        message.contains("spec.topicName in body should match '^[a-zA-Z0-9._-]+$'"),
        "{message}"
    );

    let (message, causes) = invalid(
        raw.create(
            &pp,
            &raw_topic("t", json!({"clusterRef": "", "partitions": 0})),
        )
        .await,
    )
    .await;
    assert!(message.contains("[") && causes.len() == 2, "{message}");

    // Nothing was stored.
    assert!(raw
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    // Unknown fields are pruned silently; defaults are filled in.
    let pruned = raw
        .create(
            &pp,
            &raw_topic(
                "t",
                json!({"clusterRef": "main", "partitions": 3, "bogus": {"x": 1}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(
        pruned.data["spec"],
        json!({"clusterRef": "main", "partitions": 3, "deletionPolicy": "Retain"})
    );
    let stored = api
        .stored("tributary.io", "kafkatopics", "default", "t")
        .unwrap();
    assert!(stored["spec"].get("bogus").is_none());
}

#[tokio::test]
async fn cel_rules_are_enforced_with_transition_rules_on_update() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 3))
        .await
        .unwrap();

    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"partitions": 2}})),
            )
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (422, "Invalid"));
    assert!(
        s.message.contains("spec.partitions cannot decrease"),
        "{}",
        s.message
    );
    assert_eq!(
        s.message,
        "KafkaTopic.tributary.io \"t\" is invalid: spec.partitions: Invalid value: \"integer\": spec.partitions cannot decrease: Kafka cannot remove partitions"
    );
    let cause = &s.details.unwrap().causes[0];
    assert_eq!(
        (cause.field.as_str(), cause.reason.as_str()),
        ("spec.partitions", "FieldValueInvalid")
    );

    // The same rule through SSA and PUT.
    let mut smaller = topics.get("t").await.unwrap();
    smaller.spec.partitions = 1;
    assert_eq!(
        status_of(topics.replace("t", &PostParams::default(), &smaller).await).code,
        422
    );
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::apply("alice").force(),
                &Patch::Apply(applied_topic(2, &[])),
            )
            .await,
    );
    assert!(
        s.message.contains("spec.partitions cannot decrease"),
        "{}",
        s.message
    );

    // Another transition rule; and growing is fine.
    let s = status_of(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"clusterRef": "other"}})),
            )
            .await,
    );
    assert!(
        s.message.contains("spec.clusterRef is immutable"),
        "{}",
        s.message
    );
    assert_eq!(
        topics
            .patch(
                "t",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"partitions": 5}}))
            )
            .await
            .unwrap()
            .spec
            .partitions,
        5
    );

    // A creation rule on another kind: an inline SASL password.
    let clusters: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &ApiResource::erase::<KafkaCluster>(&()),
    );
    let c: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1",
        "kind": "KafkaCluster",
        "metadata": {"name": "c"},
        "spec": {
            "bootstrapServers": ["k:9092"],
            "sasl": {"mechanism": "PLAIN", "username": {"value": "u"}, "password": {"value": "p"}},
        },
    }))
    .unwrap();
    let s = status_of(clusters.create(&PostParams::default(), &c).await);
    assert_eq!(s.code, 422);
    assert!(
        s.message
            .contains("sasl.password must come from secretKeyRef or file"),
        "{}",
        s.message
    );
    assert_eq!(s.details.unwrap().causes[0].field, "spec.sasl.password");
}

// ---------------------------------------------------------------------------------------------
// Fault injection

#[tokio::test]
async fn injected_faults_and_delays() {
    let (api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();

    api.fail_next(("GET", "/kafkatopics/t"), 500, 1);
    let s = status_of(topics.get("t").await);
    assert_eq!((s.code, s.reason.as_str()), (500, "InternalError"));
    assert!(topics.get("t").await.is_ok(), "only the next request fails");

    api.fail_next(("PATCH", "/kafkatopics/"), 409, 1);
    let s = status_of(
        topics
            .patch("t", &PatchParams::default(), &Patch::Merge(json!({})))
            .await,
    );
    assert_eq!((s.code, s.reason.as_str()), (409, "Conflict"));

    // kube's client retries 429 by itself.
    api.clear_requests();
    api.fail_next("/kafkatopics", 429, 2);
    assert_eq!(
        topics
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let injected = api
        .requests()
        .iter()
        .filter(|r| r.injected && r.status == 429)
        .count();
    assert_eq!(injected, 2);

    api.set_delay(("GET", "/kafkatopics/t"), Duration::from_millis(300));
    let started = Instant::now();
    topics.get("t").await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    api.clear_faults();
    let started = Instant::now();
    topics.get("t").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(300));
}

// ---------------------------------------------------------------------------------------------
// CRDs, discovery, events, kubeconfig

#[tokio::test]
async fn crds_created_through_the_api_register_their_kinds() {
    let api = ApiServer::start().await;
    let client = api.client();
    let crds_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let topics = topics_api(&client);
    assert_eq!(
        status_of(topics.list(&ListParams::default()).await).code,
        404
    );

    crds_api
        .create(&PostParams::default(), &KafkaTopic::crd())
        .await
        .unwrap();
    let established = tokio::time::timeout(
        WAIT,
        kube::runtime::wait::await_condition(
            crds_api.clone(),
            "kafkatopics.tributary.io",
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(established.is_some());
    topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();

    // A CRD whose name does not fit its names is refused.
    let mut bad = KafkaCluster::crd();
    bad.metadata.name = Some("wrong.tributary.io".into());
    assert_eq!(
        status_of(crds_api.create(&PostParams::default(), &bad).await).code,
        422
    );

    // Deleting the CRD stops serving the kind.
    crds_api
        .delete("kafkatopics.tributary.io", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(
        status_of(topics.list(&ListParams::default()).await).code,
        404
    );
}

#[tokio::test]
async fn discovery_finds_builtins_and_custom_kinds() {
    let (_api, client) = setup().await;
    for discovery in [
        kube::Discovery::new(client.clone()).run().await.unwrap(),
        kube::Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let group = discovery
            .get("tributary.io")
            .expect("the tributary.io group");
        let (ar, caps) = group
            .recommended_resources()
            .into_iter()
            .find(|(ar, _)| ar.kind == "KafkaTopic")
            .expect("KafkaTopic discovered");
        assert_eq!(
            (ar.plural.as_str(), ar.version.as_str()),
            ("kafkatopics", "v1alpha1")
        );
        assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
        assert!(caps.supports_operation(kube::discovery::verbs::WATCH));
        assert!(
            caps.subresources
                .iter()
                .any(|(sub, _)| sub.plural == "status"),
            "{caps:?}"
        );
        let core = discovery.get("").expect("the core group");
        assert!(core
            .recommended_resources()
            .iter()
            .any(|(ar, _)| ar.kind == "ConfigMap"));
        assert!(discovery.get("coordination.k8s.io").is_some());
        assert!(discovery.get("events.k8s.io").is_some());
    }
    let (ar, _) = kube::discovery::pinned_kind(
        &client,
        &kube::core::GroupVersionKind::gvk("tributary.io", "v1alpha1", "KafkaCluster"),
    )
    .await
    .unwrap();
    assert_eq!(ar.plural, "kafkaclusters");
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
}

#[tokio::test]
async fn recorder_events_are_stored() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let t = topics
        .create(&PostParams::default(), &topic("t", 1))
        .await
        .unwrap();
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "tributary-test".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Reconciled".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&event, &t.object_ref(&())).await.unwrap();
    recorder.publish(&event, &t.object_ref(&())).await.unwrap();
    let events: Api<K8sEvent> = Api::default_namespaced(client);
    let list = events.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let e = &list.items[0];
    assert_eq!(e.reason.as_deref(), Some("Reconciled"));
    assert_eq!(e.regarding.as_ref().unwrap().name.as_deref(), Some("t"));
    assert_eq!(e.series.as_ref().map(|s| s.count), Some(2));
    let by_object = events
        .list(&ListParams::default().fields("regarding.name=t,regarding.kind=KafkaTopic"))
        .await
        .unwrap();
    assert_eq!(by_object.items.len(), 1);
}

#[tokio::test]
async fn a_kubeconfig_points_at_the_server() {
    let (api, _client) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    api.write_kubeconfig(&path).unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(&path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(config.default_namespace, "default");
    let client = Client::try_from(config).unwrap();
    let namespaces: Api<Namespace> = Api::all(client);
    let names: Vec<String> = namespaces
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|n| n.name_any())
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");
}

// ---------------------------------------------------------------------------------------------
// A kube-runtime controller, end to end

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
struct ReconcileError(#[from] kube::Error);

struct Ctx {
    client: Client,
    reconciles: AtomicUsize,
}

async fn reconcile(
    t: Arc<KafkaTopic>,
    ctx: Arc<Ctx>,
) -> Result<Action, finalizer::Error<ReconcileError>> {
    ctx.reconciles.fetch_add(1, Ordering::SeqCst);
    let api: Api<KafkaTopic> = Api::namespaced(ctx.client.clone(), &t.namespace().unwrap());
    let (ctx2, api2) = (ctx.clone(), api.clone());
    finalizer(&api, "tributary.io/test", t, move |event| async move {
        let (ctx, api) = (ctx2, api2);
        match event {
            finalizer::Event::Apply(t) => {
                let status = json!({
                    "apiVersion": "tributary.io/v1alpha1",
                    "kind": "KafkaTopic",
                    "status": {
                        "observedGeneration": t.metadata.generation,
                        "partitions": t.spec.partitions,
                        "conditions": [{"type": "Ready", "status": "True", "reason": "Reconciled", "message": ""}],
                    },
                });
                api.patch_status(&t.name_any(), &PatchParams::apply("test-controller").force(), &Patch::Apply(status))
                    .await?;
                let owner = t.controller_owner_ref(&()).unwrap();
                let child = json!({
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": format!("{}-topic", t.name_any()), "ownerReferences": [owner]},
                    "data": {"partitions": t.spec.partitions.to_string()},
                });
                let cms: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &t.namespace().unwrap());
                cms.patch(&format!("{}-topic", t.name_any()), &PatchParams::apply("test-controller").force(), &Patch::Apply(child))
                    .await?;
                Ok(Action::await_change())
            }
            finalizer::Event::Cleanup(_) => Ok(Action::await_change()),
        }
    })
    .await
}

#[tokio::test]
async fn a_controller_reconciles_and_settles() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    let ctx = Arc::new(Ctx {
        client: client.clone(),
        reconciles: AtomicUsize::new(0),
    });
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let controller = Controller::new(topics.clone(), watcher::Config::default())
        .owns(cms.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_t, _e, _ctx| Action::requeue(Duration::from_millis(200)),
            ctx.clone(),
        )
        .for_each(|_| async {});
    let handle = tokio::spawn(controller);

    topics
        .create(&PostParams::default(), &topic("t", 3))
        .await
        .unwrap();
    eventually("the controller's status", || async {
        let t = topics.get("t").await.unwrap();
        t.status.as_ref().is_some_and(|s| s.partitions == Some(3))
            && t.finalizers() == ["tributary.io/test".to_string()]
    })
    .await;
    // No hot loop: applying the same status again is no change, so no new event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = ctx.reconciles.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ctx.reconciles.load(Ordering::SeqCst), settled);

    assert_eq!(
        cms.get("t-topic").await.unwrap().data.unwrap()["partitions"],
        "3"
    );

    // A deleted child is put back (the controller watches what it owns).
    cms.delete("t-topic", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the child recreated", || async {
        cms.get_opt("t-topic").await.unwrap().is_some()
    })
    .await;

    topics
        .patch(
            "t",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"partitions": 6}})),
        )
        .await
        .unwrap();
    eventually("the new generation observed", || async {
        let t = topics.get("t").await.unwrap();
        t.status
            .as_ref()
            .is_some_and(|s| s.observed_generation == Some(2) && s.partitions == Some(6))
    })
    .await;

    assert_eq!(
        cms.get("t-topic").await.unwrap().data.unwrap()["partitions"],
        "6"
    );

    topics.delete("t", &DeleteParams::default()).await.unwrap();
    eventually("the finalizer removed and the topic gone", || async {
        topics.get_opt("t").await.unwrap().is_none()
    })
    .await;
    assert!(
        cms.get_opt("t-topic").await.unwrap().is_none(),
        "the child goes with its owner"
    );
    handle.abort();
}

// ---------------------------------------------------------------------------------------------
// More of what clients use

#[tokio::test]
async fn reflectors_and_metadata_watchers() {
    let (_api, client) = setup().await;
    let topics = topics_api(&client);
    topics
        .create(&PostParams::default(), &topic("a", 1))
        .await
        .unwrap();

    let (reader, writer) = kube::runtime::reflector::store();
    let reflector =
        kube::runtime::reflector(writer, watcher(topics.clone(), watcher::Config::default()));
    let pump = tokio::spawn(reflector.for_each(|_| async {}));
    tokio::time::timeout(WAIT, reader.wait_until_ready())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reader.state().len(), 1);
    topics
        .create(&PostParams::default(), &topic("b", 1))
        .await
        .unwrap();
    eventually("the store to see b", || {
        let n = reader.state().len();
        async move { n == 2 }
    })
    .await;
    pump.abort();

    // Metadata-only watches and gets (PartialObjectMetadata).
    let meta_api: Api<kube::core::PartialObjectMeta<KafkaTopic>> =
        Api::namespaced(client.clone(), "default");
    let mut meta = watcher(meta_api, watcher::Config::default()).boxed();
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, meta.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitApply(m)) => names.push(m.name_any()),
            Some(watcher::Event::InitDone) => break,
            Some(_) => {}
            None => panic!("ended"),
        }
    }
    assert_eq!(names, vec!["a", "b"]);
    let m = topics.get_metadata("a").await.unwrap();
    assert_eq!(m.metadata.name.as_deref(), Some("a"));
    assert_eq!(
        topics
            .list_metadata(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    // The streaming-list initial strategy too.
    let mut streaming =
        watcher(topics.clone(), watcher::Config::default().streaming_lists()).boxed();
    let mut names = Vec::new();
    loop {
        match tokio::time::timeout(WAIT, streaming.try_next())
            .await
            .unwrap()
            .unwrap()
        {
            Some(watcher::Event::InitApply(t)) => names.push(t.name_any()),
            Some(watcher::Event::InitDone) => break,
            Some(_) => {}
            None => panic!("ended"),
        }
    }
    assert_eq!(names, vec!["a", "b"]);
}

#[tokio::test]
async fn dry_run_preconditions_and_delete_collection() {
    let (api, client) = setup().await;
    let cms: Api<ConfigMap> = Api::default_namespaced(client.clone());
    let rv = api.resource_version();
    let dry = cms
        .create(
            &PostParams {
                dry_run: true,
                ..Default::default()
            },
            &configmap("dry", &[]),
        )
        .await
        .unwrap();
    assert_eq!(dry.name_any(), "dry");
    assert!(cms.get_opt("dry").await.unwrap().is_none());
    assert_eq!(api.resource_version(), rv);

    let created = cms
        .create(&PostParams::default(), &configmap("a", &[("x", "1")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("b", &[("x", "1")]))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &configmap("c", &[]))
        .await
        .unwrap();

    // Re-creating a fetched object (with its resourceVersion) fails, as on a real cluster.
    let mut again = created.clone();
    again.metadata.name = Some("a2".into());
    assert_eq!(
        status_of(cms.create(&PostParams::default(), &again).await).code,
        500
    );

    let wrong_uid = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..Default::default()
    };
    assert_eq!(status_of(cms.delete("a", &wrong_uid).await).code, 409);
    let stale = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: None,
            resource_version: Some("1".into()),
        }),
        ..Default::default()
    };
    assert_eq!(status_of(cms.delete("a", &stale).await).code, 409);
    assert!(cms
        .delete("a", &DeleteParams::default().dry_run())
        .await
        .is_ok());
    assert!(cms.get_opt("a").await.unwrap().is_some());

    let deleted = cms
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels("x=1"),
        )
        .await
        .unwrap();
    assert_eq!(deleted.left().unwrap().items.len(), 2);
    let left: Vec<String> = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .iter()
        .map(|c| c.name_any())
        .collect();
    assert_eq!(left, vec!["c"]);
}

#[tokio::test]
async fn builtins_take_strategic_merge_and_server_side_apply() {
    let (_api, client) = setup().await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::default_namespaced(client.clone());
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [
                    {"name": "app", "image": "app:1"},
                    {"name": "sidecar", "image": "sidecar:1"},
                ]},
            },
        },
    }))
    .unwrap();
    let created = deployments
        .create(&PostParams::default(), &d)
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    // Strategic merge: containers merge by name.
    let patched = deployments
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}})),
        )
        .await
        .unwrap();
    let containers = patched.spec.template.spec.unwrap().containers;
    let images: Vec<(String, Option<String>)> =
        containers.into_iter().map(|c| (c.name, c.image)).collect();
    assert_eq!(
        images,
        vec![
            ("app".into(), Some("app:2".into())),
            ("sidecar".into(), Some("sidecar:1".into()))
        ]
    );
    assert_eq!(patched.metadata.generation, Some(2));

    // Leases for leader election.
    let leases: Api<k8s_openapi::api::coordination::v1::Lease> = Api::default_namespaced(client);
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "tributary-leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15},
    });
    let l = leases
        .patch(
            "tributary-leader",
            &PatchParams::apply("a"),
            &Patch::Apply(lease),
        )
        .await
        .unwrap();
    assert_eq!(l.spec.unwrap().holder_identity.as_deref(), Some("a"));
}
