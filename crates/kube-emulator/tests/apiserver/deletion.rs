//! Deletion: finalizers, owner references (garbage collection), namespaces

use super::*;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{
    Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::{Resource, ResourceExt};
use serde_json::json;
use tributary::api::KafkaCluster;

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
