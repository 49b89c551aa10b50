//! Argo CD objects with Argo CD's real field shapes (`pkg/apis/application/v1alpha1`:
//! `types.go` for Application and its `status`, `applicationset_types.go` for the
//! ApplicationSet, its RollingSync strategy and `status.applicationStatus`), and its
//! cluster Secrets, for seeding a stand-in hub.
//!
//! How fleetdeck ties an Application to an EKS cluster (`src/sources/argocd/fleet.rs`):
//! `spec.destination.server` equal to the cluster's EKS endpoint (case, trailing slash
//! and `:443` aside), else `spec.destination.name` equal to the EKS cluster name (when
//! no other cluster of the fleet has that name) or to its ARN. The cluster Secret's
//! `data.name` is what `destination.name` refers to in Argo CD; fleetdeck does not read
//! the Secrets, so name the Secret's cluster exactly as the EKS cluster (or its ARN).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};

/// Argo CD's namespace on the hub.
pub const NAMESPACE: &str = "argocd";
/// The time every fixture says things happened (the screen tests' frozen 02:10).
pub const AT: &str = "2026-11-21T02:10:00Z";
/// The revision every fixture is synced to.
pub const REVISION: &str = "9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f0e";

/// Where an Application deploys.
#[derive(Clone, Copy, Debug)]
pub enum Destination<'a> {
    /// `spec.destination.server`: the cluster's API server URL.
    Server(&'a str),
    /// `spec.destination.name`: the name of an Argo CD cluster (its Secret's `data.name`).
    Name(&'a str),
}

impl Destination<'_> {
    fn json(self, namespace: &str) -> Value {
        match self {
            Self::Server(server) => json!({"server": server, "namespace": namespace}),
            Self::Name(name) => json!({"name": name, "namespace": namespace}),
        }
    }
}

/// An Argo CD cluster Secret as `argocd cluster add` (or the EKS blueprints) writes it
/// for an EKS cluster reached with IRSA: `data.name`, `data.server` and `data.config`
/// base64-encoded, `labels` for the cluster generator (e.g. `env: prod`).
pub fn cluster_secret(cluster_name: &str, server: &str, labels: &[(&str, &str)]) -> Value {
    let mut all_labels = json!({"argocd.argoproj.io/secret-type": "cluster"});
    for (k, v) in labels {
        all_labels[*k] = json!(v);
    }
    let config = json!({
        "awsAuthConfig": {
            "clusterName": cluster_name.rsplit('/').next().unwrap_or(cluster_name),
            "roleARN": "arn:aws:iam::123456789012:role/argocd-manager",
        },
        "tlsClientConfig": {"insecure": false, "caData": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="},
    });
    let secret_name = format!(
        "cluster-{}",
        cluster_name
            .rsplit('/')
            .next()
            .unwrap_or(cluster_name)
            .to_ascii_lowercase()
    );
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": secret_name,
            "namespace": NAMESPACE,
            "labels": all_labels,
            "annotations": {"managed-by": "argocd.argoproj.io"},
        },
        "type": "Opaque",
        "data": {
            "name": STANDARD.encode(cluster_name),
            "server": STANDARD.encode(server),
            "config": STANDARD.encode(config.to_string()),
        },
    })
}

/// A managed resource as `status.resources[]` lists it, with its health (as Argo CD
/// persists it with `controller.resource.health.persist: true`, the 2.x default).
pub fn resource(
    group: &str,
    kind: &str,
    namespace: &str,
    name: &str,
    health: &str,
    message: Option<&str>,
) -> Value {
    let mut health = json!({"status": health});
    if let Some(message) = message {
        health["message"] = json!(message);
    }
    json!({
        "group": group,
        "version": "v1",
        "kind": kind,
        "namespace": namespace,
        "name": name,
        "status": "Synced",
        "health": health,
    })
}

/// A Healthy, Synced Application of `project` deploying `path` to `destination`, its
/// last sync Succeeded, labelled `labels`, owned by ApplicationSet `owner` when given
/// (its `ownerReferences`, as the ApplicationSet controller sets them).
pub fn application(
    name: &str,
    project: &str,
    destination: Destination<'_>,
    labels: &[(&str, &str)],
    owner: Option<&Value>,
) -> Value {
    let mut label_map = json!({});
    for (k, v) in labels {
        label_map[*k] = json!(v);
    }
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": label_map,
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": project,
            "source": {
                "repoURL": "https://github.com/acme/fleet-addons.git",
                "path": format!("addons/{project}"),
                "targetRevision": "main",
            },
            "destination": destination.json(project),
            "syncPolicy": {
                "automated": {"prune": true, "selfHeal": true},
                "syncOptions": ["CreateNamespace=true", "ServerSideApply=true"],
            },
        },
        "status": {
            "sync": {
                "status": "Synced",
                "comparedTo": {
                    "source": {"repoURL": "https://github.com/acme/fleet-addons.git", "path": format!("addons/{project}"), "targetRevision": "main"},
                    "destination": destination.json(project),
                },
                "revision": REVISION,
            },
            "health": {"status": "Healthy", "lastTransitionTime": AT},
            "resources": [
                resource("apps", "Deployment", project, project, "Healthy", None),
                {"version": "v1", "kind": "Service", "namespace": project, "name": project, "status": "Synced", "health": {"status": "Healthy"}},
            ],
            "operationState": {
                "operation": {
                    "sync": {"revision": REVISION, "syncStrategy": {"hook": {}}},
                    "initiatedBy": {"automated": true},
                    "retry": {"limit": 5},
                },
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "syncResult": {
                    "resources": [{
                        "group": "apps", "version": "v1", "kind": "Deployment",
                        "namespace": project, "name": project,
                        "status": "Synced", "message": "deployment.apps/addons configured",
                        "hookPhase": "Running", "syncPhase": "Sync",
                    }],
                    "revision": REVISION,
                    "source": {"repoURL": "https://github.com/acme/fleet-addons.git", "path": format!("addons/{project}"), "targetRevision": "main"},
                },
                "startedAt": "2026-11-21T01:58:00Z",
                "finishedAt": "2026-11-21T01:58:09Z",
            },
            "reconciledAt": AT,
            "sourceType": "Kustomize",
            "summary": {"images": [format!("public.ecr.aws/acme/{project}:1.42.0")]},
            "controllerNamespace": NAMESPACE,
        },
    });
    if let Some(set) = owner {
        // Under a RollingSync the ApplicationSet controller syncs its Applications
        // step by step; they must not sync themselves.
        app["spec"]["syncPolicy"]
            .as_object_mut()
            .map(|p| p.remove("automated"));
        app["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "name": set["metadata"]["name"],
            "uid": set["metadata"]["uid"].as_str().unwrap_or("00000000-0000-4000-8000-000000000000"),
            "controller": true,
            "blockOwnerDeletion": true,
        }]);
    }
    app
}

/// `app` Degraded as Argo CD 3 reports it: `status.health` without a message, the
/// resources whose health is Degraded (group, kind, namespace, name, message) in
/// `status.resources[]` with theirs, the last sync still "successfully synced".
pub fn degraded(mut app: Value, resources: &[(&str, &str, &str, &str, &str)]) -> Value {
    app["status"]["health"] = json!({"status": "Degraded", "lastTransitionTime": AT});
    let listed = app["status"]["resources"]
        .as_array_mut()
        .map(std::mem::take)
        .unwrap_or_default();
    let mut all: Vec<Value> = listed
        .into_iter()
        .filter(|r| {
            !resources.iter().any(|(_, kind, ns, name, _)| {
                r["kind"] == *kind && r["namespace"] == *ns && r["name"] == *name
            })
        })
        .collect();
    for (group, kind, namespace, name, message) in resources {
        all.push(resource(
            group,
            kind,
            namespace,
            name,
            "Degraded",
            Some(message),
        ));
    }
    app["status"]["resources"] = Value::Array(all);
    app
}

/// `app` Degraded with resource health kept out of the Application (Argo CD 3's default,
/// `status.resourceHealthSource: appTree`): nothing in the object says which resource.
pub fn degraded_in_app_tree(mut app: Value) -> Value {
    app["status"]["health"] = json!({"status": "Degraded", "lastTransitionTime": AT});
    app["status"]["resourceHealthSource"] = json!("appTree");
    if let Some(resources) = app["status"]["resources"].as_array_mut() {
        for r in resources {
            if let Some(r) = r.as_object_mut() {
                r.remove("health");
            }
        }
    }
    app
}

/// `app` whose last sync Failed with `message`.
pub fn sync_failed(mut app: Value, message: &str) -> Value {
    app["status"]["sync"]["status"] = json!("OutOfSync");
    app["status"]["operationState"]["phase"] = json!("Failed");
    app["status"]["operationState"]["message"] = json!(message);
    app
}

/// One RollingSync step: apps whose label `key` is one of `values`, at most
/// `max_update` at once (a number, a percentage string, or none: all).
pub fn step(key: &str, values: &[&str], max_update: Option<Value>) -> Value {
    let mut step = json!({"matchExpressions": [{"key": key, "operator": "In", "values": values}]});
    if let Some(max) = max_update {
        step["maxUpdate"] = max;
    }
    step
}

/// One `status.applicationStatus[]` entry: `status` is Waiting, Pending, Progressing or
/// Healthy, `step` the 1-based step as a string, with the controller's own message.
pub fn app_status(application: &str, status: &str, step: u32) -> Value {
    let message = match status {
        "Waiting" => "Application has pending changes, setting status to Waiting",
        "Pending" => {
            "Application moved to Pending status, watching for the Application resource to start Progressing"
        }
        "Progressing" => {
            "Application resource completed a sync successfully, updating status from Pending to Progressing"
        }
        "Healthy" => {
            "Application resource became Healthy, updating status from Progressing to Healthy"
        }
        _ => "",
    };
    json!({
        "application": application,
        "lastTransitionTime": AT,
        "message": message,
        "status": status,
        "step": step.to_string(),
        "targetRevisions": [REVISION],
    })
}

/// An ApplicationSet generating one Application per Argo CD cluster (the cluster
/// generator; apps named `{{name}}-{name}`, labelled with the cluster's `env`), rolled
/// out by `spec.strategy.type: RollingSync` over `steps`, with the controller's
/// `status.applicationStatus` and conditions.
pub fn rolling_sync_set(name: &str, steps: Vec<Value>, statuses: Vec<Value>) -> Value {
    let progressing = statuses
        .iter()
        .filter(|s| s["status"] != "Healthy")
        .filter_map(|s| s["step"].as_str())
        .min()
        .map(str::to_string);
    let rollout = match &progressing {
        Some(step) => json!({
            "type": "RolloutProgressing", "status": "True",
            "message": format!("ApplicationSet is performing rollout of step {step}"),
            "reason": "ApplicationSetModified", "lastTransitionTime": AT,
        }),
        None => json!({
            "type": "RolloutProgressing", "status": "False",
            "message": "ApplicationSet Rollout has completed",
            "reason": "ApplicationSetRolloutComplete", "lastTransitionTime": AT,
        }),
    };
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "goTemplate": true,
            "goTemplateOptions": ["missingkey=error"],
            "generators": [{"clusters": {"selector": {"matchLabels": {"argocd.argoproj.io/secret-type": "cluster"}}}}],
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": steps}},
            "template": {
                "metadata": {
                    "name": format!("{{{{.name}}}}-{name}"),
                    "labels": {"env": "{{index .metadata.labels \"env\"}}"},
                },
                "spec": {
                    "project": name,
                    "source": {"repoURL": "https://github.com/acme/fleet-addons.git", "path": format!("addons/{name}"), "targetRevision": "main"},
                    "destination": {"server": "{{.server}}", "namespace": name},
                    "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
                },
            },
        },
        "status": {
            "conditions": [
                {"type": "ErrorOccurred", "status": "False", "message": "Successfully generated parameters for all Applications", "reason": "ApplicationSetUpToDate", "lastTransitionTime": AT},
                {"type": "ParametersGenerated", "status": "True", "message": "Successfully generated parameters for all Applications", "reason": "ParametersGenerated", "lastTransitionTime": AT},
                {"type": "ResourcesUpToDate", "status": "True", "message": "All applications have been generated successfully", "reason": "ApplicationSetUpToDate", "lastTransitionTime": AT},
                rollout,
            ],
            "applicationStatus": statuses,
        },
    })
}
