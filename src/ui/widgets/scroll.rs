//! Scrolling for text views (help, a runbook): the furthest useful position is learnt at
//! draw time, so `G` lands on the last page and `k` from there moves at once.

use std::cell::Cell;

use crate::ui::keymap::KeyAction;

#[derive(Debug, Default)]
pub struct Scroll {
    pos: u16,
    /// Highest useful position, from the last draw (presentation memo only).
    max: Cell<u16>,
}

impl Scroll {
    /// The position to draw at, given the text's height and the view's height.
    pub fn at(&self, content_lines: usize, page: u16) -> u16 {
        let max =
            u16::try_from(content_lines.saturating_sub(usize::from(page))).unwrap_or(u16::MAX);
        self.max.set(max);
        self.pos.min(max)
    }

    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// Moves for a navigation key; returns whether it was one.
    pub fn handle(&mut self, action: KeyAction) -> bool {
        let max = self.max.get();
        let pos = self.pos.min(max);
        self.pos = match action {
            KeyAction::Up => pos.saturating_sub(1),
            KeyAction::Down => (pos + 1).min(max),
            KeyAction::PageUp => pos.saturating_sub(10),
            KeyAction::PageDown => pos.saturating_add(10).min(max),
            KeyAction::Top => 0,
            KeyAction::Bottom => max,
            _ => return false,
        };
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bottom_lands_on_the_last_page_and_up_moves_at_once() {
        let mut s = Scroll::default();
        assert_eq!(s.at(100, 20), 0);
        s.handle(KeyAction::Bottom);
        assert_eq!(s.at(100, 20), 80);
        s.handle(KeyAction::Up);
        assert_eq!(s.at(100, 20), 79);
        s.handle(KeyAction::Top);
        assert_eq!(s.at(100, 20), 0);
        // Short text never scrolls.
        s.handle(KeyAction::PageDown);
        assert_eq!(s.at(5, 20), 0);
    }
}
