//! The event loop, key routing, and the dispatch of commands.
