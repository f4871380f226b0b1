//! The kstatus conditions every kind writes (`Ready`, `Reconciling`, `Stalled`), kept with their
//! transition times.

use crate::api::{Condition, ConditionStatus, Reason};

pub const READY: &str = "Ready";
pub const RECONCILING: &str = "Reconciling";
pub const STALLED: &str = "Stalled";

/// Now, as conditions and decisions record it (RFC 3339, seconds).
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Sets one condition, keeping `lastTransitionTime` when the status did not change.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: &str,
    status: ConditionStatus,
    reason: Reason,
    message: impl Into<String>,
    generation: Option<i64>,
    now: &str,
) {
    let message = message.into();
    let previous = conditions.iter().position(|c| c.type_ == type_);
    let transition = match previous.map(|i| &conditions[i]) {
        Some(c) if c.status == status => c.last_transition_time.clone(),
        _ => Some(now.to_owned()),
    };
    let condition = Condition {
        type_: type_.to_owned(),
        status,
        reason: reason.into(),
        message,
        last_transition_time: transition,
        observed_generation: generation,
    };
    match previous {
        Some(i) => conditions[i] = condition,
        None => conditions.push(condition),
    }
}

/// The three kstatus conditions at once.
pub struct Verdict {
    pub ready: bool,
    pub reconciling: bool,
    pub stalled: bool,
    pub reason: Reason,
    pub message: String,
}

pub fn apply_verdict(
    conditions: &mut Vec<Condition>,
    v: &Verdict,
    generation: Option<i64>,
    now: &str,
) {
    let flag = |b: bool| {
        if b {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    };
    set_condition(
        conditions,
        READY,
        flag(v.ready),
        v.reason,
        v.message.clone(),
        generation,
        now,
    );
    let (reason, message) = if v.reconciling {
        (v.reason, v.message.clone())
    } else {
        (Reason::Idle, String::new())
    };
    set_condition(
        conditions,
        RECONCILING,
        flag(v.reconciling),
        reason,
        message,
        generation,
        now,
    );
    let (reason, message) = if v.stalled {
        (v.reason, v.message.clone())
    } else {
        (Reason::Progressing, String::new())
    };
    set_condition(
        conditions,
        STALLED,
        flag(v.stalled),
        reason,
        message,
        generation,
        now,
    );
}
