//! Kubernetes: what fleetdeck watches inside each cluster.

pub mod spoke;
