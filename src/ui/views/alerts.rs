//! Alerts: every source's alerts in one list, grouped by severity then name.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, Paragraph};

use crate::model::{Alert, AlertKey, AlertState, Severity};
use crate::ui::keymap::KeyAction;
use crate::ui::views::alert_runbook::{self, RunbookPane, StepRuns};
use crate::ui::widgets::columns::{self, Column};
use crate::ui::widgets::format;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

pub struct AlertsState {
    pub selection: Selection<AlertKey>,
    pub filter: String,
    pub show_resolved: bool,
    /// The runbook pane beside the selected alert (`enter`), if open.
    pub pane: Option<RunbookPane>,
    /// Runbook steps run (or tried) in this session.
    pub steps: StepRuns,
    /// The config allows shell steps; otherwise the pane says they cannot run.
    pub allow_shell: bool,
    /// How long `a` acks for (`[alerts] ack_minutes`).
    pub ack_minutes: u64,
}

impl Default for AlertsState {
    fn default() -> Self {
        Self {
            selection: Selection::new(),
            filter: String::new(),
            show_resolved: true,
            pane: None,
            steps: StepRuns::default(),
            allow_shell: false,
            ack_minutes: crate::config::AlertSettings::DEFAULT_ACK_MINUTES,
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

    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        if let Some(pane) = self.pane.as_mut() {
            return match pane.handle(action, ctx) {
                Effect::Ignored if action == KeyAction::Back => {
                    self.pane = None;
                    Effect::None
                }
                effect => effect,
            };
        }
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
            KeyAction::Enter => match self.selected(ctx) {
                Some(alert) => {
                    self.pane = Some(RunbookPane::new(alert.key.clone()));
                    Effect::None
                }
                None => Effect::None,
            },
            KeyAction::OpenCluster => match self.selected(ctx).and_then(|a| a.cluster.clone()) {
                // An Alertmanager label can name a cluster no AWS source lists.
                Some(cluster) if ctx.store.cluster(&cluster).is_none() => Effect::Flash(format!(
                    "cluster {} is not in the fleet: no [[accounts]] entry lists it",
                    cluster.name
                )),
                Some(cluster) => Effect::OpenCluster(cluster),
                None => Effect::Flash("this alert is not tied to a cluster".into()),
            },
            KeyAction::RunStep => {
                Effect::Flash("enter opens the alert's runbook; x runs its selected step".into())
            }
            KeyAction::CopyLink => match self.selected(ctx).and_then(|a| a.runbook_url.clone()) {
                Some(url) => Effect::Copy(url),
                None => Effect::Flash("this alert has no runbook_url".into()),
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
            KeyAction::AckAlert => match self.selected(ctx) {
                Some(alert) => super::alert_ack::ack_effect(alert, self.ack_minutes, ctx),
                None => Effect::None,
            },
            KeyAction::UnackAlert => match self.selected(ctx) {
                Some(alert) => super::alert_ack::unack_effect(alert, ctx),
                None => Effect::None,
            },
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

pub fn render(frame: &mut Frame, area: Rect, state: &AlertsState, ctx: &Context) {
    let Some(pane) = &state.pane else {
        return render_list(frame, area, state, ctx);
    };
    if area.width >= 120 {
        let [list, side] = area.layout(&Layout::horizontal([
            Constraint::Percentage(45),
            Constraint::Percentage(55),
        ]));
        render_list(frame, list, state, ctx);
        alert_runbook::render(frame, side, pane, state, ctx);
    } else {
        alert_runbook::render(frame, area, pane, state, ctx);
    }
}

fn render_list(frame: &mut Frame, area: Rect, state: &AlertsState, ctx: &Context) {
    let t = ctx.theme;
    let alerts = state.alerts(ctx);
    let wide = area.width >= 120;
    let selected_alert = state
        .selection
        .position(alerts.len(), |i, k| alerts[i].key == *k);

    // Group rows are interleaved; remember which list row each alert landed on.
    let mut items: Vec<ListItem> = Vec::new();
    let mut selected_row = None;
    let mut group: Option<(AlertState, Severity, &str)> = None;
    for (i, a) in alerts.iter().enumerate() {
        let key = (a.state, a.severity, a.name.as_str());
        let resolved = a.state == AlertState::Resolved;
        let new_group = if resolved {
            group.is_none_or(|g| g.0 != AlertState::Resolved)
        } else {
            group != Some(key)
        };
        if new_group {
            items.push(ListItem::new(group_line(a, &alerts, ctx)));
        }
        group = Some(key);
        if Some(i) == selected_alert {
            selected_row = Some(items.len());
        }
        items.push(ListItem::new(alert_line(a, ctx, wide)));
    }

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
    let env = selected_alert
        .and_then(|i| alerts[i].cluster.as_ref())
        .and_then(|c| ctx.store.cluster(c))
        .map(|c| &c.environment);
    let block = ctx.block(title, env);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [head, body] = inner.layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
    ]));
    frame.render_widget(Paragraph::new(header_line(ctx, wide)), head);

    let list = List::new(items).highlight_style(t.selection);
    state.selection.draw_list(frame, list, body, selected_row);
    if alerts.is_empty() {
        let msg = if state.filter.is_empty() {
            "no alerts: the fleet is quiet"
        } else {
            "no alert matches the filter (esc clears it)"
        };
        frame.render_widget(Line::from(Span::styled(msg, t.muted)), body);
    }
}

const CLUSTER_W: usize = 22;
const AGE_W: usize = 6;
const ACK_W: usize = 10;
const PLACE_W: usize = 28;
const SOURCE_W: usize = 12;

fn header_line(ctx: &Context, wide: bool) -> Line<'static> {
    let s = ctx.theme.title;
    let mut cols = vec![Column::left("  CLUSTER", CLUSTER_W + 2, s)];
    if wide {
        cols.push(Column::left("ACCOUNT/REGION", PLACE_W, s));
        cols.push(Column::left("SOURCE", SOURCE_W, s));
    }
    cols.extend([
        Column::right("AGE", AGE_W, s),
        Column::left("ACK", ACK_W, s),
        Column::left("R", 1, s),
        Column::rest("SUMMARY", s),
    ]);
    columns::line(cols, ctx.glyphs)
}

fn group_line(a: &Alert, alerts: &[&Alert], ctx: &Context) -> Line<'static> {
    let t = ctx.theme;
    if a.state == AlertState::Resolved {
        let n = alerts
            .iter()
            .filter(|b| b.state == AlertState::Resolved)
            .count();
        return Line::from(Span::styled(
            format!("RESOLVED in the last hour ({n})"),
            t.muted,
        ));
    }
    let count = alerts
        .iter()
        .filter(|b| (b.state, b.severity, &b.name) == (a.state, a.severity, &a.name))
        .count();
    let sev = match a.severity {
        Severity::Critical => t.critical,
        Severity::Warning => t.warning,
        Severity::Info => t.info,
    };
    let unknown = if a.state == AlertState::Unknown {
        " (insufficient data)"
    } else {
        ""
    };
    Line::from(vec![
        Span::styled(format!("{} ", a.severity.as_str().to_uppercase()), sev),
        Span::styled(format!("{}{unknown}", a.name), t.title),
        Span::styled(format!(" ({count})"), t.muted),
    ])
}

fn alert_line(a: &Alert, ctx: &Context, wide: bool) -> Line<'static> {
    let t = ctx.theme;
    // Resolved, acked, silenced and inhibited alerts are dimmed: nobody needs to act.
    let base = if a.state == AlertState::Resolved || a.is_acked(ctx.now) {
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
    let since = if a.state == AlertState::Resolved {
        a.last_change
    } else {
        a.first_seen
    };
    let mut cols = vec![Column::left(format!("  {cluster}"), CLUSTER_W + 2, base)];
    if wide {
        let place = a
            .cluster
            .as_ref()
            .map(|c| format!("{}/{}", c.account, c.region))
            .unwrap_or_default();
        cols.push(Column::left(place, PLACE_W, t.muted));
        cols.push(Column::left(a.source.as_str(), SOURCE_W, t.muted));
    }
    cols.extend([
        Column::right(format::age(ctx.now, since), AGE_W, t.muted),
        Column::left(ack, ACK_W, t.muted),
        Column::left(ctx.runbook_marker(a), 1, t.accent),
        Column::rest(super::alert_ack::summary_with_note(a, ctx), base),
    ]);
    columns::line(cols, ctx.glyphs)
}
