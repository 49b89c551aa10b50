//! The server's HTTP side: TLS (when given a certificate), the bearer token on every
//! request but the health check, and three routes: `GET /v1/feed` (the stream),
//! `POST /v1/actions` (a write), `GET /healthz` (alive; says nothing of the fleet).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use color_eyre::eyre::{Result, eyre};
use http_body_util::{BodyExt, Full, Limited, StreamBody, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request as HttpRequest, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

use super::{Refusal, Request};
use crate::actions::RemoteUser;
use crate::feed::{self, ActionReply, ActionRequest, tokens::Tokens};

type Body = BoxBody<Bytes, Infallible>;

/// A write's body is at most this large.
const MAX_ACTION_BYTES: usize = 1024 * 1024;
/// A TLS handshake that takes longer has failed.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct Shared {
    pub tokens: Tokens,
    pub requests: mpsc::Sender<Request>,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// Turns true when the server stops: every connection is closed (a kept-alive one
    /// must not answer for a server that is gone).
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

/// The TLS side from a certificate chain and its key (PEM files).
pub(crate) fn tls_acceptor(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    crate::sources::kube::connect::install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| eyre!("--tls-cert {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(eyre!("--tls-cert {}: no certificate in it", cert.display()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| eyre!("--tls-key {}: {e}", key.display()))?;
    let builder = rustls::ServerConfig::builder();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            let cas = CertificateDer::pem_file_iter(ca)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| eyre!("--client-ca {}: {e}", ca.display()))?;
            for cert in cas {
                roots
                    .add(cert)
                    .map_err(|e| eyre!("--client-ca {}: {e}", ca.display()))?;
            }
            if roots.is_empty() {
                return Err(eyre!("--client-ca {}: no certificate in it", ca.display()));
            }
            // A client without a certificate may still present a token.
            let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots))
                .allow_unauthenticated()
                .build()
                .map_err(|e| eyre!("--client-ca {}: {e}", ca.display()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(certs, key)
        .map_err(|e| eyre!("--tls-cert and --tls-key do not make a TLS server: {e}"))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Takes connections until the process ends.
pub(crate) async fn accept(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(ok) => ok,
            Err(e) => {
                // Out of file descriptors, mostly: wait rather than spin.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let tls = shared.tls.clone();
            let stopping = shared.stopping.clone();
            let http = hyper::server::conn::http1::Builder::new();
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => {
                            // A client certificate (checked against --client-ca) names
                            // who connects, as a token would.
                            let cert_name = stream
                                .get_ref()
                                .1
                                .peer_certificates()
                                .and_then(|certs| certs.first())
                                .and_then(|leaf| common_name(leaf.as_ref()));
                            let service = service(shared, peer, cert_name);
                            let connection = http.serve_connection(TokioIo::new(stream), service);
                            until_stopped(connection, stopping).await
                        }
                        Ok(Err(e)) => {
                            tracing::info!(%peer, "TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => {
                            tracing::info!(%peer, "TLS handshake timed out");
                            return;
                        }
                    }
                }
                None => {
                    let service = service(shared, peer, None);
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    until_stopped(connection, stopping).await
                }
            };
            if let Err(e) = served {
                tracing::debug!(%peer, "connection ended: {e}");
            }
        });
    }
}

/// The routes, for one connection's peer (and its client certificate's name, if any).
#[derive(Clone)]
struct Routes {
    shared: Arc<Shared>,
    peer: SocketAddr,
    cert_name: Option<String>,
}

fn service(shared: Arc<Shared>, peer: SocketAddr, cert_name: Option<String>) -> Routes {
    Routes {
        shared,
        peer,
        cert_name,
    }
}

impl hyper::service::Service<HttpRequest<Incoming>> for Routes {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>,
    >;

    fn call(&self, req: HttpRequest<Incoming>) -> Self::Future {
        let routes = self.clone();
        Box::pin(async move {
            Ok(route(
                req,
                &routes.shared,
                routes.peer,
                routes.cert_name.as_deref(),
            )
            .await)
        })
    }
}

/// The subject's common name of a certificate (DER).
fn common_name(der: &[u8]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let name = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_string();
    Some(name)
}

/// Serves a connection until it ends, or the server stops: then it is shut down
/// gracefully (a response under way finishes; the feed's ends as its queue closes).
async fn until_stopped<I, S>(
    connection: hyper::server::conn::http1::Connection<I, S>,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming, ResBody = Body>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut connection = std::pin::pin!(connection);
    tokio::select! {
        result = connection.as_mut() => result,
        // Told to stop, or the server is gone altogether.
        _ = stopping.changed() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    }
}

fn text(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(message.into() + "\n")).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn json(status: StatusCode, reply: &ActionReply) -> Response<Body> {
    let body = serde_json::to_vec(reply).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

async fn route(
    req: HttpRequest<Incoming>,
    shared: &Shared,
    peer: SocketAddr,
    cert_name: Option<&str>,
) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == feed::HEALTH_PATH && req.method() == Method::GET {
        return text(StatusCode::OK, "ok");
    }
    if path != feed::FEED_PATH && path != feed::ACTIONS_PATH {
        return text(
            StatusCode::NOT_FOUND,
            format!("{path}: not here; the feed is {}", feed::FEED_PATH),
        );
    }
    // Nothing of the fleet without a token.
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let grant = match presented {
        Some(token) => shared.tokens.check(token),
        None => cert_name.and_then(|name| shared.tokens.check_client_cert(name)),
    };
    let Some(grant) = grant.cloned() else {
        tracing::info!(%peer, path, presented = presented.is_some(), "refused: no valid token");
        let mut response = text(
            StatusCode::UNAUTHORIZED,
            match (presented, cert_name) {
                (Some(_), _) => "this token is not one of the server's".to_string(),
                (None, Some(name)) => format!(
                    "the client certificate of {name} is not granted in the server's tokens file"
                ),
                (None, None) => {
                    "a bearer token (Authorization: Bearer ...) or a client certificate is needed"
                        .to_string()
                }
            },
        );
        response.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Bearer realm=\"fleetdeck\""),
        );
        return response;
    };
    let protocol = req
        .headers()
        .get(feed::PROTOCOL_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u32>().ok());
    if protocol != Some(feed::PROTOCOL) {
        let mut response = text(
            StatusCode::BAD_REQUEST,
            match protocol {
                Some(theirs) => format!(
                    "this server speaks feed protocol {}, the client {theirs}: run the same \
                     fleetdeck version on both sides (server {})",
                    feed::PROTOCOL,
                    env!("CARGO_PKG_VERSION")
                ),
                None => format!(
                    "say which feed protocol the client speaks in the {} header (this server \
                     speaks {})",
                    feed::PROTOCOL_HEADER,
                    feed::PROTOCOL
                ),
            },
        );
        response.headers_mut().insert(
            feed::PROTOCOL_HEADER,
            http::HeaderValue::from(feed::PROTOCOL),
        );
        return response;
    }
    match (req.method(), path.as_str()) {
        (&Method::GET, feed::FEED_PATH) => stream(shared, grant, peer).await,
        (&Method::POST, feed::ACTIONS_PATH) => act(req, shared, grant, peer).await,
        (method, path) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "{method} {path}: use GET {} or POST {}",
                feed::FEED_PATH,
                feed::ACTIONS_PATH
            ),
        ),
    }
}

/// The feed: the client's queue, read as the response body.
async fn stream(
    shared: &Shared,
    grant: crate::feed::tokens::Grant,
    peer: SocketAddr,
) -> Response<Body> {
    let (queue, frames) = mpsc::channel::<Bytes>(super::QUEUE_FRAMES);
    let join = Request::Join {
        grant,
        address: peer,
        queue,
    };
    if shared.requests.send(join).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    let body = futures::stream::unfold(frames, |mut frames| async move {
        frames
            .recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(hyper::body::Frame::data(bytes)), frames))
    });
    let mut response = Response::new(BodyExt::boxed(StreamBody::new(body)));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(feed::CONTENT_TYPE),
    );
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-store"),
    );
    response
}

/// A write: read and checked here, authorized and carried out by the engine's loop.
async fn act(
    req: HttpRequest<Incoming>,
    shared: &Shared,
    grant: crate::feed::tokens::Grant,
    peer: SocketAddr,
) -> Response<Body> {
    let bytes = match Limited::new(req.into_body(), MAX_ACTION_BYTES)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &ActionReply {
                    ok: false,
                    message: format!(
                        "the write could not be read (at most {MAX_ACTION_BYTES} bytes): {e}"
                    ),
                },
            );
        }
    };
    let request: ActionRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return json(
                StatusCode::BAD_REQUEST,
                &ActionReply {
                    ok: false,
                    message: format!("not a fleetdeck write: {e}"),
                },
            );
        }
    };
    let remote = RemoteUser {
        token: grant.name.clone(),
        role: grant.role,
        os_user: request.os_user.chars().take(64).collect(),
        address: peer.to_string(),
    };
    let (reply, answer) = oneshot::channel();
    let asked = Request::Act {
        request: Box::new(request),
        remote,
        reply,
    };
    if shared.requests.send(asked).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping");
    }
    match answer.await {
        Ok(Ok(message)) => json(StatusCode::OK, &ActionReply { ok: true, message }),
        Ok(Err(Refusal::Forbidden(message))) => {
            json(StatusCode::FORBIDDEN, &ActionReply { ok: false, message })
        }
        Ok(Err(Refusal::Failed(message))) => {
            json(StatusCode::OK, &ActionReply { ok: false, message })
        }
        Err(_) => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server stopped before answering",
        ),
    }
}
