//! Runbooks: markdown with YAML front matter, matched to alerts.
//!
//! ~~~markdown
//! ---
//! id: apiserver-5xx
//! title: EKS API server returning 5xx
//! severity: critical                 # critical | warning | info
//! matches:                           # any entry matching selects the runbook
//!   - alert: "eks-apiserver-5xx-*"   # glob on the alert name
//!     labels: { namespace: "kube-*" }  # optional: every label glob must match
//! environments: [prod, staging]      # optional
//! ---
//! ## Meaning
//! ...
//! ```fleetdeck action=rollout-restart namespace=kube-system deployment=coredns
//! ```
//! ~~~
//!
//! A fenced block whose info string starts with `fleetdeck` is a typed [`Step`]:
//! `action=NAME` then `key=value` parameters (`key="with spaces"` allowed). Values are
//! kept verbatim, including `{{cluster}}` / `{{labels.namespace}}` references, which
//! are filled in when the step runs.

pub mod lint;
mod parse;
pub mod plan;
pub mod vocab;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use globset::GlobMatcher;

pub use parse::parse_info;

use crate::model::{Alert, Environment, Severity};

/// Runbooks shipped in the binary: (path shown to users, text).
const BUILTINS: &[(&str, &str)] = &[
    (
        "runbooks/addon-degraded.md",
        include_str!("../../runbooks/addon-degraded.md"),
    ),
    (
        "runbooks/admission-webhook-failures.md",
        include_str!("../../runbooks/admission-webhook-failures.md"),
    ),
    (
        "runbooks/apiserver-429-flow-control.md",
        include_str!("../../runbooks/apiserver-429-flow-control.md"),
    ),
    (
        "runbooks/apiserver-5xx.md",
        include_str!("../../runbooks/apiserver-5xx.md"),
    ),
    (
        "runbooks/coredns-errors.md",
        include_str!("../../runbooks/coredns-errors.md"),
    ),
    (
        "runbooks/crashloop-after-rollout.md",
        include_str!("../../runbooks/crashloop-after-rollout.md"),
    ),
    (
        "runbooks/eks-update-failed.md",
        include_str!("../../runbooks/eks-update-failed.md"),
    ),
    (
        "runbooks/etcd-storage-near-quota.md",
        include_str!("../../runbooks/etcd-storage-near-quota.md"),
    ),
    (
        "runbooks/node-not-ready.md",
        include_str!("../../runbooks/node-not-ready.md"),
    ),
    (
        "runbooks/pdb-blocking-drain.md",
        include_str!("../../runbooks/pdb-blocking-drain.md"),
    ),
    (
        "runbooks/unschedulable-pending-pods.md",
        include_str!("../../runbooks/unschedulable-pending-pods.md"),
    ),
    (
        "runbooks/upgrade-insight-deprecated-api.md",
        include_str!("../../runbooks/upgrade-insight-deprecated-api.md"),
    ),
    (
        "runbooks/policy-pdb-no-disruption.md",
        include_str!("../../runbooks/policy-pdb-no-disruption.md"),
    ),
    (
        "runbooks/policy-deprecated-api.md",
        include_str!("../../runbooks/policy-deprecated-api.md"),
    ),
];

/// One runbook, parsed and ready to match.
#[derive(Clone, Debug)]
pub struct Runbook {
    /// Stable identifier; a user runbook with a built-in's id replaces it.
    pub id: String,
    /// Human title, shown in lists.
    pub title: String,
    /// Alert patterns; the runbook applies when any of them matches.
    pub matches: Vec<AlertMatcher>,
    /// How urgent the situation the runbook covers usually is.
    pub severity: Severity,
    /// Environments the runbook applies to; empty means all.
    pub environments: Vec<Environment>,
    /// The markdown body, without front matter.
    pub body: String,
    /// `runbooks/x.md (built-in)` or the user file's path.
    pub origin: String,
    /// Runnable steps, in document order.
    pub steps: Vec<Step>,
}

/// One `matches` entry: an alert-name glob and optional label globs.
#[derive(Clone, Debug)]
pub struct AlertMatcher {
    /// Glob on the alert name, as written.
    pub alert: String,
    /// Label name -> glob on its value, as written.
    pub labels: BTreeMap<String, String>,
    alert_glob: GlobMatcher,
    label_globs: Vec<(String, GlobMatcher)>,
}

impl AlertMatcher {
    /// Name glob matches and every label glob matches a label the alert has.
    pub fn matches(&self, alert: &Alert) -> bool {
        self.alert_glob.is_match(&alert.name)
            && self.label_globs.iter().all(|(label, glob)| {
                alert
                    .labels
                    .get(label)
                    .is_some_and(|value| glob.is_match(value))
            })
    }
}

/// A runnable step: a fenced ```` ```fleetdeck action=NAME key=value ```` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// File line of the opening fence.
    pub line: usize,
    /// The typed action's name, e.g. `rollout-restart`.
    pub action: String,
    /// Parameters, verbatim (may contain `{{cluster}}` references).
    pub params: BTreeMap<String, String>,
    /// The block's content (e.g. a note, or the script of a shell step).
    pub body: String,
}

/// A runbook file that could not be used. Display reads `file:line: message`
/// (`file: message` when no line applies, e.g. an unreadable file).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct RunbookError {
    /// `runbooks/x.md (built-in)` or the user file's path.
    pub file: String,
    /// 1-based line; 0 when the problem is the file as a whole.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl Runbook {
    /// Parses one runbook file. `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Runbook, RunbookError> {
        parse::parse_runbook(text, origin)
    }

    /// Whether this runbook applies to `alert`: a matcher matches and, when the alert
    /// has an `environment` label and the runbook lists environments, it is one of them.
    pub fn applies_to(&self, alert: &Alert) -> bool {
        let env_ok = match alert.labels.get("environment") {
            Some(env) if !self.environments.is_empty() => {
                self.environments.contains(&Environment::from_tag(env))
            }
            _ => true,
        };
        env_ok && self.matches.iter().any(|m| m.matches(alert))
    }
}

/// Every loaded runbook, built-in and the user's.
#[derive(Clone, Debug, Default)]
pub struct RunbookSet {
    runbooks: Vec<Runbook>,
}

impl RunbookSet {
    /// Loads the built-ins, then `<user_dir>/*.md` (same id replaces the built-in).
    /// Broken files are returned as errors; everything else still loads.
    pub fn load(user_dir: Option<&Path>) -> (RunbookSet, Vec<RunbookError>) {
        let mut errors = Vec::new();
        let mut by_id: BTreeMap<String, Runbook> = BTreeMap::new();
        for (path, text) in BUILTINS {
            let origin = format!("{path} (built-in)");
            match Runbook::parse(text, &origin) {
                Ok(rb) => {
                    errors.extend(lint::step_problems(&rb));
                    insert_unique(&mut by_id, rb, &mut errors)
                }
                Err(e) => errors.push(e),
            }
        }

        if let Some(dir) = user_dir {
            let mut user: BTreeMap<String, Runbook> = BTreeMap::new();
            for (origin, text) in read_user_files(dir, &mut errors) {
                match Runbook::parse(&text, &origin) {
                    // A step the vocabulary refuses is reported; the runbook still shows.
                    Ok(rb) => {
                        errors.extend(lint::step_problems(&rb));
                        insert_unique(&mut user, rb, &mut errors)
                    }
                    Err(e) => errors.push(e),
                }
            }
            // The user's own runbook wins over a built-in with the same id.
            by_id.extend(user);
        }

        let mut runbooks: Vec<Runbook> = by_id.into_values().collect();
        runbooks.sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.id.cmp(&b.id)));
        (RunbookSet { runbooks }, errors)
    }

    /// Every runbook, sorted by title.
    pub fn all(&self) -> &[Runbook] {
        &self.runbooks
    }

    /// The runbook with this id.
    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.id == id)
    }

    /// Runbooks that apply to `alert`, in title order.
    pub fn matching(&self, alert: &Alert) -> Vec<&Runbook> {
        self.runbooks
            .iter()
            .filter(|r| r.applies_to(alert))
            .collect()
    }
}

/// Adds `rb` unless its id is taken in the same layer; a clash is reported, not hidden.
fn insert_unique(map: &mut BTreeMap<String, Runbook>, rb: Runbook, errors: &mut Vec<RunbookError>) {
    if let Some(first) = map.get(&rb.id) {
        errors.push(RunbookError {
            file: rb.origin.clone(),
            line: 2,
            message: format!(
                "duplicate runbook id '{}' (already used by {}); this file is ignored",
                rb.id, first.origin
            ),
        });
    } else {
        map.insert(rb.id.clone(), rb);
    }
}

/// `*.md` files of `dir`, by name; a missing directory is simply no runbooks.
fn read_user_files(dir: &Path, errors: &mut Vec<RunbookError>) -> Vec<(String, String)> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            errors.push(RunbookError {
                file: dir.display().to_string(),
                line: 0,
                message: format!("cannot read runbook directory: {e}"),
            });
            return Vec::new();
        }
    };
    let mut paths: Vec<_> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
        .collect();
    paths.sort();
    let mut files = Vec::new();
    for path in paths {
        let origin = path.display().to_string();
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((origin, text)),
            Err(e) => errors.push(RunbookError {
                file: origin,
                line: 0,
                message: format!("cannot read runbook: {e}"),
            }),
        }
    }
    files
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
