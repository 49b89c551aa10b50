//! The feed end to end on loopback, in one process: the server on the demo fleet, and
//! consoles' engines (or hand-written HTTP requests) as its clients.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::*;
use crate::actions::read_audit;
use crate::cli::ServeArgs;
use crate::feed::Decoder;
use crate::model::{SourceStatus, WaveState};
use crate::sources::demo::DemoOptions;
use crate::sources::feed::Connect;

struct Served {
    url: String,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<()>>,
    audit: PathBuf,
}

impl Served {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

struct Tokens {
    operator: String,
    viewer: String,
    file: PathBuf,
}

fn tokens(dir: &Path) -> Tokens {
    let file = dir.join("tokens");
    Tokens {
        operator: tokens::new_token(&file, "alice", Mode::Operator).expect("token"),
        viewer: tokens::new_token(&file, "grafana", Mode::Viewer).expect("token"),
        file,
    }
}

fn demo(clusters: usize, speed: f64) -> DemoOptions {
    DemoOptions {
        seed: 7,
        clusters,
        speed,
    }
}

fn args(listen: SocketAddr, tokens: &Path) -> ServeArgs {
    ServeArgs {
        listen,
        tls_cert: None,
        tls_key: None,
        tokens: Some(tokens.to_path_buf()),
        client_ca: None,
        insecure_plaintext: false,
    }
}

async fn serve(dir: &Path, demo: DemoOptions, args: ServeArgs) -> Served {
    let setup = Setup::for_demo(&dir.join("server"), Mode::Operator, demo).expect("setup");
    let audit = setup.audit_path.clone();
    let server = Server::bind(&setup, &args).await.expect("binds");
    let url = server.url();
    let addr = server.listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.run(setup, async {
        let _ = stopped.await;
    }));
    Served {
        url,
        addr,
        stop: Some(stop),
        task,
        audit,
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("addr")
}

/// A console's engine connected to `url` with `token`, as `bob`.
async fn console(dir: &Path, url: &str, token: &str, ca_file: Option<PathBuf>) -> Engine {
    let mut setup =
        Setup::for_demo(&dir.join("console"), Mode::Operator, demo(1, 1.0)).expect("setup");
    setup.demo_mode = false;
    setup.os_user = "bob".into();
    setup.connect = Some(Connect {
        url: url.to_string(),
        token: Some(token.to_string()),
        client_cert: None,
        ca_file,
        os_user: "bob".into(),
    });
    let mut engine = Engine::start(&setup, setup.clock()).await;
    engine.open_actions(&setup).expect("actions");
    engine
}

/// Folds events in until `done` says so, or fails after `secs`.
async fn until(engine: &mut Engine, secs: u64, what: &str, done: impl Fn(&Engine) -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !done(engine) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs}s; sources: {:?}",
            engine.store().sources().collect::<Vec<_>>()
        );
        let _ = tokio::time::timeout(Duration::from_millis(100), engine.recv(512)).await;
        engine.tick();
    }
}

/// A hand-written HTTP/1.1 request; the status and as much of the body as came within
/// a second.
async fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream.write_all(request.as_bytes()).await.expect("writes");
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn cluster_names(engine: &Engine) -> Vec<String> {
    let mut names: Vec<String> = engine
        .store()
        .clusters()
        .iter()
        .map(|c| c.id.to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connected_console_sees_the_servers_fleet_and_its_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let served = serve(dir.path(), demo(48, 60.0), args(loopback(), &tokens.file)).await;

    let mut client = console(dir.path(), &served.url, &tokens.viewer, None).await;
    client
        .until_ready(Duration::from_secs(20))
        .await
        .expect("the feed's picture");
    // The same fleet as a local console on the same demo.
    let local_setup =
        Setup::for_demo(&dir.path().join("local"), Mode::Operator, demo(48, 60.0)).expect("setup");
    let mut local = Engine::start(&local_setup, local_setup.clock()).await;
    local
        .until_ready(Duration::from_secs(20))
        .await
        .expect("ready");
    assert_eq!(cluster_names(&client), cluster_names(&local));
    assert_eq!(client.store().clusters().len(), 48);
    // The server's sources are listed, with the feed itself.
    let names: Vec<String> = client.store().sources().map(|s| s.name.clone()).collect();
    assert!(names.contains(&"demo".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("feed:127.0.0.1:")),
        "{names:?}"
    );
    // A viewer token makes a viewer console, whatever it asked for.
    assert_eq!(client.mode(), Mode::Viewer);

    // Changes arrive: the demo's story moves on the server, and here.
    let generation = client.store().generation();
    let metrics_before: usize = (0..48)
        .filter_map(|i| {
            client
                .store()
                .metric(i, crate::model::MetricName::RequestTotal)
        })
        .map(|r| r.len())
        .sum();
    until(&mut client, 20, "new metric points through the feed", |e| {
        let now: usize = (0..48)
            .filter_map(|i| e.store().metric(i, crate::model::MetricName::RequestTotal))
            .map(|r| r.len())
            .sum();
        e.store().generation() > generation && now > metrics_before
    })
    .await;
    let feed = client
        .store()
        .sources()
        .find(|s| s.name.starts_with("feed:"))
        .cloned()
        .expect("feed health");
    assert_eq!(feed.status(client.now()), SourceStatus::Ok);
    assert!(feed.lag_ms.is_some(), "{feed:?}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_valid_token_nothing_of_the_fleet_is_said() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let served = serve(dir.path(), demo(48, 10.0), args(loopback(), &tokens.file)).await;
    let host = served.addr;
    let (status, text) = raw(
        host,
        &format!("GET /v1/feed HTTP/1.1\r\nHost: {host}\r\nfleetdeck-protocol: 1\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 401, "{text}");
    assert!(
        text.contains("a bearer token") && text.contains("is needed"),
        "{text}"
    );
    assert!(
        !text.contains("prod-"),
        "no cluster name without a token: {text}"
    );
    let (status, text) = raw(
        host,
        &format!(
            "GET /v1/feed HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer fdk_guessed\r\nfleetdeck-protocol: 1\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = raw(
        host,
        &format!(
            "POST /v1/actions HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nfleetdeck-protocol: 1\r\n\r\n{{}}"
        ),
    )
    .await;
    assert_eq!(status, 401, "{text}");
    let (status, text) = raw(
        host,
        &format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 200, "{text}");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_protocol_is_refused_saying_both() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let served = serve(dir.path(), demo(48, 10.0), args(loopback(), &tokens.file)).await;
    let host = served.addr;
    let (status, text) = raw(
        host,
        &format!(
            "GET /v1/feed HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nfleetdeck-protocol: 999\r\n\r\n",
            tokens.viewer
        ),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(
        text.contains("speaks feed protocol 1, the client 999"),
        "{text}"
    );
    assert!(
        text.to_lowercase().contains("fleetdeck-protocol: 1"),
        "{text}"
    );
    served.stop().await;
}

/// A wave still to come (pending), as the store has it: one the demo lets pause.
fn pausable(engine: &Engine) -> (String, usize, String) {
    engine
        .store()
        .rollouts()
        .iter()
        .find_map(|r| {
            r.waves
                .iter()
                .rposition(|w| matches!(w.state, WaveState::Pending))
                .map(|i| (r.name.clone(), i, r.waves[i].name.clone()))
        })
        .expect("a wave to pause")
}

fn is_paused(engine: &Engine, rollout: &str, wave: usize) -> bool {
    engine
        .store()
        .rollouts()
        .iter()
        .find(|r| r.name == rollout)
        .is_some_and(|r| matches!(r.waves[wave].state, WaveState::Paused { .. }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_crafted_write_is_refused_at_the_server_and_nothing_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let served = serve(dir.path(), demo(48, 10.0), args(loopback(), &tokens.file)).await;
    let mut watcher = console(dir.path(), &served.url, &tokens.viewer, None).await;
    watcher
        .until_ready(Duration::from_secs(20))
        .await
        .expect("ready");
    let (rollout, wave, wave_name) = pausable(&watcher);

    // What a modified client would send: a viewer's token, an operator's request.
    let body = serde_json::to_string(&feed::ActionRequest {
        action: Action::PauseWave {
            rollout: rollout.clone(),
            wave,
            wave_name,
            reason: "crafted".into(),
        },
        dry_run: false,
        os_user: "mallory".into(),
    })
    .expect("json");
    let host = served.addr;
    let (status, text) = raw(
        host,
        &format!(
            "POST /v1/actions HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\nfleetdeck-protocol: 1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            tokens.viewer,
            body.len()
        ),
    )
    .await;
    assert_eq!(status, 403, "{text}");
    assert!(text.contains("viewer"), "{text}");
    // Nothing ran: nothing audited, the wave not paused.
    let (entries, _) = read_audit(&served.audit).expect("audit readable");
    assert!(entries.is_empty(), "{entries:?}");
    for _ in 0..10 {
        let _ = tokio::time::timeout(Duration::from_millis(100), watcher.recv(512)).await;
    }
    assert!(!is_paused(&watcher, &rollout, wave));
    // And the viewer console itself refuses before asking.
    assert_eq!(watcher.mode(), Mode::Viewer);
    let refused = watcher.authorize(Action::ResumeWave {
        rollout,
        wave,
        wave_name: String::new(),
    });
    assert!(refused.is_err());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_pause_through_the_feed_reaches_the_demo_and_the_audit_names_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let served = serve(dir.path(), demo(48, 10.0), args(loopback(), &tokens.file)).await;
    let mut console = console(dir.path(), &served.url, &tokens.operator, None).await;
    console
        .until_ready(Duration::from_secs(20))
        .await
        .expect("ready");
    assert_eq!(console.mode(), Mode::Operator);
    let (rollout, wave, wave_name) = pausable(&console);

    let (authorized, exec) = console
        .authorize(Action::PauseWave {
            rollout: rollout.clone(),
            wave,
            wave_name,
            reason: "through the feed".into(),
        })
        .expect("an operator may pause");
    let outcome = console.execute(authorized, exec, None).await;
    assert!(outcome.ok, "{outcome:?}");
    // The server's demo paused it, and its feed says so here.
    until(&mut console, 20, "the pause, through the feed", |e| {
        is_paused(e, &rollout, wave)
    })
    .await;
    // The server's audit log names who asked, from where, through which token.
    let (entries, _) = read_audit(&served.audit).expect("audit");
    let entry = entries
        .iter()
        .find(|e| e.action.kind() == "pause-wave")
        .expect("audited on the server");
    let remote = entry.remote.as_ref().expect("the remote user");
    assert_eq!(
        (remote.token.as_str(), remote.os_user.as_str(), remote.role),
        ("alice", "bob", Mode::Operator)
    );
    assert!(remote.address.starts_with("127.0.0.1:"), "{remote:?}");
    assert_eq!(entry.identity, "demo (simulated)");
    assert!(entry.outcome.as_ref().is_some_and(|o| o.ok), "{entry:?}");
    served.stop().await;
}

/// A client that stops reading: its queue holds at most `QUEUE_FRAMES` frames, nothing
/// more is kept for it, and once it has read them it gets the whole picture (holding
/// what it missed) rather than the backlog. Driven turn by turn, so no socket buffer size
/// decides when the queue fills.
#[tokio::test]
async fn a_client_that_stops_reading_is_sent_a_fresh_picture_not_a_backlog() {
    let dir = tempfile::tempdir().expect("tempdir");
    let setup = Setup::for_demo(dir.path(), Mode::Operator, demo(1, 1.0)).expect("setup");
    let clock = crate::clock::Clock::Frozen(chrono::Utc::now());
    let mut engine = Engine::without_sources(&setup, clock);
    engine.publish();
    let mut hub = hub::Hub::default();
    let (queue, mut frames) = tokio::sync::mpsc::channel(QUEUE_FRAMES);
    let grant = tokens::Grant {
        name: "slow".into(),
        role: Mode::Viewer,
    };
    let hello = Frame::Heartbeat {
        sent_at: chrono::Utc::now(),
    };
    hub.join(grant, loopback(), queue, hello, &mut engine);
    let turns = QUEUE_FRAMES * 3;
    for i in 0..turns {
        let health = crate::model::SourceHealth::new(format!("source-{i}"), 60);
        engine.apply(crate::model::SourceEvent::Health(health));
        hub.publish(&mut engine);
    }
    let read = |frames: &mut tokio::sync::mpsc::Receiver<bytes::Bytes>| {
        let mut out = Vec::new();
        let mut decoder = Decoder::default();
        while let Ok(bytes) = frames.try_recv() {
            decoder.push(&bytes);
            while let Some(frame) = decoder.next_frame().expect("a frame") {
                out.push(frame);
            }
        }
        out
    };
    let backlog = read(&mut frames);
    assert_eq!(
        backlog.len(),
        QUEUE_FRAMES,
        "the queue is bounded: hello, picture, then events until full"
    );
    assert!(matches!(backlog[1], Frame::Picture { .. }));
    // Caught up: the next turn brings the whole picture, with what was missed in it.
    engine.apply(crate::model::SourceEvent::Health(
        crate::model::SourceHealth::new("after", 60),
    ));
    hub.publish(&mut engine);
    let next = read(&mut frames);
    let Some(Frame::Picture { events, .. }) = next.first() else {
        panic!("a fresh picture, not the backlog: {next:?}");
    };
    let last = format!("source-{}", turns - 1);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, crate::model::SourceEvent::Health(h) if h.name == last)),
        "the picture holds what the client missed"
    );
    // And the client is followed again from there.
    engine.apply(crate::model::SourceEvent::Health(
        crate::model::SourceHealth::new("later", 60),
    ));
    hub.publish(&mut engine);
    assert!(matches!(
        read(&mut frames).first(),
        Some(Frame::Events { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_keeps_the_picture_while_the_server_is_away_and_reconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let served = serve(dir.path(), demo(48, 1.0), args(loopback(), &tokens.file)).await;
    let addr = served.addr;
    let url = served.url.clone();
    let mut console = console(dir.path(), &url, &tokens.viewer, None).await;
    console
        .until_ready(Duration::from_secs(20))
        .await
        .expect("ready");
    served.stop().await;

    let feed_status = |e: &Engine| {
        e.store()
            .sources()
            .find(|s| s.name.starts_with("feed:"))
            .map(|s| s.status(e.now()))
    };
    until(&mut console, 20, "the lost connection, said", |e| {
        feed_status(e) == Some(SourceStatus::Failing)
    })
    .await;
    assert_eq!(
        console.store().clusters().len(),
        48,
        "the last picture stays"
    );

    // The server comes back on the same address.
    let again = serve(dir.path(), demo(48, 1.0), args(addr, &tokens.file)).await;
    until(&mut console, 30, "connected again", |e| {
        feed_status(e) == Some(SourceStatus::Ok)
    })
    .await;
    assert_eq!(console.store().clusters().len(), 48);
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_certificate() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca");
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().expect("key");
    let server_cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&server_key, &issuer)
        .expect("signed");
    let (ca_file, cert_file, key_file) = (
        dir.path().join("ca.pem"),
        dir.path().join("server.pem"),
        dir.path().join("server-key.pem"),
    );
    std::fs::write(&ca_file, ca_cert.pem()).expect("write");
    std::fs::write(&cert_file, server_cert.pem()).expect("write");
    std::fs::write(&key_file, server_key.serialize_pem()).expect("write");

    let mut tls_args = args(loopback(), &tokens.file);
    tls_args.tls_cert = Some(cert_file);
    tls_args.tls_key = Some(key_file);
    let served = serve(dir.path(), demo(48, 10.0), tls_args).await;
    assert!(
        served.url.starts_with("https://127.0.0.1:"),
        "{}",
        served.url
    );

    let mut console = console(dir.path(), &served.url, &tokens.viewer, Some(ca_file)).await;
    console
        .until_ready(Duration::from_secs(20))
        .await
        .expect("the picture over TLS");
    assert_eq!(console.store().clusters().len(), 48);

    // Without the CA, the server's certificate is not trusted: said, never ignored.
    let mut stranger = self::console(
        &dir.path().join("stranger"),
        &served.url,
        &tokens.viewer,
        None,
    )
    .await;
    until(&mut stranger, 20, "the untrusted certificate, said", |e| {
        e.store()
            .sources()
            .find(|s| s.name.starts_with("feed:"))
            .and_then(|s| s.last_error.clone())
            .is_some_and(|err| err.to_lowercase().contains("certificate"))
    })
    .await;
    assert!(stranger.store().clusters().is_empty());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_of_the_client_ca_stands_for_a_token() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    // The laptop's certificate is granted by name; the token lines stay valid.
    let mut file = std::fs::read_to_string(&tokens.file).expect("tokens");
    file.push_str("ops-laptop operator client-cert\n");
    std::fs::write(&tokens.file, file).expect("write");
    let ca = |name: &str| {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().expect("key");
        let cert = params.self_signed(&key).expect("ca");
        (cert.pem(), Issuer::new(params, key))
    };
    let leaf = |issuer: &Issuer<'_, KeyPair>, names: Vec<String>, cn: &str| {
        let mut params = CertificateParams::new(names).expect("params");
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().expect("key");
        let cert = params.signed_by(&key, issuer).expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    let (server_ca, server_issuer) = ca("server CA");
    let (client_ca, client_issuer) = ca("client CA");
    let (_, stranger_issuer) = ca("another CA");
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let (cert, key) = leaf(&server_issuer, vec!["127.0.0.1".into()], "fleetdeck");
    let mut tls = args(loopback(), &tokens.file);
    tls.tls_cert = Some(write("server.pem", &cert));
    tls.tls_key = Some(write("server-key.pem", &key));
    tls.client_ca = Some(write("client-ca.pem", &client_ca));
    let served = serve(dir.path(), demo(48, 10.0), tls).await;
    let server_ca_file = write("server-ca.pem", &server_ca);

    let connect = |home: &str, cert: Option<(PathBuf, PathBuf)>| {
        let mut setup =
            Setup::for_demo(&dir.path().join(home), Mode::Operator, demo(1, 1.0)).expect("setup");
        setup.demo_mode = false;
        setup.connect = Some(Connect {
            url: served.url.clone(),
            token: None,
            client_cert: cert,
            ca_file: Some(server_ca_file.clone()),
            os_user: "carol".into(),
        });
        setup
    };
    let (cert, key) = leaf(&client_issuer, vec![], "ops-laptop");
    let laptop = connect(
        "laptop",
        Some((write("laptop.pem", &cert), write("laptop-key.pem", &key))),
    );
    let mut console = Engine::start(&laptop, laptop.clock()).await;
    console
        .until_ready(Duration::from_secs(20))
        .await
        .expect("the picture, by certificate");
    assert_eq!(console.store().clusters().len(), 48);
    assert_eq!(console.mode(), Mode::Operator, "the grant's role");

    // A certificate of another CA is refused in the handshake; none and no token: 401.
    let (cert, key) = leaf(&stranger_issuer, vec![], "ops-laptop");
    let forged = connect(
        "forged",
        Some((write("forged.pem", &cert), write("forged-key.pem", &key))),
    );
    let mut forged = Engine::start(&forged, forged.clock()).await;
    let nothing = connect("nothing", None);
    let mut nothing = Engine::start(&nothing, nothing.clock()).await;
    let error_of = |e: &Engine| {
        e.store()
            .sources()
            .find(|s| s.name.starts_with("feed:"))
            .and_then(|s| s.last_error.clone())
            .unwrap_or_default()
    };
    until(&mut forged, 20, "the forged certificate refused", |e| {
        !error_of(e).is_empty()
    })
    .await;
    until(&mut nothing, 20, "no credential refused", |e| {
        error_of(e).contains("401")
    })
    .await;
    assert!(forged.store().clusters().is_empty() && nothing.store().clusters().is_empty());
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tls_only_loopback_unless_told_otherwise() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tokens = tokens(dir.path());
    let setup = Setup::for_demo(dir.path(), Mode::Operator, demo(4, 1.0)).expect("setup");
    let mut open = args("0.0.0.0:0".parse().expect("addr"), &tokens.file);
    let Err(refused) = Server::bind(&setup, &open).await else {
        panic!("a plaintext server on every address");
    };
    let message = format!("{refused:#}");
    assert!(
        message.contains("loopback") && message.contains("--insecure-plaintext"),
        "{message}"
    );
    open.insecure_plaintext = true;
    open.listen = "0.0.0.0:0".parse().expect("addr");
    assert!(Server::bind(&setup, &open).await.is_ok());
    // No tokens file, or an empty one: said before anything listens.
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "# nobody yet\n").expect("write");
    let Err(refused) = Server::bind(&setup, &args(loopback(), &empty)).await else {
        panic!("a server nobody can use");
    };
    assert!(
        format!("{refused:#}").contains("serve token new"),
        "{refused:#}"
    );
}
