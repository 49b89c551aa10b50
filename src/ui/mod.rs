//! Everything drawn: views, widgets, theme and the keymap. Rendering is pure: it reads the
//! store and the view state and draws; `now` is passed in.

pub mod keymap;
pub mod theme;
pub mod views;
pub mod widgets;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::border;
use ratatui::widgets::{Block, Borders};

use crate::actions::Mode;
use crate::model::{ClusterId, Environment, Store, Timestamp};
use crate::runbook::RunbookSet;
use keymap::ViewId;
use theme::Theme;
use widgets::dialog::Dialog;

/// Characters that differ between UTF-8 terminals and `--ascii` / non-UTF-8 locales.
#[derive(Clone, Debug)]
pub struct Glyphs {
    pub ascii: bool,
    pub border: border::Set<'static>,
    pub bar_full: &'static str,
    pub bar_empty: &'static str,
    pub spark: &'static [char],
    pub ellipsis: &'static str,
    pub selected: &'static str,
    pub dot: &'static str,
    pub up: &'static str,
    pub down: &'static str,
    pub runbook: &'static str,
    /// The alert only links to a runbook elsewhere.
    pub link: &'static str,
    pub expanded: &'static str,
    pub collapsed: &'static str,
    pub separator: &'static str,
}

const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

impl Glyphs {
    pub fn unicode() -> Self {
        Self {
            ascii: false,
            border: border::ROUNDED,
            bar_full: "█",
            bar_empty: "░",
            spark: &['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'],
            ellipsis: "…",
            selected: "▶ ",
            dot: "●",
            up: "▲",
            down: "▼",
            runbook: "▤",
            link: "↗",
            expanded: "▾",
            collapsed: "▸",
            separator: "│",
        }
    }

    pub fn ascii() -> Self {
        Self {
            ascii: true,
            border: ASCII_BORDER,
            bar_full: "#",
            bar_empty: "-",
            spark: &['_', '.', '-', '~', '=', '*', '#'],
            ellipsis: "~",
            selected: "> ",
            dot: "*",
            up: "^",
            down: "v",
            runbook: "R",
            link: "L",
            expanded: "-",
            collapsed: "+",
            separator: "|",
        }
    }
}

/// Everything a render needs besides the view state. All borrowed: render never owns data.
pub struct Context<'a> {
    pub store: &'a Store,
    pub theme: &'a Theme,
    pub glyphs: &'a Glyphs,
    pub now: Timestamp,
    pub mode: Mode,
    pub runbooks: &'a RunbookSet,
    /// Set when the data is the simulated demo fleet.
    pub demo: bool,
}

impl Context<'_> {
    /// The style for an environment: production must look different at a glance.
    pub fn env_style(&self, env: &Environment) -> Style {
        match env {
            Environment::Sandbox => self.theme.env_sandbox,
            Environment::Dev => self.theme.env_dev,
            Environment::Staging => self.theme.env_staging,
            Environment::Prod => self.theme.env_prod,
            Environment::Other(_) => self.theme.muted,
        }
    }

    /// The style for an alert's (or a policy's) severity.
    pub fn severity_style(&self, severity: crate::model::Severity) -> Style {
        match severity {
            crate::model::Severity::Critical => self.theme.critical,
            crate::model::Severity::Warning => self.theme.warning,
            crate::model::Severity::Info => self.theme.info,
        }
    }

    /// The alert's runbook marker: a local runbook (`b` opens it), only a link, or none.
    pub fn runbook_marker(&self, alert: &crate::model::Alert) -> &'static str {
        if !self.runbooks.matching(alert).is_empty() {
            self.glyphs.runbook
        } else if alert.runbook_url.is_some() {
            self.glyphs.link
        } else {
            ""
        }
    }

    /// A bordered block in this terminal's glyphs, the border coloured by `env` if given.
    pub fn block(&self, title: String, env: Option<&Environment>) -> Block<'static> {
        let border = match env {
            Some(e) => self.env_style(e),
            None => self.theme.border,
        };
        let block = Block::default()
            .borders(Borders::ALL)
            .border_set(self.glyphs.border)
            .border_style(border);
        if title.is_empty() {
            block
        } else {
            block.title(ratatui::text::Span::styled(title, self.theme.title))
        }
    }
}

/// Text being typed on the bottom line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    Command(String),
    Filter(String),
}

/// A message on the status bar until `until`.
#[derive(Clone, Debug, PartialEq)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until: std::time::Instant,
}

/// What a view's key handler asks the app to do.
#[derive(Debug, PartialEq)]
pub enum Effect {
    /// Handled; nothing more to do.
    None,
    /// Not a key this view uses (the app may apply a default, e.g. `esc` goes back).
    Ignored,
    OpenCluster(ClusterId),
    OpenRunbook(String),
    Dialog(Dialog),
    Flash(String),
    Error(String),
    /// Run a runbook step (preview, confirm, audit).
    RunStep(views::alert_runbook::StepRef),
    /// Put text on the user's clipboard (OSC 52).
    Copy(String),
}

/// Every view's state plus what overlays them. Owned by the app; read by render.
pub struct UiState {
    /// The view stack; the last is on screen. Never empty.
    pub stack: Vec<ViewId>,
    pub fleet: views::fleet::FleetState,
    pub alerts: views::alerts::AlertsState,
    pub cluster: views::cluster::ClusterState,
    pub rollouts: views::rollouts::RolloutsState,
    pub runbooks: views::runbooks::RunbooksState,
    pub audit: views::audit::AuditState,
    pub sources: views::sources::SourcesState,
    pub help: views::help::HelpState,
    pub input: Option<Input>,
    pub dialog: Option<Dialog>,
    pub flash: Option<Flash>,
    /// Text for the user's clipboard; the loop writes it as OSC 52 and clears it.
    pub clipboard: Option<String>,
}

impl Default for UiState {
    fn default() -> Self {
        Self {
            stack: vec![ViewId::Fleet],
            fleet: Default::default(),
            alerts: Default::default(),
            cluster: Default::default(),
            rollouts: Default::default(),
            runbooks: Default::default(),
            audit: Default::default(),
            sources: Default::default(),
            help: Default::default(),
            input: None,
            dialog: None,
            flash: None,
            clipboard: None,
        }
    }
}

impl UiState {
    pub fn active(&self) -> ViewId {
        self.stack.last().copied().unwrap_or(ViewId::Fleet)
    }

    /// Hyperlinks drawn in the last frame (OSC 8), for the loop to write over their text.
    pub fn terminal_links(&self) -> Vec<widgets::terminal_link::TerminalLink> {
        match (self.active(), &self.alerts.pane) {
            (ViewId::Alerts, Some(pane)) if self.dialog.is_none() => {
                pane.link.borrow().iter().cloned().collect()
            }
            _ => Vec::new(),
        }
    }
}

/// Draws one frame.
pub fn render(frame: &mut Frame, ui: &UiState, ctx: &Context) {
    let [header, body, status] = frame.area().layout(&Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ]));
    widgets::header::render(frame, header, ui.active(), ctx);
    render_view(frame, body, ui, ctx);
    widgets::status_bar::render(frame, status, ui, ctx);
    if let Some(dialog) = &ui.dialog {
        dialog.render(frame, body, ctx);
    }
    if ctx.glyphs.ascii {
        asciify(frame.buffer_mut());
    }
}

/// In ASCII mode nothing but ASCII reaches the terminal: the glyphs already are, and this
/// catches punctuation in text and data (a non-UTF-8 terminal would show garbage).
fn asciify(buffer: &mut ratatui::buffer::Buffer) {
    for cell in buffer.content.iter_mut() {
        let symbol = cell.symbol();
        if symbol.is_ascii() {
            continue;
        }
        let replacement = match symbol {
            "·" | "•" => "-",
            "…" => "~",
            "›" | "▶" | "▸" => ">",
            "◂" | "‹" => "<",
            "─" | "━" | "—" | "–" => "-",
            "│" | "┃" => "|",
            "▲" => "^",
            "▼" | "▾" => "v",
            "█" => "#",
            "░" => "-",
            _ => "?",
        };
        cell.set_symbol(replacement);
    }
}

fn render_view(frame: &mut Frame, area: Rect, ui: &UiState, ctx: &Context) {
    // Views colour their frame with the environment of the selection (what an action
    // there would touch), from the rows they draw anyway.
    match ui.active() {
        ViewId::Fleet => views::fleet::render(frame, area, &ui.fleet, ctx),
        ViewId::Alerts => views::alerts::render(frame, area, &ui.alerts, ctx),
        ViewId::Cluster => views::cluster::render(frame, area, &ui.cluster, ctx),
        ViewId::Rollouts => views::rollouts::render(frame, area, &ui.rollouts, ctx),
        ViewId::Runbooks => views::runbooks::render(frame, area, &ui.runbooks, ctx),
        ViewId::Audit => views::audit::render(frame, area, &ui.audit, ctx),
        ViewId::Sources => views::sources::render(frame, area, &ui.sources, ctx),
        ViewId::Help => {
            let under = ui
                .stack
                .iter()
                .rev()
                .nth(1)
                .copied()
                .unwrap_or(ViewId::Fleet);
            views::help::render(frame, area, &ui.help, under, ctx)
        }
    }
}
