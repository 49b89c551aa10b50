//! May this user pause and resume waves? Both patch the ApplicationSet (`maxUpdate` of a
//! RollingSync step), so one `SelfSubjectAccessReview` answers both.
//!
//! The review is sent and read as plain JSON rather than through k8s-openapi's typed
//! struct: its answer is only `status.allowed` and `status.reason`, and an API server
//! (or a test double) that leaves out the echoed `spec` must not turn "denied" into
//! "could not check".

use kube::api::PostParams;
use serde_json::{Value, json};

use crate::model::PermissionCheck;

/// The verb and resource a pause or resume needs.
const CHECKED: &str = "patch applicationsets.argoproj.io";
/// The actions that need it, as the UI names them.
const ACTIONS: [&str; 2] = ["pause-wave", "resume-wave"];

/// Asks the hub whether this user may patch ApplicationSets in `namespace`; one check per
/// action. A review that fails is a denial whose reason says why it could not be checked.
pub(super) async fn check(client: &kube::Client, namespace: &str) -> Vec<PermissionCheck> {
    let (allowed, reason) = match review(client, namespace).await {
        Ok(answer) => answer,
        Err(e) => (false, cannot_check(&e)),
    };
    ACTIONS
        .iter()
        .map(|action| PermissionCheck {
            action: (*action).to_string(),
            checked: CHECKED.to_string(),
            namespace: Some(namespace.to_string()),
            allowed,
            reason: reason.clone(),
        })
        .collect()
}

async fn review(client: &kube::Client, namespace: &str) -> Result<(bool, String), kube::Error> {
    let body = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {
            "resourceAttributes": {
                "namespace": namespace,
                "verb": "patch",
                "group": "argoproj.io",
                "resource": "applicationsets",
            }
        }
    });
    let request =
        kube::core::Request::new("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews")
            .create(
                &PostParams::default(),
                serde_json::to_vec(&body).map_err(kube::Error::SerdeError)?,
            )
            .map_err(kube::Error::BuildRequest)?;
    let answer: Value = client.request(request).await?;
    let status = answer.get("status").unwrap_or(&Value::Null);
    let allowed = status
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let text = |field: &str| {
        status
            .get(field)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let reason = match (allowed, text("reason"), text("evaluationError")) {
        (_, Some(reason), Some(error)) => format!("{reason} ({error})"),
        (_, Some(reason), None) => reason.to_string(),
        (_, None, Some(error)) => error.to_string(),
        (true, None, None) => format!("allowed to {CHECKED} in {namespace}"),
        // RBAC denies by having no rule, and then says nothing.
        (false, None, None) => format!("no rule allows {CHECKED} in {namespace}"),
    };
    Ok((allowed, reason))
}

fn cannot_check(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if status.code == 403 => format!(
            "could not check: the hub refused the access review itself (403 Forbidden: {})",
            status.message
        ),
        kube::Error::Api(status) => format!(
            "could not check: access review failed ({} {}: {})",
            status.code, status.reason, status.message
        ),
        other => format!("could not check: access review failed: {other}"),
    }
}
