//! `KafkaUser`: an application's identity on one `KafkaCluster` — a SCRAM credential (its
//! password generated into an owned Secret, or taken from an existing one) or a TLS
//! certificate's subject — and the ACLs granted to it.
#![allow(clippy::duplicated_attributes)] // kube's repeated printcolumn(type_ = ...) arguments

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, SecretKeySelector};

/// An application's Kafka identity, declared.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "tributary.io",
    version = "v1alpha1",
    kind = "KafkaUser",
    derive = "PartialEq",
    namespaced,
    status = "KafkaUserStatus",
    shortname = "kuser",
    category = "tributary",
    doc = "An application's Kafka identity (SCRAM credentials in an owned Secret, or a TLS certificate's subject) and the ACLs granted to it on the cluster named by clusterRef.",
    printcolumn(name = "Cluster", type_ = "string", json_path = ".spec.clusterRef"),
    printcolumn(
        name = "Authentication",
        type_ = "string",
        json_path = ".spec.authentication.type"
    ),
    printcolumn(name = "Principal", type_ = "string", json_path = ".status.principal"),
    printcolumn(name = "Secret", type_ = "string", json_path = ".status.secretName"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new("has(self.userName) == has(oldSelf.userName) && (!has(self.userName) || self.userName == oldSelf.userName)").message("spec.userName is immutable: create a new KafkaUser for a new user"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KafkaUserSpec {
    /// Name of the `KafkaCluster` (same namespace) the user lives on.
    #[x_kube(validation = Rule::new("self == oldSelf").message("spec.clusterRef is immutable: a user cannot move between clusters"))]
    #[schemars(length(min = 1))]
    pub cluster_ref: String,
    /// The SCRAM user name on the broker (the principal is `User:<userName>`); defaults to
    /// `metadata.name`. Not used with `tls`, whose principal is the certificate's subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 249), regex(pattern = r"^[a-zA-Z0-9._@-]+$"))]
    pub user_name: Option<String>,
    /// How the user proves who it is.
    pub authentication: UserAuthentication,
    /// What the user may do; absent: no ACLs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<UserAuthorization>,
}

/// How a user authenticates.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("!has(self.password)").message("authentication.password: an inline password is refused; put it in a Secret and name it in authentication.passwordFrom.secretKeyRef"),
    validation = Rule::new("self.type != 'tls' || has(self.subject)").message("authentication.subject is required with type tls: the certificate's subject is the principal"),
    validation = Rule::new("self.type != 'tls' || (!has(self.secretName) && !has(self.passwordFrom))").message("authentication.secretName and passwordFrom are for SCRAM, not tls"),
    validation = Rule::new("self.type == 'tls' || !has(self.subject)").message("authentication.subject is for type tls only"),
)]
pub struct UserAuthentication {
    /// `scram-sha-512`, `scram-sha-256` or `tls`.
    #[serde(rename = "type")]
    pub type_: AuthenticationType,
    /// SCRAM: the Secret the operator writes (and owns) with the keys `username`, `password`
    /// and `sasl.jaas.config`; defaults to `<metadata.name>-kafka`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub secret_name: Option<String>,
    /// SCRAM: take the password from this key of an existing Secret instead of generating one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_from: Option<PasswordSource>,
    /// TLS: the client certificate's subject as the broker's principal builder reports it,
    /// e.g. `CN=orders,O=acme` (the principal is `User:CN=orders,O=acme`). No CA is run here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 1024))]
    pub subject: Option<String>,
    /// Refused: a password never goes into a manifest. Use `passwordFrom.secretKeyRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Where a SCRAM password comes from.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PasswordSource {
    /// A key of a Secret in the user's namespace.
    pub secret_key_ref: SecretKeySelector,
}

/// The authentication mechanisms a KafkaUser may use.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AuthenticationType {
    #[serde(rename = "scram-sha-512")]
    ScramSha512,
    #[serde(rename = "scram-sha-256")]
    ScramSha256,
    #[serde(rename = "tls")]
    Tls,
}

impl AuthenticationType {
    /// As manifests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthenticationType::ScramSha512 => "scram-sha-512",
            AuthenticationType::ScramSha256 => "scram-sha-256",
            AuthenticationType::Tls => "tls",
        }
    }
}

/// What a user may do.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserAuthorization {
    /// The ACL rules; each grants (or denies) its operations on one resource.
    #[serde(default)]
    #[schemars(length(max = 1000))]
    pub acls: Vec<AclRule>,
}

/// One ACL rule: `operations` on `resource`, from `host`, allowed or denied.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AclRule {
    pub resource: AclResource,
    /// Kafka's ACL operations (`Read`, `Write`, `Describe`, ...); each must apply to the
    /// resource's type.
    #[schemars(length(min = 1, max = 11))]
    pub operations: Vec<AclOperation>,
    /// The client host the rule applies to; `*` (the default) is every host.
    #[serde(default = "any_host")]
    #[schemars(length(min = 1, max = 255))]
    pub host: String,
    /// `allow` (the default) or `deny`.
    #[serde(rename = "type", default)]
    pub type_: AclPermission,
}

fn any_host() -> String {
    "*".into()
}

/// The resource an ACL rule is about.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, KubeSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[x_kube(
    validation = Rule::new("self.type != 'cluster' || !has(self.patternType) || self.patternType == 'literal'").message("a cluster resource is literal: leave patternType unset"),
    validation = Rule::new("self.type == 'cluster' || has(self.name)").message("name is required for a topic, group or transactionalId resource"),
)]
pub struct AclResource {
    /// `topic`, `group`, `transactionalId` or `cluster`.
    #[serde(rename = "type")]
    pub type_: AclResourceType,
    /// The resource's name (or prefix, with `patternType: prefixed`); `*` is every resource of
    /// the type. Unset for `cluster` (Kafka names it `kafka-cluster`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 255))]
    pub name: Option<String>,
    /// `literal` (the default) or `prefixed`.
    #[serde(default)]
    pub pattern_type: AclPatternType,
}

/// Resource types an ACL rule may name.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum AclResourceType {
    #[serde(rename = "topic")]
    Topic,
    #[serde(rename = "group")]
    Group,
    #[serde(rename = "transactionalId")]
    TransactionalId,
    #[serde(rename = "cluster")]
    Cluster,
}

impl AclResourceType {
    /// As manifests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AclResourceType::Topic => "topic",
            AclResourceType::Group => "group",
            AclResourceType::TransactionalId => "transactionalId",
            AclResourceType::Cluster => "cluster",
        }
    }
}

/// How an ACL rule's name matches.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AclPatternType {
    #[default]
    #[serde(rename = "literal")]
    Literal,
    #[serde(rename = "prefixed")]
    Prefixed,
}

/// Whether an ACL rule allows or denies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum AclPermission {
    #[default]
    #[serde(rename = "allow")]
    Allow,
    #[serde(rename = "deny")]
    Deny,
}

/// Kafka's ACL operations, spelled as Kafka's documentation does.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, JsonSchema,
)]
pub enum AclOperation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl AclOperation {
    /// Every operation, in Kafka's order.
    pub const ALL: &'static [AclOperation] = &[
        AclOperation::All,
        AclOperation::Read,
        AclOperation::Write,
        AclOperation::Create,
        AclOperation::Delete,
        AclOperation::Alter,
        AclOperation::Describe,
        AclOperation::ClusterAction,
        AclOperation::DescribeConfigs,
        AclOperation::AlterConfigs,
        AclOperation::IdempotentWrite,
    ];

    /// As manifests spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AclOperation::All => "All",
            AclOperation::Read => "Read",
            AclOperation::Write => "Write",
            AclOperation::Create => "Create",
            AclOperation::Delete => "Delete",
            AclOperation::Alter => "Alter",
            AclOperation::Describe => "Describe",
            AclOperation::ClusterAction => "ClusterAction",
            AclOperation::DescribeConfigs => "DescribeConfigs",
            AclOperation::AlterConfigs => "AlterConfigs",
            AclOperation::IdempotentWrite => "IdempotentWrite",
        }
    }
}

/// What the operator observed and did.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KafkaUserStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// The principal the ACLs name, e.g. `User:orders`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// SCRAM: the Secret with `username`, `password` and `sasl.jaas.config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    /// SCRAM: the `resourceVersion` of the Secret the password was last read from when it was
    /// set on the broker (a newer one is set again). Never the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_version: Option<String>,
    /// The ACLs in force on the broker for the principal, one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<String>,
    /// Paused: the ACL changes that would be made, one line each (`+ acl ...`, `- acl ...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_actions: Vec<String>,
    /// One entry per condition type, merged by `type` under server-side apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
}

impl KafkaUser {
    /// The Secret a SCRAM user's credentials are written to: `spec.authentication.secretName`,
    /// else `<metadata.name>-kafka`. `None` for TLS users.
    pub fn secret_name(&self) -> Option<String> {
        match self.spec.authentication.type_ {
            AuthenticationType::Tls => None,
            _ => Some(
                self.spec
                    .authentication
                    .secret_name
                    .clone()
                    .unwrap_or_else(|| {
                        format!(
                            "{}-kafka",
                            self.metadata.name.as_deref().unwrap_or_default()
                        )
                    }),
            ),
        }
    }
}
