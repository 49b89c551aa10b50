//! Names the git commit in `fleetdeck --version` when built from a checkout:
//! `0.1.0 (3f2c1ab 2026-12-04)`, with `-dirty` when the tree has changes. Built from the
//! published crate (no `.git`) or without git, it is the version alone.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    // Only a checkout of this repository: not a parent directory's repository that
    // happens to hold an unpacked crate.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
    let in_checkout = git(&["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        std::fs::canonicalize(&top).ok() == std::fs::canonicalize(&manifest_dir).ok()
    });
    let described = in_checkout
        .then(|| {
            let commit = git(&["rev-parse", "--short=7", "HEAD"])?;
            let date = git(&["log", "-1", "--format=%cs"]).unwrap_or_default();
            let dirty =
                git(&["status", "--porcelain", "--untracked-files=no"]).map_or("", |_| "-dirty");
            Some(format!("{version} ({commit}{dirty} {date})"))
        })
        .flatten()
        .unwrap_or_else(|| version.to_string());
    println!("cargo:rustc-env=FLEETDECK_VERSION={described}");
    // Again when the commit moves or the index changes (a commit, a checkout, an edit
    // staged); not on every build.
    if in_checkout && let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/index");
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={git_dir}/{reference}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
