//! What `cargo install` gives a user: a version naming the commit it was built from, shell
//! completions that load, a manual page that renders, and a package that carries the code
//! and what it embeds, not the repository's test fixtures.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

fn fleetdeck(home: &Path) -> assert_cmd::Command {
    common::binary(home)
}

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn version_names_the_commit_of_a_checkout() {
    let home = tempfile::tempdir().unwrap();
    let out = fleetdeck(home.path()).arg("--version").output().unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    assert!(
        version.starts_with(&format!("fleetdeck {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
    let commit = Command::new("git")
        .args(["rev-parse", "--short=7", "HEAD"])
        .current_dir(manifest_dir())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match commit {
        // Built from this checkout: the commit is named (the build may predate a
        // commit made since; then its own commit is an ancestor).
        Some(head) => {
            let named = version
                .split(['(', ' ', '-', ')'])
                .find(|w| w.len() == 7 && w.chars().all(|c| c.is_ascii_hexdigit()))
                .unwrap_or_else(|| panic!("no commit in {version:?}"));
            let known = Command::new("git")
                .args(["merge-base", "--is-ancestor", named, &head])
                .current_dir(manifest_dir())
                .status()
                .unwrap();
            assert!(known.success(), "{named} is not in this checkout's history");
        }
        None => assert_eq!(
            version.trim(),
            format!("fleetdeck {}", env!("CARGO_PKG_VERSION"))
        ),
    }
}

#[test]
fn bash_completion_loads_and_completes_subcommands() {
    let home = tempfile::tempdir().unwrap();
    let script = fleetdeck(home.path())
        .args(["completions", "bash"])
        .output()
        .unwrap()
        .stdout;
    let path = home.path().join("fleetdeck.bash");
    std::fs::write(&path, &script).unwrap();
    // What bash does on `fleetdeck sn<TAB>` and `fleetdeck serve to<TAB>`.
    let complete = |line: &[&str]| {
        let words = line.join(" ");
        let cword = line.len() - 1;
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {file} && complete -p fleetdeck >/dev/null && \
                 COMP_WORDS=({words}) COMP_CWORD={cword} COMP_LINE='{words}' \
                 COMP_POINT={point} && _fleetdeck fleetdeck '{cur}' '{prev}' && \
                 printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                file = path.display(),
                point = words.len(),
                cur = line[cword],
                prev = line[cword - 1],
            ))
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let first = complete(&["fleetdeck", "sn"]);
    assert_eq!(first.trim(), "snapshot", "{first}");
    let serve = complete(&["fleetdeck", "serve", "to"]);
    assert_eq!(serve.trim(), "token", "{serve}");
    let flags = complete(&["fleetdeck", "--conn"]);
    assert!(flags.lines().any(|l| l == "--connect"), "{flags}");
}

#[test]
fn every_shell_gets_a_completion_script() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = fleetdeck(home.path())
            .args(["completions", shell])
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{shell}");
        assert!(
            text.contains("snapshot") && text.contains("serve"),
            "{shell}: {text}"
        );
    }
    fleetdeck(home.path())
        .args(["completions", "tcsh"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("possible values"));
}

#[test]
fn the_manual_page_renders_with_man() {
    let home = tempfile::tempdir().unwrap();
    let page = fleetdeck(home.path()).arg("man").output().unwrap().stdout;
    let path = home.path().join("fleetdeck.1");
    std::fs::write(&path, &page).unwrap();
    let out = Command::new("man")
        .arg("-l")
        .arg(&path)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .env("LANG", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("man is not installed ({e}): ./scripts/test installs man-db"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "man -l failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for needed in [
        "NAME",
        "SYNOPSIS",
        "fleetdeck",
        "--connect",
        "snapshot",
        "serve",
        "guard",
    ] {
        assert!(
            text.contains(needed),
            "{needed} not in the rendered page:\n{text}"
        );
    }
}

#[test]
fn the_package_carries_the_code_and_what_it_embeds_not_the_test_fixtures() {
    let out = Command::new(env!("CARGO"))
        .args(["package", "--list", "--allow-dirty", "--offline"])
        .current_dir(manifest_dir())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = String::from_utf8(out.stdout).unwrap();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "LICENSE",
        "README.md",
        "build.rs",
        "src/main.rs",
        "themes/default.toml",
        "runbooks/apiserver-5xx.md",
        "src/sources/aws/partitions.json",
    ] {
        assert!(
            files.lines().any(|l| l == needed),
            "{needed} missing:\n{files}"
        );
    }
    for line in files.lines() {
        assert!(
            !(line.starts_with("tests/")
                || line.starts_with("fuzz/")
                || line.starts_with("benches/")
                || line.starts_with("scripts/")
                || line.starts_with(".ci/")),
            "{line} should not be in the package"
        );
    }
}
