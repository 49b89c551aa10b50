//! The HTTP side of one Alertmanager: requests under its base URL, SigV4-signed for Amazon
//! Managed Prometheus, each bounded by a timeout, and errors that name the Alertmanager, the
//! method and the URL.
//!
//! Built on hyper 1 with rustls (ring) and the system's root certificates: the stack kube
//! already links, so no second HTTP or TLS implementation is compiled in.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::sigv4::Signer;

/// A request that takes longer than this has failed.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A response body larger than this is refused (a misdirected URL, not an alert list).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// What went wrong with a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpError {
    /// The HTTP status, when the server answered.
    pub status: Option<u16>,
    /// `NAME: METHOD URL: what happened`.
    pub message: String,
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// One Alertmanager's API.
#[derive(Clone)]
pub struct Client {
    name: String,
    base: String,
    http: HyperClient<Connector, Full<Bytes>>,
    signer: Option<Signer>,
    timeout: Duration,
}

impl Client {
    /// A client for the API under `url` (the Alertmanager's address, or an AMP workspace's
    /// `.../alertmanager`; a trailing `/` or `/api/v2` is ignored).
    pub fn new(name: &str, url: &str, signer: Option<Signer>) -> Self {
        crate::sources::kube::connect::install_crypto_provider();
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        let builder = match builder.with_native_roots() {
            Ok(b) => b,
            Err(e) => {
                // http:// still works; https:// will fail with a certificate error.
                tracing::warn!(alertmanager = name, "no system root certificates: {e}");
                hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(
                    rustls::ClientConfig::builder()
                        .with_root_certificates(rustls::RootCertStore::empty())
                        .with_no_client_auth(),
                )
            }
        };
        let connector = builder.https_or_http().enable_http1().build();
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Self {
            name: name.to_string(),
            base: base_url(url),
            http,
            signer,
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// The same client with another request timeout (tests shorten it).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The full URL of an API path such as `/api/v2/alerts`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`; the body of a 2xx answer.
    pub async fn get(&self, path: &str) -> Result<Bytes, HttpError> {
        self.send("GET", path, None).await
    }

    /// `POST path` with a JSON body; the body of a 2xx answer.
    pub async fn post_json(&self, path: &str, body: Vec<u8>) -> Result<Bytes, HttpError> {
        self.send("POST", path, Some(body)).await
    }

    /// `DELETE path`; the body of a 2xx answer.
    pub async fn delete(&self, path: &str) -> Result<Bytes, HttpError> {
        self.send("DELETE", path, None).await
    }

    async fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Bytes, HttpError> {
        let url = self.url(path);
        let fail = |status: Option<u16>, what: String| HttpError {
            status,
            message: format!("{}: {method} {url}: {what}", self.name),
        };
        let mut builder = http::Request::builder()
            .method(method)
            .uri(url.as_str())
            .header("accept", "application/json");
        if body.is_some() {
            builder = builder.header("content-type", "application/json");
        }
        let mut head = builder
            .body(())
            .map_err(|e| fail(None, format!("bad request: {e}")))?;
        let payload = body.unwrap_or_default();
        if let Some(signer) = &self.signer {
            signer
                .sign(&mut head, &payload)
                .await
                .map_err(|e| fail(None, e))?;
        }
        let (parts, ()) = head.into_parts();
        let request = http::Request::from_parts(parts, Full::new(Bytes::from(payload)));
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| fail(None, connect_message(&e)))?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(|e| fail(Some(status.as_u16()), format!("reading the body: {e}")))?
                .to_bytes();
            if status.is_success() {
                Ok(bytes)
            } else {
                Err(fail(
                    Some(status.as_u16()),
                    format!("HTTP {}: {}", status.as_u16(), excerpt(&bytes)),
                ))
            }
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(fail(
                None,
                format!("no answer within {}s", self.timeout.as_secs_f32()),
            )),
        }
    }
}

/// The API base: the configured URL without a trailing `/` or `/api/v2`.
fn base_url(url: &str) -> String {
    let mut base = url.trim().trim_end_matches('/').to_string();
    if let Some(stripped) = base.strip_suffix("/api/v2") {
        base = stripped.to_string();
    }
    base
}

/// "connection refused" rather than hyper's "client error (Connect)".
fn connect_message(e: &hyper_util::client::legacy::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = s.to_string();
        source = s.source();
    }
    if e.is_connect() {
        format!("cannot connect: {text}")
    } else {
        text
    }
}

/// The first line of an error body, short enough for a status line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        return "(empty body)".into();
    }
    let first: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_ignore_trailing_slashes_and_api_v2() {
        assert_eq!(base_url("http://127.0.0.1:9093/"), "http://127.0.0.1:9093");
        assert_eq!(
            base_url(
                "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/alertmanager/api/v2/"
            ),
            "https://aps-workspaces.us-east-1.amazonaws.com/workspaces/ws-1/alertmanager"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_names_the_alertmanager_and_url() {
        // A port just released: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let client = Client::new("am-test", &format!("http://127.0.0.1:{port}"), None);
        let e = client
            .get("/api/v2/alerts")
            .await
            .expect_err("nothing listens");
        assert!(
            e.message.starts_with(&format!(
                "am-test: GET http://127.0.0.1:{port}/api/v2/alerts: cannot connect"
            )),
            "{e}"
        );
        assert_eq!(e.status, None);
    }

    #[tokio::test]
    async fn a_server_that_never_answers_times_out() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Accept and hold the connection without answering.
        let hold = tokio::spawn(async move {
            let conn = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
            drop(conn);
        });
        let client = Client::new("slow", &format!("http://{addr}"), None)
            .with_timeout(Duration::from_millis(300));
        let e = client.get("/api/v2/alerts").await.expect_err("times out");
        assert!(e.message.ends_with("no answer within 0.3s"), "{e}");
        hold.abort();
    }
}
