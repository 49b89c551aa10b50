//! The action vocabulary of runbook steps: which `action=NAME`s exist, which parameters
//! each takes, and what their values must look like. The linter and the console both
//! check steps here, so a step the linter passes is one the console can build.
//!
//! Values may hold references to the alert, filled in when the step runs:
//! `{{cluster}}`, `{{account}}`, `{{region}}`, `{{alert}}`, `{{severity}}` and
//! `{{labels.NAME}}`. A reference the alert cannot fill is an error shown before anything
//! runs.

use std::collections::BTreeMap;

use crate::model::Alert;

/// What a parameter's value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Kubernetes object name (DNS subdomain: lowercase, digits, `-`, `.`).
    Name,
    /// A whole number, at least 0.
    Count,
    /// A duration in seconds (`300`, or `5m`, `1h`).
    Seconds,
    /// Free text.
    Text,
}

/// One parameter of an action.
#[derive(Clone, Copy, Debug)]
pub struct Param {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    /// For the README and `runbooks lint`: what it is.
    pub help: &'static str,
}

/// One action a runbook step may name.
#[derive(Clone, Copy, Debug)]
pub struct ActionSpec {
    pub name: &'static str,
    pub params: &'static [Param],
    pub help: &'static str,
    /// The step's block content is the script (shell only).
    pub takes_body: bool,
}

const fn req(name: &'static str, kind: Kind, help: &'static str) -> Param {
    Param {
        name,
        kind,
        required: true,
        help,
    }
}

const fn opt(name: &'static str, kind: Kind, help: &'static str) -> Param {
    Param {
        name,
        kind,
        required: false,
        help,
    }
}

/// Every step may say which cluster it acts on; by default the alert's.
const CLUSTER: Param = opt("cluster", Kind::Text, "cluster name (default: the alert's)");

/// The vocabulary. `ack` is not here: acknowledging comes with the Alertmanager source.
pub const ACTIONS: &[ActionSpec] = &[
    ActionSpec {
        name: "rollout-restart",
        params: &[
            CLUSTER,
            req("namespace", Kind::Name, "namespace of the deployment"),
            req("deployment", Kind::Name, "deployment to restart"),
        ],
        help: "restart a deployment's pods (as kubectl rollout restart)",
        takes_body: false,
    },
    ActionSpec {
        name: "scale",
        params: &[
            CLUSTER,
            req("namespace", Kind::Name, "namespace of the deployment"),
            req("deployment", Kind::Name, "deployment to scale"),
            req("replicas", Kind::Count, "the new replica count"),
        ],
        help: "set a deployment's replica count",
        takes_body: false,
    },
    ActionSpec {
        name: "cordon",
        params: &[
            CLUSTER,
            req("node", Kind::Name, "node to mark unschedulable"),
        ],
        help: "mark a node unschedulable",
        takes_body: false,
    },
    ActionSpec {
        name: "uncordon",
        params: &[CLUSTER, req("node", Kind::Name, "node to make schedulable")],
        help: "make a node schedulable again",
        takes_body: false,
    },
    ActionSpec {
        name: "drain",
        params: &[
            CLUSTER,
            req("node", Kind::Name, "node to drain"),
            opt(
                "timeout",
                Kind::Seconds,
                "give up after this long (default 300s)",
            ),
        ],
        help: "cordon a node and evict its pods through the Eviction API (respects PDBs)",
        takes_body: false,
    },
    ActionSpec {
        name: "delete-pod",
        params: &[
            CLUSTER,
            req("namespace", Kind::Name, "namespace of the pod"),
            req("pod", Kind::Name, "pod to delete"),
        ],
        help: "delete one pod (its controller replaces it)",
        takes_body: false,
    },
    ActionSpec {
        name: "argocd-refresh",
        params: &[
            CLUSTER,
            req("application", Kind::Name, "Argo CD Application on the hub"),
        ],
        help: "ask Argo CD to compare an Application with Git again",
        takes_body: false,
    },
    ActionSpec {
        name: "argocd-sync",
        params: &[
            CLUSTER,
            req("application", Kind::Name, "Argo CD Application on the hub"),
        ],
        help: "sync an Argo CD Application to its target revision",
        takes_body: false,
    },
    ActionSpec {
        name: "update-addon",
        params: &[
            CLUSTER,
            req("addon", Kind::Name, "EKS add-on name, e.g. coredns"),
            opt(
                "version",
                Kind::Text,
                "e.g. v1.11.4-eksbuild.2 (default: EKS's default for the cluster's Kubernetes version)",
            ),
        ],
        help: "update an EKS add-on to a version",
        takes_body: false,
    },
    ActionSpec {
        name: "pause-wave",
        params: &[
            CLUSTER,
            opt("reason", Kind::Text, "why (default: the runbook and alert)"),
        ],
        help: "pause the rollout wave the cluster is in",
        takes_body: false,
    },
    ActionSpec {
        name: "resume-wave",
        params: &[CLUSTER],
        help: "resume the rollout wave the cluster is in",
        takes_body: false,
    },
    ActionSpec {
        name: "ack",
        params: &[opt(
            "for",
            Kind::Seconds,
            "how long, e.g. 30m (default: 1h)",
        )],
        help: "acknowledge the alert: a silence for Prometheus alerts, else an audit record",
        takes_body: false,
    },
    ActionSpec {
        name: "shell",
        params: &[CLUSTER],
        help: "run the block as a sh script (only with allow_shell = true)",
        takes_body: true,
    },
];

/// The action called `name`.
pub fn spec(name: &str) -> Option<&'static ActionSpec> {
    ACTIONS.iter().find(|a| a.name == name)
}

/// The alert fields a reference may name.
const ROOTS: &[&str] = &["cluster", "account", "region", "alert", "severity"];

/// Checks a step's action and parameters without an alert: unknown action, unknown or
/// missing parameter, a literal value of the wrong shape, a malformed reference. Every
/// problem is returned.
pub fn check(action: &str, params: &BTreeMap<String, String>, body: &str) -> Vec<String> {
    let Some(spec) = spec(action) else {
        let known: Vec<&str> = ACTIONS.iter().map(|a| a.name).collect();
        return vec![format!(
            "unknown action '{action}' (known: {})",
            known.join(", ")
        )];
    };
    let mut problems = Vec::new();
    for name in params.keys() {
        if !spec.params.iter().any(|p| p.name == name) {
            let known: Vec<&str> = spec.params.iter().map(|p| p.name).collect();
            problems.push(format!(
                "action '{action}' has no parameter '{name}' (it takes: {})",
                known.join(", ")
            ));
        }
    }
    for p in spec.params {
        match params.get(p.name) {
            None if p.required => {
                problems.push(format!("action '{action}' needs parameter '{}'", p.name))
            }
            None => {}
            Some(value) => match references(value) {
                Err(e) => problems.push(format!("parameter '{}': {e}", p.name)),
                Ok(refs) if refs.is_empty() => {
                    if let Err(e) = check_value(p.kind, value) {
                        problems.push(format!("parameter '{}': {e}", p.name));
                    }
                }
                Ok(_) => {}
            },
        }
    }
    if spec.takes_body && body.trim().is_empty() {
        problems.push(format!("action '{action}' needs the script in the block"));
    }
    problems
}

/// The references in `value`, e.g. `["cluster", "labels.namespace"]`; an error for an
/// unclosed `{{` or a name that is not a known reference.
pub fn references(value: &str) -> Result<Vec<String>, String> {
    let mut refs = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("'{{{{' without '}}}}' in '{value}'"));
        };
        let name = after[..end].trim();
        let known = ROOTS.contains(&name)
            || name
                .strip_prefix("labels.")
                .is_some_and(|l| !l.is_empty() && !l.contains(char::is_whitespace));
        if !known {
            return Err(format!(
                "unknown reference '{{{{{name}}}}}' (use {{{{cluster}}}}, {{{{account}}}}, {{{{region}}}}, {{{{alert}}}}, {{{{severity}}}} or {{{{labels.NAME}}}})"
            ));
        }
        refs.push(name.to_string());
        rest = &after[end + 2..];
    }
    Ok(refs)
}

/// Fills in the references of `value` from `alert`. A label the alert does not have, or a
/// cluster reference on an alert with no cluster, is an error naming it.
pub fn resolve(value: &str, alert: &Alert) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("'{{{{' without '}}}}' in '{value}'"))?;
        let name = after[..end].trim();
        let cluster = alert.cluster.as_ref();
        let filled = match name {
            "cluster" => cluster.map(|c| c.name.clone()),
            "account" => cluster.map(|c| c.account.clone()),
            "region" => cluster.map(|c| c.region.clone()),
            "alert" => Some(alert.name.clone()),
            "severity" => Some(alert.severity.as_str().to_string()),
            other => match other.strip_prefix("labels.") {
                Some(label) => alert.labels.get(label).cloned(),
                None => return Err(format!("unknown reference '{{{{{name}}}}}'")),
            },
        };
        match filled {
            Some(v) if !v.is_empty() => out.push_str(&v),
            _ => {
                return Err(format!(
                    "'{{{{{name}}}}}' cannot be filled in: alert {} has no {}",
                    alert.name,
                    match name.strip_prefix("labels.") {
                        Some(label) => format!("label '{label}'"),
                        None => name.to_string(),
                    }
                ));
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks a literal (or resolved) value against its kind.
pub fn check_value(kind: Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Name => {
            let ok = !value.is_empty()
                && value.len() <= 253
                && value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                && value.starts_with(|c: char| c.is_ascii_alphanumeric())
                && value.ends_with(|c: char| c.is_ascii_alphanumeric());
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "'{value}' is not a Kubernetes name (lowercase letters, digits, '-' and '.')"
                ))
            }
        }
        Kind::Count => value
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| format!("'{value}' is not a whole number of at least 0")),
        Kind::Seconds => parse_seconds(value).map(|_| ()),
        Kind::Text => Ok(()),
    }
}

/// `300`, `300s`, `5m` or `1h` as seconds; at least 1 and at most a day.
pub fn parse_seconds(value: &str) -> Result<u64, String> {
    let (digits, unit) = match value.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => value.split_at(i),
        None => (value, "s"),
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{value}' is not a duration (e.g. 300, 90s, 5m, 1h)"))?;
    let secs = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        _ => {
            return Err(format!(
                "'{value}' is not a duration (e.g. 300, 90s, 5m, 1h)"
            ));
        }
    };
    if (1..=86_400).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("'{value}' must be between 1 second and 1 day"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_good_step_has_no_problems() {
        let p = params(&[
            ("namespace", "kube-system"),
            ("deployment", "coredns"),
            ("cluster", "{{cluster}}"),
        ]);
        assert!(check("rollout-restart", &p, "").is_empty());
        let p = params(&[("node", "{{labels.node}}"), ("timeout", "10m")]);
        assert!(check("drain", &p, "").is_empty());
        assert!(check("shell", &params(&[]), "kubectl get nodes\n").is_empty());
    }

    #[test]
    fn every_kind_of_problem_is_named() {
        assert!(check("restart", &params(&[]), "")[0].starts_with("unknown action 'restart'"));
        let problems = check(
            "scale",
            &params(&[("namespace", "Payments"), ("replica", "3")]),
            "",
        );
        assert_eq!(
            problems,
            [
                "action 'scale' has no parameter 'replica' (it takes: cluster, namespace, deployment, replicas)",
                "parameter 'namespace': 'Payments' is not a Kubernetes name (lowercase letters, digits, '-' and '.')",
                "action 'scale' needs parameter 'deployment'",
                "action 'scale' needs parameter 'replicas'",
            ]
        );
        assert_eq!(
            check(
                "scale",
                &params(&[("namespace", "a"), ("deployment", "b"), ("replicas", "-1")]),
                ""
            ),
            ["parameter 'replicas': '-1' is not a whole number of at least 0"]
        );
        assert_eq!(
            check(
                "drain",
                &params(&[("node", "{{labels.node"), ("timeout", "2d")]),
                ""
            ),
            [
                "parameter 'node': '{{' without '}}' in '{{labels.node'",
                "parameter 'timeout': '2d' is not a duration (e.g. 300, 90s, 5m, 1h)",
            ]
        );
        assert!(
            check("cordon", &params(&[("node", "{{nodename}}")]), "")[0]
                .starts_with("parameter 'node': unknown reference '{{nodename}}'")
        );
        assert_eq!(
            check("shell", &params(&[]), "  \n"),
            ["action 'shell' needs the script in the block"]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_seconds("300"), Ok(300));
        assert_eq!(parse_seconds("90s"), Ok(90));
        assert_eq!(parse_seconds("5m"), Ok(300));
        assert_eq!(parse_seconds("1h"), Ok(3600));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("25h").is_err());
        assert!(parse_seconds("m").is_err());
    }
}
