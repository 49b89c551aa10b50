//! Every mode of the binary on one emulated fleet, with all its sources at once on
//! loopback: EKS on moto, CloudWatch on LocalStack, Prometheus alerts on a real
//! Alertmanager, and the Argo CD hub (and the spokes) on the stand-in Kubernetes API
//! server. The console (in a pseudo-terminal), `snapshot` and `guard` must agree on what
//! the fleet is: which wave each cluster is in, which cluster each alert is about, and
//! that a gate alarm firing on a cluster of the wave in progress trips the breaker.
//!
//! The fleet: four clusters in us-east-1 (`stg-a`, `stg-b` staging; `prod-a`, `prod-b`
//! prod), the ApplicationSet `addons` rolling out over them in two RollingSync steps
//! (staging, then prod) with the plan `gates: [addons-5xx-*]`, the gate alarm
//! `addons-5xx-stg-a` in ALARM on stg-a, `addons-prod-b` Degraded on prod-b, a
//! Prometheus alert about prod-a, and a Security Hub finding (Kyverno's
//! `pdb-maxunavailable`, as Policy Reporter imports it) on prod-b, on moto.
//!
//! `fleetdeck serve` reads the same scene once; `snapshot --connect` and a console
//! connected to it, with no AWS credentials and no config at all, see the same fleet.

#![allow(clippy::unwrap_used)]

mod am_server;
mod common;
mod kube_server;
mod localstack;
mod moto;
mod pty;

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};

use am_server::AlertmanagerServer;
use kube_server::{KubeServer, Kubeconfig};
use localstack::LocalStack;
use moto::{ClusterSpec, MotoServer};

const REGION: &str = "us-east-1";
const NAMESPACE: &str = "argocd";

/// The emulated fleet and fleetdeck's config for it.
struct Scene {
    _moto: MotoServer,
    _cloudwatch: LocalStack,
    _alertmanager: AlertmanagerServer,
    hub: KubeServer,
    /// Every spoke cluster's API server (one stand-in serves the four).
    _spokes: KubeServer,
    home: tempfile::TempDir,
    config: PathBuf,
}

const CLUSTERS: &[ClusterSpec] = &[
    ClusterSpec {
        name: "stg-a",
        version: "1.31",
        tags: &[("env", "staging")],
    },
    ClusterSpec {
        name: "stg-b",
        version: "1.31",
        tags: &[("env", "staging")],
    },
    ClusterSpec {
        name: "prod-a",
        version: "1.31",
        tags: &[("env", "prod")],
    },
    ClusterSpec {
        name: "prod-b",
        version: "1.31",
        tags: &[("env", "prod")],
    },
];

/// An Argo CD Application of the set, deployed to `cluster` by destination name.
fn application(cluster: &str, env: &str, health: &str, step: &str) -> Value {
    let mut status = json!({
        "health": { "status": health },
        "sync": { "status": "Synced", "revision": "4f2a9c1" },
        "operationState": {
            "phase": "Succeeded",
            "message": "successfully synced (all tasks run)",
            "startedAt": "2026-12-03T01:50:00Z",
            "finishedAt": "2026-12-03T01:51:00Z",
            "syncResult": { "revision": "4f2a9c1" }
        },
        "resources": [
            {
                "group": "apps", "version": "v1", "kind": "Deployment",
                "namespace": "kube-system", "name": "addons-controller",
                "status": "Synced", "health": { "status": health }
            }
        ]
    });
    if health == "Degraded" {
        status["resources"][0]["health"]["message"] =
            json!("Deployment \"addons-controller\" exceeded its progress deadline");
    }
    let _ = step;
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": format!("addons-{cluster}"),
            "namespace": NAMESPACE,
            "labels": { "env": env },
            "ownerReferences": [{
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "ApplicationSet",
                "name": "addons",
                "uid": "6b1a3c1e-0000-4000-8000-000000000001",
                "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "project": "default",
            "source": { "repoURL": "https://git.example/addons.git", "path": "addons", "targetRevision": "main" },
            "destination": { "name": cluster, "namespace": "kube-system" }
        },
        "status": status
    })
}

/// The ApplicationSet: staging then prod, gated on `addons-5xx-*`.
fn application_set() -> Value {
    let status = |cluster: &str, status: &str, step: &str| {
        json!({
            "application": format!("addons-{cluster}"),
            "status": status,
            "step": step,
            "message": match status {
                "Healthy" => "Application resource became Healthy, updating status from Progressing to Healthy.",
                "Progressing" => "Application resource completed a sync successfully, updating status from Pending to Progressing.",
                _ => "No Application status found, defaulting status to Waiting.",
            },
            "lastTransitionTime": "2026-12-03T01:55:00Z",
            "targetRevisions": ["4f2a9c1"]
        })
    };
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": "addons",
            "namespace": NAMESPACE,
            "uid": "6b1a3c1e-0000-4000-8000-000000000001",
            "annotations": {
                "fleetdeck.io/wave-names": "[\"staging\", \"prod\"]",
                "fleetdeck.io/plan": "soak: 30m\ngates: [addons-5xx-*]\n"
            }
        },
        "spec": {
            "goTemplate": true,
            "generators": [{ "clusters": {} }],
            "strategy": {
                "type": "RollingSync",
                "rollingSync": {
                    "steps": [
                        { "matchExpressions": [{ "key": "env", "operator": "In", "values": ["staging"] }] },
                        { "matchExpressions": [{ "key": "env", "operator": "In", "values": ["prod"] }], "maxUpdate": 1 }
                    ]
                }
            },
            "template": {
                "metadata": { "name": "addons-{{.name}}", "labels": { "env": "{{index .metadata.labels \"env\"}}" } },
                "spec": {
                    "project": "default",
                    "source": { "repoURL": "https://git.example/addons.git", "path": "addons", "targetRevision": "main" },
                    "destination": { "name": "{{.name}}", "namespace": "kube-system" }
                }
            }
        },
        "status": {
            "applicationStatus": [
                status("stg-a", "Healthy", "1"),
                status("stg-b", "Progressing", "1"),
                status("prod-a", "Waiting", "2"),
                status("prod-b", "Waiting", "2")
            ]
        }
    })
}

impl Scene {
    /// Starts every system, sets the fleet up in each, and writes fleetdeck's config.
    async fn start() -> Self {
        let moto = MotoServer::start();
        moto::create_clusters(&moto, REGION, CLUSTERS).await;
        moto::findings::import(
            &moto.securityhub(REGION),
            vec![moto::findings::kyverno(
                "prod-b-pdb",
                moto::MOTO_ACCOUNT_ID,
                REGION,
                "prod-b",
                "pdb-maxunavailable",
                ("PodDisruptionBudget", "payments", "api"),
                aws_sdk_securityhub::types::SeverityLabel::High,
            )],
        )
        .await;

        let cloudwatch = LocalStack::start();
        let cw = cloudwatch.cloudwatch(REGION);
        let gate =
            localstack::MetricAlarmSpec::new("addons-5xx-stg-a", "apiserver_request_total_5XX")
                .cluster("stg-a")
                .description("5xx from the API server of stg-a during the addons rollout");
        localstack::put_metric_alarm(&cw, REGION, &gate).await;
        cw.set_alarm_state()
            .alarm_name("addons-5xx-stg-a")
            .state_value(aws_sdk_cloudwatch::types::StateValue::Alarm)
            .state_reason(
                "Threshold Crossed: 1 datapoint [12.0] was greater than the threshold (1.0).",
            )
            .send()
            .await
            .expect("set the gate alarm to ALARM");
        let quiet =
            localstack::MetricAlarmSpec::new("addons-5xx-prod-a", "apiserver_request_total_5XX")
                .cluster("prod-a");
        localstack::put_metric_alarm(&cw, REGION, &quiet).await;
        cw.set_alarm_state()
            .alarm_name("addons-5xx-prod-a")
            .state_value(aws_sdk_cloudwatch::types::StateValue::Ok)
            .state_reason("quiet")
            .send()
            .await
            .expect("set an alarm to OK");

        let alertmanager = AlertmanagerServer::start();
        alertmanager
            .post_alerts(json!([{
                "labels": {
                    "alertname": "KubePodCrashLooping",
                    "cluster": "prod-a",
                    "namespace": "kube-system",
                    "pod": "coredns-7d9f-abcde",
                    "severity": "warning"
                },
                "annotations": { "summary": "coredns is crash looping" },
                "startsAt": "2026-12-03T01:40:00Z"
            }]))
            .await;

        let hub = KubeServer::start();
        hub.put(application_set());
        for (cluster, env, health, step) in [
            ("stg-a", "staging", "Healthy", "1"),
            ("stg-b", "staging", "Progressing", "1"),
            ("prod-a", "prod", "Healthy", "2"),
            ("prod-b", "prod", "Degraded", "2"),
        ] {
            hub.put(application(cluster, env, health, step));
        }
        let spokes = KubeServer::start();

        let home = tempfile::tempdir().expect("tempdir");
        let kubeconfig = home.path().join("kubeconfig");
        // Spoke contexts named by EKS ARN, as `aws eks update-kubeconfig` writes them.
        let mut contexts = Kubeconfig::new().context("hub", &hub, Some(NAMESPACE));
        for spec in CLUSTERS {
            let arn = format!(
                "arn:aws:eks:{REGION}:{}:cluster/{}",
                moto::MOTO_ACCOUNT_ID,
                spec.name
            );
            contexts = contexts.context(&arn, &spokes, None);
        }
        std::fs::write(&kubeconfig, contexts.yaml()).expect("kubeconfig");
        let config = home.path().join("fleet.toml");
        let text = format!(
            r#"[[accounts]]
name = "prod"
regions = ["{REGION}"]

[accounts.endpoints]
eks = "{eks}"
cloudwatch = "{cloudwatch}"
securityhub = "{eks}"

[securityhub]

[clusters]
environment_tag = "env"

[[alertmanagers]]
name = "am"
url = "{alertmanager}"

[hub]
context = "hub"
namespace = "{NAMESPACE}"

[kubernetes]
kubeconfig = "{kubeconfig}"
native_auth = false

[audit]
file = "{audit}"
"#,
            eks = moto.endpoint(),
            cloudwatch = cloudwatch.endpoint(),
            alertmanager = alertmanager.url(),
            kubeconfig = kubeconfig.display(),
            audit = home.path().join("audit.jsonl").display(),
        );
        std::fs::write(&config, text).expect("config");
        Self {
            _moto: moto,
            _cloudwatch: cloudwatch,
            _alertmanager: alertmanager,
            hub,
            _spokes: spokes,
            home,
            config,
        }
    }

    /// The binary, isolated in the scene's home, with the emulators' test credentials.
    fn fleetdeck(&self) -> assert_cmd::Command {
        let mut cmd = common::binary(self.home.path());
        for (k, v) in credentials() {
            cmd.env(k, v);
        }
        cmd.arg("--config").arg(&self.config);
        cmd.timeout(Duration::from_secs(120));
        cmd
    }

    /// The binary as a plain process (to signal it), with the same environment.
    fn process(&self) -> std::process::Command {
        let home = self.home.path();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"));
        cmd.env_clear()
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_STATE_HOME", home.join("state"))
            .env("LANG", "C.UTF-8");
        for (k, v) in credentials() {
            cmd.env(k, v);
        }
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    fn snapshot(&self) -> Value {
        let out = self
            .fleetdeck()
            .args(["snapshot", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        serde_json::from_slice(&out).expect("snapshot JSON")
    }

    fn audit(&self) -> Vec<Value> {
        std::fs::read_to_string(self.home.path().join("audit.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("audit line"))
            .collect()
    }

    fn console(&self, cols: u16, rows: u16) -> pty::Console {
        let mut cmd = common::pty_command(self.home.path());
        for (k, v) in credentials() {
            cmd.env(k, v);
        }
        cmd.arg("--config");
        cmd.arg(&self.config);
        pty::Console::start(cmd, cols, rows)
    }
}

fn credentials() -> [(&'static str, &'static str); 4] {
    [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_REGION", REGION),
    ]
}

/// cluster name -> wave label (`wave/phase`), from a snapshot.
fn waves(doc: &Value) -> Vec<(String, Option<String>)> {
    let mut rows: Vec<(String, Option<String>)> = doc["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["wave"].as_str().map(str::to_string),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// The firing alert named `name` in a snapshot.
fn alert<'a>(doc: &'a Value, name: &str) -> &'a Value {
    doc["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .find(|a| a["name"] == name && a["state"] == "firing")
        .unwrap_or_else(|| panic!("no firing alert {name} in {:#}", doc["alerts"]))
}

/// The `maxUpdate` of each RollingSync step of the set, as the hub holds it now.
fn max_updates(hub: &KubeServer) -> Vec<Value> {
    let set = hub
        .get("applicationsets.argoproj.io", Some(NAMESPACE), "addons")
        .expect("the set");
    set["spec"]["strategy"]["rollingSync"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s.get("maxUpdate").cloned().unwrap_or(Value::Null))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_sees_the_same_fleet_and_the_guard_trips_the_breaker() {
    let scene = Scene::start().await;

    // snapshot: every cluster in its wave, every alert on its cluster.
    let before = scene.snapshot();
    assert_eq!(
        waves(&before),
        [
            ("prod-a".to_string(), Some("prod/pending".to_string())),
            ("prod-b".to_string(), Some("prod/pending".to_string())),
            ("stg-a".to_string(), Some("staging/soaking".to_string())),
            ("stg-b".to_string(), Some("staging/updating".to_string())),
        ],
        "{before:#}"
    );
    let gate = alert(&before, "addons-5xx-stg-a");
    assert_eq!(gate["cluster"], "stg-a");
    assert_eq!(gate["source"], "cloudwatch");
    let degraded = alert(&before, "argocd-app-degraded");
    assert_eq!(degraded["cluster"], "prod-b", "{degraded:#}");
    assert_eq!(degraded["source"], "argocd");
    assert!(
        degraded["summary"]
            .as_str()
            .is_some_and(|s| s.contains("addons-controller") && !s.contains("successfully synced")),
        "{degraded:#}"
    );
    let crashloop = alert(&before, "KubePodCrashLooping");
    assert_eq!(crashloop["cluster"], "prod-a");
    let finding = alert(&before, "pdb-maxunavailable");
    assert_eq!(finding["cluster"], "prod-b", "{finding:#}");
    assert_eq!(finding["source"], "securityhub");
    let policies: Vec<(String, u64)> = before["clusters"]
        .as_array()
        .expect("clusters")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["policies_failing"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        policies.contains(&("prod-b".to_string(), 1))
            && policies.iter().filter(|(_, n)| *n > 0).count() == 1,
        "{policies:?}"
    );
    for source in before["sources"].as_array().expect("sources") {
        assert_eq!(source["healthy"], true, "{source:#}");
    }
    // Nothing is held on the hub yet.
    assert_eq!(max_updates(&scene.hub), [Value::Null, json!(1)]);

    // The console sees the same fleet, and previews what the guard will do.
    let mut console = scene.console(160, 48);
    let fleet = console.wait_for(
        &[
            "stg-a",
            "stg-b",
            "prod-a",
            "prod-b",
            "staging/soaking",
            // Every source answered: none is left "loading".
            "eks:prod/us-east-1 ok",
            "cloudwatch:prod/us-east-1 ok",
            "alertmanager:am ok",
            "argocd:hub ok",
            "securityhub:prod/us-east-1 ok",
        ],
        Duration::from_secs(60),
    );
    assert!(!fleet.contains("loading"), "{fleet}");
    for (name, wave) in waves(&before) {
        let row = fleet
            .lines()
            .find(|l| l.contains(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{fleet}"));
        assert!(row.contains(wave.as_deref().unwrap_or("-")), "{row}");
    }
    // The same alerts on the same clusters.
    console.keys("2");
    let alerts = console.wait_for(
        &[
            "addons-5xx-stg-a",
            "argocd-app-degraded",
            "KubePodCrashLooping",
            "pdb-maxunavailable",
        ],
        Duration::from_secs(30),
    );
    for name in [
        "addons-5xx-stg-a",
        "argocd-app-degraded",
        "KubePodCrashLooping",
        "pdb-maxunavailable",
    ] {
        let cluster = alert(&before, name)["cluster"]
            .as_str()
            .unwrap()
            .to_string();
        // Alerts are grouped by name: the group's line, then one line per alert.
        let lines: Vec<&str> = alerts.lines().collect();
        let group = lines
            .iter()
            .position(|l| l.contains(&format!("{name} (1)")))
            .unwrap_or_else(|| panic!("no group for {name}:\n{alerts}"));
        let row = lines[group + 1];
        assert!(
            row.contains(&cluster),
            "{name} should be on {cluster}: {row}\n{alerts}"
        );
    }
    console.keys("3");
    console.wait_for(
        &["held wave staging: circuit breaker: alarm addons-5xx-stg-a fired on stg-a"],
        Duration::from_secs(30),
    );

    // guard --once holds the wave in progress and every later one, on the hub.
    let out = scene
        .fleetdeck()
        .args(["guard", "--once", "--identity", "guard-test"])
        .assert()
        .success()
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("addons-5xx-stg-a") && !stderr.contains("nothing to change"),
        "{stderr}"
    );
    assert_eq!(max_updates(&scene.hub), [json!(0), json!(0)]);
    let audit = scene.audit();
    assert!(
        audit
            .iter()
            .any(|r| r.to_string().contains("guard-hold") && r.to_string().contains("staging")),
        "{audit:#?}"
    );
    let events = scene.hub.list("events", Some(NAMESPACE));
    assert!(
        events.iter().any(
            |e| e["type"] == "Warning" && e["message"].to_string().contains("addons-5xx-stg-a")
        ),
        "{events:#?}"
    );

    // Every mode now reads the holds back from the hub.
    let after = scene.snapshot();
    let states: Vec<&str> = after["rollouts"][0]["waves"]
        .as_array()
        .expect("waves")
        .iter()
        .map(|w| w["state"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(states, ["halted", "halted"], "{:#}", after["rollouts"]);
    console.wait_for(&["HALTED"], Duration::from_secs(30));
    console.quit();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_guard_trips_the_breaker_on_its_first_pass_and_leaves_on_sigterm() {
    let scene = Scene::start().await;
    let mut child = scene
        .process()
        .args(["guard", "--interval", "2s", "--identity", "guard-loop"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the guard");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while max_updates(&scene.hub) != [json!(0), json!(0)] {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().expect("guard output");
            panic!(
                "the running guard held nothing within 60s; it said:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM: it stops, and gives the Lease up so a successor takes over at once.
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    let out = child.wait_with_output().expect("guard exits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("guard-loop leads"), "{stderr}");
    assert!(
        stderr.contains("rollout addons: held wave staging: circuit breaker"),
        "{stderr}"
    );
    assert!(stderr.contains("released the Lease"), "{stderr}");
    let lease = scene
        .hub
        .get(
            "leases.coordination.k8s.io",
            Some(NAMESPACE),
            "fleetdeck-guard",
        )
        .expect("the Lease");
    assert!(
        lease["spec"]["holderIdentity"].is_null() || lease["spec"]["holderIdentity"] == "",
        "{lease:#}"
    );
}

/// A running `fleetdeck serve` on the scene, and the tokens it accepts.
struct Serving {
    child: std::process::Child,
    url: String,
    viewer_token: PathBuf,
}

impl Serving {
    fn start(scene: &Scene) -> Self {
        let tokens = scene.home.path().join("tokens");
        let viewer_token = scene.home.path().join("viewer.token");
        let out = scene
            .fleetdeck()
            .args([
                "serve", "token", "new", "manager", "--role", "viewer", "--tokens",
            ])
            .arg(&tokens)
            .assert()
            .success()
            .get_output()
            .clone();
        std::fs::write(&viewer_token, &out.stdout).unwrap();
        let mut child = scene
            .process()
            .args(["serve", "--listen", "127.0.0.1:0", "--tokens"])
            .arg(&tokens)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start serve");
        // Its first line names the address it listens on.
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let first = lines.next().expect("serve says where").unwrap();
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        // Keep draining what it says, so it never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Self {
            child,
            url,
            viewer_token,
        }
    }

    /// The binary as a manager runs it: a home of its own, no config, no AWS credentials.
    fn client(&self, home: &std::path::Path) -> assert_cmd::Command {
        let mut cmd = common::binary(home);
        cmd.arg("--connect")
            .arg(&self.url)
            .arg("--token-file")
            .arg(&self.viewer_token);
        cmd
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_the_scene_once_and_its_consoles_see_the_same_fleet() {
    let scene = Scene::start().await;
    let local = scene.snapshot();
    let serving = Serving::start(&scene);
    let manager = tempfile::tempdir().unwrap();

    // snapshot --connect: the same clusters in the same waves, the same alerts on the
    // same clusters, the same sources, all healthy; a viewer, since the token is one.
    let out = serving
        .client(manager.path())
        .args(["snapshot", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let remote: Value = serde_json::from_slice(&out).expect("snapshot JSON");
    assert_eq!(waves(&remote), waves(&local), "{remote:#}");
    for name in [
        "addons-5xx-stg-a",
        "argocd-app-degraded",
        "KubePodCrashLooping",
        "pdb-maxunavailable",
    ] {
        assert_eq!(
            alert(&remote, name)["cluster"],
            alert(&local, name)["cluster"],
            "{name}"
        );
        assert_eq!(
            alert(&remote, name)["source"],
            alert(&local, name)["source"]
        );
    }
    let names = |doc: &Value| {
        let mut names: Vec<String> = doc["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .filter(|n| !n.starts_with("feed:"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(&remote), names(&local));
    for source in remote["sources"].as_array().unwrap() {
        assert_eq!(source["healthy"], true, "{source:#}");
    }
    assert_eq!(remote["mode"], "viewer");
    assert_eq!(
        remote["rollouts"][0]["waves"], local["rollouts"][0]["waves"],
        "the guard's view of the waves, through the feed"
    );

    // A console connected the same way: the same rows, a viewer, and where it reads from.
    let mut cmd = common::pty_command(manager.path());
    cmd.args(["--connect", &serving.url, "--token-file"]);
    cmd.arg(&serving.viewer_token);
    let mut console = pty::Console::start(cmd, 160, 48);
    let host = serving.url.trim_start_matches("http://");
    let fleet = console.wait_for(
        &[
            "VIEWER",
            &format!("via {host}"),
            "stg-a",
            "prod-b",
            "staging/soaking",
        ],
        Duration::from_secs(60),
    );
    for (name, wave) in waves(&local) {
        let row = fleet
            .lines()
            .find(|l| l.contains(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no row for {name}:\n{fleet}"));
        assert!(row.contains(wave.as_deref().unwrap_or("-")), "{row}");
    }
    // A viewer is offered no write keys: pausing a wave is refused before anything.
    console.keys("3");
    console.wait_for(&["addons"], Duration::from_secs(30));
    console.keys("p");
    console.wait_for(&["viewer"], Duration::from_secs(10));
    console.quit();
    assert!(
        !manager.path().join("data").exists()
            || std::fs::read_dir(manager.path().join("data"))
                .unwrap()
                .count()
                == 0,
        "a viewer console writes no audit log"
    );
}
