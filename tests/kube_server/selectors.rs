//! Label and field selectors as the API server parses and applies them.

use serde_json::{Map, Value};

/// One requirement of a label selector.
#[derive(Clone, Debug, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed `labelSelector` (`env=prod,tier in (web,api),!canary`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LabelSelector(Vec<LabelReq>);

/// Splits at commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
}

impl LabelSelector {
    /// Parses a selector; the error is the API server's wording.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_top_level(text) {
            let part = part.trim();
            let bad = || format!("unable to parse requirement: <nil>: Invalid value: \"{part}\"");
            let req = if let Some(key) = part.strip_prefix('!') {
                LabelReq::NotExists(key.trim().to_string())
            } else if let Some((key, value)) = part.split_once("!=") {
                LabelReq::NotEq(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once("==") {
                LabelReq::Eq(key.trim().into(), value.trim().into())
            } else if let Some((key, value)) = part.split_once('=') {
                LabelReq::Eq(key.trim().into(), value.trim().into())
            } else if let Some((key, rest)) = part.split_once(char::is_whitespace) {
                let rest = rest.trim_start();
                let (negate, list) = if let Some(list) = rest.strip_prefix("notin") {
                    (true, list)
                } else if let Some(list) = rest.strip_prefix("in") {
                    (false, list)
                } else {
                    return Err(bad());
                };
                let list = list
                    .trim()
                    .strip_prefix('(')
                    .and_then(|l| l.strip_suffix(')'))
                    .ok_or_else(bad)?;
                let values = list
                    .split(',')
                    .map(|v| v.trim().to_string())
                    .filter(|v| !v.is_empty())
                    .collect();
                if negate {
                    LabelReq::NotIn(key.into(), values)
                } else {
                    LabelReq::In(key.into(), values)
                }
            } else {
                LabelReq::Exists(part.to_string())
            };
            let key = match &req {
                LabelReq::Eq(k, _)
                | LabelReq::NotEq(k, _)
                | LabelReq::In(k, _)
                | LabelReq::NotIn(k, _)
                | LabelReq::Exists(k)
                | LabelReq::NotExists(k) => k,
            };
            if !valid_key(key) {
                return Err(bad());
            }
            reqs.push(req);
        }
        Ok(Self(reqs))
    }

    /// Whether an object with `labels` (its `metadata.labels`) is selected.
    pub fn matches(&self, labels: Option<&Map<String, Value>>) -> bool {
        let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => get(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => get(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => get(k).is_some_and(|v| vs.iter().any(|x| x == v)),
            LabelReq::NotIn(k, vs) => get(k).is_none_or(|v| !vs.iter().any(|x| x == v)),
            LabelReq::Exists(k) => get(k).is_some(),
            LabelReq::NotExists(k) => get(k).is_none(),
        })
    }
}

/// One requirement of a field selector.
#[derive(Clone, Debug, PartialEq)]
struct FieldReq {
    field: String,
    value: String,
    negate: bool,
}

/// A parsed `fieldSelector` (`spec.nodeName=ip-10-0-1-7,status.phase!=Succeeded`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldSelector(Vec<FieldReq>);

/// Splits at commas not escaped with a backslash, and unescapes.
fn split_escaped(text: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.extend(chars.next()),
            ',' => parts.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    parts.push(current);
    parts
}

impl FieldSelector {
    /// Parses a selector; only `=`, `==` and `!=` exist for fields.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut reqs = Vec::new();
        if text.trim().is_empty() {
            return Ok(Self(reqs));
        }
        for part in split_escaped(text) {
            let (field, value, negate) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, false)
            } else {
                return Err(format!(
                    "invalid selector: '{text}'; can't understand '{part}'"
                ));
            };
            reqs.push(FieldReq {
                field: field.trim().to_string(),
                value: value.trim().to_string(),
                negate,
            });
        }
        Ok(Self(reqs))
    }

    /// The field labels the selector uses.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|r| r.field.as_str())
    }

    /// The name asked for with `metadata.name=NAME`, if any.
    pub fn name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|r| r.field == "metadata.name" && !r.negate)
            .map(|r| r.value.as_str())
    }

    /// Whether `object` is selected.
    pub fn matches(&self, object: &Value) -> bool {
        self.0
            .iter()
            .all(|r| (field_value(object, &r.field) == r.value) != r.negate)
    }
}

/// A field's value as the API server's field sets spell it: booleans as `true`/`false`,
/// absent strings as empty.
fn field_value(object: &Value, field: &str) -> String {
    // Core Events select `source` by the reporting component.
    let path = if field == "source" {
        "source.component"
    } else {
        field
    };
    let found = path.split('.').try_fold(object, |v, key| v.get(key));
    match found {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => n.to_string(),
        // Booleans the field sets always carry, false when unset.
        _ if matches!(field, "spec.unschedulable" | "spec.hostNetwork") => "false".into(),
        _ => String::new(),
    }
}

/// Whether a `metav1.LabelSelector` object (`matchLabels`, `matchExpressions`) selects
/// `labels`, as a PodDisruptionBudget's selector does. An empty selector selects all.
pub fn selector_object_matches(selector: &Value, labels: Option<&Map<String, Value>>) -> bool {
    let get = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let by_label = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.iter().all(|(k, v)| get(k) == v.as_str()));
    let by_expression = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .is_none_or(|exprs| {
            exprs.iter().all(|e| {
                let key = e.get("key").and_then(Value::as_str).unwrap_or_default();
                let values: Vec<&str> = e
                    .get("values")
                    .and_then(Value::as_array)
                    .map(|v| v.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                match e.get("operator").and_then(Value::as_str) {
                    Some("In") => get(key).is_some_and(|v| values.contains(&v)),
                    Some("NotIn") => get(key).is_none_or(|v| !values.contains(&v)),
                    Some("Exists") => get(key).is_some(),
                    Some("DoesNotExist") => get(key).is_none(),
                    _ => false,
                }
            })
        });
    by_label && by_expression
}
