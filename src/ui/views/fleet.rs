//! Fleet: every cluster in one table, sortable and filterable.

use std::cell::RefCell;
use std::rc::Rc;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use crate::model::{ClusterFilter, ClusterId, ClusterStatus, MetricName, SortKey};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::format;
use crate::ui::widgets::selection::Selection;
use crate::ui::{Context, Effect};

/// Minutes of request rate in the trend column.
const TREND_MINUTES: usize = 30;

pub struct FleetState {
    pub selection: Selection<ClusterId>,
    pub filter: String,
    pub sort: SortKey,
    pub descending: bool,
    /// The last rows and what they were computed from (presentation memo only): moving
    /// the selection over an unchanged fleet does not filter and sort it again.
    rows: RefCell<Option<(RowsInputs, Rc<[usize]>)>>,
}

/// What the rows were computed from.
#[derive(PartialEq)]
struct RowsInputs {
    generation: u64,
    filter: String,
    sort: SortKey,
    descending: bool,
}

impl Default for FleetState {
    fn default() -> Self {
        Self {
            selection: Selection::new(),
            filter: String::new(),
            // Worst first: an on-call engineer opens the console to find trouble.
            sort: SortKey::Alerts,
            descending: true,
            rows: RefCell::default(),
        }
    }
}

impl FleetState {
    /// The clusters listed, in order: recomputed only when the store, the filter or the
    /// sort changed.
    fn rows(&self, ctx: &Context) -> Rc<[usize]> {
        let inputs = RowsInputs {
            generation: ctx.store.generation(),
            filter: self.filter.clone(),
            sort: self.sort,
            descending: self.descending,
        };
        let mut cache = self.rows.borrow_mut();
        match &*cache {
            Some((made_from, rows)) if *made_from == inputs => rows.clone(),
            _ => {
                let rows: Rc<[usize]> = ctx
                    .store
                    .cluster_rows(
                        &ClusterFilter::parse(&self.filter),
                        self.sort,
                        self.descending,
                    )
                    .into();
                *cache = Some((inputs, rows.clone()));
                rows
            }
        }
    }

    fn selected(&self, ctx: &Context, rows: &[usize]) -> Option<usize> {
        let clusters = ctx.store.clusters();
        self.selection
            .position(rows.len(), |i, k| clusters[rows[i]].id == *k)
    }

    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        let rows = self.rows(ctx);
        let clusters = ctx.store.clusters();
        if self.selection.navigate(
            action,
            rows.len(),
            |i, k| clusters[rows[i]].id == *k,
            |i| clusters[rows[i]].id.clone(),
        ) {
            return Effect::None;
        }
        match action {
            KeyAction::Enter => match self.selected(ctx, &rows) {
                Some(i) => Effect::OpenCluster(clusters[rows[i]].id.clone()),
                None => Effect::None,
            },
            KeyAction::SortNext => {
                self.sort = self.sort.next();
                // Text columns read best A-Z; numbers worst first.
                self.descending = !matches!(
                    self.sort,
                    SortKey::Name | SortKey::Account | SortKey::Region | SortKey::Status
                );
                Effect::Flash(format!("sorted by {}", self.sort.label()))
            }
            KeyAction::SortReverse => {
                self.descending = !self.descending;
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

#[derive(Clone, Copy, PartialEq)]
enum Col {
    Name,
    Account,
    Region,
    Env,
    Version,
    Status,
    Wave,
    Alerts,
    Rate,
    Errors,
    P99,
    Etcd,
    Trend,
}

impl Col {
    fn header(self) -> &'static str {
        match self {
            Col::Name => "CLUSTER",
            Col::Account => "ACCOUNT",
            Col::Region => "REGION",
            Col::Env => "ENV",
            Col::Version => "VER",
            Col::Status => "STATUS",
            Col::Wave => "WAVE/PHASE",
            Col::Alerts => "ALRT",
            Col::Rate => "REQ/S",
            Col::Errors => "5XX%",
            Col::P99 => "P99",
            Col::Etcd => "ETCD",
            Col::Trend => "REQ/S 30m",
        }
    }

    fn width(self, name: u16) -> Constraint {
        match self {
            Col::Name => Constraint::Length(name),
            Col::Account => Constraint::Length(16),
            Col::Region => Constraint::Length(14),
            Col::Env => Constraint::Length(7),
            Col::Version => Constraint::Length(4),
            Col::Status => Constraint::Length(8),
            Col::Wave => Constraint::Length(16),
            Col::Alerts => Constraint::Length(4),
            Col::Rate => Constraint::Length(5),
            Col::Errors => Constraint::Length(5),
            Col::P99 => Constraint::Length(6),
            Col::Etcd => Constraint::Length(4),
            Col::Trend => Constraint::Length(TREND_MINUTES as u16),
        }
    }

    fn sort_key(self) -> Option<SortKey> {
        Some(match self {
            Col::Name => SortKey::Name,
            Col::Account => SortKey::Account,
            Col::Region => SortKey::Region,
            Col::Env => SortKey::Environment,
            Col::Version => SortKey::Version,
            Col::Status => SortKey::Status,
            Col::Alerts => SortKey::Alerts,
            Col::Rate => SortKey::RequestRate,
            Col::Errors => SortKey::Errors5xx,
            Col::P99 => SortKey::LatencyP99,
            Col::Etcd => SortKey::EtcdPercent,
            Col::Wave | Col::Trend => return None,
        })
    }
}

/// Columns that fit: at 80 cells the health essentials with full cluster names; request
/// rate and p99 from 100; account and region from 120; the trend sparkline from 150.
fn columns(width: u16) -> Vec<Col> {
    let mut cols = vec![Col::Name];
    if width >= 120 {
        cols.extend([Col::Account, Col::Region]);
    }
    cols.extend([Col::Env, Col::Version, Col::Status, Col::Wave, Col::Alerts]);
    if width >= 100 {
        cols.push(Col::Rate);
    }
    cols.push(Col::Errors);
    if width >= 100 {
        cols.push(Col::P99);
    }
    cols.push(Col::Etcd);
    if width >= 150 {
        cols.push(Col::Trend);
    }
    cols
}

pub fn render(frame: &mut Frame, area: Rect, state: &FleetState, ctx: &Context) {
    let t = ctx.theme;
    let store = ctx.store;
    let rows = state.rows(ctx);
    let cols = columns(area.width);
    // As wide as the longest name listed (so data sits next to it), at least 21. EKS
    // cluster names are ASCII (`[0-9A-Za-z][A-Za-z0-9_-]*`), so bytes are columns.
    let name_width = rows
        .iter()
        .map(|&i| store.clusters()[i].id.name.len())
        .max()
        .unwrap_or(0)
        .clamp(21, 40) as u16;
    let arrow = if state.descending {
        ctx.glyphs.down
    } else {
        ctx.glyphs.up
    };

    let header = Row::new(cols.iter().map(|c| {
        let mut label = c.header().to_string();
        if c.sort_key() == Some(state.sort) {
            label.push_str(arrow);
        }
        Cell::from(label)
    }))
    .style(t.title);

    let selected = state
        .selection
        .position(rows.len(), |i, k| store.clusters()[rows[i]].id == *k);
    // Borders and the header row take three lines; only the rows on screen are built.
    let window = state.selection.window(
        rows.len(),
        selected,
        usize::from(area.height.saturating_sub(3)),
    );
    let body = rows[window.clone()].iter().map(|&i| {
        let c = &store.clusters()[i];
        let cells = cols.iter().map(|col| match col {
            Col::Name => Cell::from(c.id.name.clone()),
            Col::Account => Cell::from(c.id.account.clone()).style(t.muted),
            Col::Region => Cell::from(c.id.region.clone()).style(t.muted),
            Col::Env => Cell::from(c.environment.to_string()).style(ctx.env_style(&c.environment)),
            // Extended support costs money every hour: the version says so in warning colour.
            Col::Version => match &c.support {
                Some(sup) if sup.in_extended => Cell::from(c.version.clone()).style(t.warning),
                _ => Cell::from(c.version.clone()),
            },
            Col::Status => Cell::from(c.status.to_string()).style(status_style(c.status, ctx)),
            // The rollout cell, else an EKS update in flight, as progress.
            Col::Wave => match (store.wave_label(&c.id), c.updates.first()) {
                (Some(label), _) => Cell::from(label).style(t.muted),
                (None, Some(u)) => Cell::from(format!(
                    "eks {} {}",
                    u.kind.trim_end_matches("Update").to_lowercase(),
                    format::age(ctx.now, u.started)
                ))
                .style(t.info),
                (None, None) => Cell::from("-").style(t.muted),
            },
            Col::Alerts => {
                let [crit, warn, info] = store.firing_counts(i);
                let (n, style) = match (crit, warn, info) {
                    (0, 0, 0) => (0, t.muted),
                    (0, 0, _) => (info, t.info),
                    (0, _, _) => (warn + info, t.warning),
                    _ => (crit + warn + info, t.critical),
                };
                Cell::from(if n == 0 {
                    "-".to_string()
                } else {
                    n.to_string()
                })
                .style(style)
            }
            Col::Rate => number(store.request_rate(i).map(format::count), t.text),
            Col::Errors => {
                let v = store.error_percent(i);
                let style = threshold(v, 1.0, 5.0, ctx);
                number(
                    v.map(|p| {
                        if p >= 10.0 {
                            format!("{p:.0}")
                        } else {
                            format!("{p:.2}")
                        }
                    }),
                    style,
                )
            }
            Col::P99 => {
                let v = store.latest(i, MetricName::P99Get).map(f64::from);
                number(v.map(format::latency), threshold(v, 0.5, 1.0, ctx))
            }
            Col::Etcd => {
                let v = store.etcd_percent(i);
                number(v.map(|p| format!("{p:.0}%")), threshold(v, 70.0, 85.0, ctx))
            }
            Col::Trend => {
                let values: Vec<Option<f32>> = store
                    .metric(i, MetricName::RequestTotal)
                    .map(|r| r.last(TREND_MINUTES).collect())
                    .unwrap_or_default();
                Cell::from(format::sparkline(&values, ctx.glyphs)).style(t.chart[0])
            }
        });
        Row::new(cells)
    });

    let filter = if state.filter.is_empty() {
        String::new()
    } else {
        format!(" · filter: {}", state.filter)
    };
    let extended: Vec<f64> = store
        .clusters()
        .iter()
        .filter_map(|c| c.support.as_ref().filter(|s| s.in_extended))
        .map(|s| s.extra_usd_per_hour)
        .collect();
    let extended = if extended.is_empty() {
        String::new()
    } else {
        format!(
            " · {} in extended support +${:.2}/h",
            extended.len(),
            extended.iter().sum::<f64>()
        )
    };
    let title = format!(
        " fleet ({} of {}) · sort {}{}{}{} ",
        rows.len(),
        store.clusters().len(),
        state.sort.label(),
        arrow,
        filter,
        extended
    );
    let table = Table::new(body, cols.iter().map(|c| c.width(name_width)))
        .header(header)
        .column_spacing(1)
        .flex(Flex::Start)
        .row_highlight_style(t.selection)
        .block(ctx.block(
            title,
            selected.map(|i| &store.clusters()[rows[i]].environment),
        ));
    state
        .selection
        .draw_window_table(frame, table, area, &window, selected);

    if rows.is_empty() {
        let inventory: Vec<_> = store
            .sources()
            .filter(|s| s.name == "demo" || s.name.starts_with("eks:"))
            .collect();
        let msg = if !store.clusters().is_empty() {
            format!(
                "no cluster matches '{}' (esc clears the filter)",
                state.filter
            )
        } else if inventory.is_empty() {
            "no source lists clusters: name AWS accounts in the config ([[accounts]])".to_string()
        } else if inventory.iter().any(|s| s.last_ok.is_some()) {
            "the configured accounts and regions have no clusters (or none match [clusters] include)".to_string()
        } else {
            loading_message(&inventory, store)
        };
        let inner = Rect {
            x: area.x + 2,
            y: area.y + 2,
            width: area.width.saturating_sub(4),
            height: 1,
        };
        frame.render_widget(Line::from(Span::styled(msg, t.muted)), inner);
    }
}

/// What an empty fleet is waiting for: which inventory sources are still listing, and
/// which failed (with the first failure's reason; the Sources view has all).
fn loading_message(
    inventory: &[&crate::model::SourceHealth],
    store: &crate::model::Store,
) -> String {
    let names = |list: &[&&crate::model::SourceHealth]| {
        let mut s: Vec<&str> = list.iter().take(3).map(|h| h.name.as_str()).collect();
        let more = list.len().saturating_sub(3);
        if more > 0 {
            s.push("…");
        }
        let text = s.join(", ");
        if more > 0 {
            format!("{text} (+{more})")
        } else {
            text
        }
    };
    let loading: Vec<&&crate::model::SourceHealth> =
        inventory.iter().filter(|s| store.is_loading(s)).collect();
    let failed: Vec<&&crate::model::SourceHealth> = inventory
        .iter()
        .filter(|s| s.last_error_at.is_some())
        .collect();
    let mut parts = Vec::new();
    if !loading.is_empty() {
        parts.push(format!(
            "listing clusters from {} of {} source(s): {}…",
            loading.len(),
            inventory.len(),
            names(&loading)
        ));
    }
    if let Some(first) = failed.first() {
        parts.push(format!(
            "{} failing ({}: {})",
            failed.len(),
            first.name,
            first.last_error.as_deref().unwrap_or("unknown error")
        ));
    }
    if parts.is_empty() {
        "waiting for the first inventory…".into()
    } else {
        parts.join("; ")
    }
}

fn number(text: Option<String>, style: Style) -> Cell<'static> {
    match text {
        Some(s) => Cell::from(Line::from(s).right_aligned()).style(style),
        None => Cell::from(Line::from("-").right_aligned()),
    }
}

fn threshold(value: Option<f64>, warn: f64, crit: f64, ctx: &Context) -> Style {
    match value {
        Some(v) if v >= crit => ctx.theme.critical,
        Some(v) if v >= warn => ctx.theme.warning,
        _ => ctx.theme.text,
    }
}

fn status_style(status: ClusterStatus, ctx: &Context) -> Style {
    match status {
        ClusterStatus::Active => ctx.theme.ok,
        ClusterStatus::Updating | ClusterStatus::Creating | ClusterStatus::Pending => {
            ctx.theme.info
        }
        ClusterStatus::Failed => ctx.theme.critical,
        ClusterStatus::Deleting | ClusterStatus::Unknown => ctx.theme.unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{SourceEvent, SourceHealth, Store};

    #[test]
    fn an_empty_fleet_says_which_sources_are_still_listing_and_which_failed() {
        let mut store = Store::new();
        for name in [
            "eks:prod/us-east-1",
            "eks:prod/eu-west-1",
            "eks:dev/us-east-1",
        ] {
            store.expect_source(name, 60);
        }
        let inventory = |store: &Store| -> String {
            let list: Vec<&SourceHealth> = store.sources().collect();
            loading_message(&list, store)
        };
        assert_eq!(
            inventory(&store),
            "listing clusters from 3 of 3 source(s): eks:dev/us-east-1, eks:prod/eu-west-1, \
             eks:prod/us-east-1…"
        );
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        let mut failed = SourceHealth::new("eks:dev/us-east-1", 60);
        failed.last_error = Some("profile 'dev' not found".into());
        failed.last_error_at = Some(now);
        store.apply(SourceEvent::Health(failed), now);
        assert_eq!(
            inventory(&store),
            "listing clusters from 2 of 3 source(s): eks:prod/eu-west-1, eks:prod/us-east-1…; \
             1 failing (eks:dev/us-east-1: profile 'dev' not found)"
        );
    }
}
