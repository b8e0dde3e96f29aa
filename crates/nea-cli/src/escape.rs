//! Text from elsewhere (a server's replies, a peer's certificate subject,
//! a parser's error message) made safe to show: on a terminal it must not
//! move the cursor, retitle the window, reorder what follows or hide
//! characters; in a log, one event must stay one line.
//!
//! Escaped: control characters (`\t`, `\r`, `\n`, and `\u{1b}` for the
//! rest), the bidirectional controls (U+061C, U+200E, U+200F,
//! U+202A–U+202E, U+2066–U+2069), the invisible characters that hide or
//! split text (U+200B zero-width space, U+2060–U+2064, U+FEFF, U+FFF9–
//! U+FFFB) and the line and paragraph separators (U+2028, U+2029).
//! Everything a person reads as text stays, including the zero-width
//! joiner and non-joiner that hold emoji sequences and some scripts
//! together, variation selectors, and tag characters (flags).

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every character that needs it escaped (see the module doc);
/// borrowed when nothing does.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Whether `c` is escaped.
pub fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200b}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2064}'
                | '\u{2066}'..='\u{2069}'
                | '\u{feff}'
                | '\u{fff9}'..='\u{fffb}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape("\rx"), "\\rx");
        assert_eq!(escape("m13[\u{1b}"), "m13[\\u{1b}");
        assert_eq!(escape("a\tb\u{7f}\u{9b}"), "a\\tb\\u{7f}\\u{9b}");
        assert_eq!(escape("two\nlines"), "two\\nlines");
    }

    #[test]
    fn bidi_controls_separators_and_invisible_characters_are_escaped() {
        assert_eq!(escape("\u{202e}evil"), "\\u{202e}evil");
        for (c, shown) in [
            ('\u{2028}', "\\u{2028}"),
            ('\u{2029}', "\\u{2029}"),
            ('\u{200b}', "\\u{200b}"),
            ('\u{feff}', "\\u{feff}"),
            ('\u{2066}', "\\u{2066}"),
            ('\u{061c}', "\\u{61c}"),
        ] {
            assert_eq!(escape(&format!("a{c}b")), format!("a{shown}b"));
        }
    }

    #[test]
    fn text_and_emoji_sequences_stay_whole() {
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert!(matches!(escape(family), Cow::Borrowed(_)));
        let england = "🏴\u{e0067}\u{e0062}\u{e0065}\u{e006e}\u{e0067}\u{e007f}";
        for text in [
            "lëon",
            "🇫🇷🇮🇹",
            "❤\u{fe0f}",
            "日本語",
            "می\u{200c}خواهم",
            england,
            "",
        ] {
            assert_eq!(escape(text), text);
        }
    }
}
