use chrono::TimeDelta;

use super::RolloutError;
use crate::model::{
    Cell, CellPhase, ClusterId, GateStatus, Hold, HoldKind, Rollout, Timestamp, Wave, WaveState,
};

/// Holds wave `wave` of `rollout` for an operator: no new cell starts, cells in flight
/// finish. A pending, running or soaking wave can be paused (pausing a future wave keeps
/// it from starting when the wave before it finishes).
pub fn pause(
    rollout: &mut Rollout,
    wave: usize,
    by: &str,
    reason: &str,
    now: Timestamp,
) -> Result<(), RolloutError> {
    let w = wave_mut(rollout, wave)?;
    match &w.state {
        WaveState::Done => {
            return Err(RolloutError::AlreadyDone {
                wave: w.name.clone(),
            });
        }
        WaveState::Paused { by, reason, .. } => {
            return Err(RolloutError::AlreadyPaused {
                wave: w.name.clone(),
                by: by.clone(),
                reason: reason.clone(),
            });
        }
        WaveState::Halted { alarm, cluster, .. } => {
            return Err(RolloutError::AlreadyHalted {
                wave: w.name.clone(),
                alarm: alarm.clone(),
                cluster: cluster.name.clone(),
            });
        }
        WaveState::Pending | WaveState::Running | WaveState::Soaking { .. } => {}
    }
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(RolloutError::ReasonRequired);
    }
    w.holds.push(Hold {
        kind: HoldKind::Operator {
            reason: reason.to_string(),
        },
        by: by.to_string(),
        at: now,
    });
    refresh_state(w, now);
    Ok(())
}

/// Releases a paused or halted wave. Refused while any of `firing_gates` (gate alarm,
/// cluster) fires on a cluster of this or an earlier wave. Removes the operator's pause
/// and the circuit breaker's holds on this wave and the later ones it held; the guard's
/// soak holds stay (they lift by themselves). After a pause the wave's state is derived
/// again from its cells, so a wave whose soak ended while paused is done. After a halt
/// the soak starts over: an alarm during the soak means it did not pass.
pub fn resume(
    rollout: &mut Rollout,
    wave: usize,
    now: Timestamp,
    firing_gates: &[(String, ClusterId)],
) -> Result<(), RolloutError> {
    let w = wave_mut(rollout, wave)?;
    if !w.state.is_held() {
        return Err(RolloutError::NotHeld {
            wave: w.name.clone(),
        });
    }
    if let Some((alarm, cluster)) = firing_gates
        .iter()
        .find(|(_, cluster)| wave_of(rollout, cluster).is_some_and(|cw| cw <= wave))
    {
        return Err(RolloutError::GateFiring {
            alarm: alarm.clone(),
            cluster: cluster.name.clone(),
        });
    }
    let w = &mut rollout.waves[wave];
    // A gate alarm fired during this wave: whatever soak time passed before or during the
    // halt proved nothing. Resuming restarts the soak for every cell already updated.
    let breaker = w
        .holds_where(|k| matches!(k, HoldKind::Breaker { .. }))
        .next()
        .map(|h| h.kind.clone());
    if let Some(HoldKind::Breaker { alarm, cluster }) = breaker {
        let message = format!(
            "soak restarted on resume after {alarm} fired on {}",
            cluster.name
        );
        if w.cells.iter().any(|c| c.phase == CellPhase::Soaking) {
            w.soak_from = Some(now);
        }
        for cell in w.cells.iter_mut().filter(|c| c.phase == CellPhase::Soaking) {
            cell.message = message.clone();
        }
    }
    for later in &mut rollout.waves[wave..] {
        later
            .holds
            .retain(|h| !matches!(h.kind, HoldKind::Breaker { .. }));
    }
    let w = &mut rollout.waves[wave];
    w.holds
        .retain(|h| !matches!(h.kind, HoldKind::Operator { .. }));
    for later in &mut rollout.waves[wave..] {
        refresh_state(later, now);
    }
    Ok(())
}

/// The circuit breaker: gate alarm `alarm` fired on `cluster` at `now`. If the cluster
/// belongs to the current wave (the first not done) or an earlier one, the current wave
/// and every later one are held (an operator's pause stays, but the alarm is the stronger
/// reason and shows first) and the current wave's index is returned. Returns `None` when
/// nothing newly halted: not a gate of this rollout, a cluster of a wave not yet started,
/// no wave left, or the wave was already halted. The gate's status is updated either way.
pub fn trip_breaker(
    rollout: &mut Rollout,
    alarm: &str,
    cluster: &ClusterId,
    now: Timestamp,
) -> Option<usize> {
    if !rollout.gates.iter().any(|g| g.covers(alarm)) {
        return None;
    }
    let current = rollout.current_wave()?;
    let cluster_wave = wave_of(rollout, cluster)?;
    if cluster_wave > current {
        return None;
    }
    for gate in rollout.gates.iter_mut().filter(|g| g.covers(alarm)) {
        gate.status = GateStatus::Firing {
            cluster: cluster.clone(),
        };
    }
    if matches!(rollout.waves[current].state, WaveState::Halted { .. }) {
        return None;
    }
    let hold = Hold {
        kind: HoldKind::Breaker {
            alarm: alarm.to_string(),
            cluster: cluster.clone(),
        },
        by: crate::rollout::BREAKER.to_string(),
        at: now,
    };
    for w in &mut rollout.waves[current..] {
        if !w
            .holds
            .iter()
            .any(|h| matches!(h.kind, HoldKind::Breaker { .. }))
        {
            w.holds.push(hold.clone());
        }
        refresh_state(w, now);
    }
    Some(current)
}

/// Recomputes every gate's status from the gate alarms firing now. A gate shows
/// `Firing` only for a cluster of the current or an earlier wave: an alarm on a wave not
/// yet started does not concern the rollout yet. Returns whether any status changed.
pub fn sync_gates(rollout: &mut Rollout, firing: &[(String, ClusterId)]) -> bool {
    let current = rollout.current_wave();
    let statuses: Vec<GateStatus> = rollout
        .gates
        .iter()
        .map(|gate| {
            firing
                .iter()
                .find(|(alarm, cluster)| {
                    gate.covers(alarm)
                        && current
                            .is_some_and(|cw| wave_of(rollout, cluster).is_some_and(|w| w <= cw))
                })
                .map_or(GateStatus::Ok, |(_, cluster)| GateStatus::Firing {
                    cluster: cluster.clone(),
                })
        })
        .collect();
    let mut changed = false;
    for (gate, status) in rollout.gates.iter_mut().zip(statuses) {
        if gate.status != status {
            gate.status = status;
            changed = true;
        }
    }
    changed
}

/// The wave a cluster belongs to, if any.
pub fn wave_of(rollout: &Rollout, cluster: &ClusterId) -> Option<usize> {
    rollout
        .waves
        .iter()
        .position(|w| w.cells.iter().any(|c| &c.cluster == cluster))
}

/// The cells that may start now: pending cells of the current wave, in order, up to
/// `max_parallel` in flight, and none while the wave is held. `None` if nothing may start.
/// A `max_parallel` of 0 starts nothing, like Argo CD's `maxUpdate: 0`.
pub fn cells_to_start(rollout: &Rollout) -> Option<(usize, Vec<usize>)> {
    let index = rollout.current_wave()?;
    let wave = &rollout.waves[index];
    if !wave.holds.is_empty() {
        return None;
    }
    let free = wave.max_parallel.saturating_sub(wave.cells_in_flight());
    let cells: Vec<usize> = wave
        .cells
        .iter()
        .enumerate()
        .filter(|(_, c)| c.phase == CellPhase::Pending)
        .map(|(i, _)| i)
        .take(free)
        .collect();
    (!cells.is_empty()).then_some((index, cells))
}

/// The phase a cell moves to when its current one completes. `None` from `Soaking`
/// (the wave decides when soaking is over), `Done` and `Failed`.
pub fn next_phase(phase: CellPhase) -> Option<CellPhase> {
    match phase {
        CellPhase::Pending => Some(CellPhase::PreCheck),
        CellPhase::PreCheck => Some(CellPhase::Updating),
        CellPhase::Updating => Some(CellPhase::PostCheck),
        CellPhase::PostCheck => Some(CellPhase::Soaking),
        CellPhase::Soaking | CellPhase::Done | CellPhase::Failed => None,
    }
}

/// Moves a cell to its next phase at `now` with a new message; returns the new phase,
/// or `None` (cell unchanged) if the cell has no next phase of its own.
pub fn advance_cell(
    cell: &mut Cell,
    message: impl Into<String>,
    now: Timestamp,
) -> Option<CellPhase> {
    let next = next_phase(cell.phase)?;
    cell.phase = next;
    cell.since = now;
    cell.message = message.into();
    Some(next)
}

/// Marks a cell failed. A wave with a failed cell never soaks: it stays running until
/// someone deals with the cell.
pub fn fail_cell(cell: &mut Cell, message: impl Into<String>, now: Timestamp) {
    cell.phase = CellPhase::Failed;
    cell.since = now;
    cell.message = message.into();
}

/// When the wave's soak ends: the latest time a cell finished updating (or the soak was
/// restarted, `soak_from`) plus the soak time. `None` until every cell is updated.
/// Derived from the cells' `since`, so holding and releasing a soaking wave keeps the
/// same end.
pub fn soak_end(wave: &Wave) -> Option<Timestamp> {
    if !wave.cells.iter().all(|c| c.phase.is_updated()) {
        return None;
    }
    let last_update = wave
        .cells
        .iter()
        .filter(|c| c.phase == CellPhase::Soaking)
        .map(|c| c.since)
        .max()?;
    let start = wave
        .soak_from
        .map_or(last_update, |from| from.max(last_update));
    Some(start + TimeDelta::seconds(wave.soak_secs))
}

/// The state a wave's cells imply at `now`, ignoring holds: every cell updated and soaked
/// -> `Done`; every cell updated -> `Soaking`; any cell started -> `Running`; else
/// `Pending`. An empty wave is `Done`.
pub fn derive_state(wave: &Wave, now: Timestamp) -> WaveState {
    if wave.cells.iter().all(|c| c.phase == CellPhase::Done) {
        return WaveState::Done;
    }
    if let Some(until) = soak_end(wave) {
        return if now >= until {
            WaveState::Done
        } else {
            WaveState::Soaking { until }
        };
    }
    if wave.cells.iter().any(|c| c.phase != CellPhase::Pending) {
        WaveState::Running
    } else {
        WaveState::Pending
    }
}

/// The state a wave's holds imply, if they hold it: the circuit breaker first (the
/// stronger reason), then an operator's pause. The guard's soak holds keep cells from
/// starting without changing the state: the wave is simply not started yet.
pub fn held_state(wave: &Wave) -> Option<WaveState> {
    let breaker = wave.holds.iter().find_map(|h| match &h.kind {
        HoldKind::Breaker { alarm, cluster } => Some(WaveState::Halted {
            alarm: alarm.clone(),
            cluster: cluster.clone(),
            at: h.at,
        }),
        _ => None,
    });
    breaker.or_else(|| {
        wave.holds.iter().find_map(|h| match &h.kind {
            HoldKind::Operator { reason } => Some(WaveState::Paused {
                by: h.by.clone(),
                reason: reason.clone(),
                at: h.at,
            }),
            _ => None,
        })
    })
}

/// Brings a wave's state up to date with its holds and cells at `now`. A held wave
/// (paused, halted) stays held and its cells are left alone. When the soak is over the
/// wave is done and its cells become `Done` as of the soak's end. Returns whether
/// anything changed.
pub fn refresh_state(wave: &mut Wave, now: Timestamp) -> bool {
    if let Some(held) = held_state(wave) {
        if wave.state == held {
            return false;
        }
        wave.state = held;
        return true;
    }
    let next = derive_state(wave, now);
    if next == WaveState::Done
        && let Some(until) = soak_end(wave)
    {
        let message = format!("soaked {} without a gate alarm", soak_label(wave.soak_secs));
        for cell in wave
            .cells
            .iter_mut()
            .filter(|c| c.phase == CellPhase::Soaking)
        {
            cell.phase = CellPhase::Done;
            cell.since = until;
            cell.message.clone_from(&message);
        }
    }
    if wave.state == next {
        return false;
    }
    wave.state = next;
    true
}

fn soak_label(secs: i64) -> String {
    if secs % 60 == 0 {
        format!("{}m", secs / 60)
    } else {
        format!("{secs}s")
    }
}

fn wave_mut(rollout: &mut Rollout, wave: usize) -> Result<&mut Wave, RolloutError> {
    let name = &rollout.name;
    if wave >= rollout.waves.len() {
        return Err(RolloutError::NoWave {
            rollout: name.clone(),
            wave,
        });
    }
    Ok(&mut rollout.waves[wave])
}
