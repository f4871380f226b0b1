//! What every controller shares, end to end: watches (dropped streams, one watch per kind),
//! retries of API-server errors, and no writes while idle.

use super::*;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::broker::unique;
use crate::support::scenarios::spec;
use serde_json::json;
use tributary::api::ConditionStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_watch_streams_miss_no_change() {
    let r = start().await;
    let env = &r.env;
    let name = unique("ride-requests");
    env.create_topic(&name, spec("local", 1, &[("retention.ms", "1000")]))
        .await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    for value in ["2000", "3000"] {
        r.api.drop_watches();
        env.topics()
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(json!({"spec": {"config": {"retention.ms": value}}})),
            )
            .await
            .unwrap();
        env.eventually("the change made while the watch was down lands", || async {
            env.broker(&[&name]).await.topics[&name].configs["retention.ms"]
                .value
                .as_deref()
                == Some(value)
        })
        .await;
    }
    r.stop().await;
}

/// API-server errors (500 on status writes, 409 on the finalizer patch) are retried with
/// backoff; the topic still converges and other topics are not held up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_errors_are_retried() {
    let r = start().await;
    let env = &r.env;
    let flaky = unique("clicks");
    let healthy = unique("inventory");
    r.api.fail_next(
        kube_emulator::Matcher::new("PATCH", &format!("/kafkatopics/{flaky}/status")),
        500,
        2,
    );
    r.api.fail_next(
        kube_emulator::Matcher::new("PATCH", &format!("/kafkatopics/{flaky}?")),
        409,
        1,
    );
    env.create_topic(&flaky, spec("local", 1, &[])).await;
    env.create_topic(&healthy, spec("local", 1, &[])).await;
    for name in [&healthy, &flaky] {
        env.eventually("Ready despite injected errors", || async {
            matches!(env.ready(name).await, Some((ConditionStatus::True, _, _)))
        })
        .await;
    }
    let injected = r.api.requests().iter().filter(|q| q.injected).count();
    assert_eq!(injected, 3, "every injected failure was hit");
    r.stop().await;
}

/// Every kind the controllers read — their own, what they own, what they look at — is watched
/// once: one watch stream per kind, shared by every controller that needs it (before the shared
/// watches: KafkaTopic four times, KafkaCluster, KafkaProducer, KafkaConsumer and Deployment
/// twice each). Owned Deployments and Services are watched as metadata only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_is_watched_once() {
    let r = start().await;
    r.api.wait_for_watches(9).await;
    // Let any second watch of a kind show up, if there were one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut watches: BTreeMap<String, usize> = BTreeMap::new();
    for request in r.api.requests() {
        let (path, query) = request.path.split_once('?').unwrap_or((&request.path, ""));
        if request.method == "GET" && query.split('&').any(|p| p == "watch=true") {
            let resource = path.rsplit('/').next().unwrap_or_default().to_owned();
            *watches.entry(resource).or_default() += 1;
        }
    }
    let expected: BTreeMap<String, usize> = [
        "deployments",
        "kafkaclusters",
        "kafkaconsumers",
        "kafkaoffsetresets",
        "kafkaproducers",
        "kafkatopics",
        "kafkausers",
        "services",
        "streamtopologies",
    ]
    .into_iter()
    .map(|k| (k.to_owned(), 1))
    .collect();
    assert_eq!(watches, expected, "watch requests per resource");
    assert_eq!(r.api.open_watches(), 9, "open watch streams");
    r.stop().await;
}

/// Idle means zero writes: once a producer (Deployment and Service), a consumer with fixed
/// replicas, a consumer scaled on lag (polled every second) and a topology of the three are
/// Ready, the reconciles that keep coming (lag polls, resyncs, cluster probes) compare what they
/// would apply and the status they would write with what is there and write nothing — no
/// apply, no status, no Event. (Before the fix, the scaled consumer wrote its status on every
/// lag poll: the newest entry of its scale history carried the poll's time.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_workloads_write_nothing() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("idle");
    env.create_topic(&topic, spec("local", 2, &[])).await;
    let producer_name = unique("idle-producer");
    let consumer_name = unique("idle-consumer");
    let scaled_name = unique("idle-scaled");
    let producers: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    producers
        .create(
            &Default::default(),
            &producer(&producer_name, "local", &[&topic]),
        )
        .await
        .unwrap();
    let consumers: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    consumers
        .create(
            &Default::default(),
            &consumer(&consumer_name, &[&topic], json!({"replicas": 1})),
        )
        .await
        .unwrap();
    let autoscaling = json!({
        "minReplicas": 1, "maxReplicas": 3, "lagThreshold": 10,
        "scaleDownStabilizationSeconds": 3, "pollIntervalSeconds": 1
    });
    consumers
        .create(
            &Default::default(),
            &consumer(
                &scaled_name,
                &[&topic],
                json!({ "autoscaling": autoscaling }),
            ),
        )
        .await
        .unwrap();
    let topology_name = unique("idle-topology");
    let topology_topic = unique("idle-flow");
    let topology: tributary::api::StreamTopology = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": topology_name, "namespace": NAMESPACE},
        "spec": {
            "clusterRef": "local",
            "topics": [{"name": topology_topic, "partitions": 2}],
            "producers": [{"name": "writer", "topics": [topology_topic], "replicas": 1,
                           "template": {"image": "ghcr.io/example/writer:1.0.0"}}],
            "consumers": [{"name": "reader", "topics": [topology_topic], "autoscaling": autoscaling,
                           "template": {"image": "ghcr.io/example/reader:1.0.0"}}]
        }
    }))
    .unwrap();
    let topologies: kube::Api<tributary::api::StreamTopology> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    topologies
        .create(&Default::default(), &topology)
        .await
        .unwrap();
    let deployments = [
        producer_name.clone(),
        consumer_name.clone(),
        scaled_name.clone(),
        format!("{topology_name}-writer"),
        format!("{topology_name}-reader"),
    ];
    env.eventually("every Deployment exists", || async {
        for name in &deployments {
            if deployment_replicas(env, name).await.is_none() {
                return false;
            }
        }
        true
    })
    .await;
    roll_out_all(env).await;
    let ready = |conditions: &[tributary::api::Condition]| {
        ready_reason(conditions).is_some_and(|(s, _)| s == ConditionStatus::True)
    };
    env.eventually("every workload and the topology Ready", || async {
        let p = producer_status(env, &producer_name).await;
        let c = consumer_status(env, &consumer_name).await;
        let s = consumer_status(env, &scaled_name).await;
        let t = topologies
            .get_opt(&topology_name)
            .await
            .ok()
            .flatten()
            .and_then(|t| t.status);
        p.is_some_and(|s| ready(&s.conditions))
            && c.is_some_and(|s| ready(&s.conditions))
            && s.is_some_and(|s| ready(&s.conditions) && s.scale_history.is_some())
            && t.is_some_and(|s| ready(&s.conditions))
    })
    .await;
    // Let the last writes of the roll-out settle, then watch: several lag polls and resyncs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.api.clear_requests();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let requests = r.api.requests();
    let writes: Vec<String> = requests
        .iter()
        .filter(|q| q.method != "GET")
        .map(|q| format!("{} {}", q.method, q.path))
        .collect();
    let reads = requests.len() - writes.len();
    assert!(
        reads > 0,
        "the workloads kept reconciling (no request at all in 6 s)"
    );
    assert!(writes.is_empty(), "writes while idle: {writes:#?}");
    r.stop().await;
}

/// After an outage in which every read is refused (500), every watch is back within
/// seconds of the API server recovering — each backs off on its own, 0.5 s doubling to at most
/// 5 s, reset on success — and an edit made then is acted on at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_watch_is_back_within_seconds_of_an_outage() {
    let r = start().await;
    let env = &r.env;
    r.api.wait_for_watches(9).await;
    // Every read refused: watches and their relists alike, so the backoff keeps growing.
    r.api.fail_next(("GET", ""), 500, usize::MAX);
    r.api.drop_watches();
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert_eq!(r.api.open_watches(), 0, "the outage closed every watch");
    r.api.clear_faults();
    let recovered = std::time::Instant::now();
    while r.api.open_watches() < 9 {
        assert!(
            recovered.elapsed() < Duration::from_secs(8),
            "{} of 9 watches back {:?} after the outage",
            r.api.open_watches(),
            recovered.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let name = unique("after-outage");
    env.create_topic(&name, spec("local", 1, &[])).await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    assert!(
        recovered.elapsed() < Duration::from_secs(15),
        "a topic created after the outage took {:?}",
        recovered.elapsed()
    );
    r.stop().await;
}

/// A KafkaProducer created while the watches are down is found by the relist that follows a
/// `410 Gone` and rolled out: the relisted objects reach the controllers once the cache holds
/// them (told earlier, they would be looked up in a cache that does not have them yet, and the
/// producer would never be reconciled: nothing else triggers it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_created_while_the_watches_were_down_is_reconciled_after_the_relist() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("relisted");
    env.create_topic(&topic, spec("local", 1, &[])).await;
    env.eventually("Ready", || async {
        matches!(env.ready(&topic).await, Some((ConditionStatus::True, _, _)))
    })
    .await;
    r.api.wait_for_watches(7).await;
    // Every read fails (watches and lists); a producer is created meanwhile; the history is
    // compacted, so the watches come back through one relist, not a resumed watch.
    r.api.fail_next(("GET", ""), 500, usize::MAX);
    r.api.drop_watches();
    let name = unique("relisted-producer");
    let producers: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    producers
        .create(&Default::default(), &producer(&name, "local", &[&topic]))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    r.api.compact();
    r.api.clear_faults();
    env.eventually("the producer's Deployment", || async {
        deployment_replicas(env, &name).await.is_some()
    })
    .await;
    r.stop().await;
}
