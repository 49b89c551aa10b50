//! Themes: semantic colour slots, loaded from TOML.

use ratatui::style::{Color, Modifier, Style};

/// Resolved theme: one style per semantic slot. Views use slots, never raw colours.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    pub name: String,
    /// Ordinary text on the background.
    pub text: Style,
    /// Secondary text: labels, units, resolved alerts.
    pub muted: Style,
    /// View and panel titles.
    pub title: Style,
    pub border: Style,
    /// The selected row.
    pub selection: Style,
    /// Header and status bar background strip.
    pub bar: Style,
    pub critical: Style,
    pub warning: Style,
    pub info: Style,
    pub ok: Style,
    pub unknown: Style,
    /// Keys in hints, links, the filter prompt.
    pub accent: Style,
    pub env_sandbox: Style,
    pub env_dev: Style,
    pub env_staging: Style,
    pub env_prod: Style,
    pub badge_operator: Style,
    pub badge_viewer: Style,
    /// Series colours for charts, in order.
    pub chart: [Style; 6],
}

impl Theme {
    /// The built-in dark theme, usable before any file is read.
    pub fn fallback() -> Self {
        let fg = |c| Style::new().fg(c);
        Self {
            name: "default".into(),
            text: Style::new(),
            muted: fg(Color::DarkGray),
            title: fg(Color::Cyan).add_modifier(Modifier::BOLD),
            border: fg(Color::DarkGray),
            selection: Style::new().add_modifier(Modifier::REVERSED),
            bar: Style::new(),
            critical: fg(Color::Red).add_modifier(Modifier::BOLD),
            warning: fg(Color::Yellow),
            info: fg(Color::Blue),
            ok: fg(Color::Green),
            unknown: fg(Color::Magenta),
            accent: fg(Color::Cyan),
            env_sandbox: fg(Color::Gray),
            env_dev: fg(Color::Blue),
            env_staging: fg(Color::Yellow),
            env_prod: fg(Color::Red),
            badge_operator: Style::new().fg(Color::Black).bg(Color::Yellow),
            badge_viewer: Style::new().fg(Color::Black).bg(Color::Cyan),
            chart: [
                fg(Color::Cyan),
                fg(Color::Yellow),
                fg(Color::Magenta),
                fg(Color::Green),
                fg(Color::Red),
                fg(Color::Blue),
            ],
        }
    }
}

// TEMPORARY STUB API (replaced at merge).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ThemeError(pub String);
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorDepth {
    TrueColor,
    Ansi256,
    Ansi16,
}
impl ColorDepth {
    pub fn detect(_get_env: impl Fn(&str) -> Option<String>) -> ColorDepth {
        ColorDepth::TrueColor
    }
}
pub fn no_color(get_env: impl Fn(&str) -> Option<String>) -> bool {
    get_env("NO_COLOR").is_some_and(|v| !v.is_empty())
}
impl Theme {
    pub fn builtin_names() -> &'static [&'static str] {
        &["default", "light", "high-contrast", "mono"]
    }
    pub fn load(name: &str, _user_dir: Option<&std::path::Path>) -> Result<Theme, ThemeError> {
        if Self::builtin_names().contains(&name) {
            let mut t = Self::fallback();
            t.name = name.into();
            Ok(t)
        } else {
            Err(ThemeError(format!("unknown theme '{name}'")))
        }
    }
    pub fn for_depth(&self, _depth: ColorDepth) -> Theme {
        self.clone()
    }
}
