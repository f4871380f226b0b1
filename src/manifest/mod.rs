//! Reading manifests: multi-document YAML files (or directories of them) holding Tributary
//! kinds, parsed into typed resources and validated with the same rules the controllers use.
//! Every error names its file, document (1-based) and field path.

mod load;
#[cfg(test)]
mod properties;
mod reads;
mod validate;
mod yaml;

use std::fmt;
use std::path::PathBuf;

pub use load::{load_paths, load_str};
use validate::at;
pub use validate::{validate, TopicTarget, ValidatedSet};
pub use yaml::{MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES};

use crate::api::{
    KafkaCluster, KafkaConsumer, KafkaOffsetReset, KafkaProducer, KafkaTopic, KafkaUser,
    StreamTopology,
};

/// Where a document came from: `orders.yaml#2`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub file: PathBuf,
    /// 1-based index of the document within the file.
    pub document: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.file.display(), self.document)
    }
}

/// One Tributary resource read from a manifest. Boxed: a file may hold 100,000 of them, and
/// each takes only the size of its own kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Cluster(Box<KafkaCluster>),
    Topic(Box<KafkaTopic>),
    /// For the operator: validated, but never part of a topic plan.
    Consumer(Box<KafkaConsumer>),
    /// For the operator: validated, but never part of a topic plan.
    Producer(Box<KafkaProducer>),
    /// Expanded into its children, which are validated and planned like the others.
    Topology(Box<StreamTopology>),
    /// For the operator: validated, but never part of a topic plan.
    User(Box<KafkaUser>),
    /// For the operator: validated (spec and CEL rules), never part of a plan.
    OffsetReset(Box<KafkaOffsetReset>),
}

impl Resource {
    /// The resource's kind, as manifests spell it.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Cluster(_) => "KafkaCluster",
            Resource::Topic(_) => "KafkaTopic",
            Resource::Consumer(_) => "KafkaConsumer",
            Resource::Producer(_) => "KafkaProducer",
            Resource::Topology(_) => "StreamTopology",
            Resource::User(_) => "KafkaUser",
            Resource::OffsetReset(_) => "KafkaOffsetReset",
        }
    }

    pub fn metadata(&self) -> &kube::api::ObjectMeta {
        match self {
            Resource::Cluster(r) => &r.metadata,
            Resource::Topic(r) => &r.metadata,
            Resource::Consumer(r) => &r.metadata,
            Resource::Producer(r) => &r.metadata,
            Resource::Topology(r) => &r.metadata,
            Resource::User(r) => &r.metadata,
            Resource::OffsetReset(r) => &r.metadata,
        }
    }
}

/// A resource and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub source: Source,
    pub resource: Resource,
    /// Fields removed from the document because they were invalid (already reported by the
    /// loader): what validation says at or under these paths would only repeat it.
    pub pruned: Vec<String>,
}

/// A doubt about the input that does not make it invalid (`tributary validate` prints it;
/// the operator reports it in the resource's status).
pub type ManifestWarning = ManifestError;

/// One problem in the input: `orders.yaml#2 spec.partitions: must be >= 1, got 0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestError {
    pub file: PathBuf,
    /// `None` when the problem is the whole file (unreadable, YAML syntax).
    pub document: Option<usize>,
    /// Field path, empty for document-level problems.
    pub path: String,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(d) = self.document {
            write!(f, "#{d}")?;
        }
        if self.path.is_empty() {
            write!(f, ": {}", self.message)
        } else {
            write!(f, " {}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for ManifestError {}
