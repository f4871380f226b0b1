//! What `apply` and `delete` print after executing a plan: each action done or failed, with
//! failures that share one cause (a broker that stopped answering fails every topic of its
//! request alike) told once, as a count and a few names, not once per topic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::TopicName;
use crate::topics::execute::{Executed, Outcome, Report};
use crate::topics::plan::{Action, Plan};

/// Failures sharing a cause are grouped once there are more than this many of them.
const GROUP_ABOVE: usize = 3;

/// Names listed in a group before "and N more".
const NAMES_SHOWN: usize = 5;

/// The text printed for one cluster's execution.
/// `pruned`: the deletions `--prune` planned, marked `(pruned)`.
pub fn report_text(
    label: &str,
    plan: &Plan,
    report: &Report,
    pruned: &BTreeSet<TopicName>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "cluster {label}:");

    let mut groups: BTreeMap<(&str, &str), Vec<&Executed>> = BTreeMap::new();
    for r in &report.results {
        if let Outcome::Failed { reason, message } = &r.outcome {
            groups
                .entry((reason.as_str(), message.as_str()))
                .or_default()
                .push(r);
        }
    }
    let grouped = |r: &Executed| match &r.outcome {
        Outcome::Failed { reason, message } => {
            groups[&(reason.as_str(), message.as_str())].len() > GROUP_ABOVE
        }
        _ => false,
    };
    for r in report.results.iter().filter(|r| !grouped(r)) {
        let text = r.to_string();
        if matches!(r.action, Action::Delete { .. }) && pruned.contains(r.action.topic()) {
            let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
            let _ = writeln!(out, "{first} (pruned)\n{rest}");
        } else {
            let _ = writeln!(out, "{text}");
        }
    }
    for ((reason, message), members) in groups.iter().filter(|(_, m)| m.len() > GROUP_ABOVE) {
        let _ = writeln!(
            out,
            "FAILED ({reason}) for {} topics: {message}",
            thousands(members.len())
        );
        let mut by_kind: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for m in members {
            by_kind
                .entry(kind(&m.action).1)
                .or_default()
                .push(m.action.topic().as_str());
        }
        for (not_done, names) in by_kind {
            let shown = names[..names.len().min(NAMES_SHOWN)].join(", ");
            let more = match names.len().saturating_sub(NAMES_SHOWN) {
                0 => String::new(),
                n => format!(" and {} more", thousands(n)),
            };
            let _ = writeln!(out, "  {not_done}: {shown}{more}");
        }
    }
    for name in &plan.retained {
        let _ = writeln!(out, "= keep {name}: deletionPolicy is Retain");
    }

    let count = |f: fn(&Outcome) -> bool| report.results.iter().filter(|r| f(&r.outcome)).count();
    let failed = count(|o| matches!(o, Outcome::Failed { .. }));
    if failed > 0 {
        let _ = writeln!(out, "{}", breakdown(report));
    }
    let _ = writeln!(
        out,
        "Applied: {} done, {} failed, {} refused.",
        thousands(count(|o| *o == Outcome::Done)),
        thousands(failed),
        thousands(count(|o| matches!(o, Outcome::Refused(_)))),
    );
    out
}

/// What an action does, done and not done: `("created", "not created")`.
fn kind(action: &Action) -> (&'static str, &'static str) {
    match action {
        Action::Create { .. } => ("created", "not created"),
        Action::IncreasePartitions { .. } => ("grown", "not grown"),
        Action::AlterConfigs { .. } => ("reconfigured", "not reconfigured"),
        Action::Delete { .. } => ("deleted", "not deleted"),
        Action::Refuse { .. } => ("refused", "refused"),
    }
}

/// One line saying what is true now, per kind of change: `created 137, not created 1,863`.
fn breakdown(report: &Report) -> String {
    let mut counts: Vec<(&Action, usize, usize)> = Vec::new();
    for r in &report.results {
        if matches!(r.action, Action::Refuse { .. }) {
            continue;
        }
        let i = match counts.iter().position(|(a, ..)| kind(a) == kind(&r.action)) {
            Some(i) => i,
            None => {
                counts.push((&r.action, 0, 0));
                counts.len() - 1
            }
        };
        match r.outcome {
            Outcome::Done => counts[i].1 += 1,
            _ => counts[i].2 += 1,
        }
    }
    counts
        .iter()
        .map(|(action, done, not_done)| {
            let (yes, no) = kind(action);
            format!("{yes} {}, {no} {}", thousands(*done), thousands(*not_done))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// `1863` as `1,863`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kafka::memory::MemoryBroker;
    use crate::model::TopicName;
    use crate::topics::execute::execute;

    fn creates(n: usize) -> Plan {
        Plan {
            actions: (0..n)
                .map(|i| Action::Create {
                    name: TopicName::parse(&format!("grid-{i:04}")).unwrap(),
                    partitions: 1,
                    replication_factor: None,
                    config: Default::default(),
                })
                .collect(),
            retained: vec![],
        }
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(137), "137");
        assert_eq!(thousands(1863), "1,863");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    /// A broker that stops answering half-way through 2,000 creations: the report says what
    /// the broker shows (read again), in a few lines, not 2,000 identical failures.
    #[tokio::test]
    async fn a_broker_that_stops_answering_mid_apply_is_summarised_as_it_is() {
        let broker = MemoryBroker::new();
        broker.lose_next_answer(137, false);
        let plan = creates(2000);
        let report = execute(&plan, &broker).await;
        let text = report_text("grid (127.0.0.1:9092)", &plan, &report, &BTreeSet::new());
        assert_eq!(broker.topics().len(), 137);
        assert!(
            text.contains(
                "\ncreated 137, not created 1,863\nApplied: 137 done, 1,863 failed, 0 refused.\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("FAILED (BrokerUnreachable) for 1,863 topics: the broker stopped answering before this took effect (CreateTopics did not complete within 30s)\n  not created: grid-0137, grid-0138, grid-0139, grid-0140, grid-0141 and 1,858 more\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("FAILED").count(),
            1,
            "one line for the lot: {text}"
        );
        assert_eq!(text.lines().count(), 1 + 137 * 2 + 2 + 2, "{text}");
    }

    #[tokio::test]
    async fn a_few_failures_keep_a_line_each() {
        let broker = MemoryBroker::new();
        broker.refuse_whole_request("grid-0001");
        let plan = creates(4);
        let report = execute(&plan, &broker).await;
        let text = report_text("grid", &plan, &report, &BTreeSet::new());
        assert!(
            text.contains("+ create grid-0001: partitions=1 replicationFactor=broker default\n  FAILED (BrokerRejected): the broker refused CreateTopics (InvalidRequest): the request naming grid-0001 is invalid\n"),
            "{text}"
        );
        assert!(
            text.ends_with("created 3, not created 1\nApplied: 3 done, 1 failed, 0 refused.\n"),
            "{text}"
        );
    }
}
