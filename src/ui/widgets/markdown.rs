//! TEMPORARY STUB (replaced at merge).
use ratatui::text::Text;

use crate::ui::theme::Theme;

pub fn markdown_text(md: &str, _theme: &Theme, _ascii: bool) -> Text<'static> {
    Text::raw(md.to_string())
}
