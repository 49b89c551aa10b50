use serde::{Deserialize, Serialize};

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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    /// Why the source has nothing to ask yet (`no cluster of interest yet`): neither
    /// failing nor healthy, and not to be shown as stale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    /// How fast the source may call AWS now, for the sources paced by an account and
    /// region's request budget.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pace: Option<Pace>,
    /// For the source that lists an organization's accounts: how many it found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accounts: Option<AccountCounts>,
    /// For the feed of a server a console is connected to (`--connect`): how late its
    /// last frame arrived, milliseconds after the server sent it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag_ms: Option<u64>,
}

/// The accounts an organization listing found, at a glance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCounts {
    /// ACTIVE accounts in the organization.
    pub discovered: usize,
    /// Of those, the ones `include` / `exclude` keep (and not already in `[[accounts]]`).
    pub included: usize,
    /// Of those, the ones whose role could not be assumed.
    pub failing: usize,
}

/// The request rate an AWS account and region allows its sources now: it starts at the
/// configured ceiling, halves when AWS throttles, and climbs back step by step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pace {
    /// Requests per second allowed now.
    pub per_second: f64,
    /// The most it may be (`[aws] max_requests_per_second`).
    pub ceiling: f64,
    /// When throttling last cut the rate, if it ever did.
    pub cut_at: Option<Timestamp>,
    /// How many times throttling has cut it.
    pub cuts: u64,
}

impl Pace {
    /// Still below the ceiling after a cut: the source is slower than it may be.
    pub fn is_cut(&self) -> bool {
        self.per_second < self.ceiling
    }
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
            waiting: None,
            pace: None,
            accounts: None,
            lag_ms: None,
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
    /// is old (or it never succeeded); else ok. A source that is `waiting` has no
    /// question to answer, so no error of its counts: it reads as stale here (it has no
    /// fresh data), and `waiting` says why.
    pub fn status(&self, now: Timestamp) -> SourceStatus {
        if self.waiting.is_some() {
            return SourceStatus::Stale;
        }
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

    /// Healthy: fresh, and the last thing that happened was a success. A `waiting`
    /// source is not: it has not been asked anything.
    pub fn is_healthy(&self, now: Timestamp) -> bool {
        if self.waiting.is_some() {
            return false;
        }
        let error_after_ok = match (self.last_error_at, self.last_ok) {
            (Some(err), Some(ok)) => err > ok,
            (Some(_), None) => true,
            _ => false,
        };
        !self.is_stale(now) && !error_after_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(secs, 0).unwrap_or_default()
    }

    #[test]
    fn a_waiting_source_is_neither_failing_nor_healthy() {
        let mut health = SourceHealth::new("kubernetes", 60);
        health.waiting = Some("no cluster of interest yet".into());
        assert_eq!(health.status(at(0)), SourceStatus::Stale);
        assert!(!health.is_healthy(at(0)));
        // An old error does not make a source with nothing to ask fail.
        health.last_error = Some("prod-1: API server rejected the credentials".into());
        health.last_error_at = Some(at(0));
        assert_eq!(health.status(at(1)), SourceStatus::Stale);
        // Asked again, it is judged as any source.
        health.waiting = None;
        assert_eq!(health.status(at(1)), SourceStatus::Failing);
        health.last_ok = Some(at(1));
        assert_eq!(health.status(at(1)), SourceStatus::Ok);
        assert!(health.is_healthy(at(1)));
    }
}
