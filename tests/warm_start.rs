//! The warm start: the last picture is shown at once, marked by its age, dimmed and never
//! counted as fresh, until the sources say it again; `--no-cache` and `snapshot` never
//! show it.

#![allow(clippy::unwrap_used)]

mod common;
mod pty;

use std::time::Duration;

use fleetdeck::actions::Mode;
use fleetdeck::app::{App, Setup};
use fleetdeck::clock::Clock;
use fleetdeck::engine::{Engine, cache};
use fleetdeck::model::{
    Cluster, ClusterId, ClusterStatus, Described, Environment, SourceEvent, Store, Timestamp,
};
use fleetdeck::sources::demo::{DemoFleet, DemoOptions};

/// A console whose engine started from the demo fleet's picture written 14 minutes ago.
fn warm_app(dir: &std::path::Path) -> App {
    let written = common::t0() - chrono::TimeDelta::minutes(14);
    let mut fleet = DemoFleet::new(&DemoOptions::default(), written);
    let mut store = Store::new();
    for event in fleet.initial_events() {
        store.apply(event, written);
    }
    let path = dir.join("picture.json.gz");
    cache::write(&path, &cache::Picture::of(&store, &[], written)).unwrap();

    let setup = Setup::for_demo(dir, Mode::Operator, DemoOptions::default()).unwrap();
    let mut engine = Engine::without_sources(&setup, Clock::Frozen(common::t0()));
    engine.use_cache(path, true);
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    App::new(setup, engine, tx)
}

#[test]
fn the_remembered_fleet_is_shown_at_once_with_its_age_dimmed_and_nothing_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let app = warm_app(dir.path());
    let screen = common::draw(&app, 160, 48);
    assert!(screen.contains("as of 14m ago"), "{screen}");
    assert!(screen.contains("fleet (48 of 48)"), "{screen}");
    // Nothing remembered is healthy or firing now: every cluster's health is unknown.
    assert!(screen.contains("48 clusters 0 ok"), "{screen}");
    assert!(screen.contains("48 unknown"), "{screen}");
    assert!(
        screen.contains("alerts unknown (cached, not yet read again)"),
        "{screen}"
    );

    // Cluster rows are dimmed (the first is selected, so look at the second).
    let buffer = common::buffer(&app, 160, 48);
    let muted = app.theme.muted.fg.unwrap();
    let y = 5;
    let row: String = (0..160)
        .map(|x| buffer[(x, y)].symbol().to_string())
        .collect();
    assert!(
        app.store()
            .clusters()
            .iter()
            .any(|c| row.contains(&format!("│{} ", c.id.name))),
        "{row}"
    );
    for x in 1..20 {
        assert_eq!(buffer[(x, y)].fg, muted, "column {x} of {row}");
    }
}

#[test]
fn remembered_alerts_say_so_and_are_not_counted_as_firing() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = warm_app(dir.path());
    common::key(&mut app, crossterm::event::KeyCode::Char('2'));
    let screen = common::draw(&app, 160, 48);
    assert!(screen.contains("(cached: not yet read again)"), "{screen}");
    assert!(screen.contains("alerts (0 firing"), "{screen}");
}

#[test]
fn once_the_source_lists_the_fleet_again_the_age_goes_and_rows_are_fresh() {
    let dir = tempfile::tempdir().unwrap();
    let mut app = warm_app(dir.path());
    let mut fleet = DemoFleet::new(&DemoOptions::default(), common::t0());
    for event in fleet.initial_events() {
        app.apply(event);
    }
    let screen = common::draw(&app, 160, 48);
    assert!(!screen.contains("as of"), "{screen}");
    assert!(!screen.contains("48 unknown"), "{screen}");
    assert!(!screen.contains("cached"), "{screen}");
}

// ---- the binary ----

/// A cluster only a picture remembers: its account's endpoint answers nothing.
fn ghost() -> Cluster {
    Cluster {
        id: ClusterId::new("prod", "us-east-1", "ghost-use1-01"),
        described: Described::Yes,
        arn: "arn:aws:eks:us-east-1:111122223333:cluster/ghost-use1-01".into(),
        version: "1.31".into(),
        platform_version: "eks.9".into(),
        status: ClusterStatus::Active,
        environment: Environment::from_tag("prod"),
        team: None,
        health_issues: vec![],
        insights: vec![],
        updates: vec![],
        addons: vec![],
        support: None,
        endpoint: None,
        certificate_authority: None,
    }
}

/// A home with a config whose one account answers nothing (a closed loopback port), and
/// a picture of it written `minutes` ago in the state directory.
fn home_with_picture(minutes: i64) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config/fleetdeck/config.toml");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(
        &config,
        r#"[[accounts]]
name = "prod"
regions = ["us-east-1"]
endpoint_url = "http://127.0.0.1:9"
"#,
    )
    .unwrap();
    let written: Timestamp = chrono::Utc::now() - chrono::TimeDelta::minutes(minutes);
    let mut store = Store::new();
    store.apply(
        SourceEvent::ClusterInventory {
            source: "eks:prod/us-east-1".into(),
            clusters: vec![ghost()],
        },
        written,
    );
    let sources = [
        "eks:prod/us-east-1".to_string(),
        "cloudwatch:prod/us-east-1".to_string(),
        "kubernetes".to_string(),
    ];
    let picture = cache::Picture::of(&store, &sources, written);
    cache::write(
        &home.path().join("state/fleetdeck/picture.json.gz"),
        &picture,
    )
    .unwrap();
    home
}

fn console(home: &std::path::Path, args: &[&str]) -> pty::Console {
    let mut cmd = common::pty_command(home);
    cmd.env("AWS_ACCESS_KEY_ID", "testing");
    cmd.env("AWS_SECRET_ACCESS_KEY", "testing");
    cmd.env("AWS_EC2_METADATA_DISABLED", "true");
    for a in args {
        cmd.arg(a);
    }
    pty::Console::start(cmd, 160, 40)
}

#[test]
fn the_console_starts_with_the_remembered_fleet_while_its_source_fails() {
    let home = home_with_picture(14);
    let c = console(home.path(), &[]);
    let screen = c.wait_for(
        &["ghost-use1-01", "as of 14m ago", "eks:prod/us-east-1 error"],
        Duration::from_secs(30),
    );
    // Its health is unknown, not healthy: the header counts it so.
    assert!(screen.contains("1 clusters 0 ok 1 unknown"), "{screen}");
    c.quit();
}

#[test]
fn no_cache_and_snapshot_show_only_what_the_sources_said() {
    let home = home_with_picture(3);
    let c = console(home.path(), &["--no-cache"]);
    let screen = c.wait_for(&["eks:prod/us-east-1 error"], Duration::from_secs(30));
    assert!(!screen.contains("ghost-use1-01"), "{screen}");
    assert!(!screen.contains("as of"), "{screen}");
    c.quit();

    let out = common::binary(home.path())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["snapshot", "--format", "json"])
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["clusters"], serde_json::json!([]), "{doc:#}");
}
