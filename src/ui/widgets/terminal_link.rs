//! Terminal escapes that outlive a plain cell grid: OSC 8 hyperlinks (a URL a terminal
//! makes clickable) and OSC 52 (text put on the clipboard of the terminal the user sits
//! at, which works over SSH because the escape travels with the output).
//!
//! A hyperlink is not put in ratatui's buffer: an escape inside a cell's symbol makes
//! ratatui count it as wide and hide the cells after it. Views draw the link's text as
//! usual and note where it is; after each frame the loop writes the same text there again,
//! wrapped in OSC 8.

use base64::Engine as _;

/// Where a view drew a link's text, and where it points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TerminalLink {
    pub x: u16,
    pub y: u16,
    /// The text as drawn (already cut to the room it had).
    pub text: String,
    pub url: String,
}

impl TerminalLink {
    /// The escapes that turn the drawn text into a hyperlink: save the cursor, move to the
    /// text, OSC 8 around it, restore the cursor. Control characters in the URL (which
    /// could end the escape early) are left out.
    pub fn osc8(&self) -> String {
        let url: String = self.url.chars().filter(|c| !c.is_control()).collect();
        let text: String = self.text.chars().filter(|c| !c.is_control()).collect();
        format!(
            "\x1b7\x1b[{};{}H\x1b]8;;{url}\x1b\\{text}\x1b]8;;\x1b\\\x1b8",
            self.y + 1,
            self.x + 1
        )
    }
}

/// The OSC 52 escape that sets the clipboard to `text`.
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_is_written_over_its_text_and_puts_the_cursor_back() {
        let link = TerminalLink {
            x: 6,
            y: 3,
            text: "https://x.io/a".into(),
            url: "https://x.io/a\x07b".into(),
        };
        assert_eq!(
            link.osc8(),
            "\x1b7\x1b[4;7H\x1b]8;;https://x.io/ab\x1b\\https://x.io/a\x1b]8;;\x1b\\\x1b8"
        );
    }

    #[test]
    fn osc52_carries_base64() {
        assert_eq!(
            osc52("kubectl get nodes"),
            "\x1b]52;c;a3ViZWN0bCBnZXQgbm9kZXM=\x07"
        );
    }
}
