//! What the user may do on a spoke, asked once per connection with a
//! `SelfSubjectAccessReview` for each write fleetdeck offers there, so the UI can say
//! "you may not drain here" before anyone tries.

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, PostParams};

use super::connect::classify;
use crate::model::PermissionCheck;

/// A write fleetdeck offers on a spoke, as Kubernetes authorizes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    /// fleetdeck's name for it.
    pub action: &'static str,
    /// The Kubernetes verb: `patch`, `create`...
    pub verb: &'static str,
    /// API group; empty for the core group.
    pub group: &'static str,
    /// The resource, plural: `deployments`, `pods`, `nodes`.
    pub resource: &'static str,
    /// A subresource such as `eviction`.
    pub subresource: Option<&'static str>,
    /// `None`: in every namespace (or cluster-scoped).
    pub namespace: Option<&'static str>,
}

impl Write {
    /// `patch deployments.apps`, `create pods/eviction`: verb and resource as kubectl
    /// would name them.
    pub fn checked(&self) -> String {
        let mut resource = self.resource.to_string();
        if !self.group.is_empty() {
            resource = format!("{resource}.{}", self.group);
        }
        if let Some(sub) = self.subresource {
            resource = format!("{resource}/{sub}");
        }
        format!("{} {resource}", self.verb)
    }
}

/// The writes fleetdeck offers on a spoke. (Uncordon needs what cordon needs.)
pub const SPOKE_WRITES: [Write; 5] = [
    // Rollout-restart of the add-ons EKS runs there (CoreDNS, kube-proxy...).
    Write {
        action: "rollout-restart",
        verb: "patch",
        group: "apps",
        resource: "deployments",
        subresource: None,
        namespace: Some("kube-system"),
    },
    // Draining a node evicts its pods, in any namespace.
    Write {
        action: "drain",
        verb: "create",
        group: "",
        resource: "pods",
        subresource: Some("eviction"),
        namespace: None,
    },
    Write {
        action: "cordon",
        verb: "patch",
        group: "",
        resource: "nodes",
        subresource: None,
        namespace: None,
    },
    // Runbook steps: scaling a deployment, deleting a stuck pod, in any namespace.
    Write {
        action: "scale",
        verb: "patch",
        group: "apps",
        resource: "deployments",
        subresource: Some("scale"),
        namespace: None,
    },
    Write {
        action: "delete-pod",
        verb: "delete",
        group: "",
        resource: "pods",
        subresource: None,
        namespace: None,
    },
];

/// Asks the API server about every write in `writes`, concurrently. A review that fails
/// is a check that says so (not allowed, and why), never an error: the cluster stays
/// usable for reading. `cluster` and `url` name the cluster in those reasons.
pub async fn check(
    client: &kube::Client,
    writes: &[Write],
    cluster: &str,
    url: &str,
) -> Vec<PermissionCheck> {
    let api: Api<SelfSubjectAccessReview> = Api::all(client.clone());
    let reviews = writes.iter().map(|write| {
        let api = api.clone();
        async move {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(write.group.to_string()),
                        resource: Some(write.resource.to_string()),
                        subresource: write.subresource.map(str::to_string),
                        verb: Some(write.verb.to_string()),
                        namespace: write.namespace.map(str::to_string),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let (allowed, reason) = match api.create(&PostParams::default(), &review).await {
                Ok(answer) => {
                    let status = answer.status.unwrap_or_default();
                    let reason = describe(
                        status.allowed,
                        status.reason.as_deref(),
                        status.evaluation_error.as_deref(),
                    );
                    (status.allowed, reason)
                }
                Err(e) => (
                    false,
                    format!("could not check: {}", classify(cluster, url, &e)),
                ),
            };
            PermissionCheck {
                action: write.action.to_string(),
                checked: write.checked(),
                namespace: write.namespace.map(str::to_string),
                allowed,
                reason,
            }
        }
    });
    futures::future::join_all(reviews).await
}

/// The server's reason, with its evaluation error if any. RBAC gives no reason for a
/// denial (nothing matched), so that is said in words.
fn describe(allowed: bool, reason: Option<&str>, evaluation_error: Option<&str>) -> String {
    let reason = reason.map(str::trim).filter(|r| !r.is_empty());
    let mut text = match (reason, allowed) {
        (Some(r), _) => r.to_string(),
        (None, true) => "allowed".to_string(),
        (None, false) => "no RBAC rule or access entry allows it".to_string(),
    };
    if let Some(e) = evaluation_error.map(str::trim).filter(|e| !e.is_empty()) {
        text = format!("{text} (evaluation error: {e})");
    }
    text
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use http::{Request, Response};
    use http_body_util::BodyExt as _;
    use kube::client::Body;
    use tower_test::mock;

    use super::super::testing::{json, status};
    use super::*;

    /// The API server's answer to a review: the request echoed back with a status.
    fn answer(request: &serde_json::Value, allowed: bool, reason: Option<&str>) -> String {
        let mut answer = request.clone();
        answer["metadata"] = serde_json::json!({"creationTimestamp": null});
        answer["status"] = serde_json::json!({ "allowed": allowed });
        if let Some(reason) = reason {
            answer["status"]["reason"] = reason.into();
        }
        answer.to_string()
    }

    #[tokio::test]
    async fn each_write_is_reviewed_and_the_servers_answer_kept() {
        let (service, mut server) = mock::pair::<Request<Body>, Response<Body>>();
        let client = kube::Client::new(service, "default");
        let api = tokio::spawn(async move {
            for _ in 0..SPOKE_WRITES.len() {
                let (request, reply) = server.next_request().await.unwrap();
                assert_eq!(request.method(), "POST");
                assert_eq!(
                    request.uri().path(),
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
                );
                let body = request.into_body().collect().await.unwrap().to_bytes();
                let review: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(review["kind"], "SelfSubjectAccessReview");
                let attrs = &review["spec"]["resourceAttributes"];
                let response = match attrs["resource"].as_str().unwrap() {
                    "deployments" | "pods"
                        if attrs.get("subresource").is_some_and(|s| s == "scale")
                            || attrs["verb"] == "delete" =>
                    {
                        json(201, &answer(&review, true, None))
                    }
                    "deployments" => {
                        assert_eq!(attrs["namespace"], "kube-system");
                        assert_eq!(attrs["group"], "apps");
                        assert_eq!(attrs["verb"], "patch");
                        json(
                            201,
                            &answer(
                                &review,
                                true,
                                Some(
                                    "RBAC: allowed by RoleBinding \"oncall-restart/kube-system\" of Role \"restarter\" to Group \"oncall\"",
                                ),
                            ),
                        )
                    }
                    "pods" => {
                        assert_eq!(attrs["subresource"], "eviction");
                        assert_eq!(attrs["verb"], "create");
                        assert!(attrs.get("namespace").is_none());
                        json(201, &answer(&review, false, None))
                    }
                    "nodes" => json(
                        403,
                        &status(
                            403,
                            "Forbidden",
                            "selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"jo\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope",
                        ),
                    ),
                    other => panic!("unexpected review of {other}"),
                };
                reply.send_response(response);
            }
        });
        let checks = check(
            &client,
            &SPOKE_WRITES,
            "prod-use1-api-01",
            "https://x.eks.amazonaws.com",
        )
        .await;
        api.await.unwrap();
        assert_eq!(
            checks,
            [
                PermissionCheck {
                    action: "rollout-restart".into(),
                    checked: "patch deployments.apps".into(),
                    namespace: Some("kube-system".into()),
                    allowed: true,
                    reason: "RBAC: allowed by RoleBinding \"oncall-restart/kube-system\" of Role \"restarter\" to Group \"oncall\"".into(),
                },
                PermissionCheck {
                    action: "drain".into(),
                    checked: "create pods/eviction".into(),
                    namespace: None,
                    allowed: false,
                    reason: "no RBAC rule or access entry allows it".into(),
                },
                PermissionCheck {
                    action: "cordon".into(),
                    checked: "patch nodes".into(),
                    namespace: None,
                    allowed: false,
                    reason: "could not check: prod-use1-api-01: forbidden (403): selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"jo\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope".into(),
                },
                PermissionCheck {
                    action: "scale".into(),
                    checked: "patch deployments.apps/scale".into(),
                    namespace: None,
                    allowed: true,
                    reason: "allowed".into(),
                },
                PermissionCheck {
                    action: "delete-pod".into(),
                    checked: "delete pods".into(),
                    namespace: None,
                    allowed: true,
                    reason: "allowed".into(),
                },
            ]
        );
    }

    #[test]
    fn reasons_are_the_servers_or_said_in_words() {
        assert_eq!(describe(true, Some(""), None), "allowed");
        assert_eq!(
            describe(false, None, Some("role \"x\" not found")),
            "no RBAC rule or access entry allows it (evaluation error: role \"x\" not found)"
        );
        assert_eq!(
            describe(false, Some("denied by webhook"), None),
            "denied by webhook"
        );
    }
}
