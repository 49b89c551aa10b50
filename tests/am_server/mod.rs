//! A real Prometheus Alertmanager as a test fixture: started on a free loopback port with
//! clustering off, a temporary storage directory and a minimal config; killed on drop.
//!
//! The binary is `$FLEETDECK_ALERTMANAGER`, else `prometheus-alertmanager` (Debian's
//! package) or `alertmanager` on `PATH`. Without one the tests fail and say how to install
//! it: a test that silently skips would look like a pass.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fleetdeck::sources::alertmanager::Client;

/// How long Alertmanager may take to answer `/-/ready`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Routes everything to a receiver that sends nothing; a critical alert inhibits warnings
/// on the same cluster (so inhibition can be seen).
const CONFIG: &str = r#"route:
  receiver: "null"
  group_by: ["alertname", "cluster"]
receivers:
  - name: "null"
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: ["cluster"]
"#;

/// A running Alertmanager; killed when dropped.
pub struct AlertmanagerServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// The Alertmanager binary, or a message saying how to get one.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FLEETDECK_ALERTMANAGER").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "FLEETDECK_ALERTMANAGER={} does not exist",
            path.display()
        );
        return path;
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .flat_map(|dir| {
            [
                dir.join("prometheus-alertmanager"),
                dir.join("alertmanager"),
            ]
        })
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Prometheus Alertmanager not found: run the tests with ./scripts/test (it \
                 installs it), or install it yourself (Debian/Ubuntu: `apt-get install \
                 prometheus-alertmanager`), or set FLEETDECK_ALERTMANAGER to an \
                 alertmanager binary"
            )
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl AlertmanagerServer {
    /// Starts Alertmanager on 127.0.0.1 and waits until it is ready.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("alertmanager.yml"), CONFIG).expect("config written");
        let mut server = Self {
            child: None,
            port: free_port(),
            dir,
        };
        server.restart();
        server
    }

    /// Stops it (its alerts are gone; its silences were kept on disk).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Already gone is fine.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        let dir = self.dir.path();
        let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log file");
        let bin = binary();
        let child = Command::new(&bin)
            .arg(format!(
                "--config.file={}",
                dir.join("alertmanager.yml").display()
            ))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        self.child = Some(child);
        self.wait_until_ready();
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.ready() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let text = std::fs::read_to_string(self.dir.path().join("alertmanager.log"))
                    .unwrap_or_default();
                panic!(
                    "alertmanager did not start on port {} ({}):\n{text}",
                    self.port,
                    exited.map_or("timed out".to_string(), |s| s.to_string())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET /-/ready` answers 200.
    fn ready(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let request = format!(
            "GET /-/ready HTTP/1.0\r\nHost: 127.0.0.1:{}\r\n\r\n",
            self.port
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200")
    }

    /// `http://127.0.0.1:PORT`, for `url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A client on its API, to set the scene and check what fleetdeck did.
    pub fn client(&self) -> Client {
        Client::new("fixture", &self.url(), None)
    }

    /// Posts alerts (`POST /api/v2/alerts`, a JSON array), as Prometheus would.
    pub async fn post_alerts(&self, alerts: serde_json::Value) {
        let body = serde_json::to_vec(&alerts).expect("json");
        self.client()
            .post_json("/api/v2/alerts", body)
            .await
            .unwrap_or_else(|e| panic!("posting alerts: {e}"));
    }

    /// Every silence it holds (`GET /api/v2/silences`), active or not.
    pub async fn silences(&self) -> Vec<serde_json::Value> {
        let body = self
            .client()
            .get("/api/v2/silences")
            .await
            .unwrap_or_else(|e| panic!("listing silences: {e}"));
        serde_json::from_slice(&body).expect("silences JSON")
    }
}

impl Drop for AlertmanagerServer {
    fn drop(&mut self) {
        self.stop();
    }
}
