//! The request budget of one AWS account and region, shared by the sources that call AWS
//! there (EKS and CloudWatch): a token bucket whose rate adapts (AIMD, as TCP does, and as
//! the SDK's adaptive retry mode does with a cubic climb). It starts at the configured
//! ceiling, halves when AWS throttles a request, then climbs back by a fixed step each
//! second; never above the ceiling, never below a floor.
//!
//! Why not the SDK's own adaptive mode (`RetryConfig::adaptive()`, whose
//! `ClientRateLimiter` in `aws-smithy-runtime` adapts the rate the same way, with a cubic
//! climb):
//! - its limiter is driven only by the SDK's retry loop (its acquire and update calls are
//!   crate-private), so retries would move out of `call`, where every attempt is budgeted
//!   and counted (the calls, throttles and errors of the Sources view);
//! - it has no ceiling: it limits nothing until the first throttle and then climbs with no
//!   bound but twice the measured rate, so fleetdeck would first burst into a quota the
//!   account shares with the team's other tools;
//! - its rate cannot be read, and the Sources view shows it;
//! - one budget serves two clients (EKS and CloudWatch) of an account and region; the SDK
//!   shares a limiter between clients only through a custom `RetryPartition` set on each.
//!
//! What is taken from it: the throttling codes (`call.rs`), its floor of 0.5 requests per
//! second (`MIN_FILL_RATE`), and a bucket that holds one second of requests.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::model::{Pace, Timestamp};

/// The slowest the budget ever gets: one request every two seconds (the SDK's floor).
const FLOOR_PER_SECOND: f64 = 0.5;
/// After a cut the rate climbs back by this share of the ceiling each second: from half
/// the ceiling back to all of it in 10 s.
const RECOVERY_PER_SECOND: f64 = 1.0 / 20.0;

/// A token bucket whose rate adapts to throttling.
#[derive(Debug)]
pub struct RequestBudget {
    ceiling: f64,
    floor: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The rate at `since`, from which it climbs toward the ceiling.
    base: f64,
    since: Instant,
    tokens: f64,
    refilled: Instant,
    /// Serial number of the next grant.
    next: u64,
    /// Grants numbered below this were given before the last cut.
    cut_before: u64,
    last_cut: Option<Instant>,
    cuts: u64,
}

/// Leave to send one request; hand it back to [`RequestBudget::throttled`] if AWS
/// throttles that request.
#[derive(Clone, Copy, Debug)]
pub struct Grant {
    serial: u64,
}

impl RequestBudget {
    /// The default ceiling, requests per second per account and region. AWS publishes 9/s
    /// for CloudWatch `DescribeAlarms` and 10/s for `ListTagsForResource` (the latter not
    /// adjustable) and no request rates for EKS; see the README ("Pacing").
    pub const DEFAULT_CEILING: f64 = 10.0;

    /// A budget starting at `ceiling` requests per second.
    pub fn new(ceiling: f64) -> Self {
        let now = Instant::now();
        let ceiling = if ceiling.is_finite() && ceiling > 0.0 {
            ceiling
        } else {
            Self::DEFAULT_CEILING
        };
        Self {
            ceiling,
            floor: FLOOR_PER_SECOND.min(ceiling),
            state: Mutex::new(State {
                base: ceiling,
                since: now,
                tokens: capacity(ceiling),
                refilled: now,
                next: 0,
                cut_before: 0,
                last_cut: None,
                cuts: 0,
            }),
        }
    }

    /// The state; nothing panics while holding it, and if something did, the numbers in it
    /// are still a budget.
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The rate allowed at `at`: the last cut's rate plus the climb since, up to the ceiling.
    fn rate(&self, state: &State, at: Instant) -> f64 {
        let climbed = at.saturating_duration_since(state.since).as_secs_f64()
            * self.ceiling
            * RECOVERY_PER_SECOND;
        (state.base + climbed).min(self.ceiling)
    }

    /// Adds the tokens earned since the last refill. The rate is linear, then flat at the
    /// ceiling, over the interval: the mean of its two ends never overstates what was earned.
    fn refill(&self, state: &mut State, now: Instant) {
        let seconds = now.saturating_duration_since(state.refilled).as_secs_f64();
        let (from, to) = (self.rate(state, state.refilled), self.rate(state, now));
        state.tokens = (state.tokens + seconds * (from + to) / 2.0).min(capacity(to));
        state.refilled = now;
    }

    /// Takes a token now, or says how long until one is available.
    fn try_take(&self) -> Result<Grant, Duration> {
        let mut state = self.state();
        let now = Instant::now();
        self.refill(&mut state, now);
        if state.tokens >= 1.0 {
            state.tokens -= 1.0;
            let serial = state.next;
            state.next += 1;
            Ok(Grant { serial })
        } else {
            let rate = self.rate(&state, now);
            // At least a millisecond: a wait rounded to nothing would spin.
            Err(Duration::from_secs_f64((1.0 - state.tokens) / rate).max(Duration::from_millis(1)))
        }
    }

    /// Waits until a request may be made.
    pub async fn acquire(&self) -> Grant {
        loop {
            match self.try_take() {
                Ok(grant) => return grant,
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    /// AWS throttled the request sent with `grant`: halves the rate, unless it was already
    /// cut after that request was sent (throttles of the requests then in flight say
    /// nothing new). Returns the new rate when it cut.
    pub fn throttled(&self, grant: Grant) -> Option<f64> {
        let mut state = self.state();
        if grant.serial < state.cut_before {
            return None;
        }
        let now = Instant::now();
        self.refill(&mut state, now);
        let rate = (self.rate(&state, now) / 2.0).max(self.floor);
        state.base = rate;
        state.since = now;
        state.tokens = state.tokens.min(capacity(rate));
        state.cut_before = state.next;
        state.last_cut = Some(now);
        state.cuts += 1;
        Some(rate)
    }

    /// The rate now and its last cut, for the sources' health; `now` is the wall-clock time
    /// the cut is dated from.
    pub fn pace(&self, now: Timestamp) -> Pace {
        let instant = Instant::now();
        let state = self.state();
        Pace {
            per_second: self.rate(&state, instant),
            ceiling: self.ceiling,
            cut_at: state.last_cut.map(|cut| {
                let ago = instant.saturating_duration_since(cut);
                now - chrono::TimeDelta::from_std(ago).unwrap_or_default()
            }),
            cuts: state.cuts,
        }
    }
}

/// What the bucket holds at `rate`: one second of requests, and at least one.
fn capacity(rate: f64) -> f64 {
    rate.max(1.0)
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CEILING)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn t0() -> Timestamp {
        chrono::DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
    }

    fn rate(budget: &RequestBudget) -> f64 {
        budget.pace(t0()).per_second
    }

    fn assert_near(actual: f64, expected: f64) {
        assert!(
            (actual - expected).abs() < 1e-6,
            "{actual} is not {expected}"
        );
    }

    /// Requests granted within `window` by a caller taking them as fast as it may.
    async fn granted_within(budget: &RequestBudget, window: Duration) -> usize {
        let end = Instant::now() + window;
        let mut n = 0;
        loop {
            budget.acquire().await;
            if Instant::now() >= end {
                return n;
            }
            n += 1;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn starts_at_the_ceiling_with_one_second_of_burst() {
        let budget = RequestBudget::new(10.0);
        let start = Instant::now();
        for _ in 0..10 {
            budget.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO, "a second's worth at once");
        for _ in 0..20 {
            budget.acquire().await;
        }
        let paced = start.elapsed();
        assert!(
            paced >= Duration::from_secs(2) && paced < Duration::from_millis(2050),
            "then 10 a second: {paced:?}"
        );
        assert_eq!(
            budget.pace(t0()),
            Pace {
                per_second: 10.0,
                ceiling: 10.0,
                cut_at: None,
                cuts: 0
            }
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_halves_the_rate_and_the_pacing_follows() {
        let budget = RequestBudget::new(10.0);
        let grant = budget.acquire().await;
        assert_eq!(budget.throttled(grant), Some(5.0));
        let pace = budget.pace(t0());
        assert_eq!((pace.per_second, pace.cuts), (5.0, 1));
        assert_eq!(pace.cut_at, Some(t0()));
        assert!(pace.is_cut());
        // The bucket holds a second at the new rate: 5 at once, then one every 200 ms (and
        // a little faster as the rate climbs back).
        let start = Instant::now();
        for _ in 0..5 {
            budget.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        budget.acquire().await;
        let first = start.elapsed();
        assert!(
            first > Duration::from_millis(150) && first <= Duration::from_millis(200),
            "{first:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_requests_in_flight_at_a_cut_do_not_cut_again() {
        let budget = RequestBudget::new(10.0);
        let (a, b) = (budget.acquire().await, budget.acquire().await);
        assert_eq!(budget.throttled(a), Some(5.0));
        assert_eq!(budget.throttled(b), None, "sent before the cut");
        assert_near(rate(&budget), 5.0);
        let c = budget.acquire().await;
        assert_eq!(budget.throttled(c), Some(2.5), "sent after it: cut again");
        assert_eq!(budget.pace(t0()).cuts, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_rate_climbs_back_additively_and_never_past_the_ceiling() {
        let budget = RequestBudget::new(10.0);
        let start = Instant::now();
        let grant = budget.acquire().await;
        budget.throttled(grant);
        // A twentieth of the ceiling (0.5/s) each second.
        for (after, expected) in [
            (0, 5.0),
            (2, 6.0),
            (4, 7.0),
            (8, 9.0),
            (10, 10.0),
            (60, 10.0),
        ] {
            tokio::time::sleep_until(start + Duration::from_secs(after)).await;
            assert_near(rate(&budget), expected);
        }
        let pace = budget.pace(t0());
        assert!(!pace.is_cut(), "back at the ceiling: {pace:?}");
        assert_eq!(pace.cut_at, Some(t0() - chrono::TimeDelta::seconds(60)));
        // And it paces at the ceiling again: 10 a second once the burst is spent.
        let granted = granted_within(&budget, Duration::from_secs(3)).await;
        assert!((39..=40).contains(&granted), "{granted}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cut_while_climbing_halves_the_rate_reached() {
        let budget = RequestBudget::new(10.0);
        let start = Instant::now();
        let grant = budget.acquire().await;
        budget.throttled(grant);
        tokio::time::sleep_until(start + Duration::from_secs(4)).await;
        let grant = budget.acquire().await;
        assert_eq!(budget.throttled(grant), Some(3.5), "half of 7");
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_never_take_the_rate_below_the_floor() {
        // At the lowest ceiling the config allows, every cut after the first hits the floor.
        let budget = RequestBudget::new(1.0);
        let mut cuts = Vec::new();
        for _ in 0..5 {
            let grant = budget.acquire().await;
            cuts.push(budget.throttled(grant));
        }
        assert_eq!(cuts, [Some(0.5); 5]);
        assert_near(rate(&budget), 0.5);
        // One request every two seconds, still: the floor is a rate, not a stop.
        let start = Instant::now();
        for _ in 0..3 {
            budget.acquire().await;
        }
        assert!(
            start.elapsed() <= Duration::from_secs(6),
            "{:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn two_sources_share_one_rate() {
        let budget = Arc::new(RequestBudget::new(10.0));
        let window = Duration::from_secs(10);
        let (eks, cloudwatch) = tokio::join!(
            granted_within(&budget, window),
            granted_within(&budget, window)
        );
        // One second of burst, then 10 a second between them, not 10 each.
        assert!(
            (108..=112).contains(&(eks + cloudwatch)),
            "{eks} + {cloudwatch}"
        );
        assert!(
            eks >= 40 && cloudwatch >= 40,
            "both get a share: {eks}, {cloudwatch}"
        );

        // A throttle that one of them sees slows both.
        let grant = budget.acquire().await;
        budget.throttled(grant);
        let window = Duration::from_secs(2);
        let (eks, cloudwatch) = tokio::join!(
            granted_within(&budget, window),
            granted_within(&budget, window)
        );
        // The bucket had been spent: 2 s at 5/s climbing by 0.5/s each second is 11.
        assert!(
            (10..=12).contains(&(eks + cloudwatch)),
            "{eks} + {cloudwatch}"
        );
    }

    #[test]
    fn a_nonsense_ceiling_falls_back_to_the_default() {
        for ceiling in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let budget = RequestBudget::new(ceiling);
            assert_eq!(budget.ceiling, RequestBudget::DEFAULT_CEILING);
        }
    }
}
