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

/// Found by the `runbook` fuzz target: YAML counts a lone '\r' as a line break, so this
/// error said line 75 of a 25-line file.
#[test]
fn a_front_matter_error_after_carriage_returns_names_a_line_of_the_file() {
    let text = format!(
        "---\nid: a\ntitle: T\nseverity: info\nmatches:\n  - alert: \"a{}b\"\n----\nid: b\"\n---\nbody\n",
        "\r".repeat(65)
    );
    let e = parse_err(&text);
    assert!(e.starts_with("x.md:8: front matter: "), "{e}");
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
    assert_eq!(set.all().len(), 14);
    let titles: Vec<&str> = set.all().iter().map(|r| r.title.as_str()).collect();
    let mut sorted = titles.clone();
    sorted.sort();
    assert_eq!(titles, sorted, "sorted by title");

    for (alarm, id) in [
        ("eks-apiserver-5xx-high", "apiserver-5xx"),
        ("eks-etcd-storage-high", "etcd-storage-near-quota"),
        ("eks-pending-pods-high", "unschedulable-pending-pods"),
        // Policy findings, by policy name (Security Hub and PolicyReport alerts).
        ("pdb-maxunavailable", "policy-pdb-no-disruption"),
        ("check-deprecated-apis", "policy-deprecated-api"),
    ] {
        let found: Vec<&str> = set
            .matching(&alert(alarm, &[]))
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert_eq!(found, [id], "{alarm}");
    }
    assert!(
        set.matching(&alert("eks-nothing-like-this", &[]))
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
    assert_eq!(set.all().len(), 15);

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

/// Every alert the sources raise for the failure modes the shipped runbooks cover finds
/// its runbook, with the labels those sources really set.
#[test]
fn shipped_runbooks_match_the_alerts_of_every_source() {
    let (set, _) = RunbookSet::load(None);
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            "eks-apiserver-429-throttling",
            &[],
            "apiserver-429-flow-control",
        ),
        (
            "node-not-ready",
            &[("node", "ip-10-0-1-7.ec2.internal")],
            "node-not-ready",
        ),
        ("CoreDNSErrorsHigh", &[], "coredns-errors"),
        (
            "pod-crashloopbackoff",
            &[("namespace", "payments")],
            "crashloop-after-rollout",
        ),
        (
            "eks-update-failed",
            &[("update_id", "u-1")],
            "eks-update-failed",
        ),
        (
            "pdb-blocks-disruption",
            &[("namespace", "kube-system"), ("pdb", "coredns")],
            "pdb-blocking-drain",
        ),
        (
            "eks-admission-webhook-rejections",
            &[],
            "admission-webhook-failures",
        ),
        (
            "Deprecated APIs removed in Kubernetes v1.32",
            &[("category", "UPGRADE_READINESS"), ("status", "ERROR")],
            "upgrade-insight-deprecated-api",
        ),
        (
            "Kubelet version skew",
            &[("category", "UPGRADE_READINESS"), ("status", "ERROR")],
            "upgrade-insight-deprecated-api",
        ),
    ];
    for (name, labels, id) in cases {
        let found: Vec<&str> = set
            .matching(&alert(name, labels))
            .iter()
            .map(|r| r.id.as_str())
            .collect();
        assert!(found.contains(id), "{name} matched {found:?}, not {id}");
    }
    // An insight in WARNING is not the ERROR runbook's business.
    let warning = alert(
        "Kubelet version skew",
        &[("category", "UPGRADE_READINESS"), ("status", "WARNING")],
    );
    assert!(
        set.matching(&warning)
            .iter()
            .all(|r| r.id != "upgrade-insight-deprecated-api")
    );
    // A degraded add-on: the generic runbook, plus CoreDNS's own for coredns.
    let coredns = alert("eks-addon-degraded", &[("addon", "coredns")]);
    let ids: Vec<&str> = set
        .matching(&coredns)
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert!(
        ids.contains(&"addon-degraded") && ids.contains(&"coredns-errors"),
        "{ids:?}"
    );
    let cni = alert("eks-addon-degraded", &[("addon", "vpc-cni")]);
    let ids: Vec<&str> = set.matching(&cni).iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["addon-degraded"]);
}

#[test]
fn shipped_runbooks_pass_the_linter() {
    let report = lint::lint(&[], None);
    assert_eq!(report.files, 14);
    let problems: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn references_are_filled_from_the_alert() {
    let a = alert("node-not-ready", &[("node", "ip-10-0-1-7.ec2.internal")]);
    assert_eq!(vocab::resolve("{{cluster}}", &a).unwrap(), "cell-1");
    assert_eq!(
        vocab::resolve("{{account}}/{{region}}/{{ cluster }}", &a).unwrap(),
        "prod/us-east-1/cell-1"
    );
    assert_eq!(
        vocab::resolve("{{labels.node}}", &a).unwrap(),
        "ip-10-0-1-7.ec2.internal"
    );
    assert_eq!(
        vocab::resolve("{{alert}} is {{severity}}", &a).unwrap(),
        "node-not-ready is critical"
    );
    assert_eq!(vocab::resolve("plain", &a).unwrap(), "plain");
    assert_eq!(
        vocab::resolve("{{labels.namespace}}", &a).unwrap_err(),
        "'{{labels.namespace}}' cannot be filled in: alert node-not-ready has no label 'namespace'"
    );
    let mut fleetwide = a.clone();
    fleetwide.cluster = None;
    assert_eq!(
        vocab::resolve("{{cluster}}", &fleetwide).unwrap_err(),
        "'{{cluster}}' cannot be filled in: alert node-not-ready has no cluster"
    );
    assert!(vocab::resolve("{{labels.node", &a).is_err());
}

/// The linter on fixtures: each bad file is reported with its line, the good one is not.
#[test]
fn lint_reports_every_broken_file_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
    let head = "---\nid: x\ntitle: X\nseverity: warning\nmatches:\n  - alert: x\n---\n";
    let sections = "## Meaning\nm\n## Impact\ni\n## Diagnosis\nd\n## Mitigation\n";
    write(
        "good.md",
        &format!("{head}{sections}```fleetdeck action=cordon node={{{{labels.node}}}}\n```\n"),
    );
    write("no-front-matter.md", "# Title\n");
    write(
        "bad-severity.md",
        "---\nid: x\ntitle: X\nseverity: loud\nmatches:\n  - alert: x\n---\n",
    );
    write(
        "bad-glob.md",
        "---\nid: x\ntitle: X\nseverity: info\nmatches:\n  - alert: \"[x\"\n---\n",
    );
    write(
        "bad-steps.md",
        &format!(
            "{head}{sections}\n```fleetdeck action=reboot node=a\n```\n\n```fleetdeck action=scale namespace=kube-system deployment=coredns replicas=many\n```\n\n```fleetdeck action=drain node={{{{node}}}}\n```\n"
        ),
    );
    write(
        "missing-section.md",
        &format!("{}## Meaning\nm\n", head.replace("id: x", "id: sections")),
    );
    write(
        "bad-env.md",
        "---\nid: x\ntitle: X\nseverity: info\nenvironments: [prod, qa]\nmatches:\n  - alert: x\n---\n## Meaning\n## Impact\n## Diagnosis\n## Mitigation\n",
    );
    let report = lint::lint(&[dir.path().to_path_buf()], None);
    assert_eq!(report.files, 7);
    let p = |name: &str| dir.path().join(name).display().to_string();
    let got: Vec<String> = report.problems.iter().map(ToString::to_string).collect();
    let expected = [
        format!(
            "{}:5: front matter: unknown environment 'qa' (expected sandbox, dev, staging or prod)",
            p("bad-env.md")
        ),
        format!(
            "{}:6: front matter: invalid glob '[x' for the alert name: unclosed character class; missing ']'",
            p("bad-glob.md")
        ),
        format!(
            "{}:4: front matter: severity: unknown variant 'loud', expected one of 'critical', 'warning', 'info'",
            p("bad-severity.md")
        ),
        format!(
            "{}:16: step: unknown action 'reboot' (known: rollout-restart, scale, cordon, uncordon, drain, delete-pod, argocd-refresh, argocd-sync, update-addon, pause-wave, resume-wave, ack, shell)",
            p("bad-steps.md")
        ),
        format!(
            "{}:19: step: parameter 'replicas': 'many' is not a whole number of at least 0",
            p("bad-steps.md")
        ),
        format!(
            "{}:22: step: parameter 'node': unknown reference '{{{{node}}}}' (use {{{{cluster}}}}, {{{{account}}}}, {{{{region}}}}, {{{{alert}}}}, {{{{severity}}}} or {{{{labels.NAME}}}})",
            p("bad-steps.md")
        ),
        format!(
            "{}:2: duplicate runbook id 'x' (already used by {})",
            p("bad-steps.md"),
            p("bad-env.md")
        ),
        format!(
            "{}:2: duplicate runbook id 'x' (already used by {})",
            p("good.md"),
            p("bad-env.md")
        ),
        format!(
            "{}:9: missing section '## Impact' (Meaning, Impact, Diagnosis, Mitigation)",
            p("missing-section.md")
        ),
        format!(
            "{}:9: missing section '## Diagnosis' (Meaning, Impact, Diagnosis, Mitigation)",
            p("missing-section.md")
        ),
        format!(
            "{}:9: missing section '## Mitigation' (Meaning, Impact, Diagnosis, Mitigation)",
            p("missing-section.md")
        ),
        format!(
            "{}:1: expected YAML front matter: the first line must be '---'",
            p("no-front-matter.md")
        ),
    ];
    assert_eq!(got, expected);
}

#[test]
fn a_loaded_runbook_with_a_bad_step_is_shown_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mine.md"),
        "---\nid: mine\ntitle: Mine\nseverity: info\nmatches:\n  - alert: x\n---\n```fleetdeck action=scale namespace=a deployment=b\n```\n",
    )
    .unwrap();
    let (set, errors) = RunbookSet::load(Some(dir.path()));
    assert!(set.get("mine").is_some());
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0]
            .to_string()
            .ends_with("mine.md:8: step: action 'scale' needs parameter 'replicas'"),
        "{}",
        errors[0]
    );
}

/// A store holding the demo fleet's first picture, and one of its production clusters.
fn demo_store() -> (crate::model::Store, ClusterId) {
    let t = chrono::Utc
        .with_ymd_and_hms(2026, 11, 21, 2, 10, 0)
        .single()
        .expect("valid time");
    let mut store = crate::model::Store::new();
    let mut fleet = crate::sources::demo::DemoFleet::new(&Default::default(), t);
    for e in fleet.initial_events() {
        store.apply(e, t);
    }
    let prod = store
        .clusters()
        .iter()
        .find(|c| c.environment.is_production())
        .expect("a prod cluster")
        .id
        .clone();
    (store, prod)
}

/// A write to a cluster whose tags have not been read yet may be a write to production:
/// it is confirmed as one (the cluster's name typed), not with a y/n.
#[test]
fn a_step_on_a_cluster_not_described_yet_is_confirmed_as_on_production() {
    use crate::actions::{Action, Confirmation};
    use crate::model::{Described, Environment, SourceEvent};
    let (mut store, _) = demo_store();
    let dev = store
        .clusters()
        .iter()
        .find(|c| c.environment == Environment::Dev)
        .expect("a dev cluster")
        .clone();
    let (set, _) = RunbookSet::load(None);
    let rb = set.get("node-not-ready").unwrap();
    let drain = rb.steps.iter().find(|s| s.action == "drain").unwrap();
    let alert = on(
        &dev.id,
        "node-not-ready",
        &[("node", "ip-10-0-1-7.ec2.internal")],
    );
    let confirmation =
        |store: &crate::model::Store| match plan::plan(rb, drain, &alert, store, false) {
            Ok(Action::Remediate(r)) => r.confirmation(),
            other => panic!("a remediation: {other:?}"),
        };
    assert_eq!(confirmation(&store), Confirmation::YesNo);
    let mut listed = dev.clone();
    listed.described = Described::Pending;
    store.apply(
        SourceEvent::ClusterChanged(Box::new(listed)),
        chrono::Utc::now(),
    );
    assert_eq!(
        confirmation(&store),
        Confirmation::TypeName(dev.id.name.clone())
    );
}

fn on(cluster: &ClusterId, name: &str, labels: &[(&str, &str)]) -> Alert {
    let mut a = alert(name, labels);
    a.cluster = Some(cluster.clone());
    a
}

#[test]
fn a_step_becomes_an_action_with_the_alerts_values() {
    use crate::actions::{Action, Confirmation, Operation};
    let (store, prod) = demo_store();
    let (set, _) = RunbookSet::load(None);
    let rb = set.get("node-not-ready").unwrap();
    let drain = rb.steps.iter().find(|s| s.action == "drain").unwrap();
    let a = on(
        &prod,
        "node-not-ready",
        &[("node", "ip-10-0-1-7.ec2.internal")],
    );
    let Action::Remediate(r) = plan::plan(rb, drain, &a, &store, false).unwrap() else {
        panic!("a remediation")
    };
    assert_eq!(r.cluster, prod);
    assert!(r.production);
    assert_eq!(r.step, Some(format!("node-not-ready:{}", drain.line)));
    assert_eq!(
        r.op,
        Operation::Drain {
            node: "ip-10-0-1-7.ec2.internal".into(),
            timeout_secs: 600
        }
    );
    assert_eq!(r.confirmation(), Confirmation::TypeName(prod.name.clone()));

    // An alert without the label the step needs: the error names it; nothing is built.
    let bare = on(&prod, "node-not-ready", &[]);
    assert_eq!(
        plan::plan(rb, drain, &bare, &store, false).unwrap_err(),
        "parameter 'node': '{{labels.node}}' cannot be filled in: alert node-not-ready has no label 'node'"
    );
    // A label whose value is no Kubernetes name is refused before anything runs.
    let odd = on(&prod, "node-not-ready", &[("node", "Node 7")]);
    assert!(
        plan::plan(rb, drain, &odd, &store, false)
            .unwrap_err()
            .contains("is not a Kubernetes name")
    );

    // pause-wave finds the wave that holds the cluster.
    let etcd = set.get("etcd-storage-near-quota").unwrap();
    let pause = plan::plan(
        etcd,
        &etcd.steps[0],
        &on(&prod, "eks-etcd-storage-high", &[]),
        &store,
        false,
    )
    .unwrap();
    match pause {
        Action::PauseWave {
            rollout,
            wave_name,
            reason,
            ..
        } => {
            assert_eq!(rollout, "eks-1-31-upgrade");
            assert!(wave_name.starts_with("prod-"), "{wave_name}");
            assert_eq!(reason, "etcd storage near quota");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn shell_steps_are_refused_unless_the_config_allows_them() {
    use crate::actions::{Action, Operation};
    let (store, prod) = demo_store();
    let (set, _) = RunbookSet::load(None);
    let rb = set.get("apiserver-429-flow-control").unwrap();
    let shell = rb.steps.iter().find(|s| s.action == "shell").unwrap();
    let a = on(
        &prod,
        "eks-apiserver-429-throttling",
        &[("team", "payments")],
    );
    assert_eq!(
        plan::plan(rb, shell, &a, &store, false).unwrap_err(),
        "shell steps are off: the config must set allow_shell = true to run them"
    );
    let Action::Remediate(r) = plan::plan(rb, shell, &a, &store, true).unwrap() else {
        panic!("a remediation")
    };
    let Operation::Shell { script, env } = r.op else {
        panic!("shell")
    };
    assert!(script.contains("apiserver_flowcontrol"));
    assert_eq!(env["FLEETDECK_CLUSTER"], prod.name);
    assert_eq!(env["FLEETDECK_ALERT"], "eks-apiserver-429-throttling");
    assert_eq!(env["FLEETDECK_LABEL_TEAM"], "payments");
}

#[test]
fn an_ack_step_acks_the_alert_itself() {
    use crate::actions::Action;
    let (store, prod) = demo_store();
    let (set, _) = RunbookSet::load(None);
    let rb = set.get("node-not-ready").unwrap();
    let (action, params) = parse_info("action=ack for=30m").unwrap();
    let step = Step {
        line: 1,
        action,
        params,
        body: String::new(),
    };
    assert!(crate::runbook::vocab::check(&step.action, &step.params, "").is_empty());
    let a = on(
        &prod,
        "node-not-ready",
        &[("node", "ip-10-0-1-7.ec2.internal")],
    );
    let Action::AckAlert { alert, minutes, .. } = plan::plan(rb, &step, &a, &store, false).unwrap()
    else {
        panic!("an ack")
    };
    assert_eq!((alert, minutes), (a.key.clone(), 30));
    let bad = Step {
        params: [("for".to_string(), "soon".to_string())].into(),
        ..step
    };
    assert!(!crate::runbook::vocab::check(&bad.action, &bad.params, "").is_empty());
}
