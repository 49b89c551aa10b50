//! Runbooks: the list, and the selected runbook rendered.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::runbook::{Runbook, RunbookError};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::markdown::markdown_text;
use crate::ui::widgets::scroll::Scroll;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

#[derive(Default)]
pub struct RunbooksState {
    pub selection: Selection<String>,
    pub filter: String,
    /// Narrow terminals: the selected runbook fills the view.
    pub open: bool,
    pub scroll: Scroll,
    /// Files that failed to load: listed, never dropped silently.
    pub errors: Vec<RunbookError>,
}

impl RunbooksState {
    fn listed<'a>(&self, ctx: &Context<'a>) -> Vec<&'a Runbook> {
        let needle = self.filter.to_lowercase();
        ctx.runbooks
            .all()
            .iter()
            .filter(|r| {
                needle.is_empty()
                    || r.title.to_lowercase().contains(&needle)
                    || r.id.contains(&needle)
            })
            .collect()
    }

    fn selected<'a>(&self, ctx: &Context<'a>) -> Option<&'a Runbook> {
        let list = self.listed(ctx);
        let i = self
            .selection
            .position(list.len(), |i, k| list[i].id == *k)?;
        Some(list[i])
    }

    /// Shows runbook `id`, open.
    pub fn show(&mut self, id: String) {
        self.selection.select(id);
        self.open = true;
        self.scroll.reset();
    }

    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        if self.open {
            if self.scroll.handle(action) {
                return Effect::None;
            }
            return match action {
                KeyAction::Back => {
                    self.open = false;
                    Effect::None
                }
                _ => Effect::Ignored,
            };
        }
        let list = self.listed(ctx);
        if self.selection.navigate(
            action,
            list.len(),
            |i, k| list[i].id == *k,
            |i| list[i].id.clone(),
        ) {
            self.scroll.reset();
            return Effect::None;
        }
        match action {
            KeyAction::Enter if !list.is_empty() => {
                self.open = true;
                self.scroll.reset();
                Effect::None
            }
            KeyAction::Back if !self.filter.is_empty() => {
                self.filter.clear();
                Effect::None
            }
            _ => Effect::Ignored,
        }
    }
}

pub fn render(frame: &mut Frame, area: Rect, state: &RunbooksState, ctx: &Context) {
    let wide = area.width >= 110;
    if state.open && !wide {
        render_body(frame, area, state, ctx);
        return;
    }
    let (list_area, body_area) = if wide {
        let [l, r] = area.layout(&Layout::horizontal([
            Constraint::Percentage(35),
            Constraint::Percentage(65),
        ]));
        (l, Some(r))
    } else {
        (area, None)
    };
    let t = ctx.theme;
    let list = state.listed(ctx);
    let mut rows: Vec<Row> = state
        .errors
        .iter()
        .map(|e| Row::new([Cell::from(e.to_string()).style(t.critical)]))
        .collect();
    let offset = rows.len();
    rows.extend(list.iter().map(|r| {
        let sev = r.severity.as_str();
        Row::new([Cell::from(Line::from(vec![
            Span::styled(r.title.clone(), t.text),
            Span::styled(format!("  {sev}"), t.muted),
        ]))])
    }));
    let selected = state
        .selection
        .position(list.len(), |i, k| list[i].id == *k)
        .map(|i| i + offset);
    let title = format!(" runbooks ({}) ", list.len());
    let table = Table::new(rows, [Constraint::Min(10)])
        .row_highlight_style(t.selection)
        .block(ctx.block(title, None));
    state
        .selection
        .draw_table(frame, table, list_area, selected, 2);
    if let Some(body) = body_area {
        render_body(frame, body, state, ctx);
    }
}

fn render_body(frame: &mut Frame, area: Rect, state: &RunbooksState, ctx: &Context) {
    let Some(rb) = state.selected(ctx) else {
        frame.render_widget(
            Paragraph::new("no runbook selected").block(ctx.block(" runbook ".into(), None)),
            area,
        );
        return;
    };
    let mut text = markdown_text(&rb.body, ctx.theme, ctx.glyphs.ascii);
    text.lines.insert(
        0,
        Line::from(Span::styled(
            format!("{} · {}", rb.id, rb.origin),
            ctx.theme.muted,
        )),
    );
    let title = format!(" {} ", rb.title);
    let inner_width = usize::from(area.width.saturating_sub(2)).max(1);
    let wrapped: usize = text
        .lines
        .iter()
        .map(|l| l.width().div_ceil(inner_width).max(1))
        .sum();
    let scroll = state.scroll.at(wrapped, area.height.saturating_sub(2));
    frame.render_widget(
        Paragraph::new(text)
            .block(ctx.block(title, None))
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        area,
    );
}
