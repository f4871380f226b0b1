//! KafkaTopic end to end: created, edited, repaired, deleted, paused, claimed, refused, and
//! what happens when its broker is unreachable or stops.

use super::*;

use std::time::Duration;

use crate::support::broker::{
    broker, free_port, spawn_guarded_tansu, stop_guarded, unique, wait_for,
};
use crate::support::scenarios::{self, spec, Env};
use tributary::api::ConditionStatus;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_edited_and_reported_ready() {
    let r = start().await;
    scenarios::create_and_edit(&r.env, "local").await;
    let cluster = r.env.clusters().get("local").await.unwrap().status.unwrap();
    if broker().is_tansu {
        assert_eq!(
            cluster.unsupported_apis,
            ["CreatePartitions"],
            "the probe names what Tansu lacks"
        );
    }
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_made_by_hand_is_repaired_at_resync() {
    let r = start().await;
    scenarios::drift_is_repaired(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_follows_the_policy_and_releases_the_finalizer() {
    let r = start().await;
    scenarios::delete_by_policy(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_dry_run_change_nothing_until_released() {
    let r = start().await;
    scenarios::pause_and_dry_run(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newer_of_two_claimants_gets_resource_conflict() {
    let r = start().await;
    scenarios::conflict(&r.env, "local").await;
    r.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_objects_are_refused_by_the_schema() {
    let r = start().await;
    scenarios::invalid_object_is_refused(&r.env, "local").await;
    r.stop().await;
}

/// A topic whose cluster vanished (or stays unreachable) with `Delete` is orphaned after the
/// grace period: the namespace never hangs on the finalizer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_topic_of_an_unreachable_cluster_is_orphaned_after_the_grace_period() {
    let r = start().await;
    let env = &r.env;
    let dead = format!("127.0.0.1:{}", free_port());
    env.apply_cluster("gone", &dead).await;
    let name = unique("notifications");
    let mut s = spec("gone", 1, &[]);
    s.deletion_policy = tributary::api::DeletionPolicy::Delete;
    env.create_topic(&name, s).await;
    env.eventually("the topic reports the unreachable broker", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::False, r, _)) if r == "BrokerUnreachable")
    })
    .await;
    env.topics()
        .delete(&name, &Default::default())
        .await
        .unwrap();
    env.eventually(
        "the finalizer is released after the grace period",
        || async { env.topics().get_opt(&name).await.unwrap().is_none() },
    )
    .await;
    env.eventually("a Warning says the topic was orphaned", || async {
        env.event_reasons(&name)
            .await
            .contains(&"Orphaned".to_string())
    })
    .await;
    r.stop().await;
}

/// Broker stopped: Ready=False with a reason, no crash; when it returns, the topic recovers.
/// Needs a broker the test can stop, so it starts its own Tansu.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_broker_is_reported_and_recovered_from() {
    let r = start().await;
    let env = &r.env;
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let tansu = spawn_guarded_tansu(port);
    wait_for(addr.parse().unwrap(), Duration::from_secs(20));
    env.apply_cluster("flaky", &addr).await;
    let name = unique("driver-status");
    env.create_topic(&name, spec("flaky", 2, &[])).await;
    env.eventually("Ready", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _)))
    })
    .await;

    stop_guarded(tansu);
    env.eventually("the broker outage is reported", || async {
        matches!(env.ready(&name).await, Some((ConditionStatus::False, r, _)) if r == "BrokerUnreachable")
    })
    .await;
    env.eventually("the KafkaCluster reports the outage too", || async {
        let cluster = env.clusters().get("flaky").await.unwrap();
        cluster.status.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.status == ConditionStatus::False
                    && c.reason == "BrokerUnreachable"
            })
        })
    })
    .await;
    assert!(
        !r.operator.as_ref().unwrap().is_finished(),
        "the operator keeps running"
    );

    let tansu = spawn_guarded_tansu(port);
    wait_for(addr.parse().unwrap(), Duration::from_secs(20));
    env.eventually(
        "the topic is back (recreated on the empty broker) and Ready",
        || async { matches!(env.ready(&name).await, Some((ConditionStatus::True, _, _))) },
    )
    .await;
    let admin_env = Env {
        client: env.client.clone(),
        namespace: env.namespace.clone(),
        bootstrap: addr.clone(),
        patience: env.patience,
    };
    assert_eq!(admin_env.broker(&[&name]).await.topics[&name].partitions, 2);
    stop_guarded(tansu);
    r.stop().await;
}
