//! From a raw `KafkaCluster` spec to the problems it has: the one check the CLI, the cluster
//! probe and every kind that refers to a cluster share.

use crate::api::{CredentialSource, KafkaCluster};
use crate::model::{topic_config, DataKey, DnsSubdomain, FieldError, MAX_REPLICATION_FACTOR};

/// librdkafka properties that `spec.tls` / `spec.sasl` own; setting them in `clientConfig`
/// would bypass the credential handling.
const SECURITY_PREFIXES: &[&str] = &["security.protocol", "sasl.", "ssl."];

/// Validates a `KafkaCluster` spec. Every problem is reported.
pub fn validate_cluster(cluster: &KafkaCluster) -> Vec<FieldError> {
    let spec = &cluster.spec;
    let mut errors = Vec::new();
    if spec.bootstrap_servers.is_empty() {
        errors.push(FieldError::new(
            "spec.bootstrapServers",
            "must list at least one host:port",
        ));
    }
    for (i, server) in spec.bootstrap_servers.iter().enumerate() {
        let ok = server.rsplit_once(':').is_some_and(|(host, port)| {
            !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0)
        });
        if !ok {
            errors.push(FieldError::new(
                format!("spec.bootstrapServers[{i}]"),
                format!("must be host:port, got '{server}'"),
            ));
        }
    }
    if let Some(tls) = &spec.tls {
        for (field, source) in [
            ("caCert", &tls.ca_cert),
            ("clientCert", &tls.client_cert),
            ("clientKey", &tls.client_key),
        ] {
            if let Some(source) = source {
                check_credential(&format!("spec.tls.{field}"), source, false, &mut errors);
            }
        }
        if tls.client_cert.is_some() != tls.client_key.is_some() {
            errors.push(FieldError::new(
                "spec.tls",
                "clientCert and clientKey go together: set both or neither",
            ));
        }
    }
    if let Some(sasl) = &spec.sasl {
        check_credential("spec.sasl.username", &sasl.username, true, &mut errors);
        check_credential("spec.sasl.password", &sasl.password, false, &mut errors);
    }
    for key in spec.client_config.keys() {
        if SECURITY_PREFIXES.iter().any(|p| key.starts_with(p)) {
            errors.push(FieldError::new(
                format!("spec.clientConfig.{key}"),
                "security settings belong in spec.tls and spec.sasl",
            ));
        }
    }
    if let Some(t) = spec.request_timeout_seconds {
        if !(1..=300).contains(&t) {
            errors.push(FieldError::new(
                "spec.requestTimeoutSeconds",
                format!("must be between 1 and 300, got {t}"),
            ));
        }
    }
    if let Some(defaults) = &spec.topic_defaults {
        if let Some(rf) = defaults.replication_factor {
            if !(1..=MAX_REPLICATION_FACTOR).contains(&rf) {
                errors.push(FieldError::new(
                    "spec.topicDefaults.replicationFactor",
                    format!("must be between 1 and {MAX_REPLICATION_FACTOR}, got {rf}"),
                ));
            }
        }
        for (key, value) in &defaults.config {
            if let Err(why) = topic_config::check(key, value) {
                errors.push(FieldError::new(
                    format!("spec.topicDefaults.config.{key}"),
                    why,
                ));
            }
        }
        for (key, why) in topic_config::check_together(&defaults.config) {
            errors.push(FieldError::new(
                format!("spec.topicDefaults.config.{key}"),
                why,
            ));
        }
    }
    errors
}

fn check_credential(
    path: &str,
    source: &CredentialSource,
    inline_allowed: bool,
    errors: &mut Vec<FieldError>,
) {
    let set = [
        source.value.is_some(),
        source.secret_key_ref.is_some(),
        source.file.is_some(),
    ]
    .iter()
    .filter(|s| **s)
    .count();
    if set != 1 {
        errors.push(FieldError::new(
            path,
            format!("set exactly one of value, secretKeyRef, file (found {set})"),
        ));
    }
    if source.value.is_some() && !inline_allowed {
        errors.push(FieldError::new(
            format!("{path}.value"),
            "secrets must not be inline: use secretKeyRef or file",
        ));
    }
    // The reference is read by the operator and handed to the workloads' pods, whose
    // Deployments the API server refuses with an invalid one. What was written is not
    // repeated: in a credential's place it may be the credential itself, pasted by mistake.
    if let Some(secret) = &source.secret_key_ref {
        if let Err(why) = DnsSubdomain::parse(&secret.name) {
            errors.push(FieldError::new(
                format!("{path}.secretKeyRef.name"),
                format!("not a valid Secret name: {why}"),
            ));
        }
        if let Err(why) = DataKey::parse(&secret.key) {
            errors.push(FieldError::new(
                format!("{path}.secretKeyRef.key"),
                format!("not a valid key of a Secret: {why}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{KafkaClusterSpec, SaslMechanism, SaslSpec, SecretKeySelector};

    fn sasl_from(name: &str, key: &str) -> KafkaCluster {
        let secret = CredentialSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
            }),
            ..Default::default()
        };
        KafkaCluster::new(
            "prod",
            KafkaClusterSpec {
                bootstrap_servers: vec!["kafka-0:9093".into()],
                tls: None,
                sasl: Some(SaslSpec {
                    mechanism: SaslMechanism::ScramSha512,
                    username: secret.clone(),
                    password: secret,
                }),
                client_config: BTreeMap::new(),
                request_timeout_seconds: None,
                topic_defaults: None,
            },
        )
    }

    #[test]
    fn secret_references_are_kubernetes_names() {
        assert!(validate_cluster(&sasl_from("kafka.credentials", "password")).is_empty());
        let errors: Vec<String> = validate_cluster(&sasl_from("kafka..credentials", ".."))
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errors[..2],
            [
                "spec.sasl.username.secretKeyRef.name: not a valid Secret name: contains \"..\"; every '.'-separated part needs at least one letter or digit",
                "spec.sasl.username.secretKeyRef.key: not a valid key of a Secret: must not be '.' or begin with '..'",
            ]
        );
        assert_eq!(errors.len(), 4, "the password's reference too: {errors:?}");
    }
}
