//! The header on every view: fleet summary, mode badge, source freshness, view tabs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::format;
use crate::actions::Mode;
use crate::ui::Context;
use crate::ui::keymap::ViewId;

pub fn render(frame: &mut Frame, area: Rect, active: ViewId, ctx: &Context) {
    let [top, tabs] = area.layout(&Layout::vertical([Constraint::Length(1); 2]));
    frame.render_widget(Paragraph::new(summary_line(ctx)).style(ctx.theme.bar), top);
    let right = sources_line(ctx, tabs.width);
    let [left_area, right_area] = tabs.layout(&Layout::horizontal([
        Constraint::Min(0),
        Constraint::Length(right.width() as u16),
    ]));
    frame.render_widget(
        Paragraph::new(tabs_line(active, ctx)).style(ctx.theme.bar),
        left_area,
    );
    frame.render_widget(Paragraph::new(right).style(ctx.theme.bar), right_area);
}

fn summary_line(ctx: &Context) -> Line<'static> {
    let t = ctx.theme;
    let s = ctx.store.summary();
    let sep = || Span::styled(format!(" {} ", ctx.glyphs.separator), t.muted);
    let badge = match ctx.mode {
        Mode::Operator => t.badge_operator,
        Mode::Viewer => t.badge_viewer,
    };
    let mut spans = vec![
        Span::styled(format!(" {} ", ctx.mode.badge()), badge),
        Span::raw(" "),
    ];
    spans.push(Span::styled(format!("{} clusters ", s.clusters), t.text));
    spans.push(Span::styled(format!("{} ok", s.healthy), t.ok));
    if s.warning > 0 {
        spans.push(Span::styled(format!(" {} warn", s.warning), t.warning));
    }
    if s.critical > 0 {
        spans.push(Span::styled(format!(" {} crit", s.critical), t.critical));
    }
    if s.unknown > 0 {
        spans.push(Span::styled(format!(" {} unknown", s.unknown), t.unknown));
    }
    spans.push(sep());
    spans.push(Span::styled("alerts ", t.text));
    if s.firing_critical + s.firing_warning + s.firing_info == 0 {
        spans.push(Span::styled("none firing", t.ok));
    } else {
        spans.push(Span::styled(
            format!("{} crit", s.firing_critical),
            t.critical,
        ));
        spans.push(Span::styled(
            format!(" {} warn", s.firing_warning),
            t.warning,
        ));
        if s.firing_info > 0 {
            spans.push(Span::styled(format!(" {} info", s.firing_info), t.info));
        }
    }
    if let Some(p) = s.rollout_percent {
        spans.push(sep());
        spans.push(Span::styled(format!("rollout {p:.0}%"), t.text));
        if ctx
            .store
            .rollouts()
            .iter()
            .any(|r| r.waves.iter().any(|w| w.state.is_held()))
        {
            spans.push(Span::styled(" HELD", t.warning));
        }
    }
    Line::from(spans)
}

fn tabs_line(active: ViewId, ctx: &Context) -> Line<'static> {
    let t = ctx.theme;
    let mut spans = vec![Span::raw(" ")];
    for (i, view) in ViewId::MAIN.iter().enumerate() {
        let style = if *view == active {
            t.selection
        } else {
            t.muted
        };
        spans.push(Span::styled(format!("{} {}", i + 1, view.title()), style));
        spans.push(Span::raw("  "));
    }
    if !ViewId::MAIN.contains(&active) {
        spans.push(Span::styled(format!("› {}", active.title()), t.selection));
        spans.push(Span::raw("  "));
    }
    Line::from(spans)
}

/// Source freshness and the clock, right-aligned on the tabs line.
fn sources_line(ctx: &Context, width: u16) -> Line<'static> {
    let t = ctx.theme;
    let mut spans = Vec::new();
    for source in ctx.store.sources() {
        let name = if ctx.demo && source.name == "demo" {
            "DEMO".to_string()
        } else {
            source.name.clone()
        };
        let name_style = if ctx.demo { t.accent } else { t.muted };
        let age = source
            .age_secs(ctx.now)
            .map(format::duration)
            .unwrap_or_else(|| "never".into());
        spans.push(Span::styled(name, name_style));
        if source.is_stale(ctx.now) {
            spans.push(Span::styled(format!(" stale {age}"), t.warning));
        } else if !source.is_healthy(ctx.now) {
            spans.push(Span::styled(" error", t.critical));
        } else {
            spans.push(Span::styled(format!(" {age}"), t.muted));
        }
        spans.push(Span::styled(format!(" {} ", ctx.glyphs.separator), t.muted));
    }
    let clock = if width >= 100 {
        "%Y-%m-%d %H:%M:%S UTC "
    } else {
        "%H:%M:%SZ "
    };
    spans.push(Span::styled(ctx.now.format(clock).to_string(), t.muted));
    Line::from(spans)
}
