//! Refresh and sync of one Argo CD Application, written to the hub's Kubernetes API as
//! Argo CD's own clients do: a refresh is the `argocd.argoproj.io/refresh` annotation, a
//! sync is an `operation` set on the Application, which the application controller picks
//! up. Both can run as a server-side dry run first.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use crate::actions::Operation;
use crate::sources::WriteResult;
use crate::sources::remediation::RemediateRequest;

/// Who the sync operation says started it.
const INITIATED_BY: &str = "fleetdeck";

fn applications() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "Application".into(),
        plural: "applications".into(),
    }
}

/// Carries out (or previews) a refresh or sync on the hub, then answers the request.
pub(super) async fn run(client: kube::Client, namespace: String, request: RemediateRequest) {
    let result = perform(&client, &namespace, &request).await;
    request.answer(result);
}

/// Refresh or sync `request`'s Application in `namespace` on the hub.
pub async fn perform(
    client: &kube::Client,
    namespace: &str,
    request: &RemediateRequest,
) -> WriteResult {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &applications());
    let dry_run = request.dry_run;
    let params = PatchParams {
        dry_run,
        field_manager: Some(crate::sources::kube::connect::FIELD_MANAGER.into()),
        ..PatchParams::default()
    };
    let fail = |name: &str, e: kube::Error| match e {
        kube::Error::Api(s) if s.code == 404 => {
            format!("Argo CD application {namespace}/{name} not found on the hub")
        }
        kube::Error::Api(s) => format!(
            "Argo CD application {namespace}/{name}: {} ({}): {}",
            s.reason, s.code, s.message
        ),
        other => format!("Argo CD hub: {other}"),
    };
    match &request.remediation.op {
        Operation::ArgocdRefresh { application } => {
            let patch =
                json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
            let app = api
                .patch(application, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| fail(application, e))?;
            let now = status_text(&app.data);
            Ok(if dry_run {
                format!(
                    "dry run accepted by the hub: would refresh application {application} ({now})"
                )
            } else {
                format!("refresh of application {application} requested ({now})")
            })
        }
        Operation::ArgocdSync { application } => {
            let app = api
                .get(application)
                .await
                .map_err(|e| fail(application, e))?;
            let running = app
                .data
                .pointer("/status/operationState/phase")
                .and_then(Value::as_str)
                == Some("Running")
                || app.data.get("operation").is_some_and(|o| !o.is_null());
            if running {
                return Err(format!(
                    "application {application} already has an operation in progress; wait for it or terminate it in Argo CD"
                ));
            }
            let revision = app
                .data
                .pointer("/spec/source/targetRevision")
                .and_then(Value::as_str)
                .unwrap_or("HEAD")
                .to_string();
            let patch = json!({"operation": {
                "initiatedBy": {"username": INITIATED_BY},
                "info": [{"name": "Reason", "value": "fleetdeck runbook step"}],
                "sync": {"revision": revision, "syncStrategy": {"hook": {}}},
            }});
            api.patch(application, &params, &Patch::Merge(&patch))
                .await
                .map_err(|e| fail(application, e))?;
            let now = status_text(&app.data);
            Ok(if dry_run {
                format!(
                    "dry run accepted by the hub: would sync application {application} to {revision} ({now})"
                )
            } else {
                format!("sync of application {application} to {revision} started ({now})")
            })
        }
        other => Err(format!(
            "{} is not an Argo CD action; the hub source cannot carry it out",
            other.kind()
        )),
    }
}

/// `sync OutOfSync, health Degraded`, from an Application's status.
fn status_text(app: &Value) -> String {
    let get = |p: &str| app.pointer(p).and_then(Value::as_str).unwrap_or("unknown");
    format!(
        "now sync {}, health {}",
        get("/status/sync/status"),
        get("/status/health/status")
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tokio::sync::oneshot;

    use super::*;
    use crate::actions::Remediation;
    use crate::model::ClusterId;
    use crate::sources::kube::testing::{server, status};

    const PATH: &str =
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/prod-use1-payments-01-payments";

    fn app(operation: Option<Value>) -> Value {
        let mut app = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "prod-use1-payments-01-payments", "namespace": "argocd", "resourceVersion": "88121"},
            "spec": {"project": "payments",
                     "source": {"repoURL": "https://github.com/example/fleet.git", "path": "apps/payments", "targetRevision": "release-2026.11"},
                     "destination": {"server": "https://ABC.gr7.us-east-1.eks.amazonaws.com", "namespace": "payments"}},
            "status": {"sync": {"status": "OutOfSync", "revision": "9f1c2e7"}, "health": {"status": "Degraded"},
                       "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"}}
        });
        if let Some(op) = operation {
            app["operation"] = op;
            app["status"]["operationState"]["phase"] = "Running".into();
        }
        app
    }

    fn request(op: Operation, dry_run: bool) -> RemediateRequest {
        let (reply, _) = oneshot::channel();
        RemediateRequest {
            remediation: Remediation {
                cluster: ClusterId::new("prod", "us-east-1", "prod-use1-payments-01"),
                production: true,
                step: None,
                op,
            },
            dry_run,
            progress: None,
            reply,
        }
    }

    fn sync() -> Operation {
        Operation::ArgocdSync {
            application: "prod-use1-payments-01-payments".into(),
        }
    }

    #[tokio::test]
    async fn refresh_sets_the_refresh_annotation_with_dry_run_first() {
        let (client, log) = server(|_, _| (200, app(None)));
        let op = Operation::ArgocdRefresh {
            application: "prod-use1-payments-01-payments".into(),
        };
        let result = perform(&client, "argocd", &request(op, true))
            .await
            .unwrap();
        assert_eq!(
            result,
            "dry run accepted by the hub: would refresh application prod-use1-payments-01-payments (now sync OutOfSync, health Degraded)"
        );
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen[0].method, "PATCH");
        assert_eq!(seen[0].path, PATH);
        assert_eq!(seen[0].content_type, "application/merge-patch+json");
        assert!(seen[0].query.contains("dryRun=All"));
        assert_eq!(
            seen[0].body,
            json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
        );
    }

    #[tokio::test]
    async fn sync_sets_an_operation_at_the_target_revision() {
        let (client, log) = server(|_, _| (200, app(None)));
        let result = perform(&client, "argocd", &request(sync(), false))
            .await
            .unwrap();
        assert_eq!(
            result,
            "sync of application prod-use1-payments-01-payments to release-2026.11 started (now sync OutOfSync, health Degraded)"
        );
        let seen = log.lock().unwrap().clone();
        assert_eq!(seen[0].method, "GET");
        assert_eq!(seen[1].method, "PATCH");
        assert!(!seen[1].query.contains("dryRun"));
        let op = &seen[1].body["operation"];
        assert_eq!(op["initiatedBy"]["username"], "fleetdeck");
        assert_eq!(op["sync"]["revision"], "release-2026.11");
    }

    #[tokio::test]
    async fn a_running_operation_or_a_missing_app_is_refused() {
        let (client, log) = server(|_, _| (200, app(Some(json!({"sync": {"revision": "HEAD"}})))));
        let e = perform(&client, "argocd", &request(sync(), true))
            .await
            .unwrap_err();
        assert!(e.contains("already has an operation in progress"), "{e}");
        assert_eq!(log.lock().unwrap().len(), 1, "no patch");

        let (client, _) = server(|_, _| {
            let body = status(
                404,
                "NotFound",
                "applications.argoproj.io \"prod-use1-payments-01-payments\" not found",
            );
            (404, serde_json::from_str(&body).unwrap())
        });
        let e = perform(&client, "argocd", &request(sync(), true))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            "Argo CD application argocd/prod-use1-payments-01-payments not found on the hub"
        );

        let (client, _) = server(|s, _| match s.method.as_str() {
            "GET" => (200, app(None)),
            _ => {
                let body = status(
                    409,
                    "Conflict",
                    "Operation cannot be fulfilled on applications.argoproj.io \"prod-use1-payments-01-payments\": the object has been modified; please apply your changes to the latest version and try again",
                );
                (409, serde_json::from_str(&body).unwrap())
            }
        });
        let e = perform(&client, "argocd", &request(sync(), false))
            .await
            .unwrap_err();
        assert!(
            e.starts_with(
                "Argo CD application argocd/prod-use1-payments-01-payments: Conflict (409):"
            ),
            "{e}"
        );
    }
}
