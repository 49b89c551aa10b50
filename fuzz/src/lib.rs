//! What each fuzz target checks, one function per parser. The targets in `fuzz_targets/`
//! call these with libFuzzer's input; `tests/fuzz_parsers.rs` includes this file and calls
//! them with proptest's, so a longer fuzz run and the quick `cargo test` check the same.
//!
//! Each check asserts only that the parser does not panic, plus invariants a user would
//! notice breaking: an error points at a line that exists, a config written back out reads
//! the same, the holds we write into an annotation read back.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fleetdeck::config::Config;
use fleetdeck::model::{
    Alert, AlertKey, AlertSource, AlertState, ApplicationSet, ArgoApp, ClusterId, Severity, Store,
    Timestamp,
};
use fleetdeck::rollout::argo;
use fleetdeck::rollout::plan::{self, Plan};
use fleetdeck::runbook::{Runbook, lint, vocab};
use fleetdeck::sources::alertmanager::wire;
use fleetdeck::sources::argocd::parse;
use fleetdeck::ui::theme::{self, ColorDepth, SLOT_NAMES, Theme};
use ratatui::style::Color;
use serde_json::{Value, json};

/// Splits fuzz input into `n` parts at NUL bytes (missing parts are empty), so one input
/// can carry several files or annotations and seeds stay plain text.
pub fn parts(data: &[u8], n: usize) -> Vec<String> {
    let mut out: Vec<String> = data
        .splitn(n, |b| *b == 0)
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    out.resize(n, String::new());
    out
}

/// Lines an error may point at: 1 up to the line after the last newline.
fn lines_in(text: &str) -> usize {
    text.split('\n').count()
}

/// A fixed "now" (2026-11-21 02:10 UTC), so runs are reproducible.
fn now() -> Timestamp {
    chrono::DateTime::from_timestamp(1_795_227_000, 0).unwrap_or_default()
}

/// The config file: `Config::from_toml`. An error names a line of the file; a config that
/// reads is written back out with `toml` and reads again to the same config.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let origin = Path::new("/home/oncall/.config/fleetdeck/config.toml");
    match Config::from_toml(text, origin) {
        Ok(c) => {
            let again = toml::to_string(&c).expect("a read config serializes");
            let back = Config::from_toml(&again, origin)
                .unwrap_or_else(|e| panic!("written back out, it does not read: {e}\n{again}"));
            assert_eq!(c, back, "round trip changed the config:\n{again}");
        }
        Err(fleetdeck::config::ConfigError::Invalid { issues }) => {
            for issue in issues {
                if let Some(line) = issue.line {
                    assert!(
                        (1..=lines_in(text)).contains(&line),
                        "issue at line {line} of a {}-line file: {issue}",
                        lines_in(text)
                    );
                }
            }
        }
        Err(_) => {}
    }
}

/// A scratch theme directory for this thread (tests run checks on several threads at
/// once), removed when the thread ends.
struct ThemeDir(PathBuf);

impl Drop for ThemeDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

thread_local! {
    static THEME_DIR: ThemeDir = {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = Path::new("/dev/shm");
        let base = if base.is_dir() {
            base.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("fleetdeck-fuzz-themes-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("theme scratch dir");
        ThemeDir(dir)
    };
}

/// Theme files: `Theme::load` of a user theme `fuzz` (first part) that may inherit from a
/// user theme `p` (second part) or a built-in, and `parse_style` of the first part. A
/// theme that loads keeps its name, and downgraded to 256 or 16 colours it holds no
/// colour the terminal cannot show.
pub fn theme(data: &[u8]) {
    let p = parts(data, 2);
    let _ = theme::parse_style(&p[0]);
    let _ = theme::parse_color(&p[0]);
    let loaded = THEME_DIR.with(|dir| {
        let dir = dir.0.as_path();
        std::fs::write(dir.join("fuzz.toml"), &p[0]).expect("write theme");
        std::fs::write(dir.join("p.toml"), &p[1]).expect("write theme");
        Theme::load("fuzz", Some(dir))
    });
    let Ok(t) = loaded else {
        return;
    };
    assert_eq!(t.name, "fuzz");
    for depth in [ColorDepth::Ansi256, ColorDepth::Ansi16] {
        let d = t.for_depth(depth);
        for slot in SLOT_NAMES {
            let style = d.slot(slot).expect("every slot name has a style");
            for c in [style.fg, style.bg].into_iter().flatten() {
                let fits = !matches!(
                    (depth, c),
                    (_, Color::Rgb(..)) | (ColorDepth::Ansi16, Color::Indexed(_))
                );
                assert!(fits, "{slot} is {c:?} at {depth}");
            }
        }
    }
}

/// Runbook files: `Runbook::parse` and `runbooks lint`'s `lint_text`. Errors and steps
/// point at lines of the file; a step planned against an alert does not panic.
pub fn runbook(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let lines = lines_in(&text);
    for problem in lint::lint_text(&text, "fuzz.md") {
        assert!(
            (1..=lines).contains(&problem.line),
            "lint problem at line {} of a {lines}-line file: {problem}",
            problem.line
        );
    }
    let rb = match Runbook::parse(&text, "fuzz.md") {
        Ok(rb) => rb,
        Err(e) => {
            assert!(
                (1..=lines).contains(&e.line),
                "error at {e} of {lines} lines"
            );
            return;
        }
    };
    let alert = alert();
    let store = Store::new();
    let _ = rb.applies_to(&alert);
    for step in &rb.steps {
        assert!(
            (1..=lines).contains(&step.line),
            "step at line {} of {lines}",
            step.line
        );
        for value in step.params.values() {
            let _ = vocab::references(value);
            let _ = vocab::parse_seconds(value);
        }
        let _ = fleetdeck::runbook::plan::plan(&rb, step, &alert, &store, true);
    }
}

fn alert() -> Alert {
    Alert {
        key: AlertKey("alertmanager:prod/KubeNodeNotReady/abc".into()),
        source: AlertSource::Alertmanager,
        cluster: Some(ClusterId::new("prod", "eu-west-1", "prod-eu-1")),
        name: "KubeNodeNotReady".into(),
        severity: Severity::Critical,
        state: AlertState::Firing,
        first_seen: now(),
        last_change: now(),
        summary: "node not ready".into(),
        labels: [
            ("node", "ip-10-0-1-23.eu-west-1.compute.internal"),
            ("namespace", "kube-system"),
            ("environment", "prod"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        runbook_url: None,
        ack: None,
    }
}

/// Alertmanager API v2 bodies: every reader on the same bytes. A body that is a JSON list
/// is read, and each entry is either read or counted as skipped.
pub fn alertmanager(data: &[u8]) {
    let list: Option<Vec<Value>> = serde_json::from_slice(data).ok();
    let alerts = wire::parse_alerts(data);
    let silences = wire::parse_silences(data);
    let _ = wire::parse_groups(data);
    let _ = wire::parse_silence_created(data);
    if let Some(list) = list {
        let alerts = alerts.expect("a JSON list reads as alerts");
        assert_eq!(alerts.items.len() + alerts.skipped, list.len());
        let silences = silences.expect("a JSON list reads as silences");
        assert_eq!(silences.items.len() + silences.skipped, list.len());
        for a in &alerts.items {
            let _ = wire::time(a.starts_at.as_deref());
            let _ = wire::time(a.ends_at.as_deref());
            let _ = wire::time(a.updated_at.as_deref());
        }
    }
    let _ = wire::time(std::str::from_utf8(data).ok());
}

/// An Argo CD object (JSON as the API server sends it) read as an Application and as an
/// ApplicationSet, then built into a rollout, paused and written back as the hold patch.
pub fn argocd(data: &[u8]) {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(object) = serde_json::from_value::<kube::core::DynamicObject>(value.clone()) else {
        return;
    };
    let app = parse::application(&object, "argocd").ok();
    let Ok(set) = parse::application_set(&object, "argocd") else {
        return;
    };
    let apps: Vec<ArgoApp> = app.into_iter().map(|p| p.app).collect();
    rollout_and_patch(&set, &apps, &value);
}

/// Builds the rollout, holds every wave and writes the holds patch; the patch's
/// `paused-steps` annotation reads back with every held step in it.
fn rollout_and_patch(set: &ApplicationSet, apps: &[ArgoApp], object: &Value) {
    let _ = argo::is_progressive(set);
    let built = argo::rollout("argocd:hub", set, apps, None, |_| None, now());
    assert_eq!(built.rollout.waves.len(), set.steps.len());
    let mut rollout = built.rollout;
    for wave in 0..rollout.waves.len() {
        let _ = fleetdeck::rollout::pause(&mut rollout, wave, "fuzz", "INC-1", now());
    }
    let Ok(patch) = argo::holds_patch(object, &rollout) else {
        return;
    };
    let annotation = &patch["metadata"]["annotations"][argo::PAUSED_STEPS];
    let records = match annotation {
        Value::Null => BTreeMap::new(),
        Value::String(text) => {
            let annotations = BTreeMap::from([(argo::PAUSED_STEPS.to_string(), text.clone())]);
            argo::paused_steps(&annotations)
                .unwrap_or_else(|e| panic!("our own annotation does not read: {e}"))
        }
        other => panic!("paused-steps annotation is {other}"),
    };
    for (i, wave) in rollout.waves.iter().enumerate() {
        if !wave.holds.is_empty() {
            assert!(records.contains_key(&(i + 1)), "step {} hold lost", i + 1);
        }
    }
}

/// The ApplicationSet → rollout adapter on a real-shaped three-step set whose fleetdeck
/// annotations come from the input: `plan`, `paused-steps`, `soak-restarts`,
/// `wave-names`, and one Application's progressive-sync step, NUL-separated.
pub fn argo_rollout(data: &[u8]) {
    let p = parts(data, 5);
    let mut annotations = serde_json::Map::new();
    for (key, text) in [
        (argo::PLAN, &p[0]),
        (argo::PAUSED_STEPS, &p[1]),
        (argo::SOAK_RESTARTS, &p[2]),
        (argo::WAVE_NAMES, &p[3]),
    ] {
        if !text.is_empty() {
            annotations.insert(key.to_string(), Value::String(text.clone()));
        }
    }
    let object = application_set_json(Value::Object(annotations), &p[4]);
    let Ok(kube_object) = serde_json::from_value::<kube::core::DynamicObject>(object.clone())
    else {
        return;
    };
    let set = parse::application_set(&kube_object, "argocd").expect("the fixed set reads");
    let apps: Vec<ArgoApp> = ["dev-1", "staging-1", "prod-1", "prod-2"]
        .iter()
        .filter_map(|name| {
            let app = application_json(name);
            let object = serde_json::from_value::<kube::core::DynamicObject>(app).ok()?;
            parse::application(&object, "argocd").ok().map(|p| p.app)
        })
        .collect();
    if let Ok(plan) = argo::plan_of(&set, None) {
        for (i, name) in ["dev", "staging", "prod"].iter().enumerate() {
            let _ = plan.soak_for(name, i + 1);
        }
    }
    rollout_and_patch(&set, &apps, &object);
}

/// A three-step RollingSync ApplicationSet shaped like Argo CD's; `step` is what the
/// status says of the `prod-1` Application's step.
fn application_set_json(annotations: Value, step: &str) -> Value {
    let status_entry = |app: &str, status: &str, step: Value| {
        json!({"application": app, "status": status, "step": step,
               "message": "Application resource became Healthy, updating status from Progressing to Healthy.",
               "lastTransitionTime": "2026-11-21T01:40:00Z"})
    };
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {
            "name": "platform-addons",
            "namespace": "argocd",
            "resourceVersion": "48213",
            "annotations": annotations,
        },
        "spec": {
            "strategy": {"type": "RollingSync", "rollingSync": {"steps": [
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["staging"]}],
                 "maxUpdate": 1},
                {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
                 "maxUpdate": "25%"},
            ]}},
        },
        "status": {"applicationStatus": [
            status_entry("dev-1", "Healthy", json!("1")),
            status_entry("staging-1", "Healthy", json!(2)),
            status_entry("prod-1", "Progressing", json!(step)),
            status_entry("prod-2", "Waiting", json!("3")),
        ]},
    })
}

fn application_json(name: &str) -> Value {
    let env = name.split('-').next().unwrap_or_default();
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "namespace": "argocd",
            "labels": {"env": env},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                 "name": "platform-addons", "uid": "8f0c1f5e"}],
        },
        "spec": {"project": "platform", "destination": {"server": format!("https://{name}.eks.amazonaws.com")}},
        "status": {"sync": {"status": "Synced"}, "health": {"status": "Healthy"}},
    })
}

/// Rollout plans (a `fleetdeck.io/plan` annotation or a plans-file entry) and durations.
pub fn plan(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = plan::parse_duration(&text);
    if let Ok(p) = Plan::parse(&text, "fuzz") {
        assert!(p.soak_secs >= 0, "negative soak {}", p.soak_secs);
        let _ = p.soak_for("prod-1", 4);
        let _ = p.model_gates();
        let _ = p.firing(&[alert()]);
    }
}
