//! The HTTP side of the feed source: `GET /v1/feed` read frame by frame, and `POST
//! /v1/actions` for relayed writes, with the bearer token; hyper 1 and rustls, the stack
//! the Alertmanager source already uses.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::Connect;
use crate::feed::{self, ActionReply, ActionRequest, Decoder, Frame};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Connecting (up to the response's head) takes at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An answer to a write is at most this large.
const MAX_REPLY_BYTES: usize = 1024 * 1024;

#[derive(Clone)]
pub struct FeedClient {
    url: String,
    token: Option<String>,
    http: HyperClient<Connector, Full<Bytes>>,
    /// Why TLS could not be set up as asked, reported at the first request.
    tls_problem: Option<String>,
}

/// Why the feed could not be opened.
pub enum OpenError {
    /// Asking again cannot help: the token, the protocol.
    Refused(String),
    /// The server is not reachable now.
    Failed(String),
}

/// An open feed, read frame by frame.
pub struct FeedStream {
    url: String,
    body: Incoming,
    decoder: Decoder,
}

impl FeedStream {
    /// The next frame; an error ends the connection.
    pub async fn next_frame(&mut self) -> Result<Frame, String> {
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => return Ok(frame),
                Ok(None) => {}
                Err(e) => return Err(format!("{}: {e}", self.url)),
            }
            match self.body.frame().await {
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        self.decoder.push(data);
                    }
                }
                Some(Err(e)) => return Err(format!("{}: connection lost: {e}", self.url)),
                None => return Err(format!("{}: the server closed the feed", self.url)),
            }
        }
    }
}

impl FeedClient {
    pub fn new(connect: &Connect) -> Self {
        crate::sources::kube::connect::install_crypto_provider();
        let (tls, tls_problem) =
            tls_config(connect.ca_file.as_deref(), connect.client_cert.as_ref());
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self {
            url: connect.url.trim_end_matches('/').to_string(),
            token: connect.token.clone(),
            http,
            tls_problem,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
    ) -> Result<http::Request<Full<Bytes>>, String> {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        builder
            .header(feed::PROTOCOL_HEADER, feed::PROTOCOL.to_string())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("fleetdeck/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("{}: not a URL fleetdeck can request: {e}", self.url))
    }

    /// Opens the feed: the response's head, checked.
    pub async fn open_feed(&self) -> Result<FeedStream, OpenError> {
        if let Some(problem) = &self.tls_problem {
            return Err(OpenError::Refused(problem.clone()));
        }
        let request = self
            .request("GET", feed::FEED_PATH, Vec::new())
            .map_err(OpenError::Refused)?;
        let url = format!("{}{}", self.url, feed::FEED_PATH);
        let response = match tokio::time::timeout(CONNECT_TIMEOUT, self.http.request(request)).await
        {
            Err(_) => {
                return Err(OpenError::Failed(format!(
                    "{url}: no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
            Ok(Err(e)) => return Err(OpenError::Failed(format!("{url}: {}", chain(&e)))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(FeedStream {
                url,
                body: response.into_body(),
                decoder: Decoder::default(),
            });
        }
        let server_protocol = response
            .headers()
            .get(feed::PROTOCOL_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let text = body_text(response.into_body()).await;
        let what = format!("{url}: {} {}", status.as_u16(), text.trim());
        Err(match status.as_u16() {
            401 | 403 => OpenError::Refused(format!(
                "{what} (check the token: --token-file, FLEETDECK_TOKEN or [connect] token_file)"
            )),
            400 if server_protocol.is_some() => OpenError::Refused(what),
            404 => OpenError::Refused(format!("{what} (is this a fleetdeck serve address?)")),
            _ => OpenError::Failed(what),
        })
    }

    /// Sends a write to the server; its answer.
    pub async fn act(&self, request: &ActionRequest) -> Result<String, String> {
        if let Some(problem) = &self.tls_problem {
            return Err(problem.clone());
        }
        let body = serde_json::to_vec(request).map_err(|e| format!("write not encodable: {e}"))?;
        let req = self.request("POST", feed::ACTIONS_PATH, body)?;
        let url = format!("{}{}", self.url, feed::ACTIONS_PATH);
        let response = match tokio::time::timeout(CONNECT_TIMEOUT, self.http.request(req)).await {
            Err(_) => {
                return Err(format!(
                    "{url}: no answer within {}s; the change may still apply",
                    CONNECT_TIMEOUT.as_secs()
                ));
            }
            Ok(Err(e)) => return Err(format!("{url}: {}", chain(&e))),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        let bytes = match Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(e) => return Err(format!("{url}: reading the answer: {e}")),
        };
        match serde_json::from_slice::<ActionReply>(&bytes) {
            Ok(reply) if reply.ok => Ok(reply.message),
            Ok(reply) => Err(reply.message),
            Err(_) => Err(format!(
                "{url}: {} {}",
                status.as_u16(),
                String::from_utf8_lossy(&bytes).trim()
            )),
        }
    }
}

async fn body_text(body: Incoming) -> String {
    match Limited::new(body, 64 * 1024).collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    }
}

/// An error with its causes: hyper's own message is only "client error (Connect)".
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The TLS settings: the system's roots, or only the CA in `ca_file`; a client
/// certificate if given.
fn tls_config(
    ca_file: Option<&std::path::Path>,
    client_cert: Option<&(std::path::PathBuf, std::path::PathBuf)>,
) -> (rustls::ClientConfig, Option<String>) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    let mut problem = None;
    match ca_file {
        Some(path) => match CertificateDer::pem_file_iter(path) {
            Ok(certs) => {
                for cert in certs {
                    match cert
                        .map_err(|e| e.to_string())
                        .and_then(|c| roots.add(c).map_err(|e| e.to_string()))
                    {
                        Ok(()) => {}
                        Err(e) => {
                            problem = Some(format!("CA file {}: {e}", path.display()));
                        }
                    }
                }
                if roots.is_empty() && problem.is_none() {
                    problem = Some(format!("CA file {}: no certificate in it", path.display()));
                }
            }
            Err(e) => problem = Some(format!("CA file {}: {e}", path.display())),
        },
        None => {
            let native = rustls_native_roots();
            for cert in native {
                let _ = roots.add(cert);
            }
        }
    }
    let plain = || {
        rustls::ClientConfig::builder()
            .with_root_certificates(roots.clone())
            .with_no_client_auth()
    };
    let Some((cert, key)) = client_cert else {
        return (plain(), problem);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("client certificate {}: {e}", cert.display()));
    let key =
        PrivateKeyDer::from_pem_file(key).map_err(|e| format!("client key {}: {e}", key.display()));
    let with_cert = chain.and_then(|chain| {
        rustls::ClientConfig::builder()
            .with_root_certificates(roots.clone())
            .with_client_auth_cert(chain, key?)
            .map_err(|e| format!("client certificate and key: {e}"))
    });
    match with_cert {
        Ok(config) => (config, problem),
        Err(e) => (plain(), Some(e)),
    }
}

/// The system's root certificates (none found: https fails with a certificate error,
/// which names the URL).
fn rustls_native_roots() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!("system root certificates: {e}");
    }
    found.certs
}
