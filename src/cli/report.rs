//! What `plan`, `apply` and `delete` say about each cluster: as text for a person, or as one
//! JSON document (`--output json`) for pipelines and pull-request bots.
//!
//! The JSON document is a stable interface, versioned by [`JSON_VERSION`]: fields are only
//! ever added within a version; a rename, a removal or a change of meaning bumps it. Its
//! schema is documented in README.md ("The CLI", "JSON output") and held by
//! tests/integration/cli.rs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use serde::Serialize;

use super::users::{self, UsersJson, UsersPlan, UsersReport};
use crate::model::TopicName;
use crate::topics::execute::{Outcome, Report};
use crate::topics::plan::{Action, ConfigChange, Plan, Refusal};

/// The version of the JSON document's schema.
pub const JSON_VERSION: u32 = 1;

/// `--output`: how the result is printed on standard output.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// Lines for a person, like `terraform plan`.
    #[default]
    Text,
    /// One JSON document (schema version 1, see README.md), printed once everything is done.
    Json,
}

/// The command whose result is reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Plan,
    Apply,
    Delete,
}

/// What one cluster's run came to: its plan, what executing it did (not for `plan`), and for
/// `delete` the removed topics the broker does not have.
pub struct ClusterRun {
    /// The KafkaCluster's name, `None` with `--bootstrap`.
    pub cluster: Option<String>,
    pub namespace: Option<String>,
    pub bootstrap: String,
    pub plan: Plan,
    pub report: Option<Report>,
    /// `delete`: declared topics that are not on the broker (nothing to delete or keep).
    pub absent: Vec<TopicName>,
    /// Why the cluster could not be read (nothing was planned or changed on it).
    pub error: Option<String>,
    /// The stack whose state was read (`plan`, `apply`); `None` for `delete`, or when the
    /// state could not be read by a `plan` without `--prune`.
    pub stack: Option<String>,
    /// The deletions `--prune` planned (topics of the stack the manifests no longer declare).
    pub pruned: BTreeSet<TopicName>,
    /// Why the stack's state could not be recorded after `apply`.
    pub stack_error: Option<String>,
    /// The manifests' KafkaUsers of the cluster: their plan, and what executing it did.
    pub users: Option<UsersRun>,
    /// How many topics the manifests declare on the cluster.
    pub topics: usize,
}

/// The users' part of a cluster's run.
pub struct UsersRun {
    pub plan: UsersPlan,
    /// `apply` / `delete`, when there was something to change.
    pub report: Option<UsersReport>,
}

impl ClusterRun {
    /// How the cluster is named in text: `local (127.0.0.1:9092)`, or the bootstrap alone.
    pub fn label(&self) -> String {
        match &self.cluster {
            Some(name) => format!("{name} ({})", self.bootstrap),
            None => self.bootstrap.clone(),
        }
    }

    /// Anything to change (refusals aside).
    pub fn has_changes(&self) -> bool {
        self.plan
            .actions
            .iter()
            .any(|a| !matches!(a, Action::Refuse { .. }))
            || self.users.as_ref().is_some_and(|u| u.plan.has_changes())
    }

    /// Nothing refused, and everything executed succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
            && self.stack_error.is_none()
            && self.plan.refusals().next().is_none()
            && self.report.as_ref().is_none_or(Report::succeeded)
            && self.users.as_ref().is_none_or(|u| {
                u.plan.refusals.is_empty() && u.report.as_ref().is_none_or(UsersReport::succeeded)
            })
    }

    /// A deletion `--prune` planned.
    fn is_pruned(&self, action: &Action) -> bool {
        matches!(action, Action::Delete { .. }) && self.pruned.contains(action.topic())
    }

    fn count(&self, f: fn(&Action) -> bool) -> usize {
        self.plan.actions.iter().filter(|a| f(a)).count()
    }

    /// The text for this cluster, `verb` saying which command ran: its topics, then its
    /// users.
    pub fn write_text(&self, verb: Verb, out: &mut impl Write) -> std::io::Result<()> {
        self.write_topics_text(verb, out)?;
        if self.error.is_none() {
            if let Some(u) = &self.users {
                users::write_text(&u.plan, u.report.as_ref(), out)?;
            }
        }
        Ok(())
    }

    fn write_topics_text(&self, verb: Verb, out: &mut impl Write) -> std::io::Result<()> {
        if let Some(error) = &self.error {
            return writeln!(out, "cluster {}:\n  not read: {error}", self.label());
        }
        if let Some(report) = &self.report {
            // Each action done or failed; failures of one cause told once.
            out.write_all(
                super::summary::report_text(&self.label(), &self.plan, report, &self.pruned)
                    .as_bytes(),
            )?;
            if let Some(error) = &self.stack_error {
                writeln!(out, "  stack state not recorded: {error}")?;
            }
            for name in &self.absent {
                writeln!(out, "  {name}: not on the broker, nothing to delete")?;
            }
            return Ok(());
        }
        writeln!(out, "cluster {}:", self.label())?;
        for action in &self.plan.actions {
            if self.is_pruned(action) {
                writeln!(out, "{action} (pruned)")?;
            } else {
                writeln!(out, "{action}")?;
            }
        }
        for name in &self.plan.retained {
            writeln!(out, "= keep {name}: deletionPolicy is Retain")?;
        }
        for name in &self.absent {
            writeln!(out, "  {name}: not on the broker, nothing to delete")?;
        }
        if self.plan.is_empty() {
            if self.topics == 0 && self.users.is_some() {
                // Users only: their own lines say what there is to do.
                return Ok(());
            }
            return match verb {
                Verb::Delete => writeln!(
                    out,
                    "Nothing to delete: {} kept (deletionPolicy Retain), {} not on the broker.",
                    self.plan.retained.len(),
                    self.absent.len()
                ),
                Verb::Plan | Verb::Apply => {
                    writeln!(out, "No changes: the broker matches the manifests.")
                }
            };
        }
        writeln!(
            out,
            "Plan: {} to create, {} to grow, {} to reconfigure, {} to delete, {} refused.",
            self.count(|a| matches!(a, Action::Create { .. })),
            self.count(|a| matches!(a, Action::IncreasePartitions { .. })),
            self.count(|a| matches!(a, Action::AlterConfigs { .. })),
            self.count(|a| matches!(a, Action::Delete { .. })),
            self.count(|a| matches!(a, Action::Refuse { .. })),
        )
    }
}

/// The JSON document of a whole run (schema version [`JSON_VERSION`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document<'a> {
    pub version: u32,
    pub command: Verb,
    /// Something to change (refusals aside) on some cluster.
    pub changes: bool,
    /// Nothing refused, nothing failed, no error.
    pub ok: bool,
    /// What stopped the run before every cluster was done (the clusters before it are listed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub clusters: Vec<ClusterJson<'a>>,
}

impl<'a> Document<'a> {
    pub fn new(command: Verb, runs: &'a [ClusterRun], error: Option<String>) -> Self {
        Self {
            version: JSON_VERSION,
            command,
            changes: runs.iter().any(ClusterRun::has_changes),
            ok: error.is_none() && runs.iter().all(ClusterRun::ok),
            error,
            clusters: runs.iter().map(ClusterJson::from).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterJson<'a> {
    cluster: Option<&'a str>,
    namespace: Option<&'a str>,
    bootstrap: &'a str,
    /// Why the cluster could not be read; nothing was planned or changed on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// `plan` / `apply`: the stack whose state was read (`--stack`, or the default).
    #[serde(skip_serializing_if = "Option::is_none")]
    stack: Option<&'a str>,
    /// `apply`: why the stack's state could not be recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    stack_error: Option<&'a str>,
    actions: Vec<ActionJson<'a>>,
    /// Topics a `delete` keeps on the broker (`deletionPolicy: Retain`).
    kept: Vec<&'a str>,
    /// Topics a `delete` found absent from the broker.
    absent: Vec<&'a str>,
    summary: Summary,
    /// The manifests' KafkaUsers of the cluster: ACLs to create and delete, SCRAM credentials
    /// to set and remove (never a password), users left to the operator, refusals and (for
    /// `apply` / `delete`) each outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<UsersJson<'a>>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct Summary {
    create: usize,
    grow: usize,
    configure: usize,
    delete: usize,
    refused: usize,
    /// `apply` and `delete` only: actions the broker carried out.
    #[serde(skip_serializing_if = "Option::is_none")]
    done: Option<usize>,
    /// `apply` and `delete` only: actions the broker refused or did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    failed: Option<usize>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionJson<'a> {
    /// `create`, `grow`, `configure`, `delete` or `refuse`.
    action: &'static str,
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    partitions: Option<i32>,
    /// `create`: `null` means the broker's default.
    #[serde(skip_serializing_if = "Option::is_none")]
    replication_factor: Option<Option<i32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    config: Option<&'a BTreeMap<String, String>>,
    /// `grow`: partitions before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    to: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    changes: Option<Vec<ConfigJson<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasons: Option<Vec<RefusalJson>>,
    /// `delete`: `true` when `--prune` planned it (a topic of the stack no longer declared).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pruned: bool,
    /// `apply` and `delete` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<OutcomeJson>,
}

#[derive(Serialize)]
struct ConfigJson<'a> {
    key: &'a str,
    /// The broker's value before; `null` when it had none.
    from: Option<&'a str>,
    /// The value after; `null` when the override is removed (the broker default applies).
    to: Option<&'a str>,
}

#[derive(Serialize)]
struct RefusalJson {
    /// The condition reason the operator would report (`PartitionDecrease`, ...).
    reason: String,
    message: String,
}

#[derive(Serialize)]
struct OutcomeJson {
    /// `done`, `failed` or `refused`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

impl<'a> From<&'a ClusterRun> for ClusterJson<'a> {
    fn from(run: &'a ClusterRun) -> Self {
        // The report lists the plan's actions in plan order; matched by action all the same.
        let outcome_of = |i: usize, action: &Action| -> Option<&'a Outcome> {
            let results = &run.report.as_ref()?.results;
            results
                .get(i)
                .filter(|e| &e.action == action)
                .or_else(|| results.iter().find(|e| &e.action == action))
                .map(|e| &e.outcome)
        };
        let outcomes: Option<Vec<Option<&Outcome>>> = run.report.as_ref().map(|_| {
            run.plan
                .actions
                .iter()
                .enumerate()
                .map(|(i, a)| outcome_of(i, a))
                .collect()
        });
        let actions: Vec<ActionJson<'a>> = run
            .plan
            .actions
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut json = ActionJson::from(a);
                json.pruned = run.is_pruned(a);
                json.outcome = outcomes
                    .as_ref()
                    .map(|o| o[i].map_or_else(OutcomeJson::missing, OutcomeJson::from));
                json
            })
            .collect();
        let count = |name: &str| actions.iter().filter(|a| a.action == name).count();
        let mut summary = Summary {
            create: count("create"),
            grow: count("grow"),
            configure: count("configure"),
            delete: count("delete"),
            refused: count("refuse"),
            ..Default::default()
        };
        if outcomes.is_some() {
            let status = |s: &str| {
                actions
                    .iter()
                    .filter(|a| a.outcome.as_ref().is_some_and(|o| o.status == s))
                    .count()
            };
            summary.done = Some(status("done"));
            summary.failed = Some(status("failed"));
        }
        Self {
            cluster: run.cluster.as_deref(),
            namespace: run.namespace.as_deref(),
            bootstrap: &run.bootstrap,
            error: run.error.as_deref(),
            stack: run.stack.as_deref(),
            stack_error: run.stack_error.as_deref(),
            actions,
            kept: run.plan.retained.iter().map(TopicName::as_str).collect(),
            absent: run.absent.iter().map(TopicName::as_str).collect(),
            summary,
            users: run
                .users
                .as_ref()
                .map(|u| UsersJson::new(&u.plan, u.report.as_ref())),
        }
    }
}

impl<'a> From<&'a Action> for ActionJson<'a> {
    fn from(action: &'a Action) -> Self {
        let mut json = ActionJson {
            action: "",
            topic: action.topic().as_str(),
            partitions: None,
            replication_factor: None,
            config: None,
            from: None,
            to: None,
            changes: None,
            reasons: None,
            pruned: false,
            outcome: None,
        };
        match action {
            Action::Create {
                partitions,
                replication_factor,
                config,
                ..
            } => {
                json.action = "create";
                json.partitions = Some(*partitions);
                json.replication_factor = Some(*replication_factor);
                json.config = Some(config);
            }
            Action::IncreasePartitions { from, to, .. } => {
                json.action = "grow";
                json.from = Some(*from);
                json.to = Some(*to);
            }
            Action::AlterConfigs { changes, .. } => {
                json.action = "configure";
                json.changes = Some(changes.iter().map(ConfigJson::from).collect());
            }
            Action::Delete { .. } => json.action = "delete",
            Action::Refuse { reasons, .. } => {
                json.action = "refuse";
                json.reasons = Some(reasons.iter().map(RefusalJson::from).collect());
            }
        }
        json
    }
}

impl<'a> From<&'a ConfigChange> for ConfigJson<'a> {
    fn from(change: &'a ConfigChange) -> Self {
        match change {
            ConfigChange::Set { key, from, to } => ConfigJson {
                key,
                from: from.as_deref(),
                to: Some(to),
            },
            ConfigChange::Reset { key, from } => ConfigJson {
                key,
                from: Some(from),
                to: None,
            },
        }
    }
}

impl From<&Refusal> for RefusalJson {
    fn from(refusal: &Refusal) -> Self {
        RefusalJson {
            reason: refusal.reason().to_string(),
            message: refusal.to_string(),
        }
    }
}

impl From<&Outcome> for OutcomeJson {
    fn from(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Done => OutcomeJson {
                status: "done",
                reason: None,
                message: None,
            },
            Outcome::Refused(reasons) => OutcomeJson {
                status: "refused",
                reason: reasons.first().map(|r| r.reason().to_string()),
                message: Some(
                    reasons
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                ),
            },
            Outcome::Failed { reason, message } => OutcomeJson {
                status: "failed",
                reason: Some(reason.to_string()),
                message: Some(message.clone()),
            },
        }
    }
}

impl OutcomeJson {
    /// An action the execution report does not mention.
    fn missing() -> Self {
        OutcomeJson {
            status: "failed",
            reason: Some("NoResponse".to_owned()),
            message: Some("the execution report does not mention this action".to_owned()),
        }
    }
}
