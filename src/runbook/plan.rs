//! From a runbook step and the alert beside it to an `Action`: parameters filled in from
//! the alert, checked against the vocabulary, the cluster found in the fleet. Every
//! problem is an error shown before anything runs.

use std::collections::BTreeMap;

use super::{Runbook, Step, vocab};
use crate::actions::{Action, Operation, Remediation};
use crate::model::{Alert, ClusterId, Store};

/// Builds the action `step` of `rb` asks for, for `alert`. Shell steps are refused unless
/// `allow_shell` (the config's `allow_shell = true`).
pub fn plan(
    rb: &Runbook,
    step: &Step,
    alert: &Alert,
    store: &Store,
    allow_shell: bool,
) -> Result<Action, String> {
    let problems = vocab::check(&step.action, &step.params, &step.body);
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    let spec = vocab::spec(&step.action).ok_or("unknown action")?;
    let mut p: BTreeMap<&str, String> = BTreeMap::new();
    for param in spec.params {
        let Some(raw) = step.params.get(param.name) else {
            continue;
        };
        let value =
            vocab::resolve(raw, alert).map_err(|e| format!("parameter '{}': {e}", param.name))?;
        vocab::check_value(param.kind, &value)
            .map_err(|e| format!("parameter '{}' ({raw}): {e}", param.name))?;
        p.insert(param.name, value);
    }
    if step.action == "ack" {
        // The alert itself, whatever its cluster: no cluster lookup.
        let minutes = match p.get("for") {
            Some(value) => vocab::parse_seconds(value)?.div_ceil(60),
            None => crate::config::AlertSettings::DEFAULT_ACK_MINUTES,
        };
        return Ok(Action::ack(alert, minutes));
    }
    let cluster = find_cluster(p.get("cluster"), alert, store)?;
    let get = |name: &str| p.get(name).cloned().unwrap_or_default();

    let op = match step.action.as_str() {
        "pause-wave" | "resume-wave" => {
            let (rollout, wave, wave_name) = wave_of(&cluster, store)?;
            return Ok(if step.action == "pause-wave" {
                let reason = p
                    .get("reason")
                    .cloned()
                    .unwrap_or_else(|| format!("runbook {}: {}", rb.id, alert.name));
                Action::PauseWave {
                    rollout,
                    wave,
                    wave_name,
                    reason,
                }
            } else {
                Action::ResumeWave {
                    rollout,
                    wave,
                    wave_name,
                }
            });
        }
        "rollout-restart" => Operation::RolloutRestart {
            namespace: get("namespace"),
            deployment: get("deployment"),
        },
        "scale" => Operation::Scale {
            namespace: get("namespace"),
            deployment: get("deployment"),
            replicas: get("replicas")
                .parse()
                .map_err(|_| "parameter 'replicas': not a number")?,
        },
        "cordon" => Operation::Cordon { node: get("node") },
        "uncordon" => Operation::Uncordon { node: get("node") },
        "drain" => Operation::Drain {
            node: get("node"),
            timeout_secs: match p.get("timeout") {
                Some(t) => vocab::parse_seconds(t)?,
                None => 300,
            },
        },
        "delete-pod" => Operation::DeletePod {
            namespace: get("namespace"),
            pod: get("pod"),
        },
        "argocd-refresh" => Operation::ArgocdRefresh {
            application: get("application"),
        },
        "argocd-sync" => Operation::ArgocdSync {
            application: get("application"),
        },
        "update-addon" => Operation::UpdateAddon {
            addon: get("addon"),
            version: p.get("version").cloned(),
            kubernetes_version: store
                .cluster(&cluster)
                .map(|c| c.version.clone())
                .unwrap_or_default(),
        },
        "shell" => {
            if !allow_shell {
                return Err(
                    "shell steps are off: the config must set allow_shell = true to run them"
                        .into(),
                );
            }
            Operation::Shell {
                script: step.body.clone(),
                env: shell_env(alert, &cluster),
            }
        }
        other => return Err(format!("action '{other}' cannot be run from a runbook")),
    };
    let production = store
        .cluster(&cluster)
        .is_some_and(|c| c.may_be_production());
    Ok(Action::Remediate(Remediation {
        cluster,
        production,
        step: Some(format!("{}:{}", rb.id, step.line)),
        op,
    }))
}

/// The alert's cluster, or the one the step names (by name, or account/region/name).
fn find_cluster(named: Option<&String>, alert: &Alert, store: &Store) -> Result<ClusterId, String> {
    match (named, &alert.cluster) {
        (None, Some(id)) => Ok(id.clone()),
        (Some(name), Some(id)) if *name == id.name => Ok(id.clone()),
        (Some(name), _) => store
            .find_cluster(name)
            .map(|i| store.clusters()[i].id.clone())
            .ok_or_else(|| format!("cluster '{name}' is not in the fleet")),
        (None, None) => Err(format!(
            "alert {} is not tied to a cluster and the step names none (cluster=...)",
            alert.name
        )),
    }
}

/// The rollout and wave that hold `cluster`.
fn wave_of(cluster: &ClusterId, store: &Store) -> Result<(String, usize, String), String> {
    for rollout in store.rollouts() {
        for (i, wave) in rollout.waves.iter().enumerate() {
            if wave.cells.iter().any(|c| &c.cluster == cluster) {
                return Ok((rollout.name.clone(), i, wave.name.clone()));
            }
        }
    }
    Err(format!("cluster {} is in no rollout wave", cluster.name))
}

/// The alert as environment variables: `FLEETDECK_ALERT`, `FLEETDECK_CLUSTER`, ...,
/// and each label as `FLEETDECK_LABEL_<NAME>` (upper case, other characters as `_`).
fn shell_env(alert: &Alert, cluster: &ClusterId) -> BTreeMap<String, String> {
    let mut env = BTreeMap::from([
        ("FLEETDECK_ALERT".to_string(), alert.name.clone()),
        (
            "FLEETDECK_SEVERITY".to_string(),
            alert.severity.as_str().to_string(),
        ),
        ("FLEETDECK_SUMMARY".to_string(), alert.summary.clone()),
        ("FLEETDECK_CLUSTER".to_string(), cluster.name.clone()),
        ("FLEETDECK_ACCOUNT".to_string(), cluster.account.clone()),
        ("FLEETDECK_REGION".to_string(), cluster.region.clone()),
    ]);
    for (k, v) in &alert.labels {
        let name: String = k
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        env.insert(format!("FLEETDECK_LABEL_{name}"), v.clone());
    }
    env
}
