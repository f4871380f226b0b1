//! CRDs, discovery, events, kubeconfig

use super::*;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::{Client, CustomResourceExt, Resource, ResourceExt};
use kube_emulator::ApiServer;
use tributary::api::{KafkaCluster, KafkaTopic};

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
