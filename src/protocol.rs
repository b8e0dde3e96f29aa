//! The server's wire format (SPEC §3): JSON Lines.
//!
//! Every message the server sends is one JSON object on one line, UTF-8,
//! terminated by `\n`. The object always has a `msg_type` string and a
//! `payload`; error frames also have a `code`. Clients send plain text lines
//! (see [`crate::codec`]), not JSON.
//!
//! Clients must ignore fields and `msg_type` values they do not know: the set
//! of message types and fields may grow over time.
//!
//! ## `date`
//!
//! The current time, RFC 3339 in UTC with millisecond precision. Sent to each
//! client one date period after its TLS session is established, then every
//! period on absolute deadlines.
//!
//! ```json
//! {"msg_type":"date","payload":"2026-11-26T20:19:17.123Z"}
//! ```
//!
//! ## `string`
//!
//! The reply to one received line: the line reversed by grapheme clusters.
//! Replies come in the order the lines were sent.
//!
//! ```json
//! {"msg_type":"string","payload":"olleh"}
//! ```
//!
//! ## `error`
//!
//! A problem, as a human-readable sentence in `payload` and a stable
//! machine-readable `code` (see [`ErrorCode`]).
//!
//! ```json
//! {"msg_type":"error","code":"line_too_long","payload":"line longer than 65536 bytes dropped"}
//! ```
//!
//! ## Example session
//!
//! ```text
//! C: hello
//! S: {"msg_type":"string","payload":"olleh"}
//! C: noël
//! S: {"msg_type":"string","payload":"lëon"}
//! S: {"msg_type":"date","payload":"2026-11-26T20:19:27.123Z"}
//! (SIGTERM on the server)
//! S: {"msg_type":"error","code":"shutting_down","payload":"server is shutting down"}
//! (TLS close_notify)
//! ```

use serde::{Deserialize, Serialize};

/// One message from the server to a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "msg_type", rename_all = "snake_case")]
pub enum Frame {
    /// The current date, as `format_date` writes it.
    Date {
        /// RFC 3339, UTC, millisecond precision.
        payload: String,
    },
    /// The reversal of one received line.
    String {
        /// The received line, reversed.
        payload: String,
    },
    /// Something went wrong; see [`ErrorCode`].
    Error {
        /// What went wrong, for programs.
        code: ErrorCode,
        /// What went wrong, as one sentence for people.
        payload: String,
    },
    /// A `msg_type` this version does not know. Only produced when parsing:
    /// a client skips it rather than failing.
    #[serde(other)]
    Unknown,
}

/// The `code` of an `error` frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Every client slot is taken; the connection is closed after this frame.
    ServerFull,
    /// A line exceeded the server's limit and was dropped; the connection
    /// stays open.
    LineTooLong,
    /// A line was not valid UTF-8 and was dropped; the connection stays open.
    InvalidUtf8,
    /// The server is stopping; the connection is closed after this frame.
    ShuttingDown,
    /// The client's source address holds every client slot it may
    /// (`--max-clients-per-address`); the connection is closed after this
    /// frame.
    AddressLimit,
    /// A code this version does not know (parsing only).
    #[serde(other)]
    Unknown,
}

impl Frame {
    /// A `date` frame for the current time.
    pub fn date_now() -> Self {
        Self::Date {
            payload: format_date(jiff::Timestamp::now()),
        }
    }

    /// An `error` frame with its standard sentence. A `line_too_long`
    /// frame that names the limit is [`Frame::line_too_long`].
    pub fn error(code: ErrorCode) -> Self {
        let payload = match code {
            ErrorCode::ServerFull => "server is full; try again later".to_owned(),
            ErrorCode::LineTooLong => "line too long; dropped".to_owned(),
            ErrorCode::InvalidUtf8 => "line is not valid UTF-8; dropped".to_owned(),
            ErrorCode::ShuttingDown => "server is shutting down".to_owned(),
            ErrorCode::AddressLimit => {
                "too many clients from this address; try again later".to_owned()
            }
            ErrorCode::Unknown => "unknown error".to_owned(),
        };
        Self::Error { code, payload }
    }

    /// The `line_too_long` frame of a server whose limit is
    /// `max_line_bytes`: its sentence names the limit.
    pub fn line_too_long(max_line_bytes: usize) -> Self {
        Self::Error {
            code: ErrorCode::LineTooLong,
            payload: format!("line longer than {max_line_bytes} bytes dropped"),
        }
    }

    /// Appends this frame as one JSON line (with its `\n`) to `out`.
    ///
    /// Replies and dates whose payload needs no JSON escaping (no `"`, `\\`
    /// or control character: nearly all of them) are written directly, byte
    /// for byte what serde_json writes; escaping a payload byte by byte was
    /// the largest cost of answering a short line. Everything else goes
    /// through serde_json.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let plain = match self {
            Self::String { payload } => Some((STRING_HEAD, payload)),
            Self::Date { payload } => Some((DATE_HEAD, payload)),
            _ => None,
        };
        if let Some((head, payload)) = plain.filter(|(_, payload)| !needs_escape(payload)) {
            out.extend_from_slice(head);
            out.extend_from_slice(payload.as_bytes());
            out.extend_from_slice(TAIL);
            return;
        }
        // Serializing these plain structs into a Vec cannot fail: there are
        // no maps with non-string keys and no fallible Serialize impls.
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        }
    }

    /// Appends the `string` frame that answers `line` to `out`: the same
    /// bytes as encoding `Frame::String { payload: reverse(line) }`, but
    /// without building the reversed string first when no escaping is
    /// needed. Reversal moves whole characters, and every byte JSON escapes
    /// is a character of its own, so `line` needs escaping exactly when its
    /// reversal does.
    pub fn encode_reply(line: &str, out: &mut Vec<u8>) {
        if needs_escape(line) {
            Self::String {
                payload: crate::reverse::reverse(line),
            }
            .encode(out);
            return;
        }
        out.extend_from_slice(STRING_HEAD);
        crate::reverse::reverse_into(line, out);
        out.extend_from_slice(TAIL);
    }

    /// Parses one line (without its `\n`) as a frame. Unknown `msg_type`
    /// values give [`Frame::Unknown`] and unknown fields are ignored.
    pub fn parse(line: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(line)
    }
}

/// What serde_json writes before the payload of a `string` frame.
const STRING_HEAD: &[u8] = b"{\"msg_type\":\"string\",\"payload\":\"";
/// What serde_json writes before the payload of a `date` frame.
const DATE_HEAD: &[u8] = b"{\"msg_type\":\"date\",\"payload\":\"";
/// What ends both, with the line's `\n`.
const TAIL: &[u8] = b"\"}\n";

/// True if JSON requires escaping some byte of `text`: exactly the bytes
/// serde_json escapes (`"`, `\\`, and U+0000 to U+001F).
fn needs_escape(text: &str) -> bool {
    // Whole chunks without early exit, so the compiler can vectorise the
    // test; a byte-at-a-time `any` ran at about 1 byte per ns.
    let escapes = |b: &u8| (*b < 0x20) | (*b == b'"') | (*b == b'\\');
    let mut chunks = text.as_bytes().chunks_exact(32);
    for chunk in chunks.by_ref() {
        if chunk.iter().fold(false, |found, b| found | escapes(b)) {
            return true;
        }
    }
    chunks.remainder().iter().any(escapes)
}

/// Formats a timestamp the way `date` frames carry it:
/// `2026-11-26T20:19:17.123Z` (UTC, always three fractional digits).
pub(crate) fn format_date(ts: jiff::Timestamp) -> String {
    format!("{ts:.3}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(frame: &Frame) -> String {
        let mut out = Vec::new();
        frame.encode(&mut out);
        String::from_utf8(out).expect("frames are UTF-8")
    }

    #[test]
    fn frames_have_the_documented_shape() {
        let reply = Frame::String {
            payload: "olleh".into(),
        };
        assert_eq!(
            encoded(&reply),
            "{\"msg_type\":\"string\",\"payload\":\"olleh\"}\n"
        );
        let full = Frame::error(ErrorCode::ServerFull);
        assert_eq!(
            encoded(&full),
            "{\"msg_type\":\"error\",\"code\":\"server_full\",\"payload\":\"server is full; try again later\"}\n"
        );
        let too_long = Frame::line_too_long(65_536);
        assert!(encoded(&too_long).contains("longer than 65536 bytes"));
    }

    #[test]
    fn control_characters_and_unicode_survive_a_round_trip() {
        let payload = "\r\u{1b}[31m \"q\" \\ lëon 👨\u{200d}👩".to_owned();
        let frame = Frame::String { payload };
        let line = encoded(&frame);
        assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
        assert_eq!(Frame::parse(line.trim_end()).expect("parses"), frame);
    }

    #[test]
    fn the_direct_path_writes_what_serde_json_writes() {
        let payloads = [
            "olleh",
            "",
            "lëon 👨\u{200d}👩",
            "tab\there",
            "quote\"d",
            "back\\slash",
            "\u{7f}del",
            "\u{1f}unit",
            "\u{2028}sep",
            "2026-11-26T20:19:17.123Z",
        ];
        for payload in payloads {
            for frame in [
                Frame::String {
                    payload: payload.into(),
                },
                Frame::Date {
                    payload: payload.into(),
                },
            ] {
                let expected = format!("{}\n", serde_json::to_string(&frame).expect("serializes"));
                assert_eq!(encoded(&frame), expected, "{payload:?}");
            }
        }
    }

    #[test]
    fn replies_are_escaped_only_when_the_line_needs_it() {
        for (line, expected) in [
            ("hello", r#"{"msg_type":"string","payload":"olleh"}"#),
            (
                "say \"hi\"",
                r#"{"msg_type":"string","payload":"\"ih\" yas"}"#,
            ),
            ("a\tb\\", r#"{"msg_type":"string","payload":"\\b\ta"}"#),
            (
                "noe\u{308}l",
                "{\"msg_type\":\"string\",\"payload\":\"le\u{308}on\"}",
            ),
        ] {
            let mut out = Vec::new();
            Frame::encode_reply(line, &mut out);
            assert_eq!(
                String::from_utf8(out).expect("UTF-8"),
                format!("{expected}\n")
            );
        }
    }

    #[test]
    fn dates_are_utc_with_milliseconds() {
        let ts: jiff::Timestamp = "2026-11-26T20:19:17.123456Z".parse().expect("valid");
        assert_eq!(format_date(ts), "2026-11-26T20:19:17.123Z");
        let whole: jiff::Timestamp = "2026-11-26T20:19:17Z".parse().expect("valid");
        assert_eq!(format_date(whole), "2026-11-26T20:19:17.000Z");
        let Frame::Date { payload } = Frame::date_now() else {
            panic!("date_now gives a date frame");
        };
        assert_eq!(payload.len(), "2026-11-26T20:19:17.123Z".len());
        assert!(payload.ends_with('Z'));
    }

    #[test]
    fn unknown_types_codes_and_fields_are_tolerated() {
        assert_eq!(
            Frame::parse(r#"{"msg_type":"ping","payload":1}"#).expect("parses"),
            Frame::Unknown
        );
        let frame =
            Frame::parse(r#"{"msg_type":"error","code":"new_code","payload":"x","extra":true}"#)
                .expect("parses");
        assert_eq!(
            frame,
            Frame::Error {
                code: ErrorCode::Unknown,
                payload: "x".into()
            }
        );
        for (code, wire) in [
            (ErrorCode::ServerFull, "server_full"),
            (ErrorCode::LineTooLong, "line_too_long"),
            (ErrorCode::InvalidUtf8, "invalid_utf8"),
            (ErrorCode::ShuttingDown, "shutting_down"),
            (ErrorCode::AddressLimit, "address_limit"),
        ] {
            let line = encoded(&Frame::error(code));
            assert!(line.contains(&format!("\"code\":\"{wire}\"")), "{line}");
            assert!(
                matches!(Frame::parse(line.trim_end()), Ok(Frame::Error { code: c, .. }) if c == code)
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn a_reply_encodes_as_the_frame_of_the_reversed_line(line in proptest::prelude::any::<String>()) {
            let mut direct = b"before".to_vec();
            Frame::encode_reply(&line, &mut direct);
            let frame = Frame::String { payload: crate::reverse::reverse(&line) };
            let expected = format!("before{}", encoded(&frame));
            proptest::prop_assert_eq!(String::from_utf8(direct).expect("UTF-8"), expected);
        }

        #[test]
        fn any_payload_encodes_as_serde_json_does(payload in proptest::prelude::any::<String>()) {
            let frame = Frame::String { payload };
            let expected = format!("{}\n", serde_json::to_string(&frame).expect("serializes"));
            proptest::prop_assert_eq!(encoded(&frame), expected);
        }
    }

    #[test]
    fn a_payload_of_only_quotes_or_backslashes_is_escaped() {
        for payload in ["\"", "\\", "\"\"", "\\\\"] {
            let frame = Frame::String {
                payload: payload.into(),
            };
            let line = encoded(&frame);
            assert_eq!(
                Frame::parse(line.trim_end()).expect("parses"),
                frame,
                "{line}"
            );
        }
    }

    #[test]
    fn characters_to_escape_are_found_past_the_first_32_bytes_too() {
        // Long payloads are checked 32 bytes at a time: one escape, two in
        // the same block (which must not cancel out), and escapes of every
        // kind at the start, the middle and the end.
        let filler = "x".repeat(40);
        for payload in [
            format!("\"{filler}"),
            format!("a\"b\"c{filler}"),
            format!("\\\\{filler}"),
            format!("{filler}\u{1}{filler}"),
            format!("{filler}{filler}\n"),
        ] {
            let frame = Frame::String { payload };
            let line = encoded(&frame);
            assert_eq!(line.matches('\n').count(), 1, "one line: {line:?}");
            assert_eq!(Frame::parse(line.trim_end()).expect("parses"), frame);
        }
    }

    #[test]
    fn only_quotes_backslashes_and_control_characters_need_escaping() {
        // A space is the first character JSON leaves as it is; DEL and
        // everything beyond ASCII too.
        assert!(!needs_escape(" "));
        assert!(!needs_escape("plain text, l\u{eb}on \u{7f}"));
        assert!(!needs_escape(&"long plain text ".repeat(8)));
        for text in ["\"", "\\", "\u{0}", "\u{1f}", "\t"] {
            assert!(needs_escape(text), "{text:?}");
            assert!(
                needs_escape(&format!("{}{text}", "x".repeat(40))),
                "{text:?}"
            );
        }
    }
}
