//! The stand-in API server (`tests/kube_server`) driven by a real `kube::Client`: it must
//! behave as the real API server does where fleetdeck's clients depend on it, or the
//! tests built on it prove nothing. Then fleetdeck's Argo CD source against it.

#![allow(clippy::unwrap_used)]

mod kube_server;

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Event, ObjectReference, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use serde_json::{Value, json};

use kube_server::{Failure, KubeServer};

const CONFLICT: &str = "Operation cannot be fulfilled on applicationsets.argoproj.io \"addons\": the object has been modified; please apply your changes to the latest version and try again";

fn application_sets() -> ApiResource {
    ApiResource {
        group: "argoproj.io".into(),
        version: "v1alpha1".into(),
        api_version: "argoproj.io/v1alpha1".into(),
        kind: "ApplicationSet".into(),
        plural: "applicationsets".into(),
    }
}

fn pod(name: &str, labels: Value, phase: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "payments", "labels": labels},
        "spec": {"nodeName": "ip-10-0-1-7.ec2.internal", "containers": [{"name": "api", "image": "payments:1.42.0"}]},
        "status": {"phase": phase},
    })
}

/// The API server's error from a kube call.
fn api_error<T: std::fmt::Debug>(result: kube::Result<T>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn lists_select_by_label_and_field_and_page_at_one_resource_version() {
    let server = KubeServer::start();
    server.put(pod("api-1", json!({"app": "api"}), "Running"));
    server.put(pod("api-2", json!({"app": "api"}), "Succeeded"));
    server.put(pod("web-1", json!({"app": "web"}), "Running"));
    let pods: Api<Pod> = Api::namespaced(server.client(), "payments");

    let names = |list: &kube::core::ObjectList<Pod>| -> Vec<String> {
        list.items
            .iter()
            .map(|p| p.metadata.name.clone().unwrap())
            .collect()
    };
    let api = pods
        .list(&ListParams::default().labels("app=api"))
        .await
        .unwrap();
    assert_eq!(names(&api), ["api-1", "api-2"]);
    let running = pods
        .list(&ListParams::default().fields("status.phase!=Succeeded,status.phase!=Failed"))
        .await
        .unwrap();
    assert_eq!(names(&running), ["api-1", "web-1"]);
    assert_eq!(
        running.metadata.resource_version.as_deref(),
        Some(server.resource_version().to_string().as_str())
    );

    // A field the API server does not index is refused as it refuses it.
    let e = api_error(
        pods.list(&ListParams::default().fields("spec.containers=api"))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (400, "BadRequest"));
    assert_eq!(e.message, "field label not supported: spec.containers");

    // Pages hold the first page's resourceVersion even when something changes between.
    let first = pods.list(&ListParams::default().limit(2)).await.unwrap();
    assert_eq!(names(&first), ["api-1", "api-2"]);
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    server.put(pod("api-3", json!({"app": "api"}), "Running"));
    let token = first.metadata.continue_.clone().unwrap();
    let second = pods
        .list(&ListParams::default().limit(2).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(
        names(&second),
        ["web-1"],
        "api-3 came after the first page's version"
    );
    assert_eq!(
        second.metadata.resource_version,
        first.metadata.resource_version
    );
    assert!(second.metadata.continue_.is_none());
}

#[tokio::test]
async fn a_watch_streams_changes_and_bookmarks_then_ends_at_its_timeout() {
    let server = KubeServer::builder()
        .bookmark_interval(Duration::from_millis(300))
        .start();
    server.put(pod("api-1", json!({"app": "api"}), "Running"));
    let pods: Api<Pod> = Api::namespaced(server.client(), "payments");
    let listed = pods.list(&ListParams::default()).await.unwrap();
    let from = listed.metadata.resource_version.clone().unwrap();

    let started = std::time::Instant::now();
    let params = WatchParams::default().labels("app=api").timeout(2);
    let mut stream = pods.watch(&params, &from).await.unwrap().boxed();
    server.put(pod("api-2", json!({"app": "api"}), "Pending"));
    server.put(pod("web-1", json!({"app": "web"}), "Running"));
    server.patch(
        "pods",
        Some("payments"),
        "api-2",
        json!({"status": {"phase": "Running"}}),
    );
    // Leaving the selection is a deletion for this watch.
    server.patch(
        "pods",
        Some("payments"),
        "api-1",
        json!({"metadata": {"labels": {"app": "web"}}}),
    );
    let mut seen = Vec::new();
    let mut last_bookmark = None;
    while let Some(event) = stream.try_next().await.unwrap() {
        match event {
            WatchEvent::Added(p) => seen.push(format!("ADDED {}", p.metadata.name.unwrap())),
            WatchEvent::Modified(p) => seen.push(format!("MODIFIED {}", p.metadata.name.unwrap())),
            WatchEvent::Deleted(p) => seen.push(format!("DELETED {}", p.metadata.name.unwrap())),
            WatchEvent::Bookmark(b) => last_bookmark = Some(b.metadata.resource_version),
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        }
    }
    let took = started.elapsed();
    assert_eq!(seen, ["ADDED api-2", "MODIFIED api-2", "DELETED api-1"]);
    assert_eq!(
        last_bookmark,
        Some(server.resource_version().to_string()),
        "the last bookmark carries the current resourceVersion"
    );
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(5),
        "the stream ended at its 2 s timeout, after {took:?}"
    );
    assert_eq!(server.open_watches(), 0);
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_is_410_gone() {
    let server = KubeServer::start();
    server.put(pod("api-1", json!({"app": "api"}), "Running"));
    let pods: Api<Pod> = Api::namespaced(server.client(), "payments");
    let from = server.resource_version().to_string();
    server.put(pod("api-2", json!({"app": "api"}), "Running"));
    server.compact();
    let mut stream = pods
        .watch(&WatchParams::default().timeout(5), &from)
        .await
        .unwrap()
        .boxed();
    match stream.try_next().await.unwrap() {
        Some(WatchEvent::Error(e)) => {
            assert_eq!((e.code, e.reason.as_str()), (410, "Expired"));
            assert_eq!(
                e.message,
                format!(
                    "too old resource version: {from} ({})",
                    server.resource_version()
                )
            );
        }
        other => panic!("expected 410 Gone, got {other:?}"),
    }
    assert!(
        stream.try_next().await.unwrap().is_none(),
        "and the stream ends"
    );
}

#[tokio::test]
async fn a_merge_patch_with_a_stale_resource_version_is_refused_with_the_servers_words() {
    let server = KubeServer::start();
    let set = server.put(kube_server::argocd::rolling_sync_set(
        "addons",
        vec![kube_server::argocd::step("env", &["dev"], None)],
        vec![],
    ));
    let read_rv = set["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let generation = set["metadata"]["generation"].as_i64().unwrap();
    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client(), "argocd", &application_sets());

    // Someone else writes in between.
    server.patch(
        "applicationsets.argoproj.io",
        Some("argocd"),
        "addons",
        json!({"metadata": {"annotations": {"team": "platform"}}}),
    );
    let patch = json!({
        "metadata": {"resourceVersion": read_rv},
        "spec": {"strategy": {"rollingSync": {"steps": [{"maxUpdate": 0}]}}},
    });
    let params = PatchParams {
        field_manager: Some("fleetdeck".into()),
        ..PatchParams::default()
    };
    let e = api_error(api.patch("addons", &params, &Patch::Merge(&patch)).await);
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(e.message, CONFLICT);
    let details = e.details.unwrap();
    assert_eq!(
        (
            details.name.as_str(),
            details.group.as_str(),
            details.kind.as_str()
        ),
        ("addons", "argoproj.io", "applicationsets")
    );

    // With the current version it goes through, bumps generation and records the manager.
    let current = server
        .get("applicationsets.argoproj.io", Some("argocd"), "addons")
        .unwrap();
    let patch = json!({
        "metadata": {"resourceVersion": current["metadata"]["resourceVersion"]},
        "spec": {"strategy": {"rollingSync": {"steps": [{"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}], "maxUpdate": 0}]}}},
    });
    let patched = api
        .patch("addons", &params, &Patch::Merge(&patch))
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(generation + 1));
    let managers: Vec<String> = patched
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert!(managers.contains(&"fleetdeck".to_string()), "{managers:?}");

    // A strategic merge patch is not served for custom resources.
    let e = api_error(
        api.patch("addons", &params, &Patch::Strategic(&json!({"spec": {}})))
            .await,
    );
    assert_eq!(e.code, 415);

    // Status is a subresource: a write to the set leaves it as the controller wrote it.
    let before = server
        .get("applicationsets.argoproj.io", Some("argocd"), "addons")
        .unwrap();
    api.patch(
        "addons",
        &params,
        &Patch::Merge(&json!({"status": {"applicationStatus": []}})),
    )
    .await
    .unwrap();
    let after = server
        .get("applicationsets.argoproj.io", Some("argocd"), "addons")
        .unwrap();
    assert_eq!(after["status"], before["status"]);
}

fn lease(holder: &str) -> Lease {
    Lease {
        metadata: kube::api::ObjectMeta {
            name: Some("fleetdeck-guard".into()),
            ..Default::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(30),
            ..LeaseSpec::default()
        }),
    }
}

#[tokio::test]
async fn a_lease_is_created_once_then_replaced_only_at_its_current_version() {
    let server = KubeServer::start();
    server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}));
    let leases: Api<Lease> = Api::namespaced(server.client(), "argocd");
    let created = leases
        .create(&PostParams::default(), &lease("guard-a"))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());

    let e = api_error(
        leases
            .create(&PostParams::default(), &lease("guard-b"))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "AlreadyExists"));
    assert_eq!(
        e.message,
        "leases.coordination.k8s.io \"fleetdeck-guard\" already exists"
    );

    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().lease_transitions = Some(1);
    let replaced = leases
        .replace("fleetdeck-guard", &PostParams::default(), &renewed)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    // The same read again is stale now.
    let e = api_error(
        leases
            .replace("fleetdeck-guard", &PostParams::default(), &renewed)
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on leases.coordination.k8s.io \"fleetdeck-guard\": the object has been modified; please apply your changes to the latest version and try again"
    );
}

#[tokio::test]
async fn an_event_posted_with_generate_name_gets_a_name_and_is_listed_by_its_object() {
    let server = KubeServer::start();
    server.put(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "argocd"}}));
    let events: Api<Event> = Api::namespaced(server.client(), "argocd");
    let event = Event {
        metadata: kube::api::ObjectMeta {
            generate_name: Some("addons.".into()),
            ..Default::default()
        },
        involved_object: ObjectReference {
            api_version: Some("argoproj.io/v1alpha1".into()),
            kind: Some("ApplicationSet".into()),
            name: Some("addons".into()),
            namespace: Some("argocd".into()),
            ..ObjectReference::default()
        },
        reason: Some("FleetdeckHold".into()),
        type_: Some("Normal".into()),
        message: Some("held wave prod".into()),
        ..Event::default()
    };
    let posted = events.create(&PostParams::default(), &event).await.unwrap();
    let name = posted.metadata.name.clone().unwrap();
    assert!(
        name.starts_with("addons.") && name.len() == "addons.".len() + 5,
        "{name}"
    );
    let listed = events
        .list(&ListParams::default().fields("involvedObject.name=addons,type=Normal"))
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].reason.as_deref(), Some("FleetdeckHold"));

    // A namespace that does not exist is the API server's 404.
    let elsewhere: Api<Event> = Api::namespaced(server.client(), "nowhere");
    let e = api_error(elsewhere.create(&PostParams::default(), &event).await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (404, "namespaces \"nowhere\" not found")
    );
}

#[tokio::test]
async fn access_reviews_answer_allowed_unless_denied_and_a_denied_request_is_403() {
    use k8s_openapi::api::authorization::v1::{
        ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
    };
    let server = KubeServer::start();
    server.put(kube_server::argocd::rolling_sync_set(
        "addons",
        vec![],
        vec![],
    ));
    let reviews: Api<SelfSubjectAccessReview> = Api::all(server.client());
    let review = |verb: &str| SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("argoproj.io".into()),
                resource: Some("applicationsets".into()),
                verb: Some(verb.into()),
                namespace: Some("argocd".into()),
                ..ResourceAttributes::default()
            }),
            ..SelfSubjectAccessReviewSpec::default()
        },
        ..SelfSubjectAccessReview::default()
    };
    let answer = reviews
        .create(&PostParams::default(), &review("patch"))
        .await
        .unwrap();
    assert!(answer.status.unwrap().allowed);

    server.deny("patch", "applicationsets.argoproj.io", Some("argocd"));
    let answer = reviews
        .create(&PostParams::default(), &review("patch"))
        .await
        .unwrap();
    assert!(!answer.status.unwrap().allowed);
    let answer = reviews
        .create(&PostParams::default(), &review("get"))
        .await
        .unwrap();
    assert!(answer.status.unwrap().allowed, "only patch is denied");

    let api: Api<DynamicObject> =
        Api::namespaced_with(server.client(), "argocd", &application_sets());
    let e = api_error(
        api.patch(
            "addons",
            &PatchParams::default(),
            &Patch::Merge(&json!({"metadata": {"labels": {"a": "b"}}})),
        )
        .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        e.message,
        "applicationsets.argoproj.io \"addons\" is forbidden: User \"oncall\" cannot patch resource \"applicationsets\" in API group \"argoproj.io\" in the namespace \"argocd\""
    );
}

#[tokio::test]
async fn scripted_failures_answer_in_place_of_the_resource_then_stop() {
    let server = KubeServer::start();
    server.put(pod("api-1", json!({"app": "api"}), "Running"));
    server.fail(
        // Not 503: kube's client retries 429, 503 and 504 by itself.
        Failure::status(500, "InternalError", "etcdserver: leader changed")
            .method("GET")
            .resource("pods")
            .times(1),
    );
    let pods: Api<Pod> = Api::namespaced(server.client(), "payments");
    let e = api_error(pods.get("api-1").await);
    assert_eq!(
        (e.code, e.message.as_str()),
        (500, "etcdserver: leader changed")
    );
    assert!(pods.get("api-1").await.is_ok(), "only once");

    // Deleting: gone at once without finalizers; the log has every request.
    pods.delete("api-1", &DeleteParams::default())
        .await
        .unwrap();
    assert!(server.get("pods", Some("payments"), "api-1").is_none());
    let lines: Vec<String> = server.requests().iter().map(|r| r.line()).collect();
    assert_eq!(
        lines,
        [
            "GET /api/v1/namespaces/payments/pods/api-1",
            "GET /api/v1/namespaces/payments/pods/api-1",
            "DELETE /api/v1/namespaces/payments/pods/api-1",
        ]
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.user_agent.as_deref() == Some("kube-server-test"))
    );
}

#[tokio::test]
async fn fleetdecks_kubeconfig_client_reaches_the_stand_in_over_plain_http() {
    use fleetdeck::sources::kube::{connect, contexts};
    let server = KubeServer::builder().token("hub-token").start();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    kube_server::Kubeconfig::new()
        .context("hub-admin", &server, Some("argocd"))
        .write(&path);
    let kubeconfig = contexts::load_kubeconfig(Some(&path)).unwrap();
    let target = fleetdeck::sources::ClusterTarget {
        id: fleetdeck::model::ClusterId::new("hub", "", "hub-admin"),
        arn: String::new(),
        endpoint: None,
        certificate_authority: None,
        production: false,
    };
    let (client, url) = connect::kubeconfig_client(&kubeconfig, "hub-admin", &target)
        .await
        .unwrap();
    assert_eq!(url, format!("{}/", server.url()));
    connect::probe(&client, &target, &url).await.unwrap();
    let seen = server.requests();
    assert_eq!(seen[0].line(), "GET /version");
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer hub-token"));
}

// ---- fleetdeck's Argo CD source against the stand-in ----

mod hub {
    use std::time::Duration;

    use fleetdeck::clock::Clock;
    use fleetdeck::model::{ClusterId, SourceEvent, Store, Timestamp};
    use fleetdeck::sources::{ClusterTarget, SourceCommand, SourceHandle};
    use serde_json::{Value, json};
    use tokio::sync::mpsc;

    use crate::kube_server::argocd::{self, Destination};
    use crate::kube_server::{KubeServer, Kubeconfig};

    pub const DEV: &str = "https://0A1B2C3D4E5F.gr7.us-east-1.eks.amazonaws.com";
    pub const STAGING: &str = "https://1B2C3D4E5F6A.yl4.us-east-1.eks.amazonaws.com";
    pub const PROD_ARN: &str = "arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-1";

    /// 02:30, twenty minutes after the fixtures' transitions.
    pub fn now() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-11-21T02:30:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc)
    }

    pub fn id(name: &str) -> ClusterId {
        ClusterId::new("prod", "us-east-1", name)
    }

    /// The fleet as EKS lists it: dev and staging mapped by endpoint, prod by ARN.
    pub fn fleet() -> Vec<ClusterTarget> {
        let target = |name: &str, endpoint: Option<&str>, production| ClusterTarget {
            id: id(name),
            arn: format!("arn:aws:eks:us-east-1:123456789012:cluster/{name}"),
            endpoint: endpoint.map(str::to_string),
            certificate_authority: None,
            production,
        };
        vec![
            target("dev-use1-1", Some(DEV), false),
            target("staging-use1-1", Some(STAGING), false),
            target(
                "prod-use1-1",
                Some("https://9F8E7D6C5B4A.sk1.us-east-1.eks.amazonaws.com"),
                true,
            ),
        ]
    }

    /// A hub with Argo CD: three cluster Secrets, the `addons` ApplicationSet rolling out
    /// over dev, staging and prod, its three Applications. Dev is done, staging is
    /// progressing, prod waits.
    pub fn seed(server: &KubeServer) {
        server.put_all([
            argocd::cluster_secret("dev-use1-1", DEV, &[("env", "dev")]),
            argocd::cluster_secret("staging-use1-1", STAGING, &[("env", "staging")]),
            argocd::cluster_secret(
                PROD_ARN,
                "https://9F8E7D6C5B4A.sk1.us-east-1.eks.amazonaws.com",
                &[("env", "prod")],
            ),
        ]);
        let set = server.put(argocd::rolling_sync_set(
            "addons",
            vec![
                argocd::step("env", &["dev"], None),
                argocd::step("env", &["staging"], Some(json!(1))),
                argocd::step("env", &["prod"], Some(json!("25%"))),
            ],
            vec![
                argocd::app_status("dev-use1-1-addons", "Healthy", 1),
                argocd::app_status("staging-use1-1-addons", "Progressing", 2),
                argocd::app_status("prod-use1-1-addons", "Waiting", 3),
            ],
        ));
        server.put_all([
            argocd::application(
                "dev-use1-1-addons",
                "addons",
                Destination::Server(DEV),
                &[("env", "dev")],
                Some(&set),
            ),
            argocd::application(
                "staging-use1-1-addons",
                "addons",
                // As written by hand: lower case, trailing slash.
                Destination::Server(&format!("{}/", STAGING.to_ascii_lowercase())),
                &[("env", "staging")],
                Some(&set),
            ),
            argocd::application(
                "prod-use1-1-addons",
                "addons",
                // `argocd cluster add` with an EKS context names the cluster by its ARN.
                Destination::Name(PROD_ARN),
                &[("env", "prod")],
                Some(&set),
            ),
        ]);
    }

    /// The Argo CD source running against a stand-in hub, its events folded into a store.
    pub struct Running {
        pub handle: SourceHandle,
        pub events: mpsc::Receiver<SourceEvent>,
        pub store: Store,
        pub seen: Vec<SourceEvent>,
        _kubeconfig: tempfile::TempDir,
    }

    /// Starts the source the way the binary does: a client from a kubeconfig context.
    pub async fn start(server: &KubeServer) -> Running {
        use fleetdeck::sources::kube::{connect, contexts};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        Kubeconfig::new()
            .context("hub-admin", server, Some("argocd"))
            .write(&path);
        let kubeconfig = contexts::load_kubeconfig(Some(&path)).unwrap();
        let hub_target = ClusterTarget {
            id: ClusterId::new("hub", "", "hub-admin"),
            arn: String::new(),
            endpoint: None,
            certificate_authority: None,
            production: false,
        };
        let (client, _) = connect::kubeconfig_client(&kubeconfig, "hub-admin", &hub_target)
            .await
            .unwrap();
        let hub = fleetdeck::config::Hub {
            context: "hub-admin".into(),
            namespace: "argocd".into(),
            plans: None,
        };
        let (tx, events) = mpsc::channel(256);
        let handle = fleetdeck::sources::argocd::spawn(
            client,
            hub,
            Default::default(),
            Clock::Frozen(now()),
            tx,
        );
        handle
            .commands
            .send(SourceCommand::Targets {
                seq: 1,
                fleet: fleet(),
                interest: Vec::new(),
            })
            .await
            .unwrap();
        Running {
            handle,
            events,
            store: Store::new(),
            seen: Vec::new(),
            _kubeconfig: dir,
        }
    }

    impl Running {
        /// Folds events in until `done` holds of the store, for up to ten seconds.
        pub async fn until(&mut self, what: &str, done: impl Fn(&Store) -> bool) {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            while !done(&self.store) {
                let event = tokio::time::timeout_at(deadline, self.events.recv())
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                    .expect("the source runs");
                self.seen.push(event.clone());
                self.store.apply(event, now());
            }
        }

        /// Sends a command whose reply is a `WriteResult`, and waits for it.
        pub async fn write(
            &self,
            command: impl FnOnce(tokio::sync::oneshot::Sender<Result<String, String>>) -> SourceCommand,
        ) -> Result<String, String> {
            let (reply, answer) = tokio::sync::oneshot::channel();
            self.handle.commands.send(command(reply)).await.unwrap();
            tokio::time::timeout(Duration::from_secs(10), answer)
                .await
                .expect("an answer in time")
                .expect("an answer")
        }
    }

    /// `spec.strategy.rollingSync.steps[i].maxUpdate` of the stored set.
    pub fn max_update(server: &KubeServer, step: usize) -> Value {
        server
            .get("applicationsets.argoproj.io", Some("argocd"), "addons")
            .unwrap()
            .pointer(&format!(
                "/spec/strategy/rollingSync/steps/{step}/maxUpdate"
            ))
            .cloned()
            .unwrap_or(Value::Null)
    }
}

#[tokio::test]
async fn the_argocd_source_shows_the_rollout_and_its_waves_from_the_stand_in_hub() {
    use fleetdeck::model::{CellPhase, WaveState};
    use fleetdeck::sources::SourceCommand;

    let server = KubeServer::start();
    hub::seed(&server);
    let mut hub = hub::start(&server).await;
    hub.until("the rollout with its three apps placed", |store| {
        store.is_ready(&["argocd:hub-admin".to_string()])
            && store.rollouts().iter().any(|r| {
                r.name == "addons" && r.waves.iter().map(|w| w.cells.len()).sum::<usize>() == 3
            })
    })
    .await;
    let rollout = hub
        .store
        .rollouts()
        .iter()
        .find(|r| r.name == "addons")
        .unwrap()
        .clone();
    assert_eq!(rollout.source, "argocd:hub-admin");
    let waves: Vec<(usize, Vec<(String, CellPhase)>)> = rollout
        .waves
        .iter()
        .map(|w| {
            (
                w.max_parallel,
                w.cells
                    .iter()
                    .map(|c| (c.cluster.name.clone(), c.phase))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        waves,
        [
            (1, vec![("dev-use1-1".to_string(), CellPhase::Soaking)]),
            (1, vec![("staging-use1-1".to_string(), CellPhase::Updating)]),
            (1, vec![("prod-use1-1".to_string(), CellPhase::Pending)]),
        ],
        "each app on the EKS cluster its destination names: by endpoint (any spelling) or by ARN"
    );
    assert_eq!(rollout.waves[1].state, WaveState::Running);

    // Pausing prod holds its step with maxUpdate 0 on the hub and keeps the original.
    let paused = hub
        .write(|reply| SourceCommand::PauseWave {
            rollout: "addons".into(),
            wave: 2,
            by: "alice".into(),
            reason: "INC-4411".into(),
            reply,
        })
        .await
        .unwrap();
    assert!(paused.starts_with("paused "), "{paused}");
    assert_eq!(hub::max_update(&server, 2), json!(0));
    hub.until("the held wave seen through the watch", |store| {
        store
            .rollouts()
            .iter()
            .any(|r| r.name == "addons" && matches!(r.waves[2].state, WaveState::Paused { .. }))
    })
    .await;

    // A change made on the hub (the controller moving prod on) arrives by the watch.
    server.patch(
        "applicationsets.argoproj.io",
        Some("argocd"),
        "addons",
        json!({"status": {"applicationStatus": [
            kube_server::argocd::app_status("dev-use1-1-addons", "Healthy", 1),
            kube_server::argocd::app_status("staging-use1-1-addons", "Healthy", 2),
            kube_server::argocd::app_status("prod-use1-1-addons", "Waiting", 3),
        ]}}),
    );
    hub.until("staging healthy", |store| {
        store.rollouts().iter().any(|r| {
            r.name == "addons"
                && r.waves[1].cells.first().map(|c| c.phase) == Some(CellPhase::Soaking)
        })
    })
    .await;

    // Resuming restores the step exactly.
    hub.write(|reply| SourceCommand::ResumeWave {
        rollout: "addons".into(),
        wave: 2,
        by: "alice".into(),
        reply,
    })
    .await
    .unwrap();
    assert_eq!(hub::max_update(&server, 2), json!("25%"));
    let patches: Vec<kube_server::Request> = server
        .writes()
        .into_iter()
        .filter(|r| r.method == "PATCH")
        .collect();
    assert_eq!(
        patches.len(),
        2,
        "one merge patch each for pause and resume"
    );
    for patch in &patches {
        assert_eq!(
            patch.path,
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets/addons"
        );
        assert_eq!(patch.content_type, "application/merge-patch+json");
        assert!(
            patch.body.pointer("/metadata/resourceVersion").is_some(),
            "a precondition"
        );
        assert_eq!(
            patch.param("fieldManager"),
            Some("fleetdeck"),
            "the write says who made it"
        );
    }
    // The API server records fleetdeck as the manager of the holds.
    let set = server
        .get("applicationsets.argoproj.io", Some("argocd"), "addons")
        .unwrap();
    let managers: Vec<&str> = set["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"fleetdeck"), "{managers:?}");
    // Every call the hub client made names fleetdeck and its version.
    let agent = format!("fleetdeck/{}", env!("CARGO_PKG_VERSION"));
    for request in server.requests() {
        assert_eq!(
            request.user_agent.as_deref(),
            Some(agent.as_str()),
            "{}",
            request.line()
        );
    }
}

#[tokio::test]
async fn a_degraded_app_alert_names_its_degraded_resources_not_its_last_sync() {
    let server = KubeServer::start();
    hub::seed(&server);
    let prod = server
        .get(
            "applications.argoproj.io",
            Some("argocd"),
            "prod-use1-1-addons",
        )
        .unwrap();
    server.put(kube_server::argocd::degraded(
        prod,
        &[(
            "apps",
            "Deployment",
            "addons",
            "addons",
            "Deployment \"addons\" exceeded its progress deadline",
        )],
    ));
    let mut hub = hub::start(&server).await;
    hub.until("the Degraded alert", |store| {
        store.alerts().any(|a| a.name == "argocd-app-degraded")
    })
    .await;
    let alert = hub
        .store
        .alerts()
        .find(|a| a.name == "argocd-app-degraded")
        .unwrap();
    assert_eq!(
        alert.summary,
        "Argo CD app argocd/prod-use1-1-addons is Degraded: Deployment addons/addons: Deployment \"addons\" exceeded its progress deadline"
    );
    assert_eq!(alert.cluster, Some(hub::id("prod-use1-1")));
}

// ---- the guard's election and Events against the stand-in ----

#[tokio::test]
async fn the_guards_lease_has_one_leader_and_its_writes_are_attributed() {
    use fleetdeck::guard::events::{Recorder, SetRef};
    use fleetdeck::guard::lease::{LeaseLock, Term};
    use fleetdeck::model::{Hold, HoldKind};
    use fleetdeck::rollout::guard::GuardAction;

    let server = KubeServer::start();
    hub::seed(&server);
    let t = |secs: i64| hub::now() + chrono::Duration::seconds(secs);
    let a = LeaseLock::new(server.client(), "argocd", "guard-a");
    let b = LeaseLock::new(server.client(), "argocd", "guard-b");
    assert!(matches!(
        a.try_acquire_or_renew(t(0)).await.unwrap(),
        Term::Leading { .. }
    ));
    assert_eq!(
        b.try_acquire_or_renew(t(1)).await.unwrap(),
        Term::Following {
            holder: Some("guard-a".into())
        }
    );
    assert!(matches!(
        a.try_acquire_or_renew(t(10)).await.unwrap(),
        Term::Leading { .. }
    ));
    // Past the lease's 30 s, b takes over; a's next renewal loses.
    assert!(matches!(
        b.try_acquire_or_renew(t(41)).await.unwrap(),
        Term::Leading { .. }
    ));
    assert!(matches!(
        a.try_acquire_or_renew(t(42)).await.unwrap(),
        Term::Following { .. }
    ));
    let lease = server
        .get(
            "leases.coordination.k8s.io",
            Some("argocd"),
            "fleetdeck-guard",
        )
        .unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "guard-b");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    let set = server
        .get("applicationsets.argoproj.io", Some("argocd"), "addons")
        .unwrap();
    let action = GuardAction {
        wave: 2,
        wave_name: "prod".into(),
        placed: true,
        hold: Hold {
            kind: HoldKind::Soak {
                after: "staging".into(),
            },
            by: "fleetdeck-guard".into(),
            at: t(42),
        },
    };
    let target = SetRef {
        namespace: "argocd".into(),
        name: "addons".into(),
        uid: set["metadata"]["uid"].as_str().map(str::to_string),
    };
    Recorder::new(server.client(), "guard-b")
        .post(&target, &action, t(42))
        .await
        .unwrap();
    let events = server.list("events", Some("argocd"));
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["involvedObject"]["uid"], set["metadata"]["uid"]);
    assert_eq!(events[0]["reason"], "FleetdeckHold");

    let writes = server.writes();
    assert!(!writes.is_empty());
    for write in writes {
        assert_eq!(
            write.param("fieldManager"),
            Some("fleetdeck"),
            "{}",
            write.line()
        );
    }
}

// ---- fleetdeck's Kubernetes source against a stand-in spoke ----

mod spoke_scene {
    use std::time::Duration;

    use fleetdeck::model::{ClusterId, KubeSignals, SourceEvent};
    use fleetdeck::sources::{ClusterTarget, SourceCommand, SourceHandle};
    use tokio::sync::mpsc;

    use crate::kube_server::spoke::{crash_looping, deployment, node, pdb, pod, warning_event};
    use crate::kube_server::{KubeServer, Kubeconfig};

    pub const ARN: &str = "arn:aws:eks:us-east-1:123456789012:cluster/prod-use1-1";
    pub const NODE: &str = "ip-10-0-1-7.ec2.internal";

    pub fn id() -> ClusterId {
        ClusterId::new("prod", "us-east-1", "prod-use1-1")
    }

    /// Two nodes (one NotReady), a crash-looping pod, a Warning event, a budget that
    /// allows no disruption, a single-replica deployment, and on the Ready node two pods
    /// a drain evicts (one under a budget that allows one) and a DaemonSet pod it leaves.
    pub fn seed(server: &KubeServer) {
        let recent = (chrono::Utc::now() - chrono::Duration::minutes(5))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        server.put_all([
            node(NODE, true),
            node("ip-10-0-2-9.ec2.internal", false),
            crash_looping(
                pod(
                    "payments",
                    "ledger-6c9d-x7k2p",
                    "ip-10-0-2-9.ec2.internal",
                    &[("app", "ledger")],
                    ("ReplicaSet", "ledger-6c9d"),
                ),
                14,
            ),
            warning_event(
                "payments",
                "Pod",
                "ledger-6c9d-x7k2p",
                "BackOff",
                "Back-off restarting failed container main in pod ledger-6c9d-x7k2p",
                14,
                &recent,
            ),
            pdb("payments", "ledger", "ledger", 0, 1, 1),
            deployment("payments", "ledger", 1),
            deployment("payments", "api", 3),
            pod(
                "payments",
                "api-7d9f8-abcde",
                NODE,
                &[("app", "api")],
                ("ReplicaSet", "api-7d9f8"),
            ),
            pod(
                "web",
                "web-5f6b7-fghij",
                NODE,
                &[("app", "web")],
                ("ReplicaSet", "web-5f6b7"),
            ),
            pod(
                "kube-system",
                "aws-node-q8r7s",
                NODE,
                &[("k8s-app", "aws-node")],
                ("DaemonSet", "aws-node"),
            ),
            pdb("payments", "api", "api", 1, 3, 2),
        ]);
    }

    pub struct Running {
        pub handle: SourceHandle,
        pub events: mpsc::Receiver<SourceEvent>,
        pub seen: Vec<SourceEvent>,
        _dir: tempfile::TempDir,
    }

    /// The Kubernetes source as the binary starts it, with a kubeconfig whose context is
    /// named by the cluster's EKS ARN (as `aws eks update-kubeconfig` names it).
    pub async fn start(server: &KubeServer) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kubeconfig");
        Kubeconfig::new().context(ARN, server, None).write(&path);
        let settings = fleetdeck::config::Kubernetes {
            kubeconfig: Some(path),
            ..fleetdeck::config::Kubernetes::default()
        };
        let (tx, events) = mpsc::channel(1024);
        let handle = fleetdeck::sources::kube::spawn(
            settings,
            Default::default(),
            fleetdeck::clock::Clock::Wall,
            tx,
        );
        let target = ClusterTarget {
            id: id(),
            arn: ARN.into(),
            // moto's kind of endpoint: not the stand-in's; the context is found by ARN.
            endpoint: Some("https://5B2C8E1A.gr7.us-east-1.eks.amazonaws.com".into()),
            certificate_authority: None,
            production: true,
        };
        handle
            .commands
            .send(SourceCommand::Targets {
                seq: 1,
                fleet: vec![target],
                interest: vec![id()],
            })
            .await
            .unwrap();
        Running {
            handle,
            events,
            seen: Vec::new(),
            _dir: dir,
        }
    }

    impl Running {
        /// The next event `pick` takes, within ten seconds.
        pub async fn next<T>(
            &mut self,
            what: &str,
            mut pick: impl FnMut(&SourceEvent) -> Option<T>,
        ) -> T {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
            loop {
                let event = tokio::time::timeout_at(deadline, self.events.recv())
                    .await
                    .unwrap_or_else(|_| {
                        panic!("timed out waiting for {what}: {:#?}", self.seen.last())
                    })
                    .expect("the source runs");
                let found = pick(&event);
                self.seen.push(event);
                if let Some(found) = found {
                    return found;
                }
            }
        }

        pub async fn signals_where(
            &mut self,
            what: &str,
            pred: impl Fn(&KubeSignals) -> bool,
        ) -> KubeSignals {
            self.next(what, |e| match e {
                SourceEvent::KubeSignals { cluster, signals }
                    if *cluster == id() && pred(signals) =>
                {
                    Some((**signals).clone())
                }
                _ => None,
            })
            .await
        }
    }
}

#[tokio::test]
async fn the_kubernetes_source_watches_a_stand_in_spoke_found_by_its_arn() {
    use fleetdeck::model::{Connection, SourceEvent};

    let server = KubeServer::start();
    spoke_scene::seed(&server);
    server.deny("create", "pods/eviction", None);
    let mut source = spoke_scene::start(&server).await;

    let checks = source
        .next("permissions", |e| match e {
            SourceEvent::Permissions {
                cluster: Some(c),
                checks,
                ..
            } if *c == spoke_scene::id() => Some(checks.clone()),
            _ => None,
        })
        .await;
    let allowed: Vec<(String, bool)> = checks
        .iter()
        .map(|c| (c.action.clone(), c.allowed))
        .collect();
    assert_eq!(
        allowed,
        [
            ("rollout-restart".to_string(), true),
            ("drain".to_string(), false),
            ("cordon".to_string(), true),
            ("scale".to_string(), true),
            ("delete-pod".to_string(), true),
        ]
    );
    let signals = source
        .signals_where("the spoke's picture", |s| {
            s.connection == Connection::Connected
                && s.nodes_total == 2
                && !s.crashing_pods.is_empty()
        })
        .await;
    let not_ready: Vec<&str> = signals
        .not_ready_nodes
        .iter()
        .map(|n| n.name.as_str())
        .collect();
    assert_eq!(not_ready, ["ip-10-0-2-9.ec2.internal"]);
    assert_eq!(signals.not_ready_nodes[0].reason, "NodeStatusUnknown");
    assert_eq!(signals.crashing_pods[0].name, "ledger-6c9d-x7k2p");
    assert_eq!(signals.crashing_pods[0].restarts, 14);
    assert_eq!(signals.warning_events.len(), 1);
    assert_eq!(signals.warning_events[0].reason, "BackOff");
    let blocking: Vec<&str> = signals
        .blocking_pdbs
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(blocking, ["ledger"]);
    let single: Vec<&str> = signals
        .single_replica
        .iter()
        .map(|w| w.name.as_str())
        .collect();
    assert_eq!(single, ["ledger"]);

    // A pod that starts crash-looping arrives by the watch.
    server.put(kube_server::spoke::crash_looping(
        kube_server::spoke::pod(
            "web",
            "web-5f6b7-fghij",
            spoke_scene::NODE,
            &[("app", "web")],
            ("ReplicaSet", "web-5f6b7"),
        ),
        3,
    ));
    source
        .signals_where("the new crash loop", |s| s.crashing_pods.len() == 2)
        .await;
    // Its health: a success once the cluster answered, and no longer waiting.
    let health = source
        .seen
        .iter()
        .rev()
        .find_map(|e| match e {
            SourceEvent::Health(h) => Some(h.clone()),
            _ => None,
        })
        .unwrap();
    assert!(health.last_ok.is_some(), "{health:?}");
    assert_eq!(health.waiting, None);

    // What it asked, the way it asked: selectors the API server serves, fleetdeck named.
    let requests = server.requests();
    let agent = format!("fleetdeck/{}", env!("CARGO_PKG_VERSION"));
    assert!(
        requests
            .iter()
            .all(|r| r.user_agent.as_deref() == Some(agent.as_str()))
    );
    let lists: Vec<String> = requests
        .iter()
        .filter(|r| r.method == "GET" && !r.is_watch() && r.path != "/version")
        .map(|r| {
            format!(
                "{} {}",
                r.path,
                r.param("fieldSelector").unwrap_or_default()
            )
        })
        .collect();
    for expected in [
        "/api/v1/nodes ",
        "/api/v1/pods status.phase!=Succeeded,status.phase!=Failed",
        "/api/v1/events type=Warning",
        "/apis/policy/v1/poddisruptionbudgets ",
        "/apis/apps/v1/deployments metadata.namespace!=kube-system",
    ] {
        assert!(
            lists.iter().any(|l| l == expected),
            "{expected} in {lists:#?}"
        );
    }
    assert!(
        requests
            .iter()
            .any(|r| r.is_watch() && r.param("allowWatchBookmarks") == Some("true")),
        "then it watches"
    );
    assert!(server.writes().is_empty(), "watching writes nothing");
}

#[tokio::test]
async fn a_drain_through_the_source_cordons_and_evicts_as_fleetdeck() {
    use fleetdeck::actions::{Operation, Remediation};
    use fleetdeck::sources::SourceCommand;
    use fleetdeck::sources::remediation::RemediateRequest;

    let server = KubeServer::start();
    spoke_scene::seed(&server);
    let source = spoke_scene::start(&server).await;
    let (reply, answer) = tokio::sync::oneshot::channel();
    source
        .handle
        .commands
        .send(SourceCommand::Remediate(RemediateRequest {
            remediation: Remediation {
                cluster: spoke_scene::id(),
                production: true,
                step: None,
                op: Operation::Drain {
                    node: spoke_scene::NODE.into(),
                    timeout_secs: 60,
                },
            },
            dry_run: false,
            progress: None,
            reply,
        }))
        .await
        .unwrap();
    let done = tokio::time::timeout(Duration::from_secs(30), answer)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        done,
        format!(
            "drained node {}: 2 pod(s) evicted (1 DaemonSet or static pod(s) stay); the node stays cordoned",
            spoke_scene::NODE
        )
    );
    let node = server.get("nodes", None, spoke_scene::NODE).unwrap();
    assert_eq!(node["spec"]["unschedulable"], true);
    assert!(
        server
            .get("pods", Some("payments"), "api-7d9f8-abcde")
            .is_none()
    );
    assert!(
        server
            .get("pods", Some("kube-system"), "aws-node-q8r7s")
            .is_some()
    );
    // The eviction spent the budget's one allowed disruption.
    let budget = server
        .get("poddisruptionbudgets.policy", Some("payments"), "api")
        .unwrap();
    assert_eq!(budget["status"]["disruptionsAllowed"], 0);
    let writes = server.writes();
    let evictions: Vec<&kube_server::Request> = writes
        .iter()
        .filter(|w| w.path.ends_with("/eviction"))
        .collect();
    assert_eq!(evictions.len(), 2);
    for write in &writes {
        assert_eq!(
            write.param("fieldManager"),
            Some("fleetdeck"),
            "{}",
            write.line()
        );
    }
    let managers: Vec<&str> = node["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert!(managers.contains(&"fleetdeck"), "{managers:?}");
}

// ---- the fleetdeck binary against the stand-in ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleetdeck_snapshot_reads_the_rollout_from_a_stand_in_hub() {
    let server = KubeServer::start();
    hub::seed(&server);
    let home = tempfile::tempdir().unwrap();
    let kubeconfig = home.path().join("kubeconfig");
    kube_server::Kubeconfig::new()
        .context("hub-admin", &server, Some("argocd"))
        .write(&kubeconfig);
    let config = home.path().join("fleet.toml");
    std::fs::write(
        &config,
        format!(
            "[hub]\ncontext = \"hub-admin\"\nnamespace = \"argocd\"\n\n[kubernetes]\nkubeconfig = \"{}\"\n",
            kubeconfig.display()
        ),
    )
    .unwrap();
    let home_dir = home.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("fleetdeck")
            .unwrap()
            .env_clear()
            .env("HOME", &home_dir)
            .env("XDG_CONFIG_HOME", home_dir.join("config"))
            .env("XDG_DATA_HOME", home_dir.join("data"))
            .env("XDG_STATE_HOME", home_dir.join("state"))
            .env("XDG_CACHE_HOME", home_dir.join("cache"))
            .env("LANG", "C.UTF-8")
            .timeout(Duration::from_secs(60))
            .args(["snapshot", "--format", "json", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rollout = doc["rollouts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "addons")
        .unwrap_or_else(|| panic!("{doc:#}"));
    assert_eq!(rollout["waves"].as_array().unwrap().len(), 3);
    let hub = doc["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "argocd:hub-admin")
        .unwrap();
    assert_eq!(hub["healthy"], true, "{hub:#}");
    let agent = format!("fleetdeck/{}", env!("CARGO_PKG_VERSION"));
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.user_agent.as_deref() == Some(agent.as_str()))
    );
}

#[tokio::test]
async fn dry_runs_store_nothing_finalizers_hold_a_delete_and_discovery_lists_the_crds() {
    let server = KubeServer::start();
    hub::seed(&server);
    let client = server.client();
    let apps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "argocd",
        &ApiResource {
            group: "argoproj.io".into(),
            version: "v1alpha1".into(),
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
            plural: "applications".into(),
        },
    );
    let before = server.resource_version();
    let refresh = json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}});
    let preview = apps
        .patch(
            "dev-use1-1-addons",
            &PatchParams {
                dry_run: true,
                field_manager: Some("fleetdeck".into()),
                ..PatchParams::default()
            },
            &Patch::Merge(&refresh),
        )
        .await
        .unwrap();
    assert_eq!(
        preview.metadata.annotations.unwrap()["argocd.argoproj.io/refresh"],
        "normal",
        "the answer shows the change"
    );
    assert_eq!(server.resource_version(), before, "nothing was stored");
    let stored = server
        .get(
            "applications.argoproj.io",
            Some("argocd"),
            "dev-use1-1-addons",
        )
        .unwrap();
    assert!(stored["metadata"]["annotations"].is_null());

    // Applications carry Argo CD's resources finalizer: a delete only marks them.
    apps.delete("dev-use1-1-addons", &DeleteParams::default())
        .await
        .unwrap();
    let marked = server
        .get(
            "applications.argoproj.io",
            Some("argocd"),
            "dev-use1-1-addons",
        )
        .unwrap();
    assert!(marked["metadata"]["deletionTimestamp"].is_string());
    // Argo CD removes the finalizer once it has pruned: then it is gone.
    apps.patch(
        "dev-use1-1-addons",
        &PatchParams::default(),
        &Patch::Merge(&json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(
        server
            .get(
                "applications.argoproj.io",
                Some("argocd"),
                "dev-use1-1-addons"
            )
            .is_none()
    );

    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.git_version, kube_server::EKS_VERSION);
    let groups = client.list_api_groups().await.unwrap();
    assert!(groups.groups.iter().any(|g| g.name == "argoproj.io"));
    let resources = client
        .list_api_group_resources("argoproj.io/v1alpha1")
        .await
        .unwrap();
    let names: Vec<&str> = resources
        .resources
        .iter()
        .map(|r| r.name.as_str())
        .collect();
    assert!(
        names.contains(&"applicationsets") && names.contains(&"applicationsets/status"),
        "{names:?}"
    );
}

#[tokio::test]
async fn the_argocd_source_relists_after_its_watch_expires() {
    let server = KubeServer::start();
    hub::seed(&server);
    let mut hub = hub::start(&server).await;
    hub.until("the three apps", |store| store.applications().count() == 3)
        .await;
    let lists_before = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/applications") && !r.is_watch())
        .count();
    // The API server forgets its history and drops every watch (a restart, say); a
    // change made meanwhile must still arrive, through a fresh list.
    // Watches are refused until then, so none resumes before the history is gone.
    server.fail(Failure::status(500, "InternalError", "restarting").watch(true));
    server.close_watches();
    server.patch(
        "applications.argoproj.io",
        Some("argocd"),
        "dev-use1-1-addons",
        json!({"status": {"health": {"status": "Progressing"}}}),
    );
    server.compact();
    server.clear_failures();
    hub.until("the change after the re-list", |store| {
        store
            .applications()
            .any(|a| a.name == "dev-use1-1-addons" && a.health == "Progressing")
    })
    .await;
    let lists_after = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/applications") && !r.is_watch())
        .count();
    assert!(lists_after > lists_before, "re-listed after 410 Gone");
}
