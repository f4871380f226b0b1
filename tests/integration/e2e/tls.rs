//! TLS end to end through the operator: KafkaClusters whose `spec.tls` credentials are Secrets,
//! in front of the brokers of `support::tls` (Tansu behind stunnel). A cluster with `caCert`
//! connects and its topics are created; so does one with mutual TLS; a wrong CA, and mutual
//! TLS without a client certificate, are refused with the reason in the cluster's status. The
//! workloads' Deployments carry the TLS settings as Secret references, and a client built
//! from exactly that environment (as the pods would) produces and consumes through TLS.

use super::*;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::support::broker::unique;
use crate::support::scenarios::spec;
use crate::support::tls::{certs, tls_broker, Certs, Mode};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{EnvVar, Secret};
use k8s_openapi::ByteString;
use serde_json::json;
use tributary::api::{ConditionStatus, KafkaClusterStatus};
use tributary::kafka::BrokerAdmin;

const TLS_SECRET: &str = "kafka-tls";

/// The Secret the clusters' credentials come from: `ca.crt`, `wrong-ca.crt`, `tls.crt`,
/// `tls.key`.
async fn create_tls_secret(env: &Env) {
    let c = certs();
    let data: BTreeMap<String, ByteString> = [
        ("ca.crt", &c.ca),
        ("wrong-ca.crt", &c.wrong_ca),
        ("tls.crt", &c.client_cert),
        ("tls.key", &c.client_key),
    ]
    .into_iter()
    .map(|(k, p)| (k.to_owned(), ByteString(Certs::read(p).into_bytes())))
    .collect();
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(TLS_SECRET.into()),
            namespace: Some(NAMESPACE.into()),
            ..Default::default()
        },
        data: Some(data),
        ..Default::default()
    };
    let api: kube::Api<Secret> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    api.create(&Default::default(), &secret).await.unwrap();
}

/// A KafkaCluster reaching `bootstrap` with the CA of key `ca_key` and, with `client`, the
/// client certificate and key, all from [`TLS_SECRET`].
async fn create_cluster(env: &Env, name: &str, bootstrap: &str, ca_key: &str, client: bool) {
    let reference = |key: &str| json!({"secretKeyRef": {"name": TLS_SECRET, "key": key}});
    let mut tls = json!({"caCert": reference(ca_key)});
    if client {
        tls["clientCert"] = reference("tls.crt");
        tls["clientKey"] = reference("tls.key");
    }
    let cluster: tributary::api::KafkaCluster = serde_json::from_value(json!({
        "apiVersion": "tributary.io/v1alpha1", "kind": "KafkaCluster",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"bootstrapServers": [bootstrap], "requestTimeoutSeconds": 3, "tls": tls}
    }))
    .unwrap();
    env.clusters()
        .create(&Default::default(), &cluster)
        .await
        .unwrap();
}

async fn cluster_status(env: &Env, name: &str) -> Option<KafkaClusterStatus> {
    env.clusters()
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.status)
}

fn condition(
    status: &KafkaClusterStatus,
    type_: &str,
) -> Option<(ConditionStatus, String, String)> {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.reason.clone(), c.message.clone()))
}

/// `caCert` alone, and mutual TLS: each cluster is Connected and a KafkaTopic on it is created
/// on the broker behind stunnel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clusters_with_tls_connect_and_their_topics_are_created() {
    let test = "e2e::tls::clusters_with_tls_connect_and_their_topics_are_created";
    let (Some(server_only), Some(mutual)) = (
        tls_broker(Mode::ServerOnly, test),
        tls_broker(Mode::Mutual, test),
    ) else {
        return;
    };
    let r = start().await;
    let env = &r.env;
    create_tls_secret(env).await;
    for (cluster, broker, client) in [("tls", server_only, false), ("mtls", mutual, true)] {
        create_cluster(env, cluster, &broker.bootstrap, "ca.crt", client).await;
        env.eventually("the cluster is Connected through TLS", || async {
            cluster_status(env, cluster).await.is_some_and(|s| {
                condition(&s, "Ready").is_some_and(|(s, reason, _)| {
                    s == ConditionStatus::True && reason == "Connected"
                })
            })
        })
        .await;
        let topic = unique(&format!("{cluster}-payments"));
        env.create_topic(&topic, spec(cluster, 3, &[])).await;
        env.eventually("the topic is Ready", || async {
            matches!(env.ready(&topic).await, Some((ConditionStatus::True, _, _)))
        })
        .await;
        let seen = crate::tls::admin(&broker.bootstrap, client)
            .await
            .snapshot(std::slice::from_ref(&topic))
            .await
            .unwrap();
        assert_eq!(
            seen.topics[&topic].partitions, 3,
            "{cluster}: created on the broker"
        );
    }
    r.stop().await;
}

/// A CA that did not sign the broker's certificate, and mutual TLS without a client
/// certificate: Ready=False, Stalled, reason `TlsHandshakeFailed`, and a message that says what
/// to fix in `spec.tls`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_ca_or_a_missing_client_certificate_is_reported_with_the_reason() {
    let test = "e2e::tls::a_wrong_ca_or_a_missing_client_certificate_is_reported_with_the_reason";
    let (Some(server_only), Some(mutual)) = (
        tls_broker(Mode::ServerOnly, test),
        tls_broker(Mode::Mutual, test),
    ) else {
        return;
    };
    let r = start().await;
    let env = &r.env;
    create_tls_secret(env).await;
    create_cluster(
        env,
        "wrong-ca",
        &server_only.bootstrap,
        "wrong-ca.crt",
        false,
    )
    .await;
    create_cluster(env, "no-client-cert", &mutual.bootstrap, "ca.crt", false).await;
    for (cluster, broker, expected) in [
        (
            "wrong-ca",
            server_only,
            "the broker's certificate could not be verified: it is not signed by spec.tls.caCert",
        ),
        (
            "no-client-cert",
            mutual,
            "the broker requires a client certificate: set spec.tls.clientCert and spec.tls.clientKey",
        ),
    ] {
        env.eventually("the refusal is in the status", || async {
            cluster_status(env, cluster)
                .await
                .is_some_and(|s| condition(&s, "Ready").is_some_and(|(_, r, _)| r == "TlsHandshakeFailed"))
        })
        .await;
        let status = cluster_status(env, cluster).await.unwrap();
        let (ready, _, message) = condition(&status, "Ready").unwrap();
        assert_eq!(ready, ConditionStatus::False);
        assert!(
            message.starts_with(&format!("TLS handshake failed: {}: {expected}", broker.bootstrap)),
            "{cluster}: {message}"
        );
        assert!(
            message.contains("certificate verify failed") || message.contains("certificate required"),
            "{cluster}: OpenSSL's words follow: {message}"
        );
        let (stalled, reason, _) = condition(&status, "Stalled").unwrap();
        assert_eq!(
            (stalled, reason.as_str()),
            (ConditionStatus::True, "TlsHandshakeFailed"),
            "{cluster}: a setting to fix, not a passing outage"
        );
    }
    r.stop().await;
}

/// The value of each variable of a container, with `secretKeyRef`s read from the namespace's
/// Secrets, as the kubelet would give it to the pod.
async fn pod_environment(env: &Env, deployment: &Deployment) -> BTreeMap<String, String> {
    let secrets: kube::Api<Secret> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    let container = &deployment.spec.template.spec.as_ref().unwrap().containers[0];
    let mut values = BTreeMap::new();
    for EnvVar {
        name,
        value,
        value_from,
    } in container.env.clone().unwrap_or_default()
    {
        let value = match (value, value_from.and_then(|f| f.secret_key_ref)) {
            (Some(v), _) => v,
            (None, Some(r)) => {
                let secret = secrets.get(&r.name).await.unwrap();
                let bytes = secret.data.unwrap()[&r.key].0.clone();
                String::from_utf8(bytes).unwrap()
            }
            (None, None) => continue,
        };
        values.insert(name, value);
    }
    values
}

/// librdkafka settings from a pod's environment, as an application would map them.
fn client_config(pod: &BTreeMap<String, String>) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    for (variable, property) in [
        ("KAFKA_BOOTSTRAP_SERVERS", "bootstrap.servers"),
        ("KAFKA_SECURITY_PROTOCOL", "security.protocol"),
        ("KAFKA_SSL_CA_PEM", "ssl.ca.pem"),
        ("KAFKA_SSL_CERTIFICATE_PEM", "ssl.certificate.pem"),
        ("KAFKA_SSL_KEY_PEM", "ssl.key.pem"),
        ("KAFKA_GROUP_ID", "group.id"),
    ] {
        if let Some(v) = pod.get(variable) {
            config.set(property, v);
        }
    }
    config
}

/// A producer and a consumer on a mutual-TLS cluster: their Deployments reference the CA, the
/// client certificate and the key in the cluster's Secret (never the PEM itself), with
/// protocol `SSL`; a client made from the producer's environment writes through TLS and one
/// made from the consumer's environment reads it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workloads_get_the_tls_settings_and_they_connect() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::Message;
    let test = "e2e::tls::workloads_get_the_tls_settings_and_they_connect";
    let Some(broker) = tls_broker(Mode::Mutual, test) else {
        return;
    };
    let r = start().await;
    let env = &r.env;
    create_tls_secret(env).await;
    create_cluster(env, "mtls", &broker.bootstrap, "ca.crt", true).await;
    let topic = unique("tls-rides");
    env.create_topic(&topic, spec("mtls", 1, &[])).await;
    let producer_name = unique("ride-service");
    let consumer_name = unique("ride-matcher");
    let producers: kube::Api<tributary::api::KafkaProducer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    producers
        .create(
            &Default::default(),
            &producer(&producer_name, "mtls", &[&topic]),
        )
        .await
        .unwrap();
    let mut matcher = consumer(&consumer_name, &[&topic], json!({"replicas": 1}));
    matcher.spec.cluster_ref = "mtls".into();
    let consumers: kube::Api<tributary::api::KafkaConsumer> =
        kube::Api::namespaced(env.client.clone(), NAMESPACE);
    consumers
        .create(&Default::default(), &matcher)
        .await
        .unwrap();
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(env.client.clone(), NAMESPACE);
    env.eventually("both Deployments are rolled out", || async {
        deployments.get_opt(&producer_name).await.unwrap().is_some()
            && deployments.get_opt(&consumer_name).await.unwrap().is_some()
    })
    .await;

    for name in [&producer_name, &consumer_name] {
        let d = deployments.get(name).await.unwrap();
        let container = &d.spec.template.spec.as_ref().unwrap().containers[0];
        let vars: BTreeMap<String, &EnvVar> = container
            .env
            .as_ref()
            .unwrap()
            .iter()
            .map(|e| (e.name.clone(), e))
            .collect();
        assert_eq!(
            vars["KAFKA_SECURITY_PROTOCOL"].value.as_deref(),
            Some("SSL"),
            "{name}"
        );
        assert_eq!(
            vars["KAFKA_BOOTSTRAP_SERVERS"].value.as_deref(),
            Some(broker.bootstrap.as_str()),
            "{name}"
        );
        for (variable, key) in [
            ("KAFKA_SSL_CA_PEM", "ca.crt"),
            ("KAFKA_SSL_CERTIFICATE_PEM", "tls.crt"),
            ("KAFKA_SSL_KEY_PEM", "tls.key"),
        ] {
            let var = vars[variable];
            assert_eq!(var.value, None, "{name}: {variable} is never inlined");
            let reference = var
                .value_from
                .as_ref()
                .and_then(|f| f.secret_key_ref.as_ref())
                .unwrap_or_else(|| panic!("{name}: {variable} comes from a Secret"));
            assert_eq!(
                (reference.name.as_str(), reference.key.as_str()),
                (TLS_SECRET, key),
                "{name}: {variable}"
            );
        }
        assert!(
            !vars.contains_key("KAFKA_SASL_MECHANISM"),
            "{name}: no SASL"
        );
    }

    // Be the pods: clients from exactly the Deployments' environment.
    let producer_env = pod_environment(env, &deployments.get(&producer_name).await.unwrap()).await;
    let consumer_env = pod_environment(env, &deployments.get(&consumer_name).await.unwrap()).await;
    assert_eq!(consumer_env["KAFKA_GROUP_ID"], consumer_name);
    let writer: FutureProducer = client_config(&producer_env).create().unwrap();
    writer
        .send(
            FutureRecord::to(&topic).key("ride-1").payload("requested"),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("the producer's environment reaches the broker through TLS");
    let topic_name = topic.clone();
    let (key, payload) = tokio::task::spawn_blocking(move || {
        let reader: BaseConsumer = client_config(&consumer_env)
            .set("auto.offset.reset", "earliest")
            .create()
            .unwrap();
        reader.subscribe(&[&topic_name]).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            assert!(
                std::time::Instant::now() < deadline,
                "nothing read through TLS"
            );
            if let Some(m) = reader.poll(Duration::from_millis(200)) {
                let m = m.expect("the consumer's environment reaches the broker through TLS");
                return (
                    String::from_utf8_lossy(m.key().unwrap()).into_owned(),
                    String::from_utf8_lossy(m.payload().unwrap()).into_owned(),
                );
            }
        }
    })
    .await
    .unwrap();
    assert_eq!((key.as_str(), payload.as_str()), ("ride-1", "requested"));
    r.stop().await;
}
