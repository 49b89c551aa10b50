//! A fake hub API server for the guard's tests (kube's mock-service pattern): it answers
//! each request with the next scripted response and records what it was asked.

#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use http::{Request, Response};
use kube::client::Body;
use serde_json::Value;

use crate::model::Timestamp;
use crate::sources::kube::testing::{json as respond, status};

/// One request the fake saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query.
    pub uri: String,
    pub content_type: String,
    pub body: Value,
}

impl Seen {
    /// `"GET /apis/..."`, for comparing sequences.
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.uri)
    }
}

pub type Log = Arc<Mutex<Vec<Seen>>>;

/// A client whose API server answers with `script`, in order. An unscripted request
/// gets a 500 naming it, so a test fails with a reason instead of hanging.
pub fn client(script: Vec<(u16, Value)>) -> (kube::Client, Log) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen: Log = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut script: VecDeque<_> = script.into();
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .unwrap()
                .to_bytes();
            let seen = Seen {
                method: parts.method.to_string(),
                uri: parts.uri.to_string(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let line = seen.line();
            log.lock().unwrap().push(seen);
            let (code, body) = script.pop_front().unwrap_or_else(|| {
                (
                    500,
                    status_json(500, "InternalError", &format!("unscripted: {line}")),
                )
            });
            send.send_response(respond(code, &body.to_string()));
        }
    });
    (kube::Client::new(service, "default"), seen)
}

/// The requests seen so far, as `METHOD path?query` lines.
pub fn lines(log: &Log) -> Vec<String> {
    log.lock().unwrap().iter().map(Seen::line).collect()
}

/// The API server's `Status` body for a failure, as JSON.
pub fn status_json(code: u16, reason: &str, message: &str) -> Value {
    serde_json::from_str(&status(code, reason, message)).unwrap()
}

/// 2026-11-21T02:10:00Z plus `secs`.
pub fn at(secs: i64) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-11-21T02:10:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc)
        + chrono::Duration::seconds(secs)
}
