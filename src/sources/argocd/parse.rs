//! Reading Applications and ApplicationSets out of `DynamicObject`s, tolerantly.
//!
//! Argo CD adds fields every release and an Application that was never reconciled has no
//! `status` at all, so a field that is missing or of the wrong type reads as absent. Only
//! the shape that meaning depends on is required: `spec` must be an object, and an
//! ApplicationSet's RollingSync steps must be readable as steps. A step skipped there
//! would shift the numbering of the ones after it, and a wave paused by step number would
//! then hold the wrong clusters, so such a set is skipped whole instead.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::Value;

use crate::model::{AppStepStatus, ApplicationSet, ArgoApp, SyncStep, Timestamp};

/// Why an object was skipped, for the log and the source's last error.
pub type Malformed = String;

/// An Application and where it says it deploys, before it is tied to a cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedApp {
    pub app: ArgoApp,
    /// `spec.destination.server`, when set.
    pub server: Option<String>,
    /// `spec.destination.name`, when set.
    pub dest_name: Option<String>,
}

/// `namespace/name` of an object, the key both kinds are stored under.
pub(super) fn object_key(obj: &DynamicObject, default_namespace: &str) -> String {
    format!(
        "{}/{}",
        obj.metadata
            .namespace
            .as_deref()
            .unwrap_or(default_namespace),
        obj.metadata.name.as_deref().unwrap_or("")
    )
}

/// The string at `path` under `value`, if it is there and is a non-empty string.
fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(key))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// `spec`, which must be an object.
fn spec(obj: &DynamicObject) -> Result<&Value, Malformed> {
    match obj.data.get("spec") {
        Some(spec @ Value::Object(_)) => Ok(spec),
        Some(other) => Err(format!("spec is {}, not an object", json_type(other))),
        None => Err("it has no spec".into()),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn name(obj: &DynamicObject) -> Result<String, Malformed> {
    obj.metadata
        .name
        .clone()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| "it has no metadata.name".into())
}

/// Reads one Application. `cluster` is left `None`: mapping needs the fleet.
pub fn application(obj: &DynamicObject, default_namespace: &str) -> Result<ParsedApp, Malformed> {
    let name = name(obj)?;
    let spec = spec(obj)?;
    let status = obj.data.get("status").unwrap_or(&Value::Null);
    let server = text(spec, &["destination", "server"]).map(str::to_string);
    let dest_name = text(spec, &["destination", "name"]).map(str::to_string);
    let operation_phase = text(status, &["operationState", "phase"]).map(str::to_string);
    let operation_message = text(status, &["operationState", "message"]);
    let health_message = text(status, &["health", "message"]);
    let health = text(status, &["health", "status"]);
    // A failed sync's own message says what broke. A Degraded app is explained by its
    // health message, which Argo CD 3 no longer fills, else by the resources that are
    // Degraded; never by its last sync, which may well have "successfully synced".
    let message = match (operation_phase.as_deref(), health) {
        (Some("Failed" | "Error"), _) => operation_message.or(health_message).map(str::to_string),
        (_, Some("Degraded")) => health_message
            .map(str::to_string)
            .or_else(|| degraded_resources(status))
            .or_else(|| health_elsewhere(status, obj, default_namespace)),
        _ => health_message.or(operation_message).map(str::to_string),
    };
    let app = ArgoApp {
        name,
        namespace: obj
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_string()),
        project: text(spec, &["project"]).unwrap_or("default").to_string(),
        cluster: None,
        destination: server
            .clone()
            .or_else(|| dest_name.clone())
            .unwrap_or_default(),
        // Argo CD shows an Application it has not reconciled yet as Unknown.
        sync: text(status, &["sync", "status"])
            .unwrap_or("Unknown")
            .to_string(),
        health: health.unwrap_or("Unknown").to_string(),
        operation_phase,
        message,
        labels: obj
            .metadata
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        app_set: obj
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.kind == "ApplicationSet")
            .map(|o| o.name.clone()),
    };
    Ok(ParsedApp {
        app,
        server,
        dest_name,
    })
}

/// Degraded resources named in one message.
const DEGRADED_NAMED: usize = 3;

/// `Deployment payments/api: <its health message>; ...` for the resources whose health
/// in `status.resources[]` is Degraded: a few, then how many more.
fn degraded_resources(status: &Value) -> Option<String> {
    let degraded: Vec<String> = status
        .get("resources")
        .and_then(Value::as_array)?
        .iter()
        .filter(|r| text(r, &["health", "status"]) == Some("Degraded"))
        .map(|r| {
            let kind = text(r, &["kind"]).unwrap_or("resource");
            let name = text(r, &["name"]).unwrap_or("");
            let mut said = match text(r, &["namespace"]) {
                Some(ns) => format!("{kind} {ns}/{name}"),
                None => format!("{kind} {name}"),
            };
            if let Some(message) = text(r, &["health", "message"]) {
                said.push_str(": ");
                said.push_str(message);
            }
            said
        })
        .collect();
    if degraded.is_empty() {
        return None;
    }
    let mut message = degraded[..degraded.len().min(DEGRADED_NAMED)].join("; ");
    if degraded.len() > DEGRADED_NAMED {
        message.push_str(&format!("; and {} more", degraded.len() - DEGRADED_NAMED));
    }
    Some(message)
}

/// Where to look when the Application does not hold its resources' health (Argo CD 3's
/// default, `status.resourceHealthSource: appTree`).
fn health_elsewhere(
    status: &Value,
    obj: &DynamicObject,
    default_namespace: &str,
) -> Option<String> {
    (text(status, &["resourceHealthSource"]) == Some("appTree")).then(|| {
        format!(
            "which resources are Degraded is not in the Application (resource health is kept \
             in Argo CD's resource tree): argocd app get {}",
            object_key(obj, default_namespace)
        )
    })
}

/// Reads one ApplicationSet.
pub fn application_set(
    obj: &DynamicObject,
    default_namespace: &str,
) -> Result<ApplicationSet, Malformed> {
    let name = name(obj)?;
    let spec = spec(obj)?;
    let strategy = match spec.get("strategy") {
        None | Some(Value::Null) => None,
        Some(s @ Value::Object(_)) => Some(s),
        Some(other) => return Err(format!("spec.strategy is {}", json_type(other))),
    };
    let steps = match strategy.and_then(|s| s.get("rollingSync")) {
        None | Some(Value::Null) => Vec::new(),
        Some(rolling) => steps(rolling)?,
    };
    let application_status = match obj
        .data
        .get("status")
        .and_then(|s| s.get("applicationStatus"))
    {
        Some(Value::Array(entries)) => entries.iter().filter_map(app_step_status).collect(),
        _ => Vec::new(),
    };
    Ok(ApplicationSet {
        name,
        namespace: obj
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| default_namespace.to_string()),
        resource_version: obj.metadata.resource_version.clone().unwrap_or_default(),
        strategy: strategy
            .and_then(|s| text(s, &["type"]))
            .map(str::to_string),
        steps,
        application_status,
        annotations: obj
            .metadata
            .annotations
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect::<BTreeMap<_, _>>(),
    })
}

/// `spec.strategy.rollingSync.steps[]`, every step or an error.
fn steps(rolling: &Value) -> Result<Vec<SyncStep>, Malformed> {
    let steps = match rolling.get("steps") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(steps)) => steps,
        Some(other) => {
            return Err(format!(
                "spec.strategy.rollingSync.steps is {}",
                json_type(other)
            ));
        }
    };
    steps
        .iter()
        .enumerate()
        .map(|(i, step)| sync_step(step).map_err(|e| format!("step {}: {e}", i + 1)))
        .collect()
}

fn sync_step(step: &Value) -> Result<SyncStep, Malformed> {
    if !step.is_object() {
        return Err(format!("is {}, not an object", json_type(step)));
    }
    let match_expressions = match step.get("matchExpressions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(exprs)) => exprs
            .iter()
            .map(match_expression)
            .collect::<Result<_, _>>()?,
        Some(other) => return Err(format!("matchExpressions is {}", json_type(other))),
    };
    let max_update = match step.get("maxUpdate") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => return Err(format!("maxUpdate is {other}")),
    };
    Ok(SyncStep {
        match_expressions,
        max_update,
    })
}

fn match_expression(expr: &Value) -> Result<(String, String, Vec<String>), Malformed> {
    let key = text(expr, &["key"]).ok_or("a matchExpression has no key")?;
    let operator = text(expr, &["operator"]).ok_or("a matchExpression has no operator")?;
    let values = match expr.get("values") {
        // `Exists` and `DoesNotExist` take no values.
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("matchExpression {key}: values are not all strings"))?,
        Some(other) => {
            return Err(format!(
                "matchExpression {key}: values is {}",
                json_type(other)
            ));
        }
    };
    Ok((key.to_string(), operator.to_string(), values))
}

/// One `status.applicationStatus[]` entry; an entry without an application name says
/// nothing usable and is dropped (status is informative, unlike steps).
fn app_step_status(entry: &Value) -> Option<AppStepStatus> {
    let application = text(entry, &["application"])?;
    let step = match entry.get("step") {
        Some(Value::String(s)) => Some(s.clone()),
        // Older controllers wrote the step as a number.
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    Some(AppStepStatus {
        application: application.to_string(),
        status: text(entry, &["status"]).unwrap_or("").to_string(),
        step,
        message: text(entry, &["message"]).unwrap_or("").to_string(),
        last_transition_time: text(entry, &["lastTransitionTime"]).and_then(parse_time),
    })
}

fn parse_time(s: &str) -> Option<Timestamp> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// An Application with `status`, as the hub lists it.
    fn app(status: Value) -> DynamicObject {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "payments-prod-1", "namespace": "argocd"},
            "spec": {"project": "payments", "destination": {"name": "prod-1", "namespace": "payments"}},
            "status": status,
        }))
        .unwrap()
    }

    /// The last sync went fine, long before the app went Degraded.
    fn synced() -> Value {
        json!({"phase": "Succeeded", "message": "successfully synced (all tasks run)"})
    }

    fn resource(kind: &str, namespace: &str, name: &str, health: Value) -> Value {
        json!({"group": "apps", "version": "v1", "kind": kind, "namespace": namespace, "name": name, "status": "Synced", "health": health})
    }

    fn message(status: Value) -> Option<String> {
        application(&app(status), "argocd").unwrap().app.message
    }

    #[test]
    fn a_degraded_app_without_a_health_message_names_its_degraded_resources_not_its_last_sync() {
        // Argo CD 3 leaves `status.health.message` empty.
        let said = message(json!({
            "health": {"status": "Degraded"},
            "operationState": synced(),
            "resources": [
                resource("Service", "payments", "payments-api", json!({"status": "Healthy"})),
                resource("Deployment", "payments", "payments-api", json!({"status": "Degraded", "message": "Deployment \"payments-api\" exceeded its progress deadline"})),
                {"version": "v1", "kind": "PersistentVolumeClaim", "namespace": "payments", "name": "ledger", "health": {"status": "Degraded"}},
            ],
        }));
        assert_eq!(
            said.as_deref(),
            Some(
                "Deployment payments/payments-api: Deployment \"payments-api\" exceeded its progress deadline; PersistentVolumeClaim payments/ledger"
            )
        );
    }

    #[test]
    fn many_degraded_resources_name_a_few_then_count_the_rest() {
        let resources: Vec<Value> = (1..=5)
            .map(|i| {
                resource(
                    "StatefulSet",
                    "ledger",
                    &format!("shard-{i}"),
                    json!({"status": "Degraded", "message": "0/3 replicas ready"}),
                )
            })
            .collect();
        let said = message(json!({
            "health": {"status": "Degraded"},
            "operationState": synced(),
            "resources": resources,
        }))
        .unwrap();
        assert!(said.starts_with("StatefulSet ledger/shard-1: 0/3 replicas ready; StatefulSet ledger/shard-2: 0/3 replicas ready; StatefulSet ledger/shard-3: 0/3 replicas ready"), "{said}");
        assert!(said.ends_with("; and 2 more"), "{said}");
    }

    #[test]
    fn a_degraded_app_whose_resource_health_is_kept_outside_says_where_not_successfully_synced() {
        // Argo CD 3's default: resource health lives in the resource tree, not the CR.
        let said = message(json!({
            "health": {"status": "Degraded"},
            "operationState": synced(),
            "resourceHealthSource": "appTree",
            "resources": [{"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "payments", "name": "payments-api", "status": "Synced"}],
        }))
        .unwrap();
        assert!(!said.contains("successfully synced"), "{said}");
        assert_eq!(
            said,
            "which resources are Degraded is not in the Application (resource health is kept in Argo CD's resource tree): argocd app get argocd/payments-prod-1"
        );
        // With nothing at all to go on, nothing is said rather than something misleading.
        let said = message(json!({"health": {"status": "Degraded"}, "operationState": synced()}));
        assert_eq!(said, None);
    }

    #[test]
    fn a_health_message_or_a_failed_sync_still_speaks_for_itself() {
        // Argo CD 2 fills the app's health message.
        let said = message(json!({
            "health": {"status": "Degraded", "message": "Deployment \"payments-api\" has 0/6 ready replicas"},
            "operationState": synced(),
        }));
        assert_eq!(
            said.as_deref(),
            Some("Deployment \"payments-api\" has 0/6 ready replicas")
        );
        let said = message(json!({
            "health": {"status": "Degraded"},
            "operationState": {"phase": "Failed", "message": "one or more objects failed to apply"},
        }));
        assert_eq!(said.as_deref(), Some("one or more objects failed to apply"));
        // A healthy app's last sync is its news.
        let said = message(json!({"health": {"status": "Healthy"}, "operationState": synced()}));
        assert_eq!(said.as_deref(), Some("successfully synced (all tasks run)"));
    }
}
