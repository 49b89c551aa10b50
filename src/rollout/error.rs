use thiserror::Error;

/// Why an operator's request on a rollout was refused. Messages are shown to the operator
/// as they are, so they say what is wrong and, where it helps, what to do.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RolloutError {
    /// No rollout has this name.
    #[error("no rollout named {0}")]
    NoRollout(String),
    /// The wave index is out of range.
    #[error("rollout {rollout} has no wave {wave}")]
    NoWave { rollout: String, wave: usize },
    /// A pause must say why, so the next person on call knows.
    #[error("a reason is required to pause a wave")]
    ReasonRequired,
    /// Pausing a finished wave would do nothing.
    #[error("wave {wave} is already done; there is nothing to pause")]
    AlreadyDone { wave: String },
    /// Someone already holds the wave.
    #[error("wave {wave} is already paused by {by} ({reason})")]
    AlreadyPaused {
        wave: String,
        by: String,
        reason: String,
    },
    /// The circuit breaker already holds the wave.
    #[error("wave {wave} is already halted by the circuit breaker ({alarm} on {cluster})")]
    AlreadyHalted {
        wave: String,
        alarm: String,
        cluster: String,
    },
    /// Resume asked of a wave that is not held.
    #[error("wave {wave} is not paused or halted")]
    NotHeld { wave: String },
    /// Resuming now would walk straight back into the incident that stopped the rollout.
    #[error("gate alarm {alarm} is still firing on {cluster}; resume when it clears")]
    GateFiring { alarm: String, cluster: String },
}
