//! More of what clients use: reflectors, metadata watchers, dry run, preconditions,
//! delete collection, and the built-in kinds

use super::*;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::ResourceExt;
use serde_json::json;
use tributary::api::KafkaTopic;

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
