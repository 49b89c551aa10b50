//! The demo fleet: a deterministic simulator behind the same interface as real sources.
