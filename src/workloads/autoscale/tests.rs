use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proptest::prelude::*;

use super::*;

const WINDOW: Duration = Duration::from_secs(300);

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000 + seconds)
}

fn policy(min: i32, max: i32, threshold: u64) -> ScalePolicy {
    ScalePolicy::new(min, max, threshold, WINDOW).unwrap()
}

/// A controller in a test: keeps the replicas, the history and the time of its last decision
/// between decisions.
struct Sim {
    policy: ScalePolicy,
    replicas: i32,
    partitions: i32,
    history: ScaleHistory,
    previous: Option<u64>,
}

impl Sim {
    fn new(policy: ScalePolicy, replicas: i32, partitions: i32) -> Self {
        Sim {
            policy,
            replicas,
            partitions,
            history: ScaleHistory::default(),
            previous: None,
        }
    }

    fn step(&mut self, t: u64, lag: u64) -> Decision {
        self.step_with(t, lag, self.partitions)
    }

    fn step_with(&mut self, t: u64, lag: u64, partitions_with_lag: i32) -> Decision {
        let d = decide(&ScaleInput {
            policy: &self.policy,
            current_replicas: self.replicas,
            total_lag: lag,
            partitions: self.partitions,
            partitions_with_lag,
            assignment: AssignmentStrategy::Range,
            now: at(t),
            history: &self.history,
            previous_decision: self.previous.map(at),
        });
        self.replicas = d.replicas;
        self.history = d.history.clone();
        self.previous = Some(t);
        d
    }
}

fn once(policy: &ScalePolicy, current: i32, lag: u64, partitions: i32, with_lag: i32) -> Decision {
    decide(&ScaleInput {
        policy,
        current_replicas: current,
        total_lag: lag,
        partitions,
        partitions_with_lag: with_lag,
        assignment: AssignmentStrategy::Range,
        now: at(0),
        history: &ScaleHistory::default(),
        previous_decision: None,
    })
}

#[test]
fn desired_is_lag_over_threshold_rounded_up() {
    let p = policy(1, 20, 1000);
    let d = once(&p, 1, 4001, 12, 12);
    assert_eq!((d.replicas, d.change), (5, Change::Up));
    assert_eq!(d.reason, "lag 4001 / threshold 1000 = 5");
    assert_eq!(once(&p, 5, 4000, 12, 12).replicas, 5);
    assert_eq!(once(&p, 5, 4000, 12, 12).change, Change::None);
}

#[test]
fn capped_at_the_partition_count() {
    let d = once(&policy(1, 20, 1000), 1, 12_000, 6, 6);
    assert_eq!(d.replicas, 6);
    assert_eq!(
        d.reason,
        "lag 12000 / threshold 1000 = 12, capped at 6 partitions (range assignor: the largest topic's)"
    );
}

#[test]
fn the_ceiling_follows_the_assignment_strategy() {
    // A 6- and a 2-partition topic, both with lag on every partition.
    let topics = [(6, 6), (2, 2)];
    assert_eq!(usable_partitions(AssignmentStrategy::Range, topics), (6, 6));
    assert_eq!(
        usable_partitions(AssignmentStrategy::RoundRobin, topics),
        (8, 8)
    );
    assert_eq!(
        usable_partitions(AssignmentStrategy::CooperativeSticky, [(6, 1), (2, 2)]),
        (8, 3)
    );
    assert_eq!(
        usable_partitions(AssignmentStrategy::Range, [(6, 1), (2, 2)]),
        (6, 2)
    );
    assert_eq!(usable_partitions(AssignmentStrategy::Range, []), (0, 0));
    let d = decide(&ScaleInput {
        assignment: AssignmentStrategy::RoundRobin,
        ..input_for(&policy(1, 20, 10), 80, 8)
    });
    assert_eq!(d.replicas, 8);
    assert_eq!(d.reason, "lag 80 / threshold 10 = 8");
    let d = decide(&input_for(&policy(1, 20, 10), 80, 6));
    assert_eq!(d.replicas, 6);
    assert_eq!(
        d.reason,
        "lag 80 / threshold 10 = 8, capped at 6 partitions (range assignor: the largest topic's)"
    );
    let d = decide(&ScaleInput {
        assignment: AssignmentStrategy::CooperativeSticky,
        ..input_for(&policy(1, 20, 10), 120, 8)
    });
    assert_eq!(
        d.reason,
        "lag 120 / threshold 10 = 12, capped at 8 partitions (cooperative-sticky assignor: all topics')"
    );
}

fn input_for(policy: &ScalePolicy, lag: u64, partitions: i32) -> ScaleInput<'_> {
    static EMPTY: std::sync::LazyLock<ScaleHistory> =
        std::sync::LazyLock::new(ScaleHistory::default);
    ScaleInput {
        policy,
        current_replicas: 1,
        total_lag: lag,
        partitions,
        partitions_with_lag: partitions,
        assignment: AssignmentStrategy::Range,
        now: at(0),
        history: &EMPTY,
        previous_decision: None,
    }
}

#[test]
fn clamped_to_min_and_max() {
    let p = policy(2, 8, 100);
    let d = once(&p, 2, 0, 12, 0);
    assert_eq!(d.replicas, 2);
    assert_eq!(d.reason, "lag 0 / threshold 100 = 0, raised to min 2");
    let d = once(&p, 2, 5_000, 12, 12);
    assert_eq!(d.replicas, 8);
    assert_eq!(d.reason, "lag 5000 / threshold 100 = 50, capped at max 8");
}

#[test]
fn the_partition_ceiling_wins_over_min_and_says_so() {
    let d = once(&policy(4, 10, 100), 4, 0, 3, 0);
    assert_eq!((d.replicas, d.change), (3, Change::Down));
    assert_eq!(
        d.reason,
        "lag 0 / threshold 100 = 0, raised to min 4, capped at 3 partitions (range assignor: the largest topic's; below min 4: more consumers than partitions would idle)"
    );
    // A group whose topics have no partitions (absent) needs no consumer.
    assert_eq!(once(&policy(1, 10, 100), 1, 0, 0, 0).replicas, 0);
}

#[test]
fn limit_to_partitions_with_lag_caps_but_not_below_min() {
    let p = policy(1, 20, 100).limit_to_partitions_with_lag(true);
    let d = once(&p, 1, 10_000, 12, 3);
    assert_eq!(d.replicas, 3);
    assert_eq!(
        d.reason,
        "lag 10000 / threshold 100 = 100, capped at max 20, capped at 3 partitions with lag"
    );
    let p = policy(2, 20, 100).limit_to_partitions_with_lag(true);
    let d = once(&p, 2, 50, 12, 1);
    assert_eq!(d.replicas, 2);
    let d = once(&p, 2, 1_000, 12, 1);
    assert_eq!(d.replicas, 2);
    assert_eq!(
        d.reason,
        "lag 1000 / threshold 100 = 10, capped at min 2 (1 partitions with lag)"
    );
    // Without the option the partitions with lag do not matter.
    assert_eq!(once(&policy(1, 20, 100), 1, 1_000, 12, 1).replicas, 10);
}

#[test]
fn scales_up_at_once() {
    let mut sim = Sim::new(policy(1, 20, 100), 2, 12);
    assert_eq!(sim.step(0, 200).replicas, 2);
    let d = sim.step(10, 900);
    assert_eq!((d.replicas, d.change), (9, Change::Up));
}

#[test]
fn scales_down_only_after_a_whole_window_of_lower_recommendations() {
    let mut sim = Sim::new(policy(1, 20, 100), 8, 12);
    let d = sim.step(0, 200);
    assert_eq!((d.replicas, d.recommendation), (8, 2));
    assert_eq!(
        d.reason,
        "lag 200 / threshold 100 = 2; holding 8: scale-down stabilization, no recommendation history covers the last 300s yet"
    );
    let d = sim.step(15, 200);
    assert_eq!(d.replicas, 8);
    assert_eq!(
        d.reason,
        "lag 200 / threshold 100 = 2; holding 8: scale-down stabilization, the highest recommendation of the last 300s was 8"
    );
    for t in (30..=300).step_by(15) {
        assert_eq!(sim.step(t, 200).replicas, 8, "t={t}: within the window");
    }
    let d = sim.step(301, 200);
    assert_eq!((d.replicas, d.change), (2, Change::Down), "{}", d.reason);
    assert_eq!(d.reason, "lag 200 / threshold 100 = 2");
}

#[test]
fn scales_down_to_the_highest_recommendation_of_the_window() {
    let mut sim = Sim::new(policy(1, 20, 100), 8, 12);
    sim.step(0, 500); // 5
    sim.step(100, 300); // 3
    sim.step(200, 200); // 2
    let d = sim.step(301, 200);
    assert_eq!(
        d.replicas, 3,
        "5 left the window; 3 (t=100) is the highest left"
    );
    assert_eq!(
        d.reason,
        "lag 200 / threshold 100 = 2; 3: scale-down stabilization, the highest recommendation of the last 300s was 3"
    );
    assert_eq!(sim.step(401, 200).replicas, 2);
    assert!(sim.history.recommendations.len() <= 2, "{:?}", sim.history);
}

#[test]
fn a_spike_within_the_window_restarts_the_wait() {
    let mut sim = Sim::new(policy(1, 20, 100), 2, 12);
    sim.step(0, 200);
    assert_eq!(sim.step(10, 600).replicas, 6, "up at once");
    assert_eq!(sim.step(20, 200).replicas, 6);
    assert_eq!(
        sim.step(300, 200).replicas,
        6,
        "the spike at t=10 is in the window"
    );
    assert_eq!(
        sim.step(310, 200).replicas,
        6,
        "t=10 is exactly the window's start"
    );
    assert_eq!(sim.step(311, 200).replicas, 2);
}

#[test]
fn no_history_or_a_gap_longer_than_the_window_holds_before_scaling_down() {
    let mut sim = Sim::new(policy(1, 20, 100), 6, 12);
    sim.step(0, 100);
    assert_eq!(sim.step(150, 100).replicas, 6);
    assert_eq!(sim.step(301, 100).replicas, 1);
    sim.replicas = 6; // scaled by hand
                      // The controller was away for longer than the window: it knows nothing of that time.
    let d = sim.step(2_000, 100);
    assert_eq!(d.replicas, 6);
    assert!(
        d.reason
            .contains("no recommendation history covers the last 300s"),
        "{}",
        d.reason
    );
    assert_eq!(sim.step(2_150, 100).replicas, 6);
    assert_eq!(
        sim.step(2_300, 100).replicas,
        6,
        "exactly one window since t=2000"
    );
    assert_eq!(sim.step(2_301, 100).replicas, 1);
}

/// Idle means zero writes: a steady recommendation leaves the history (kept in the consumer's
/// status) exactly as it was, poll after poll; it changes only with the recommendation, or
/// when an entry leaves the window.
#[test]
fn a_steady_recommendation_leaves_the_history_unchanged() {
    let mut sim = Sim::new(policy(1, 20, 100), 1, 12);
    sim.step(0, 100);
    let steady = sim.history.clone();
    for t in (1..=900).step_by(7) {
        assert_eq!(sim.step(t, 100).replicas, 1);
        assert_eq!(
            sim.history, steady,
            "t={t}: nothing changed, nor may the history"
        );
    }
    // Up, then steady again: the history changes once and stays.
    assert_eq!(sim.step(901, 500).replicas, 5);
    let up = sim.history.clone();
    assert_ne!(up, steady);
    for t in 902..=950 {
        sim.step(t, 500);
        assert_eq!(sim.history, up, "t={t}");
    }
    // Down to 2: held for the window after the last 5 (t=950), then scaled down; in between
    // the history does not move.
    sim.step(951, 200);
    let holding = sim.history.clone();
    for t in (952..=1_250).step_by(3) {
        assert_eq!(sim.step(t, 200).replicas, 5, "t={t}");
        assert_eq!(sim.history, holding, "t={t}");
    }
    assert_eq!(sim.step(1_251, 200).replicas, 2);
}

/// After a restart the controller does not know whether it watched the window: it holds the
/// replicas for a whole window before scaling down, whatever the history says.
#[test]
fn after_a_restart_nothing_is_scaled_down_for_a_window() {
    let mut sim = Sim::new(policy(1, 20, 100), 6, 12);
    sim.step(0, 600);
    sim.step(10, 100);
    sim.previous = None; // restarted
    let d = sim.step(400, 100);
    assert_eq!(d.replicas, 6, "{}", d.reason);
    assert!(
        d.reason.contains("no recommendation history covers"),
        "{}",
        d.reason
    );
    assert_eq!(sim.step(700, 100).replicas, 6);
    assert_eq!(sim.step(701, 100).replicas, 1);
}

#[test]
fn a_zero_window_scales_down_at_once() {
    let p = ScalePolicy::new(1, 20, 100, Duration::ZERO).unwrap();
    let mut sim = Sim::new(p, 6, 12);
    assert_eq!(sim.step(0, 100).replicas, 1);
}

#[test]
fn lowered_max_and_lost_partitions_apply_at_once() {
    let mut sim = Sim::new(policy(1, 20, 100), 10, 12);
    sim.step(0, 1_000);
    sim.policy = policy(1, 5, 100);
    let d = sim.step(10, 1_000);
    assert_eq!((d.replicas, d.change), (5, Change::Down));
    assert_eq!(d.reason, "lag 1000 / threshold 100 = 10, capped at max 5");
    sim.policy = policy(1, 20, 100);
    sim.step(20, 1_000);
    sim.partitions = 4;
    let d = sim.step(30, 100);
    assert_eq!(d.replicas, 4);
    assert_eq!(
        d.reason,
        "lag 100 / threshold 100 = 1; 4: scale-down stabilization (the highest recommendation of the last 300s was 10), at most the 4 partitions at once"
    );
}

#[test]
fn history_stays_small_and_round_trips_through_json() {
    let mut sim = Sim::new(policy(0, 50, 10), 0, 64);
    for t in 0..2_000u64 {
        sim.step(t * 7, (t * 7919) % 500);
        assert!(sim.history.recommendations.len() <= 51);
    }
    let json = serde_json::to_string(&sim.history).unwrap();
    assert!(
        json.starts_with(r#"{"recommendations":[{"atUnixMs":"#),
        "{json}"
    );
    let back: ScaleHistory = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sim.history);
    let empty: ScaleHistory = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, ScaleHistory::default());
}

#[test]
fn a_history_out_of_order_or_from_the_future_is_tolerated() {
    let p = policy(1, 20, 100);
    let now = 1_800_000_000_000i64 + 1_000_000;
    let history = ScaleHistory {
        recommendations: vec![
            Recommendation {
                at_unix_ms: now + 60_000,
                replicas: 3,
            },
            Recommendation {
                at_unix_ms: now - 10_000,
                replicas: 7,
            },
        ],
    };
    let d = decide(&ScaleInput {
        policy: &p,
        current_replicas: 9,
        total_lag: 100,
        partitions: 12,
        partitions_with_lag: 1,
        assignment: AssignmentStrategy::Range,
        now: UNIX_EPOCH + Duration::from_millis(now as u64),
        history: &history,
        // Decided 5 s ago: the history covers the window.
        previous_decision: Some(UNIX_EPOCH + Duration::from_millis(now as u64 - 5_000)),
    });
    assert_eq!(d.replicas, 7);
    assert!(d
        .history
        .recommendations
        .windows(2)
        .all(|w| w[0].at_unix_ms <= w[1].at_unix_ms && w[0].replicas > w[1].replicas));
}

#[test]
fn invalid_policies_are_refused() {
    for (min, max, threshold) in [(-1, 5, 10), (0, 0, 10), (6, 5, 10), (1, 5, 0)] {
        assert!(
            ScalePolicy::new(min, max, threshold, WINDOW).is_err(),
            "{min} {max} {threshold}"
        );
    }
    assert!(ScalePolicy::new(0, 1, 1, Duration::ZERO).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Properties.

fn any_policy() -> impl Strategy<Value = ScalePolicy> {
    (0i32..6, 1i32..25, 1u64..2_000, any::<bool>(), 0u64..900).prop_map(
        |(min, span, threshold, limit, window)| {
            ScalePolicy::new(
                min,
                (min + span - 1).max(1),
                threshold,
                Duration::from_secs(window),
            )
            .unwrap()
            .limit_to_partitions_with_lag(limit)
        },
    )
}

fn any_history() -> impl Strategy<Value = ScaleHistory> {
    prop::collection::vec((-1_500i64..120, 0i32..40), 0..8).prop_map(|entries| ScaleHistory {
        recommendations: entries
            .into_iter()
            .map(|(s, replicas)| Recommendation {
                at_unix_ms: unix_ms(at(10_000)) + s * 1_000,
                replicas,
            })
            .collect(),
    })
}

/// Bounds a consumer count must respect whatever the history: the hard ceilings.
fn bounds(p: &ScalePolicy, partitions: i32) -> (i32, i32) {
    (
        p.min_replicas().min(partitions),
        p.max_replicas().min(partitions),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn bounds_always_hold(
        p in any_policy(),
        current in 0i32..60,
        lag in 0u64..10_000_000,
        partitions in 0i32..40,
        with_lag in 0i32..40,
        history in any_history(),
        previous in prop::option::of(8_500u64..=10_000),
    ) {
        let with_lag = with_lag.min(partitions);
        let d = decide(&ScaleInput {
            policy: &p, current_replicas: current, total_lag: lag, partitions,
            partitions_with_lag: with_lag, assignment: AssignmentStrategy::Range,
            now: at(10_000), history: &history,
            previous_decision: previous.map(at),
        });
        let (low, high) = bounds(&p, partitions);
        prop_assert!(d.replicas <= p.max_replicas(), "{d:?}");
        prop_assert!(d.replicas <= partitions, "never above the partitions: {d:?}");
        prop_assert!(d.replicas >= low && d.replicas <= high, "{d:?}");
        prop_assert!(d.recommendation >= low && d.recommendation <= high, "{d:?}");
        prop_assert!(d.replicas >= d.recommendation, "{d:?}");
        if d.replicas > current {
            prop_assert_eq!(d.replicas, d.recommendation, "up goes straight to the recommendation");
        }
        prop_assert!(!d.reason.is_empty());
    }

    #[test]
    fn more_lag_never_yields_fewer_replicas(
        p in any_policy(),
        current in 0i32..60,
        lag in 0u64..1_000_000,
        more in 0u64..1_000_000,
        partitions in 0i32..40,
        with_lag in 0i32..40,
        history in any_history(),
        previous in prop::option::of(8_500u64..=10_000),
    ) {
        let with_lag = with_lag.min(partitions);
        let run = |lag| decide(&ScaleInput {
            policy: &p, current_replicas: current, total_lag: lag, partitions,
            partitions_with_lag: with_lag, assignment: AssignmentStrategy::Range,
            now: at(10_000), history: &history,
            previous_decision: previous.map(at),
        });
        let (a, b) = (run(lag), run(lag + more));
        prop_assert!(a.replicas <= b.replicas, "{a:?}\n{b:?}");
        prop_assert!(a.recommendation <= b.recommendation);
    }

    #[test]
    fn constant_lag_converges_without_oscillating(
        p in any_policy(),
        lag in 0u64..200_000,
        partitions in 0i32..40,
        start in 0i32..60,
        steps in prop::collection::vec(1u64..1_200, 1..40),
    ) {
        let (low, high) = bounds(&p, partitions);
        let start = start.clamp(low, high);
        let with_lag = if lag > 0 { partitions } else { 0 };
        let mut sim = Sim::new(p.clone(), start, partitions);
        let mut t = 0;
        let mut replicas = vec![start];
        let mut target = None;
        for dt in steps {
            let d = sim.step_with(t, lag, with_lag);
            target = Some(d.recommendation);
            replicas.push(d.replicas);
            t += dt;
        }
        let changes = replicas.windows(2).filter(|w| w[0] != w[1]).count();
        prop_assert!(changes <= 1, "at most one change under constant lag: {replicas:?}");
        if changes == 1 {
            let last = *replicas.last().unwrap();
            prop_assert_eq!(Some(last), target, "the one change goes to the recommendation");
        }
    }

    #[test]
    fn scale_down_never_happens_before_the_window_elapses(
        p in any_policy(),
        partitions in 1i32..40,
        start in 0i32..60,
        steps in prop::collection::vec((1u64..700, 0u64..100_000, 0i32..40), 1..60),
    ) {
        let (low, high) = bounds(&p, partitions);
        let mut sim = Sim::new(p.clone(), start.clamp(low, high), partitions);
        let window = p.scale_down_stabilization().as_secs();
        let mut t = 0u64;
        let mut watching_since = 0u64;
        let mut last_call: Option<u64> = None;
        let mut log: Vec<(u64, i32)> = Vec::new();
        for (dt, lag, with_lag) in steps {
            if last_call.is_some_and(|l| t - l > window) {
                watching_since = t;
            }
            let before = sim.replicas;
            let d = sim.step_with(t, lag, with_lag.min(partitions));
            log.push((t, d.recommendation));
            if d.replicas < before && window > 0 {
                prop_assert!(
                    t - watching_since > window,
                    "scaled down at t={t}, watching only since {watching_since} (window {window}s)"
                );
                for &(at, rec) in log.iter().filter(|(at, _)| *at + window >= t) {
                    prop_assert!(
                        rec <= d.replicas,
                        "scaled down to {} at t={t} although {rec} was recommended at t={at} (window {window}s)",
                        d.replicas
                    );
                }
            }
            last_call = Some(t);
            t += dt;
        }
    }
}
