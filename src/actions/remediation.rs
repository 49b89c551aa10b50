//! Remediations: the writes a runbook step (or, later, a key) makes on one cluster, and
//! how much confirmation each needs.
//!
//! Confirmation grows with the blast radius: `y`/`n` for what is easily undone (cordon,
//! uncordon, an Argo CD refresh) and for anything outside production; typing the cluster's
//! name for a disruptive write on production (restart, scale, drain, delete, sync, add-on
//! update, shell).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::ClusterId;

/// One write on one cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remediation {
    /// The cluster acted on.
    pub cluster: ClusterId,
    /// The cluster is production: disruptive writes need its name typed.
    pub production: bool,
    /// The runbook step that asked for it, `runbook-id:line`, for the audit log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(flatten)]
    pub op: Operation,
}

/// What the write does.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Operation {
    RolloutRestart {
        namespace: String,
        deployment: String,
    },
    Scale {
        namespace: String,
        deployment: String,
        replicas: u32,
    },
    Cordon {
        node: String,
    },
    Uncordon {
        node: String,
    },
    Drain {
        node: String,
        timeout_secs: u64,
    },
    DeletePod {
        namespace: String,
        pod: String,
    },
    ArgocdRefresh {
        application: String,
    },
    ArgocdSync {
        application: String,
    },
    UpdateAddon {
        addon: String,
        /// `None`: EKS's default version for `kubernetes_version`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<String>,
        /// The cluster's Kubernetes version, to find the default add-on version.
        kubernetes_version: String,
    },
    /// A `sh` script, run on this machine with the alert's context in its environment.
    Shell {
        script: String,
        env: BTreeMap<String, String>,
    },
}

/// How an operator confirms a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Confirmation {
    /// `y` / `n`.
    YesNo,
    /// Type this name (the cluster's) and `enter`.
    TypeName(String),
}

impl Operation {
    /// The action's name, as in runbook steps and the audit log.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RolloutRestart { .. } => "rollout-restart",
            Self::Scale { .. } => "scale",
            Self::Cordon { .. } => "cordon",
            Self::Uncordon { .. } => "uncordon",
            Self::Drain { .. } => "drain",
            Self::DeletePod { .. } => "delete-pod",
            Self::ArgocdRefresh { .. } => "argocd-refresh",
            Self::ArgocdSync { .. } => "argocd-sync",
            Self::UpdateAddon { .. } => "update-addon",
            Self::Shell { .. } => "shell",
        }
    }

    /// A phrase for messages: "draining a node".
    pub fn gerund(&self) -> &'static str {
        match self {
            Self::RolloutRestart { .. } => "restarting a deployment",
            Self::Scale { .. } => "scaling a deployment",
            Self::Cordon { .. } => "cordoning a node",
            Self::Uncordon { .. } => "uncordoning a node",
            Self::Drain { .. } => "draining a node",
            Self::DeletePod { .. } => "deleting a pod",
            Self::ArgocdRefresh { .. } => "refreshing an Argo CD application",
            Self::ArgocdSync { .. } => "syncing an Argo CD application",
            Self::UpdateAddon { .. } => "updating an EKS add-on",
            Self::Shell { .. } => "running a shell step",
        }
    }

    /// The object acted on, e.g. `deployment kube-system/coredns`.
    pub fn object(&self) -> String {
        match self {
            Self::RolloutRestart {
                namespace,
                deployment,
            }
            | Self::Scale {
                namespace,
                deployment,
                ..
            } => format!("deployment {namespace}/{deployment}"),
            Self::Cordon { node } | Self::Uncordon { node } | Self::Drain { node, .. } => {
                format!("node {node}")
            }
            Self::DeletePod { namespace, pod } => format!("pod {namespace}/{pod}"),
            Self::ArgocdRefresh { application } | Self::ArgocdSync { application } => {
                format!("application {application}")
            }
            Self::UpdateAddon { addon, .. } => format!("add-on {addon}"),
            Self::Shell { .. } => "shell".into(),
        }
    }

    /// Written to a Kubernetes API server (so previewed with a server-side dry run).
    pub fn is_kubernetes(&self) -> bool {
        matches!(
            self,
            Self::RolloutRestart { .. }
                | Self::Scale { .. }
                | Self::Cordon { .. }
                | Self::Uncordon { .. }
                | Self::Drain { .. }
                | Self::DeletePod { .. }
        )
    }

    /// Easily undone and disrupting nothing that runs: y/n even on production.
    fn is_reversible(&self) -> bool {
        matches!(
            self,
            Self::Cordon { .. } | Self::Uncordon { .. } | Self::ArgocdRefresh { .. }
        )
    }
}

impl Remediation {
    /// `prod-use1-x: deployment kube-system/coredns`.
    pub fn target(&self) -> String {
        format!("{}: {}", self.cluster.name, self.op.object())
    }

    /// The confirmation policy: production disruptive writes need the cluster name typed.
    pub fn confirmation(&self) -> Confirmation {
        if self.production && !self.op.is_reversible() {
            Confirmation::TypeName(self.cluster.name.clone())
        } else {
            Confirmation::YesNo
        }
    }

    /// One of each operation on `cluster`, for tests that must cover every kind.
    pub fn examples(cluster: &ClusterId, production: bool) -> Vec<Remediation> {
        let ns = || "kube-system".to_string();
        [
            Operation::RolloutRestart {
                namespace: ns(),
                deployment: "coredns".into(),
            },
            Operation::Scale {
                namespace: ns(),
                deployment: "coredns".into(),
                replicas: 4,
            },
            Operation::Cordon {
                node: "ip-10-0-1-7.ec2.internal".into(),
            },
            Operation::Uncordon {
                node: "ip-10-0-1-7.ec2.internal".into(),
            },
            Operation::Drain {
                node: "ip-10-0-1-7.ec2.internal".into(),
                timeout_secs: 300,
            },
            Operation::DeletePod {
                namespace: ns(),
                pod: "coredns-5d8f7c9b4-x2lq9".into(),
            },
            Operation::ArgocdRefresh {
                application: "cell-addons".into(),
            },
            Operation::ArgocdSync {
                application: "cell-addons".into(),
            },
            Operation::UpdateAddon {
                addon: "coredns".into(),
                version: Some("v1.11.4-eksbuild.2".into()),
                kubernetes_version: "1.31".into(),
            },
            Operation::Shell {
                script: "kubectl get nodes".into(),
                env: BTreeMap::new(),
            },
        ]
        .into_iter()
        .map(|op| Remediation {
            cluster: cluster.clone(),
            production,
            step: None,
            op,
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_disruptive_writes_need_the_cluster_name_typed() {
        let prod = ClusterId::new("prod", "us-east-1", "prod-use1-api-01");
        for r in Remediation::examples(&prod, true) {
            let expected = match r.op.kind() {
                "cordon" | "uncordon" | "argocd-refresh" => Confirmation::YesNo,
                _ => Confirmation::TypeName("prod-use1-api-01".into()),
            };
            assert_eq!(r.confirmation(), expected, "{}", r.op.kind());
        }
        let dev = ClusterId::new("dev", "us-east-1", "dev-use1-api-01");
        for r in Remediation::examples(&dev, false) {
            assert_eq!(r.confirmation(), Confirmation::YesNo, "{}", r.op.kind());
        }
    }
}
