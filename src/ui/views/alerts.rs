//! Alerts: every source's alerts in one list, grouped by severity then name.

use std::cell::RefCell;
use std::rc::Rc;

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
    /// The last listing and what it was computed from (presentation memo only).
    listing: RefCell<Option<(ListingInputs, Rc<Listing>)>>,
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
            listing: RefCell::default(),
        }
    }
}

/// What the list shows, computed once per change of the alerts, the filter or the
/// resolved toggle: a frame then costs the rows on screen, not the 50,000 alerts behind
/// them.
struct Listing {
    /// The alerts listed, in display order.
    keys: Vec<AlertKey>,
    /// The list's rows: group titles interleaved with the alerts.
    rows: Vec<ListRow>,
    /// The row each alert of `keys` sits on.
    row_of: Vec<usize>,
    firing: usize,
}

#[derive(Clone, Copy)]
enum ListRow {
    /// A group title: the group's first alert (index into `keys`) and its size.
    Group {
        first: usize,
        count: usize,
    },
    Alert(usize),
}

/// What a listing was computed from.
#[derive(PartialEq)]
struct ListingInputs {
    alerts_generation: u64,
    filter: String,
    show_resolved: bool,
}

impl Listing {
    fn new(ctx: &Context, filter: &str, show_resolved: bool) -> Self {
        let needle = filter.to_lowercase();
        let alerts: Vec<&Alert> = ctx
            .store
            .alerts_sorted()
            .into_iter()
            .filter(|a| show_resolved || a.state != AlertState::Resolved)
            .filter(|a| needle.is_empty() || matches(a, &needle))
            .collect();
        let mut listing = Listing {
            keys: alerts.iter().map(|a| a.key.clone()).collect(),
            rows: Vec::with_capacity(alerts.len() + 32),
            row_of: Vec::with_capacity(alerts.len()),
            firing: alerts.iter().filter(|a| a.is_firing()).count(),
        };
        // Alerts come grouped by (state, severity, name); every resolved alert is one
        // group. A title row opens each group.
        fn group_of(a: &Alert) -> (AlertState, Severity, &str) {
            if a.state == AlertState::Resolved {
                (a.state, Severity::Info, "")
            } else {
                (a.state, a.severity, a.name.as_str())
            }
        }
        let mut i = 0;
        while i < alerts.len() {
            let group = group_of(alerts[i]);
            let count = alerts[i..]
                .iter()
                .take_while(|a| group_of(a) == group)
                .count();
            listing.rows.push(ListRow::Group { first: i, count });
            for j in i..i + count {
                listing.row_of.push(listing.rows.len());
                listing.rows.push(ListRow::Alert(j));
            }
            i += count;
        }
        listing
    }
}

/// Whether the alert matches a lowercase filter: name, summary, cluster or severity.
fn matches(a: &Alert, needle: &str) -> bool {
    a.name.to_lowercase().contains(needle)
        || a.summary.to_lowercase().contains(needle)
        || a.cluster
            .as_ref()
            .is_some_and(|c| c.to_string().to_lowercase().contains(needle))
        || a.severity.as_str().contains(needle)
}

impl AlertsState {
    /// The listing for what the store holds now, recomputed only when its inputs changed.
    fn listing(&self, ctx: &Context) -> Rc<Listing> {
        let inputs = ListingInputs {
            alerts_generation: ctx.store.alerts_generation(),
            filter: self.filter.clone(),
            show_resolved: self.show_resolved,
        };
        let mut cache = self.listing.borrow_mut();
        match &*cache {
            Some((made_from, listing)) if *made_from == inputs => listing.clone(),
            _ => {
                let listing = Rc::new(Listing::new(ctx, &self.filter, self.show_resolved));
                *cache = Some((inputs, listing.clone()));
                listing
            }
        }
    }

    /// The selected alert's position in the listing, if any.
    fn position(&self, listing: &Listing) -> Option<usize> {
        self.selection
            .position(listing.keys.len(), |i, k| listing.keys[i] == *k)
    }

    /// The selected alert, if any.
    pub fn selected<'a>(&self, ctx: &Context<'a>) -> Option<&'a Alert> {
        let listing = self.listing(ctx);
        let i = self.position(&listing)?;
        ctx.store.alert(&listing.keys[i])
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
        let listing = self.listing(ctx);
        if self.selection.navigate(
            action,
            listing.keys.len(),
            |i, k| listing.keys[i] == *k,
            |i| listing.keys[i].clone(),
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
    let listing = state.listing(ctx);
    let wide = area.width >= 120;
    let selected_alert = state.position(&listing);
    let selected = selected_alert.and_then(|i| ctx.store.alert(&listing.keys[i]));

    let filter = if state.filter.is_empty() {
        String::new()
    } else {
        format!(" · filter: {}", state.filter)
    };
    let title = format!(
        " alerts ({} firing, {} listed){filter} ",
        listing.firing,
        listing.keys.len()
    );
    let env = selected
        .and_then(|a| a.cluster.as_ref())
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

    // Only the rows on screen are built.
    let selected_row = selected_alert.map(|i| listing.row_of[i]);
    let window = state
        .selection
        .window(listing.rows.len(), selected_row, usize::from(body.height));
    let alert_at = |i: usize| ctx.store.alert(&listing.keys[i]);
    let items: Vec<ListItem> = listing.rows[window.clone()]
        .iter()
        .filter_map(|row| match *row {
            ListRow::Group { first, count } => alert_at(first).map(|a| group_line(a, count, ctx)),
            ListRow::Alert(i) => alert_at(i).map(|a| alert_line(a, ctx, wide)),
        })
        .map(ListItem::new)
        .collect();
    let list = List::new(items).highlight_style(t.selection);
    state
        .selection
        .draw_window_list(frame, list, body, &window, selected_row);
    if listing.keys.is_empty() {
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

fn group_line(a: &Alert, count: usize, ctx: &Context) -> Line<'static> {
    let t = ctx.theme;
    if a.state == AlertState::Resolved {
        return Line::from(Span::styled(
            format!("RESOLVED in the last hour ({count})"),
            t.muted,
        ));
    }
    let sev = ctx.severity_style(a.severity);
    let unknown = if ctx.store.is_cached_alert(&a.key) {
        " (cached: not yet read again)"
    } else if a.state == AlertState::Unknown {
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
    let base = if a.state == AlertState::Resolved
        || a.is_acked(ctx.now)
        || ctx.store.is_cached_alert(&a.key)
    {
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
