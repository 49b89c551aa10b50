//! The bottom line: what is being typed, a message, or the keys of this view.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use crate::ui::keymap;
use crate::ui::{Context, Input, UiState};

pub fn render(frame: &mut Frame, area: Rect, ui: &UiState, ctx: &Context) {
    let t = ctx.theme;
    let line = match (&ui.input, &ui.flash) {
        (Some(Input::Command(text)), _) => Line::from(vec![
            Span::styled(":", t.accent),
            Span::styled(text.clone(), t.text),
            Span::styled("_", t.accent),
        ]),
        (Some(Input::Filter(text)), _) => Line::from(vec![
            Span::styled("/", t.accent),
            Span::styled(text.clone(), t.text),
            Span::styled("_", t.accent),
            Span::styled(
                "  enter keep · esc clear · env:prod region:eu- version:1.29",
                t.muted,
            ),
        ]),
        (None, Some(flash)) => Line::from(Span::styled(
            flash.text.clone(),
            if flash.error { t.critical } else { t.accent },
        )),
        (None, None) => {
            let mut spans = Vec::new();
            for (key, what) in keymap::hints(ui.active(), ctx.mode) {
                spans.push(Span::styled(format!("<{key}>"), t.accent));
                spans.push(Span::styled(format!("{what} "), t.muted));
            }
            Line::from(spans)
        }
    };
    frame.render_widget(Paragraph::new(line).style(t.bar), area);
}
