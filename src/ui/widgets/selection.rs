//! List selection that follows the selected item (by key), not its position, so a live
//! list that re-sorts under the cursor never moves the operator onto another cluster.

use std::cell::Cell;
use std::ops::Range;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::widgets::{List, ListState, Table, TableState};

use crate::ui::keymap::KeyAction;

/// The selected item of a list, remembered by key.
#[derive(Debug, Default)]
pub struct Selection<K> {
    key: Option<K>,
    /// Last known position: where to land if the selected item disappears.
    last: Cell<usize>,
    /// Scroll offset and page height from the last draw (presentation memo only).
    offset: Cell<usize>,
    page: Cell<usize>,
}

impl<K: PartialEq + Clone> Selection<K> {
    pub fn new() -> Self {
        Self {
            key: None,
            last: Cell::new(0),
            offset: Cell::new(0),
            page: Cell::new(10),
        }
    }

    pub fn key(&self) -> Option<&K> {
        self.key.as_ref()
    }

    /// Selects `key` directly.
    pub fn select(&mut self, key: K) {
        self.key = Some(key);
    }

    /// Position of the selection among `len` rows, where `is(i, key)` says whether row
    /// `i` is the selected item. Falls back to the last position if the item is gone.
    pub fn position(&self, len: usize, is: impl Fn(usize, &K) -> bool) -> Option<usize> {
        if len == 0 {
            return None;
        }
        // Most often the item is where it was last time: look there first.
        let last = self.last.get();
        let found = self.key.as_ref().and_then(|k| {
            if last < len && is(last, k) {
                Some(last)
            } else {
                (0..len).find(|&i| is(i, k))
            }
        });
        let p = found.unwrap_or_else(|| self.last.get().min(len - 1));
        self.last.set(p);
        Some(p)
    }

    /// Moves the selection for a navigation key. Returns whether the key was navigation.
    pub fn navigate(
        &mut self,
        action: KeyAction,
        len: usize,
        is: impl Fn(usize, &K) -> bool,
        key_of: impl Fn(usize) -> K,
    ) -> bool {
        let Some(current) = self.position(len, is) else {
            return matches!(
                action,
                KeyAction::Up
                    | KeyAction::Down
                    | KeyAction::PageUp
                    | KeyAction::PageDown
                    | KeyAction::Top
                    | KeyAction::Bottom
            );
        };
        let page = self.page.get().max(1);
        let next = match action {
            KeyAction::Up => current.saturating_sub(1),
            KeyAction::Down => (current + 1).min(len - 1),
            KeyAction::PageUp => current.saturating_sub(page),
            KeyAction::PageDown => (current + page).min(len - 1),
            KeyAction::Top => 0,
            KeyAction::Bottom => len - 1,
            _ => return false,
        };
        self.key = Some(key_of(next));
        self.last.set(next);
        true
    }

    /// Draws `table` with row `selected` highlighted, keeping the scroll offset from the
    /// last draw. `chrome` is the rows the table uses for borders and header.
    pub fn draw_table(
        &self,
        frame: &mut Frame,
        table: Table,
        area: Rect,
        selected: Option<usize>,
        chrome: u16,
    ) {
        let mut state = TableState::default()
            .with_offset(self.offset.get())
            .with_selected(selected);
        frame.render_stateful_widget(table, area, &mut state);
        self.remember(state.offset(), area.height.saturating_sub(chrome));
    }

    /// Draws `list` with row `selected` highlighted, keeping the scroll offset.
    pub fn draw_list(&self, frame: &mut Frame, list: List, area: Rect, selected: Option<usize>) {
        let mut state = ListState::default()
            .with_offset(self.offset.get())
            .with_selected(selected);
        frame.render_stateful_widget(list, area, &mut state);
        self.remember(state.offset(), area.height);
    }

    /// The rows of a `len`-row list that a viewport `page` rows high shows, keeping
    /// `selected` in view with the least scroll from the last draw, as ratatui's own
    /// List and Table would. Views build widgets for these rows only, so a frame costs
    /// the same with 50 rows or 50,000; draw them with [`Self::draw_window_list`] or
    /// [`Self::draw_window_table`].
    pub fn window(&self, len: usize, selected: Option<usize>, page: usize) -> Range<usize> {
        let page = page.max(1);
        // A list that shrank pulls back to fill the viewport.
        let mut offset = self.offset.get().min(len.saturating_sub(page));
        if let Some(s) = selected {
            if s < offset {
                offset = s;
            } else if s >= offset + page {
                offset = s + 1 - page;
            }
        }
        self.offset.set(offset);
        self.page.set(page);
        offset..(offset + page).min(len)
    }

    /// Draws `list`, holding only the rows of `window`, with `selected` highlighted.
    pub fn draw_window_list(
        &self,
        frame: &mut Frame,
        list: List,
        area: Rect,
        window: &Range<usize>,
        selected: Option<usize>,
    ) {
        let mut state = ListState::default().with_selected(relative(window, selected));
        frame.render_stateful_widget(list, area, &mut state);
    }

    /// Draws `table`, holding only the rows of `window`, with `selected` highlighted.
    pub fn draw_window_table(
        &self,
        frame: &mut Frame,
        table: Table,
        area: Rect,
        window: &Range<usize>,
        selected: Option<usize>,
    ) {
        let mut state = TableState::default().with_selected(relative(window, selected));
        frame.render_stateful_widget(table, area, &mut state);
    }

    /// Scrolls so that rows `first..=last` are visible where the page allows, never
    /// scrolling `selected` out of view. For a selection that carries rows with it (a
    /// group title above, expanded details below).
    pub fn keep_in_view(&self, first: usize, last: usize, selected: usize, page: usize) {
        let page = page.max(1);
        let mut offset = self.offset.get();
        if last >= offset + page {
            offset = last + 1 - page;
        }
        if first < offset {
            offset = first;
        }
        offset = offset.min(selected);
        self.offset.set(offset);
    }

    /// Remembers the offset ratatui chose and the visible page height (presentation memo).
    fn remember(&self, offset: usize, page: u16) {
        self.offset.set(offset);
        self.page.set(usize::from(page).max(1));
    }
}

/// `selected` as a row of `window`, if it is in it.
fn relative(window: &Range<usize>, selected: Option<usize>) -> Option<usize> {
    selected
        .filter(|s| window.contains(s))
        .map(|s| s - window.start)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_its_item_when_rows_reorder() {
        let mut sel = Selection::new();
        let rows = ["a", "b", "c"];
        sel.navigate(KeyAction::Down, 3, |i, k| rows[i] == *k, |i| rows[i]);
        assert_eq!(sel.key(), Some(&"b"));
        let reordered = ["c", "a", "b"];
        assert_eq!(sel.position(3, |i, k| reordered[i] == *k), Some(2));
    }

    #[test]
    fn navigation_clamps_and_jumps() {
        let rows: Vec<u32> = (0..50).collect();
        let mut sel = Selection::new();
        let is = |i: usize, k: &u32| rows[i] == *k;
        sel.navigate(KeyAction::Up, 50, is, |i| rows[i]);
        assert_eq!(sel.key(), Some(&0));
        sel.navigate(KeyAction::Bottom, 50, is, |i| rows[i]);
        assert_eq!(sel.key(), Some(&49));
        sel.navigate(KeyAction::Down, 50, is, |i| rows[i]);
        assert_eq!(sel.key(), Some(&49));
        sel.navigate(KeyAction::PageUp, 50, is, |i| rows[i]);
        assert_eq!(sel.key(), Some(&39));
        sel.navigate(KeyAction::Top, 50, is, |i| rows[i]);
        assert_eq!(sel.key(), Some(&0));
    }

    #[test]
    fn a_vanished_item_leaves_the_cursor_in_place() {
        let mut sel = Selection::new();
        let rows = ["a", "b", "c", "d"];
        sel.navigate(KeyAction::Bottom, 4, |i, k| rows[i] == *k, |i| rows[i]);
        let fewer = ["a", "b"];
        assert_eq!(sel.position(2, |i, k| fewer[i] == *k), Some(1));
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn the_window_scrolls_as_little_as_keeps_the_selection_in_view() {
        let sel: Selection<u32> = Selection::new();
        assert_eq!(sel.window(50_000, Some(0), 10), 0..10);
        assert_eq!(sel.window(50_000, Some(9), 10), 0..10);
        // One past the bottom scrolls by one, not by a page.
        assert_eq!(sel.window(50_000, Some(10), 10), 1..11);
        assert_eq!(sel.window(50_000, Some(40_000), 10), 39_991..40_001);
        // Moving up inside the window leaves it where it is.
        assert_eq!(sel.window(50_000, Some(39_995), 10), 39_991..40_001);
        assert_eq!(sel.window(50_000, Some(39_000), 10), 39_000..39_010);
        // The list shrank under the offset: the window pulls back to fill the page.
        assert_eq!(sel.window(5, Some(4), 10), 0..5);
        sel.window(100, Some(99), 10);
        assert_eq!(sel.window(95, Some(94), 10), 85..95);
        assert_eq!(sel.window(5, Some(0), 10), 0..5);
        assert_eq!(sel.window(0, None, 10), 0..0);
        assert_eq!(relative(&(3..8), Some(5)), Some(2));
        assert_eq!(relative(&(3..8), Some(9)), None);
    }

    #[test]
    fn keep_in_view_shows_the_title_above_and_details_below() {
        let sel: Selection<u32> = Selection::new();
        sel.offset.set(5);
        // First wave selected at row 7; its rollout title is row 5 -> stays.
        sel.keep_in_view(5, 7, 7, 10);
        assert_eq!(sel.offset.get(), 5);
        // Back at the top: the title (row 0) comes back into view.
        sel.keep_in_view(0, 2, 2, 10);
        assert_eq!(sel.offset.get(), 0);
        // Expanded wave at row 3 with 20 cells: scroll to show them, but not past the wave.
        sel.keep_in_view(3, 23, 3, 10);
        assert_eq!(sel.offset.get(), 3);
        sel.keep_in_view(3, 8, 3, 10);
        assert_eq!(sel.offset.get(), 3);
    }
}
