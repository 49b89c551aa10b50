//! Rollout waves: the wave state machine, soak and the circuit breaker.
//!
//! Pure functions over the model types (`Rollout`, `Wave`, `Cell`, `WaveState`): no I/O,
//! no clock reads (time is an argument). The demo drives them today; an Argo CD
//! progressive-sync adapter will drive them later, so nothing here knows where a cell's
//! progress comes from.

mod error;
mod wave;

pub use error::RolloutError;
pub use wave::{
    advance_cell, cells_to_start, derive_state, fail_cell, next_phase, pause, refresh_state,
    resume, soak_end, sync_gates, trip_breaker, wave_of,
};

#[cfg(test)]
mod tests;
