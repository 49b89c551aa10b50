//! Themes: semantic colour slots, loaded from TOML.
//!
//! Views style everything through the slots of [`Theme`] and never name raw colours, so
//! a theme file is all it takes to restyle the console.
//!
//! # Theme files
//!
//! Built-in themes (`default`, `light`, `high-contrast`, `mono`) are embedded in the
//! binary. A user theme lives in `<config dir>/themes/<name>.toml` and wins over a
//! built-in of the same name.
//!
//! ```toml
//! inherits = "default"          # optional; unset slots come from this parent
//! [slots]
//! text = "#c0caf5"
//! critical = "#f7768e bold"
//! selection = "fg=#1a1b26 bg=#7aa2f7 bold"
//! muted = "dim"
//! ```
//!
//! * Without `inherits`, unset slots come from the built-in `default` theme. A user file
//!   that inherits its own name (`default.toml` with `inherits = "default"`) extends the
//!   built-in of that name. Inheritance cycles are an error.
//! * Slot names are the field names of [`Theme`]; the chart series are `chart_1` to
//!   `chart_6`. See [`SLOT_NAMES`].
//! * A slot value is a whitespace-separated list of tokens, each one of:
//!   - `fg=COLOUR` or a bare `COLOUR`: the foreground colour;
//!   - `bg=COLOUR`: the background colour;
//!   - a modifier: `bold`, `dim`, `italic`, `underlined`, `reversed`, `crossed-out`,
//!     `slow-blink`.
//!
//!   An empty string means the terminal's default style.
//! * `COLOUR` is `#rrggbb`, a 0-255 palette index, `reset`, or one of the 16 ANSI names:
//!   `black red green yellow blue magenta cyan gray` and their bright forms
//!   `dark-gray` (alias `bright-black`), `bright-red` (alias `light-red`), ...,
//!   `white` (alias `bright-white`). `grey` spellings and `_` for `-` are accepted.
//!
//! A slot overrides the parent's whole style for that slot; styles are not merged.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};

/// Resolved theme: one style per semantic slot. Views use slots, never raw colours.
#[derive(Clone, Debug, PartialEq)]
pub struct Theme {
    /// The theme's name, as passed to [`Theme::load`].
    pub name: String,
    /// Ordinary text on the background.
    pub text: Style,
    /// Secondary text: labels, units, resolved alerts.
    pub muted: Style,
    /// View and panel titles.
    pub title: Style,
    /// Panel and frame borders.
    pub border: Style,
    /// The selected row.
    pub selection: Style,
    /// Header and status bar background strip.
    pub bar: Style,
    /// Critical alerts, failed cells, halted waves.
    pub critical: Style,
    /// Warnings and degraded health.
    pub warning: Style,
    /// Informational alerts.
    pub info: Style,
    /// Healthy, passing, done.
    pub ok: Style,
    /// Unknown or insufficient data.
    pub unknown: Style,
    /// Keys in hints, links, the filter prompt.
    pub accent: Style,
    /// Frame of a sandbox cluster.
    pub env_sandbox: Style,
    /// Frame of a dev cluster.
    pub env_dev: Style,
    /// Frame of a staging cluster.
    pub env_staging: Style,
    /// Frame of a production cluster: must stand out from every other.
    pub env_prod: Style,
    /// The OPERATOR mode badge.
    pub badge_operator: Style,
    /// The VIEWER mode badge.
    pub badge_viewer: Style,
    /// Series colours for charts, in order.
    pub chart: [Style; 6],
}

/// Every slot name a theme file may set, in the order they are documented.
pub const SLOT_NAMES: &[&str] = &[
    "text",
    "muted",
    "title",
    "border",
    "selection",
    "bar",
    "critical",
    "warning",
    "info",
    "ok",
    "unknown",
    "accent",
    "env_sandbox",
    "env_dev",
    "env_staging",
    "env_prod",
    "badge_operator",
    "badge_viewer",
    "chart_1",
    "chart_2",
    "chart_3",
    "chart_4",
    "chart_5",
    "chart_6",
];

/// Built-in themes: name and embedded file text.
const BUILTINS: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

const BUILTIN_NAMES: &[&str] = &["default", "light", "high-contrast", "mono"];

/// Why a theme could not be loaded. Display reads `file:line: what is wrong`.
#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    /// No user file and no built-in with that name.
    #[error("unknown theme '{name}' (available: {})", available.join(", "))]
    UnknownTheme {
        name: String,
        available: Vec<String>,
    },
    /// The user's theme file exists but could not be read.
    #[error("{}: cannot read theme: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}:{line}: invalid TOML: {message}")]
    Syntax {
        file: String,
        line: usize,
        message: String,
    },
    /// A key under `[slots]` that is not a slot.
    #[error("{file}:{line}: unknown slot '{slot}' (expected one of: {})", SLOT_NAMES.join(", "))]
    UnknownSlot {
        file: String,
        line: usize,
        slot: String,
    },
    /// A slot whose value does not parse as a style.
    #[error("{file}:{line}: slot '{slot}': {reason}")]
    InvalidStyle {
        file: String,
        line: usize,
        slot: String,
        reason: String,
    },
    /// Anything else wrong with the file's shape (unknown top-level key, wrong type).
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    /// `inherits` names a theme that does not exist.
    #[error("{file}:{line}: inherits unknown theme '{parent}' (available: {})", available.join(", "))]
    UnknownParent {
        file: String,
        line: usize,
        parent: String,
        available: Vec<String>,
    },
    /// Following `inherits` came back to a theme already on the chain.
    #[error("theme inheritance cycle: {}", chain.join(" -> "))]
    Cycle { chain: Vec<String> },
}

/// How many colours the terminal can show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorDepth {
    /// 24-bit colour: `#rrggbb` is drawn as written.
    TrueColor,
    /// The xterm 256-colour palette.
    Ansi256,
    /// The 16 ANSI colours, which the terminal's own palette decides.
    Ansi16,
}

impl ColorDepth {
    /// Reads `COLORTERM` and `TERM` through `get_env` (injected so tests need no real
    /// environment).
    pub fn detect(get_env: impl Fn(&str) -> Option<String>) -> ColorDepth {
        let colorterm = get_env("COLORTERM")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if colorterm == "truecolor" || colorterm == "24bit" {
            return ColorDepth::TrueColor;
        }
        let term = get_env("TERM").unwrap_or_default().to_ascii_lowercase();
        if term.contains("256color") {
            ColorDepth::Ansi256
        } else {
            ColorDepth::Ansi16
        }
    }
}

/// True when the user asked for no colour (`NO_COLOR` set and non-empty, per
/// no-color.org). The caller should then load the `mono` theme unless a theme was chosen
/// explicitly.
pub fn no_color(get_env: impl Fn(&str) -> Option<String>) -> bool {
    get_env("NO_COLOR").is_some_and(|v| !v.is_empty())
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

    /// Names of the themes embedded in the binary.
    pub fn builtin_names() -> &'static [&'static str] {
        BUILTIN_NAMES
    }

    /// Loads theme `name`: `<user_dir>/<name>.toml` if it exists, else the built-in.
    pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Theme, ThemeError> {
        let mut chain = Vec::new();
        resolve(name, user_dir, true, &mut chain).map_err(|e| match e {
            Lookup::Missing => ThemeError::UnknownTheme {
                name: name.to_string(),
                available: available_themes(user_dir),
            },
            Lookup::Error(e) => e,
        })
    }

    /// The style of `slot` (a name from [`SLOT_NAMES`]).
    pub fn slot(&self, slot: &str) -> Option<Style> {
        self.slot_ref(slot).copied()
    }

    /// The style for the frame of a cluster in `env`; unknown environments use `border`.
    pub fn environment(&self, env: &crate::model::Environment) -> Style {
        use crate::model::Environment;
        match env {
            Environment::Sandbox => self.env_sandbox,
            Environment::Dev => self.env_dev,
            Environment::Staging => self.env_staging,
            Environment::Prod => self.env_prod,
            Environment::Other(_) => self.border,
        }
    }

    /// A copy whose colours fit `depth`: RGB becomes the nearest xterm-256 index or the
    /// nearest of the 16 ANSI colours. Modifiers are kept.
    pub fn for_depth(&self, depth: ColorDepth) -> Theme {
        let mut out = self.clone();
        if depth == ColorDepth::TrueColor {
            return out;
        }
        for slot in SLOT_NAMES {
            if let Some(style) = out.slot_mut(slot) {
                style.fg = style.fg.map(|c| downgrade(c, depth));
                style.bg = style.bg.map(|c| downgrade(c, depth));
            }
        }
        out
    }

    fn slot_ref(&self, slot: &str) -> Option<&Style> {
        Some(match slot {
            "text" => &self.text,
            "muted" => &self.muted,
            "title" => &self.title,
            "border" => &self.border,
            "selection" => &self.selection,
            "bar" => &self.bar,
            "critical" => &self.critical,
            "warning" => &self.warning,
            "info" => &self.info,
            "ok" => &self.ok,
            "unknown" => &self.unknown,
            "accent" => &self.accent,
            "env_sandbox" => &self.env_sandbox,
            "env_dev" => &self.env_dev,
            "env_staging" => &self.env_staging,
            "env_prod" => &self.env_prod,
            "badge_operator" => &self.badge_operator,
            "badge_viewer" => &self.badge_viewer,
            "chart_1" => &self.chart[0],
            "chart_2" => &self.chart[1],
            "chart_3" => &self.chart[2],
            "chart_4" => &self.chart[3],
            "chart_5" => &self.chart[4],
            "chart_6" => &self.chart[5],
            _ => return None,
        })
    }

    fn slot_mut(&mut self, slot: &str) -> Option<&mut Style> {
        Some(match slot {
            "text" => &mut self.text,
            "muted" => &mut self.muted,
            "title" => &mut self.title,
            "border" => &mut self.border,
            "selection" => &mut self.selection,
            "bar" => &mut self.bar,
            "critical" => &mut self.critical,
            "warning" => &mut self.warning,
            "info" => &mut self.info,
            "ok" => &mut self.ok,
            "unknown" => &mut self.unknown,
            "accent" => &mut self.accent,
            "env_sandbox" => &mut self.env_sandbox,
            "env_dev" => &mut self.env_dev,
            "env_staging" => &mut self.env_staging,
            "env_prod" => &mut self.env_prod,
            "badge_operator" => &mut self.badge_operator,
            "badge_viewer" => &mut self.badge_viewer,
            "chart_1" => &mut self.chart[0],
            "chart_2" => &mut self.chart[1],
            "chart_3" => &mut self.chart[2],
            "chart_4" => &mut self.chart[3],
            "chart_5" => &mut self.chart[4],
            "chart_6" => &mut self.chart[5],
            _ => return None,
        })
    }

    /// Every slot at the terminal default; the root the built-in `default` is laid on.
    fn blank(name: &str) -> Theme {
        let s = Style::new();
        Theme {
            name: name.to_string(),
            text: s,
            muted: s,
            title: s,
            border: s,
            selection: s,
            bar: s,
            critical: s,
            warning: s,
            info: s,
            ok: s,
            unknown: s,
            accent: s,
            env_sandbox: s,
            env_dev: s,
            env_staging: s,
            env_prod: s,
            badge_operator: s,
            badge_viewer: s,
            chart: [s; 6],
        }
    }
}

/// Resolution failure: `Missing` becomes an unknown-theme or unknown-parent error
/// depending on who asked.
enum Lookup {
    Missing,
    Error(ThemeError),
}

impl From<ThemeError> for Lookup {
    fn from(e: ThemeError) -> Self {
        Lookup::Error(e)
    }
}

/// A theme file's text and where it came from.
struct Source {
    origin: String,
    text: Cow<'static, str>,
    is_user: bool,
}

fn find_source(
    name: &str,
    user_dir: Option<&Path>,
    allow_user: bool,
) -> Result<Option<Source>, ThemeError> {
    // A name is a file stem; refuse anything that could walk out of the themes directory.
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if allow_user
        && safe
        && let Some(dir) = user_dir
    {
        let path = dir.join(format!("{name}.toml"));
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                return Ok(Some(Source {
                    origin: path.display().to_string(),
                    text: Cow::Owned(text),
                    is_user: true,
                }));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ThemeError::Io { path, source }),
        }
    }
    Ok(BUILTINS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| Source {
            origin: format!("themes/{n}.toml (built-in)"),
            text: Cow::Borrowed(*text),
            is_user: false,
        }))
}

/// Built-in names plus the stems of `*.toml` files in the user's theme directory.
fn available_themes(user_dir: Option<&Path>) -> Vec<String> {
    let mut names: BTreeSet<String> = BUILTIN_NAMES.iter().map(|s| s.to_string()).collect();
    if let Some(entries) = user_dir.and_then(|d| std::fs::read_dir(d).ok()) {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "toml")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                names.insert(stem.to_string());
            }
        }
    }
    names.into_iter().collect()
}

fn resolve(
    name: &str,
    user_dir: Option<&Path>,
    allow_user: bool,
    chain: &mut Vec<String>,
) -> Result<Theme, Lookup> {
    let Some(source) = find_source(name, user_dir, allow_user)? else {
        return Err(Lookup::Missing);
    };
    if chain.contains(&source.origin) {
        let mut cycle = chain.clone();
        cycle.push(source.origin);
        return Err(ThemeError::Cycle { chain: cycle }.into());
    }
    chain.push(source.origin.clone());
    let file = parse_file(&source)?;

    let mut theme = match &file.inherits {
        Some((parent, line)) => {
            // A user file extending its own name means the built-in underneath it.
            let parent_allow_user = !(source.is_user && parent == name);
            match resolve(parent, user_dir, parent_allow_user, chain) {
                Ok(t) => t,
                Err(Lookup::Missing) => {
                    return Err(ThemeError::UnknownParent {
                        file: source.origin.clone(),
                        line: *line,
                        parent: parent.clone(),
                        available: available_themes(user_dir),
                    }
                    .into());
                }
                Err(e) => return Err(e),
            }
        }
        None if name == "default" && !source.is_user => Theme::blank(name),
        None => resolve("default", None, false, chain)?,
    };
    for (slot, style) in &file.slots {
        if let Some(s) = theme.slot_mut(slot) {
            *s = *style;
        }
    }
    theme.name = name.to_string();
    chain.pop();
    Ok(theme)
}

/// A parsed theme file: its parent (with the line naming it) and the slots it sets.
struct ThemeFile {
    inherits: Option<(String, usize)>,
    slots: Vec<(String, Style)>,
}

fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn parse_file(source: &Source) -> Result<ThemeFile, ThemeError> {
    use toml::de::{DeTable, DeValue};

    let text: &str = &source.text;
    let file = source.origin.clone();
    let doc = DeTable::parse(text).map_err(|e| ThemeError::Syntax {
        file: file.clone(),
        line: line_at(text, e.span().map_or(0, |s| s.start)),
        message: e.message().trim().to_string(),
    })?;
    let invalid = |offset: usize, message: String| ThemeError::Invalid {
        file: file.clone(),
        line: line_at(text, offset),
        message,
    };

    let mut out = ThemeFile {
        inherits: None,
        slots: Vec::new(),
    };
    for (key, value) in doc.get_ref() {
        match key.get_ref().as_ref() {
            "inherits" => match value.get_ref().as_str() {
                Some(parent) => {
                    out.inherits = Some((parent.to_string(), line_at(text, value.span().start)))
                }
                None => {
                    return Err(invalid(
                        value.span().start,
                        "'inherits' must be a theme name string".into(),
                    ));
                }
            },
            "slots" => {
                let DeValue::Table(slots) = value.get_ref() else {
                    return Err(invalid(
                        value.span().start,
                        "'slots' must be a table".into(),
                    ));
                };
                for (slot, style) in slots {
                    let slot_name = slot.get_ref().to_string();
                    if !SLOT_NAMES.contains(&slot_name.as_str()) {
                        return Err(ThemeError::UnknownSlot {
                            file,
                            line: line_at(text, slot.span().start),
                            slot: slot_name,
                        });
                    }
                    let line = line_at(text, style.span().start);
                    let Some(spec) = style.get_ref().as_str() else {
                        return Err(ThemeError::InvalidStyle {
                            file,
                            line,
                            slot: slot_name,
                            reason: format!(
                                "expected a string like \"#f7768e bold\", found a {}",
                                style.get_ref().type_str()
                            ),
                        });
                    };
                    let parsed = parse_style(spec).map_err(|reason| ThemeError::InvalidStyle {
                        file: file.clone(),
                        line,
                        slot: slot_name.clone(),
                        reason,
                    })?;
                    out.slots.push((slot_name, parsed));
                }
            }
            other => {
                return Err(invalid(
                    key.span().start,
                    format!("unknown key '{other}' (expected 'inherits' or [slots])"),
                ));
            }
        }
    }
    Ok(out)
}

/// Parses a slot value such as `"fg=#1a1b26 bg=#7aa2f7 bold"`; see the module doc.
pub fn parse_style(spec: &str) -> Result<Style, String> {
    let mut style = Style::new();
    let mut fg_set = false;
    let mut bg_set = false;
    for token in spec.split_whitespace() {
        let lower = token.to_ascii_lowercase();
        if let Some(m) = parse_modifier(&lower) {
            style = style.add_modifier(m);
        } else if let Some(c) = lower.strip_prefix("bg=") {
            if bg_set {
                return Err(format!("background colour given twice in '{spec}'"));
            }
            style = style.bg(parse_color(c)?);
            bg_set = true;
        } else {
            let c = lower.strip_prefix("fg=").unwrap_or(&lower);
            if fg_set {
                return Err(format!(
                    "'{token}' is not a modifier and the foreground colour is already set \
                     (modifiers: bold dim italic underlined reversed crossed-out slow-blink)"
                ));
            }
            style = style.fg(parse_color(c)?);
            fg_set = true;
        }
    }
    Ok(style)
}

fn parse_modifier(token: &str) -> Option<Modifier> {
    Some(match token.replace('_', "-").as_str() {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" | "underline" => Modifier::UNDERLINED,
        "reversed" | "reverse" => Modifier::REVERSED,
        "crossed-out" | "strikethrough" => Modifier::CROSSED_OUT,
        "slow-blink" | "blink" => Modifier::SLOW_BLINK,
        _ => return None,
    })
}

/// Parses `#rrggbb`, a 0-255 index, `reset` or an ANSI colour name.
pub fn parse_color(token: &str) -> Result<Color, String> {
    let bad = || {
        format!(
            "invalid colour '{token}' (expected #rrggbb, 0-255, reset, or an ANSI name such \
             as red, bright-red, dark-gray)"
        )
    };
    let t = token
        .to_ascii_lowercase()
        .replace('_', "-")
        .replace("grey", "gray");
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() != 6 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        return Ok(Color::Rgb(byte(0)?, byte(2)?, byte(4)?));
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return t.parse::<u8>().map(Color::Indexed).map_err(|_| bad());
    }
    Ok(match t.as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" => Color::Gray,
        "dark-gray" | "bright-black" | "light-black" => Color::DarkGray,
        "bright-red" | "light-red" => Color::LightRed,
        "bright-green" | "light-green" => Color::LightGreen,
        "bright-yellow" | "light-yellow" => Color::LightYellow,
        "bright-blue" | "light-blue" => Color::LightBlue,
        "bright-magenta" | "light-magenta" => Color::LightMagenta,
        "bright-cyan" | "light-cyan" => Color::LightCyan,
        "white" | "bright-white" | "light-white" => Color::White,
        _ => return Err(bad()),
    })
}

fn downgrade(color: Color, depth: ColorDepth) -> Color {
    match (color, depth) {
        (_, ColorDepth::TrueColor) => color,
        (Color::Rgb(r, g, b), ColorDepth::Ansi256) => Color::Indexed(nearest_xterm256(r, g, b)),
        (Color::Rgb(r, g, b), ColorDepth::Ansi16) => nearest_ansi16(r, g, b),
        (Color::Indexed(i), ColorDepth::Ansi16) if i < 16 => ANSI16[usize::from(i)],
        (Color::Indexed(i), ColorDepth::Ansi16) => {
            let (r, g, b) = xterm256_rgb(i);
            nearest_ansi16(r, g, b)
        }
        _ => color,
    }
}

/// The 16 ANSI colours in palette order.
const ANSI16: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// RGB of an xterm-256 palette entry from 16 up (the cube and the grey ramp).
fn xterm256_rgb(i: u8) -> (u8, u8, u8) {
    match i {
        16..=231 => {
            let n = i - 16;
            (
                CUBE[usize::from(n / 36)],
                CUBE[usize::from((n / 6) % 6)],
                CUBE[usize::from(n % 6)],
            )
        }
        232..=255 => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
        // 0-15 depend on the terminal's palette; these are xterm's defaults.
        _ => {
            const BASE: [(u8, u8, u8); 16] = [
                (0, 0, 0),
                (205, 0, 0),
                (0, 205, 0),
                (205, 205, 0),
                (0, 0, 238),
                (205, 0, 205),
                (0, 205, 205),
                (229, 229, 229),
                (127, 127, 127),
                (255, 0, 0),
                (0, 255, 0),
                (255, 255, 0),
                (92, 92, 255),
                (255, 0, 255),
                (0, 255, 255),
                (255, 255, 255),
            ];
            BASE[usize::from(i)]
        }
    }
}

/// "Redmean" weighted distance: cheap and closer to perception than plain RGB.
fn distance(a: (u8, u8, u8), b: (u8, u8, u8)) -> i64 {
    let (r1, g1, b1) = (i64::from(a.0), i64::from(a.1), i64::from(a.2));
    let (r2, g2, b2) = (i64::from(b.0), i64::from(b.1), i64::from(b.2));
    let rmean = (r1 + r2) / 2;
    let (dr, dg, db) = (r1 - r2, g1 - g2, b1 - b2);
    (((512 + rmean) * dr * dr) >> 8) + 4 * dg * dg + (((767 - rmean) * db * db) >> 8)
}

/// Nearest entry among 16-255; 0-15 are skipped because terminals recolour them.
fn nearest_xterm256(r: u8, g: u8, b: u8) -> u8 {
    (16..=255u8)
        .min_by_key(|i| distance((r, g, b), xterm256_rgb(*i)))
        .unwrap_or(16)
}

/// Nearest ANSI colour by hue and lightness rather than RGB distance: terminals paint
/// the 16 colours differently, and pastel theme colours would otherwise all turn grey.
fn nearest_ansi16(r: u8, g: u8, b: u8) -> Color {
    let (rf, gf, bf) = (f32::from(r), f32::from(g), f32::from(b));
    let max = rf.max(gf).max(bf);
    let min = rf.min(gf).min(bf);
    let chroma = max - min;
    let lightness = (max + min) / 2.0;
    if chroma < 60.0 {
        return match lightness {
            l if l < 50.0 => Color::Black,
            l if l < 150.0 => Color::DarkGray,
            l if l < 220.0 => Color::Gray,
            _ => Color::White,
        };
    }
    let hue = if max == rf {
        60.0 * ((gf - bf) / chroma).rem_euclid(6.0)
    } else if max == gf {
        60.0 * ((bf - rf) / chroma + 2.0)
    } else {
        60.0 * ((rf - gf) / chroma + 4.0)
    };
    // Sector of 60 degrees centred on each primary/secondary hue.
    let sector = (((hue + 30.0) / 60.0).floor() as i32).rem_euclid(6);
    let bright = lightness >= 140.0;
    match (sector, bright) {
        (0, false) => Color::Red,
        (0, true) => Color::LightRed,
        (1, false) => Color::Yellow,
        (1, true) => Color::LightYellow,
        (2, false) => Color::Green,
        (2, true) => Color::LightGreen,
        (3, false) => Color::Cyan,
        (3, true) => Color::LightCyan,
        (4, false) => Color::Blue,
        (4, true) => Color::LightBlue,
        (_, false) => Color::Magenta,
        (_, true) => Color::LightMagenta,
    }
}

impl fmt::Display for ColorDepth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColorDepth::TrueColor => "truecolor",
            ColorDepth::Ansi256 => "256",
            ColorDepth::Ansi16 => "16",
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn user_dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write theme");
        }
        dir
    }

    fn has_color(s: &Style) -> bool {
        s.fg.is_some_and(|c| c != Color::Reset) || s.bg.is_some_and(|c| c != Color::Reset)
    }

    #[test]
    fn every_builtin_loads_and_names_itself() {
        for name in Theme::builtin_names() {
            let theme = Theme::load(name, None).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(theme.name, *name);
        }
    }

    #[test]
    fn default_file_sets_every_slot() {
        // Other themes inherit unset slots from it, so it must be complete.
        let src = find_source("default", None, false).unwrap().unwrap();
        let file = parse_file(&src).unwrap();
        let set: BTreeSet<&str> = file.slots.iter().map(|(s, _)| s.as_str()).collect();
        let all: BTreeSet<&str> = SLOT_NAMES.iter().copied().collect();
        assert_eq!(set, all);
    }

    #[test]
    fn builtins_differ_from_each_other() {
        let themes: Vec<Theme> = Theme::builtin_names()
            .iter()
            .map(|n| Theme::load(n, None).unwrap())
            .collect();
        for (i, a) in themes.iter().enumerate() {
            for b in &themes[i + 1..] {
                assert_ne!(a.text, b.text, "{} vs {} text", a.name, b.name);
                assert_ne!(a.critical, b.critical, "{} vs {} critical", a.name, b.name);
            }
        }
    }

    #[test]
    fn each_builtin_keeps_meaningful_slots_apart() {
        for name in Theme::builtin_names() {
            let t = Theme::load(name, None).unwrap();
            let envs = [t.env_sandbox, t.env_dev, t.env_staging, t.env_prod];
            for (i, a) in envs.iter().enumerate() {
                for b in &envs[i + 1..] {
                    assert_ne!(a, b, "{name}: two environments look the same");
                }
            }
            let sev = [t.critical, t.warning, t.info, t.ok];
            for (i, a) in sev.iter().enumerate() {
                for b in &sev[i + 1..] {
                    assert_ne!(a, b, "{name}: two severities look the same");
                }
            }
            assert_ne!(t.selection, t.text, "{name}: selection invisible");
            assert_ne!(t.badge_operator, t.badge_viewer, "{name}: badges equal");
            assert_ne!(
                t.env_prod, t.border,
                "{name}: prod frame looks like any frame"
            );
        }
    }

    #[test]
    fn mono_is_usable_without_colour() {
        let t = Theme::load("mono", None).unwrap();
        for slot in SLOT_NAMES {
            let s = t.slot(slot).unwrap();
            assert!(!has_color(&s), "mono slot {slot} uses a colour: {s:?}");
        }
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
        assert!(t.critical.add_modifier.contains(Modifier::BOLD));
        // Production stands out without looking like the selection bar.
        assert!(
            t.env_prod
                .add_modifier
                .contains(Modifier::BOLD | Modifier::UNDERLINED)
        );
        assert_ne!(t.env_prod, t.selection);
    }

    #[test]
    fn slot_syntax_forms() {
        assert_eq!(
            parse_style("#f7768e bold").unwrap(),
            Style::new()
                .fg(Color::Rgb(0xf7, 0x76, 0x8e))
                .add_modifier(Modifier::BOLD)
        );
        assert_eq!(
            parse_style("fg=#1a1b26 bg=bright-blue bold underlined").unwrap(),
            Style::new()
                .fg(Color::Rgb(0x1a, 0x1b, 0x26))
                .bg(Color::LightBlue)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        );
        assert_eq!(parse_style("").unwrap(), Style::new());
        assert_eq!(
            parse_style("208").unwrap(),
            Style::new().fg(Color::Indexed(208))
        );
        assert_eq!(
            parse_style("light_red").unwrap(),
            Style::new().fg(Color::LightRed)
        );
        assert_eq!(
            parse_style("dark-grey").unwrap(),
            Style::new().fg(Color::DarkGray)
        );
        assert_eq!(parse_style("reset").unwrap(), Style::new().fg(Color::Reset));
        assert!(parse_style("red blue").is_err());
        assert!(parse_style("#12345").is_err());
        assert!(parse_style("256").is_err());
        assert!(parse_style("bg=red bg=blue").is_err());
    }

    #[test]
    fn user_theme_overrides_builtin_and_inherits() {
        let dir = user_dir(&[
            // A user `default` extending the built-in default.
            (
                "default.toml",
                "inherits = \"default\"\n[slots]\ncritical = \"#ff0000\"\n",
            ),
            (
                "night.toml",
                "inherits = \"default\"\n[slots]\ntext = \"white\"\n",
            ),
        ]);
        let builtin = Theme::load("default", None).unwrap();
        let user = Theme::load("default", Some(dir.path())).unwrap();
        assert_eq!(user.critical, Style::new().fg(Color::Rgb(255, 0, 0)));
        assert_eq!(
            user.warning, builtin.warning,
            "unset slots come from the parent"
        );

        // `night` inherits the *user's* default, which overrides critical.
        let night = Theme::load("night", Some(dir.path())).unwrap();
        assert_eq!(night.name, "night");
        assert_eq!(night.text, Style::new().fg(Color::White));
        assert_eq!(night.critical, user.critical);
        assert_eq!(night.muted, builtin.muted);
    }

    #[test]
    fn theme_without_parent_starts_from_builtin_default() {
        let dir = user_dir(&[("plain.toml", "[slots]\nok = \"green\"\n")]);
        let t = Theme::load("plain", Some(dir.path())).unwrap();
        let d = Theme::load("default", None).unwrap();
        assert_eq!(t.ok, Style::new().fg(Color::Green));
        assert_eq!(t.critical, d.critical);
    }

    #[test]
    fn inheritance_from_a_non_default_builtin() {
        let dir = user_dir(&[(
            "calm.toml",
            "inherits = \"mono\"\n[slots]\nok = \"green\"\n",
        )]);
        let t = Theme::load("calm", Some(dir.path())).unwrap();
        let mono = Theme::load("mono", None).unwrap();
        assert_eq!(t.selection, mono.selection);
        assert_eq!(t.ok, Style::new().fg(Color::Green));
    }

    #[test]
    fn inheritance_cycle_is_an_error() {
        let dir = user_dir(&[
            ("a.toml", "inherits = \"b\"\n"),
            ("b.toml", "inherits = \"a\"\n"),
        ]);
        let err = Theme::load("a", Some(dir.path())).unwrap_err();
        assert!(matches!(err, ThemeError::Cycle { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("cycle") && msg.contains("a.toml") && msg.contains("b.toml"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_slot_names_file_line_and_slot() {
        let dir = user_dir(&[(
            "x.toml",
            "inherits = \"default\"\n\n[slots]\ncritcal = \"red\"\n",
        )]);
        let err = Theme::load("x", Some(dir.path())).unwrap_err().to_string();
        let file = dir.path().join("x.toml").display().to_string();
        assert!(
            err.starts_with(&format!(
                "{file}:4: unknown slot 'critcal' (expected one of: text, muted,"
            )),
            "{err}"
        );
    }

    #[test]
    fn bad_colour_names_file_line_and_slot() {
        let dir = user_dir(&[(
            "x.toml",
            "# mine\n[slots]\ntext = \"white\"\ncritical = \"red bold\"\nwarning = \"yelow\"\n",
        )]);
        let err = Theme::load("x", Some(dir.path())).unwrap_err().to_string();
        let file = dir.path().join("x.toml").display().to_string();
        assert!(
            err.starts_with(&format!("{file}:5: slot 'warning': invalid colour 'yelow'")),
            "{err}"
        );
    }

    #[test]
    fn wrong_shape_and_syntax_errors_have_lines() {
        let dir = user_dir(&[
            ("num.toml", "[slots]\ntext = 3\n"),
            ("key.toml", "inherit = \"default\"\n"),
            ("syntax.toml", "[slots]\ntext = \"red\n"),
            ("parent.toml", "\ninherits = \"nope\"\n"),
        ]);
        let d = dir.path();
        let e = Theme::load("num", Some(d)).unwrap_err().to_string();
        assert!(
            e.contains("num.toml:2: slot 'text': expected a string"),
            "{e}"
        );
        let e = Theme::load("key", Some(d)).unwrap_err().to_string();
        assert!(e.contains("key.toml:1: unknown key 'inherit'"), "{e}");
        let e = Theme::load("syntax", Some(d)).unwrap_err().to_string();
        assert!(e.contains("syntax.toml:2: invalid TOML"), "{e}");
        let e = Theme::load("parent", Some(d)).unwrap_err().to_string();
        assert!(
            e.contains("parent.toml:2: inherits unknown theme 'nope'"),
            "{e}"
        );
        assert!(e.contains("high-contrast"), "{e}");
    }

    #[test]
    fn unknown_theme_lists_available() {
        let dir = user_dir(&[("mine.toml", "")]);
        let err = Theme::load("nope", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "unknown theme 'nope' (available: default, high-contrast, light, mine, mono)"
        );
        // Names cannot escape the theme directory.
        assert!(Theme::load("../etc/passwd", Some(dir.path())).is_err());
    }

    #[test]
    fn depth_detection() {
        assert_eq!(
            ColorDepth::detect(env(&[("COLORTERM", "truecolor"), ("TERM", "xterm")])),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::detect(env(&[("COLORTERM", "24bit")])),
            ColorDepth::TrueColor
        );
        assert_eq!(
            ColorDepth::detect(env(&[("TERM", "screen-256color")])),
            ColorDepth::Ansi256
        );
        assert_eq!(
            ColorDepth::detect(env(&[("TERM", "xterm")])),
            ColorDepth::Ansi16
        );
        assert_eq!(ColorDepth::detect(env(&[])), ColorDepth::Ansi16);
    }

    #[test]
    fn no_color_needs_a_non_empty_value() {
        assert!(no_color(env(&[("NO_COLOR", "1")])));
        assert!(!no_color(env(&[("NO_COLOR", "")])));
        assert!(!no_color(env(&[])));
    }

    #[test]
    fn downgrade_to_256_uses_cube_and_grey_ramp() {
        assert_eq!(nearest_xterm256(255, 0, 0), 196);
        assert_eq!(nearest_xterm256(0, 0, 0), 16);
        assert_eq!(nearest_xterm256(128, 128, 128), 244);
        assert_eq!(nearest_xterm256(0x87, 0xaf, 0xff), 111);
    }

    #[test]
    fn downgrade_to_16_keeps_hue() {
        assert_eq!(nearest_ansi16(0xf7, 0x76, 0x8e), Color::LightRed);
        assert_eq!(nearest_ansi16(0x7a, 0xa2, 0xf7), Color::LightBlue);
        assert_eq!(nearest_ansi16(0xcd, 0, 0), Color::Red);
        assert_eq!(nearest_ansi16(0, 0x80, 0), Color::Green);
        assert_eq!(nearest_ansi16(0x1a, 0x1b, 0x26), Color::Black);
        assert_eq!(nearest_ansi16(0x56, 0x5f, 0x89), Color::DarkGray);
        assert_eq!(nearest_ansi16(0xc0, 0xca, 0xf5), Color::Gray);
        assert_eq!(nearest_ansi16(0xe0, 0xaf, 0x68), Color::LightYellow);
    }

    #[test]
    fn for_depth_rewrites_every_slot() {
        let t = Theme::load("default", None).unwrap();
        let t16 = t.for_depth(ColorDepth::Ansi16);
        let t256 = t.for_depth(ColorDepth::Ansi256);
        assert_eq!(t.for_depth(ColorDepth::TrueColor), t);
        for slot in SLOT_NAMES {
            let (a, b) = (t16.slot(slot).unwrap(), t256.slot(slot).unwrap());
            for c in [a.fg, a.bg, b.fg, b.bg].into_iter().flatten() {
                assert!(!matches!(c, Color::Rgb(..)), "{slot} still RGB: {c:?}");
            }
            for c in [a.fg, a.bg].into_iter().flatten() {
                assert!(
                    !matches!(c, Color::Indexed(_)),
                    "{slot} indexed in 16: {c:?}"
                );
            }
            // Modifiers survive.
            assert_eq!(a.add_modifier, t.slot(slot).unwrap().add_modifier);
        }
        // Production stays distinct from dev after the downgrade.
        assert_ne!(t16.env_prod, t16.env_dev);
        assert_eq!(
            downgrade(Color::Indexed(196), ColorDepth::Ansi16),
            Color::Red
        );
        assert_eq!(
            downgrade(Color::Indexed(9), ColorDepth::Ansi16),
            Color::LightRed
        );
        assert_eq!(
            downgrade(Color::Indexed(196), ColorDepth::Ansi256),
            Color::Indexed(196)
        );
    }

    #[test]
    fn environment_style_picks_the_slot() {
        use crate::model::Environment;
        let t = Theme::fallback();
        assert_eq!(t.environment(&Environment::Prod), t.env_prod);
        assert_eq!(t.environment(&Environment::Other("qa".into())), t.border);
    }
}
