//! A scripted Kubernetes API server behind kube's mock-service pattern
//! (`tower_test::mock::pair` + `kube::Client::new`), answering lists with JSON bodies and
//! watches with newline-delimited watch events, as a real API server does.

use std::collections::{HashMap, VecDeque};
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{Value, json};
use tokio::time::Instant;
use tower_test::mock;

/// One answer to one request.
#[derive(Clone, Debug)]
pub(super) enum Reply {
    /// 200 with this JSON body (a list).
    Json(Value),
    /// 200 with these watch events, one JSON document a line; then the stream ends, as
    /// when the API server's watch timeout elapses.
    Stream(Vec<Value>),
    /// An error status with the API server's `Status` body.
    Status(u16, Value),
    /// The transport gave up: what a client read timeout looks like to kube.
    Timeout,
    /// `Reply` after this long (tokio time).
    After(Duration, Box<Reply>),
}

/// A request the server saw.
#[derive(Clone, Debug)]
pub(super) struct Seen {
    pub path: String,
    pub query: String,
    pub watch: bool,
    pub at: Instant,
}

type Scripts = HashMap<(String, bool), VecDeque<Reply>>;

/// The scripted server: each path has a script for lists and one for watches. A list
/// script's last reply repeats (a refusal keeps being a refusal); a watch with no reply
/// left stays open and silent, as a quiet cluster's does. Unscripted lists are empty.
#[derive(Clone, Default)]
pub(super) struct MockApi {
    scripts: Arc<Mutex<Scripts>>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl MockApi {
    /// The server and a client talking to it.
    pub(super) fn start() -> (Self, kube::Client) {
        let api = Self::default();
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        tokio::spawn(api.clone().serve(handle));
        (api, kube::Client::new(service, "default"))
    }

    /// Appends replies to the list script of `path`.
    pub(super) fn lists(&self, path: &str, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script(path, false, replies)
    }

    /// Appends replies to the watch script of `path`.
    pub(super) fn watches(&self, path: &str, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script(path, true, replies)
    }

    fn script(&self, path: &str, watch: bool, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.scripts
            .lock()
            .expect("scripts")
            .entry((path.to_string(), watch))
            .or_default()
            .extend(replies);
        self
    }

    /// The requests made to `path`, lists or watches.
    pub(super) fn seen(&self, path: &str, watch: bool) -> Vec<Seen> {
        self.log
            .lock()
            .expect("log")
            .iter()
            .filter(|s| s.path == path && s.watch == watch)
            .cloned()
            .collect()
    }

    async fn serve(self, handle: mock::Handle<Request<Body>, Response<Body>>) {
        let mut handle = pin!(handle);
        // Open, silent watches: kept so their connections are not dropped.
        let mut open = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let path = request.uri().path().to_string();
            let query = request.uri().query().unwrap_or_default().to_string();
            let watch = query.split('&').any(|p| p == "watch=true");
            self.log.lock().expect("log").push(Seen {
                path: path.clone(),
                query,
                watch,
                at: Instant::now(),
            });
            let reply = {
                let mut scripts = self.scripts.lock().expect("scripts");
                let script = scripts.get_mut(&(path.clone(), watch));
                match script {
                    Some(s) if s.len() > 1 || (watch && !s.is_empty()) => s.pop_front(),
                    Some(s) => s.front().cloned(),
                    None => None,
                }
            };
            match (reply, watch) {
                (Some(reply), _) => {
                    tokio::spawn(answer(reply, send));
                }
                (None, true) => open.push(send),
                (None, false) => {
                    tokio::spawn(answer(Reply::Json(list("List", "v1", "1", vec![])), send));
                }
            }
        }
    }
}

async fn answer(mut reply: Reply, send: mock::SendResponse<Response<Body>>) {
    while let Reply::After(delay, inner) = reply {
        tokio::time::sleep(delay).await;
        reply = *inner;
    }
    let json = |status: u16, body: Vec<u8>| {
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = StatusCode::from_u16(status).expect("status code");
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            "application/json".parse().expect("header"),
        );
        response
    };
    match reply {
        Reply::Json(body) => send.send_response(json(200, body.to_string().into_bytes())),
        Reply::Stream(events) => {
            let mut body = String::new();
            for e in events {
                body.push_str(&e.to_string());
                body.push('\n');
            }
            send.send_response(json(200, body.into_bytes()));
        }
        Reply::Status(code, body) => send.send_response(json(code, body.to_string().into_bytes())),
        Reply::Timeout => send.send_error(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "operation timed out",
        )),
        Reply::After(..) => unreachable!("unwrapped above"),
    }
}

/// A list response: `kind` is the list kind (`PodList`), items without kind/apiVersion,
/// as the API server sends them.
pub(super) fn list(
    kind: &str,
    api_version: &str,
    resource_version: &str,
    items: Vec<Value>,
) -> Value {
    json!({
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version},
        "items": items,
    })
}

/// A watch event of `kind`/`api_version` around `object`.
pub(super) fn event(type_: &str, kind: &str, api_version: &str, mut object: Value) -> Value {
    object["kind"] = json!(kind);
    object["apiVersion"] = json!(api_version);
    json!({"type": type_, "object": object})
}

/// A BOOKMARK watch event.
pub(super) fn bookmark(kind: &str, api_version: &str, resource_version: &str) -> Value {
    json!({"type": "BOOKMARK", "object": {
        "kind": kind, "apiVersion": api_version,
        "metadata": {"resourceVersion": resource_version}
    }})
}

/// The ERROR watch event an API server sends when the watch's resourceVersion fell out
/// of its window.
pub(super) fn expired() -> Value {
    json!({"type": "ERROR", "object": {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "too old resource version: 1 (2)", "reason": "Expired", "code": 410
    }})
}

/// The `Status` body of a refused list.
pub(super) fn forbidden(resource: &str, group: &str) -> Reply {
    Reply::Status(
        403,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": format!(
                "{resource} is forbidden: User \"x\" cannot list resource \"{resource}\" in API group \"{group}\" at the cluster scope"
            ),
            "reason": "Forbidden",
            "details": {"kind": resource, "group": group},
            "code": 403
        }),
    )
}

/// The `Status` body of a rejected token.
pub(super) fn unauthorized() -> Reply {
    Reply::Status(
        401,
        json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "Unauthorized", "reason": "Unauthorized", "code": 401
        }),
    )
}
