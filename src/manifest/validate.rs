use std::collections::BTreeMap;

use super::{Document, ManifestError, ManifestWarning, Resource, Source};
use crate::api::{
    KafkaCluster, KafkaConsumer, KafkaOffsetReset, KafkaProducer, KafkaTopic, KafkaUser,
    StreamTopology,
};
use crate::clusters::validate_cluster;
use crate::model::FieldError;
use crate::topics::{resolve_topic, DesiredTopic};
use crate::topologies::{expand, Expansion};
use crate::workloads::{
    check_topic_clusters, validate_consumer, validate_producer, ConnectionFacts, TopicRef,
    ValidatedConsumer, ValidatedProducer,
};

/// A validated topic and the cluster it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicTarget {
    pub source: Source,
    pub namespace: Option<String>,
    /// The KafkaTopic's `metadata.name`.
    pub resource: String,
    pub cluster_ref: String,
    pub desired: DesiredTopic,
}

/// Everything in a set of manifests, valid as a whole.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ValidatedSet {
    pub clusters: Vec<(Source, KafkaCluster)>,
    /// The topics `plan` / `apply` / `delete` act on.
    pub topics: Vec<TopicTarget>,
    /// Consumers and producers are for the operator: checked here, never planned.
    pub consumers: Vec<(Source, ValidatedConsumer)>,
    pub producers: Vec<(Source, ValidatedProducer)>,
    /// KafkaUsers are for the operator: checked here (`users::validate_user` and the CRD's CEL
    /// rules), never planned.
    pub users: Vec<(Source, KafkaUser)>,
    /// Topologies, expanded; their children are among the topics, consumers and producers.
    pub topologies: Vec<(Source, Expansion)>,
    /// Doubts that do not make the set invalid.
    pub warnings: Vec<ManifestWarning>,
    /// Every document validated, the children of topologies included (at their topology's
    /// source).
    pub documents: Vec<Document>,
}

impl ValidatedSet {
    /// The cluster a topic's `clusterRef` names, if it is among the manifests.
    pub fn cluster_for(&self, target: &TopicTarget) -> Option<&KafkaCluster> {
        self.clusters.iter().map(|(_, c)| c).find(|c| {
            c.metadata.namespace == target.namespace
                && c.metadata.name.as_deref() == Some(target.cluster_ref.as_str())
        })
    }
}

/// Two KafkaUsers of one cluster claiming one principal: the operator would keep it for the
/// older and refuse the newer (`ResourceConflict`), so the manifests must say which is meant.
fn user_principal_claims(set: &ValidatedSet, errors: &mut Vec<ManifestError>) {
    let mut claims: BTreeMap<(Option<&str>, &str, String), (&Source, &str)> = BTreeMap::new();
    for (source, user) in &set.users {
        let Some(principal) = crate::users::desired::claimed_principal(user) else {
            continue;
        };
        let namespace = user.metadata.namespace.as_deref();
        let key = (namespace, user.spec.cluster_ref.as_str(), principal.clone());
        let name = user.metadata.name.as_deref().unwrap_or_default();
        if let Some((first, first_name)) = claims.get(&key) {
            let (path, what) = match user.spec.authentication.type_ {
                crate::api::AuthenticationType::Tls => ("spec.authentication.subject", "subject"),
                _ => ("spec.userName", "userName"),
            };
            errors.push(at(
                source,
                FieldError::new(
                    path,
                    format!(
                        "principal {principal} is already claimed by KafkaUser '{first_name}' ({first}) on cluster '{}': the operator would keep it for the older and refuse the newer (ResourceConflict); give each user its own {what}",
                        user.spec.cluster_ref
                    ),
                ),
            ));
        } else {
            claims.insert(key, (source, name));
        }
    }
}

pub(super) fn at(source: &Source, e: FieldError) -> ManifestError {
    ManifestError {
        file: source.file.clone(),
        document: Some(source.document),
        path: e.path,
        message: e.message,
    }
}

/// The creation-time CEL rules a CRD declares, compiled once and evaluated as the API server
/// would: a backstop so nothing the cluster would refuse passes `validate`. (The typed checks
/// run first and give the more precise message where both apply.)
struct CelRules<K> {
    schema: kube::core::cel::CompiledSchema,
    kind: std::marker::PhantomData<K>,
}

impl<K: kube::CustomResourceExt + serde::Serialize> CelRules<K> {
    fn new() -> Self {
        let crd = K::crd();
        let schema = crd.spec.versions[0]
            .schema
            .as_ref()
            .and_then(|s| s.open_api_v3_schema.as_ref())
            .map(|s| serde_json::to_value(s).expect("a CRD schema serializes"))
            .unwrap_or_default();
        Self {
            schema: kube::core::cel::compile_schema(&schema),
            kind: std::marker::PhantomData,
        }
    }

    fn check(&self, resource: &K) -> Vec<FieldError> {
        let value = serde_json::to_value(resource).expect("a resource serializes");
        match kube::core::cel::Validator::new().validate_compiled(&self.schema, &value, None) {
            Ok(()) => Vec::new(),
            Err(errs) => errs
                .into_vec()
                .into_iter()
                .map(|e| FieldError::new(e.field_path, e.message))
                .collect(),
        }
    }
}

/// Checks every rule on every document and across documents. `fallback_cluster` supplies topic
/// defaults for topics whose `clusterRef` is not among the documents (the CLI's `--cluster`).
pub fn validate(
    docs: Vec<Document>,
    fallback_cluster: Option<&KafkaCluster>,
) -> Result<ValidatedSet, Vec<ManifestError>> {
    let mut errors = Vec::new();
    let mut set = ValidatedSet::default();
    let children = expand_topologies(&docs, &mut set, &mut errors);
    // Taken, not copied: a set of 100,000 documents is held once.
    let mut expanded = docs;
    expanded.extend(children);
    let docs = expanded.as_slice();
    let cluster_rules = CelRules::<KafkaCluster>::new();
    let topic_rules = CelRules::<KafkaTopic>::new();
    let user_rules = CelRules::<KafkaUser>::new();
    let reset_rules = CelRules::<KafkaOffsetReset>::new();
    let mut names: BTreeMap<(&str, Option<&str>, &str), &Source> = BTreeMap::new();
    let mut duplicates: Vec<&Source> = Vec::new();

    for doc in docs {
        let (kind, meta) = (doc.resource.kind(), doc.resource.metadata());
        match meta.name.as_deref() {
            None | Some("") => errors.push(at(
                &doc.source,
                FieldError::new("metadata.name", "is required"),
            )),
            Some(name) => {
                if let Some(first) =
                    names.insert((kind, meta.namespace.as_deref(), name), &doc.source)
                {
                    errors.push(at(
                        &doc.source,
                        FieldError::new(
                            "metadata.name",
                            format!("{kind} '{name}' is already declared by {first}"),
                        ),
                    ));
                    duplicates.push(&doc.source);
                }
            }
        }
        if let Resource::OffsetReset(r) = &doc.resource {
            let checked = then_cel(crate::offsets::declared::validate(&r.spec), || {
                reset_rules.check(r)
            });
            if let Err(errs) = checked {
                errors.extend(errs.into_iter().map(|e| at(&doc.source, e)));
            }
        }
        if let Resource::Cluster(c) = &doc.resource {
            let mut errs = validate_cluster(c);
            if errs.is_empty() {
                errs = cluster_rules.check(c);
            }
            if errs.is_empty() {
                set.clusters.push((doc.source.clone(), (**c).clone()));
            }
            errors.extend(errs.into_iter().map(|e| at(&doc.source, e)));
        }
        if let Resource::User(u) = &doc.resource {
            let mut errs = crate::users::validate_user(u);
            if errs.is_empty() {
                errs = user_rules.check(u);
            }
            if errs.is_empty() {
                set.users.push((doc.source.clone(), (**u).clone()));
            }
            errors.extend(errs.into_iter().map(|e| at(&doc.source, e)));
        }
    }

    // Collision key -> where the first topic of that key is declared, and its broker name
    // (a topology's children share one source, so the source alone does not say which).
    let mut topic_names: BTreeMap<(Option<String>, String, String), (Source, String)> =
        BTreeMap::new();
    for doc in docs {
        let Resource::Topic(topic) = &doc.resource else {
            continue;
        };
        if duplicates.contains(&&doc.source) {
            continue;
        }
        let namespace = topic.metadata.namespace.clone();
        let cluster = set
            .clusters
            .iter()
            .map(|(_, c)| c)
            .find(|c| {
                c.metadata.namespace == namespace
                    && c.metadata.name.as_deref() == Some(topic.spec.cluster_ref.as_str())
            })
            .or(fallback_cluster);
        let defaults = cluster.and_then(|c| c.spec.topic_defaults.as_ref());
        let resolved = resolve_topic(topic, defaults).and_then(|d| {
            let errs = topic_rules.check(topic);
            if errs.is_empty() {
                Ok(d)
            } else {
                Err(errs)
            }
        });
        // A topology's child is reported at the entry it came from, not at a child's field.
        let child = topic.metadata.name.as_deref().unwrap_or_default();
        let at_entry = |e: FieldError| {
            let entry = set
                .topologies
                .iter()
                .filter(|(s, _)| s == &doc.source)
                .find_map(|(_, expansion)| expansion.at_topic_entry(child, e.clone()));
            at(&doc.source, entry.unwrap_or(e))
        };
        match resolved {
            Err(errs) => errors.extend(errs.into_iter().map(at_entry)),
            Ok(desired) => {
                let path = if topic.spec.topic_name.is_some() {
                    "spec.topicName"
                } else {
                    "metadata.name"
                };
                let key = (
                    namespace.clone(),
                    topic.spec.cluster_ref.clone(),
                    desired.name.collision_key(),
                );
                if let Some((first, other)) = topic_names.get(&key) {
                    let message = if other == desired.name.as_str() {
                        format!(
                            "topic '{}' on cluster '{}' is already declared by {first}",
                            desired.name, topic.spec.cluster_ref
                        )
                    } else {
                        format!("topic '{}' collides with '{other}' ({first}): Kafka treats '.' and '_' alike in topic names", desired.name)
                    };
                    errors.push(at_entry(FieldError::new(path, message)));
                    continue;
                }
                topic_names.insert(key, (doc.source.clone(), desired.name.to_string()));
                set.topics.push(TopicTarget {
                    source: doc.source.clone(),
                    namespace,
                    resource: child.to_owned(),
                    cluster_ref: topic.spec.cluster_ref.clone(),
                    desired,
                });
            }
        }
    }

    user_principal_claims(&set, &mut errors);
    validate_workloads(docs, &duplicates, &mut set, &mut errors);
    let reads = super::reads::standalone_consumer_warnings(docs, &set);
    set.warnings.extend(reads);
    drop_repeats_of_pruned(docs, &mut errors);
    set.documents = expanded;

    if errors.is_empty() {
        Ok(set)
    } else {
        errors.sort_by(|a, b| (&a.file, a.document).cmp(&(&b.file, b.document)));
        // A missing name is reported by the generic check and by the workload's own.
        errors.dedup();
        Err(errors)
    }
}

/// A document whose invalid fields the loader removed (and reported) is validated without
/// them; what the rules then say at, above or under a removed path only repeats the loader.
fn drop_repeats_of_pruned(docs: &[Document], errors: &mut Vec<ManifestError>) {
    let pruned: BTreeMap<(&std::path::Path, usize), &[String]> = docs
        .iter()
        .filter(|d| !d.pruned.is_empty())
        .map(|d| {
            (
                (d.source.file.as_path(), d.source.document),
                d.pruned.as_slice(),
            )
        })
        .collect();
    if pruned.is_empty() {
        return;
    }
    errors.retain(|e| {
        let Some(paths) = e.document.and_then(|n| pruned.get(&(e.file.as_path(), n))) else {
            return true;
        };
        e.path.is_empty()
            || !paths
                .iter()
                .any(|p| p.starts_with(&e.path) || e.path.starts_with(p.as_str()))
    });
}

/// Expands every topology (the same [`expand`] the operator runs) and returns the children of
/// the valid ones, each at its topology's source. A child that
/// would take the name of a resource declared on its own is refused: the operator would not
/// take over a resource it does not own.
fn expand_topologies(
    docs: &[Document],
    set: &mut ValidatedSet,
    errors: &mut Vec<ManifestError>,
) -> Vec<Document> {
    let topology_rules = CelRules::<StreamTopology>::new();
    let standalone: BTreeMap<(&str, Option<&str>, &str), &Source> = docs
        .iter()
        .filter(|d| !matches!(d.resource, Resource::Topology(_)))
        .filter_map(|d| {
            let meta = d.resource.metadata();
            Some((
                (
                    d.resource.kind(),
                    meta.namespace.as_deref(),
                    meta.name.as_deref()?,
                ),
                &d.source,
            ))
        })
        .collect();
    let mut all = Vec::new();
    for doc in docs {
        let Resource::Topology(topology) = &doc.resource else {
            continue;
        };
        let expansion = expand(topology).and_then(|e| {
            let errs = topology_rules.check(topology);
            if errs.is_empty() {
                Ok(e)
            } else {
                Err(errs)
            }
        });
        let expansion = match expansion {
            Ok(e) => e,
            Err(errs) => {
                errors.extend(errs.into_iter().map(|e| at(&doc.source, e)));
                continue;
            }
        };
        let children = children_of(&expansion);
        let mut clash = false;
        for (path, resource) in &children {
            let meta = resource.metadata();
            let key = (
                resource.kind(),
                meta.namespace.as_deref(),
                meta.name.as_deref().unwrap_or_default(),
            );
            if let Some(other) = standalone.get(&key) {
                clash = true;
                errors.push(at(
                    &doc.source,
                    FieldError::new(
                        path.clone(),
                        format!(
                            "would create {} '{}', which {other} already declares and this topology does not own: rename the entry or remove the other resource",
                            key.0, key.2
                        ),
                    ),
                ));
            }
        }
        if clash {
            continue;
        }
        set.warnings.extend(
            expansion
                .warnings
                .iter()
                .cloned()
                .map(|w| at(&doc.source, w)),
        );
        all.extend(children.into_iter().map(|(_, resource)| Document {
            source: doc.source.clone(),
            resource,
            pruned: Vec::new(),
        }));
        set.topologies.push((doc.source.clone(), expansion));
    }
    all
}

/// A topology's children as resources, each with the path of the entry it came from.
fn children_of(expansion: &Expansion) -> Vec<(String, Resource)> {
    let topics = expansion.topics.iter().enumerate().map(|(i, t)| {
        (
            format!("spec.topics[{i}].name"),
            Resource::Topic(Box::new(t.clone())),
        )
    });
    let producers = expansion.producers.iter().enumerate().map(|(i, p)| {
        (
            format!("spec.producers[{i}].name"),
            Resource::Producer(Box::new(p.clone())),
        )
    });
    let consumers = expansion.consumers.iter().enumerate().map(|(i, c)| {
        (
            format!("spec.consumers[{i}].name"),
            Resource::Consumer(Box::new(c.clone())),
        )
    });
    topics.chain(producers).chain(consumers).collect()
}

/// Consumers and producers: each on its own (the typed checks, then the CRD's CEL rules),
/// then against the rest of the set: the `KafkaTopic`s they name must live on their cluster,
/// their cluster's credentials must be passable to a pod, and a consumer and a producer of
/// one name would fight over one Deployment.
fn validate_workloads(
    docs: &[Document],
    duplicates: &[&Source],
    set: &mut ValidatedSet,
    errors: &mut Vec<ManifestError>,
) {
    let consumer_rules = CelRules::<KafkaConsumer>::new();
    let producer_rules = CelRules::<KafkaProducer>::new();
    let kafka_topics: Vec<&KafkaTopic> = docs
        .iter()
        .filter_map(|d| match &d.resource {
            Resource::Topic(t) => Some(&**t),
            _ => None,
        })
        .collect();
    let mut deployments: BTreeMap<(Option<String>, String), (&str, &Source)> = BTreeMap::new();

    for doc in docs {
        if duplicates.contains(&&doc.source) {
            continue;
        }
        let checked = match &doc.resource {
            Resource::Consumer(c) => then_cel(validate_consumer(c), || consumer_rules.check(c))
                .map(|v| {
                    let refs = (v.owner.clone(), v.cluster_ref.clone(), v.topics.clone());
                    set.consumers.push((doc.source.clone(), v));
                    refs
                }),
            Resource::Producer(p) => then_cel(validate_producer(p), || producer_rules.check(p))
                .map(|v| {
                    let refs = (v.owner.clone(), v.cluster_ref.clone(), v.topics.clone());
                    set.producers.push((doc.source.clone(), v));
                    refs
                }),
            _ => continue,
        };
        let (owner, cluster_ref, topics) = match checked {
            Ok(refs) => refs,
            Err(errs) => {
                errors.extend(errs.into_iter().map(|e| at(&doc.source, e)));
                continue;
            }
        };
        let kind = doc.resource.kind();
        let mut errs = cross_check(&owner.namespace, &cluster_ref, &topics, &kafka_topics, set);
        let key = (owner.namespace.clone(), owner.name.clone());
        if let Some((other, first)) = deployments.insert(key.clone(), (kind, &doc.source)) {
            deployments.insert(key, (other, first));
            errs.push(FieldError::new(
                "metadata.name",
                format!(
                    "{kind} '{}' and {other} '{}' ({first}) would both own Deployment '{}': rename one",
                    owner.name, owner.name, owner.name
                ),
            ));
        }
        if !errs.is_empty() {
            set.consumers.retain(|(s, _)| s != &doc.source);
            set.producers.retain(|(s, _)| s != &doc.source);
            errors.extend(errs.into_iter().map(|e| at(&doc.source, e)));
        }
    }
}

fn then_cel<T>(
    typed: Result<T, Vec<FieldError>>,
    cel: impl FnOnce() -> Vec<FieldError>,
) -> Result<T, Vec<FieldError>> {
    let value = typed?;
    let errs = cel();
    if errs.is_empty() {
        Ok(value)
    } else {
        Err(errs)
    }
}

fn cross_check(
    namespace: &Option<String>,
    cluster_ref: &str,
    topics: &[TopicRef],
    kafka_topics: &[&KafkaTopic],
    set: &ValidatedSet,
) -> Vec<FieldError> {
    let same_namespace = kafka_topics
        .iter()
        .copied()
        .filter(|t| &t.metadata.namespace == namespace);
    let mut errs = check_topic_clusters(topics, cluster_ref, same_namespace);
    let cluster = set.clusters.iter().map(|(_, c)| c).find(|c| {
        &c.metadata.namespace == namespace && c.metadata.name.as_deref() == Some(cluster_ref)
    });
    if let Some(Err(why)) = cluster.map(ConnectionFacts::from_cluster) {
        let why: Vec<String> = why.iter().map(ToString::to_string).collect();
        errs.push(FieldError::new(
            "spec.clusterRef",
            format!(
                "KafkaCluster '{cluster_ref}' cannot be handed to a workload: {}",
                why.join("; ")
            ),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::manifest::load_str;

    fn check(text: &str) -> Result<ValidatedSet, Vec<String>> {
        let (docs, errors) = load_str(Path::new("orders.yaml"), text);
        if !errors.is_empty() {
            return Err(errors.iter().map(ToString::to_string).collect());
        }
        validate(docs, None).map_err(|e| e.iter().map(ToString::to_string).collect())
    }

    fn topic(name: &str, partitions: i32) -> String {
        format!("---\napiVersion: tributary.io/v1alpha1\nkind: KafkaTopic\nmetadata:\n  name: {name}\nspec:\n  clusterRef: local\n  partitions: {partitions}\n")
    }

    const CLUSTER: &str = "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaCluster\nmetadata:\n  name: local\nspec:\n  bootstrapServers: [\"127.0.0.1:9092\"]\n  topicDefaults:\n    replicationFactor: 1\n    config:\n      min.insync.replicas: \"1\"\n";

    /// Loading and validating as the CLI does: every error of both.
    fn all_errors(text: &str) -> Vec<String> {
        let (docs, mut errors) = load_str(Path::new("orders.yaml"), text);
        errors.extend(validate(docs, None).err().unwrap_or_default());
        errors.iter().map(ToString::to_string).collect()
    }

    /// Issue #13, defect 8: an invalid enum value (and a wrong type, and a repeated key) no
    /// longer hides the document's other problems.
    #[test]
    fn a_shape_error_hides_no_other_problem() {
        let text = topic("orders", 0).replace(
            "  partitions: 0\n",
            "  partitions: 0\n  deletionPolicy: Purge\n  replicationFactor: one\n  config:\n    retention.ms: \"soon\"\n    cleanup.policy: delete\n    cleanup.policy: compact\n",
        );
        let e = all_errors(&text);
        assert_eq!(e.len(), 5, "{e:#?}");
        for path in [
            "spec.config.cleanup.policy: is given more than once",
            "spec.deletionPolicy: must be one of Retain, Delete",
            "spec.replicationFactor: must be an integer",
            "spec.partitions: must be >= 1, got 0",
            "spec.config.retention.ms: ",
        ] {
            assert!(
                e.iter()
                    .any(|l| l.starts_with(&format!("orders.yaml#1 {path}"))),
                "{path} in {e:#?}"
            );
        }
    }

    #[test]
    fn the_issue_example_error() {
        let e = check(&format!("{}{}", topic("orders", 3), topic("refunds", 0))).unwrap_err();
        assert_eq!(e, ["orders.yaml#2 spec.partitions: must be >= 1, got 0"]);
    }

    #[test]
    fn defaults_come_from_the_cluster_in_the_set() {
        let set = check(&format!("{CLUSTER}{}", topic("orders", 3))).unwrap();
        assert_eq!(set.topics[0].desired.replication_factor, Some(1));
        assert_eq!(set.topics[0].desired.config["min.insync.replicas"], "1");
        assert!(set.cluster_for(&set.topics[0]).is_some());
    }

    #[test]
    fn duplicate_topic_across_documents() {
        let e = check(&format!("{}{}", topic("orders", 3), topic("orders", 3))).unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("orders.yaml#2 metadata.name: KafkaTopic 'orders' is already declared by orders.yaml#1"), "{e:?}");
    }

    #[test]
    fn same_topic_name_by_two_resources() {
        let second = topic("orders-copy", 3)
            .replace("  partitions: 3", "  partitions: 3\n  topicName: orders");
        let e = check(&format!("{}{second}", topic("orders", 3))).unwrap_err();
        assert!(e[0].contains("spec.topicName: topic 'orders' on cluster 'local' is already declared by orders.yaml#1"), "{e:?}");
    }

    #[test]
    fn dot_underscore_collision_in_the_set() {
        let e = check(&format!(
            "{}{}",
            topic("ride.requests", 3),
            topic("ride_requests", 3)
        ))
        .unwrap_err();
        assert!(e[0].contains("collides with 'ride.requests'"), "{e:?}");
    }

    #[test]
    fn illegal_topic_name_and_unknown_config_key() {
        let text = topic("orders", 3).replace(
            "  partitions: 3",
            "  partitions: 3\n  topicName: \"__internal\"\n  config:\n    retention.msx: \"1\"",
        );
        let e = check(&text).unwrap_err();
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].contains("spec.topicName: '__internal' starts with '__'"),
            "{e:?}"
        );
        assert!(e[1].contains("spec.config.retention.msx: 'retention.msx' is not a Kafka topic config; did you mean 'retention.ms'?"), "{e:?}");
    }

    const CONSUMER: &str = "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaConsumer\nmetadata:\n  name: analytics\nspec:\n  clusterRef: local\n  topics: [orders]\n  template:\n    image: ghcr.io/acme/analytics:1.0\n  autoscaling:\n    maxReplicas: 5\n    lagThreshold: 1000\n";

    const PRODUCER: &str = "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaProducer\nmetadata:\n  name: web-app\nspec:\n  clusterRef: local\n  topics: [orders]\n  template:\n    image: ghcr.io/acme/web:1.0\n  service:\n    ports: [{name: http, port: 80, targetPort: 8080}]\n";

    const USER: &str = "---\napiVersion: tributary.io/v1alpha1\nkind: KafkaUser\nmetadata:\n  name: orders-service\nspec:\n  clusterRef: local\n  authentication:\n    type: scram-sha-512\n  authorization:\n    acls:\n      - resource: {type: topic, name: orders}\n        operations: [Write, Describe]\n";

    #[test]
    fn two_users_claiming_one_principal_on_one_cluster_are_refused_offline() {
        let other = USER
            .replace("name: orders-service\n", "name: orders-copy\n")
            .replace(
                "  clusterRef: local\n",
                "  clusterRef: local\n  userName: orders-service\n",
            );
        let e = check(&format!("{CLUSTER}{USER}{other}")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("#3 spec.userName: principal User:orders-service is already claimed by KafkaUser 'orders-service'"),
            "{e:?}"
        );
        assert!(e[0].contains("ResourceConflict"), "{e:?}");
        // On another cluster, the same principal is another identity.
        let elsewhere = other.replace("clusterRef: local", "clusterRef: elsewhere");
        let second = CLUSTER.replace("name: local", "name: elsewhere");
        assert!(check(&format!("{CLUSTER}{second}{USER}{elsewhere}")).is_ok());
    }

    #[test]
    fn users_are_validated_offline_and_kept_out_of_the_topic_set() {
        let set = check(&format!("{CLUSTER}{USER}")).unwrap();
        assert_eq!(set.users.len(), 1);
        assert!(set.topics.is_empty());

        let unknown = USER.replace("[Write, Describe]", "[Write, Publish]");
        let e = check(&format!("{CLUSTER}{unknown}")).unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("spec.authorization.acls[0].operations[1]")
                && e[0].contains("IdempotentWrite"),
            "an unknown operation is named with the ones there are: {e:?}"
        );

        let wrong = USER.replace("{type: topic, name: orders}", "{type: group, name: orders}");
        let e = check(&format!("{CLUSTER}{wrong}")).unwrap_err();
        assert!(
            e[0].contains("operations[0]: Write does not apply to a group resource"),
            "{e:?}"
        );

        let inline = USER.replace(
            "    type: scram-sha-512\n",
            "    type: scram-sha-512\n    password: hunter2\n",
        );
        let e = check(&format!("{CLUSTER}{inline}")).unwrap_err();
        assert!(
            e.iter().any(|e| e
                .contains("spec.authentication.password: an inline password is refused")
                && e.contains("passwordFrom")),
            "{e:?}"
        );
        assert!(e.iter().all(|e| !e.contains("hunter2")), "{e:?}");

        let star = USER.replace(
            "  clusterRef: local\n",
            "  clusterRef: local\n  userName: \"*\"\n",
        );
        let e = check(&format!("{CLUSTER}{star}")).unwrap_err();
        assert!(e.iter().any(|e| e.contains("spec.userName")), "{e:?}");
    }

    #[test]
    fn workloads_are_validated_and_kept_out_of_the_topic_set() {
        let set = check(&format!(
            "{CLUSTER}{}{CONSUMER}{PRODUCER}",
            topic("orders", 3)
        ))
        .unwrap();
        assert_eq!(set.topics.len(), 1);
        assert_eq!(set.consumers.len(), 1);
        assert_eq!(set.producers.len(), 1);
        let (source, consumer) = &set.consumers[0];
        assert_eq!(source.to_string(), "orders.yaml#3");
        assert_eq!(consumer.group_id, "analytics");
        let crate::workloads::Scaling::Autoscaled(policy) = &consumer.scaling else {
            panic!("autoscaled")
        };
        assert_eq!(
            (policy.min_replicas, policy.max_replicas),
            (1, 5),
            "defaults applied"
        );
        assert_eq!(
            set.producers[0].1.service.as_ref().unwrap().ports[0].target_port,
            8080
        );
    }

    #[test]
    fn workload_errors_name_file_document_and_field() {
        let bad_consumer = CONSUMER
            .replace(
                "    maxReplicas: 5",
                "    minReplicas: 7\n    maxReplicas: 5",
            )
            .replace("topics: [orders]", "topics: [orders, billing/invoices]");
        let bad_producer = PRODUCER.replace("ghcr.io/acme/web:1.0", "\"\"");
        let e = check(&format!("{CLUSTER}{bad_consumer}{bad_producer}")).unwrap_err();
        assert_eq!(
            e,
            [
                "orders.yaml#2 spec.topics[1]: 'billing/invoices' is a topic in another namespace; only KafkaTopics of this namespace (or topic names without '/') can be used",
                "orders.yaml#2 spec.autoscaling.minReplicas: must be <= maxReplicas (5), got 7",
                "orders.yaml#3 spec.template.image: must name a container image",
            ]
        );
    }

    #[test]
    fn replicas_and_autoscaling_together_are_refused() {
        let both = CONSUMER.replace("  autoscaling:", "  replicas: 2\n  autoscaling:");
        let e = check(&both).unwrap_err();
        assert_eq!(
            e,
            ["orders.yaml#1 spec: set exactly one of replicas and autoscaling, not both"]
        );
    }

    #[test]
    fn a_named_kafka_topic_must_live_on_the_workloads_cluster() {
        let other = topic("orders", 3).replace("clusterRef: local", "clusterRef: other");
        let e = check(&format!("{other}{CONSUMER}")).unwrap_err();
        assert_eq!(
            e,
            ["orders.yaml#2 spec.topics[0]: KafkaTopic 'orders' lives on cluster 'other', not on 'local' (spec.clusterRef)"]
        );
    }

    #[test]
    fn a_consumer_and_a_producer_of_one_name_conflict() {
        let twin = PRODUCER.replace("name: web-app", "name: analytics");
        let e = check(&format!("{CONSUMER}{twin}")).unwrap_err();
        assert_eq!(
            e,
            ["orders.yaml#2 metadata.name: KafkaProducer 'analytics' and KafkaConsumer 'analytics' (orders.yaml#1) would both own Deployment 'analytics': rename one"]
        );
    }

    #[test]
    fn a_cluster_with_file_credentials_cannot_serve_workloads() {
        let cluster = format!("{CLUSTER}  sasl:\n    mechanism: PLAIN\n    username: {{value: svc}}\n    password: {{file: /etc/kafka/password}}\n");
        assert!(check(&cluster).is_ok(), "fine for the CLI itself");
        let e = check(&format!("{cluster}{CONSUMER}")).unwrap_err();
        assert_eq!(
            e,
            ["orders.yaml#2 spec.clusterRef: KafkaCluster 'local' cannot be handed to a workload: spec.sasl.password.file: '/etc/kafka/password' is a file of the operator, which workloads cannot read: use secretKeyRef to let consumers and producers connect"]
        );
    }

    #[test]
    fn a_workload_without_a_name_is_reported_once() {
        let e = check(&CONSUMER.replace("  name: analytics\n", "  labels: {a: b}\n")).unwrap_err();
        assert_eq!(e, ["orders.yaml#1 metadata.name: is required"]);
    }

    #[test]
    fn invalid_cluster() {
        let e = check(&CLUSTER.replace("127.0.0.1:9092", "localhost")).unwrap_err();
        assert_eq!(
            e,
            ["orders.yaml#1 spec.bootstrapServers[0]: must be host:port, got 'localhost'"]
        );
    }
}
