//! fleetdeck: a terminal console for on-call engineers operating fleets of EKS clusters.

pub mod actions;
pub mod app;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod feed;
pub mod guard;
pub mod logging;
pub mod model;
pub mod rollout;
pub mod runbook;
pub mod serve;
pub mod snapshot;
pub mod sources;
pub mod ui;
