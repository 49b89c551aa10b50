//! One module per screen. Each has a `State`, a pure `render`, and a `handle` for keys.

pub mod alert_ack;
pub mod alert_runbook;
pub mod alerts;
pub mod audit;
pub mod cluster;
pub mod fleet;
pub mod help;
pub mod rollouts;
pub mod runbooks;
pub mod sources;
