//! When each autoscaled consumer's replicas were last decided, kept in memory on its cluster's
//! connection. Whether the decisions have been continuous (no gap longer than the scale-down
//! window) is the controller's knowledge, not the status's: kept there, the time of every lag
//! poll would change the status, and an idle consumer would write it on every poll. A restart,
//! or a rebuilt connection, forgets it: the autoscaler then holds a whole window before
//! scaling down ([`crate::workloads::autoscale`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::runtime::Connection;

/// A decision older than this is a gap for any consumer (the longest scale-down window the
/// validation allows), so it is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The time of each consumer's last decision, by its uid.
#[derive(Default)]
pub struct LastDecisions {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    times: HashMap<String, SystemTime>,
    pruned: Option<SystemTime>,
}

impl LastDecisions {
    /// The memory of `connection`'s cluster, made on first use.
    pub fn of(connection: &Connection) -> Arc<LastDecisions> {
        connection.attached(|_| LastDecisions::default())
    }

    /// Records a decision for `consumer` at `now`; returns the previous one's time, if known.
    pub fn record(&self, consumer: &str, now: SystemTime) -> Option<SystemTime> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let stale = |at: &SystemTime| now.duration_since(*at).is_ok_and(|d| d > FORGET_AFTER);
        if inner.pruned.is_none_or(|p| stale(&p)) {
            inner.times.retain(|_, at| !stale(at));
            inner.pruned = Some(now);
        }
        inner.times.insert(consumer.to_owned(), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_previous_decision_and_forgets_old_ones() {
        let memory = LastDecisions::default();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert_eq!(memory.record("a", t0), None);
        assert_eq!(memory.record("b", t0), None);
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(memory.record("a", t1), Some(t0));
        let t2 = t1 + FORGET_AFTER / 2;
        assert_eq!(memory.record("a", t2), Some(t1));
        let t3 = t0 + FORGET_AFTER + Duration::from_secs(60);
        assert_eq!(
            memory.record("b", t3),
            None,
            "b's decision was too old: forgotten"
        );
        assert_eq!(
            memory.record("a", t3),
            Some(t2),
            "a's was recent enough: kept"
        );
    }
}
