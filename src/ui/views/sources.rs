//! Sources: every source's health, what it has cost in API calls, and its last error.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::model::{SourceHealth, SourceStatus};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::format;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

#[derive(Default)]
pub struct SourcesState {
    pub selection: Selection<String>,
}

impl SourcesState {
    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        let names: Vec<String> = ctx.store.sources().map(|s| s.name.clone()).collect();
        if self.selection.navigate(
            action,
            names.len(),
            |i, k| names[i] == *k,
            |i| names[i].clone(),
        ) {
            Effect::None
        } else {
            Effect::Ignored
        }
    }
}

fn state(s: &SourceHealth, ctx: &Context) -> (&'static str, ratatui::style::Style) {
    if ctx.store.is_loading(s) {
        return ("loading", ctx.theme.info);
    }
    if s.waiting.is_some() && s.last_error_at.is_none() {
        return ("waiting", ctx.theme.muted);
    }
    match s.status(ctx.now) {
        SourceStatus::Failing => ("ERROR", ctx.theme.critical),
        SourceStatus::Stale => ("STALE", ctx.theme.warning),
        SourceStatus::Ok => ("ok", ctx.theme.ok),
    }
}

pub fn render(frame: &mut Frame, area: Rect, state_: &SourcesState, ctx: &Context) {
    let t = ctx.theme;
    let sources: Vec<&SourceHealth> = ctx.store.sources().collect();
    let [table_area, detail_area] = area.layout(&Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(4),
    ]));
    let wide = area.width >= 110;
    let rows = sources.iter().map(|s| {
        let (label, style) = state(s, ctx);
        let last_ok = s
            .age_secs(ctx.now)
            .map(|a| format!("{} ago", format::duration(a)))
            .unwrap_or_else(|| "never".into());
        let mut cells =
            vec![
                Cell::from(s.name.clone()),
                Cell::from(label).style(style),
                Cell::from(last_ok).style(t.muted),
                Cell::from(Line::from(s.calls.to_string()).right_aligned()),
                Cell::from(Line::from(s.throttles.to_string()).right_aligned())
                    .style(if s.throttles > 0 { t.warning } else { t.text }),
                Cell::from(Line::from(s.errors.to_string()).right_aligned())
                    .style(if s.errors > 0 { t.critical } else { t.text }),
                Cell::from(
                    Line::from(
                        s.cost_usd_per_hour
                            .map(|c| format!("${c:.4}"))
                            .unwrap_or_else(|| "-".into()),
                    )
                    .right_aligned(),
                ),
            ];
        if wide {
            cells.push(Cell::from(s.last_error.clone().unwrap_or_default()).style(t.critical));
        }
        Row::new(cells)
    });
    let mut widths = vec![
        Constraint::Length(32),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(9),
    ];
    let mut header = vec![
        "SOURCE",
        "STATE",
        "LAST OK",
        "CALLS",
        "THROTTLES",
        "ERRORS",
        "COST/h",
    ];
    if wide {
        widths.push(Constraint::Min(20));
        header.push("LAST ERROR");
    }
    let costs: Vec<f64> = sources.iter().filter_map(|s| s.cost_usd_per_hour).collect();
    let cost = if costs.is_empty() {
        "no billed API calls".to_string()
    } else {
        format!("API cost about ${:.4}/h", costs.iter().sum::<f64>())
    };
    let title = format!(" sources ({}) · {cost} ", sources.len());
    let selected = state_
        .selection
        .position(sources.len(), |i, k| sources[i].name == *k);
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title))
        .column_spacing(1)
        .row_highlight_style(t.selection)
        .block(ctx.block(title, None));
    state_
        .selection
        .draw_table(frame, table, table_area, selected, 3);

    let mut detail = Vec::new();
    if let Some(s) = selected.map(|i| sources[i]) {
        detail.push(Line::from(vec![
            Span::styled(format!("{} ", s.name), t.title),
            Span::styled(
                format!(
                    "polls every {}",
                    format::duration(s.poll_interval_secs as i64)
                ),
                t.muted,
            ),
            Span::styled(
                format!(
                    "; stale after {}",
                    format::duration(3 * s.poll_interval_secs as i64)
                ),
                t.muted,
            ),
        ]));
        match (&s.last_error, s.last_error_at) {
            (Some(e), Some(at)) => detail.push(Line::from(vec![
                Span::styled(
                    format!(
                        "last error {} ago: ",
                        format::duration((ctx.now - at).num_seconds())
                    ),
                    t.muted,
                ),
                Span::styled(e.clone(), t.critical),
            ])),
            (Some(e), None) => detail.push(Line::from(Span::styled(e.clone(), t.critical))),
            _ => detail.push(Line::from(Span::styled("no errors", t.ok))),
        }
    } else {
        detail.push(Line::from(Span::styled("no sources yet", t.muted)));
    }
    frame.render_widget(
        Paragraph::new(detail).wrap(Wrap { trim: true }),
        detail_area,
    );
}
