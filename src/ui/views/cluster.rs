//! Cluster: one cluster's last hour of control-plane metrics, its findings, alerts and wave.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Dataset, GraphType, Paragraph, Wrap};

use crate::model::ETCD_QUOTA_BYTES;
use crate::model::{
    ClusterId, Connection, Described, Environment, HoldKind, InsightStatus, MetricName,
    SourceStatus, Store,
};
use crate::ui::keymap::KeyAction;
use crate::ui::widgets::format;
use crate::ui::{Context, Effect};

/// One line of a chart: its label, its points (minutes before now, value), its style.
type Series = (String, Vec<(f64, f64)>, Style);

/// Minutes of history charted.
const WINDOW: usize = 60;

#[derive(Default)]
pub struct ClusterState {
    pub cluster: Option<ClusterId>,
    /// Scroll of the findings below the metrics (alerts, Kubernetes, insights...).
    pub scroll: crate::ui::widgets::scroll::Scroll,
}

impl ClusterState {
    /// The environment of the cluster shown, once its tags have been read.
    pub fn environment(&self, ctx: &Context) -> Option<Environment> {
        ctx.store
            .cluster(self.cluster.as_ref()?)?
            .known_environment()
            .cloned()
    }

    pub fn handle(&mut self, action: KeyAction, ctx: &Context) -> Effect {
        if self.scroll.handle(action) {
            return Effect::None;
        }
        match action {
            KeyAction::OpenRunbook => {
                let Some(id) = &self.cluster else {
                    return Effect::None;
                };
                match ctx.store.alerts_for(id).into_iter().find(|a| a.is_firing()) {
                    Some(alert) => super::alerts::runbook_effect(alert, ctx),
                    None => Effect::Flash("no alert is firing on this cluster".into()),
                }
            }
            _ => Effect::Ignored,
        }
    }
}

/// The newest minute any metric of the cluster holds: charts end there.
fn end_minute(store: &Store, i: usize) -> Option<i64> {
    MetricName::ALL
        .iter()
        .filter_map(|m| store.metric(i, *m)?.end_minute())
        .max()
}

fn series(store: &Store, i: usize, metric: MetricName, end: i64, scale: f64) -> Vec<(f64, f64)> {
    store
        .metric(i, metric)
        .map(|r| {
            r.window(end, WINDOW)
                .into_iter()
                .map(|(m, v)| ((m - end) as f64, f64::from(v) * scale))
                .collect()
        })
        .unwrap_or_default()
}

fn values(store: &Store, i: usize, metric: MetricName, n: usize) -> Vec<Option<f32>> {
    store
        .metric(i, metric)
        .map(|r| r.last(n).collect())
        .unwrap_or_default()
}

pub fn render(frame: &mut Frame, area: Rect, state: &ClusterState, ctx: &Context) {
    let t = ctx.theme;
    let Some((i, cluster)) = state.cluster.as_ref().and_then(|id| {
        ctx.store
            .cluster_index(id)
            .map(|i| (i, &ctx.store.clusters()[i]))
    }) else {
        let name = state
            .cluster
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let p = Paragraph::new(format!("cluster {name} is not in the fleet (any more)"))
            .block(ctx.block(" cluster ".into(), None));
        frame.render_widget(p, area);
        return;
    };
    let title = format!(
        " {} · {} / {} · {} ",
        cluster.id.name,
        cluster.id.account,
        cluster.id.region,
        match cluster.described {
            Described::Yes => cluster.environment.as_str(),
            Described::Pending => "describing",
            Described::Failed => "not described",
        }
    );
    let block = ctx.block(title, cluster.known_environment());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let wave = ctx.store.cell_of(&cluster.id).map(|(r, cell)| {
        let w = &ctx.store.rollouts()[r.rollout].waves[r.wave];
        // A hold this cluster is the reason for comes first: it is why the wave waits.
        let held_here = w.holds.iter().find(|h| match &h.kind {
            HoldKind::Policy { cluster: name, .. } | HoldKind::Insights { cluster: name, .. } => {
                *name == cluster.id.name
            }
            HoldKind::Breaker { cluster: id, .. } => *id == cluster.id,
            _ => false,
        });
        format!(
            "{} wave {} · {} for {}{}{}",
            ctx.store.rollouts()[r.rollout].name,
            w.name,
            cell.phase,
            format::age(ctx.now, cell.since),
            held_here
                .map(|h| format!(" · wave {}", h.describe()))
                .unwrap_or_default(),
            if cell.message.is_empty() {
                String::new()
            } else {
                format!(" · {}", cell.message)
            }
        )
    });
    let mut first = match cluster.described {
        Described::Yes => described_line(cluster, ctx),
        // Listed only: say so rather than show empty fields as if they were the answer.
        Described::Pending => vec![Span::styled(
            "describing: version, status and tags follow when EKS answers DescribeCluster",
            t.unknown,
        )],
        Described::Failed => vec![Span::styled(
            "not described: DescribeCluster failed (see Sources, 6); retried next inventory",
            t.unknown,
        )],
    };
    for update in &cluster.updates {
        first.push(Span::styled(
            format!(
                " · {} {} {}",
                update.kind,
                update.status,
                format::age(ctx.now, update.started)
            ),
            t.info,
        ));
    }
    let info = vec![
        Line::from(first),
        Line::from(Span::styled(
            wave.unwrap_or_else(|| "in no rollout".into()),
            t.text,
        )),
    ];
    let big = inner.width >= 120 && inner.height >= 34 && !ctx.glyphs.ascii;
    let metrics_height = if big {
        inner.height.saturating_sub(12)
    } else {
        10
    };
    let [info_area, metrics_area, findings_area] = inner.layout(&Layout::vertical([
        Constraint::Length(2),
        Constraint::Length(metrics_height.min(inner.height.saturating_sub(2))),
        Constraint::Min(0),
    ]));
    frame.render_widget(Paragraph::new(info), info_area);
    if end_minute(ctx.store, i).is_none() {
        render_no_metrics(frame, metrics_area, &cluster.id, ctx);
    } else if big {
        render_charts(frame, metrics_area, i, ctx);
    } else {
        render_compact(frame, metrics_area, i, ctx);
    }
    render_findings(frame, findings_area, i, &cluster.id, &state.scroll, ctx);
}

/// Version, platform version, status, team and support of a described cluster.
fn described_line(cluster: &crate::model::Cluster, ctx: &Context) -> Vec<Span<'static>> {
    let t = ctx.theme;
    let mut first = vec![
        Span::styled(format!("v{} ", cluster.version), t.text),
        Span::styled(format!("{} ", cluster.platform_version), t.muted),
        Span::styled(cluster.status.to_string(), t.accent),
        Span::styled(
            cluster
                .team
                .as_ref()
                .map(|tm| format!(" · team {tm}"))
                .unwrap_or_default(),
            t.muted,
        ),
    ];
    if let Some(support) = cluster.support.as_ref().filter(|s| s.in_extended) {
        first.push(Span::styled(
            format!(" · EXTENDED SUPPORT +${:.2}/h", support.extra_usd_per_hour),
            t.warning,
        ));
    }
    first
}

/// No metric at all for this cluster: say why, naming the source that should have them.
fn render_no_metrics(frame: &mut Frame, area: Rect, id: &ClusterId, ctx: &Context) {
    let t = ctx.theme;
    let name = format!("cloudwatch:{}/{}", id.account, id.region);
    let why = match ctx.store.sources().find(|s| s.name == name) {
        Some(s) => match (&s.last_error, s.status(ctx.now)) {
            (Some(e), SourceStatus::Failing | SourceStatus::Stale) => Line::from(vec![
                Span::styled(format!("{name} is failing: "), t.warning),
                Span::styled(e.clone(), t.critical),
            ]),
            _ => Line::from(Span::styled(
                format!("waiting for {name} (the full set is fetched while this view is open)"),
                t.muted,
            )),
        },
        None => Line::from(Span::styled(
            "no source provides metrics for this cluster",
            t.muted,
        )),
    };
    let lines = vec![
        Line::from(Span::styled("no control-plane metrics yet", t.title)),
        why,
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), area);
}

/// Large terminals: six charts of the last hour.
fn render_charts(frame: &mut Frame, area: Rect, i: usize, ctx: &Context) {
    let store = ctx.store;
    let Some(end) = end_minute(store, i) else {
        frame.render_widget(Paragraph::new("waiting for metrics…"), area);
        return;
    };
    let [top, bottom] = area.layout(&Layout::vertical([Constraint::Fill(1); 2]));
    let [a, b, c] = top.layout(&Layout::horizontal([Constraint::Fill(1); 3]));
    let [d, e, f] = bottom.layout(&Layout::horizontal([Constraint::Fill(1); 3]));
    let mut chart =
        |name: &str, lines: Vec<Series>, unit: fn(f64) -> String, area: Rect, floor_max: f64| {
            let max = lines
                .iter()
                .flat_map(|(_, pts, _)| pts.iter().map(|p| p.1))
                .fold(floor_max, f64::max)
                * 1.1;
            let datasets = lines
                .iter()
                .map(|(label, pts, style)| {
                    Dataset::default()
                        .name(label.clone())
                        .marker(Marker::Braille)
                        .graph_type(GraphType::Line)
                        .style(*style)
                        .data(pts)
                })
                .collect::<Vec<_>>();
            let t = ctx.theme;
            // Series are named in the title, in their colours: a legend box would hide data.
            let mut title = vec![Span::styled(format!(" {name}"), t.title)];
            if lines.len() > 1 {
                for (k, (label, _, style)) in lines.iter().enumerate() {
                    title.push(Span::styled(if k == 0 { ": " } else { " · " }, t.muted));
                    title.push(Span::styled(label.clone(), *style));
                }
            }
            title.push(Span::raw(" "));
            let chart = Chart::new(datasets)
                .block(ctx.block(String::new(), None).title(Line::from(title)))
                .x_axis(
                    Axis::default()
                        .bounds([-(WINDOW as f64) + 1.0, 0.0])
                        .labels(["-60m", "-30m", "now"])
                        .style(t.muted),
                )
                .y_axis(
                    Axis::default()
                        .bounds([0.0, max])
                        .labels([unit(0.0), unit(max / 2.0), unit(max)])
                        .style(t.muted),
                )
                .legend_position(None);
            frame.render_widget(chart, area);
        };
    let c0 = ctx.theme.chart;
    chart(
        "requests/s",
        vec![(
            "req/s".into(),
            series(store, i, MetricName::RequestTotal, end, 1.0 / 60.0),
            c0[0],
        )],
        format::count,
        a,
        1.0,
    );
    chart(
        "errors /min",
        vec![
            (
                "4xx".into(),
                series(store, i, MetricName::Request4xx, end, 1.0),
                c0[1],
            ),
            (
                "429".into(),
                series(store, i, MetricName::Request429, end, 1.0),
                c0[2],
            ),
            (
                "5xx".into(),
                series(store, i, MetricName::Request5xx, end, 1.0),
                ctx.theme.critical,
            ),
        ],
        format::count,
        b,
        1.0,
    );
    chart(
        "p99 latency by verb",
        MetricName::LATENCY_BY_VERB
            .iter()
            .enumerate()
            .map(|(k, (m, verb))| {
                (
                    verb.to_string(),
                    series(store, i, *m, end, 1.0),
                    c0[k % c0.len()],
                )
            })
            .collect(),
        format::latency,
        c,
        0.1,
    );
    chart(
        "inflight requests",
        vec![
            (
                "mutating".into(),
                series(store, i, MetricName::InflightMutating, end, 1.0),
                c0[1],
            ),
            (
                "readonly".into(),
                series(store, i, MetricName::InflightReadonly, end, 1.0),
                c0[0],
            ),
        ],
        format::count,
        d,
        1.0,
    );
    let quota: Vec<(f64, f64)> = vec![
        (-(WINDOW as f64) + 1.0, ETCD_QUOTA_BYTES),
        (0.0, ETCD_QUOTA_BYTES),
    ];
    chart(
        "etcd size vs 8 GiB quota",
        vec![
            (
                "size".into(),
                series(store, i, MetricName::StorageSizeBytes, end, 1.0),
                c0[3],
            ),
            ("quota".into(), quota, ctx.theme.critical),
        ],
        format::bytes,
        e,
        ETCD_QUOTA_BYTES,
    );
    chart(
        "pending pods",
        vec![
            (
                "pending".into(),
                series(store, i, MetricName::PendingPods, end, 1.0),
                c0[4],
            ),
            (
                "unschedulable/min".into(),
                series(store, i, MetricName::UnschedulableAttempts, end, 1.0),
                c0[2],
            ),
        ],
        format::count,
        f,
        1.0,
    );
}

/// Small terminals: one line per metric, with a sparkline and the newest value.
fn render_compact(frame: &mut Frame, area: Rect, i: usize, ctx: &Context) {
    let t = ctx.theme;
    let store = ctx.store;
    // Label 14 + value up to 24 ("7.3 GiB of 8 GiB (91%)"): the sparkline gets the rest.
    let spark_width = (area.width as usize).saturating_sub(39).clamp(8, WINDOW);
    let latest = |m| store.latest(i, m).map(f64::from);
    let row = |label: &str, metric: MetricName, value: String, style: Style| {
        Line::from(vec![
            Span::styled(format!("{label:<14}"), t.muted),
            Span::styled(
                {
                    let v = values(store, i, metric, spark_width);
                    // etcd is drawn against its quota: the height says how close to full.
                    if metric == MetricName::StorageSizeBytes {
                        format::sparkline_to(&v, ETCD_QUOTA_BYTES as f32, ctx.glyphs)
                    } else {
                        format::sparkline(&v, ctx.glyphs)
                    }
                },
                style,
            ),
            Span::styled(format!(" {value}"), t.text),
        ])
    };
    let per_min = |m| {
        latest(m)
            .map(|v| format!("{}/min", format::count(v)))
            .unwrap_or_else(|| "-".into())
    };
    let etcd = latest(MetricName::StorageSizeBytes);
    let verbs = MetricName::LATENCY_BY_VERB
        .iter()
        .map(|(m, verb)| {
            format!(
                "{verb} {}",
                latest(*m)
                    .map(format::latency)
                    .unwrap_or_else(|| "-".into())
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    let c = t.chart;
    let lines = vec![
        row(
            "requests/s",
            MetricName::RequestTotal,
            store
                .request_rate(i)
                .map(format::count)
                .unwrap_or_else(|| "-".into()),
            c[0],
        ),
        row(
            "4xx",
            MetricName::Request4xx,
            per_min(MetricName::Request4xx),
            c[1],
        ),
        row(
            "429",
            MetricName::Request429,
            per_min(MetricName::Request429),
            c[2],
        ),
        row(
            "5xx",
            MetricName::Request5xx,
            per_min(MetricName::Request5xx),
            t.critical,
        ),
        row(
            "p99 LIST",
            MetricName::P99List,
            latest(MetricName::P99List)
                .map(format::latency)
                .unwrap_or_else(|| "-".into()),
            c[3],
        ),
        Line::from(vec![
            Span::styled(format!("{:<14}", "p99 by verb"), t.muted),
            Span::styled(verbs, t.text),
        ]),
        row(
            "inflight",
            MetricName::InflightReadonly,
            format!(
                "ro {} · mut {}",
                latest(MetricName::InflightReadonly)
                    .map(format::count)
                    .unwrap_or_else(|| "-".into()),
                latest(MetricName::InflightMutating)
                    .map(format::count)
                    .unwrap_or_else(|| "-".into())
            ),
            c[0],
        ),
        row(
            "etcd size",
            MetricName::StorageSizeBytes,
            etcd.map(|v| {
                format!(
                    "{} of 8 GiB ({:.0}%)",
                    format::bytes(v),
                    100.0 * v / ETCD_QUOTA_BYTES
                )
            })
            .unwrap_or_else(|| "-".into()),
            match etcd.map(|v| v / ETCD_QUOTA_BYTES) {
                Some(f) if f >= 0.85 => t.critical,
                Some(f) if f >= 0.7 => t.warning,
                _ => c[3],
            },
        ),
        row(
            "pending pods",
            MetricName::PendingPods,
            latest(MetricName::PendingPods)
                .map(format::count)
                .unwrap_or_else(|| "-".into()),
            c[4],
        ),
        row(
            "webhook rej.",
            MetricName::WebhookRejections,
            per_min(MetricName::WebhookRejections),
            c[2],
        ),
    ];
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_findings(
    frame: &mut Frame,
    area: Rect,
    i: usize,
    id: &ClusterId,
    scroll: &crate::ui::widgets::scroll::Scroll,
    ctx: &Context,
) {
    if area.height == 0 {
        return;
    }
    let t = ctx.theme;
    let cluster = &ctx.store.clusters()[i];
    let mut lines = Vec::new();
    let alerts = ctx.store.alerts_for(id);
    let firing: Vec<_> = alerts.iter().filter(|a| a.is_firing()).collect();
    lines.push(Line::from(Span::styled(
        format!("alerts: {} firing, {} total", firing.len(), alerts.len()),
        t.title,
    )));
    for a in alerts.iter().take(6) {
        // Acked, silenced and inhibited alerts are dimmed, as in the Alerts view.
        let style = if a.is_firing() && !a.is_acked(ctx.now) {
            ctx.severity_style(a.severity)
        } else {
            t.muted
        };
        let rb = ctx.runbook_marker(a);
        lines.push(Line::from(vec![
            Span::styled(format!("  {} {} ", a.state.as_str(), a.name), style),
            Span::styled(format!("{} ", format::age(ctx.now, a.first_seen)), t.muted),
            Span::styled(format!("{rb} "), t.accent),
            Span::styled(super::alert_ack::summary_with_note(a, ctx), t.text),
        ]));
    }
    kube_lines(&mut lines, id, ctx);
    policy_lines(&mut lines, id, ctx);
    let issues = cluster.health_issues.len();
    lines.push(Line::from(Span::styled(
        format!(
            "health issues: {}",
            if !cluster.is_described() {
                // They come with the description: "none" would be a guess.
                "not known until described".to_string()
            } else if issues == 0 {
                "none".to_string()
            } else {
                issues.to_string()
            }
        ),
        t.title,
    )));
    for h in &cluster.health_issues {
        lines.push(Line::from(Span::styled(
            format!("  {}: {}", h.code, h.message),
            t.warning,
        )));
    }
    // No insight at all is "none reported", never a reassuring PASSING.
    let insights = if cluster.insights.is_empty() {
        format!("none reported{}", eks_caveat(id, ctx))
    } else {
        cluster.insight_summary().as_str().to_string()
    };
    lines.push(Line::from(Span::styled(
        format!("upgrade insights: {insights}"),
        t.title,
    )));
    for ins in cluster
        .insights
        .iter()
        .filter(|x| x.status != InsightStatus::Passing)
    {
        let style = if ins.status == InsightStatus::Error {
            t.critical
        } else {
            t.warning
        };
        lines.push(Line::from(Span::styled(
            format!("  {} {}: {}", ins.status.as_str(), ins.name, ins.reason),
            style,
        )));
        // DescribeInsight's detail arrives while the cluster is on screen.
        if let Some(detail) = &ins.detail {
            lines.push(Line::from(vec![
                Span::styled("    recommendation: ", t.muted),
                Span::styled(detail.recommendation.clone(), t.text),
            ]));
            for dep in &detail.deprecations {
                let replaced = dep
                    .replaced_with
                    .as_ref()
                    .map(|r| format!(" -> {r}"))
                    .unwrap_or_default();
                let removed = dep
                    .stop_serving_version
                    .as_ref()
                    .map(|v| format!(" (removed in {v})"))
                    .unwrap_or_default();
                lines.push(Line::from(Span::styled(
                    format!("    {}{replaced}{removed}", dep.usage),
                    t.text,
                )));
                for (agent, requests, _) in &dep.clients {
                    lines.push(Line::from(vec![
                        Span::styled(format!("      {requests:>6} calls/30d  "), t.muted),
                        Span::styled(agent.clone(), t.accent),
                    ]));
                }
            }
        }
    }
    if cluster.addons.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("add-ons: none reported{}", eks_caveat(id, ctx)),
            t.title,
        )));
    } else {
        let addons = cluster
            .addons
            .iter()
            .map(|a| {
                format!(
                    "{} {}{}",
                    a.name,
                    a.version,
                    if a.status == "ACTIVE" {
                        String::new()
                    } else {
                        format!(" ({})", a.status)
                    }
                )
            })
            .collect::<Vec<_>>()
            .join(" · ");
        lines.push(Line::from(vec![
            Span::styled("add-ons: ", t.title),
            Span::styled(addons, t.muted),
        ]));
    }
    // j/k and page keys scroll these; a marker says when more lies below.
    let width = usize::from(area.width).max(1);
    let wrapped: usize = lines.iter().map(|l| l.width().div_ceil(width).max(1)).sum();
    let top = scroll.at(wrapped, area.height);
    let more = wrapped > usize::from(top) + usize::from(area.height);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((top, 0)),
        area,
    );
    if more && area.height > 0 {
        let marker = Rect {
            x: area.x + area.width.saturating_sub(14),
            y: area.y + area.height - 1,
            width: 14.min(area.width),
            height: 1,
        };
        frame.render_widget(
            Paragraph::new(format!("{} more (j)", ctx.glyphs.down)).style(t.accent),
            marker,
        );
    }
}

/// What the cluster's API server and the Argo CD hub say about it.
fn kube_lines(lines: &mut Vec<Line<'static>>, id: &ClusterId, ctx: &Context) {
    let t = ctx.theme;
    match ctx.store.kube_signals(id) {
        None => lines.push(Line::from(Span::styled(
            "kubernetes: not connected (connects while the cluster is on screen, has firing alerts or is in the wave in progress or next to start)",
            t.muted,
        ))),
        Some(k) => match &k.connection {
            Connection::Idle => lines.push(Line::from(Span::styled(
                "kubernetes: idle (not of interest now)",
                t.muted,
            ))),
            Connection::Unavailable { reason } => lines.push(Line::from(vec![
                Span::styled("kubernetes: unavailable: ", t.title),
                Span::styled(reason.clone(), t.critical),
            ])),
            Connection::Connected => {
                // Only what is wrong is counted; a healthy cluster reads as one short line.
                let mut parts = vec![format!("{} nodes", k.nodes_total)];
                let counts = [
                    (k.not_ready_nodes.len(), "NotReady"),
                    (k.crashing_pods.len(), "crashing pods"),
                    (k.blocking_pdbs.len(), "PDBs blocking drains"),
                    (k.warning_events.len(), "warning events"),
                ];
                parts.extend(counts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!("{n} {what}")));
                if parts.len() == 1 {
                    parts.push("all healthy".into());
                }
                let summary = format!("kubernetes: {}", parts.join(" · "));
                lines.push(Line::from(Span::styled(summary, t.title)));
                for n in &k.not_ready_nodes {
                    let since = n
                        .since
                        .map(|s| format!(" for {}", format::age(ctx.now, s)))
                        .unwrap_or_default();
                    lines.push(Line::from(Span::styled(
                        format!("  node {} NotReady{since}: {}", n.name, n.reason),
                        t.critical,
                    )));
                }
                for p in &k.crashing_pods {
                    lines.push(Line::from(Span::styled(
                        format!("  pod {}/{} {} ({} restarts)", p.namespace, p.name, p.reason, p.restarts),
                        t.warning,
                    )));
                }
                for p in &k.blocking_pdbs {
                    lines.push(Line::from(Span::styled(
                        format!(
                            "  PDB {}/{} allows 0 disruptions ({}/{} healthy): drains will hang",
                            p.namespace, p.name, p.current_healthy, p.desired_healthy
                        ),
                        t.warning,
                    )));
                }
                for w in &k.single_replica {
                    lines.push(Line::from(Span::styled(
                        format!("  deployment {}/{} has a single replica", w.namespace, w.name),
                        t.info,
                    )));
                }
                for e in k.warning_events.iter().take(5) {
                    lines.push(Line::from(vec![
                        Span::styled(format!("  {} ×{} ", e.reason, e.count), t.warning),
                        Span::styled(format!("{} {}: ", e.namespace, e.object), t.muted),
                        Span::styled(e.message.clone(), t.text),
                    ]));
                }
            }
        },
    }
    let apps = ctx.store.applications_on(id);
    for hub in ctx
        .store
        .sources()
        .filter(|s| s.name.starts_with("argocd:"))
    {
        if hub.status(ctx.now) != SourceStatus::Ok {
            lines.push(Line::from(vec![
                Span::styled(format!("argo cd: {} is not answering: ", hub.name), t.title),
                Span::styled(
                    hub.last_error
                        .clone()
                        .unwrap_or_else(|| "no data yet".into()),
                    t.critical,
                ),
            ]));
        }
    }
    if !apps.is_empty() {
        let unhealthy: Vec<_> = apps.iter().filter(|a| a.health != "Healthy").collect();
        lines.push(Line::from(Span::styled(
            if unhealthy.is_empty() {
                format!("argo cd: {} applications, all healthy", apps.len())
            } else {
                format!(
                    "argo cd: {} applications, {} not healthy",
                    apps.len(),
                    unhealthy.len()
                )
            },
            t.title,
        )));
        for a in unhealthy {
            let style = if a.health == "Degraded" {
                t.critical
            } else {
                t.warning
            };
            lines.push(Line::from(Span::styled(
                format!(
                    "  {} {} {}{}",
                    a.name,
                    a.health,
                    a.sync,
                    a.message
                        .as_ref()
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                ),
                style,
            )));
        }
    }
}

/// Resources listed under a failing PolicyReport result before "+N more".
const POLICY_RESOURCES_SHOWN: usize = 5;

/// The policies failing on the cluster (Security Hub and PolicyReports together), the
/// PolicyReports' summary, and their failing results by policy and rule with the
/// resources.
fn policy_lines(lines: &mut Vec<Line<'static>>, id: &ClusterId, ctx: &Context) {
    let t = ctx.theme;
    let failures = ctx.store.policy_failures(id);
    let reports = ctx
        .store
        .kube_signals(id)
        .filter(|k| k.connection == Connection::Connected)
        .map(|k| k.policy_reports.as_ref());
    let resources: usize = failures.iter().map(|f| f.failing).sum();
    let mut head = if failures.is_empty() {
        "policies: none failing".to_string()
    } else {
        format!(
            "policies: {} failing on {resources} resource{}",
            failures.len(),
            if resources == 1 { "" } else { "s" }
        )
    };
    head.push_str(&match reports {
        None => " · PolicyReports: not read (not connected)".to_string(),
        Some(None) => " · PolicyReports: none served".to_string(),
        Some(Some(r)) => format!(
            " · PolicyReports: {} pass · {} fail · {} warn · {} error · {} skip",
            r.summary.pass, r.summary.fail, r.summary.warn, r.summary.error, r.summary.skip
        ),
    });
    lines.push(Line::from(Span::styled(head, t.title)));
    for f in &failures {
        lines.push(Line::from(vec![
            Span::styled(format!("  {} ", f.policy), ctx.severity_style(f.severity)),
            Span::styled(
                format!("{} failing · {}", f.failing, f.sources.join(", ")),
                t.muted,
            ),
        ]));
    }
    for r in reports.flatten().iter().flat_map(|r| &r.failing) {
        let severity = r.severity.as_deref().unwrap_or("no severity");
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "    {}/{} {} ({severity}) ×{}: ",
                    r.policy, r.rule, r.result, r.count
                ),
                ctx.severity_style(r.alert_severity()),
            ),
            Span::styled(r.message.clone(), t.text),
        ]));
        for resource in r.resources.iter().take(POLICY_RESOURCES_SHOWN) {
            lines.push(Line::from(Span::styled(
                format!("      {resource}"),
                t.muted,
            )));
        }
        let more = r
            .count
            .saturating_sub(r.resources.len().min(POLICY_RESOURCES_SHOWN));
        if more > 0 {
            lines.push(Line::from(Span::styled(
                format!("      +{more} more"),
                t.muted,
            )));
        }
    }
}

/// When the cluster's EKS source has had errors, "none reported" may mean "could not be
/// read": say so, and point at the Sources view.
fn eks_caveat(id: &ClusterId, ctx: &Context) -> String {
    let name = format!("eks:{}/{}", id.account, id.region);
    match ctx.store.sources().find(|s| s.name == name) {
        Some(s) if s.errors > 0 => format!(
            " (but {name} has had {} failed calls{}: see Sources, 6)",
            s.errors,
            s.last_error
                .as_ref()
                .map(|e| format!(", last: {e}"))
                .unwrap_or_default()
        ),
        _ => String::new(),
    }
}
