//! Clients for one cluster's API server: through a kubeconfig context, or natively from
//! the EKS endpoint, CA and a bearer token signed here. Errors say what failed and where.
//!
//! Timeouts: connecting gets 5 s. kube's `read_timeout` is a per-read socket timeout on
//! pooled connections, and a quiet watch on the same client sends nothing for minutes, so it
//! stays off (kube's watcher has its own idle timeout). Instead every request must get its
//! response *headers* within 30 s ([`ResponseTimeout`]): a watch's headers come at once, a
//! hung API server does not hold a list or a review forever.

use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header::AUTHORIZATION};
use kube::client::{Body, ClientBuilder};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tower::{BoxError, Layer, Service, ServiceExt as _};

use super::token::{TokenError, TokenSource, error_chain};
use crate::sources::ClusterTarget;

/// The field manager every write of fleetdeck's is recorded under (`managedFields`).
pub const FIELD_MANAGER: &str = "fleetdeck";
/// The `User-Agent` of every request to an API server (hub and spokes), so its audit
/// log names fleetdeck and its version, and writes without a field manager (deletes)
/// are still attributed.
pub const USER_AGENT: &str = concat!("fleetdeck/", env!("CARGO_PKG_VERSION"));

/// Says who is calling on every request of a client built from `config`.
fn identify(config: &mut kube::Config) {
    config.headers.push((
        http::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    ));
}

/// How long a TCP + TLS connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a request may wait for its response headers.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a cluster's API server could not be used. Every message starts with the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectError {
    /// 401: the token or certificate was not accepted (wrong account, no access entry...).
    #[error("{cluster}: API server rejected the credentials (401 Unauthorized)")]
    Unauthorized { cluster: String },
    /// 403 on a call fleetdeck needs.
    #[error("{cluster}: forbidden (403): {message}")]
    Forbidden { cluster: String, message: String },
    /// Any other error status.
    #[error("{cluster}: API server answered {code}: {message}")]
    Api {
        cluster: String,
        code: u16,
        message: String,
    },
    /// No connection or no answer in time.
    #[error("{cluster}: timed out connecting to {url}")]
    Timeout { cluster: String, url: String },
    /// DNS, TCP, TLS (an unknown CA) and other transport failures.
    #[error("{cluster}: cannot reach {url}: {detail}")]
    Unreachable {
        cluster: String,
        url: String,
        detail: String,
    },
    /// The API server (or something in front of it) answered, but not with what was
    /// asked for: a proxy's page, a truncated body.
    #[error("{cluster}: unreadable answer from {url}: {detail}")]
    BadAnswer {
        cluster: String,
        url: String,
        detail: String,
    },
    /// No EKS token: the account's AWS credentials failed.
    #[error("{cluster}: cannot get an EKS token: {source}")]
    Token { cluster: String, source: TokenError },
    /// The client could not be built: a malformed endpoint or CA, a broken context.
    #[error("{cluster}: {detail}")]
    Setup { cluster: String, detail: String },
}

impl ConnectError {
    /// Failures worth retrying soon (the network, the API server), as opposed to ones that
    /// need someone to change something (credentials, RBAC, config).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Timeout { .. } | Self::Unreachable { .. } | Self::BadAnswer { .. } => true,
            Self::Api { code, .. } => *code >= 500 || *code == 429,
            Self::Unauthorized { .. }
            | Self::Forbidden { .. }
            | Self::Token { .. }
            | Self::Setup { .. } => false,
        }
    }
}

/// Chooses ring as rustls's process-wide crypto provider, once. Both ring (kube) and
/// aws-lc-rs (the AWS SDK) are linked, and with two rustls refuses to pick: building any
/// kube client would panic. Call before building a kube client (every function here does).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Turns a kube error from a call to `url` on `cluster` into what a person needs to know.
pub fn classify(cluster: &str, url: &str, err: &kube::Error) -> ConnectError {
    let cluster = cluster.to_string();
    if let kube::Error::Api(status) = err {
        return match status.code {
            401 => ConnectError::Unauthorized { cluster },
            403 => ConnectError::Forbidden {
                cluster,
                message: status.message.clone(),
            },
            code => ConnectError::Api {
                cluster,
                code,
                message: status.message.clone(),
            },
        };
    }
    if let kube::Error::SerdeError(e) = err {
        // It answered: "cannot reach" would send someone after the network.
        return ConnectError::BadAnswer {
            cluster,
            url: url.to_string(),
            detail: e.to_string(),
        };
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(token) = e.downcast_ref::<TokenError>() {
            return ConnectError::Token {
                cluster,
                source: token.clone(),
            };
        }
        // The kubeconfig's own authentication (an exec plugin, a token file) failed: not a
        // network problem, whatever the transport says.
        if e.is::<kube::client::AuthError>() {
            return ConnectError::Setup {
                cluster,
                detail: format!("kubeconfig credentials failed: {}", error_chain(e)),
            };
        }
        let timed_out = e.is::<NoResponse>()
            || e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut);
        if timed_out {
            return ConnectError::Timeout {
                cluster,
                url: url.to_string(),
            };
        }
        source = e.source();
    }
    ConnectError::Unreachable {
        cluster,
        url: url.to_string(),
        detail: error_chain(err),
    }
}

/// Proves the client works: `GET /version` goes through TLS and authentication (a bad
/// token is a 401 even there), and is cheap.
pub async fn probe(
    client: &kube::Client,
    target: &ClusterTarget,
    url: &str,
) -> Result<(), ConnectError> {
    client
        .apiserver_version()
        .await
        .map(|_| ())
        .map_err(|e| classify(&target.id.name, url, &e))
}

/// A client for an EKS cluster from its endpoint and CA, authenticating with `tokens`.
pub fn native_client(
    target: &ClusterTarget,
    tokens: Arc<TokenSource>,
) -> Result<kube::Client, ConnectError> {
    let setup = |detail: String| ConnectError::Setup {
        cluster: target.id.name.clone(),
        detail,
    };
    let endpoint = target
        .endpoint
        .as_deref()
        .ok_or_else(|| setup("EKS reports no API server endpoint".into()))?;
    let ca = target
        .certificate_authority
        .as_deref()
        .ok_or_else(|| setup("EKS reports no certificate authority".into()))?;
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| setup(format!("bad API server endpoint '{endpoint}': {e}")))?;
    let mut config = kube::Config::new(uri);
    config.root_cert = Some(ca_certificates(ca).map_err(setup)?);
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = None;
    identify(&mut config);
    install_crypto_provider();
    let builder = ClientBuilder::try_from(config)
        .map_err(|e| setup(format!("cannot build a client: {}", error_chain(&e))))?;
    // Layers wrap what is there: the timeout applies to each attempt, the bearer layer
    // around it may make two.
    Ok(builder
        .with_layer(&ResponseTimeoutLayer::new(RESPONSE_TIMEOUT))
        .with_layer(&BearerAuthLayer::new(tokens))
        .build())
}

/// A client through kubeconfig context `context`, with its own authentication (exec
/// plugins, certificates, tokens) and fleetdeck's timeouts.
pub async fn kubeconfig_client(
    kubeconfig: &Kubeconfig,
    context: &str,
    target: &ClusterTarget,
) -> Result<(kube::Client, String), ConnectError> {
    let setup = |detail: String| ConnectError::Setup {
        cluster: target.id.name.clone(),
        detail,
    };
    let options = KubeConfigOptions {
        context: Some(context.to_string()),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig.clone(), &options)
        .await
        .map_err(|e| {
            setup(format!(
                "kubeconfig context '{context}': {}",
                error_chain(&e)
            ))
        })?;
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = None;
    identify(&mut config);
    let url = config.cluster_url.to_string();
    install_crypto_provider();
    let builder = ClientBuilder::try_from(config).map_err(|e| {
        setup(format!(
            "kubeconfig context '{context}': {}",
            error_chain(&e)
        ))
    })?;
    Ok((
        builder
            .with_layer(&ResponseTimeoutLayer::new(RESPONSE_TIMEOUT))
            .build(),
        url,
    ))
}

/// The DER certificates of a CA bundle as EKS gives it: base64 of PEM. (kube's
/// `root_cert` wants DER.)
pub fn ca_certificates(base64_pem: &str) -> Result<Vec<Vec<u8>>, String> {
    let pem = STANDARD
        .decode(base64_pem.trim())
        .map_err(|e| format!("certificate authority is not base64: {e}"))?;
    let pem =
        String::from_utf8(pem).map_err(|_| "certificate authority is not PEM text".to_string())?;
    let mut certs = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        match (line, body.as_mut()) {
            ("-----BEGIN CERTIFICATE-----", None) => body = Some(String::new()),
            ("-----END CERTIFICATE-----", Some(b64)) => {
                let der = STANDARD.decode(b64.as_bytes()).map_err(|e| {
                    format!("certificate authority has a malformed certificate: {e}")
                })?;
                certs.push(der);
                body = None;
            }
            (line, Some(b64)) => b64.push_str(line),
            _ => {}
        }
    }
    if certs.is_empty() {
        return Err("certificate authority holds no PEM certificate".into());
    }
    Ok(certs)
}

/// Adds `Authorization: Bearer <token>` from a [`TokenSource`] to every request; on a 401
/// renews the token and sends the request once more.
#[derive(Clone, Debug)]
pub struct BearerAuthLayer {
    tokens: Arc<TokenSource>,
}

impl BearerAuthLayer {
    /// A layer taking its tokens from `tokens`.
    pub fn new(tokens: Arc<TokenSource>) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> BearerAuth<S> {
        BearerAuth {
            // A retry needs the inner service again after the first response. kube's
            // default stack is a `BoxService`, which cannot be cloned, so it is shared;
            // the lock is held only to get it ready and start a call, never for a response.
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
            tokens: self.tokens.clone(),
        }
    }
}

/// The service of [`BearerAuthLayer`].
#[derive(Debug)]
pub struct BearerAuth<S> {
    inner: Arc<tokio::sync::Mutex<S>>,
    tokens: Arc<TokenSource>,
}

impl<S> Clone for BearerAuth<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            tokens: self.tokens.clone(),
        }
    }
}

impl<S, B> Service<Request<Body>> for BearerAuth<S>
where
    S: Service<Request<Body>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Send + 'static,
{
    type Response = Response<B>;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<Response<B>, BoxError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness of the inner service is awaited per call, under the lock.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let inner = self.inner.clone();
        let tokens = self.tokens.clone();
        Box::pin(async move {
            let token = tokens.current().await?;
            // Only a request whose body can be replayed can be retried (all of kube's
            // requests but streamed uploads).
            let replay = try_clone(&request);
            let response = send(&inner, with_bearer(request, &token)?).await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(response);
            }
            let Some(replay) = replay else {
                return Ok(response);
            };
            let renewed = tokens.renew(&token).await?;
            if renewed == token {
                // Signing again gave the same token: retrying would get the same 401.
                return Ok(response);
            }
            tracing::debug!("API server refused the EKS token; retrying once with a new one");
            send(&inner, with_bearer(replay, &renewed)?).await
        })
    }
}

async fn send<S, B>(
    inner: &tokio::sync::Mutex<S>,
    request: Request<Body>,
) -> Result<Response<B>, BoxError>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Into<BoxError>,
{
    let call = {
        let mut service = inner.lock().await;
        service.ready().await.map_err(Into::into)?;
        service.call(request)
    };
    call.await.map_err(Into::into)
}

fn with_bearer(mut request: Request<Body>, token: &str) -> Result<Request<Body>, BoxError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(request)
}

fn try_clone(request: &Request<Body>) -> Option<Request<Body>> {
    let body = request.body().try_clone()?;
    let mut copy = Request::new(body);
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    Some(copy)
}

/// No response headers arrived in time.
#[derive(Debug, thiserror::Error)]
#[error("no response within {} s", .0.as_secs())]
pub struct NoResponse(Duration);

/// Fails a request whose response headers do not arrive within a limit. Streaming bodies
/// (watches) are not limited: their headers come first.
#[derive(Clone, Copy, Debug)]
pub struct ResponseTimeoutLayer {
    after: Duration,
}

impl ResponseTimeoutLayer {
    /// A layer failing requests unanswered after `after`.
    pub fn new(after: Duration) -> Self {
        Self { after }
    }
}

impl<S> Layer<S> for ResponseTimeoutLayer {
    type Service = ResponseTimeout<S>;

    fn layer(&self, inner: S) -> ResponseTimeout<S> {
        ResponseTimeout {
            inner,
            after: self.after,
        }
    }
}

/// The service of [`ResponseTimeoutLayer`].
#[derive(Clone, Debug)]
pub struct ResponseTimeout<S> {
    inner: S,
    after: Duration,
}

impl<S, R> Service<R> for ResponseTimeout<S>
where
    S: Service<R>,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = BoxFuture<'static, Result<S::Response, BoxError>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let call = self.inner.call(request);
        let after = self.after;
        Box::pin(async move {
            match tokio::time::timeout(after, call).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(NoResponse(after)) as BoxError),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use tower_test::mock;

    use super::super::testing::{self, UNAUTHORIZED, VERSION, bearer, json, status};
    use super::*;

    const URL: &str = "https://ABC.gr7.us-east-1.eks.amazonaws.com/";

    fn tokens() -> Arc<TokenSource> {
        Arc::new(TokenSource::new(
            "prod-use1-api-01",
            "us-east-1",
            testing::rotating(),
        ))
    }

    /// A client whose requests go to the returned handle, through the bearer layer.
    fn mocked() -> (kube::Client, mock::Handle<Request<Body>, Response<Body>>) {
        let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
        let service = ResponseTimeoutLayer::new(RESPONSE_TIMEOUT).layer(service);
        let service = BearerAuthLayer::new(tokens()).layer(service);
        (kube::Client::new(service, "default"), handle)
    }

    #[tokio::test]
    async fn a_401_renews_the_token_and_retries_once() {
        let (client, mut server) = mocked();
        let api = tokio::spawn(async move {
            let (request, reply) = server.next_request().await.unwrap();
            assert_eq!(request.uri().path(), "/version");
            let first = bearer(&request).unwrap();
            reply.send_response(json(401, UNAUTHORIZED));
            let (request, reply) = server.next_request().await.unwrap();
            assert_eq!(request.uri().path(), "/version");
            let second = bearer(&request).unwrap();
            reply.send_response(json(200, VERSION));
            (first, second)
        });
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        probe(&client, &target, URL).await.unwrap();
        let (first, second) = api.await.unwrap();
        assert!(first.starts_with("Bearer k8s-aws-v1."), "{first}");
        assert!(second.starts_with("Bearer k8s-aws-v1."), "{second}");
        assert_ne!(first, second, "the retry carries a new token");
    }

    #[tokio::test]
    async fn a_second_401_is_reported_as_rejected_credentials() {
        let (client, mut server) = mocked();
        let api = tokio::spawn(async move {
            for _ in 0..2 {
                let (_, reply) = server.next_request().await.unwrap();
                reply.send_response(json(401, UNAUTHORIZED));
            }
            // No third attempt.
            assert!(server.next_request().await.is_none());
        });
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let e = probe(&client, &target, URL).await.unwrap_err();
        drop(client);
        api.await.unwrap();
        assert_eq!(
            e.to_string(),
            "prod-use1-api-01: API server rejected the credentials (401 Unauthorized)"
        );
        assert!(!e.is_transient());
    }

    #[tokio::test]
    async fn a_403_names_the_api_servers_message() {
        let (client, mut server) = mocked();
        tokio::spawn(async move {
            let (_, reply) = server.next_request().await.unwrap();
            reply.send_response(json(
                403,
                &status(
                    403,
                    "Forbidden",
                    "forbidden: User \"arn:aws:sts::123456789012:assumed-role/oncall/jo\" cannot get path \"/version\"",
                ),
            ));
        });
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let e = probe(&client, &target, URL).await.unwrap_err();
        assert_eq!(
            e.to_string(),
            "prod-use1-api-01: forbidden (403): forbidden: User \"arn:aws:sts::123456789012:assumed-role/oncall/jo\" cannot get path \"/version\""
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_api_server_that_never_answers_times_out() {
        let (client, mut server) = mocked();
        let api = tokio::spawn(async move {
            // Take the request and sit on it.
            let held = server.next_request().await;
            tokio::time::sleep(Duration::from_secs(3600)).await;
            drop(held);
        });
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let started = tokio::time::Instant::now();
        let e = probe(&client, &target, URL).await.unwrap_err();
        assert_eq!(started.elapsed(), RESPONSE_TIMEOUT);
        assert_eq!(
            e.to_string(),
            format!("prod-use1-api-01: timed out connecting to {URL}")
        );
        assert!(e.is_transient());
        api.abort();
    }

    #[tokio::test]
    async fn no_credentials_is_a_token_error_and_no_request_is_sent() {
        #[derive(Debug)]
        struct Expired;
        impl aws_credential_types::provider::ProvideCredentials for Expired {
            fn provide_credentials<'a>(
                &'a self,
            ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
            where
                Self: 'a,
            {
                aws_credential_types::provider::future::ProvideCredentials::ready(Err(
                    aws_credential_types::provider::error::CredentialsError::not_loaded(
                        "the SSO session has expired",
                    ),
                ))
            }
        }
        let (service, mut server) = mock::pair::<Request<Body>, Response<Body>>();
        let tokens = Arc::new(TokenSource::new(
            "c",
            "us-east-1",
            aws_credential_types::provider::SharedCredentialsProvider::new(Expired),
        ));
        let client = kube::Client::new(BearerAuthLayer::new(tokens).layer(service), "default");
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let e = probe(&client, &target, URL).await.unwrap_err();
        assert!(matches!(e, ConnectError::Token { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("prod-use1-api-01: cannot get an EKS token: no AWS credentials"),
            "{e}"
        );
        drop(client);
        assert!(server.next_request().await.is_none());
    }

    /// A client answered by `answer` for every request.
    fn answering(code: u16, body: &'static str) -> kube::Client {
        let (client, mut server) = mocked();
        tokio::spawn(async move {
            while let Some((_, reply)) = server.next_request().await {
                reply.send_response(json(code, body));
            }
        });
        client
    }

    #[tokio::test]
    async fn fault_a_5xx_or_429_says_the_code_and_is_transient() {
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let unavailable = status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        );
        let body: &'static str = Box::leak(unavailable.into_boxed_str());
        let e = probe(&answering(503, body), &target, URL)
            .await
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "prod-use1-api-01: API server answered 503: the server is currently unable to handle the request"
        );
        assert!(e.is_transient());
        let throttled = status(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        );
        let body: &'static str = Box::leak(throttled.into_boxed_str());
        let e = probe(&answering(429, body), &target, URL)
            .await
            .unwrap_err();
        assert!(matches!(e, ConnectError::Api { code: 429, .. }), "{e:?}");
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn fault_a_malformed_answer_says_it_was_unreadable_not_unreachable() {
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        let e = probe(
            &answering(200, "<html><body>Sign in to the VPN</body></html>"),
            &target,
            URL,
        )
        .await
        .unwrap_err();
        assert!(matches!(e, ConnectError::BadAnswer { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("prod-use1-api-01: unreadable answer from {URL}: ")),
            "{e}"
        );
        assert!(e.is_transient());
    }

    /// A native client (TLS, the EKS CA, bearer tokens) for `endpoint`.
    fn native_to(endpoint: &str) -> (ClusterTarget, kube::Client) {
        let mut target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        target.endpoint = Some(endpoint.to_string());
        let client = native_client(&target, tokens()).unwrap();
        (target, client)
    }

    #[tokio::test]
    async fn fault_an_endpoint_that_does_not_resolve_cannot_be_reached() {
        let url = format!("https://{}", crate::sources::faults::UNRESOLVABLE_HOST);
        let (target, client) = native_to(&url);
        let e = probe(&client, &target, &url).await.unwrap_err();
        assert!(matches!(e, ConnectError::Unreachable { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with(&format!("prod-use1-api-01: cannot reach {url}: ")),
            "{e}"
        );
        assert!(e.to_string().contains("dns error"), "{e}");
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn fault_a_refused_connection_cannot_be_reached() {
        let url = format!(
            "https://127.0.0.1:{}",
            crate::sources::faults::refused_port()
        );
        let (target, client) = native_to(&url);
        let e = probe(&client, &target, &url).await.unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("prod-use1-api-01: cannot reach {url}: ")),
            "{e}"
        );
        assert!(e.to_string().to_lowercase().contains("refused"), "{e}");
        assert!(e.is_transient());
    }

    #[tokio::test(start_paused = true)]
    async fn fault_an_endpoint_that_accepts_and_never_answers_times_out() {
        // Takes the TCP connection, never answers the TLS handshake.
        let server =
            crate::sources::faults::FaultServer::start(|_| crate::sources::faults::json(200, "{}"))
                .await;
        server.set(crate::sources::faults::Mode::Hang);
        let url = server.url.replace("http://", "https://");
        let (target, client) = native_to(&url);
        let started = tokio::time::Instant::now();
        let e = probe(&client, &target, &url).await.unwrap_err();
        assert!(
            started.elapsed() <= RESPONSE_TIMEOUT,
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            e.to_string(),
            format!("prod-use1-api-01: timed out connecting to {url}")
        );
        assert!(e.is_transient());
    }

    #[tokio::test]
    async fn fault_credentials_expiring_mid_run_are_said_then_a_new_token_is_minted() {
        use crate::sources::faults::FlakyCredentials;
        let credentials = FlakyCredentials::default();
        let tokens = Arc::new(TokenSource::new(
            "prod-use1-api-01",
            "us-east-1",
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials.clone()),
        ));
        let (service, mut server) = mock::pair::<Request<Body>, Response<Body>>();
        let service = ResponseTimeoutLayer::new(RESPONSE_TIMEOUT).layer(service);
        let client = kube::Client::new(BearerAuthLayer::new(tokens).layer(service), "default");
        let api = tokio::spawn(async move {
            let mut accepted = None;
            let mut seen = Vec::new();
            while let Some((request, reply)) = server.next_request().await {
                let token = bearer(&request).unwrap();
                seen.push(token.clone());
                // The first token works; once "expired", only a newer one does.
                match &accepted {
                    None => {
                        accepted = Some(token);
                        reply.send_response(json(200, VERSION));
                    }
                    Some(old) if *old == token => reply.send_response(json(401, UNAUTHORIZED)),
                    Some(_) => reply.send_response(json(200, VERSION)),
                }
            }
            seen
        });
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        probe(&client, &target, URL).await.unwrap();

        // The token expires and so has the SSO session behind it: said, not hidden.
        credentials.fail(true);
        let e = probe(&client, &target, URL).await.unwrap_err();
        assert!(matches!(e, ConnectError::Token { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("prod-use1-api-01: cannot get an EKS token: no AWS credentials: ")
                && e.to_string().contains("the SSO session has expired"),
            "{e}"
        );
        assert!(!e.is_transient());

        // After `aws sso login`: a new token is minted and accepted, with no new client.
        credentials.fail(false);
        probe(&client, &target, URL).await.unwrap();
        drop(client);
        let seen = api.await.unwrap();
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert_eq!(seen[0], seen[1], "the old token until it was refused");
        assert_eq!(seen[1], seen[2], "no new token without credentials");
        assert_ne!(seen[2], seen[3], "a freshly minted token");
    }

    #[test]
    fn transport_errors_say_timeout_or_what_failed() {
        let timed_out = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "connect timed out",
        )));
        assert_eq!(
            classify("api-01", URL, &timed_out).to_string(),
            format!("api-01: timed out connecting to {URL}")
        );
        let refused = kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "tcp connect error: Connection refused (os error 111)",
        )));
        let e = classify("api-01", URL, &refused);
        assert_eq!(
            e.to_string(),
            format!(
                "api-01: cannot reach {URL}: ServiceError: tcp connect error: Connection refused (os error 111)"
            )
        );
        assert!(e.is_transient());
        let exec = kube::Error::Auth(kube::client::AuthError::AuthExecStart(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "No such file or directory (os error 2)",
        )));
        let e = classify("api-01", URL, &exec);
        assert!(
            e.to_string()
                .starts_with("api-01: kubeconfig credentials failed: "),
            "{e}"
        );
        assert!(!e.is_transient());
    }

    #[test]
    fn the_eks_ca_decodes_to_der_certificates() {
        let certs = ca_certificates(testing::TEST_CA).unwrap();
        assert_eq!(certs.len(), 1);
        // DER: a SEQUENCE.
        assert_eq!(certs[0][0], 0x30);
        assert!(
            ca_certificates("not base64!")
                .unwrap_err()
                .contains("not base64")
        );
        let no_pem = STANDARD.encode("hello");
        assert_eq!(
            ca_certificates(&no_pem).unwrap_err(),
            "certificate authority holds no PEM certificate"
        );
    }

    #[tokio::test]
    async fn a_native_client_is_built_from_endpoint_and_ca() {
        let target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        native_client(&target, tokens()).unwrap();

        let mut bad = target.clone();
        bad.certificate_authority =
            Some(STANDARD.encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
        let Err(e) = native_client(&bad, tokens()) else {
            panic!("a malformed CA must not build a client");
        };
        assert!(
            e.to_string()
                .starts_with("prod-use1-api-01: cannot build a client"),
            "{e}"
        );

        let mut none = target;
        none.endpoint = None;
        let Err(e) = native_client(&none, tokens()) else {
            panic!("no endpoint, no client");
        };
        assert_eq!(
            e.to_string(),
            "prod-use1-api-01: EKS reports no API server endpoint"
        );
    }

    /// A loopback API server answering `GET /version`, recording each request's head.
    async fn recording_server() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let heads: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
        let seen = heads.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                seen.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_ascii_lowercase());
                let reply = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{VERSION}",
                    VERSION.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            }
        });
        (url, heads)
    }

    #[tokio::test]
    async fn every_client_says_it_is_fleetdeck_in_its_user_agent() {
        install_crypto_provider();
        let agent = format!("user-agent: fleetdeck/{}\r\n", env!("CARGO_PKG_VERSION"));
        let (url, heads) = recording_server().await;

        let mut target = testing::target("prod", "us-east-1", "prod-use1-api-01");
        target.endpoint = Some(url.clone());
        let native = native_client(&target, tokens()).unwrap();
        probe(&native, &target, &url).await.unwrap();

        let kubeconfig = Kubeconfig::from_yaml(&format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: hub\n  cluster:\n    server: {url}\nusers:\n- name: oncall\n  user:\n    token: t\ncontexts:\n- name: hub\n  context:\n    cluster: hub\n    user: oncall\n"
        ))
        .unwrap();
        let (hub, _) = kubeconfig_client(&kubeconfig, "hub", &target)
            .await
            .unwrap();
        probe(&hub, &target, &url).await.unwrap();

        let heads = heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 2);
        for head in heads {
            assert!(head.contains(&agent), "{head}");
            assert_eq!(head.matches("user-agent:").count(), 1, "{head}");
        }
    }
}
