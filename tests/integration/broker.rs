//! The topic capability through the real Kafka protocol: against Tansu started by the harness,
//! or any broker named by `TRIBUTARY_TEST_BOOTSTRAP`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::support::broker::{broker, free_port, unique};
use tributary::api::DeletionPolicy;
use tributary::kafka::BrokerSnapshot;
use tributary::kafka::{BrokerAdmin, BrokerError, ClientSettings, RdKafkaAdmin};
use tributary::model::TopicName;
use tributary::runtime::instrumented::{counted, Counted};
use tributary::topics::execute::{execute, Outcome};
use tributary::topics::plan::{plan, Action, ConfigChange, Refusal, Removal};
use tributary::topics::DesiredTopic;

fn admin() -> Counted<RdKafkaAdmin> {
    counted(
        RdKafkaAdmin::connect(&ClientSettings::plaintext(
            &broker().bootstrap,
            Duration::from_secs(10),
        ))
        .unwrap(),
    )
}

fn desired(name: &str, partitions: i32, config: &[(&str, &str)]) -> DesiredTopic {
    DesiredTopic {
        name: TopicName::parse(name).unwrap(),
        partitions,
        replication_factor: Some(1),
        config: config
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        deletion_policy: DeletionPolicy::Retain,
    }
}

async fn snapshot(admin: &dyn BrokerAdmin, topics: &[&DesiredTopic]) -> BrokerSnapshot {
    let names: Vec<String> = topics.iter().map(|t| t.name.to_string()).collect();
    admin.snapshot(&names).await.unwrap()
}

/// Plans and executes until done; returns the report of the one execution.
async fn converge(
    admin: &dyn BrokerAdmin,
    topics: &[DesiredTopic],
) -> tributary::topics::execute::Report {
    let refs: Vec<&DesiredTopic> = topics.iter().collect();
    let p = plan(topics, &[], &snapshot(admin, &refs).await);
    execute(&p, admin).await
}

#[tokio::test]
async fn creates_topics_in_one_batch_and_observes_them_in_one_pass() {
    let admin = admin();
    // A topic of somebody else's on the cluster: not part of any snapshot of these topics.
    let unrelated = desired(&unique("unrelated"), 1, &[]);
    assert!(converge(&admin, std::slice::from_ref(&unrelated))
        .await
        .succeeded());
    let topics: Vec<DesiredTopic> = (0..20)
        .map(|i| {
            desired(
                &unique(&format!("bookings{i}")),
                1 + i % 4,
                &[("retention.ms", "86400000"), ("cleanup.policy", "delete")],
            )
        })
        .collect();
    let refs: Vec<&DesiredTopic> = topics.iter().collect();

    let before = admin.requests_made();
    let observed = snapshot(&admin, &refs).await;
    assert_eq!(
        admin.requests_made() - before,
        1,
        "absent topics (after a snapshot that missed one) need one Metadata request for every \
         topic (names that collide) and no DescribeConfigs"
    );
    let p = plan(&topics, &[], &observed);
    assert_eq!(p.actions.len(), 20);
    assert!(p.actions.iter().all(|a| matches!(a, Action::Create { .. })));

    let before = admin.requests_made();
    let report = execute(&p, &admin).await;
    assert!(report.succeeded(), "{report:#?}");
    assert_eq!(
        admin.requests_made() - before,
        1,
        "20 creations are one CreateTopics request"
    );

    let before = admin.requests_made();
    let observed = snapshot(&admin, &refs).await;
    assert_eq!(
        admin.requests_made() - before,
        2,
        "one Metadata + one DescribeConfigs for all 20 topics"
    );
    assert!(
        observed.topics.contains_key(unrelated.name.as_str()),
        "the snapshot after a burst of new topics lists the cluster"
    );

    // Every topic asked for existed: the next snapshot asks for them only.
    let before = admin.requests_made();
    let again = snapshot(&admin, &refs).await;
    assert_eq!(
        admin.requests_made() - before,
        2,
        "one Metadata for the 20 topics + one DescribeConfigs"
    );
    assert_eq!(
        again.topics.keys().collect::<Vec<_>>(),
        observed
            .topics
            .keys()
            .filter(|k| topics.iter().any(|t| t.name.as_str() == k.as_str()))
            .collect::<Vec<_>>(),
        "when every topic asked for exists, the cluster's other topics are not listed"
    );
    assert_eq!(
        again.topics,
        observed
            .topics
            .iter()
            .filter(|(k, _)| again.topics.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        "both ways read the same topics alike"
    );
    for t in &topics {
        let seen = &observed.topics[t.name.as_str()];
        assert_eq!(seen.partitions, t.partitions, "{}", t.name);
        assert_eq!(
            seen.configs["retention.ms"].value.as_deref(),
            Some("86400000")
        );
    }
    assert!(
        plan(&topics, &[], &observed).is_empty(),
        "applied state plans no further actions"
    );
}

#[tokio::test]
async fn repairs_config_drift_and_resets_overrides_nobody_declared() {
    let admin = admin();
    let topic = desired(
        &unique("refunds"),
        2,
        &[("retention.ms", "604800000"), ("cleanup.policy", "compact")],
    );
    assert!(converge(&admin, std::slice::from_ref(&topic))
        .await
        .succeeded());

    // Someone changes a declared key and sets an undeclared one by hand.
    let name = topic.name.to_string();
    let by_hand = vec![(
        name.clone(),
        vec![
            ConfigChange::Set {
                key: "retention.ms".into(),
                from: None,
                to: "1000".into(),
            },
            ConfigChange::Set {
                key: "segment.ms".into(),
                from: None,
                to: "3600000".into(),
            },
        ],
    )];
    let outcomes = admin.alter_configs(&by_hand).await.unwrap();
    assert!(outcomes.iter().all(|o| o.result.is_ok()), "{outcomes:?}");

    let observed = snapshot(&admin, &[&topic]).await;
    let p = plan(std::slice::from_ref(&topic), &[], &observed);
    assert_eq!(
        p.actions,
        vec![Action::AlterConfigs {
            name: topic.name.clone(),
            changes: vec![
                ConfigChange::Set {
                    key: "retention.ms".into(),
                    from: Some("1000".into()),
                    to: "604800000".into()
                },
                ConfigChange::Reset {
                    key: "segment.ms".into(),
                    from: "3600000".into(),
                }
            ],
        }],
        "exactly the drifted declared key, and the undeclared override"
    );
    assert!(execute(&p, &admin).await.succeeded());

    let observed = snapshot(&admin, &[&topic]).await;
    let configs = &observed.topics[name.as_str()].configs;
    assert_eq!(
        configs["retention.ms"].value.as_deref(),
        Some("604800000"),
        "drift repaired"
    );
    assert!(
        configs.get("segment.ms").is_none_or(|c| !c.dynamic),
        "the hand-set key outside the spec is reset: {configs:?}"
    );
    assert_eq!(configs["cleanup.policy"].value.as_deref(), Some("compact"));
}

#[tokio::test]
async fn deletion_follows_the_policy() {
    let admin = admin();
    let retained = desired(&unique("schedule-updates"), 1, &[]);
    let mut deleted = desired(&unique("fraud-alerts"), 1, &[]);
    deleted.deletion_policy = DeletionPolicy::Delete;
    assert!(converge(&admin, &[retained.clone(), deleted.clone()])
        .await
        .succeeded());

    let removals: Vec<Removal> = [&retained, &deleted]
        .iter()
        .map(|t| Removal {
            name: t.name.clone(),
            policy: t.deletion_policy,
        })
        .collect();
    let p = plan(
        &[],
        &removals,
        &snapshot(&admin, &[&retained, &deleted]).await,
    );
    assert_eq!(
        p.actions,
        vec![Action::Delete {
            name: deleted.name.clone()
        }]
    );
    assert_eq!(p.retained, vec![retained.name.clone()]);
    assert!(execute(&p, &admin).await.succeeded());

    let mut gone = false;
    for _ in 0..50 {
        let observed = snapshot(&admin, &[&retained, &deleted]).await;
        assert!(
            observed.topics.contains_key(retained.name.as_str()),
            "Retain keeps the topic"
        );
        if !observed.topics.contains_key(deleted.name.as_str()) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "Delete removes the topic");
    let p = plan(
        &[],
        &removals,
        &snapshot(&admin, &[&retained, &deleted]).await,
    );
    assert!(p.actions.is_empty(), "deleting again is a no-op: {p:?}");
}

#[tokio::test]
async fn refuses_what_kafka_cannot_do_and_changes_nothing_for_that_topic() {
    let admin = admin();
    let topic = desired(&unique("cancellations"), 4, &[("retention.ms", "1000")]);
    assert!(converge(&admin, std::slice::from_ref(&topic))
        .await
        .succeeded());

    let mut shrunk = topic.clone();
    shrunk.partitions = 2;
    shrunk.config.insert("retention.ms".into(), "2000".into());
    let mut rf = topic.clone();
    rf.replication_factor = Some(3);
    for (wanted, reason) in [
        (
            shrunk,
            Refusal::PartitionDecrease {
                observed: 4,
                desired: 2,
            },
        ),
        (
            rf,
            Refusal::ReplicationFactorChange {
                observed: 1,
                desired: 3,
            },
        ),
    ] {
        let p = plan(
            std::slice::from_ref(&wanted),
            &[],
            &snapshot(&admin, &[&topic]).await,
        );
        assert_eq!(
            p.actions,
            vec![Action::Refuse {
                name: topic.name.clone(),
                reasons: vec![reason]
            }]
        );
        let report = execute(&p, &admin).await;
        assert!(!report.succeeded());
        assert!(matches!(report.results[0].outcome, Outcome::Refused(_)));
    }
    let observed = snapshot(&admin, &[&topic]).await;
    let seen = &observed.topics[topic.name.as_str()];
    assert_eq!(seen.partitions, 4);
    assert_eq!(
        seen.configs["retention.ms"].value.as_deref(),
        Some("1000"),
        "a refused topic gets no other change"
    );

    // `<name>_x` exists; `<name>.x` collides with it.
    let existing = desired(&format!("{}_x", topic.name), 1, &[]);
    assert!(converge(&admin, std::slice::from_ref(&existing))
        .await
        .succeeded());
    let collide = desired(&format!("{}.x", topic.name), 1, &[]);
    let p = plan(
        std::slice::from_ref(&collide),
        &[],
        &snapshot(&admin, &[&collide]).await,
    );
    assert_eq!(
        p.actions,
        vec![Action::Refuse {
            name: collide.name.clone(),
            reasons: vec![Refusal::NameCollision {
                existing: existing.name.to_string()
            }]
        }]
    );
}

#[tokio::test]
async fn reports_the_brokers_own_error_text() {
    let admin = admin();
    let topic = desired(&unique("orders"), 1, &[]);
    let p = plan(
        std::slice::from_ref(&topic),
        &[],
        &snapshot(&admin, &[&topic]).await,
    );
    // The topic appears behind our back between planning and executing.
    assert!(converge(&admin, std::slice::from_ref(&topic))
        .await
        .succeeded());
    let report = execute(&p, &admin).await;
    match &report.results[0].outcome {
        Outcome::Failed { reason, message } => {
            assert_eq!(*reason, "BrokerRejected");
            assert!(message.contains("TopicAlreadyExists"), "{message}");
        }
        other => panic!("expected the broker's refusal, got {other:?}"),
    }
}

/// Increasing partitions: where the broker lacks CreatePartitions (Tansu), the operator
/// reports `BrokerUnsupported` with the broker's error; where it has it, the increase lands.
#[tokio::test]
async fn partition_increase_lands_or_is_reported_unsupported() {
    let admin = admin();
    let topic = desired(&unique("ride-requests"), 2, &[]);
    assert!(converge(&admin, std::slice::from_ref(&topic))
        .await
        .succeeded());
    let mut grown = topic.clone();
    grown.partitions = 6;
    let p = plan(
        std::slice::from_ref(&grown),
        &[],
        &snapshot(&admin, &[&topic]).await,
    );
    assert_eq!(
        p.actions,
        vec![Action::IncreasePartitions {
            name: topic.name.clone(),
            from: 2,
            to: 6
        }]
    );
    let report = execute(&p, &admin).await;
    let observed = snapshot(&admin, &[&topic]).await.topics[topic.name.as_str()].partitions;
    match &report.results[0].outcome {
        Outcome::Done => assert_eq!(observed, 6, "the broker accepted the increase"),
        Outcome::Failed { reason, message } => {
            assert_eq!(*reason, "BrokerUnsupported", "{message}");
            assert!(
                message.contains("CreatePartitions"),
                "the broker's own error: {message}"
            );
            assert_eq!(observed, 2, "nothing changed");
            assert!(
                crate::support::broker::broker().is_tansu,
                "only Tansu is expected to lack CreatePartitions"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// Runs only against a broker that implements CreatePartitions (a real Kafka via
/// `TRIBUTARY_TEST_BOOTSTRAP`); against Tansu the test above covers the refusal.
#[tokio::test]
async fn partition_increase_on_a_broker_that_supports_it() {
    if broker().is_tansu {
        eprintln!("Tansu has no CreatePartitions: covered by partition_increase_lands_or_is_reported_unsupported");
        return;
    }
    let admin = admin();
    let topic = desired(&unique("driver-status"), 1, &[]);
    assert!(converge(&admin, std::slice::from_ref(&topic))
        .await
        .succeeded());
    let mut grown = topic.clone();
    grown.partitions = 3;
    assert!(converge(&admin, std::slice::from_ref(&grown))
        .await
        .succeeded());
    assert_eq!(
        snapshot(&admin, &[&topic]).await.topics[topic.name.as_str()].partitions,
        3
    );
}

#[tokio::test]
async fn an_unreachable_broker_fails_within_the_timeout_with_the_reason() {
    let port = free_port();
    let admin = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(2),
    ))
    .unwrap();
    let start = Instant::now();
    let err = admin.snapshot(&[]).await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, BrokerError::Unreachable(_)), "{err:?}");
    assert_eq!(err.reason(), "BrokerUnreachable");
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
    assert!(err.to_string().contains("Connection refused"), "{err}");
    assert!(
        took < Duration::from_secs(8),
        "bounded by the 2 s timeout, took {took:?}"
    );
}

/// ApiVersions: Tansu lacks CreatePartitions; a real Kafka serves every admin API we use.
#[tokio::test]
async fn api_versions_probe_names_missing_admin_apis() {
    let apis = tributary::kafka::api_versions::probe(&broker().bootstrap, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(apis.contains_key(&19), "CreateTopics is served");
    let missing = tributary::kafka::api_versions::missing_admin_apis(&apis);
    if broker().is_tansu {
        assert_eq!(missing, ["CreatePartitions"]);
    } else {
        assert!(missing.is_empty(), "{missing:?}");
    }
}

#[tokio::test]
async fn cluster_info_lists_the_brokers() {
    let info = admin().cluster_info().await.unwrap();
    assert!(!info.brokers.is_empty());
    assert!(
        info.cluster_id.as_deref().is_some_and(|id| !id.is_empty()),
        "{info:?}"
    );
    let _unused: BTreeMap<i32, String> = info.brokers.into_iter().collect();
}

/// A topic librdkafka refuses before sending (here, more partitions than it allows: the offline
/// validation refuses this, so the plan is written by hand) fails alone: the rest of its
/// CreateTopics batch is created.
#[tokio::test]
async fn a_topic_the_client_refuses_does_not_sink_the_others_of_its_batch() {
    let admin = admin();
    let good: Vec<DesiredTopic> = (0..6)
        .map(|i| desired(&unique(&format!("meters{i}")), 1, &[]))
        .collect();
    let bad = unique("meters-huge");
    let mut p = plan(&good, &[], &BrokerSnapshot::default());
    p.actions.insert(
        3,
        Action::Create {
            name: TopicName::parse(&bad).unwrap(),
            partitions: 1_000_000_000,
            replication_factor: Some(1),
            config: Default::default(),
        },
    );
    let report = execute(&p, &admin).await;
    for r in &report.results {
        if r.action.topic().as_str() == bad {
            match &r.outcome {
                Outcome::Failed { message, .. } => {
                    assert!(message.contains("num_partitions out of"), "{message}")
                }
                other => panic!("{other:?}"),
            }
        } else {
            assert_eq!(r.outcome, Outcome::Done, "{}", r.action);
        }
    }
    let seen = snapshot(&admin, &good.iter().collect::<Vec<_>>()).await;
    assert!(good
        .iter()
        .all(|t| seen.topics.contains_key(t.name.as_str())));
    assert!(!seen.topics.contains_key(&bad));
}

/// A cluster failing the same way is reported in the same words at every probe (so its status
/// is not rewritten each time): librdkafka's suppressed-repeat counts, timings and its
/// aggregate "brokers are down" do not leak into the message.
#[tokio::test]
async fn an_unreachable_cluster_reads_the_same_at_every_probe() {
    let port = free_port();
    let admin = RdKafkaAdmin::connect(&ClientSettings::plaintext(
        &format!("127.0.0.1:{port}"),
        Duration::from_secs(1),
    ))
    .unwrap();
    let mut messages = Vec::new();
    for _ in 0..3 {
        messages.push(admin.snapshot(&[]).await.unwrap_err().to_string());
    }
    assert!(messages[0].contains("Connection refused"), "{messages:?}");
    assert!(messages.iter().all(|m| m == &messages[0]), "{messages:#?}");
}

#[tokio::test]
async fn a_record_store_keeps_the_latest_value_of_each_key() {
    use tributary::kafka::RecordStore;
    let settings = ClientSettings::plaintext(&broker().bootstrap, Duration::from_secs(10));
    let topic = format!("__{}", unique("store"));
    let store = RecordStore::new(&settings, &topic);
    assert!(
        store.read().await.unwrap().is_empty(),
        "a store whose topic does not exist yet is empty (and reading does not create it)"
    );
    let admin = admin();
    assert!(!admin
        .snapshot(&[])
        .await
        .unwrap()
        .topics
        .contains_key(&topic));
    store.write(&admin, "a", b"1").await.unwrap();
    store.write(&admin, "b", b"2").await.unwrap();
    store.write(&admin, "a", b"3").await.unwrap();
    let read = store.read().await.unwrap();
    assert_eq!(
        read,
        BTreeMap::from([
            ("a".to_owned(), b"3".to_vec()),
            ("b".to_owned(), b"2".to_vec())
        ])
    );
    let seen = admin.snapshot(std::slice::from_ref(&topic)).await.unwrap();
    assert_eq!(seen.topics[&topic].partitions, 1);
    assert_eq!(
        seen.topics[&topic].configs["cleanup.policy"]
            .value
            .as_deref(),
        Some("compact"),
        "created compacted"
    );
    // Deleted again: the test's topic does not linger on a shared broker.
    admin.delete_topics(&[topic]).await.unwrap();
}
