//! The header on every view: fleet summary, mode badge, source freshness, view tabs.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::format;
use crate::actions::Mode;
use crate::model::{SourceStatus, WaveState};
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
        Paragraph::new(tabs_line(active, ctx, left_area.width)).style(ctx.theme.bar),
        left_area,
    );
    frame.render_widget(Paragraph::new(right).style(ctx.theme.bar), right_area);
}

fn summary_line(ctx: &Context) -> Line<'static> {
    let t = ctx.theme;
    let s = ctx.store.summary(ctx.now);
    let (alerts_down, alert_sources) = ctx.store.alert_sources_down(ctx.now);
    let sep = || Span::styled(format!(" {} ", ctx.glyphs.separator), t.muted);
    let badge = match ctx.mode {
        Mode::Operator => t.badge_operator,
        Mode::Viewer => t.badge_viewer,
    };
    let mut spans = vec![
        Span::styled(format!(" {} ", ctx.mode.badge()), badge),
        Span::raw(" "),
    ];
    // Connected to a server (`--connect`): from where, and how well.
    if let Some(feed) = ctx.store.sources().find(|s| s.name.starts_with("feed:")) {
        let host = feed.name.trim_start_matches("feed:");
        let (text, style) = match feed.status(ctx.now) {
            SourceStatus::Ok => (
                match feed.lag_ms {
                    Some(ms) => format!("via {host} {}", format::millis(ms)),
                    None => format!("via {host}"),
                },
                t.muted,
            ),
            SourceStatus::Stale | SourceStatus::Failing => (
                match feed.last_ok {
                    Some(ok) => format!(
                        "via {host} LOST {} ago, reconnecting",
                        format::age(ctx.now, ok)
                    ),
                    None => format!("via {host} not connected"),
                },
                t.critical,
            ),
        };
        spans.push(Span::styled(text, style));
        spans.push(sep());
    }
    // A stopped rollout is the first thing to see, before anything can truncate it: the
    // first held wave by name (halts before pauses), the others as a count.
    let mut held: Vec<(bool, &str)> = ctx
        .store
        .rollouts()
        .iter()
        .flat_map(|r| &r.waves)
        .filter_map(|w| match &w.state {
            WaveState::Halted { .. } => Some((true, w.name.as_str())),
            WaveState::Paused { .. } => Some((false, w.name.as_str())),
            _ => None,
        })
        .collect();
    held.sort_by_key(|(halted, _)| !*halted);
    if let Some((halted, name)) = held.first() {
        let (word, style) = if *halted {
            ("HALTED", t.critical)
        } else {
            ("PAUSED", t.warning)
        };
        spans.push(Span::styled(format!("{word} {name}"), style));
        if held.len() > 1 {
            spans.push(Span::styled(format!(" +{} held", held.len() - 1), style));
        }
        spans.push(sep());
    }
    // The last session's picture, until the sources have refreshed it: say how old.
    if let Some(at) = ctx.store.cached_since() {
        spans.push(Span::styled(
            format!("as of {} ago", format::age(ctx.now, at)),
            t.warning,
        ));
        spans.push(sep());
    }
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
    if alerts_down > 0 {
        // Some alarms can't be read: "none firing" would be a guess.
        spans.push(Span::styled(
            format!("UNKNOWN ({alerts_down}/{alert_sources} sources down) "),
            t.warning,
        ));
    }
    // Alerts remembered from the last session are not known to fire, nor not to.
    let remembered = ctx.store.cached_since().is_some()
        && ctx
            .store
            .alerts()
            .any(|a| ctx.store.is_cached_alert(&a.key));
    if s.firing_critical + s.firing_warning + s.firing_info == 0 {
        if remembered {
            spans.push(Span::styled(
                "unknown (cached, not yet read again)",
                t.warning,
            ));
        } else if alerts_down == 0 {
            spans.push(Span::styled("none firing", t.ok));
        }
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
    }
    Line::from(spans)
}

fn tabs_line(active: ViewId, ctx: &Context, width: u16) -> Line<'static> {
    let t = ctx.theme;
    // Full names when they fit beside the sources; else only the view on screen is named.
    let full: usize = ViewId::MAIN
        .iter()
        .enumerate()
        .map(|(i, v)| format!("{} {}", i + 1, v.title()).len() + 1)
        .sum::<usize>()
        + if ViewId::MAIN.contains(&active) {
            1
        } else {
            active.title().len() + 4
        };
    let narrow = full > usize::from(width);
    let gap = if narrow || width < 110 { " " } else { "  " };
    let mut spans = vec![Span::raw(" ")];
    for (i, view) in ViewId::MAIN.iter().enumerate() {
        // Narrow terminals name only the view on screen; the others are their key.
        let label = if *view == active || !narrow {
            format!("{} {}", i + 1, view.title())
        } else {
            (i + 1).to_string()
        };
        let style = if *view == active {
            t.selection
        } else {
            t.muted
        };
        spans.push(Span::styled(label, style));
        spans.push(Span::raw(gap));
    }
    if !ViewId::MAIN.contains(&active) {
        spans.push(Span::styled(format!("› {}", active.title()), t.selection));
        spans.push(Span::raw(gap));
    }
    Line::from(spans)
}

/// Source freshness and the clock, right-aligned on the tabs line. Sources of one kind
/// (`eks:prod/us-east-1`, `eks:prod/eu-west-1`) are summed up as `eks 5/6 ok`; the Sources
/// view has each one.
fn sources_line(ctx: &Context, width: u16) -> Line<'static> {
    let t = ctx.theme;
    let mut spans = Vec::new();
    let mut kinds: Vec<(String, Vec<&crate::model::SourceHealth>)> = Vec::new();
    for source in ctx.store.sources() {
        let kind = source
            .name
            .split(':')
            .next()
            .unwrap_or(&source.name)
            .to_string();
        match kinds.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, members)) => members.push(source),
            None => kinds.push((kind, vec![source])),
        }
    }
    let sep = || Span::styled(format!(" {} ", ctx.glyphs.separator), t.muted);
    let total: usize = kinds.iter().map(|(_, m)| m.len()).sum();
    if total > 1 && width < 120 {
        // Narrow terminals: one count for all sources; the Sources view (6) has each.
        let all: Vec<&&crate::model::SourceHealth> = kinds.iter().flat_map(|(_, m)| m).collect();
        let loading = all.iter().filter(|s| ctx.store.is_loading(s)).count();
        let count = |want| {
            all.iter()
                .filter(|s| {
                    !ctx.store.is_loading(s) && s.waiting.is_none() && s.status(ctx.now) == want
                })
                .count()
        };
        let (stale, failing) = (count(SourceStatus::Stale), count(SourceStatus::Failing));
        spans.push(Span::styled(
            format!("src {}/{total} ok", total - stale - failing - loading),
            t.muted,
        ));
        if loading > 0 {
            spans.push(Span::styled(format!(" {loading} loading"), t.info));
        }
        if failing > 0 {
            spans.push(Span::styled(format!(" {failing} failing"), t.critical));
        }
        if stale > 0 {
            spans.push(Span::styled(format!(" {stale} stale"), t.warning));
        }
        spans.push(sep());
        kinds.clear();
    }
    for (kind, members) in &kinds {
        if let [source] = members.as_slice() {
            let name = if ctx.demo && source.name == "demo" {
                "DEMO".to_string()
            } else {
                source.name.clone()
            };
            let age = source.age_secs(ctx.now);
            let ago = age.map(format::duration).unwrap_or_else(|| "never".into());
            spans.push(Span::styled(
                name,
                if ctx.demo { t.accent } else { t.muted },
            ));
            match source.status(ctx.now) {
                _ if ctx.store.is_loading(source) => spans.push(Span::styled(" loading", t.info)),
                SourceStatus::Failing => spans.push(Span::styled(" error", t.critical)),
                SourceStatus::Stale => spans.push(Span::styled(format!(" stale {ago}"), t.warning)),
                SourceStatus::Ok if age.is_some_and(|a| a <= source.poll_interval_secs as i64) => {
                    spans.push(Span::styled(" ok", t.ok))
                }
                SourceStatus::Ok => spans.push(Span::styled(format!(" {ago} ago"), t.muted)),
            }
        } else {
            let loading = members.iter().filter(|s| ctx.store.is_loading(s)).count();
            let count = |want| {
                members
                    .iter()
                    .filter(|s| {
                        !ctx.store.is_loading(s) && s.waiting.is_none() && s.status(ctx.now) == want
                    })
                    .count()
            };
            let (stale, failing) = (count(SourceStatus::Stale), count(SourceStatus::Failing));
            let ok = members.len() - stale - failing - loading;
            spans.push(Span::styled(
                format!("{kind} {ok}/{} ok", members.len()),
                t.muted,
            ));
            let throttles: u64 = members.iter().map(|s| s.throttles).sum();
            if throttles > 0 {
                spans.push(Span::styled(format!(" {throttles} throttled"), t.warning));
            }
            if loading > 0 {
                spans.push(Span::styled(format!(" {loading} loading"), t.info));
            }
            if stale > 0 {
                spans.push(Span::styled(format!(" {stale} stale"), t.warning));
            }
            if failing > 0 {
                spans.push(Span::styled(format!(" {failing} failing"), t.critical));
            }
        }
        spans.push(sep());
    }
    // The demo runs on a simulated clock: say so rather than pass it off as UTC.
    let zone = if ctx.demo { "sim" } else { "UTC" };
    let clock = if width >= 100 {
        ctx.now.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        ctx.now.format("%H:%M").to_string()
    };
    spans.push(Span::styled(format!("{clock} {zone} "), t.muted));
    Line::from(spans)
}
