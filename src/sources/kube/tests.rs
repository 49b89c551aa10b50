//! The source end to end against fake API servers, on paused time.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use kube::client::Body;
use tokio::sync::mpsc;
use tower::{BoxError, Service};

use super::connect::ConnectError;
use super::dial::{Dial, NO_ROUTE, Route};
use super::testing::{self, UNAUTHORIZED, VERSION, json};
use super::{SOURCE_NAME, spawn_with};
use crate::clock::Clock;
use crate::config::Kubernetes;
use crate::model::{ClusterId, Connection, SourceEvent, SourceStatus};
use crate::sources::{ClusterTarget, SourceCommand, SourceHandle};

/// An API server that answers `/version` and allows every review, or refuses every
/// token.
#[derive(Clone)]
struct FakeApiServer {
    reject: bool,
}

impl Service<Request<Body>> for FakeApiServer {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let reject = self.reject;
        Box::pin(async move {
            if reject {
                return Ok(json(401, UNAUTHORIZED));
            }
            let path = request.uri().path().to_string();
            let watching = request
                .uri()
                .query()
                .is_some_and(|q| q.contains("watch=true"));
            // The spoke watchers' resources: empty lists, and watches that stay open and
            // quiet, as on a healthy cluster where nothing changes.
            let list_kind = match path.as_str() {
                "/api/v1/nodes" => Some(("v1", "NodeList")),
                "/api/v1/pods" => Some(("v1", "PodList")),
                "/api/v1/events" => Some(("v1", "EventList")),
                "/apis/policy/v1/poddisruptionbudgets" => {
                    Some(("policy/v1", "PodDisruptionBudgetList"))
                }
                "/apis/apps/v1/deployments" => Some(("apps/v1", "DeploymentList")),
                _ => None,
            };
            if let Some((api_version, kind)) = list_kind {
                if watching {
                    return futures::future::pending().await;
                }
                let body = format!(
                    r#"{{"kind":"{kind}","apiVersion":"{api_version}","metadata":{{"resourceVersion":"1"}},"items":[]}}"#
                );
                return Ok(json(200, &body));
            }
            match (request.method().as_str(), path.as_str()) {
                ("GET", "/version") => Ok(json(200, VERSION)),
                ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") => {
                    let body = request.into_body().collect().await?.to_bytes();
                    let mut review: serde_json::Value = serde_json::from_slice(&body)?;
                    review["status"] = serde_json::json!({
                        "allowed": true,
                        "reason": "RBAC: allowed by ClusterRoleBinding \"oncall\" of ClusterRole \"cluster-admin\" to Group \"oncall\"",
                    });
                    Ok(json(201, &review.to_string()))
                }
                _ => Ok(json(
                    404,
                    &testing::status(
                        404,
                        "NotFound",
                        "the server could not find the requested resource",
                    ),
                )),
            }
        })
    }
}

/// Dials fake API servers: clusters named `noroute-*` have no route, `reject-*` refuse
/// the token. Counts the dials per cluster.
#[derive(Default)]
struct FakeDial {
    dials: Mutex<HashMap<ClusterId, usize>>,
}

impl FakeDial {
    fn dials(&self, id: &ClusterId) -> usize {
        self.dials.lock().unwrap().get(id).copied().unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.dials.lock().unwrap().values().sum()
    }
}

impl Dial for FakeDial {
    fn route(&self, target: &ClusterTarget) -> Option<Route> {
        (!target.id.name.starts_with("noroute")).then_some(Route::Native)
    }

    fn dial(
        &self,
        target: &ClusterTarget,
        _route: Route,
    ) -> BoxFuture<'static, Result<(kube::Client, String), ConnectError>> {
        *self
            .dials
            .lock()
            .unwrap()
            .entry(target.id.clone())
            .or_default() += 1;
        let server = FakeApiServer {
            reject: target.id.name.starts_with("reject"),
        };
        let url = target.endpoint.clone().unwrap_or_default();
        Box::pin(async move { Ok((kube::Client::new(server, "default"), url)) })
    }
}

/// The source under test and what it told the app.
struct Harness {
    dial: Arc<FakeDial>,
    handle: SourceHandle,
    events: mpsc::Receiver<SourceEvent>,
    /// The latest connection state of each cluster.
    connection: HashMap<ClusterId, Connection>,
    /// The most clusters ever connected at once.
    most_connected: usize,
    all: Vec<SourceEvent>,
}

impl Harness {
    fn start(pool_size: usize) -> Self {
        let dial = Arc::new(FakeDial::default());
        let settings = Kubernetes {
            pool_size,
            ..Kubernetes::default()
        };
        let (tx, events) = mpsc::channel(1024);
        let clock = Clock::Frozen(chrono::DateTime::UNIX_EPOCH);
        let handle = spawn_with(dial.clone(), &settings, clock, tx);
        Self {
            dial,
            handle,
            events,
            connection: HashMap::new(),
            most_connected: 0,
            all: Vec::new(),
        }
    }

    async fn send(&self, command: SourceCommand) {
        self.handle.commands.send(command).await.unwrap();
    }

    async fn targets(&self, fleet: &[ClusterTarget], interest: &[ClusterTarget]) {
        self.send(SourceCommand::Targets {
            seq: 1,
            fleet: fleet.to_vec(),
            interest: interest.iter().map(|t| t.id.clone()).collect(),
        })
        .await;
    }

    /// Takes every event until none comes for a (virtual) second.
    async fn settle(&mut self) {
        // The watchers coalesce their reports over a second: wait for a longer silence.
        while let Ok(Some(event)) =
            tokio::time::timeout(Duration::from_secs(3), self.events.recv()).await
        {
            if let SourceEvent::KubeSignals { cluster, signals } = &event {
                self.connection
                    .insert(cluster.clone(), signals.connection.clone());
                let connected = self
                    .connection
                    .values()
                    .filter(|c| **c == Connection::Connected)
                    .count();
                self.most_connected = self.most_connected.max(connected);
            }
            self.all.push(event);
        }
    }

    fn state(&self, target: &ClusterTarget) -> Option<&Connection> {
        self.connection.get(&target.id)
    }

    fn count(&self, wanted: &Connection) -> usize {
        self.connection.values().filter(|c| *c == wanted).count()
    }

    fn last_health(&self) -> crate::model::SourceHealth {
        self.all
            .iter()
            .rev()
            .find_map(|e| match e {
                SourceEvent::Health(h) => Some(h.clone()),
                _ => None,
            })
            .unwrap()
    }
}

fn fleet(prefix: &str, n: usize) -> Vec<ClusterTarget> {
    (0..n)
        .map(|i| testing::target("prod", "us-east-1", &format!("{prefix}-{i:02}")))
        .collect()
}

fn pool_full(n: usize) -> Connection {
    Connection::Unavailable {
        reason: format!(
            "not connected: {n} clusters are connected already ([kubernetes] pool_size)"
        ),
    }
}

#[tokio::test(start_paused = true)]
async fn ready_at_once_but_waiting_not_healthy_until_a_cluster_answers() {
    let mut h = Harness::start(20);
    h.settle().await;
    assert_eq!(
        h.all[0],
        SourceEvent::Ready {
            source: SOURCE_NAME.into()
        }
    );
    let health = h.last_health();
    assert_eq!(health.name, "kubernetes");
    assert_eq!((health.calls, health.errors), (0, 0));
    assert_eq!(health.last_ok, None, "no success it has not had");
    assert_eq!(
        health.waiting.as_deref(),
        Some("no cluster of interest yet")
    );
    let now = chrono::DateTime::UNIX_EPOCH;
    assert_ne!(health.status(now), SourceStatus::Failing);
    assert!(!health.is_healthy(now));

    // A cluster of interest that answers is the first success.
    let one = fleet("api", 1);
    h.targets(&one, &one).await;
    h.settle().await;
    assert_eq!(h.state(&one[0]), Some(&Connection::Connected));
    let health = h.last_health();
    assert_eq!(health.waiting, None);
    assert_eq!(health.last_ok, Some(now));
    assert!(health.is_healthy(now));

    // With no cluster of interest left it waits again, its success kept.
    h.targets(&one, &[]).await;
    h.settle().await;
    let health = h.last_health();
    assert_eq!(
        health.waiting.as_deref(),
        Some("no cluster of interest now")
    );
    assert_eq!(health.last_ok, Some(now));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_of_interest_that_never_answered_is_no_success() {
    let mut h = Harness::start(20);
    let bad = fleet("reject", 1);
    h.targets(&bad, &bad).await;
    h.settle().await;
    let health = h.last_health();
    assert_eq!(health.waiting, None);
    assert_eq!(health.last_ok, None);
    assert_eq!(
        health.status(chrono::DateTime::UNIX_EPOCH),
        SourceStatus::Failing,
        "its only cluster fails"
    );
}

#[tokio::test(start_paused = true)]
async fn at_most_pool_size_connected_and_idle_ones_close_at_the_deadline() {
    let mut h = Harness::start(20);
    let all = fleet("api", 25);
    h.targets(&all, &all).await;
    h.settle().await;

    assert_eq!(h.most_connected, 20);
    assert_eq!(h.count(&Connection::Connected), 20);
    assert_eq!(h.count(&pool_full(20)), 5);
    for t in &all[20..] {
        assert_eq!(h.state(t), Some(&pool_full(20)), "{}", t.id);
    }
    assert_eq!(h.dial.total(), 20, "no dial without a slot");
    let permissions = h
        .all
        .iter()
        .filter(|e| {
            matches!(
                e,
                SourceEvent::Permissions {
                    cluster: Some(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(permissions, 20);
    // /version and one review per spoke write, per connection.
    assert_eq!(
        h.last_health().calls,
        20 * (1 + super::permissions::SPOKE_WRITES.len() as u64)
    );

    // Interest drops to five: the waiting ones are idle at once, the open ones keep
    // their watchers until the idle deadline.
    h.targets(&all, &all[..5]).await;
    h.settle().await;
    for t in &all[20..] {
        assert_eq!(h.state(t), Some(&Connection::Idle), "{}", t.id);
    }
    // Each settle waits out 3 s of silence: 3 + 290 + 3 s is still before the deadline.
    tokio::time::advance(Duration::from_secs(290)).await;
    h.settle().await;
    assert_eq!(h.count(&Connection::Connected), 20, "not before 300 s");
    tokio::time::advance(Duration::from_secs(5)).await;
    h.settle().await;
    for t in &all[5..20] {
        assert_eq!(h.state(t), Some(&Connection::Idle), "{}", t.id);
    }
    for t in &all[..5] {
        assert_eq!(h.state(t), Some(&Connection::Connected), "{}", t.id);
    }
    assert!(h.most_connected <= 20);

    // Freed slots: the rest can connect again.
    h.targets(&all, &all[5..25]).await;
    h.settle().await;
    assert_eq!(h.count(&Connection::Connected), 20);
    assert!(h.most_connected <= 20);
}

#[tokio::test(start_paused = true)]
async fn the_focused_cluster_is_always_connected() {
    let mut h = Harness::start(2);
    let all = fleet("api", 3);
    h.targets(&all, &all[..2]).await;
    h.settle().await;
    assert_eq!(h.count(&Connection::Connected), 2);

    h.send(SourceCommand::Focus(Some(all[2].id.clone()))).await;
    h.settle().await;
    assert_eq!(h.state(&all[2]), Some(&Connection::Connected));
    assert_eq!(h.state(&all[0]), Some(&Connection::Connected));
    // The lowest-ranked cluster of interest gave up its slot.
    assert_eq!(h.state(&all[1]), Some(&pool_full(2)));
    assert!(h.most_connected <= 2);
}

#[tokio::test(start_paused = true)]
async fn without_focus_no_cluster_of_interest_pushes_out_another() {
    let mut h = Harness::start(2);
    let all = fleet("api", 3);
    h.targets(&all, &all[..2]).await;
    h.settle().await;
    // A new cluster at the head of the interest list waits for a slot.
    let interest = [all[2].clone(), all[0].clone(), all[1].clone()];
    h.targets(&all, &interest).await;
    h.settle().await;
    assert_eq!(h.state(&all[2]), Some(&pool_full(2)));
    assert_eq!(h.state(&all[0]), Some(&Connection::Connected));
    assert_eq!(h.state(&all[1]), Some(&Connection::Connected));
    assert_eq!(h.dial.total(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_connection_is_reported_and_retried_only_after_a_backoff() {
    let mut h = Harness::start(20);
    let ok = testing::target("prod", "us-east-1", "api-01");
    let bad = testing::target("prod", "us-east-1", "reject-01");
    let both = [ok.clone(), bad.clone()];
    h.targets(&both, &both).await;
    h.settle().await;
    assert_eq!(
        h.state(&bad),
        Some(&Connection::Unavailable {
            reason: "reject-01: API server rejected the credentials (401 Unauthorized)".into()
        })
    );
    assert_eq!(h.state(&ok), Some(&Connection::Connected));
    let health = h.last_health();
    assert_eq!(health.errors, 1);
    assert_eq!(
        health.last_error.as_deref(),
        Some("reject-01: API server rejected the credentials (401 Unauthorized)")
    );
    // One failing cluster of two: the source itself is still healthy.
    assert!(health.last_ok >= health.last_error_at);

    // New targets (the app re-sends them often) do not bring the retry forward.
    for _ in 0..5 {
        h.targets(&both, &both).await;
        tokio::time::advance(Duration::from_secs(15)).await;
        h.settle().await;
    }
    assert_eq!(h.dial.dials(&bad.id), 1, "no retry within 90 s");
    // Credentials problems wait 2 min (± 20 %: at most 144 s; we are at about 152 s)...
    tokio::time::advance(Duration::from_secs(70)).await;
    h.settle().await;
    assert_eq!(h.dial.dials(&bad.id), 2);
    // ...then twice that (at least 192 s; at most about 157 s have passed since).
    tokio::time::advance(Duration::from_secs(100)).await;
    h.settle().await;
    assert_eq!(h.dial.dials(&bad.id), 2, "the second wait is longer");
    assert_eq!(
        h.dial.dials(&ok.id),
        1,
        "a connected cluster is not redialed"
    );
}

#[tokio::test(start_paused = true)]
async fn no_route_is_said_and_leaving_interest_makes_it_idle() {
    let mut h = Harness::start(20);
    let lost = testing::target("prod", "us-east-1", "noroute-01");
    h.targets(std::slice::from_ref(&lost), std::slice::from_ref(&lost))
        .await;
    h.settle().await;
    assert_eq!(
        h.state(&lost),
        Some(&Connection::Unavailable {
            reason: NO_ROUTE.into()
        })
    );
    assert_eq!(NO_ROUTE, "no kubeconfig context and no EKS endpoint for it");
    assert_eq!(h.dial.total(), 0);
    let reports = h
        .all
        .iter()
        .filter(|e| matches!(e, SourceEvent::KubeSignals { .. }))
        .count();
    h.targets(std::slice::from_ref(&lost), std::slice::from_ref(&lost))
        .await;
    h.settle().await;
    let again = h
        .all
        .iter()
        .filter(|e| matches!(e, SourceEvent::KubeSignals { .. }))
        .count();
    assert_eq!(again, reports, "the same state is not reported twice");

    h.targets(std::slice::from_ref(&lost), &[]).await;
    h.settle().await;
    assert_eq!(h.state(&lost), Some(&Connection::Idle));
}

#[tokio::test(start_paused = true)]
async fn a_cluster_leaving_the_fleet_closes_at_once() {
    let mut h = Harness::start(20);
    let all = fleet("api", 2);
    h.targets(&all, &all).await;
    h.settle().await;
    h.targets(&all[..1], &all[..1]).await;
    h.settle().await;
    assert_eq!(h.state(&all[1]), Some(&Connection::Idle));
    assert_eq!(h.state(&all[0]), Some(&Connection::Connected));
}

#[tokio::test(start_paused = true)]
async fn waves_are_refused_and_the_source_exits_with_the_app() {
    let mut h = Harness::start(20);
    let (reply, answer) = tokio::sync::oneshot::channel();
    h.send(SourceCommand::PauseWave {
        rollout: "r".into(),
        wave: 0,
        by: "jo".into(),
        reason: "x".into(),
        reply,
    })
    .await;
    assert_eq!(
        answer.await.unwrap(),
        Err("the Kubernetes source runs no rollouts".into())
    );
    h.settle().await;
    let Harness { handle, events, .. } = h;
    drop(events);
    tokio::time::timeout(Duration::from_secs(5), handle.commands.closed())
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_real_source_without_kubeconfig_or_credentials_says_why_it_cannot_connect() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Kubernetes {
        kubeconfig: Some(dir.path().join("missing")),
        ..Kubernetes::default()
    };
    let (tx, mut events) = mpsc::channel(64);
    let handle = super::spawn(
        settings,
        Default::default(),
        Clock::Frozen(chrono::DateTime::UNIX_EPOCH),
        tx,
    );
    assert_eq!(handle.name, "kubernetes");
    let target = testing::target("prod", "us-east-1", "api-01");
    handle
        .commands
        .send(SourceCommand::Targets {
            seq: 1,
            fleet: vec![target.clone()],
            interest: vec![target.id.clone()],
        })
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(1), events.recv()).await {
        seen.push(event);
    }
    assert!(matches!(seen[0], SourceEvent::Ready { .. }), "{seen:?}");
    let SourceEvent::Health(health) = &seen[1] else {
        panic!("{seen:?}");
    };
    assert_eq!(health.errors, 0, "a missing kubeconfig is not an error");
    let signals = seen
        .iter()
        .find_map(|e| match e {
            SourceEvent::KubeSignals { cluster, signals } if *cluster == target.id => {
                Some(signals.connection.clone())
            }
            _ => None,
        })
        .unwrap();
    assert_eq!(
        signals,
        Connection::Unavailable {
            reason: NO_ROUTE.into()
        }
    );
}

/// A runbook step reaches the cluster's API server through the source: dialed like the
/// watchers, answered with what the server said; a cluster outside the fleet is refused.
#[tokio::test(start_paused = true)]
async fn a_remediation_is_dialed_and_answered_with_the_servers_words() {
    use crate::actions::{Operation, Remediation};
    use crate::sources::remediation::RemediateRequest;
    let mut h = Harness::start(20);
    let all = fleet("api", 1);
    h.targets(&all, &[]).await;
    h.settle().await;
    let ask = |cluster: ClusterId| {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let request = RemediateRequest {
            remediation: Remediation {
                cluster,
                production: true,
                step: None,
                op: Operation::RolloutRestart {
                    namespace: "kube-system".into(),
                    deployment: "coredns".into(),
                },
            },
            dry_run: true,
            progress: None,
            reply,
        };
        (SourceCommand::Remediate(request), answer)
    };
    let (command, answer) = ask(all[0].id.clone());
    h.send(command).await;
    let result = answer.await.unwrap();
    assert_eq!(
        result,
        Err(format!(
            "{}: NotFound (404): the server could not find the requested resource",
            all[0].id.name
        ))
    );
    assert_eq!(h.dial.dials(&all[0].id), 1, "dialed for the write");

    let stranger = ClusterId::new("other", "eu-west-1", "not-ours");
    let (command, answer) = ask(stranger);
    h.send(command).await;
    assert_eq!(
        answer.await.unwrap(),
        Err("not-ours: not a cluster of the fleet (no endpoint known for it)".into())
    );
}

// ---- faults: a failing API server is shown, counted, and reconnected after a backoff ----

/// What `/version` does while a fault is on.
#[derive(Clone)]
enum VersionFault {
    Status(u16, String),
    Hang,
}

/// The fake API server with `/version` failing while `fault` is set.
#[derive(Clone)]
struct FaultyApiServer {
    fault: Arc<Mutex<Option<VersionFault>>>,
}

impl Service<Request<Body>> for FaultyApiServer {
    type Response = Response<Body>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<Body>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let fault = self.fault.lock().unwrap().clone();
        match fault {
            Some(fault) if request.uri().path() == "/version" => Box::pin(async move {
                match fault {
                    VersionFault::Status(code, body) => Ok(json(code, &body)),
                    VersionFault::Hang => futures::future::pending().await,
                }
            }),
            _ => FakeApiServer { reject: false }.call(request),
        }
    }
}

/// Dials [`FaultyApiServer`]s behind the response timeout, as the real dialer does.
struct FaultyDial {
    fault: Arc<Mutex<Option<VersionFault>>>,
}

impl Dial for FaultyDial {
    fn route(&self, _target: &ClusterTarget) -> Option<Route> {
        Some(Route::Native)
    }

    fn dial(
        &self,
        target: &ClusterTarget,
        _route: Route,
    ) -> BoxFuture<'static, Result<(kube::Client, String), ConnectError>> {
        use tower::Layer as _;
        let server = FaultyApiServer {
            fault: self.fault.clone(),
        };
        let service = super::connect::ResponseTimeoutLayer::new(super::connect::RESPONSE_TIMEOUT)
            .layer(server);
        let url = target.endpoint.clone().unwrap_or_default();
        Box::pin(async move { Ok((kube::Client::new(service, "default"), url)) })
    }
}

/// Reads events until `pick` finds one (virtual time; a few minutes at most).
async fn next_where<T>(
    events: &mut mpsc::Receiver<SourceEvent>,
    mut pick: impl FnMut(&SourceEvent) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(900);
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

/// One cluster of interest whose API server fails with `fault`: it shows as unavailable
/// with `reason`, the source as failing (its only cluster fails) with the error counted;
/// once the fault clears it is connected again after its backoff, and the source is well.
async fn kube_survives(fault: VersionFault, reason: &str) -> crate::model::SourceHealth {
    let switch = Arc::new(Mutex::new(Some(fault)));
    let dial = Arc::new(FaultyDial {
        fault: switch.clone(),
    });
    let (tx, mut events) = mpsc::channel(1024);
    let handle = spawn_with(dial, &Kubernetes::default(), Clock::Wall, tx);
    let target = testing::target("prod", "us-east-1", "api-01");
    handle
        .commands
        .send(SourceCommand::Targets {
            seq: 1,
            fleet: vec![target.clone()],
            interest: vec![target.id.clone()],
        })
        .await
        .unwrap();
    let shown = next_where(&mut events, |e| match e {
        SourceEvent::KubeSignals { signals, .. } => match &signals.connection {
            Connection::Unavailable { reason } => Some(reason.clone()),
            _ => None,
        },
        _ => None,
    })
    .await;
    assert_eq!(shown, reason);
    let failing = next_where(&mut events, |e| match e {
        SourceEvent::Health(h) if h.errors > 0 => Some(h.clone()),
        _ => None,
    })
    .await;
    assert_eq!(failing.last_error.as_deref(), Some(reason));
    assert_eq!(failing.errors, 1);
    assert!(failing.last_error_at > failing.last_ok, "{failing:?}");

    *switch.lock().unwrap() = None;
    next_where(&mut events, |e| match e {
        SourceEvent::KubeSignals { cluster, signals }
            if *cluster == target.id && signals.connection == Connection::Connected =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    let well = next_where(&mut events, |e| match e {
        SourceEvent::Health(h) if h.last_ok > h.last_error_at => Some(h.clone()),
        _ => None,
    })
    .await;
    assert_eq!(well.errors, 1, "no further failures");
    failing
}

#[tokio::test(start_paused = true)]
async fn fault_a_throttled_api_server_counts_a_throttle_and_reconnects() {
    let h = kube_survives(
        VersionFault::Status(
            429,
            testing::status(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            ),
        ),
        "api-01: API server answered 429: Too many requests, please try again later.",
    )
    .await;
    assert_eq!(h.throttles, 1);
}

#[tokio::test(start_paused = true)]
async fn fault_a_5xx_api_server_is_shown_and_reconnects() {
    let h = kube_survives(
        VersionFault::Status(
            503,
            testing::status(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
            ),
        ),
        "api-01: API server answered 503: the server is currently unable to handle the request",
    )
    .await;
    assert_eq!(h.throttles, 0);
}

#[tokio::test(start_paused = true)]
async fn fault_a_hung_api_server_times_out_and_reconnects() {
    let target = testing::target("prod", "us-east-1", "api-01");
    let url = target.endpoint.clone().unwrap();
    kube_survives(
        VersionFault::Hang,
        &format!("api-01: timed out connecting to {url}"),
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn fault_a_malformed_version_answer_is_shown_and_reconnects() {
    let target = testing::target("prod", "us-east-1", "api-01");
    let url = target.endpoint.clone().unwrap();
    kube_survives(
        VersionFault::Status(200, "<html>proxy login</html>".into()),
        &format!("api-01: unreadable answer from {url}: expected value at line 1 column 1"),
    )
    .await;
}
