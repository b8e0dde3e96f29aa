//! How the client shows what the server sends: dates in the user's local
//! time zone, and server text made safe for a terminal.

use nea::client::session::Event;

/// Where a piece of output goes in plain (non-interactive) mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    /// Standard output: replies, or every frame with `--json`, one per line,
    /// so that `clientcli < in.txt > out.txt` writes exactly those.
    Stdout,
    /// Standard error: dates, notices and per-line errors, for people.
    Stderr,
}

/// The text an event shows, and where it goes in plain mode. Replies (and
/// `--json` frames) are escaped when `escape_replies` (standard output is a
/// terminal), but kept byte for byte when written to a file or a pipe. Server text on stderr is
/// always escaped. The interactive front end shows every text above its
/// prompt, with replies always escaped.
pub(crate) fn render(event: &Event, escape_replies: bool) -> (Stream, String) {
    match event {
        Event::Connected { target, tls } => {
            (Stream::Stderr, format!("connected to {target} ({tls})"))
        }
        Event::Reply(text) if escape_replies => (Stream::Stdout, escape_for_terminal(text)),
        Event::Reply(text) => (Stream::Stdout, text.clone()),
        Event::Frame(line) if escape_replies => (Stream::Stdout, escape_for_terminal(line)),
        Event::Frame(line) => (Stream::Stdout, line.clone()),
        Event::Date(payload) => (Stream::Stderr, format!("date: {}", local_date(payload))),
        Event::LineRejected { line, reason } => (
            Stream::Stderr,
            format!(
                "clientcli: the server rejected line {line}: {}",
                escape_for_terminal(reason)
            ),
        ),
        Event::Unsolicited(text) => (
            Stream::Stderr,
            format!(
                "clientcli: the server sent a reply to no line: {}",
                escape_for_terminal(text)
            ),
        ),
        Event::ServerError(sentence) => (
            Stream::Stderr,
            format!(
                "clientcli: the server says: {}",
                escape_for_terminal(sentence)
            ),
        ),
        Event::Reconnecting {
            reason,
            attempt,
            delay,
        } => (
            Stream::Stderr,
            format!(
                "clientcli: {reason}; reconnecting in {:.1}s (attempt {attempt})",
                delay.as_secs_f64()
            ),
        ),
    }
}

/// Formats a `date` payload (RFC 3339, UTC) in the system's time zone, as
/// `2026-11-26 21:19:17 CET`. A payload that does not parse is shown as
/// received, escaped.
pub(crate) fn local_date(payload: &str) -> String {
    date_in(payload, jiff::tz::TimeZone::system())
}

/// Formats a `date` payload in the time zone `tz`.
pub(crate) fn date_in(payload: &str, tz: jiff::tz::TimeZone) -> String {
    match payload.parse::<jiff::Timestamp>() {
        Ok(ts) => ts
            .to_zoned_datetime(tz)
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => escape_for_terminal(payload),
    }
}

/// Escapes what could take over a terminal (see [`nea_cli::escape`]).
pub(crate) fn escape_for_terminal(text: &str) -> String {
    nea_cli::escape::escape(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(escape_for_terminal("\rx"), "\\rx");
        assert_eq!(escape_for_terminal("m13[\u{1b}"), "m13[\\u{1b}");
        assert_eq!(
            escape_for_terminal("a\tb\u{7f}\u{9b}"),
            "a\\tb\\u{7f}\\u{9b}"
        );
        assert_eq!(escape_for_terminal("\u{202e}evil"), "\\u{202e}evil");
    }

    #[test]
    fn text_and_emoji_sequences_stay_whole() {
        let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
        assert_eq!(escape_for_terminal(family), family);
        for text in ["lëon", "🇫🇷🇮🇹", "❤\u{fe0f}", "日本語", ""] {
            assert_eq!(escape_for_terminal(text), text);
        }
    }

    #[test]
    fn events_go_to_the_documented_stream() {
        let reply = Event::Reply("\rx".into());
        assert_eq!(render(&reply, false), (Stream::Stdout, "\rx".to_owned()));
        assert_eq!(render(&reply, true), (Stream::Stdout, "\\rx".to_owned()));
        let frame = Event::Frame("{}".into());
        assert_eq!(render(&frame, true), (Stream::Stdout, "{}".to_owned()));
        // A frame that is not JSON may hold what JSON would have escaped.
        let raw = Event::Frame("x\u{1b}[2J".into());
        assert_eq!(render(&raw, true).1, "x\\u{1b}[2J");
        assert_eq!(render(&raw, false).1, "x\u{1b}[2J");
        let (stream, text) = render(&Event::Date("2026-11-26T20:19:17.123Z".into()), false);
        assert_eq!(stream, Stream::Stderr);
        assert!(text.starts_with("date: 2026-11-2"), "{text}");
        let connected = Event::Connected {
            target: "localhost:3443".into(),
            tls: "TLSv1.3, TLS13_AES_256_GCM_SHA384".into(),
        };
        assert_eq!(
            render(&connected, false).1,
            "connected to localhost:3443 (TLSv1.3, TLS13_AES_256_GCM_SHA384)"
        );
        let rejected = Event::LineRejected {
            line: 2,
            reason: "line is not valid UTF-8; dropped".into(),
        };
        assert_eq!(
            render(&rejected, false),
            (
                Stream::Stderr,
                "clientcli: the server rejected line 2: line is not valid UTF-8; dropped"
                    .to_owned()
            )
        );
        let unsolicited = Event::Unsolicited("\u{1b}[2J".into());
        assert_eq!(
            render(&unsolicited, false),
            (
                Stream::Stderr,
                "clientcli: the server sent a reply to no line: \\u{1b}[2J".to_owned()
            )
        );
        let unknown = Event::ServerError("\u{1b}]0;owned".into());
        assert!(render(&unknown, false).1.ends_with("\\u{1b}]0;owned"));
        let retry = Event::Reconnecting {
            reason: "the server shut down".into(),
            attempt: 2,
            delay: std::time::Duration::from_millis(1500),
        };
        assert_eq!(
            render(&retry, false).1,
            "clientcli: the server shut down; reconnecting in 1.5s (attempt 2)"
        );
    }

    #[test]
    fn dates_are_shown_in_the_given_zone() {
        let rome_in_winter = jiff::tz::TimeZone::fixed(jiff::tz::offset(1));
        assert_eq!(
            date_in("2026-11-26T20:19:17.123Z", rome_in_winter),
            "2026-11-26 21:19:17 +01"
        );
        assert_eq!(
            date_in(
                "2026-11-26T23:30:00.000Z",
                jiff::tz::TimeZone::fixed(jiff::tz::offset(-5))
            ),
            "2026-11-26 18:30:00 -05"
        );
        assert_eq!(local_date("not a date\u{1b}"), "not a date\\u{1b}");
    }
}
