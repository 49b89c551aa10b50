//! Fixed-width columns in a single `Line`, for lists whose group rows must span the
//! whole width (which a `Table` row can't).

use ratatui::style::Style;
use ratatui::text::{Line, Span};

use crate::ui::Glyphs;

/// One cell: text, width in cells (0 = the rest of the line), alignment, style.
pub struct Column {
    pub text: String,
    pub width: usize,
    pub right: bool,
    pub style: Style,
}

impl Column {
    pub fn left(text: impl Into<String>, width: usize, style: Style) -> Self {
        Self {
            text: text.into(),
            width,
            right: false,
            style,
        }
    }

    pub fn right(text: impl Into<String>, width: usize, style: Style) -> Self {
        Self {
            text: text.into(),
            width,
            right: true,
            style,
        }
    }

    /// The last column: takes whatever room is left.
    pub fn rest(text: impl Into<String>, style: Style) -> Self {
        Self {
            text: text.into(),
            width: 0,
            right: false,
            style,
        }
    }
}

/// Pads or truncates `text` to exactly `width` characters.
pub fn fit(text: &str, width: usize, right: bool, glyphs: &Glyphs) -> String {
    let text = super::format::truncate(text, width, glyphs);
    let pad = width.saturating_sub(text.chars().count());
    if right {
        format!("{}{text}", " ".repeat(pad))
    } else {
        format!("{text}{}", " ".repeat(pad))
    }
}

/// Lays the columns out with one space between them.
pub fn line(columns: Vec<Column>, glyphs: &Glyphs) -> Line<'static> {
    let mut spans = Vec::with_capacity(columns.len() * 2);
    for (i, c) in columns.into_iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw(" "));
        }
        let text = if c.width == 0 {
            c.text
        } else {
            fit(&c.text, c.width, c.right, glyphs)
        };
        spans.push(Span::styled(text, c.style));
    }
    Line::from(spans)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_truncate_and_align() {
        let g = Glyphs::ascii();
        let s = Style::new();
        let l = line(
            vec![
                Column::left("prod-euw1-payments-01", 10, s),
                Column::right("42", 4, s),
                Column::rest("rest of it", s),
            ],
            &g,
        );
        assert_eq!(l.to_string(), "prod-euw1~   42 rest of it");
    }
}
