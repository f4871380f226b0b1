//! KafkaOffsetReset end to end: the real controllers against the emulator, the KafkaConsumer
//! on the test broker (its topic, its lag pass), the group's offsets in the in-memory group
//! admin (which counts the writes). The emulator runs no Deployment controller: the tests
//! report the Deployments' pods ([`roll_out_all`]) as one would.

use super::*;

use std::sync::Arc;
use std::time::Duration;

use crate::support::broker::unique;
use crate::support::scenarios::spec;
use kube::Api;
use serde_json::json;
use tributary::api::{
    KafkaConsumer, KafkaOffsetReset, KafkaOffsetResetStatus, ResetPhase, HOLD_ANNOTATION,
};
use tributary::kafka::offsets::{Member, MemoryGroupAdmin};
use tributary::kafka::BrokerError;
use tributary::runtime::{BrokerClients, ConnectFn};

/// The real broker's clients, with `groups` as the group admin.
fn connect_with(groups: Arc<MemoryGroupAdmin>) -> ConnectFn {
    let real = runtime::rdkafka_connect();
    Arc::new(move |settings| {
        let clients = real(settings)?;
        Ok(BrokerClients {
            groups: groups.clone(),
            ..clients
        })
    })
}

/// Emulator + operator + a consumer `name` of a 2-partition topic with `replicas`, rolled out;
/// the group committed at 100 on both partitions of 100 records.
async fn with_consumer(replicas: i32) -> (Running, Arc<MemoryGroupAdmin>, String, String) {
    let groups = Arc::new(MemoryGroupAdmin::new());
    let r = start_connected(&crds::all(), options(), connect_with(groups.clone())).await;
    let env = &r.env;
    let topic = unique("trip-events");
    let name = unique("analytics");
    env.create_topic(&topic, spec("local", 2, &[])).await;
    groups.create_topic(&topic, 2);
    for p in 0..2 {
        let stamps: Vec<i64> = (0..100).map(|i| 1_700_000_000_000 + i * 1000).collect();
        groups.produce(&topic, p, &stamps);
        groups.commit(&name, &topic, p, 100);
    }
    consumers(env)
        .create(
            &Default::default(),
            &consumer(&name, &[&topic], json!({"replicas": replicas})),
        )
        .await
        .unwrap();
    env.eventually("the consumer's Deployment has its replicas", || async {
        deployment_replicas(env, &name).await == Some(replicas)
    })
    .await;
    roll_out_all(env).await;
    (r, groups, topic, name)
}

fn consumers(env: &Env) -> Api<KafkaConsumer> {
    Api::namespaced(env.client.clone(), NAMESPACE)
}

fn resets(env: &Env) -> Api<KafkaOffsetReset> {
    Api::namespaced(env.client.clone(), NAMESPACE)
}

fn reset(name: &str, spec: serde_json::Value) -> KafkaOffsetReset {
    serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaOffsetReset",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec
    }))
    .unwrap()
}

async fn reset_status(env: &Env, name: &str) -> Option<KafkaOffsetResetStatus> {
    resets(env)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|r| r.status)
}

async fn phase(env: &Env, name: &str) -> Option<ResetPhase> {
    reset_status(env, name).await.and_then(|s| s.phase)
}

async fn held(env: &Env, consumer: &str) -> bool {
    consumers(env)
        .get(consumer)
        .await
        .unwrap()
        .metadata
        .annotations
        .unwrap_or_default()
        .contains_key(HOLD_ANNOTATION)
}

/// The consumer is held: its Deployment goes to 0 (and the pods go, as a Deployment
/// controller would report).
async fn scaled_down(env: &Env, consumer: &str) {
    env.eventually("the consumer's Deployment is scaled to 0", || async {
        deployment_replicas(env, consumer).await == Some(0)
    })
    .await;
    roll_out_all(env).await;
}

async fn event_reasons(env: &Env, object: &str) -> Vec<String> {
    let events: Api<k8s_openapi::api::events::v1::Event> =
        Api::namespaced(env.client.clone(), NAMESPACE);
    events
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(object))
        .filter_map(|e| e.reason)
        .collect()
}

/// The whole machine: the consumer held at 0 (Deployment scaled down), the group empty, the
/// offsets planned and recorded, the operator restarted while the write fails in `Resetting`,
/// the offsets written exactly once afterwards and read back, the replicas restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_holds_the_consumer_writes_once_across_a_restart_and_restores_it() {
    let (mut r, groups, topic, name) = with_consumer(3).await;
    // The write fails (the broker unreachable) until the operator has been restarted.
    groups.fail(
        "OffsetCommit",
        Some(BrokerError::Unreachable("injected".into())),
    );
    resets(&r.env)
        .create(
            &Default::default(),
            &reset(
                "replay",
                json!({"consumerRef": name, "target": {"shiftBy": -10}}),
            ),
        )
        .await
        .unwrap();
    scaled_down(&r.env, &name).await;
    let env = &r.env;
    env.eventually("the reset is Resetting with its plan recorded", || async {
        reset_status(env, "replay")
            .await
            .is_some_and(|s| s.phase == Some(ResetPhase::Resetting) && s.partitions.is_some())
    })
    .await;
    let status = consumers(env).get(&name).await.unwrap().status.unwrap();
    assert_eq!(
        status.replica_decision.unwrap().reason,
        "HeldForOffsetReset"
    );
    assert_eq!(status.held_replicas, Some(3));

    // The operator stops in `Resetting`; a new one picks the reset up from its status.
    let _ = r.stop.take().unwrap().send(());
    r.operator.take().unwrap().await.unwrap();
    assert_eq!(groups.alter_calls(), 0, "nothing written yet");
    groups.fail("OffsetCommit", None);
    let (stop, operator) = spawn_operator(&r.api, options(), connect_with(groups.clone()));
    r.stop = Some(stop);
    r.operator = Some(operator);
    let env = &r.env;
    env.eventually("the reset Succeeded", || async {
        phase(env, "replay").await == Some(ResetPhase::Succeeded)
    })
    .await;
    assert_eq!(groups.alter_calls(), 1, "the offsets are written once");
    let commits = groups.commits(&name);
    assert_eq!(commits.get(&(topic.clone(), 0)), Some(&90));
    assert_eq!(commits.get(&(topic.clone(), 1)), Some(&90));
    let s = reset_status(env, "replay").await.unwrap();
    assert_eq!(s.replicas_to_restore, Some(3));
    assert_eq!(s.messages_re_read, Some(20));
    assert_eq!(s.messages_skipped, Some(0));
    assert!(s.written_at.is_some());
    let partitions = s.partitions.unwrap();
    assert_eq!(partitions.len(), 2);
    assert!(partitions
        .iter()
        .all(|p| p.before == Some(100) && p.after == 90 && p.re_read == 10));
    assert_eq!(
        ready_reason(&s.conditions),
        Some((ConditionStatus::True, "ResetSucceeded".into()))
    );
    env.eventually("the consumer has its 3 replicas back", || async {
        deployment_replicas(env, &name).await == Some(3) && !held(env, &name).await
    })
    .await;
    let reasons = event_reasons(env, "replay").await;
    for phase in [
        "Pending",
        "ScalingDown",
        "WaitingForEmptyGroup",
        "Planned",
        "Resetting",
        "OffsetsWritten",
        "ScalingUp",
        "Released",
        "Succeeded",
    ] {
        assert!(
            reasons.iter().any(|r| r == phase),
            "an Event {phase}: {reasons:?}"
        );
    }
    // Long after, still written once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(groups.alter_calls(), 1);
    r.stop().await;
}

/// A member the consumer's pods do not account for is refused (`ForeignMembers`) once they are
/// gone; nothing is written and the consumer gets its replicas back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_member_is_refused_and_the_consumer_released() {
    let (r, groups, topic, name) = with_consumer(2).await;
    let env = &r.env;
    groups.set_members(
        &name,
        vec![Member {
            member_id: "intruder-1".into(),
            client_id: "legacy-analytics".into(),
            host: "/10.0.0.9".into(),
            assignment: vec![(topic.clone(), 0)],
        }],
    );
    resets(env)
        .create(
            &Default::default(),
            &reset(
                "rewind",
                json!({"consumerRef": name, "target": {"earliest": true}, "timeoutSeconds": 4}),
            ),
        )
        .await
        .unwrap();
    scaled_down(env, &name).await;
    env.eventually("the reset failed with ForeignMembers", || async {
        reset_status(env, "rewind").await.is_some_and(|s| {
            s.phase == Some(ResetPhase::Failed)
                && ready_reason(&s.conditions)
                    == Some((ConditionStatus::False, "ForeignMembers".into()))
        })
    })
    .await;
    let message = reset_status(env, "rewind")
        .await
        .unwrap()
        .failure_message
        .unwrap();
    assert!(message.contains("set force"), "{message}");
    env.eventually("the consumer has its 2 replicas back", || async {
        deployment_replicas(env, &name).await == Some(2) && !held(env, &name).await
    })
    .await;
    assert_eq!(groups.alter_calls(), 0, "nothing written");
    assert_eq!(groups.commits(&name).get(&(topic, 0)), Some(&100));
    r.stop().await;
}

/// A second reset of a group while one is under way gets `ResourceConflict` and touches
/// nothing; deleting the first mid-way (waiting for a group that does not empty) restores the
/// consumer's replicas before it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_reset_conflicts_and_deleting_one_mid_way_restores_the_replicas() {
    let (r, groups, topic, name) = with_consumer(2).await;
    let env = &r.env;
    groups.set_members(
        &name,
        vec![Member {
            member_id: "straggler".into(),
            client_id: "analytics".into(),
            host: "/10.0.0.7".into(),
            assignment: vec![(topic.clone(), 1)],
        }],
    );
    resets(env)
        .create(
            &Default::default(),
            &reset(
                "first",
                json!({"consumerRef": name, "target": {"latest": true}, "force": true}),
            ),
        )
        .await
        .unwrap();
    scaled_down(env, &name).await;
    env.eventually("the first waits for the group to empty", || async {
        phase(env, "first").await == Some(ResetPhase::WaitingForEmptyGroup)
    })
    .await;
    resets(env)
        .create(
            &Default::default(),
            &reset(
                "second",
                json!({"consumerRef": name, "target": {"earliest": true}}),
            ),
        )
        .await
        .unwrap();
    env.eventually("the second gets ResourceConflict", || async {
        reset_status(env, "second").await.is_some_and(|s| {
            s.phase == Some(ResetPhase::Failed)
                && ready_reason(&s.conditions)
                    == Some((ConditionStatus::False, "ResourceConflict".into()))
        })
    })
    .await;
    assert!(held(env, &name).await, "the first still holds the consumer");

    resets(env)
        .delete("first", &Default::default())
        .await
        .unwrap();
    env.eventually(
        "the first is gone and the consumer has its 2 replicas back",
        || async {
            resets(env).get_opt("first").await.unwrap().is_none()
                && deployment_replicas(env, &name).await == Some(2)
                && !held(env, &name).await
        },
    )
    .await;
    assert_eq!(groups.alter_calls(), 0, "nothing written");
    r.stop().await;
}

/// `groupDeletionPolicy: Delete`: deleting the KafkaConsumer scales it to 0 and deletes its
/// group only once the group has no member (checked by the operator: Tansu would delete a
/// group with members), then the KafkaConsumer goes. `Retain` (the default) leaves the group.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_consumer_with_group_deletion_policy_delete_deletes_its_empty_group() {
    let (r, groups, topic, name) = with_consumer(2).await;
    let env = &r.env;
    let patch = json!({"spec": {"groupDeletionPolicy": "Delete"}});
    consumers(env)
        .patch(&name, &Default::default(), &kube::api::Patch::Merge(&patch))
        .await
        .unwrap();
    env.eventually("the consumer has the group finalizer", || async {
        consumers(env)
            .get(&name)
            .await
            .unwrap()
            .metadata
            .finalizers
            .unwrap_or_default()
            .iter()
            .any(|f| f == "tributary.io/consumer-group")
    })
    .await;
    groups.set_members(
        &name,
        vec![Member {
            member_id: "last-pod".into(),
            client_id: "analytics".into(),
            host: "/10.0.0.3".into(),
            assignment: vec![(topic.clone(), 0)],
        }],
    );
    consumers(env)
        .delete(&name, &Default::default())
        .await
        .unwrap();
    scaled_down(env, &name).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        consumers(env).get_opt(&name).await.unwrap().is_some(),
        "held while the group has a member"
    );
    assert_eq!(
        groups.delete_calls(),
        0,
        "a group with members is not deleted"
    );
    groups.set_members(&name, Vec::new());
    env.eventually("the group is deleted and the consumer gone", || async {
        consumers(env).get_opt(&name).await.unwrap().is_none()
    })
    .await;
    assert_eq!(groups.delete_calls(), 1);
    assert!(groups.commits(&name).is_empty(), "its offsets went with it");

    // Retain (the default): the consumer goes at once, the group stays.
    let (kept, other) = (unique("kept"), unique("kept-group"));
    groups.commit(&other, &topic, 0, 5);
    let mut retained = consumer(&kept, &[&topic], json!({"replicas": 1}));
    retained.spec.group_id = Some(other.clone());
    consumers(env)
        .create(&Default::default(), &retained)
        .await
        .unwrap();
    env.eventually("the retained consumer is rolled out", || async {
        deployment_replicas(env, &kept).await == Some(1)
    })
    .await;
    consumers(env)
        .delete(&kept, &Default::default())
        .await
        .unwrap();
    env.eventually("the retained consumer is gone", || async {
        consumers(env).get_opt(&kept).await.unwrap().is_none()
    })
    .await;
    assert_eq!(groups.delete_calls(), 1, "Retain deletes no group");
    assert_eq!(groups.commits(&other).get(&(topic, 0)), Some(&5));
    r.stop().await;
}

/// Bad input fails the reset with its reason, writes nothing and holds nothing: a consumer that
/// does not exist, a raw group the broker does not know, a timestamp in the future. A raw
/// group's dry run records the table and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_a_raw_dry_run_changes_nothing() {
    let (r, groups, topic, name) = with_consumer(1).await;
    let env = &r.env;
    let cases = [
        (
            "ghost",
            json!({"consumerRef": "no-such-consumer", "target": {"earliest": true}}),
            "ConsumerNotFound",
        ),
        (
            "typo",
            json!({"group": "analytcs", "clusterRef": "local", "topics": [topic], "target": {"earliest": true}}),
            "ResetRefused",
        ),
        (
            "future",
            json!({"consumerRef": name, "target": {"timestamp": "2999-01-01T00:00:00Z"}}),
            "ResetRefused",
        ),
    ];
    for (reset_name, spec, _) in &cases {
        resets(env)
            .create(&Default::default(), &reset(reset_name, spec.clone()))
            .await
            .unwrap();
    }
    for (reset_name, _, reason) in &cases {
        env.eventually(&format!("{reset_name} fails with {reason}"), || async {
            reset_status(env, reset_name).await.is_some_and(|s| {
                s.phase == Some(ResetPhase::Failed)
                    && ready_reason(&s.conditions)
                        == Some((ConditionStatus::False, (*reason).into()))
            })
        })
        .await;
    }
    let typo = reset_status(env, "typo")
        .await
        .unwrap()
        .failure_message
        .unwrap();
    assert!(typo.contains("check the group id"), "{typo}");
    let future = reset_status(env, "future")
        .await
        .unwrap()
        .failure_message
        .unwrap();
    assert!(future.contains("in the future"), "{future}");

    // A raw group's dry run, once the refused resets are final (one reset per group at a time).
    resets(env)
        .create(
            &Default::default(),
            &reset(
                "look",
                json!({"group": name, "clusterRef": "local", "target": {"shiftBy": -1000}, "dryRun": true}),
            ),
        )
        .await
        .unwrap();
    env.eventually("the dry run Succeeded", || async {
        phase(env, "look").await == Some(ResetPhase::Succeeded)
    })
    .await;
    let s = reset_status(env, "look").await.unwrap();
    let partitions = s.partitions.unwrap();
    assert!(
        partitions.iter().all(|p| p.after == 0 && p.clamped),
        "shiftBy beyond the range is clamped: {partitions:?}"
    );
    assert_eq!(s.messages_re_read, Some(200));
    assert!(s.written_at.is_none());
    assert_eq!(groups.alter_calls(), 0, "nothing written");
    assert!(!held(env, &name).await, "nothing held");
    assert_eq!(deployment_replicas(env, &name).await, Some(1));
    r.stop().await;
}
