//! Rollout waves: the wave state machine, soak and the circuit breaker.
