//! `fleetdeck runbooks lint`: the shipped runbooks pass (CI runs this too), and every broken
//! file is reported as `file:line: message` with exit status 1.

mod common;

use predicates::prelude::*;

#[test]
fn the_shipped_runbooks_pass_the_linter() {
    let home = tempfile::tempdir().expect("tempdir");
    let runbooks = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    common::binary(home.path())
        .args(["runbooks", "lint"])
        .arg(&runbooks)
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "14 runbook file(s) checked: no problems",
        ));
}

#[test]
fn broken_files_are_listed_with_their_lines_and_fail_the_run() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("rb");
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::write(
        dir.join("a.md"),
        "---\nid: a\ntitle: A\nseverity: warning\nmatches:\n  - alert: a\n---\n## Meaning\n## Impact\n## Diagnosis\n## Mitigation\n```fleetdeck action=drain nod=x\n```\n",
    )
    .expect("write");
    std::fs::write(dir.join("b.md"), "---\nid: b\n").expect("write");
    let a = dir.join("a.md").display().to_string();
    let b = dir.join("b.md").display().to_string();
    common::binary(home.path())
        .args(["runbooks", "lint"])
        .arg(&dir)
        .assert()
        .code(1)
        .stdout(
            predicate::str::contains(format!(
                "{a}:12: step: action 'drain' has no parameter 'nod' (it takes: cluster, node, timeout)\n{a}:12: step: action 'drain' needs parameter 'node'\n{b}:1: front matter opened here is never closed with a '---' line\n"
            )),
        )
        .stderr(predicate::str::contains("3 problem(s) in 2 runbook file(s) checked"));
}

#[test]
fn without_a_directory_it_lints_the_builtins_and_the_users_runbooks() {
    let home = tempfile::tempdir().expect("tempdir");
    let user = home
        .path()
        .join("config")
        .join("fleetdeck")
        .join("runbooks");
    std::fs::create_dir_all(&user).expect("dir");
    std::fs::write(user.join("mine.md"), "# not a runbook\n").expect("write");
    common::binary(home.path())
        .args(["runbooks", "lint"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "mine.md:1: expected YAML front matter",
        ))
        .stderr(predicate::str::contains("in 15 runbook file(s) checked"));
}
