//! A stand-in Kubernetes API server on loopback, for tests of fleetdeck's Kubernetes and
//! Argo CD clients, in process or through the `fleetdeck` binary (a kubeconfig whose
//! `server:` is `http://127.0.0.1:PORT`, see [`Kubeconfig`]).
//!
//! No real API server can run here, so this one keeps the real one's semantics where
//! fleetdeck depends on them:
//!
//! - a generic object store for any served type (core, grouped, namespaced,
//!   cluster-scoped, custom resources), one global increasing `resourceVersion`, server
//!   set `uid`, `creationTimestamp`, `generation`, `managedFields` (manager from
//!   `fieldManager`, else the User-Agent's program name), finalizers, the `status` and
//!   `scale` subresources and `pods/eviction` (PodDisruptionBudgets honoured);
//! - GET, LIST (`labelSelector`, `fieldSelector` with each type's real field labels,
//!   `limit`/`continue` pages at one resourceVersion, `resourceVersionMatch=Exact`),
//!   WATCH (`resourceVersion`, `allowWatchBookmarks`, `sendInitialEvents`,
//!   `timeoutSeconds`; newline-delimited events; BOOKMARKs every
//!   [`Builder::bookmark_interval`] and just before the timeout; `410 Gone` as an `ERROR`
//!   event once the bounded history no longer reaches back);
//! - POST (409 AlreadyExists, `generateName`), PUT (409 Conflict on a stale
//!   `resourceVersion`; custom resources require one), PATCH (merge, JSON and strategic
//!   merge, which is refused for custom resources; a `metadata.resourceVersion` in the
//!   patch is a precondition), DELETE (preconditions, finalizers), `dryRun=All`;
//! - errors as `Status` bodies worded as the API server words them;
//! - `SelfSubjectAccessReview` (allowed unless a test denies it; a denied verb is also
//!   refused with 403 on the real request), discovery (`/version`, `/api`, `/apis`, the
//!   group-version resource lists).
//!
//! Known simplifications: strategic merge patch merges lists whole (no merge keys);
//! server-side apply is a merge patch that may create; `managedFields` record who
//! wrote, with an empty `fieldsV1`; deleted pods go at once (no kubelet to wait for);
//! core and `events.k8s.io` Events are stored apart; no defaulting or schema validation.
//!
//! The server runs on a thread of its own (its own runtime), so it serves sync tests,
//! async tests and tests with a paused tokio clock alike; it stops when dropped.
#![allow(dead_code)]
#![allow(clippy::unwrap_used)]

pub mod argocd;
mod selectors;
pub mod spoke;
mod store;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::Response;
use hyper::body::{Bytes, Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

pub use selectors::{FieldSelector, LabelSelector};
pub use store::{ApiError, ResourceType};
use store::{DeleteOptions, ListOptions, Store, WriteOptions, bookmark_line};

/// The user the server says the client is, in RBAC messages.
pub const DEFAULT_USER: &str = "oncall";
/// `GET /version`, as EKS 1.33 answers it.
pub const EKS_VERSION: &str = "v1.33.4-eks-e386d34";

/// One request the server received.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string.
    pub query: String,
    /// The query, decoded, in order.
    pub params: Vec<(String, String)>,
    pub content_type: String,
    pub user_agent: Option<String>,
    pub authorization: Option<String>,
    /// The body as JSON; `Null` when empty or not JSON.
    pub body: Value,
    pub raw_body: String,
}

impl Request {
    /// A query parameter's decoded value.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `PATCH /apis/...?fieldManager=fleetdeck`, for messages and comparisons.
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }

    /// A request that changes something (a SelfSubjectAccessReview does not).
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
            && !self.path.ends_with("/selfsubjectaccessreviews")
    }

    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch"), Some("true" | "1"))
    }
}

/// A scripted failure: matching requests are answered with it instead.
#[derive(Clone, Debug)]
pub struct Failure {
    method: Option<String>,
    /// `plural` or `plural.group`.
    resource: Option<String>,
    name: Option<String>,
    path_prefix: Option<String>,
    watch: Option<bool>,
    /// How many more requests it answers; `None`: all.
    times: Option<usize>,
    code: u16,
    /// The `Status` body, or a raw body with its content type.
    body: FailureBody,
}

#[derive(Clone, Debug)]
enum FailureBody {
    Status(ApiError),
    Raw { content_type: String, body: String },
}

impl Failure {
    /// A failure answered with a `Status` body.
    pub fn status(code: u16, reason: &str, message: &str) -> Self {
        Self {
            method: None,
            resource: None,
            name: None,
            path_prefix: None,
            watch: None,
            times: None,
            code,
            body: FailureBody::Status(ApiError::new(code, reason, message)),
        }
    }

    /// A failure with a body that is not a `Status` (a proxy's HTML page).
    pub fn raw(code: u16, content_type: &str, body: &str) -> Self {
        Self {
            body: FailureBody::Raw {
                content_type: content_type.into(),
                body: body.into(),
            },
            ..Self::status(code, "", "")
        }
    }

    /// Only requests with this method (`GET`, `PATCH`...).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_ascii_uppercase());
        self
    }

    /// Only requests on this resource: `pods`, `applicationsets.argoproj.io`.
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// Only requests on the object of this name.
    pub fn named(mut self, name: &str) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Only requests whose path starts with this (e.g. `/version`).
    pub fn path(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.into());
        self
    }

    /// Only watches (`true`) or only non-watch requests (`false`).
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Only the next `n` matching requests.
    pub fn times(mut self, n: usize) -> Self {
        self.times = Some(n);
        self
    }

    fn matches(&self, request: &Request, target: Option<&Target>) -> bool {
        self.times != Some(0)
            && self.method.as_deref().is_none_or(|m| m == request.method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| request.path.starts_with(p))
            && self.watch.is_none_or(|w| w == request.is_watch())
            && self
                .resource
                .as_deref()
                .is_none_or(|r| target.is_some_and(|t| t.ty.qualified() == r || t.ty.plural == r))
            && self
                .name
                .as_deref()
                .is_none_or(|n| target.and_then(|t| t.name.as_deref()) == Some(n))
    }

    fn response(&self) -> Response<Body> {
        match &self.body {
            FailureBody::Status(error) => json_response(self.code, &error.status()),
            FailureBody::Raw { content_type, body } => Response::builder()
                .status(self.code)
                .header("content-type", content_type.as_str())
                .body(full(body.clone().into_bytes()))
                .unwrap(),
        }
    }
}

/// An RBAC denial: the review says not allowed and the request itself gets 403.
#[derive(Clone, Debug)]
struct Deny {
    verb: String,
    group: String,
    /// `resource` or `resource/subresource`.
    resource: String,
    namespace: Option<String>,
}

impl Deny {
    fn covers(&self, verb: &str, group: &str, resource: &str, namespace: Option<&str>) -> bool {
        (self.verb == "*" || self.verb == verb)
            && self.group == group
            && (self.resource == "*" || self.resource == resource)
            && self
                .namespace
                .as_deref()
                .is_none_or(|ns| Some(ns) == namespace)
    }
}

struct State {
    store: Store,
    log: Vec<Request>,
    failures: Vec<Failure>,
    denies: Vec<Deny>,
    token: Option<String>,
}

struct Shared {
    state: Mutex<State>,
    bookmark_every: Duration,
    user: String,
    version: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock leaves usable state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How to start a stand-in.
pub struct Builder {
    bookmark_every: Duration,
    history_limit: usize,
    user: String,
    version: String,
    token: Option<String>,
}

impl Builder {
    /// How often an idle watch gets a BOOKMARK (the real server: about a minute).
    pub fn bookmark_interval(mut self, every: Duration) -> Self {
        self.bookmark_every = every;
        self
    }

    /// How many changes the history keeps; a watch resuming from before them gets 410.
    pub fn history_limit(mut self, changes: usize) -> Self {
        self.history_limit = changes;
        self
    }

    /// The user RBAC messages name.
    pub fn user(mut self, user: &str) -> Self {
        self.user = user.into();
        self
    }

    /// The `gitVersion` `/version` answers.
    pub fn version(mut self, git_version: &str) -> Self {
        self.version = git_version.into();
        self
    }

    /// Requires `Authorization: Bearer TOKEN`; anything else is 401.
    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn start(self) -> KubeServer {
        let mut store = Store::new(store::default_types(), self.history_limit);
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            store.ensure_namespace(ns);
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                store,
                log: Vec::new(),
                failures: Vec::new(),
                denies: Vec::new(),
                token: self.token,
            }),
            bookmark_every: self.bookmark_every,
            user: self.user,
            version: self.version,
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("its address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = shared.clone();
        let thread = std::thread::Builder::new()
            .name(format!("kube-server-{}", addr.port()))
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the stand-in's runtime");
                runtime.block_on(serve(listener, serving, stopped));
                // Dropping the runtime drops every connection and open watch.
            })
            .expect("the stand-in's thread");
        KubeServer {
            addr,
            shared,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

/// A running stand-in API server; stopped when dropped.
pub struct KubeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for KubeServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl KubeServer {
    /// A server with the defaults: bookmarks every second, 1000 changes of history.
    pub fn start() -> Self {
        Self::builder().start()
    }

    pub fn builder() -> Builder {
        Builder {
            bookmark_every: Duration::from_secs(1),
            history_limit: 1000,
            user: DEFAULT_USER.into(),
            version: EKS_VERSION.into(),
            token: None,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// A kube client for the test's own calls (User-Agent `kube-server-test`).
    pub fn client(&self) -> kube::Client {
        self.client_in("default")
    }

    /// A kube client whose default namespace is `namespace`.
    pub fn client_in(&self, namespace: &str) -> kube::Client {
        fleetdeck::sources::kube::connect::install_crypto_provider();
        let mut config = kube::Config::new(self.url().parse().expect("a URL"));
        config.default_namespace = namespace.into();
        config.headers.push((
            http::header::USER_AGENT,
            http::HeaderValue::from_static("kube-server-test"),
        ));
        if let Some(token) = self.lock().token.clone() {
            config.auth_info.token = Some(token.into());
        }
        kube::Client::try_from(config).expect("a client for the stand-in")
    }

    /// A kubeconfig (YAML) with one context `context` on this server.
    pub fn kubeconfig(&self, context: &str, namespace: Option<&str>) -> String {
        Kubeconfig::new().context(context, self, namespace).yaml()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.lock()
    }

    fn type_named(&self, resource: &str) -> ResourceType {
        self.lock()
            .store
            .type_named(resource)
            .cloned()
            .unwrap_or_else(|| panic!("the stand-in does not serve {resource}"))
    }

    // ---- the test's hand on the store: each write fires the watch events ----

    /// Creates or replaces `object` whole, status included, without preconditions, as a
    /// controller would; its type comes from `apiVersion` and `kind`, its namespace is
    /// created if missing. Answers the stored object (with its resourceVersion).
    pub fn put(&self, object: Value) -> Value {
        let mut state = self.lock();
        let ty = state.store.type_of(&object).cloned().unwrap_or_else(|| {
            panic!(
                "the stand-in serves no {} {}",
                object["apiVersion"], object["kind"]
            )
        });
        state.store.put(&ty, object)
    }

    /// Puts every object, in order.
    pub fn put_all(&self, objects: impl IntoIterator<Item = Value>) {
        for object in objects {
            self.put(object);
        }
    }

    /// The object, if it exists. `resource` is `pods` or `plural.group`.
    pub fn get(&self, resource: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let ty = self.type_named(resource);
        self.lock()
            .store
            .get(&ty, namespace.unwrap_or_default(), name)
            .cloned()
    }

    /// Every object of a type, in `namespace` or in all.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> Vec<Value> {
        let ty = self.type_named(resource);
        self.lock().store.all(&ty, namespace)
    }

    /// Merges `patch` (a JSON merge patch) into the object, status included, as a
    /// controller would; panics if there is no such object.
    pub fn patch(
        &self,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        patch: Value,
    ) -> Value {
        let mut object = self
            .get(resource, namespace, name)
            .unwrap_or_else(|| panic!("no {resource} {namespace:?}/{name} to patch"));
        json_patch::merge(&mut object, &patch);
        self.put(object)
    }

    /// Removes the object at once, finalizers or not; whether it existed.
    pub fn delete(&self, resource: &str, namespace: Option<&str>, name: &str) -> bool {
        let ty = self.type_named(resource);
        self.lock()
            .store
            .remove(&ty, namespace.unwrap_or_default(), name)
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().store.resource_version()
    }

    /// Serves one more type (another CRD).
    pub fn register(&self, ty: ResourceType) {
        self.lock().store.register(ty);
    }

    /// Stops serving a type (`applications.argoproj.io`: Argo CD not installed).
    pub fn unregister(&self, resource: &str) {
        let ty = self.type_named(resource);
        self.lock().store.unregister(&ty.key());
    }

    /// Forgets the history: a watch resuming from before now gets 410 Gone.
    pub fn compact(&self) {
        self.lock().store.compact();
    }

    /// Ends every open watch now.
    pub fn close_watches(&self) {
        self.lock().store.close_watches();
    }

    /// How many watches are open.
    pub fn open_watches(&self) -> usize {
        self.lock().store.watcher_count()
    }

    // ---- failures and RBAC ----

    /// Answers matching requests with `failure` (see [`Failure`]'s filters).
    pub fn fail(&self, failure: Failure) {
        self.lock().failures.push(failure);
    }

    pub fn clear_failures(&self) {
        self.lock().failures.clear();
    }

    /// Denies `verb` on `resource` (`applicationsets.argoproj.io`, `pods/eviction`,
    /// `*`) in `namespace` (`None`: everywhere): access reviews say not allowed and the
    /// request itself is refused with 403.
    pub fn deny(&self, verb: &str, resource: &str, namespace: Option<&str>) {
        let (resource, sub) = match resource.split_once('/') {
            Some((r, s)) => (r, Some(s)),
            None => (resource, None),
        };
        let (plural, group) = resource.split_once('.').unwrap_or((resource, ""));
        self.lock().denies.push(Deny {
            verb: verb.into(),
            group: group.into(),
            resource: match sub {
                Some(sub) => format!("{plural}/{sub}"),
                None => plural.into(),
            },
            namespace: namespace.map(str::to_string),
        });
    }

    pub fn allow_all(&self) {
        self.lock().denies.clear();
    }

    // ---- the request log ----

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    /// The requests that change something.
    pub fn writes(&self) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(Request::is_write)
            .collect()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Waits (blocking the thread) until a request matches, up to `timeout`.
    pub fn wait_for_request(
        &self,
        timeout: Duration,
        pick: impl Fn(&Request) -> bool,
    ) -> Option<Request> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.requests().into_iter().find(|r| pick(r)) {
                return Some(found);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (in an async test) until a request matches, up to `timeout` of real time.
    pub async fn until_request(
        &self,
        timeout: Duration,
        pick: impl Fn(&Request) -> bool,
    ) -> Option<Request> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self.requests().into_iter().find(|r| pick(r)) {
                return Some(found);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A kubeconfig file for one or more stand-ins, one context each, with a token user.
#[derive(Default)]
pub struct Kubeconfig {
    contexts: Vec<(String, String, Option<String>, Option<String>)>,
}

impl Kubeconfig {
    pub fn new() -> Self {
        Self::default()
    }

    /// Context `name` (an EKS ARN for a spoke, so fleetdeck finds it by the ARN) on
    /// `server`, with `namespace` as its default.
    pub fn context(mut self, name: &str, server: &KubeServer, namespace: Option<&str>) -> Self {
        let token = server.lock().token.clone();
        self.contexts.push((
            name.into(),
            server.url(),
            namespace.map(str::to_string),
            token,
        ));
        self
    }

    /// The file's YAML; the first context is the current one.
    pub fn yaml(&self) -> String {
        let quote = |s: &str| serde_json::to_string(s).unwrap();
        let mut clusters = String::new();
        let mut users = String::new();
        let mut contexts = String::new();
        for (i, (name, url, namespace, token)) in self.contexts.iter().enumerate() {
            clusters.push_str(&format!(
                "- name: {}\n  cluster:\n    server: {}\n",
                quote(name),
                quote(url)
            ));
            users.push_str(&format!(
                "- name: user-{i}\n  user:\n    token: {}\n",
                quote(token.as_deref().unwrap_or("stand-in-token"))
            ));
            contexts.push_str(&format!(
                "- name: {}\n  context:\n    cluster: {}\n    user: user-{i}\n",
                quote(name),
                quote(name)
            ));
            if let Some(ns) = namespace {
                contexts.push_str(&format!("    namespace: {}\n", quote(ns)));
            }
        }
        let current = self
            .contexts
            .first()
            .map(|c| quote(&c.0))
            .unwrap_or_else(|| "\"\"".into());
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}current-context: {current}\n"
        )
    }

    /// Writes the file to `path`.
    pub fn write(&self, path: &Path) {
        std::fs::write(path, self.yaml()).expect("writing the kubeconfig");
    }
}

// ---- HTTP ----

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn json_response(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(full(body.to_string().into_bytes()))
        .unwrap()
}

fn error_response(error: &ApiError) -> Response<Body> {
    json_response(error.code, &error.status())
}

async fn serve(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).expect("a tokio listener");
    loop {
        let (stream, _) = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(_) => continue,
            },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(shared.clone(), request));
            // A client going away mid-request is its business.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `%XX` and `+` decoding of one query component.
fn decode(component: &str) -> String {
    let bytes = component.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(p), String::new()),
        })
        .collect()
}

async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = request.into_parts();
    let bytes = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let header = |name: http::header::HeaderName| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let query = parts.uri.query().unwrap_or_default().to_string();
    let raw_body = String::from_utf8_lossy(&bytes).into_owned();
    let request = Request {
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        params: parse_query(&query),
        query,
        content_type: header(http::header::CONTENT_TYPE).unwrap_or_default(),
        user_agent: header(http::header::USER_AGENT),
        authorization: header(http::header::AUTHORIZATION),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        raw_body,
    };
    shared.lock().log.push(request.clone());
    Ok(respond(&shared, &request))
}

/// Where a resource request points.
#[derive(Clone, Debug)]
struct Target {
    ty: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

impl Target {
    /// The Kubernetes verb for `method` on this target.
    fn verb(&self, request: &Request) -> &'static str {
        match (request.method.as_str(), self.name.is_some()) {
            ("GET", true) => "get",
            ("GET", false) if request.is_watch() => "watch",
            ("GET", false) => "list",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "delete",
            ("DELETE", false) => "deletecollection",
            _ => "unknown",
        }
    }

    fn resource(&self) -> String {
        match &self.subresource {
            Some(sub) => format!("{}/{sub}", self.ty.plural),
            None => self.ty.plural.clone(),
        }
    }
}

/// A resource path: `(group, version, rest)` for `/api/v1/...` and `/apis/G/V/...`.
fn split_api_path(segments: &[&str]) -> Option<(String, String, Vec<String>)> {
    match segments {
        ["api", version, rest @ ..] => Some((
            String::new(),
            version.to_string(),
            rest.iter().map(|s| s.to_string()).collect(),
        )),
        ["apis", group, version, rest @ ..] => Some((
            group.to_string(),
            version.to_string(),
            rest.iter().map(|s| s.to_string()).collect(),
        )),
        _ => None,
    }
}

fn resolve(store: &Store, group: &str, version: &str, rest: &[String]) -> Option<Target> {
    let find = |plural: &str| store.type_at(group, version, plural).cloned();
    let target =
        |ty: ResourceType, ns: Option<&String>, name: Option<&String>, sub: Option<&String>| {
            Some(Target {
                ty,
                namespace: ns.cloned(),
                name: name.cloned(),
                subresource: sub.cloned(),
            })
        };
    match rest {
        // namespaces/NS/PLURAL[/NAME[/SUB]] when PLURAL is a namespaced type.
        [first, ns, plural, tail @ ..] if first == "namespaces" && tail.len() <= 2 => {
            match find(plural).filter(|t| t.namespaced) {
                Some(ty) => target(ty, Some(ns), tail.first(), tail.get(1)),
                // namespaces/NAME/status and the like.
                None if tail.is_empty() => {
                    let ty = find("namespaces")?;
                    target(ty, None, Some(ns), Some(plural))
                }
                None => None,
            }
        }
        [plural] => target(find(plural)?, None, None, None),
        [plural, name] => target(
            find(plural).filter(|t| !t.namespaced)?,
            None,
            Some(name),
            None,
        ),
        [plural, name, sub] => target(
            find(plural).filter(|t| !t.namespaced)?,
            None,
            Some(name),
            Some(sub),
        ),
        _ => None,
    }
}

fn respond(shared: &Arc<Shared>, request: &Request) -> Response<Body> {
    let mut state = shared.lock();
    if let Some(token) = &state.token
        && request.authorization.as_deref() != Some(format!("Bearer {token}").as_str())
    {
        return json_response(
            401,
            &json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}),
        );
    }
    let segments: Vec<&str> = request.path.split('/').filter(|s| !s.is_empty()).collect();
    let target =
        split_api_path(&segments).and_then(|(g, v, rest)| resolve(&state.store, &g, &v, &rest));
    if let Some(i) = state
        .failures
        .iter()
        .position(|f| f.matches(request, target.as_ref()))
    {
        let failure = &mut state.failures[i];
        if let Some(n) = failure.times.as_mut() {
            *n -= 1;
        }
        return failure.response();
    }
    match (request.method.as_str(), segments.as_slice()) {
        ("GET", ["version"]) => return json_response(200, &version(&shared.version)),
        ("GET", ["healthz" | "readyz" | "livez"]) => {
            return Response::builder()
                .status(200)
                .header("content-type", "text/plain; charset=utf-8")
                .body(full("ok"))
                .unwrap();
        }
        ("GET", ["api"]) => {
            return json_response(
                200,
                &json!({
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "10.0.0.1:443"}],
                }),
            );
        }
        ("GET", ["apis"]) => return json_response(200, &group_list(state.store.types())),
        ("GET", ["apis", group]) => {
            return match group_list(state.store.types())["groups"]
                .as_array()
                .and_then(|g| g.iter().find(|g| g["name"] == *group))
            {
                Some(found) => {
                    let mut found = found.clone();
                    found["kind"] = json!("APIGroup");
                    found["apiVersion"] = json!("v1");
                    json_response(200, &found)
                }
                None => error_response(&ApiError::no_such_resource()),
            };
        }
        ("GET", ["api", version]) => {
            return resource_list(state.store.types(), "", version);
        }
        ("GET", ["apis", group, version]) => {
            return resource_list(state.store.types(), group, version);
        }
        (
            "POST",
            [
                "apis",
                "authorization.k8s.io",
                "v1",
                "selfsubjectaccessreviews",
            ],
        ) => {
            return access_review(&state, &shared.user, &request.body);
        }
        _ => {}
    }
    let Some(target) = target else {
        return error_response(&ApiError::no_such_resource());
    };
    let verb = target.verb(request);
    if state.denies.iter().any(|d| {
        d.covers(
            verb,
            &target.ty.group,
            &target.resource(),
            target.namespace.as_deref(),
        )
    }) {
        return error_response(&forbidden(&shared.user, verb, &target));
    }
    let namespace = target.namespace.clone().unwrap_or_default();
    let opts = WriteOptions {
        dry_run: request.param("dryRun") == Some("All"),
        field_manager: request.param("fieldManager").map(str::to_string),
        user_agent: request.user_agent.clone(),
        subresource: target.subresource.clone(),
    };
    let ty = &target.ty;
    let result = match (
        request.method.as_str(),
        &target.name,
        target.subresource.as_deref(),
    ) {
        ("GET", None, None) if request.is_watch() => {
            drop(state);
            return watch(shared, request, &target);
        }
        ("GET", None, None) => list(&state.store, request, &target),
        ("GET", Some(name), None | Some("status")) => state
            .store
            .get(ty, &namespace, name)
            .cloned()
            .map(|o| (200, o))
            .ok_or_else(|| ApiError::not_found(ty, name)),
        ("GET", Some(name), Some("scale")) if ty.scale_subresource => state
            .store
            .get(ty, &namespace, name)
            .map(|o| (200, Store::scale_of(o)))
            .ok_or_else(|| ApiError::not_found(ty, name)),
        ("POST", None, None) if !ty.namespaced || target.namespace.is_some() => state
            .store
            .create(ty, &namespace, request.body.clone(), &opts)
            .map(|o| (201, o)),
        ("POST", Some(name), Some("eviction")) if ty.key() == ("".into(), "pods".into()) => {
            let dry_run = opts.dry_run
                || request
                    .body
                    .pointer("/deleteOptions/dryRun")
                    .is_some_and(|d| d.as_array().is_some_and(|a| a.iter().any(|v| v == "All")));
            state
                .store
                .evict(&namespace, name, dry_run)
                .map(|o| (201, o))
        }
        ("PUT", Some(name), None | Some("status")) => state
            .store
            .replace(ty, &namespace, name, request.body.clone(), &opts)
            .map(|o| (200, o)),
        ("PATCH", Some(name), None | Some("status")) => state
            .store
            .patch(
                ty,
                &namespace,
                name,
                &request.content_type,
                &request.body,
                &opts,
            )
            .map(|o| (200, o)),
        ("PUT" | "PATCH", Some(name), Some("scale")) if ty.scale_subresource => {
            let content_type = (request.method == "PATCH").then_some(request.content_type.as_str());
            state
                .store
                .write_scale(ty, &namespace, name, content_type, &request.body, &opts)
                .map(|o| (200, o))
        }
        ("DELETE", Some(name), None) => {
            let body = &request.body;
            let text = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_string);
            let delete = DeleteOptions {
                dry_run: opts.dry_run
                    || body
                        .get("dryRun")
                        .and_then(Value::as_array)
                        .is_some_and(|a| a.iter().any(|v| v == "All")),
                precondition_rv: text("/preconditions/resourceVersion"),
                precondition_uid: text("/preconditions/uid"),
            };
            state
                .store
                .delete(ty, &namespace, name, &delete)
                .map(|(o, gone)| (if gone { 200 } else { 202 }, o))
        }
        _ => Err(ApiError::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )),
    };
    match result {
        Ok((code, body)) => json_response(code, &body),
        Err(error) => error_response(&error),
    }
}

fn list_options(request: &Request) -> Result<ListOptions, ApiError> {
    Ok(ListOptions {
        labels: LabelSelector::parse(request.param("labelSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse(request.param("fieldSelector").unwrap_or_default())
            .map_err(ApiError::bad_request)?,
        resource_version: request.param("resourceVersion").map(str::to_string),
        resource_version_match: request.param("resourceVersionMatch").map(str::to_string),
        limit: request.param("limit").and_then(|l| l.parse().ok()),
        continue_token: request
            .param("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
    })
}

fn list(store: &Store, request: &Request, target: &Target) -> Result<(u16, Value), ApiError> {
    let opts = list_options(request)?;
    store
        .list(&target.ty, target.namespace.as_deref(), &opts)
        .map(|l| (200, l))
}

/// Opens a watch and streams it: its lines, BOOKMARKs while idle, the end at
/// `timeoutSeconds`.
fn watch(shared: &Arc<Shared>, request: &Request, target: &Target) -> Response<Body> {
    let opts = match list_options(request) {
        Ok(opts) => opts,
        Err(e) => return error_response(&e),
    };
    let bookmarks = request.param("allowWatchBookmarks") == Some("true");
    let send_initial = request.param("sendInitialEvents") == Some("true");
    let timeout = request
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let opened = shared.lock().store.watch(
        &target.ty,
        target.namespace.as_deref(),
        opts.labels,
        opts.fields,
        opts.resource_version.as_deref(),
        send_initial,
        bookmarks,
        tx,
    );
    let id = match opened {
        Ok(id) => id,
        Err(e) => return error_response(&e),
    };
    let (out, body_rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let stream = futures::stream::unfold(body_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(Frame::data(line)), rx))
    });
    let shared = shared.clone();
    let ty = target.ty.clone();
    tokio::spawn(async move {
        let line = |text: String| Bytes::from(format!("{text}\n"));
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let every = shared.bookmark_every;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        'stream: loop {
            // `Some(final)` when a bookmark is due: the lines queued before it are
            // drained under the lock, so the bookmark never overtakes an event.
            let due = tokio::select! {
                next = rx.recv() => match next {
                    Some(text) => {
                        if out.send(line(text)).await.is_err() {
                            break 'stream;
                        }
                        None
                    }
                    None => break 'stream,
                },
                _ = tick.tick(), if bookmarks => Some(false),
                () = sleep_until(deadline) => Some(true),
                () = out.closed() => break 'stream,
            };
            let Some(last) = due else { continue };
            let (queued, rv) = {
                let mut state = shared.lock();
                let Some(id) = id else { break 'stream };
                if last {
                    state.store.remove_watcher(id);
                } else if !state.store.has_watcher(id) {
                    // Closed by the test: end like a dropped connection.
                    break 'stream;
                }
                let mut queued = Vec::new();
                while let Ok(text) = rx.try_recv() {
                    queued.push(text);
                }
                (queued, state.store.resource_version())
            };
            for text in queued {
                if out.send(line(text)).await.is_err() {
                    break 'stream;
                }
            }
            if bookmarks && out.send(line(bookmark_line(&ty, rv, false))).await.is_err() {
                break 'stream;
            }
            if last {
                break 'stream;
            }
        }
        if let Some(id) = id {
            shared.lock().store.remove_watcher(id);
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// 403 in RBAC's words.
fn forbidden(user: &str, verb: &str, target: &Target) -> ApiError {
    let ty = &target.ty;
    let what = match &target.name {
        Some(name) => format!("{} \"{name}\"", ty.qualified()),
        None => ty.qualified(),
    };
    let scope = match &target.namespace {
        Some(ns) => format!("in the namespace \"{ns}\""),
        None => "at the cluster scope".to_string(),
    };
    let mut details = json!({"kind": ty.plural});
    if let Some(name) = &target.name {
        details["name"] = json!(name);
    }
    if !ty.group.is_empty() {
        details["group"] = json!(ty.group);
    }
    let mut error = ApiError::new(
        403,
        "Forbidden",
        format!(
            "{what} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}",
            target.resource(),
            ty.group
        ),
    );
    error.details = Some(Box::new(details));
    error
}

/// A `SelfSubjectAccessReview`: the request echoed with its answer.
fn access_review(state: &State, user: &str, body: &Value) -> Response<Body> {
    if body.get("spec").is_none() {
        return error_response(&ApiError::new(
            422,
            "Invalid",
            "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified",
        ));
    }
    let attr = body.pointer("/spec/resourceAttributes");
    let text = |field: &str| {
        attr.and_then(|a| a.get(field))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let resource = match text("subresource").as_str() {
        "" => text("resource"),
        sub => format!("{}/{sub}", text("resource")),
    };
    let namespace = text("namespace");
    let allowed = attr.is_none()
        || !state.denies.iter().any(|d| {
            d.covers(
                &text("verb"),
                &text("group"),
                &resource,
                Some(namespace.as_str()).filter(|n| !n.is_empty()),
            )
        });
    let mut answer = body.clone();
    answer["apiVersion"] = json!("authorization.k8s.io/v1");
    answer["kind"] = json!("SelfSubjectAccessReview");
    answer["metadata"] = json!({"creationTimestamp": null});
    answer["status"] = if allowed {
        json!({
            "allowed": true,
            "reason": format!("RBAC: allowed by ClusterRoleBinding \"{user}-admin\" of ClusterRole \"cluster-admin\" to User \"{user}\""),
        })
    } else {
        // RBAC denies by having no rule, and says nothing.
        json!({"allowed": false})
    };
    json_response(201, &answer)
}

fn version(git_version: &str) -> Value {
    let (major, minor) = git_version
        .trim_start_matches('v')
        .split_once('.')
        .map(|(major, rest)| {
            (
                major.to_string(),
                rest.split('.').next().unwrap_or("").to_string(),
            )
        })
        .unwrap_or_default();
    json!({
        "major": major,
        "minor": minor,
        "gitVersion": git_version,
        "gitCommit": "0d6a2ba4a4a4d3c0d2b2a38bc5e2c9a6f5b3a3ae",
        "gitTreeState": "clean",
        "buildDate": "2025-08-14T02:49:52Z",
        "goVersion": "go1.24.5",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn group_list(types: &[ResourceType]) -> Value {
    let mut groups: Vec<(String, String)> = types
        .iter()
        .filter(|t| !t.group.is_empty())
        .map(|t| (t.group.clone(), t.version.clone()))
        .collect();
    groups.push(("authorization.k8s.io".into(), "v1".into()));
    groups.sort();
    groups.dedup();
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, version)| {
            let gv = json!({"groupVersion": format!("{group}/{version}"), "version": version});
            json!({"name": group, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

fn resource_list(types: &[ResourceType], group: &str, version: &str) -> Response<Body> {
    let mut resources = Vec::new();
    for ty in types
        .iter()
        .filter(|t| t.group == group && t.version == version)
    {
        let mut entry = json!({
            "name": ty.plural,
            "singularName": ty.kind.to_ascii_lowercase(),
            "namespaced": ty.namespaced,
            "kind": ty.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
        });
        if !ty.short_names.is_empty() {
            entry["shortNames"] = json!(ty.short_names);
        }
        resources.push(entry);
        if ty.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", ty.plural), "singularName": "",
                "namespaced": ty.namespaced, "kind": ty.kind, "verbs": ["get", "patch", "update"],
            }));
        }
        if ty.scale_subresource {
            resources.push(json!({
                "name": format!("{}/scale", ty.plural), "singularName": "",
                "namespaced": ty.namespaced, "group": "autoscaling", "version": "v1",
                "kind": "Scale", "verbs": ["get", "patch", "update"],
            }));
        }
        if ty.group.is_empty() && ty.plural == "pods" {
            resources.push(json!({
                "name": "pods/eviction", "singularName": "", "namespaced": true,
                "group": "policy", "version": "v1", "kind": "Eviction", "verbs": ["create"],
            }));
        }
    }
    if group == "authorization.k8s.io" && version == "v1" {
        resources.push(json!({
            "name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview",
            "namespaced": false, "kind": "SelfSubjectAccessReview", "verbs": ["create"],
        }));
    }
    if resources.is_empty() {
        return error_response(&ApiError::no_such_resource());
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    json_response(
        200,
        &json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": resources,
        }),
    )
}
