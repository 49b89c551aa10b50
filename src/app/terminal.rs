//! The one terminal guard: raw mode and the alternate screen on, and off again on drop,
//! on panic (ratatui's hook) and on every exit path of the loop.

use std::io::{self, Write};

use crossterm::QueueableCommand;
use crossterm::terminal::{BeginSynchronizedUpdate, EndSynchronizedUpdate};
use ratatui::{DefaultTerminal, Frame};

pub struct TerminalGuard {
    terminal: DefaultTerminal,
}

impl TerminalGuard {
    /// Enters raw mode and the alternate screen, and installs the panic hook that restores
    /// the terminal before the panic message is printed.
    pub fn enter() -> io::Result<Self> {
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
