//! Sources: one module per real system (and the demo simulator). Each runs as a tokio
//! task, owns its client, and sends `SourceEvent`s over a bounded channel. None touches
//! UI state.

pub mod alert_diff;
pub mod alertmanager;
pub mod argocd;
pub mod aws;
pub mod cloudwatch;
pub mod demo;
pub mod eks;
#[cfg(test)]
pub(crate) mod faults;
pub mod feed;
pub mod kube;
pub mod organizations;
pub mod remediation;
pub mod securityhub;

use tokio::sync::{mpsc, oneshot};

use crate::model::ClusterId;

/// Capacity of the channel from all sources to the app loop. Bounded so a flood of
/// events slows the sources down instead of growing memory.
pub const EVENT_CHANNEL_CAPACITY: usize = 1024;

/// The outcome of a write a source performed: a short human message either way.
pub type WriteResult = Result<String, String>;

/// A cluster as the Kubernetes and Argo CD sources need to know it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterTarget {
    pub id: ClusterId,
    pub arn: String,
    /// API server endpoint and CA (base64 PEM), from `DescribeCluster`.
    pub endpoint: Option<String>,
    pub certificate_authority: Option<String>,
    pub production: bool,
}

/// What the app can ask a source to do.
#[derive(Debug)]
pub enum SourceCommand {
    /// The cluster now on screen (its full metric set is wanted), or none.
    Focus(Option<ClusterId>),
    /// The fleet as known now, and the clusters whose insides matter, most important
    /// first: the one on screen, then those with firing alerts, then those in an active
    /// wave (`engine::interest`). Sent when either changes. Every source
    /// answers with `SourceEvent::Targeted { seq }` once it has applied them and sent the
    /// events that follow (applications and alerts tied to their clusters), so the engine
    /// knows when the picture is whole.
    Targets {
        seq: u64,
        fleet: Vec<ClusterTarget>,
        interest: Vec<ClusterId>,
    },
    /// Hold wave `wave` (index) of `rollout`: no new cell starts.
    PauseWave {
        rollout: String,
        wave: usize,
        by: String,
        reason: String,
        reply: oneshot::Sender<WriteResult>,
    },
    /// Release a paused or halted wave.
    ResumeWave {
        rollout: String,
        wave: usize,
        by: String,
        reply: oneshot::Sender<WriteResult>,
    },
    /// A console connected to a server (`--connect`): send this write to the server, which
    /// authorizes, carries out and audits it (or previews it, with `dry_run`).
    Relay {
        action: crate::actions::Action,
        dry_run: bool,
        os_user: String,
        reply: oneshot::Sender<WriteResult>,
    },
    /// Carry out or preview a write on one cluster (a runbook step).
    Remediate(remediation::RemediateRequest),
    /// Silence one alert (an ack) for `minutes`, with an exact matcher per label.
    SilenceAlert {
        alert: crate::model::AlertKey,
        matchers: std::collections::BTreeMap<String, String>,
        created_by: String,
        comment: String,
        minutes: u64,
        reply: oneshot::Sender<WriteResult>,
    },
    /// Expire the silences on one alert (an un-ack).
    ExpireSilences {
        alert: crate::model::AlertKey,
        ids: Vec<String>,
        reply: oneshot::Sender<WriteResult>,
    },
    /// Set the workflow status of the Security Hub findings behind one alert: NOTIFIED
    /// (an ack, with `note` by `by`) or back to NEW (an un-ack).
    UpdateFindings {
        alert: crate::model::AlertKey,
        notified: bool,
        by: String,
        note: String,
        reply: oneshot::Sender<WriteResult>,
    },
}

/// Sleeps until `at`, or forever when there is nothing scheduled (a `select!` branch).
pub async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Answers a wave command sent to a source that runs no rollouts, a remediation sent to
/// one that cannot carry it out, or a silence command sent to one that holds no
/// silences; other commands are ignored here.
pub fn refuse_wave(command: SourceCommand, source: &str) {
    // The requester may have stopped waiting.
    match command {
        SourceCommand::PauseWave { reply, .. } | SourceCommand::ResumeWave { reply, .. } => {
            let _ = reply.send(Err(format!("{source} runs no rollouts")));
        }
        SourceCommand::Remediate(request) => {
            let kind = request.remediation.op.kind();
            request.answer(Err(format!("{source} cannot carry out {kind}")));
        }
        SourceCommand::Relay { reply, .. } => {
            let _ = reply.send(Err(format!("{source} relays no writes to a server")));
        }
        SourceCommand::SilenceAlert { reply, .. } | SourceCommand::ExpireSilences { reply, .. } => {
            let _ = reply.send(Err(format!("{source} holds no Alertmanager silences")));
        }
        SourceCommand::UpdateFindings { reply, .. } => {
            let _ = reply.send(Err(format!("{source} holds no Security Hub findings")));
        }
        SourceCommand::Focus(_) | SourceCommand::Targets { .. } => {}
    }
}

/// A running source: its name and the way to send it commands.
#[derive(Clone, Debug)]
pub struct SourceHandle {
    pub name: String,
    pub commands: mpsc::Sender<SourceCommand>,
}

/// Sources that started or stopped while running: the accounts an organization
/// listing found or lost. Each is followed by `SourceEvent::SourcesChanged` on the
/// events channel, which orders it with the events. The engine tells the started ones
/// the fleet, waits for their first picture when they came with the first listing, and
/// forgets the stopped ones (their clusters, alerts and health go with them).
#[derive(Debug)]
pub enum SourceChange {
    Started(Vec<SourceHandle>),
    Stopped(Vec<String>),
}

/// Capacity of the channel of source changes: at most one of each kind per listing.
pub const CHANGE_CHANNEL_CAPACITY: usize = 16;

/// The sources a session runs, and the names each will report `Ready` under.
pub struct Running {
    pub handles: Vec<SourceHandle>,
    /// Sources started and stopped later (account discovery), when any can be.
    pub changes: Option<mpsc::Receiver<SourceChange>>,
    /// The feed of the server this console is connected to (`--connect`): its source's
    /// name and what it learns of the server.
    pub feed: Option<(String, feed::Link)>,
}

impl Running {
    /// The names of every source, for waiting on their first complete picture.
    pub fn names(&self) -> Vec<String> {
        self.handles.iter().map(|h| h.name.clone()).collect()
    }
}

/// Starts the real sources the config names: for every account and region, an EKS source
/// and a CloudWatch source sharing one request budget, the CloudWatch source following the
/// EKS source's cluster list; account discovery for an `[organization]`, which starts and
/// stops the same pairs for the member accounts as they come and go (reported on
/// `Running::changes`); the Kubernetes source for the clusters of interest; and the
/// Argo CD hub, if the config names one, with the plans file the setup already read.
pub async fn start_real(
    config: &crate::config::Config,
    plans: &std::collections::BTreeMap<String, crate::rollout::plan::Plan>,
    clock: crate::clock::Clock,
    events: mpsc::Sender<crate::model::SourceEvent>,
) -> Running {
    kube::connect::install_crypto_provider();
    let mut handles = Vec::new();
    // Shared with the Kubernetes source, which signs EKS tokens with them; discovery adds
    // the accounts it finds.
    let credentials = aws::AccountCredentials::default();
    let aggregation = config
        .securityhub
        .as_ref()
        .and_then(|s| s.aggregation_region.as_ref());
    for account in &config.accounts {
        // The aggregation region holds every region's findings, even one the account's
        // clusters are not read in.
        let extra = aggregation.filter(|r| !account.regions.contains(r));
        for region in account.regions.iter().chain(extra) {
            let reads_clusters = account.regions.contains(region);
            let sdk = aws::sdk_config(account, region).await;
            if reads_clusters {
                credentials.insert(&account.name, region, &sdk);
            }
            let scope = aws::AwsScope {
                account: account.clone(),
                region: region.clone(),
                sdk,
                budget: std::sync::Arc::new(aws::RequestBudget::new(
                    config.aws.max_requests_per_second,
                )),
                clusters: config.clusters.clone(),
                clock: clock.clone(),
            };
            if let Some(settings) = &config.securityhub
                && aggregation.is_none_or(|r| r == region)
            {
                handles.push(securityhub::spawn(
                    scope.clone(),
                    settings.clone(),
                    events.clone(),
                ));
            }
            if !reads_clusters {
                continue;
            }
            let (inventory_tx, inventory_rx) = tokio::sync::watch::channel(Vec::new());
            handles.push(eks::spawn(scope.clone(), events.clone(), inventory_tx));
            handles.push(cloudwatch::spawn(
                scope,
                config.cloudwatch.clone(),
                events.clone(),
                inventory_rx,
            ));
        }
    }
    let mut changes = None;
    if let Some(org) = &config.organization {
        let discovery = organizations::spawn(
            config,
            org,
            credentials.clone(),
            clock.clone(),
            events.clone(),
        )
        .await;
        handles.push(discovery.handle);
        changes = Some(discovery.changes);
    }
    handles.push(kube::spawn(
        config.kubernetes.clone(),
        credentials,
        clock.clone(),
        events.clone(),
    ));
    if !config.alertmanagers.is_empty() {
        handles
            .push(alertmanager::spawn(&config.alertmanagers, clock.clone(), events.clone()).await);
    }
    if let Some(hub) = &config.hub {
        match hub_client(config, hub).await {
            Ok(client) => handles.push(argocd::spawn(
                client,
                hub.clone(),
                plans.clone(),
                clock,
                events,
            )),
            Err(reason) => {
                // Shown as a failing source, never silently missing.
                let mut health = crate::model::SourceHealth::new(argocd::source_name(hub), 60);
                health.last_error = Some(reason);
                health.last_error_at = Some(clock.now());
                health.errors = 1;
                let _ = events.send(crate::model::SourceEvent::Health(health)).await;
            }
        }
    }
    Running {
        handles,
        changes,
        feed: None,
    }
}

/// A client for the hub from its kubeconfig context.
pub(crate) async fn hub_client(
    config: &crate::config::Config,
    hub: &crate::config::Hub,
) -> Result<::kube::Client, String> {
    let kubeconfig = kube::contexts::load_kubeconfig(config.kubernetes.kubeconfig.as_deref())
        .map_err(|e| format!("hub context {}: {e}", hub.context))?;
    // Say which file was read and what it has, not just "failed to load current context".
    if !kubeconfig.contexts.iter().any(|c| c.name == hub.context) {
        let file = match (
            &config.kubernetes.kubeconfig,
            std::env::var_os("KUBECONFIG"),
        ) {
            (Some(path), _) => path.display().to_string(),
            (None, Some(env)) => format!("$KUBECONFIG ({})", env.to_string_lossy()),
            (None, None) => "~/.kube/config".into(),
        };
        let known: Vec<&str> = kubeconfig
            .contexts
            .iter()
            .map(|c| c.name.as_str())
            .collect();
        return Err(if known.is_empty() {
            format!(
                "hub context '{}': no kubeconfig contexts found in {file} (missing or empty)",
                hub.context
            )
        } else {
            format!(
                "hub context '{}' is not in {file}; it has: {}",
                hub.context,
                known.join(", ")
            )
        });
    }
    let target = ClusterTarget {
        id: ClusterId::new("hub", "", hub.context.clone()),
        arn: String::new(),
        endpoint: None,
        certificate_authority: None,
        production: false,
    };
    kube::connect::kubeconfig_client(&kubeconfig, &hub.context, &target)
        .await
        .map(|(client, _)| client)
        .map_err(|e| e.to_string())
}

/// Starts what the setup asks for: the demo fleet, or the real sources of the config.
pub async fn start(
    setup: &crate::app::Setup,
    clock: crate::clock::Clock,
    events: mpsc::Sender<crate::model::SourceEvent>,
) -> Running {
    if let Some(connect) = &setup.connect {
        // The server reads the fleet; this console reads only its feed.
        let (handle, link) = feed::spawn(connect.clone(), clock, events);
        let name = handle.name.clone();
        return Running {
            handles: vec![handle],
            changes: None,
            feed: Some((name, link)),
        };
    }
    match (&setup.config, setup.demo_mode) {
        (Some(config), false) => start_real(config, &setup.plans, clock, events).await,
        _ => Running {
            handles: vec![demo::spawn(setup.demo.clone(), clock, events)],
            changes: None,
            feed: None,
        },
    }
}
