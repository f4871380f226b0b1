//! Client settings for librdkafka from a `KafkaCluster`: plaintext, TLS (CA, client cert),
//! SASL PLAIN / SCRAM-SHA-256 / SCRAM-SHA-512, with credentials read from files or Secrets.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;

use super::BrokerError;
use crate::api::{CredentialSource, KafkaCluster};

/// How long any one broker request may take unless the cluster says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A value that must never be printed or logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(String);

impl Sensitive {
    pub fn new(value: impl Into<String>) -> Self {
        Sensitive(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Reads one key of one Secret.
pub trait SecretReader: Send + Sync {
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// Reads Secrets through the Kubernetes API.
pub struct KubeSecrets(pub kube::Client);

impl SecretReader for KubeSecrets {
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let secret = Api::<Secret>::namespaced(self.0.clone(), namespace)
                .get(name)
                .await
                .map_err(|e| format!("cannot read Secret {namespace}/{name}: {e}"))?;
            let bytes = secret
                .data
                .as_ref()
                .and_then(|d| d.get(key))
                .map(|b| b.0.clone())
                .or_else(|| {
                    secret
                        .string_data
                        .as_ref()
                        .and_then(|d| d.get(key))
                        .map(|s| s.clone().into_bytes())
                })
                .ok_or_else(|| format!("Secret {namespace}/{name} has no key '{key}'"))?;
            String::from_utf8(bytes)
                .map_err(|_| format!("Secret {namespace}/{name} key '{key}' is not UTF-8"))
        }
        .boxed()
    }
}

/// For use outside a cluster: there are no Secrets to read, only files.
pub struct FileSecrets;

impl SecretReader for FileSecrets {
    fn read<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        _key: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        async move {
            Err(format!(
                "Secret {namespace}/{name} cannot be read without a Kubernetes connection; use `file:` credentials or pass --kube-secrets"
            ))
        }
        .boxed()
    }
}

/// Everything needed to open a client, secrets included (never printed).
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub bootstrap_servers: String,
    pub timeout: Duration,
    /// librdkafka properties that carry no secret.
    pub properties: BTreeMap<String, String>,
    /// librdkafka properties that carry a secret (password, private key).
    pub secret_properties: BTreeMap<String, Sensitive>,
}

impl ClientSettings {
    /// Plaintext to the given bootstrap servers.
    pub fn plaintext(bootstrap_servers: &str, timeout: Duration) -> Self {
        let mut properties = BTreeMap::new();
        properties.insert("security.protocol".into(), "plaintext".into());
        Self {
            bootstrap_servers: bootstrap_servers.to_owned(),
            timeout,
            properties,
            secret_properties: BTreeMap::new(),
        }
    }

    /// Settings for a validated `KafkaCluster`; Secrets are read from the cluster's namespace.
    pub async fn for_cluster(
        cluster: &KafkaCluster,
        secrets: &dyn SecretReader,
    ) -> Result<Self, BrokerError> {
        let spec = &cluster.spec;
        let namespace = cluster.metadata.namespace.as_deref().unwrap_or("default");
        let timeout = spec
            .request_timeout_seconds
            .map(|s| Duration::from_secs(s.max(1) as u64))
            .unwrap_or(DEFAULT_TIMEOUT);
        let mut settings = Self::plaintext(&spec.bootstrap_servers.join(","), timeout);
        for (k, v) in &spec.client_config {
            settings.properties.insert(k.clone(), v.clone());
        }
        let protocol = match (spec.tls.is_some(), spec.sasl.is_some()) {
            (false, false) => "plaintext",
            (true, false) => "ssl",
            (false, true) => "sasl_plaintext",
            (true, true) => "sasl_ssl",
        };
        settings
            .properties
            .insert("security.protocol".into(), protocol.into());
        if let Some(tls) = &spec.tls {
            if let Some(ca) = &tls.ca_cert {
                let pem = resolve(ca, "spec.tls.caCert", namespace, secrets).await?;
                settings.properties.insert("ssl.ca.pem".into(), pem);
            }
            if let Some(cert) = &tls.client_cert {
                let pem = resolve(cert, "spec.tls.clientCert", namespace, secrets).await?;
                settings
                    .properties
                    .insert("ssl.certificate.pem".into(), pem);
            }
            if let Some(key) = &tls.client_key {
                let pem = resolve(key, "spec.tls.clientKey", namespace, secrets).await?;
                settings
                    .secret_properties
                    .insert("ssl.key.pem".into(), Sensitive(pem));
            }
        }
        if let Some(sasl) = &spec.sasl {
            settings
                .properties
                .insert("sasl.mechanisms".into(), sasl.mechanism.as_str().into());
            let user = resolve(&sasl.username, "spec.sasl.username", namespace, secrets).await?;
            settings.properties.insert("sasl.username".into(), user);
            let password =
                resolve(&sasl.password, "spec.sasl.password", namespace, secrets).await?;
            settings
                .secret_properties
                .insert("sasl.password".into(), Sensitive(password));
        }
        Ok(settings)
    }
}

/// What a connection error librdkafka reported means for `spec.tls`, when it is a TLS
/// failure: `None` for anything else. librdkafka's (OpenSSL's) own words follow it in the
/// message, so the plain explanation comes first.
pub(super) fn explain_tls_failure(error: &str) -> Option<&'static str> {
    let e = error.to_ascii_lowercase();
    let tls = e.contains("ssl") || e.contains("tls");
    if !tls {
        return None;
    }
    Some(if e.contains("certificate verify failed") {
        "the broker's certificate could not be verified: it is not signed by spec.tls.caCert (without caCert: by the system's CAs), or it does not name the address in spec.bootstrapServers"
    } else if e.contains("certificate required") {
        "the broker requires a client certificate: set spec.tls.clientCert and spec.tls.clientKey"
    } else if e.contains("unknown ca")
        || e.contains("bad certificate")
        || e.contains("certificate unknown")
        || e.contains("unsupported certificate")
    {
        "the broker refused the client certificate (spec.tls.clientCert): it is not signed by a CA the broker trusts, or is not meant for clients"
    } else if e.contains("wrong version number") || e.contains("packet length too long") {
        "the broker did not answer in TLS: spec.bootstrapServers names a plaintext listener (use its TLS port, or remove spec.tls)"
    } else if e.contains("handshake") || e.contains("alert") || e.contains("ssl routines") {
        "the TLS handshake with the broker failed"
    } else {
        return None;
    })
}

async fn resolve(
    source: &CredentialSource,
    path: &str,
    namespace: &str,
    secrets: &dyn SecretReader,
) -> Result<String, BrokerError> {
    let value = if let Some(v) = &source.value {
        v.clone()
    } else if let Some(r) = &source.secret_key_ref {
        secrets
            .read(namespace, &r.name, &r.key)
            .await
            .map_err(|e| BrokerError::Credentials(format!("{path}.secretKeyRef: {e}")))?
    } else if let Some(file) = &source.file {
        tokio::fs::read_to_string(file).await.map_err(|e| {
            BrokerError::Credentials(format!("{path}.file: cannot read '{file}': {e}"))
        })?
    } else {
        return Err(BrokerError::Credentials(format!(
            "{path}: set one of value, secretKeyRef, file"
        )));
    };
    // Files and Secrets created with `echo` end in a newline that is not part of a password.
    Ok(value.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{KafkaClusterSpec, SaslMechanism, SaslSpec, SecretKeySelector, TlsSpec};

    struct MapSecrets(BTreeMap<(String, String, String), String>);

    impl SecretReader for MapSecrets {
        fn read<'a>(
            &'a self,
            ns: &'a str,
            name: &'a str,
            key: &'a str,
        ) -> BoxFuture<'a, Result<String, String>> {
            let got = self
                .0
                .get(&(ns.into(), name.into(), key.into()))
                .cloned()
                .ok_or_else(|| format!("Secret {ns}/{name} has no key '{key}'"));
            async move { got }.boxed()
        }
    }

    fn cluster(spec: KafkaClusterSpec) -> KafkaCluster {
        let mut c = KafkaCluster::new("prod", spec);
        c.metadata.namespace = Some("booking".into());
        c
    }

    fn base() -> KafkaClusterSpec {
        KafkaClusterSpec {
            bootstrap_servers: vec!["kafka-0:9093".into(), "kafka-1:9093".into()],
            tls: None,
            sasl: None,
            client_config: BTreeMap::new(),
            request_timeout_seconds: None,
            topic_defaults: None,
        }
    }

    /// librdkafka's messages, as it reported them against stunnel (see tests/support/tls.rs).
    #[test]
    fn tls_failures_are_explained_in_terms_of_the_spec() {
        let wrong_ca = "ssl://127.0.0.1:39093/bootstrap: SSL handshake failed: error:0A000086:SSL routines::certificate verify failed: broker certificate could not be verified, verify that ssl.ca.location is correctly configured or root CA certificates are installed (install ca-certificates package) (after 1ms in state SSL_HANDSHAKE)";
        assert!(explain_tls_failure(wrong_ca)
            .unwrap()
            .contains("not signed by spec.tls.caCert"));
        let no_client_cert = "ssl://127.0.0.1:39093/bootstrap: Receive failed: error:0A00045C:SSL routines::tlsv13 alert certificate required: SSL alert number 116 (after 4ms in state APIVERSION_QUERY)";
        assert!(explain_tls_failure(no_client_cert)
            .unwrap()
            .contains("requires a client certificate"));
        let refused = "ssl://127.0.0.1:39093/bootstrap: SSL handshake failed: error:0A000418:SSL routines::tlsv1 alert unknown ca: SSL alert number 48";
        assert!(explain_tls_failure(refused)
            .unwrap()
            .contains("refused the client certificate"));
        assert_eq!(
            explain_tls_failure(
                "127.0.0.1:9/bootstrap: Connect to ipv4#127.0.0.1:9 failed: Connection refused"
            ),
            None
        );
    }

    #[tokio::test]
    async fn plaintext() {
        let s = ClientSettings::for_cluster(&cluster(base()), &FileSecrets)
            .await
            .unwrap();
        assert_eq!(s.bootstrap_servers, "kafka-0:9093,kafka-1:9093");
        assert_eq!(s.properties["security.protocol"], "plaintext");
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    }

    #[tokio::test]
    async fn sasl_scram_over_tls_from_secret_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(
            &ca,
            "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let mut spec = base();
        spec.tls = Some(TlsSpec {
            ca_cert: Some(CredentialSource {
                file: Some(ca.display().to_string()),
                ..Default::default()
            }),
            ..Default::default()
        });
        spec.sasl = Some(SaslSpec {
            mechanism: SaslMechanism::ScramSha512,
            username: CredentialSource {
                value: Some("booking-svc".into()),
                ..Default::default()
            },
            password: CredentialSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "kafka-creds".into(),
                    key: "password".into(),
                }),
                ..Default::default()
            },
        });
        spec.request_timeout_seconds = Some(3);
        let secrets = MapSecrets(BTreeMap::from([(
            ("booking".into(), "kafka-creds".into(), "password".into()),
            "s3cret\n".into(),
        )]));
        let s = ClientSettings::for_cluster(&cluster(spec), &secrets)
            .await
            .unwrap();
        assert_eq!(s.properties["security.protocol"], "sasl_ssl");
        assert_eq!(s.properties["sasl.mechanisms"], "SCRAM-SHA-512");
        assert_eq!(s.properties["sasl.username"], "booking-svc");
        assert!(s.properties["ssl.ca.pem"].starts_with("-----BEGIN CERTIFICATE-----"));
        assert_eq!(s.secret_properties["sasl.password"].expose(), "s3cret");
        assert_eq!(s.timeout, Duration::from_secs(3));
        assert!(
            !format!("{s:?}").contains("s3cret"),
            "secrets must never be printed"
        );
    }

    #[tokio::test]
    async fn missing_secret_names_the_field() {
        let mut spec = base();
        spec.sasl = Some(SaslSpec {
            mechanism: SaslMechanism::Plain,
            username: CredentialSource {
                value: Some("u".into()),
                ..Default::default()
            },
            password: CredentialSource {
                secret_key_ref: Some(SecretKeySelector {
                    name: "nope".into(),
                    key: "password".into(),
                }),
                ..Default::default()
            },
        });
        let e = ClientSettings::for_cluster(&cluster(spec), &MapSecrets(BTreeMap::new()))
            .await
            .unwrap_err();
        assert_eq!(e.reason(), "CredentialsUnavailable");
        assert!(
            e.to_string().contains(
                "spec.sasl.password.secretKeyRef: Secret booking/nope has no key 'password'"
            ),
            "{e}"
        );
    }

    #[tokio::test]
    async fn tls_with_client_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "CERT").unwrap();
        std::fs::write(&key, "KEY").unwrap();
        let mut spec = base();
        spec.tls = Some(TlsSpec {
            ca_cert: None,
            client_cert: Some(CredentialSource {
                file: Some(cert.display().to_string()),
                ..Default::default()
            }),
            client_key: Some(CredentialSource {
                file: Some(key.display().to_string()),
                ..Default::default()
            }),
        });
        let s = ClientSettings::for_cluster(&cluster(spec), &FileSecrets)
            .await
            .unwrap();
        assert_eq!(s.properties["security.protocol"], "ssl");
        assert_eq!(s.properties["ssl.certificate.pem"], "CERT");
        assert_eq!(s.secret_properties["ssl.key.pem"].expose(), "KEY");
        assert!(!s.properties.contains_key("ssl.ca.pem"));
    }
}
