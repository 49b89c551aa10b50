#![allow(clippy::unwrap_used)]

use chrono::{DateTime, TimeDelta, Utc};

use super::*;
use crate::model::{
    Cell, CellPhase, ClusterId, Environment, Gate, GateStatus, Hold, HoldKind, Rollout, Timestamp,
    Wave, WaveState,
};

const FIVE_XX: &str = "eks-apiserver-5xx-high";
const LATENCY: &str = "eks-apiserver-p99-latency-high";

fn t(minute: i64) -> Timestamp {
    DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000) + TimeDelta::minutes(minute)
}

fn cluster(name: &str) -> ClusterId {
    ClusterId::new("platform-prod", "us-east-1", name)
}

fn cell(name: &str, phase: CellPhase, since: i64) -> Cell {
    Cell {
        cluster: cluster(name),
        app: None,
        phase,
        since: t(since),
        message: String::new(),
    }
}

/// A wave in `state`; a paused or halted state is written as the hold that makes it.
fn wave(name: &str, cells: Vec<Cell>, state: WaveState) -> Wave {
    let mut w = Wave {
        name: name.into(),
        environment: Environment::from_tag(name),
        cells,
        state: WaveState::Pending,
        soak_secs: 20 * 60,
        max_parallel: 2,
        holds: Vec::new(),
        soak_from: None,
    };
    set_state(&mut w, state);
    w
}

/// Puts a wave in `state`, with the holds that make a paused or halted state.
fn set_state(w: &mut Wave, state: WaveState) {
    w.holds = match &state {
        WaveState::Paused { by, reason, at } => vec![Hold {
            kind: HoldKind::Operator {
                reason: reason.clone(),
            },
            by: by.clone(),
            at: *at,
        }],
        WaveState::Halted { alarm, cluster, at } => vec![Hold {
            kind: HoldKind::Breaker {
                alarm: alarm.clone(),
                cluster: cluster.clone(),
            },
            by: BREAKER.into(),
            at: *at,
        }],
        _ => Vec::new(),
    };
    w.state = state;
}

fn paused(by: &str, reason: &str) -> WaveState {
    WaveState::Paused {
        by: by.into(),
        reason: reason.into(),
        at: t(0),
    }
}

fn halted(alarm: &str, name: &str) -> WaveState {
    WaveState::Halted {
        alarm: alarm.into(),
        cluster: cluster(name),
        at: t(0),
    }
}

/// dev (done), staging (running: one soaking, one updating, two pending), prod-1
/// (pending), prod-2 (pending).
fn rollout() -> Rollout {
    use CellPhase::*;
    Rollout {
        name: "eks-1-31-upgrade".into(),
        source: "test".into(),
        description: "Upgrade EKS control planes to Kubernetes 1.31".into(),
        waves: vec![
            wave("dev", vec![cell("dev-1", Done, -100)], WaveState::Done),
            wave(
                "staging",
                vec![
                    cell("stg-1", Soaking, -5),
                    cell("stg-2", Updating, -3),
                    cell("stg-3", Pending, -200),
                    cell("stg-4", Pending, -200),
                ],
                WaveState::Running,
            ),
            wave(
                "prod-1",
                vec![
                    cell("prod-1a", Pending, -200),
                    cell("prod-1b", Pending, -200),
                ],
                WaveState::Pending,
            ),
            wave(
                "prod-2",
                vec![cell("prod-2a", Pending, -200)],
                WaveState::Pending,
            ),
        ],
        gates: vec![
            Gate {
                alarm: FIVE_XX.into(),
                status: GateStatus::Ok,
            },
            Gate {
                alarm: LATENCY.into(),
                status: GateStatus::Ok,
            },
        ],
        unmatched: Vec::new(),
    }
}

fn firing(alarm: &str, name: &str) -> Vec<(String, ClusterId)> {
    vec![(alarm.to_string(), cluster(name))]
}

/// Every cell of the current wave that may start starts; every in-flight cell moves one
/// phase on. One "tick" of a trivial driver, enough to exercise the state machine.
fn tick(r: &mut Rollout, now: Timestamp) {
    if let Some(w) = r.current_wave() {
        for c in r.waves[w]
            .cells
            .iter_mut()
            .filter(|c| c.phase.is_in_flight())
        {
            advance_cell(c, "next", now);
        }
        refresh_state(&mut r.waves[w], now);
    }
    if let Some((w, cells)) = cells_to_start(r) {
        for i in cells {
            advance_cell(&mut r.waves[w].cells[i], "pre-checks", now);
        }
        refresh_state(&mut r.waves[w], now);
    }
}

#[test]
fn pause_transitions() {
    struct Case {
        what: &'static str,
        state: WaveState,
        wave: usize,
        reason: &'static str,
        expect: Result<(), RolloutError>,
    }
    let cases = [
        Case {
            what: "pending future wave",
            state: WaveState::Pending,
            wave: 2,
            reason: "change freeze",
            expect: Ok(()),
        },
        Case {
            what: "running wave",
            state: WaveState::Running,
            wave: 1,
            reason: "investigating",
            expect: Ok(()),
        },
        Case {
            what: "soaking wave",
            state: WaveState::Soaking { until: t(10) },
            wave: 1,
            reason: "investigating",
            expect: Ok(()),
        },
        Case {
            what: "done wave",
            state: WaveState::Done,
            wave: 0,
            reason: "too late",
            expect: Err(RolloutError::AlreadyDone { wave: "dev".into() }),
        },
        Case {
            what: "already paused",
            state: paused("alice", "db migration"),
            wave: 1,
            reason: "me too",
            expect: Err(RolloutError::AlreadyPaused {
                wave: "staging".into(),
                by: "alice".into(),
                reason: "db migration".into(),
            }),
        },
        Case {
            what: "halted",
            state: halted(FIVE_XX, "stg-2"),
            wave: 1,
            reason: "also",
            expect: Err(RolloutError::AlreadyHalted {
                wave: "staging".into(),
                alarm: FIVE_XX.into(),
                cluster: "stg-2".into(),
            }),
        },
        Case {
            what: "blank reason",
            state: WaveState::Running,
            wave: 1,
            reason: "   ",
            expect: Err(RolloutError::ReasonRequired),
        },
        Case {
            what: "no such wave",
            state: WaveState::Running,
            wave: 9,
            reason: "x",
            expect: Err(RolloutError::NoWave {
                rollout: "eks-1-31-upgrade".into(),
                wave: 9,
            }),
        },
    ];
    for case in cases {
        let mut r = rollout();
        if let Some(w) = r.waves.get_mut(case.wave) {
            set_state(w, case.state.clone());
        }
        let before = r.clone();
        let got = pause(&mut r, case.wave, "bob", case.reason, t(1));
        assert_eq!(got, case.expect, "{}", case.what);
        match got {
            Ok(()) => assert_eq!(
                r.waves[case.wave].state,
                WaveState::Paused {
                    by: "bob".into(),
                    reason: case.reason.trim().into(),
                    at: t(1)
                },
                "{}",
                case.what
            ),
            Err(_) => assert_eq!(r, before, "{}: a refused pause changes nothing", case.what),
        }
    }
}

#[test]
fn resume_transitions() {
    struct Case {
        what: &'static str,
        wave: usize,
        state: WaveState,
        firing: Vec<(String, ClusterId)>,
        expect: Result<WaveState, RolloutError>,
    }
    let cases = [
        Case {
            what: "paused running wave resumes running",
            wave: 1,
            state: paused("alice", "x"),
            firing: vec![],
            expect: Ok(WaveState::Running),
        },
        Case {
            what: "halted wave resumes once the alarm cleared",
            wave: 1,
            state: halted(FIVE_XX, "stg-2"),
            firing: vec![],
            expect: Ok(WaveState::Running),
        },
        Case {
            what: "refused while the gate fires on this wave",
            wave: 1,
            state: halted(FIVE_XX, "stg-2"),
            firing: firing(FIVE_XX, "stg-2"),
            expect: Err(RolloutError::GateFiring {
                alarm: FIVE_XX.into(),
                cluster: "stg-2".into(),
            }),
        },
        Case {
            what: "refused while a gate fires on an earlier wave",
            wave: 1,
            state: paused("alice", "x"),
            firing: firing(LATENCY, "dev-1"),
            expect: Err(RolloutError::GateFiring {
                alarm: LATENCY.into(),
                cluster: "dev-1".into(),
            }),
        },
        Case {
            what: "a gate firing on a later wave does not block",
            wave: 1,
            state: halted(FIVE_XX, "stg-2"),
            firing: firing(FIVE_XX, "prod-2a"),
            expect: Ok(WaveState::Running),
        },
        Case {
            what: "paused future wave resumes pending",
            wave: 2,
            state: paused("alice", "freeze"),
            firing: vec![],
            expect: Ok(WaveState::Pending),
        },
        Case {
            what: "running wave is not held",
            wave: 1,
            state: WaveState::Running,
            firing: vec![],
            expect: Err(RolloutError::NotHeld {
                wave: "staging".into(),
            }),
        },
        Case {
            what: "done wave is not held",
            wave: 0,
            state: WaveState::Done,
            firing: vec![],
            expect: Err(RolloutError::NotHeld { wave: "dev".into() }),
        },
        Case {
            what: "no such wave",
            wave: 4,
            state: WaveState::Running,
            firing: vec![],
            expect: Err(RolloutError::NoWave {
                rollout: "eks-1-31-upgrade".into(),
                wave: 4,
            }),
        },
    ];
    for case in cases {
        let mut r = rollout();
        if let Some(w) = r.waves.get_mut(case.wave) {
            set_state(w, case.state.clone());
        }
        let before = r.clone();
        match (resume(&mut r, case.wave, t(1), &case.firing), case.expect) {
            (Ok(()), Ok(state)) => assert_eq!(r.waves[case.wave].state, state, "{}", case.what),
            (Err(got), Err(want)) => {
                assert_eq!(got, want, "{}", case.what);
                assert_eq!(r, before, "{}: a refused resume changes nothing", case.what);
            }
            (got, want) => panic!("{}: got {got:?}, want {want:?}", case.what),
        }
    }
}

#[test]
fn error_messages_read_as_sentences() {
    let cases = [
        (
            RolloutError::AlreadyDone {
                wave: "prod-1".into(),
            },
            "wave prod-1 is already done; there is nothing to pause",
        ),
        (
            RolloutError::AlreadyPaused {
                wave: "staging".into(),
                by: "alice".into(),
                reason: "db migration".into(),
            },
            "wave staging is already paused by alice (db migration)",
        ),
        (
            RolloutError::ReasonRequired,
            "a reason is required to pause a wave",
        ),
        (
            RolloutError::NotHeld { wave: "dev".into() },
            "wave dev is not paused or halted",
        ),
        (
            RolloutError::GateFiring {
                alarm: FIVE_XX.into(),
                cluster: "prod-use1-payments-03".into(),
            },
            "gate alarm eks-apiserver-5xx-high is still firing on prod-use1-payments-03; resume when it clears",
        ),
        (RolloutError::NoRollout("X".into()), "no rollout named X"),
        (
            RolloutError::NoWave {
                rollout: "X".into(),
                wave: 7,
            },
            "rollout X has no wave 7",
        ),
    ];
    for (error, text) in cases {
        assert_eq!(error.to_string(), text);
    }
    let halted = RolloutError::AlreadyHalted {
        wave: "prod-1".into(),
        alarm: FIVE_XX.into(),
        cluster: "prod-use1-payments-03".into(),
    };
    assert!(
        halted
            .to_string()
            .contains("already halted by the circuit breaker")
    );
}

#[test]
fn derived_state_table() {
    use CellPhase::*;
    /// (what, cells as (phase, since minute), now minute, expected state)
    type Case = (&'static str, Vec<(CellPhase, i64)>, i64, WaveState);
    let cases: [Case; 8] = [
        (
            "no cell started",
            vec![(Pending, 0), (Pending, 0)],
            5,
            WaveState::Pending,
        ),
        (
            "one pre-checking",
            vec![(PreCheck, 1), (Pending, 0)],
            5,
            WaveState::Running,
        ),
        (
            "one updated, one pending",
            vec![(Soaking, 1), (Pending, 0)],
            5,
            WaveState::Running,
        ),
        (
            "a failed cell blocks the soak",
            vec![(Soaking, 1), (Failed, 2)],
            60,
            WaveState::Running,
        ),
        (
            "all updated: soak from the latest update",
            vec![(Soaking, 1), (Soaking, 4)],
            5,
            WaveState::Soaking { until: t(24) },
        ),
        (
            "soak over",
            vec![(Soaking, 1), (Soaking, 4)],
            24,
            WaveState::Done,
        ),
        ("all done", vec![(Done, 1)], 0, WaveState::Done),
        ("empty wave", vec![], 0, WaveState::Done),
    ];
    for (what, cells, now, want) in cases {
        let cells = cells
            .into_iter()
            .enumerate()
            .map(|(i, (phase, since))| cell(&format!("c{i}"), phase, since))
            .collect();
        let w = wave("staging", cells, WaveState::Pending);
        assert_eq!(derive_state(&w, t(now)), want, "{what}");
    }
}

#[test]
fn refresh_keeps_holds_and_finishes_the_soak() {
    let mut w = wave(
        "staging",
        vec![
            cell("a", CellPhase::Soaking, 0),
            cell("b", CellPhase::Soaking, 3),
        ],
        WaveState::Running,
    );
    assert!(refresh_state(&mut w, t(5)));
    assert_eq!(w.state, WaveState::Soaking { until: t(23) });
    assert!(!refresh_state(&mut w, t(6)), "nothing changed");

    set_state(&mut w, paused("alice", "hold"));
    assert!(
        !refresh_state(&mut w, t(30)),
        "a hold is never lifted by time"
    );
    assert_eq!(w.paused_by(), Some("alice"));
    assert!(w.cells.iter().all(|c| c.phase == CellPhase::Soaking));

    set_state(&mut w, WaveState::Soaking { until: t(23) });
    assert!(refresh_state(&mut w, t(23)));
    assert_eq!(w.state, WaveState::Done);
    for c in &w.cells {
        assert_eq!(c.phase, CellPhase::Done);
        assert_eq!(c.since, t(23), "done as of the soak's end");
        assert_eq!(c.message, "soaked 20m without a gate alarm");
    }
}

#[test]
fn cell_phases_advance_in_order_and_stop_at_soaking() {
    let mut c = cell("a", CellPhase::Pending, 0);
    let mut seen = vec![];
    for minute in 1..=6 {
        if let Some(p) = advance_cell(&mut c, format!("step {minute}"), t(minute)) {
            seen.push(p);
            assert_eq!(c.since, t(minute));
            assert_eq!(c.message, format!("step {minute}"));
        }
    }
    use CellPhase::*;
    assert_eq!(seen, vec![PreCheck, Updating, PostCheck, Soaking]);
    assert_eq!(c.phase, Soaking, "only the wave ends a soak");
    assert_eq!(c.since, t(4));
    fail_cell(&mut c, "post-check failed", t(9));
    assert_eq!((c.phase, c.since), (Failed, t(9)));
    assert_eq!(next_phase(Failed), None);
    assert_eq!(next_phase(Done), None);
}

#[test]
fn cells_start_up_to_max_parallel_in_the_current_wave_only() {
    let mut r = rollout();
    // staging: one updating, max_parallel 2 -> one more may start, the first pending.
    assert_eq!(cells_to_start(&r), Some((1, vec![2])));
    r.waves[1].max_parallel = 5;
    assert_eq!(cells_to_start(&r), Some((1, vec![2, 3])));
    r.waves[1].max_parallel = 0;
    assert_eq!(cells_to_start(&r), None, "max_parallel 0 holds the wave");
    r.waves[1].max_parallel = 1;
    assert_eq!(cells_to_start(&r), None, "the slot is taken");
    r.waves[1].max_parallel = 2;
    set_state(&mut r.waves[1], paused("alice", "x"));
    assert_eq!(cells_to_start(&r), None, "paused");
    set_state(&mut r.waves[1], halted(FIVE_XX, "stg-1"));
    assert_eq!(cells_to_start(&r), None, "halted");
}

#[test]
fn pause_during_soak_then_resume_after_the_soak_end_is_done() {
    let mut r = rollout();
    let w = &mut r.waves[1];
    for c in &mut w.cells {
        c.phase = CellPhase::Soaking;
        c.since = t(0);
    }
    refresh_state(w, t(1));
    assert_eq!(w.state, WaveState::Soaking { until: t(20) });

    pause(&mut r, 1, "alice", "watching a dashboard", t(5)).expect("soaking wave pauses");
    // Time passes beyond the soak end: still held, prod-1 can't start.
    refresh_state(&mut r.waves[1], t(30));
    assert!(r.waves[1].state.is_held());
    assert_eq!(r.current_wave(), Some(1));
    assert_eq!(cells_to_start(&r), None);

    // Resumed before the soak end: soaking resumes with the same end, no hidden timer.
    let mut early = r.clone();
    resume(&mut early, 1, t(10), &[]).expect("resume");
    assert_eq!(early.waves[1].state, WaveState::Soaking { until: t(20) });

    resume(&mut r, 1, t(30), &[]).expect("resume");
    assert_eq!(r.waves[1].state, WaveState::Done);
    assert!(r.waves[1].cells.iter().all(|c| c.phase == CellPhase::Done));
    assert_eq!(r.current_wave(), Some(2));
    assert_eq!(
        cells_to_start(&r),
        Some((2, vec![0, 1])),
        "prod-1 may start"
    );
}

#[test]
fn alarm_during_an_update_halts_in_flight_cells_finish_no_new_cell_starts() {
    let mut r = rollout();
    tick(&mut r, t(1)); // stg-2 -> post-check, stg-3 starts
    assert_eq!(r.waves[1].cells[2].phase, CellPhase::PreCheck);

    let halted_wave = trip_breaker(&mut r, FIVE_XX, &cluster("stg-1"), t(2));
    assert_eq!(halted_wave, Some(1));
    assert_eq!(r.waves[1].state, halted(FIVE_XX, "stg-1").with_at(t(2)));
    assert_eq!(
        r.gates[0].status,
        GateStatus::Firing {
            cluster: cluster("stg-1")
        }
    );
    // The same alarm again (another cluster, still firing) does not re-halt.
    assert_eq!(trip_breaker(&mut r, FIVE_XX, &cluster("stg-2"), t(3)), None);

    for minute in 3..12 {
        tick(&mut r, t(minute));
    }
    let phases: Vec<CellPhase> = r.waves[1].cells.iter().map(|c| c.phase).collect();
    use CellPhase::*;
    assert_eq!(
        phases,
        vec![Soaking, Soaking, Soaking, Pending],
        "in-flight cells finished, the pending one never started"
    );
    assert!(matches!(r.waves[1].state, WaveState::Halted { .. }));
    assert!(
        r.waves[2].cells.iter().all(|c| c.phase == Pending),
        "prod-1 never starts"
    );
}

#[test]
fn resume_after_a_halt_is_refused_while_firing_and_allowed_after_clear() {
    let mut r = rollout();
    trip_breaker(&mut r, LATENCY, &cluster("stg-2"), t(0));
    let err = resume(&mut r, 1, t(5), &firing(LATENCY, "stg-2")).expect_err("still firing");
    assert_eq!(
        err.to_string(),
        "gate alarm eks-apiserver-p99-latency-high is still firing on stg-2; resume when it clears"
    );
    assert!(matches!(r.waves[1].state, WaveState::Halted { .. }));

    assert!(sync_gates(&mut r, &[]), "the gate clears");
    assert_eq!(r.gates[1].status, GateStatus::Ok);
    resume(&mut r, 1, t(20), &[]).expect("cleared");
    assert_eq!(r.waves[1].state, WaveState::Running);
    tick(&mut r, t(21));
    assert_eq!(
        r.waves[1].cells[2].phase,
        CellPhase::PreCheck,
        "progress resumes"
    );
}

#[test]
fn a_paused_future_wave_does_not_start_when_the_previous_finishes() {
    let mut r = rollout();
    pause(&mut r, 2, "alice", "prod change freeze", t(0)).expect("pending wave pauses");
    for minute in 1..200 {
        tick(&mut r, t(minute));
    }
    assert_eq!(r.waves[1].state, WaveState::Done, "staging finished");
    assert_eq!(r.current_wave(), Some(2));
    assert_eq!(r.waves[2].paused_by(), Some("alice"));
    assert!(
        r.waves[2]
            .cells
            .iter()
            .all(|c| c.phase == CellPhase::Pending)
    );

    resume(&mut r, 2, t(200), &[]).expect("resume");
    assert_eq!(r.waves[2].state, WaveState::Pending);
    tick(&mut r, t(201));
    assert_eq!(r.waves[2].state, WaveState::Running);
}

#[test]
fn alarm_on_a_later_wave_does_not_trip() {
    let mut r = rollout();
    assert_eq!(
        trip_breaker(&mut r, FIVE_XX, &cluster("prod-2a"), t(0)),
        None
    );
    assert_eq!(r.waves[1].state, WaveState::Running);
    assert_eq!(r.gates[0].status, GateStatus::Ok);
    assert!(
        !sync_gates(&mut r, &firing(FIVE_XX, "prod-2a")),
        "not this rollout's concern yet"
    );
}

#[test]
fn breaker_trips_on_an_earlier_wave_and_ignores_non_gates_and_strangers() {
    let mut r = rollout();
    assert_eq!(
        trip_breaker(&mut r, "eks-etcd-storage-high", &cluster("stg-1"), t(0)),
        None
    );
    assert_eq!(
        trip_breaker(&mut r, FIVE_XX, &cluster("elsewhere"), t(0)),
        None
    );
    assert_eq!(r.waves[1].state, WaveState::Running);

    // An earlier (done) wave's cluster halts the current one.
    set_state(&mut r.waves[1], paused("alice", "x"));
    assert_eq!(
        trip_breaker(&mut r, FIVE_XX, &cluster("dev-1"), t(4)),
        Some(1)
    );
    assert_eq!(
        r.waves[1].state,
        halted(FIVE_XX, "dev-1").with_at(t(4)),
        "the breaker overrides an operator's pause"
    );
}

#[test]
fn a_finished_rollout_has_nothing_to_halt() {
    let mut r = rollout();
    for w in &mut r.waves {
        for c in &mut w.cells {
            c.phase = CellPhase::Done;
        }
        set_state(w, WaveState::Done);
    }
    assert_eq!(trip_breaker(&mut r, FIVE_XX, &cluster("stg-1"), t(0)), None);
    assert!(!sync_gates(&mut r, &firing(FIVE_XX, "stg-1")));
}

trait WithAt {
    fn with_at(self, at: Timestamp) -> Self;
}

impl WithAt for WaveState {
    fn with_at(self, at: Timestamp) -> Self {
        match self {
            WaveState::Halted { alarm, cluster, .. } => WaveState::Halted { alarm, cluster, at },
            WaveState::Paused { by, reason, .. } => WaveState::Paused { by, reason, at },
            other => other,
        }
    }
}

#[test]
fn a_halt_during_soak_restarts_the_soak_on_resume() {
    let mut r = rollout();
    let w = &mut r.waves[1];
    for c in &mut w.cells {
        c.phase = CellPhase::Soaking;
        c.since = t(0);
    }
    refresh_state(w, t(1));
    assert_eq!(w.state, WaveState::Soaking { until: t(20) });

    trip_breaker(&mut r, FIVE_XX, &cluster("stg-1"), t(5)).expect("halts staging");
    // The alarm clears after the original soak end; the operator resumes.
    resume(&mut r, 1, t(40), &[]).expect("cleared");
    assert_eq!(
        r.waves[1].state,
        WaveState::Soaking { until: t(60) },
        "the soak starts over: time soaked before or during the halt proved nothing"
    );
    assert!(
        r.waves[1]
            .cells
            .iter()
            .all(|c| c.message.contains("soak restarted"))
    );
    assert_eq!(cells_to_start(&r), None, "prod-1 waits for the new soak");
    tick(&mut r, t(61));
    assert_eq!(r.waves[1].state, WaveState::Done);
    assert_eq!(r.waves[2].state, WaveState::Running, "then prod-1 starts");
}

mod guard_pass {
    use super::*;
    use crate::rollout::guard::{Signals, enforce};

    fn soak_holds(r: &Rollout) -> Vec<(usize, String)> {
        r.waves
            .iter()
            .enumerate()
            .flat_map(|(i, w)| {
                w.holds.iter().filter_map(move |h| match &h.kind {
                    HoldKind::Soak { after } => Some((i, after.clone())),
                    _ => None,
                })
            })
            .collect()
    }

    fn soak_all(r: &mut Rollout, wave: usize, since: i64) {
        for c in &mut r.waves[wave].cells {
            c.phase = CellPhase::Soaking;
            c.since = t(since);
        }
    }

    #[test]
    fn every_wave_after_the_current_one_is_held_until_the_one_before_has_soaked() {
        let mut r = rollout();
        let actions = enforce(&mut r, &Signals::default(), t(0));
        assert_eq!(
            soak_holds(&r),
            [(2, "staging".to_string()), (3, "prod-1".to_string())]
        );
        assert_eq!(actions.len(), 2);
        assert!(actions.iter().all(|a| a.placed));
        assert_eq!(
            actions[0].describe(),
            "held wave prod-1: until staging has soaked"
        );
        assert!(
            enforce(&mut r, &Signals::default(), t(1)).is_empty(),
            "a second pass changes nothing"
        );
    }

    #[test]
    fn soak_timing_with_a_frozen_clock() {
        let mut r = rollout();
        soak_all(&mut r, 1, 0);
        enforce(&mut r, &Signals::default(), t(0));
        assert_eq!(r.waves[1].state, WaveState::Soaking { until: t(20) });
        assert!(enforce(&mut r, &Signals::default(), t(19)).is_empty());
        assert_eq!(
            soak_holds(&r)[0].0,
            2,
            "prod-1 still held one minute before"
        );

        let actions = enforce(&mut r, &Signals::default(), t(20));
        assert_eq!(r.waves[1].state, WaveState::Done);
        assert_eq!(actions.len(), 1);
        assert!(!actions[0].placed);
        assert_eq!(
            actions[0].describe(),
            "released wave prod-1: staging has soaked"
        );
        assert_eq!(soak_holds(&r), [(3, "prod-1".to_string())]);
        assert!(cells_to_start(&r).is_some(), "prod-1 may start now");
    }

    #[test]
    fn an_alarm_during_an_update_holds_the_current_and_later_waves() {
        let mut r = rollout();
        enforce(&mut r, &Signals::default(), t(0));
        let signals = Signals {
            firing: firing(FIVE_XX, "stg-2"),
            ..Signals::default()
        };
        let actions = enforce(&mut r, &signals, t(1));
        assert!(matches!(r.waves[1].state, WaveState::Halted { .. }));
        for w in 1..4 {
            assert!(
                r.waves[w].holds.iter().any(
                    |h| matches!(&h.kind, HoldKind::Breaker { alarm, .. } if alarm == FIVE_XX)
                ),
                "wave {w}"
            );
        }
        assert_eq!(actions.len(), 3, "{actions:?}");
        assert_eq!(
            actions[0].describe(),
            "held wave staging: circuit breaker: alarm eks-apiserver-5xx-high fired on stg-2"
        );
        assert_eq!(
            r.waves[1].cells[1].phase,
            CellPhase::Updating,
            "in flight finishes"
        );
        assert_eq!(cells_to_start(&r), None);

        let cleared = enforce(&mut r, &Signals::default(), t(30));
        assert!(
            cleared.is_empty(),
            "only an operator lifts the breaker: {cleared:?}"
        );
        assert!(matches!(r.waves[1].state, WaveState::Halted { .. }));
        resume(&mut r, 1, t(31), &[]).unwrap();
        assert_eq!(r.waves[1].state, WaveState::Running);
        assert_eq!(
            soak_holds(&r).len(),
            2,
            "the soak holds stay: staging is not done"
        );
    }

    #[test]
    fn an_alarm_on_a_wave_not_started_does_not_stop_the_rollout() {
        let mut r = rollout();
        let signals = Signals {
            firing: firing(FIVE_XX, "prod-2a"),
            ..Signals::default()
        };
        enforce(&mut r, &signals, t(0));
        assert!(r.waves.iter().all(|w| !w.state.is_held()));
        assert_eq!(r.gates[0].status, GateStatus::Ok);
    }

    #[test]
    fn a_pause_during_soak_keeps_the_next_wave_held_past_the_soak_end() {
        let mut r = rollout();
        soak_all(&mut r, 1, 0);
        enforce(&mut r, &Signals::default(), t(0));
        pause(&mut r, 1, "alice", "INC-7", t(5)).unwrap();
        enforce(&mut r, &Signals::default(), t(40));
        assert_eq!(r.waves[1].paused_by(), Some("alice"));
        assert_eq!(
            soak_holds(&r)[0].0,
            2,
            "prod-1 waits while staging is paused"
        );
        resume(&mut r, 1, t(41), &[]).unwrap();
        assert_eq!(
            r.waves[1].state,
            WaveState::Done,
            "the soak ended while paused"
        );
        let actions = enforce(&mut r, &Signals::default(), t(41));
        assert_eq!(actions.len(), 1);
        assert_eq!(actions[0].wave_name, "prod-1");
    }

    #[test]
    fn a_wave_waits_for_upgrade_insights_to_pass_when_the_plan_says_so() {
        let mut r = rollout();
        soak_all(&mut r, 1, -30);
        let mut signals = Signals {
            insights_failing: vec![(
                cluster("prod-1b"),
                "Deprecated APIs removed in 1.32: 3 clients".into(),
            )],
            require_insights: true,
            ..Signals::default()
        };
        let actions = enforce(&mut r, &signals, t(0));
        assert_eq!(r.waves[1].state, WaveState::Done);
        assert!(
            actions.iter().any(|a| a.placed
                && a.describe()
                    == "held wave prod-1: held: upgrade insight not passing on prod-1b: Deprecated APIs removed in 1.32: 3 clients"),
            "{actions:?}"
        );
        assert_eq!(cells_to_start(&r), None);
        signals.insights_failing.clear();
        let actions = enforce(&mut r, &signals, t(1));
        assert!(actions.iter().any(|a| !a.placed && a.wave_name == "prod-1"));
        assert!(cells_to_start(&r).is_some());
    }

    /// The guard's policy hold, as a table: (policies failing, wave state, whether the
    /// wave's turn has come) -> the hold placed on prod-1, if any.
    #[test]
    fn a_wave_waits_for_its_policies_to_pass_when_the_plan_says_so() {
        struct Case {
            what: &'static str,
            failing: Vec<(&'static str, &'static str)>,
            staging_soaked: bool,
            prod1_updated: &'static [&'static str],
            hold: Option<&'static str>,
        }
        let cases = [
            Case {
                what: "a pending prod-1 cluster fails a policy: held",
                failing: vec![("prod-1b", "pdb-maxunavailable")],
                staging_soaked: true,
                prod1_updated: &[],
                hold: Some("held wave prod-1: held: policy pdb-maxunavailable fails on prod-1b"),
            },
            Case {
                what: "nothing fails: no hold",
                failing: vec![],
                staging_soaked: true,
                prod1_updated: &[],
                hold: None,
            },
            Case {
                what: "the failing cluster is already updated: it cannot be held back",
                failing: vec![("prod-1b", "pdb-maxunavailable")],
                staging_soaked: true,
                prod1_updated: &["prod-1b"],
                hold: None,
            },
            Case {
                what: "another wave's cluster fails: not prod-1's business",
                failing: vec![("prod-2a", "pdb-maxunavailable")],
                staging_soaked: true,
                prod1_updated: &[],
                hold: None,
            },
            Case {
                what: "prod-1's turn has not come (staging soaking): the soak holds it",
                failing: vec![("prod-1b", "pdb-maxunavailable")],
                staging_soaked: false,
                prod1_updated: &[],
                hold: None,
            },
        ];
        for case in cases {
            let mut r = rollout();
            if case.staging_soaked {
                soak_all(&mut r, 1, -30);
            }
            for c in &mut r.waves[2].cells {
                if case.prod1_updated.contains(&c.cluster.name.as_str()) {
                    c.phase = CellPhase::Done;
                }
            }
            let signals = Signals {
                policies_failing: case
                    .failing
                    .iter()
                    .map(|(c, p)| (cluster(c), p.to_string()))
                    .collect(),
                ..Signals::default()
            };
            let actions = enforce(&mut r, &signals, t(0));
            let placed: Vec<String> = actions
                .iter()
                .filter(|a| a.placed && matches!(a.hold.kind, HoldKind::Policy { .. }))
                .map(|a| a.describe())
                .collect();
            assert_eq!(
                placed,
                case.hold
                    .map(str::to_string)
                    .into_iter()
                    .collect::<Vec<_>>(),
                "{}",
                case.what
            );
        }

        // Fixed: the next pass lifts the hold and prod-1 may start.
        let mut r = rollout();
        soak_all(&mut r, 1, -30);
        let mut signals = Signals {
            policies_failing: vec![(cluster("prod-1a"), "check-deprecated-apis".into())],
            ..Signals::default()
        };
        enforce(&mut r, &signals, t(0));
        assert_eq!(cells_to_start(&r), None);
        signals.policies_failing.clear();
        let actions = enforce(&mut r, &signals, t(1));
        assert!(
            actions
                .iter()
                .any(|a| !a.placed && a.describe() == "released wave prod-1: cleared: held: policy check-deprecated-apis fails on prod-1a"),
            "{actions:?}"
        );
        assert!(cells_to_start(&r).is_some());
    }
}
