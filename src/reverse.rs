//! Reversal by extended grapheme clusters (SPEC §4).
//!
//! What a person sees as one character stays whole: a letter with its
//! combining marks, a pair of regional indicators (a flag), an emoji sequence
//! joined by zero-width joiners. Segmentation follows Unicode UAX #29 through
//! `unicode-segmentation`.
//!
//! Plain ASCII takes a fast path: every ASCII character is a cluster of its
//! own except `"\r\n"`, so an ASCII string without `\r` is reversed byte for
//! byte, hundreds of times faster than segmenting it.

use unicode_segmentation::UnicodeSegmentation;

/// Returns `text` reversed by extended grapheme clusters.
///
/// Note that reversal is not an involution: `"🇦🇧🇨"` becomes `"🇨🇦🇧"`,
/// whose first two indicators now pair up differently.
pub fn reverse(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    reverse_into(text, &mut out);
    out
}

/// Appends `text`, reversed by extended grapheme clusters, to `out`.
pub fn reverse_into(text: &str, out: &mut String) {
    if text.is_ascii() && !text.as_bytes().contains(&b'\r') {
        out.extend(text.bytes().rev().map(char::from));
        return;
    }
    for cluster in text.graphemes(true).rev() {
        out.push_str(cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference definition, without the fast path.
    fn naive(text: &str) -> String {
        text.graphemes(true).rev().collect()
    }

    #[test]
    fn spec_examples() {
        assert_eq!(reverse("noe\u{308}l"), "le\u{308}on");
        assert_eq!(reverse("🇮🇹🇫🇷"), "🇫🇷🇮🇹");
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert_eq!(reverse(&format!("a{family}b")), format!("b{family}a"));
    }

    #[test]
    fn ascii_is_reversed_byte_for_byte() {
        assert_eq!(reverse("hello, world"), "dlrow ,olleh");
        assert_eq!(reverse(""), "");
        assert_eq!(reverse("x"), "x");
    }

    #[test]
    fn carriage_returns_follow_the_grapheme_rules() {
        // A lone '\r' is its own cluster; "\r\n" is one cluster.
        assert_eq!(reverse("x\r"), "\rx");
        assert_eq!(reverse("a\r\nb"), "b\r\na");
    }

    #[test]
    fn matches_the_reference_on_assorted_text() {
        for text in [
            "plain",
            "café au lait",
            "日本語のテキスト",
            "e\u{301}\u{302}\u{303}x",
            "\u{301}leading mark",
            "🇦🇧🇨",
            "👩🏽\u{200d}💻 typing",
            "mixed 👍🏻 text with ñ and 한국어",
            "tab\tand\u{7}bell",
        ] {
            assert_eq!(reverse(text), naive(text), "{text:?}");
        }
    }

    #[test]
    fn reverse_into_appends() {
        let mut out = String::from(">");
        reverse_into("ab", &mut out);
        reverse_into("ë!", &mut out);
        assert_eq!(out, ">ba!ë");
    }
}
