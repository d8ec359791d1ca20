//! Markdown from outside (webhook callbacks' `mdMessage`) rendered safely: CommonMark with
//! tables and strikethrough, every raw HTML block or inline tag shown as text, links only to
//! `http`, `https` and `mailto` (others become plain text), images shown as their link (no
//! loading of third-party images: the CSP forbids them anyway). Input is cut at a size limit.

use maud::{Markup, PreEscaped};
use pulldown_cmark::{CowStr, Event, Options, Parser, Tag, TagEnd};

/// Longest message rendered, in bytes; the rest is cut.
pub const MAX_MARKDOWN: usize = 16 * 1024;

/// Whether a link target is safe to follow.
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    lower.starts_with("https://") || lower.starts_with("http://") || lower.starts_with("mailto:")
}

/// `text` as safe HTML.
pub fn render(text: &str) -> Markup {
    let mut end = text.len().min(MAX_MARKDOWN);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let text = &text[..end];
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    // Links whose target is unsafe are dropped (their text stays); so are their end tags.
    let mut dropped_links = Vec::new();
    let events = Parser::new_ext(text, options).filter_map(|event| match event {
        Event::Html(html) | Event::InlineHtml(html) => Some(Event::Text(html)),
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let safe = safe_url(&dest_url);
            dropped_links.push(!safe);
            safe.then_some(Event::Start(Tag::Link {
                link_type,
                dest_url,
                title,
                id,
            }))
        }
        Event::End(TagEnd::Link) => {
            if dropped_links.pop().unwrap_or(false) {
                None
            } else {
                Some(Event::End(TagEnd::Link))
            }
        }
        Event::Start(Tag::Image { dest_url, .. }) => {
            // An image is its alt text followed by its address.
            dropped_links.push(true);
            let shown: CowStr<'_> = if safe_url(&dest_url) {
                format!("[image {dest_url}] ").into()
            } else {
                "[image] ".into()
            };
            Some(Event::Text(shown))
        }
        Event::End(TagEnd::Image) => {
            dropped_links.pop();
            None
        }
        other => Some(other),
    });
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, events);
    PreEscaped(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_renders_and_html_is_text() {
        let out =
            render("**ok** <script>alert(1)</script> [x](javascript:alert(1)) [y](https://a.test)")
                .0;
        assert!(out.contains("<strong>ok</strong>"), "{out}");
        assert!(!out.contains("<script"), "{out}");
        assert!(out.contains("&lt;script&gt;"), "{out}");
        assert!(!out.contains("javascript:"), "{out}");
        assert!(out.contains(r#"<a href="https://a.test">y</a>"#), "{out}");
        let block = render("<div onclick=x>hi</div>\n\n![i](https://img.test/a.png)").0;
        assert!(!block.contains("<div"), "{block}");
        assert!(!block.contains("<img"), "{block}");
    }

    #[test]
    fn long_input_is_cut_on_a_character() {
        let long = "é".repeat(MAX_MARKDOWN);
        assert!(render(&long).0.len() < MAX_MARKDOWN * 2);
    }
}
