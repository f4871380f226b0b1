//! A kube-runtime controller, end to end

use super::*;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::{finalizer, watcher, Controller};
use kube::{Client, Resource, ResourceExt};
use serde_json::json;
use tributary::api::KafkaTopic;

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
