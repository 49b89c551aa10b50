//! `fleetdeck snapshot`: run the engine to its first complete picture, print it, exit.
//! The JSON shape is documented in the README; later versions add keys, never remove them.

use std::io::Write;
use std::time::Duration;

use color_eyre::eyre::{Result, bail};
use serde::Serialize;

use crate::app::Setup;
use crate::cli::Format;
use crate::engine::Engine;
use crate::model::{Store, Timestamp};
use crate::runbook::RunbookSet;

/// How long to wait for every source's first complete picture.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub generated_at: Timestamp,
    pub mode: &'static str,
    /// The picture is the simulated demo fleet, not real systems.
    pub demo: bool,
    pub clusters: Vec<ClusterRow>,
    pub alerts: Vec<AlertRow>,
    pub rollouts: Vec<RolloutRow>,
    pub sources: Vec<SourceRow>,
}

#[derive(Debug, Serialize)]
pub struct ClusterRow {
    pub name: String,
    pub account: String,
    pub region: String,
    pub environment: String,
    pub version: String,
    pub status: String,
    pub wave: Option<String>,
    pub alerts_firing: u32,
    pub health: String,
    pub arn: String,
    /// Whether `DescribeCluster` was read: `false` for a cluster only listed (its
    /// description failed, or had not come when the picture was printed); then
    /// `environment`, `version` and `arn` are empty and `status` is `UNKNOWN`.
    pub described: bool,
    /// Resources failing a policy (Security Hub findings and PolicyReport results), the
    /// fleet's POL column.
    pub policies_failing: usize,
    /// The policies failing, most severe first: `{policy, failing, severity, sources}`.
    pub policies: Vec<crate::model::PolicyFailure>,
    /// The cluster's PolicyReport counts (`pass`, `fail`, `warn`, `error`, `skip`) when
    /// its API server was read and serves PolicyReports; else null.
    pub policy_reports: Option<crate::model::PolicyCounts>,
}

#[derive(Debug, Serialize)]
pub struct AlertRow {
    pub id: String,
    pub cluster: Option<String>,
    pub account: Option<String>,
    pub region: Option<String>,
    pub name: String,
    pub severity: String,
    pub state: String,
    pub since: Timestamp,
    /// The matched local runbook's id, else the alert's own runbook link, else null.
    pub runbook: Option<String>,
    pub summary: String,
    pub source: String,
    /// Who acked, silenced or inhibits it and until when, or null.
    pub ack: Option<AckRow>,
    /// The alert's labels (for policy findings: `policy`, `rule`, `count`, ...).
    pub labels: std::collections::BTreeMap<String, String>,
}

/// An alert's ack: `kind` is `local` (this console's audit log), `silence` (Alertmanager
/// silences, their ids in `silences`), `inhibited` (Alertmanager inhibition or mute) or
/// `notified` (Security Hub findings whose workflow status is NOTIFIED).
#[derive(Debug, Serialize)]
pub struct AckRow {
    pub by: String,
    pub until: Option<Timestamp>,
    pub comment: String,
    pub kind: &'static str,
    pub silences: Vec<String>,
}

impl AckRow {
    fn of(alert: &crate::model::Alert, now: Timestamp) -> Option<Self> {
        use crate::model::AckKind;
        let ack = alert.ack.as_ref().filter(|_| alert.is_acked(now))?;
        let (kind, silences) = match &ack.kind {
            AckKind::Local => ("local", Vec::new()),
            AckKind::Silence { ids } => ("silence", ids.clone()),
            AckKind::Inhibited { .. } => ("inhibited", Vec::new()),
            AckKind::Notified { .. } => ("notified", Vec::new()),
        };
        Some(Self {
            by: ack.by.clone(),
            until: ack.until,
            comment: ack.comment.clone(),
            kind,
            silences,
        })
    }
}

#[derive(Debug, Serialize)]
pub struct RolloutRow {
    pub name: String,
    /// `demo`, or `argocd:{context}` for an ApplicationSet.
    pub source: String,
    pub percent: f64,
    pub waves: Vec<WaveRow>,
}

#[derive(Debug, Serialize)]
pub struct WaveRow {
    pub name: String,
    pub state: String,
    pub cells_total: usize,
    pub cells_done: usize,
    pub paused_by: Option<String>,
    pub reason: Option<String>,
    /// Every hold on the wave, in words (operator, circuit breaker, soak, insights).
    pub holds: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct SourceRow {
    pub name: String,
    pub healthy: bool,
    /// Why a source has nothing to say yet (the Kubernetes source with no cluster of
    /// interest), or null. A waiting source is not healthy, and not failing either.
    pub waiting: Option<String>,
    pub last_ok: Option<Timestamp>,
    pub calls: u64,
    pub errors: u64,
    pub throttles: u64,
    pub last_error: Option<String>,
    /// How fast an AWS source may call its account and region now (`per_second`,
    /// `ceiling`, `cut_at`, `cuts`); null for the others.
    pub pace: Option<crate::model::Pace>,
    /// For the source that lists an organization's accounts (`organizations`): how many
    /// it `discovered`, `included` and how many are `failing`; null for the others.
    pub accounts: Option<crate::model::AccountCounts>,
}

/// Builds the snapshot document from a store.
pub fn build(
    store: &Store,
    runbooks: &RunbookSet,
    mode: &'static str,
    demo: bool,
    now: Timestamp,
) -> Snapshot {
    let clusters = store
        .clusters()
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let policies = store.policy_failures(&c.id);
            ClusterRow {
                name: c.id.name.clone(),
                account: c.id.account.clone(),
                region: c.id.region.clone(),
                environment: c
                    .known_environment()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                version: c.version.clone(),
                status: c.status.to_string(),
                wave: store.wave_label(&c.id),
                alerts_firing: store.firing_total(i),
                health: store.health(i, now).as_str().into(),
                arn: c.arn.clone(),
                described: c.is_described(),
                policies_failing: policies.iter().map(|f| f.failing).sum(),
                policies,
                policy_reports: store
                    .kube_signals(&c.id)
                    .and_then(|s| s.policy_reports.as_ref())
                    .map(|r| r.summary),
            }
        })
        .collect();
    let alerts = store
        .alerts_sorted()
        .into_iter()
        .map(|a| AlertRow {
            id: a.key.to_string(),
            cluster: a.cluster.as_ref().map(|c| c.name.clone()),
            // A cluster known only by an Alertmanager label has no account or region.
            account: a
                .cluster
                .as_ref()
                .map(|c| c.account.clone())
                .filter(|s| !s.is_empty()),
            region: a
                .cluster
                .as_ref()
                .map(|c| c.region.clone())
                .filter(|s| !s.is_empty()),
            name: a.name.clone(),
            severity: a.severity.to_string(),
            state: a.state.as_str().into(),
            since: a.first_seen,
            runbook: runbooks
                .matching(a)
                .first()
                .map(|r| r.id.clone())
                .or_else(|| a.runbook_url.clone()),
            summary: a.summary.clone(),
            source: a.source.as_str().into(),
            ack: AckRow::of(a, now),
            labels: a.labels.clone(),
        })
        .collect();
    let rollouts = store
        .rollouts()
        .iter()
        .map(|r| RolloutRow {
            name: r.name.clone(),
            source: r.source.clone(),
            percent: (r.percent() * 10.0).round() / 10.0,
            waves: r
                .waves
                .iter()
                .map(|w| WaveRow {
                    name: w.name.clone(),
                    state: w.state.name().into(),
                    cells_total: w.cells.len(),
                    cells_done: w.cells_done(),
                    paused_by: w.paused_by().map(str::to_string),
                    reason: w.state.reason(),
                    holds: w.holds.iter().map(|h| h.describe()).collect(),
                })
                .collect(),
        })
        .collect();
    let sources = store
        .sources()
        .map(|s| SourceRow {
            name: s.name.clone(),
            healthy: s.is_healthy(now),
            waiting: s.waiting.clone(),
            last_ok: s.last_ok,
            calls: s.calls,
            errors: s.errors,
            throttles: s.throttles,
            last_error: s.last_error.clone(),
            pace: s.pace,
            accounts: s.accounts,
        })
        .collect();
    Snapshot {
        generated_at: now,
        mode,
        demo,
        clusters,
        alerts,
        rollouts,
        sources,
    }
}

/// Runs the engine to its first complete picture, then prints it.
pub async fn run(setup: Setup, format: Format) -> Result<()> {
    let clock = setup.clock();
    let mut engine = Engine::start(&setup, clock).await;
    if let Err(unready) = engine.until_ready(READY_TIMEOUT).await {
        // A region that never answers must not hide the others: print what the rest
        // said, with the silent sources reported as failing.
        if !unready.silent.is_empty() {
            eprintln!(
                "fleetdeck: no answer within {}s from: {}",
                READY_TIMEOUT.as_secs(),
                unready.silent.join(", ")
            );
        }
        if !unready.behind.is_empty() {
            eprintln!(
                "fleetdeck: not yet tied to the fleet within {}s: {}",
                READY_TIMEOUT.as_secs(),
                unready.behind.join(", ")
            );
        }
    }
    let doc = build(
        engine.store(),
        &setup.runbooks,
        engine.mode().as_str(),
        setup.demo_mode,
        engine.now(),
    );
    drop(engine);
    let out = match format {
        Format::Json => serde_json::to_string_pretty(&doc)?,
        Format::Table => table(&doc),
    };
    // `snapshot | head` closes the pipe early: that is the reader's choice, not an error.
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{out}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => return Err(e.into()),
        _ => {}
    }
    // The picture is printed either way (its `sources` say what went wrong), but a script
    // must not read a fleet no source answered for as a quiet one. A source with nothing
    // to ask (Kubernetes before any cluster is listed) answers for nothing.
    let tried: Vec<&SourceRow> = doc
        .sources
        .iter()
        .filter(|s| s.calls > 0 || s.errors > 0)
        .collect();
    if !tried.is_empty() && tried.iter().all(|s| !s.healthy) {
        bail!(
            "no source answered ({} tried); the picture holds no live data",
            tried.len()
        );
    }
    Ok(())
}

/// Plain-text tables for a terminal or a ticket.
pub fn table(doc: &Snapshot) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "fleetdeck snapshot {} ({}{})",
        doc.generated_at.format("%Y-%m-%d %H:%M:%S UTC"),
        doc.mode,
        if doc.demo {
            ", SIMULATED DEMO FLEET"
        } else {
            ""
        }
    );
    let _ = writeln!(s, "\nCLUSTERS ({})", doc.clusters.len());
    let _ = writeln!(
        s,
        "{:<26} {:<18} {:<15} {:<8} {:<5} {:<9} {:<22} {:>6} {:>6}",
        "NAME", "ACCOUNT", "REGION", "ENV", "VER", "STATUS", "WAVE/PHASE", "ALERTS", "POL"
    );
    for c in &doc.clusters {
        // Only listed: no environment or version to print, and no status but that.
        let (environment, version, status) = if c.described {
            (
                c.environment.as_str(),
                c.version.as_str(),
                c.status.as_str(),
            )
        } else {
            ("-", "-", "NOT DESCRIBED")
        };
        let _ = writeln!(
            s,
            "{:<26} {:<18} {:<15} {:<8} {:<5} {:<9} {:<22} {:>6} {:>6}",
            c.name,
            c.account,
            c.region,
            environment,
            version,
            status,
            c.wave.as_deref().unwrap_or("-"),
            c.alerts_firing,
            c.policies_failing
        );
    }
    let _ = writeln!(s, "\nALERTS ({})", doc.alerts.len());
    let _ = writeln!(
        s,
        "{:<9} {:<9} {:<32} {:<26} {:<20} RUNBOOK",
        "SEVERITY", "STATE", "NAME", "CLUSTER", "SINCE"
    );
    for a in &doc.alerts {
        let _ = writeln!(
            s,
            "{:<9} {:<9} {:<32} {:<26} {:<20} {}",
            a.severity,
            // A held-back alert says why: silenced, inhibited or acked.
            match a.ack.as_ref().map(|k| k.kind) {
                Some("silence") => "silenced",
                Some("inhibited") => "inhibited",
                Some(_) => "acked",
                None => a.state.as_str(),
            },
            a.name,
            a.cluster.as_deref().unwrap_or("-"),
            a.since.format("%Y-%m-%d %H:%M"),
            a.runbook.as_deref().unwrap_or("-")
        );
    }
    for r in &doc.rollouts {
        let _ = writeln!(s, "\nROLLOUT {} ({:.0}%)", r.name, r.percent);
        for w in &r.waves {
            let held = match (&w.paused_by, &w.reason) {
                (Some(by), Some(reason)) => format!("paused by {by}: {reason}"),
                (None, Some(reason)) => reason.clone(),
                _ => String::new(),
            };
            let _ = writeln!(
                s,
                "  {:<10} {:<8} {:>3}/{:<3} {}",
                w.name, w.state, w.cells_done, w.cells_total, held
            );
        }
    }
    let _ = writeln!(s, "\nSOURCES");
    for src in &doc.sources {
        let _ = writeln!(
            s,
            "  {:<12} {:<9} calls {} errors {} throttles {}{}{}",
            src.name,
            match (&src.waiting, src.healthy) {
                (Some(_), _) => "waiting",
                (None, true) => "healthy",
                (None, false) => "UNHEALTHY",
            },
            src.calls,
            src.errors,
            src.throttles,
            src.pace
                .map(|p| format!(" rate {:.1}/s of {}/s", p.per_second, p.ceiling))
                .unwrap_or_default(),
            src.last_error
                .as_ref()
                .map(|e| format!(" last error: {e}"))
                .unwrap_or_default()
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{
        Cluster, ClusterId, ClusterStatus, Described, Environment, Pace, SourceEvent, SourceHealth,
    };

    #[test]
    fn an_aws_source_says_its_pace_and_the_others_null() {
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        let mut store = Store::new();
        let mut eks = SourceHealth::new("eks:prod/us-east-1", 60);
        eks.last_ok = Some(now);
        eks.pace = Some(Pace {
            per_second: 4.0,
            ceiling: 10.0,
            cut_at: Some(now),
            cuts: 1,
        });
        store.apply(SourceEvent::Health(eks), now);
        store.apply(
            SourceEvent::Health(SourceHealth::new("alertmanager:amp", 60)),
            now,
        );
        let doc = build(&store, &RunbookSet::default(), "operator", false, now);
        let json = serde_json::to_value(&doc).expect("json");
        let pace = |name: &str| {
            json["sources"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["name"] == name))
                .map(|s| s["pace"].clone())
                .expect("the source")
        };
        assert_eq!(
            pace("eks:prod/us-east-1"),
            serde_json::json!({
                "per_second": 4.0,
                "ceiling": 10.0,
                "cut_at": "2026-09-21T14:13:20Z",
                "cuts": 1
            })
        );
        assert_eq!(pace("alertmanager:amp"), serde_json::Value::Null);
        let text = table(&doc);
        assert!(text.contains("throttles 0 rate 4.0/s of 10/s"), "{text}");
    }

    fn cluster(name: &str, described: Described) -> Cluster {
        let yes = described == Described::Yes;
        Cluster {
            id: ClusterId::new("acct", "us-east-1", name),
            described,
            arn: if yes {
                format!("arn:{name}")
            } else {
                String::new()
            },
            version: if yes { "1.31".into() } else { String::new() },
            platform_version: String::new(),
            status: if yes {
                ClusterStatus::Active
            } else {
                ClusterStatus::Unknown
            },
            // What a placeholder may hold is never printed as its environment.
            environment: Environment::Prod,
            team: None,
            health_issues: vec![],
            insights: vec![],
            updates: vec![],
            addons: vec![],
            support: None,
            endpoint: None,
            certificate_authority: None,
        }
    }

    /// `described` is a key added to every cluster; one only listed prints no environment
    /// or version it does not have, and is not healthy.
    #[test]
    fn a_cluster_only_listed_is_printed_as_not_described() {
        let now = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
        let mut store = Store::new();
        store.apply(
            SourceEvent::ClusterInventory {
                source: "eks:acct/us-east-1".into(),
                clusters: vec![
                    cluster("alpha", Described::Yes),
                    cluster("bravo", Described::Failed),
                ],
            },
            now,
        );
        let (runbooks, _) = RunbookSet::load(None);
        let doc = build(&store, &runbooks, "operator", false, now);
        let json = serde_json::to_value(&doc).expect("serializes");
        let row = |i: usize, k: &str| json["clusters"][i][k].clone();
        assert_eq!(row(0, "described"), true);
        assert_eq!(row(0, "environment"), "prod");
        assert_eq!(row(1, "described"), false);
        assert_eq!(row(1, "environment"), "");
        assert_eq!(row(1, "version"), "");
        assert_eq!(row(1, "status"), "UNKNOWN");
        assert_eq!(row(1, "health"), "unknown");
        let text = table(&doc);
        let bravo = text
            .lines()
            .find(|l| l.starts_with("bravo"))
            .expect("listed");
        assert!(
            bravo.contains(" -  ") && bravo.contains("NOT DESCRIBED"),
            "{bravo}"
        );
        assert!(!bravo.contains("prod "), "{bravo}");
    }
}
