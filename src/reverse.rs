//! Reversal by extended grapheme clusters (SPEC §4).
//!
//! What a person sees as one character stays whole: a letter with its
//! combining marks, a pair of regional indicators (a flag), an emoji sequence
//! joined by zero-width joiners. Segmentation follows Unicode UAX #29 through
//! `unicode-segmentation`.
//!
//! Segmenting is slow (about 30 MB/s), and most text is mostly ASCII, so
//! [`reverse`] segments only where it must:
//!
//! - **All ASCII without `\r`**: every byte is a cluster of its own (the only
//!   ASCII rule that joins two characters is `\r` × `\n`), so the bytes are
//!   reversed as they are.
//! - **Mixed text**: inside a run of *simple* characters (ASCII other than
//!   `\r`, and the two-byte Latin letters U+00C0..U+027F), a character whose
//!   neighbours on both sides are also simple is a cluster of its own, and
//!   there is a cluster boundary on each side of it: no rule joins two such
//!   characters, and only other characters can extend a cluster (combining
//!   marks, joiners) or prepend to one. The text is cut at those boundaries
//!   into *plain* pieces (the inside of simple runs), mirrored character by
//!   character, and *complex* pieces (everything else, with the one simple
//!   character on each side that a neighbour might join), reversed by
//!   segmentation. Each piece is written straight to its mirrored place in
//!   the output.
//!   Regional-indicator pairing and emoji sequences cannot cross a plain
//!   piece, so segmenting each complex piece on its own gives the same
//!   clusters as segmenting the whole text.
//!
//! - **Mostly non-ASCII text** (under a quarter ASCII bytes in its first
//!   256): segmented as a whole; plain runs would be too rare to pay for
//!   looking for them.
//!
//! The result is identical to `text.graphemes(true).rev().collect()` for
//! every string (a property test checks this).

use unicode_segmentation::UnicodeSegmentation;

/// How much of a non-ASCII text is looked at to choose its path.
const SAMPLE_BYTES: usize = 256;

/// Returns `text` reversed by extended grapheme clusters.
///
/// Note that reversal is not an involution: `"🇦🇧🇨"` becomes `"🇨🇦🇧"`,
/// whose first two indicators now pair up differently.
pub fn reverse(text: &str) -> String {
    if !text.is_ascii() && mostly_non_ascii(text.as_bytes()) {
        // The same path `reverse_into` takes, without checking the copied
        // bytes again: clusters go straight into a `String`, allocated once
        // at its final size (collecting grows it step by step).
        let mut out = String::with_capacity(text.len());
        out.extend(text.graphemes(true).rev());
        return out;
    }
    let mut out = Vec::with_capacity(text.len());
    reverse_into(text, &mut out);
    // Every path copies whole characters of valid UTF-8, so this cannot
    // fail; the fallback only avoids `unsafe`.
    String::from_utf8(out).unwrap_or_else(|_| reverse_by_segmentation(text))
}

/// Appends `text` reversed by extended grapheme clusters to `out`: the same
/// bytes [`reverse`] returns, written straight into a buffer (the server
/// writes replies into its outgoing bytes this way, with no string between).
pub fn reverse_into(text: &str, out: &mut Vec<u8>) {
    let bytes = text.as_bytes();
    let start = out.len();
    if text.is_ascii() && memchr::memchr(b'\r', bytes).is_none() {
        out.extend_from_slice(bytes);
        out[start..].reverse();
        return;
    }
    if mostly_non_ascii(bytes) {
        text.graphemes(true)
            .rev()
            .for_each(|cluster| out.extend_from_slice(cluster.as_bytes()));
        return;
    }
    out.resize(start + bytes.len(), 0);
    reverse_mixed(text, &mut out[start..]);
}

/// Judges a text by its start: if it is mostly non-ASCII (under a quarter
/// ASCII bytes in its first [`SAMPLE_BYTES`]), plain runs would be rare and
/// short, and looking for them would cost more than they save. (Either path
/// gives the same result.)
fn mostly_non_ascii(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(SAMPLE_BYTES)];
    // Top bits summed per 32-byte chunk (at most 32, so a `u8` holds it):
    // the compiler vectorises this; a byte-at-a-time count took 130 ns.
    let mut chunks = sample.chunks_exact(32);
    let mut non_ascii = 0;
    for chunk in chunks.by_ref() {
        non_ascii += usize::from(chunk.iter().map(|&b| b >> 7).sum::<u8>());
    }
    non_ascii += chunks.remainder().iter().filter(|b| !b.is_ascii()).count();
    (sample.len() - non_ascii) * 4 < sample.len()
}

/// The reference definition: segment everything.
pub fn reverse_by_segmentation(text: &str) -> String {
    text.graphemes(true).rev().collect()
}

/// Mixed text: plain runs as they are, the rest by segmentation, written
/// into `out` (exactly `text.len()` bytes).
///
/// One pass from the front, no list of runs: a piece that starts at byte
/// `s` and is `len` bytes long lands at `n - s - len` in the output, so each
/// piece is written straight into its final place.
fn reverse_mixed(text: &str, out: &mut [u8]) {
    let n = text.len();
    // Everything before `done` has been written.
    let mut done = 0;
    for run in plain_runs(text.as_bytes()) {
        write_clusters_reversed(text, done..run.start, out);
        let plain = &text.as_bytes()[run.start..run.end];
        let slot = &mut out[n - run.end..n - run.start];
        if run.ascii {
            slot.copy_from_slice(plain);
            slot.reverse();
        } else {
            mirror_simple(plain, slot);
        }
        done = run.end;
    }
    write_clusters_reversed(text, done..n, out);
}

/// A stretch of text whose characters are clusters of their own, with a
/// boundary before each.
#[derive(Debug)]
struct PlainRun {
    start: usize,
    end: usize,
    /// True if every byte is ASCII (reversed byte for byte).
    ascii: bool,
}

/// How many bytes the *simple* character at the start of `bytes` takes, or
/// `None` if it is not simple. Simple characters are ASCII other than `\r`
/// and the two-byte letters U+00C0..U+027F (Latin-1 letters, Latin
/// Extended-A and -B, IPA): none of them takes part in any rule that joins
/// characters into one cluster, except as the base that a following mark or
/// joiner extends, and a mark or joiner is never simple.
fn simple_len(bytes: &[u8]) -> Option<usize> {
    match bytes.first()? {
        b'\r' => None,
        0x00..=0x7f => Some(1),
        // Lead bytes of U+00C0..U+027F; valid UTF-8 follows with one
        // continuation byte.
        0xc3..=0xc9 => Some(2),
        _ => None,
    }
}

/// The length of the (non-simple) character at the start of `bytes`, from
/// its UTF-8 lead byte.
fn char_len(lead: u8) -> usize {
    match lead {
        0xf0.. => 4,
        0xe0.. => 3,
        0xc0.. => 2,
        _ => 1,
    }
}

/// The plain runs of `bytes` (valid UTF-8), in order: for every maximal run
/// of at least three simple characters, its inside (all but its first and
/// last character). Each character inside has simple characters on both
/// sides, so nothing can join it: it is a cluster of its own, with a
/// boundary on each side.
fn plain_runs(bytes: &[u8]) -> impl Iterator<Item = PlainRun> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        while i < bytes.len() {
            let Some(first) = simple_len(&bytes[i..]) else {
                i += char_len(bytes[i]);
                continue;
            };
            let second = i + first;
            let mut last = i;
            let mut ascii = true;
            let mut j = i;
            while let Some(len) = simple_len(&bytes[j..]) {
                ascii &= len == 1;
                last = j;
                j += len;
                if j >= bytes.len() {
                    break;
                }
            }
            i = j;
            if last > second {
                // `ascii` also covered the first and last characters; that
                // only sends an all-ASCII inside down the char path, which is
                // correct.
                return Some(PlainRun {
                    start: second,
                    end: last,
                    ascii,
                });
            }
        }
        None
    })
}

/// Writes the simple characters of `plain` (ASCII and two-byte letters, see
/// [`simple_len`]) in reverse order into `slot` (of the same length).
fn mirror_simple(plain: &[u8], slot: &mut [u8]) {
    let m = plain.len();
    let mut at = 0;
    while at < m {
        if plain[at] < 0x80 {
            slot[m - 1 - at] = plain[at];
            at += 1;
        } else {
            slot[m - 2 - at] = plain[at];
            slot[m - 1 - at] = plain[at + 1];
            at += 2;
        }
    }
}

/// Writes the clusters of `text[range]` to their mirrored places in `out`
/// (`out.len() == text.len()`).
fn write_clusters_reversed(text: &str, range: std::ops::Range<usize>, out: &mut [u8]) {
    let n = text.len();
    let base = range.start;
    for (at, cluster) in text[range].grapheme_indices(true) {
        let start = base + at;
        out[n - start - cluster.len()..n - start].copy_from_slice(cluster.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(reverse("long ascii\r\nline é"), "é enil\r\niicsa gnol");
    }

    #[test]
    fn ascii_next_to_marks_and_joiners_stays_with_them() {
        // An ASCII letter takes the combining mark after it.
        assert_eq!(reverse("abcde\u{301}fgh"), "hgfe\u{301}dcba");
        // A keycap: digit, variation selector, combining enclosing keycap.
        assert_eq!(
            reverse("press 1\u{fe0f}\u{20e3} now"),
            "won 1\u{fe0f}\u{20e3} sserp"
        );
        // A prepended mark (U+0600, Arabic number sign) joins the digit after it.
        assert_eq!(reverse("ab\u{600}123"), "32\u{600}1ba");
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
            "flags 🇦🇧🇨 in text 🇩🇪!",
            "👩🏽\u{200d}💻 typing",
            "mixed 👍🏻 text with ñ and 한국어",
            "tab\tand\u{7}bell",
            "a\r\r\nb\rc\n\rd",
            "x\u{200d}y",
        ] {
            assert_eq!(reverse(text), reverse_by_segmentation(text), "{text:?}");
        }
    }

    mod property {
        use proptest::prelude::*;

        use super::super::{reverse, reverse_by_segmentation, reverse_into};

        /// Characters that exercise every rule that can join characters:
        /// CR LF, combining marks, joiners, variation selectors, keycaps,
        /// prepended marks, regional indicators, emoji modifiers, Hangul
        /// jamo, Indic conjuncts; plus plain ASCII and any character at all.
        fn interesting_char() -> impl Strategy<Value = char> {
            prop_oneof![
                6 => proptest::char::range('a', 'e'),
                1 => Just(' '),
                1 => Just('\r'),
                1 => Just('\n'),
                3 => proptest::sample::select(vec![
                    '\u{301}', '\u{308}', '\u{200d}', '\u{fe0f}', '\u{20e3}', '\u{600}',
                    '\u{1f1e6}', '\u{1f1e7}', '\u{1f1e8}', '\u{1f468}', '\u{1f469}',
                    '\u{1f3fd}', '\u{2764}', 'é', '한', '\u{1100}', '\u{1161}', '\u{11a8}',
                    '\u{915}', '\u{94d}', '\u{937}', '日', '1', '#', 'ü', 'ß', 'Ł',
                    'ǅ', 'ɐ', '\u{ad}', '\u{2ff}', '\u{300}',
                ]),
                1 => any::<char>(),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]

            #[test]
            fn identical_to_segmenting_everything(chars in proptest::collection::vec(interesting_char(), 0..48)) {
                let text: String = chars.into_iter().collect();
                let fast = reverse(&text);
                prop_assert_eq!(&fast, &reverse_by_segmentation(&text));
                prop_assert_eq!(fast.len(), text.len());
            }

            #[test]
            fn identical_on_arbitrary_strings(text in any::<String>()) {
                prop_assert_eq!(reverse(&text), reverse_by_segmentation(&text));
            }

            #[test]
            fn appending_keeps_what_the_buffer_held(prefix in any::<String>(), chars in proptest::collection::vec(interesting_char(), 0..48)) {
                let text: String = chars.into_iter().collect();
                let mut out = prefix.clone().into_bytes();
                reverse_into(&text, &mut out);
                prop_assert_eq!(out, format!("{prefix}{}", reverse_by_segmentation(&text)).into_bytes());
            }
        }
    }

    // The helpers below choose the fast paths. Whatever they answer, the
    // reversal stays right (the property tests check that), so only their
    // own documented contracts show a change that would cost speed.

    #[test]
    fn mostly_non_ascii_means_under_a_quarter_ascii_in_the_first_256_bytes() {
        let text = |ascii: usize, two_byte: usize| {
            format!("{}{}", "a".repeat(ascii), "é".repeat(two_byte))
        };
        for (ascii, two_byte, expected) in [
            (0, 0, false),
            (0, 3, true),
            // Exactly a quarter, in a 32-byte block: not under it.
            (8, 12, false),
            (7, 13, true),
            (1, 2, true),
            (2, 3, false),
            (3, 5, true),
            (4, 6, false),
            (64, 96, false),
            (63, 97, true),
            (256, 0, false),
        ] {
            assert_eq!(
                mostly_non_ascii(text(ascii, two_byte).as_bytes()),
                expected,
                "{ascii} ASCII, {two_byte} two-byte"
            );
        }
        // Only the first 256 bytes count.
        let late_ascii = format!("{}{}", "é".repeat(128), "a".repeat(1000));
        assert!(mostly_non_ascii(late_ascii.as_bytes()));
        let late_letters = format!("{}{}", "a".repeat(256), "é".repeat(1000));
        assert!(!mostly_non_ascii(late_letters.as_bytes()));
    }

    #[test]
    fn simple_characters_are_ascii_but_cr_and_the_two_byte_latin_letters() {
        for (c, expected) in [
            ('a', Some(1)),
            ('\n', Some(1)),
            ('~', Some(1)),
            ('\r', None),
            ('\u{c0}', Some(2)),
            ('é', Some(2)),
            ('\u{24f}', Some(2)),
            ('\u{27f}', Some(2)),
            ('\u{bf}', None),
            ('\u{280}', None),
            ('\u{301}', None),
            ('日', None),
            ('😀', None),
        ] {
            assert_eq!(simple_len(c.to_string().as_bytes()), expected, "{c:?}");
        }
        assert_eq!(simple_len(b""), None);
    }

    #[test]
    fn a_character_length_comes_from_its_lead_byte() {
        for c in [
            '\r', '\u{280}', '\u{301}', '\u{7ff}', '日', '\u{ffff}', '😀',
        ] {
            let bytes = c.to_string().into_bytes();
            assert_eq!(char_len(bytes[0]), c.len_utf8(), "{c:?}");
        }
    }

    #[test]
    fn plain_runs_are_the_insides_of_runs_of_three_simple_characters_or_more() {
        let runs = |text: &str| -> Vec<(usize, usize, bool)> {
            plain_runs(text.as_bytes())
                .map(|run| (run.start, run.end, run.ascii))
                .collect()
        };
        assert_eq!(runs("xyz"), [(1, 2, true)]);
        // Two simple characters have no inside; "cdef" has "de".
        assert_eq!(runs("ab日cdef"), [(6, 8, true)]);
        assert_eq!(runs("abcd日"), [(1, 3, true)]);
        assert_eq!(runs("x\u{301}abc\u{301}"), [(4, 5, true)]);
        // The flag covers the whole run, its ends included.
        assert_eq!(runs("àbcé"), [(2, 4, false)]);
        assert_eq!(runs("aébc"), [(1, 4, false)]);
        assert_eq!(runs("ab\rcde\rfg"), [(4, 5, true)]);
        for none in ["", "ab", "日本語", "a日b日c"] {
            assert_eq!(runs(none), [], "{none:?}");
        }
    }
}
