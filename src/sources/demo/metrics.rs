//! Control-plane metric values. Each point is a pure function of (seed, cluster, metric,
//! minute) plus what is going on at that minute (an alarm episode), so a backfilled point
//! and the live one agree exactly.

use std::f64::consts::TAU;

use super::hash::{hash, tag, unit};
use crate::model::{ETCD_QUOTA_BYTES, Environment, MetricName, MetricSample};

/// Relative etcd growth per minute: slow enough that no cluster reaches its quota during a
/// demo, visible enough that the creep shows on a chart.
const ETCD_GROWTH_PER_MINUTE: f64 = 1.2e-5;
/// etcd is defragmented every two days, which resets the creep.
const ETCD_DEFRAG_MINUTES: i64 = 2 * 1440;

/// p99 latency in seconds at nominal load, in `MetricName::LATENCY_BY_VERB` order. LIST is
/// by far the slowest, as on real clusters.
const P99_BASE: [f64; 6] = [0.045, 0.55, 0.09, 0.075, 0.11, 0.08];

/// The fixed traits of one cluster that shape its metrics.
#[derive(Clone, Copy, Debug)]
pub(super) struct Profile {
    /// Requests per minute at the daily peak.
    base_rpm: f64,
    /// The region's UTC offset, hours: traffic follows the local day.
    tz_hours: f64,
    rate_4xx: f64,
    /// Big clusters list slowly.
    list_factor: f64,
    /// Fraction of the etcd quota in use when the demo starts.
    pub etcd_fraction: f64,
}

impl Profile {
    /// The profile of cluster `c`, from the seed, its environment and its region's offset.
    pub fn new(seed: u64, c: usize, environment: &Environment, tz_hours: f64) -> Self {
        let h = |k: i64| unit(hash(seed, &[tag::PROFILE, c as i64, k]));
        // Production clusters carry far more traffic than the rest.
        let (lo, hi) = match environment {
            Environment::Sandbox => (900.0, 2_400.0),
            Environment::Dev => (2_400.0, 7_200.0),
            Environment::Staging => (6_000.0, 18_000.0),
            _ => (15_000.0, 90_000.0),
        };
        let size = h(0);
        Self {
            base_rpm: lo + (hi - lo) * size,
            tz_hours,
            rate_4xx: 0.015 + 0.025 * h(1),
            list_factor: 0.7 + 0.5 * size + 0.4 * h(2),
            etcd_fraction: 0.06 + 0.45 * h(3),
        }
    }
}

/// What is happening on a cluster at one minute: which alarm episodes are under way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Conditions {
    pub five_xx: bool,
    pub latency: bool,
    pub pending: bool,
    pub throttled: bool,
}

/// A uniform `[0, 1)` draw for one metric of one cluster at one minute.
fn noise(seed: u64, c: usize, metric: MetricName, k: i64, minute: i64) -> f64 {
    unit(hash(
        seed,
        &[tag::NOISE, c as i64, metric.index() as i64 * 8 + k, minute],
    ))
}

/// Daily traffic shape: 1.0 at 14:00 local time, 0.4 at 02:00.
fn diurnal(p: &Profile, minute: i64) -> f64 {
    let hour = (minute as f64 / 60.0 + p.tz_hours).rem_euclid(24.0);
    0.7 + 0.3 * (TAU * (hour - 8.0) / 24.0).sin()
}

/// API requests in the minute (`apiserver_request_total`, Sum).
fn requests(seed: u64, c: usize, p: &Profile, minute: i64) -> f64 {
    let n = noise(seed, c, MetricName::RequestTotal, 0, minute);
    (p.base_rpm * diurnal(p, minute) * (0.95 + 0.1 * n)).round()
}

/// etcd database size in bytes: a slow creep, reset by a defrag every two days.
pub(super) fn etcd_bytes(seed: u64, c: usize, p: &Profile, minute: i64, start_minute: i64) -> f64 {
    // Centred on the demo's start so the last hour before it has no defrag step.
    let half = ETCD_DEFRAG_MINUTES / 2;
    let phase = (minute - start_minute + half).rem_euclid(ETCD_DEFRAG_MINUTES) - half;
    let n = noise(seed, c, MetricName::StorageSizeBytes, 0, minute);
    let fraction = p.etcd_fraction * (1.0 + ETCD_GROWTH_PER_MINUTE * phase as f64);
    (fraction * ETCD_QUOTA_BYTES + (n - 0.5) * 2.0 * 1024.0 * 1024.0).round()
}

/// The value of `metric` for cluster `c` at `minute`, in the unit `MetricName` documents.
pub(super) fn value(
    seed: u64,
    c: usize,
    p: &Profile,
    metric: MetricName,
    minute: i64,
    start_minute: i64,
    on: Conditions,
) -> f64 {
    let u = |k: i64| noise(seed, c, metric, k, minute);
    let total = || requests(seed, c, p, minute);
    match metric {
        MetricName::RequestTotal => total(),
        MetricName::Request4xx => (total() * p.rate_4xx * (0.85 + 0.3 * u(0))).round(),
        MetricName::Request429 => {
            if on.throttled {
                ((total() * 0.015).max(250.0) * (1.0 + u(0))).round()
            } else if u(0) < 0.93 {
                0.0
            } else {
                (total() * 0.0005 * u(1)).round() + 1.0
            }
        }
        MetricName::Request5xx => {
            let rate = if on.five_xx {
                0.025 + 0.03 * u(0)
            } else if u(1) > 0.985 {
                // A short blip, well under the alarm threshold.
                0.002 + 0.004 * u(0)
            } else {
                0.0003 * u(0)
            };
            (total() * rate).round()
        }
        MetricName::P99Get
        | MetricName::P99List
        | MetricName::P99Put
        | MetricName::P99Patch
        | MetricName::P99Post
        | MetricName::P99Delete => {
            let verb = MetricName::LATENCY_BY_VERB
                .iter()
                .position(|(m, _)| *m == metric)
                .unwrap_or(0);
            let mut v = P99_BASE[verb] * (0.8 + 0.4 * u(0)) * (0.85 + 0.3 * diurnal(p, minute));
            if metric == MetricName::P99List {
                v *= p.list_factor;
            }
            if on.latency {
                v = if metric == MetricName::P99Get {
                    1.2 + 0.9 * u(1)
                } else if metric == MetricName::P99List {
                    v * (3.0 + u(1))
                } else {
                    v * (8.0 + 4.0 * u(1))
                };
            } else if on.five_xx {
                v *= 2.0 + u(1);
            }
            v
        }
        MetricName::InflightMutating | MetricName::InflightReadonly => {
            let share = if metric == MetricName::InflightMutating {
                0.012
            } else {
                0.035
            };
            let surge = if on.latency {
                5.0
            } else if on.five_xx {
                2.0
            } else {
                1.0
            };
            (total() / 60.0 * share * (0.8 + 0.4 * u(0)) * surge).round()
        }
        MetricName::StorageSizeBytes => etcd_bytes(seed, c, p, minute, start_minute),
        MetricName::PendingPods => {
            if on.pending {
                (60.0 + 200.0 * u(0)).round()
            } else if unit(hash(seed, &[tag::SPIKE, c as i64, minute])) > 0.985 {
                (8.0 + 25.0 * u(0)).round()
            } else {
                (4.0 * u(0)).floor()
            }
        }
        MetricName::UnschedulableAttempts => {
            if on.pending {
                (40.0 + 160.0 * u(0)).round()
            } else if u(0) < 0.9 {
                0.0
            } else {
                (1.0 + 3.0 * u(1)).floor()
            }
        }
        MetricName::WebhookRejections => {
            if u(2) > 0.97 {
                (12.0 + 30.0 * u(0)).round()
            } else if u(0) < 0.8 {
                0.0
            } else {
                (1.0 + 4.0 * u(1)).floor()
            }
        }
    }
}

/// Appends the points of `metrics` for cluster `c` at `minute` to `out`.
#[allow(clippy::too_many_arguments)] // all plain inputs of one pure function
pub(super) fn sample(
    seed: u64,
    c: usize,
    p: &Profile,
    metrics: &[MetricName],
    minute: i64,
    start_minute: i64,
    on: Conditions,
    out: &mut Vec<MetricSample>,
) {
    out.extend(metrics.iter().map(|&metric| MetricSample {
        metric,
        minute,
        value: value(seed, c, p, metric, minute, start_minute, on) as f32,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        Profile::new(7, 3, &Environment::Prod, 0.0)
    }

    #[test]
    fn values_are_plausible_and_respect_alarm_thresholds() {
        let p = profile();
        let quiet = Conditions::default();
        let all = Conditions {
            five_xx: true,
            latency: false,
            pending: true,
            throttled: true,
        };
        for minute in 28_000_000..28_000_000 + 24 * 60 {
            let v = |m, on| value(7, 3, &p, m, minute, 28_000_000, on);
            let total = v(MetricName::RequestTotal, quiet);
            assert!((5_000.0..=100_000.0).contains(&total), "{total}");
            assert!(v(MetricName::Request5xx, quiet) / total < 0.01);
            assert!(v(MetricName::Request5xx, all) / total > 0.01);
            assert!(v(MetricName::Request4xx, quiet) / total < 0.06);
            assert!(v(MetricName::Request429, quiet) < 200.0);
            assert!(v(MetricName::Request429, all) > 200.0);
            assert!(v(MetricName::PendingPods, quiet) < 50.0);
            assert!(v(MetricName::PendingPods, all) > 50.0);
            let get = v(MetricName::P99Get, quiet);
            let list = v(MetricName::P99List, quiet);
            assert!(get < 1.0 && list > get, "LIST slowest: {get} {list}");
            let slow = Conditions {
                latency: true,
                ..quiet
            };
            assert!(v(MetricName::P99Get, slow) > 1.0);
            let etcd = v(MetricName::StorageSizeBytes, quiet);
            assert!(etcd > 0.0 && etcd < ETCD_QUOTA_BYTES);
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_point() {
        let p = profile();
        for metric in MetricName::ALL {
            let a = value(7, 3, &p, metric, 1_000, 900, Conditions::default());
            let b = value(7, 3, &p, metric, 1_000, 900, Conditions::default());
            assert_eq!(a.to_bits(), b.to_bits(), "{metric}");
        }
    }
}
