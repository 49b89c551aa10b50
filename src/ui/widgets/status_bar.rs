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

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use super::*;
    use crate::actions::Mode;
    use crate::model::Store;
    use crate::runbook::RunbookSet;
    use crate::ui::Glyphs;
    use crate::ui::keymap::ViewId;
    use crate::ui::theme::Theme;

    fn draw(ui: &UiState, mode: Mode, width: u16) -> Buffer {
        let (store, theme, glyphs, runbooks) = (
            Store::new(),
            Theme::load("mono", None).expect("mono"),
            Glyphs::ascii(),
            RunbookSet::default(),
        );
        let ctx = Context {
            store: &store,
            theme: &theme,
            glyphs: &glyphs,
            now: chrono::DateTime::from_timestamp(0, 0).expect("epoch"),
            mode,
            runbooks: &runbooks,
            demo: true,
        };
        let mut terminal = Terminal::new(TestBackend::new(width, 1)).expect("terminal");
        terminal
            .draw(|f| render(f, f.area(), ui, &ctx))
            .expect("draw");
        terminal.backend().buffer().clone()
    }

    fn text(buf: &Buffer) -> String {
        buf.content()
            .iter()
            .map(|c| c.symbol())
            .collect::<String>()
            .trim_end()
            .to_string()
    }

    #[test]
    fn hints_come_from_the_keymap_and_hide_writes_from_viewers() {
        let ui = UiState {
            stack: vec![ViewId::Rollouts],
            ..UiState::default()
        };
        assert_eq!(
            text(&draw(&ui, Mode::Operator, 80)),
            "<enter>expand <p>pause <r>resume <?>help <:>cmd <q>quit"
        );
        assert_eq!(
            text(&draw(&ui, Mode::Viewer, 80)),
            "<enter>expand <?>help <:>cmd <q>quit"
        );
    }

    #[test]
    fn typing_shows_on_the_bottom_line() {
        let mut ui = UiState {
            input: Some(Input::Command("cluster prod".into())),
            ..UiState::default()
        };
        let expected = Buffer::with_lines([":cluster prod_                          "]);
        let buf = draw(&ui, Mode::Operator, 40);
        assert_eq!(text(&buf), text(&expected));
        ui.input = Some(Input::Filter("env:prod".into()));
        assert!(text(&draw(&ui, Mode::Operator, 80)).starts_with("/env:prod_"));
    }
}
