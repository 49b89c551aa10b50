//! A per-account-per-region request budget (token bucket), shared by the sources that call
//! AWS there, so fleetdeck never bursts past what the APIs allow on a shared account.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A token bucket: `burst` tokens, refilled at `per_second`.
#[derive(Debug)]
pub struct RequestBudget {
    burst: f64,
    per_second: f64,
    state: Mutex<(f64, Instant)>,
}

impl RequestBudget {
    /// EKS and CloudWatch read APIs allow around 10 requests per second per account and
    /// region before throttling; staying under leaves room for the team's other tools.
    pub const DEFAULT_PER_SECOND: f64 = 5.0;
    pub const DEFAULT_BURST: f64 = 10.0;

    pub fn new(per_second: f64, burst: f64) -> Self {
        Self {
            burst,
            per_second,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes a token now, or says how long until one is available.
    fn try_take(&self) -> Result<(), Duration> {
        let Ok(mut state) = self.state.lock() else {
            return Ok(());
        };
        let now = Instant::now();
        let (tokens, last) = *state;
        let tokens = (tokens + (now - last).as_secs_f64() * self.per_second).min(self.burst);
        if tokens >= 1.0 {
            *state = (tokens - 1.0, now);
            Ok(())
        } else {
            *state = (tokens, now);
            Err(Duration::from_secs_f64((1.0 - tokens) / self.per_second))
        }
    }

    /// Waits until a request may be made.
    pub async fn acquire(&self) {
        while let Err(wait) = self.try_take() {
            tokio::time::sleep(wait).await;
        }
    }
}

impl Default for RequestBudget {
    fn default() -> Self {
        Self::new(Self::DEFAULT_PER_SECOND, Self::DEFAULT_BURST)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bursts_then_paces_requests() {
        let budget = RequestBudget::new(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            budget.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(1),
            "the burst is immediate"
        );
        for _ in 0..4 {
            budget.acquire().await;
        }
        let paced = start.elapsed();
        assert!(
            paced >= Duration::from_millis(1990) && paced < Duration::from_millis(2100),
            "{paced:?}"
        );
    }
}
