//! What the sources are told: the fleet as the store knows it, and the clusters whose
//! insides matter (the one on screen, those with firing alerts, those in an active wave).
//! Sources need the fleet to tie what they see to clusters (an Argo CD application's
//! destination, an Alertmanager label); the Kubernetes source connects to the clusters
//! of interest. Each `Targets` carries a number that every source answers, so the engine
//! knows when the sources have caught up with the fleet.

use std::collections::{HashMap, HashSet};

use tokio::sync::mpsc::error::TrySendError;

use crate::model::{ClusterId, Store};
use crate::sources::{ClusterTarget, SourceCommand, SourceHandle};

/// What was last told to the sources, and their answers.
#[derive(Debug, Default)]
pub struct Targeting {
    /// The cluster on screen, if any (the console's; headless modes have none).
    focus: Option<ClusterId>,
    /// Store generation and focus the last targets were computed from.
    computed_from: Option<(u64, Option<ClusterId>)>,
    /// The fleet and interest last sent.
    sent: Option<(Vec<ClusterTarget>, Vec<ClusterId>)>,
    /// Number of the last `Targets` sent (0: none yet).
    seq: u64,
    /// Which `Targets` each source has answered.
    answered: HashMap<String, u64>,
    /// Sources that can no longer be told anything (their task ended).
    gone: Vec<String>,
    /// Once every source is ready: the `Targets` all must answer before the picture is
    /// whole (sent from the store as it was then).
    settle_at: Option<u64>,
}

impl Targeting {
    pub fn focus(&self) -> Option<&ClusterId> {
        self.focus.as_ref()
    }

    /// Sets the cluster on screen; returns whether it changed.
    pub fn set_focus(&mut self, focus: Option<ClusterId>) -> bool {
        if self.focus == focus {
            return false;
        }
        self.focus = focus;
        true
    }

    /// Records a source's answer to `Targets` number `seq`.
    pub fn answered(&mut self, source: &str, seq: u64) {
        let at = self.answered.entry(source.to_string()).or_default();
        *at = (*at).max(seq);
    }

    /// Tells a source started while running what the others were last told (it answers
    /// like them); before the first `Targets`, the next `sync` tells it with the rest.
    pub fn introduce(&mut self, source: &SourceHandle) {
        self.gone.retain(|g| *g != source.name);
        self.answered.remove(&source.name);
        let Some((fleet, interest)) = &self.sent else {
            return;
        };
        let command = SourceCommand::Targets {
            seq: self.seq,
            fleet: fleet.clone(),
            interest: interest.clone(),
        };
        if let Err(TrySendError::Closed(_)) = source.commands.try_send(command) {
            self.gone.push(source.name.clone());
        }
    }

    /// Drops what is known of a source that stopped.
    pub fn forget(&mut self, source: &str) {
        self.answered.remove(source);
        self.gone.retain(|g| g != source);
    }

    /// Sends the fleet and the clusters of interest when either changed since the last
    /// send. A full queue delays the change to the next call (never blocks the caller).
    pub fn sync(&mut self, store: &Store, sources: &[SourceHandle]) {
        let from = (store.generation(), self.focus.clone());
        if self.computed_from.as_ref() == Some(&from) {
            return;
        }
        let now = (fleet(store), interest(store, self.focus.as_ref()));
        if self.sent.as_ref() == Some(&now) {
            self.computed_from = Some(from);
            return;
        }
        let seq = self.seq + 1;
        for source in sources {
            if self.gone.contains(&source.name) {
                continue;
            }
            let command = SourceCommand::Targets {
                seq,
                fleet: now.0.clone(),
                interest: now.1.clone(),
            };
            match source.commands.try_send(command) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return,
                Err(TrySendError::Closed(_)) => self.gone.push(source.name.clone()),
            }
        }
        self.seq = seq;
        self.sent = Some(now);
        self.computed_from = Some(from);
    }

    /// Called while every source is ready: from then on the picture is whole once each
    /// source has answered the targets sent from the store as it is now.
    pub fn all_ready(&mut self, store: &Store) {
        let current = self
            .computed_from
            .as_ref()
            .is_some_and(|(generation, _)| *generation == store.generation());
        if self.settle_at.is_none() && current {
            self.settle_at = Some(self.seq);
        }
    }

    /// Whether every source has answered the targets sent once all were ready.
    pub fn settled(&self, sources: &[SourceHandle]) -> bool {
        let Some(at) = self.settle_at else {
            return false;
        };
        sources.iter().all(|s| {
            self.gone.contains(&s.name) || self.answered.get(&s.name).is_some_and(|&n| n >= at)
        })
    }

    /// The sources that have not answered the targets the picture waits for.
    pub fn unanswered<'a>(&self, sources: &'a [SourceHandle]) -> Vec<&'a str> {
        let at = self.settle_at.unwrap_or(self.seq);
        sources
            .iter()
            .filter(|s| {
                !self.gone.contains(&s.name) && self.answered.get(&s.name).is_none_or(|&n| n < at)
            })
            .map(|s| s.name.as_str())
            .collect()
    }
}

/// The fleet as the sources need to know it.
pub fn fleet(store: &Store) -> Vec<ClusterTarget> {
    store
        .clusters()
        .iter()
        .map(|c| ClusterTarget {
            id: c.id.clone(),
            arn: c.arn.clone(),
            endpoint: c.endpoint.clone(),
            certificate_authority: c.certificate_authority.clone(),
            production: c.environment.is_production(),
        })
        .collect()
}

/// The clusters whose insides matter now, most important first: the one on screen, then
/// those with firing alerts, then those in a rollout's current wave, running or next to
/// start (its turn has come: what its API servers say, PolicyReports included, is read
/// before it starts), each group by id, each cluster once. Sources that cannot serve them all at once
/// serve them in this order (the EKS source describes them first, the Kubernetes source
/// connects to them first).
pub fn interest(store: &Store, focus: Option<&ClusterId>) -> Vec<ClusterId> {
    let mut firing: Vec<ClusterId> = store
        .clusters()
        .iter()
        .enumerate()
        .filter(|&(i, _)| store.firing_total(i) > 0)
        .map(|(_, c)| c.id.clone())
        .collect();
    firing.sort();
    let mut wave: Vec<ClusterId> = Vec::new();
    for rollout in store.rollouts() {
        if let Some(w) = rollout.current_wave() {
            wave.extend(rollout.waves[w].cells.iter().map(|c| c.cluster.clone()));
        }
    }
    wave.sort();
    let mut seen = HashSet::new();
    focus
        .cloned()
        .into_iter()
        .chain(firing)
        .chain(wave)
        .filter(|id| seen.insert(id.clone()))
        .collect()
}
