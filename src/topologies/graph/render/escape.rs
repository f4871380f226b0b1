//! Text quoted for each output language.

use std::fmt::Write as _;

/// Text for inside a quoted Mermaid label: ASCII letters, digits, space and `.-_/:,+=@` as is,
/// `"` `&` `<` `>` as named entities (`#quot;` …), any other ASCII character (`#`, brackets,
/// pipes, backticks, `;`, `%`, control characters…) as a numeric one (`#59;`); non-ASCII text
/// (names in any script, the `·` separator) as is. Mermaid turns both back into the character.
pub(super) fn mermaid_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            'A'..='Z'
            | 'a'..='z'
            | '0'..='9'
            | ' '
            | '.'
            | '-'
            | '_'
            | '/'
            | ':'
            | ','
            | '+'
            | '='
            | '@' => out.push(c),
            '"' => out.push_str("#quot;"),
            '&' => out.push_str("#amp;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c if c.is_ascii() => {
                let _ = write!(out, "#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// A YAML double-quoted scalar (for Mermaid's front-matter title).
pub(super) fn yaml_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A DOT double-quoted string. Backslashes and quotes are escaped, a newline becomes `\n`
/// (Graphviz's line break) and `&` becomes `&amp;`, since Graphviz reads HTML entities such
/// as `&lt;` in labels; every other character is kept as is.
pub(super) fn dot_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Text for XML content or a quoted attribute value; characters XML 1.0 does not allow
/// (most control characters) become U+FFFD.
pub(super) fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
