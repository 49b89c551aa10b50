//! Fleet: every cluster in one table, sortable and filterable.

use std::cell::RefCell;
use std::rc::Rc;

use ratatui::Frame;
use ratatui::layout::{Constraint, Flex, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

use crate::model::{
    ClusterFilter, ClusterId, ClusterStatus, Described, MetricName, SortKey, SourceHealth, Store,
};
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
    Policies,
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
            Col::Policies => "POL",
            Col::Rate => "REQ/S",
            Col::Errors => "5XX%",
            Col::P99 => "P99",
            Col::Etcd => "ETCD",
            Col::Trend => "REQ/S 30m",
        }
    }

    /// `describing`: a row on screen is not described yet, and its status column says so
    /// (`describing` is two cells wider than any EKS status; the wave column gives them).
    fn width(self, name: u16, describing: bool) -> Constraint {
        match self {
            Col::Name => Constraint::Length(name),
            Col::Account => Constraint::Length(16),
            Col::Region => Constraint::Length(14),
            Col::Env => Constraint::Length(7),
            Col::Version => Constraint::Length(4),
            Col::Status if describing => Constraint::Length(10),
            Col::Status => Constraint::Length(8),
            Col::Wave if describing => Constraint::Length(14),
            Col::Wave => Constraint::Length(16),
            Col::Alerts => Constraint::Length(4),
            Col::Policies => Constraint::Length(4),
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
            Col::Wave | Col::Trend | Col::Policies => return None,
        })
    }
}

/// Columns that fit: at 80 cells the health essentials with full cluster names and the
/// failing policies; etcd from 90; request rate and p99 from 100; account and region from
/// 120; the trend sparkline from 150.
fn columns(width: u16) -> Vec<Col> {
    let mut cols = vec![Col::Name];
    if width >= 120 {
        cols.extend([Col::Account, Col::Region]);
    }
    cols.extend([
        Col::Env,
        Col::Version,
        Col::Status,
        Col::Wave,
        Col::Alerts,
        Col::Policies,
    ]);
    if width >= 100 {
        cols.push(Col::Rate);
    }
    cols.push(Col::Errors);
    if width >= 100 {
        cols.push(Col::P99);
    }
    if width >= 90 {
        cols.push(Col::Etcd);
    }
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
    let describing = rows[window.clone()]
        .iter()
        .any(|&i| store.clusters()[i].described == Described::Pending);
    let body = rows[window.clone()].iter().map(|&i| {
        let c = &store.clusters()[i];
        let cells = cols.iter().map(|col| match col {
            Col::Name => Cell::from(c.id.name.clone()),
            Col::Account => Cell::from(c.id.account.clone()).style(t.muted),
            Col::Region => Cell::from(c.id.region.clone()).style(t.muted),
            // Listed, not described: nothing but its name, account and region is known.
            Col::Env | Col::Version | Col::Status if !c.is_described() => {
                undescribed_cell(*col, c.described, ctx)
            }
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
            // Resources failing a policy, coloured by the most severe policy failing.
            Col::Policies => {
                let failures = store.policy_failures(&c.id);
                let n: usize = failures.iter().map(|f| f.failing).sum();
                let style = failures
                    .first()
                    .map_or(t.muted, |f| ctx.severity_style(f.severity));
                let text = match n {
                    0 => "-".to_string(),
                    n if n < 1000 => n.to_string(),
                    n => format!("{}k", n / 1000),
                };
                Cell::from(text).style(style)
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
        // Remembered from the last session: dimmed until its source lists it again.
        if store.is_cached_cluster(i) {
            Row::new(cells.map(|c| c.style(t.muted)))
        } else {
            Row::new(cells.collect::<Vec<_>>())
        }
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
        " fleet ({} of {}) · sort {}{}{}{}{} ",
        rows.len(),
        store.clusters().len(),
        state.sort.label(),
        arrow,
        progress(store),
        filter,
        extended
    );
    // The sources the fleet comes from: the demo, EKS, and an organization's listing and
    // the accounts it could not enter (they would list clusters).
    let inventory: Vec<&SourceHealth> = store
        .sources()
        .filter(|s| {
            s.name == "demo"
                || s.name.starts_with("eks:")
                || s.name == crate::sources::organizations::SOURCE_NAME
                || s.name.starts_with("account:")
        })
        .collect();
    let mut block = ctx.block(
        title,
        selected.and_then(|i| store.clusters()[rows[i]].known_environment()),
    );
    // Rows from the sources that listed, while others still list: say which.
    if !rows.is_empty()
        && let Some(listing) = listing_part(&inventory, store)
    {
        block = block.title_bottom(Span::styled(format!(" {listing} "), t.info));
    }
    let table = Table::new(body, cols.iter().map(|c| c.width(name_width, describing)))
        .header(header)
        .column_spacing(1)
        .flex(Flex::Start)
        .row_highlight_style(t.selection)
        .block(block);
    state
        .selection
        .draw_window_table(frame, table, area, &window, selected);

    if rows.is_empty() {
        let msg = if !store.clusters().is_empty() {
            format!(
                "no cluster matches '{}' (esc clears the filter)",
                state.filter
            )
        } else {
            empty_fleet(&inventory, store)
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

/// `described 412 of 2,000` while some clusters are listed but not described (with how
/// many could not be), else nothing.
fn progress(store: &Store) -> String {
    let clusters = store.clusters();
    let described = clusters.iter().filter(|c| c.is_described()).count();
    if described == clusters.len() {
        return String::new();
    }
    let failed = clusters
        .iter()
        .filter(|c| c.described == Described::Failed)
        .count();
    let failed = if failed > 0 {
        format!(", {} failed", thousands(failed))
    } else {
        String::new()
    };
    format!(
        " · described {} of {}{failed}",
        thousands(described),
        thousands(clusters.len())
    )
}

/// `2,000`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

/// Still on its first listing: loading (`Store::is_loading`), and no answer yet. A source
/// that listed and is describing its clusters is loading too, but its rows are on screen.
/// Why there is no cluster at all, in terms of the config: nothing configured, an
/// organization whose globs keep no account, accounts without clusters, or what is still
/// loading and what failed.
fn empty_fleet(inventory: &[&SourceHealth], store: &Store) -> String {
    if inventory.is_empty() {
        "no source lists clusters: name AWS accounts in the config ([[accounts]] or [organization])"
            .to_string()
    } else if let Some(none) = no_account_included(inventory) {
        none
    } else if !inventory.iter().any(|s| is_listing(s, store))
        && inventory.iter().any(|s| s.last_ok.is_some())
        && !inventory.iter().any(|s| has_failed(s))
    {
        "the configured accounts and regions have no clusters (or none match [clusters] include)"
            .to_string()
    } else {
        loading_message(inventory, store)
    }
}

/// An organization that was listed but whose globs keep no account (and no other
/// source lists clusters): say so, rather than that the accounts have no clusters.
fn no_account_included(inventory: &[&SourceHealth]) -> Option<String> {
    let [only] = inventory else {
        return None;
    };
    let counts = only.accounts.as_ref()?;
    (counts.included == 0).then(|| {
        format!(
            "the organization lists {} account(s) and [organization] include/exclude keep none of them",
            counts.discovered
        )
    })
}

/// The source's last word was an error (as `Store::is_loading` judges it).
fn has_failed(source: &SourceHealth) -> bool {
    match (source.last_error_at, source.last_ok) {
        (Some(err), Some(ok)) => err > ok,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn is_listing(source: &SourceHealth, store: &Store) -> bool {
    store.is_loading(source) && source.last_ok.is_none()
}

/// `eks:dev/us-east-1, eks:prod/eu-west-1, … (+2)`.
fn source_names(list: &[&&SourceHealth]) -> String {
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
}

/// `listing clusters from 2 of 6 source(s): …` while some inventory sources have not
/// answered their first listing.
fn listing_part(inventory: &[&SourceHealth], store: &Store) -> Option<String> {
    let listing: Vec<&&SourceHealth> = inventory.iter().filter(|s| is_listing(s, store)).collect();
    (!listing.is_empty()).then(|| {
        format!(
            "listing clusters from {} of {} source(s): {}…",
            listing.len(),
            inventory.len(),
            source_names(&listing)
        )
    })
}

/// What an empty fleet is waiting for: which inventory sources are still listing, and
/// which failed (with the first failure's reason; the Sources view has all).
fn loading_message(inventory: &[&SourceHealth], store: &Store) -> String {
    let failed: Vec<&&SourceHealth> = inventory.iter().filter(|s| has_failed(s)).collect();
    let mut parts = Vec::new();
    parts.extend(listing_part(inventory, store));
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

/// Environment, version or status of a cluster only listed so far: `describing` in the
/// status column (`…` in the others), or `?` and UNKNOWN once describing it failed.
fn undescribed_cell(col: Col, described: Described, ctx: &Context) -> Cell<'static> {
    let style = ctx.theme.unknown;
    let text = match (col, described) {
        (Col::Status, Described::Failed) => ClusterStatus::Unknown.as_str(),
        (Col::Status, _) => "describing",
        (_, Described::Failed) => "?",
        _ => "…",
    };
    Cell::from(text).style(style)
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
    fn counts_have_thousands_separators() {
        let shown: Vec<String> = [0, 412, 2000, 12345, 1_234_567]
            .into_iter()
            .map(thousands)
            .collect();
        assert_eq!(shown, ["0", "412", "2,000", "12,345", "1,234,567"]);
    }

    /// A source that listed no cluster while another still lists: still loading, not
    /// "no clusters"; a source describing its clusters is loading but not listing.
    #[test]
    fn a_listing_still_under_way_is_named_even_when_another_found_nothing() {
        let mut store = Store::new();
        store.expect_source("eks:prod/us-east-1", 60);
        store.expect_source("eks:prod/eu-west-1", 60);
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        let mut empty = SourceHealth::new("eks:prod/us-east-1", 60);
        empty.last_ok = Some(now);
        store.apply(SourceEvent::Health(empty), now);
        let list: Vec<&SourceHealth> = store.sources().collect();
        assert!(store.is_loading(list[1]), "not Ready yet");
        assert!(!is_listing(list[1], &store), "it answered its listing");
        assert_eq!(
            listing_part(&list, &store).as_deref(),
            Some("listing clusters from 1 of 2 source(s): eks:prod/eu-west-1…")
        );
    }

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

    /// With an `[organization]`, the empty fleet speaks of it, never of accounts missing
    /// from the config: listing, refused roles, or globs that keep nothing.
    #[test]
    fn an_empty_organization_fleet_says_what_the_organization_did() {
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        let message = |store: &Store| -> String {
            let list: Vec<&SourceHealth> = store.sources().collect();
            empty_fleet(&list, store)
        };
        let mut store = Store::new();
        assert_eq!(
            message(&store),
            "no source lists clusters: name AWS accounts in the config ([[accounts]] or [organization])"
        );
        store.expect_source("organizations", 900);
        assert_eq!(
            message(&store),
            "listing clusters from 1 of 1 source(s): organizations…"
        );
        // Listed; the globs keep nothing.
        let mut org = SourceHealth::new("organizations", 900);
        org.last_ok = Some(now);
        org.accounts = Some(crate::model::AccountCounts {
            discovered: 12,
            included: 0,
            failing: 0,
        });
        store.apply(SourceEvent::Health(org.clone()), now);
        assert_eq!(
            message(&store),
            "the organization lists 12 account(s) and [organization] include/exclude keep none of them"
        );
        // One account included, its role refused.
        org.accounts = Some(crate::model::AccountCounts {
            discovered: 12,
            included: 1,
            failing: 1,
        });
        store.apply(SourceEvent::Health(org), now);
        let mut refused = SourceHealth::new("account:payments", 60);
        refused.last_error = Some("sts:AssumeRole: AccessDenied".into());
        refused.last_error_at = Some(now);
        store.apply(SourceEvent::Health(refused), now);
        assert_eq!(
            message(&store),
            "1 failing (account:payments: sts:AssumeRole: AccessDenied)"
        );
    }
}
