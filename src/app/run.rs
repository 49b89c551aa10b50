//! The event loop: one `select!` over keys, source events, action outcomes, signals and
//! timers. It drains everything pending, then draws once if anything changed, at most
//! about 30 times a second.

use std::time::Duration;

use color_eyre::eyre::{Result, WrapErr};
use crossterm::event::{Event, EventStream};
use futures::StreamExt;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, interval, sleep_until};

use super::terminal::TerminalGuard;
use super::{App, AppMessage, Setup};
use crate::engine::Engine;

/// Minimum time between two frames that only show what sources sent (or the clock):
/// the picture moves once a second at most, so an idle console costs almost nothing and
/// a stream of events never delays the answer to a key.
const BACKGROUND_FRAME: Duration = Duration::from_secs(1);
/// At most this many source events are folded in before the loop looks at keys again.
const DRAIN_BATCH: usize = 4096;

/// Starts the sources and runs the console until the user quits or the terminal goes away.
pub async fn run(setup: Setup) -> Result<()> {
    let clock = setup.clock();
    let mut engine = Engine::start_warm(&setup, clock).await;
    engine.open_actions(&setup)?;
    let (messages_tx, mut messages) = mpsc::channel::<AppMessage>(64);
    let mut app = App::new(setup, engine, messages_tx);

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    // In raw mode ctrl-c arrives as a key; a SIGINT sent by `kill` must restore too.
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut terminal = TerminalGuard::enter().wrap_err("cannot set up the terminal")?;
    // The first frame before any source event is folded in: the warm start's picture
    // (or what is loading) is on screen at once, whatever the sources send meanwhile.
    draw(&mut terminal, &mut app)?;
    let mut keys = EventStream::new();
    let mut tick = interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut last_draw = Instant::now();
    // What the operator did (a key, a resize, an action's result) is drawn at once.
    let mut urgent = false;
    let mut stats = Stats::new();

    loop {
        tokio::select! {
            key = keys.next() => match key {
                Some(Ok(Event::Key(k))) => {
                    app.on_key(k);
                    urgent = true;
                }
                Some(Ok(Event::Resize(..))) => {
                    terminal.clear()?;
                    app.dirty = true;
                    urgent = true;
                }
                Some(Ok(_)) => {}
                // The terminal is gone (SSH dropped, pty closed): leave at once.
                Some(Err(e)) => {
                    tracing::info!("terminal input failed, exiting: {e}");
                    break;
                }
                None => break,
            },
            Some(n) = app.engine.recv(DRAIN_BATCH) => {
                app.after_events();
                stats.events += n as u64;
            }
            Some(message) = messages.recv() => {
                app.on_message(message);
                urgent = true;
            }
            _ = tick.tick() => app.on_tick(),
            _ = sigterm.recv() => {
                tracing::info!("SIGTERM: exiting");
                break;
            }
            _ = sighup.recv() => {
                tracing::info!("SIGHUP (terminal hung up): exiting");
                break;
            }
            _ = sigint.recv() => {
                tracing::info!("SIGINT: exiting");
                break;
            }
            _ = sleep_until(if urgent { Instant::now() } else { last_draw + BACKGROUND_FRAME }),
                if app.dirty => {
                if let Err(e) = draw(&mut terminal, &mut app) {
                    tracing::info!("cannot draw, the terminal is gone: {e}");
                    break;
                }
                urgent = false;
                last_draw = Instant::now();
                stats.frames += 1;
            }
        }
        if let Some(text) = app.ui.clipboard.take() {
            terminal.write_raw(&crate::ui::widgets::terminal_link::osc52(&text))?;
        }
        if app.quit {
            break;
        }
    }
    drop(terminal);
    // The picture for the next start, after the terminal is given back.
    app.engine.write_cache(true);
    stats.write();
    Ok(())
}

/// One frame, then the hyperlinks it shows (written beside it, as escape sequences).
fn draw(terminal: &mut TerminalGuard, app: &mut App) -> std::io::Result<()> {
    terminal.draw(|f| app.render(f))?;
    for link in app.ui.terminal_links() {
        terminal.write_raw(&link.osc8())?;
    }
    app.dirty = false;
    Ok(())
}

/// Counters for `scripts/measure`: written as JSON to `$FLEETDECK_STATS` at exit, if set.
struct Stats {
    started: Instant,
    events: u64,
    frames: u64,
}

impl Stats {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            events: 0,
            frames: 0,
        }
    }

    fn write(&self) {
        let Some(path) = std::env::var_os("FLEETDECK_STATS") else {
            return;
        };
        let json = serde_json::json!({
            "seconds": self.started.elapsed().as_secs_f64(),
            "events": self.events,
            "frames": self.frames,
        });
        if let Err(e) = std::fs::write(&path, json.to_string()) {
            tracing::warn!("cannot write stats to {}: {e}", path.to_string_lossy());
        }
    }
}
