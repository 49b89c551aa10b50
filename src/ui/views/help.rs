//! Help: generated from the keymap, showing only the keys usable here in this mode.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::actions::Mode;
use crate::ui::keymap::{self, KeyAction, Scope, ViewId};
use crate::ui::widgets::scroll::Scroll;
use crate::ui::{Context, Effect};

#[derive(Default)]
pub struct HelpState {
    pub scroll: Scroll,
}

impl HelpState {
    pub fn handle(&mut self, action: KeyAction) -> Effect {
        if self.scroll.handle(action) {
            Effect::None
        } else {
            Effect::Ignored
        }
    }
}

/// Help for `view` (the view under the help screen).
pub fn render(frame: &mut Frame, area: Rect, state: &HelpState, view: ViewId, ctx: &Context) {
    let t = ctx.theme;
    let bindings = keymap::bindings_for(view, ctx.mode);
    let mut lines = Vec::new();
    let section = |title: String| Line::from(Span::styled(title, t.title));
    let row = |b: &keymap::Binding| {
        let keys = b
            .keys
            .iter()
            .map(|k| k.label())
            .collect::<Vec<_>>()
            .join(" ");
        Line::from(vec![
            Span::styled(format!("  {keys:<16}"), t.accent),
            Span::styled(b.help, t.text),
        ])
    };
    if ctx.mode == Mode::Viewer {
        lines.push(Line::from(Span::styled(
            "VIEWER mode: read-only. Keys that change anything are not available.",
            t.badge_viewer,
        )));
        lines.push(Line::default());
    }
    let own: Vec<_> = bindings
        .iter()
        .filter(|b| b.scope != Scope::Global)
        .collect();
    if !own.is_empty() {
        lines.push(section(format!("{} view", view.title())));
        lines.extend(own.iter().map(|b| row(b)));
        lines.push(Line::default());
    }
    lines.push(section("everywhere".into()));
    lines.extend(
        bindings
            .iter()
            .filter(|b| b.scope == Scope::Global)
            .map(|b| row(b)),
    );
    lines.push(Line::default());
    lines.push(section("filter syntax (fleet)".into()));
    lines.push(Line::from(Span::styled(
        "  words must all match; field:value matches one field: env:prod region:eu- version:1.29 status:failed wave:staging team:payments",
        t.text,
    )));
    lines.push(Line::default());
    let lines_len = lines.len();
    frame.render_widget(
        Paragraph::new(lines)
            .block(ctx.block(format!(" help · {} ", view.title()), None))
            .wrap(Wrap { trim: false })
            .scroll((state.scroll.at(lines_len, area.height.saturating_sub(2)), 0)),
        area,
    );
}
