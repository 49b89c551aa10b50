//! Parsing and merging on bodies shaped exactly like Alertmanager 0.25's answers (captured
//! from `prometheus-alertmanager`), plus the variants other versions and AMP produce.

use std::collections::HashMap;

use super::merge::{self, ClusterIndex, Held};
use super::wire::{self, WireAlert, WireSilence};
use crate::model::{AckKind, AlertKey, AlertState, ClusterId, Severity, Timestamp};
use crate::sources::ClusterTarget;

fn t(rfc3339: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("valid time")
        .with_timezone(&chrono::Utc)
}

/// `GET /api/v2/alerts/groups` from Alertmanager 0.25: one alert silenced, one inhibited.
const GROUPS: &str = r#"[{"alerts":[{"annotations":{"runbook_url":"https://runbooks.example.com/KubeAPIErrorsHigh","summary":"API server 5xx above 5%"},"endsAt":"2026-11-21T09:25:03.446Z","fingerprint":"dd0a0ebd739a3249","receivers":[{"name":"null"}],"startsAt":"2026-11-21T09:20:03.446Z","status":{"inhibitedBy":[],"silencedBy":["856f93ac-9bc7-4562-b1fd-798f7e0e8843"],"state":"suppressed"},"updatedAt":"2026-11-21T09:20:03.446Z","generatorURL":"http://prom/graph?g0.expr=x","labels":{"alertname":"KubeAPIErrorsHigh","cluster":"prod-use1-checkout-01","namespace":"kube-system","severity":"critical"}}],"labels":{"alertname":"KubeAPIErrorsHigh","cluster":"prod-use1-checkout-01"},"receiver":{"name":"null"}},{"alerts":[{"annotations":{"description":"pod x crashloops\nsecond line"},"endsAt":"2026-11-21T09:25:03.446Z","fingerprint":"7e5f4ab1c1e865c2","receivers":[{"name":"null"}],"startsAt":"2026-11-21T09:20:03.446Z","status":{"inhibitedBy":["dd0a0ebd739a3249"],"silencedBy":[],"state":"suppressed"},"updatedAt":"2026-11-21T09:20:03.446Z","labels":{"alertname":"KubePodCrashLooping","cluster":"prod-use1-checkout-01","pod":"x","severity":"warning"}}],"labels":{"alertname":"KubePodCrashLooping","cluster":"prod-use1-checkout-01"},"receiver":{"name":"null"}}]"#;

/// `GET /api/v2/silences` from Alertmanager 0.25.
const SILENCES: &str = r#"[{"id":"856f93ac-9bc7-4562-b1fd-798f7e0e8843","status":{"state":"active"},"updatedAt":"2026-11-21T09:20:03.457Z","comment":"looking","createdBy":"alice","endsAt":"2030-01-01T00:00:00.000Z","matchers":[{"isEqual":true,"isRegex":false,"name":"alertname","value":"KubeAPIErrorsHigh"}],"startsAt":"2026-11-21T09:20:03.457Z"},{"id":"0b0e2c4e-0000-4000-8000-000000000000","status":{"state":"expired"},"comment":"old","createdBy":"bob","endsAt":"2026-11-20T00:00:00Z","matchers":[],"startsAt":"2026-11-19T00:00:00Z"}]"#;

const NOW: &str = "2026-11-21T09:21:00Z";

fn silences() -> HashMap<String, WireSilence> {
    wire::parse_silences(SILENCES.as_bytes())
        .expect("silences")
        .items
        .into_iter()
        .map(|s| (s.id.clone(), s))
        .collect()
}

fn fleet() -> Vec<ClusterTarget> {
    vec![ClusterTarget {
        id: ClusterId::new("prod", "us-east-1", "prod-use1-checkout-01"),
        arn: "arn:aws:eks:us-east-1:111122223333:cluster/prod-use1-checkout-01".into(),
        endpoint: None,
        certificate_authority: None,
        production: true,
    }]
}

fn held<'a>(
    name: &'a str,
    alerts: &'a [WireAlert],
    silences: &'a HashMap<String, WireSilence>,
) -> Held<'a> {
    Held {
        name,
        answering: true,
        cluster_label: "cluster",
        alerts,
        silences,
    }
}

fn named<'a>(alerts: &'a [crate::model::Alert], name: &str) -> &'a crate::model::Alert {
    alerts
        .iter()
        .find(|a| a.name == name)
        .unwrap_or_else(|| panic!("no {name} in {alerts:#?}"))
}

/// The alerts of one Alertmanager holding `items` (with `silences`), on the test fleet.
fn merged_one(
    items: &[WireAlert],
    silences: &HashMap<String, WireSilence>,
) -> Vec<crate::model::Alert> {
    merge::merge(
        &[held("am", items, silences)],
        &ClusterIndex::new(&fleet()),
        t(NOW),
    )
}

#[test]
fn groups_map_to_alerts_on_their_cluster_with_silence_and_inhibition() {
    let read = wire::parse_groups(GROUPS.as_bytes()).expect("groups");
    assert_eq!((read.items.len(), read.skipped), (2, 0));
    let silences = silences();
    let alerts = merged_one(&read.items, &silences);
    assert_eq!(alerts.len(), 2);
    let api = named(&alerts, "KubeAPIErrorsHigh");
    assert_eq!(
        api.cluster,
        Some(ClusterId::new("prod", "us-east-1", "prod-use1-checkout-01"))
    );
    assert_eq!(api.severity, Severity::Critical);
    assert_eq!(api.state, AlertState::Firing);
    assert_eq!(api.summary, "API server 5xx above 5%");
    assert_eq!(
        api.runbook_url.as_deref(),
        Some("https://runbooks.example.com/KubeAPIErrorsHigh")
    );
    assert_eq!(api.first_seen, t("2026-11-21T09:20:03.446Z"));
    assert_eq!(
        api.labels.get("namespace").map(String::as_str),
        Some("kube-system")
    );
    let ack = api.ack.as_ref().expect("silenced");
    assert_eq!(ack.by, "alice");
    assert_eq!(ack.until, Some(t("2030-01-01T00:00:00Z")));
    assert_eq!(ack.comment, "looking");
    assert_eq!(
        ack.kind,
        AckKind::Silence {
            ids: vec!["856f93ac-9bc7-4562-b1fd-798f7e0e8843".into()]
        }
    );
    assert!(api.is_suppressed(t(NOW)));

    let pod = named(&alerts, "KubePodCrashLooping");
    assert_eq!(pod.severity, Severity::Warning);
    assert_eq!(
        pod.summary, "pod x crashloops",
        "first line of the description"
    );
    let ack = pod.ack.as_ref().expect("inhibited");
    assert_eq!(ack.by, "inhibited");
    assert_eq!(
        ack.kind,
        AckKind::Inhibited {
            by: vec!["dd0a0ebd739a3249".into()]
        }
    );
}

#[test]
fn one_alert_held_by_an_ha_pair_is_one_row_and_a_silence_in_either_counts() {
    let read = wire::parse_groups(GROUPS.as_bytes()).expect("groups");
    // The peer has the same alerts, not (yet) silenced, and started later.
    let mut peer = read.items.clone();
    for a in &mut peer {
        a.status = Default::default();
        a.status.state = "active".into();
        a.starts_at = Some("2026-11-21T09:20:30Z".into());
    }
    let silences = silences();
    let none = HashMap::new();
    let alerts = merge::merge(
        &[
            held("am-b", &peer, &none),
            held("am-a", &read.items, &silences),
        ],
        &ClusterIndex::default(),
        t(NOW),
    );
    assert_eq!(alerts.len(), 2, "one row per alert: {alerts:#?}");
    let api = named(&alerts, "KubeAPIErrorsHigh");
    assert_eq!(
        api.first_seen,
        t("2026-11-21T09:20:03.446Z"),
        "earliest start"
    );
    assert_eq!(api.ack.as_ref().map(|a| a.by.as_str()), Some("alice"));
    // With no cluster list yet the cluster keeps its label's name.
    assert_eq!(
        api.cluster.as_ref().map(|c| c.name.as_str()),
        Some("prod-use1-checkout-01")
    );
}

#[test]
fn plain_alert_lists_nulls_and_new_fields_are_read() {
    // `/api/v2/alerts` (no groups), as AMP and newer Alertmanagers write it: `mutedBy`,
    // nulls, unknown fields, a missing fingerprint and an unreadable entry.
    let body = br#"[
      {"labels":{"alertname":"EtcdHighFsync","cluster":"arn:aws:eks:us-east-1:111122223333:cluster/prod-use1-checkout-01","severity":"info"},
       "annotations":null,"startsAt":"2026-11-21T09:00:00Z","endsAt":"2026-11-21T09:30:00Z",
       "status":{"state":"suppressed","silencedBy":null,"inhibitedBy":null,"mutedBy":["weekends"]},
       "receivers":[{"name":"sns"}],"somethingNew":{"x":1}},
      {"labels":{"alertname":"Broken"},"annotations":{"summary":42}},
      {"labels":{"alertname":"NoCluster","severity":"page"},"fingerprint":null,"status":null}
    ]"#;
    let read = wire::parse_alerts(body).expect("alerts");
    assert_eq!(read.items.len(), 2);
    assert_eq!(read.skipped, 1);
    let warning = read.warning("alerts").expect("a warning");
    assert!(
        warning.starts_with("skipped 1 alerts that could not be read"),
        "{warning}"
    );
    let none = HashMap::new();
    let alerts = merged_one(&read.items, &none);
    let etcd = named(&alerts, "EtcdHighFsync");
    assert_eq!(
        etcd.cluster,
        Some(ClusterId::new("prod", "us-east-1", "prod-use1-checkout-01")),
        "an EKS ARN in the cluster label names the cluster"
    );
    assert_eq!(etcd.severity, Severity::Info);
    assert_eq!(etcd.summary, "EtcdHighFsync", "no annotations: the name");
    assert_eq!(etcd.ack.as_ref().map(|a| a.by.as_str()), Some("muted"));
    let other = named(&alerts, "NoCluster");
    assert_eq!(other.cluster, None);
    assert_eq!(other.severity, Severity::Critical);
    assert!(
        other.key.0.starts_with("alertmanager:-:NoCluster:l"),
        "{}",
        other.key
    );
}

#[test]
fn an_alert_past_its_end_is_resolved_not_listed() {
    let body = br#"[{"labels":{"alertname":"Gone"},"fingerprint":"f1","startsAt":"2026-11-21T08:00:00Z","endsAt":"2026-11-21T09:00:00Z","status":{"state":"unprocessed"}}]"#;
    let read = wire::parse_alerts(body).expect("alerts");
    let none = HashMap::new();
    let alerts = merged_one(&read.items, &none);
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn bodies_that_are_not_lists_say_what_was_expected() {
    let e = wire::parse_groups(b"<html>502 Bad Gateway</html>").expect_err("html");
    assert!(
        e.starts_with("not a list of alert groups: expected value at line 1 column 1"),
        "{e}"
    );
    let e = wire::parse_alerts(br#"{"status":"error"}"#).expect_err("object");
    assert!(
        e.starts_with("not a list of alerts: invalid type: map"),
        "{e}"
    );
    let e = wire::parse_silence_created(br#"{}"#).expect_err("no id");
    assert_eq!(e, "the answer carries no silenceID");
    assert_eq!(
        wire::parse_silence_created(br#"{"silenceID":"abc"}"#),
        Ok("abc".to_string())
    );
}

#[test]
fn the_same_alert_twice_in_one_alertmanager_is_one_row() {
    // Routed to two receivers: present in two groups.
    let first = GROUPS
        .trim_start_matches('[')
        .split("},{\"alerts\"")
        .next()
        .map(|g| format!("{g}}}"))
        .expect("first group");
    let body = format!("[{first}, {first}]");
    let read = wire::parse_groups(body.as_bytes()).expect("groups");
    assert_eq!(read.items.len(), 2, "both groups read");
    let none = HashMap::new();
    let alerts = merged_one(&read.items, &none);
    assert_eq!(alerts.len(), 1);
}

#[test]
fn what_only_a_silent_alertmanager_holds_is_kept_and_marked_stale() {
    let read = wire::parse_groups(GROUPS.as_bytes()).expect("groups");
    let none = HashMap::new();
    let mut down = held("am-b", &read.items, &none);
    down.answering = false;
    // Long after the alerts' endsAt: a silent Alertmanager could not refresh them.
    let later = t("2026-11-21T10:30:00Z");
    let alerts = merge::merge(&[down], &ClusterIndex::default(), later);
    assert_eq!(alerts.len(), 2, "kept, not resolved");
    let api = named(&alerts, "KubeAPIErrorsHigh");
    assert_eq!(
        api.summary,
        "stale: am-b not answering · API server 5xx above 5%"
    );
    assert_eq!(api.state, AlertState::Firing);

    // Its HA peer still answers with the same alert: fresh, not marked.
    let mut down = held("am-b", &read.items, &none);
    down.answering = false;
    let alerts = merge::merge(
        &[down, held("am-a", &read.items, &none)],
        &ClusterIndex::default(),
        t(NOW),
    );
    assert_eq!(
        named(&alerts, "KubeAPIErrorsHigh").summary,
        "API server 5xx above 5%"
    );
}

// ---- one Alertmanager over HTTP: a scripted server on loopback ----

use super::{Client, Member};
use crate::config::AlertmanagerConfig;
use crate::model::SourceEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serves `answer("METHOD path") -> (status, body)` on 127.0.0.1 and logs the requests.
async fn scripted(
    answer: fn(&str) -> (u16, String),
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
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
            let text = String::from_utf8_lossy(&head).to_string();
            let request: Vec<&str> = text.split_whitespace().take(2).collect();
            let (status, body) = answer(&request.join(" "));
            if let Ok(mut log) = seen.lock() {
                log.push(text);
            }
            let reply = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = conn.write_all(reply.as_bytes()).await;
        }
    });
    (url, log)
}

fn member(url: &str) -> Member {
    let config = AlertmanagerConfig {
        name: "am-x".into(),
        url: url.into(),
        cluster_label: "cluster".into(),
        sigv4: None,
    };
    Member::new(
        &config,
        Client::new("am-x", url, None),
        std::time::Duration::from_secs(30),
    )
}

fn last_error(event: &SourceEvent) -> Option<String> {
    match event {
        SourceEvent::Health(h) => h.last_error.clone(),
        _ => None,
    }
}

#[tokio::test]
async fn an_api_without_groups_is_read_through_plain_alerts() {
    let (url, log) = scripted(|path| match path {
        "GET /api/v2/alerts/groups" => (404, "404 page not found".into()),
        "GET /api/v2/alerts" => (
            200,
            r#"[{"labels":{"alertname":"A","cluster":"c"},"fingerprint":"f1","status":{"state":"active"}}]"#.into(),
        ),
        "GET /api/v2/silences" => (200, "[]".into()),
        _ => (500, "unexpected".into()),
    })
    .await;
    let mut am = member(&url);
    let health = am.poll(t(NOW)).await;
    assert_eq!(last_error(&health), None);
    assert_eq!(am.alerts.len(), 1);
    // The next poll goes straight to /alerts.
    am.poll(t(NOW)).await;
    let paths: Vec<String> = log
        .lock()
        .map(|l| {
            l.iter()
                .filter_map(|head| head.split_whitespace().nth(1).map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        paths,
        [
            "/api/v2/alerts/groups",
            "/api/v2/alerts",
            "/api/v2/silences",
            "/api/v2/alerts",
            "/api/v2/silences"
        ]
    );
}

#[tokio::test]
async fn http_errors_and_bad_bodies_name_the_alertmanager_and_url() {
    let (url, _) = scripted(|path| match path {
        "GET /api/v2/alerts/groups" => (503, "upstream connect error\nsecond line".into()),
        _ => (200, "[]".into()),
    })
    .await;
    let mut am = member(&url);
    let error = last_error(&am.poll(t(NOW)).await).expect("an error");
    assert_eq!(
        error,
        format!("am-x: GET {url}/api/v2/alerts/groups: HTTP 503: upstream connect error")
    );

    let (url, _) = scripted(|path| match path {
        "GET /api/v2/alerts/groups" => (200, "[]".into()),
        _ => (200, "<html>login</html>".into()),
    })
    .await;
    let mut am = member(&url);
    let error = last_error(&am.poll(t(NOW)).await).expect("an error");
    assert_eq!(
        error,
        format!(
            "am-x: GET {url}/api/v2/silences: not a list of silences: expected value at line 1 column 1"
        )
    );
    assert!(!am.answering);
}

#[tokio::test]
async fn amp_requests_go_out_signed_for_aps() {
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    let (url, log) = scripted(|_| (200, "[]".into())).await;
    let creds = Credentials::new("AKIDEXAMPLE", "secret", Some("TOKEN".into()), None, "test");
    let signer =
        super::sigv4::Signer::new("eu-west-1".into(), SharedCredentialsProvider::new(creds));
    let base = format!("{url}/workspaces/ws-1/alertmanager");
    let client = Client::new("amp", &base, Some(signer));
    client.get("/api/v2/silences").await.expect("answered");
    let head = log
        .lock()
        .map(|l| l.first().cloned().unwrap_or_default())
        .unwrap_or_default();
    assert!(
        head.starts_with("GET /workspaces/ws-1/alertmanager/api/v2/silences HTTP/1.1"),
        "{head}"
    );
    let lower = head.to_ascii_lowercase();
    assert!(
        lower.contains("authorization: aws4-hmac-sha256 credential=akidexample/")
            && lower.contains("/eu-west-1/aps/aws4_request, signedheaders=accept;host;x-amz-date;x-amz-security-token, signature="),
        "{head}"
    );
    assert!(lower.contains("x-amz-security-token: token"), "{head}");
}

#[tokio::test]
async fn a_silence_refused_by_one_alertmanager_is_made_in_the_next_holding_the_alert() {
    const ALERTS: &str = r#"[{"labels":{"alertname":"A","cluster":"c"},"fingerprint":"f1","status":{"state":"active"}}]"#;
    let (broken, _) = scripted(|request| match request {
        "POST /api/v2/silences" => (500, "storage full".into()),
        "GET /api/v2/alerts/groups" => (200, format!(r#"[{{"alerts":{ALERTS}}}]"#)),
        _ => (200, "[]".into()),
    })
    .await;
    let (good, log) = scripted(|request| match request {
        "POST /api/v2/silences" => (200, r#"{"silenceID":"s-42"}"#.into()),
        "GET /api/v2/alerts/groups" => (200, format!(r#"[{{"alerts":{ALERTS}}}]"#)),
        _ => (200, "[]".into()),
    })
    .await;
    let mut ams = super::Alertmanagers::new(vec![member(&broken), member(&good)]);
    ams.poll_all(t(NOW)).await;
    let key = AlertKey::new(crate::model::AlertSource::Alertmanager, None, "A", "f1");
    let matchers = std::collections::BTreeMap::from([("alertname".to_string(), "A".to_string())]);
    let (result, reread) = ams
        .silence(&key, &matchers, "alice", "looking", 30, t(NOW))
        .await;
    assert_eq!(result, Ok("silenced in am-x for 30m as s-42".to_string()));
    assert_eq!(reread, [1], "the one that took it is read again");
    let posted = log
        .lock()
        .map(|l| l.iter().filter(|h| h.starts_with("POST ")).count())
        .unwrap_or_default();
    assert_eq!(posted, 1);

    // Nobody holds an unknown alert: refused, nothing posted.
    let other = AlertKey::new(crate::model::AlertSource::Alertmanager, None, "B", "f2");
    let (result, _) = ams
        .silence(&other, &matchers, "alice", "looking", 30, t(NOW))
        .await;
    assert!(result.is_err_and(|e| e.contains("no Alertmanager holds")));
    // No matchers: refused before anything is sent.
    let (result, _) = ams
        .silence(&key, &Default::default(), "alice", "x", 30, t(NOW))
        .await;
    assert!(result.is_err_and(|e| e.contains("without matchers")));
}

#[test]
fn the_store_ties_label_only_clusters_to_the_listed_cluster_whenever_it_arrives() {
    use crate::model::{Cluster, ClusterStatus, Environment, Store};
    let read = wire::parse_groups(GROUPS.as_bytes()).expect("groups");
    let none = HashMap::new();
    // No cluster list yet (as in `snapshot`): the cluster is known by its label only.
    let alerts = merge::merge(
        &[held("am", &read.items, &none)],
        &ClusterIndex::default(),
        t(NOW),
    );
    let mut store = Store::new();
    store.apply(SourceEvent::Alerts(alerts), t(NOW));
    let id = ClusterId::new("prod", "us-east-1", "prod-use1-checkout-01");
    let cluster = Cluster {
        id: id.clone(),
        arn: String::new(),
        version: "1.30".into(),
        platform_version: "eks.1".into(),
        described: crate::model::Described::Yes,
        status: ClusterStatus::Active,
        environment: Environment::Prod,
        team: None,
        health_issues: vec![],
        insights: vec![],
        updates: vec![],
        addons: vec![],
        support: None,
        endpoint: None,
        certificate_authority: None,
    };
    store.apply(
        SourceEvent::ClusterInventory {
            source: "eks:prod/us-east-1".into(),
            clusters: vec![cluster],
        },
        t(NOW),
    );
    assert!(store.alerts().all(|a| a.cluster.as_ref() == Some(&id)));
    let i = store.cluster_index(&id).expect("listed");
    assert_eq!(store.firing_total(i), 2, "counted on the cluster");
    assert_eq!(store.alerts_for(&id).len(), 2);

    // One arriving after the list is tied at once.
    let mut late = named(
        &merge::merge(
            &[held("am", &read.items, &none)],
            &ClusterIndex::default(),
            t(NOW),
        ),
        "KubeAPIErrorsHigh",
    )
    .clone();
    late.key = AlertKey("alertmanager:-:Late:f9".into());
    store.apply(SourceEvent::Alerts(vec![late.clone()]), t(NOW));
    assert_eq!(
        store.alert(&late.key).and_then(|a| a.cluster.clone()),
        Some(id)
    );
    assert_eq!(store.firing_total(i), 3);
}

// ---- faults: each one shown, the last alerts kept (marked stale), recovery by itself ----

use crate::sources::faults::{self, FaultServer, FlakyCredentials, Mode};

fn am_endpoint(seen: &faults::Seen) -> faults::Reply {
    match seen.path.as_str() {
        "/api/v2/alerts/groups" => faults::json(200, GROUPS),
        "/api/v2/silences" => faults::json(200, SILENCES),
        _ => faults::json(404, "404 page not found"),
    }
}

fn later(seconds: i64) -> Timestamp {
    t(NOW) + chrono::TimeDelta::seconds(seconds)
}

/// One Alertmanager `am-x` at `url`, with a signer if given.
fn one(url: &str, signer: Option<super::sigv4::Signer>) -> super::Alertmanagers {
    let config = AlertmanagerConfig {
        name: "am-x".into(),
        url: url.into(),
        cluster_label: "cluster".into(),
        sigv4: None,
    };
    let client = Client::new("am-x", url, signer);
    super::Alertmanagers::new(vec![Member::new(&config, client, super::POLL_INTERVAL)])
}

fn am_health(events: &[SourceEvent]) -> crate::model::SourceHealth {
    events
        .iter()
        .find_map(|e| match e {
            SourceEvent::Health(h) if h.name == "alertmanager:am-x" => Some(h.clone()),
            _ => None,
        })
        .expect("a health report")
}

fn am_alerts(events: &[SourceEvent]) -> Vec<crate::model::Alert> {
    events
        .iter()
        .filter_map(|e| match e {
            SourceEvent::Alerts(a) => Some(a.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn am_failing(h: &crate::model::SourceHealth) -> bool {
    h.last_error_at.is_some() && (h.last_ok.is_none() || h.last_error_at > h.last_ok)
}

/// Reads the two alerts, reads through the fault (shown as `error`, the alerts kept and
/// marked stale, none resolved), then reads them fresh again once the fault clears.
/// Returns the health while failing.
async fn am_survives(
    ams: &mut super::Alertmanagers,
    fault: impl FnOnce(),
    clear: impl FnOnce(),
    error: impl Fn(&str) -> bool,
) -> crate::model::SourceHealth {
    let first = ams.poll_all(later(0)).await;
    let before = am_health(&first);
    assert!(!am_failing(&before), "{before:?}");
    assert_eq!(am_alerts(&first).len(), 2);

    fault();
    let failed = ams.poll_all(later(30)).await;
    let h = am_health(&failed);
    let message = h.last_error.clone().expect("an error");
    assert!(error(&message), "{message}");
    assert!(am_failing(&h), "{h:?}");
    assert_eq!(h.errors, before.errors + 1);
    let kept = am_alerts(&failed);
    assert_eq!(kept.len(), 2, "both kept, marked stale: {kept:#?}");
    for alert in &kept {
        assert_eq!(alert.state, AlertState::Firing, "{alert:?}");
        assert!(
            alert.summary.starts_with("stale: am-x not answering"),
            "{}",
            alert.summary
        );
    }

    clear();
    let back = ams.poll_all(later(60)).await;
    let after = am_health(&back);
    assert!(!am_failing(&after), "recovered: {after:?}");
    assert_eq!(after.last_ok, Some(later(60)));
    let fresh = am_alerts(&back);
    assert_eq!(fresh.len(), 2, "fresh again: {fresh:#?}");
    assert!(fresh.iter().all(|a| !a.summary.starts_with("stale:")));
    h
}

#[tokio::test]
async fn fault_am_5xx_is_shown_keeps_the_alerts_and_recovers() {
    let server = FaultServer::start(am_endpoint).await;
    let mut ams = one(&server.url, None);
    let url = server.url.clone();
    let h = am_survives(
        &mut ams,
        || {
            server.set(Mode::Fixed(
                503,
                vec![],
                b"upstream connect error or disconnect/reset before headers".to_vec(),
            ))
        },
        || server.set(Mode::Answer),
        |e| {
            e == format!(
                "am-x: GET {url}/api/v2/alerts/groups: HTTP 503: upstream connect error or disconnect/reset before headers"
            )
        },
    )
    .await;
    assert_eq!(h.throttles, 0);
}

#[tokio::test]
async fn fault_am_429_counts_a_throttle_keeps_the_alerts_and_recovers() {
    let server = FaultServer::start(am_endpoint).await;
    let mut ams = one(&server.url, None);
    let h = am_survives(
        &mut ams,
        || server.set(Mode::Fixed(429, vec![], b"Too Many Requests".to_vec())),
        || server.set(Mode::Answer),
        |e| e.ends_with("/api/v2/alerts/groups: HTTP 429: Too Many Requests"),
    )
    .await;
    assert_eq!(h.throttles, 1);
}

#[tokio::test]
async fn fault_am_malformed_body_is_shown_keeps_the_alerts_and_recovers() {
    let server = FaultServer::start(am_endpoint).await;
    let mut ams = one(&server.url, None);
    let url = server.url.clone();
    am_survives(
        &mut ams,
        || {
            server.set(Mode::Fixed(
                200,
                vec![],
                br#"[{"alerts": [{"labels": "#.to_vec(),
            ))
        },
        || server.set(Mode::Answer),
        |e| e.starts_with(&format!("am-x: GET {url}/api/v2/alerts/groups: ")),
    )
    .await;
}

#[tokio::test]
async fn fault_am_that_hangs_times_out_keeps_the_alerts_and_recovers() {
    let server = FaultServer::start(am_endpoint).await;
    let mut ams = one(&server.url, None);
    let url = server.url.clone();
    let started = std::cell::Cell::new(None);
    am_survives(
        &mut ams,
        || {
            // Virtual time only while the server hangs: a paused clock jumps ahead
            // whenever the runtime waits, so a real server's answer would lose the race.
            tokio::time::pause();
            server.set(Mode::Hang);
            started.set(Some(tokio::time::Instant::now()));
        },
        || {
            let waited = started.get().map(|s| s.elapsed()).unwrap_or_default();
            let timeout = super::client::REQUEST_TIMEOUT;
            assert!(
                waited >= timeout && waited < timeout + std::time::Duration::from_secs(1),
                "bounded by the timeout: {waited:?}"
            );
            // Real time from here: the server is real.
            tokio::time::resume();
            server.set(Mode::Answer);
        },
        |e| e == format!("am-x: GET {url}/api/v2/alerts/groups: no answer within 10s"),
    )
    .await;
}

#[tokio::test]
async fn fault_am_refused_then_back_on_its_port_recovers() {
    let port = faults::refused_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut ams = one(&url, None);
    let failed = ams.poll_all(later(0)).await;
    let h = am_health(&failed);
    let message = h.last_error.clone().expect("an error");
    assert!(
        message.starts_with(&format!(
            "am-x: GET {url}/api/v2/alerts/groups: cannot connect"
        )),
        "{message}"
    );
    assert!(am_failing(&h));
    let _server = FaultServer::start_on(port, am_endpoint).await;
    let back = ams.poll_all(later(30)).await;
    assert!(!am_failing(&am_health(&back)));
    assert_eq!(am_alerts(&back).len(), 2);
}

#[tokio::test]
async fn fault_am_name_that_does_not_resolve_is_shown() {
    let url = format!("http://{}:9093", faults::UNRESOLVABLE_HOST);
    let mut ams = one(&url, None);
    let h = am_health(&ams.poll_all(later(0)).await);
    let message = h.last_error.clone().expect("an error");
    assert!(
        message.starts_with(&format!(
            "am-x: GET {url}/api/v2/alerts/groups: cannot connect"
        )),
        "{message}"
    );
    assert!(am_failing(&h));
    assert_eq!(h.errors, 1);
}

#[tokio::test]
async fn fault_amp_sigv4_credentials_expiring_mid_run_are_shown_and_recover() {
    let server = FaultServer::start(am_endpoint).await;
    let credentials = FlakyCredentials::default();
    let signer = super::sigv4::Signer::new(
        "eu-west-1".into(),
        aws_credential_types::provider::SharedCredentialsProvider::new(credentials.clone()),
    );
    let mut ams = one(&server.url, Some(signer));
    let sent = std::cell::Cell::new(0);
    am_survives(
        &mut ams,
        || {
            credentials.fail(true);
            sent.set(server.seen().len());
        },
        || {
            assert_eq!(server.seen().len(), sent.get(), "nothing sent unsigned");
            credentials.fail(false);
        },
        |e| {
            e.starts_with("am-x: GET ")
                && e.contains("no AWS credentials for SigV4: ")
                && e.contains("the SSO session has expired")
        },
    )
    .await;
    let last = server.seen().pop().expect("a request");
    assert!(
        last.headers
            .to_ascii_lowercase()
            .contains("authorization: aws4-hmac-sha256"),
        "signed again: {}",
        last.headers
    );
}
