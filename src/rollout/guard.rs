//! One pass of the guard: the soak between waves, the circuit breaker and the "insights
//! must pass" check, as holds on waves.
//!
//! `fleetdeck guard` runs this against each Argo CD rollout and writes the holds back to
//! the ApplicationSet; the demo runs it against its simulated rollout; the console runs
//! it read-only to show what the guard will do. One function, so all three agree.
//!
//! - Soak: wave N+1 is held while wave N is not done (every cell updated and healthy for
//!   the soak time). The hold is placed before wave N finishes, so Argo CD never gets a
//!   moment to start wave N+1 early.
//! - Circuit breaker: a gate alarm firing on a cluster of the current or an earlier wave
//!   holds the current and every later wave. Only an operator's resume lifts it.
//! - Insights: with `insights_must_pass`, a wave whose turn has come stays held while a
//!   cluster of it has an EKS upgrade insight that is not PASSING.
//! - Policies: with `policies_must_pass`, a wave whose turn has come stays held while a
//!   cluster of it not yet updated fails one of those policies (a Security Hub finding or
//!   a PolicyReport result).

use super::{refresh_state, sync_gates, trip_breaker};
use crate::model::{ClusterId, Hold, HoldKind, Rollout, Timestamp, WaveState};

/// Who the guard's holds are recorded as.
pub const GUARD: &str = super::BREAKER;

/// What the guard knows about the world on one pass.
#[derive(Clone, Debug, Default)]
pub struct Signals {
    /// Gate alarms firing now: (alarm name, cluster).
    pub firing: Vec<(String, ClusterId)>,
    /// EKS upgrade insights not PASSING: (cluster, what the insight says).
    pub insights_failing: Vec<(ClusterId, String)>,
    /// Whether the plan requires insights to pass before a wave starts.
    pub require_insights: bool,
    /// Policies of the plan's `policies_must_pass` failing: (cluster, policy).
    pub policies_failing: Vec<(ClusterId, String)>,
}

/// One change the guard made.
#[derive(Clone, Debug, PartialEq)]
pub struct GuardAction {
    pub wave: usize,
    pub wave_name: String,
    /// `true` when the hold was placed, `false` when lifted.
    pub placed: bool,
    pub hold: Hold,
}

impl GuardAction {
    /// A sentence for the audit log and the Kubernetes Event.
    pub fn describe(&self) -> String {
        let verb = if self.placed { "held" } else { "released" };
        let why = match &self.hold.kind {
            HoldKind::Soak { after } if self.placed => format!("until {after} has soaked"),
            HoldKind::Soak { after } => format!("{after} has soaked"),
            _ if self.placed => self.hold.describe(),
            _ => format!("cleared: {}", self.hold.describe()),
        };
        format!("{verb} wave {}: {why}", self.wave_name)
    }
}

/// Runs one pass over `rollout` at `now`, changing its holds, and returns what changed.
pub fn enforce(rollout: &mut Rollout, signals: &Signals, now: Timestamp) -> Vec<GuardAction> {
    for wave in &mut rollout.waves {
        refresh_state(wave, now);
    }
    let before: Vec<Vec<Hold>> = rollout.waves.iter().map(|w| w.holds.clone()).collect();

    sync_gates(rollout, &signals.firing);
    for (alarm, cluster) in &signals.firing {
        trip_breaker(rollout, alarm, cluster, now);
    }

    for j in 0..rollout.waves.len() {
        let previous = j.checked_sub(1).map(|p| {
            (
                rollout.waves[p].name.clone(),
                rollout.waves[p].state == WaveState::Done,
            )
        });
        let wave = &mut rollout.waves[j];
        let done = wave.state == WaveState::Done;
        let soak_wanted = match &previous {
            Some((_, previous_done)) => !done && !previous_done,
            None => false,
        };
        let soak = previous.map(|(after, _)| HoldKind::Soak { after });
        set_hold(wave, soak.filter(|_| soak_wanted), is_soak, now);

        // A wave whose turn has come waits for what must pass on its clusters not yet
        // updated.
        let turn = !done && !soak_wanted;
        let insight = failing_in(wave, &signals.insights_failing)
            .filter(|_| turn && signals.require_insights)
            .map(|(cluster, detail)| HoldKind::Insights {
                cluster: cluster.name.clone(),
                detail: detail.clone(),
            });
        set_hold(wave, insight, is_insight, now);
        let policy = failing_in(wave, &signals.policies_failing)
            .filter(|_| turn)
            .map(|(cluster, policy)| HoldKind::Policy {
                cluster: cluster.name.clone(),
                policy: policy.clone(),
            });
        set_hold(wave, policy, is_policy, now);
        refresh_state(wave, now);
    }

    let mut actions = Vec::new();
    for (j, (wave, old)) in rollout.waves.iter().zip(&before).enumerate() {
        let action = |hold: &Hold, placed| GuardAction {
            wave: j,
            wave_name: wave.name.clone(),
            placed,
            hold: hold.clone(),
        };
        for hold in old
            .iter()
            .filter(|h| !wave.holds.iter().any(|n| n.kind == h.kind))
        {
            actions.push(action(hold, false));
        }
        for hold in wave
            .holds
            .iter()
            .filter(|h| !old.iter().any(|o| o.kind == h.kind))
        {
            actions.push(action(hold, true));
        }
    }
    actions
}

/// The first of `failing` (cluster, what) on a cluster of `wave` not yet updated.
fn failing_in<'a>(
    wave: &crate::model::Wave,
    failing: &'a [(ClusterId, String)],
) -> Option<&'a (ClusterId, String)> {
    wave.cells
        .iter()
        .filter(|c| !c.phase.is_updated())
        .find_map(|c| failing.iter().find(|(cluster, _)| *cluster == c.cluster))
}

fn is_soak(kind: &HoldKind) -> bool {
    matches!(kind, HoldKind::Soak { .. })
}

fn is_insight(kind: &HoldKind) -> bool {
    matches!(kind, HoldKind::Insights { .. })
}

fn is_policy(kind: &HoldKind) -> bool {
    matches!(kind, HoldKind::Policy { .. })
}

/// Makes the wave's hold of one sort (`sort`) be `wanted`: placed, kept as it is if the
/// same, replaced if different, or lifted.
fn set_hold(
    wave: &mut crate::model::Wave,
    wanted: Option<HoldKind>,
    sort: fn(&HoldKind) -> bool,
    now: Timestamp,
) {
    if let Some(kind) = &wanted
        && wave.holds.iter().any(|h| h.kind == *kind)
    {
        return;
    }
    wave.holds.retain(|h| !sort(&h.kind));
    if let Some(kind) = wanted {
        wave.holds.push(Hold {
            kind,
            by: GUARD.to_string(),
            at: now,
        });
    }
}
