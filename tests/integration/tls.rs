//! TLS end to end through the CLI: a broker behind stunnel (`support::tls`), certificates made
//! by the test. With the CA the broker's certificate verifies and a topic is created; mutual
//! TLS connects with the client certificate and is refused without one; a wrong CA is refused.
//! Every refusal says what is wrong in terms of `spec.tls`. (The operator's side, with the
//! credentials in Secrets, and the workloads' environment: `e2e::tls`.)

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::broker::unique;
use crate::support::tls::{certs, tls_broker, Mode};
use tributary::api::KafkaCluster;
use tributary::kafka::{BrokerAdmin, ClientSettings, FileSecrets, RdKafkaAdmin};

/// A KafkaCluster named `local` reaching `bootstrap` with TLS, its credentials as files.
pub fn cluster_yaml(bootstrap: &str, ca: &Path, client: bool) -> String {
    let c = certs();
    let mut yaml = format!(
        "apiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata:\n  name: local\nspec:\n  bootstrapServers: [\"{bootstrap}\"]\n  requestTimeoutSeconds: 5\n  tls:\n    caCert: {{file: \"{}\"}}\n",
        ca.display()
    );
    if client {
        yaml.push_str(&format!(
            "    clientCert: {{file: \"{}\"}}\n    clientKey: {{file: \"{}\"}}\n",
            c.client_cert.display(),
            c.client_key.display()
        ));
    }
    yaml
}

/// An admin client with the settings of [`cluster_yaml`], as the operator builds them.
pub async fn admin(bootstrap: &str, client: bool) -> RdKafkaAdmin {
    let cluster: KafkaCluster =
        serde_saphyr::from_str(&cluster_yaml(bootstrap, &certs().ca, client)).unwrap();
    let settings = ClientSettings::for_cluster(&cluster, &FileSecrets)
        .await
        .unwrap();
    assert_eq!(settings.properties["security.protocol"], "ssl");
    RdKafkaAdmin::connect(&settings).unwrap()
}

/// `tributary apply` of one topic of 2 partitions through the cluster of [`cluster_yaml`]:
/// exit code, stdout, stderr.
fn apply_topic(topic: &str, cluster: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let cluster_file = dir.path().join("cluster.yaml");
    std::fs::write(&cluster_file, cluster).unwrap();
    let topic_file = dir.path().join("topic.yaml");
    std::fs::write(
        &topic_file,
        format!("apiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: {topic}\nspec:\n  clusterRef: local\n  partitions: 2\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tributary"))
        .args(["apply", "-f"])
        .arg(&topic_file)
        .arg("--cluster")
        .arg(&cluster_file)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_creates_a_topic_through_tls_with_the_ca() {
    let Some(broker) = tls_broker(
        Mode::ServerOnly,
        "tls::the_cli_creates_a_topic_through_tls_with_the_ca",
    ) else {
        return;
    };
    let topic = unique("tls-orders");
    let (code, stdout, stderr) =
        apply_topic(&topic, &cluster_yaml(&broker.bootstrap, &certs().ca, false));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("+ create {topic}: partitions=2")),
        "{stdout}"
    );
    let seen = admin(&broker.bootstrap, false)
        .await
        .snapshot(std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(seen.topics[&topic].partitions, 2, "created on the broker");
}

#[tokio::test]
async fn mutual_tls_connects_with_the_client_certificate() {
    let Some(broker) = tls_broker(
        Mode::Mutual,
        "tls::mutual_tls_connects_with_the_client_certificate",
    ) else {
        return;
    };
    let topic = unique("mtls-orders");
    let (code, stdout, stderr) =
        apply_topic(&topic, &cluster_yaml(&broker.bootstrap, &certs().ca, true));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let seen = admin(&broker.bootstrap, true)
        .await
        .snapshot(std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert_eq!(seen.topics[&topic].partitions, 2, "created on the broker");
}

#[tokio::test]
async fn mutual_tls_refuses_a_client_without_a_certificate_and_says_so() {
    let Some(broker) = tls_broker(
        Mode::Mutual,
        "tls::mutual_tls_refuses_a_client_without_a_certificate_and_says_so",
    ) else {
        return;
    };
    let topic = unique("mtls-refused");
    let started = std::time::Instant::now();
    let (code, stdout, stderr) =
        apply_topic(&topic, &cluster_yaml(&broker.bootstrap, &certs().ca, false));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("TLS handshake failed: {}: the broker requires a client certificate: set spec.tls.clientCert and spec.tls.clientKey", broker.bootstrap)),
        "{stderr}"
    );
    assert!(
        stderr.contains("certificate required"),
        "OpenSSL's words follow: {stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The terminator's side of it.
    assert!(
        broker
            .log_text()
            .contains("peer did not return a certificate"),
        "{}",
        broker.log_text()
    );
    let seen = admin(&broker.bootstrap, true)
        .await
        .snapshot(std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert!(!seen.topics.contains_key(&topic), "nothing was created");
}

#[tokio::test]
async fn a_wrong_ca_is_refused_naming_certificate_verification() {
    let Some(broker) = tls_broker(
        Mode::ServerOnly,
        "tls::a_wrong_ca_is_refused_naming_certificate_verification",
    ) else {
        return;
    };
    let topic = unique("tls-wrong-ca");
    let (code, stdout, stderr) = apply_topic(
        &topic,
        &cluster_yaml(&broker.bootstrap, &certs().wrong_ca, false),
    );
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("TLS handshake failed: {}: the broker's certificate could not be verified: it is not signed by spec.tls.caCert", broker.bootstrap)),
        "{stderr}"
    );
    assert!(stderr.contains("certificate verify failed"), "{stderr}");
}
