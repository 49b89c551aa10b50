//! Reusable widgets and text builders shared by the views.

pub mod markdown;

pub use markdown::markdown_text;
