//! Screen tests: every view on the demo fleet (fixed seed, frozen clock) at 80x24 and
//! 160x48, as insta snapshots, plus the style checks a snapshot of text can't show.

mod common;

use common::{chars, demo_app, draw, key};
use crossterm::event::KeyCode;
use fleetdeck::actions::Mode;
use fleetdeck::model::{AlertState, Environment};

const SIZES: [(u16, u16); 2] = [(80, 24), (160, 48)];

fn snapshot_all(name: &str, app: &fleetdeck::app::App) {
    for (w, h) in SIZES {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), draw(app, w, h));
    }
}

#[test]
fn fleet_view() {
    let d = demo_app(Mode::Operator);
    snapshot_all("fleet", &d.app);
}

#[test]
fn fleet_view_filtered_and_sorted() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('/'));
    chars(&mut d.app, "env:prod");
    key(&mut d.app, KeyCode::Enter);
    // From the default (alerts, worst first) the next column is request rate.
    key(&mut d.app, KeyCode::Char('s'));
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("filter: env:prod"), "{screen}");
    assert!(screen.contains("sort req/s"), "{screen}");
    assert!(
        !screen.contains(" staging "),
        "only prod clusters are listed:\n{screen}"
    );
    snapshot_all("fleet_prod_by_req_rate", &d.app);
}

/// The table keeps its rows between frames until the store changes; a change between two
/// frames (alerts on a cluster below the fold) must show in the next one.
#[test]
fn the_fleet_table_follows_the_store_between_frames() {
    use fleetdeck::model::{Alert, AlertKey, AlertSource, Severity, SourceEvent};
    let mut d = demo_app(Mode::Operator);
    let before = draw(&d.app, 160, 48);
    let quiet = d
        .app
        .store()
        .clusters()
        .iter()
        .find(|c| {
            !before.contains(&format!(" {} ", c.id.name))
                && d.app.store().alerts_for(&c.id).is_empty()
        })
        .expect("more clusters than fit on one screen, without alerts")
        .id
        .clone();
    let alerts = (0..30)
        .map(|n| Alert {
            key: AlertKey::new(
                AlertSource::Alertmanager,
                Some(&quiet),
                "Boom",
                &n.to_string(),
            ),
            source: AlertSource::Alertmanager,
            cluster: Some(quiet.clone()),
            name: "Boom".into(),
            severity: Severity::Critical,
            state: AlertState::Firing,
            first_seen: common::t0(),
            last_change: common::t0(),
            summary: String::new(),
            labels: Default::default(),
            runbook_url: None,
            ack: None,
        })
        .collect();
    d.app.apply(SourceEvent::Alerts(alerts));
    let after = draw(&d.app, 160, 48);
    let first_row = after
        .lines()
        .skip_while(|l| !l.contains("│CLUSTER"))
        .nth(1)
        .unwrap_or_default();
    assert!(
        first_row.contains(&format!("│{} ", quiet.name)) && first_row.contains(" 30 "),
        "{} with 30 firing alerts leads the table (worst first):\n{after}",
        quiet.name
    );
}

#[test]
fn alerts_view() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('2'));
    snapshot_all("alerts", &d.app);
}

#[test]
fn cluster_view_of_a_cluster_with_a_firing_alert() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('2'));
    let alert = d
        .app
        .store()
        .alerts_sorted()
        .into_iter()
        .find(|a| a.state == AlertState::Firing && a.cluster.is_some())
        .expect("the demo starts with a firing alert")
        .clone();
    let cluster = alert.cluster.clone().expect("has a cluster");
    for event in d.fleet.focus(Some(cluster.clone()), common::t0()) {
        d.app.apply(event);
    }
    key(&mut d.app, KeyCode::Char('c'));
    let screen = draw(&d.app, 80, 24);
    assert!(
        screen.contains(&cluster.name),
        "c on an alert opens its cluster:\n{screen}"
    );
    assert!(
        screen.contains(&alert.name),
        "the cluster view lists its alerts:\n{screen}"
    );
    snapshot_all("cluster", &d.app);
}

#[test]
fn rollouts_view_opens_on_the_wave_in_progress_and_expands() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('3'));
    snapshot_all("rollouts", &d.app);
    key(&mut d.app, KeyCode::Enter);
    let screen = draw(&d.app, 160, 48);
    let staging = d.app.store().rollouts()[0]
        .waves
        .iter()
        .find(|w| w.name == "staging")
        .expect("staging wave");
    for cell in &staging.cells {
        assert!(
            screen.contains(&cell.cluster.name),
            "expanded staging lists {}",
            cell.cluster.name
        );
    }
    snapshot_all("rollouts_staging_expanded", &d.app);
}

#[test]
fn pause_dialog() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('3'));
    key(&mut d.app, KeyCode::Char('p'));
    chars(&mut d.app, "INC-4411 5xx in eu-west-1");
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("Pause wave staging"), "{screen}");
    assert!(
        screen.contains("will finish"),
        "the dialog says in-flight cells finish:\n{screen}"
    );
    snapshot_all("pause_dialog", &d.app);
}

#[test]
fn runbooks_view_list_and_open() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('4'));
    snapshot_all("runbooks", &d.app);
    key(&mut d.app, KeyCode::Enter);
    let screen = draw(&d.app, 80, 24);
    assert!(
        screen.contains("Meaning"),
        "an open runbook shows its sections:\n{screen}"
    );
    snapshot_all("runbook_open", &d.app);
}

#[test]
fn audit_view_when_empty() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('5'));
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("no actions recorded yet"), "{screen}");
}

#[test]
fn help_view_operator_and_viewer() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('3'));
    key(&mut d.app, KeyCode::Char('?'));
    let operator = draw(&d.app, 160, 48);
    assert!(operator.contains("pause the selected wave"), "{operator}");
    snapshot_all("help_rollouts_operator", &d.app);

    let mut v = demo_app(Mode::Viewer);
    key(&mut v.app, KeyCode::Char('3'));
    key(&mut v.app, KeyCode::Char('?'));
    let viewer = draw(&v.app, 160, 48);
    assert!(
        !viewer.contains("pause the selected wave"),
        "viewer help lists no write keys:\n{viewer}"
    );
    assert!(!viewer.contains("resume the selected wave"), "{viewer}");
    assert!(viewer.contains("VIEWER"), "{viewer}");
    snapshot_all("help_rollouts_viewer", &v.app);
}

#[test]
fn header_shows_mode_badge_summary_and_source_freshness() {
    let d = demo_app(Mode::Viewer);
    let screen = draw(&d.app, 160, 48);
    let header: String = screen.lines().take(2).collect();
    assert!(header.contains("VIEWER"), "{header}");
    assert!(header.contains("48 clusters"), "{header}");
    assert!(header.contains("rollout"), "{header}");
    assert!(header.contains("DEMO ok"), "source freshness:\n{header}");
}

#[test]
fn production_frames_look_different_from_dev() {
    let mut d = demo_app(Mode::Operator);
    let theme = d.app.theme.clone();
    let open = |d: &mut common::DemoApp, env: Environment| {
        let name = d
            .app
            .store()
            .clusters()
            .iter()
            .find(|c| c.environment == env)
            .expect("cluster of env")
            .id
            .name
            .clone();
        d.app.run_command(&format!("cluster {name}"));
        // The top-left corner of the cluster view's frame, under the two header lines.
        common::buffer(&d.app, 80, 24)[(0, 2)].style()
    };
    let prod = open(&mut d, Environment::Prod);
    let dev = open(&mut d, Environment::Dev);
    assert_eq!(prod.fg, theme.env_prod.fg);
    assert_eq!(dev.fg, theme.env_dev.fg);
    assert_ne!(prod.fg, dev.fg);
}

#[test]
fn command_line_switches_views_and_reports_unknown_commands() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char(':'));
    chars(&mut d.app, "alerts");
    key(&mut d.app, KeyCode::Enter);
    assert_eq!(d.app.ui.active(), fleetdeck::ui::keymap::ViewId::Alerts);
    d.app.run_command("frobnicate");
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("unknown command ':frobnicate'"), "{screen}");
    d.app.run_command("theme no-such-theme");
    assert!(
        d.app
            .ui
            .flash
            .as_ref()
            .is_some_and(|f| f.error && f.text.contains("no-such-theme"))
    );
    d.app.run_command("theme light");
    assert_eq!(d.app.theme.name, "light");
    d.app.run_command("q");
    assert!(d.app.quit);
}

#[test]
fn esc_goes_back_from_a_drill_down() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Enter);
    assert_eq!(d.app.ui.active(), fleetdeck::ui::keymap::ViewId::Cluster);
    key(&mut d.app, KeyCode::Esc);
    assert_eq!(d.app.ui.active(), fleetdeck::ui::keymap::ViewId::Fleet);
}

#[test]
fn ascii_mode_draws_only_ascii() {
    let mut d = demo_app(Mode::Operator);
    d.app.glyphs = fleetdeck::ui::Glyphs::ascii();
    for view in ['1', '2', '3', '4', '5'] {
        key(&mut d.app, KeyCode::Char(view));
        key(&mut d.app, KeyCode::Enter);
        let screen = draw(&d.app, 80, 24);
        let bad: Vec<char> = screen
            .chars()
            .filter(|c| ('\u{2500}'..='\u{259F}').contains(c))
            .collect();
        assert!(
            bad.is_empty(),
            "view {view} drew {bad:?} in ASCII mode:\n{screen}"
        );
    }
}

#[test]
fn a_source_silent_for_three_poll_intervals_is_shown_stale() {
    let mut d = demo_app(Mode::Operator);
    d.app.engine.set_clock(fleetdeck::clock::Clock::Frozen(
        common::t0() + chrono::TimeDelta::minutes(10),
    ));
    let screen = draw(&d.app, 100, 30);
    let header: String = screen.lines().take(2).collect();
    assert!(header.contains("DEMO stale 10m"), "{header}");
}

#[test]
fn a_breaker_trip_is_announced_and_the_header_says_halted() {
    let mut d = demo_app(Mode::Operator);
    let mut rollout = d.app.store().rollouts()[0].clone();
    let cluster = rollout.waves[2].cells[0].cluster.clone();
    rollout.waves[2].state = fleetdeck::model::WaveState::Halted {
        alarm: "eks-apiserver-5xx-high".into(),
        cluster: cluster.clone(),
        at: common::t0(),
    };
    d.app.apply(fleetdeck::model::SourceEvent::Rollout(rollout));
    let flash = d
        .app
        .ui
        .flash
        .as_ref()
        .expect("a breaker trip is announced");
    assert!(flash.error);
    assert!(
        flash.text.contains("HALTED") && flash.text.contains(&cluster.name),
        "{}",
        flash.text
    );
    let screen = draw(&d.app, 80, 24);
    let header = screen.lines().next().expect("header");
    assert!(
        header.contains("HALTED staging"),
        "visible at 80 columns: {header}"
    );

    // The resume dialog says what resuming really does.
    key(&mut d.app, KeyCode::Char('3'));
    key(&mut d.app, KeyCode::Char('r'));
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("waiting in staging will start"), "{screen}");
}

#[test]
fn cluster_command_takes_a_unique_part_of_a_name_and_suggests_otherwise() {
    let mut d = demo_app(Mode::Operator);
    d.app.run_command("cluster sbx-use1");
    assert_eq!(d.app.ui.active(), fleetdeck::ui::keymap::ViewId::Cluster);
    assert_eq!(
        d.app.ui.cluster.cluster.as_ref().map(|c| c.name.as_str()),
        Some("sbx-use1-data-01")
    );
    d.app.run_command("cluster prod-use1");
    let flash = d.app.ui.flash.as_ref().expect("suggestions");
    assert!(
        flash.text.contains("matches") && flash.text.contains("more"),
        "{}",
        flash.text
    );
    d.app.run_command("cluster nothing-like-it");
    assert!(
        d.app
            .ui
            .flash
            .as_ref()
            .is_some_and(|f| f.text.contains("no cluster named"))
    );
}

#[test]
fn sources_view_lists_each_source_with_its_counters() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('6'));
    let screen = draw(&d.app, 120, 30);
    assert!(screen.contains("sources (1)"), "{screen}");
    assert!(
        screen.contains("demo") && screen.contains("THROTTLES") && screen.contains("COST/h"),
        "{screen}"
    );
}

#[test]
fn an_action_the_api_server_refuses_is_shown_unavailable_with_its_reason() {
    let mut d = demo_app(Mode::Operator);
    d.app.apply(fleetdeck::model::SourceEvent::Permissions {
        source: "argocd:hub".into(),
        cluster: None,
        checks: vec![fleetdeck::model::PermissionCheck {
            action: "pause-wave".into(),
            checked: "patch applicationsets.argoproj.io in argocd".into(),
            namespace: Some("argocd".into()),
            allowed: false,
            reason: "RBAC: access denied".into(),
        }],
    });
    key(&mut d.app, KeyCode::Char('3'));
    key(&mut d.app, KeyCode::Char('p'));
    assert!(
        d.app.ui.dialog.is_none(),
        "no dialog for an action the server refuses"
    );
    let flash = d.app.ui.flash.as_ref().expect("the refusal is explained");
    assert!(
        flash.text.contains("unavailable") && flash.text.contains("RBAC: access denied"),
        "{}",
        flash.text
    );
}

#[test]
fn the_demo_shows_kubernetes_and_argo_cd_signals_in_the_cluster_view() {
    let mut d = demo_app(Mode::Operator);
    // The cluster with unschedulable pods also has pods crashing and scheduling warnings.
    let alert = d
        .app
        .store()
        .alerts_sorted()
        .into_iter()
        .find(|a| a.name == "eks-pending-pods-high" && a.is_firing())
        .expect("the demo starts with a pending-pods alarm")
        .clone();
    let cluster = alert.cluster.clone().expect("on a cluster");
    for event in d.fleet.focus(Some(cluster.clone()), common::t0()) {
        d.app.apply(event);
    }
    d.app.run_command(&format!("cluster {}", cluster.name));
    let screen = draw(&d.app, 160, 48);
    assert!(screen.contains("CrashLoopBackOff"), "{screen}");
    assert!(screen.contains("FailedScheduling"), "{screen}");
    assert!(screen.contains("argo cd: 2 applications"), "{screen}");
}

#[test]
fn a_failing_alarm_source_makes_health_and_alerts_unknown_not_healthy() {
    let mut d = demo_app(Mode::Operator);
    // A cluster with no critical alert: only the missing source can make it not healthy.
    let i = (0..d.app.store().clusters().len())
        .find(|&i| d.app.store().firing_counts(i) == [0, 0, 0])
        .expect("most demo clusters are quiet");
    let c = d.app.store().clusters()[i].id.clone();
    assert_eq!(
        d.app.store().health(i, common::t0()),
        fleetdeck::model::ClusterHealth::Healthy
    );
    let mut down =
        fleetdeck::model::SourceHealth::new(format!("cloudwatch:{}/{}", c.account, c.region), 60);
    down.last_error =
        Some("cloudwatch:DescribeAlarms: AccessDeniedException: not authorized".into());
    down.last_error_at = Some(common::t0());
    down.errors = 1;
    d.app.apply(fleetdeck::model::SourceEvent::Health(down));
    let i = d.app.store().cluster_index(&c).expect("present");
    if d.app.store().firing_counts(i)[0] == 0 {
        assert_eq!(
            d.app.store().health(i, common::t0()),
            fleetdeck::model::ClusterHealth::Unknown
        );
    }
    let screen = draw(&d.app, 160, 48);
    let header = screen.lines().next().expect("header");
    assert!(header.contains("UNKNOWN (1/1 sources down)"), "{header}");
    assert!(!header.contains("none firing"), "{header}");
}

#[test]
fn resume_is_refused_up_front_while_a_gate_alarm_fires() {
    let mut d = demo_app(Mode::Operator);
    let mut rollout = d.app.store().rollouts()[0].clone();
    let cluster = rollout.waves[2].cells[0].cluster.clone();
    rollout.waves[2].state = fleetdeck::model::WaveState::Halted {
        alarm: "eks-apiserver-5xx-high".into(),
        cluster: cluster.clone(),
        at: common::t0(),
    };
    rollout.gates[0].status = fleetdeck::model::GateStatus::Firing {
        cluster: cluster.clone(),
    };
    d.app.apply(fleetdeck::model::SourceEvent::Rollout(rollout));
    key(&mut d.app, KeyCode::Char('3'));
    key(&mut d.app, KeyCode::Char('r'));
    assert!(
        d.app.ui.dialog.is_none(),
        "no y/n for a resume that would be refused"
    );
    let flash = d.app.ui.flash.as_ref().expect("explained");
    assert!(
        flash.text.contains("resume blocked") && flash.text.contains(&cluster.name),
        "{}",
        flash.text
    );
}

/// A hub's RollingSync ApplicationSet over three demo clusters per step, with the
/// `fleetdeck.io/paused-steps` annotation another console wrote when alice paused prod.
fn hub_rollout(d: &mut common::DemoApp) {
    use fleetdeck::model::{AppStepStatus, ApplicationSet, ArgoApp, Environment, SyncStep};
    let t = common::t0();
    let envs = [
        (Environment::Dev, "dev"),
        (Environment::Staging, "staging"),
        (Environment::Prod, "prod"),
    ];
    let mut apps = Vec::new();
    let mut statuses = Vec::new();
    for (step, (env, label)) in envs.iter().enumerate() {
        let clusters: Vec<_> = d
            .app
            .store()
            .clusters()
            .iter()
            .filter(|c| c.environment == *env)
            .take(3)
            .map(|c| c.id.clone())
            .collect();
        for (i, id) in clusters.into_iter().enumerate() {
            let name = format!("ingress-{}", id.name);
            let (status, minutes, health) = match (step, i) {
                (0, _) => ("Healthy", 50, "Healthy"),
                (1, 0) => ("Healthy", 4, "Healthy"),
                (1, 1) => ("Progressing", 2, "Progressing"),
                _ => ("Waiting", 60, "Healthy"),
            };
            statuses.push(AppStepStatus {
                application: name.clone(),
                status: status.into(),
                step: Some((step + 1).to_string()),
                message: format!("Application resource became {status}"),
                last_transition_time: Some(t - chrono::TimeDelta::minutes(minutes)),
            });
            apps.push(ArgoApp {
                name,
                namespace: "argocd".into(),
                project: "platform".into(),
                cluster: Some(id.clone()),
                destination: format!("https://{}.eks.amazonaws.com", id.name),
                sync: if status == "Waiting" {
                    "OutOfSync"
                } else {
                    "Synced"
                }
                .into(),
                health: health.into(),
                operation_phase: Some("Succeeded".into()),
                message: None,
                labels: [("env".to_string(), label.to_string())].into(),
                app_set: Some("ingress-nginx".into()),
            });
        }
    }
    apps.push(ArgoApp {
        name: "ingress-lab-1".into(),
        namespace: "argocd".into(),
        project: "platform".into(),
        cluster: None,
        destination: "https://lab-1.example.com".into(),
        sync: "OutOfSync".into(),
        health: "Healthy".into(),
        operation_phase: None,
        message: None,
        labels: [("env".to_string(), "lab".to_string())].into(),
        app_set: Some("ingress-nginx".into()),
    });
    let step = |env: &str, max: Option<&str>| SyncStep {
        match_expressions: vec![("env".into(), "In".into(), vec![env.into()])],
        max_update: max.map(str::to_string),
    };
    let paused = r#"{"3":{"maxUpdate":"25%","holds":[{"kind":"operator","reason":"INC-4411: 5xx in us-east-1","by":"alice","at":"2026-11-21T02:01:00Z"}]}}"#;
    let set = ApplicationSet {
        name: "ingress-nginx".into(),
        namespace: "argocd".into(),
        resource_version: "48213".into(),
        strategy: Some("RollingSync".into()),
        steps: vec![
            step("dev", None),
            step("staging", Some("1")),
            step("prod", Some("0")),
        ],
        application_status: statuses,
        annotations: [
            ("fleetdeck.io/paused-steps".to_string(), paused.to_string()),
            (
                "fleetdeck.io/plan".to_string(),
                "soak: 15m\ngates: [eks-apiserver-5xx-*]\n".to_string(),
            ),
        ]
        .into(),
    };
    d.app.apply(fleetdeck::model::SourceEvent::ApplicationSets {
        source: "argocd:hub".into(),
        sets: vec![set],
    });
    d.app.apply(fleetdeck::model::SourceEvent::Applications {
        source: "argocd:hub".into(),
        apps,
    });
}

#[test]
fn an_argo_cd_progressive_sync_shows_its_steps_apps_and_who_paused_it() {
    let mut d = demo_app(Mode::Operator);
    hub_rollout(&mut d);
    let rollout = d
        .app
        .store()
        .rollouts()
        .iter()
        .find(|r| r.name == "ingress-nginx")
        .expect("built from the ApplicationSet");
    assert_eq!(rollout.waves.len(), 3);
    assert_eq!(rollout.waves[2].paused_by(), Some("alice"));
    key(&mut d.app, KeyCode::Char('3'));
    // From the demo's staging wave down to the hub's staging step, and open it.
    for _ in 0..4 {
        key(&mut d.app, KeyCode::Char('j'));
    }
    key(&mut d.app, KeyCode::Enter);
    let screen = draw(&d.app, 160, 48);
    for expected in [
        "ingress-nginx",
        "paused by alice",
        "INC-4411: 5xx in us-east-1",
        "1 application(s) match no step",
        "ingress-lab-1",
        "guard, next pass: held wave env In [prod]: until env In [staging] has soaked",
        "Synced/Progressing, sync Succeeded",
    ] {
        assert!(screen.contains(expected), "{expected:?} missing:\n{screen}");
    }
    insta::assert_snapshot!("argo_rollout_160x48", screen);
}

/// `enter` on an alert opens its runbook beside it: the steps with their parameters filled
/// in and their state, the alert's runbook link; `x` leads to the confirmation, which on a
/// production cluster asks for the cluster's name.
#[test]
fn alert_runbook_pane_and_step_confirmation() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('2'));
    key(&mut d.app, KeyCode::Char('/'));
    chars(&mut d.app, "deprecated");
    key(&mut d.app, KeyCode::Enter);
    key(&mut d.app, KeyCode::Enter);
    let screen = draw(&d.app, 160, 48);
    assert!(
        screen.contains("runbook: Upgrade insight ERROR - deprecated API still in use"),
        "{screen}"
    );
    assert!(
        screen.contains("1. [not run] pause-wave eks-1-31-upgrade/prod-2"),
        "{screen}"
    );
    assert!(
        screen.contains(
            "link: https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html"
        ),
        "{screen}"
    );
    // The link is written over its text as an OSC 8 hyperlink after the frame.
    let links = d.app.ui.terminal_links();
    assert_eq!(links.len(), 1);
    assert!(links[0].osc8().contains(
        "\x1b]8;;https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html\x1b\\"
    ));
    // y copies it over SSH (OSC 52), through the loop.
    key(&mut d.app, KeyCode::Char('y'));
    assert_eq!(
        d.app.ui.clipboard.as_deref(),
        Some("https://docs.aws.amazon.com/eks/latest/userguide/cluster-insights.html")
    );
    snapshot_all("alert_runbook_pane", &d.app);

    // The second step (a sync) after its preview came back: typed confirmation.
    key(&mut d.app, KeyCode::Char('j'));
    let pane = d.app.ui.alerts.pane.as_ref().expect("pane");
    let alert = d.app.store().alert(&pane.alert).expect("alert").clone();
    let rb = d.app.runbooks.matching(&alert)[0].clone();
    let action = fleetdeck::runbook::plan::plan(&rb, &rb.steps[1], &alert, d.app.store(), false)
        .expect("plans");
    let step = fleetdeck::ui::views::alert_runbook::StepRef {
        alert: alert.key.clone(),
        runbook: rb.id.clone(),
        line: rb.steps[1].line,
    };
    d.app.on_message(fleetdeck::app::AppMessage::StepPreview {
        step,
        action,
        result: Ok("demo: dry run accepted: would sync application prod-use1-payments-02-addons to its target revision".into()),
    });
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("type the cluster name"), "{screen}");
    snapshot_all("step_confirmation", &d.app);
    // Closing the pane goes back to the list.
    key(&mut d.app, KeyCode::Esc);
    key(&mut d.app, KeyCode::Esc);
    assert!(d.app.ui.alerts.pane.is_none());
}

/// A real fleet of 2,000 clusters in the middle of its first inventory: every name is
/// listed, 412 are described, one could not be, and a second region is still listing.
fn names_first_app() -> fleetdeck::app::App {
    use fleetdeck::model::{
        Alert, AlertKey, AlertSource, Cluster, ClusterId, ClusterStatus, Described, Severity,
        SourceEvent, SourceHealth,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut setup = fleetdeck::app::Setup::for_demo(dir.path(), Mode::Operator, Default::default())
        .expect("setup");
    setup.demo_mode = false;
    // Two regions' EKS sources started, as `Engine::start` would list them.
    let sources = ["eks:prod/us-east-1", "eks:prod/eu-west-1"]
        .map(|name| fleetdeck::sources::SourceHandle {
            name: name.into(),
            commands: tokio::sync::mpsc::channel(64).0,
        })
        .to_vec();
    let engine = fleetdeck::engine::Engine::new(
        &setup,
        fleetdeck::clock::Clock::Frozen(common::t0()),
        sources,
        tokio::sync::mpsc::channel(1).1,
    );
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let mut app = fleetdeck::app::App::new(setup, engine, tx);
    let mut listed = SourceHealth::new("eks:prod/us-east-1", 60);
    listed.last_ok = Some(common::t0());
    listed.calls = 420;
    app.apply(SourceEvent::Health(listed));
    app.apply(SourceEvent::Health(SourceHealth::new(
        "eks:prod/eu-west-1",
        60,
    )));
    let clusters = (0..2000)
        .map(|i| {
            let name = format!("svc-{i:04}");
            let described = match i {
                3 => Described::Failed,
                i if i % 4 == 0 && i < 1648 => Described::Yes,
                _ => Described::Pending,
            };
            let yes = described == Described::Yes;
            Cluster {
                id: ClusterId::new("prod", "us-east-1", &name),
                described,
                arn: if yes {
                    format!("arn:aws:eks:us-east-1:111111111111:cluster/{name}")
                } else {
                    String::new()
                },
                version: if yes { "1.31".into() } else { String::new() },
                platform_version: if yes { "eks.12".into() } else { String::new() },
                status: if yes {
                    ClusterStatus::Active
                } else {
                    ClusterStatus::Unknown
                },
                environment: if yes {
                    Environment::Prod
                } else {
                    Environment::Other(String::new())
                },
                team: None,
                health_issues: vec![],
                insights: vec![],
                updates: vec![],
                addons: vec![],
                support: None,
                endpoint: None,
                certificate_authority: None,
            }
        })
        .collect();
    app.apply(SourceEvent::ClusterInventory {
        source: "eks:prod/us-east-1".into(),
        clusters,
    });
    // An alarm already firing on a cluster not described yet: shown, and it leads.
    let id = ClusterId::new("prod", "us-east-1", "svc-1999");
    app.apply(SourceEvent::Alerts(vec![Alert {
        key: AlertKey::new(
            AlertSource::Cloudwatch,
            Some(&id),
            "eks-apiserver-5xx-high",
            "",
        ),
        source: AlertSource::Cloudwatch,
        cluster: Some(id.clone()),
        name: "eks-apiserver-5xx-high".into(),
        severity: Severity::Critical,
        state: AlertState::Firing,
        first_seen: common::t0(),
        last_change: common::t0(),
        summary: String::new(),
        labels: Default::default(),
        runbook_url: None,
        ack: None,
    }]));
    app
}

/// Names first: the rows are on screen before their descriptions, say `describing` (or
/// UNKNOWN for the one that failed) instead of a status, version and environment they
/// do not have yet, and the title counts the descriptions in.
#[test]
fn a_fleet_still_being_described_says_so_row_by_row_and_in_its_title() {
    use fleetdeck::model::{Described, SourceEvent};
    let mut app = names_first_app();
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("described 412 of 2,000, 1 failed"),
        "{screen}"
    );
    assert!(
        screen.contains("listing clusters from 1 of 2 source(s): eks:prod/eu-west-1"),
        "{screen}"
    );
    let row = |name: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("│{name} ")))
            .unwrap_or_default()
            .to_string()
    };
    assert!(row("svc-0001").contains("describing"), "{screen}");
    assert!(!row("svc-0001").contains("untagged"), "{screen}");
    assert!(row("svc-0003").contains("UNKNOWN"), "{screen}");
    assert!(row("svc-0004").contains("ACTIVE"), "{screen}");
    assert!(
        screen
            .lines()
            .nth(4)
            .unwrap_or_default()
            .contains("svc-1999"),
        "the firing cluster leads, described or not:\n{screen}"
    );
    let header = screen.lines().next().unwrap_or_default();
    assert!(!header.contains("2000 ok"), "{header}");
    insta::assert_snapshot!("fleet_describing_80x24", screen);

    // Described: the rows fill in and the count goes.
    let clusters: Vec<_> = app
        .store()
        .clusters()
        .iter()
        .map(|c| fleetdeck::model::Cluster {
            described: Described::Yes,
            version: "1.31".into(),
            status: fleetdeck::model::ClusterStatus::Active,
            environment: Environment::Prod,
            ..c.clone()
        })
        .collect();
    app.apply(SourceEvent::ClustersChanged {
        source: "eks:prod/us-east-1".into(),
        clusters,
    });
    let screen = draw(&app, 80, 24);
    assert!(!screen.contains("described "), "{screen}");
    assert!(!screen.contains("describing"), "{screen}");
}

/// The cluster view of a cluster not described yet says so, rather than an empty version
/// and status.
#[test]
fn the_cluster_view_of_a_cluster_not_described_yet_says_describing() {
    let mut app = names_first_app();
    app.run_command("cluster svc-0001");
    let screen = draw(&app, 80, 24);
    assert!(
        screen.contains("svc-0001 · prod / us-east-1 · describing"),
        "{screen}"
    );
    assert!(
        screen.contains("describing: version, status and tags follow"),
        "{screen}"
    );
    assert!(!screen.contains(" v "), "{screen}");
    insta::assert_snapshot!("cluster_describing_80x24", screen);
}

/// `policy:` finds the clusters failing a policy; the cluster view lists what fails,
/// from Security Hub and the cluster's PolicyReports, with the rule and the resources.
#[test]
fn a_cluster_failing_a_policy_found_by_the_filter() {
    let mut d = demo_app(Mode::Operator);
    key(&mut d.app, KeyCode::Char('/'));
    chars(&mut d.app, "policy:pdb");
    key(&mut d.app, KeyCode::Enter);
    let screen = draw(&d.app, 80, 24);
    assert!(screen.contains("fleet (1 of 48)"), "{screen}");
    assert!(screen.contains("stg-euw1-data-02"), "{screen}");
    snapshot_all("fleet_policy_filter", &d.app);

    let cluster = d
        .app
        .store()
        .clusters()
        .iter()
        .find(|c| c.id.name == "stg-euw1-data-02")
        .expect("the held staging cluster")
        .id
        .clone();
    for event in d.fleet.focus(Some(cluster), common::t0()) {
        d.app.apply(event);
    }
    key(&mut d.app, KeyCode::Enter);
    let screen = draw(&d.app, 160, 48);
    for text in [
        "policies: 1 failing on 1 resource",
        "pdb-maxunavailable 1 failing · policyreport, securityhub",
        "PolicyReports:",
        "pdb-maxunavailable/pdb-maxunavailable fail (high) ×1",
        "PodDisruptionBudget payments/api",
    ] {
        assert!(screen.contains(text), "{text}:\n{screen}");
    }
    snapshot_all("cluster_failing_a_policy", &d.app);
}
