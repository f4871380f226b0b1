//! The pure planning of a reset: which partitions ([`select`]), and where each one's committed
//! offset goes ([`plan`]), from what the broker said — no I/O. Anything wrong with the request
//! is a [`PlanError`] naming what and how to fix it, and nothing is planned then.
//!
//! How each target reads:
//! * `earliest` / `latest`: the partition's log start / end offset;
//! * a timestamp: the first offset whose record is at or after it, the end offset where no
//!   record is that late; a timestamp in the future is refused (it would mean "skip
//!   everything", which `latest` says plainly);
//! * `shiftBy N`: the committed offset (brought into the partition's range first: records
//!   retention removed cannot be re-read) plus N, **clamped** to `[start, end]` — a shift beyond
//!   the range is not refused but marked `clamped` on the partition, as the issue asks; a
//!   partition without a committed offset is refused (there is nothing to shift from);
//! * explicit offsets: each must lie in `[start, end]`, else refused (an explicit offset is a
//!   precise request; moving it silently would not be what was asked).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::Timestamp;
use thiserror::Error;

use super::target::Target;
use crate::kafka::offsets::{GroupDescription, TopicPartition};

/// Why a reset is refused. Each names the group, topic or partition at fault and the fix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PlanError {
    #[error("group '{group}' is unknown to the broker (no members, no committed offsets): check the group id")]
    UnknownGroup { group: String },
    #[error("group '{group}' is not empty (state {state}, {members} member(s)): stop its consumers first (a KafkaOffsetReset scales a KafkaConsumer down for you)")]
    GroupNotEmpty {
        group: String,
        state: String,
        members: usize,
    },
    #[error("group '{group}' has committed on no topic: name the topics to reset")]
    NoTopics { group: String },
    #[error("topic '{topic}' does not exist on the broker: check the topic name")]
    UnknownTopic { topic: String },
    #[error("partition {partition} of topic '{topic}' does not exist (it has {count} partition(s), 0 to {last})", last = count - 1)]
    UnknownPartition {
        topic: String,
        partition: i32,
        count: i32,
    },
    #[error("timestamp {at} is in the future (now {now}): no record is that late; to skip everything use latest")]
    FutureTimestamp { at: Timestamp, now: Timestamp },
    #[error("offset {offset} for {topic}/{partition} is outside the partition's range {start}..={end}: give an offset in it")]
    OffsetOutOfRange {
        topic: String,
        partition: i32,
        offset: i64,
        start: i64,
        end: i64,
    },
    #[error("{topic}/{partition} has no committed offset to shift from: use earliest, latest or a timestamp")]
    NoCommittedOffset { topic: String, partition: i32 },
    #[error("the broker returned no offsets for {topic}/{partition}")]
    NotObserved { topic: String, partition: i32 },
}

/// The topics (and optionally partitions) a reset concerns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Empty: every topic the group has committed on.
    pub topics: Vec<String>,
    /// Empty: every partition of those topics.
    pub partitions: Vec<i32>,
}

/// What the broker said about one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    /// The log start offset.
    pub start: i64,
    /// The log end offset.
    pub end: i64,
    /// The group's committed offset; `None` if it never committed here.
    pub committed: Option<i64>,
    /// For a timestamp target: the first offset at or after it (`None`: no record is that
    /// late). Unused by the other targets.
    pub at_timestamp: Option<i64>,
}

/// One partition's move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionChange {
    pub topic: String,
    pub partition: i32,
    pub start: i64,
    pub end: i64,
    /// The committed offset before the reset.
    pub before: Option<i64>,
    /// The committed offset the reset writes.
    pub after: i64,
    /// `shiftBy` went beyond the partition's range and was clamped to it.
    pub clamped: bool,
}

impl PartitionChange {
    /// Where the group would resume before the reset, within the retained records; `None` if
    /// it never committed here.
    fn resume(&self) -> Option<i64> {
        self.before.map(|b| b.clamp(self.start, self.end))
    }

    /// Records the group will read again.
    pub fn reread(&self) -> u64 {
        self.resume()
            .map_or(0, |b| b.saturating_sub(self.after).max(0) as u64)
    }

    /// Records the group will never read.
    pub fn skipped(&self) -> u64 {
        self.resume()
            .map_or(0, |b| self.after.saturating_sub(b).max(0) as u64)
    }
}

/// The new committed offset of every selected partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub changes: Vec<PartitionChange>,
}

impl Plan {
    /// What to commit, one entry per partition.
    pub fn offsets(&self) -> Vec<(TopicPartition, i64)> {
        self.changes
            .iter()
            .map(|c| ((c.topic.clone(), c.partition), c.after))
            .collect()
    }

    pub fn reread(&self) -> u64 {
        self.changes.iter().map(PartitionChange::reread).sum()
    }

    pub fn skipped(&self) -> u64 {
        self.changes.iter().map(PartitionChange::skipped).sum()
    }
}

/// A timestamp target must not lie in the future; checked before the broker is asked anything.
pub fn check_target(target: &Target, now: Timestamp) -> Result<(), PlanError> {
    match target {
        Target::Timestamp(at) if *at > now => Err(PlanError::FutureTimestamp { at: *at, now }),
        _ => Ok(()),
    }
}

/// The group must be empty ([`GroupDescription::is_empty`]).
pub fn check_empty(group: &GroupDescription) -> Result<(), PlanError> {
    if group.is_empty() {
        return Ok(());
    }
    Err(PlanError::GroupNotEmpty {
        group: group.group_id.clone(),
        state: group.state.clone(),
        members: group.members.len(),
    })
}

/// The group must be known to the broker when `must_exist` (a raw group id, which could be a
/// typo); `known`: the broker describes it, or it has committed offsets.
pub fn check_known(group: &str, known: bool, must_exist: bool) -> Result<(), PlanError> {
    if must_exist && !known {
        return Err(PlanError::UnknownGroup {
            group: group.to_owned(),
        });
    }
    Ok(())
}

/// The topics to observe: those of explicit offsets, else those selected, else every topic the
/// group has committed on (`committed`: the partitions it committed on).
pub fn topics_of(
    group: &str,
    selection: &Selection,
    target: &Target,
    committed: &BTreeSet<TopicPartition>,
) -> Result<Vec<String>, PlanError> {
    let topics: BTreeSet<String> = match target {
        // Explicit offsets name their own partitions.
        Target::Offsets(o) => o.keys().map(|(t, _)| t.clone()).collect(),
        _ if selection.topics.is_empty() => committed.iter().map(|(t, _)| t.clone()).collect(),
        _ => selection.topics.iter().cloned().collect(),
    };
    if topics.is_empty() {
        return Err(PlanError::NoTopics {
            group: group.to_owned(),
        });
    }
    Ok(topics.into_iter().collect())
}

/// The partitions a reset concerns, checked against the broker's topics (`None`: the topic does
/// not exist): every error at once.
pub fn select(
    topics: &[String],
    selection: &Selection,
    target: &Target,
    observed: &BTreeMap<String, Option<Vec<i32>>>,
) -> Result<Vec<TopicPartition>, Vec<PlanError>> {
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let exists =
        |topic: &str, partition: i32, errors: &mut Vec<PlanError>| match observed.get(topic) {
            Some(Some(ps)) if ps.contains(&partition) => true,
            Some(Some(ps)) => {
                errors.push(PlanError::UnknownPartition {
                    topic: topic.to_owned(),
                    partition,
                    count: ps.len() as i32,
                });
                false
            }
            _ => false,
        };
    for topic in topics {
        match observed.get(topic) {
            Some(Some(ps)) => {
                if let Target::Offsets(_) = target {
                    continue;
                }
                if selection.partitions.is_empty() {
                    out.extend(ps.iter().map(|p| (topic.clone(), *p)));
                } else {
                    for p in &selection.partitions {
                        if exists(topic, *p, &mut errors) {
                            out.push((topic.clone(), *p));
                        }
                    }
                }
            }
            _ => errors.push(PlanError::UnknownTopic {
                topic: topic.clone(),
            }),
        }
    }
    if let Target::Offsets(offsets) = target {
        for (topic, p) in offsets.keys() {
            if matches!(observed.get(topic), Some(Some(_))) && exists(topic, *p, &mut errors) {
                out.push((topic.clone(), *p));
            }
        }
    }
    if errors.is_empty() {
        out.sort();
        out.dedup();
        Ok(out)
    } else {
        errors.dedup();
        Err(errors)
    }
}

/// The new committed offset of each of `partitions`; every error at once, and no plan then.
pub fn plan(
    target: &Target,
    partitions: &[TopicPartition],
    observed: &BTreeMap<TopicPartition, PartitionOffsets>,
    now: Timestamp,
) -> Result<Plan, Vec<PlanError>> {
    check_target(target, now).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    for (topic, partition) in partitions {
        let Some(o) = observed.get(&(topic.clone(), *partition)) else {
            errors.push(PlanError::NotObserved {
                topic: topic.clone(),
                partition: *partition,
            });
            continue;
        };
        let mut clamped = false;
        let after = match target {
            Target::Earliest => o.start,
            Target::Latest => o.end,
            Target::Timestamp(_) => o.at_timestamp.unwrap_or(o.end).clamp(o.start, o.end),
            Target::ShiftBy(n) => match o.committed {
                None => {
                    errors.push(PlanError::NoCommittedOffset {
                        topic: topic.clone(),
                        partition: *partition,
                    });
                    continue;
                }
                Some(c) => {
                    let wanted = c.clamp(o.start, o.end).saturating_add(*n);
                    let after = wanted.clamp(o.start, o.end);
                    clamped = after != wanted;
                    after
                }
            },
            Target::Offsets(offsets) => {
                let offset = offsets
                    .get(&(topic.clone(), *partition))
                    .copied()
                    .unwrap_or(-1);
                if !(o.start..=o.end).contains(&offset) {
                    errors.push(PlanError::OffsetOutOfRange {
                        topic: topic.clone(),
                        partition: *partition,
                        offset,
                        start: o.start,
                        end: o.end,
                    });
                    continue;
                }
                offset
            }
        };
        changes.push(PartitionChange {
            topic: topic.clone(),
            partition: *partition,
            start: o.start,
            end: o.end,
            before: o.committed,
            after,
            clamped,
        });
    }
    if errors.is_empty() {
        Ok(Plan { changes })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests;
