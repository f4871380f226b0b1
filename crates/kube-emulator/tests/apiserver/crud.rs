//! CRUD

use super::*;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use tributary::api::KafkaTopicStatus;

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
