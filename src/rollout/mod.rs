//! Rollout waves: the wave state machine, soak and the circuit breaker.
//!
//! Pure functions over the model types (`Rollout`, `Wave`, `Cell`, `WaveState`, `Hold`):
//! no I/O, no clock reads (time is an argument). The demo and the Argo CD progressive-sync
//! adapter both run on them, so pause, resume, soak and the circuit breaker behave the
//! same whether the cells are simulated or read from an ApplicationSet.
//!
//! - `wave`: the state machine (holds, derived states, soak, the breaker).
//! - `guard`: what the guard does on each pass (soak holds, breaker, insights).
//! - `plan`: a rollout's soak times and gates, from an annotation or a file.
//! - `argo`: ApplicationSet + Applications -> `Rollout`, and holds -> a merge patch.

pub mod argo;
mod error;
pub mod guard;
pub mod plan;
mod wave;

pub use error::RolloutError;
pub use wave::{
    advance_cell, cells_to_start, derive_state, fail_cell, held_state, next_phase, pause,
    refresh_state, resume, soak_end, sync_gates, trip_breaker, wave_of,
};

/// Who the circuit breaker's holds are recorded as.
pub const BREAKER: &str = "fleetdeck-guard";

#[cfg(test)]
mod tests;
