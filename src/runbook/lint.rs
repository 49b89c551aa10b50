//! `fleetdeck runbooks lint [DIR...]`: every problem of every runbook file, as
//! `file:line: message`, so CI can refuse a broken runbook before an on-call engineer
//! meets it at 2 a.m.

use std::path::{Path, PathBuf};

use super::{BUILTINS, Runbook, RunbookError, vocab};
use crate::model::Environment;

/// The sections every runbook needs, in this order of importance.
pub const SECTIONS: [&str; 4] = ["Meaning", "Impact", "Diagnosis", "Mitigation"];

/// What a lint run found.
#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub problems: Vec<RunbookError>,
    /// Runbook id -> the file that has it, to find ids used twice.
    ids: std::collections::BTreeMap<String, String>,
}

impl Report {
    /// Lints one file's text, and checks that its id is not taken by a file linted before.
    fn add(&mut self, text: &str, origin: &str) {
        self.files += 1;
        self.problems.extend(lint_text(text, origin));
        if let Ok(rb) = Runbook::parse(text, origin) {
            match self.ids.get(&rb.id) {
                Some(first) => self.problems.push(RunbookError {
                    file: origin.to_string(),
                    line: line_of(text, "id:"),
                    message: format!("duplicate runbook id '{}' (already used by {first})", rb.id),
                }),
                None => {
                    self.ids.insert(rb.id, origin.to_string());
                }
            }
        }
    }
}

/// Every problem of one runbook file's text: the first front-matter or fence problem
/// (the parser stops there), else each step's, each unknown environment, each missing
/// section.
pub fn lint_text(text: &str, origin: &str) -> Vec<RunbookError> {
    let rb = match Runbook::parse(text, origin) {
        Ok(rb) => rb,
        Err(e) => return vec![e],
    };
    let problem = |line: usize, message: String| RunbookError {
        file: origin.to_string(),
        line,
        message,
    };
    let mut problems = Vec::new();
    for env in &rb.environments {
        if let Environment::Other(name) = env {
            let line = line_of(text, "environments:");
            problems.push(problem(
                line,
                format!(
                    "front matter: unknown environment '{name}' (expected sandbox, dev, staging or prod)"
                ),
            ));
        }
    }
    // A missing section belongs at the end of the file.
    let last_line = text.lines().count().max(1);
    for section in SECTIONS {
        let heading = format!("## {section}");
        if !rb.body.lines().any(|l| l.trim_end() == heading) {
            problems.push(problem(
                last_line,
                format!("missing section '{heading}' ({})", SECTIONS.join(", ")),
            ));
        }
    }
    problems.extend(step_problems(&rb));
    problems
}

/// Problems of `rb`'s steps against the action vocabulary, each at its fence's line.
pub fn step_problems(rb: &Runbook) -> Vec<RunbookError> {
    let mut problems = Vec::new();
    for step in &rb.steps {
        for message in vocab::check(&step.action, &step.params, &step.body) {
            problems.push(RunbookError {
                file: rb.origin.clone(),
                line: step.line,
                message: format!("step: {message}"),
            });
        }
    }
    problems
}

/// 1-based line of the first line containing `needle`, else 1.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map_or(1, |i| i + 1)
}

/// Lints `paths` (directories of `*.md`, or single files). With none, the built-in
/// runbooks and `user_dir`. Problems are in file order.
pub fn lint(paths: &[PathBuf], user_dir: Option<&Path>) -> Report {
    let mut report = Report::default();
    if paths.is_empty() {
        for (path, text) in BUILTINS {
            report.add(text, &format!("{path} (built-in)"));
        }
        // The user's runbooks replace built-ins of the same id: only clashes among them count.
        report.ids.clear();
        if let Some(dir) = user_dir.filter(|d| d.is_dir()) {
            lint_path(dir, &mut report);
        }
        return report;
    }
    for path in paths {
        lint_path(path, &mut report);
    }
    report
}

fn lint_path(path: &Path, report: &mut Report) {
    let files = if path.is_dir() {
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut files: Vec<PathBuf> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "md") && p.is_file())
                    .collect();
                files.sort();
                if files.is_empty() {
                    report.problems.push(RunbookError {
                        file: path.display().to_string(),
                        line: 0,
                        message: "no runbook (*.md) in this directory".into(),
                    });
                }
                files
            }
            Err(e) => {
                report.problems.push(RunbookError {
                    file: path.display().to_string(),
                    line: 0,
                    message: format!("cannot read directory: {e}"),
                });
                return;
            }
        }
    } else {
        vec![path.to_path_buf()]
    };
    for file in files {
        let origin = file.display().to_string();
        match std::fs::read_to_string(&file) {
            Ok(text) => report.add(&text, &origin),
            Err(e) => report.problems.push(RunbookError {
                file: origin,
                line: 0,
                message: format!("cannot read: {e}"),
            }),
        }
    }
}

/// Runs the command: prints each problem and a summary; exit status 1 on any problem.
pub fn run(paths: &[PathBuf], user_dir: Option<&Path>) -> std::process::ExitCode {
    let report = lint(paths, user_dir);
    for p in &report.problems {
        println!("{p}");
    }
    if report.problems.is_empty() {
        println!("{} runbook file(s) checked: no problems", report.files);
        std::process::ExitCode::SUCCESS
    } else {
        eprintln!(
            "{} problem(s) in {} runbook file(s) checked",
            report.problems.len(),
            report.files
        );
        std::process::ExitCode::from(1)
    }
}
