//! Leader election on a `coordination.k8s.io/v1` Lease, so that of several replicas exactly one
//! runs the controllers.
//!
//! Every write is a `PUT` (or the first `POST`) carrying the `resourceVersion` last read, so of
//! two replicas writing at once one wins and the other gets `409 Conflict` (optimistic
//! concurrency; no clocks compared). The holder renews every `duration / 5`; a candidate looks
//! every `duration / 10` and takes the lease over when a holder released it (see [`released`]),
//! or when its record has not changed for a whole `leaseDurationSeconds`, measured on the
//! candidate's own monotonic clock from when it saw the record change (see [`Tracker`]). That
//! holds for every change the candidate did not see a holder make on stopping, as client-go's
//! `observedTime` does: a Lease deleted, or its `holderIdentity` cleared by hand, still counts
//! as held for a whole lease duration from when the candidate saw it change. Only a replica
//! whose very first look finds no Lease at all creates it at once.
//!
//! Safety: the holder watches its Lease and gives up — the operator exits non-zero, dropping
//! in-flight reconciles — as soon as it sees the Lease deleted, cleared or held by another
//! replica ([`Elector::watch`]), and also when it cannot renew for `duration / 2` (API server
//! unreachable, lease taken, lease gone): both before any candidate can consider the lease
//! expired (at least `0.85 × duration` after the holder's last renewal began, or after the
//! change), so two replicas never reconcile at once. Liveness: a candidate takes over at most
//! `duration` after the holder's last renewal, i.e. within the lease duration of the holder's
//! death (or of the Lease's deletion); a holder that stops on SIGTERM releases the lease
//! (clears `holderIdentity` and marks the record released) after its controllers have stopped,
//! and a candidate takes it at its next look.

use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

/// How often things happen, all derived from the lease duration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// `leaseDurationSeconds`: how long the record must stay unchanged before a candidate takes
    /// the lease over.
    pub duration: Duration,
    /// The holder renews this often.
    pub renew_period: Duration,
    /// The holder gives up when it has not renewed for this long.
    pub renew_deadline: Duration,
    /// A candidate looks at the lease this often.
    pub look_period: Duration,
}

impl Timing {
    pub fn new(duration: Duration) -> Self {
        Timing {
            duration,
            renew_period: duration / 5,
            renew_deadline: duration / 2,
            look_period: duration / 10,
        }
    }

    fn duration_seconds(&self) -> i32 {
        i32::try_from(self.duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }
}

/// The annotation a holder puts on the Lease when it releases it on stopping: the record of a
/// release, which a candidate may take at once (any other record without a holder — cleared
/// by hand — counts as held until it expires).
pub const RELEASED_BY: &str = "tributary.io/released-by";

/// The lease as a candidate sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// There is no Lease object.
    pub missing: bool,
    /// `None` (or empty): nobody holds it.
    pub holder: Option<String>,
    /// A holder released it on stopping ([`RELEASED_BY`]).
    pub released: bool,
    /// When the last change this replica saw runs out, on this replica's clock.
    pub expires: Instant,
}

/// What to do about the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// There is no lease: create it, held by us.
    Create,
    /// It is free or expired: take it over.
    Acquire,
    /// We hold it: renew it.
    Renew,
    /// Someone else holds it: look again after this long.
    Wait(Duration),
}

/// Whether `me` creates, acquires, renews, or waits for the lease, `now`. A Lease that is
/// missing, or has no holder without having been released, waits for `expires` like one held
/// by another replica: the holder may not have noticed yet.
pub fn decide(lease: &Observed, me: &str, now: Instant) -> Decision {
    let expired = now >= lease.expires;
    let wait = || Decision::Wait(lease.expires.saturating_duration_since(now));
    if lease.missing {
        return if expired { Decision::Create } else { wait() };
    }
    match lease.holder.as_deref() {
        Some(holder) if holder == me => Decision::Renew,
        None | Some("") if lease.released => Decision::Acquire,
        _ if expired => Decision::Acquire,
        _ => wait(),
    }
}

/// When the lease record was last written, as far as a candidate can tell from its own looks:
/// a record seen for the first time after a look at most 1.5 look periods earlier was written
/// after that look (taken as the time, so a dead holder is replaced within the lease duration);
/// otherwise (first look ever, or looks too far apart) it was written no later than now.
#[derive(Debug, Default)]
pub struct Tracker {
    /// `(resourceVersion, written no earlier than)` of the record last seen.
    seen: Option<(String, Instant)>,
    last_look: Option<Instant>,
}

/// What the [`Tracker`] records for a look that found no Lease (no resourceVersion is empty).
const ABSENT: &str = "";

impl Tracker {
    /// Whether this replica has looked at the lease before.
    pub fn looked(&self) -> bool {
        self.last_look.is_some()
    }

    /// Records a look at `now` that found the record at `version`; returns since when it has
    /// been unchanged.
    pub fn observe(&mut self, version: &str, now: Instant, look_period: Duration) -> Instant {
        let since = match (&self.seen, self.last_look) {
            (Some((seen, since)), _) if seen == version => *since,
            (_, Some(previous))
                if now.saturating_duration_since(previous) <= look_period * 3 / 2 =>
            {
                previous
            }
            _ => now,
        };
        self.seen = Some((version.to_owned(), since));
        self.last_look = Some(now);
        since
    }
}

fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .filter(|h| !h.is_empty())
}

/// `current` (or a new lease `name` when `None`) held by `me` as of `now`: a renewal when `me`
/// held it already, else a takeover (one more transition, a new acquire time). Keeps
/// `current`'s `resourceVersion`, the write's precondition.
pub fn claim(
    current: Option<&Lease>,
    name: &str,
    me: &str,
    timing: &Timing,
    now: Timestamp,
) -> Lease {
    let previous = current.and_then(|l| l.spec.clone()).unwrap_or_default();
    let renewal = current.and_then(holder) == Some(me);
    let transitions = previous.lease_transitions.unwrap_or(0);
    let mut metadata = current.map(|l| l.metadata.clone()).unwrap_or(ObjectMeta {
        name: Some(name.to_owned()),
        ..Default::default()
    });
    if let Some(annotations) = metadata.annotations.as_mut() {
        annotations.remove(RELEASED_BY);
    }
    Lease {
        metadata,
        spec: Some(LeaseSpec {
            holder_identity: Some(me.to_owned()),
            lease_duration_seconds: Some(timing.duration_seconds()),
            acquire_time: if renewal {
                previous.acquire_time.clone()
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(match current {
                None => 0,
                Some(_) if renewal => transitions,
                Some(_) => transitions + 1,
            }),
            ..previous
        }),
    }
}

/// `held`, given up: nobody holds it, and the record says who released it ([`RELEASED_BY`]),
/// so a candidate takes it at its next look.
pub fn released(held: &Lease, now: Timestamp) -> Lease {
    let mut lease = held.clone();
    let by = holder(held).unwrap_or_default().to_owned();
    lease
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(RELEASED_BY.to_owned(), by);
    let spec = lease.spec.get_or_insert_with(Default::default);
    spec.holder_identity = None;
    spec.acquire_time = None;
    spec.renew_time = Some(MicroTime(now));
    lease
}

/// This replica's identity: `POD_NAME` (set from the pod's name by the Helm chart), else
/// `<hostname>_<pid>`.
pub fn identity() -> String {
    if let Ok(name) = std::env::var("POD_NAME") {
        if !name.trim().is_empty() {
            return name.trim().to_owned();
        }
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "tributary".into());
    format!("{host}_{}", std::process::id())
}

/// One replica's side of the election.
pub struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    tracker: Tracker,
    /// The lease as last written by us: its resourceVersion is the next write's precondition.
    held: Option<Lease>,
    /// When our last successful write began.
    renewed: Instant,
}

fn conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Why `me` no longer holds `lease` (`None`: deleted), or `None` while it does.
pub fn lost(lease: Option<&Lease>, me: &str) -> Option<String> {
    match lease {
        None => Some("the lease was deleted".into()),
        Some(lease) => match holder(lease) {
            Some(h) if h == me => None,
            Some(h) => Some(format!("the lease was taken over by {h}")),
            None => Some("the lease's holder was cleared".into()),
        },
    }
}

impl Elector {
    pub fn new(api: Api<Lease>, name: String, identity: String, timing: Timing) -> Self {
        Self {
            api,
            name,
            identity,
            timing,
            tracker: Tracker::default(),
            held: None,
            renewed: Instant::now(),
        }
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Returns once this replica holds the lease. After every look, `looked` is told who holds
    /// it (`None`: nobody). API errors are logged and retried.
    pub async fn acquire(&mut self, mut looked: impl FnMut(Option<&str>)) {
        let params = PostParams::default();
        loop {
            let now = Instant::now();
            let current = match self.api.get_opt(&self.name).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "reading the leader-election lease failed");
                    tokio::time::sleep(self.timing.look_period).await;
                    continue;
                }
            };
            let first_look = !self.tracker.looked();
            let observed = match current.as_ref() {
                None => {
                    let since = self.tracker.observe(ABSENT, now, self.timing.look_period);
                    Observed {
                        missing: true,
                        holder: None,
                        released: false,
                        // Nobody has held it as far as this replica knows: create it at once.
                        expires: if first_look {
                            now
                        } else {
                            since + self.timing.duration
                        },
                    }
                }
                Some(lease) => {
                    let version = lease.metadata.resource_version.as_deref().unwrap_or("");
                    let since = self.tracker.observe(version, now, self.timing.look_period);
                    let seconds = lease
                        .spec
                        .as_ref()
                        .and_then(|s| s.lease_duration_seconds)
                        .and_then(|s| u64::try_from(s).ok())
                        .map_or(self.timing.duration, Duration::from_secs);
                    Observed {
                        missing: false,
                        holder: holder(lease).map(str::to_owned),
                        released: lease
                            .metadata
                            .annotations
                            .as_ref()
                            .is_some_and(|a| a.contains_key(RELEASED_BY)),
                        expires: since + seconds,
                    }
                }
            };
            looked(observed.holder.as_deref());
            let claimed = claim(
                current.as_ref(),
                &self.name,
                &self.identity,
                &self.timing,
                Timestamp::now(),
            );
            let written = match decide(&observed, &self.identity, now) {
                Decision::Wait(left) => {
                    tokio::time::sleep(left.min(self.timing.look_period)).await;
                    continue;
                }
                Decision::Create => self.api.create(&params, &claimed).await,
                Decision::Acquire | Decision::Renew => {
                    self.api.replace(&self.name, &params, &claimed).await
                }
            };
            match written {
                Ok(lease) => {
                    tracing::info!(
                        identity = %self.identity,
                        previous = ?observed.holder,
                        "acquired the leader-election lease"
                    );
                    self.held = Some(lease);
                    self.renewed = now;
                    return;
                }
                Err(e) if conflict(&e) => {
                    tracing::debug!("another replica wrote the lease first");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming the leader-election lease failed");
                    tokio::time::sleep(self.timing.look_period).await;
                }
            }
        }
    }

    /// Renews the lease while it can; returns why it stopped holding it (renewals failed for
    /// the renew deadline, or the lease was taken or deleted).
    pub async fn hold(&mut self) -> String {
        let params = PostParams::default();
        loop {
            tokio::time::sleep_until((self.renewed + self.timing.renew_period).into()).await;
            loop {
                let deadline = self.renewed + self.timing.renew_deadline;
                let start = Instant::now();
                if start >= deadline {
                    return format!(
                        "the lease could not be renewed for {:?}",
                        self.timing.renew_deadline
                    );
                }
                let Some(held) = self.held.clone() else {
                    return "the lease is not held".into();
                };
                let lease = claim(
                    Some(&held),
                    &self.name,
                    &self.identity,
                    &self.timing,
                    Timestamp::now(),
                );
                let renewal = self.api.replace(&self.name, &params, &lease);
                match tokio::time::timeout_at(deadline.into(), renewal).await {
                    Err(_) => continue,
                    Ok(Ok(lease)) => {
                        self.held = Some(lease);
                        self.renewed = start;
                        break;
                    }
                    Ok(Err(e)) if conflict(&e) => {
                        // Written since we last did: by us (a renewal whose answer was lost) or
                        // by a replica that took the lease over.
                        let current = self.api.get_opt(&self.name);
                        match tokio::time::timeout_at(deadline.into(), current).await {
                            Ok(Ok(Some(current))) if holder(&current) == Some(&self.identity) => {
                                self.held = Some(current);
                            }
                            Ok(Ok(Some(current))) => {
                                return format!(
                                    "the lease was taken over by {}",
                                    holder(&current).unwrap_or("nobody")
                                )
                            }
                            Ok(Ok(None)) => return "the lease was deleted".into(),
                            _ => {}
                        }
                    }
                    Ok(Err(e)) if not_found(&e) => return "the lease was deleted".into(),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "renewing the leader-election lease failed");
                        let retry = (Instant::now() + self.timing.look_period).min(deadline);
                        tokio::time::sleep_until(retry.into()).await;
                    }
                }
            }
        }
    }

    /// Watches the lease while this replica holds it; returns why it stopped holding it as soon
    /// as it sees the Lease deleted, its holder cleared, or another holder. Watch errors are
    /// retried (the renewal deadline of [`Elector::hold`] covers an unreachable API server).
    pub fn watch(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let (api, name) = (self.api.clone(), self.name.clone());
        let (identity, retry) = (self.identity.clone(), self.timing.look_period);
        async move {
            let events = kube::runtime::watcher::watch_object(api, &name);
            let mut events = std::pin::pin!(events);
            while let Some(event) = events.next().await {
                match event {
                    Ok(lease) => {
                        if let Some(reason) = lost(lease.as_ref(), &identity) {
                            return reason;
                        }
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "watching the leader-election lease");
                        tokio::time::sleep(retry).await;
                    }
                }
            }
            "the lease watch ended".into()
        }
    }

    /// Gives the lease up, so that a candidate takes over at its next look instead of waiting
    /// for it to expire. Call only once the controllers have stopped.
    pub async fn release(&mut self) {
        let params = PostParams::default();
        let Some(mut held) = self.held.take() else {
            return;
        };
        for _ in 0..3 {
            let lease = released(&held, Timestamp::now());
            let write = self.api.replace(&self.name, &params, &lease);
            match tokio::time::timeout(Duration::from_secs(5), write).await {
                Ok(Ok(_)) => {
                    tracing::info!("released the leader-election lease");
                    return;
                }
                Ok(Err(e)) if conflict(&e) => match self.api.get_opt(&self.name).await {
                    Ok(Some(current)) if holder(&current) == Some(&self.identity) => {
                        held = current;
                    }
                    _ => return,
                },
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "releasing the leader-election lease failed; it expires by itself");
                    return;
                }
                Err(_) => {
                    tracing::warn!(
                        "releasing the leader-election lease timed out; it expires by itself"
                    );
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed(holder: Option<&str>, expires: Instant) -> Observed {
        Observed {
            missing: false,
            holder: holder.map(str::to_owned),
            released: false,
            expires,
        }
    }

    #[test]
    fn a_missing_lease_is_created_a_free_or_expired_one_acquired_ours_renewed() {
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        let earlier = now - Duration::from_millis(1);
        let missing = |expires| Observed {
            missing: true,
            holder: None,
            released: false,
            expires,
        };
        assert_eq!(decide(&missing(now), "a", now), Decision::Create);
        assert_eq!(
            decide(&missing(later), "a", now),
            Decision::Wait(Duration::from_secs(5)),
            "deleted under a holder that may not have noticed yet"
        );
        let released = |holder: Option<&str>| Observed {
            released: true,
            ..observed(holder, later)
        };
        assert_eq!(
            decide(&released(None), "a", now),
            Decision::Acquire,
            "released"
        );
        assert_eq!(
            decide(&released(Some("")), "a", now),
            Decision::Acquire,
            "released by a client that writes an empty holder"
        );
        assert_eq!(
            decide(&observed(None, later), "a", now),
            Decision::Wait(Duration::from_secs(5)),
            "cleared by hand: held until it expires"
        );
        assert_eq!(
            decide(&observed(Some(""), earlier), "a", now),
            Decision::Acquire,
            "cleared by hand, expired"
        );
        assert_eq!(
            decide(&observed(Some("a"), later), "a", now),
            Decision::Renew
        );
        assert_eq!(
            decide(&observed(Some("a"), earlier), "a", now),
            Decision::Renew,
            "ours, even if it looks expired"
        );
        assert_eq!(
            decide(&observed(Some("b"), later), "a", now),
            Decision::Wait(Duration::from_secs(5))
        );
        assert_eq!(
            decide(&observed(Some("b"), now), "a", now),
            Decision::Acquire,
            "expired exactly now"
        );
        assert_eq!(
            decide(&observed(Some("b"), earlier), "a", now),
            Decision::Acquire
        );
    }

    #[test]
    fn a_leader_has_lost_its_lease_when_it_is_deleted_cleared_or_taken() {
        let timing = Timing::new(Duration::from_secs(15));
        let t = Timestamp::from_second(1_000).unwrap();
        let ours = claim(None, "l", "a", &timing, t);
        assert_eq!(lost(Some(&ours), "a"), None);
        assert_eq!(lost(None, "a").as_deref(), Some("the lease was deleted"));
        let theirs = claim(Some(&ours), "l", "b", &timing, t);
        assert_eq!(
            lost(Some(&theirs), "a").as_deref(),
            Some("the lease was taken over by b")
        );
        let mut cleared = ours.clone();
        cleared.spec.as_mut().unwrap().holder_identity = None;
        assert_eq!(
            lost(Some(&cleared), "a").as_deref(),
            Some("the lease's holder was cleared")
        );
    }

    #[test]
    fn a_record_is_as_old_as_the_look_before_it_was_first_seen() {
        let look = Duration::from_secs(1);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut tracker = Tracker::default();
        assert_eq!(tracker.observe("1", at(0), look), at(0), "first look: now");
        assert_eq!(tracker.observe("1", at(1000), look), at(0), "unchanged");
        assert_eq!(
            tracker.observe("2", at(2000), look),
            at(1000),
            "changed since the previous look"
        );
        assert_eq!(tracker.observe("2", at(3000), look), at(1000));
        assert_eq!(
            tracker.observe("3", at(6000), look),
            at(6000),
            "looks too far apart: no earlier than now"
        );
    }

    #[test]
    fn the_holder_gives_up_well_before_a_candidate_can_take_over() {
        let timing = Timing::new(Duration::from_secs(15));
        assert_eq!(timing.renew_period, Duration::from_secs(3));
        assert_eq!(timing.look_period, Duration::from_millis(1500));
        // The holder's last renewal began at `renewed` and was written at `written`; the
        // candidate saw it at its first look after `written`, its previous look at most 1.5
        // look periods before: it takes over no earlier than `previous + duration`.
        let renewed = Instant::now();
        let written = renewed + Duration::from_millis(10);
        let previous = written - timing.look_period * 3 / 2;
        let takeover = previous + timing.duration;
        let gives_up = renewed + timing.renew_deadline;
        assert!(takeover - gives_up >= timing.duration / 3);
    }

    #[test]
    fn claims_count_transitions_and_keep_the_resource_version() {
        let timing = Timing::new(Duration::from_secs(15));
        let t1 = Timestamp::from_second(1_000).unwrap();
        let t2 = Timestamp::from_second(1_005).unwrap();
        let created = claim(None, "tributary-operator", "a", &timing, t1);
        let spec = created.spec.clone().unwrap();
        assert_eq!(created.metadata.name.as_deref(), Some("tributary-operator"));
        assert_eq!(spec.holder_identity.as_deref(), Some("a"));
        assert_eq!(spec.lease_duration_seconds, Some(15));
        assert_eq!(spec.lease_transitions, Some(0));
        assert_eq!(spec.acquire_time, Some(MicroTime(t1)));

        let mut stored = created.clone();
        stored.metadata.resource_version = Some("7".into());
        let renewed = claim(Some(&stored), "tributary-operator", "a", &timing, t2);
        let spec = renewed.spec.clone().unwrap();
        assert_eq!(renewed.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(spec.acquire_time, Some(MicroTime(t1)), "a renewal");
        assert_eq!(spec.renew_time, Some(MicroTime(t2)));
        assert_eq!(spec.lease_transitions, Some(0));

        let taken = claim(Some(&stored), "tributary-operator", "b", &timing, t2);
        let spec = taken.spec.clone().unwrap();
        assert_eq!(spec.holder_identity.as_deref(), Some("b"));
        assert_eq!(spec.acquire_time, Some(MicroTime(t2)));
        assert_eq!(spec.lease_transitions, Some(1));

        let free = released(&stored, t2);
        assert_eq!(holder(&free), None);
        let marks = free.metadata.annotations.clone().unwrap_or_default();
        assert_eq!(marks.get(RELEASED_BY).map(String::as_str), Some("a"));
        assert_eq!(free.metadata.resource_version.as_deref(), Some("7"));
        let after = claim(Some(&free), "tributary-operator", "b", &timing, t2);
        let annotations = after.metadata.annotations.clone().unwrap_or_default();
        assert!(
            !annotations.contains_key(RELEASED_BY),
            "a claim is no release"
        );
        assert_eq!(after.spec.unwrap().lease_transitions, Some(1));
    }
}
