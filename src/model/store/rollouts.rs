//! Argo CD rollouts in the store: rebuilt from the hub's ApplicationSets and
//! Applications whenever either changes, brought up to date every tick (soak ends, gate
//! alarms), and with the guard's next pass computed read-only, so the console shows what
//! `fleetdeck guard` is about to do.

use std::collections::BTreeMap;

use super::Store;
use crate::model::{InsightStatus, Rollout, Timestamp};
use crate::rollout::argo;
use crate::rollout::guard::{self, GuardAction, Signals};
use crate::rollout::plan::Plan;

/// What the store keeps about Argo CD rollouts besides the rollouts themselves.
#[derive(Default)]
pub(super) struct ArgoRollouts {
    /// Plans from a plans file, by ApplicationSet `name` or `namespace/name`.
    file_plans: BTreeMap<String, Plan>,
    /// By rollout name: the plan in force, problems reading the set, the guard's next pass.
    by_rollout: BTreeMap<String, RolloutExtras>,
    /// (source, rollout) of every rollout built from a set, so a rebuild replaces only
    /// those (a source may also send rollouts of its own, as the demo does).
    built: std::collections::BTreeSet<(String, String)>,
}

#[derive(Default)]
struct RolloutExtras {
    plan: Plan,
    warnings: Vec<String>,
    guard_next: Vec<GuardAction>,
}

impl Store {
    /// Whether `rollout` was built from an ApplicationSet (rebuilt whenever its sets or
    /// applications change), rather than sent whole by a source.
    pub(super) fn is_built_rollout(&self, rollout: &Rollout) -> bool {
        self.argo
            .built
            .contains(&(rollout.source.clone(), rollout.name.clone()))
    }

    /// Plans read from a plans file; an ApplicationSet's own annotation wins.
    pub fn set_rollout_plans(&mut self, plans: BTreeMap<String, Plan>) {
        self.argo.file_plans = plans;
    }

    /// Problems reading a rollout's ApplicationSet (bad annotations), to show beside it.
    pub fn rollout_warnings(&self, rollout: &str) -> &[String] {
        self.argo
            .by_rollout
            .get(rollout)
            .map_or(&[], |e| e.warnings.as_slice())
    }

    /// What the guard would change on its next pass over this rollout, as the console
    /// computes it from the same state (read-only: the guard does the writing).
    pub fn guard_next(&self, rollout: &str) -> &[GuardAction] {
        self.argo
            .by_rollout
            .get(rollout)
            .map_or(&[], |e| e.guard_next.as_slice())
    }

    /// The plan in force for a rollout built from an ApplicationSet.
    pub fn rollout_plan(&self, rollout: &str) -> Option<&Plan> {
        self.argo.by_rollout.get(rollout).map(|e| &e.plan)
    }

    /// What the guard sees for `rollout` under `plan`: gate alarms firing and insights
    /// not passing, from every source's alerts and clusters.
    pub fn guard_signals(&self, rollout: &Rollout, plan: &Plan) -> Signals {
        let insights_failing = if plan.insights_must_pass {
            rollout
                .waves
                .iter()
                .flat_map(|w| &w.cells)
                .filter_map(|cell| {
                    let cluster = self.cluster(&cell.cluster)?;
                    let bad = cluster
                        .insights
                        .iter()
                        .find(|i| i.status != InsightStatus::Passing)?;
                    Some((
                        cell.cluster.clone(),
                        format!("{} is {}", bad.name, bad.status.as_str()),
                    ))
                })
                .collect()
        } else {
            Vec::new()
        };
        let policies_failing = if plan.policies_must_pass.is_empty() {
            Vec::new()
        } else {
            rollout
                .waves
                .iter()
                .flat_map(|w| &w.cells)
                .flat_map(|cell| {
                    self.policy_failures(&cell.cluster)
                        .into_iter()
                        .filter(|f| plan.policies_must_pass.iter().any(|p| p.matches(&f.policy)))
                        .map(|f| (cell.cluster.clone(), f.policy))
                })
                .collect()
        };
        Signals {
            firing: plan.firing(self.alerts.values()),
            insights_failing,
            require_insights: plan.insights_must_pass,
            policies_failing,
        }
    }

    /// Replaces the rollouts of hub `source` with those its sets describe now.
    pub(super) fn rebuild_argo_rollouts(&mut self, source: &str, now: Timestamp) {
        let sets = self.app_sets.get(source).cloned().unwrap_or_default();
        let apps = self.apps.get(source).cloned().unwrap_or_default();
        let built = &mut self.argo.built;
        let before = self.rollouts.len();
        self.rollouts
            .retain(|r| !built.remove(&(r.source.clone(), r.name.clone())));
        let had_any = self.rollouts.len() != before;
        for set in sets.iter().filter(|s| argo::is_progressive(s)) {
            let file_plan =
                crate::rollout::plan::find(&self.argo.file_plans, &set.namespace, &set.name);
            let environment = |id: &crate::model::ClusterId| {
                // A cluster not described yet has no environment to place a wave by.
                self.cluster(id)
                    .and_then(|c| c.known_environment().cloned())
            };
            let argo::Built {
                rollout,
                plan,
                mut warnings,
            } = argo::rollout(source, set, &apps, file_plan, environment, now);
            warnings.dedup();
            self.argo.by_rollout.insert(
                rollout.name.clone(),
                RolloutExtras {
                    plan,
                    warnings,
                    guard_next: Vec::new(),
                },
            );
            self.argo
                .built
                .insert((rollout.source.clone(), rollout.name.clone()));
            self.rollouts.push(rollout);
        }
        if had_any || self.argo.built.iter().any(|(s, _)| s == source) {
            self.reindex_cells();
            self.refresh_argo_rollouts(now);
        }
    }

    /// Brings Argo CD rollouts up to date at `now`: soaks that ended, gate statuses, and
    /// the guard's next pass. Returns whether anything a view shows changed.
    pub(super) fn refresh_argo_rollouts(&mut self, now: Timestamp) -> bool {
        let mut changed = false;
        for i in 0..self.rollouts.len() {
            let name = self.rollouts[i].name.clone();
            let Some(extras) = self.argo.by_rollout.get(&name) else {
                continue;
            };
            let signals = self.guard_signals(&self.rollouts[i], &extras.plan);
            let rollout = &mut self.rollouts[i];
            for wave in &mut rollout.waves {
                changed |= crate::rollout::refresh_state(wave, now);
            }
            changed |= crate::rollout::sync_gates(rollout, &signals.firing);
            let mut preview = rollout.clone();
            let next = guard::enforce(&mut preview, &signals, now);
            if let Some(extras) = self.argo.by_rollout.get_mut(&name) {
                let same = |a: &[GuardAction], b: &[GuardAction]| {
                    a.len() == b.len()
                        && a.iter().zip(b).all(|(x, y)| {
                            (x.wave, x.placed, &x.hold.kind) == (y.wave, y.placed, &y.hold.kind)
                        })
                };
                if !same(&extras.guard_next, &next) {
                    extras.guard_next = next;
                    changed = true;
                }
            }
        }
        changed
    }
}
