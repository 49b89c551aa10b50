//! The last picture on disk (gzip-compressed JSON), so a console starts with yesterday's fleet on screen while
//! today's loads (the warm start). Written atomically (a temp file, synced, then renamed
//! over the old one), at most every 30 s and on exit; versioned; read back only when it
//! was drawn by the same sources. A corrupt, truncated, foreign or old-format file is
//! ignored with a log line. It holds what the fleet looked like (clusters, alerts,
//! rollouts, Argo CD objects, the metric points the fleet columns and sparklines draw),
//! never a credential or token.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::{
    Alert, AlertState, ApplicationSet, ArgoApp, Cluster, ClusterId, MetricName, MetricSample,
    Rollout, SourceEvent, Store, Timestamp,
};

/// What the file says it is.
const FORMAT: &str = "fleetdeck-picture";
/// Bumped whenever the shape changes: an older file is ignored, never misread.
pub const VERSION: u32 = 1;
/// At most one write this often.
pub const WRITE_EVERY: Duration = Duration::from_secs(30);
/// The minutes of request-rate points kept: the fleet's sparkline window. Of the other
/// metrics, only the latest point (the fleet's columns).
const TREND_MINUTES: usize = 30;
/// A file (or its unpacked JSON) larger than this is not read: fleetdeck wrote no such
/// picture.
const MAX_BYTES: u64 = 256 * 1024 * 1024;

/// The picture as written.
#[derive(Debug, Serialize, Deserialize)]
pub struct Picture {
    format: String,
    version: u32,
    pub written_at: Timestamp,
    /// The sources that drew it: a picture drawn by other sources (another config) is
    /// not shown.
    pub sources: Vec<String>,
    inventories: Vec<Inventory>,
    alerts: Vec<Alert>,
    /// Rollouts a source sends whole (the demo's); Argo CD's follow from their sets.
    rollouts: Vec<Rollout>,
    applications: Vec<(String, Vec<ArgoApp>)>,
    application_sets: Vec<(String, Vec<ApplicationSet>)>,
    metrics: Vec<Points>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Inventory {
    source: String,
    clusters: Vec<Cluster>,
}

/// One metric of one cluster: `(minute since the epoch, value)`.
#[derive(Debug, Serialize, Deserialize)]
struct Points {
    cluster: ClusterId,
    metric: MetricName,
    points: Vec<(i64, f32)>,
}

/// Why a file was not used.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("cannot read {path}: {error}")]
    Read { path: String, error: std::io::Error },
    #[error("{path} is {size} bytes, more than a picture can be; not read")]
    TooLarge { path: String, size: u64 },
    #[error("{path} is not a fleetdeck picture (corrupt or truncated?): {error}")]
    Corrupt { path: String, error: String },
    #[error("{path} is a picture of format version {found}; this fleetdeck reads {VERSION}")]
    OldFormat { path: String, found: u32 },
    #[error("{path} was drawn by other sources ({theirs}); these are {ours}")]
    Foreign {
        path: String,
        theirs: String,
        ours: String,
    },
}

impl Picture {
    /// What the store knows now, drawn by `sources`: what is only remembered from an
    /// earlier picture (a region that has not answered since) is left out, so an old
    /// cluster or alert is never written again as if it were seen at `now`.
    pub fn of(store: &Store, sources: &[String], now: Timestamp) -> Self {
        let mut inventories: Vec<Inventory> = Vec::new();
        for (i, cluster) in store.clusters().iter().enumerate() {
            if store.is_cached_cluster(i) {
                continue;
            }
            let source = store.cluster_source(i);
            match inventories.iter_mut().find(|inv| inv.source == source) {
                Some(inv) => inv.clusters.push(cluster.clone()),
                None => inventories.push(Inventory {
                    source: source.to_string(),
                    clusters: vec![cluster.clone()],
                }),
            }
        }
        let mut metrics = Vec::new();
        for (i, cluster) in store.clusters().iter().enumerate() {
            if store.is_cached_cluster(i) {
                continue;
            }
            for metric in MetricName::ALL {
                let Some(ring) = store.metric(i, metric) else {
                    continue;
                };
                let Some(end) = ring.end_minute() else {
                    continue;
                };
                let minutes = if metric == MetricName::RequestTotal {
                    TREND_MINUTES
                } else {
                    1
                };
                let points: Vec<(i64, f32)> = ring
                    .window(end, minutes)
                    .into_iter()
                    .filter(|(_, v)| v.is_finite())
                    .collect();
                if !points.is_empty() {
                    metrics.push(Points {
                        cluster: cluster.id.clone(),
                        metric,
                        points,
                    });
                }
            }
        }
        let mut sources = sources.to_vec();
        sources.sort();
        Self {
            format: FORMAT.into(),
            version: VERSION,
            written_at: now,
            sources,
            inventories,
            alerts: store
                .alerts()
                .filter(|a| !store.is_cached_alert(&a.key))
                .cloned()
                .collect(),
            rollouts: store
                .rollouts()
                .iter()
                .filter(|r| !r.source.starts_with("argocd:"))
                .cloned()
                .collect(),
            applications: store
                .applications_by_source()
                .map(|(s, a)| (s.clone(), a.clone()))
                .collect(),
            application_sets: store
                .application_sets_by_source()
                .map(|(s, a)| (s.clone(), a.clone()))
                .collect(),
            metrics,
        }
    }

    /// The events that put this picture into an empty store. Alerts firing then are
    /// `unknown` now: nothing remembered is firing (or healthy) until its source says so.
    pub fn into_events(self) -> Vec<SourceEvent> {
        let mut events = Vec::new();
        for inv in self.inventories {
            if inv.source.is_empty() {
                events.extend(
                    inv.clusters
                        .into_iter()
                        .map(|c| SourceEvent::ClusterChanged(Box::new(c))),
                );
            } else {
                events.push(SourceEvent::ClusterInventory {
                    source: inv.source,
                    clusters: inv.clusters,
                });
            }
        }
        for (source, apps) in self.applications {
            events.push(SourceEvent::Applications { source, apps });
        }
        for (source, sets) in self.application_sets {
            events.push(SourceEvent::ApplicationSets { source, sets });
        }
        events.extend(self.rollouts.into_iter().map(SourceEvent::Rollout));
        for p in self.metrics {
            events.push(SourceEvent::Metrics {
                cluster: p.cluster,
                samples: p
                    .points
                    .into_iter()
                    .map(|(minute, value)| MetricSample {
                        metric: p.metric,
                        minute,
                        value,
                    })
                    .collect(),
            });
        }
        let alerts: Vec<Alert> = self
            .alerts
            .into_iter()
            .map(|mut a| {
                if a.state == AlertState::Firing {
                    a.state = AlertState::Unknown;
                }
                a
            })
            .collect();
        if !alerts.is_empty() {
            events.push(SourceEvent::Alerts(alerts));
        }
        events
    }
}

/// Writes `picture` to `path` atomically: a crash mid-write leaves the old file whole.
pub fn write(path: &Path, picture: &Picture) -> std::io::Result<u64> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = temp_path(path);
    let result = (|| {
        let file = std::fs::File::create(&tmp)?;
        let json = serde_json::to_vec(picture).map_err(std::io::Error::other)?;
        // The fastest level: the JSON repeats itself so much that it still shrinks tenfold.
        let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        gz.write_all(&json)?;
        let file = gz.finish()?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(bytes)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

/// Reads the picture at `path` if it is one this fleetdeck wrote for these `sources`.
/// `Ok(None)`: there is none (the first start).
pub fn read(path: &Path, sources: &[String]) -> Result<Option<Picture>, Unusable> {
    let shown = path.display().to_string();
    let size = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Unusable::Read { path: shown, error }),
    };
    if size > MAX_BYTES {
        return Err(Unusable::TooLarge { path: shown, size });
    }
    let raw = std::fs::read(path).map_err(|error| Unusable::Read {
        path: shown.clone(),
        error,
    })?;
    let mut bytes = Vec::new();
    let unpacked = {
        use std::io::Read;
        flate2::read::GzDecoder::new(raw.as_slice())
            .take(MAX_BYTES)
            .read_to_end(&mut bytes)
    };
    unpacked.map_err(|e| Unusable::Corrupt {
        path: shown.clone(),
        error: format!("not gzip, or cut short: {e}"),
    })?;
    // The format and version first, so an old file says so rather than "corrupt".
    #[derive(Deserialize)]
    struct Header {
        format: String,
        version: u32,
    }
    let header: Header = serde_json::from_slice(&bytes).map_err(|e| Unusable::Corrupt {
        path: shown.clone(),
        error: e.to_string(),
    })?;
    if header.format != FORMAT {
        return Err(Unusable::Corrupt {
            path: shown,
            error: format!("its format is '{}'", header.format),
        });
    }
    if header.version != VERSION {
        return Err(Unusable::OldFormat {
            path: shown,
            found: header.version,
        });
    }
    let picture: Picture = serde_json::from_slice(&bytes).map_err(|e| Unusable::Corrupt {
        path: shown.clone(),
        error: e.to_string(),
    })?;
    let mut ours = sources.to_vec();
    ours.sort();
    if picture.sources != ours {
        return Err(Unusable::Foreign {
            path: shown,
            theirs: picture.sources.join(", "),
            ours: ours.join(", "),
        });
    }
    Ok(Some(picture))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClusterHealth, SourceHealth};
    use crate::sources::demo::{DemoFleet, DemoOptions};

    fn t0() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-11-21T02:10:00Z")
            .expect("time")
            .with_timezone(&chrono::Utc)
    }

    /// The demo fleet's first picture, as a real source set would have drawn it.
    fn demo_store() -> Store {
        let mut fleet = DemoFleet::new(&DemoOptions::default(), t0());
        let mut store = Store::new();
        for event in fleet.initial_events() {
            store.apply(event, t0());
        }
        store
    }

    fn sources() -> Vec<String> {
        vec!["demo".to_string()]
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .expect("gzip");
        out
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).expect("gzip");
        gz.finish().expect("gzip")
    }

    fn restored(path: &Path) -> Store {
        let picture = read(path, &sources()).expect("usable").expect("a picture");
        let at = picture.written_at;
        let mut store = Store::new();
        for event in picture.into_events() {
            store.apply(event, t0());
        }
        store.mark_cached(at);
        store
    }

    #[test]
    fn a_picture_comes_back_as_it_was_written_with_nothing_firing_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("picture.json.gz");
        let store = demo_store();
        let bytes = write(&path, &Picture::of(&store, &sources(), t0())).expect("written");
        assert!(bytes > 0);
        let back = restored(&path);

        let names =
            |s: &Store| -> Vec<String> { s.clusters().iter().map(|c| c.id.to_string()).collect() };
        assert_eq!(names(&back), names(&store));
        assert_eq!(back.clusters(), store.clusters());
        let rollouts: Vec<&str> = back.rollouts().iter().map(|r| r.name.as_str()).collect();
        assert_eq!(rollouts, ["eks-1-31-upgrade"]);
        assert_eq!(back.rollouts(), store.rollouts());
        // The fleet columns and sparklines have their points.
        for i in 0..store.clusters().len() {
            assert_eq!(back.request_rate(i), store.request_rate(i), "{i}");
            let trend = |s: &Store| {
                s.metric(i, MetricName::RequestTotal)
                    .map(|r| r.last(30).collect::<Vec<_>>())
            };
            assert_eq!(trend(&back), trend(&store), "{i}");
        }
        // Every alert is there, and none of them is firing now.
        let keys = |s: &Store| -> Vec<String> {
            let mut k: Vec<String> = s.alerts().map(|a| a.key.to_string()).collect();
            k.sort();
            k
        };
        assert_eq!(keys(&back), keys(&store));
        assert!(store.alerts().any(|a| a.state == AlertState::Firing));
        assert!(back.alerts().all(|a| a.state != AlertState::Firing));
        assert!(back.alerts().all(|a| back.is_cached_alert(&a.key)));
        // Nothing remembered is healthy now, and its age is known.
        for i in 0..back.clusters().len() {
            assert_eq!(back.health(i, t0()), ClusterHealth::Unknown);
            assert_eq!(back.firing_total(i), 0);
        }
        assert_eq!(back.cached_since(), Some(t0()));
    }

    #[test]
    fn what_the_sources_say_again_is_fresh_and_what_they_do_not_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("picture.json.gz");
        let store = demo_store();
        write(&path, &Picture::of(&store, &sources(), t0())).expect("written");
        let mut back = restored(&path);
        let mut fleet = DemoFleet::new(&DemoOptions::default(), t0());
        let fresh = fleet.initial_events();
        let firing = store
            .alerts()
            .find(|a| a.state == AlertState::Firing)
            .expect("firing");
        // The inventory comes back: its clusters are fresh (and healthy or not by the
        // alerts as they are now), but their remembered alerts are not yet.
        for event in fresh
            .iter()
            .filter(|e| matches!(e, SourceEvent::ClusterInventory { .. }))
        {
            back.apply(event.clone(), t0());
        }
        assert!((0..back.clusters().len()).all(|i| !back.is_cached_cluster(i)));
        assert!(back.is_cached_alert(&firing.key));
        assert!(back.cached_since().is_some());
        // The rest, then Ready: every alert the source did not report again is gone.
        back.apply(SourceEvent::Alerts(vec![firing.clone()]), t0());
        assert!(!back.is_cached_alert(&firing.key));
        assert_eq!(
            back.alert(&firing.key).map(|a| a.state),
            Some(AlertState::Firing)
        );
        back.apply(
            SourceEvent::Ready {
                source: "demo".into(),
            },
            t0(),
        );
        assert_eq!(back.cached_since(), None);
        let left: Vec<&str> = back.alerts().map(|a| a.key.0.as_str()).collect();
        assert_eq!(left, [firing.key.0.as_str()]);
    }

    #[test]
    fn a_crash_mid_write_leaves_the_old_picture_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("picture.json.gz");
        let store = demo_store();
        write(&path, &Picture::of(&store, &sources(), t0())).expect("written");
        let before = std::fs::read(&path).expect("file");
        // A writer killed half-way leaves only its temp file behind.
        std::fs::write(temp_path(&path), &before[..before.len() / 2]).expect("partial");
        assert_eq!(std::fs::read(&path).expect("file"), before);
        assert_eq!(restored(&path).clusters().len(), store.clusters().len());
        // The next write replaces the file whole and leaves no temp file.
        let later = t0() + chrono::TimeDelta::minutes(5);
        write(&path, &Picture::of(&store, &sources(), later)).expect("written");
        assert_eq!(restored(&path).cached_since(), Some(later));
        let files: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(files, ["picture.json.gz"]);
    }

    #[test]
    fn corrupt_truncated_foreign_and_old_pictures_are_ignored_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("picture.json.gz");
        assert!(matches!(read(&path, &sources()), Ok(None)), "no file yet");
        write(&path, &Picture::of(&demo_store(), &sources(), t0())).expect("written");
        let whole = std::fs::read(&path).expect("file");

        std::fs::write(&path, &whole[..whole.len() - 100]).expect("truncate");
        let e = read(&path, &sources()).expect_err("truncated");
        assert!(matches!(e, Unusable::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("not a fleetdeck picture"), "{e}");

        std::fs::write(&path, b"\x00\xffgarbage").expect("garbage");
        assert!(matches!(
            read(&path, &sources()),
            Err(Unusable::Corrupt { .. })
        ));

        // Whole gzip, but JSON cut short.
        let json = gunzip(&whole);
        std::fs::write(&path, gzip(&json[..json.len() / 2])).expect("cut JSON");
        assert!(matches!(
            read(&path, &sources()),
            Err(Unusable::Corrupt { .. })
        ));

        let other = br#"{"format":"something-else","version":1}"#;
        std::fs::write(&path, gzip(other)).expect("another format");
        assert!(matches!(
            read(&path, &sources()),
            Err(Unusable::Corrupt { .. })
        ));

        let mut old: serde_json::Value = serde_json::from_slice(&json).expect("json");
        old["version"] = serde_json::json!(0);
        std::fs::write(&path, gzip(old.to_string().as_bytes())).expect("old");
        let e = read(&path, &sources()).expect_err("old format");
        assert_eq!(
            e.to_string(),
            format!(
                "{} is a picture of format version 0; this fleetdeck reads {VERSION}",
                path.display()
            )
        );

        std::fs::write(&path, &whole).expect("whole");
        let other = vec!["eks:prod/us-east-1".to_string()];
        let e = read(&path, &other).expect_err("drawn by other sources");
        assert!(matches!(e, Unusable::Foreign { .. }), "{e}");
    }

    #[test]
    fn the_picture_holds_no_source_errors_or_credentials() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("picture.json.gz");
        let mut store = demo_store();
        let mut health = SourceHealth::new("demo", 60);
        health.last_error = Some("token expired".into());
        store.apply(SourceEvent::Health(health), t0());
        write(&path, &Picture::of(&store, &sources(), t0())).expect("written");
        let text = String::from_utf8(gunzip(&std::fs::read(&path).expect("file"))).expect("utf-8");
        // Source health (errors can quote requests) is not kept; nor is anything secret.
        assert!(!text.contains("token expired"));
        for secret in ["aws_secret", "AWS_SECRET", "bearer", "Bearer", "password"] {
            assert!(!text.contains(secret), "{secret}");
        }
    }
}
