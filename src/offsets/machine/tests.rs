use std::time::Duration;

use proptest::prelude::*;

use super::*;

fn facts(phase: Phase) -> Facts {
    Facts {
        phase,
        deleting: false,
        dry_run: false,
        force: false,
        older_reset: None,
        consumer: Some(Consumer {
            held: false,
            pods: 3,
        }),
        group: None,
        waited: Duration::ZERO,
        timeout: Duration::from_secs(300),
        foreign_grace: Duration::from_secs(45),
        planned: false,
        written: false,
    }
}

/// A small world the machine runs in: a consumer of `replicas` pods that go one per round once
/// held and come back once released, a group whose members are those pods plus `foreign`
/// ones, and the status the steps record. Returns the final status, the steps taken and the
/// offset writes made.
struct World {
    status: Facts,
    replicas: i32,
    pods: i32,
    held: bool,
    foreign: usize,
    writes: u32,
    failure: Option<Failure>,
    steps: Vec<Step>,
}

impl World {
    fn new(f: Facts, replicas: i32, foreign: usize) -> Self {
        World {
            status: f,
            replicas,
            pods: replicas,
            held: false,
            foreign,
            writes: 0,
            failure: None,
            steps: Vec::new(),
        }
    }

    /// What the controller observes before asking.
    fn observe(&mut self) -> Facts {
        let mut f = self.status.clone();
        f.consumer = Some(Consumer {
            held: self.held,
            pods: self.pods,
        });
        let members = self.pods as usize + self.foreign;
        f.group = (f.phase == Phase::WaitingForEmptyGroup).then(|| Group {
            empty: members == 0,
            members,
            state: if members == 0 { "Empty" } else { "Stable" }.into(),
        });
        f
    }

    /// One round: the pods follow the hold, the machine decides, the step is executed and
    /// recorded. False once the machine has nothing more to do.
    fn round(&mut self) -> bool {
        if self.held {
            self.pods = (self.pods - 1).max(0);
        } else {
            self.pods = (self.pods + 1).min(self.replicas);
        }
        let f = self.observe();
        let step = next(&f);
        self.steps.push(step.clone());
        let s = &mut self.status;
        let before = s.phase;
        match step {
            Step::Hold => {
                self.held = true;
                s.phase = Phase::ScalingDown;
            }
            Step::Enter(p) => s.phase = p,
            Step::Wait(d) => s.waited += d.max(Duration::from_secs(1)),
            Step::Plan => s.planned = true,
            Step::Write => {
                self.writes += 1;
                s.written = true;
            }
            Step::Release => self.held = false,
            Step::Fail(why) => {
                self.failure = Some(why);
                s.phase = Phase::Failed;
            }
            Step::Finalize | Step::Done => return false,
        }
        if s.phase != before {
            s.waited = Duration::ZERO;
        }
        true
    }

    fn run(&mut self) {
        for _ in 0..10_000 {
            if !self.round() {
                return;
            }
        }
        panic!("no end: {:?}", &self.steps[self.steps.len() - 20..]);
    }
}

#[test]
fn the_full_machine_scales_down_writes_once_and_scales_back() {
    let mut w = World::new(facts(Phase::Pending), 3, 0);
    w.run();
    assert_eq!(w.status.phase, Phase::Succeeded);
    assert_eq!(w.writes, 1);
    assert!(!w.held, "the consumer is released");
    assert_eq!(w.failure, None);
    let phases: Vec<Phase> = w
        .steps
        .iter()
        .filter_map(|s| match s {
            Step::Enter(p) => Some(*p),
            _ => None,
        })
        .collect();
    assert_eq!(
        phases,
        [
            Phase::WaitingForEmptyGroup,
            Phase::Resetting,
            Phase::ScalingUp,
            Phase::Succeeded
        ]
    );
    assert_eq!(w.steps[0], Step::Hold);
    let plan = w.steps.iter().position(|s| *s == Step::Plan).unwrap();
    let write = w.steps.iter().position(|s| *s == Step::Write).unwrap();
    assert!(plan < write, "computed and recorded before written");
}

#[test]
fn a_dry_run_plans_without_scaling_and_writes_nothing() {
    let mut f = facts(Phase::Pending);
    f.dry_run = true;
    let mut w = World::new(f, 3, 0);
    w.run();
    assert_eq!(w.status.phase, Phase::Succeeded);
    assert_eq!(w.writes, 0);
    assert!(!w.steps.contains(&Step::Hold));
    assert_eq!(w.steps[0], Step::Plan);
}

#[test]
fn foreign_members_are_refused_after_the_grace_unless_forced_and_the_consumer_is_restored() {
    let mut w = World::new(facts(Phase::Pending), 2, 1);
    w.run();
    assert_eq!(w.status.phase, Phase::Failed);
    assert_eq!(
        w.failure,
        Some(Failure::ForeignMembers {
            members: 1,
            state: "Stable".into()
        })
    );
    assert_eq!(w.writes, 0);
    assert!(!w.held, "restored after the failure");
    // Forced: it waits for the group to empty, up to the timeout.
    let mut f = facts(Phase::Pending);
    f.force = true;
    let mut w = World::new(f, 2, 1);
    w.run();
    assert!(matches!(
        w.failure,
        Some(Failure::Timeout {
            phase: Phase::WaitingForEmptyGroup,
            ..
        })
    ));
    assert!(!w.held);
}

#[test]
fn a_conflict_or_a_missing_consumer_fails_before_anything_is_held() {
    let mut f = facts(Phase::Pending);
    f.older_reset = Some("replay-1".into());
    assert_eq!(
        next(&f),
        Step::Fail(Failure::ResourceConflict {
            other: "replay-1".into()
        })
    );
    let mut f = facts(Phase::Pending);
    f.consumer = None;
    assert_eq!(next(&f), Step::Fail(Failure::ConsumerNotFound));
}

#[test]
fn deletion_mid_way_releases_the_consumer_before_the_finalizer_goes() {
    let mut f = facts(Phase::WaitingForEmptyGroup);
    f.deleting = true;
    f.consumer = Some(Consumer {
        held: true,
        pods: 0,
    });
    assert_eq!(next(&f), Step::Release);
    f.consumer = Some(Consumer {
        held: false,
        pods: 0,
    });
    assert_eq!(next(&f), Step::Finalize);
}

#[test]
fn restarted_in_resetting_it_writes_once() {
    // Restarted with the plan recorded and not yet written: one write.
    let mut f = facts(Phase::Resetting);
    f.planned = true;
    let mut w = World::new(f, 2, 0);
    w.held = true;
    w.pods = 0;
    w.run();
    assert_eq!((w.status.phase, w.writes), (Phase::Succeeded, 1));
    // Restarted after the write was recorded: no second write.
    let mut f = facts(Phase::Resetting);
    f.planned = true;
    f.written = true;
    let mut w = World::new(f, 2, 0);
    w.held = true;
    w.pods = 0;
    w.run();
    assert_eq!((w.status.phase, w.writes), (Phase::Succeeded, 0));
    assert!(!w.held);
}

fn phase() -> impl Strategy<Value = Phase> {
    prop_oneof![
        Just(Phase::Pending),
        Just(Phase::ScalingDown),
        Just(Phase::WaitingForEmptyGroup),
        Just(Phase::Resetting),
        Just(Phase::ScalingUp),
        Just(Phase::Succeeded),
        Just(Phase::Failed),
    ]
}

fn any_facts() -> impl Strategy<Value = Facts> {
    (
        phase(),
        any::<[bool; 6]>(),
        proptest::option::of((any::<bool>(), 0i32..4)),
        proptest::option::of(0usize..3),
        0u64..400,
    )
        .prop_map(|(phase, b, consumer, members, waited)| Facts {
            phase,
            deleting: b[0],
            dry_run: b[1],
            force: b[2],
            older_reset: b[3].then(|| "older".to_owned()),
            consumer: consumer.map(|(held, pods)| Consumer { held, pods }),
            group: members.map(|m| Group {
                empty: m == 0,
                members: m,
                state: if m == 0 { "Empty" } else { "Stable" }.into(),
            }),
            waited: Duration::from_secs(waited),
            timeout: Duration::from_secs(300),
            foreign_grace: Duration::from_secs(45),
            planned: b[4],
            written: b[5],
        })
}

proptest! {
    /// Whatever the status and the observations: offsets are written only in Resetting, once
    /// planned, never twice, never while the reset is being deleted; nothing is final while
    /// the consumer is held; a deleted or final reset never holds, plans or writes.
    #[test]
    fn the_safety_rules_hold_in_every_state(f in any_facts()) {
        let step = next(&f);
        let held = f.consumer.is_some_and(|c| c.held);
        if step == Step::Write {
            prop_assert_eq!(f.phase, Phase::Resetting);
            prop_assert!(f.planned && !f.written && !f.deleting);
        }
        if matches!(step, Step::Done | Step::Finalize) {
            prop_assert!(!held);
        }
        if f.deleting || f.phase.is_final() {
            prop_assert!(matches!(step, Step::Release | Step::Finalize | Step::Done));
        }
        if matches!(step, Step::Hold) {
            prop_assert!(!held);
            prop_assert!(!(f.dry_run && f.phase == Phase::Pending));
        }
    }

    /// From any pod count, foreign members and dry-run choice, a run from Pending ends final,
    /// with the consumer released and the offsets written at most once (exactly once when it
    /// succeeds without a dry run).
    #[test]
    fn every_run_ends_released_with_at_most_one_write(
        replicas in 0i32..5,
        foreign in 0usize..2,
        dry_run in any::<bool>(),
        force in any::<bool>(),
    ) {
        let mut f = facts(Phase::Pending);
        f.dry_run = dry_run;
        f.force = force;
        let mut w = World::new(f, replicas, foreign);
        w.run();
        prop_assert!(w.status.phase.is_final());
        prop_assert!(!w.held);
        prop_assert!(w.writes <= 1);
        if w.status.phase == Phase::Succeeded {
            prop_assert_eq!(w.writes, u32::from(!dry_run));
        }
        if foreign > 0 && !dry_run {
            prop_assert_eq!(w.status.phase, Phase::Failed);
        }
    }
}
