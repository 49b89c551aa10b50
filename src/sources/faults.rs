//! Test doubles for the sources' fault tests: a loopback HTTP server whose behaviour can be
//! switched mid-test (answer, hang, fail), addresses that cannot be resolved or that refuse
//! connections, and an AWS credentials provider that can be made to fail and recover.
//! Everything stays on 127.0.0.1; nothing reaches the network.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::error::CredentialsError;
use aws_credential_types::provider::{ProvideCredentials, future};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A host under `.invalid`, which never resolves (RFC 6761).
pub const UNRESOLVABLE_HOST: &str = "fleetdeck-nonexistent.invalid";

/// A loopback port nothing listens on: bound, then released.
pub fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request target: path and query.
    pub path: String,
    /// The request line and headers, as sent.
    pub headers: String,
}

/// What the server does with the next requests.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Answer through the server's function.
    Answer,
    /// Read the request and never answer (the connection stays open).
    Hang,
    /// Answer every request with this status, headers and body.
    Fixed(u16, Vec<(String, String)>, Vec<u8>),
}

/// An answer: status, headers, body. Status 0 opens a stream that stays quiet.
pub type Reply = (u16, Vec<(String, String)>, Vec<u8>);

/// A JSON answer.
pub fn json(status: u16, body: &str) -> Reply {
    (
        status,
        vec![("content-type".into(), "application/json".into())],
        body.as_bytes().to_vec(),
    )
}

type Answer = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A loopback HTTP/1.1 server (one request per connection) whose mode can be switched.
#[derive(Clone)]
pub struct FaultServer {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FaultServer {
    /// Starts a server on 127.0.0.1 answering with `answer` until told otherwise.
    pub async fn start(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Self {
        Self::start_on(0, answer).await
    }

    /// [`Self::start`] on a given loopback port (0: any), e.g. one that refused before.
    pub async fn start_on(
        port: u16,
        answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let server = Self {
            url,
            mode: Arc::new(Mutex::new(Mode::Answer)),
            seen: Arc::default(),
        };
        let answer: Answer = Arc::new(answer);
        let (mode, seen) = (server.mode.clone(), server.seen.clone());
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let (mode, seen, answer) = (mode.clone(), seen.clone(), answer.clone());
                tokio::spawn(serve_one(conn, mode, seen, answer));
            }
        });
        server
    }

    pub fn set(&self, mode: Mode) {
        *self.mode.lock().expect("mode") = mode;
    }

    /// Requests seen so far (a hung one included).
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

async fn serve_one(
    mut conn: tokio::net::TcpStream,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Answer,
) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&data[..head_end]).to_string();
    let length = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    // Read the whole body: closing with unread input would reset the connection.
    while data.len() < head_end + length {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
    let mut words = head.split_whitespace();
    let request = Seen {
        path: words.nth(1).unwrap_or_default().to_string(),
        headers: head.clone(),
    };
    seen.lock().expect("seen").push(request.clone());
    let current = mode.lock().expect("mode").clone();
    let (status, headers, body) = match current {
        Mode::Hang => {
            // Sit on the connection far longer than any client waits.
            tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
            return;
        }
        Mode::Fixed(status, headers, body) => (status, headers, body),
        Mode::Answer => answer(&request),
    };
    if status == 0 {
        // A quiet stream (a watch): headers at once, then nothing.
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        let _ = conn.write_all(head.as_bytes()).await;
        tokio::time::sleep(Duration::from_secs(24 * 3600)).await;
        return;
    }
    let mut reply = format!("HTTP/1.1 {status} X\r\n");
    for (k, v) in &headers {
        reply.push_str(&format!("{k}: {v}\r\n"));
    }
    reply.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    ));
    let mut bytes = reply.into_bytes();
    bytes.extend_from_slice(&body);
    let _ = conn.write_all(&bytes).await;
    let _ = conn.shutdown().await;
}

/// AWS credentials that can be made to fail ("the SSO session has expired") and to work
/// again; each success hands out new session credentials, as a refresh does.
#[derive(Clone, Debug, Default)]
pub struct FlakyCredentials {
    failing: Arc<AtomicBool>,
    calls: Arc<AtomicUsize>,
}

impl FlakyCredentials {
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How often credentials were asked for.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

impl ProvideCredentials for FlakyCredentials {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.failing.load(Ordering::SeqCst) {
            return future::ProvideCredentials::ready(Err(CredentialsError::not_loaded(
                "the SSO session has expired",
            )));
        }
        future::ProvideCredentials::ready(Ok(Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            Some(format!("session-{n}")),
            None,
            "flaky",
        )))
    }
}
