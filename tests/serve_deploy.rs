//! The files that run `fleetdeck serve` (docs/deploy/): the systemd unit passes
//! `systemd-analyze verify` and runs a command this binary accepts; the Kubernetes
//! manifests parse, and their pieces agree (the probe path, the port, the Service's
//! target, the arguments).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use clap::Parser;

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// `ExecStart=` of the unit, split into words.
fn exec_start(unit: &str) -> Vec<String> {
    unit.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("an ExecStart")
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn the_systemd_unit_verifies_and_its_command_parses() {
    let unit = read("docs/deploy/fleetdeck-serve.service");
    let words = exec_start(&unit);
    assert_eq!(words[0], "/usr/local/bin/fleetdeck");
    assert_eq!(words[1], "serve");
    // The arguments are ones `fleetdeck serve` accepts (clap would refuse others).
    let cli = fleetdeck::cli::Cli::try_parse_from(words.iter().map(String::as_str));
    let cli = cli.unwrap_or_else(|e| panic!("ExecStart does not parse: {e}"));
    assert!(matches!(
        cli.command,
        Some(fleetdeck::cli::Command::Serve { .. })
    ));
    for needed in [
        "User=fleetdeck",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
    ] {
        assert!(unit.lines().any(|l| l == needed), "{needed}");
    }

    // systemd's own check, with the binary this build made at the place the unit names.
    let Ok(out) = Command::new("systemd-analyze").arg("--version").output() else {
        panic!(
            "systemd-analyze is not installed: ./scripts/test installs it (apt-get install \
             systemd); the unit must be checked"
        );
    };
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let unit_path = dir.path().join("fleetdeck-serve.service");
    let here = env!("CARGO_BIN_EXE_fleetdeck");
    std::fs::write(
        &unit_path,
        unit.replace("/usr/local/bin/fleetdeck", here)
            // A system user that exists on any machine running the tests.
            .replace("User=fleetdeck", "User=root")
            .replace("Group=fleetdeck", "Group=root"),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(&unit_path)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    // Outside a booted systemd (a container) it may note that it cannot reach the
    // manager; a problem with the unit itself names the unit file.
    let about_unit: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("fleetdeck-serve.service"))
        .collect();
    assert!(
        about_unit.is_empty(),
        "systemd-analyze verify found problems:\n{said}"
    );
}

#[test]
fn the_kubernetes_manifests_agree_with_the_binary_and_each_other() {
    let text = read("docs/deploy/serve.yaml");
    let docs: Vec<serde_json::Value> = text
        .split("\n---\n")
        .map(|d| serde_norway::from_str(d).unwrap_or_else(|e| panic!("{e}:\n{d}")))
        .collect();
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
    };
    let deployment = kind("Deployment");
    assert_eq!(
        deployment["spec"]["replicas"], 1,
        "two replicas double the API calls"
    );
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let cli = fleetdeck::cli::Cli::try_parse_from(std::iter::once("fleetdeck").chain(args))
        .unwrap_or_else(|e| panic!("the Deployment's args do not parse: {e}"));
    let Some(fleetdeck::cli::Command::Serve { options, .. }) = cli.command else {
        panic!("not serve");
    };
    assert!(options.tls_cert.is_some(), "off loopback, TLS");
    assert_eq!(options.listen.port(), 7700);
    assert_eq!(container["ports"][0]["containerPort"], 7700);
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"],
        fleetdeck::feed::HEALTH_PATH
    );
    let service = kind("Service");
    assert_eq!(
        service["spec"]["ports"][0]["targetPort"],
        container["ports"][0]["name"]
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["template"]["metadata"]["labels"]
    );
    // The config it mounts is one fleetdeck accepts.
    let config = kind("ConfigMap")["data"]["config.toml"].as_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let paths = fleetdeck::config::Paths::discover(Some(path)).unwrap();
    fleetdeck::config::Config::load(&paths, true)
        .unwrap_or_else(|e| panic!("the ConfigMap's config: {e}"));
}
