//! The one terminal guard: raw mode and the alternate screen on, and off again on drop,
//! on panic (ratatui's hook) and on every exit path of the loop; and the exit deadline
//! that ends the process if the loop cannot get there after a signal.

use std::io::{self, Write};
use std::time::Duration;

use crossterm::QueueableCommand;
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use ratatui::{DefaultTerminal, Frame};
use tokio::signal::unix::{SignalKind, signal};

/// How long the loop gets to restore the terminal and return after SIGTERM, SIGHUP or
/// SIGINT before the process exits regardless.
pub const EXIT_GRACE: Duration = Duration::from_millis(500);

pub struct TerminalGuard {
    terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, and installs the panic hook that restores
    /// the terminal before the panic message is printed. Starts the exit deadline, so it
    /// must be called inside the tokio runtime.
    pub fn enter() -> io::Result<Self> {
        spawn_exit_deadline()?;
        Ok(Self {
            terminal: ratatui::try_init()?,
        })
    }

    /// Draws one frame inside a synchronized update, so terminals (and SSH) show it whole.
    pub fn draw(&mut self, render: impl FnOnce(&mut Frame)) -> io::Result<()> {
        let mut out = io::stdout();
        out.queue(BeginSynchronizedUpdate)?;
        self.terminal.draw(render)?;
        out.queue(EndSynchronizedUpdate)?;
        out.flush()
    }

    /// Writes an escape sequence the screen does not show (OSC 52 clipboard).
    pub fn write_raw(&mut self, escape: &str) -> io::Result<()> {
        let mut out = io::stdout();
        out.write_all(escape.as_bytes())?;
        out.flush()
    }

    /// Forgets what is on screen so the next draw repaints everything (after a resize).
    pub fn clear(&mut self) -> io::Result<()> {
        self.terminal.clear()
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        // Errors are ignored: after a hang-up there is no terminal left to restore.
        let _ = ratatui::try_restore();
    }
}

/// Exits the process [`EXIT_GRACE`] after SIGTERM, SIGHUP or SIGINT if the loop has not
/// returned by then. A write to a terminal nobody reads (an SSH session frozen with sshd
/// still holding it) blocks the loop's thread once the terminal's buffer is full, so the
/// loop never sees the signal; a console must not outlive its session. Runs on a runtime
/// worker, not on the loop's thread.
fn spawn_exit_deadline() -> io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = hup.recv() => "SIGHUP",
            _ = int.recv() => "SIGINT",
        };
        tokio::time::sleep(EXIT_GRACE).await;
        tracing::warn!("{name}: still running {EXIT_GRACE:?} later (terminal not read?), exiting");
        // No writes: they are what blocks. Leaving raw mode is a termios call, not a write.
        let _ = crossterm::terminal::disable_raw_mode();
        std::process::exit(1);
    });
    Ok(())
}
