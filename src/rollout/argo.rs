//! Argo CD progressive syncs as rollouts, and rollout holds as ApplicationSet writes.
//!
//! Reading: an ApplicationSet with `strategy.type: RollingSync` is a [`Rollout`]; each
//! step is a wave and each Application a cell on its destination cluster. A cell's phase
//! comes from `status.applicationStatus[]` (Waiting, Pending, Progressing, Healthy),
//! joined with the Application's own sync, health and `operationState`.
//!
//! Writing: a hold on a wave is `maxUpdate: 0` on its step, with the step's original
//! `maxUpdate` and every hold (who, why, when) kept in the `fleetdeck.io/paused-steps`
//! annotation, so that every console sees the holds and lifting the last one restores
//! the step exactly as it was.
//!
//! ```json
//! {"3": {"maxUpdate": "25%", "holds": [
//!     {"kind": "operator", "reason": "INC-4411", "by": "alice", "at": "2026-11-21T02:10:00Z"}
//! ]}}
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::plan::Plan;
use super::refresh_state;
use crate::model::{
    AppStepStatus, ApplicationSet, ArgoApp, Cell, CellPhase, ClusterId, Environment, Hold, Rollout,
    SyncStep, Timestamp, Wave, WaveState,
};

/// Holds on steps, with each step's original `maxUpdate`.
pub const PAUSED_STEPS: &str = "fleetdeck.io/paused-steps";
/// When a step's soak was restarted (after the circuit breaker): `{"2": "<RFC 3339>"}`.
pub const SOAK_RESTARTS: &str = "fleetdeck.io/soak-restarts";
/// Wave names: a JSON array (`["canary", "prod-1"]`) or a comma-separated list.
pub const WAVE_NAMES: &str = "fleetdeck.io/wave-names";
/// The rollout's plan (soak, gates, insights), YAML or JSON; see [`Plan`].
pub const PLAN: &str = "fleetdeck.io/plan";

/// One step's entry in `fleetdeck.io/paused-steps`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// The step's `maxUpdate` before the first hold: a number, a percentage string, or
    /// null when it was unset.
    #[serde(rename = "maxUpdate", default)]
    pub max_update: Value,
    pub holds: Vec<Hold>,
}

/// Whether an ApplicationSet rolls out in steps.
pub fn is_progressive(set: &ApplicationSet) -> bool {
    set.strategy
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("RollingSync"))
}

/// The holds recorded on a set, by 1-based step number.
pub fn paused_steps(
    annotations: &BTreeMap<String, String>,
) -> Result<BTreeMap<usize, StepRecord>, String> {
    let Some(text) = annotations.get(PAUSED_STEPS) else {
        return Ok(BTreeMap::new());
    };
    let raw: BTreeMap<String, StepRecord> = serde_json::from_str(text)
        .map_err(|e| format!("annotation {PAUSED_STEPS} is not valid: {e}"))?;
    raw.into_iter()
        .map(|(step, record)| {
            let n = step
                .parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| {
                    format!("annotation {PAUSED_STEPS}: {step:?} is not a step number")
                })?;
            Ok((n, record))
        })
        .collect()
}

fn soak_restarts(
    annotations: &BTreeMap<String, String>,
) -> Result<BTreeMap<usize, Timestamp>, String> {
    let Some(text) = annotations.get(SOAK_RESTARTS) else {
        return Ok(BTreeMap::new());
    };
    let raw: BTreeMap<String, Timestamp> = serde_json::from_str(text)
        .map_err(|e| format!("annotation {SOAK_RESTARTS} is not valid: {e}"))?;
    Ok(raw
        .into_iter()
        .filter_map(|(step, at)| Some((step.parse().ok()?, at)))
        .collect())
}

/// The set's plan: its `fleetdeck.io/plan` annotation, else `fallback` (from a plans
/// file), else the default soak with no gates.
pub fn plan_of(set: &ApplicationSet, fallback: Option<&Plan>) -> Result<Plan, String> {
    match set.annotations.get(PLAN) {
        Some(text) => Plan::parse(
            text,
            &format!(
                "ApplicationSet {}/{} annotation {PLAN}",
                set.namespace, set.name
            ),
        ),
        None => Ok(fallback
            .cloned()
            .unwrap_or_else(|| Plan::with_soak(super::plan::DEFAULT_SOAK_SECS))),
    }
}

/// A rollout built from an ApplicationSet, with the plan it was built under and the
/// problems met reading the set.
pub struct Built {
    pub rollout: Rollout,
    pub plan: Plan,
    pub warnings: Vec<String>,
}

/// Builds the rollout of a progressive-sync ApplicationSet at `now`. `apps` are the
/// Applications on the hub (those of other sets are ignored); `environment` tells a
/// cluster's environment. Problems that leave the picture usable (a bad wave-names
/// annotation, an unreadable plan) are in `warnings`; a corrupt `paused-steps`
/// annotation is one too, and the waves are then shown as not held.
pub fn rollout(
    source: &str,
    set: &ApplicationSet,
    apps: &[ArgoApp],
    fallback_plan: Option<&Plan>,
    environment: impl Fn(&ClusterId) -> Option<Environment>,
    now: Timestamp,
) -> Built {
    let mut warnings = Vec::new();
    let plan = plan_of(set, fallback_plan).unwrap_or_else(|e| {
        warnings.push(e);
        Plan::with_soak(super::plan::DEFAULT_SOAK_SECS)
    });
    let records = paused_steps(&set.annotations).unwrap_or_else(|e| {
        warnings.push(e);
        BTreeMap::new()
    });
    let restarts = soak_restarts(&set.annotations).unwrap_or_else(|e| {
        warnings.push(e);
        BTreeMap::new()
    });
    let names = wave_names(set, &mut warnings);
    let status: BTreeMap<&str, &AppStepStatus> = set
        .application_status
        .iter()
        .map(|s| (s.application.as_str(), s))
        .collect();

    let mut cells: Vec<Vec<Cell>> = vec![Vec::new(); set.steps.len()];
    let mut unmatched = Vec::new();
    let members = apps.iter().filter(|a| {
        a.namespace == set.namespace
            && (a.app_set.as_deref() == Some(set.name.as_str())
                || status.contains_key(a.name.as_str()))
    });
    for app in members {
        let entry = status.get(app.name.as_str()).copied();
        let cell = cell(app, entry, now);
        match step_of(set, app, entry) {
            Some(step) => cells[step].push(cell),
            None => unmatched.push(cell),
        }
    }

    let waves = set
        .steps
        .iter()
        .zip(cells)
        .enumerate()
        .map(|(i, (step, cells))| {
            let name = names[i].clone();
            let record = records.get(&(i + 1));
            let max_update = match record {
                Some(r) => max_update_text(&r.max_update),
                None => step.max_update.clone(),
            };
            let mut wave = Wave {
                environment: wave_environment(step, &cells, &environment),
                max_parallel: max_parallel(max_update.as_deref(), cells.len()),
                soak_secs: plan.soak_for(&name, i + 1),
                name,
                cells,
                state: WaveState::Pending,
                holds: record.map(|r| r.holds.clone()).unwrap_or_default(),
                soak_from: restarts.get(&(i + 1)).copied(),
            };
            refresh_state(&mut wave, now);
            wave
        })
        .collect();
    let rollout = Rollout {
        name: set.name.clone(),
        source: source.to_string(),
        description: format!(
            "Argo CD ApplicationSet {}/{} (RollingSync, {} steps)",
            set.namespace,
            set.name,
            set.steps.len()
        ),
        waves,
        gates: plan.model_gates(),
        unmatched,
    };
    Built {
        rollout,
        plan,
        warnings,
    }
}

/// The wave (0-based) an Application is in: the step Argo CD reports, else the first
/// step whose `matchExpressions` select its labels, as Argo CD would. `None` for an
/// Application no step matches (Argo CD reports step `-1`).
fn step_of(set: &ApplicationSet, app: &ArgoApp, entry: Option<&AppStepStatus>) -> Option<usize> {
    if let Some(step) = entry.and_then(|e| e.step.as_deref()) {
        return step
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1 && (*n as usize) <= set.steps.len())
            .map(|n| n as usize - 1);
    }
    set.steps.iter().position(|step| selects(step, &app.labels))
}

/// Kubernetes label-selector semantics for `matchExpressions`.
fn selects(step: &SyncStep, labels: &BTreeMap<String, String>) -> bool {
    step.match_expressions.iter().all(|(key, op, values)| {
        let value = labels.get(key);
        match op.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    })
}

/// A cell from an Application and its progressive-sync status.
fn cell(app: &ArgoApp, entry: Option<&AppStepStatus>, now: Timestamp) -> Cell {
    let failed_operation = matches!(app.operation_phase.as_deref(), Some("Failed" | "Error"));
    let status = entry.map_or("", |e| e.status.as_str());
    let phase = match status {
        _ if failed_operation => CellPhase::Failed,
        "Progressing" if app.health == "Degraded" => CellPhase::Failed,
        "Waiting" => CellPhase::Pending,
        "Pending" => CellPhase::PreCheck,
        "Progressing" => CellPhase::Updating,
        "Healthy" => CellPhase::Soaking,
        _ => CellPhase::Pending,
    };
    let said = entry
        .map(|e| e.message.as_str())
        .filter(|m| !m.is_empty())
        .or(app.message.as_deref());
    // The phase column already says Waiting/Progressing/Healthy: the message adds what
    // the Application itself reports, then Argo CD's words.
    let mut message = if status.is_empty() {
        "no progressive-sync status yet; ".to_string()
    } else {
        String::new()
    };
    message.push_str(&format!("{}/{}", app.sync, app.health));
    if let Some(op) = &app.operation_phase {
        message.push_str(&format!(", sync {op}"));
    }
    if let Some(said) = said {
        message.push_str(": ");
        message.push_str(said);
    }
    Cell {
        cluster: app
            .cluster
            .clone()
            .unwrap_or_else(|| ClusterId::new("", "", app.destination.clone())),
        app: Some(app.name.clone()),
        phase,
        since: entry.and_then(|e| e.last_transition_time).unwrap_or(now),
        message,
    }
}

/// Wave names from the annotation, the rest from the steps' `matchExpressions`.
fn wave_names(set: &ApplicationSet, warnings: &mut Vec<String>) -> Vec<String> {
    let given: Vec<String> = match set.annotations.get(WAVE_NAMES) {
        None => Vec::new(),
        Some(text) if text.trim_start().starts_with('[') => serde_json::from_str(text)
            .unwrap_or_else(|e| {
                warnings.push(format!(
                    "annotation {WAVE_NAMES} is not a JSON list of names: {e}"
                ));
                Vec::new()
            }),
        Some(text) => text.split(',').map(|s| s.trim().to_string()).collect(),
    };
    if !given.is_empty() && given.len() != set.steps.len() {
        warnings.push(format!(
            "annotation {WAVE_NAMES} names {} waves but the set has {} steps",
            given.len(),
            set.steps.len()
        ));
    }
    set.steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            given
                .get(i)
                .filter(|n| !n.is_empty())
                .cloned()
                .unwrap_or_else(|| default_name(i, step))
        })
        .collect()
}

/// `env In [staging]`, several joined with `, `; `step N` when there are none.
fn default_name(i: usize, step: &SyncStep) -> String {
    if step.match_expressions.is_empty() {
        return format!("step {}", i + 1);
    }
    step.match_expressions
        .iter()
        .map(|(key, op, values)| {
            if values.is_empty() {
                format!("{key} {op}")
            } else {
                format!("{key} {op} [{}]", values.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The environment a step selects (`env In [prod]`), else the one most of its cells'
/// clusters are in.
fn wave_environment(
    step: &SyncStep,
    cells: &[Cell],
    environment: &impl Fn(&ClusterId) -> Option<Environment>,
) -> Environment {
    let named = step.match_expressions.iter().find_map(|(key, op, values)| {
        (matches!(key.as_str(), "env" | "environment") && op == "In" && values.len() == 1)
            .then(|| Environment::from_tag(&values[0]))
    });
    if let Some(env) = named {
        return env;
    }
    let mut counts: BTreeMap<String, (usize, Environment)> = BTreeMap::new();
    for env in cells.iter().filter_map(|c| environment(&c.cluster)) {
        counts.entry(env.as_str().to_string()).or_insert((0, env)).0 += 1;
    }
    counts
        .into_values()
        .max_by_key(|(n, _)| *n)
        .map_or(Environment::Other("mixed".into()), |(_, env)| env)
}

/// `maxUpdate` as Argo CD applies it: a count, or a percentage of the step's
/// Applications rounded down but at least one for more than 0%; unset means all at once,
/// and 0 (or `0%`) means none.
fn max_parallel(max_update: Option<&str>, cells: usize) -> usize {
    let Some(text) = max_update.map(str::trim) else {
        return cells.max(1);
    };
    if let Some(pct) = text.strip_suffix('%') {
        let pct: usize = pct.trim().parse().unwrap_or(100);
        return if pct == 0 {
            0
        } else {
            (cells * pct / 100).max(1)
        };
    }
    text.parse().unwrap_or(cells.max(1))
}

fn max_update_text(value: &Value) -> Option<String> {
    match value {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The JSON merge patch that writes `rollout`'s holds onto the ApplicationSet `object`
/// (as read from the API server): held steps get `maxUpdate: 0`, released steps get
/// back the value recorded when they were first held, and the annotations record the
/// holds and soak restarts. It carries the object's `resourceVersion`, so the API server
/// refuses it with 409 Conflict if anyone changed the set in between.
pub fn holds_patch(object: &Value, rollout: &Rollout) -> Result<Value, String> {
    let resource_version = object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .ok_or("the ApplicationSet has no metadata.resourceVersion")?;
    let mut steps = object
        .pointer("/spec/strategy/rollingSync/steps")
        .and_then(Value::as_array)
        .cloned()
        .ok_or("the ApplicationSet has no spec.strategy.rollingSync.steps")?;
    if steps.len() != rollout.waves.len() {
        return Err(format!(
            "the ApplicationSet now has {} steps, not {}: look again before acting",
            steps.len(),
            rollout.waves.len()
        ));
    }
    let annotations: BTreeMap<String, String> = object
        .pointer("/metadata/annotations")
        .and_then(|a| serde_json::from_value(a.clone()).ok())
        .unwrap_or_default();
    let mut records = paused_steps(&annotations)?;
    for (i, (wave, step)) in rollout.waves.iter().zip(steps.iter_mut()).enumerate() {
        let step = step
            .as_object_mut()
            .ok_or_else(|| format!("step {} is not an object", i + 1))?;
        let n = i + 1;
        if wave.holds.is_empty() {
            if let Some(record) = records.remove(&n) {
                match record.max_update {
                    Value::Null => step.remove("maxUpdate"),
                    original => step.insert("maxUpdate".into(), original),
                };
            }
            continue;
        }
        let original = match records.get(&n) {
            Some(record) => record.max_update.clone(),
            None => step.get("maxUpdate").cloned().unwrap_or(Value::Null),
        };
        step.insert("maxUpdate".into(), json!(0));
        records.insert(
            n,
            StepRecord {
                max_update: original,
                holds: wave.holds.clone(),
            },
        );
    }
    let paused = if records.is_empty() {
        Value::Null
    } else {
        let keyed: BTreeMap<String, &StepRecord> =
            records.iter().map(|(n, r)| (n.to_string(), r)).collect();
        Value::String(serde_json::to_string(&keyed).map_err(|e| e.to_string())?)
    };
    let restarts: BTreeMap<String, Timestamp> = rollout
        .waves
        .iter()
        .enumerate()
        .filter(|(_, w)| w.state != WaveState::Done)
        .filter_map(|(i, w)| Some(((i + 1).to_string(), w.soak_from?)))
        .collect();
    let restarts = if restarts.is_empty() {
        Value::Null
    } else {
        Value::String(serde_json::to_string(&restarts).map_err(|e| e.to_string())?)
    };
    Ok(json!({
        "metadata": {
            "resourceVersion": resource_version,
            "annotations": { PAUSED_STEPS: paused, SOAK_RESTARTS: restarts },
        },
        "spec": { "strategy": { "rollingSync": { "steps": steps } } },
    }))
}

#[cfg(test)]
mod tests;
