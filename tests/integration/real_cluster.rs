//! Opt-in: the end-to-end scenarios against a real Kubernetes cluster (kind, k3d, ...) and a
//! real broker. Runs when both `KUBECONFIG` and `TRIBUTARY_TEST_BOOTSTRAP` are set; otherwise
//! it says why it did nothing. The operator runs in this process, so the broker address must
//! be reachable from here (the KafkaCluster it creates uses the same address).
//!
//! It installs the CRDs (server-side apply), works in a fresh namespace
//! `tributary-e2e-<pid>`, and deletes that namespace at the end.

use std::time::Duration;

use crate::support::scenarios::{self, Env};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use tributary::api::crds;
use tributary::operator;
use tributary::runtime::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenarios_against_a_real_cluster() {
    let (Some(_), Ok(bootstrap)) = (
        std::env::var_os("KUBECONFIG"),
        std::env::var("TRIBUTARY_TEST_BOOTSTRAP"),
    ) else {
        eprintln!("real-cluster suite not run: set KUBECONFIG and TRIBUTARY_TEST_BOOTSTRAP (see README, 'Against a real cluster')");
        return;
    };
    let client = Client::try_default().await.expect("a usable KUBECONFIG");
    let crd_api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds::all() {
        crd_api
            .patch(
                &crd.name_any(),
                &PatchParams::apply("tributary-e2e").force(),
                &Patch::Apply(&crd),
            )
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await; // CRDs become Established
    let namespace = format!("tributary-e2e-{}", std::process::id());
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.clone());
    namespaces
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();

    let options = Options {
        namespaces: vec![namespace.clone()],
        resync: Duration::from_secs(5),
        probe_interval: Duration::from_secs(5),
        backoff_base: Duration::from_millis(500),
        backoff_max: Duration::from_secs(5),
        ..Default::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let operator = tokio::spawn(operator::run_controllers(
        client.clone(),
        options,
        runtime::rdkafka_connect(),
        async move {
            let _ = stopped.await;
        },
    ));
    let env = Env {
        client: client.clone(),
        namespace: namespace.clone(),
        bootstrap: bootstrap.clone(),
        patience: Duration::from_secs(90),
    };
    env.apply_cluster("e2e", &bootstrap).await;

    scenarios::create_and_edit(&env, "e2e").await;
    scenarios::drift_is_repaired(&env, "e2e").await;
    scenarios::delete_by_policy(&env, "e2e").await;
    scenarios::pause_and_dry_run(&env, "e2e").await;
    scenarios::conflict(&env, "e2e").await;
    scenarios::invalid_object_is_refused(&env, "e2e").await;
    scenarios::topology_follows_its_spec(&env, "e2e").await;

    // Let the operator release every finalizer (all Retain) before it stops.
    for name in scenarios::all_topics(&env).await {
        let _ = env.topics().delete(&name, &DeleteParams::default()).await;
    }
    env.eventually("every KafkaTopic is gone", || async {
        scenarios::all_topics(&env).await.is_empty()
    })
    .await;
    let _ = stop.send(());
    let _ = operator.await;
    namespaces
        .delete(&namespace, &DeleteParams::default())
        .await
        .unwrap();
}
