//! The state machine of a declared reset (issue #15's `KafkaOffsetReset`), pure: what is
//! recorded in status and what was just observed → the one next step. A controller executes the
//! step, records the outcome in status, and asks again; so an operator restarted at any point
//! resumes exactly where the status says, and the offsets are written once — they are computed
//! and recorded ([`Step::Plan`]) before they are written ([`Step::Write`]), and a write is
//! recorded before the next step.
//!
//! ```text
//! Pending → ScalingDown → WaitingForEmptyGroup → Resetting → ScalingUp → Succeeded
//!    ↘ (dry run: plan, then Succeeded)        any phase → Failed (reason), consumer released
//! ```
//!
//! The consumer is held at zero replicas through its KafkaConsumer (the hold pauses its
//! autoscaler; its own replicas come back when the hold is released). Whatever ends the reset —
//! success, a failure, its deletion — releases the hold before anything is final.

use std::time::Duration;

/// The phases, in order; `Succeeded` and `Failed` are final (the API's type: status records
/// it).
pub use crate::api::ResetPhase as Phase;

/// Why a reset failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The KafkaConsumer the reset names does not exist.
    ConsumerNotFound,
    /// An older reset of the same group is not finished.
    ResourceConflict { other: String },
    /// The group still has members once every pod of the consumer is gone: another
    /// application reads with the same group id.
    ForeignMembers { members: usize, state: String },
    /// The group did not empty (or the pods did not go) within the reset's timeout.
    Timeout { phase: Phase, waited: Duration },
}

/// The consumer the reset scales, as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumer {
    /// This reset's hold is on the KafkaConsumer.
    pub held: bool,
    /// Pods of its Deployment still running (terminating ones included).
    pub pods: i32,
}

/// The group, as described this round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// No member and a state without members (`Empty`, `Dead`).
    pub empty: bool,
    pub members: usize,
    pub state: String,
}

/// What the machine decides from: the status recorded and what was just observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub phase: Phase,
    /// The reset is being deleted.
    pub deleting: bool,
    pub dry_run: bool,
    /// Do not refuse a group with foreign members: wait for it to empty, up to the timeout.
    pub force: bool,
    /// An older reset of the same group that is not final.
    pub older_reset: Option<String>,
    /// `None`: the KafkaConsumer does not exist.
    pub consumer: Option<Consumer>,
    /// Described in `WaitingForEmptyGroup` only.
    pub group: Option<Group>,
    /// Time spent in the current phase.
    pub waited: Duration,
    /// The longest the pods may take to go and the group to empty.
    pub timeout: Duration,
    /// How long members may outlive the consumer's pods before they count as foreign (a
    /// consumer killed without leaving stays a member until its session times out).
    pub foreign_grace: Duration,
    /// The target offsets are computed and recorded in status.
    pub planned: bool,
    /// The recorded offsets were written and read back (recorded in status).
    pub written: bool,
}

/// The one next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Put the hold on the KafkaConsumer (recording the replicas it had) and enter
    /// `ScalingDown`. Never asked for while the hold is on.
    Hold,
    /// Record `phase` (a step of the machine that needs no other action).
    Enter(Phase),
    /// Look again after this long, in the same phase.
    Wait(Duration),
    /// Compute the target offsets and record them (`planned`; the machine moves on at the
    /// next step: to `Resetting`, or for a dry run to `Succeeded`). A refused plan is recorded
    /// as `Failed` with the refusal.
    Plan,
    /// Write the recorded offsets in one request and read them back; record `written`.
    Write,
    /// Take the hold off the KafkaConsumer (its replicas come back).
    Release,
    /// Record `Failed` with the reason (the hold is released at the next step).
    Fail(Failure),
    /// Being deleted, nothing held: remove the finalizer.
    Finalize,
    /// Final, nothing held: nothing to do.
    Done,
}

/// How often a waiting phase looks again.
pub const POLL: Duration = Duration::from_secs(2);

/// The next step from `f`.
pub fn next(f: &Facts) -> Step {
    let held = f.consumer.is_some_and(|c| c.held);
    if f.deleting {
        return if held { Step::Release } else { Step::Finalize };
    }
    let timed_out = |phase| {
        (f.waited >= f.timeout).then_some(Step::Fail(Failure::Timeout {
            phase,
            waited: f.waited,
        }))
    };
    match f.phase {
        Phase::Pending => {
            if let Some(other) = &f.older_reset {
                return Step::Fail(Failure::ResourceConflict {
                    other: other.clone(),
                });
            }
            match (f.consumer, f.dry_run, f.planned) {
                (None, _, _) => Step::Fail(Failure::ConsumerNotFound),
                (Some(_), true, false) => Step::Plan,
                (Some(_), true, true) => Step::Enter(Phase::Succeeded),
                // Held already (restarted before `ScalingDown` was recorded): the hold is not
                // put again, so the replicas it recorded stay those to restore.
                (Some(c), false, _) if c.held => Step::Enter(Phase::ScalingDown),
                (Some(_), false, _) => Step::Hold,
            }
        }
        Phase::ScalingDown => match f.consumer {
            None => Step::Fail(Failure::ConsumerNotFound),
            Some(c) if !c.held => Step::Hold,
            Some(c) if c.pods > 0 => timed_out(Phase::ScalingDown).unwrap_or(Step::Wait(POLL)),
            Some(_) => Step::Enter(Phase::WaitingForEmptyGroup),
        },
        Phase::WaitingForEmptyGroup => {
            let Some(c) = f.consumer else {
                return Step::Fail(Failure::ConsumerNotFound);
            };
            if !c.held {
                return Step::Hold;
            }
            match &f.group {
                Some(g) if g.empty => {
                    if f.planned {
                        Step::Enter(Phase::Resetting)
                    } else {
                        Step::Plan
                    }
                }
                Some(g) => {
                    if let Some(t) = timed_out(Phase::WaitingForEmptyGroup) {
                        return t;
                    }
                    if c.pods == 0 && f.waited >= f.foreign_grace && !f.force {
                        return Step::Fail(Failure::ForeignMembers {
                            members: g.members,
                            state: g.state.clone(),
                        });
                    }
                    Step::Wait(POLL)
                }
                // Not described yet: the controller describes the group in this phase.
                None => Step::Wait(Duration::ZERO),
            }
        }
        Phase::Resetting => {
            if !f.planned {
                Step::Plan
            } else if !f.written {
                Step::Write
            } else {
                Step::Enter(Phase::ScalingUp)
            }
        }
        Phase::ScalingUp => {
            if held {
                Step::Release
            } else {
                Step::Enter(Phase::Succeeded)
            }
        }
        Phase::Succeeded | Phase::Failed => {
            if held {
                Step::Release
            } else {
                Step::Done
            }
        }
    }
}

#[cfg(test)]
mod tests;
