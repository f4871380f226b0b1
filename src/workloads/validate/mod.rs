//! From raw `KafkaConsumer` / `KafkaProducer` specs to validated values. Every problem is
//! reported with its field path, not just the first; the CRD's CEL rules refuse the same
//! things at the API server.
//!
//! - [`consumer`]: a `KafkaConsumer` and its scaling;
//! - [`producer`]: a `KafkaProducer` and its Service;
//! - [`template`]: the pod template both share (image, env, labels, annotations);
//! - [`topics`]: `spec.topics` and what the references resolve to;
//! - [`reads`]: what a consumer reads, against what is known of its topics (warnings).

mod consumer;
mod producer;
mod reads;
mod template;
#[cfg(test)]
mod tests;
mod topics;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::model::{DnsLabel, FieldError};

pub use consumer::{validate_consumer, AutoscalingPolicy, Scaling, ValidatedConsumer};
pub use producer::{validate_producer, ValidatedPort, ValidatedProducer, ValidatedService};
pub use reads::{consumer_read_warnings, KnownTopic};
pub use topics::{broker_topics, check_topic_clusters, topic_names, TopicNames, TopicRef};

/// The resource that owns the rendered objects. Its name is a DNS label (it names the
/// Deployment and labels the pods), checked by validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    /// Set on objects read from the API server; absent in manifests read from files.
    pub uid: Option<String>,
}

impl Owner {
    fn of<K: Resource<DynamicType = ()>>(object: &K, name: &DnsLabel) -> Self {
        Self {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            name: name.to_string(),
            namespace: object.meta().namespace.clone(),
            uid: object.meta().uid.clone(),
        }
    }

    /// The controller owner reference children carry (`controller`, `blockOwnerDeletion`);
    /// `None` without a uid.
    pub fn reference(&self) -> Option<OwnerReference> {
        Some(OwnerReference {
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            uid: self.uid.clone()?,
            controller: Some(true),
            block_owner_deletion: Some(true),
        })
    }
}

/// The resource's name names the Deployment (and Service) and is a label value on the pods,
/// so it must be a DNS label; a Service's name must also begin with a letter (RFC 1035).
fn name_of(
    name: Option<&str>,
    names_service: bool,
    errors: &mut Vec<FieldError>,
) -> Option<DnsLabel> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        errors.push(FieldError::new("metadata.name", "is required"));
        return None;
    };
    let (parsed, what) = if names_service {
        (
            DnsLabel::parse_rfc1035(name),
            "the Deployment and the Service",
        )
    } else {
        (DnsLabel::parse(name), "the Deployment")
    };
    parsed
        .map_err(|why| {
            errors.push(FieldError::new(
                "metadata.name",
                format!("'{name}' {why}: it names {what} and labels the pods"),
            ))
        })
        .ok()
}

fn check_cluster_ref(cluster_ref: &str, verb: &str, errors: &mut Vec<FieldError>) {
    if cluster_ref.trim().is_empty() {
        errors.push(FieldError::new(
            "spec.clusterRef",
            format!("must name the KafkaCluster this workload {verb}"),
        ));
    }
}

fn check_replicas(replicas: i32, errors: &mut Vec<FieldError>) {
    if replicas < 0 {
        errors.push(FieldError::new(
            "spec.replicas",
            format!("must be >= 0, got {replicas}"),
        ));
    }
}
