//! From raw `KafkaConsumer` / `KafkaProducer` specs to validated values. Every problem is
//! reported with its field path, not just the first; the CRD's CEL rules refuse the same
//! things at the API server.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;

use super::render::{consumer_env_names, producer_env_names};
use super::{LABEL_MANAGED_BY, LABEL_NAME};
use crate::api::{
    Autoscaling, KafkaConsumer, KafkaProducer, KafkaTopic, OffsetResetPolicy, PortProtocol,
    ServiceType, WorkloadTemplate, MAX_TOPICS,
};
use crate::model::{FieldError, TopicName};

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

/// One entry of `spec.topics`: the name of a `KafkaTopic` in the resource's namespace, or else
/// a topic name as the broker knows it. Either way it is a legal Kafka topic name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicRef(TopicName);

impl TopicRef {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The broker topic: the `spec.topicName` of the `KafkaTopic` so named, else the name itself.
    pub fn resolve(&self, names: &TopicNames) -> TopicName {
        names.get(self.as_str()).unwrap_or(&self.0).clone()
    }
}

/// `KafkaTopic` name (in the workload's namespace) → broker topic name.
pub type TopicNames = BTreeMap<String, TopicName>;

/// The map rendering takes, from the `KafkaTopic`s of one namespace. Topics whose broker name
/// is not legal (they are refused elsewhere) are left out.
pub fn topic_names<'a>(topics: impl IntoIterator<Item = &'a KafkaTopic>) -> TopicNames {
    topics
        .into_iter()
        .filter_map(|t| {
            let name = t.metadata.name.clone()?;
            let broker = TopicName::parse(t.broker_topic_name()?).ok()?;
            Some((name, broker))
        })
        .collect()
}

/// The broker topics, in `spec.topics` order, each once (two references may name one topic).
pub fn broker_topics(refs: &[TopicRef], names: &TopicNames) -> Vec<TopicName> {
    let mut seen = BTreeSet::new();
    refs.iter()
        .map(|r| r.resolve(names))
        .filter(|t| seen.insert(t.clone()))
        .collect()
}

/// A reference to a `KafkaTopic` that lives on another cluster than the workload: the
/// workload would connect to one cluster and look for the topic there, in vain.
pub fn check_topic_clusters<'a>(
    refs: &[TopicRef],
    cluster_ref: &str,
    topics: impl IntoIterator<Item = &'a KafkaTopic>,
) -> Vec<FieldError> {
    let by_name: BTreeMap<&str, &KafkaTopic> = topics
        .into_iter()
        .filter_map(|t| Some((t.metadata.name.as_deref()?, t)))
        .collect();
    refs.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let topic = by_name.get(r.as_str())?;
            (topic.spec.cluster_ref != cluster_ref).then(|| {
                FieldError::new(
                    format!("spec.topics[{i}]"),
                    format!(
                        "KafkaTopic '{}' lives on cluster '{}', not on '{cluster_ref}' (spec.clusterRef)",
                        r.as_str(),
                        topic.spec.cluster_ref
                    ),
                )
            })
        })
        .collect()
}

/// Lag-based scaling, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoscalingPolicy {
    pub min_replicas: i32,
    pub max_replicas: i32,
    /// Lag one replica is expected to handle; > 0.
    pub lag_threshold: i64,
    pub scale_down_stabilization: Duration,
    pub poll_interval: Duration,
    pub limit_to_partitions_with_lag: bool,
    pub offset_reset_policy: OffsetResetPolicy,
}

/// How many replicas a consumer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scaling {
    Fixed(i32),
    Autoscaled(AutoscalingPolicy),
}

/// A `KafkaConsumer`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedConsumer {
    pub owner: Owner,
    pub cluster_ref: String,
    /// `spec.groupId`, else `metadata.name`.
    pub group_id: String,
    pub topics: Vec<TopicRef>,
    pub template: WorkloadTemplate,
    pub scaling: Scaling,
}

/// One port of a producer's Service, validated, with `targetPort` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedPort {
    pub name: String,
    pub port: i32,
    pub target_port: i32,
    pub protocol: PortProtocol,
}

/// A producer's Service, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedService {
    pub type_: ServiceType,
    pub ports: Vec<ValidatedPort>,
}

/// A `KafkaProducer`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedProducer {
    pub owner: Owner,
    pub cluster_ref: String,
    pub topics: Vec<TopicRef>,
    pub template: WorkloadTemplate,
    pub replicas: i32,
    pub service: Option<ValidatedService>,
}

/// Longest consumer group id accepted (Kafka itself sets no limit; this keeps ids sane and
/// matches the CRD's `maxLength`).
const MAX_GROUP_ID_LEN: usize = 255;
const MAX_AUTOSCALING_SECONDS: i32 = 3600;

/// Validates a `KafkaConsumer`. Every problem is reported.
pub fn validate_consumer(consumer: &KafkaConsumer) -> Result<ValidatedConsumer, Vec<FieldError>> {
    let spec = &consumer.spec;
    let mut errors = Vec::new();
    let name = name_of(consumer.metadata.name.as_deref(), false, &mut errors);
    check_cluster_ref(&spec.cluster_ref, "reads from", &mut errors);
    if let Some(group) = &spec.group_id {
        if group.trim().is_empty() {
            errors.push(FieldError::new(
                "spec.groupId",
                "must not be empty (leave it unset to use metadata.name)",
            ));
        } else if group.len() > MAX_GROUP_ID_LEN {
            errors.push(FieldError::new(
                "spec.groupId",
                format!(
                    "is {} characters long; at most {MAX_GROUP_ID_LEN}",
                    group.len()
                ),
            ));
        }
    }
    let topics = check_topics(&spec.topics, &mut errors);
    check_template(&spec.template, &consumer_env_names(), &mut errors);

    let scaling = match (spec.replicas, &spec.autoscaling) {
        (Some(_), Some(_)) => {
            errors.push(FieldError::new(
                "spec",
                "set exactly one of replicas and autoscaling, not both",
            ));
            None
        }
        (None, None) => {
            errors.push(FieldError::new(
                "spec",
                "set exactly one of replicas and autoscaling",
            ));
            None
        }
        (Some(replicas), None) => {
            check_replicas(replicas, &mut errors);
            Some(Scaling::Fixed(replicas))
        }
        (None, Some(a)) => check_autoscaling(a, &mut errors).map(Scaling::Autoscaled),
    };

    match (name, scaling) {
        (Some(name), Some(scaling)) if errors.is_empty() => Ok(ValidatedConsumer {
            owner: Owner::of(consumer, &name),
            cluster_ref: spec.cluster_ref.clone(),
            group_id: spec.group_id.clone().unwrap_or_else(|| name.clone()),
            topics,
            template: spec.template.clone(),
            scaling,
        }),
        _ => Err(errors),
    }
}

/// Validates a `KafkaProducer`. Every problem is reported.
pub fn validate_producer(producer: &KafkaProducer) -> Result<ValidatedProducer, Vec<FieldError>> {
    let spec = &producer.spec;
    let mut errors = Vec::new();
    let name = name_of(
        producer.metadata.name.as_deref(),
        spec.service.is_some(),
        &mut errors,
    );
    check_cluster_ref(&spec.cluster_ref, "writes to", &mut errors);
    let topics = check_topics(&spec.topics, &mut errors);
    check_template(&spec.template, &producer_env_names(), &mut errors);
    check_replicas(spec.replicas, &mut errors);

    let service = spec.service.as_ref().map(|service| {
        if service.ports.is_empty() {
            errors.push(FieldError::new(
                "spec.service.ports",
                "must list at least one port (or leave spec.service unset for no Service)",
            ));
        }
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        let mut listening: BTreeMap<(i32, PortProtocol), usize> = BTreeMap::new();
        let ports = service
            .ports
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let path = format!("spec.service.ports[{i}]");
                if let Err(why) = check_port_name(&p.name) {
                    errors.push(FieldError::new(format!("{path}.name"), why));
                } else if let Some(first) = names.insert(&p.name, i) {
                    names.insert(&p.name, first);
                    errors.push(FieldError::new(
                        format!("{path}.name"),
                        format!(
                            "'{}' is already used by spec.service.ports[{first}]",
                            p.name
                        ),
                    ));
                }
                for (field, value) in [("port", Some(p.port)), ("targetPort", p.target_port)] {
                    if let Some(v) = value.filter(|v| !(1..=65535).contains(v)) {
                        errors.push(FieldError::new(
                            format!("{path}.{field}"),
                            format!("must be between 1 and 65535, got {v}"),
                        ));
                    }
                }
                if let Some(first) = listening.insert((p.port, p.protocol), i) {
                    listening.insert((p.port, p.protocol), first);
                    errors.push(FieldError::new(
                        format!("{path}.port"),
                        format!(
                            "{}/{} is already used by spec.service.ports[{first}]",
                            p.port,
                            p.protocol.as_str()
                        ),
                    ));
                }
                ValidatedPort {
                    name: p.name.clone(),
                    port: p.port,
                    target_port: p.target_port.unwrap_or(p.port),
                    protocol: p.protocol,
                }
            })
            .collect();
        ValidatedService {
            type_: service.type_,
            ports,
        }
    });

    match name {
        Some(name) if errors.is_empty() => Ok(ValidatedProducer {
            owner: Owner::of(producer, &name),
            cluster_ref: spec.cluster_ref.clone(),
            topics,
            template: spec.template.clone(),
            replicas: spec.replicas,
            service,
        }),
        _ => Err(errors),
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

fn check_topics(topics: &[String], errors: &mut Vec<FieldError>) -> Vec<TopicRef> {
    if topics.is_empty() {
        errors.push(FieldError::new(
            "spec.topics",
            "must name at least one topic",
        ));
    }
    if topics.len() > MAX_TOPICS {
        errors.push(FieldError::new(
            "spec.topics",
            format!("names {} topics; at most {MAX_TOPICS}", topics.len()),
        ));
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut refs = Vec::new();
    for (i, topic) in topics.iter().enumerate() {
        let path = format!("spec.topics[{i}]");
        if topic.contains('/') {
            errors.push(FieldError::new(
                path,
                format!("'{topic}' is a topic in another namespace; only KafkaTopics of this namespace (or topic names without '/') can be used"),
            ));
            continue;
        }
        match TopicName::parse(topic) {
            Err(why) => errors.push(FieldError::new(path, why)),
            Ok(name) => {
                if let Some(first) = seen.get(topic.as_str()) {
                    errors.push(FieldError::new(
                        path,
                        format!("'{topic}' is already listed at spec.topics[{first}]"),
                    ));
                } else {
                    seen.insert(topic, i);
                    refs.push(TopicRef(name));
                }
            }
        }
    }
    refs
}

fn check_autoscaling(a: &Autoscaling, errors: &mut Vec<FieldError>) -> Option<AutoscalingPolicy> {
    let before = errors.len();
    let path = |field: &str| format!("spec.autoscaling.{field}");
    if a.min_replicas < 0 {
        errors.push(FieldError::new(
            path("minReplicas"),
            format!("must be >= 0, got {}", a.min_replicas),
        ));
    }
    if a.max_replicas < 1 {
        errors.push(FieldError::new(
            path("maxReplicas"),
            format!("must be >= 1, got {}", a.max_replicas),
        ));
    }
    if a.min_replicas > a.max_replicas {
        errors.push(FieldError::new(
            path("minReplicas"),
            format!(
                "must be <= maxReplicas ({}), got {}",
                a.max_replicas, a.min_replicas
            ),
        ));
    }
    if a.lag_threshold <= 0 {
        errors.push(FieldError::new(
            path("lagThreshold"),
            format!(
                "must be > 0 (messages per replica), got {}",
                a.lag_threshold
            ),
        ));
    }
    for (field, value, min) in [
        (
            "scaleDownStabilizationSeconds",
            a.scale_down_stabilization_seconds,
            0,
        ),
        ("pollIntervalSeconds", a.poll_interval_seconds, 1),
    ] {
        if !(min..=MAX_AUTOSCALING_SECONDS).contains(&value) {
            errors.push(FieldError::new(
                path(field),
                format!("must be between {min} and {MAX_AUTOSCALING_SECONDS}, got {value}"),
            ));
        }
    }
    (errors.len() == before).then(|| AutoscalingPolicy {
        min_replicas: a.min_replicas,
        max_replicas: a.max_replicas,
        lag_threshold: a.lag_threshold,
        scale_down_stabilization: Duration::from_secs(a.scale_down_stabilization_seconds as u64),
        poll_interval: Duration::from_secs(a.poll_interval_seconds as u64),
        limit_to_partitions_with_lag: a.limit_to_partitions_with_lag,
        offset_reset_policy: a.offset_reset_policy,
    })
}

/// Label and annotation prefix Tributary owns on the objects it renders.
const RESERVED_PREFIX: &str = "tributary.io/";
/// Longest image reference accepted (the CRD's `maxLength`, which also bounds the cost the API
/// server estimates for the CEL rule on it).
const MAX_IMAGE_LEN: usize = 1024;

fn check_template(t: &WorkloadTemplate, injected: &[&str], errors: &mut Vec<FieldError>) {
    let path = |field: &str| format!("spec.template.{field}");
    if t.image.trim().is_empty() {
        errors.push(FieldError::new(
            path("image"),
            "must name a container image",
        ));
    } else if t.image.len() > MAX_IMAGE_LEN {
        errors.push(FieldError::new(
            path("image"),
            format!(
                "is {} characters long; an image reference has at most {MAX_IMAGE_LEN}",
                t.image.len()
            ),
        ));
    } else if t.image.chars().any(char::is_whitespace) {
        errors.push(FieldError::new(
            path("image"),
            format!(
                "'{}' contains whitespace; an image reference has none",
                t.image
            ),
        ));
    }

    let mut env_names: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, var) in t.env.iter().enumerate() {
        let p = path(&format!("env[{i}]"));
        if var.name.is_empty() {
            errors.push(FieldError::new(format!("{p}.name"), "is required"));
        } else if let Some(bad) = var
            .name
            .chars()
            .find(|c| *c == '=' || !(c.is_ascii_graphic() || *c == ' '))
        {
            errors.push(FieldError::new(
                format!("{p}.name"),
                format!(
                    "'{}' contains {bad:?}; use printable ASCII without '='",
                    var.name
                ),
            ));
        } else if injected.contains(&var.name.as_str()) {
            errors.push(FieldError::new(
                format!("{p}.name"),
                format!(
                    "'{}' is set by Tributary from the KafkaCluster and spec; remove it or use another name",
                    var.name
                ),
            ));
        } else if let Some(first) = env_names.get(var.name.as_str()) {
            errors.push(FieldError::new(
                format!("{p}.name"),
                format!(
                    "'{}' is already set by spec.template.env[{first}]",
                    var.name
                ),
            ));
        } else {
            env_names.insert(&var.name, i);
        }
        if var.value.is_some() && var.value_from.is_some() {
            errors.push(FieldError::new(p, "set value or valueFrom, not both"));
        }
    }

    for (key, value) in &t.labels {
        let p = path(&format!("labels.{key}"));
        if key == LABEL_NAME || key == LABEL_MANAGED_BY || key.starts_with(RESERVED_PREFIX) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is set by Tributary; use another key"),
            ));
            continue;
        }
        if let Err(why) = check_qualified_name(key) {
            errors.push(FieldError::new(
                p.clone(),
                format!("'{key}' is not a valid label key: {why}"),
            ));
        }
        if let Err(why) = check_label_value(value) {
            errors.push(FieldError::new(
                p,
                format!("'{value}' is not a valid label value: {why}"),
            ));
        }
    }
    for key in t.annotations.keys() {
        let p = path(&format!("annotations.{key}"));
        if key.starts_with(RESERVED_PREFIX) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is set by Tributary; use another key"),
            ));
        } else if let Err(why) = check_qualified_name(key) {
            errors.push(FieldError::new(
                p,
                format!("'{key}' is not a valid annotation key: {why}"),
            ));
        }
    }
    for (key, value) in &t.node_selector {
        let p = path(&format!("nodeSelector.{key}"));
        if let Err(why) = check_qualified_name(key) {
            errors.push(FieldError::new(
                p.clone(),
                format!("'{key}' is not a valid label key: {why}"),
            ));
        }
        if let Err(why) = check_label_value(value) {
            errors.push(FieldError::new(
                p,
                format!("'{value}' is not a valid label value: {why}"),
            ));
        }
    }
    if let Some(sa) = &t.service_account_name {
        if let Err(why) = check_dns_subdomain(sa) {
            errors.push(FieldError::new(
                path("serviceAccountName"),
                format!("'{sa}' is not a valid ServiceAccount name: {why}"),
            ));
        }
    }
}

/// `[prefix/]name` as Kubernetes label and annotation keys are.
fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        check_dns_subdomain(prefix).map_err(|why| format!("prefix {why}"))?;
    }
    if name.is_empty() {
        return Err("the name part is empty".into());
    }
    check_label_value(name).map_err(|why| format!("name part {why}"))
}

/// At most 63 characters of `[A-Za-z0-9_.-]`, beginning and ending with a letter or digit
/// (or empty).
fn check_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err(format!("is {} characters long; at most 63", value.len()));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(format!(
            "contains {bad:?}; use letters, digits, '-', '_' and '.'"
        ));
    }
    let edge = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    if !edge(value.chars().next()) || !edge(value.chars().last()) {
        return Err("must begin and end with a letter or digit".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: at most 253 characters of `[a-z0-9.-]`, beginning and ending with a
/// letter or digit.
fn check_dns_subdomain(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 253 {
        return Err(format!(
            "must be 1 to 253 characters long, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '.')))
    {
        return Err(format!(
            "contains {bad:?}; use lowercase letters, digits, '-' and '.'"
        ));
    }
    let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !edge(name.chars().next()) || !edge(name.chars().last()) {
        return Err("must begin and end with a letter or digit".into());
    }
    Ok(())
}

/// An IANA service name, as Kubernetes port names are: at most 15 characters of `[a-z0-9-]`,
/// at least one letter, no leading, trailing or doubled '-'.
fn check_port_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 {
        return Err(format!(
            "'{name}' must be 1 to 15 characters long, got {}",
            name.len()
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "'{name}' contains {bad:?}; port names use lowercase letters, digits and '-'"
        ));
    }
    if !name.chars().any(|c| c.is_ascii_lowercase()) {
        return Err(format!("'{name}' must contain at least one letter"));
    }
    if name.starts_with('-') || name.ends_with('-') || name.contains("--") {
        return Err(format!(
            "'{name}' must not begin or end with '-' or contain '--'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{
        KafkaConsumerSpec, KafkaProducerSpec, KafkaTopicSpec, ProducerService, ServicePort,
    };
    use k8s_openapi::api::core::v1::{EnvVar, EnvVarSource, SecretKeySelector};

    fn template() -> WorkloadTemplate {
        WorkloadTemplate {
            image: "ghcr.io/acme/analytics:1.0".into(),
            ..Default::default()
        }
    }

    fn autoscaling(min: i32, max: i32, threshold: i64) -> Autoscaling {
        Autoscaling {
            min_replicas: min,
            max_replicas: max,
            lag_threshold: threshold,
            scale_down_stabilization_seconds: 300,
            poll_interval_seconds: 30,
            limit_to_partitions_with_lag: false,
            offset_reset_policy: OffsetResetPolicy::Latest,
        }
    }

    fn consumer() -> KafkaConsumer {
        KafkaConsumer::new(
            "analytics",
            KafkaConsumerSpec {
                cluster_ref: "local".into(),
                group_id: None,
                topics: vec!["clicks".into(), "orders".into()],
                template: template(),
                replicas: None,
                autoscaling: Some(autoscaling(1, 6, 1000)),
            },
        )
    }

    fn producer() -> KafkaProducer {
        KafkaProducer::new(
            "web-app",
            KafkaProducerSpec {
                cluster_ref: "local".into(),
                topics: vec!["clicks".into()],
                template: template(),
                replicas: 2,
                service: Some(ProducerService {
                    type_: ServiceType::ClusterIP,
                    ports: vec![ServicePort {
                        name: "http".into(),
                        port: 80,
                        target_port: Some(8080),
                        protocol: PortProtocol::Tcp,
                    }],
                }),
            },
        )
    }

    fn messages(errors: Vec<FieldError>) -> Vec<String> {
        errors.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_valid_consumer_resolves_its_defaults() {
        let c = validate_consumer(&consumer()).unwrap();
        assert_eq!(c.group_id, "analytics");
        assert_eq!(c.owner.kind, "KafkaConsumer");
        assert_eq!(c.owner.api_version, "tributary.io/v1alpha1");
        assert_eq!(c.owner.reference(), None, "no uid, no owner reference");
        let Scaling::Autoscaled(policy) = c.scaling else {
            panic!("autoscaled")
        };
        assert_eq!(policy.poll_interval, Duration::from_secs(30));
        assert_eq!(policy.max_replicas, 6);

        let mut fixed = consumer();
        fixed.spec.autoscaling = None;
        fixed.spec.replicas = Some(3);
        fixed.spec.group_id = Some("analytics-v2".into());
        let c = validate_consumer(&fixed).unwrap();
        assert_eq!(c.scaling, Scaling::Fixed(3));
        assert_eq!(c.group_id, "analytics-v2");
    }

    #[test]
    fn autoscaling_bounds_with_exact_messages() {
        let mut c = consumer();
        c.spec.autoscaling = Some(autoscaling(7, 5, 0));
        assert_eq!(
            messages(validate_consumer(&c).unwrap_err()),
            [
                "spec.autoscaling.minReplicas: must be <= maxReplicas (5), got 7",
                "spec.autoscaling.lagThreshold: must be > 0 (messages per replica), got 0",
            ]
        );
        let mut a = autoscaling(-1, 0, -5);
        a.poll_interval_seconds = 0;
        a.scale_down_stabilization_seconds = 7200;
        c.spec.autoscaling = Some(a);
        assert_eq!(
            messages(validate_consumer(&c).unwrap_err()),
            [
                "spec.autoscaling.minReplicas: must be >= 0, got -1",
                "spec.autoscaling.maxReplicas: must be >= 1, got 0",
                "spec.autoscaling.lagThreshold: must be > 0 (messages per replica), got -5",
                "spec.autoscaling.scaleDownStabilizationSeconds: must be between 0 and 3600, got 7200",
                "spec.autoscaling.pollIntervalSeconds: must be between 1 and 3600, got 0",
            ]
        );
    }

    #[test]
    fn exactly_one_of_replicas_and_autoscaling() {
        let mut both = consumer();
        both.spec.replicas = Some(2);
        assert_eq!(
            messages(validate_consumer(&both).unwrap_err()),
            ["spec: set exactly one of replicas and autoscaling, not both"]
        );
        let mut neither = consumer();
        neither.spec.autoscaling = None;
        assert_eq!(
            messages(validate_consumer(&neither).unwrap_err()),
            ["spec: set exactly one of replicas and autoscaling"]
        );
        let mut negative = neither.clone();
        negative.spec.replicas = Some(-1);
        assert_eq!(
            messages(validate_consumer(&negative).unwrap_err()),
            ["spec.replicas: must be >= 0, got -1"]
        );
    }

    #[test]
    fn topics_in_other_namespaces_illegal_or_repeated_are_refused() {
        let mut c = consumer();
        c.spec.topics = vec![
            "shop/orders".into(),
            "bad topic".into(),
            "clicks".into(),
            "clicks".into(),
        ];
        assert_eq!(
            messages(validate_consumer(&c).unwrap_err()),
            [
                "spec.topics[0]: 'shop/orders' is a topic in another namespace; only KafkaTopics of this namespace (or topic names without '/') can be used",
                "spec.topics[1]: 'bad topic' contains ' '; Kafka topic names use only letters, digits, '.', '_' and '-'",
                "spec.topics[3]: 'clicks' is already listed at spec.topics[2]",
            ]
        );
        c.spec.topics.clear();
        assert_eq!(
            messages(validate_consumer(&c).unwrap_err()),
            ["spec.topics: must name at least one topic"]
        );
    }

    #[test]
    fn template_problems() {
        let mut c = consumer();
        c.spec.template.image = " ".into();
        c.spec.template.env = vec![
            EnvVar {
                name: "KAFKA_TOPICS".into(),
                value: Some("x".into()),
                value_from: None,
            },
            EnvVar {
                name: "LOG_LEVEL".into(),
                value: Some("info".into()),
                value_from: None,
            },
            EnvVar {
                name: "LOG_LEVEL".into(),
                value: Some("debug".into()),
                value_from: Some(EnvVarSource {
                    secret_key_ref: Some(SecretKeySelector {
                        name: "s".into(),
                        key: "k".into(),
                        optional: None,
                    }),
                    ..Default::default()
                }),
            },
        ];
        c.spec
            .template
            .labels
            .insert("tributary.io/consumer".into(), "x".into());
        c.spec
            .template
            .labels
            .insert("team".into(), "data platform".into());
        c.spec
            .template
            .annotations
            .insert("tributary.io/connection-hash".into(), "0".into());
        c.spec.template.service_account_name = Some("Analytics".into());
        assert_eq!(
            messages(validate_consumer(&c).unwrap_err()),
            [
                "spec.template.image: must name a container image",
                "spec.template.env[0].name: 'KAFKA_TOPICS' is set by Tributary from the KafkaCluster and spec; remove it or use another name",
                "spec.template.env[2].name: 'LOG_LEVEL' is already set by spec.template.env[1]",
                "spec.template.env[2]: set value or valueFrom, not both",
                "spec.template.labels.team: 'data platform' is not a valid label value: contains ' '; use letters, digits, '-', '_' and '.'",
                "spec.template.labels.tributary.io/consumer: 'tributary.io/consumer' is set by Tributary; use another key",
                "spec.template.annotations.tributary.io/connection-hash: 'tributary.io/connection-hash' is set by Tributary; use another key",
                "spec.template.serviceAccountName: 'Analytics' is not a valid ServiceAccount name: contains 'A'; use lowercase letters, digits, '-' and '.'",
            ]
        );
    }

    #[test]
    fn group_id_env_is_free_for_producers() {
        let mut p = producer();
        p.spec.template.env = vec![EnvVar {
            name: "KAFKA_GROUP_ID".into(),
            value: Some("audit".into()),
            value_from: None,
        }];
        assert!(validate_producer(&p).is_ok());
        p.spec.template.env[0].name = "KAFKA_SASL_PASSWORD".into();
        assert!(validate_producer(&p).is_err());
    }

    #[test]
    fn producer_service_ports() {
        let p = validate_producer(&producer()).unwrap();
        let service = p.service.unwrap();
        assert_eq!(service.ports[0].target_port, 8080);

        let mut p = producer();
        let ports = &mut p.spec.service.as_mut().unwrap().ports;
        ports.push(ServicePort {
            name: "http".into(),
            port: 80,
            target_port: Some(70000),
            protocol: PortProtocol::Tcp,
        });
        ports.push(ServicePort {
            name: "Metrics_1".into(),
            port: 9090,
            target_port: None,
            protocol: PortProtocol::Tcp,
        });
        assert_eq!(
            messages(validate_producer(&p).unwrap_err()),
            [
                "spec.service.ports[1].name: 'http' is already used by spec.service.ports[0]",
                "spec.service.ports[1].targetPort: must be between 1 and 65535, got 70000",
                "spec.service.ports[1].port: 80/TCP is already used by spec.service.ports[0]",
                "spec.service.ports[2].name: 'Metrics_1' contains 'M'; port names use lowercase letters, digits and '-'",
            ]
        );
    }

    fn kafka_topic(name: &str, cluster: &str, topic_name: Option<&str>) -> KafkaTopic {
        KafkaTopic::new(
            name,
            KafkaTopicSpec {
                cluster_ref: cluster.into(),
                topic_name: topic_name.map(Into::into),
                partitions: 3,
                replication_factor: None,
                config: BTreeMap::new(),
                deletion_policy: Default::default(),
            },
        )
    }

    #[test]
    fn topic_references_resolve_through_kafka_topics() {
        let topics = [
            kafka_topic("orders", "local", Some("shop.orders.v2")),
            kafka_topic("clicks", "local", None),
        ];
        let names = topic_names(&topics);
        let mut c = consumer();
        c.spec.topics = vec![
            "orders".into(),
            "clicks".into(),
            "legacy-events".into(),
            "shop.orders.v2".into(),
        ];
        let c = validate_consumer(&c).unwrap();
        let resolved: Vec<String> = broker_topics(&c.topics, &names)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(resolved, ["shop.orders.v2", "clicks", "legacy-events"]);
    }

    #[test]
    fn a_topic_on_another_cluster_is_reported() {
        let topics = [kafka_topic("orders", "other", None)];
        let c = validate_consumer(&consumer()).unwrap();
        assert_eq!(
            messages(check_topic_clusters(&c.topics, &c.cluster_ref, &topics)),
            ["spec.topics[1]: KafkaTopic 'orders' lives on cluster 'other', not on 'local' (spec.clusterRef)"]
        );
    }

    #[test]
    fn the_name_must_be_a_dns_label() {
        let mut c = consumer();
        c.metadata.name = Some("Analytics.v2".into());
        assert_eq!(
            messages(validate_consumer(&c).unwrap_err()),
            ["metadata.name: 'Analytics.v2' contains 'A'; use lowercase letters, digits and '-': it names the Deployment and labels the pods"]
        );
        let mut p = producer();
        p.metadata.name = Some("1st-web".into());
        assert_eq!(
            messages(validate_producer(&p).unwrap_err()),
            ["metadata.name: '1st-web' must begin with a letter: it names the Deployment and the Service and labels the pods"]
        );
        p.spec.service = None;
        assert!(validate_producer(&p).is_ok());
    }

    #[test]
    fn label_syntax() {
        assert!(check_qualified_name("app.kubernetes.io/part-of").is_ok());
        assert!(check_qualified_name("team").is_ok());
        assert!(check_qualified_name("Example.com/x").is_err());
        assert!(check_qualified_name("example.com/").is_err());
        assert!(check_qualified_name("-x").is_err());
        assert!(check_label_value("").is_ok());
        assert!(check_label_value(&"a".repeat(64)).is_err());
        assert!(check_port_name("http-2").is_ok());
        assert!(check_port_name("8080").is_err());
        assert!(check_port_name("a--b").is_err());
    }
}
