//! The checked-in CRDs are current, structural, and their CEL rules do what they promise.

use std::collections::BTreeMap;

use kube::core::cel::{validate_cel, validate_cel_update};
use serde_json::Value;
use tributary::api::{
    crds, Autoscaling, CredentialSource, DeletionPolicy, KafkaCluster, KafkaClusterSpec,
    KafkaConsumer, KafkaConsumerSpec, KafkaProducer, KafkaProducerSpec, KafkaTopic, KafkaTopicSpec,
    OffsetResetPolicy, PortProtocol, ProducerService, SaslMechanism, SaslSpec, SecretKeySelector,
    ServicePort, ServiceType, TlsSpec, WorkloadTemplate,
};

#[test]
fn checked_in_crds_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (dir, regenerate) in [
        (root.join("crds"), "cargo run -- crds --out-dir crds"),
        (
            root.join("charts/tributary/crds"),
            "cargo run -- crds --out-dir charts/tributary/crds",
        ),
    ] {
        for crd in crds::all() {
            let path = dir.join(crds::file_name(&crd));
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == crds::to_yaml(&crd),
                "{} is stale: run `{regenerate}` and commit the result",
                path.display()
            );
        }
        let files = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(
            files,
            crds::all().len(),
            "{} holds a file for a CRD that no longer exists",
            dir.display()
        );
    }
}

/// Kubernetes rejects a CRD whose schema is not structural; these are its rules.
fn check_structural(node: &Value, path: &str, in_junctor: bool, problems: &mut Vec<String>) {
    let Value::Object(map) = node else {
        problems.push(format!("{path}: schema node is not an object"));
        return;
    };
    for forbidden in ["$ref", "definitions", "$defs", "$schema"] {
        if map.contains_key(forbidden) {
            problems.push(format!("{path}: uses {forbidden}"));
        }
    }
    if in_junctor {
        for forbidden in [
            "type",
            "description",
            "default",
            "nullable",
            "additionalProperties",
            "title",
        ] {
            if map.contains_key(forbidden) {
                problems.push(format!(
                    "{path}: sets {forbidden} inside allOf/anyOf/oneOf/not"
                ));
            }
        }
    } else {
        let escape = map.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
            || map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        if !escape
            && map
                .get("type")
                .is_none_or(|t| t.as_str().is_none_or(|s| s.is_empty()))
        {
            problems.push(format!("{path}: has no type"));
        }
        if map.get("type").and_then(Value::as_str) == Some("array") && !map.contains_key("items") {
            problems.push(format!("{path}: array without items"));
        }
        if map.contains_key("properties") && map.contains_key("additionalProperties") {
            problems.push(format!("{path}: both properties and additionalProperties"));
        }
    }
    if let Some(Value::Object(props)) = map.get("properties") {
        for (name, child) in props {
            check_structural(child, &format!("{path}.{name}"), in_junctor, problems);
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(child @ Value::Object(_)) = map.get(key) {
            check_structural(child, &format!("{path}[{key}]"), in_junctor, problems);
        }
    }
    for junctor in ["allOf", "anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = map.get(junctor) {
            for (i, child) in items.iter().enumerate() {
                check_structural(child, &format!("{path}.{junctor}[{i}]"), true, problems);
            }
        }
    }
    if let Some(child) = map.get("not") {
        check_structural(child, &format!("{path}.not"), true, problems);
    }
}

#[test]
fn every_schema_is_structural() {
    for crd in crds::all() {
        for version in &crd.spec.versions {
            let schema = serde_json::to_value(
                version
                    .schema
                    .as_ref()
                    .unwrap()
                    .open_api_v3_schema
                    .as_ref()
                    .unwrap(),
            )
            .unwrap();
            let mut problems = Vec::new();
            check_structural(
                &schema,
                &crd.metadata.name.clone().unwrap(),
                false,
                &mut problems,
            );
            assert!(problems.is_empty(), "not structural: {problems:#?}");
        }
    }
}

#[test]
fn the_checker_catches_non_structural_shapes() {
    let mut problems = Vec::new();
    let bad = serde_json::json!({"type": "object", "properties": {
        "a": {"description": "no type"},
        "b": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
        "c": {"type": "array"}
    }});
    check_structural(&bad, "root", false, &mut problems);
    assert_eq!(
        problems,
        [
            "root.a: has no type",
            "root.b: has no type",
            "root.b.anyOf[0]: sets type inside allOf/anyOf/oneOf/not",
            "root.b.anyOf[1]: sets type inside allOf/anyOf/oneOf/not",
            "root.c: array without items",
        ]
    );
}

#[test]
fn crds_have_status_short_names_and_columns() {
    for crd in crds::all() {
        let v = &crd.spec.versions[0];
        assert!(
            v.subresources
                .as_ref()
                .and_then(|s| s.status.as_ref())
                .is_some(),
            "status subresource"
        );
        assert!(
            !crd.spec
                .names
                .short_names
                .clone()
                .unwrap_or_default()
                .is_empty(),
            "short name"
        );
        let columns = v.additional_printer_columns.clone().unwrap_or_default();
        assert!(columns.iter().any(|c| c.name == "Ready"), "Ready column");
        assert_eq!(crd.spec.group, "tributary.io");
        assert_eq!(v.name, "v1alpha1");
    }
}

fn topic(partitions: i32) -> KafkaTopic {
    KafkaTopic::new(
        "bookings",
        KafkaTopicSpec {
            cluster_ref: "prod".into(),
            topic_name: None,
            partitions,
            replication_factor: Some(3),
            config: BTreeMap::new(),
            deletion_policy: DeletionPolicy::Retain,
        },
    )
}

#[test]
fn partitions_never_decrease() {
    assert!(validate_cel_update(&topic(12), &topic(6)).is_ok());
    let err = validate_cel_update(&topic(3), &topic(6)).unwrap_err();
    assert!(
        err.to_string().contains("spec.partitions cannot decrease"),
        "{err}"
    );
}

#[test]
fn cluster_ref_and_topic_name_are_immutable() {
    let mut moved = topic(6);
    moved.spec.cluster_ref = "other".into();
    assert!(validate_cel_update(&moved, &topic(6))
        .unwrap_err()
        .to_string()
        .contains("clusterRef is immutable"));

    let mut renamed = topic(6);
    renamed.spec.topic_name = Some("bookings-v2".into());
    assert!(validate_cel_update(&renamed, &topic(6))
        .unwrap_err()
        .to_string()
        .contains("topicName is immutable"));
    assert!(validate_cel_update(&renamed, &renamed).is_ok());
}

fn cluster() -> KafkaCluster {
    KafkaCluster::new(
        "prod",
        KafkaClusterSpec {
            bootstrap_servers: vec!["kafka:9093".into()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: None,
            topic_defaults: None,
        },
    )
}

#[test]
fn credentials_take_exactly_one_source_and_passwords_are_never_inline() {
    let secret = CredentialSource {
        secret_key_ref: Some(SecretKeySelector {
            name: "creds".into(),
            key: "password".into(),
        }),
        ..Default::default()
    };
    let mut good = cluster();
    good.spec.sasl = Some(SaslSpec {
        mechanism: SaslMechanism::ScramSha256,
        username: CredentialSource {
            value: Some("svc".into()),
            ..Default::default()
        },
        password: secret.clone(),
    });
    assert!(validate_cel(&good).is_ok());

    let mut inline = good.clone();
    inline.spec.sasl.as_mut().unwrap().password = CredentialSource {
        value: Some("hunter2".into()),
        ..Default::default()
    };
    assert!(validate_cel(&inline)
        .unwrap_err()
        .to_string()
        .contains("never inline"));

    let mut both = good.clone();
    both.spec.sasl.as_mut().unwrap().password.file = Some("/etc/pw".into());
    assert!(validate_cel(&both)
        .unwrap_err()
        .to_string()
        .contains("exactly one"));

    let mut half_tls = cluster();
    half_tls.spec.tls = Some(TlsSpec {
        client_cert: Some(secret),
        ..Default::default()
    });
    assert!(validate_cel(&half_tls)
        .unwrap_err()
        .to_string()
        .contains("go together"));
}

#[test]
fn consumers_and_producers_are_served() {
    let names: Vec<(String, Vec<String>)> = crds::all()
        .into_iter()
        .map(|crd| {
            (
                crd.spec.names.kind.clone(),
                crd.spec.names.short_names.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert!(names.contains(&("KafkaConsumer".into(), vec!["kcon".into()])));
    assert!(names.contains(&("KafkaProducer".into(), vec!["kprod".into()])));
    let consumer = crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "KafkaConsumer")
        .unwrap();
    assert_eq!(
        consumer.spec.names.categories.clone().unwrap_or_default(),
        ["tributary"]
    );
    let columns: Vec<String> = consumer.spec.versions[0]
        .additional_printer_columns
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.name)
        .collect();
    for column in ["Ready", "Replicas", "Lag"] {
        assert!(
            columns.iter().any(|c| c == column),
            "{column} in {columns:?}"
        );
    }
}

fn consumer() -> KafkaConsumer {
    KafkaConsumer::new(
        "analytics",
        KafkaConsumerSpec {
            cluster_ref: "local".into(),
            group_id: None,
            topics: vec!["clicks".into(), "orders".into()],
            template: WorkloadTemplate {
                image: "ghcr.io/acme/analytics:1.0".into(),
                ..Default::default()
            },
            replicas: None,
            autoscaling: Some(Autoscaling {
                min_replicas: 1,
                max_replicas: 6,
                lag_threshold: 1000,
                scale_down_stabilization_seconds: 300,
                poll_interval_seconds: 30,
                limit_to_partitions_with_lag: true,
                offset_reset_policy: OffsetResetPolicy::Earliest,
                assignment_strategy: Default::default(),
            }),
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
            template: WorkloadTemplate {
                image: "ghcr.io/acme/web:1.0".into(),
                ..Default::default()
            },
            replicas: 2,
            service: Some(ProducerService {
                type_: ServiceType::LoadBalancer,
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

/// The single CEL failure of a creation: (field path, message).
fn refusal<K: kube::CustomResourceExt + serde::Serialize>(resource: &K) -> (String, String) {
    let errors = validate_cel(resource).expect_err("the CEL rules refuse it");
    let errors = errors.into_vec();
    assert_eq!(errors.len(), 1, "{errors:?}");
    (errors[0].field_path.clone(), errors[0].message.clone())
}

#[test]
fn consumer_cel_rules() {
    assert!(validate_cel(&consumer()).is_ok());
    let mut fixed = consumer();
    fixed.spec.autoscaling = None;
    fixed.spec.replicas = Some(3);
    assert!(validate_cel(&fixed).is_ok());

    let mut inverted = consumer();
    inverted.spec.autoscaling.as_mut().unwrap().min_replicas = 7;
    inverted.spec.autoscaling.as_mut().unwrap().max_replicas = 5;
    assert_eq!(
        refusal(&inverted),
        (
            "spec.autoscaling".into(),
            "minReplicas must be <= maxReplicas".into()
        )
    );

    for threshold in [0, -10] {
        let mut idle = consumer();
        idle.spec.autoscaling.as_mut().unwrap().lag_threshold = threshold;
        assert_eq!(
            refusal(&idle),
            (
                "spec.autoscaling.lagThreshold".into(),
                "must be > 0 (messages per replica)".into()
            )
        );
    }

    let mut foreign = consumer();
    foreign.spec.topics.push("billing/invoices".into());
    let (path, message) = refusal(&foreign);
    assert_eq!(path, "spec.topics");
    assert!(message.contains("another namespace"), "{message}");

    for image in ["", "   "] {
        let mut imageless = consumer();
        imageless.spec.template.image = image.into();
        assert_eq!(
            refusal(&imageless),
            (
                "spec.template.image".into(),
                "must name a container image".into()
            )
        );
    }

    let mut both = fixed.clone();
    both.spec.autoscaling = consumer().spec.autoscaling;
    assert_eq!(
        refusal(&both),
        (
            "spec".into(),
            "set exactly one of replicas and autoscaling".into()
        )
    );
    let mut neither = fixed;
    neither.spec.replicas = None;
    assert_eq!(
        refusal(&neither).1,
        "set exactly one of replicas and autoscaling"
    );
}

#[test]
fn producer_cel_rules() {
    assert!(validate_cel(&producer()).is_ok());
    let mut foreign = producer();
    foreign.spec.topics = vec!["shop/clicks".into()];
    assert_eq!(refusal(&foreign).0, "spec.topics");
    let mut imageless = producer();
    imageless.spec.template.image = String::new();
    assert_eq!(refusal(&imageless).1, "must name a container image");
}

#[test]
fn workload_schemas_carry_the_bounds_cel_does_not() {
    let crd = crds::all()
        .into_iter()
        .find(|c| c.spec.names.kind == "KafkaConsumer")
        .unwrap();
    let schema = serde_json::to_value(
        crd.spec.versions[0]
            .schema
            .as_ref()
            .unwrap()
            .open_api_v3_schema
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let spec = &schema["properties"]["spec"]["properties"];
    let topics = &spec["topics"];
    assert_eq!(topics["minItems"], 1);
    assert_eq!(
        topics["maxItems"], 256,
        "keeps the CEL cost of the topics rule bounded"
    );
    assert_eq!(topics["items"]["maxLength"], 253);
    let autoscaling = &spec["autoscaling"]["properties"];
    assert_eq!(autoscaling["maxReplicas"]["minimum"], 1.0);
    assert_eq!(autoscaling["minReplicas"]["default"], 1);
    assert_eq!(
        autoscaling["offsetResetPolicy"]["enum"],
        serde_json::json!(["earliest", "latest"])
    );
    assert_eq!(
        spec["template"]["properties"]["env"]["x-kubernetes-list-type"], "map",
        "duplicate env names are refused by the API server"
    );
}

fn user() -> tributary::api::KafkaUser {
    use tributary::api::*;
    KafkaUser::new(
        "orders",
        KafkaUserSpec {
            cluster_ref: "prod".into(),
            user_name: None,
            authentication: UserAuthentication {
                type_: AuthenticationType::ScramSha512,
                secret_name: None,
                password_from: None,
                subject: None,
                password: None,
            },
            authorization: Some(UserAuthorization {
                acls: vec![AclRule {
                    resource: AclResource {
                        type_: AclResourceType::Topic,
                        name: Some("orders".into()),
                        pattern_type: AclPatternType::Literal,
                    },
                    operations: vec![AclOperation::Write],
                    host: "*".into(),
                    type_: AclPermission::Allow,
                }],
            }),
        },
    )
}

#[test]
fn user_cel_rules() {
    use tributary::api::{AclPatternType, AclResourceType, AuthenticationType};
    assert!(validate_cel(&user()).is_ok());

    let mut inline = user();
    inline.spec.authentication.password = Some("hunter2".into());
    let (_, message) = refusal(&inline);
    assert!(
        message.contains("inline password is refused") && message.contains("passwordFrom"),
        "{message}"
    );

    let mut tls = user();
    tls.spec.authentication.type_ = AuthenticationType::Tls;
    assert!(refusal(&tls).1.contains("subject is required"));
    tls.spec.authentication.subject = Some("CN=orders".into());
    assert!(validate_cel(&tls).is_ok());
    tls.spec.authentication.secret_name = Some("orders-kafka".into());
    assert!(refusal(&tls).1.contains("for SCRAM, not tls"));

    let mut scram_subject = user();
    scram_subject.spec.authentication.subject = Some("CN=orders".into());
    assert!(refusal(&scram_subject).1.contains("for type tls only"));

    let mut cluster = user();
    let rule = &mut cluster.spec.authorization.as_mut().unwrap().acls[0];
    rule.resource.type_ = AclResourceType::Cluster;
    rule.resource.name = None;
    rule.resource.pattern_type = AclPatternType::Prefixed;
    assert!(refusal(&cluster).1.contains("cluster resource is literal"));

    let mut nameless = user();
    nameless.spec.authorization.as_mut().unwrap().acls[0]
        .resource
        .name = None;
    assert!(refusal(&nameless).1.contains("name is required"));

    let mut moved = user();
    moved.spec.cluster_ref = "dev".into();
    assert!(validate_cel_update(&moved, &user())
        .unwrap_err()
        .to_string()
        .contains("clusterRef is immutable"));
    let mut renamed = user();
    renamed.spec.user_name = Some("other".into());
    assert!(validate_cel_update(&renamed, &user())
        .unwrap_err()
        .to_string()
        .contains("userName is immutable"));
}
