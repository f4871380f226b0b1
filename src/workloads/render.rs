//! Pure rendering of the objects a consumer or producer runs as: a Deployment (and for a
//! producer with `spec.service`, a Service), complete for server-side apply.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, EnvVarSource, PodSpec, PodTemplateSpec,
    SecretKeySelector as K8sSecretKeySelector, Service, ServicePort as K8sServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::connection::{ConnectionFacts, Credential};
use super::env::{
    ENV_BOOTSTRAP_SERVERS, ENV_GROUP_ID, ENV_SASL_MECHANISM, ENV_SASL_PASSWORD, ENV_SASL_USERNAME,
    ENV_SECURITY_PROTOCOL, ENV_SSL_CA_PEM, ENV_SSL_CERTIFICATE_PEM, ENV_SSL_KEY_PEM, ENV_TOPICS,
};
use super::validate::{broker_topics, Owner, TopicNames, ValidatedConsumer, ValidatedProducer};
use super::{
    ANNOTATION_CONNECTION_HASH, LABEL_CONSUMER, LABEL_MANAGED_BY, LABEL_NAME, LABEL_PRODUCER,
    MANAGER,
};
use crate::api::{SecretKeySelector, WorkloadTemplate};

/// Name of the single container of a consumer's pods.
pub const CONSUMER_CONTAINER: &str = "consumer";
/// Name of the single container of a producer's pods.
pub const PRODUCER_CONTAINER: &str = "producer";

/// Why an object cannot be rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenderError {
    /// The owner has no uid (it was not read from the API server), so the children could not
    /// carry an owner reference and would never be garbage-collected.
    MissingUid { kind: String, name: String },
    /// A replica count below zero.
    NegativeReplicas(i32),
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::MissingUid { kind, name } => write!(
                f,
                "{kind} '{name}' has no metadata.uid: its children need an owner reference"
            ),
            RenderError::NegativeReplicas(n) => write!(f, "replicas must be >= 0, got {n}"),
        }
    }
}

impl std::error::Error for RenderError {}

/// The labels of every object rendered for `owner` (`label` is `tributary.io/consumer` or
/// `tributary.io/producer`).
fn labels(owner: &Owner, label: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_NAME.to_owned(), owner.name.clone()),
        (LABEL_MANAGED_BY.to_owned(), MANAGER.to_owned()),
        (label.to_owned(), owner.name.clone()),
    ])
}

/// The Deployment selector (immutable once created, so it holds one label only).
fn selector(owner: &Owner, label: &str) -> BTreeMap<String, String> {
    BTreeMap::from([(label.to_owned(), owner.name.clone())])
}

fn owner_reference(owner: &Owner) -> Result<OwnerReference, RenderError> {
    owner.reference().ok_or_else(|| RenderError::MissingUid {
        kind: owner.kind.clone(),
        name: owner.name.clone(),
    })
}

fn metadata(owner: &Owner, label: &str) -> Result<ObjectMeta, RenderError> {
    Ok(ObjectMeta {
        name: Some(owner.name.clone()),
        namespace: owner.namespace.clone(),
        labels: Some(labels(owner, label)),
        owner_references: Some(vec![owner_reference(owner)?]),
        ..Default::default()
    })
}

fn plain(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: Some(value.into()),
        value_from: None,
    }
}

fn from_secret(name: &str, secret: &SecretKeySelector) -> EnvVar {
    EnvVar {
        name: name.to_owned(),
        value: None,
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(K8sSecretKeySelector {
                name: secret.name.clone(),
                key: secret.key.clone(),
                optional: None,
            }),
            ..Default::default()
        }),
    }
}

/// The variables Tributary injects, in a fixed order: bootstrap servers, group id (consumers),
/// topics, security protocol, then SASL and TLS settings where the cluster uses them. Secrets
/// are referenced (`valueFrom.secretKeyRef`), never inlined.
pub fn connection_env(
    connection: &ConnectionFacts,
    group_id: Option<&str>,
    topics: &[crate::model::TopicName],
) -> Vec<EnvVar> {
    let mut env = vec![plain(ENV_BOOTSTRAP_SERVERS, connection.bootstrap_list())];
    if let Some(group) = group_id {
        env.push(plain(ENV_GROUP_ID, group));
    }
    let topics: Vec<&str> = topics.iter().map(|t| t.as_str()).collect();
    env.push(plain(ENV_TOPICS, topics.join(",")));
    env.push(plain(
        ENV_SECURITY_PROTOCOL,
        connection.security_protocol().as_str(),
    ));
    if let Some(sasl) = &connection.sasl {
        env.push(plain(ENV_SASL_MECHANISM, sasl.mechanism.as_str()));
        env.push(match &sasl.username {
            Credential::Value(user) => plain(ENV_SASL_USERNAME, user.clone()),
            Credential::Secret(s) => from_secret(ENV_SASL_USERNAME, s),
        });
        env.push(from_secret(ENV_SASL_PASSWORD, &sasl.password));
    }
    if let Some(tls) = &connection.tls {
        for (name, secret) in [
            (ENV_SSL_CA_PEM, &tls.ca_cert),
            (ENV_SSL_CERTIFICATE_PEM, &tls.client_cert),
            (ENV_SSL_KEY_PEM, &tls.client_key),
        ] {
            if let Some(secret) = secret {
                env.push(from_secret(name, secret));
            }
        }
    }
    env
}

fn non_empty<T: Clone>(items: &[T]) -> Option<Vec<T>> {
    (!items.is_empty()).then(|| items.to_vec())
}

fn non_empty_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

struct Pod<'a> {
    owner: &'a Owner,
    label: &'static str,
    container: &'static str,
    template: &'a WorkloadTemplate,
    env: Vec<EnvVar>,
    ports: Option<Vec<ContainerPort>>,
    connection_hash: String,
}

fn deployment(pod: Pod<'_>, replicas: i32) -> Result<Deployment, RenderError> {
    if replicas < 0 {
        return Err(RenderError::NegativeReplicas(replicas));
    }
    let t = pod.template;
    let mut pod_labels = t.labels.clone();
    pod_labels.extend(labels(pod.owner, pod.label));
    let mut annotations = t.annotations.clone();
    annotations.insert(ANNOTATION_CONNECTION_HASH.to_owned(), pod.connection_hash);
    let mut env = pod.env;
    env.extend(t.env.iter().cloned());
    Ok(Deployment {
        metadata: metadata(pod.owner, pod.label)?,
        spec: DeploymentSpec {
            replicas: Some(replicas),
            selector: LabelSelector {
                match_labels: Some(selector(pod.owner, pod.label)),
                match_expressions: None,
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(pod_labels),
                    annotations: Some(annotations),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: pod.container.to_owned(),
                        image: Some(t.image.clone()),
                        command: non_empty(&t.command),
                        args: non_empty(&t.args),
                        env: Some(env),
                        env_from: non_empty(&t.env_from),
                        resources: t.resources.clone(),
                        ports: pod.ports,
                        ..Default::default()
                    }],
                    service_account_name: t.service_account_name.clone(),
                    node_selector: non_empty_map(t.node_selector.clone()),
                    tolerations: non_empty(&t.tolerations),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        status: None,
    })
}

/// The Deployment of a consumer: `replicas` pods (the decision of the caller: `spec.replicas`,
/// or the autoscaler's), wired to the cluster by `connection`, reading the topics that
/// `spec.topics` resolves to through `topics`.
pub fn consumer_deployment(
    consumer: &ValidatedConsumer,
    connection: &ConnectionFacts,
    topics: &TopicNames,
    replicas: i32,
) -> Result<Deployment, RenderError> {
    let broker = broker_topics(&consumer.topics, topics);
    deployment(
        Pod {
            owner: &consumer.owner,
            label: LABEL_CONSUMER,
            container: CONSUMER_CONTAINER,
            template: &consumer.template,
            env: connection_env(connection, Some(&consumer.group_id), &broker),
            ports: None,
            connection_hash: connection.hash(),
        },
        replicas,
    )
}

/// The Deployment of a producer, with a container port per Service port (named after it).
pub fn producer_deployment(
    producer: &ValidatedProducer,
    connection: &ConnectionFacts,
    topics: &TopicNames,
    replicas: i32,
) -> Result<Deployment, RenderError> {
    let broker = broker_topics(&producer.topics, topics);
    let ports = producer.service.as_ref().map(|service| {
        let mut seen = BTreeSet::new();
        service
            .ports
            .iter()
            .filter(|p| seen.insert((p.target_port, p.protocol)))
            .map(|p| ContainerPort {
                name: Some(p.name.to_string()),
                container_port: p.target_port,
                protocol: Some(p.protocol.as_str().to_owned()),
                ..Default::default()
            })
            .collect()
    });
    deployment(
        Pod {
            owner: &producer.owner,
            label: LABEL_PRODUCER,
            container: PRODUCER_CONTAINER,
            template: &producer.template,
            env: connection_env(connection, None, &broker),
            ports,
            connection_hash: connection.hash(),
        },
        replicas,
    )
}

/// The Service of a producer; `None` when it declares no `spec.service`.
pub fn producer_service(producer: &ValidatedProducer) -> Result<Option<Service>, RenderError> {
    let Some(service) = &producer.service else {
        return Ok(None);
    };
    Ok(Some(Service {
        metadata: metadata(&producer.owner, LABEL_PRODUCER)?,
        spec: Some(ServiceSpec {
            type_: Some(service.type_.as_str().to_owned()),
            selector: Some(selector(&producer.owner, LABEL_PRODUCER)),
            ports: Some(
                service
                    .ports
                    .iter()
                    .map(|p| K8sServicePort {
                        name: Some(p.name.to_string()),
                        port: p.port,
                        target_port: Some(IntOrString::Int(p.target_port)),
                        protocol: Some(p.protocol.as_str().to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        status: None,
    }))
}
