//! Parsing one runbook file: YAML front matter, markdown body, typed steps.

use std::collections::BTreeMap;

use globset::Glob;
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use serde::Deserialize;

use super::{AlertMatcher, Runbook, RunbookError, Step};
use crate::model::{Environment, Severity};

/// The front matter as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFrontMatter {
    id: String,
    title: String,
    matches: Vec<RawMatch>,
    severity: Severity,
    #[serde(default)]
    environments: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMatch {
    alert: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Parses a whole runbook file; `origin` is the name used in errors and `Runbook::origin`.
pub(super) fn parse_runbook(text: &str, origin: &str) -> Result<Runbook, RunbookError> {
    let err = |line: usize, message: String| RunbookError {
        file: origin.to_string(),
        line,
        message,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);

    // Front matter: the first line is `---`, and it ends at the next line that is `---`.
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or_default();
    if first.trim_end() != "---" {
        return Err(err(
            1,
            "expected YAML front matter: the first line must be '---'".into(),
        ));
    }
    let mut offset = first.len();
    let yaml_start = offset;
    let mut yaml_end = None;
    let mut closing_line = 1;
    for line in lines {
        closing_line += 1;
        if line.trim_end() == "---" {
            yaml_end = Some(offset);
            offset += line.len();
            break;
        }
        offset += line.len();
    }
    let Some(yaml_end) = yaml_end else {
        return Err(err(
            1,
            "front matter opened here is never closed with a '---' line".into(),
        ));
    };
    let yaml = &text[yaml_start..yaml_end];
    let body = &text[offset..];
    // File line of the body's first line.
    let body_line = closing_line + 1;

    let raw: RawFrontMatter = serde_norway::from_str(yaml).map_err(|e| {
        // YAML line 1 is file line 2; errors without a location point at the opening '---'.
        // YAML also breaks lines at a lone '\r', the rest of fleetdeck only at '\n', so
        // the line is counted from the error's byte offset.
        let line = e.location().map_or(1, |l| match yaml.get(..l.index()) {
            Some(before) => before.matches('\n').count() + 2,
            None => (l.line() + 1).min(closing_line),
        });
        err(
            line,
            format!("front matter: {}", clean_yaml_error(&e.to_string())),
        )
    })?;

    // Lines for validation errors: serde_norway has no spans, so find the text instead.
    let line_of = |needle: &str| -> usize {
        yaml.lines()
            .position(|l| l.contains(needle))
            .map_or(1, |i| i + 2)
    };

    let id = raw.id.trim().to_string();
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(err(
            line_of("id:"),
            format!("front matter: 'id' must be letters, digits, '-', '_' or '.', found '{id}'"),
        ));
    }
    if raw.title.trim().is_empty() {
        return Err(err(
            line_of("title:"),
            "front matter: 'title' must not be empty".into(),
        ));
    }
    if raw.matches.is_empty() {
        return Err(err(
            line_of("matches:"),
            "front matter: 'matches' needs at least one {alert: GLOB} entry".into(),
        ));
    }
    let mut matches = Vec::new();
    for m in raw.matches {
        let compile = |pattern: &str, what: &str| {
            Glob::new(pattern)
                .map(|g| g.compile_matcher())
                .map_err(|e| {
                    err(
                        line_of(pattern),
                        format!(
                            "front matter: invalid glob '{pattern}' for {what}: {}",
                            e.kind()
                        ),
                    )
                })
        };
        let alert_glob = compile(&m.alert, "the alert name")?;
        let mut label_globs = Vec::new();
        for (label, pattern) in &m.labels {
            label_globs.push((
                label.clone(),
                compile(pattern, &format!("label '{label}'"))?,
            ));
        }
        matches.push(AlertMatcher {
            alert: m.alert,
            labels: m.labels,
            alert_glob,
            label_globs,
        });
    }
    let environments = raw
        .environments
        .iter()
        .map(|e| Environment::from_tag(e))
        .collect();

    let steps = parse_steps(body, body_line).map_err(|(line, message)| err(line, message))?;

    Ok(Runbook {
        id,
        title: raw.title.trim().to_string(),
        matches,
        severity: raw.severity,
        environments,
        body: body.to_string(),
        origin: origin.to_string(),
        steps,
    })
}

/// serde_norway appends " at line L column C"; the line is already in our prefix.
fn clean_yaml_error(message: &str) -> String {
    let message = match message.find(" at line ") {
        Some(i) => &message[..i],
        None => message,
    };
    message.replace('`', "'")
}

/// Finds fenced blocks whose info string starts with `fleetdeck`. `first_line` is the
/// file line of the body's first line, so steps carry file lines.
pub(super) fn parse_steps(body: &str, first_line: usize) -> Result<Vec<Step>, (usize, String)> {
    let mut steps = Vec::new();
    let mut current: Option<Step> = None;
    for (event, range) in Parser::new(body).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(info))) => {
                let mut words = info.splitn(2, char::is_whitespace);
                if words.next() == Some("fleetdeck") {
                    let line = first_line + body[..range.start].matches('\n').count();
                    let (action, params) = parse_info(words.next().unwrap_or_default())
                        .map_err(|m| (line, format!("step: {m}")))?;
                    current = Some(Step {
                        line,
                        action,
                        params,
                        body: String::new(),
                    });
                }
            }
            Event::Text(t) => {
                if let Some(step) = current.as_mut() {
                    step.body.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(step) = current.take() {
                    steps.push(step);
                }
            }
            _ => {}
        }
    }
    Ok(steps)
}

/// Parses `action=NAME key=value key="quoted value" ...`; values are kept verbatim
/// (they may hold `{{cluster}}` references filled in later).
pub fn parse_info(info: &str) -> Result<(String, BTreeMap<String, String>), String> {
    let mut params = BTreeMap::new();
    let mut action = None;
    for token in split_tokens(info)? {
        let Some((key, value)) = token.split_once('=') else {
            return Err(format!("expected key=value, found '{token}'"));
        };
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(format!("invalid parameter name '{key}'"));
        }
        if value.is_empty() {
            return Err(format!("parameter '{key}' has an empty value"));
        }
        if key == "action" {
            if action.is_some() {
                return Err("'action' given twice".into());
            }
            if !value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(format!(
                    "action '{value}' must be lowercase letters, digits and '-'"
                ));
            }
            action = Some(value.to_string());
        } else if params.insert(key.to_string(), value.to_string()).is_some() {
            return Err(format!("parameter '{key}' given twice"));
        }
    }
    let action = action.ok_or_else(|| {
        "missing action=NAME after 'fleetdeck' (e.g. fleetdeck action=rollout-restart ...)"
            .to_string()
    })?;
    Ok((action, params))
}

/// Splits on whitespace, keeping `key="a b"` together and dropping the quotes.
fn split_tokens(info: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut token = String::new();
    let mut quoted = false;
    for c in info.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !token.is_empty() {
                    tokens.push(std::mem::take(&mut token));
                }
            }
            c => token.push(c),
        }
    }
    if quoted {
        return Err("unterminated quote in step parameters".into());
    }
    if !token.is_empty() {
        tokens.push(token);
    }
    Ok(tokens)
}
