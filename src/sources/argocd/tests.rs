//! The hub source against a fake API server, through kube's documented mock-service
//! pattern (`tower_test::mock::pair` + `kube::Client::new`). The fake answers lists,
//! watches and access reviews with bodies shaped like the real API server's and Argo
//! CD's; a test scripts the lists and pushes watch events when it is ready for them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower_test::mock::{Handle, SendResponse};

use super::Tuning;
use crate::clock::Clock;
use crate::config::Hub;
use crate::model::{
    Alert, AlertKey, AlertSource, AlertState, AppStepStatus, ApplicationSet, ArgoApp, ClusterId,
    PermissionCheck, Severity, SourceEvent, SourceHealth, SourceStatus, SyncStep, Timestamp,
};
use crate::sources::{ClusterTarget, SourceCommand, SourceHandle};

// ---- fixtures: what the hub and Argo CD answer ----

const NS: &str = "argocd";
const PROD_1_ENDPOINT: &str = "https://0123ABCD4567EF.gr7.us-east-1.eks.amazonaws.com";
const PROD_2_ARN: &str = "arn:aws:eks:us-east-1:111122223333:cluster/prod-2";

fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T02:10:00Z")
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

fn hub() -> Hub {
    Hub {
        context: "hub-admin".into(),
        namespace: NS.into(),
        plans: None,
    }
}

fn id(name: &str) -> ClusterId {
    ClusterId::new("111122223333", "us-east-1", name)
}

fn target(name: &str, endpoint: &str, production: bool) -> ClusterTarget {
    ClusterTarget {
        id: id(name),
        arn: format!("arn:aws:eks:us-east-1:111122223333:cluster/{name}"),
        endpoint: Some(endpoint.into()),
        certificate_authority: None,
        production,
    }
}

fn fleet() -> Vec<ClusterTarget> {
    vec![
        target("prod-1", PROD_1_ENDPOINT, true),
        target(
            "staging-1",
            "https://89AB.yl4.us-east-1.eks.amazonaws.com",
            false,
        ),
        target(
            "prod-2",
            "https://CDEF.sk1.us-east-1.eks.amazonaws.com",
            true,
        ),
    ]
}

fn metadata(name: &str, rv: &str) -> Value {
    json!({
        "name": name,
        "namespace": NS,
        "uid": format!("6f1c{}-uid", name.len()),
        "resourceVersion": rv,
        "generation": 3,
        "creationTimestamp": "2026-11-01T09:00:00Z",
        "labels": {"app.kubernetes.io/instance": name},
        "finalizers": ["resources-finalizer.argocd.argoproj.io"]
    })
}

/// An Application as Argo CD stores it, with `status` when given.
fn app(name: &str, rv: &str, project: &str, destination: Value, status: Option<Value>) -> Value {
    let mut app = json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": metadata(name, rv),
        "spec": {
            "project": project,
            "source": {
                "repoURL": "https://github.com/acme/fleet-deploy.git",
                "path": format!("apps/{name}"),
                "targetRevision": "main"
            },
            "destination": destination,
            "syncPolicy": {"automated": {"prune": true, "selfHeal": true}, "syncOptions": ["CreateNamespace=true"]}
        }
    });
    if let Some(status) = status {
        app["status"] = status;
    }
    app
}

fn healthy_status() -> Value {
    json!({
        "sync": {"status": "Synced", "revision": "9f8e7d6c5b4a"},
        "health": {"status": "Healthy"},
        "operationState": {
            "operation": {"sync": {"revision": "9f8e7d6c5b4a"}},
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": "2026-11-21T01:58:00Z",
            "finishedAt": "2026-11-21T01:58:09Z",
            "syncResult": {"revision": "9f8e7d6c5b4a", "resources": []}
        },
        "reconciledAt": "2026-11-21T02:08:00Z",
        "sourceType": "Kustomize",
        "summary": {"images": ["acme/payments:1.42.0"]}
    })
}

fn degraded_status(health_message: &str) -> Value {
    json!({
        "sync": {"status": "Synced", "revision": "9f8e7d6c5b4a"},
        "health": {"status": "Degraded", "message": health_message},
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": "2026-11-21T01:58:00Z",
            "finishedAt": "2026-11-21T01:58:09Z"
        },
        "reconciledAt": "2026-11-21T02:09:00Z"
    })
}

const WEBHOOK_DENIED: &str = "one or more objects failed to apply, reason: admission webhook \"validate.kyverno.svc-fail\" denied the request: resource Deployment/checkout/checkout-api was blocked";

fn payments_prod_1(rv: &str, status: Value) -> Value {
    app(
        "payments-prod-1",
        rv,
        "payments",
        // Lower case and a trailing slash: the same server as the fleet's endpoint.
        json!({"server": "https://0123abcd4567ef.gr7.us-east-1.eks.amazonaws.com/", "namespace": "payments"}),
        Some(status),
    )
}

fn checkout_staging() -> Value {
    app(
        "checkout-staging",
        "12002",
        "checkout",
        json!({"name": "staging-1", "namespace": "checkout"}),
        Some(json!({
            "sync": {"status": "OutOfSync", "revision": "1a2b3c4d"},
            "health": {"status": "Degraded", "message": "Deployment \"checkout-api\" exceeded its progress deadline"},
            "operationState": {
                "phase": "Failed",
                "message": WEBHOOK_DENIED,
                "retryCount": 5,
                "startedAt": "2026-11-21T02:01:00Z",
                "finishedAt": "2026-11-21T02:01:04Z"
            }
        })),
    )
}

fn search_prod_2() -> Value {
    app(
        "search-prod-2",
        "12003",
        "search",
        json!({"name": PROD_2_ARN, "namespace": "search"}),
        Some(healthy_status()),
    )
}

/// Just created: the controller has not reconciled it, so it has no status at all.
fn hub_addons() -> Value {
    app(
        "hub-addons",
        "12004",
        "platform",
        json!({"server": "https://kubernetes.default.svc", "namespace": "kube-system"}),
        None,
    )
}

fn list(kind: &str, rv: &str, items: Vec<Value>) -> String {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": kind,
        "metadata": {"resourceVersion": rv, "continue": ""},
        "items": items
    })
    .to_string()
}

fn app_list(rv: &str, items: Vec<Value>) -> String {
    list("ApplicationList", rv, items)
}

fn standard_apps() -> String {
    app_list(
        "12345",
        vec![
            payments_prod_1("12001", healthy_status()),
            checkout_staging(),
            search_prod_2(),
            hub_addons(),
        ],
    )
}

/// A RollingSync ApplicationSet as Argo CD 2.x/3.x writes it, mid-rollout.
fn rolling_set() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": "payments",
            "namespace": NS,
            "resourceVersion": "22001",
            "generation": 7,
            "uid": "0b5e-appset",
            "annotations": {"fleetdeck.io/paused-by": "alice"}
        },
        "spec": {
            "goTemplate": true,
            "generators": [{"clusters": {"selector": {"matchLabels": {"team": "payments"}}}}],
            "strategy": {
                "type": "RollingSync",
                "rollingSync": {
                    "steps": [
                        {"matchExpressions": [{"key": "env", "operator": "In", "values": ["staging"]}], "maxUpdate": 0},
                        {"matchExpressions": [
                            {"key": "env", "operator": "In", "values": ["prod"]},
                            {"key": "region", "operator": "NotIn", "values": ["eu-west-1", "ap-south-1"]}
                        ], "maxUpdate": "25%"},
                        {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}], "maxUpdate": 2},
                        {"matchExpressions": [{"key": "canary", "operator": "Exists"}]}
                    ]
                }
            },
            "template": {"metadata": {"name": "payments-{{.name}}"}, "spec": {"project": "payments"}}
        },
        "status": {
            "conditions": [{"type": "RolloutProgressing", "status": "True", "reason": "ApplicationSetModified"}],
            "applicationStatus": [
                {"application": "payments-staging-1", "status": "Healthy", "step": "1",
                 "message": "Application resource became Healthy, updating status from Progressing to Healthy.",
                 "lastTransitionTime": "2026-11-21T01:40:00Z"},
                {"application": "payments-prod-1", "status": "Waiting", "step": "2",
                 "message": "Application is out of date with the current AppSet generation, setting status to Waiting.",
                 "lastTransitionTime": "2026-11-21T01:50:00Z", "targetRevisions": ["9f8e7d6c5b4a"]},
                {"application": "payments-sandbox", "status": "Healthy", "step": "-1",
                 "message": "Application does not match any step"},
                {"status": "Waiting", "step": "2"}
            ]
        }
    })
}

/// Freshly applied: no status yet, and no strategy.
fn plain_set() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "addons", "namespace": NS, "resourceVersion": "22002"},
        "spec": {"generators": [{"list": {"elements": []}}], "template": {"metadata": {}, "spec": {}}}
    })
}

fn set_list(items: Vec<Value>) -> String {
    list("ApplicationSetList", "22100", items)
}

fn status(code: u16, reason: &str, message: &str) -> String {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"group": "argoproj.io", "kind": "applications"},
        "code": code
    })
    .to_string()
}

fn ssar(allowed: bool, reason: &str) -> String {
    json!({
        "kind": "SelfSubjectAccessReview",
        "apiVersion": "authorization.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "spec": {"resourceAttributes": {"namespace": NS, "verb": "patch", "group": "argoproj.io", "resource": "applicationsets"}},
        "status": {"allowed": allowed, "reason": reason}
    })
    .to_string()
}

fn watch_event(kind: &str, object: Value) -> String {
    json!({"type": kind, "object": object}).to_string()
}

fn bookmark(rv: &str) -> String {
    watch_event(
        "BOOKMARK",
        json!({"kind": "Application", "apiVersion": "argoproj.io/v1alpha1", "metadata": {"resourceVersion": rv, "creationTimestamp": null}}),
    )
}

fn expired() -> String {
    watch_event(
        "ERROR",
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": "too old resource version: 12345 (13001)", "reason": "Expired", "code": 410}),
    )
}

// ---- the fake API server ----

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Res {
    Apps,
    Sets,
}

/// Canned answers; the last of each queue repeats.
struct Script {
    lists: HashMap<Res, VecDeque<(u16, String)>>,
    reviews: VecDeque<(u16, String)>,
    /// Quiet watches end (empty, as at the API server's watch timeout) this often;
    /// `None`: they stay open until a push.
    watch_lifetime: Option<Duration>,
}

impl Script {
    fn new(apps: String, sets: String) -> Self {
        Self {
            lists: HashMap::from([
                (Res::Apps, VecDeque::from([(200, apps)])),
                (Res::Sets, VecDeque::from([(200, sets)])),
            ]),
            reviews: VecDeque::from([(
                200,
                ssar(
                    true,
                    "RBAC: allowed by ClusterRoleBinding \"fleet-operators\" of ClusterRole \"argocd-appset-editor\" to Group \"platform-oncall\"",
                ),
            )]),
            watch_lifetime: None,
        }
    }

    fn then_list(mut self, res: Res, code: u16, body: String) -> Self {
        self.lists.entry(res).or_default().push_back((code, body));
        self
    }

    fn list(mut self, res: Res, code: u16, body: String) -> Self {
        self.lists.insert(res, VecDeque::from([(code, body)]));
        self
    }

    fn reviews(mut self, answers: Vec<(u16, String)>) -> Self {
        self.reviews = answers.into();
        self
    }
}

fn next<T: Clone>(queue: &mut VecDeque<T>) -> Option<T> {
    if queue.len() > 1 {
        queue.pop_front()
    } else {
        queue.front().cloned()
    }
}

/// The test's side of the fake: every request seen, and a way to push watch events.
struct Fake {
    /// Every request, with when it came.
    log: Arc<Mutex<Vec<(tokio::time::Instant, String)>>>,
    reviews: Arc<Mutex<Vec<Value>>>,
    watch: mpsc::UnboundedSender<(Res, Vec<String>)>,
}

impl Fake {
    /// Answers the next watch call on `res` with these event lines (then the call ends,
    /// as a server-side timeout would, and the watcher resumes from the last version).
    fn push(&self, res: Res, lines: Vec<String>) {
        self.watch.send((res, lines)).expect("fake server running");
    }

    fn requests(&self) -> Vec<String> {
        let log = self.log.lock().expect("log");
        log.iter().map(|(_, r)| r.clone()).collect()
    }

    /// When each request matching `pattern` came, in order.
    fn times(&self, pattern: impl Fn(&str) -> bool) -> Vec<tokio::time::Instant> {
        let log = self.log.lock().expect("log");
        log.iter()
            .filter(|(_, r)| pattern(r))
            .map(|(t, _)| *t)
            .collect()
    }

    fn count(&self, pattern: impl Fn(&str) -> bool) -> usize {
        self.requests().iter().filter(|r| pattern(r)).count()
    }
}

fn is_list(res: Res) -> impl Fn(&str) -> bool {
    move |r: &str| r.starts_with("GET") && r.contains(collection(res)) && !r.contains("watch=")
}

fn collection(res: Res) -> &'static str {
    match res {
        Res::Apps => "/namespaces/argocd/applications?",
        Res::Sets => "/namespaces/argocd/applicationsets?",
    }
}

fn respond(send: SendResponse<Response<Body>>, code: u16, body: String) {
    let response = Response::builder()
        .status(StatusCode::from_u16(code).expect("valid status"))
        .header("content-type", "application/json")
        .body(Body::from(body.into_bytes()))
        .expect("valid response");
    send.send_response(response);
}

async fn serve(
    mut handle: Handle<Request<Body>, Response<Body>>,
    mut script: Script,
    log: Arc<Mutex<Vec<(tokio::time::Instant, String)>>>,
    reviews: Arc<Mutex<Vec<Value>>>,
    mut pushes: mpsc::UnboundedReceiver<(Res, Vec<String>)>,
) {
    let mut parked: HashMap<Res, VecDeque<SendResponse<Response<Body>>>> = HashMap::new();
    // Lists scripted with code 0: never answered, as by a hung hub.
    let mut hung = Vec::new();
    let mut queued: HashMap<Res, VecDeque<Vec<String>>> = HashMap::new();
    let mut lifetime = script.watch_lifetime.map(tokio::time::interval);
    loop {
        tokio::select! {
            _ = async { lifetime.as_mut().expect("a lifetime").tick().await }, if lifetime.is_some() => {
                for send in parked.values_mut().flat_map(|q| q.drain(..)) {
                    respond(send, 200, String::new());
                }
            }
            request = handle.next_request() => {
                let Some((request, send)) = request else { return };
                let uri = request.uri().to_string();
                let method = request.method().to_string();
                log.lock()
                    .expect("log")
                    .push((tokio::time::Instant::now(), format!("{method} {uri}")));
                let res = if uri.contains(collection(Res::Apps)) {
                    Some(Res::Apps)
                } else if uri.contains(collection(Res::Sets)) {
                    Some(Res::Sets)
                } else {
                    None
                };
                match res {
                    Some(res) if uri.contains("watch=true") => {
                        match queued.get_mut(&res).and_then(VecDeque::pop_front) {
                            Some(lines) => respond(send, 200, lines.join("\n") + "\n"),
                            // Nothing to say yet: hold the call open, as a quiet watch is.
                            None => parked.entry(res).or_default().push_back(send),
                        }
                    }
                    Some(res) => {
                        let (code, body) = script
                            .lists
                            .get_mut(&res)
                            .and_then(next)
                            .unwrap_or((200, String::new()));
                        if code == 0 {
                            hung.push(send);
                        } else {
                            respond(send, code, body);
                        }
                    }
                    None if uri.starts_with("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
                        let body = request.into_body().collect_bytes().await.expect("request body");
                        let review: Value = serde_json::from_slice(&body).expect("review is JSON");
                        reviews.lock().expect("reviews").push(review);
                        let (code, body) = next(&mut script.reviews).unwrap_or((200, ssar(true, "")));
                        respond(send, code, body);
                    }
                    None => respond(send, 404, "404 page not found\n".into()),
                }
            }
            push = pushes.recv() => {
                let Some((res, lines)) = push else { return };
                match parked.get_mut(&res).and_then(VecDeque::pop_front) {
                    Some(send) => respond(send, 200, lines.join("\n") + "\n"),
                    None => queued.entry(res).or_default().push_back(lines),
                }
            }
        }
    }
}

/// Timings short enough for tests; permissions are checked once unless a test says so.
fn tuning() -> Tuning {
    Tuning {
        flush_interval: Duration::from_millis(20),
        health_interval: Duration::from_millis(50),
        permission_recheck: Duration::from_secs(3600),
        retry_min: Duration::from_millis(10),
        retry_max: Duration::from_millis(50),
        crd_retry: Duration::from_millis(100),
        watch_timeout_secs: 290,
        watch_spacing: Duration::from_millis(1),
    }
}

struct Running {
    fake: Fake,
    handle: SourceHandle,
    events: mpsc::Receiver<SourceEvent>,
    /// Everything received so far, for assertions about order and absence.
    seen: Vec<SourceEvent>,
    /// How long `until` waits for an event.
    patience: Duration,
}

fn start(script: Script, tuning: Tuning) -> Running {
    start_with(script, tuning, Clock::Frozen(t0()), false)
}

/// [`start`] on `clock`, the client behind the hub client's response timeout if asked.
fn start_with(script: Script, tuning: Tuning, clock: Clock, response_timeout: bool) -> Running {
    use tower::Layer as _;
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let log = Arc::new(Mutex::new(Vec::new()));
    let reviews = Arc::new(Mutex::new(Vec::new()));
    let (watch, pushes) = mpsc::unbounded_channel();
    tokio::spawn(serve(handle, script, log.clone(), reviews.clone(), pushes));
    let client = if response_timeout {
        let timeout = crate::sources::kube::connect::ResponseTimeoutLayer::new(
            crate::sources::kube::connect::RESPONSE_TIMEOUT,
        );
        kube::Client::new(timeout.layer(service), NS)
    } else {
        kube::Client::new(service, NS)
    };
    let (tx, events) = mpsc::channel(64);
    let handle = super::task::spawn(client, hub(), Default::default(), clock, tx, tuning);
    Running {
        fake: Fake {
            log,
            reviews,
            watch,
        },
        handle,
        events,
        seen: Vec::new(),
        patience: Duration::from_secs(10),
    }
}

impl Running {
    async fn targets(&self, fleet: Vec<ClusterTarget>) {
        self.handle
            .commands
            .send(SourceCommand::Targets {
                seq: 1,
                fleet,
                interest: Vec::new(),
            })
            .await
            .expect("source running");
    }

    /// Reads events until `pick` returns something; panics with what was seen after
    /// `patience` (10 s).
    async fn until<T>(&mut self, mut pick: impl FnMut(&SourceEvent) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + self.patience;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out; seen: {:#?}", self.seen))
                .expect("source running");
            let picked = pick(&event);
            self.seen.push(event);
            if let Some(found) = picked {
                return found;
            }
        }
    }

    /// The latest event already seen that `pick` accepts, else the next one that comes.
    async fn latest<T>(&mut self, mut pick: impl FnMut(&SourceEvent) -> Option<T>) -> T {
        match self.seen.iter().rev().find_map(&mut pick) {
            Some(found) => found,
            None => self.until(pick).await,
        }
    }

    async fn ready(&mut self) {
        self.until(|e| matches!(e, SourceEvent::Ready { .. }).then_some(()))
            .await
    }

    /// The latest complete set of apps matching `pred`, seen or still to come.
    async fn apps_where(&mut self, pred: impl Fn(&[ArgoApp]) -> bool) -> Vec<ArgoApp> {
        self.latest(|e| match e {
            SourceEvent::Applications { apps, .. } if pred(apps) => Some(apps.clone()),
            _ => None,
        })
        .await
    }

    async fn alert(&mut self, key: &AlertKey, state: AlertState) -> Alert {
        self.until(|e| match e {
            SourceEvent::Alerts(alerts) => alerts
                .iter()
                .find(|a| &a.key == key && a.state == state)
                .cloned(),
            _ => None,
        })
        .await
    }

    async fn health_where(&mut self, pred: impl Fn(&SourceHealth) -> bool) -> SourceHealth {
        self.until(|e| match e {
            SourceEvent::Health(h) if pred(h) => Some(h.clone()),
            _ => None,
        })
        .await
    }

    fn alerts_seen(&self) -> Vec<Alert> {
        self.seen
            .iter()
            .filter_map(|e| match e {
                SourceEvent::Alerts(a) => Some(a.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

fn find<'a>(apps: &'a [ArgoApp], name: &str) -> &'a ArgoApp {
    apps.iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("{name} listed"))
}

fn degraded_key(cluster: Option<&ClusterId>, app: &str) -> AlertKey {
    AlertKey::new(
        AlertSource::ArgoCd,
        cluster,
        "argocd-app-degraded",
        &format!("{NS}/{app}"),
    )
}

fn standard() -> Script {
    Script::new(standard_apps(), set_list(vec![rolling_set(), plain_set()]))
}

// ---- tests ----

#[tokio::test]
async fn first_list_sends_every_app_mapped_to_its_cluster_then_ready() {
    let mut hub = start(standard(), tuning());
    hub.targets(fleet()).await;
    hub.ready().await;

    let apps = hub
        .latest(|e| match e {
            SourceEvent::Applications { apps, .. } => Some(apps.clone()),
            _ => None,
        })
        .await;
    assert_eq!(apps.len(), 4);
    assert_eq!(
        find(&apps, "payments-prod-1"),
        &ArgoApp {
            name: "payments-prod-1".into(),
            namespace: NS.into(),
            project: "payments".into(),
            cluster: Some(id("prod-1")),
            destination: "https://0123abcd4567ef.gr7.us-east-1.eks.amazonaws.com/".into(),
            sync: "Synced".into(),
            health: "Healthy".into(),
            operation_phase: Some("Succeeded".into()),
            message: Some("successfully synced (all tasks run)".into()),
            labels: [(
                "app.kubernetes.io/instance".to_string(),
                "payments-prod-1".to_string()
            )]
            .into(),
            app_set: None,
        },
        "mapped by server, whatever the case and trailing slash"
    );
    let checkout = find(&apps, "checkout-staging");
    assert_eq!(checkout.cluster, Some(id("staging-1")), "mapped by name");
    assert_eq!(checkout.destination, "staging-1");
    assert_eq!(
        (checkout.sync.as_str(), checkout.health.as_str()),
        ("OutOfSync", "Degraded")
    );
    assert_eq!(checkout.operation_phase.as_deref(), Some("Failed"));
    assert_eq!(
        checkout.message.as_deref(),
        Some(WEBHOOK_DENIED),
        "a failed sync's message says what broke"
    );
    assert_eq!(
        find(&apps, "search-prod-2").cluster,
        Some(id("prod-2")),
        "mapped by ARN"
    );
    let addons = find(&apps, "hub-addons");
    assert_eq!(addons.cluster, None, "the hub itself is not in the fleet");
    assert_eq!(
        (addons.sync.as_str(), addons.health.as_str()),
        ("Unknown", "Unknown"),
        "no status at all still lists"
    );
    assert_eq!(addons.operation_phase, None);

    // The complete sets and the alert came before Ready, so a snapshot sees them.
    let ready_at = hub
        .seen
        .iter()
        .position(|e| matches!(e, SourceEvent::Ready { .. }))
        .expect("ready seen");
    assert!(
        hub.seen[..ready_at]
            .iter()
            .any(|e| matches!(e, SourceEvent::ApplicationSets { sets, .. } if sets.len() == 2))
    );
    let alert = hub
        .alerts_seen()
        .into_iter()
        .find(|a| a.key == degraded_key(Some(&id("staging-1")), "checkout-staging"))
        .expect("checkout alert raised");
    assert_eq!(alert.severity, Severity::Critical, "its sync failed");
    assert_eq!(alert.state, AlertState::Firing);
    assert_eq!(alert.cluster, Some(id("staging-1")));
    assert!(
        alert
            .summary
            .starts_with("Argo CD app argocd/checkout-staging is Degraded, last sync Failed: one or more objects failed to apply"),
        "{}",
        alert.summary
    );
    assert_eq!(alert.labels["app"], "checkout-staging");
    assert_eq!(alert.labels["project"], "checkout");
    assert_eq!(alert.labels["namespace"], NS);
    assert_eq!(
        hub.alerts_seen().len(),
        1,
        "only the degraded app alerts: {:#?}",
        hub.alerts_seen()
    );

    // One list of each kind, then watches, never lists again.
    assert_eq!(hub.fake.count(is_list(Res::Apps)), 1);
    assert_eq!(hub.fake.count(is_list(Res::Sets)), 1);
    let health = hub
        .latest(|e| match e {
            SourceEvent::Health(h) => Some(h.clone()),
            _ => None,
        })
        .await;
    assert!(health.last_ok.is_some());
    assert_eq!(health.name, "argocd:hub-admin");
    assert_eq!(health.poll_interval_secs, 60);
    assert!(health.calls >= 2);
    assert_eq!(health.status(t0()), SourceStatus::Ok);
}

#[tokio::test]
async fn watched_changes_raise_and_resolve_alerts_and_an_expired_watch_relists() {
    let script = standard().then_list(
        Res::Apps,
        200,
        app_list(
            "13050",
            vec![
                payments_prod_1("13001", healthy_status()),
                checkout_staging(),
                hub_addons(),
            ],
        ),
    );
    let mut hub = start(script, tuning());
    hub.targets(fleet()).await;
    hub.ready().await;

    // A bookmark moves the watch on; then the payments app goes Degraded on a prod cluster.
    hub.fake.push(
        Res::Apps,
        vec![
            bookmark("12400"),
            watch_event(
                "MODIFIED",
                payments_prod_1(
                    "12401",
                    degraded_status("Deployment \"payments-api\" has 0/6 ready replicas"),
                ),
            ),
        ],
    );
    let key = degraded_key(Some(&id("prod-1")), "payments-prod-1");
    let alert = hub.alert(&key, AlertState::Firing).await;
    assert_eq!(alert.severity, Severity::Critical, "Degraded in production");
    assert_eq!(
        alert.summary,
        "Argo CD app argocd/payments-prod-1 is Degraded: Deployment \"payments-api\" has 0/6 ready replicas"
    );
    let apps = hub
        .apps_where(|apps| find(apps, "payments-prod-1").health == "Degraded")
        .await;
    assert_eq!(apps.len(), 4);
    // Healthy again: the same alert is sent once more, resolved, first seen kept.
    hub.fake.push(
        Res::Apps,
        vec![watch_event(
            "MODIFIED",
            payments_prod_1("12402", healthy_status()),
        )],
    );
    let resolved = hub.alert(&key, AlertState::Resolved).await;
    assert_eq!(resolved.first_seen, alert.first_seen);
    assert_eq!(resolved.summary, alert.summary);

    // The watch expired (410 Gone): the watcher lists again, and the new list is the
    // whole truth (search-prod-2 was deleted meanwhile).
    hub.fake.push(Res::Apps, vec![expired()]);
    let apps = hub
        .apps_where(|apps| !apps.iter().any(|a| a.name == "search-prod-2"))
        .await;
    assert_eq!(apps.len(), 3);
    assert_eq!(hub.fake.count(is_list(Res::Apps)), 2);
    assert_eq!(hub.fake.count(is_list(Res::Sets)), 1);
    let requests = hub.fake.requests();
    assert!(
        requests.iter().any(|r| r.contains("watch=true")
            && r.contains("allowWatchBookmarks=true")
            && r.contains("resourceVersion=12402")),
        "resumed from the last version seen: {requests:#?}"
    );
    // An expired watch is routine, not an error of the source.
    let health = hub
        .latest(|e| match e {
            SourceEvent::Health(h) => Some(h.clone()),
            _ => None,
        })
        .await;
    assert_eq!(health.last_error, None);
}

#[tokio::test]
async fn application_sets_read_steps_max_update_and_step_status() {
    let mut hub = start(standard(), tuning());
    hub.ready().await;
    let sets = hub
        .latest(|e| match e {
            SourceEvent::ApplicationSets { source, sets } => {
                assert_eq!(source, "argocd:hub-admin");
                Some(sets.clone())
            }
            _ => None,
        })
        .await;
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .expect("valid")
            .with_timezone(&chrono::Utc)
    };
    let expr = |key: &str, op: &str, values: &[&str]| {
        (
            key.to_string(),
            op.to_string(),
            values.iter().map(|v| v.to_string()).collect::<Vec<_>>(),
        )
    };
    assert_eq!(
        sets,
        vec![
            ApplicationSet {
                name: "addons".into(),
                namespace: NS.into(),
                resource_version: "22002".into(),
                strategy: None,
                steps: vec![],
                application_status: vec![],
                annotations: Default::default(),
            },
            ApplicationSet {
                name: "payments".into(),
                namespace: NS.into(),
                resource_version: "22001".into(),
                strategy: Some("RollingSync".into()),
                steps: vec![
                    SyncStep {
                        match_expressions: vec![expr("env", "In", &["staging"])],
                        max_update: Some("0".into()),
                    },
                    SyncStep {
                        match_expressions: vec![
                            expr("env", "In", &["prod"]),
                            expr("region", "NotIn", &["eu-west-1", "ap-south-1"]),
                        ],
                        max_update: Some("25%".into()),
                    },
                    SyncStep {
                        match_expressions: vec![expr("env", "In", &["prod"])],
                        max_update: Some("2".into()),
                    },
                    SyncStep {
                        match_expressions: vec![expr("canary", "Exists", &[])],
                        max_update: None,
                    },
                ],
                application_status: vec![
                    AppStepStatus {
                        application: "payments-staging-1".into(),
                        status: "Healthy".into(),
                        step: Some("1".into()),
                        message: "Application resource became Healthy, updating status from Progressing to Healthy.".into(),
                        last_transition_time: Some(at("2026-11-21T01:40:00Z")),
                    },
                    AppStepStatus {
                        application: "payments-prod-1".into(),
                        status: "Waiting".into(),
                        step: Some("2".into()),
                        message: "Application is out of date with the current AppSet generation, setting status to Waiting.".into(),
                        last_transition_time: Some(at("2026-11-21T01:50:00Z")),
                    },
                    AppStepStatus {
                        application: "payments-sandbox".into(),
                        status: "Healthy".into(),
                        step: Some("-1".into()),
                        message: "Application does not match any step".into(),
                        last_transition_time: None,
                    },
                ],
                annotations: [("fleetdeck.io/paused-by".to_string(), "alice".to_string())]
                    .into_iter()
                    .collect(),
            },
        ]
    );

    // A changed set arrives as a complete set again, with its new resourceVersion.
    let mut paused = rolling_set();
    paused["metadata"]["resourceVersion"] = json!("22050");
    paused["spec"]["strategy"]["rollingSync"]["steps"][1]["maxUpdate"] = json!(0);
    hub.fake
        .push(Res::Sets, vec![watch_event("MODIFIED", paused)]);
    let sets = hub
        .until(|e| match e {
            SourceEvent::ApplicationSets { sets, .. }
                if sets.len() == 2 && sets[1].resource_version == "22050" =>
            {
                Some(sets.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(sets[1].steps[1].max_update.as_deref(), Some("0"));
}

#[tokio::test]
async fn malformed_objects_are_skipped_by_name_without_losing_the_others() {
    let mut broken_app = hub_addons();
    broken_app["metadata"]["name"] = json!("broken");
    broken_app["spec"] = json!("destination: prod");
    let mut broken_set = rolling_set();
    broken_set["metadata"]["name"] = json!("half-edited");
    broken_set["spec"]["strategy"]["rollingSync"]["steps"][1] = json!("env=prod");
    let script = Script::new(
        app_list(
            "12345",
            vec![
                payments_prod_1("12001", healthy_status()),
                broken_app,
                checkout_staging(),
            ],
        ),
        set_list(vec![broken_set, plain_set()]),
    );
    let mut hub = start(script, tuning());
    hub.ready().await;

    let apps = hub
        .latest(|e| match e {
            SourceEvent::Applications { apps, .. } => Some(apps.clone()),
            _ => None,
        })
        .await;
    let names: Vec<&str> = apps.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["checkout-staging", "payments-prod-1"]);
    let sets = hub
        .latest(|e| match e {
            SourceEvent::ApplicationSets { sets, .. } => Some(sets.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        sets.len(),
        1,
        "a set with an unreadable step is left out whole"
    );
    assert_eq!(sets[0].name, "addons");

    let health = hub
        .latest(|e| match e {
            SourceEvent::Health(h) if h.last_error.is_some() && h.last_ok.is_some() => {
                Some(h.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(
        health.last_error.as_deref(),
        Some(
            "skipped malformed Application argocd/broken: spec is a string, not an object; \
             skipped malformed ApplicationSet argocd/half-edited: step 2: is a string, not an object"
        )
    );
    assert!(health.errors >= 2, "skipped objects are counted");
    assert_eq!(
        health.status(t0()),
        SourceStatus::Ok,
        "the hub answered; one bad object does not make the source fail"
    );
}

#[tokio::test]
async fn missing_crds_say_so_and_are_retried_slowly_without_blocking_ready() {
    let script = standard()
        .list(
            Res::Apps,
            404,
            status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        )
        // What a real API server answers for a group it does not serve at all.
        .list(Res::Sets, 404, "404 page not found\n".into());
    let mut hub = start(script, tuning());
    hub.ready().await;
    let health = hub
        .health_where(|h| {
            h.last_error.as_deref()
                == Some("Argo CD CRDs not found on the hub (argoproj.io/v1alpha1 applications)")
                || h.last_error.as_deref()
                    == Some(
                        "Argo CD CRDs not found on the hub (argoproj.io/v1alpha1 applicationsets)",
                    )
        })
        .await;
    assert_eq!(health.status(t0()), SourceStatus::Failing);
    assert_eq!(health.last_ok, None);
    assert!(
        !hub.seen.iter().any(|e| matches!(
            e,
            SourceEvent::Applications { .. } | SourceEvent::ApplicationSets { .. }
        )),
        "nothing listed: no empty sets pretending there are no apps"
    );

    // Retried, on the slow CRD schedule (100 ms here), not in a tight loop: the fake
    // notes when each list came, so the spacing is the source's, not the test's polling.
    let started = tokio::time::Instant::now();
    while hub.fake.count(is_list(Res::Apps)) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(started.elapsed() < Duration::from_secs(5), "retried");
    }
    let times = hub.fake.times(is_list(Res::Apps));
    for pair in times.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(100),
            "lists {gap:?} apart, not on the 100 ms schedule: {times:?}"
        );
    }
}

#[tokio::test]
async fn permission_checks_name_pause_and_resume_and_are_rechecked() {
    let denied = "RBAC: clusterrole.rbac.authorization.k8s.io \"argocd-appset-viewer\" does not allow patch on applicationsets.argoproj.io";
    let script = standard().reviews(vec![
        (200, ssar(false, denied)),
        (
            200,
            ssar(
                true,
                "RBAC: allowed by RoleBinding \"oncall-appset-editor/argocd\"",
            ),
        ),
    ]);
    let mut tuning = tuning();
    tuning.permission_recheck = Duration::from_millis(50);
    let mut hub = start(script, tuning);
    let permissions = |want: bool| {
        move |e: &SourceEvent| match e {
            SourceEvent::Permissions {
                source,
                cluster: None,
                checks,
            } if checks.iter().all(|c| c.allowed == want) => {
                assert_eq!(source, "argocd:hub-admin");
                Some(checks.clone())
            }
            _ => None,
        }
    };
    let checks = hub.until(permissions(false)).await;
    assert_eq!(
        checks,
        ["pause-wave", "resume-wave"]
            .map(|action| PermissionCheck {
                action: action.into(),
                checked: "patch applicationsets.argoproj.io".into(),
                namespace: Some(NS.into()),
                allowed: false,
                reason: denied.into(),
            })
            .to_vec()
    );
    let review = hub.fake.reviews.lock().expect("reviews")[0].clone();
    assert_eq!(
        review["spec"]["resourceAttributes"],
        json!({"namespace": NS, "verb": "patch", "group": "argoproj.io", "resource": "applicationsets"})
    );
    assert_eq!(review["kind"], "SelfSubjectAccessReview");

    // The RBAC was fixed: the next check says so.
    let checks = hub.until(permissions(true)).await;
    assert_eq!(
        checks[0].reason,
        "RBAC: allowed by RoleBinding \"oncall-appset-editor/argocd\""
    );
}

#[tokio::test]
async fn a_refused_access_review_reads_as_not_allowed_with_why() {
    let script = standard().reviews(vec![(
        403,
        status(
            403,
            "Forbidden",
            "selfsubjectaccessreviews.authorization.k8s.io is forbidden: User \"bob\" cannot create resource \"selfsubjectaccessreviews\" in API group \"authorization.k8s.io\" at the cluster scope",
        ),
    )]);
    let mut hub = start(script, tuning());
    let checks = hub
        .until(|e| match e {
            SourceEvent::Permissions { checks, .. } => Some(checks.clone()),
            _ => None,
        })
        .await;
    assert_eq!(checks.len(), 2);
    assert!(checks.iter().all(|c| !c.allowed));
    assert!(
        checks[0].reason.starts_with(
            "could not check: the hub refused the access review itself (403 Forbidden: selfsubjectaccessreviews.authorization.k8s.io is forbidden"
        ),
        "{}",
        checks[0].reason
    );
    // The hub's data is unaffected.
    hub.ready().await;
}

#[tokio::test]
async fn a_new_fleet_remaps_apps_and_moves_their_alerts() {
    let mut hub = start(standard(), tuning());
    hub.ready().await;
    let apps = hub
        .latest(|e| match e {
            SourceEvent::Applications { apps, .. } => Some(apps.clone()),
            _ => None,
        })
        .await;
    assert!(apps.iter().all(|a| a.cluster.is_none()), "no fleet yet");
    let unmapped = degraded_key(None, "checkout-staging");
    let first = hub
        .alerts_seen()
        .into_iter()
        .find(|a| a.key == unmapped)
        .expect("alert raised before Ready");
    assert_eq!(first.severity, Severity::Critical);

    hub.targets(fleet()).await;
    let apps = hub
        .apps_where(|apps| find(apps, "checkout-staging").cluster.is_some())
        .await;
    assert_eq!(find(&apps, "payments-prod-1").cluster, Some(id("prod-1")));
    assert_eq!(find(&apps, "hub-addons").cluster, None);
    let gone = hub
        .until(|e| match e {
            SourceEvent::AlertsGone(keys) => Some(keys.clone()),
            _ => None,
        })
        .await;
    assert_eq!(gone, vec![unmapped]);
    let moved = hub
        .alert(
            &degraded_key(Some(&id("staging-1")), "checkout-staging"),
            AlertState::Firing,
        )
        .await;
    assert_eq!(moved.first_seen, first.first_seen);
    assert_eq!(moved.cluster, Some(id("staging-1")));
}

#[tokio::test]
async fn a_wave_command_for_a_missing_set_is_answered_with_why() {
    let hub = start(standard(), tuning());
    let (reply, answer) = tokio::sync::oneshot::channel();
    hub.handle
        .commands
        .send(SourceCommand::PauseWave {
            rollout: "payments".into(),
            wave: 1,
            by: "alice".into(),
            reason: "incident 4711".into(),
            reply,
        })
        .await
        .expect("source running");
    let answer = answer
        .await
        .expect("answered")
        .expect_err("no such set on the hub");
    assert!(
        answer.starts_with("reading ApplicationSet argocd/payments:"),
        "{answer}"
    );
}

#[tokio::test]
async fn a_burst_of_changes_is_sent_as_few_complete_sets() {
    let mut tuning = tuning();
    tuning.flush_interval = Duration::from_millis(300);
    let mut hub = start(standard(), tuning);
    hub.ready().await;
    let before = hub.seen.len();
    // Twenty status updates in a row, as a controller reconciling hard would write them.
    let burst = (0..20)
        .map(|i| {
            watch_event(
                "MODIFIED",
                payments_prod_1(
                    &format!("{}", 12500 + i),
                    degraded_status(&format!(
                        "Deployment \"payments-api\" has {i}/6 ready replicas"
                    )),
                ),
            )
        })
        .collect();
    hub.fake.push(Res::Apps, burst);
    let apps = hub
        .apps_where(|apps| {
            find(apps, "payments-prod-1").message.as_deref()
                == Some("Deployment \"payments-api\" has 19/6 ready replicas")
        })
        .await;
    assert_eq!(apps.len(), 4);
    let sends = hub.seen[before..]
        .iter()
        .filter(|e| matches!(e, SourceEvent::Applications { .. }))
        .count();
    assert!(sends <= 2, "{sends} Applications events for one burst");
}

#[tokio::test]
async fn a_failing_hub_is_retried_with_growing_backoff_not_hammered() {
    // A hub that answers every list with 503: the watcher's Init before each re-list must
    // not reset the backoff, or the hub is called as fast as it fails.
    let unavailable = status(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
    );
    let script =
        standard()
            .list(Res::Apps, 503, unavailable.clone())
            .list(Res::Sets, 503, unavailable);
    let tuning = Tuning {
        retry_min: Duration::from_millis(100),
        retry_max: Duration::from_secs(10),
        ..tuning()
    };
    let mut hub = start(script, tuning);
    hub.ready().await;
    tokio::time::sleep(Duration::from_millis(3100)).await;
    // Waits of 0.1, 0.2, 0.4, 0.8, 1.6 s: at most 6 lists in 3.1 s (kube's own retries of a
    // 503 may add a few), where a reset backoff would make about 30.
    let lists = hub.fake.count(is_list(Res::Apps));
    assert!((3..=12).contains(&lists), "{lists} lists in 3.1 s");
}

// ---- faults mid-run: shown failing, the apps kept, the fresh list taken on recovery ----

fn failing(h: &SourceHealth) -> bool {
    h.last_error_at.is_some() && (h.last_ok.is_none() || h.last_error_at > h.last_ok)
}

/// A hub listing every app, then (after its watch expires) meeting `fault` three times on
/// the re-list before answering with a fresher list of two apps. Returns the health while
/// failing.
async fn hub_survives(
    fault: (u16, String),
    error: impl Fn(&str) -> bool,
    response_timeout: bool,
) -> SourceHealth {
    let fresher = app_list(
        "13000",
        vec![payments_prod_1("12001", healthy_status()), search_prod_2()],
    );
    let mut script = standard();
    if response_timeout {
        // A real API server sends a watch's headers at once; this fake cannot, so its
        // quiet watches end before the client's response timeout instead.
        script.watch_lifetime = Some(Duration::from_secs(20));
    }
    let script = script
        .then_list(Res::Apps, fault.0, fault.1.clone())
        .then_list(Res::Apps, fault.0, fault.1.clone())
        .then_list(Res::Apps, fault.0, fault.1)
        .then_list(Res::Apps, 200, fresher);
    let mut hub = start_with(script, tuning(), Clock::Wall, response_timeout);
    hub.patience = Duration::from_secs(300);
    hub.targets(fleet()).await;
    hub.ready().await;
    hub.apps_where(|apps| apps.len() == 4).await;
    let before = hub
        .latest(|e| match e {
            SourceEvent::Health(h) => Some(h.clone()),
            _ => None,
        })
        .await;

    hub.fake.push(Res::Apps, vec![expired()]);
    let h = hub
        .until(|e| match e {
            SourceEvent::Health(h) if h.last_error.as_deref().is_some_and(&error) => {
                Some(h.clone())
            }
            SourceEvent::Applications { apps, .. } => {
                panic!(
                    "the apps stand while the hub fails, got {} apps",
                    apps.len()
                )
            }
            _ => None,
        })
        .await;
    assert!(failing(&h), "{h:?}");
    assert!(h.errors > before.errors, "{h:?}");

    let fresh = hub
        .until(|e| match e {
            SourceEvent::Applications { apps, .. } => Some(apps.clone()),
            _ => None,
        })
        .await;
    assert_eq!(fresh.len(), 2, "the fresh list");
    hub.health_where(|h| h.last_ok > h.last_error_at).await;
    assert_eq!(
        hub.fake.count(is_list(Res::Apps)),
        5,
        "one list, three failed re-lists, one good"
    );
    h
}

#[tokio::test]
async fn fault_hub_5xx_mid_run_keeps_the_apps_and_recovers() {
    let h = hub_survives(
        (
            503,
            status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
        ),
        |e| {
            e.starts_with("argoproj.io/v1alpha1 applications: ")
                && e.contains("the server is currently unable to handle the request")
        },
        false,
    )
    .await;
    assert_eq!(h.throttles, 0);
}

#[tokio::test]
async fn fault_hub_429_mid_run_counts_throttles_and_recovers() {
    let h = hub_survives(
        (
            429,
            status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
        ),
        |e| e.contains("Too many requests, please try again later."),
        false,
    )
    .await;
    assert!(h.throttles >= 1, "{h:?}");
}

#[tokio::test]
async fn fault_hub_malformed_list_mid_run_keeps_the_apps_and_recovers() {
    let h = hub_survives(
        (200, "<html><body>proxy login</body></html>".into()),
        |e| e.starts_with("argoproj.io/v1alpha1 applications: ") && e.contains("deserializ"),
        false,
    )
    .await;
    assert!(
        h.errors >= 1,
        "an unreadable list counts as an error: {h:?}"
    );
}

#[tokio::test]
async fn fault_hub_token_expired_mid_run_keeps_the_apps_and_recovers() {
    hub_survives(
        (401, status(401, "Unauthorized", "Unauthorized")),
        |e| e.starts_with("argoproj.io/v1alpha1 applications: ") && e.contains("Unauthorized"),
        false,
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_hub_that_hangs_times_out_keeps_the_apps_and_recovers() {
    hub_survives(
        (0, String::new()),
        |e| {
            e.starts_with("argoproj.io/v1alpha1 applications: ")
                && e.contains("no response within 30 s")
        },
        true,
    )
    .await;
}

// -- the hub client as the app builds it (kubeconfig), over loopback --

/// A kubeconfig whose `hub-admin` context points at `server` with a bearer token.
fn kubeconfig_for(server: &str) -> kube::config::Kubeconfig {
    kube::config::Kubeconfig::from_yaml(&format!(
        r#"
apiVersion: v1
kind: Config
clusters:
- name: hub
  cluster:
    server: {server}
users:
- name: oncall
  user:
    token: not-a-real-token
contexts:
- name: hub-admin
  context:
    cluster: hub
    user: oncall
    namespace: argocd
current-context: hub-admin
"#
    ))
    .expect("a valid kubeconfig")
}

/// An Argo CD hub over HTTP: every app and set, quiet watches, reviews allowed.
fn hub_endpoint(seen: &crate::sources::faults::Seen) -> crate::sources::faults::Reply {
    use crate::sources::faults::json as reply;
    let path = seen.path.split('?').next().unwrap_or_default();
    if seen.path.contains("watch=true") {
        return (0, vec![], vec![]);
    }
    match path {
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications" => reply(200, &standard_apps()),
        "/apis/argoproj.io/v1alpha1/namespaces/argocd/applicationsets" => {
            reply(200, &set_list(vec![rolling_set(), plain_set()]))
        }
        "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews" => reply(201, &ssar(true, "")),
        _ => reply(404, "404 page not found"),
    }
}

/// The hub source on the kubeconfig client for `server`, with test timings.
async fn hub_at(server: &str) -> (SourceHandle, mpsc::Receiver<SourceEvent>) {
    hub_at_with(server, tuning()).await
}

async fn hub_at_with(server: &str, tuning: Tuning) -> (SourceHandle, mpsc::Receiver<SourceEvent>) {
    let target = ClusterTarget {
        id: ClusterId::new("hub", "", "hub-admin"),
        arn: String::new(),
        endpoint: None,
        certificate_authority: None,
        production: false,
    };
    let (client, _) = crate::sources::kube::connect::kubeconfig_client(
        &kubeconfig_for(server),
        "hub-admin",
        &target,
    )
    .await
    .expect("a client");
    let (tx, events) = mpsc::channel(256);
    let handle = super::task::spawn(client, hub(), Default::default(), Clock::Wall, tx, tuning);
    (handle, events)
}

async fn next_event<T>(
    events: &mut mpsc::Receiver<SourceEvent>,
    mut pick: impl FnMut(&SourceEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the awaited event comes")
            .expect("the source runs");
        if let Some(found) = pick(&event) {
            return found;
        }
    }
}

#[tokio::test]
async fn fault_hub_refusing_connections_is_shown_ready_and_recovers_when_back() {
    let port = crate::sources::faults::refused_port();
    let (_handle, mut events) = hub_at(&format!("http://127.0.0.1:{port}")).await;
    let h = next_event(&mut events, |e| match e {
        SourceEvent::Health(h) if h.last_error.is_some() => Some(h.clone()),
        _ => None,
    })
    .await;
    let error = h.last_error.clone().unwrap_or_default();
    assert!(error.starts_with("argoproj.io/v1alpha1 "), "{error}");
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(failing(&h));
    next_event(&mut events, |e| {
        matches!(e, SourceEvent::Ready { .. }).then_some(())
    })
    .await;

    let _hub = crate::sources::faults::FaultServer::start_on(port, hub_endpoint).await;
    let apps = next_event(&mut events, |e| match e {
        SourceEvent::Applications { apps, .. } => Some(apps.clone()),
        _ => None,
    })
    .await;
    assert_eq!(apps.len(), 4);
    next_event(&mut events, |e| match e {
        SourceEvent::Health(h) if h.last_ok > h.last_error_at => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn fault_hub_name_that_does_not_resolve_is_shown_and_ready() {
    let (_handle, mut events) = hub_at(&format!(
        "http://{}",
        crate::sources::faults::UNRESOLVABLE_HOST
    ))
    .await;
    let h = next_event(&mut events, |e| match e {
        SourceEvent::Health(h) if h.last_error.is_some() => Some(h.clone()),
        _ => None,
    })
    .await;
    let error = h.last_error.clone().unwrap_or_default();
    assert!(
        error.starts_with("argoproj.io/v1alpha1 ") && error.contains("dns error"),
        "{error}"
    );
    assert!(failing(&h));
    assert!(h.errors >= 1);
    next_event(&mut events, |e| {
        matches!(e, SourceEvent::Ready { .. }).then_some(())
    })
    .await;
}

#[tokio::test]
async fn fault_hub_ending_every_watch_at_once_is_not_hammered() {
    // A proxy in front of the hub that answers every watch with an empty 200.
    let server = crate::sources::faults::FaultServer::start(|seen| {
        if seen.path.contains("watch=true") {
            return crate::sources::faults::json(200, "");
        }
        hub_endpoint(seen)
    })
    .await;
    let (_handle, mut events) = hub_at_with(
        &server.url,
        Tuning {
            watch_spacing: super::WATCH_SPACING,
            ..tuning()
        },
    )
    .await;
    // The complete sets come before Ready.
    let mut listed = 0;
    next_event(&mut events, |e| match e {
        SourceEvent::Applications { apps, .. } => {
            listed = apps.len();
            None
        }
        SourceEvent::Ready { .. } => Some(()),
        _ => None,
    })
    .await;
    assert_eq!(listed, 4, "what was listed shows");
    let start = server.seen().len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let watches = server.seen()[start..]
        .iter()
        .filter(|s| s.path.contains("watch=true"))
        .count();
    // Two collections, one watch a second each: about 4 in 2 s, not hundreds.
    assert!(watches <= 8, "{watches} watch calls in 2 s");
}
