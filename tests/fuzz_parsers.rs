//! The parsers under proptest: the same checks as the cargo-fuzz targets in `fuzz/`
//! (included from `fuzz/src/lib.rs`), on the seed corpus, on seeds with random edits, on
//! arbitrary bytes and on generated inputs shaped like the real files and bodies. This is
//! the fuzzing CI runs on every `cargo test`; `cargo +nightly fuzz run TARGET` runs the
//! checks for as long as you like (README, "Fuzzing").

#![allow(clippy::unwrap_used)]

#[path = "../fuzz/src/lib.rs"]
mod checks;

use std::path::PathBuf;

use proptest::prelude::*;
use proptest::sample::{Index, select};

/// The seed corpus of a fuzz target: `fuzz/seeds/TARGET/*`.
fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files.iter().map(|f| std::fs::read(f).unwrap()).collect()
}

type Check = fn(&[u8]);

const TARGETS: &[(&str, Check)] = &[
    ("config", checks::config),
    ("theme", checks::theme),
    ("runbook", checks::runbook),
    ("alertmanager", checks::alertmanager),
    ("argocd", checks::argocd),
    ("argo_rollout", checks::argo_rollout),
    ("plan", checks::plan),
];

#[test]
fn every_seed_passes_its_check() {
    for (target, check) in TARGETS {
        for seed in seeds(target) {
            check(&seed);
        }
    }
}

/// Pieces that mean something to one of the parsers: TOML, YAML and JSON punctuation,
/// front-matter fences, step fences, references, and numbers at the edges.
const TOKENS: &[&str] = &[
    "\n",
    "\"",
    "'",
    "=",
    ":",
    ",",
    "[",
    "]",
    "[[",
    "{",
    "}",
    "#",
    "---\n",
    "```",
    "```fleetdeck ",
    "action=",
    "{{",
    "}}",
    "{{labels.",
    "\\",
    "\\u0000",
    "\u{feff}",
    "\0",
    "null",
    "true",
    "-1",
    "0",
    "0%",
    "%",
    "25%",
    "18446744073709551615",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1e400",
    "h",
    "d",
    "9999999999999d",
    "+262143-12-31T23:59:59Z",
    "9999-12-31T23:59:59Z",
    "é",
    "🚀",
    "  ",
    "\t",
    "\r\n",
];

/// One edit of an input: insert a token or random bytes, delete a run, or copy a chunk.
#[derive(Clone, Debug)]
enum Edit {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Copy(Index, Index, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<Index>(), select(TOKENS)).prop_map(|(at, t)| Edit::Insert(at, t.as_bytes().into())),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<Index>(), 1..16usize).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<Index>(), any::<Index>(), 1..64usize).prop_map(|(f, t, n)| Edit::Copy(f, t, n)),
    ]
}

fn apply(mut data: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        let at = |i: &Index, len: usize| i.index(len + 1);
        match e {
            Edit::Insert(i, bytes) => {
                let at = at(i, data.len());
                data.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                let at = at(i, data.len());
                let end = (at + n).min(data.len());
                data.drain(at..end);
            }
            Edit::Copy(from, to, n) => {
                let from = at(from, data.len());
                let chunk: Vec<u8> = data[from..(from + n).min(data.len())].to_vec();
                let to = at(to, data.len());
                data.splice(to..to, chunk);
            }
        }
    }
    data
}

/// A seed of `target` with a few edits.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let seeds = seeds(target);
    (any::<Index>(), prop::collection::vec(edit(), 1..6))
        .prop_map(move |(seed, edits)| apply(seeds[seed.index(seeds.len())].clone(), &edits))
}

/// Durations as plans write them, with numbers large enough to overflow.
fn duration() -> impl Strategy<Value = String> {
    prop_oneof![
        select(&["0", "90s", "30m", "2h", "1h30m", "1d", "", "30", "m", "-5m"][..])
            .prop_map(str::to_string),
        "([0-9]{1,19}[smhd]){1,3}",
    ]
}

/// A rollout plan in YAML, as in a `fleetdeck.io/plan` annotation.
fn plan_yaml() -> impl Strategy<Value = String> {
    (
        duration(),
        duration(),
        "[a-z0-9-]{1,8}",
        select(&["eks-apiserver-5xx-*", "[oops", "Kube*", "*", "{a,b}"][..]),
        any::<bool>(),
    )
        .prop_map(|(soak, wave_soak, wave, gate, insights)| {
            format!(
                "soak: {soak}\nsoak_by_wave: {{ \"{wave}\": \"{wave_soak}\" }}\ngates:\n  - \"{gate}\"\n  - alarm: KubeAPIErrorBudgetBurn\n    labels: {{ severity: crit* }}\ninsights_must_pass: {insights}\n"
            )
        })
}

/// An RFC 3339 time, including the far ends chrono can and cannot add to.
fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "2026-11-21T01:50:00Z",
                "0001-01-01T00:00:00Z",
                "9999-12-31T23:59:59Z",
                "+262143-12-31T23:59:59Z",
                "-262143-01-01T00:00:00Z",
                "2026-11-21T01:50:00+14:00",
                "not a time",
            ][..]
        )
        .prop_map(str::to_string),
        (0i64..=9999, 1u32..=12, 1u32..=28)
            .prop_map(|(y, m, d)| format!("{y:04}-{m:02}-{d:02}T00:00:00Z")),
    ]
}

/// A `fleetdeck.io/paused-steps` annotation: step numbers (some not numbers) to records.
fn paused_steps() -> impl Strategy<Value = String> {
    let step = select(
        &[
            "1",
            "2",
            "3",
            "4",
            "0",
            "-1",
            "x",
            "99999999999999999999999",
        ][..],
    );
    let max_update = select(&["null", "0", "1", "\"25%\"", "\"0%\"", "\"x\"", "1.5", "[]"][..]);
    let hold = (
        select(&["operator", "breaker", "soak", "other"][..]),
        "[a-zA-Z0-9 -]{0,12}",
        time(),
    )
        .prop_map(|(kind, text, at)| {
            format!(
                r#"{{"kind":"{kind}","reason":"{text}","alarm":"{text}","cluster":"prod/eu-west-1/{text}","after":"{text}","by":"alice","at":"{at}"}}"#
            )
        });
    prop::collection::vec((step, max_update, prop::collection::vec(hold, 0..3)), 0..4).prop_map(
        |records| {
            let entries: Vec<String> = records
                .into_iter()
                .map(|(step, max, holds)| {
                    format!(
                        r#""{step}":{{"maxUpdate":{max},"holds":[{}]}}"#,
                        holds.join(",")
                    )
                })
                .collect();
            format!("{{{}}}", entries.join(","))
        },
    )
}

fn soak_restarts() -> impl Strategy<Value = String> {
    prop::collection::vec((select(&["1", "2", "3", "x"][..]), time()), 0..3).prop_map(|r| {
        let entries: Vec<String> = r
            .into_iter()
            .map(|(step, at)| format!(r#""{step}":"{at}""#))
            .collect();
        format!("{{{}}}", entries.join(","))
    })
}

/// A TOML config built from fields the real file has, with values valid and not.
fn config_toml() -> impl Strategy<Value = String> {
    let name = "[a-z][a-z0-9-]{0,10}|\\PC{0,6}";
    (
        select(&["operator", "viewer", "admin"][..]),
        (name, select(&["us-east-1", "eu-west-1", "us-gov-west-1", "mars-1"][..])),
        select(&["*", "prod-*", "prod/us-east-1/*", "[", "a/b/c/d"][..]),
        (name, "[ -~]{0,20}"),
        (any::<i64>(), any::<i64>(), any::<i64>(), any::<i64>()),
        ("[ -~]{0,16}", "\\PC{0,8}"),
    )
        .prop_map(
            |(mode, (account, region), include, (am, url), (ack, summary, pool, idle), (ctx, file))| {
                let q = |s: &str| toml::Value::String(s.to_string()).to_string();
                format!(
                    "mode = {mode:?}\n\n[[accounts]]\nname = {}\nregions = [{}]\n\n[clusters]\ninclude = [{}]\n\n[hub]\ncontext = {}\n\n[[alertmanagers]]\nname = {}\nurl = {}\n\n[alerts]\nack_minutes = {ack}\n\n[cloudwatch]\nsummary_interval_secs = {summary}\n\n[kubernetes]\npool_size = {pool}\nidle_secs = {idle}\n\n[kubernetes.contexts]\n{} = \"prod/us-east-1/a\"\n\n[audit]\nfile = {}\n",
                    q(&account),
                    q(region),
                    q(include),
                    q(&ctx),
                    q(&am),
                    q(&format!("https://{url}")),
                    q(&ctx),
                    q(&file),
                )
            },
        )
}

/// A runbook with generated front matter and step fences.
fn runbook_md() -> impl Strategy<Value = String> {
    let step = (
        select(
            &[
                "rollout-restart",
                "cordon-node",
                "scale",
                "pause-wave",
                "ack",
                "shell",
                "Bad_Action",
            ][..],
        ),
        prop::collection::vec(
            (
                select(
                    &[
                        "cluster",
                        "namespace",
                        "name",
                        "node",
                        "for",
                        "replicas",
                        "reason",
                        "x",
                    ][..],
                ),
                select(
                    &[
                        "{{cluster}}",
                        "{{labels.node}}",
                        "{{labels.nope}}",
                        "{{oops",
                        "\"a b\"",
                        "5m",
                        "99999999999999999999h",
                        "0",
                        "kube-system",
                        "\"",
                    ][..],
                ),
            ),
            0..4,
        ),
        "[ -~\n]{0,20}",
    )
        .prop_map(|(action, params, body)| {
            let params: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "```fleetdeck action={action} {}\n{body}\n```\n",
                params.join(" ")
            )
        });
    (
        "[a-z0-9._-]{0,8}|\\PC{0,4}",
        select(&["KubeNodeNotReady", "Kube*", "[", "{a,b}*", "**"][..]),
        select(&["critical", "warning", "info", "page"][..]),
        select(&["[prod]", "[prod, moon]", "[]", "prod"][..]),
        prop::collection::vec(step, 0..4),
    )
        .prop_map(|(id, alert, severity, envs, steps)| {
            format!(
                "---\nid: \"{id}\"\ntitle: Generated\nmatches:\n  - alert: \"{alert}\"\n    labels: {{ severity: \"crit*\" }}\nseverity: {severity}\nenvironments: {envs}\n---\n## Meaning\n\n## Impact\n\n## Diagnosis\n\n## Mitigation\n{}",
                steps.concat()
            )
        })
}

/// JSON with the keys the Alertmanager and Argo CD readers look for, nested at random.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        time().prop_map(Value::String),
        "\\PC{0,8}".prop_map(Value::String),
    ];
    let key = select(
        &[
            "labels",
            "annotations",
            "fingerprint",
            "startsAt",
            "endsAt",
            "updatedAt",
            "status",
            "state",
            "silencedBy",
            "inhibitedBy",
            "alerts",
            "id",
            "matchers",
            "silenceID",
            "metadata",
            "name",
            "namespace",
            "spec",
            "strategy",
            "type",
            "rollingSync",
            "steps",
            "matchExpressions",
            "key",
            "operator",
            "values",
            "maxUpdate",
            "applicationStatus",
            "application",
            "step",
            "message",
            "lastTransitionTime",
            "destination",
            "server",
            "health",
            "sync",
            "operationState",
            "phase",
            "resourceVersion",
        ][..],
    );
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

// 256 cases each by default; PROPTEST_CASES=N for a longer run.
proptest! {
    #[test]
    fn config_seeds_with_edits(data in mutated("config")) {
        checks::config(&data);
    }

    #[test]
    fn generated_configs(text in config_toml()) {
        checks::config(text.as_bytes());
    }

    #[test]
    fn theme_seeds_with_edits(data in mutated("theme")) {
        checks::theme(&data);
    }

    #[test]
    fn generated_styles(tokens in prop::collection::vec(
        prop_oneof![
            select(&["bold", "dim", "reverse", "slow_blink", "fg=", "bg=", "reset", "grey",
                     "bright-black", "light_white"][..]).prop_map(str::to_string),
            "#[0-9a-fA-F]{6}|#\\PC{0,7}|[0-9]{1,4}|bg=[0-9]{1,3}",
        ],
        0..5,
    )) {
        let style = tokens.join(" ");
        checks::theme(format!("[slots]\ncritical = {:?}\n", style).as_bytes());
        checks::theme(style.as_bytes());
    }

    #[test]
    fn runbook_seeds_with_edits(data in mutated("runbook")) {
        checks::runbook(&data);
    }

    #[test]
    fn generated_runbooks(text in runbook_md()) {
        checks::runbook(text.as_bytes());
    }

    #[test]
    fn alertmanager_seeds_with_edits(data in mutated("alertmanager")) {
        checks::alertmanager(&data);
    }

    #[test]
    fn generated_alertmanager_bodies(value in json_value()) {
        checks::alertmanager(value.to_string().as_bytes());
        checks::alertmanager(serde_json::json!([value, {"alerts": [value]}]).to_string().as_bytes());
    }

    #[test]
    fn argocd_seeds_with_edits(data in mutated("argocd")) {
        checks::argocd(&data);
    }

    #[test]
    fn generated_argocd_objects(spec in json_value(), status in json_value(), annotations in prop::collection::btree_map(
        select(&["fleetdeck.io/paused-steps", "fleetdeck.io/plan", "fleetdeck.io/wave-names", "fleetdeck.io/soak-restarts"][..]),
        "\\PC{0,16}",
        0..3,
    )) {
        let object = serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": "platform-addons", "namespace": "argocd", "resourceVersion": "1",
                         "annotations": annotations},
            "spec": spec,
            "status": status,
        });
        checks::argocd(object.to_string().as_bytes());
    }

    #[test]
    fn argo_rollout_seeds_with_edits(data in mutated("argo_rollout")) {
        checks::argo_rollout(&data);
    }

    #[test]
    fn generated_rollout_annotations(
        plan in plan_yaml(),
        paused in paused_steps(),
        restarts in soak_restarts(),
        names in "\\[\"[a-z]{0,5}\"(, \"[a-z]{0,5}\"){0,3}\\]|[a-z, ]{0,12}",
        step in "[-0-9 ]{0,4}|[0-9]{1,25}",
    ) {
        let input = [plan, paused, restarts, names, step].join("\0");
        checks::argo_rollout(input.as_bytes());
        prop_assert_eq!(checks::parts(input.as_bytes(), 5).len(), 5);
    }

    #[test]
    fn plan_seeds_with_edits(data in mutated("plan")) {
        checks::plan(&data);
    }

    #[test]
    fn generated_plans(text in plan_yaml(), d in duration()) {
        checks::plan(text.as_bytes());
        checks::plan(d.as_bytes());
    }

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..256)) {
        for (_, check) in TARGETS {
            check(&data);
        }
    }
}
