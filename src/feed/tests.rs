use std::time::Duration;

use super::*;
use crate::actions::Mode;
use crate::app::Setup;
use crate::engine::Engine;
use crate::model::Store;
use crate::sources::demo::DemoOptions;

fn t0() -> Timestamp {
    chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("valid time")
}

/// Every frame read back as written, whether it came in one piece or byte by byte,
/// small (plain JSON) or large (gzip).
#[test]
fn frames_survive_the_wire_in_any_pieces() {
    let small = Frame::Heartbeat { sent_at: t0() };
    let alerts: Vec<SourceEvent> = (0..400)
        .map(|i| SourceEvent::Ready {
            source: format!("source-{i}-with-a-long-name-to-pass-the-compression-threshold"),
        })
        .collect();
    let large = Frame::Events {
        sent_at: t0(),
        events: alerts,
    };
    let small_bytes = encode(&small);
    let large_bytes = encode(&large);
    assert_eq!(small_bytes[4], 0, "a small frame is plain JSON");
    assert_eq!(large_bytes[4], 1, "a large frame is compressed");
    let json_len = serde_json::to_vec(&large).expect("json").len();
    assert!(
        large_bytes.len() < json_len / 4,
        "{} of {json_len}",
        large_bytes.len()
    );

    let mut wire = Vec::new();
    wire.extend_from_slice(&small_bytes);
    wire.extend_from_slice(&large_bytes);
    wire.extend_from_slice(&small_bytes);
    // All at once.
    let mut d = Decoder::default();
    d.push(&wire);
    let mut got = Vec::new();
    while let Some(f) = d.next_frame().expect("decodes") {
        got.push(f);
    }
    assert_eq!(got, vec![small.clone(), large.clone(), small.clone()]);
    // A byte at a time.
    let mut d = Decoder::default();
    let mut got = Vec::new();
    for b in &wire {
        d.push(std::slice::from_ref(b));
        while let Some(f) = d.next_frame().expect("decodes") {
            got.push(f);
        }
    }
    assert_eq!(got, vec![small.clone(), large, small]);
}

#[test]
fn bad_bytes_are_errors_not_frames() {
    let mut d = Decoder::default();
    d.push(&[0xff, 0xff, 0xff, 0xff, 0]);
    assert!(matches!(d.next_frame(), Err(DecodeError::TooLarge(_))));
    let mut d = Decoder::default();
    d.push(&[0, 0, 0, 2, 7, b'{', b'}']);
    assert!(matches!(d.next_frame(), Err(DecodeError::Compression(7))));
    let mut d = Decoder::default();
    d.push(&[0, 0, 0, 2, 0, b'{', b'}']);
    assert!(matches!(d.next_frame(), Err(DecodeError::Json(_))));
    let mut d = Decoder::default();
    d.push(&[0, 0, 0, 3, 1, 1, 2, 3]);
    assert!(matches!(d.next_frame(), Err(DecodeError::Unpack(_))));
}

#[test]
fn host_of_a_url_is_what_the_header_names() {
    assert_eq!(host_of("https://fleet.example:7700"), "fleet.example:7700");
    assert_eq!(host_of("http://127.0.0.1:7700/"), "127.0.0.1:7700");
    assert_eq!(host_of("https://user@fleet.example"), "fleet.example");
}

/// Each event of a picture as JSON, sorted: two pictures that say the same thing compare
/// equal whatever order the store's hash maps gave.
fn said(events: &[SourceEvent]) -> Vec<String> {
    let mut out: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("json"))
        .collect();
    out.sort();
    out
}

/// The demo fleet's picture, sent over the wire and folded into an empty store, is the
/// same picture: the same snapshot, and the same picture again (clusters, every metric
/// point, alerts, rollouts, sources and their readiness).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_picture_folded_into_an_empty_store_is_the_same_picture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let demo = DemoOptions {
        seed: 7,
        clusters: 120,
        speed: 60.0,
    };
    let setup = Setup::for_demo(dir.path(), Mode::Operator, demo).expect("setup");
    let mut engine = Engine::start(&setup, setup.clock()).await;
    engine
        .until_ready(Duration::from_secs(20))
        .await
        .expect("the demo is ready");
    // Some minutes of the story: metrics, alerts firing and resolving, waves moving.
    let until = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), engine.recv(512)).await;
    }
    let server = engine.store();
    assert!(server.alerts().count() > 0 && !server.rollouts().is_empty());

    let wire = encode(&Frame::Picture {
        sent_at: t0(),
        complete: true,
        events: server.picture(),
    });
    let mut decoder = Decoder::default();
    decoder.push(&wire);
    let Some(Frame::Picture { events, .. }) = decoder.next_frame().expect("decodes") else {
        panic!("a picture");
    };
    let now = engine.now();
    let mut client = Store::new();
    for event in events {
        client.apply(event, now);
    }

    assert_eq!(said(&client.picture()), said(&server.picture()));
    let snapshot = |store: &Store| {
        serde_json::to_value(crate::snapshot::build(
            store,
            &setup.runbooks,
            "viewer",
            true,
            now,
        ))
        .expect("json")
    };
    assert_eq!(snapshot(&client), snapshot(server));
    assert_eq!(client.clusters().len(), 120);
    assert_eq!(client.summary(now), server.summary(now));
}

/// What is only remembered from the last session is not sent as if it were fresh.
#[test]
fn remembered_clusters_and_alerts_are_not_in_the_picture() {
    let mut store = Store::new();
    let id = crate::model::ClusterId::new("acct", "eu-west-1", "old-01");
    let cluster = crate::model::Cluster {
        arn: String::new(),
        version: "1.31".into(),
        platform_version: "eks.1".into(),
        described: crate::model::Described::Yes,
        status: crate::model::ClusterStatus::Active,
        environment: crate::model::Environment::from_tag("prod"),
        team: None,
        health_issues: vec![],
        insights: vec![],
        updates: vec![],
        addons: vec![],
        support: None,
        endpoint: None,
        certificate_authority: None,
        id,
    };
    store.apply(
        SourceEvent::ClusterInventory {
            source: "eks:acct/eu-west-1".into(),
            clusters: vec![cluster],
        },
        t0(),
    );
    store.mark_cached(t0());
    let picture = store.picture();
    assert!(
        !picture.iter().any(
            |e| matches!(e, SourceEvent::ClusterInventory { clusters, .. } if !clusters.is_empty())
        ),
        "{picture:?}"
    );
}
