use serde::Serialize;

use super::Timestamp;

/// A source at a glance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceStatus {
    Ok,
    /// Its data is older than three poll intervals.
    Stale,
    /// Its last call failed.
    Failing,
}

/// What a source reports about itself, so the UI can be honest about freshness.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceHealth {
    pub name: String,
    pub last_ok: Option<Timestamp>,
    pub last_error: Option<String>,
    pub last_error_at: Option<Timestamp>,
    pub calls: u64,
    pub errors: u64,
    pub throttles: u64,
    /// How often the source means to refresh; data older than 3x this is stale.
    pub poll_interval_secs: u64,
    /// What the source's API use costs, US dollars per hour, where the API is billed
    /// (CloudWatch `GetMetricData`).
    pub cost_usd_per_hour: Option<f64>,
}

impl SourceHealth {
    pub fn new(name: impl Into<String>, poll_interval_secs: u64) -> Self {
        Self {
            name: name.into(),
            last_ok: None,
            last_error: None,
            last_error_at: None,
            calls: 0,
            errors: 0,
            throttles: 0,
            poll_interval_secs,
            cost_usd_per_hour: None,
        }
    }

    /// Seconds since the last success, if there was one.
    pub fn age_secs(&self, now: Timestamp) -> Option<i64> {
        self.last_ok.map(|t| (now - t).num_seconds().max(0))
    }

    /// Stale: never succeeded, or last success older than three poll intervals.
    pub fn is_stale(&self, now: Timestamp) -> bool {
        match self.age_secs(now) {
            None => true,
            Some(age) => age > 3 * self.poll_interval_secs as i64,
        }
    }

    /// Failing when the last thing that happened was an error; else stale when its data
    /// is old (or it never succeeded); else ok.
    pub fn status(&self, now: Timestamp) -> SourceStatus {
        let error_last = match (self.last_error_at, self.last_ok) {
            (Some(err), Some(ok)) => err > ok,
            (Some(_), None) => true,
            _ => false,
        };
        if error_last {
            SourceStatus::Failing
        } else if self.is_stale(now) {
            SourceStatus::Stale
        } else {
            SourceStatus::Ok
        }
    }

    /// Healthy: fresh, and the last thing that happened was a success.
    pub fn is_healthy(&self, now: Timestamp) -> bool {
        let error_after_ok = match (self.last_error_at, self.last_ok) {
            (Some(err), Some(ok)) => err > ok,
            (Some(_), None) => true,
            _ => false,
        };
        !self.is_stale(now) && !error_after_ok
    }
}
