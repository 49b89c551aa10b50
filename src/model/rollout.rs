use std::fmt;

use serde::{Deserialize, Serialize};

use super::{ClusterId, Environment, Timestamp};

/// Where one cell (one cluster, or one Argo CD Application on one cluster) is in its wave.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CellPhase {
    Pending,
    PreCheck,
    Updating,
    PostCheck,
    Soaking,
    Done,
    Failed,
}

impl CellPhase {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::PreCheck => "pre-check",
            Self::Updating => "updating",
            Self::PostCheck => "post-check",
            Self::Soaking => "soaking",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    /// Started and not yet finished: pausing lets these finish.
    pub fn is_in_flight(&self) -> bool {
        matches!(self, Self::PreCheck | Self::Updating | Self::PostCheck)
    }

    /// Finished its update (it may still be soaking with its wave).
    pub fn is_updated(&self) -> bool {
        matches!(self, Self::Soaking | Self::Done)
    }
}

impl fmt::Display for CellPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cluster's part in a wave (for Argo CD, one Application on its cluster).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    pub cluster: ClusterId,
    /// The Argo CD Application this cell is, when the rollout is a progressive sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app: Option<String>,
    pub phase: CellPhase,
    /// When the cell entered its current phase.
    pub since: Timestamp,
    pub message: String,
}

/// A wave's state. `Paused` and `Halted` hold the wave: no new cell starts, in-flight
/// cells finish (an EKS update can't be stopped mid-flight).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "lowercase")]
pub enum WaveState {
    Pending,
    Running,
    Soaking {
        until: Timestamp,
    },
    Paused {
        by: String,
        reason: String,
        at: Timestamp,
    },
    Halted {
        alarm: String,
        cluster: ClusterId,
        at: Timestamp,
    },
    Done,
}

impl WaveState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Soaking { .. } => "soaking",
            Self::Paused { .. } => "paused",
            Self::Halted { .. } => "halted",
            Self::Done => "done",
        }
    }

    /// Held by an operator or by the circuit breaker.
    pub fn is_held(&self) -> bool {
        matches!(self, Self::Paused { .. } | Self::Halted { .. })
    }

    /// A human sentence saying why the wave is held, if it is.
    pub fn reason(&self) -> Option<String> {
        match self {
            Self::Paused { reason, .. } => Some(reason.clone()),
            Self::Halted { alarm, cluster, .. } => Some(format!(
                "circuit breaker: alarm {alarm} fired on {}",
                cluster.name
            )),
            _ => None,
        }
    }
}

/// Why a wave is held. While a wave has any hold no new cell starts (on Argo CD: the
/// step's `maxUpdate` is 0) and cells in flight finish.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HoldKind {
    /// An operator paused the wave.
    Operator { reason: String },
    /// The circuit breaker: a gate alarm fired on a cluster of this or an earlier wave.
    Breaker { alarm: String, cluster: ClusterId },
    /// The guard holds the wave until the wave before it has soaked.
    Soak { after: String },
    /// The plan requires EKS upgrade insights PASSING and one is not.
    Insights { cluster: String, detail: String },
    /// The plan lists policies that must pass (`policies_must_pass`) and a cluster of the
    /// wave fails one: a Security Hub finding or a PolicyReport result.
    Policy { cluster: String, policy: String },
}

/// One hold on a wave: what, who and when. Stored in the `fleetdeck.io/paused-steps`
/// annotation for Argo CD rollouts, so every console sees the same holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hold {
    #[serde(flatten)]
    pub kind: HoldKind,
    pub by: String,
    pub at: Timestamp,
}

impl Hold {
    /// A sentence saying why the wave is held.
    pub fn describe(&self) -> String {
        match &self.kind {
            HoldKind::Operator { reason } => format!("paused by {}: {reason}", self.by),
            HoldKind::Breaker { alarm, cluster } => {
                format!("circuit breaker: alarm {alarm} fired on {}", cluster.name)
            }
            HoldKind::Soak { after } => format!("held until {after} has soaked"),
            HoldKind::Insights { cluster, detail } => {
                format!("held: upgrade insight not passing on {cluster}: {detail}")
            }
            HoldKind::Policy { cluster, policy } => {
                format!("held: policy {policy} fails on {cluster}")
            }
        }
    }
}

/// A gate: an alarm whose firing on a cluster of the current or an earlier wave stops
/// the rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gate {
    /// An alarm name, or a glob over alarm names (`eks-apiserver-5xx-*`).
    pub alarm: String,
    pub status: GateStatus,
}

impl Gate {
    /// Whether alarm `name` is this gate: the same name, or matched by its glob.
    pub fn covers(&self, name: &str) -> bool {
        if self.alarm == name {
            return true;
        }
        self.alarm.contains(['*', '?', '['])
            && globset::Glob::new(&self.alarm).is_ok_and(|g| g.compile_matcher().is_match(name))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum GateStatus {
    Ok,
    Firing { cluster: ClusterId },
    Unknown,
}

/// One wave of a rollout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    pub name: String,
    pub environment: Environment,
    pub cells: Vec<Cell>,
    pub state: WaveState,
    /// Soak time after the last cell is updated, seconds.
    pub soak_secs: i64,
    /// At most this many cells in flight at once.
    pub max_parallel: usize,
    /// Every reason the wave is held now; `state` is derived from these and the cells.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holds: Vec<Hold>,
    /// The soak may not count time before this: set when a wave resumes after the
    /// circuit breaker, since a soak interrupted by an alarm proved nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_from: Option<Timestamp>,
}

impl Wave {
    pub fn cells_done(&self) -> usize {
        self.cells.iter().filter(|c| c.phase.is_updated()).count()
    }

    pub fn cells_in_flight(&self) -> usize {
        self.cells.iter().filter(|c| c.phase.is_in_flight()).count()
    }

    pub fn cells_failed(&self) -> usize {
        self.cells
            .iter()
            .filter(|c| c.phase == CellPhase::Failed)
            .count()
    }

    /// Fraction of cells updated, 0.0 to 1.0 (an empty wave counts as complete).
    pub fn progress(&self) -> f64 {
        if self.cells.is_empty() {
            1.0
        } else {
            self.cells_done() as f64 / self.cells.len() as f64
        }
    }

    /// Who paused it, if an operator did.
    pub fn paused_by(&self) -> Option<&str> {
        match &self.state {
            WaveState::Paused { by, .. } => Some(by),
            _ => None,
        }
    }

    /// The holds of one kind.
    pub fn holds_where(&self, pred: impl Fn(&HoldKind) -> bool) -> impl Iterator<Item = &Hold> {
        self.holds.iter().filter(move |h| pred(&h.kind))
    }

    /// The guard's soak, insight or policy hold, if any: the wave waits for another to
    /// soak, or for an insight or a policy to pass.
    pub fn guard_hold(&self) -> Option<&Hold> {
        self.holds_where(|k| {
            matches!(
                k,
                HoldKind::Soak { .. } | HoldKind::Insights { .. } | HoldKind::Policy { .. }
            )
        })
        .next()
    }
}

/// A change rolled out over waves of clusters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    pub name: String,
    /// What drives it: `demo`, or an Argo CD ApplicationSet.
    pub source: String,
    pub description: String,
    pub waves: Vec<Wave>,
    pub gates: Vec<Gate>,
    /// Applications of the set that no step matches: they are never synced by the
    /// progressive sync, which an operator should know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched: Vec<Cell>,
}

impl Rollout {
    pub fn cells_total(&self) -> usize {
        self.waves.iter().map(|w| w.cells.len()).sum()
    }

    pub fn cells_done(&self) -> usize {
        self.waves.iter().map(Wave::cells_done).sum()
    }

    /// Percentage of cells updated, 0 to 100.
    pub fn percent(&self) -> f64 {
        let total = self.cells_total();
        if total == 0 {
            100.0
        } else {
            100.0 * self.cells_done() as f64 / total as f64
        }
    }

    /// The wave an operator cares about now: the first not done.
    pub fn current_wave(&self) -> Option<usize> {
        self.waves
            .iter()
            .position(|w| !matches!(w.state, WaveState::Done))
    }
}
