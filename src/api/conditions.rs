//! kstatus-style conditions shared by every kind (`Ready`, `Reconciling`, `Stalled`).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The three values a condition's status takes, as Kubernetes spells them.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ConditionStatus {
    True,
    False,
    Unknown,
}

/// One observation about a resource, in the shape GitOps tools (kstatus, Argo CD, Flux) read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// `Ready`, `Reconciling` or `Stalled`.
    #[serde(rename = "type")]
    pub type_: String,
    pub status: ConditionStatus,
    /// A CamelCase word a machine can match on, e.g. `ResourceConflict`, `BrokerUnsupported`.
    // One of the `Reason`s below, as `Reason::as_str` spells it (a plain comment: a doc comment
    // here would change the CRDs' schema description).
    pub reason: String,
    /// What a person needs to know, including the broker's own error text where there is one.
    #[serde(default)]
    pub message: String,
    /// RFC 3339 time of the last change of `status`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Declares [`Reason`] from one list of `Name => "meaning"`: the variant (documented with its
/// meaning), its spelling (the variant's name) and [`Reason::meaning`].
macro_rules! reasons {
    ($($name:ident => $meaning:literal,)+) => {
        /// Why a condition has its status: the `reason` of every condition Tributary writes (and
        /// of each child in a StreamTopology's `status.children`), spelled as the variant's name.
        /// README.md's troubleshooting table lists each one with its meaning; a test keeps the
        /// two in step.
        #[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Reason {
            $(#[doc = $meaning] $name,)+
        }

        impl Reason {
            /// Every reason, in the order of README.md's troubleshooting table.
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)+];

            /// The word written into a condition's `reason`, e.g. `"BrokerUnreachable"`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Reason::$name => stringify!($name),)+
                }
            }

            /// What the reason means, for a person (Markdown, as in README.md's table).
            pub const fn meaning(self) -> &'static str {
                match self {
                    $(Reason::$name => $meaning,)+
                }
            }
        }
    };
}

reasons! {
    Connected => "the brokers answer; status has the cluster id, broker count, and `unsupportedApis` the broker lacks",
    BrokerUnreachable => "no broker answered within `requestTimeoutSeconds`",
    CredentialsUnavailable => "a `secretKeyRef` Secret or key, or a `file`, cannot be read",
    TlsHandshakeFailed => "the TLS handshake with a broker failed; the message says why: the broker's certificate is not signed by `spec.tls.caCert` (or does not name the address), the broker requires a client certificate, or refused it",
    InvalidClientConfig => "librdkafka refused the client configuration (a `clientConfig` property, a PEM), or the KafkaCluster is invalid",
    InvalidSpec => "the spec fails validation; the message lists each field",
    InSync => "the broker matches the spec",
    ClusterNotFound => "`clusterRef` names no KafkaCluster in this namespace",
    ResourceConflict => "an older KafkaTopic manages the same broker topic (an older KafkaUser the same principal) on the same cluster, or a KafkaUser's Secret name is taken by a Secret it does not own; this one changes nothing and never deletes it (KafkaOffsetReset: an older reset of the same group is not finished; this one failed without touching anything)",
    Paused => "annotation `tributary.io/paused: \"true\"`; `status.pendingActions` lists what would be done",
    DryRun => "annotation `tributary.io/dry-run: \"true\"`; the plan is in `status.pendingActions`",
    PartitionDecrease => "the broker has more partitions than the spec (Kafka cannot remove partitions)",
    ReplicationFactorChange => "the replication factor differs from the broker's (it needs a partition reassignment, which Tributary does not do)",
    InvalidConfig => "a config key the broker does not know, or read-only",
    TopicNameCollision => "the name collides with another topic once `.` and `_` are treated alike, as Kafka does",
    BrokerUnsupported => "the broker lacks an admin API the change needs (Tansu has no `CreatePartitions` or `DeleteAcls`); stalled, with the broker's message; a KafkaUser's other changes are still made",
    BrokerRejected => "the broker refused the request; the message carries its own error (e.g. authorization: the operator's principal needs Describe, DescribeConfigs, Create, Alter, AlterConfigs and, for `Delete` topics, Delete on them)",
    NoResponse => "the broker's answer to a batched request did not mention this topic",
    Available => "the Deployment has its replicas ready",
    Progressing => "the Deployment is rolling out; on `Stalled` (every kind), nothing is stuck",
    WaitingForTopics => "a topic it writes is missing or not Ready; nothing is rolled out until all are (`status.waitingForTopics`)",
    TopicNotReady => "a topic it reads is missing (on the broker, whatever its KafkaTopic says) or not Ready; the replicas are held (the lag of a missing topic is unknown)",
    SecretNotFound => "a Secret (or key) the pods would read for the connection does not exist, or the one a KafkaUser's `passwordFrom` names",
    InvalidCluster => "the KafkaCluster cannot be turned into a connection for pods",
    LagUnavailable => "the broker refused the consumer group's offsets; the replica count is left as it is",
    AllChildrenReady => "every child is Ready",
    ChildrenNotReady => "the message lists the children that are not Ready, with their reasons",
    ChildConflict => "a child's name is taken by a resource this topology does not own; it never takes one over",
    ChildRejected => "the API server refused a child (e.g. its CRD rules: partitions that would decrease)",
    Pending => "the child does not exist yet, or has not reported a `Ready` condition",
    ResetInProgress => "a KafkaOffsetReset is under way; `status.phase` says where (`Pending`, `ScalingDown`, `WaitingForEmptyGroup`, `Resetting`, `ScalingUp`)",
    ResetSucceeded => "the offsets were written and read back (with `dryRun`, computed only), before → after per partition in `status.partitions`, and the consumer released",
    ConsumerNotFound => "`consumerRef` names no KafkaConsumer in this namespace",
    ForeignMembers => "the group still has members once every pod of the consumer is gone: another application reads with the same group id",
    ResetTimedOut => "the consumer's pods did not go, or the group did not empty, within `timeoutSeconds`; the consumer is released",
    ResetRefused => "the reset is wrong for the group as the broker has it (an unknown group, topic or partition, a timestamp in the future, an offset out of range, a shift where nothing was committed); the message names each; nothing was written",
    OffsetsNotWritten => "the broker refused some partitions of the write, or holds other offsets than written; the message names each",
    Idle => "on `Reconciling` (every kind): nothing is being worked on",
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Reason> for String {
    fn from(reason: Reason) -> String {
        reason.as_str().to_owned()
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn a_reason_is_spelled_as_its_name_everywhere() {
        let mut seen = std::collections::HashSet::new();
        for &reason in Reason::ALL {
            let word = reason.as_str();
            assert!(seen.insert(word), "{word} twice");
            assert!(
                !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric()),
                "{word}"
            );
            assert!(word.starts_with(|c: char| c.is_ascii_uppercase()), "{word}");
            assert_eq!(format!("{reason:?}"), word);
            assert_eq!(reason.to_string(), word);
            assert_eq!(String::from(reason), word);
            assert_eq!(serde_json::to_value(reason).unwrap(), word);
            assert_eq!(
                serde_json::from_value::<Reason>(word.into()).unwrap(),
                reason
            );
            assert!(reason == word && reason == *word);
            assert!(!reason.meaning().is_empty(), "{word} has no meaning");
        }
        assert!(Reason::InSync != "InvalidSpec");
    }

    /// The rows of README.md's troubleshooting table: reason → meaning, as written there.
    fn readme_table() -> Vec<(String, String)> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let section = readme
            .split("\n## Troubleshooting\n")
            .nth(1)
            .expect("README.md has a \"## Troubleshooting\" section");
        let section = section.split("\n## ").next().unwrap_or(section);
        let mut lines = section.lines().skip_while(|l| !l.starts_with('|'));
        let header = lines
            .next()
            .expect("a table in the troubleshooting section");
        assert_eq!(header, "| kind | reason | meaning | what to do |");
        assert_eq!(lines.next(), Some("|---|---|---|---|"));
        lines
            .take_while(|l| l.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').map(str::trim).collect();
                assert_eq!(cells.len(), 6, "a row of four cells: {line}");
                let reason = cells[2]
                    .strip_prefix('`')
                    .and_then(|r| r.strip_suffix('`'))
                    .unwrap_or_else(|| panic!("one `Reason` per row: {line}"));
                (reason.to_owned(), cells[3].to_owned())
            })
            .collect()
    }

    #[test]
    fn the_readme_troubleshooting_table_has_every_reason_and_only_those() {
        let rows = readme_table();
        let mut table: BTreeMap<&str, &str> = BTreeMap::new();
        for (reason, meaning) in &rows {
            assert!(
                table.insert(reason, meaning).is_none(),
                "README.md's troubleshooting table has `{reason}` twice"
            );
            assert!(
                Reason::ALL.iter().any(|r| r == reason.as_str()),
                "README.md's troubleshooting table has `{reason}`, which is no Reason in src/api/conditions.rs"
            );
        }
        for &reason in Reason::ALL {
            let word = reason.as_str();
            let meaning = table.get(word).unwrap_or_else(|| {
                panic!("Reason::{word} is missing from README.md's troubleshooting table")
            });
            assert_eq!(
                *meaning,
                reason.meaning(),
                "the meaning of `{word}` differs between README.md and Reason::meaning"
            );
        }
        let order: Vec<&str> = rows.iter().map(|(reason, _)| reason.as_str()).collect();
        let all: Vec<&str> = Reason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(
            order, all,
            "README.md's table and Reason list them in the same order"
        );
    }
}
