//! The binary as a user runs it: help, snapshot, and clear errors for bad input.

mod common;

use std::path::Path;

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

fn fleetdeck(home: &Path) -> Command {
    common::binary(home)
}

fn config_dir(home: &Path) -> std::path::PathBuf {
    let dir = home.join("config").join("fleetdeck");
    std::fs::create_dir_all(&dir).expect("config dir");
    dir
}

#[test]
fn help_lists_the_flags_a_user_needs() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .arg("--help")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("--viewer")
                .and(predicate::str::contains("--demo-clusters"))
                .and(predicate::str::contains("--demo-seed"))
                .and(predicate::str::contains("--demo-speed"))
                .and(predicate::str::contains("--theme"))
                .and(predicate::str::contains("snapshot")),
        );
}

#[test]
fn snapshot_json_matches_the_documented_schema() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = fleetdeck(home.path())
        .args(["snapshot", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    for key in [
        "generated_at",
        "mode",
        "clusters",
        "alerts",
        "rollouts",
        "sources",
    ] {
        assert!(doc.get(key).is_some(), "missing top-level key {key}");
    }
    assert_eq!(doc["mode"], "operator");

    let clusters = doc["clusters"].as_array().expect("clusters array");
    assert_eq!(clusters.len(), 48);
    for c in clusters {
        for key in [
            "name",
            "account",
            "region",
            "environment",
            "version",
            "status",
            "wave",
            "alerts_firing",
        ] {
            assert!(c.get(key).is_some(), "cluster missing {key}: {c}");
        }
    }
    let accounts: std::collections::BTreeSet<_> =
        clusters.iter().map(|c| c["account"].as_str()).collect();
    let regions: std::collections::BTreeSet<_> =
        clusters.iter().map(|c| c["region"].as_str()).collect();
    assert_eq!((accounts.len(), regions.len()), (4, 3));

    let alerts = doc["alerts"].as_array().expect("alerts array");
    assert!(!alerts.is_empty(), "the demo starts with alerts");
    for a in alerts {
        for key in [
            "id", "cluster", "name", "severity", "state", "since", "runbook",
        ] {
            assert!(a.get(key).is_some(), "alert missing {key}: {a}");
        }
    }
    let firing: u64 = clusters
        .iter()
        .map(|c| c["alerts_firing"].as_u64().expect("count"))
        .sum();
    let firing_alerts = alerts
        .iter()
        .filter(|a| a["state"] == "firing" && !a["cluster"].is_null())
        .count();
    assert_eq!(
        firing as usize, firing_alerts,
        "per-cluster counts add up to the firing alerts"
    );

    let rollout = &doc["rollouts"][0];
    assert_eq!(rollout["name"], "eks-1-31-upgrade");
    let waves = rollout["waves"].as_array().expect("waves");
    let shape: Vec<(&str, u64)> = waves
        .iter()
        .map(|w| {
            (
                w["name"].as_str().expect("name"),
                w["cells_total"].as_u64().expect("total"),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("sandbox", 1),
            ("dev", 4),
            ("staging", 8),
            ("prod-1", 15),
            ("prod-2", 20)
        ]
    );
    for w in waves {
        for key in [
            "name",
            "state",
            "cells_total",
            "cells_done",
            "paused_by",
            "reason",
        ] {
            assert!(w.get(key).is_some(), "wave missing {key}: {w}");
        }
    }
    assert_eq!(waves[0]["state"], "done");
    assert_eq!(waves[1]["state"], "done");
    assert_eq!(waves[2]["state"], "running");

    let sources = doc["sources"].as_array().expect("sources");
    assert_eq!(sources[0]["name"], "demo");
    for key in ["name", "healthy", "last_ok", "calls", "errors"] {
        assert!(sources[0].get(key).is_some(), "source missing {key}");
    }
    assert_eq!(sources[0]["healthy"], true);
}

#[test]
fn snapshot_honours_demo_flags_and_viewer_mode() {
    let home = tempfile::tempdir().expect("tempdir");
    let out = fleetdeck(home.path())
        .args([
            "snapshot",
            "--format",
            "json",
            "--demo-clusters",
            "5",
            "--viewer",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(doc["clusters"].as_array().map(Vec::len), Some(5));
    assert_eq!(doc["mode"], "viewer");
}

#[test]
fn snapshot_table_is_readable_text() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .arg("snapshot")
        .assert()
        .success()
        .stdout(
            predicate::str::contains("CLUSTERS (48)")
                .and(predicate::str::contains("ROLLOUT eks-1-31-upgrade"))
                .and(predicate::str::contains("staging")),
        );
}

#[test]
fn out_of_range_demo_flags_are_refused() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .args(["snapshot", "--demo-clusters", "10001"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("10001"));
}

#[test]
fn an_unknown_theme_names_the_available_ones() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .args(["--theme", "neon", "snapshot"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("neon").and(predicate::str::contains("high-contrast")));
}

#[test]
fn a_bad_theme_file_names_file_line_and_slot() {
    let home = tempfile::tempdir().expect("tempdir");
    let themes = config_dir(home.path()).join("themes");
    std::fs::create_dir_all(&themes).expect("themes dir");
    std::fs::write(
        themes.join("broken.toml"),
        "inherits = \"default\"\n[slots]\ncritcal = \"red\"\n",
    )
    .expect("write theme");
    fleetdeck(home.path())
        .args(["--theme", "broken", "snapshot"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("broken.toml:3").and(predicate::str::contains("critcal")));
}

#[test]
fn a_bad_colour_names_file_line_and_slot() {
    let home = tempfile::tempdir().expect("tempdir");
    let themes = config_dir(home.path()).join("themes");
    std::fs::create_dir_all(&themes).expect("themes dir");
    std::fs::write(
        themes.join("ugly.toml"),
        "[slots]\ntext = \"#fff\"\nwarning = \"yelow\"\n",
    )
    .expect("write theme");
    fleetdeck(home.path())
        .args(["--theme", "ugly", "snapshot"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("ugly.toml:")
                .and(predicate::str::contains("yelow").or(predicate::str::contains("#fff"))),
        );
}

#[test]
fn a_bad_config_names_file_line_and_field() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = config_dir(home.path()).join("config.toml");
    std::fs::write(&file, "theme = \"default\"\nmode = \"admin\"\n").expect("write config");
    fleetdeck(home.path())
        .arg("snapshot")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("config.toml:2").and(predicate::str::contains("mode")));
}

#[test]
fn an_unknown_config_key_is_an_error_not_ignored() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = config_dir(home.path()).join("config.toml");
    std::fs::write(&file, "mode = \"viewer\"\n\nthemme = \"light\"\n").expect("write config");
    fleetdeck(home.path())
        .arg("snapshot")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("config.toml:3").and(predicate::str::contains("themme")));
}

#[test]
fn config_mode_viewer_is_honoured() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = config_dir(home.path()).join("config.toml");
    std::fs::write(&file, "mode = \"viewer\"\n").expect("write config");
    let out = fleetdeck(home.path())
        .args(["snapshot", "--format", "json"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(doc["mode"], "viewer");
}

#[test]
fn an_explicit_config_that_does_not_exist_is_an_error() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .args(["--config", "/nonexistent/fleetdeck.toml", "snapshot"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("/nonexistent/fleetdeck.toml"));
}

#[test]
fn a_hub_context_that_does_not_exist_is_reported_by_name_not_hidden() {
    let home = tempfile::tempdir().expect("tempdir");
    let file = config_dir(home.path()).join("config.toml");
    std::fs::write(&file, "[hub]\ncontext = \"nope\"\n").expect("write config");
    // The hub is the only source, so nothing answered: the picture is printed and the
    // exit code says it holds no live data.
    let out = fleetdeck(home.path())
        .args(["snapshot", "--format", "json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no source answered (1 tried)"))
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    assert_eq!(doc["demo"], false);
    let hub = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"] == "argocd:nope")
        .expect("the hub is listed as a source");
    assert_eq!(hub["healthy"], false);
    let error = hub["last_error"].as_str().expect("an error");
    assert!(
        error.contains("'nope'") && error.contains("kubeconfig"),
        "{error}"
    );
}

#[test]
fn guard_refuses_to_run_without_a_hub_in_viewer_mode_or_on_the_demo() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .args(["guard", "--once"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "fleetdeck guard needs a config file with a [hub] section",
        ));
    let dir = config_dir(home.path());
    std::fs::write(dir.join("config.toml"), "mode = \"operator\"\n").expect("config");
    fleetdeck(home.path())
        .args(["guard", "--once"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("[hub]"));
    std::fs::write(
        dir.join("config.toml"),
        "[hub]\ncontext = \"hub\"\nplans = \"plans.yaml\"\n",
    )
    .expect("config");
    std::fs::write(dir.join("plans.yaml"), "addons:\n  soak: soon\n").expect("plans");
    fleetdeck(home.path())
        .args(["guard", "--once"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("plans.yaml: plan addons: soak:"));
    std::fs::write(dir.join("plans.yaml"), "addons:\n  soak: 10m\n").expect("plans");
    fleetdeck(home.path())
        .args(["--viewer", "guard", "--once"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("viewer"));
}

// ---- AWS accounts checked at start: profiles and regions ----

/// A config with one account, at `<home>/config/fleetdeck/config.toml`.
fn account_config(home: &Path, account_lines: &str) -> std::path::PathBuf {
    let file = config_dir(home).join("config.toml");
    let text = format!(
        "[[accounts]]\nname = \"prod\"\n{account_lines}\nendpoint_url = \"http://127.0.0.1:1\"\n"
    );
    std::fs::write(&file, text).expect("write config");
    file
}

#[test]
fn a_profile_missing_from_the_aws_files_stops_the_start_naming_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = account_config(
        home.path(),
        "profile = \"prod-ro\"\nregions = [\"us-east-1\"]",
    );
    let aws_config = home.path().join("aws-config");
    std::fs::write(&aws_config, "[profile staging]\nregion = us-east-1\n").expect("aws config");
    let credentials = home.path().join(".aws").join("credentials");
    fleetdeck(home.path())
        .env("AWS_CONFIG_FILE", &aws_config)
        .arg("snapshot")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!(
            "{}:3: field 'profile' in [[accounts]] 'prod': AWS profile 'prod-ro' is in \
             neither AWS file (read {} (AWS_CONFIG_FILE, exists) and {} (default, missing); \
             they define: staging)",
            config.display(),
            aws_config.display(),
            credentials.display()
        )))
        .stderr(predicate::str::contains("IMDS").not());
}

#[test]
fn a_profile_without_credentials_fails_in_its_source_naming_the_profile() {
    let home = tempfile::tempdir().expect("tempdir");
    account_config(
        home.path(),
        "profile = \"empty\"\nregions = [\"us-east-1\"]",
    );
    let aws_config = home.path().join("aws-config");
    std::fs::write(&aws_config, "[profile empty]\nregion = us-east-1\n").expect("aws config");
    // Past the start check; the credential chain then finds nothing.
    let out = fleetdeck(home.path())
        .env("AWS_CONFIG_FILE", &aws_config)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["snapshot", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    let errors: Vec<&str> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter(|s| s["name"] == "eks:prod/us-east-1" || s["name"] == "cloudwatch:prod/us-east-1")
        .filter_map(|s| s["last_error"].as_str())
        .collect();
    assert_eq!(errors.len(), 2, "{doc:#}");
    for error in errors {
        assert!(
            error.contains("no AWS credentials") && error.contains("AWS profile 'empty'"),
            "{error}"
        );
    }
}

#[test]
fn a_region_the_sdk_does_not_know_is_a_warning_and_used_as_written() {
    let home = tempfile::tempdir().expect("tempdir");
    let config = account_config(home.path(), "regions = [\"us-est-1\"]");
    let out = fleetdeck(home.path())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .args(["snapshot", "--format", "json"])
        .assert()
        // Started (not refused with 2); nothing answers at the closed endpoint.
        .code(1)
        .stderr(predicate::str::contains(format!(
            "fleetdeck: warning: {}:3: field 'regions' (item 1) in [[accounts]] 'prod': \
             'us-est-1' is not an AWS region this build knows; did you mean 'us-east-1'?",
            config.display()
        )))
        .get_output()
        .stdout
        .clone();
    let doc: Value = serde_json::from_slice(&out).expect("valid JSON");
    let sources: Vec<&str> = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(sources.contains(&"eks:prod/us-est-1"), "{sources:?}");
}

#[test]
fn serve_token_new_prints_the_token_once_and_keeps_only_its_hash() {
    let home = tempfile::tempdir().expect("tempdir");
    let tokens = home.path().join("tokens");
    let out = fleetdeck(home.path())
        .args([
            "serve", "token", "new", "alice", "--role", "operator", "--tokens",
        ])
        .arg(&tokens)
        .assert()
        .success()
        .stderr(predicate::str::contains("it is shown only now"))
        .get_output()
        .stdout
        .clone();
    let token = String::from_utf8(out).expect("utf-8");
    let token = token.trim();
    assert!(token.starts_with("fdk_"), "{token}");
    let file = std::fs::read_to_string(&tokens).expect("tokens file");
    assert!(file.starts_with("alice operator sha256:"), "{file}");
    assert!(!file.contains(token));
    // The same name again is refused, naming it.
    fleetdeck(home.path())
        .args([
            "serve", "token", "new", "alice", "--role", "viewer", "--tokens",
        ])
        .arg(&tokens)
        .assert()
        .failure()
        .stderr(predicate::str::contains("alice exists already"));
}

#[test]
fn connect_without_a_token_or_with_a_bad_url_says_what_to_do() {
    let home = tempfile::tempdir().expect("tempdir");
    fleetdeck(home.path())
        .args(["snapshot", "--connect", "http://127.0.0.1:9"])
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("no token")
                .and(predicate::str::contains("--token-file"))
                .and(predicate::str::contains("FLEETDECK_TOKEN")),
        );
    fleetdeck(home.path())
        .args(["snapshot", "--connect", "bastion:7700"])
        .env("FLEETDECK_TOKEN", "fdk_x")
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "expected the address of a fleetdeck serve",
        ));
    // A serve with a tokens file that has no token refuses to start, saying how to make one.
    let tokens = home.path().join("tokens");
    std::fs::write(&tokens, "# nobody yet\n").expect("write");
    fleetdeck(home.path())
        .args(["serve", "--demo", "--tokens"])
        .arg(&tokens)
        .assert()
        .failure()
        .stderr(predicate::str::contains("serve token new"));
}

#[test]
fn snapshot_connect_to_a_server_that_refuses_the_token_says_so() {
    let home = tempfile::tempdir().expect("tempdir");
    let tokens = home.path().join("tokens");
    fleetdeck(home.path())
        .args([
            "serve", "token", "new", "alice", "--role", "viewer", "--tokens",
        ])
        .arg(&tokens)
        .assert()
        .success();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_fleetdeck"))
        .env_clear()
        .env("HOME", home.path())
        .env("XDG_STATE_HOME", home.path().join("state"))
        .env("XDG_DATA_HOME", home.path().join("data"))
        .env("XDG_CONFIG_HOME", home.path().join("config"))
        .args(["serve", "--demo", "--listen", "127.0.0.1:0", "--tokens"])
        .arg(&tokens)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let stderr = server.stderr.take().expect("stderr");
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stderr), &mut first).expect("a line");
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("an address")
        .to_string();
    let out = fleetdeck(home.path())
        .args(["snapshot", "--format", "json", "--connect", &url])
        .env("FLEETDECK_TOKEN", "fdk_not_one_of_them")
        .assert()
        .failure()
        .get_output()
        .clone();
    let _ = server.kill();
    let _ = server.wait();
    let doc: Value = serde_json::from_slice(&out.stdout).expect("the picture, with its error");
    let feed = doc["sources"]
        .as_array()
        .expect("sources")
        .iter()
        .find(|s| s["name"].as_str().is_some_and(|n| n.starts_with("feed:")))
        .expect("the feed source")
        .clone();
    let error = feed["last_error"].as_str().unwrap_or_default();
    assert!(error.contains("401") && error.contains("token"), "{feed:#}");
}
