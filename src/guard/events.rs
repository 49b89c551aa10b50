//! Every guard action as a Kubernetes Event on its ApplicationSet, so that
//! `kubectl describe applicationset` and `kubectl get events` show why a wave is held or
//! released, and by which guard replica.

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff;
use kube::api::Api;

use super::lease::describe;
use crate::model::{HoldKind, Timestamp};
use crate::rollout::guard::GuardAction;

/// The Events' `source.component` and `reportingComponent`.
pub const COMPONENT: &str = "fleetdeck-guard";
/// `reason` of an Event for a hold placed.
pub const REASON_HOLD: &str = "FleetdeckHold";
/// `reason` of an Event for a hold lifted.
pub const REASON_RELEASE: &str = "FleetdeckRelease";

/// The ApplicationSet an Event is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetRef {
    pub namespace: String,
    pub name: String,
    /// `metadata.uid`, so the Event follows this set and not a later one of the same name.
    pub uid: Option<String>,
}

/// The core/v1 Event for `action` on `set`, reported by guard replica `identity`.
pub fn event(set: &SetRef, action: &GuardAction, identity: &str, now: Timestamp) -> Event {
    let breaker = matches!(action.hold.kind, HoldKind::Breaker { .. });
    let time =
        Time(jiff::Timestamp::from_second(now.timestamp()).unwrap_or(jiff::Timestamp::UNIX_EPOCH));
    Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", set.name)),
            namespace: Some(set.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("argoproj.io/v1alpha1".into()),
            kind: Some("ApplicationSet".into()),
            name: Some(set.name.clone()),
            namespace: Some(set.namespace.clone()),
            uid: set.uid.clone(),
            ..ObjectReference::default()
        },
        reason: Some(
            if action.placed {
                REASON_HOLD
            } else {
                REASON_RELEASE
            }
            .into(),
        ),
        action: Some(if action.placed { "Hold" } else { "Release" }.into()),
        message: Some(action.describe()),
        // The circuit breaker means an incident; every other change is routine.
        type_: Some(
            if breaker && action.placed {
                "Warning"
            } else {
                "Normal"
            }
            .into(),
        ),
        source: Some(EventSource {
            component: Some(COMPONENT.into()),
            host: None,
        }),
        reporting_component: Some(COMPONENT.into()),
        reporting_instance: Some(identity.to_string()),
        first_timestamp: Some(time.clone()),
        last_timestamp: Some(time),
        count: Some(1),
        ..Event::default()
    }
}

/// Posts Events on ApplicationSets of the hub.
pub struct Recorder {
    client: kube::Client,
    identity: String,
}

impl Recorder {
    pub fn new(client: kube::Client, identity: &str) -> Self {
        Self {
            client,
            identity: identity.to_string(),
        }
    }

    /// Posts the Event for `action` on `set`, in the set's namespace.
    pub async fn post(
        &self,
        set: &SetRef,
        action: &GuardAction,
        now: Timestamp,
    ) -> Result<(), String> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &set.namespace);
        api.create(
            &super::lease::write_params(),
            &event(set, action, &self.identity, now),
        )
        .await
        .map(|_| ())
        .map_err(|e| {
            format!(
                "posting an Event on ApplicationSet {}/{}: {}",
                set.namespace,
                set.name,
                describe(&e)
            )
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::guard::testing::{at, client, lines, status_json};
    use crate::model::{ClusterId, Hold};

    fn set() -> SetRef {
        SetRef {
            namespace: "argocd".into(),
            name: "platform-addons".into(),
            uid: Some("8f0c1f5e-3d59-4c1b-9d0b-1f2e3d4c5b6a".into()),
        }
    }

    fn action(kind: HoldKind, placed: bool) -> GuardAction {
        GuardAction {
            wave: 2,
            wave_name: "prod".into(),
            placed,
            hold: Hold {
                kind,
                by: "fleetdeck-guard".into(),
                at: at(0),
            },
        }
    }

    /// What the API server answers to the POST: the Event with its generated name.
    fn created(body: &serde_json::Value) -> serde_json::Value {
        let mut body = body.clone();
        body["metadata"]["name"] = json!("platform-addons.18a9c3e2f1b4d5a6");
        body["metadata"]["uid"] = json!("c1d2e3f4-0000-4000-8000-000000000001");
        body["metadata"]["resourceVersion"] = json!("51234");
        body
    }

    #[tokio::test]
    async fn a_soak_hold_is_a_normal_event_on_the_set() {
        let hold = action(
            HoldKind::Soak {
                after: "staging".into(),
            },
            true,
        );
        let expected =
            serde_json::to_value(event(&set(), &hold, "guard-7f9c-abcde", at(0))).unwrap();
        let (client, log) = client(vec![(201, created(&expected))]);
        Recorder::new(client, "guard-7f9c-abcde")
            .post(&set(), &hold, at(0))
            .await
            .unwrap();
        assert_eq!(
            lines(&log),
            ["POST /api/v1/namespaces/argocd/events?&fieldManager=fleetdeck"]
        );
        let body = log.lock().unwrap()[0].body.clone();
        assert_eq!(
            body,
            json!({
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"generateName": "platform-addons.", "namespace": "argocd"},
                "involvedObject": {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "ApplicationSet",
                    "name": "platform-addons",
                    "namespace": "argocd",
                    "uid": "8f0c1f5e-3d59-4c1b-9d0b-1f2e3d4c5b6a",
                },
                "reason": "FleetdeckHold",
                "action": "Hold",
                "message": "held wave prod: until staging has soaked",
                "type": "Normal",
                "source": {"component": "fleetdeck-guard"},
                "reportingComponent": "fleetdeck-guard",
                "reportingInstance": "guard-7f9c-abcde",
                "firstTimestamp": "2026-11-21T02:10:00Z",
                "lastTimestamp": "2026-11-21T02:10:00Z",
                "count": 1,
            })
        );
    }

    #[test]
    fn the_circuit_breaker_is_a_warning_and_a_release_is_normal() {
        let breaker = HoldKind::Breaker {
            alarm: "eks-apiserver-5xx-high".into(),
            cluster: ClusterId::new("111122223333", "us-east-1", "prod-1"),
        };
        let placed = event(&set(), &action(breaker.clone(), true), "g", at(0));
        assert_eq!(placed.type_.as_deref(), Some("Warning"));
        assert_eq!(placed.reason.as_deref(), Some("FleetdeckHold"));
        assert_eq!(
            placed.message.as_deref(),
            Some("held wave prod: circuit breaker: alarm eks-apiserver-5xx-high fired on prod-1")
        );
        let soak = HoldKind::Soak {
            after: "staging".into(),
        };
        let released = event(&set(), &action(soak, false), "g", at(0));
        assert_eq!(released.type_.as_deref(), Some("Normal"));
        assert_eq!(released.reason.as_deref(), Some("FleetdeckRelease"));
        assert_eq!(
            released.message.as_deref(),
            Some("released wave prod: staging has soaked")
        );
    }

    #[tokio::test]
    async fn a_refused_event_names_the_set_and_the_servers_words() {
        let forbidden = "events is forbidden: User \"system:serviceaccount:argocd:fleetdeck-guard\" cannot create resource \"events\" in API group \"\" in the namespace \"argocd\"";
        let (client, _) = client(vec![(403, status_json(403, "Forbidden", forbidden))]);
        let hold = action(
            HoldKind::Soak {
                after: "staging".into(),
            },
            true,
        );
        let e = Recorder::new(client, "g")
            .post(&set(), &hold, at(0))
            .await
            .unwrap_err();
        assert!(
            e.starts_with(
                "posting an Event on ApplicationSet argocd/platform-addons: events is forbidden"
            ),
            "{e}"
        );
        assert!(e.ends_with("(403)"), "{e}");
    }
}
