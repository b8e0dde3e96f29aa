//! The texts the reversal benchmarks use, shared by `benches/micro.rs` and
//! `examples/reverse_loop.rs` so that times and instruction counts measure
//! the same inputs.

/// Text of `len` bytes (rounded down to whole characters) repeating `unit`.
pub(crate) fn text_of(unit: &str, len: usize) -> String {
    let mut text = String::with_capacity(len + unit.len());
    while text.len() + unit.len() <= len {
        text.push_str(unit);
    }
    for c in unit.chars() {
        if text.len() + c.len_utf8() > len {
            break;
        }
        text.push(c);
    }
    text
}

/// The three kinds of text of the reversal targets, by name.
pub(crate) fn corpora() -> [(&'static str, &'static str); 3] {
    [
        ("ascii", "The quick brown fox jumps over the lazy dog. "),
        // Mostly ASCII chat: accents, an emoji with a modifier, a flag.
        (
            "chat",
            "ok see you at 8 at the café 👍🏽 then we go to Zürich 🇨🇭 haha, lol. ",
        ),
        // No ASCII at all: CJK, Hangul, Cyrillic, combining marks, emoji.
        (
            "non_ascii",
            "日本語のテキスト한국어Кириллицаe\u{301}́👨\u{200d}👩\u{200d}👧",
        ),
    ]
}
