//! Everything drawn: views, widgets, theme and the keymap.

pub mod theme;
pub mod widgets;
