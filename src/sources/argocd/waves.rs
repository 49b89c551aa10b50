//! Pausing and resuming waves of a progressive sync, and the guard's holds: read the
//! ApplicationSet, apply the change with the same state machine the demo runs
//! (`crate::rollout`), write it back as a merge patch carrying the `resourceVersion`
//! that was read. On 409 Conflict someone else changed the set in between: read it
//! again, check again (they may have paused the same wave) and retry, so two operators
//! acting at once can't lose an update.

use super::parse;
use crate::model::{ArgoApp, Rollout, Timestamp};
use crate::rollout::argo;
use crate::rollout::plan::Plan;
use crate::sources::kube::connect::FIELD_MANAGER;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};

/// Attempts before giving up on a set that keeps changing under us.
pub(crate) const MAX_ATTEMPTS: usize = 5;

/// The hub's ApplicationSets in `namespace`, as `update` reads and writes them.
pub(crate) fn application_sets(client: kube::Client, namespace: &str) -> Api<DynamicObject> {
    let resource = ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "ApplicationSet".into(),
        plural: "applicationsets".into(),
    };
    Api::namespaced_with(client, namespace, &resource)
}

/// Where and as whom to write.
pub(crate) struct Target<'a> {
    pub api: &'a Api<DynamicObject>,
    /// The source name the rollout is known by (`argocd:{context}`).
    pub source: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// The hub's Applications, to place cells (the change itself only needs the steps).
    pub apps: &'a [ArgoApp],
    /// The plans file's plan for this set, if any (its annotation wins).
    pub file_plan: Option<&'a Plan>,
}

/// What `update` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Updated {
    /// What changed, in words; "nothing to change" when nothing was written.
    pub message: String,
    /// Whether the holds were written.
    pub written: bool,
    /// The set's `metadata.uid` as read, for Events about it.
    pub uid: Option<String>,
}

/// Reads the set, runs `change` on its rollout and writes the holds back, retrying on
/// conflict. `change` returns what it did, in words; an error from it (already paused,
/// nothing to resume...) is returned as is and nothing is written. `Ok(None)` from
/// `change` means there is nothing to write.
pub(crate) async fn update<F>(
    target: &Target<'_>,
    now: impl Fn() -> Timestamp,
    change: F,
) -> Result<Updated, String>
where
    F: Fn(&mut Rollout, Timestamp) -> Result<Option<String>, String>,
{
    let what = format!("ApplicationSet {}/{}", target.namespace, target.name);
    for attempt in 1..=MAX_ATTEMPTS {
        let object = target
            .api
            .get(target.name)
            .await
            .map_err(|e| format!("reading {what}: {}", describe(&e)))?;
        let value = serde_json::to_value(&object).map_err(|e| format!("{what}: {e}"))?;
        let uid = object.metadata.uid.clone();
        let updated = |message: String, written| Updated {
            message,
            written,
            uid: uid.clone(),
        };
        let set = parse::application_set(&object, target.namespace)
            .map_err(|e| format!("{what} is malformed: {e}"))?;
        if !argo::is_progressive(&set) {
            return Err(format!(
                "{what} does not use a RollingSync strategy: it has no waves to hold"
            ));
        }
        // A corrupt record must not be overwritten: it holds the original maxUpdate.
        argo::paused_steps(&set.annotations).map_err(|e| {
            format!("{what}: {e}; fix or remove the annotation by hand before acting")
        })?;
        let now = now();
        let mut rollout = argo::rollout(
            target.source,
            &set,
            target.apps,
            target.file_plan,
            |_| None,
            now,
        )
        .rollout;
        let Some(done) = change(&mut rollout, now)? else {
            return Ok(updated("nothing to change".into(), false));
        };
        let patch = argo::holds_patch(&value, &rollout).map_err(|e| format!("{what}: {e}"))?;
        // The holds are recorded as fleetdeck's in `managedFields`.
        let params = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        match target
            .api
            .patch(target.name, &params, &Patch::Merge(&patch))
            .await
        {
            Ok(_) if attempt == 1 => return Ok(updated(done, true)),
            Ok(_) => {
                let done = format!(
                    "{done} (after {} conflicting change{} by someone else)",
                    attempt - 1,
                    if attempt == 2 { "" } else { "s" }
                );
                return Ok(updated(done, true));
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                tracing::info!(set = %what, attempt, "conflict writing holds; reading again");
            }
            Err(e) => return Err(format!("writing {what}: {}", describe(&e))),
        }
    }
    Err(format!(
        "{what} changed under us {MAX_ATTEMPTS} times in a row; nothing was written. Try again."
    ))
}

/// A kube error as an operator should read it: the API server's own message and code.
fn describe(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests;
