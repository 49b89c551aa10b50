//! Counting what the source asks of the hub.
//!
//! The watcher reconnects, re-lists and retries on its own, out of sight; the only place
//! every call can be seen is under the client. So the hub client is wrapped in a service
//! that counts calls, errors and throttles, and remembers which kinds of call last
//! succeeded. "Succeeded" is ordered by a sequence number, not a time, so that a frozen
//! clock still tells an old failure from a newer success.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use http::{Request, Response};
use kube::client::Body;

use crate::clock::Clock;
use crate::model::Timestamp;

/// The collections the source reads; calls elsewhere (access reviews) count as `Other`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Collection {
    Applications,
    ApplicationSets,
    Other,
}

impl Collection {
    fn of(path: &str) -> Self {
        if path.ends_with("/applications") {
            Self::Applications
        } else if path.ends_with("/applicationsets") {
            Self::ApplicationSets
        } else {
            Self::Other
        }
    }
}

/// Counters since the source started.
#[derive(Clone, Debug, Default)]
pub(super) struct Counts {
    pub calls: u64,
    pub errors: u64,
    pub throttles: u64,
    /// Bumped on every answer; the `ok_seq` entries and failures are ordered by it.
    pub seq: u64,
    /// Sequence number and time of the last successful answer per collection.
    pub ok_seq: [u64; 3],
    pub last_ok: Option<Timestamp>,
    /// When the last watch call on each collection started (or will, once spaced).
    last_watch: [Option<tokio::time::Instant>; 3],
}

impl Counts {
    /// Whether `collection` answered successfully after sequence number `since`.
    pub(super) fn ok_since(&self, collection: Collection, since: u64) -> bool {
        self.ok_seq[collection as usize] > since
    }
}

/// Shared counters; cheap to clone. Also spaces watch calls (see `watch_slot`).
#[derive(Clone, Debug, Default)]
pub(super) struct Meter(Arc<Mutex<Counts>>, std::time::Duration);

impl Meter {
    /// A meter starting watch calls on one collection at least `watch_spacing` apart.
    pub(super) fn new(watch_spacing: std::time::Duration) -> Self {
        Self(Arc::default(), watch_spacing)
    }

    /// How long a watch call on `collection` starting now waits for its slot: watch calls
    /// on one collection start at least the spacing apart, so a hub (or a proxy) that ends
    /// every watch at once is not called in a tight loop.
    fn watch_slot(&self, collection: Collection) -> std::time::Duration {
        let now = tokio::time::Instant::now();
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut counts.last_watch[collection as usize];
        let start = slot.map_or(now, |last| (last + self.1).max(now));
        *slot = Some(start);
        start - now
    }

    /// A copy of the counters now.
    pub(super) fn counts(&self) -> Counts {
        // A poisoned lock only means another thread panicked mid-update; the counters
        // are still good enough to report.
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, collection: Collection, status: Option<http::StatusCode>, now: Timestamp) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        counts.calls += 1;
        counts.seq += 1;
        match status {
            Some(status) if status.is_success() => {
                let seq = counts.seq;
                counts.ok_seq[collection as usize] = seq;
                counts.last_ok = Some(now);
            }
            Some(status) => {
                counts.errors += 1;
                if status == http::StatusCode::TOO_MANY_REQUESTS {
                    counts.throttles += 1;
                }
            }
            None => counts.errors += 1,
        }
    }
}

/// `client` with every call counted in `meter`.
pub(super) fn metered(client: kube::Client, meter: Meter, clock: Clock) -> kube::Client {
    let namespace = client.default_namespace().to_string();
    kube::Client::new(
        Metered {
            client,
            meter,
            clock,
        },
        namespace,
    )
}

/// The counting service under the metered client.
#[derive(Clone)]
struct Metered {
    client: kube::Client,
    meter: Meter,
    clock: Clock,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, kube::Error>> + Send>>;

impl tower::Service<Request<Body>> for Metered {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // The inner client buffers its own requests.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let this = self.clone();
        let collection = Collection::of(request.uri().path());
        let watch = request
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true" || p == "watch=1"));
        Box::pin(async move {
            if watch {
                let wait = this.meter.watch_slot(collection);
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
            }
            let response = this.client.send(request).await;
            let status = response.as_ref().ok().map(Response::status);
            this.meter.record(collection, status, this.clock.now());
            response
        })
    }
}
