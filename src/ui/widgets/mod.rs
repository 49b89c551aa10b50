//! Reusable pieces drawn by several views.

pub mod columns;
pub mod dialog;
pub mod format;
pub mod header;
pub mod markdown;
pub mod scroll;
pub mod selection;
pub mod status_bar;
pub mod step_dialog;
pub mod terminal_link;

pub use markdown::markdown_text;
