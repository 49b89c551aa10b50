//! Shared set-up for integration tests: a demo app on a frozen clock.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use fleetdeck::actions::{AuditLog, ExecContext, Mode};
use fleetdeck::app::{App, AppMessage, Setup};
use fleetdeck::clock::Clock;
use fleetdeck::engine::Engine;
use fleetdeck::model::{SourceEvent, Timestamp};
use fleetdeck::sources::demo::{self, DemoFleet, DemoOptions};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tokio::sync::mpsc;

/// 02:10 UTC: the demo's frozen "now" in every screen test.
pub fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T02:10:00Z")
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

pub struct DemoApp {
    pub app: App,
    pub fleet: DemoFleet,
    pub dir: tempfile::TempDir,
    pub messages: mpsc::Receiver<AppMessage>,
}

/// An app fed with the demo fleet's first complete picture, no sources running.
pub fn demo_app(mode: Mode) -> DemoApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DemoOptions::default();
    let setup = Setup::for_demo(dir.path(), mode, options.clone()).expect("setup");
    let (tx, messages) = mpsc::channel(8);
    let engine = Engine::without_sources(&setup, Clock::Frozen(t0()));
    let mut app = App::new(setup, engine, tx);
    let mut fleet = DemoFleet::new(&options, t0());
    for event in fleet.initial_events() {
        app.apply(event);
    }
    DemoApp {
        app,
        fleet,
        dir,
        messages,
    }
}

pub fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

pub fn chars(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

/// Draws the app at `width` x `height` and returns the screen as text.
pub fn draw(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| app.render(f)).expect("draw");
    terminal.backend().to_string()
}

/// Draws and returns the buffer, for style assertions.
pub fn buffer(app: &App, width: u16, height: u16) -> ratatui::buffer::Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
    terminal.draw(|f| app.render(f)).expect("draw");
    terminal.backend().buffer().clone()
}

/// The fleetdeck binary with everything it reads or writes inside `home` and nothing
/// leaking in from the machine running the tests (config, colour, credentials).
pub fn binary(home: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("fleetdeck").expect("binary built");
    cmd.env_clear()
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_STATE_HOME", home.join("state"))
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("LANG", "C.UTF-8")
        .timeout(std::time::Duration::from_secs(60));
    cmd
}

/// An app on the running demo source, with the executor an operator gets.
pub struct Live {
    pub app: App,
    pub events: mpsc::Receiver<SourceEvent>,
    pub messages: mpsc::Receiver<AppMessage>,
    pub audit_path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

/// Starts the demo source and feeds the app until its first complete picture. As in the
/// real loop, viewers get no executor and never open the audit log.
pub async fn live(mode: Mode) -> Live {
    let dir = tempfile::tempdir().expect("tempdir");
    let options = DemoOptions::default();
    let setup = Setup::for_demo(dir.path(), mode, options.clone()).expect("setup");
    let audit_path = setup.audit_path.clone();
    let clock = Clock::Frozen(t0());
    let (events_tx, mut events) = mpsc::channel(1024);
    let handle = demo::spawn(options, clock.clone(), events_tx);
    let exec = (mode == Mode::Operator).then(|| ExecContext {
        audit: Some(Arc::new(AuditLog::open(&audit_path).expect("audit log"))),
        sources: vec![handle.clone()],
        mode,
        os_user: "alice".into(),
        identity: "demo (simulated)".into(),
        clock: clock.clone(),
        relay: false,
        remote: None,
    });
    let (tx, messages) = mpsc::channel(64);
    let mut engine = Engine::new(&setup, clock, vec![handle], mpsc::channel(1).1);
    engine.set_executor(exec);
    let mut app = App::new(setup, engine, tx);
    let ready = vec![demo::SOURCE_NAME.to_string()];
    while !app.store().is_ready(&ready) {
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .expect("demo answers")
            .expect("demo runs");
        app.apply(event);
    }
    Live {
        app,
        events,
        messages,
        audit_path,
        _dir: dir,
    }
}

/// The fleetdeck binary for a pseudo-terminal, isolated in `home` like [`binary`], with a
/// 256-colour terminal type.
pub fn pty_command(home: &std::path::Path) -> portable_pty::CommandBuilder {
    let mut cmd = portable_pty::CommandBuilder::new(env!("CARGO_BIN_EXE_fleetdeck"));
    cmd.env_clear();
    cmd.env("HOME", home);
    cmd.env("XDG_CONFIG_HOME", home.join("config"));
    cmd.env("XDG_DATA_HOME", home.join("data"));
    cmd.env("XDG_STATE_HOME", home.join("state"));
    cmd.env("TERM", "xterm-256color");
    cmd.env("LANG", "C.UTF-8");
    cmd
}
