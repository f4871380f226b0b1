//! What a workload needs to know to reach its `KafkaCluster`: addresses, protocol, mechanism
//! and *references* to the Secrets holding credentials. Secret values never pass through here;
//! the pods read them through `valueFrom.secretKeyRef`.

use crate::api::{CredentialSource, KafkaCluster, SaslMechanism, SecretKeySelector};
use crate::clusters::validate_cluster;
use crate::model::FieldError;

use super::hash::StableHasher;

/// Kafka's `security.protocol`, as clients spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// A credential a pod can be given: a literal (only for non-secrets such as a user name) or a
/// key of a Secret in the workload's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Value(String),
    Secret(SecretKeySelector),
}

/// TLS material the pods get, each from a Secret; `None` fields are not used (e.g. no
/// `caCert`: the system roots).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsRefs {
    pub ca_cert: Option<SecretKeySelector>,
    pub client_cert: Option<SecretKeySelector>,
    pub client_key: Option<SecretKeySelector>,
}

/// SASL settings the pods get; the password always comes from a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslRefs {
    pub mechanism: SaslMechanism,
    pub username: Credential,
    pub password: SecretKeySelector,
}

/// The connection facts of one `KafkaCluster`, as workloads receive them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionFacts {
    /// `host:port` of each bootstrap broker, in the cluster's order.
    pub bootstrap_servers: Vec<String>,
    /// `Some` for TLS (protocol `SSL` / `SASL_SSL`).
    pub tls: Option<TlsRefs>,
    /// `Some` for SASL (protocol `SASL_PLAINTEXT` / `SASL_SSL`).
    pub sasl: Option<SaslRefs>,
}

impl ConnectionFacts {
    /// Plaintext, no authentication.
    pub fn plaintext(bootstrap_servers: &[&str]) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.iter().map(|s| (*s).to_owned()).collect(),
            tls: None,
            sasl: None,
        }
    }

    /// The facts of a `KafkaCluster`: its own validation, plus what only workloads need: every
    /// credential must be a Secret reference (or a literal user name). A `file:` credential
    /// is a path on the operator's or the CLI's machine and cannot be handed to a pod.
    pub fn from_cluster(cluster: &KafkaCluster) -> Result<Self, Vec<FieldError>> {
        let mut errors = validate_cluster(cluster);
        let spec = &cluster.spec;
        let mut secret = |path: &str, source: &CredentialSource| -> Option<SecretKeySelector> {
            if let Some(file) = &source.file {
                errors.push(FieldError::new(
                    format!("{path}.file"),
                    format!("'{file}' is a file of the operator, which workloads cannot read: use secretKeyRef to let consumers and producers connect"),
                ));
            }
            source.secret_key_ref.clone()
        };
        let tls = spec.tls.as_ref().map(|tls| TlsRefs {
            ca_cert: tls
                .ca_cert
                .as_ref()
                .and_then(|s| secret("spec.tls.caCert", s)),
            client_cert: tls
                .client_cert
                .as_ref()
                .and_then(|s| secret("spec.tls.clientCert", s)),
            client_key: tls
                .client_key
                .as_ref()
                .and_then(|s| secret("spec.tls.clientKey", s)),
        });
        let sasl = spec.sasl.as_ref().and_then(|sasl| {
            let username = match &sasl.username.value {
                Some(v) => Some(Credential::Value(v.clone())),
                None => secret("spec.sasl.username", &sasl.username).map(Credential::Secret),
            };
            let password = secret("spec.sasl.password", &sasl.password);
            Some(SaslRefs {
                mechanism: sasl.mechanism,
                username: username?,
                password: password?,
            })
        });
        if errors.is_empty() {
            Ok(Self {
                bootstrap_servers: spec.bootstrap_servers.clone(),
                tls,
                sasl,
            })
        } else {
            Err(errors)
        }
    }

    pub fn security_protocol(&self) -> SecurityProtocol {
        match (self.tls.is_some(), self.sasl.is_some()) {
            (false, false) => SecurityProtocol::Plaintext,
            (true, false) => SecurityProtocol::Ssl,
            (false, true) => SecurityProtocol::SaslPlaintext,
            (true, true) => SecurityProtocol::SaslSsl,
        }
    }

    /// Bootstrap servers as clients take them: comma-separated.
    pub fn bootstrap_list(&self) -> String {
        self.bootstrap_servers.join(",")
    }

    /// A stable hash (16 hex digits) of every connection setting and Secret reference. It
    /// changes exactly when one of them changes, and the pod template carries it, so such a
    /// change rolls the pods. Secret *values* are not part of it (they are not known here).
    pub fn hash(&self) -> String {
        let mut h = StableHasher::default();
        h.field("tributary.io/connection/v1");
        h.field(&self.bootstrap_list());
        h.field(self.security_protocol().as_str());
        let secret_field = |h: &mut StableHasher, what: &str, s: &Option<SecretKeySelector>| {
            h.field(what);
            match s {
                None => h.field("-"),
                Some(s) => h.field("secret").field(&s.name).field(&s.key),
            };
        };
        let tls = self.tls.clone().unwrap_or_default();
        secret_field(&mut h, "ssl.ca", &tls.ca_cert);
        secret_field(&mut h, "ssl.certificate", &tls.client_cert);
        secret_field(&mut h, "ssl.key", &tls.client_key);
        match &self.sasl {
            None => {
                h.field("sasl").field("-");
            }
            Some(sasl) => {
                h.field("sasl").field(sasl.mechanism.as_str());
                match &sasl.username {
                    Credential::Value(v) => h.field("value").field(v),
                    Credential::Secret(s) => h.field("secret").field(&s.name).field(&s.key),
                };
                secret_field(&mut h, "sasl.password", &Some(sasl.password.clone()));
            }
        }
        h.hex()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::api::{KafkaClusterSpec, SaslSpec, TlsSpec};

    fn secret(name: &str, key: &str) -> CredentialSource {
        CredentialSource {
            secret_key_ref: Some(SecretKeySelector {
                name: name.into(),
                key: key.into(),
            }),
            ..Default::default()
        }
    }

    fn cluster(tls: Option<TlsSpec>, sasl: Option<SaslSpec>) -> KafkaCluster {
        KafkaCluster::new(
            "prod",
            KafkaClusterSpec {
                bootstrap_servers: vec!["kafka-0:9093".into(), "kafka-1:9093".into()],
                tls,
                sasl,
                client_config: BTreeMap::new(),
                request_timeout_seconds: None,
                topic_defaults: None,
            },
        )
    }

    #[test]
    fn protocol_follows_tls_and_sasl() {
        let sasl = SaslSpec {
            mechanism: SaslMechanism::ScramSha512,
            username: CredentialSource {
                value: Some("svc".into()),
                ..Default::default()
            },
            password: secret("kafka-user", "password"),
        };
        let tls = TlsSpec {
            ca_cert: Some(secret("kafka-ca", "ca.crt")),
            ..Default::default()
        };
        let facts = ConnectionFacts::from_cluster(&cluster(None, None)).unwrap();
        assert_eq!(facts.security_protocol(), SecurityProtocol::Plaintext);
        assert_eq!(facts.bootstrap_list(), "kafka-0:9093,kafka-1:9093");
        let facts = ConnectionFacts::from_cluster(&cluster(Some(tls.clone()), None)).unwrap();
        assert_eq!(facts.security_protocol().as_str(), "SSL");
        let facts = ConnectionFacts::from_cluster(&cluster(None, Some(sasl.clone()))).unwrap();
        assert_eq!(facts.security_protocol().as_str(), "SASL_PLAINTEXT");
        let facts = ConnectionFacts::from_cluster(&cluster(Some(tls), Some(sasl))).unwrap();
        assert_eq!(facts.security_protocol().as_str(), "SASL_SSL");
        let sasl = facts.sasl.unwrap();
        assert_eq!(sasl.username, Credential::Value("svc".into()));
        assert_eq!(sasl.password.name, "kafka-user");
        assert_eq!(facts.tls.unwrap().ca_cert.unwrap().key, "ca.crt");
    }

    #[test]
    fn file_credentials_cannot_reach_a_pod() {
        let sasl = SaslSpec {
            mechanism: SaslMechanism::Plain,
            username: CredentialSource {
                file: Some("/etc/kafka/user".into()),
                ..Default::default()
            },
            password: CredentialSource {
                file: Some("/etc/kafka/password".into()),
                ..Default::default()
            },
        };
        let errs = ConnectionFacts::from_cluster(&cluster(None, Some(sasl))).unwrap_err();
        let paths: Vec<_> = errs.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            ["spec.sasl.username.file", "spec.sasl.password.file"]
        );
        assert_eq!(
            errs[1].to_string(),
            "spec.sasl.password.file: '/etc/kafka/password' is a file of the operator, which workloads cannot read: use secretKeyRef to let consumers and producers connect"
        );
    }

    #[test]
    fn an_invalid_cluster_is_reported_too() {
        let mut c = cluster(None, None);
        c.spec.bootstrap_servers = vec!["kafka".into()];
        let errs = ConnectionFacts::from_cluster(&c).unwrap_err();
        assert_eq!(errs[0].path, "spec.bootstrapServers[0]");
    }
}
