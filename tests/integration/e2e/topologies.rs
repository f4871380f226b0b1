//! StreamTopology end to end.

use super::*;

use std::time::Duration;

use crate::support::broker::unique;
use crate::support::scenarios::{self, spec, Env};
use serde_json::json;
use tributary::api::ConditionStatus;

/// examples/bus-ticketing/topology.yaml in the test namespace, its broker topics suffixed so
/// tests sharing a broker (or a long-lived TRIBUTARY_TEST_BOOTSTRAP) never meet.
fn bus_ticketing(suffix: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/bus-ticketing/topology.yaml");
    let mut t: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    t["metadata"]["namespace"] = json!(NAMESPACE);
    let rename = |v: &mut serde_json::Value| {
        *v = json!(format!("{}-{suffix}", v.as_str().unwrap()));
    };
    for topic in t["spec"]["topics"].as_array_mut().unwrap() {
        rename(&mut topic["name"]);
    }
    for kind in ["producers", "consumers"] {
        for entry in t["spec"][kind].as_array_mut().unwrap() {
            for topic in entry["topics"].as_array_mut().unwrap() {
                rename(topic);
            }
        }
    }
    t
}

fn topologies(env: &Env) -> kube::Api<tributary::api::StreamTopology> {
    kube::Api::namespaced(env.client.clone(), NAMESPACE)
}

async fn topology_status(env: &Env, name: &str) -> Option<tributary::api::StreamTopologyStatus> {
    topologies(env)
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|t| t.status)
}

/// The bus-ticketing topology end to end: every topic on the broker, every Deployment present,
/// Ready once every child is; a consumer removed from the spec takes its Deployment with it; a
/// Retain topic removed from the spec stays on the broker and leaves the status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_is_expanded_aggregated_and_pruned() {
    use k8s_openapi::api::apps::v1::Deployment;
    let r = start().await;
    let env = &r.env;
    let suffix = unique("t");
    let topology = bus_ticketing(&suffix);
    let name = topology["metadata"]["name"].as_str().unwrap().to_owned();
    let topic_names: Vec<String> = topology["spec"]["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    let workloads: Vec<String> = ["producers", "consumers"]
        .iter()
        .flat_map(|k| topology["spec"][*k].as_array().unwrap().iter())
        .map(|e| format!("{name}-{}", e["name"].as_str().unwrap()))
        .collect();
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology.clone()).unwrap(),
        )
        .await
        .unwrap();

    let refs: Vec<&str> = topic_names.iter().map(String::as_str).collect();
    env.eventually("every topic exists on the broker", || async {
        let snapshot = env.broker(&refs).await;
        refs.iter().all(|r| snapshot.topics.contains_key(*r))
    })
    .await;
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    env.eventually("a Deployment per producer and consumer", || async {
        let have: Vec<String> = deployments
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|d| d.metadata.name)
            .collect();
        workloads.iter().all(|w| have.contains(w))
    })
    .await;
    let status = topology_status(env, &name).await.unwrap();
    assert!(
        status
            .graph
            .as_deref()
            .is_some_and(|g| g.contains("flowchart LR") && g.contains("booking-service")),
        "the graph is in the status: {:?}",
        status.graph
    );
    assert_eq!(
        ready_reason(&status.conditions).map(|r| r.0),
        Some(ConditionStatus::False),
        "not Ready while Deployments are not available"
    );

    roll_out_all(env).await;
    let total = topic_names.len() + workloads.len();
    env.eventually("Ready once every child is", || async {
        topology_status(env, &name).await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::True, "AllChildrenReady".into()))
                && s.ready_children == Some(format!("{total}/{total}"))
                && s.children.iter().all(|c| c.ready)
        })
    })
    .await;

    // Settled: the children are not re-applied while nothing changes (resyncs included).
    r.api.clear_requests();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rewrites: Vec<String> = r
        .api
        .requests()
        .into_iter()
        .filter(|q| {
            q.method == "PATCH"
                && !q.path.contains("/status")
                && ["/kafkatopics/", "/kafkaproducers/", "/kafkaconsumers/"]
                    .iter()
                    .any(|kind| q.path.contains(kind))
        })
        .map(|q| q.path)
        .collect();
    assert!(
        rewrites.is_empty(),
        "children re-applied while nothing changed: {rewrites:?}"
    );

    // A consumer leaves the spec: its KafkaConsumer goes, and its Deployment with it.
    let mut edited = topology.clone();
    let consumers = edited["spec"]["consumers"].as_array_mut().unwrap();
    let gone = consumers.remove(0);
    let gone = format!("{name}-{}", gone["name"].as_str().unwrap());
    // A Retain topic leaves too (with the references to it).
    let topics = edited["spec"]["topics"].as_array_mut().unwrap();
    let at = topics
        .iter()
        .position(|t| t.get("deletionPolicy").is_none())
        .expect("a topic that takes the default Retain");
    let retained = topics.remove(at)["name"].as_str().unwrap().to_owned();
    for kind in ["producers", "consumers"] {
        let entries = edited["spec"][kind].as_array_mut().unwrap();
        for e in entries.iter_mut() {
            e["topics"]
                .as_array_mut()
                .unwrap()
                .retain(|t| t != &json!(retained));
        }
        entries.retain(|e| !e["topics"].as_array().unwrap().is_empty());
    }
    topologies(env)
        .patch(
            &name,
            &Default::default(),
            &kube::api::Patch::Merge(json!({"spec": edited["spec"]})),
        )
        .await
        .unwrap();
    env.eventually("the removed consumer's Deployment goes", || async {
        deployments.get_opt(&gone).await.unwrap().is_none()
    })
    .await;
    let retained_child = format!("{name}-{retained}");
    env.eventually(
        "the removed topic leaves the status and its KafkaTopic goes",
        || async {
            let child_gone = env
                .topics()
                .get_opt(&retained_child)
                .await
                .unwrap()
                .is_none();
            child_gone
                && topology_status(env, &name).await.is_some_and(|s| {
                    !s.children
                        .iter()
                        .any(|c| c.name == retained_child || c.name == gone)
                })
        },
    )
    .await;
    let on_broker: Vec<String> = env
        .broker(&[])
        .await
        .topics
        .into_keys()
        .map(|t| t.to_string())
        .collect();
    assert!(
        on_broker.contains(&retained),
        "a Retain topic stays on the broker: {retained} not in {on_broker:?}"
    );
    assert!(env
        .event_reasons(&name)
        .await
        .contains(&"ChildRemoved".to_string()));
    r.stop().await;
}

/// The scenario the real-cluster suite runs too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_follows_its_spec() {
    let r = start().await;
    scenarios::topology_follows_its_spec(&r.env, "local").await;
    r.stop().await;
}

/// A topology whose child would take over a resource it does not own stops before changing
/// anything; an invalid one is refused with the entry's path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topology_never_takes_over_and_refuses_a_broken_graph() {
    let r = start().await;
    let env = &r.env;
    let suffix = unique("c");
    let mut topology = bus_ticketing(&suffix);
    topology["metadata"]["name"] = json!("buses");
    let first = topology["spec"]["topics"][0]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    env.create_topic(&format!("buses-{first}"), spec("local", 1, &[]))
        .await;
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology.clone()).unwrap(),
        )
        .await
        .unwrap();
    env.eventually("ChildConflict, naming the entry", || async {
        topology_status(env, "buses").await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.reason == "ChildConflict"
                    && c.message.starts_with(&format!("spec.topics[0].name: KafkaTopic 'buses-{first}' already exists and is not owned by this topology"))
            })
        })
    })
    .await;
    let producers: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    assert!(
        producers
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "nothing was created"
    );

    let mut broken = topology.clone();
    broken["metadata"]["name"] = json!("broken");
    broken["spec"]["consumers"][0]["topics"] = json!(["no-such-topic"]);
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(broken).unwrap(),
        )
        .await
        .unwrap();
    env.eventually("InvalidSpec with the field path", || async {
        topology_status(env, "broken").await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Stalled"
                    && c.status == ConditionStatus::True
                    && c.reason == "InvalidSpec"
                    && c.message.contains("spec.consumers[0].topics[0]: reads topic 'no-such-topic', which is not declared in spec.topics")
            })
        })
    })
    .await;
    assert!(
        env.topics()
            .get_opt(&format!("broken-{first}"))
            .await
            .unwrap()
            .is_none(),
        "an invalid topology creates nothing"
    );
    r.stop().await;
}

/// What a child's own rules refuse (partitions never decrease) is reported against the entry,
/// with the API server's words, and the topic is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_refused_by_its_rules_is_reported_at_the_entry() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("zones");
    let topology = json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": "rides", "namespace": NAMESPACE},
        "spec": {"clusterRef": "local", "topics": [{"name": topic, "partitions": 4}]}
    });
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology).unwrap(),
        )
        .await
        .unwrap();
    let child = format!("rides-{topic}");
    env.eventually("the topic is Ready", || async {
        env.ready(&child)
            .await
            .is_some_and(|(s, _, _)| s == ConditionStatus::True)
    })
    .await;
    topologies(env)
        .patch(
            "rides",
            &Default::default(),
            &kube::api::Patch::Merge(
                json!({"spec": {"topics": [{"name": topic, "partitions": 2}]}}),
            ),
        )
        .await
        .unwrap();
    env.eventually("ChildRejected at spec.topics[0]", || async {
        topology_status(env, "rides").await.is_some_and(|s| {
            s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && c.reason == "ChildRejected"
                    && c.message.starts_with(&format!(
                        "spec.topics[0]: KafkaTopic '{child}' was refused by the API server:"
                    ))
                    && c.message.contains("cannot decrease")
            })
        })
    })
    .await;
    assert_eq!(env.topics().get(&child).await.unwrap().spec.partitions, 4);
    assert_eq!(
        env.broker(&[topic.as_str()]).await.topics[&topic].partitions,
        4
    );
    r.stop().await;
}

/// `tributary.io/paused` on a topology: nothing is created or changed until it is lifted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_topology_changes_nothing_until_released() {
    let r = start().await;
    let env = &r.env;
    let topic = unique("alerts");
    let topology = json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "StreamTopology",
        "metadata": {"name": "news", "namespace": NAMESPACE, "annotations": {"tributary.io/paused": "true"}},
        "spec": {"clusterRef": "local", "topics": [{"name": topic, "partitions": 1}]}
    });
    topologies(env)
        .create(
            &Default::default(),
            &serde_json::from_value(topology).unwrap(),
        )
        .await
        .unwrap();
    env.eventually("Paused", || async {
        topology_status(env, "news").await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::False, "Paused".into()))
                && s.ready_children.as_deref() == Some("0/1")
        })
    })
    .await;
    let child = format!("news-{topic}");
    assert!(
        env.topics().get_opt(&child).await.unwrap().is_none(),
        "nothing created while paused"
    );
    topologies(env)
        .patch(
            "news",
            &Default::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"tributary.io/paused": null}}}),
            ),
        )
        .await
        .unwrap();
    env.eventually("created once released", || async {
        env.ready(&child)
            .await
            .is_some_and(|(s, _, _)| s == ConditionStatus::True)
    })
    .await;
    env.eventually("Ready once its child is", || async {
        topology_status(env, "news").await.is_some_and(|s| {
            ready_reason(&s.conditions) == Some((ConditionStatus::True, "AllChildrenReady".into()))
        })
    })
    .await;
    r.stop().await;
}
