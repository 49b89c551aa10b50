//! Alertmanager API v2 bodies, read tolerantly: every field may be missing or null, fields
//! newer versions add are ignored, and one unreadable alert is skipped (and reported)
//! rather than losing the whole list.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// One alert as `GET /api/v2/alerts` (or a group of `/alerts/groups`) returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireAlert {
    #[serde(default, deserialize_with = "null_default")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "null_default")]
    pub fingerprint: String,
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub status: WireStatus,
}

/// `status` of an alert: `active`, `suppressed` or `unprocessed`, and why it is suppressed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireStatus {
    #[serde(default, deserialize_with = "null_default")]
    pub state: String,
    #[serde(default, deserialize_with = "null_default")]
    pub silenced_by: Vec<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub inhibited_by: Vec<String>,
    /// Time intervals muting it (Alertmanager 0.27 and later).
    #[serde(default, deserialize_with = "null_default")]
    pub muted_by: Vec<String>,
}

#[derive(Deserialize)]
struct WireGroup {
    #[serde(default, deserialize_with = "null_default")]
    alerts: Vec<serde_json::Value>,
}

/// One silence as `GET /api/v2/silences` returns it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireSilence {
    #[serde(default, deserialize_with = "null_default")]
    pub id: String,
    #[serde(default, deserialize_with = "null_default")]
    pub created_by: String,
    #[serde(default, deserialize_with = "null_default")]
    pub comment: String,
    #[serde(default)]
    pub ends_at: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub status: WireSilenceStatus,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct WireSilenceStatus {
    #[serde(default, deserialize_with = "null_default")]
    pub state: String,
}

/// `POST /api/v2/silences` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PostSilence {
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
}

/// An exact (`name="value"`) matcher.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    pub name: String,
    pub value: String,
    pub is_regex: bool,
    pub is_equal: bool,
}

impl Matcher {
    pub fn exact(name: &str, value: &str) -> Self {
        Self {
            name: name.into(),
            value: value.into(),
            is_regex: false,
            is_equal: true,
        }
    }
}

#[derive(Deserialize)]
struct SilenceCreated {
    #[serde(default, rename = "silenceID")]
    silence_id: Option<String>,
}

/// A list read with some entries skipped: what was read, and what was wrong with the rest.
#[derive(Debug, Default, PartialEq)]
pub struct Read<T> {
    pub items: Vec<T>,
    /// How many entries could not be read, and the first reason.
    pub skipped: usize,
    pub first_problem: Option<String>,
}

impl<T> Read<T> {
    fn skip(&mut self, why: String) {
        self.skipped += 1;
        self.first_problem.get_or_insert(why);
    }

    /// A warning worth showing, when entries were skipped.
    pub fn warning(&self, what: &str) -> Option<String> {
        self.first_problem.as_ref().map(|why| {
            format!(
                "skipped {} {what} that could not be read; first: {why}",
                self.skipped
            )
        })
    }
}

/// Reads `/api/v2/alerts/groups`: the alerts of every group (an alert routed to several
/// receivers appears in several groups; the caller deduplicates by fingerprint).
pub fn parse_groups(body: &[u8]) -> Result<Read<WireAlert>, String> {
    let groups: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a list of alert groups: {e}"))?;
    let mut read = Read::default();
    for (i, group) in groups.into_iter().enumerate() {
        match serde_json::from_value::<WireGroup>(group) {
            Ok(g) => read_alerts(g.alerts, &mut read),
            Err(e) => read.skip(format!("group {i}: {e}")),
        }
    }
    Ok(read)
}

/// Reads `/api/v2/alerts`.
pub fn parse_alerts(body: &[u8]) -> Result<Read<WireAlert>, String> {
    let alerts: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a list of alerts: {e}"))?;
    let mut read = Read::default();
    read_alerts(alerts, &mut read);
    Ok(read)
}

fn read_alerts(alerts: Vec<serde_json::Value>, read: &mut Read<WireAlert>) {
    for value in alerts {
        match serde_json::from_value::<WireAlert>(value) {
            Ok(a) => read.items.push(a),
            Err(e) => read.skip(format!("alert: {e}")),
        }
    }
}

/// Reads `/api/v2/silences`.
pub fn parse_silences(body: &[u8]) -> Result<Read<WireSilence>, String> {
    let silences: Vec<serde_json::Value> =
        serde_json::from_slice(body).map_err(|e| format!("not a list of silences: {e}"))?;
    let mut read = Read::default();
    for value in silences {
        match serde_json::from_value::<WireSilence>(value) {
            Ok(s) if !s.id.is_empty() => read.items.push(s),
            Ok(_) => read.skip("silence without an id".into()),
            Err(e) => read.skip(format!("silence: {e}")),
        }
    }
    Ok(read)
}

/// Reads the answer to `POST /api/v2/silences`: the new silence's id.
pub fn parse_silence_created(body: &[u8]) -> Result<String, String> {
    let created: SilenceCreated =
        serde_json::from_slice(body).map_err(|e| format!("not a silence-created answer: {e}"))?;
    created
        .silence_id
        .filter(|id| !id.is_empty())
        .ok_or_else(|| "the answer carries no silenceID".to_string())
}

/// An RFC 3339 time, or `None` for a missing, empty or malformed one (Alertmanager writes
/// `0001-01-01T00:00:00Z` for "never", which is kept and compared like any other time).
pub fn time(value: Option<&str>) -> Option<Timestamp> {
    let value = value?.trim();
    chrono::DateTime::parse_from_rfc3339(value)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// `null` reads as the type's default, so `"labels": null` is an empty map, not an error.
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}
