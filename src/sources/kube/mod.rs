//! The Kubernetes source: connections to the spokes of interest.

pub mod connect;
pub mod contexts;
pub mod pool;
pub mod spoke;
#[cfg(test)]
mod testing;
pub mod token;
