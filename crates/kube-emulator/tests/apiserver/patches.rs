//! Patches and selectors

use super::*;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::ResourceExt;
use serde_json::json;
use tributary::api::KafkaTopic;

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
