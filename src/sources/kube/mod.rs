//! The Kubernetes source: connections to the spokes of interest.

pub mod spoke;
pub mod token;
