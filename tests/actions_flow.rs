//! Pause and resume through the whole path: key, dialog, authorization, audit intent,
//! the demo source, outcome; and viewer mode refusing every write.

mod common;

use std::time::Duration;

use common::{Live, chars, key, live, t0};
use crossterm::event::KeyCode;
use fleetdeck::actions::{self, Action, Mode};
use fleetdeck::app::App;
use fleetdeck::model::{SourceEvent, WaveState};

/// Pumps source events into the app until the action's outcome arrives.
async fn until_done(l: &mut Live) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        tokio::select! {
            Some(e) = l.events.recv() => l.app.apply(e),
            Some(m) = l.messages.recv() => {
                l.app.on_message(m);
                // Let the source's rollout event land too.
                while let Ok(e) = l.events.try_recv() { l.app.apply(e) }
                tokio::time::sleep(Duration::from_millis(50)).await;
                while let Ok(e) = l.events.try_recv() { l.app.apply(e) }
                return;
            }
            _ = tokio::time::sleep_until(deadline) => panic!("no outcome within 10s"),
        }
    }
}

/// Presses `k`, confirms with `y`, waits for the outcome; the audit log, newest first.
async fn confirm(l: &mut Live, k: char) -> Vec<actions::AuditEntry> {
    key(&mut l.app, KeyCode::Char(k));
    assert!(l.app.ui.dialog.is_some(), "{k} asks for confirmation");
    key(&mut l.app, KeyCode::Char('y'));
    until_done(l).await;
    actions::read_audit(&l.audit_path)
        .expect("audit readable")
        .0
}

fn staging(app: &App) -> WaveState {
    app.store().rollouts()[0]
        .waves
        .iter()
        .find(|w| w.name == "staging")
        .expect("staging")
        .state
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_pauses_and_resumes_a_wave_and_the_audit_says_who_when_why() {
    let mut l = live(Mode::Operator).await;
    key(&mut l.app, KeyCode::Char('3'));
    key(&mut l.app, KeyCode::Char('p'));
    assert!(l.app.ui.dialog.is_some(), "p opens the reason dialog");
    chars(&mut l.app, "INC-4411 5xx spike in eu-west-1");
    key(&mut l.app, KeyCode::Enter);
    until_done(&mut l).await;

    match staging(&l.app) {
        WaveState::Paused { by, reason, .. } => {
            assert_eq!(by, "alice");
            assert_eq!(reason, "INC-4411 5xx spike in eu-west-1");
        }
        other => panic!("staging should be paused, is {other:?}"),
    }
    let (entries, bad) = actions::read_audit(&l.audit_path).expect("audit readable");
    assert!(bad.is_empty());
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].os_user, "alice");
    assert_eq!(entries[0].action.kind(), "pause-wave");
    assert_eq!(
        entries[0].action.reason(),
        Some("INC-4411 5xx spike in eu-west-1")
    );
    assert!(
        entries[0].outcome.as_ref().is_some_and(|o| o.ok),
        "{:?}",
        entries[0].outcome
    );

    // The audit view shows who paused, when and why.
    key(&mut l.app, KeyCode::Char('5'));
    let screen = common::draw(&l.app, 160, 48);
    assert!(screen.contains("alice"), "{screen}");
    assert!(screen.contains("pause-wave"), "{screen}");
    assert!(screen.contains("INC-4411"), "{screen}");

    // Resume asks y/n and restores the wave.
    key(&mut l.app, KeyCode::Char('3'));
    let entries = confirm(&mut l, 'r').await;
    assert!(!staging(&l.app).is_held(), "resumed: {:?}", staging(&l.app));
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].action.kind(), "resume-wave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_write_is_audited_with_its_failure() {
    let mut l = live(Mode::Operator).await;
    // Resuming a wave that is not held: the source refuses, and the outcome says why.
    let action = Action::ResumeWave {
        rollout: "eks-1-31-upgrade".into(),
        wave: 0,
        wave_name: "sandbox".into(),
    };
    l.app.submit(action);
    until_done(&mut l).await;
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit readable");
    let outcome = entries[0].outcome.as_ref().expect("outcome recorded");
    assert!(!outcome.ok);
    assert!(
        l.app.ui.flash.as_ref().is_some_and(|f| f.error),
        "the failure is shown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_mode_refuses_every_write_and_records_nothing() {
    let mut l = live(Mode::Viewer).await;
    for (view, k) in [('3', 'p'), ('3', 'r'), ('2', 'a'), ('2', 'A')] {
        key(&mut l.app, KeyCode::Char(view));
        l.app.ui.flash = None;
        key(&mut l.app, KeyCode::Char(k));
        assert!(
            l.app.ui.dialog.is_none(),
            "{k} must not open a dialog in viewer mode"
        );
        let flash = l
            .app
            .ui
            .flash
            .as_ref()
            .expect("a message explains the refusal");
        assert!(
            flash.error && flash.text.contains("read-only viewer mode"),
            "{}",
            flash.text
        );
    }
    // Even an action submitted directly is refused at the one authorization point.
    for action in Action::examples() {
        l.app.submit(action);
        assert!(
            l.app
                .ui
                .flash
                .as_ref()
                .is_some_and(|f| f.text.contains("read-only viewer mode"))
        );
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(l.messages.try_recv().is_err(), "no action ran");
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit readable");
    assert!(
        entries.is_empty(),
        "nothing was attempted, so nothing is audited"
    );
    assert!(!staging(&l.app).is_held());
    let screen = common::draw(&l.app, 80, 24);
    assert!(screen.contains("read-only viewer mode"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_alert_is_acked_and_unacked_through_the_audit_log() {
    let mut l = live(Mode::Operator).await;
    key(&mut l.app, KeyCode::Char('2'));
    // The alerts view opens on its first row.
    let alert = l.app.store().alerts_sorted()[0].clone();
    assert!(alert.is_firing() && alert.ack.is_none(), "{alert:?}");
    key(&mut l.app, KeyCode::Char('a'));
    assert!(l.app.ui.dialog.is_some(), "a asks y/n");
    let screen = common::draw(&l.app, 100, 30);
    assert!(screen.contains("has no silences"), "{screen}");
    key(&mut l.app, KeyCode::Char('y'));
    until_done(&mut l).await;

    let acked = l
        .app
        .store()
        .alert(&alert.key)
        .expect("still listed")
        .clone();
    let ack = acked.ack.clone().expect("acked");
    assert_eq!(ack.by, "alice");
    assert_eq!(
        ack.until,
        Some(t0() + chrono::Duration::hours(1)),
        "an hour by default"
    );
    let screen = common::draw(&l.app, 120, 40);
    assert!(screen.contains("acked until 03:10"), "{screen}");
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit readable");
    assert_eq!(entries[0].action.kind(), "ack-alert");
    assert!(entries[0].outcome.as_ref().is_some_and(|o| o.ok));

    // The source sending the alert again keeps the ack; `a` again is refused.
    let mut again = alert.clone();
    again.summary = "changed".into();
    l.app.apply(SourceEvent::Alerts(vec![again]));
    assert_eq!(
        l.app.store().alert(&alert.key).and_then(|a| a.ack.clone()),
        Some(ack)
    );
    key(&mut l.app, KeyCode::Char('a'));
    assert!(l.app.ui.dialog.is_none());
    assert!(
        l.app
            .ui
            .flash
            .as_ref()
            .is_some_and(|f| f.text.contains("already acked by alice"))
    );

    // Un-ack withdraws it, audited too.
    let entries = confirm(&mut l, 'A').await;
    assert_eq!(
        l.app.store().alert(&alert.key).and_then(|a| a.ack.clone()),
        None
    );
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0].action.kind(), "unack-alert");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_prometheus_alert_is_acked_with_a_silence_and_drawn_dimmed() {
    let mut l = live(Mode::Operator).await;
    key(&mut l.app, KeyCode::Char('2'));
    chars(&mut l.app, "/KubeNodeNotReady");
    key(&mut l.app, KeyCode::Enter);
    let alert = l
        .app
        .store()
        .alerts()
        .find(|a| a.name == "KubeNodeNotReady")
        .expect("the demo's node alert")
        .clone();
    assert_eq!(alert.ack, None);
    key(&mut l.app, KeyCode::Char('a'));
    let screen = common::draw(&l.app, 120, 40);
    assert!(
        screen.contains("Alertmanager silence for 1h00m"),
        "{screen}"
    );
    key(&mut l.app, KeyCode::Char('y'));
    until_done(&mut l).await;
    let ack = l
        .app
        .store()
        .alert(&alert.key)
        .and_then(|a| a.ack.clone())
        .expect("silenced");
    assert_eq!(ack.by, "alice");
    assert!(
        matches!(ack.kind, fleetdeck::model::AckKind::Silence { .. }),
        "{ack:?}"
    );

    let screen = common::draw(&l.app, 120, 40);
    assert!(screen.contains("silenced until 03:10"), "{screen}");

    // Un-ack expires the demo silence.
    let entries = confirm(&mut l, 'A').await;
    assert_eq!(entries[0].action.kind(), "unack-alert");
    assert_eq!(
        l.app.store().alert(&alert.key).and_then(|a| a.ack.clone()),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silenced_and_inhibited_demo_alerts_are_dimmed_with_who_and_until_when() {
    let mut l = live(Mode::Operator).await;
    key(&mut l.app, KeyCode::Char('2'));
    let buffer = common::buffer(&l.app, 120, 30);
    let row_with = |text: &str| {
        (0..buffer.area.height)
            .find(|&y| {
                let line: String = (0..buffer.area.width)
                    .map(|x| buffer[(x, y)].symbol())
                    .collect();
                line.contains(text)
            })
            .unwrap_or_else(|| panic!("no row with {text}"))
    };
    let muted = l.app.theme.muted.fg.unwrap_or_default();
    // Column 3 is the cluster name: dimmed for held-back alerts, not for active ones.
    for held in ["dana", "inhibited by KubeNodeNotReady"] {
        assert_eq!(buffer[(3, row_with(held))].fg, muted, "{held} dimmed");
    }
    assert!(row_with("silenced until 02:45") > 0);
    assert_ne!(
        buffer[(3, row_with("Node ip-10-20-7-14"))].fg,
        muted,
        "an active alert is not dimmed"
    );

    // The cluster view says the same.
    chars(&mut l.app, ":cluster dev-euw1-edge-01");
    key(&mut l.app, KeyCode::Enter);
    let screen = common::draw(&l.app, 160, 48);
    assert!(
        screen.contains("inhibited by KubeNodeNotReady · Pod"),
        "{screen}"
    );
}

#[test]
fn opening_the_cluster_of_an_alert_no_account_lists_says_so() {
    let mut d = common::demo_app(Mode::Operator);
    let mut alert = d.app.store().alerts_sorted()[0].clone();
    alert.name = "LabelOnlyCluster".into();
    alert.key = fleetdeck::model::AlertKey("alertmanager:-:LabelOnlyCluster:f".into());
    alert.cluster = Some(fleetdeck::model::ClusterId::new("", "", "edge-lab-3"));
    d.app.apply(SourceEvent::Alerts(vec![alert]));
    key(&mut d.app, KeyCode::Char('2'));
    chars(&mut d.app, "/LabelOnlyCluster");
    key(&mut d.app, KeyCode::Enter);
    // `c` opens an alert's cluster (`enter` opens its runbook).
    key(&mut d.app, KeyCode::Char('c'));
    assert_eq!(d.app.ui.active(), fleetdeck::ui::keymap::ViewId::Alerts);
    let flash = d
        .app
        .ui
        .flash
        .as_ref()
        .map(|f| f.text.clone())
        .unwrap_or_default();
    assert_eq!(
        flash,
        "cluster edge-lab-3 is not in the fleet: no [[accounts]] entry lists it"
    );
}
