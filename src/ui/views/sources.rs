//! Sources: every source's health, what it has cost in API calls, how fast it may call AWS
//! now, and its last error.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

use crate::model::{AccountCounts, Pace, SourceHealth, SourceStatus};
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

/// The rate column follows THROTTLES.
const RATE_AT: usize = 5;

/// The rate a source may call AWS at now, and its ceiling.
fn rate(p: &Pace) -> String {
    format!("{:.1}/s of {}/s", p.per_second, p.ceiling)
}

/// What an organization listing found: `40 accounts discovered, 38 included, 1 failing`.
fn accounts(a: &AccountCounts) -> String {
    format!(
        "{} account{} discovered, {} included, {} failing",
        a.discovered,
        if a.discovered == 1 { "" } else { "s" },
        a.included,
        a.failing
    )
}

/// The detail pane's word on the pace: what it is, and what throttling did to it.
fn pace_line(p: &Pace, ctx: &Context) -> Line<'static> {
    let t = ctx.theme;
    let mut spans = vec![Span::styled(format!("rate {}", rate(p)), t.text)];
    let ago = p
        .cut_at
        .map(|at| format::duration((ctx.now - at).num_seconds()));
    match ago {
        None => spans.push(Span::styled(
            " (the ceiling, [aws] max_requests_per_second); never throttled",
            t.muted,
        )),
        Some(ago) if p.is_cut() => spans.push(Span::styled(
            format!(
                ": halved by throttling {ago} ago ({} cut(s)), climbing back to {}/s",
                p.cuts, p.ceiling
            ),
            t.warning,
        )),
        Some(ago) => spans.push(Span::styled(
            format!(
                "; throttling last cut it {ago} ago ({} cut(s)), back at the ceiling",
                p.cuts
            ),
            t.muted,
        )),
    }
    Line::from(spans)
}

pub fn render(frame: &mut Frame, area: Rect, state_: &SourcesState, ctx: &Context) {
    let t = ctx.theme;
    let sources: Vec<&SourceHealth> = ctx.store.sources().collect();
    let [table_area, detail_area] = area.layout(&Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(4),
    ]));
    let wide = area.width >= 110;
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
    // The rate column, for the AWS sources, only where it fits beside the others: squeezed,
    // `10.0/s of 10/s` would lose its first digit. Narrower, the selected source's rate is
    // in the detail below.
    let rates: Vec<Option<String>> = sources.iter().map(|s| s.pace.as_ref().map(rate)).collect();
    let rate_width = rates
        .iter()
        .flatten()
        .map(|r| r.chars().count())
        .max()
        .map(|w| w.max("RATE".len()) as u16);
    let used = widths
        .iter()
        .map(|c| match c {
            Constraint::Length(n) | Constraint::Min(n) => n + 1,
            _ => 1,
        })
        .sum::<u16>()
        + 1; // the borders, less the spacing after the last column
    // The column and the space before it.
    let rate_column = rate_width.filter(|w| area.width.saturating_sub(used) > *w);
    if let Some(w) = rate_column {
        widths.insert(RATE_AT, Constraint::Length(w));
        header.insert(RATE_AT, "RATE");
    }
    let rows = sources.iter().zip(&rates).map(|(s, rate)| {
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
        if rate_column.is_some() {
            let cell = match (&s.pace, rate) {
                (Some(p), Some(r)) => Cell::from(Line::from(r.clone()).right_aligned())
                    .style(if p.is_cut() { t.warning } else { t.text }),
                _ => Cell::from(Line::from("-").right_aligned()).style(t.muted),
            };
            cells.insert(RATE_AT, cell);
        }
        if wide {
            cells.push(Cell::from(s.last_error.clone().unwrap_or_default()).style(t.critical));
        }
        Row::new(cells)
    });
    let costs: Vec<f64> = sources.iter().filter_map(|s| s.cost_usd_per_hour).collect();
    let cost = if costs.is_empty() {
        "no billed API calls".to_string()
    } else {
        format!("API cost about ${:.4}/h", costs.iter().sum::<f64>())
    };
    // An organization's accounts at a glance, in the title, whichever row is selected.
    let org: Vec<String> = sources
        .iter()
        .filter_map(|s| s.accounts.as_ref())
        .map(accounts)
        .collect();
    let title = if org.is_empty() {
        format!(" sources ({}) · {cost} ", sources.len())
    } else {
        format!(
            " sources ({}) · {} · {cost} ",
            sources.len(),
            org.join("; ")
        )
    };
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
        if let Some(p) = &s.pace {
            detail.push(pace_line(p, ctx));
        }
        if let Some(ms) = s.lag_ms {
            detail.push(Line::from(Span::styled(
                format!(
                    "the server's picture, {} behind it (its last frame's delay)",
                    format::millis(ms)
                ),
                t.text,
            )));
        }
        if let Some(a) = &s.accounts {
            detail.push(Line::from(Span::styled(
                if a.failing > 0 {
                    format!("{} (see the account:NAME rows)", accounts(a))
                } else {
                    accounts(a)
                },
                if a.failing > 0 { t.warning } else { t.text },
            )));
        }
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

#[cfg(test)]
mod tests {
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;
    use ratatui::buffer::Buffer;

    use super::*;
    use crate::actions::Mode;
    use crate::model::{SourceEvent, Store, Timestamp};
    use crate::runbook::RunbookSet;
    use crate::ui::Glyphs;
    use crate::ui::theme::Theme;

    fn now() -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time")
    }

    fn aws(name: &str, pace: Pace) -> SourceHealth {
        let mut h = SourceHealth::new(name, 60);
        h.last_ok = Some(now());
        h.calls = 1200;
        h.throttles = 3;
        h.pace = Some(pace);
        h
    }

    /// The view at `width` x 20 with the sources of `healths`, `selected` selected.
    fn draw(healths: Vec<SourceHealth>, selected: &str, width: u16) -> (Buffer, Theme) {
        let mut store = Store::new();
        for h in healths {
            store.apply(SourceEvent::Health(h), now());
        }
        let (theme, glyphs, runbooks) = (
            Theme::load("default", None).expect("default theme"),
            Glyphs::ascii(),
            RunbookSet::default(),
        );
        let ctx = Context {
            store: &store,
            theme: &theme,
            glyphs: &glyphs,
            now: now(),
            mode: Mode::Operator,
            runbooks: &runbooks,
            demo: false,
        };
        let mut state = SourcesState::default();
        state.selection.select(selected.to_string());
        let mut terminal = Terminal::new(TestBackend::new(width, 20)).expect("terminal");
        terminal
            .draw(|f| render(f, f.area(), &state, &ctx))
            .expect("draw");
        (terminal.backend().buffer().clone(), theme)
    }

    fn lines(buf: &Buffer) -> Vec<String> {
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol())
                    .collect::<String>()
                    .trim_end()
                    .to_string()
            })
            .collect()
    }

    /// The style of the first cell of `text` on the row that holds it.
    fn style_of(buf: &Buffer, text: &str) -> ratatui::style::Style {
        let rows = lines(buf);
        let (y, line) = rows
            .iter()
            .enumerate()
            .find(|(_, l)| l.contains(text))
            .unwrap_or_else(|| panic!("{text} not on screen:\n{}", rows.join("\n")));
        let x = line[..line.find(text).unwrap_or(0)].chars().count();
        buf[(x as u16, y as u16)].style()
    }

    #[test]
    fn aws_sources_show_their_rate_and_that_throttling_cut_it() {
        let cut = Pace {
            per_second: 4.0,
            ceiling: 10.0,
            cut_at: Some(now() - chrono::TimeDelta::seconds(12)),
            cuts: 3,
        };
        let full = Pace {
            per_second: 10.0,
            ceiling: 10.0,
            cut_at: None,
            cuts: 0,
        };
        let healths = vec![
            aws("cloudwatch:prod/us-east-1", cut),
            aws("eks:prod/us-east-1", cut),
            aws("eks:staging/eu-west-1", full),
            SourceHealth::new("alertmanager:amp-prod", 60),
        ];
        // The other columns take 88; the rate, 14 and a space. From 110 the last error takes
        // 21 more, first.
        for width in [103, 124, 160] {
            let (buf, theme) = draw(healths.clone(), "eks:prod/us-east-1", width);
            let screen = lines(&buf).join("\n");
            assert!(screen.contains("RATE"), "{screen}");
            let row = |name: &str| {
                lines(&buf)
                    .into_iter()
                    .find(|l| l.contains(name))
                    .unwrap_or_else(|| panic!("{name}:\n{screen}"))
            };
            assert!(
                row("eks:prod/us-east-1").contains("4.0/s of 10/s"),
                "{screen}"
            );
            assert!(
                row("eks:staging/eu-west-1").contains("10.0/s of 10/s"),
                "{screen}"
            );
            assert!(!row("alertmanager").contains("/s of"), "{screen}");
            assert_eq!(style_of(&buf, "4.0/s of 10/s").fg, theme.warning.fg);
            assert_eq!(style_of(&buf, "10.0/s of 10/s").fg, theme.text.fg);
            // The selected source says why its rate is down.
            assert!(
                screen.contains(
                    "rate 4.0/s of 10/s: halved by throttling 12s ago (3 cut(s)), climbing back to 10/s"
                ),
                "{screen}"
            );
        }
        // Narrower, the table has no room for it: the detail says the selected one's.
        for width in [80, 102, 110, 123] {
            let (buf, _) = draw(healths.clone(), "eks:prod/us-east-1", width);
            let screen = lines(&buf).join("\n");
            assert!(!screen.contains("RATE"), "{screen}");
            assert_eq!(screen.contains("LAST ERROR"), width >= 110, "{screen}");
            assert!(
                screen.contains("rate 4.0/s of 10/s: halved by throttling"),
                "{screen}"
            );
        }
        // Without an AWS source (the demo), no column at all.
        let (buf, _) = draw(vec![SourceHealth::new("demo", 60)], "demo", 160);
        assert!(!lines(&buf).join("\n").contains("RATE"));
    }

    #[test]
    fn the_detail_says_a_rate_never_cut_is_the_ceiling_and_one_back_at_it_was_cut() {
        let never = Pace {
            per_second: 10.0,
            ceiling: 10.0,
            cut_at: None,
            cuts: 0,
        };
        let (buf, _) = draw(
            vec![aws("eks:prod/us-east-1", never)],
            "eks:prod/us-east-1",
            160,
        );
        let screen = lines(&buf).join("\n");
        assert!(
            screen.contains(
                "rate 10.0/s of 10/s (the ceiling, [aws] max_requests_per_second); never throttled"
            ),
            "{screen}"
        );
        let back = Pace {
            cut_at: Some(now() - chrono::TimeDelta::minutes(5)),
            cuts: 2,
            ..never
        };
        let (buf, _) = draw(
            vec![aws("eks:prod/us-east-1", back)],
            "eks:prod/us-east-1",
            160,
        );
        let screen = lines(&buf).join("\n");
        assert!(
            screen.contains(
                "rate 10.0/s of 10/s; throttling last cut it 5m ago (2 cut(s)), back at the ceiling"
            ),
            "{screen}"
        );
    }

    #[test]
    fn an_organization_says_how_many_accounts_it_found_included_and_failing() {
        let mut org = SourceHealth::new("organizations", 900);
        org.last_ok = Some(now());
        org.accounts = Some(AccountCounts {
            discovered: 40,
            included: 38,
            failing: 1,
        });
        let mut refused = SourceHealth::new("account:payments", 60);
        refused.last_error = Some("sts:AssumeRole: AccessDenied".into());
        refused.last_error_at = Some(now());
        let healths = vec![org, refused];
        for width in [80, 160] {
            // In the title whichever source is selected; in the detail when it is.
            let (buf, theme) = draw(healths.clone(), "organizations", width);
            let screen = lines(&buf).join("\n");
            assert!(
                lines(&buf)[0].contains("40 accounts discovered, 38 included, 1 failing"),
                "{screen}"
            );
            assert!(
                screen.contains(
                    "40 accounts discovered, 38 included, 1 failing (see the account:NAME rows)"
                ),
                "{screen}"
            );
            assert_eq!(
                style_of(&buf, "40 accounts discovered, 38 included, 1 failing (see").fg,
                theme.warning.fg
            );
            let (buf, _) = draw(healths.clone(), "account:payments", width);
            let screen = lines(&buf).join("\n");
            assert!(
                lines(&buf)[0].contains("40 accounts discovered"),
                "{screen}"
            );
            assert!(screen.contains("sts:AssumeRole: AccessDenied"), "{screen}");
        }
        // Without an organization, the title has no word on accounts.
        let (buf, _) = draw(vec![SourceHealth::new("demo", 60)], "demo", 160);
        assert!(!lines(&buf)[0].contains("accounts"));
    }
}
