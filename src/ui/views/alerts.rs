//! Alerts: every source's alerts in one list, grouped by severity then name.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use crate::model::{Alert, AlertKey, AlertState, Environment};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::format;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

pub struct AlertsState {
    pub selection: Selection<AlertKey>,
    pub filter: String,
    pub show_resolved: bool,
}

impl Default for AlertsState {
    fn default() -> Self {
        Self {
            selection: Selection::new(),
            filter: String::new(),
            show_resolved: true,
        }
    }
}

impl AlertsState {
    /// The alerts listed, in display order.
    fn alerts<'a>(&self, ctx: &Context<'a>) -> Vec<&'a Alert> {
        let needle = self.filter.to_lowercase();
        ctx.store
            .alerts_sorted()
            .into_iter()
            .filter(|a| self.show_resolved || a.state != AlertState::Resolved)
            .filter(|a| {
                needle.is_empty()
                    || a.name.to_lowercase().contains(&needle)
                    || a.summary.to_lowercase().contains(&needle)
                    || a.cluster
                        .as_ref()
                        .is_some_and(|c| c.to_string().to_lowercase().contains(&needle))
                    || a.severity.as_str().contains(&needle)
            })
            .collect()
    }

    /// The selected alert, if any.
    pub fn selected<'a>(&self, ctx: &Context<'a>) -> Option<&'a Alert> {
        let alerts = self.alerts(ctx);
        let i = self
            .selection
            .position(alerts.len(), |i, k| alerts[i].key == *k)?;
        Some(alerts[i])
    }

    pub fn selected_environment(&self, ctx: &Context) -> Option<Environment> {
        let cluster = self.selected(ctx)?.cluster.as_ref()?;
        ctx.store.cluster(cluster).map(|c| c.environment.clone())
    }

    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        let alerts = self.alerts(ctx);
        if self.selection.navigate(
            action,
            alerts.len(),
            |i, k| alerts[i].key == *k,
            |i| alerts[i].key.clone(),
        ) {
            return Effect::None;
        }
        match action {
            KeyAction::Enter => match self.selected(ctx).and_then(|a| a.cluster.clone()) {
                Some(cluster) => Effect::OpenCluster(cluster),
                None => Effect::Flash("this alert is not tied to a cluster".into()),
            },
            KeyAction::OpenRunbook => match self.selected(ctx) {
                Some(alert) => runbook_effect(alert, ctx),
                None => Effect::None,
            },
            KeyAction::ToggleResolved => {
                self.show_resolved = !self.show_resolved;
                Effect::Flash(
                    if self.show_resolved {
                        "showing resolved alerts"
                    } else {
                        "hiding resolved alerts"
                    }
                    .into(),
                )
            }
            KeyAction::Back if !self.filter.is_empty() => {
                self.filter.clear();
                Effect::None
            }
            _ => Effect::Ignored,
        }
    }
}

/// Opens the first local runbook matching the alert, or says where its link points.
pub fn runbook_effect(alert: &Alert, ctx: &Context) -> Effect {
    match ctx.runbooks.matching(alert).first() {
        Some(rb) => Effect::OpenRunbook(rb.id.clone()),
        None => match &alert.runbook_url {
            Some(url) => Effect::Flash(format!("no local runbook; the alert links to {url}")),
            None => Effect::Flash(format!("no runbook matches {}", alert.name)),
        },
    }
}

pub fn render(
    frame: &mut Frame,
    area: Rect,
    state: &AlertsState,
    ctx: &Context,
    env: Option<&Environment>,
) {
    let t = ctx.theme;
    let alerts = state.alerts(ctx);
    let wide = area.width >= 120;
    let selected_alert = state
        .selection
        .position(alerts.len(), |i, k| alerts[i].key == *k);

    // Group header rows are interleaved; remember which table row each alert landed on.
    let mut rows: Vec<Row> = Vec::new();
    let mut selected_row = None;
    let mut group: Option<(AlertState, crate::model::Severity, &str)> = None;
    for (i, a) in alerts.iter().enumerate() {
        let key = (a.state, a.severity, a.name.as_str());
        if group != Some(key)
            && (a.state != AlertState::Resolved
                || group.is_none_or(|g| g.0 != AlertState::Resolved))
        {
            let count = alerts
                .iter()
                .filter(|b| (b.state, b.severity, b.name.as_str()) == key)
                .count();
            let label = if a.state == AlertState::Resolved {
                Line::from(Span::styled("RESOLVED (last hour)", t.muted))
            } else {
                let sev = match a.severity {
                    crate::model::Severity::Critical => t.critical,
                    crate::model::Severity::Warning => t.warning,
                    crate::model::Severity::Info => t.info,
                };
                let state = if a.state == AlertState::Unknown {
                    " (insufficient data)"
                } else {
                    ""
                };
                Line::from(vec![
                    Span::styled(format!("{} ", a.severity.as_str().to_uppercase()), sev),
                    Span::styled(format!("{}{state}", a.name), t.title),
                    Span::styled(format!(" ({count})"), t.muted),
                ])
            };
            rows.push(Row::new([Cell::from(label)]));
        }
        group = Some(key);
        if Some(i) == selected_alert {
            selected_row = Some(rows.len());
        }
        rows.push(alert_row(a, ctx, wide));
    }

    let mut widths = vec![
        Constraint::Length(22),
        Constraint::Length(6),
        Constraint::Length(10),
        Constraint::Length(1),
    ];
    let mut header = vec!["  CLUSTER", "AGE", "ACK", "R"];
    if wide {
        widths.insert(1, Constraint::Length(30));
        header.insert(1, "ACCOUNT/REGION");
        widths.insert(2, Constraint::Length(12));
        header.insert(2, "SOURCE");
    }
    widths.push(Constraint::Min(20));
    header.push("SUMMARY");

    let firing = alerts.iter().filter(|a| a.is_firing()).count();
    let filter = if state.filter.is_empty() {
        String::new()
    } else {
        format!(" · filter: {}", state.filter)
    };
    let title = format!(
        " alerts ({firing} firing, {} listed){filter} ",
        alerts.len()
    );
    let table = Table::new(rows, widths)
        .header(Row::new(header).style(t.title))
        .column_spacing(1)
        .row_highlight_style(t.selection)
        .block(ctx.block(title, env));
    let mut ts = state.selection.table_state(selected_row);
    frame.render_stateful_widget(table, area, &mut ts);
    state
        .selection
        .remember(&ts, area.height.saturating_sub(3) as usize);
    if alerts.is_empty() {
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        };
        let msg = if state.filter.is_empty() {
            "no alerts: the fleet is quiet"
        } else {
            "no alert matches the filter (esc clears it)"
        };
        frame.render_widget(Line::from(Span::styled(msg, t.muted)), inner);
    }
}

fn alert_row<'a>(a: &Alert, ctx: &Context, wide: bool) -> Row<'a> {
    let t = ctx.theme;
    let base = if a.state == AlertState::Resolved {
        t.muted
    } else {
        t.text
    };
    let cluster = a
        .cluster
        .as_ref()
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "-".into());
    let ack = match &a.ack {
        Some(ack) if a.is_acked(ctx.now) => ack.by.clone(),
        _ => String::new(),
    };
    let has_runbook = !ctx.runbooks.matching(a).is_empty() || a.runbook_url.is_some();
    let mut cells = vec![
        Cell::from(format!("  {cluster}")).style(base),
        Cell::from(format::age(
            ctx.now,
            if a.state == AlertState::Resolved {
                a.last_change
            } else {
                a.first_seen
            },
        ))
        .style(t.muted),
        Cell::from(ack).style(t.accent),
        Cell::from(if has_runbook { ctx.glyphs.runbook } else { "" }).style(t.accent),
    ];
    if wide {
        let place = a
            .cluster
            .as_ref()
            .map(|c| format!("{}/{}", c.account, c.region))
            .unwrap_or_default();
        cells.insert(1, Cell::from(place).style(t.muted));
        cells.insert(2, Cell::from(a.source.as_str()).style(t.muted));
    }
    cells.push(Cell::from(a.summary.clone()).style(base));
    Row::new(cells)
}
