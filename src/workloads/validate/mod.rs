//! From raw `KafkaConsumer` / `KafkaProducer` specs to validated values. Every problem is
//! reported with its field path, not just the first; the CRD's CEL rules refuse the same
//! things at the API server.
//!
//! - [`consumer`]: a `KafkaConsumer` and its scaling;
//! - [`producer`]: a `KafkaProducer` and its Service;
//! - [`template`]: the pod template both share (image, env, labels, annotations);
//! - [`topics`]: `spec.topics` and what the references resolve to.

mod consumer;
mod producer;
mod template;
#[cfg(test)]
mod tests;
mod topics;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use crate::model::FieldError;

pub use consumer::{validate_consumer, AutoscalingPolicy, Scaling, ValidatedConsumer};
pub use producer::{validate_producer, ValidatedPort, ValidatedProducer, ValidatedService};
pub use topics::{broker_topics, check_topic_clusters, topic_names, TopicNames, TopicRef};

/// The resource that owns the rendered objects.
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
    fn of<K: Resource<DynamicType = ()>>(object: &K, name: &str) -> Self {
        Self {
            api_version: K::api_version(&()).into_owned(),
            kind: K::kind(&()).into_owned(),
            name: name.to_owned(),
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
/// so it must be a DNS label; a Service name must also begin with a letter.
fn name_of(
    name: Option<&str>,
    names_service: bool,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let Some(name) = name.filter(|n| !n.is_empty()) else {
        errors.push(FieldError::new("metadata.name", "is required"));
        return None;
    };
    let what = if names_service {
        "the Deployment and the Service"
    } else {
        "the Deployment"
    };
    let problem = if name.len() > 63 {
        Some(format!("is {} characters long; at most 63", name.len()))
    } else if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!(
            "contains {bad:?}; use lowercase letters, digits and '-'"
        ))
    } else if name.starts_with('-') || name.ends_with('-') {
        Some("must begin and end with a letter or digit".to_owned())
    } else if names_service && !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must begin with a letter".to_owned())
    } else {
        None
    };
    match problem {
        Some(why) => {
            errors.push(FieldError::new(
                "metadata.name",
                format!("'{name}' {why}: it names {what} and labels the pods"),
            ));
            None
        }
        None => Some(name.to_owned()),
    }
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
