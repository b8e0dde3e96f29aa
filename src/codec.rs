//! The bounded line decoder: bytes from a client in, [`Inbound`] items out.
//!
//! SPEC §2: a line ends at `\n`, a `\r` right before it is dropped, a line
//! longer than the limit is rejected without being buffered, and a line that
//! is not UTF-8 is rejected. Both rejections are *values* ([`Inbound::TooLong`],
//! [`Inbound::InvalidUtf8`]), not errors: the connection stays open and later
//! lines are answered normally. (This is why `tokio_util`'s `LinesCodec` does
//! not fit: invalid UTF-8 is an `Err` there, and `FramedRead` ends the stream
//! after any decoder error.)
//!
//! The decoder is a pure state machine with no I/O, so it is tested and
//! benchmarked on its own, and the connection feeds it whatever chunks the
//! socket returns.

/// One item decoded from a client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A complete line, without its `\n` or `\r\n` terminator.
    Line(&'a str),
    /// A line exceeded the limit. It is reported once, as soon as the limit is
    /// passed; its remaining bytes up to the next `\n` are discarded.
    TooLong,
    /// A complete line that is not valid UTF-8; it is dropped.
    InvalidUtf8,
}

/// Splits a byte stream into lines of at most `max_line_bytes` bytes.
///
/// Invariant: `partial` never holds more than `max_line_bytes + 1` bytes (the
/// one extra byte is a `\r` that may turn out to be part of a `\r\n`
/// terminator), whatever the input. Bytes of an over-long line are counted
/// and thrown away, never stored.
#[derive(Debug)]
pub struct LineDecoder {
    /// Limit on a line's length in bytes, terminator excluded.
    max_line_bytes: usize,
    /// The start of a line whose `\n` has not arrived yet.
    partial: Vec<u8>,
    /// True while discarding the rest of a line already reported as too long.
    discarding: bool,
    /// True when `partial` holds a line already returned: it is cleared at the
    /// start of the next call, because the returned `&str` borrowed it.
    returned_partial: bool,
}

impl LineDecoder {
    /// A decoder for lines of at most `max_line_bytes` bytes.
    pub fn new(max_line_bytes: usize) -> Self {
        Self {
            max_line_bytes,
            partial: Vec::new(),
            discarding: false,
            returned_partial: false,
        }
    }

    /// The limit on a line's length, in bytes.
    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// How many bytes of an unfinished line are held right now.
    pub fn buffered(&self) -> usize {
        if self.returned_partial {
            0
        } else {
            self.partial.len()
        }
    }

    /// True if an unfinished line has been started (bytes are held, or an
    /// over-long line is being discarded). At end of stream such a line is
    /// dropped: it was never terminated.
    pub fn has_partial_line(&self) -> bool {
        self.buffered() > 0 || self.discarding
    }

    /// Decodes the next item from `input`, advancing `input` past the bytes it
    /// used. Returns `None` once `input` is exhausted without completing an
    /// item; the bytes seen so far are kept for the next call.
    pub fn decode<'o, 'i: 'o>(&'o mut self, input: &mut &'i [u8]) -> Option<Inbound<'o>> {
        if self.returned_partial {
            self.partial.clear();
            self.returned_partial = false;
        }
        loop {
            if input.is_empty() {
                return None;
            }
            let newline = memchr_newline(input);
            if self.discarding {
                match newline {
                    Some(at) => {
                        *input = &input[at + 1..];
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        *input = &[];
                        return None;
                    }
                }
            }
            let Some(at) = newline else {
                return self.keep_partial(input);
            };
            let (head, rest) = (&input[..at], &input[at + 1..]);
            *input = rest;
            if self.partial.is_empty() {
                // Fast path: the whole line is in this chunk; borrow it.
                return Some(Self::check(head, self.max_line_bytes));
            }
            if self.partial.len() + head.len() > self.max_line_bytes + 1 {
                self.partial.clear();
                return Some(Inbound::TooLong);
            }
            self.partial.extend_from_slice(head);
            self.returned_partial = true;
            return Some(Self::check(&self.partial, self.max_line_bytes));
        }
    }

    /// At end of stream: the unterminated last line, if any, as if it had
    /// ended with `\n` (a file's last line often has no newline). Clears it.
    pub fn finish(&mut self) -> Option<Inbound<'_>> {
        if self.returned_partial {
            self.partial.clear();
            self.returned_partial = false;
        }
        if self.discarding {
            self.discarding = false;
            return None;
        }
        if self.partial.is_empty() {
            return None;
        }
        self.returned_partial = true;
        Some(Self::check(&self.partial, self.max_line_bytes))
    }

    /// Stores `input` (which has no `\n`) as the start of a line, or reports
    /// the line as too long once it cannot fit any more.
    fn keep_partial(&mut self, input: &mut &[u8]) -> Option<Inbound<'static>> {
        let bytes = std::mem::take(input);
        let total = self.partial.len() + bytes.len();
        // A line of exactly the limit may still be followed by "\r\n", so one
        // trailing '\r' beyond the limit is kept until the next byte decides.
        let fits = total <= self.max_line_bytes
            || (total == self.max_line_bytes + 1 && bytes.last() == Some(&b'\r'));
        if fits {
            self.partial.extend_from_slice(bytes);
            None
        } else {
            self.partial.clear();
            self.discarding = true;
            Some(Inbound::TooLong)
        }
    }

    /// Classifies a complete line (terminator `\n` already removed).
    fn check(line: &[u8], max_line_bytes: usize) -> Inbound<'_> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() > max_line_bytes {
            return Inbound::TooLong;
        }
        match std::str::from_utf8(line) {
            Ok(text) => Inbound::Line(text),
            Err(_) => Inbound::InvalidUtf8,
        }
    }
}

/// Position of the first `\n` in `bytes` (SIMD search: a long line is
/// scanned many bytes at a time).
fn memchr_newline(bytes: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one after another and collects every item as an owned
    /// value, so tests can compare whole transcripts.
    fn decode_all(max: usize, chunks: &[&[u8]]) -> Vec<Result<String, Inbound<'static>>> {
        let mut decoder = LineDecoder::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut input: &[u8] = chunk;
            while let Some(item) = decoder.decode(&mut input) {
                out.push(match item {
                    Inbound::Line(text) => Ok(text.to_owned()),
                    Inbound::TooLong => Err(Inbound::TooLong),
                    Inbound::InvalidUtf8 => Err(Inbound::InvalidUtf8),
                });
            }
        }
        out
    }

    fn line(text: &str) -> Result<String, Inbound<'static>> {
        Ok(text.to_owned())
    }

    #[test]
    fn splits_lines_and_drops_cr_before_lf() {
        let items = decode_all(100, &[b"one\r\ntwo\n\nthree\r\n"]);
        assert_eq!(items, [line("one"), line("two"), line(""), line("three")]);
    }

    #[test]
    fn keeps_a_lone_cr_inside_a_line() {
        let items = decode_all(100, &[b"a\rb\n", b"x\r\r\n"]);
        assert_eq!(items, [line("a\rb"), line("x\r")]);
    }

    #[test]
    fn joins_lines_split_across_chunks_even_byte_by_byte() {
        let text = "noe\u{308}l\r\nhello\n";
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(1).collect();
        assert_eq!(
            decode_all(100, &chunks),
            [line("noe\u{308}l"), line("hello")]
        );
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_accepted_with_either_terminator() {
        let exact = "x".repeat(8);
        let input = format!("{exact}\n{exact}\r\n");
        assert_eq!(
            decode_all(8, &[input.as_bytes()]),
            [line(&exact), line(&exact)]
        );
        // The same, with the terminator arriving in a later chunk.
        let items = decode_all(8, &[exact.as_bytes(), b"\r", b"\n"]);
        assert_eq!(items, [line(&exact)]);
    }

    #[test]
    fn an_over_long_line_is_reported_once_and_the_next_line_is_normal() {
        let long = "y".repeat(9);
        let input = format!("{long}\nok\n");
        assert_eq!(
            decode_all(8, &[input.as_bytes()]),
            [Err(Inbound::TooLong), line("ok")]
        );
        // Split across chunks: reported when the limit is passed, then the
        // rest is discarded up to the newline.
        let items = decode_all(8, &[b"yyyyy", b"yyyyy", b"yyyyy", b"\nok\n"]);
        assert_eq!(items, [Err(Inbound::TooLong), line("ok")]);
    }

    #[test]
    fn a_limit_plus_cr_that_is_not_a_terminator_is_too_long() {
        let items = decode_all(4, &[b"abcd\r", b"e\nok\n"]);
        assert_eq!(items, [Err(Inbound::TooLong), line("ok")]);
        let items = decode_all(4, &[b"abc", b"de\r\nok\n"]);
        assert_eq!(items, [Err(Inbound::TooLong), line("ok")]);
    }

    #[test]
    fn invalid_utf8_is_a_value_and_the_stream_goes_on() {
        let items = decode_all(100, &[b"\xff\xfe\n", b"ok\n", b"a\xc3", b"\n"]);
        assert_eq!(
            items,
            [
                Err(Inbound::InvalidUtf8),
                line("ok"),
                Err(Inbound::InvalidUtf8)
            ]
        );
    }

    #[test]
    fn ten_megabytes_without_newline_never_buffer_more_than_the_limit() {
        let max = 65_536;
        let mut decoder = LineDecoder::new(max);
        let chunk = vec![b'z'; 16 * 1024];
        let mut reports = 0;
        for _ in 0..(10 * 1024 * 1024 / chunk.len()) {
            let mut input: &[u8] = &chunk;
            while let Some(item) = decoder.decode(&mut input) {
                assert_eq!(item, Inbound::TooLong);
                reports += 1;
            }
            assert!(
                decoder.buffered() <= max + 1,
                "buffered {}",
                decoder.buffered()
            );
        }
        assert_eq!(reports, 1);
        assert!(decoder.has_partial_line());
        let mut input: &[u8] = b"\nafter\n";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::Line("after")));
        assert!(!decoder.has_partial_line());
    }

    #[test]
    fn finish_returns_the_unterminated_last_line_once() {
        let mut decoder = LineDecoder::new(8);
        let mut input: &[u8] = b"one\ntwo";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::Line("one")));
        assert_eq!(decoder.decode(&mut input), None);
        assert_eq!(decoder.finish(), Some(Inbound::Line("two")));
        assert_eq!(decoder.finish(), None);
        // A tail that was already reported as too long is not reported again.
        let mut input: &[u8] = b"far too long";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::TooLong));
        assert_eq!(decoder.finish(), None);
        let mut input: &[u8] = b"\xff";
        assert_eq!(decoder.decode(&mut input), None);
        assert_eq!(decoder.finish(), Some(Inbound::InvalidUtf8));
    }

    #[test]
    fn an_unterminated_tail_is_reported_as_partial() {
        let mut decoder = LineDecoder::new(100);
        let mut input: &[u8] = b"done\nhalf";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::Line("done")));
        assert_eq!(decoder.decode(&mut input), None);
        assert!(decoder.has_partial_line());
        assert_eq!(decoder.buffered(), 4);
    }

    #[test]
    fn the_decoder_reports_the_limit_it_was_given() {
        // The server names this limit in its `line_too_long` sentence.
        assert_eq!(LineDecoder::new(65_536).max_line_bytes(), 65_536);
        assert_eq!(LineDecoder::new(8).max_line_bytes(), 8);
    }

    #[test]
    fn a_line_split_across_chunks_is_judged_by_its_whole_length() {
        // Neither piece is too long, and together they fit.
        assert_eq!(decode_all(8, &[b"abc", b"defg\n"]), [line("abcdefg")]);
        // The second piece is longer than the first, and together they do
        // not fit.
        assert_eq!(
            decode_all(4, &[b"ab", b"cdefgh\nok\n"]),
            [Err(Inbound::TooLong), line("ok")]
        );
    }

    #[test]
    fn an_over_long_line_is_reported_as_soon_as_the_limit_is_passed() {
        // One byte over the limit, and not a '\r' that could end the line:
        // reported at once, with nothing kept.
        let mut decoder = LineDecoder::new(4);
        let mut input: &[u8] = b"abcde";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::TooLong));
        assert_eq!(decoder.buffered(), 0);
        // Far over the limit, even ending with '\r'.
        let mut decoder = LineDecoder::new(4);
        let mut input: &[u8] = b"abcdefgh\r";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::TooLong));
        assert_eq!(decoder.buffered(), 0);
        let mut input: &[u8] = b"\nok\n";
        assert_eq!(decoder.decode(&mut input), Some(Inbound::Line("ok")));
    }
}
