use std::collections::BTreeMap;

use chrono::TimeZone;

use super::*;
use crate::model::{AlertKey, AlertSource, AlertState, ClusterId};

const GOOD: &str = r#"---
id: coredns-errors
title: CoreDNS errors
severity: warning
matches:
  - alert: "coredns-*"
    labels:
      namespace: "kube-*"
  - alert: dns-servfail
environments: [production, staging]
---
## Meaning

DNS is failing.

## Mitigation

```fleetdeck action=rollout-restart namespace=kube-system deployment=coredns
Restart CoreDNS.
```

```sh
kubectl get pods -n kube-system
```

```fleetdeck action=scale namespace={{labels.namespace}} deployment="{{labels.deployment}}" note="two words"
```
"#;

fn alert(name: &str, labels: &[(&str, &str)]) -> Alert {
    let t = chrono::Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .expect("valid time");
    let cluster = ClusterId::new("prod", "us-east-1", "cell-1");
    Alert {
        key: AlertKey::new(AlertSource::Cloudwatch, Some(&cluster), name, "fp"),
        source: AlertSource::Cloudwatch,
        cluster: Some(cluster),
        name: name.to_string(),
        severity: Severity::Critical,
        state: AlertState::Firing,
        first_seen: t,
        last_change: t,
        summary: String::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        runbook_url: None,
        ack: None,
    }
}

fn parse_err(text: &str) -> String {
    Runbook::parse(text, "x.md").unwrap_err().to_string()
}

#[test]
fn parses_front_matter_body_and_steps() {
    let rb = Runbook::parse(GOOD, "x.md").unwrap();
    assert_eq!(rb.id, "coredns-errors");
    assert_eq!(rb.title, "CoreDNS errors");
    assert_eq!(rb.severity, Severity::Warning);
    assert_eq!(rb.environments, [Environment::Prod, Environment::Staging]);
    assert_eq!(rb.matches.len(), 2);
    assert_eq!(rb.matches[0].alert, "coredns-*");
    assert_eq!(rb.matches[0].labels["namespace"], "kube-*");
    assert!(rb.body.starts_with("## Meaning\n"), "{:?}", rb.body);
    assert!(!rb.body.contains("id: coredns-errors"));
    assert_eq!(rb.origin, "x.md");

    assert_eq!(rb.steps.len(), 2, "the sh block is not a step");
    let s = &rb.steps[0];
    assert_eq!(s.line, 18);
    assert_eq!(s.action, "rollout-restart");
    assert_eq!(
        s.params,
        BTreeMap::from([
            ("namespace".to_string(), "kube-system".to_string()),
            ("deployment".to_string(), "coredns".to_string()),
        ])
    );
    assert_eq!(s.body, "Restart CoreDNS.\n");
    let s = &rb.steps[1];
    assert_eq!(s.line, 26);
    assert_eq!(s.action, "scale");
    assert_eq!(
        s.params["namespace"], "{{labels.namespace}}",
        "kept verbatim"
    );
    assert_eq!(s.params["deployment"], "{{labels.deployment}}");
    assert_eq!(s.params["note"], "two words");
}

#[test]
fn missing_id_names_file_and_line() {
    let e = parse_err("---\ntitle: T\nseverity: info\nmatches:\n  - alert: a\n---\nbody\n");
    assert!(
        e.starts_with("x.md:2: front matter: missing field 'id'"),
        "{e}"
    );
}

#[test]
fn bad_severity_points_at_its_line() {
    let e = parse_err("---\nid: a\ntitle: T\nseverity: urgent\nmatches:\n  - alert: a\n---\n");
    assert!(
        e.starts_with("x.md:4: front matter: severity: unknown variant 'urgent'"),
        "{e}"
    );
}

#[test]
fn bad_glob_points_at_its_line() {
    let e = parse_err(
        "---\nid: a\ntitle: T\nseverity: info\nmatches:\n  - alert: ok\n  - alert: \"bad-[\"\n---\n",
    );
    assert!(
        e.starts_with("x.md:7: front matter: invalid glob 'bad-[' for the alert name"),
        "{e}"
    );
    let e = parse_err(
        "---\nid: a\ntitle: T\nseverity: info\nmatches:\n  - alert: ok\n    labels:\n      ns: \"{a\"\n---\n",
    );
    assert!(
        e.starts_with("x.md:8: front matter: invalid glob '{a' for label 'ns'"),
        "{e}"
    );
}

#[test]
fn unterminated_or_absent_front_matter() {
    let e = parse_err("---\nid: a\ntitle: T\n\n# body\n");
    assert_eq!(
        e,
        "x.md:1: front matter opened here is never closed with a '---' line"
    );
    let e = parse_err("# Just markdown\n");
    assert!(e.starts_with("x.md:1: expected YAML front matter"), "{e}");
    assert!(Runbook::parse("", "x.md").is_err());
}

#[test]
fn unknown_key_empty_matches_and_bad_id() {
    let e = parse_err("---\nid: a\ntitle: T\nseverity: info\nmatch:\n  - alert: a\n---\n");
    assert!(e.contains("unknown field 'match'"), "{e}");
    let e = parse_err("---\nid: a\ntitle: T\nseverity: info\nmatches: []\n---\n");
    assert!(
        e.starts_with("x.md:5: front matter: 'matches' needs at least one"),
        "{e}"
    );
    let e = parse_err("---\nid: a b\ntitle: T\nseverity: info\nmatches:\n  - alert: a\n---\n");
    assert!(e.starts_with("x.md:2: front matter: 'id' must be"), "{e}");
    let e = parse_err("---\nid: [1\n---\n");
    assert!(e.starts_with("x.md:"), "{e}");
}

#[test]
fn bad_step_names_its_line() {
    let base = "---\nid: a\ntitle: T\nseverity: info\nmatches:\n  - alert: a\n---\n\ntext\n\n";
    let e = parse_err(&format!("{base}```fleetdeck namespace=x\n```\n"));
    assert!(e.starts_with("x.md:11: step: missing action=NAME"), "{e}");
    let e = parse_err(&format!("{base}```fleetdeck action=restart x\n```\n"));
    assert_eq!(e, "x.md:11: step: expected key=value, found 'x'");
    let e = parse_err(&format!("{base}```fleetdeck action=a k=1 k=2\n```\n"));
    assert_eq!(e, "x.md:11: step: parameter 'k' given twice");
    let e = parse_err(&format!("{base}```fleetdeck action=a k=\"open\n```\n"));
    assert_eq!(e, "x.md:11: step: unterminated quote in step parameters");
    let e = parse_err(&format!("{base}```fleetdeck action=Do_It\n```\n"));
    assert!(e.contains("must be lowercase"), "{e}");
}

#[test]
fn matching_by_name_labels_and_environment() {
    let rb = Runbook::parse(GOOD, "x.md").unwrap();
    // Name glob plus every label glob.
    assert!(rb.applies_to(&alert("coredns-5xx", &[("namespace", "kube-system")])));
    assert!(!rb.applies_to(&alert("coredns-5xx", &[("namespace", "default")])));
    assert!(
        !rb.applies_to(&alert("coredns-5xx", &[])),
        "missing label never matches"
    );
    // Second matcher has no labels.
    assert!(rb.applies_to(&alert("dns-servfail", &[])));
    assert!(!rb.applies_to(&alert("dns-servfail-2", &[])));
    // Environment filter uses the alert's `environment` label, folding spellings.
    assert!(rb.applies_to(&alert("dns-servfail", &[("environment", "prod")])));
    assert!(rb.applies_to(&alert("dns-servfail", &[("environment", "stage")])));
    assert!(!rb.applies_to(&alert("dns-servfail", &[("environment", "dev")])));
}

#[test]
fn shipped_runbooks_load_and_match_demo_alarms() {
    let (set, errors) = RunbookSet::load(None);
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(set.all().len(), 3);
    let titles: Vec<&str> = set.all().iter().map(|r| r.title.as_str()).collect();
    let mut sorted = titles.clone();
    sorted.sort();
    assert_eq!(titles, sorted, "sorted by title");

    for (alarm, id) in [
        ("eks-apiserver-5xx-high", "apiserver-5xx"),
        ("eks-etcd-storage-high", "etcd-storage-near-quota"),
        ("eks-pending-pods-high", "unschedulable-pending-pods"),
    ] {
        let found: Vec<&str> = set
            .matching(&alert(alarm, &[]))
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(found, [id], "{alarm}");
    }
    assert!(
        set.matching(&alert("eks-apiserver-429-throttling", &[]))
            .is_empty()
    );

    for rb in set.all() {
        assert!(rb.origin.ends_with("(built-in)"), "{}", rb.origin);
        for section in ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation"] {
            assert!(rb.body.contains(section), "{} lacks {section}", rb.id);
        }
        assert!(!rb.steps.is_empty(), "{} has no runnable step", rb.id);
        assert!(
            rb.body.contains("kubectl ") && rb.body.contains("aws "),
            "{}",
            rb.id
        );
        for step in &rb.steps {
            assert!(step.params.values().all(|v| !v.is_empty()));
        }
    }
    let etcd = set.get("etcd-storage-near-quota").unwrap();
    assert!(etcd.body.contains("8 GiB") && etcd.body.contains("apiserver_storage_objects"));
    assert_eq!(etcd.steps[0].action, "pause-wave");
    assert_eq!(etcd.steps[0].params["cluster"], "{{cluster}}");
}

#[test]
fn user_runbooks_replace_builtins_and_errors_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    write(
        "my-etcd.md",
        "---\nid: etcd-storage-near-quota\ntitle: Our etcd runbook\nseverity: critical\nmatches:\n  - alert: \"eks-etcd-*\"\n---\nCall Bob.\n",
    );
    write("broken.md", "---\nid: broken\ntitle: B\n");
    write(
        "dup.md",
        "---\nid: extra\ntitle: Extra\nseverity: info\nmatches:\n  - alert: x\n---\n",
    );
    write(
        "dup2.md",
        "---\nid: extra\ntitle: Extra again\nseverity: info\nmatches:\n  - alert: x\n---\n",
    );
    write("notes.txt", "not a runbook");

    let (set, errors) = RunbookSet::load(Some(dir.path()));
    let messages: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert_eq!(errors.len(), 2, "{messages:?}");
    let broken = dir.path().join("broken.md").display().to_string();
    assert_eq!(
        messages[0],
        format!("{broken}:1: front matter opened here is never closed with a '---' line")
    );
    assert!(
        messages[1].contains("duplicate runbook id 'extra'"),
        "{}",
        messages[1]
    );

    let etcd = set.get("etcd-storage-near-quota").unwrap();
    assert_eq!(etcd.title, "Our etcd runbook");
    assert!(etcd.origin.ends_with("my-etcd.md"));
    assert_eq!(set.get("extra").unwrap().title, "Extra");
    assert!(
        set.get("apiserver-5xx").is_some(),
        "other built-ins still load"
    );
    assert_eq!(set.all().len(), 4);

    // A missing user directory is not an error.
    let (_, errors) = RunbookSet::load(Some(&dir.path().join("nope")));
    assert!(errors.is_empty());
}

#[test]
fn never_panics_on_odd_input() {
    for text in [
        "---",
        "---\n---\n",
        "---\n\u{0}\n---\n",
        "---\r\nid: a\r\n---\r\n",
        "\u{feff}---\n: :\n---\n",
    ] {
        let _ = Runbook::parse(text, "odd.md");
    }
}
