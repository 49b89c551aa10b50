//! The one place time is read. Everything else takes `now` as an argument.

use std::time::{Duration, Instant};

use chrono::Utc;

use crate::model::Timestamp;

/// Where "now" comes from: the wall clock, a simulated clock running `speed` times faster
/// from `start` (the demo), or a frozen instant (tests).
#[derive(Clone, Debug)]
pub enum Clock {
    Wall,
    Simulated {
        start_real: Instant,
        start: Timestamp,
        speed: f64,
    },
    Frozen(Timestamp),
}

impl Clock {
    /// A simulated clock starting now at `start`.
    pub fn simulated(start: Timestamp, speed: f64) -> Self {
        Self::Simulated {
            start_real: Instant::now(),
            start,
            speed,
        }
    }

    pub fn now(&self) -> Timestamp {
        match self {
            Self::Wall => Utc::now(),
            Self::Simulated {
                start_real,
                start,
                speed,
            } => {
                let elapsed = start_real.elapsed().as_secs_f64() * speed;
                *start + chrono::Duration::milliseconds((elapsed * 1000.0) as i64)
            }
            Self::Frozen(t) => *t,
        }
    }

    /// How long to sleep in real time for `sim` of this clock's time to pass.
    pub fn real_duration(&self, sim: Duration) -> Duration {
        match self {
            Self::Simulated { speed, .. } if *speed > 0.0 => sim.div_f64(*speed),
            _ => sim,
        }
    }
}
