//! Every source failing at once, through the real binary: `fleetdeck snapshot` against an
//! AWS account whose endpoint refuses connections, one whose name does not resolve, an
//! Alertmanager that never answers, one answering 503, and an Argo CD hub that refuses.
//! The snapshot must finish in bounded time and list each source as failing with what
//! failed and where. Only loopback addresses and `.invalid` names: nothing leaves the host.
//! (Each source's own fault tests, with recovery, live in its `tests.rs`.)

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UNRESOLVABLE: &str = "http://fleetdeck-nonexistent.invalid";

/// A loopback port nothing listens on.
fn refused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// A server that accepts connections and never answers.
async fn hung() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
        }
    });
    url
}

/// A server answering every request with 503 and an HTML body, as a load balancer does.
async fn unavailable() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let body = "<html><body><h1>503 Service Unavailable</h1></body></html>";
                let reply = format!(
                    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

fn write_config(home: &Path, aws_refused: &str, am_hung: &str, am_503: &str) -> std::path::PathBuf {
    let hub = refused_port();
    let kubeconfig = home.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: hub\n  cluster:\n    server: http://127.0.0.1:{hub}\nusers:\n- name: oncall\n  user:\n    token: not-a-real-token\ncontexts:\n- name: hub-admin\n  context:\n    cluster: hub\n    user: oncall\n    namespace: argocd\ncurrent-context: hub-admin\n"
        ),
    )
    .unwrap();
    let path = home.join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            r#"[[accounts]]
name = "refused"
regions = ["us-east-1"]
endpoint_url = "{aws_refused}"

[[accounts]]
name = "nodns"
regions = ["eu-west-1"]
endpoint_url = "{UNRESOLVABLE}"

[hub]
context = "hub-admin"
namespace = "argocd"

[kubernetes]
kubeconfig = "{}"

[[alertmanagers]]
name = "am-hung"
url = "{am_hung}"

[[alertmanagers]]
name = "am-503"
url = "{am_503}"
"#,
            kubeconfig.display()
        ),
    )
    .unwrap();
    path
}

/// `(healthy, last_error)` of every source in a snapshot, by name.
fn sources(doc: &Value) -> std::collections::BTreeMap<String, (bool, String)> {
    doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or_default().to_string(),
                (
                    s["healthy"].as_bool().unwrap_or(false),
                    s["last_error"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_finishes_in_bounded_time_and_names_every_fault() {
    let am_hung = hung().await;
    let am_503 = unavailable().await;
    let aws_refused = format!("http://127.0.0.1:{}", refused_port());
    let home = tempfile::tempdir().unwrap();
    let config = write_config(home.path(), &aws_refused, &am_hung, &am_503);

    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let home = home.path().to_path_buf();
        move || {
            common::binary(&home)
                .env("AWS_ACCESS_KEY_ID", "testing")
                .env("AWS_SECRET_ACCESS_KEY", "testing")
                .env("AWS_EC2_METADATA_DISABLED", "true")
                .timeout(Duration::from_secs(90))
                .args(["snapshot", "--format", "json", "--config"])
                .arg(&config)
                .assert()
                // Every source that asked failed (Kubernetes has no cluster to ask yet):
                // the picture is printed, and the exit says so.
                .code(1)
                .stderr(predicates::str::contains(
                    "no source answered (7 tried); the picture holds no live data",
                ))
                .get_output()
                .stdout
                .clone()
        }
    })
    .await
    .unwrap();
    let took = started.elapsed();
    // The slowest fault is the hung Alertmanager: its 10 s request timeout.
    assert!(took < Duration::from_secs(45), "snapshot took {took:?}");
    let doc: Value = serde_json::from_slice(&out).unwrap();
    let sources = sources(&doc);
    let failing = |name: &str, what: &[&str]| {
        let (healthy, error) = sources
            .get(name)
            .unwrap_or_else(|| panic!("{name} listed: {sources:#?}"));
        assert!(!healthy, "{name} shown failing");
        for part in what {
            assert!(
                error.contains(part),
                "{name}: {error:?} should say {part:?}"
            );
        }
    };
    failing(
        "eks:refused/us-east-1",
        &["eks:ListClusters: connection failed", "refused"],
    );
    failing(
        "cloudwatch:refused/us-east-1",
        &["cloudwatch:DescribeAlarms: connection failed", "refused"],
    );
    failing("eks:nodns/eu-west-1", &["eks:ListClusters", "dns error"]);
    failing(
        "alertmanager:am-hung",
        &[
            &format!("am-hung: GET {am_hung}/api/v2/"),
            "no answer within 10s",
        ],
    );
    failing(
        "alertmanager:am-503",
        &[
            &format!("am-503: GET {am_503}/api/v2/alerts/groups"),
            "HTTP 503",
        ],
    );
    failing("argocd:hub-admin", &["argoproj.io/v1alpha1 ", "refused"]);
}
