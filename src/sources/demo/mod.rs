//! TEMPORARY STUB (replaced by the real simulator at merge).
use std::collections::BTreeMap;

use tokio::sync::mpsc;

use crate::clock::Clock;
use crate::model::*;
use crate::rollout::RolloutError;
use crate::sources::{SourceCommand, SourceHandle};

pub const SOURCE_NAME: &str = "demo";

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub seed: u64,
    pub clusters: usize,
    pub speed: f64,
}
impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            seed: 7,
            clusters: 48,
            speed: 10.0,
        }
    }
}
pub struct DemoFleet {
    start: Timestamp,
    rollout: Rollout,
    n: usize,
}
impl DemoFleet {
    pub fn new(options: &DemoOptions, start: Timestamp) -> Self {
        let n = options.clusters;
        let cells = |env: &str, r: std::ops::Range<usize>, phase| -> Vec<Cell> {
            r.map(|i| Cell {
                cluster: ClusterId::new(
                    "platform-prod",
                    "us-east-1",
                    format!("{env}-use1-app-{i:02}"),
                ),
                phase,
                since: start,
                message: String::new(),
            })
            .collect()
        };
        let wave = |name: &str, env: Environment, cells: Vec<Cell>, state| Wave {
            name: name.into(),
            environment: env,
            cells,
            state,
            soak_secs: 1800,
            max_parallel: 2,
        };
        let rollout = Rollout {
            name: "eks-1-31-upgrade".into(),
            source: SOURCE_NAME.into(),
            description: "Upgrade EKS control planes to Kubernetes 1.31".into(),
            waves: vec![
                wave(
                    "staging",
                    Environment::Staging,
                    cells("staging", 0..n / 2, CellPhase::Updating),
                    WaveState::Running,
                ),
                wave(
                    "prod-1",
                    Environment::Prod,
                    cells("prod", n / 2..n, CellPhase::Pending),
                    WaveState::Pending,
                ),
            ],
            gates: vec![Gate {
                alarm: "eks-apiserver-5xx-high".into(),
                status: GateStatus::Ok,
            }],
        };
        Self { start, rollout, n }
    }
    pub fn initial_events(&mut self) -> Vec<SourceEvent> {
        let mut clusters = vec![];
        for w in &self.rollout.waves {
            for c in &w.cells {
                clusters.push(Cluster {
                    id: c.cluster.clone(),
                    arn: format!(
                        "arn:aws:eks:us-east-1:111122223333:cluster/{}",
                        c.cluster.name
                    ),
                    version: "1.30".into(),
                    platform_version: "eks.12".into(),
                    status: ClusterStatus::Active,
                    environment: w.environment.clone(),
                    team: Some("payments".into()),
                    health_issues: vec![],
                    insights: vec![],
                    updates: vec![],
                    addons: vec![],
                });
            }
        }
        let minute = self.start.timestamp() / 60;
        let mut ev = vec![];
        for (i, c) in clusters.iter().enumerate() {
            let samples = (0..60)
                .flat_map(|m| {
                    MetricName::ALL.iter().map(move |&metric| MetricSample {
                        metric,
                        minute: minute - 59 + m,
                        value: (i as f32 + 1.0) * 600.0 + (m as f32 * 0.3).sin() * 100.0,
                    })
                })
                .collect();
            ev.push(SourceEvent::Metrics {
                cluster: c.id.clone(),
                samples,
            });
        }
        let a = &clusters[0];
        let alert = Alert {
            key: AlertKey::new(
                AlertSource::Cloudwatch,
                Some(&a.id),
                "eks-apiserver-5xx-high",
                "",
            ),
            source: AlertSource::Cloudwatch,
            cluster: Some(a.id.clone()),
            name: "eks-apiserver-5xx-high".into(),
            severity: Severity::Critical,
            state: AlertState::Firing,
            first_seen: self.start,
            last_change: self.start,
            summary: "5xx at 4.2% of requests".into(),
            labels: BTreeMap::new(),
            runbook_url: None,
            ack: None,
        };
        let mut out = vec![SourceEvent::ClusterInventory {
            source: SOURCE_NAME.into(),
            clusters,
        }];
        out.extend(ev);
        out.push(SourceEvent::Alerts(vec![alert]));
        out.push(SourceEvent::Rollout(self.rollout.clone()));
        let mut h = SourceHealth::new(SOURCE_NAME, 60);
        h.last_ok = Some(self.start);
        h.calls = 1;
        out.push(SourceEvent::Health(h));
        out.push(SourceEvent::Ready {
            source: SOURCE_NAME.into(),
        });
        let _ = self.n;
        out
    }
    pub fn advance_to(&mut self, _now: Timestamp) -> Vec<SourceEvent> {
        vec![]
    }
    pub fn focus(&mut self, _c: Option<ClusterId>, _now: Timestamp) -> Vec<SourceEvent> {
        vec![]
    }
    pub fn pause_wave(
        &mut self,
        _r: &str,
        wave: usize,
        by: &str,
        reason: &str,
        now: Timestamp,
    ) -> Result<Vec<SourceEvent>, RolloutError> {
        let w = &mut self.rollout.waves[wave];
        if w.state.is_held() {
            return Err(RolloutError::Refused(format!(
                "wave {} is already paused",
                w.name
            )));
        }
        w.state = WaveState::Paused {
            by: by.into(),
            reason: reason.into(),
            at: now,
        };
        Ok(vec![SourceEvent::Rollout(self.rollout.clone())])
    }
    pub fn resume_wave(
        &mut self,
        _r: &str,
        wave: usize,
        _by: &str,
        _now: Timestamp,
    ) -> Result<Vec<SourceEvent>, RolloutError> {
        let w = &mut self.rollout.waves[wave];
        if !w.state.is_held() {
            return Err(RolloutError::Refused(format!(
                "wave {} is not paused or halted",
                w.name
            )));
        }
        w.state = WaveState::Running;
        Ok(vec![SourceEvent::Rollout(self.rollout.clone())])
    }
}
pub fn spawn(
    options: DemoOptions,
    clock: Clock,
    events: mpsc::Sender<SourceEvent>,
) -> SourceHandle {
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let mut fleet = DemoFleet::new(&options, clock.now());
        for e in fleet.initial_events() {
            if events.send(e).await.is_err() {
                return;
            }
        }
        while let Some(cmd) = rx.recv().await {
            let now = clock.now();
            let (res, evs) = match cmd {
                SourceCommand::Focus(c) => (None, fleet.focus(c, now)),
                SourceCommand::PauseWave {
                    rollout,
                    wave,
                    by,
                    reason,
                    reply,
                } => match fleet.pause_wave(&rollout, wave, &by, &reason, now) {
                    Ok(e) => (Some((reply, Ok("paused".to_string()))), e),
                    Err(e) => (Some((reply, Err(e.to_string()))), vec![]),
                },
                SourceCommand::ResumeWave {
                    rollout,
                    wave,
                    by,
                    reply,
                } => match fleet.resume_wave(&rollout, wave, &by, now) {
                    Ok(e) => (Some((reply, Ok("resumed".to_string()))), e),
                    Err(e) => (Some((reply, Err(e.to_string()))), vec![]),
                },
            };
            for e in evs {
                let _ = events.send(e).await;
            }
            if let Some((reply, r)) = res {
                let _ = reply.send(r);
            }
        }
    });
    SourceHandle {
        name: SOURCE_NAME.into(),
        commands: tx,
    }
}
