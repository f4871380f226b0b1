//! Scaling a consumer group's Deployment on its lag: a pure decision, no I/O and no clock.
//!
//! The rules, in order:
//!
//! 1. **Recommendation**: `ceil(total lag / lagThreshold)`, clamped to `[min, max]`; with
//!    `limitToPartitionsWithLag`, no more than the partitions that have lag (but never below
//!    `min` for that reason); and never more than the members that can get a partition —
//!    with the range assignor the largest topic's partitions, with `roundrobin` and
//!    `cooperative-sticky` all topics' together ([`usable_partitions`]); a consumer beyond it
//!    gets no partition and idles. That last ceiling wins even over `min`, and the reason says
//!    so, and which assignor it counted for.
//! 2. **Up at once**: a recommendation above the current replicas is applied now.
//! 3. **Down only after the window**: below the current replicas, the replicas become the
//!    highest recommendation within the scale-down stabilization window (the HPA's rule), so a
//!    scale-down happens only once every recommendation of the whole window was lower. Until
//!    the controller has watched for a whole window (first decision, or a gap in the history
//!    longer than the window), nothing is scaled down.
//! 4. **Hard ceilings at once**: `max` and the live partition count bound the result even
//!    during the window (a lowered `max` is obeyed now; idle consumers are removed now).
//!
//! Under a constant lag this converges in at most one change and never oscillates.
//!
//! The state between decisions is a [`ScaleHistory`]: a few timestamped recommendations
//! (compressed to the ones that can still matter: at most one per distinct value, so it stays
//! small), serializable so the controller can keep it in the resource's status. Every entry but
//! the last is the last time its replica count was recommended; the last entry is the
//! recommendation in force, made at every decision since its time. So the history changes only
//! when the recommendation does (or an entry leaves the window): a steady consumer's history,
//! and so its status, stays the same from one lag poll to the next. Whether the decisions were
//! continuous — no gap longer than the window — is the controller's memory, not the history's:
//! [`ScaleInput::previous_decision`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// An autoscaling policy that has been checked: `0 <= min <= max`, `max >= 1`,
/// `lagThreshold >= 1`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePolicy {
    min_replicas: i32,
    max_replicas: i32,
    lag_threshold: u64,
    limit_to_partitions_with_lag: bool,
    scale_down_stabilization: Duration,
}

/// Why a policy was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid autoscaling policy: {0}")]
pub struct InvalidPolicy(pub String);

impl ScalePolicy {
    /// `lag_threshold`: the lag one replica is expected to absorb (messages per replica).
    pub fn new(
        min_replicas: i32,
        max_replicas: i32,
        lag_threshold: u64,
        scale_down_stabilization: Duration,
    ) -> Result<Self, InvalidPolicy> {
        if min_replicas < 0 {
            return Err(InvalidPolicy(format!(
                "minReplicas must be >= 0, got {min_replicas}"
            )));
        }
        if max_replicas < 1 {
            return Err(InvalidPolicy(format!(
                "maxReplicas must be >= 1, got {max_replicas}"
            )));
        }
        if min_replicas > max_replicas {
            return Err(InvalidPolicy(format!(
                "minReplicas ({min_replicas}) must not exceed maxReplicas ({max_replicas})"
            )));
        }
        if lag_threshold == 0 {
            return Err(InvalidPolicy("lagThreshold must be > 0".into()));
        }
        Ok(Self {
            min_replicas,
            max_replicas,
            lag_threshold,
            limit_to_partitions_with_lag: false,
            scale_down_stabilization,
        })
    }

    /// Cap the recommendation at the partitions that have lag (KEDA's
    /// `limitToPartitionsWithLag`).
    pub fn limit_to_partitions_with_lag(mut self, yes: bool) -> Self {
        self.limit_to_partitions_with_lag = yes;
        self
    }

    pub fn min_replicas(&self) -> i32 {
        self.min_replicas
    }
    pub fn max_replicas(&self) -> i32 {
        self.max_replicas
    }
    pub fn lag_threshold(&self) -> u64 {
        self.lag_threshold
    }
    pub fn limits_to_partitions_with_lag(&self) -> bool {
        self.limit_to_partitions_with_lag
    }
    pub fn scale_down_stabilization(&self) -> Duration {
        self.scale_down_stabilization
    }
}

pub use crate::api::{AssignmentStrategy, Recommendation, ScaleHistory};

/// How many members of a group can get a partition, and how many a partition with lag, given
/// `(partitions, partitions with lag)` of each of its topics (that exist): with the range
/// assignor each topic is divided separately, so the largest topic's; with `roundrobin` and
/// `cooperative-sticky` all topics' partitions are spread together, so their sum.
pub fn usable_partitions(
    assignment: AssignmentStrategy,
    topics: impl IntoIterator<Item = (i32, i32)>,
) -> (i32, i32) {
    topics.into_iter().fold((0, 0), |(all, with_lag), (p, l)| {
        if assignment.per_topic() {
            (all.max(p), with_lag.max(l))
        } else {
            (all.saturating_add(p), with_lag.saturating_add(l))
        }
    })
}

/// What the partition ceiling counts, for the reason.
fn basis(assignment: AssignmentStrategy) -> String {
    let counted = if assignment.per_topic() {
        "the largest topic's"
    } else {
        "all topics'"
    };
    format!("{} assignor: {counted}", assignment.as_str())
}

/// Everything a decision depends on.
#[derive(Debug, Clone, Copy)]
pub struct ScaleInput<'a> {
    pub policy: &'a ScalePolicy,
    /// The Deployment's replicas now.
    pub current_replicas: i32,
    /// The group's total lag (all partitions of all its topics).
    pub total_lag: u64,
    /// How many members can get a partition of the group's topics ([`usable_partitions`]).
    pub partitions: i32,
    /// Of those, how many have lag (used with `limitToPartitionsWithLag`).
    pub partitions_with_lag: i32,
    /// How the group assigns partitions: which of the two counts above mean (said in the
    /// reason when the ceiling applies).
    pub assignment: AssignmentStrategy,
    pub now: SystemTime,
    /// The previous decision's [`Decision::history`].
    pub history: &'a ScaleHistory,
    /// When the previous decision was made, if the controller remembers it (it keeps it in
    /// memory): `None` after a restart. The recommendation in force (the history's last entry)
    /// was last made then; with no previous decision within the window, the controller has not
    /// watched the whole window and nothing is scaled down until it has.
    pub previous_decision: Option<SystemTime>,
}

/// Which way the replicas move.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Up,
    Down,
    None,
}

/// What to do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The replicas the Deployment should have.
    pub replicas: i32,
    pub change: Change,
    /// What the lag alone recommends now (rule 1), before stabilization.
    pub recommendation: i32,
    /// Human-readable, e.g. "lag 12000 / threshold 1000 = 12, capped at 6 partitions".
    pub reason: String,
    /// The state to keep for the next decision.
    pub history: ScaleHistory,
}

fn unix_ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.3}s", d.as_secs_f64())
    }
}

/// Rule 1: the recommendation from lag alone, and how it was reached.
fn recommend(input: &ScaleInput<'_>) -> (i32, String) {
    let p = input.policy;
    let partitions = input.partitions.max(0);
    let raw = input.total_lag.div_ceil(p.lag_threshold);
    let mut reason = format!(
        "lag {} / threshold {} = {raw}",
        input.total_lag, p.lag_threshold
    );
    let mut rec = i32::try_from(raw).unwrap_or(i32::MAX);
    if rec < p.min_replicas {
        rec = p.min_replicas;
        let _ = write!(reason, ", raised to min {}", p.min_replicas);
    } else if rec > p.max_replicas {
        rec = p.max_replicas;
        let _ = write!(reason, ", capped at max {}", p.max_replicas);
    }
    if p.limit_to_partitions_with_lag {
        let with_lag = input.partitions_with_lag.clamp(0, partitions);
        let cap = with_lag.max(p.min_replicas);
        if rec > cap {
            rec = cap;
            if cap == with_lag {
                let _ = write!(reason, ", capped at {with_lag} partitions with lag");
            } else {
                let _ = write!(
                    reason,
                    ", capped at min {} ({with_lag} partitions with lag)",
                    p.min_replicas
                );
            }
        }
    }
    if rec > partitions {
        rec = partitions;
        let _ = write!(
            reason,
            ", capped at {partitions} partitions ({}",
            basis(input.assignment)
        );
        if partitions < p.min_replicas {
            let _ = write!(
                reason,
                "; below min {}: more consumers than partitions would idle",
                p.min_replicas
            );
        }
        reason.push(')');
    }
    (rec, reason)
}

/// The replicas for now, and the history to keep. See the module documentation for the rules.
pub fn decide(input: &ScaleInput<'_>) -> Decision {
    let p = input.policy;
    let current = input.current_replicas.max(0);
    let (recommendation, mut reason) = recommend(input);
    let now = unix_ms(input.now);
    let window = i64::try_from(p.scale_down_stabilization.as_millis()).unwrap_or(i64::MAX);
    let window_start = now.saturating_sub(window);

    // The history as past recommendations, oldest first (a timestamp from the future, e.g.
    // after a clock step back, counts as now): the last entry, the recommendation in force, was
    // last made at the previous decision (unknown after a restart: now, the cautious guess).
    let mut past: Vec<Recommendation> = input
        .history
        .recommendations
        .iter()
        .map(|r| Recommendation {
            at_unix_ms: r.at_unix_ms.min(now),
            replicas: r.replicas,
        })
        .collect();
    past.sort_by_key(|r| r.at_unix_ms);
    let in_force = past.last().copied();
    let previous = input.previous_decision.map(|t| unix_ms(t).min(now));
    if let Some(last) = past.last_mut() {
        last.at_unix_ms = previous.unwrap_or(now);
    }
    // The recommendations still inside the window.
    let mut kept: Vec<Recommendation> = if window > 0 {
        past.into_iter()
            .filter(|r| r.at_unix_ms >= window_start)
            .collect()
    } else {
        Vec::new()
    };
    // Watched for the whole window: a history, and a previous decision inside the window.
    let known = in_force.is_some() && previous.is_some_and(|p| p >= window_start);
    if !known && window > 0 {
        // Nothing known about the window: as if the current replicas had just been
        // recommended, so nothing scales down before a whole window has been watched.
        kept.push(Recommendation {
            at_unix_ms: now,
            replicas: current,
        });
    }
    kept.push(Recommendation {
        at_unix_ms: now,
        replicas: recommendation,
    });
    // Only the highest recommendation of the window matters, so an entry followed by a later
    // one at least as high never will again.
    let mut history: Vec<Recommendation> = Vec::with_capacity(kept.len());
    for r in kept {
        while history
            .last()
            .is_some_and(|last| last.replicas <= r.replicas)
        {
            history.pop();
        }
        history.push(r);
    }
    let highest_in_window = history[0].replicas;
    // The recommendation in force keeps its time while it stays the same, so a steady
    // consumer's history does not change.
    if let (Some(newest), Some(before)) = (history.last_mut(), in_force) {
        if before.replicas == newest.replicas {
            newest.at_unix_ms = before.at_unix_ms;
        }
    }

    let stabilized = if recommendation >= current {
        recommendation
    } else {
        current.min(highest_in_window)
    };
    // Hard ceilings apply at once, even during the window.
    let ceiling = p.max_replicas.min(input.partitions.max(0));
    let replicas = stabilized.min(ceiling);
    if replicas != recommendation {
        // Above the recommendation: held by the scale-down stabilization.
        let window_text = seconds(p.scale_down_stabilization);
        let why = if known {
            format!("the highest recommendation of the last {window_text} was {highest_in_window}")
        } else {
            format!("no recommendation history covers the last {window_text} yet")
        };
        if replicas == current {
            let _ = write!(
                reason,
                "; holding {current}: scale-down stabilization, {why}"
            );
        } else if replicas == stabilized {
            let _ = write!(reason, "; {replicas}: scale-down stabilization, {why}");
        } else {
            let limit = if ceiling == p.max_replicas {
                format!("max {ceiling}")
            } else {
                format!("the {ceiling} partitions")
            };
            let _ = write!(
                reason,
                "; {replicas}: scale-down stabilization ({why}), at most {limit} at once"
            );
        }
    }
    let change = match replicas.cmp(&current) {
        std::cmp::Ordering::Greater => Change::Up,
        std::cmp::Ordering::Less => Change::Down,
        std::cmp::Ordering::Equal => Change::None,
    };
    Decision {
        replicas,
        change,
        recommendation,
        reason,
        history: ScaleHistory {
            recommendations: history,
        },
    }
}

#[cfg(test)]
mod tests;
