//! Kafka identities on the broker, knowing no kind: ACL bindings ([`AclBinding`]) and SCRAM
//! credentials ([`ScramUpsert`], [`ScramDeletion`]), and the [`IdentityAdmin`] trait that reads
//! and changes them. Like [`super::BrokerAdmin`], every call is one batched broker request
//! (none for an empty batch) and tells the requests it made in a [`RequestTally`].
//!
//! The implementations: [`RdKafkaIdentityAdmin`] over the cluster's librdkafka client (made by
//! [`super::RdKafkaAdmin::identity_admin`]; `native.rs` holds the C API calls, in
//! [`super::ffi`]'s style), and the in-memory double [`memory::MemoryIdentity`] for tests
//! (cfg(test) or the test-util feature).

#[cfg(any(test, feature = "test-util"))]
pub mod memory;
mod native;
mod rdkafka;

use std::fmt;
use std::str::FromStr;

use futures::future::BoxFuture;

use super::{BrokerError, Rejection, RequestTally, Sensitive};

pub use self::rdkafka::RdKafkaIdentityAdmin;

/// The kinds of resource an ACL binding may name (Kafka's `ResourceType`, those Tributary
/// manages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclResourceType {
    Topic,
    Group,
    TransactionalId,
    /// The cluster itself; its one resource is named [`CLUSTER_RESOURCE_NAME`].
    Cluster,
}

/// The name of the cluster resource in an ACL binding.
pub const CLUSTER_RESOURCE_NAME: &str = "kafka-cluster";

impl AclResourceType {
    pub const ALL: [AclResourceType; 4] = [
        AclResourceType::Topic,
        AclResourceType::Group,
        AclResourceType::TransactionalId,
        AclResourceType::Cluster,
    ];

    /// The manifest's word: `topic`, `group`, `transactionalId`, `cluster`.
    pub fn as_str(self) -> &'static str {
        match self {
            AclResourceType::Topic => "topic",
            AclResourceType::Group => "group",
            AclResourceType::TransactionalId => "transactionalId",
            AclResourceType::Cluster => "cluster",
        }
    }
}

impl fmt::Display for AclResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a binding's resource name matches resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclPattern {
    /// The resource of exactly that name (`*`: every resource of the type).
    Literal,
    /// Every resource whose name starts with the name.
    Prefixed,
}

impl AclPattern {
    pub fn as_str(self) -> &'static str {
        match self {
            AclPattern::Literal => "literal",
            AclPattern::Prefixed => "prefixed",
        }
    }
}

impl fmt::Display for AclPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Kafka's ACL operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclOperation {
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
    /// Every operation.
    All,
}

impl AclOperation {
    pub const ALL: [AclOperation; 11] = [
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
        AclOperation::All,
    ];

    /// Kafka's name: `READ`, `WRITE`, ..., `IDEMPOTENT_WRITE`, `ALL`.
    pub fn as_str(self) -> &'static str {
        match self {
            AclOperation::Read => "READ",
            AclOperation::Write => "WRITE",
            AclOperation::Create => "CREATE",
            AclOperation::Delete => "DELETE",
            AclOperation::Alter => "ALTER",
            AclOperation::Describe => "DESCRIBE",
            AclOperation::ClusterAction => "CLUSTER_ACTION",
            AclOperation::DescribeConfigs => "DESCRIBE_CONFIGS",
            AclOperation::AlterConfigs => "ALTER_CONFIGS",
            AclOperation::IdempotentWrite => "IDEMPOTENT_WRITE",
            AclOperation::All => "ALL",
        }
    }

    /// Whether Kafka's authorizer checks this operation on resources of `resource` (its table
    /// of operations per resource type); `All` applies to every type.
    pub fn applies_to(self, resource: AclResourceType) -> bool {
        use AclOperation::*;
        match resource {
            AclResourceType::Topic => matches!(
                self,
                Read | Write
                    | Create
                    | Delete
                    | Alter
                    | Describe
                    | DescribeConfigs
                    | AlterConfigs
                    | All
            ),
            AclResourceType::Group => matches!(self, Read | Describe | Delete | All),
            AclResourceType::TransactionalId => matches!(self, Write | Describe | All),
            AclResourceType::Cluster => matches!(
                self,
                Create
                    | Alter
                    | Describe
                    | ClusterAction
                    | DescribeConfigs
                    | AlterConfigs
                    | IdempotentWrite
                    | All
            ),
        }
    }
}

impl fmt::Display for AclOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ACL operation name that is none of Kafka's (the message lists them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a Kafka ACL operation (one of: READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE, CLUSTER_ACTION, DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE, ALL)")]
pub struct UnknownOperation(pub String);

impl FromStr for AclOperation {
    type Err = UnknownOperation;

    /// Kafka's name in any case, with or without underscores (`IDEMPOTENT_WRITE`,
    /// `IdempotentWrite`, `idempotent_write`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted: String = s
            .chars()
            .filter(|c| *c != '_')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        AclOperation::ALL
            .into_iter()
            .find(|op| op.as_str().replace('_', "") == wanted)
            .ok_or_else(|| UnknownOperation(s.to_owned()))
    }
}

/// Whether a binding allows or denies its operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AclPermission {
    Allow,
    Deny,
}

impl AclPermission {
    pub fn as_str(self) -> &'static str {
        match self {
            AclPermission::Allow => "ALLOW",
            AclPermission::Deny => "DENY",
        }
    }
}

/// One ACL binding: `principal` may (or may not) do `operation` on the resources
/// `resource_type`/`resource_name`/`pattern` name, from `host`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AclBinding {
    pub resource_type: AclResourceType,
    pub resource_name: String,
    pub pattern: AclPattern,
    /// `User:<name>`.
    pub principal: String,
    /// `*`: from any host.
    pub host: String,
    pub operation: AclOperation,
    pub permission: AclPermission,
}

impl AclBinding {
    /// An `Allow` of `operation` on the resource of exactly that name, from any host.
    pub fn allow(
        principal: impl Into<String>,
        operation: AclOperation,
        resource_type: AclResourceType,
        resource_name: impl Into<String>,
    ) -> Self {
        AclBinding {
            resource_type,
            resource_name: resource_name.into(),
            pattern: AclPattern::Literal,
            principal: principal.into(),
            host: ANY_HOST.into(),
            operation,
            permission: AclPermission::Allow,
        }
    }
}

/// The host of a binding that applies from everywhere.
pub const ANY_HOST: &str = "*";

/// The principal of the SCRAM (or other) user `name`: `User:<name>`.
pub fn user_principal(name: &str) -> String {
    format!("User:{name}")
}

impl fmt::Display for AclBinding {
    /// `User:orders WRITE topic orders`; a deny, a prefixed name and a host other than `*` are
    /// spelled out: `User:x DENY READ topic logs- (prefixed) from 10.0.0.1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.principal)?;
        if self.permission == AclPermission::Deny {
            f.write_str("DENY ")?;
        }
        write!(
            f,
            "{} {} {}",
            self.operation, self.resource_type, self.resource_name
        )?;
        if self.pattern == AclPattern::Prefixed {
            f.write_str(" (prefixed)")?;
        }
        if self.host != ANY_HOST {
            write!(f, " from {}", self.host)?;
        }
        Ok(())
    }
}

/// Every ACL binding on the broker (one DescribeAcls with a filter that matches any).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclListing {
    pub bindings: Vec<AclBinding>,
    /// Bindings the broker listed that [`AclBinding`] cannot hold (another resource type, e.g.
    /// delegation tokens, or an operation librdkafka does not know), as the broker's words;
    /// never Tributary's to change.
    pub unrecognised: Vec<String>,
}

/// The result for one binding of a batched create or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclOutcome {
    pub binding: AclBinding,
    /// A delete that matched nothing (already gone) is `Ok`.
    pub result: Result<(), Rejection>,
}

/// A SCRAM mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// `SCRAM-SHA-256`, `SCRAM-SHA-512` (the names of `sasl.mechanism`).
    pub fn as_str(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
}

impl fmt::Display for ScramMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fewest iterations Kafka accepts for a SCRAM credential.
pub const SCRAM_MIN_ITERATIONS: i32 = 4096;
/// The most iterations Kafka accepts for a SCRAM credential.
pub const SCRAM_MAX_ITERATIONS: i32 = 16384;

/// A SCRAM credential of a user as the broker describes it (never the password or salt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScramCredentialInfo {
    pub mechanism: ScramMechanism,
    pub iterations: i32,
}

/// The SCRAM credentials of one user of a describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserScramCredentials {
    pub user: String,
    /// A user without credentials has none (`Ok` and empty), not an error.
    pub result: Result<Vec<ScramCredentialInfo>, Rejection>,
}

/// Set (create or replace) a user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramUpsert {
    pub user: String,
    pub mechanism: ScramMechanism,
    /// Between [`SCRAM_MIN_ITERATIONS`] and [`SCRAM_MAX_ITERATIONS`].
    pub iterations: i32,
    pub password: Sensitive,
}

/// Remove a user's credential for one mechanism.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramDeletion {
    pub user: String,
    pub mechanism: ScramMechanism,
}

/// The result for one user of a batched credential change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserOutcome {
    pub user: String,
    pub result: Result<(), Rejection>,
}

/// ACLs and SCRAM credentials on one Kafka cluster. Each call is one broker request (none for
/// an empty batch); a whole call that fails is a [`BrokerError`], and a broker that lacks the
/// API is [`BrokerError::Unsupported`] naming it (Tansu has no DeleteAcls).
///
/// Implementations provide the `*_tallied` methods, which add the requests they make to
/// `requests`; callers that need no count use the plain methods.
pub trait IdentityAdmin: Send + Sync {
    /// Every ACL binding on the broker: one DescribeAcls with a filter matching any binding
    /// (the caller keeps those of the principals it manages).
    fn describe_acls_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<AclListing, BrokerError>>;
    /// One CreateAcls for every binding; an outcome per binding, in order. Creating a binding
    /// that exists is not an error.
    fn create_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>>;
    /// One DeleteAcls with an exact-match filter per binding (so it removes that binding and
    /// nothing else); an outcome per binding, in order.
    fn delete_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>>;
    /// One DescribeUserScramCredentials for `users`; an entry per distinct user, sorted by user.
    fn describe_scram_tallied<'a>(
        &'a self,
        users: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserScramCredentials>, BrokerError>>;
    /// One AlterUserScramCredentials with every upsert and deletion; an outcome per user named.
    fn alter_scram_tallied<'a>(
        &'a self,
        upserts: &'a [ScramUpsert],
        deletions: &'a [ScramDeletion],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserOutcome>, BrokerError>>;

    /// [`IdentityAdmin::describe_acls_tallied`], uncounted.
    fn describe_acls(&self) -> BoxFuture<'_, Result<AclListing, BrokerError>> {
        Box::pin(async move {
            self.describe_acls_tallied(&mut RequestTally::default())
                .await
        })
    }
    /// [`IdentityAdmin::create_acls_tallied`], uncounted.
    fn create_acls<'a>(
        &'a self,
        bindings: &'a [AclBinding],
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        Box::pin(async move {
            self.create_acls_tallied(bindings, &mut RequestTally::default())
                .await
        })
    }
    /// [`IdentityAdmin::delete_acls_tallied`], uncounted.
    fn delete_acls<'a>(
        &'a self,
        bindings: &'a [AclBinding],
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        Box::pin(async move {
            self.delete_acls_tallied(bindings, &mut RequestTally::default())
                .await
        })
    }
    /// [`IdentityAdmin::describe_scram_tallied`], uncounted.
    fn describe_scram<'a>(
        &'a self,
        users: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<UserScramCredentials>, BrokerError>> {
        Box::pin(async move {
            self.describe_scram_tallied(users, &mut RequestTally::default())
                .await
        })
    }
    /// [`IdentityAdmin::alter_scram_tallied`], uncounted.
    fn alter_scram<'a>(
        &'a self,
        upserts: &'a [ScramUpsert],
        deletions: &'a [ScramDeletion],
    ) -> BoxFuture<'a, Result<Vec<UserOutcome>, BrokerError>> {
        Box::pin(async move {
            self.alter_scram_tallied(upserts, deletions, &mut RequestTally::default())
                .await
        })
    }
}

impl<T: IdentityAdmin + ?Sized> IdentityAdmin for std::sync::Arc<T> {
    fn describe_acls_tallied<'a>(
        &'a self,
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<AclListing, BrokerError>> {
        (**self).describe_acls_tallied(requests)
    }
    fn create_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        (**self).create_acls_tallied(bindings, requests)
    }
    fn delete_acls_tallied<'a>(
        &'a self,
        bindings: &'a [AclBinding],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<AclOutcome>, BrokerError>> {
        (**self).delete_acls_tallied(bindings, requests)
    }
    fn describe_scram_tallied<'a>(
        &'a self,
        users: &'a [String],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserScramCredentials>, BrokerError>> {
        (**self).describe_scram_tallied(users, requests)
    }
    fn alter_scram_tallied<'a>(
        &'a self,
        upserts: &'a [ScramUpsert],
        deletions: &'a [ScramDeletion],
        requests: &'a mut RequestTally,
    ) -> BoxFuture<'a, Result<Vec<UserOutcome>, BrokerError>> {
        (**self).alter_scram_tallied(upserts, deletions, requests)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_parse_from_kafkas_names_in_any_case() {
        for op in AclOperation::ALL {
            assert_eq!(op.as_str().parse::<AclOperation>(), Ok(op));
            assert_eq!(op.as_str().to_lowercase().parse::<AclOperation>(), Ok(op));
        }
        assert_eq!("IdempotentWrite".parse(), Ok(AclOperation::IdempotentWrite));
        assert_eq!(
            "describe_configs".parse(),
            Ok(AclOperation::DescribeConfigs)
        );
        let err = "PUBLISH".parse::<AclOperation>().unwrap_err();
        assert!(err
            .to_string()
            .contains("'PUBLISH' is not a Kafka ACL operation"));
        assert!(err.to_string().contains("IDEMPOTENT_WRITE"));
        assert!("".parse::<AclOperation>().is_err());
    }

    #[test]
    fn operations_apply_to_the_resource_types_kafka_checks_them_on() {
        use AclOperation::*;
        use AclResourceType::*;
        assert!(Write.applies_to(Topic));
        assert!(!Write.applies_to(Group));
        assert!(Read.applies_to(Group));
        assert!(!IdempotentWrite.applies_to(Topic));
        assert!(IdempotentWrite.applies_to(Cluster));
        assert!(Write.applies_to(TransactionalId));
        assert!(!Read.applies_to(TransactionalId));
        assert!(!ClusterAction.applies_to(Topic));
        for t in AclResourceType::ALL {
            assert!(All.applies_to(t));
            assert!(Describe.applies_to(t));
        }
    }

    #[test]
    fn a_binding_reads_as_the_cli_prints_it() {
        let b = AclBinding::allow(
            user_principal("orders-service"),
            AclOperation::Write,
            AclResourceType::Topic,
            "orders",
        );
        assert_eq!(b.to_string(), "User:orders-service WRITE topic orders");
        let b = AclBinding {
            pattern: AclPattern::Prefixed,
            permission: AclPermission::Deny,
            host: "10.0.0.1".into(),
            operation: AclOperation::Read,
            resource_name: "logs-".into(),
            ..b
        };
        assert_eq!(
            b.to_string(),
            "User:orders-service DENY READ topic logs- (prefixed) from 10.0.0.1"
        );
    }
}
