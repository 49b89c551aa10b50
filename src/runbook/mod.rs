//! TEMPORARY STUB (replaced at merge).
use std::path::Path;

use crate::model::{Alert, Severity};

#[derive(Clone, Debug)]
pub struct Runbook {
    pub id: String,
    pub title: String,
    pub severity: Option<Severity>,
    pub environments: Vec<String>,
    pub body: String,
    pub origin: String,
}
#[derive(Clone, Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RunbookError {
    pub file: String,
    pub line: usize,
    pub message: String,
}
#[derive(Clone, Debug, Default)]
pub struct RunbookSet {
    runbooks: Vec<Runbook>,
}
impl RunbookSet {
    pub fn load(_user_dir: Option<&Path>) -> (RunbookSet, Vec<RunbookError>) {
        (
            RunbookSet {
                runbooks: vec![Runbook {
                    id: "apiserver-5xx".into(),
                    title: "API server 5xx".into(),
                    severity: Some(Severity::Critical),
                    environments: vec![],
                    body: "# API server 5xx\n\n## Meaning\n\nThe API server fails.\n".into(),
                    origin: "builtin".into(),
                }],
            },
            vec![],
        )
    }
    pub fn all(&self) -> &[Runbook] {
        &self.runbooks
    }
    pub fn get(&self, id: &str) -> Option<&Runbook> {
        self.runbooks.iter().find(|r| r.id == id)
    }
    pub fn matching(&self, alert: &Alert) -> Vec<&Runbook> {
        self.runbooks
            .iter()
            .filter(|r| alert.name.contains("5xx") && r.id == "apiserver-5xx")
            .collect()
    }
}
