//! Credentials from Secrets: the exact request sent to the API server (kube with a
//! `tower-test` mock), and the connection settings built from the answer.

use std::collections::BTreeMap;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use kube::Client;
use tributary::api::{
    CredentialSource, KafkaCluster, KafkaClusterSpec, SaslMechanism, SaslSpec, SecretKeySelector,
};
use tributary::kafka::{ClientSettings, KubeSecrets};

fn cluster() -> KafkaCluster {
    let mut c = KafkaCluster::new(
        "production",
        KafkaClusterSpec {
            bootstrap_servers: vec!["kafka-0:9093".into()],
            tls: None,
            sasl: Some(SaslSpec {
                mechanism: SaslMechanism::ScramSha256,
                username: CredentialSource {
                    value: Some("booking-service".into()),
                    ..Default::default()
                },
                password: CredentialSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "booking-service-kafka".into(),
                        key: "password".into(),
                    }),
                    ..Default::default()
                },
            }),
            client_config: BTreeMap::new(),
            request_timeout_seconds: None,
            topic_defaults: None,
        },
    );
    c.metadata.namespace = Some("booking".into());
    c
}

fn mock() -> (
    Client,
    tower_test::mock::Handle<Request<Body>, Response<Body>>,
) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "default"), handle)
}

#[tokio::test]
async fn reads_the_password_from_the_secret_in_the_clusters_namespace() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("the Secret is read");
        assert_eq!(request.method(), http::Method::GET);
        assert_eq!(
            request.uri().path(),
            "/api/v1/namespaces/booking/secrets/booking-service-kafka"
        );
        let secret = serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "booking-service-kafka", "namespace": "booking"},
            "data": {"password": "czNjcjN0Cg=="}   // "s3cr3t\n"
        });
        send.send_response(
            Response::builder()
                .body(Body::from(serde_json::to_vec(&secret).unwrap()))
                .unwrap(),
        );
    });
    let settings = ClientSettings::for_cluster(&cluster(), &KubeSecrets(client))
        .await
        .unwrap();
    server.await.unwrap();
    assert_eq!(settings.properties["security.protocol"], "sasl_plaintext");
    assert_eq!(settings.properties["sasl.mechanisms"], "SCRAM-SHA-256");
    assert_eq!(settings.properties["sasl.username"], "booking-service");
    assert_eq!(
        settings.secret_properties["sasl.password"].expose(),
        "s3cr3t"
    );
    assert!(!format!("{settings:?}").contains("s3cr3t"));
}

#[tokio::test]
async fn a_missing_secret_is_reported_with_the_field_and_the_secret() {
    let (client, mut handle) = mock();
    let server = tokio::spawn(async move {
        let (_, send) = handle.next_request().await.unwrap();
        let status = serde_json::json!({
            "kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": "secrets \"booking-service-kafka\" not found", "reason": "NotFound", "code": 404
        });
        send.send_response(
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Body::from(serde_json::to_vec(&status).unwrap()))
                .unwrap(),
        );
    });
    let err = ClientSettings::for_cluster(&cluster(), &KubeSecrets(client))
        .await
        .unwrap_err();
    server.await.unwrap();
    assert_eq!(err.reason(), "CredentialsUnavailable");
    let text = err.to_string();
    assert!(
        text.contains(
            "spec.sasl.password.secretKeyRef: cannot read Secret booking/booking-service-kafka"
        ),
        "{text}"
    );
    assert!(text.contains("not found"), "{text}");
}
