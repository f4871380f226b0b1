//! Expansion, graph validation (every rule, exact messages), and the golden expansion.

use std::path::Path;

use proptest::prelude::*;

use super::*;
use crate::api::{DeletionPolicy, StreamTopology};
use crate::manifest::{load_str, validate};
use crate::model::{DnsLabel, DnsSubdomain, LabelValue, TopicName, MAX_ANNOTATIONS_BYTES};

pub(crate) const TOPOLOGY: &str = r#"
apiVersion: tributary.io/v1alpha1
kind: StreamTopology
metadata: {name: rides, namespace: city}
spec:
  clusterRef: local
  defaults:
    partitions: 6
    replicationFactor: 3
    config: {retention.ms: "604800000", compression.type: zstd}
    deletionPolicy: Delete
  topics:
    - name: ride.requests
      partitions: 24
      key: city zone id
      schema: rides.RideRequest (schema registry subject ride.requests-value)
      description: every ride asked for
    - name: driver_status
      config: {cleanup.policy: compact, retention.ms: "-1"}
      deletionPolicy: Retain
  producers:
    - name: rider-api
      topics: [ride.requests]
      template: {image: ghcr.io/acme/rider-api:2.1.0}
      replicas: 2
      service: {ports: [{name: http, port: 80, targetPort: 8080}]}
    - name: driver-app
      topics: [driver_status]
      template: {image: ghcr.io/acme/driver-app:1.4.0}
  consumers:
    - name: dispatch
      group: dispatch-v2
      topics: [ride.requests, driver_status]
      template: {image: ghcr.io/acme/dispatch:3.0.0}
      autoscaling: {minReplicas: 2, maxReplicas: 24, lagThreshold: 500}
"#;

fn topology(text: &str) -> StreamTopology {
    serde_saphyr::from_str(text).expect("a StreamTopology")
}

fn errors(text: &str) -> Vec<String> {
    expand(&topology(text))
        .expect_err("refused")
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn warnings(text: &str) -> Vec<String> {
    expand(&topology(text))
        .expect("valid")
        .warnings
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn children_are_named_labelled_and_resolved() {
    let e = expand(&topology(TOPOLOGY)).unwrap();
    assert_eq!(
        e.children(),
        [
            ("KafkaTopic", "rides-ride.requests".to_owned()),
            ("KafkaTopic", "rides-driver-status".to_owned()),
            ("KafkaProducer", "rides-rider-api".to_owned()),
            ("KafkaProducer", "rides-driver-app".to_owned()),
            ("KafkaConsumer", "rides-dispatch".to_owned()),
        ]
    );
    let requests = &e.topics[0];
    assert_eq!(requests.spec.topic_name.as_deref(), Some("ride.requests"));
    assert_eq!(requests.spec.partitions, 24);
    assert_eq!(requests.spec.replication_factor, Some(3));
    assert_eq!(requests.spec.deletion_policy, DeletionPolicy::Delete);
    assert_eq!(requests.metadata.namespace.as_deref(), Some("city"));
    let labels = requests.metadata.labels.as_ref().unwrap();
    assert_eq!(labels[TOPOLOGY_LABEL], "rides");
    assert_eq!(labels[ENTRY_LABEL], "ride.requests");
    assert_eq!(
        requests.metadata.annotations.as_ref().unwrap()[KEY_ANNOTATION],
        "city zone id"
    );
    let status = &e.topics[1];
    assert_eq!(status.spec.partitions, 6, "from the defaults");
    assert_eq!(
        status.spec.deletion_policy,
        DeletionPolicy::Retain,
        "own policy wins"
    );
    assert_eq!(
        status.spec.config["retention.ms"], "-1",
        "own config wins key by key"
    );
    assert_eq!(status.spec.config["compression.type"], "zstd");
    // Workloads name the KafkaTopic children, which resolve to the broker names.
    assert_eq!(
        e.consumers[0].spec.topics,
        ["rides-ride.requests", "rides-driver-status"]
    );
    assert_eq!(e.consumers[0].spec.group_id.as_deref(), Some("dispatch-v2"));
    assert_eq!(e.producers[1].spec.replicas, 1, "default replicas");
    assert!(e.warnings.is_empty(), "{:?}", e.warnings);
    // Read from a file: no uid, so no owner reference.
    assert!(requests.metadata.owner_references.is_none());
}

#[test]
fn children_of_a_stored_topology_are_owned_by_it() {
    let mut t = topology(TOPOLOGY);
    t.metadata.uid = Some("0b1c".into());
    let e = expand(&t).unwrap();
    for meta in e
        .topics
        .iter()
        .map(|c| &c.metadata)
        .chain(e.producers.iter().map(|c| &c.metadata))
        .chain(e.consumers.iter().map(|c| &c.metadata))
    {
        let owners = meta.owner_references.as_ref().unwrap();
        assert_eq!(owners.len(), 1);
        assert_eq!(
            (
                owners[0].kind.as_str(),
                owners[0].name.as_str(),
                owners[0].uid.as_str()
            ),
            ("StreamTopology", "rides", "0b1c")
        );
        assert_eq!(owners[0].controller, Some(true));
    }
}

#[test]
fn an_undeclared_topic_is_refused_with_its_path() {
    let text = TOPOLOGY
        .replace(
            "topics: [ride.requests, driver_status]",
            "topics: [ride.requests, driver.location]",
        )
        .replace("topics: [driver_status]", "topics: [payments]");
    assert_eq!(
        errors(&text),
        [
            "spec.producers[1].topics[0]: writes topic 'payments', which is not declared in spec.topics (declared: driver_status, ride.requests)",
            "spec.consumers[0].topics[1]: reads topic 'driver.location', which is not declared in spec.topics (declared: driver_status, ride.requests)",
        ]
    );
}

#[test]
fn duplicate_names_are_refused() {
    let text = TOPOLOGY
        .replace("    - name: driver_status\n", "    - name: ride.requests\n")
        .replace("    - name: driver-app\n", "    - name: dispatch\n");
    assert_eq!(
        errors(&text),
        [
            "spec.topics[1].name: topic 'ride.requests' is already declared by spec.topics[0]",
            "spec.consumers[0].name: 'dispatch' is already the name of spec.producers[1]: producers and consumers share one namespace of names (each is a Deployment)",
            "spec.producers[1].topics[0]: writes topic 'driver_status', which is not declared in spec.topics (declared: ride.requests)",
            "spec.consumers[0].topics[1]: reads topic 'driver_status', which is not declared in spec.topics (declared: ride.requests)",
        ]
    );
}

#[test]
fn topics_kafka_or_kubernetes_would_confuse_are_refused() {
    let text = TOPOLOGY.replace("    - name: driver_status\n", "    - name: ride_requests\n");
    let e = errors(&text);
    assert_eq!(
        e[0],
        "spec.topics[1].name: topic 'ride_requests' collides with 'ride.requests' (spec.topics[0]): Kafka treats '.' and '_' alike in topic names"
    );
    let text = TOPOLOGY.replace("    - name: ride.requests\n", "    - name: driver-status\n");
    let e = errors(&text);
    assert!(
        e.contains(&"spec.topics[1].name: topic 'driver_status' and 'driver-status' (spec.topics[0]) would both be KafkaTopic '<topology>-driver-status': rename one".to_owned()),
        "{e:?}"
    );
}

#[test]
fn a_missing_partition_count_names_both_places() {
    let text = TOPOLOGY.replace("    partitions: 6\n", "");
    assert_eq!(
        errors(&text),
        ["spec.topics[1].partitions: is required: set it here or in spec.defaults.partitions"]
    );
}

#[test]
fn child_problems_are_reported_at_the_entry() {
    let text = TOPOLOGY
        .replace("ghcr.io/acme/dispatch:3.0.0", "\"\"")
        .replace("group: dispatch-v2", "group: \" \"")
        .replace("compression.type: zstd", "compresion.type: zstd")
        .replace("retention.ms: \"-1\"", "retention.msx: \"-1\"")
        .replace("    - name: driver-app\n", "    - name: Driver_App\n");
    assert_eq!(
        errors(&text),
        [
            "spec.defaults.config.compresion.type: 'compresion.type' is not a Kafka topic config; did you mean 'compression.type'?",
            "spec.topics[1].config.retention.msx: 'retention.msx' is not a Kafka topic config; did you mean 'retention.ms'?",
            "spec.producers[1].name: 'rides-Driver_App' contains 'D'; use lowercase letters, digits and '-': it names the Deployment and labels the pods",
            "spec.consumers[0].group: must not be empty (leave it unset to use metadata.name)",
            "spec.consumers[0].template.image: must name a container image",
        ]
    );
}

#[test]
fn the_topology_name_must_be_a_dns_label() {
    let text = TOPOLOGY.replace("name: rides,", "name: Rides_2,");
    assert_eq!(
        errors(&text),
        ["metadata.name: contains 'R'; use lowercase letters, digits and '-'"]
    );
}

#[test]
fn the_topology_name_is_refused_as_the_api_server_would() {
    let long = "r".repeat(64);
    for (name, why) in [
        (
            long.as_str(),
            "is 64 characters long; at most 63 (it starts every child's name)",
        ),
        ("-rides", "must begin and end with a letter or digit"),
        (
            "rides.city",
            "contains '.'; use lowercase letters, digits and '-'",
        ),
    ] {
        let text = TOPOLOGY.replace("name: rides,", &format!("name: '{name}',"));
        assert_eq!(errors(&text), [format!("metadata.name: {why}")]);
    }
    // A name of 63 is a DNS label, but the Deployments named after it would be too long.
    let text = TOPOLOGY.replace("name: rides,", &format!("name: {},", "r".repeat(63)));
    let e = errors(&text);
    assert!(
        e.iter()
            .all(|e| e.starts_with("spec.producers[") || e.starts_with("spec.consumers[")),
        "{e:?}"
    );
    let text = TOPOLOGY.replace("name: rides,", &format!("name: {},", "r".repeat(52)));
    assert!(expand(&topology(&text)).is_ok());
}

/// Issue 13, defect 5: every child carries its entry's name as the value of the label
/// `tributary.io/topology-entry`. A topic name longer than a label value (Kafka allows 249
/// characters) passed `validate` and `render`, and the API server then refused the child.
#[test]
fn an_entry_name_that_is_no_label_value_is_refused() {
    let long = format!("ride.requests.{}", "x".repeat(50));
    let text = TOPOLOGY.replace("ride.requests", &long);
    let why = format!("spec.topics[0].name: '{long}' is 64 characters long; at most 63: it is the value of the label tributary.io/topology-entry on the KafkaTopic, and Kubernetes refuses any other");
    assert_eq!(errors(&text), [why.as_str()]);
    // The CLI's validate, plan, apply and render all refuse it through the manifest check.
    assert_eq!(
        check_set(&text).unwrap_err(),
        [format!("rides.yaml#1 {why}")]
    );

    let longest = format!("ride.requests.{}", "x".repeat(49));
    assert!(expand(&topology(&TOPOLOGY.replace("ride.requests", &longest))).is_ok());

    let text = TOPOLOGY.replace("driver_status", "_driver_status");
    assert_eq!(
        errors(&text),
        ["spec.topics[1].name: '_driver_status' must begin and end with a letter or digit: it is the value of the label tributary.io/topology-entry on the KafkaTopic, and Kubernetes refuses any other"]
    );
    // 'rides--driver-app' is a fine Deployment name, but '-driver-app' is no label value.
    let text = TOPOLOGY.replace("    - name: driver-app\n", "    - name: -driver-app\n");
    assert_eq!(
        errors(&text),
        ["spec.producers[1].name: '-driver-app' must begin and end with a letter or digit: it is the value of the label tributary.io/topology-entry on the KafkaProducer, and Kubernetes refuses any other"]
    );
}

#[test]
fn a_topic_child_name_is_a_dns_subdomain() {
    let text = TOPOLOGY.replace("driver_status", "driver..status");
    assert_eq!(
        errors(&text),
        ["spec.topics[1].name: gives the KafkaTopic name 'rides-driver..status', which contains \"..\"; every '.'-separated part needs at least one letter or digit"]
    );
    let text = TOPOLOGY.replace("driver_status", "driver.-status");
    assert_eq!(
        errors(&text),
        ["spec.topics[1].name: gives the KafkaTopic name 'rides-driver.-status', which has the part '-status'; every '.'-separated part must begin and end with a letter or digit"]
    );
}

#[test]
fn topic_documentation_fits_in_the_childs_annotations() {
    let schema = "rides.RideRequest (schema registry subject ride.requests-value)";
    let description = "x".repeat(MAX_ANNOTATIONS_BYTES);
    let text = TOPOLOGY.replace(
        "description: every ride asked for",
        &format!("description: {description}"),
    );
    let bytes = KEY_ANNOTATION.len()
        + "city zone id".len()
        + SCHEMA_ANNOTATION.len()
        + schema.len()
        + DESCRIPTION_ANNOTATION.len()
        + description.len();
    assert_eq!(
        errors(&text),
        [format!("spec.topics[0]: key, schema and description become the KafkaTopic's annotations, which take {bytes} bytes; the annotations of one object, keys and values together, may take at most 262144")]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// An entry is refused at its name exactly when a name or label derived from it is not
    /// what Kubernetes (or Kafka, for a topic) accepts.
    #[test]
    fn entries_are_refused_exactly_when_a_derived_name_is_invalid(
        topic in "[a-zA-Z0-9._-]{1,8}|[a-z0-9._-]{60,68}",
        workload in "[a-z0-9-]{1,8}|[a-zA-Z0-9._-]{1,4}|[a-z0-9-]{54,60}",
    ) {
        prop_assume!(topic.replace('.', "_") != "ride_requests" && topic_child_name("", &topic) != "-ride.requests");
        prop_assume!(!["rider-api", "dispatch"].contains(&workload.as_str()));
        let text = TOPOLOGY
            .replace("driver_status", &format!("'{topic}'"))
            .replace("    - name: driver-app\n", &format!("    - name: '{workload}'\n"));
        let refused: Vec<String> = match expand(&topology(&text)) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(|e| e.path).collect(),
        };
        let topic_ok = TopicName::parse(&topic).is_ok()
            && DnsSubdomain::parse(&topic_child_name("rides", &topic)).is_ok()
            && LabelValue::parse(&topic).is_ok();
        prop_assert_eq!(refused.contains(&"spec.topics[1].name".to_owned()), !topic_ok, "{:?}", refused);
        let workload_ok = DnsLabel::parse(&child_name("rides", &workload)).is_ok()
            && LabelValue::parse(&workload).is_ok();
        prop_assert_eq!(refused.contains(&"spec.producers[1].name".to_owned()), !workload_ok, "{:?}", refused);
    }
}

#[test]
fn too_many_replicas_for_the_partitions_is_a_warning() {
    let text = TOPOLOGY.replace("maxReplicas: 24", "maxReplicas: 40");
    assert_eq!(
        warnings(&text),
        ["spec.consumers[0].autoscaling.maxReplicas: 40 exceeds the 30 partition(s) of its topics (ride.requests, driver_status): replicas beyond 30 get no partition and sit idle"]
    );
    let text = TOPOLOGY.replace(
        "      autoscaling: {minReplicas: 2, maxReplicas: 24, lagThreshold: 500}",
        "      replicas: 31",
    );
    assert_eq!(
        warnings(&text),
        ["spec.consumers[0].replicas: 31 exceeds the 30 partition(s) of its topics (ride.requests, driver_status): replicas beyond 30 get no partition and sit idle"]
    );
}

#[test]
fn topics_nobody_writes_or_reads_are_warnings() {
    let text = TOPOLOGY
        .replace("  producers:\n", "    - name: audit\n  producers:\n")
        .replace(
            "topics: [ride.requests, driver_status]",
            "topics: [ride.requests]",
        )
        .replace(
            "topics: [ride.requests]\n      template: {image: ghcr.io/acme/rider",
            "topics: [audit]\n      template: {image: ghcr.io/acme/rider",
        );
    assert_eq!(
        warnings(&text),
        [
            "spec.topics[0]: topic 'ride.requests' is read but no producer of this topology writes it",
            "spec.topics[1]: topic 'driver_status' is written but no consumer of this topology reads it",
            "spec.topics[2]: topic 'audit' is written but no consumer of this topology reads it",
        ]
    );
    let text = TOPOLOGY.replace("  producers:\n", "    - name: unused\n  producers:\n");
    assert_eq!(
        warnings(&text),
        ["spec.topics[2]: topic 'unused' is neither written nor read by this topology"]
    );
}

pub(crate) fn check_set(text: &str) -> Result<crate::manifest::ValidatedSet, Vec<String>> {
    let (docs, errors) = load_str(Path::new("rides.yaml"), text);
    assert!(errors.is_empty(), "{errors:?}");
    validate(docs, None).map_err(|e| e.iter().map(ToString::to_string).collect())
}

#[test]
fn manifests_expand_topologies_into_their_children() {
    let set = check_set(TOPOLOGY).unwrap();
    assert_eq!(set.topologies.len(), 1);
    let names: Vec<&str> = set.topics.iter().map(|t| t.desired.name.as_str()).collect();
    assert_eq!(names, ["ride.requests", "driver_status"]);
    assert_eq!(set.producers.len(), 2);
    assert_eq!(set.consumers[0].1.group_id, "dispatch-v2");
    assert_eq!(set.topics[0].source.to_string(), "rides.yaml#1");
}

#[test]
fn a_child_may_not_take_a_declared_resources_name() {
    let standalone = "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata: {name: rides-driver-status, namespace: city}\nspec: {clusterRef: local, partitions: 3}\n";
    let e = check_set(&format!("{TOPOLOGY}{standalone}")).unwrap_err();
    assert_eq!(
        e,
        ["rides.yaml#1 spec.topics[1].name: would create KafkaTopic 'rides-driver-status', which rides.yaml#2 already declares and this topology does not own: rename the entry or remove the other resource"]
    );
}

#[test]
fn topology_warnings_reach_the_set() {
    let text = TOPOLOGY.replace("maxReplicas: 24", "maxReplicas: 40");
    let set = check_set(&text).unwrap();
    assert_eq!(set.warnings.len(), 1);
    assert!(set.warnings[0]
        .to_string()
        .starts_with("rides.yaml#1 spec.consumers[0].autoscaling.maxReplicas: 40 exceeds"));
}

#[test]
fn the_graph_shows_entries_broker_topics_and_groups() {
    let graph = expand(&topology(TOPOLOGY)).unwrap().graph();
    assert_eq!(graph.name, "rides");
    let topics: Vec<(&str, Option<i32>, Option<&str>)> = graph
        .topics
        .iter()
        .map(|t| (t.name.as_str(), t.partitions, t.retention_ms.as_deref()))
        .collect();
    assert_eq!(
        topics,
        [
            ("ride.requests", Some(24), Some("604800000")),
            ("driver_status", Some(6), Some("-1"))
        ]
    );
    assert_eq!(graph.producers[0].name, "rider-api");
    assert_eq!(graph.producers[0].topics, ["ride.requests"]);
    assert_eq!(graph.consumers[0].name, "dispatch");
    assert_eq!(graph.consumers[0].group, "dispatch-v2");
    assert_eq!(
        graph.consumers[0].topics,
        ["ride.requests", "driver_status"]
    );
}
