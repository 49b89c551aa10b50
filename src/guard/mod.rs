//! `fleetdeck guard`: the headless guard.

pub mod lease;
#[cfg(test)]
mod testing;
