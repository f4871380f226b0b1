//! From a `StreamTopology` to the children the operator creates: one `KafkaTopic`,
//! `KafkaProducer` or `KafkaConsumer` per entry, named `<topology>-<entry>`, labelled with the
//! topology and owned by it. Pure: the CLI (`plan`, `apply`, `render`, `graph`) and the
//! controller call the same [`expand`], so they never disagree.
//!
//! Expansion refuses a topology whose graph is broken (a reference to an undeclared topic,
//! duplicate names, a child that would be invalid) with every problem and its field path in
//! the topology (`spec.consumers[2].topics[0]`), and reports what is merely doubtful (a topic
//! nobody reads, more replicas than partitions) as warnings.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;
use kube::Resource;

use crate::api::{
    DeletionPolicy, KafkaConsumer, KafkaConsumerSpec, KafkaProducer, KafkaProducerSpec, KafkaTopic,
    KafkaTopicSpec, StreamTopology, TopologyConsumer, TopologyProducer, TopologyTopic,
};
use crate::model::{
    check_annotations_size, topic_config, DnsLabel, DnsSubdomain, FieldError, LabelValue, NameError,
};
use crate::topics::resolve_topic;
use crate::workloads::{
    consumer_read_warnings, validate_consumer, validate_producer, KnownTopic, Owner,
    LABEL_MANAGED_BY,
};

/// Label on every child: the name of the topology it belongs to.
pub const TOPOLOGY_LABEL: &str = "tributary.io/topology";
/// Label on every child: the entry of the topology it was made from (`spec.topics[].name`,
/// `spec.producers[].name`, `spec.consumers[].name`).
pub const ENTRY_LABEL: &str = "tributary.io/topology-entry";
/// Documentation annotations on topic children, from the topic's `key`, `schema` and
/// `description`.
pub const KEY_ANNOTATION: &str = "tributary.io/key";
pub const SCHEMA_ANNOTATION: &str = "tributary.io/schema";
pub const DESCRIPTION_ANNOTATION: &str = "tributary.io/description";

const TOPIC_RENAMES: &[(&str, &str)] = &[("metadata.name", "name"), ("spec.topicName", "name")];
const WORKLOAD_RENAMES: &[(&str, &str)] = &[("metadata.name", "name")];
const CONSUMER_RENAMES: &[(&str, &str)] = &[("metadata.name", "name"), ("spec.groupId", "group")];

/// A topology, expanded: its children in spec order, and the warnings about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Expansion {
    /// The topology's name.
    pub name: String,
    pub namespace: Option<String>,
    /// `spec.topics`, index for index.
    pub topics: Vec<KafkaTopic>,
    /// `spec.producers`, index for index.
    pub producers: Vec<KafkaProducer>,
    /// `spec.consumers`, index for index.
    pub consumers: Vec<KafkaConsumer>,
    /// What does not stop the topology but deserves a look.
    pub warnings: Vec<FieldError>,
}

impl Expansion {
    /// Every child as (kind, name), topics first, in spec order.
    pub fn children(&self) -> Vec<(&'static str, String)> {
        let names = |kind: &'static str, metas: Vec<&ObjectMeta>| {
            metas
                .into_iter()
                .map(move |m| (kind, m.name.clone().unwrap_or_default()))
                .collect::<Vec<_>>()
        };
        let mut all = names(
            "KafkaTopic",
            self.topics.iter().map(|t| &t.metadata).collect(),
        );
        all.extend(names(
            "KafkaProducer",
            self.producers.iter().map(|p| &p.metadata).collect(),
        ));
        all.extend(names(
            "KafkaConsumer",
            self.consumers.iter().map(|c| &c.metadata).collect(),
        ));
        all
    }
}

impl Expansion {
    /// A problem found on one of this topology's `KafkaTopic` children (named `child`), moved
    /// to the entry it came from: `spec.topicName` of the second topic's child is
    /// `spec.topics[1].name`. `None` when no topic child has that name.
    pub fn at_topic_entry(&self, child: &str, error: FieldError) -> Option<FieldError> {
        let i = self
            .topics
            .iter()
            .position(|t| t.metadata.name.as_deref() == Some(child))?;
        Some(relocate(error, &format!("spec.topics[{i}]"), TOPIC_RENAMES))
    }
}

/// The name of the child made from entry `entry` of topology `topology`.
pub fn child_name(topology: &str, entry: &str) -> String {
    format!("{topology}-{entry}")
}

/// The `KafkaTopic` name of a topic entry: the broker name made a Kubernetes name (lowercase,
/// `_` as `-`), after the topology's name.
pub fn topic_child_name(topology: &str, topic: &str) -> String {
    child_name(topology, &topic.to_ascii_lowercase().replace('_', "-"))
}

/// Expands a topology into its children, or says everything that is wrong with it.
pub fn expand(topology: &StreamTopology) -> Result<Expansion, Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = topology_name(topology, &mut errors);
    check_unique_entries(topology, &mut errors);
    let declared = declared_topics(topology);
    check_references(topology, &declared, &mut errors);
    let Some(name) = name else {
        return Err(errors);
    };
    let name = name.as_str();
    let owner = owner_reference(topology, name);
    let meta = |child: String, entry: &str| ObjectMeta {
        name: Some(child),
        namespace: topology.metadata.namespace.clone(),
        labels: Some(BTreeMap::from([
            (LABEL_MANAGED_BY.to_owned(), "tributary".to_owned()),
            (TOPOLOGY_LABEL.to_owned(), name.to_owned()),
            (ENTRY_LABEL.to_owned(), entry.to_owned()),
        ])),
        owner_references: owner.clone().map(|o| vec![o]),
        ..Default::default()
    };
    let spec = &topology.spec;

    // Default configs are checked once, where they are written, not once per topic.
    let default_config = spec.defaults.as_ref().map(|d| &d.config);
    for (key, value) in default_config.into_iter().flatten() {
        if let Err(why) = topic_config::check(key, value) {
            errors.push(FieldError::new(format!("spec.defaults.config.{key}"), why));
        }
    }
    for (key, why) in default_config
        .map(topic_config::check_together)
        .unwrap_or_default()
    {
        errors.push(FieldError::new(format!("spec.defaults.config.{key}"), why));
    }
    let inherited = |entry: &TopologyTopic, path: &str| {
        path.strip_prefix("spec.config.").is_some_and(|key| {
            !entry.config.contains_key(key) && default_config.is_some_and(|d| d.contains_key(key))
        })
    };

    let mut topics = Vec::new();
    for (i, entry) in spec.topics.iter().enumerate() {
        let at = format!("spec.topics[{i}]");
        let child = topic_child_name(name, &entry.name);
        match DnsSubdomain::parse(&child) {
            Err(why) => errors.push(FieldError::new(
                format!("{at}.name"),
                format!("gives the KafkaTopic name '{child}', which {why}"),
            )),
            Ok(_) => check_entry_label(&entry.name, &at, "KafkaTopic", &mut errors),
        }
        let Some(topic) = topic_child(topology, entry, meta(child, &entry.name), &at, &mut errors)
        else {
            continue;
        };
        let checked = resolve_topic(&topic, None).map_err(|errs| {
            errs.into_iter()
                .filter(|e| e.path != "spec.clusterRef" && !inherited(entry, &e.path))
                .map(|e| relocate(e, &at, TOPIC_RENAMES))
        });
        if let Err(errs) = checked {
            errors.extend(errs);
        }
        topics.push(topic);
    }
    let topic_refs: BTreeMap<&str, String> = spec
        .topics
        .iter()
        .map(|t| (t.name.as_str(), topic_child_name(name, &t.name)))
        .collect();
    let child_topics = |topics: &[String]| -> Vec<String> {
        topics
            .iter()
            .map(|t| {
                topic_refs
                    .get(t.as_str())
                    .cloned()
                    .unwrap_or_else(|| t.clone())
            })
            .collect()
    };

    let mut producers = Vec::new();
    for (i, entry) in spec.producers.iter().enumerate() {
        let at = format!("spec.producers[{i}]");
        let producer = producer_child(
            topology,
            entry,
            meta(child_name(name, &entry.name), &entry.name),
            child_topics(&entry.topics),
        );
        let errs = validate_producer(&producer).err().unwrap_or_default();
        check_workload_entry(
            &entry.name,
            &at,
            ("KafkaProducer", WORKLOAD_RENAMES),
            errs,
            &mut errors,
        );
        producers.push(producer);
    }
    let default_partitions = spec.defaults.as_ref().and_then(|d| d.partitions);
    let partitions: BTreeMap<&str, i32> = spec
        .topics
        .iter()
        .filter_map(|t| Some((t.name.as_str(), t.partitions.or(default_partitions)?)))
        .collect();
    let mut consumers = Vec::new();
    let mut read_warnings = Vec::new();
    for (i, entry) in spec.consumers.iter().enumerate() {
        let at = format!("spec.consumers[{i}]");
        let consumer = consumer_child(
            topology,
            entry,
            meta(child_name(name, &entry.name), &entry.name),
            child_topics(&entry.topics),
        );
        let errs = match validate_consumer(&consumer) {
            Ok(valid) => {
                // Shown by the entry's topic names, as the topology writes them.
                let known: Vec<Option<KnownTopic>> = entry
                    .topics
                    .iter()
                    .map(|t| {
                        Some(KnownTopic {
                            name: t.clone(),
                            partitions: *partitions.get(t.as_str())?,
                        })
                    })
                    .collect();
                read_warnings.extend(
                    consumer_read_warnings(&valid, &known)
                        .into_iter()
                        .map(|w| relocate(w, &at, CONSUMER_RENAMES)),
                );
                Vec::new()
            }
            Err(errs) => errs,
        };
        check_workload_entry(
            &entry.name,
            &at,
            ("KafkaConsumer", CONSUMER_RENAMES),
            errs,
            &mut errors,
        );
        consumers.push(consumer);
    }

    if !errors.is_empty() {
        errors.dedup();
        return Err(errors);
    }
    read_warnings.extend(topic_warnings(topology));
    Ok(Expansion {
        warnings: read_warnings,
        name: name.to_owned(),
        namespace: topology.metadata.namespace.clone(),
        topics,
        producers,
        consumers,
    })
}

/// The topology's own name: required, and a DNS label, because it starts every child's name
/// and is a label value on each.
fn topology_name(topology: &StreamTopology, errors: &mut Vec<FieldError>) -> Option<DnsLabel> {
    let Some(name) = topology.metadata.name.as_deref().filter(|n| !n.is_empty()) else {
        errors.push(FieldError::new("metadata.name", "is required"));
        return None;
    };
    DnsLabel::parse(name)
        .map_err(|why| {
            let message = match why {
                NameError::TooLong { .. } => format!("{why} (it starts every child's name)"),
                _ => why.to_string(),
            };
            errors.push(FieldError::new("metadata.name", message));
        })
        .ok()
}

/// Each entry's name is the value of the [`ENTRY_LABEL`] on its child, so it must be a label
/// value (a topic's name may be longer than a label value, or begin or end with '_' or '.').
fn check_entry_label(entry: &str, at: &str, kind: &str, errors: &mut Vec<FieldError>) {
    if let Err(why) = LabelValue::parse(entry) {
        errors.push(FieldError::new(
            format!("{at}.name"),
            format!("'{entry}' {why}: it is the value of the label {ENTRY_LABEL} on the {kind}, and Kubernetes refuses any other"),
        ));
    }
}

/// The problems of a producer's or consumer's child (of `kind`), at its entry, its fields
/// renamed by `renames`; and unless the child's name is already refused, the entry's label.
fn check_workload_entry(
    entry: &str,
    at: &str,
    (kind, renames): (&str, &[(&str, &str)]),
    child_errors: Vec<FieldError>,
    errors: &mut Vec<FieldError>,
) {
    let name_path = format!("{at}.name");
    let before = errors.len();
    errors.extend(child_errors.into_iter().map(|e| relocate(e, at, renames)));
    if !errors[before..].iter().any(|e| e.path == name_path) {
        check_entry_label(entry, at, kind, errors);
    }
}

/// Broker topic names declared in `spec.topics`.
fn declared_topics(topology: &StreamTopology) -> BTreeSet<&str> {
    topology
        .spec
        .topics
        .iter()
        .map(|t| t.name.as_str())
        .collect()
}

/// No two topics, producers or consumers of one name; no two topics Kafka would confuse
/// ('.' and '_' alike) or that would get one `KafkaTopic` name; no producer and consumer of
/// one name (they would share a Deployment).
fn check_unique_entries(topology: &StreamTopology, errors: &mut Vec<FieldError>) {
    let spec = &topology.spec;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut kafka_keys: BTreeMap<String, usize> = BTreeMap::new();
    let mut child_names: BTreeMap<String, usize> = BTreeMap::new();
    for (i, t) in spec.topics.iter().enumerate() {
        let path = format!("spec.topics[{i}].name");
        if let Some(first) = seen.insert(t.name.clone(), i) {
            seen.insert(t.name.clone(), first);
            errors.push(FieldError::new(
                path,
                format!(
                    "topic '{}' is already declared by spec.topics[{first}]",
                    t.name
                ),
            ));
            continue;
        }
        let key = t.name.replace('.', "_");
        if let Some(first) = kafka_keys.insert(key.clone(), i) {
            kafka_keys.insert(key, first);
            errors.push(FieldError::new(
                path,
                format!(
                    "topic '{}' collides with '{}' (spec.topics[{first}]): Kafka treats '.' and '_' alike in topic names",
                    t.name, spec.topics[first].name
                ),
            ));
            continue;
        }
        let child = topic_child_name("", &t.name);
        if let Some(first) = child_names.insert(child.clone(), i) {
            child_names.insert(child, first);
            errors.push(FieldError::new(
                path,
                format!(
                    "topic '{}' and '{}' (spec.topics[{first}]) would both be KafkaTopic '<topology>{}': rename one",
                    t.name, spec.topics[first].name, topic_child_name("", &t.name)
                ),
            ));
        }
    }
    let mut workloads: BTreeMap<&str, String> = BTreeMap::new();
    let entries = spec
        .producers
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("spec.producers[{i}]"), p.name.as_str()))
        .chain(
            spec.consumers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("spec.consumers[{i}]"), c.name.as_str())),
        );
    for (at, name) in entries {
        match workloads.get(name) {
            Some(first) => errors.push(FieldError::new(
                format!("{at}.name"),
                format!("'{name}' is already the name of {first}: producers and consumers share one namespace of names (each is a Deployment)"),
            )),
            None => {
                workloads.insert(name, at);
            }
        }
    }
}

/// Every topic a producer writes or a consumer reads is one of `spec.topics`.
fn check_references(
    topology: &StreamTopology,
    declared: &BTreeSet<&str>,
    errors: &mut Vec<FieldError>,
) {
    let spec = &topology.spec;
    let lists = spec
        .producers
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("spec.producers[{i}]"), "writes", &p.topics))
        .chain(
            spec.consumers
                .iter()
                .enumerate()
                .map(|(i, c)| (format!("spec.consumers[{i}]"), "reads", &c.topics)),
        );
    for (at, verb, topics) in lists {
        let mut seen = BTreeSet::new();
        for (j, topic) in topics.iter().enumerate() {
            let path = format!("{at}.topics[{j}]");
            if !declared.contains(topic.as_str()) {
                let known = if declared.is_empty() {
                    "spec.topics is empty".to_owned()
                } else {
                    format!(
                        "declared: {}",
                        declared.iter().copied().collect::<Vec<_>>().join(", ")
                    )
                };
                errors.push(FieldError::new(
                    path,
                    format!(
                        "{verb} topic '{topic}', which is not declared in spec.topics ({known})"
                    ),
                ));
            } else if !seen.insert(topic.as_str()) {
                errors.push(FieldError::new(
                    path,
                    format!("topic '{topic}' is listed twice"),
                ));
            }
        }
    }
}

/// The owner reference children carry (the same one Deployments get from their consumer or
/// producer); `None` for a topology read from a file (no uid).
fn owner_reference(topology: &StreamTopology, name: &str) -> Option<OwnerReference> {
    Owner {
        api_version: StreamTopology::api_version(&()).into_owned(),
        kind: StreamTopology::kind(&()).into_owned(),
        name: name.to_owned(),
        namespace: topology.metadata.namespace.clone(),
        uid: topology.metadata.uid.clone(),
    }
    .reference()
}

fn topic_child(
    topology: &StreamTopology,
    entry: &TopologyTopic,
    mut metadata: ObjectMeta,
    at: &str,
    errors: &mut Vec<FieldError>,
) -> Option<KafkaTopic> {
    let defaults = topology.spec.defaults.clone().unwrap_or_default();
    let Some(partitions) = entry.partitions.or(defaults.partitions) else {
        errors.push(FieldError::new(
            format!("{at}.partitions"),
            "is required: set it here or in spec.defaults.partitions",
        ));
        return None;
    };
    let mut config = defaults.config.clone();
    config.extend(entry.config.clone());
    let docs: BTreeMap<String, String> = [
        (KEY_ANNOTATION, &entry.key),
        (SCHEMA_ANNOTATION, &entry.schema),
        (DESCRIPTION_ANNOTATION, &entry.description),
    ]
    .into_iter()
    .filter_map(|(k, v)| Some((k.to_owned(), v.clone()?)))
    .collect();
    if let Err(why) = check_annotations_size(docs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) {
        errors.push(FieldError::new(
            at,
            format!("key, schema and description become the KafkaTopic's annotations, which {why}"),
        ));
    }
    if !docs.is_empty() {
        metadata.annotations = Some(docs);
    }
    Some(KafkaTopic {
        metadata,
        spec: KafkaTopicSpec {
            cluster_ref: topology.spec.cluster_ref.clone(),
            topic_name: Some(entry.name.clone()),
            partitions,
            replication_factor: entry.replication_factor.or(defaults.replication_factor),
            config,
            deletion_policy: entry
                .deletion_policy
                .or(defaults.deletion_policy)
                .unwrap_or(DeletionPolicy::Retain),
        },
        status: None,
    })
}

fn producer_child(
    topology: &StreamTopology,
    entry: &TopologyProducer,
    metadata: ObjectMeta,
    topics: Vec<String>,
) -> KafkaProducer {
    KafkaProducer {
        metadata,
        spec: KafkaProducerSpec {
            cluster_ref: topology.spec.cluster_ref.clone(),
            topics,
            template: entry.template.clone(),
            replicas: entry.replicas.unwrap_or(1),
            service: entry.service.clone(),
        },
        status: None,
    }
}

fn consumer_child(
    topology: &StreamTopology,
    entry: &TopologyConsumer,
    metadata: ObjectMeta,
    topics: Vec<String>,
) -> KafkaConsumer {
    KafkaConsumer {
        metadata,
        spec: KafkaConsumerSpec {
            cluster_ref: topology.spec.cluster_ref.clone(),
            group_id: entry.group.clone(),
            topics,
            template: entry.template.clone(),
            replicas: entry.replicas,
            autoscaling: entry.autoscaling.clone(),
            group_deletion_policy: None,
        },
        status: None,
    }
}

/// A child's problem, at the entry it came from: `spec.template.image` of the third
/// consumer's child is `spec.consumers[2].template.image`. `renames` maps the child fields
/// whose names differ in the entry (`metadata.name` → `name`, `spec.groupId` → `group`).
fn relocate(error: FieldError, at: &str, renames: &[(&str, &str)]) -> FieldError {
    let path = error.path.as_str();
    let rest = if let Some((_, field)) = renames.iter().find(|(child, _)| *child == path) {
        format!(".{field}")
    } else if path == "spec" {
        String::new()
    } else {
        format!(".{}", path.strip_prefix("spec.").unwrap_or(path))
    };
    FieldError::new(format!("{at}{rest}"), error.message)
}

/// What deserves a look about the topics but does not stop the topology (what its consumers
/// read is checked by [`consumer_read_warnings`], as for a standalone consumer).
fn topic_warnings(topology: &StreamTopology) -> Vec<FieldError> {
    let spec = &topology.spec;
    let mut warnings = Vec::new();
    for (i, t) in spec.topics.iter().enumerate() {
        let written = spec.producers.iter().any(|p| p.topics.contains(&t.name));
        let read = spec.consumers.iter().any(|c| c.topics.contains(&t.name));
        let path = format!("spec.topics[{i}]");
        match (written, read) {
            (false, false) => warnings.push(FieldError::new(
                path,
                format!(
                    "topic '{}' is neither written nor read by this topology",
                    t.name
                ),
            )),
            (false, true) => warnings.push(FieldError::new(
                path,
                format!(
                    "topic '{}' is read but no producer of this topology writes it",
                    t.name
                ),
            )),
            (true, false) => warnings.push(FieldError::new(
                path,
                format!(
                    "topic '{}' is written but no consumer of this topology reads it",
                    t.name
                ),
            )),
            (true, true) => {}
        }
    }
    warnings
}
