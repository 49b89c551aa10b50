//! The one place time is read. Everything else takes `now` as an argument.

use std::sync::{Arc, RwLock};
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
    /// The clock of the server a console is connected to (`--connect`): the wall clock
    /// until the server says its own (a demo's runs fast), then that one.
    Following(Arc<RwLock<Option<Box<Clock>>>>),
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
            Self::Following(followed) => match followed.read().ok().as_deref() {
                Some(Some(clock)) => clock.now(),
                _ => Utc::now(),
            },
        }
    }

    /// A clock that follows a server's, once told it (`follow`).
    pub fn following() -> Self {
        Self::Following(Arc::new(RwLock::new(None)))
    }

    /// A following clock takes the server's time `now`, running `speed` times real time
    /// from here; other clocks are left as they are.
    pub fn follow(&self, now: Timestamp, speed: f64) {
        if let Self::Following(followed) = self
            && let Ok(mut slot) = followed.write()
        {
            *slot = Some(Box::new(if speed == 1.0 {
                Self::Wall
            } else {
                Self::simulated(now, speed)
            }));
        }
    }

    /// How long to sleep in real time for `sim` of this clock's time to pass.
    pub fn real_duration(&self, sim: Duration) -> Duration {
        match self {
            Self::Simulated { speed, .. } if *speed > 0.0 => sim.div_f64(*speed),
            Self::Following(followed) => match followed.read().ok().as_deref() {
                Some(Some(clock)) => clock.real_duration(sim),
                _ => sim,
            },
            _ => sim,
        }
    }
}
