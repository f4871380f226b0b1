//! Rendering: injected environment, labels, owner reference, and when the connection hash
//! changes (exactly when a connection setting or Secret reference does).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::EnvVar;

use super::*;
use crate::api::{
    Autoscaling, KafkaConsumer, KafkaConsumerSpec, KafkaProducer, KafkaProducerSpec,
    OffsetResetPolicy, PortProtocol, ProducerService, SaslMechanism, SecretKeySelector,
    ServicePort, ServiceType, WorkloadTemplate,
};
use crate::model::TopicName;

fn secret(name: &str, key: &str) -> SecretKeySelector {
    SecretKeySelector {
        name: name.into(),
        key: key.into(),
    }
}

fn sasl_ssl() -> ConnectionFacts {
    ConnectionFacts {
        bootstrap_servers: vec!["kafka-0:9093".into(), "kafka-1:9093".into()],
        tls: Some(TlsRefs {
            ca_cert: Some(secret("kafka-ca", "ca.crt")),
            ..Default::default()
        }),
        sasl: Some(SaslRefs {
            mechanism: SaslMechanism::ScramSha512,
            username: Credential::Value("analytics".into()),
            password: secret("analytics-kafka", "password"),
        }),
    }
}

fn consumer() -> ValidatedConsumer {
    let mut c = KafkaConsumer::new(
        "analytics",
        KafkaConsumerSpec {
            cluster_ref: "local".into(),
            group_id: None,
            topics: vec!["clicks".into(), "orders".into()],
            template: WorkloadTemplate {
                image: "ghcr.io/acme/analytics:1.0".into(),
                env: vec![EnvVar {
                    name: "LOG_LEVEL".into(),
                    value: Some("info".into()),
                    value_from: None,
                }],
                ..Default::default()
            },
            replicas: None,
            autoscaling: Some(Autoscaling {
                min_replicas: 1,
                max_replicas: 6,
                lag_threshold: 1000,
                scale_down_stabilization_seconds: 300,
                poll_interval_seconds: 30,
                limit_to_partitions_with_lag: false,
                offset_reset_policy: OffsetResetPolicy::Latest,
                assignment_strategy: Default::default(),
            }),
            group_deletion_policy: None,
        },
    );
    c.metadata.namespace = Some("shop".into());
    c.metadata.uid = Some("0b6a3a52-1111-4c55-9d7e-000000000001".into());
    validate_consumer(&c).unwrap()
}

fn producer() -> ValidatedProducer {
    let mut p = KafkaProducer::new(
        "web-app",
        KafkaProducerSpec {
            cluster_ref: "local".into(),
            topics: vec!["clicks".into()],
            template: WorkloadTemplate {
                image: "ghcr.io/acme/web:2.3".into(),
                ..Default::default()
            },
            replicas: 2,
            service: Some(ProducerService {
                type_: ServiceType::ClusterIP,
                ports: vec![
                    ServicePort {
                        name: "http".into(),
                        port: 80,
                        target_port: Some(8080),
                        protocol: PortProtocol::Tcp,
                    },
                    ServicePort {
                        name: "http-alt".into(),
                        port: 8080,
                        target_port: None,
                        protocol: PortProtocol::Tcp,
                    },
                ],
            }),
        },
    );
    p.metadata.uid = Some("uid-web".into());
    validate_producer(&p).unwrap()
}

fn topics() -> TopicNames {
    BTreeMap::from([(
        "orders".to_owned(),
        TopicName::parse("shop.orders").unwrap(),
    )])
}

fn env_of(d: &Deployment) -> Vec<EnvVar> {
    d.spec.template.spec.as_ref().unwrap().containers[0]
        .env
        .clone()
        .unwrap()
}

fn hash_of(d: &Deployment) -> String {
    d.spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .annotations
        .as_ref()
        .unwrap()[ANNOTATION_CONNECTION_HASH]
        .clone()
}

#[test]
fn the_connection_is_injected_before_the_user_env_and_secrets_are_referenced() {
    let d = consumer_deployment(&consumer(), &sasl_ssl(), &topics(), 3).unwrap();
    let env = env_of(&d);
    let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "KAFKA_BOOTSTRAP_SERVERS",
            "KAFKA_GROUP_ID",
            "KAFKA_TOPICS",
            "KAFKA_SECURITY_PROTOCOL",
            "KAFKA_SASL_MECHANISM",
            "KAFKA_SASL_USERNAME",
            "KAFKA_SASL_PASSWORD",
            "KAFKA_SSL_CA_PEM",
            "LOG_LEVEL",
        ]
    );
    let value = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        value("KAFKA_BOOTSTRAP_SERVERS").unwrap(),
        "kafka-0:9093,kafka-1:9093"
    );
    assert_eq!(value("KAFKA_GROUP_ID").unwrap(), "analytics");
    assert_eq!(value("KAFKA_TOPICS").unwrap(), "clicks,shop.orders");
    assert_eq!(value("KAFKA_SECURITY_PROTOCOL").unwrap(), "SASL_SSL");
    assert_eq!(value("KAFKA_SASL_MECHANISM").unwrap(), "SCRAM-SHA-512");
    assert_eq!(value("KAFKA_SASL_USERNAME").unwrap(), "analytics");
    for name in ["KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_PEM"] {
        let var = env.iter().find(|e| e.name == name).unwrap();
        assert_eq!(var.value, None, "{name} is never inlined");
        let r = var
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
            .unwrap();
        assert!(r.name == "analytics-kafka" || r.name == "kafka-ca");
    }
}

#[test]
fn a_username_from_a_secret_and_mutual_tls_are_referenced_too() {
    let mut conn = sasl_ssl();
    conn.sasl.as_mut().unwrap().username = Credential::Secret(secret("analytics-kafka", "user"));
    conn.tls.as_mut().unwrap().client_cert = Some(secret("analytics-tls", "tls.crt"));
    conn.tls.as_mut().unwrap().client_key = Some(secret("analytics-tls", "tls.key"));
    let d = producer_deployment(&producer(), &conn, &topics(), 2).unwrap();
    let env = env_of(&d);
    for (name, secret, key) in [
        ("KAFKA_SASL_USERNAME", "analytics-kafka", "user"),
        ("KAFKA_SSL_CERTIFICATE_PEM", "analytics-tls", "tls.crt"),
        ("KAFKA_SSL_KEY_PEM", "analytics-tls", "tls.key"),
    ] {
        let var = env.iter().find(|e| e.name == name).unwrap();
        let r = var
            .value_from
            .as_ref()
            .unwrap()
            .secret_key_ref
            .as_ref()
            .unwrap();
        assert_eq!(
            (var.value.as_deref(), r.name.as_str(), r.key.as_str()),
            (None, secret, key)
        );
    }
    assert!(
        env.iter().all(|e| e.name != "KAFKA_GROUP_ID"),
        "producers have no group"
    );
}

#[test]
fn plaintext_injects_no_credentials() {
    let d = consumer_deployment(
        &consumer(),
        &ConnectionFacts::plaintext(&["127.0.0.1:9092"]),
        &TopicNames::new(),
        1,
    )
    .unwrap();
    let names: Vec<String> = env_of(&d).into_iter().map(|e| e.name).collect();
    assert_eq!(
        names,
        [
            "KAFKA_BOOTSTRAP_SERVERS",
            "KAFKA_GROUP_ID",
            "KAFKA_TOPICS",
            "KAFKA_SECURITY_PROTOCOL",
            "LOG_LEVEL"
        ]
    );
    assert_eq!(env_of(&d)[2].value.as_deref(), Some("clicks,orders"));
}

#[test]
fn labels_selector_and_owner_reference() {
    let d = consumer_deployment(&consumer(), &sasl_ssl(), &topics(), 3).unwrap();
    assert_eq!(d.metadata.name.as_deref(), Some("analytics"));
    assert_eq!(d.metadata.namespace.as_deref(), Some("shop"));
    let labels = d.metadata.labels.clone().unwrap();
    assert_eq!(labels["app.kubernetes.io/name"], "analytics");
    assert_eq!(labels["app.kubernetes.io/managed-by"], "tributary");
    assert_eq!(labels["tributary.io/consumer"], "analytics");
    let owner = &d.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(owner.api_version, "tributary.io/v1alpha1");
    assert_eq!(owner.kind, "KafkaConsumer");
    assert_eq!(owner.name, "analytics");
    assert_eq!(owner.uid, "0b6a3a52-1111-4c55-9d7e-000000000001");
    assert_eq!(owner.controller, Some(true));
    assert_eq!(owner.block_owner_deletion, Some(true));
    let spec = &d.spec;
    assert_eq!(spec.replicas, Some(3));
    assert_eq!(
        spec.selector.match_labels.clone().unwrap(),
        BTreeMap::from([("tributary.io/consumer".to_owned(), "analytics".to_owned())])
    );
    let pod_labels = spec
        .template
        .metadata
        .as_ref()
        .unwrap()
        .labels
        .clone()
        .unwrap();
    assert_eq!(
        pod_labels, labels,
        "pods carry the labels the selector matches"
    );
}

#[test]
fn a_producer_declares_each_target_port_once_and_its_service_selects_its_pods() {
    let p = producer();
    let d = producer_deployment(&p, &sasl_ssl(), &topics(), 2).unwrap();
    let ports = d.spec.template.spec.unwrap().containers[0]
        .ports
        .clone()
        .unwrap();
    assert_eq!(ports.len(), 1, "{ports:?}");
    assert_eq!(
        (ports[0].name.as_deref(), ports[0].container_port),
        (Some("http"), 8080)
    );
    let s = producer_service(&p).unwrap().unwrap();
    let spec = s.spec.unwrap();
    assert_eq!(
        spec.selector.unwrap(),
        BTreeMap::from([("tributary.io/producer".to_owned(), "web-app".to_owned())])
    );
    assert_eq!(spec.ports.unwrap().len(), 2);
    let mut none = p.clone();
    none.service = None;
    assert_eq!(producer_service(&none).unwrap(), None);
}

#[test]
fn rendering_needs_a_uid_and_a_replica_count_of_zero_or_more() {
    let mut c = consumer();
    assert_eq!(
        consumer_deployment(&c, &sasl_ssl(), &topics(), -1).unwrap_err(),
        RenderError::NegativeReplicas(-1)
    );
    c.owner.uid = None;
    let err = consumer_deployment(&c, &sasl_ssl(), &topics(), 1).unwrap_err();
    assert_eq!(
        err.to_string(),
        "KafkaConsumer 'analytics' has no metadata.uid: its children need an owner reference"
    );
}

#[test]
fn the_hash_changes_with_every_connection_setting_and_secret_reference() {
    let base = sasl_ssl();
    let render = |conn: &ConnectionFacts| {
        hash_of(&consumer_deployment(&consumer(), conn, &topics(), 1).unwrap())
    };
    let original = render(&base);
    assert_eq!(original, base.hash());
    assert_eq!(original.len(), 16);

    type Change = fn(&mut ConnectionFacts);
    let changes: Vec<(&str, Change)> = vec![
        ("bootstrap", |c| {
            c.bootstrap_servers.push("kafka-2:9093".into())
        }),
        ("bootstrap order", |c| c.bootstrap_servers.reverse()),
        ("protocol (TLS off)", |c| c.tls = None),
        ("protocol (SASL off)", |c| c.sasl = None),
        ("mechanism", |c| {
            c.sasl.as_mut().unwrap().mechanism = SaslMechanism::ScramSha256
        }),
        ("username", |c| {
            c.sasl.as_mut().unwrap().username = Credential::Value("other".into())
        }),
        ("username from a Secret", |c| {
            c.sasl.as_mut().unwrap().username = Credential::Secret(secret("analytics", "password"))
        }),
        ("password Secret name", |c| {
            c.sasl.as_mut().unwrap().password.name = "analytics-kafka-v2".into()
        }),
        ("password Secret key", |c| {
            c.sasl.as_mut().unwrap().password.key = "pw".into()
        }),
        ("CA Secret name", |c| {
            c.tls.as_mut().unwrap().ca_cert = Some(secret("kafka-ca-2", "ca.crt"))
        }),
        ("CA Secret key", |c| {
            c.tls.as_mut().unwrap().ca_cert = Some(secret("kafka-ca", "tls.crt"))
        }),
        ("system CA roots", |c| {
            c.tls.as_mut().unwrap().ca_cert = None
        }),
        ("client certificate", |c| {
            c.tls.as_mut().unwrap().client_cert = Some(secret("tls", "tls.crt"))
        }),
    ];
    let mut seen = std::collections::BTreeSet::from([original.clone()]);
    for (what, change) in changes {
        let mut conn = base.clone();
        change(&mut conn);
        let hash = render(&conn);
        assert_ne!(hash, original, "{what} must change the hash");
        assert!(
            seen.insert(hash),
            "{what}: hash collides with another change"
        );
    }
}

#[test]
fn the_hash_ignores_everything_but_the_connection() {
    let conn = sasl_ssl();
    let original = hash_of(&consumer_deployment(&consumer(), &conn, &topics(), 1).unwrap());

    let mut other = consumer();
    other.template.image = "ghcr.io/acme/analytics:2.0".into();
    other.template.env.push(EnvVar {
        name: "BATCH".into(),
        value: Some("500".into()),
        value_from: None,
    });
    other.template.labels.insert("team".into(), "data".into());
    other.group_id = "analytics-v2".into();
    let d = consumer_deployment(&other, &conn, &TopicNames::new(), 7).unwrap();
    assert_eq!(hash_of(&d), original);
    assert_eq!(
        hash_of(&producer_deployment(&producer(), &conn, &topics(), 1).unwrap()),
        original,
        "the hash is the cluster's, whoever connects"
    );
}

#[test]
fn the_hash_is_stable_across_builds() {
    // Pinned: another value for the same settings would roll every workload's pods when the
    // operator is upgraded.
    assert_eq!(
        ConnectionFacts::plaintext(&["127.0.0.1:9092"]).hash(),
        "25f1e0d36dc97ecc"
    );
}
