//! Audit: every write taken from this machine, read from the audit file, newest first.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::actions::{AuditEntry, AuditReadError};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

#[derive(Default)]
pub struct AuditState {
    pub selection: Selection<String>,
    pub filter: String,
    pub entries: Vec<AuditEntry>,
    /// Lines of the file that could not be read, with their line numbers.
    pub bad_lines: Vec<AuditReadError>,
    /// The file could not be read at all.
    pub load_error: Option<String>,
    /// Older bytes of the file the console left unread (only its newest part is read).
    pub skipped_bytes: u64,
    pub path: String,
}

impl AuditState {
    fn listed(&self) -> Vec<&AuditEntry> {
        let needle = self.filter.to_lowercase();
        self.entries
            .iter()
            .filter(|e| {
                needle.is_empty()
                    || e.os_user.to_lowercase().contains(&needle)
                    || e.action.kind().contains(&needle)
                    || e.action.target().to_lowercase().contains(&needle)
            })
            .collect()
    }

    pub fn handle(&mut self, action: KeyAction, _ctx: &Context) -> Effect {
        let list: Vec<String> = self.listed().iter().map(|e| e.id.clone()).collect();
        if self.selection.navigate(
            action,
            list.len(),
            |i, k| list[i] == *k,
            |i| list[i].clone(),
        ) {
            return Effect::None;
        }
        match action {
            KeyAction::Back if !self.filter.is_empty() => {
                self.filter.clear();
                Effect::None
            }
            _ => Effect::Ignored,
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &AuditState, ctx: &Context) {
    let t = ctx.theme;
    let list = state.listed();
    let wide = area.width >= 110;
    let [table_area, detail_area] = area.layout(&Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(4),
    ]));
    let rows = list.iter().map(|e| {
        let (result, style) = match &e.outcome {
            Some(o) if o.ok => ("ok".to_string(), t.ok),
            Some(_) => ("FAILED".to_string(), t.critical),
            None => ("no outcome".to_string(), t.warning),
        };
        let time = if wide {
            e.time.format("%Y-%m-%d %H:%M:%S").to_string()
        } else {
            e.time.format("%m-%d %H:%M").to_string()
        };
        let mut cells = vec![
            Cell::from(time).style(t.muted),
            Cell::from(e.os_user.clone()),
            Cell::from(e.action.kind()),
            Cell::from(e.action.target()),
            Cell::from(result).style(style),
        ];
        if wide {
            // Why it was done, or for a failure, why it failed.
            let why = match &e.outcome {
                Some(o) if !o.ok => Cell::from(o.message.clone()).style(t.critical),
                _ => Cell::from(e.action.reason().unwrap_or("").to_string()).style(t.muted),
            };
            cells.push(why);
        }
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(if wide { 19 } else { 11 }),
        Constraint::Length(10),
        Constraint::Length(11),
        if wide {
            Constraint::Length(36)
        } else {
            Constraint::Min(16)
        },
        Constraint::Length(10),
    ];
    let mut header = vec!["TIME (UTC)", "USER", "ACTION", "TARGET", "RESULT"];
    if wide {
        widths.push(Constraint::Min(20));
        header.push("REASON / ERROR");
    }
    let older = if state.skipped_bytes > 0 {
        format!(
            ", newest only: {} KiB older unread",
            state.skipped_bytes.div_ceil(1024)
        )
    } else {
        String::new()
    };
    let title = format!(" audit ({} actions{older}) · {} ", list.len(), state.path);
    let selected = state
        .selection
        .position(list.len(), |i, k| list[i].id == *k);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title))
        .column_spacing(1)
        .row_highlight_style(t.selection)
        .block(ctx.block(title, None));
    state
        .selection
        .draw_table(frame, table, table_area, selected, 3);

    let mut detail: Vec<Line> = Vec::new();
    if let Some(err) = &state.load_error {
        detail.push(Line::from(Span::styled(
            format!("cannot read the audit file: {err}"),
            t.critical,
        )));
    }
    for bad in state.bad_lines.iter().take(2) {
        detail.push(Line::from(Span::styled(
            format!(
                "{}:{}: unreadable record: {}",
                state.path, bad.line, bad.message
            ),
            t.warning,
        )));
    }
    if let Some(e) = selected.map(|i| list[i]) {
        detail.push(Line::from(vec![
            Span::styled(format!("{} {} ", e.os_user, e.action.kind()), t.text),
            Span::styled(e.action.target(), t.accent),
            Span::styled(format!(" · identity {}", e.identity), t.muted),
        ]));
        if let Some(reason) = e.action.reason() {
            detail.push(Line::from(vec![
                Span::styled("reason: ", t.muted),
                Span::styled(reason.to_string(), t.text),
            ]));
        }
        match &e.outcome {
            Some(o) => detail.push(Line::from(vec![
                Span::styled(format!("outcome at {}: ", o.time.format("%H:%M:%S")), t.muted),
                Span::styled(o.message.clone(), if o.ok { t.ok } else { t.critical }),
            ])),
            None => detail.push(Line::from(Span::styled(
                "no outcome recorded: still running, or fleetdeck stopped during the call; check the target",
                t.warning,
            ))),
        }
    } else if state.entries.is_empty() && state.load_error.is_none() {
        detail.push(Line::from(Span::styled("no actions recorded yet", t.muted)));
    }
    frame.render_widget(
        Paragraph::new(detail).wrap(Wrap { trim: true }),
        detail_area,
    );
}
