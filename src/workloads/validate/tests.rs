//! Validation of consumers and producers: every rule, with exact messages.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::api::{
    Autoscaling, KafkaConsumer, KafkaConsumerSpec, KafkaProducer, KafkaProducerSpec, KafkaTopic,
    KafkaTopicSpec, OffsetResetPolicy, PortProtocol, ProducerService, ServicePort, ServiceType,
    WorkloadTemplate,
};
use crate::model::{
    DnsLabel, DnsSubdomain, LabelValue, PortName, QualifiedName, MAX_ANNOTATIONS_BYTES,
};
use crate::workloads::{LABEL_MANAGED_BY, LABEL_NAME};
use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};

fn template() -> WorkloadTemplate {
    WorkloadTemplate {
        image: "ghcr.io/acme/analytics:1.0".into(),
        ..Default::default()
    }
}

fn autoscaling(min: i32, max: i32, threshold: i64) -> Autoscaling {
    Autoscaling {
        min_replicas: min,
        max_replicas: max,
        lag_threshold: threshold,
        scale_down_stabilization_seconds: 300,
        poll_interval_seconds: 30,
        limit_to_partitions_with_lag: false,
        offset_reset_policy: OffsetResetPolicy::Latest,
        assignment_strategy: Default::default(),
    }
}

fn consumer() -> KafkaConsumer {
    KafkaConsumer::new(
        "analytics",
        KafkaConsumerSpec {
            cluster_ref: "local".into(),
            group_id: None,
            topics: vec!["clicks".into(), "orders".into()],
            template: template(),
            replicas: None,
            autoscaling: Some(autoscaling(1, 6, 1000)),
            group_deletion_policy: None,
        },
    )
}

fn producer() -> KafkaProducer {
    KafkaProducer::new(
        "web-app",
        KafkaProducerSpec {
            cluster_ref: "local".into(),
            topics: vec!["clicks".into()],
            template: template(),
            replicas: 2,
            service: Some(ProducerService {
                type_: ServiceType::ClusterIP,
                ports: vec![ServicePort {
                    name: "http".into(),
                    port: 80,
                    target_port: Some(8080),
                    protocol: PortProtocol::Tcp,
                }],
            }),
        },
    )
}

fn messages(errors: Vec<FieldError>) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

#[test]
fn a_valid_consumer_resolves_its_defaults() {
    let c = validate_consumer(&consumer()).unwrap();
    assert_eq!(c.group_id, "analytics");
    assert_eq!(c.owner.kind, "KafkaConsumer");
    assert_eq!(c.owner.api_version, "tributary.io/v1alpha1");
    assert_eq!(c.owner.reference(), None, "no uid, no owner reference");
    let Scaling::Autoscaled(policy) = c.scaling else {
        panic!("autoscaled")
    };
    assert_eq!(policy.poll_interval, Duration::from_secs(30));
    assert_eq!(policy.max_replicas, 6);

    let mut fixed = consumer();
    fixed.spec.autoscaling = None;
    fixed.spec.replicas = Some(3);
    fixed.spec.group_id = Some("analytics-v2".into());
    let c = validate_consumer(&fixed).unwrap();
    assert_eq!(c.scaling, Scaling::Fixed(3));
    assert_eq!(c.group_id, "analytics-v2");
}

#[test]
fn autoscaling_bounds_with_exact_messages() {
    let mut c = consumer();
    c.spec.autoscaling = Some(autoscaling(7, 5, 0));
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        [
            "spec.autoscaling.minReplicas: must be <= maxReplicas (5), got 7",
            "spec.autoscaling.lagThreshold: must be > 0 (messages per replica), got 0",
        ]
    );
    let mut a = autoscaling(-1, 0, -5);
    a.poll_interval_seconds = 0;
    a.scale_down_stabilization_seconds = 7200;
    c.spec.autoscaling = Some(a);
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        [
            "spec.autoscaling.minReplicas: must be >= 0, got -1",
            "spec.autoscaling.maxReplicas: must be >= 1, got 0",
            "spec.autoscaling.lagThreshold: must be > 0 (messages per replica), got -5",
            "spec.autoscaling.scaleDownStabilizationSeconds: must be between 0 and 3600, got 7200",
            "spec.autoscaling.pollIntervalSeconds: must be between 1 and 3600, got 0",
        ]
    );
}

#[test]
fn exactly_one_of_replicas_and_autoscaling() {
    let mut both = consumer();
    both.spec.replicas = Some(2);
    assert_eq!(
        messages(validate_consumer(&both).unwrap_err()),
        ["spec: set exactly one of replicas and autoscaling, not both"]
    );
    let mut neither = consumer();
    neither.spec.autoscaling = None;
    assert_eq!(
        messages(validate_consumer(&neither).unwrap_err()),
        ["spec: set exactly one of replicas and autoscaling"]
    );
    let mut negative = neither.clone();
    negative.spec.replicas = Some(-1);
    assert_eq!(
        messages(validate_consumer(&negative).unwrap_err()),
        ["spec.replicas: must be >= 0, got -1"]
    );
}

#[test]
fn topics_in_other_namespaces_illegal_or_repeated_are_refused() {
    let mut c = consumer();
    c.spec.topics = vec![
        "shop/orders".into(),
        "bad topic".into(),
        "clicks".into(),
        "clicks".into(),
    ];
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        [
            "spec.topics[0]: 'shop/orders' is a topic in another namespace; only KafkaTopics of this namespace (or topic names without '/') can be used",
            "spec.topics[1]: 'bad topic' contains ' '; Kafka topic names use only letters, digits, '.', '_' and '-'",
            "spec.topics[3]: 'clicks' is already listed at spec.topics[2]",
        ]
    );
    c.spec.topics.clear();
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        ["spec.topics: must name at least one topic"]
    );
}

#[test]
fn template_problems() {
    let mut c = consumer();
    c.spec.template.image = " ".into();
    c.spec.template.env = vec![
        EnvVar {
            name: "KAFKA_TOPICS".into(),
            value: Some("x".into()),
            value_from: None,
        },
        EnvVar {
            name: "LOG_LEVEL".into(),
            value: Some("info".into()),
            value_from: None,
        },
        EnvVar {
            name: "LOG_LEVEL".into(),
            value: Some("debug".into()),
            value_from: Some(EnvVarSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "s".into(),
                    key: "k".into(),
                    optional: None,
                }),
                ..Default::default()
            }),
        },
    ];
    c.spec
        .template
        .labels
        .insert("tributary.io/consumer".into(), "x".into());
    c.spec
        .template
        .labels
        .insert("team".into(), "data platform".into());
    c.spec
        .template
        .annotations
        .insert("tributary.io/connection-hash".into(), "0".into());
    c.spec.template.service_account_name = Some("Analytics".into());
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        [
            "spec.template.image: must name a container image",
            "spec.template.env[0].name: 'KAFKA_TOPICS' is set by Tributary from the KafkaCluster and spec; remove it or use another name",
            "spec.template.env[2].name: 'LOG_LEVEL' is already set by spec.template.env[1]",
            "spec.template.env[2]: set value or valueFrom, not both",
            "spec.template.labels.team: 'data platform' is not a valid label value: contains ' '; use letters, digits, '-', '_' and '.'",
            "spec.template.labels.tributary.io/consumer: 'tributary.io/consumer' is set by Tributary; use another key",
            "spec.template.annotations.tributary.io/connection-hash: 'tributary.io/connection-hash' is set by Tributary; use another key",
            "spec.template.serviceAccountName: 'Analytics' is not a valid ServiceAccount name: contains 'A'; use lowercase letters, digits, '-' and '.'",
        ]
    );
}

#[test]
fn group_id_env_is_free_for_producers() {
    let mut p = producer();
    p.spec.template.env = vec![EnvVar {
        name: "KAFKA_GROUP_ID".into(),
        value: Some("audit".into()),
        value_from: None,
    }];
    assert!(validate_producer(&p).is_ok());
    p.spec.template.env[0].name = "KAFKA_SASL_PASSWORD".into();
    assert!(validate_producer(&p).is_err());
}

#[test]
fn producer_service_ports() {
    let p = validate_producer(&producer()).unwrap();
    let service = p.service.unwrap();
    assert_eq!(service.ports[0].target_port, 8080);

    let mut p = producer();
    let ports = &mut p.spec.service.as_mut().unwrap().ports;
    ports.push(ServicePort {
        name: "http".into(),
        port: 80,
        target_port: Some(70000),
        protocol: PortProtocol::Tcp,
    });
    ports.push(ServicePort {
        name: "Metrics_1".into(),
        port: 9090,
        target_port: None,
        protocol: PortProtocol::Tcp,
    });
    assert_eq!(
        messages(validate_producer(&p).unwrap_err()),
        [
            "spec.service.ports[1].name: 'http' is already used by spec.service.ports[0]",
            "spec.service.ports[1].targetPort: must be between 1 and 65535, got 70000",
            "spec.service.ports[1].port: 80/TCP is already used by spec.service.ports[0]",
            "spec.service.ports[2].name: 'Metrics_1' contains 'M'; port names use lowercase letters, digits and '-'",
        ]
    );
}

fn kafka_topic(name: &str, cluster: &str, topic_name: Option<&str>) -> KafkaTopic {
    KafkaTopic::new(
        name,
        KafkaTopicSpec {
            cluster_ref: cluster.into(),
            topic_name: topic_name.map(Into::into),
            partitions: 3,
            replication_factor: None,
            config: BTreeMap::new(),
            deletion_policy: Default::default(),
        },
    )
}

#[test]
fn topic_references_resolve_through_kafka_topics() {
    let topics = [
        kafka_topic("orders", "local", Some("shop.orders.v2")),
        kafka_topic("clicks", "local", None),
    ];
    let names = topic_names(&topics);
    let mut c = consumer();
    c.spec.topics = vec![
        "orders".into(),
        "clicks".into(),
        "legacy-events".into(),
        "shop.orders.v2".into(),
    ];
    let c = validate_consumer(&c).unwrap();
    let resolved: Vec<String> = broker_topics(&c.topics, &names)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(resolved, ["shop.orders.v2", "clicks", "legacy-events"]);
}

#[test]
fn a_topic_on_another_cluster_is_reported() {
    let topics = [kafka_topic("orders", "other", None)];
    let c = validate_consumer(&consumer()).unwrap();
    assert_eq!(
        messages(check_topic_clusters(&c.topics, &c.cluster_ref, &topics)),
        ["spec.topics[1]: KafkaTopic 'orders' lives on cluster 'other', not on 'local' (spec.clusterRef)"]
    );
}

#[test]
fn the_name_must_be_a_dns_label() {
    let mut c = consumer();
    c.metadata.name = Some("Analytics.v2".into());
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        ["metadata.name: 'Analytics.v2' contains 'A'; use lowercase letters, digits and '-': it names the Deployment and labels the pods"]
    );
    let mut p = producer();
    p.metadata.name = Some("1st-web".into());
    assert_eq!(
        messages(validate_producer(&p).unwrap_err()),
        ["metadata.name: '1st-web' must begin with a letter: it names the Deployment and the Service and labels the pods"]
    );
    p.spec.service = None;
    assert!(validate_producer(&p).is_ok());
}

/// Whether validation refused the resource with a problem at `path`.
fn refused_at<T>(result: Result<T, Vec<FieldError>>, path: &str) -> bool {
    result.is_err_and(|errors| errors.iter().any(|e| e.path == path))
}

fn with_label(key: &str, value: &str) -> bool {
    let mut c = consumer();
    c.spec.template.labels.insert(key.into(), value.into());
    refused_at(
        validate_consumer(&c),
        &format!("spec.template.labels.{key}"),
    )
}

fn with_port_name(name: &str) -> bool {
    let mut p = producer();
    p.spec.service.as_mut().unwrap().ports[0].name = name.into();
    refused_at(validate_producer(&p), "spec.service.ports[0].name")
}

#[test]
fn label_syntax() {
    assert!(!with_label("app.kubernetes.io/part-of", "x"));
    assert!(!with_label("team", ""));
    assert!(with_label("Example.com/x", "x"));
    assert!(with_label("example.com/", "x"));
    assert!(with_label("a..b/x", "x"), "the prefix is a DNS subdomain");
    assert!(with_label("-x", "x"));
    assert!(with_label("team", &"a".repeat(64)));
    assert!(!with_port_name("http-2"));
    assert!(with_port_name("8080"));
    assert!(with_port_name("a--b"));
}

#[test]
fn a_service_account_name_is_a_dns_subdomain() {
    let mut c = consumer();
    c.spec.template.service_account_name = Some("analytics..reader".into());
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        ["spec.template.serviceAccountName: 'analytics..reader' is not a valid ServiceAccount name: contains \"..\"; every '.'-separated part needs at least one letter or digit"]
    );
    c.spec.template.service_account_name = Some("analytics.reader".into());
    assert!(validate_consumer(&c).is_ok());
}

#[test]
fn the_pods_annotations_fit_in_what_kubernetes_allows() {
    let mut c = consumer();
    let room = MAX_ANNOTATIONS_BYTES - "tributary.io/connection-hash".len() - 16;
    c.spec
        .template
        .annotations
        .insert("notes".into(), "x".repeat(room - "notes".len()));
    assert!(validate_consumer(&c).is_ok());
    c.spec
        .template
        .annotations
        .insert("more".into(), String::new());
    assert_eq!(
        messages(validate_consumer(&c).unwrap_err()),
        ["spec.template.annotations: with tributary.io/connection-hash, the pods' annotations take 262148 bytes; the annotations of one object, keys and values together, may take at most 262144"]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    /// Each name the validators check is refused exactly when its type refuses it.
    #[test]
    fn the_validators_refuse_exactly_what_the_name_types_refuse(
        s in "[a-zA-Z0-9._/ -]{0,12}|[a-z0-9.-]{1,4}|[a-z0-9-]{60,66}|[a-z0-9.-]{250,256}"
    ) {
        let mut c = consumer();
        c.metadata.name = Some(s.clone());
        prop_assert_eq!(refused_at(validate_consumer(&c), "metadata.name"), DnsLabel::parse(&s).is_err());

        let mut p = producer();
        p.metadata.name = Some(s.clone());
        prop_assert_eq!(
            refused_at(validate_producer(&p), "metadata.name"),
            DnsLabel::parse_rfc1035(&s).is_err()
        );

        prop_assert_eq!(with_label("team", &s), LabelValue::parse(&s).is_err());
        let reserved = s == LABEL_NAME || s == LABEL_MANAGED_BY || s.starts_with("tributary.io/");
        prop_assert_eq!(with_label(&s, "x"), reserved || QualifiedName::parse(&s).is_err());

        let mut c = consumer();
        c.spec.template.node_selector.insert("zone".into(), s.clone());
        c.spec.template.node_selector.insert(s.clone(), "a".into());
        let zone = refused_at(validate_consumer(&c), "spec.template.nodeSelector.zone");
        prop_assert_eq!(zone, LabelValue::parse(&s).is_err());
        let key = refused_at(validate_consumer(&c), &format!("spec.template.nodeSelector.{s}"));
        prop_assert_eq!(key, QualifiedName::parse(&s).is_err() || (s == "zone" && zone));

        let mut c = consumer();
        c.spec.template.annotations.insert(s.clone(), "x".into());
        prop_assert_eq!(
            refused_at(validate_consumer(&c), &format!("spec.template.annotations.{s}")),
            s.starts_with("tributary.io/") || QualifiedName::parse(&s).is_err()
        );

        let mut c = consumer();
        c.spec.template.service_account_name = Some(s.clone());
        prop_assert_eq!(
            refused_at(validate_consumer(&c), "spec.template.serviceAccountName"),
            DnsSubdomain::parse(&s).is_err()
        );

        prop_assert_eq!(with_port_name(&s), PortName::parse(&s).is_err());
    }
}
