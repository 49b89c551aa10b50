//! A runbook step from an alert, through the whole path on the demo fleet: the alerts
//! view's runbook pane, `x`, the dry-run preview, the typed confirmation a production
//! cluster needs, the outcome in the pane and the audit record. Viewers can read the pane
//! and run nothing.

mod common;

use std::time::Duration;

use common::{Live, chars, key, live};
use crossterm::event::KeyCode;
use fleetdeck::actions::{self, Action, Mode};
use fleetdeck::app::App;
use fleetdeck::ui::views::alert_runbook::StepState;
use fleetdeck::ui::widgets::dialog::Dialog;

/// Feeds the app until `done` holds, or fails after 10 s.
async fn until(l: &mut Live, done: impl Fn(&App) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done(&l.app) {
        tokio::select! {
            Some(e) = l.events.recv() => l.app.apply(e),
            Some(m) = l.messages.recv() => l.app.on_message(m),
            _ = tokio::time::sleep_until(deadline) => panic!("condition not reached within 10s"),
        }
    }
}

/// Opens the runbook pane beside the degraded CoreDNS add-on alert of a production
/// cluster: its first runbook is "CoreDNS errors or latency", step 1 a restart.
fn open_coredns_pane(app: &mut App) {
    key(app, KeyCode::Char('2'));
    key(app, KeyCode::Char('/'));
    chars(app, "coredns is degraded");
    key(app, KeyCode::Enter);
    key(app, KeyCode::Enter);
}

fn first_step_state(app: &App) -> StepState {
    let pane = app.ui.alerts.pane.as_ref().expect("pane open");
    let alert = app.store().alert(&pane.alert).expect("alert");
    let rb = app.runbooks.matching(alert)[0];
    let step = fleetdeck::ui::views::alert_runbook::StepRef {
        alert: alert.key.clone(),
        runbook: rb.id.clone(),
        line: rb.steps[0].line,
    };
    app.ui
        .alerts
        .steps
        .get(&step)
        .map(|r| r.state.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_runs_a_step_from_an_alert_with_preview_typed_confirmation_and_audit() {
    let mut l = live(Mode::Operator).await;
    open_coredns_pane(&mut l.app);
    let screen = common::draw(&l.app, 160, 48);
    assert!(
        screen.contains("runbook 1/2: CoreDNS errors or latency"),
        "{screen}"
    );
    assert!(
        screen.contains(
            "[not run] rollout-restart prod-euw1-data-01: deployment kube-system/coredns"
        ),
        "{screen}"
    );

    key(&mut l.app, KeyCode::Char('x'));
    until(&mut l, |app| app.ui.dialog.is_some()).await;
    let screen = common::draw(&l.app, 160, 48);
    assert!(
        screen.contains("demo: dry run accepted: would restart deployment kube-system/coredns"),
        "the preview is the dry run's answer:\n{screen}"
    );
    assert!(
        screen.contains("Production: type the cluster name (prod-euw1-data-01)"),
        "{screen}"
    );

    // y is not enough on production; a wrong name is refused; the right one runs it.
    key(&mut l.app, KeyCode::Char('y'));
    key(&mut l.app, KeyCode::Enter);
    assert!(matches!(&l.app.ui.dialog, Some(Dialog::Step(d)) if d.error.is_some()));
    for _ in 0..5 {
        key(&mut l.app, KeyCode::Backspace);
    }
    chars(&mut l.app, "prod-euw1-data-01");
    key(&mut l.app, KeyCode::Enter);
    assert!(l.app.ui.dialog.is_none(), "the exact name confirms");
    until(&mut l, |app| {
        matches!(first_step_state(app), StepState::Done(_))
    })
    .await;

    let screen = common::draw(&l.app, 160, 48);
    assert!(screen.contains("[done]"), "{screen}");
    assert!(
        screen.contains("demo: restarted deployment kube-system/coredns"),
        "{screen}"
    );
    let (entries, bad) = actions::read_audit(&l.audit_path).expect("audit");
    assert!(bad.is_empty());
    assert_eq!(
        entries.len(),
        1,
        "the dry run is not a change and is not audited"
    );
    let entry = &entries[0];
    assert_eq!(entry.os_user, "alice");
    match &entry.action {
        Action::Remediate(r) => {
            assert_eq!(r.cluster.name, "prod-euw1-data-01");
            assert!(r.production);
            assert!(
                r.step
                    .as_deref()
                    .is_some_and(|s| s.starts_with("coredns-errors:")),
                "{:?}",
                r.step
            );
        }
        other => panic!("not a remediation: {other:?}"),
    }
    assert!(
        entry
            .outcome
            .as_ref()
            .is_some_and(|o| o.ok && o.message.contains("restarted"))
    );

    // The audit view shows it.
    key(&mut l.app, KeyCode::Char('5'));
    let screen = common::draw(&l.app, 160, 48);
    assert!(screen.contains("rollout-restart"), "{screen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_confirmation_changes_nothing() {
    let mut l = live(Mode::Operator).await;
    open_coredns_pane(&mut l.app);
    key(&mut l.app, KeyCode::Char('x'));
    until(&mut l, |app| app.ui.dialog.is_some()).await;
    key(&mut l.app, KeyCode::Esc);
    assert!(l.app.ui.dialog.is_none());
    assert_eq!(first_step_state(&l.app), StepState::NotRun);
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit");
    assert!(entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_reads_the_runbook_and_runs_nothing() {
    let mut l = live(Mode::Viewer).await;
    open_coredns_pane(&mut l.app);
    let screen = common::draw(&l.app, 160, 48);
    assert!(
        screen.contains("CoreDNS errors or latency"),
        "viewers read runbooks:\n{screen}"
    );
    key(&mut l.app, KeyCode::Char('x'));
    assert!(l.app.ui.dialog.is_none());
    let flash = l.app.ui.flash.as_ref().expect("told why");
    assert!(
        flash.error
            && flash
                .text
                .contains("read-only viewer mode: restarting a deployment is not allowed"),
        "{}",
        flash.text
    );
    // Every action kind, submitted directly, stops at the one authorization point.
    for action in Action::examples() {
        l.app.ui.flash = None;
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
    assert!(
        l.messages.try_recv().is_err(),
        "nothing ran, not even a preview"
    );
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit");
    assert!(entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_drain_reports_progress_and_its_outcome() {
    let mut l = live(Mode::Operator).await;
    let cluster = l.app.store().clusters()[0].id.clone();
    let drain = fleetdeck::actions::Remediation {
        cluster,
        production: false,
        step: None,
        op: fleetdeck::actions::Operation::Drain {
            node: "ip-10-0-1-7.ec2.internal".into(),
            timeout_secs: 60,
        },
    };
    l.app.submit(Action::Remediate(drain));
    until(&mut l, |app| {
        app.ui
            .flash
            .as_ref()
            .is_some_and(|f| f.text.contains("drained node"))
    })
    .await;
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit");
    let outcome = entries[0].outcome.as_ref().expect("outcome");
    assert!(
        outcome.ok && outcome.message.contains("pod(s) evicted"),
        "{}",
        outcome.message
    );
}

/// Shell steps are refused by default (no `allow_shell`), and never run against the demo
/// fleet even when allowed: the script would run on this machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shell_steps_are_refused_by_default_and_on_the_demo() {
    let mut l = live(Mode::Operator).await;
    let alert = l
        .app
        .store()
        .alerts_sorted()
        .into_iter()
        .find(|a| a.cluster.is_some())
        .expect("an alert")
        .clone();
    let rb = l
        .app
        .runbooks
        .get("apiserver-429-flow-control")
        .expect("runbook")
        .clone();
    let shell = rb
        .steps
        .iter()
        .find(|s| s.action == "shell")
        .expect("shell step");
    let step = fleetdeck::ui::views::alert_runbook::StepRef {
        alert: alert.key.clone(),
        runbook: rb.id.clone(),
        line: shell.line,
    };
    for (allow, why) in [
        (
            false,
            "shell steps are off: the config must set allow_shell = true to run them",
        ),
        (true, "shell steps are not run on the demo fleet"),
    ] {
        l.app.allow_shell = allow;
        l.app.ui.flash = None;
        l.app.ui.alerts.pane = Some(fleetdeck::ui::views::alert_runbook::RunbookPane::new(
            alert.key.clone(),
        ));
        l.app.run_step(step.clone());
        let flash = l.app.ui.flash.as_ref().expect("told why");
        assert!(flash.error && flash.text.contains(why), "{}", flash.text);
        assert!(l.app.ui.dialog.is_none());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(l.messages.try_recv().is_err(), "nothing ran");
    let (entries, _) = actions::read_audit(&l.audit_path).expect("audit");
    assert!(entries.is_empty());
}
