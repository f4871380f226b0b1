//! The checked-in CRDs are current, structural, and their CEL rules do what they promise.

use std::collections::BTreeMap;

use kube::core::cel::{validate_cel, validate_cel_update};
use serde_json::Value;
use tributary::api::{
    crds, CredentialSource, DeletionPolicy, KafkaCluster, KafkaClusterSpec, KafkaTopic,
    KafkaTopicSpec, SaslMechanism, SaslSpec, SecretKeySelector, TlsSpec,
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
