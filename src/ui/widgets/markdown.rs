//! Markdown to styled [`Text`], for runbooks and help.
//!
//! The output keeps the author's line breaks (a soft break starts a new line), so it
//! reads well at 80 columns without reflowing; wrap the `Paragraph` if lines may be long.
//! Headings use the `title` slot (level 1 also underlined), code uses `accent` and is
//! indented, and a ```` ```fleetdeck action=... ```` block is shown as a runnable step:
//! `▶ step: rollout-restart namespace=kube-system ...` (`> step:` with `ascii`).

use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span, Text};

use crate::ui::theme::Theme;

/// Indentation of code blocks and step bodies.
const CODE_INDENT: &str = "    ";

/// Renders markdown into styled lines. `ascii` swaps box-drawing and symbols for ASCII.
pub fn markdown_text(md: &str, theme: &Theme, ascii: bool) -> Text<'static> {
    let mut r = Renderer::new(theme, ascii);
    for event in Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH) {
        r.event(event);
    }
    r.flush_line();
    Text::from(r.lines)
}

/// What the code block being read is.
enum CodeKind {
    Plain,
    Step,
}

struct Renderer<'t> {
    theme: &'t Theme,
    ascii: bool,
    lines: Vec<Line<'static>>,
    /// Spans of the line being built; empty until something is written to it.
    current: Vec<Span<'static>>,
    /// Inline styles in effect (heading, emphasis, link), innermost last.
    inline: Vec<Style>,
    /// Continuation indents of the open containers (list items, block quotes).
    prefixes: Vec<String>,
    /// A list marker waiting for the first line of its item.
    pending_marker: Option<String>,
    /// Next number of each open list (`None` for bullets).
    lists: Vec<Option<u64>>,
    /// A block ended; separate the next one with a blank line.
    need_blank: bool,
    /// Inside a code block: what kind, and its text so far.
    code: Option<(CodeKind, String)>,
    /// Destination of the link being read.
    link: Option<String>,
}

impl<'t> Renderer<'t> {
    fn new(theme: &'t Theme, ascii: bool) -> Self {
        Self {
            theme,
            ascii,
            lines: Vec::new(),
            current: Vec::new(),
            inline: Vec::new(),
            prefixes: Vec::new(),
            pending_marker: None,
            lists: Vec::new(),
            need_blank: false,
            code: None,
            link: None,
        }
    }

    fn style(&self) -> Style {
        self.inline
            .iter()
            .fold(self.theme.text, |acc, s| acc.patch(*s))
    }

    /// Starts a block: a blank line after the previous one, and a fresh line.
    fn block_start(&mut self) {
        self.flush_line();
        if self.need_blank && !self.lines.is_empty() {
            self.lines.push(Line::default());
        }
        self.need_blank = false;
    }

    /// Writes the indentation (and a pending list marker) at the start of a line.
    fn start_line(&mut self) {
        if !self.current.is_empty() {
            return;
        }
        let mut indent: String = self.prefixes.concat();
        if let Some(marker) = self.pending_marker.take() {
            // The marker takes the place of the innermost item's indent.
            if let Some(last) = self.prefixes.last() {
                indent.truncate(indent.len() - last.len());
            }
            if !indent.is_empty() {
                self.current.push(Span::styled(indent, self.theme.muted));
            }
            self.current.push(Span::styled(marker, self.theme.accent));
        } else if !indent.is_empty() {
            self.current.push(Span::styled(indent, self.theme.muted));
        }
    }

    fn push(&mut self, text: impl Into<String>, style: Style) {
        let text = text.into();
        if text.is_empty() {
            return;
        }
        self.start_line();
        self.current.push(Span::styled(text, style));
    }

    fn flush_line(&mut self) {
        if !self.current.is_empty() {
            self.lines
                .push(Line::from(std::mem::take(&mut self.current)));
        }
    }

    fn event(&mut self, event: Event<'_>) {
        if let Some((_, buf)) = self.code.as_mut() {
            match event {
                Event::Text(t) => buf.push_str(&t),
                Event::End(TagEnd::CodeBlock) => self.end_code_block(),
                _ => {}
            }
            return;
        }
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(t) => {
                let style = self.style();
                self.push(t.into_string(), style);
            }
            Event::Code(t) => {
                let style = self.style().patch(self.theme.accent);
                self.push(t.into_string(), style);
            }
            Event::InlineHtml(t) | Event::Html(t) => {
                let style = self.theme.muted;
                self.push(t.trim_end_matches('\n').to_string(), style);
            }
            // A soft break is a space, as in any Markdown renderer: the view wraps to the
            // terminal's width, which is rarely the author's.
            Event::SoftBreak => {
                let style = self.style();
                self.push(" ", style);
            }
            Event::HardBreak => self.flush_line(),
            Event::Rule => {
                self.block_start();
                let rule = if self.ascii { "-" } else { "─" }.repeat(40);
                let style = self.theme.muted;
                self.push(rule, style);
                self.flush_line();
                self.need_blank = true;
            }
            Event::FootnoteReference(t) => {
                let style = self.theme.muted;
                self.push(format!("[{t}]"), style);
            }
            Event::TaskListMarker(done) => {
                let style = self.theme.accent;
                self.push(if done { "[x] " } else { "[ ] " }, style);
            }
            Event::InlineMath(t) | Event::DisplayMath(t) => {
                let style = self.theme.accent;
                self.push(t.into_string(), style);
            }
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        match tag {
            Tag::Paragraph => self.block_start(),
            Tag::Heading { level, .. } => {
                self.block_start();
                let mut style = self.theme.title;
                if level == HeadingLevel::H1 {
                    style = style.add_modifier(Modifier::UNDERLINED);
                }
                self.inline.push(style);
            }
            Tag::BlockQuote(_) => {
                self.block_start();
                self.prefixes
                    .push(if self.ascii { "| " } else { "│ " }.to_string());
            }
            Tag::CodeBlock(kind) => {
                self.block_start();
                let info = match &kind {
                    CodeBlockKind::Fenced(info) => info.to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                let mut words = info.trim().splitn(2, char::is_whitespace);
                let kind = if words.next() == Some("fleetdeck") {
                    let params = words.next().unwrap_or_default().trim();
                    // Show the step as the action and its parameters, not as code.
                    let params = params.strip_prefix("action=").unwrap_or(params);
                    let marker = if self.ascii { "> step: " } else { "▶ step: " };
                    let style = self.theme.accent.add_modifier(Modifier::BOLD);
                    self.push(format!("{marker}{params}"), style);
                    self.flush_line();
                    CodeKind::Step
                } else {
                    CodeKind::Plain
                };
                self.code = Some((kind, String::new()));
            }
            Tag::List(start) => {
                if self.lists.is_empty() {
                    self.block_start();
                } else {
                    self.flush_line();
                }
                self.lists.push(start);
            }
            Tag::Item => {
                // Items of a loose list (ones holding paragraphs or code) get a blank
                // line between them; tight items stay together.
                self.block_start();
                let marker = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        let m = format!("{n}. ");
                        *n += 1;
                        m
                    }
                    _ => if self.ascii { "- " } else { "• " }.to_string(),
                };
                self.prefixes.push(" ".repeat(marker.chars().count()));
                self.pending_marker = Some(marker);
            }
            Tag::Emphasis => self
                .inline
                .push(Style::new().add_modifier(Modifier::ITALIC)),
            Tag::Strong => self.inline.push(Style::new().add_modifier(Modifier::BOLD)),
            Tag::Strikethrough => self
                .inline
                .push(Style::new().add_modifier(Modifier::CROSSED_OUT)),
            Tag::Link { dest_url, .. } => {
                self.inline
                    .push(self.theme.accent.add_modifier(Modifier::UNDERLINED));
                self.link = Some(dest_url.to_string());
            }
            Tag::Image { dest_url, .. } => {
                let style = self.theme.muted;
                self.push("[image: ", style);
                self.inline.push(self.theme.muted);
                self.link = Some(dest_url.to_string());
            }
            Tag::Table(_) | Tag::TableHead | Tag::TableRow => self.flush_line(),
            Tag::TableCell => {
                let style = self.theme.muted;
                self.push(" | ", style);
            }
            Tag::HtmlBlock
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::MetadataBlock(_)
            | Tag::Superscript
            | Tag::Subscript => self.flush_line(),
        }
    }

    fn end(&mut self, tag: TagEnd) {
        match tag {
            TagEnd::Paragraph => {
                self.flush_line();
                self.need_blank = true;
            }
            TagEnd::Heading(_) => {
                self.inline.pop();
                self.flush_line();
                self.need_blank = true;
            }
            TagEnd::BlockQuote(_) => {
                self.flush_line();
                self.prefixes.pop();
                self.need_blank = true;
            }
            TagEnd::List(_) => {
                self.flush_line();
                self.lists.pop();
                if self.lists.is_empty() {
                    self.need_blank = true;
                }
            }
            TagEnd::Item => {
                self.flush_line();
                self.prefixes.pop();
                self.pending_marker = None;
            }
            TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough => {
                self.inline.pop();
            }
            TagEnd::Link => {
                self.inline.pop();
                if let Some(url) = self.link.take() {
                    let shown = self.current.last().is_some_and(|s| s.content == url);
                    if !shown {
                        let style = self.theme.muted;
                        self.push(format!(" <{url}>"), style);
                    }
                }
            }
            TagEnd::Image => {
                self.inline.pop();
                let style = self.theme.muted;
                self.push("]", style);
                if let Some(url) = self.link.take() {
                    self.push(format!(" <{url}>"), style);
                }
            }
            TagEnd::CodeBlock => self.end_code_block(),
            _ => self.flush_line(),
        }
    }

    fn end_code_block(&mut self) {
        let Some((kind, text)) = self.code.take() else {
            return;
        };
        let style = match kind {
            CodeKind::Plain => self.theme.accent,
            CodeKind::Step => self.theme.muted,
        };
        for line in text.trim_end_matches('\n').split('\n') {
            // A step with no body renders as its header alone.
            if matches!(kind, CodeKind::Step) && line.trim().is_empty() {
                continue;
            }
            self.start_line();
            self.current
                .push(Span::styled(format!("{CODE_INDENT}{line}"), style));
            self.flush_line();
        }
        self.need_blank = true;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use ratatui::buffer::Buffer;
    use ratatui::layout::Rect;
    use ratatui::style::Color;
    use ratatui::widgets::{Paragraph, Widget};

    const SAMPLE: &str = "# Etcd full

Writes *fail* at the `8 GiB` quota.
See [docs](https://docs.aws.amazon.com/eks).

## Steps

- check size
- delete:
  1. events
  2. secrets

```sh
kubectl get --raw /metrics
```

```fleetdeck action=pause-wave cluster={{cluster}}
Stops the wave.
```
";

    fn render(text: Text<'static>, width: u16, height: u16) -> Buffer {
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        Paragraph::new(text).render(area, &mut buf);
        buf
    }

    /// The same buffer with every style cleared, to compare characters only.
    fn unstyled(mut buf: Buffer) -> Buffer {
        let area = buf.area;
        buf.set_style(area, Style::reset());
        buf
    }

    #[test]
    fn renders_sample_layout() {
        let theme = Theme::fallback();
        let expected = Buffer::with_lines([
            "Etcd full",
            "",
            "Writes fail at the 8 GiB quota. See docs <https://docs.aws.amazon.com/eks>.",
            "",
            "Steps",
            "",
            "• check size",
            "• delete:",
            "  1. events",
            "  2. secrets",
            "",
            "    kubectl get --raw /metrics",
            "",
            "▶ step: pause-wave cluster={{cluster}}",
            "    Stops the wave.",
        ]);
        let area = expected.area;
        let buf = render(
            markdown_text(SAMPLE, &theme, false),
            area.width,
            area.height,
        );
        assert_eq!(unstyled(buf), expected);
    }

    #[test]
    fn ascii_mode_uses_ascii_markers() {
        let theme = Theme::fallback();
        let md = "- a\n\n> quoted\n\n---\n\n```fleetdeck action=cordon node=ip-10-0-0-1\n```\n";
        let expected = Buffer::with_lines([
            "- a",
            "",
            "| quoted",
            "",
            "----------------------------------------",
            "",
            "> step: cordon node=ip-10-0-0-1",
        ]);
        let area = expected.area;
        let buf = render(markdown_text(md, &theme, true), area.width, area.height);
        assert_eq!(unstyled(buf), expected);
    }

    #[test]
    #[ignore = "prints a shipped runbook for eyeballing"]
    fn print_runbook() {
        let (set, _) = crate::runbook::RunbookSet::load(None);
        for rb in set.all() {
            for l in markdown_text(&rb.body, &Theme::fallback(), false).lines {
                println!("{l}");
            }
        }
    }

    #[test]
    fn heading_and_code_styles() {
        let theme = Theme::load("default", None).unwrap();
        let buf = render(markdown_text(SAMPLE, &theme, false), 50, 19);
        // Level-1 heading: title style plus underline.
        let h1 = &buf[(0, 0)];
        assert_eq!(h1.fg, theme.title.fg.unwrap());
        assert!(h1.modifier.contains(Modifier::BOLD | Modifier::UNDERLINED));
        // Level-2 heading: title style, not underlined.
        let h2 = &buf[(0, 4)];
        assert_eq!(h2.fg, theme.title.fg.unwrap());
        assert!(!h2.modifier.contains(Modifier::UNDERLINED));
        // Emphasis, inline code, code block, step header.
        assert!(
            buf[(7, 2)].modifier.contains(Modifier::ITALIC),
            "'fail' italic"
        );
        assert_eq!(buf[(19, 2)].fg, theme.accent.fg.unwrap(), "inline code");
        assert_eq!(buf[(4, 11)].fg, theme.accent.fg.unwrap(), "code block");
        assert!(
            buf[(0, 13)].modifier.contains(Modifier::BOLD),
            "step header"
        );
        assert_eq!(buf[(0, 13)].fg, theme.accent.fg.unwrap());
        // Body text uses the text slot.
        assert_eq!(buf[(0, 2)].fg, theme.text.fg.unwrap_or(Color::Reset));
    }

    #[test]
    fn shipped_runbooks_render_without_losing_steps() {
        let (set, errors) = crate::runbook::RunbookSet::load(None);
        assert!(errors.is_empty());
        let theme = Theme::fallback();
        for rb in set.all() {
            let text = markdown_text(&rb.body, &theme, true);
            let rendered: Vec<String> = text.lines.iter().map(ToString::to_string).collect();
            let headers = rendered
                .iter()
                .filter(|l| l.trim_start().starts_with("> step: "));
            assert_eq!(headers.count(), rb.steps.len(), "{}", rb.id);
            for symbol in ['▶', '•', '─', '│'] {
                assert!(
                    !rendered.iter().any(|l| l.contains(symbol)),
                    "{}: {symbol}",
                    rb.id
                );
            }
        }
    }
}
