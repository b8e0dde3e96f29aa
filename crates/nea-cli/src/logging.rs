//! Logging for the programs: to standard error, as text or JSON lines,
//! coloured only on a terminal and without `NO_COLOR`. The server's lines
//! go through a writer thread of its own, in batches while they come fast,
//! so that writing logs never delays the serving of clients.
//!
//! Every line follows the same rules, whoever logs it (SPEC §11): values a
//! peer controls (a name in a ClientHello, a certificate's subject, a
//! parser's error) are escaped (`crate::escape`) in text and in JSON, and
//! a text value with a space or a quote is quoted, so that one event is
//! one line and a field cannot pass for another; and a dependency (rustls,
//! hyper, …) logs at most one line a second (`ForeignEvents`), so that a
//! flood of bad handshakes cannot turn into a storm of its warnings. nea's
//! own lines rate-limit themselves where a peer can cause them.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::OsString;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tracing::field::{Field, Visit};
use tracing_subscriber::Layer as _;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Whether logs are coloured: on a terminal, unless `NO_COLOR` is set to
/// anything but the empty string (the convention of no-color.org).
fn colour_wanted(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// How the server writes its log lines (`--log-format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One line of text per event: time, level, message, `key=value` fields.
    #[default]
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message` and each
    /// field by its name, at the top level.
    Json,
}

/// The server's logging, set up by [`init_server_logging`]. Keep it until
/// the program ends: dropping it writes out the lines still queued.
#[must_use = "dropping it stops the log writer"]
pub struct ServerLogging {
    /// Flushes the writer thread when dropped.
    _writer: tracing_appender::non_blocking::WorkerGuard,
    /// Lines dropped because standard error took them too slowly.
    dropped: tracing_appender::non_blocking::ErrorCounter,
    /// Lines of dependencies held back by their rate limit.
    suppressed: Arc<AtomicU64>,
}

impl ServerLogging {
    /// Lines dropped so far because standard error did not keep up.
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// Lines of dependencies held back so far by their rate limit.
    pub fn suppressed_lines(&self) -> u64 {
        self.suppressed.load(Ordering::Relaxed)
    }

    /// The lines dropped so far, for the server's metrics
    /// (`nea::server::ServerBuilder::log_drops`).
    pub fn drops(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let dropped = self.dropped.clone();
        move || dropped.dropped_lines() as u64
    }
}

/// The crates whose events are nea's own: the library and the programs.
/// Their lines are not limited here; those a peer can cause limit
/// themselves.
const OWN_CRATES: [&str; 5] = ["nea", "nea_cli", "servercli", "clientcli", "loadcli"];

/// The rate limit on dependencies' events: at most one a second from each
/// crate (the first segment of its target), the others held back and
/// counted. Invariant: `last` holds one entry per dependency that has
/// logged, a handful at most.
#[derive(Debug, Default)]
struct ForeignEvents {
    /// When each crate's last event was let through.
    last: Mutex<HashMap<String, Instant>>,
    /// Events held back so far.
    suppressed: Arc<AtomicU64>,
}

impl ForeignEvents {
    const WINDOW: Duration = Duration::from_secs(1);

    /// Whether an event of `target` may be logged now.
    fn allow(&self, target: &str) -> bool {
        let krate = target.split("::").next().unwrap_or(target);
        if OWN_CRATES.contains(&krate) {
            return true;
        }
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        match last.get(krate) {
            Some(at) if now.duration_since(*at) < Self::WINDOW => {
                self.suppressed.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => {
                last.insert(krate.to_owned(), now);
                true
            }
        }
    }
}

impl<S> Filter<S> for ForeignEvents {
    fn enabled(&self, _: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        true
    }

    /// Decided once per event, when it is logged (`enabled` may be asked
    /// more than once about one event, by the `log` bridge for one).
    fn event_enabled(&self, event: &tracing::Event<'_>, _: &Context<'_, S>) -> bool {
        self.allow(event.metadata().target())
    }
}

/// Text fields as `name=value`, each value escaped (`crate::escape`) and
/// quoted when it holds a space, a quote or an `=`, or is empty; the
/// message escaped, unquoted. So one event is one line, and a value (a
/// certificate subject with its commas and spaces, say) cannot be read as
/// several fields.
#[derive(Debug, Default)]
pub struct EscapedFields;

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = EscapingVisitor {
            writer,
            first: true,
            result: Ok(()),
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'writer> {
    writer: Writer<'writer>,
    /// No field written yet: none needs a space before it.
    first: bool,
    result: fmt::Result,
}

impl EscapingVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        let escaped = crate::escape::escape(value);
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{escaped}")
        } else if already_quoted(&escaped) || !needs_quotes(&escaped) {
            write!(self.writer, "{separator}{}={escaped}", field.name())
        } else {
            let quoted = escaped.replace('\\', "\\\\").replace('"', "\\\"");
            write!(self.writer, "{separator}{}=\"{quoted}\"", field.name())
        };
    }
}

impl Visit for EscapingVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

/// Whether `value` is a string as `Debug` writes one: quoted, and escaped
/// already.
fn already_quoted(value: &str) -> bool {
    value.len() >= 2 && value.starts_with('"') && value.ends_with('"')
}

fn needs_quotes(value: &str) -> bool {
    value.is_empty() || value.contains([' ', '"', '='])
}

/// One event's formatted bytes, made one line: any line break or carriage
/// return before its final newline escaped (the field formatter escapes
/// values already: this guards everything else), and, in JSON, the
/// invisible and bidirectional characters serde_json leaves as they are
/// written as `\u` escapes (valid in a JSON string, where alone they can
/// occur).
fn one_line(event: &[u8], json: bool) -> Cow<'_, [u8]> {
    let Ok(text) = std::str::from_utf8(event) else {
        return Cow::Borrowed(event);
    };
    let body = text.strip_suffix('\n').unwrap_or(text);
    let risky = |c: char| c == '\n' || c == '\r' || (json && crate::escape::needs_escape(c));
    if !body.chars().any(risky) {
        return Cow::Borrowed(event);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if json && crate::escape::needs_escape(c) => {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('\n');
    Cow::Owned(out.into_bytes())
}

/// How long the log writer thread waits for more lines before writing,
/// when a line comes within this time of its last write ([`Batched`]).
const LOG_BATCH_WINDOW: Duration = Duration::from_millis(10);

/// Most bytes of log lines held back for one write.
const LOG_BATCH_BYTES: usize = 64 * 1024;

/// A writer for the log writer thread that writes lines in batches while
/// they come in quick succession, and each line at once otherwise.
///
/// The writer thread flushes each time its queue is empty. Unbatched, a
/// server logging a line per client wrote each line with a `write(2)` of
/// its own and then parked, so each line also cost the thread a wake-up:
/// a futex call on the serving thread, and a few `sched_yield`s and a
/// futex wait on the writer's (about four system calls and two context
/// switches per line, BENCHMARKS.md). Here a flush that comes within
/// [`LOG_BATCH_WINDOW`] of the last write first waits out that window, so
/// the lines logged meanwhile queue up without waking anyone and go out
/// in the next write. A line after a quiet spell is written at once, and
/// nothing runs while no line comes: an idle server still does no
/// periodic work. The lines, and their order, are the same; under a
/// sustained stream they reach standard error up to twice the window
/// later.
struct Batched<W: std::io::Write> {
    inner: W,
    /// Whether the lines are JSON (for [`one_line`]).
    json: bool,
    /// Whether the last flush waited out the batch window (for tests).
    waited: bool,
    /// Lines written to this writer and not yet to `inner`.
    pending: Vec<u8>,
    /// When `pending` was last written out.
    last_write: Option<std::time::Instant>,
}

impl<W: std::io::Write> Batched<W> {
    fn new(inner: W, json: bool) -> Self {
        Self {
            inner,
            json,
            waited: false,
            pending: Vec::new(),
            last_write: None,
        }
    }

    /// Writes out the lines held back. A failed write loses them, as an
    /// unbatched one loses its line.
    fn write_pending(&mut self) -> std::io::Result<()> {
        let written = self.inner.write_all(&self.pending);
        self.pending.clear();
        self.pending.shrink_to(LOG_BATCH_BYTES);
        self.last_write = Some(std::time::Instant::now());
        written
    }
}

impl<W: std::io::Write> std::io::Write for Batched<W> {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        if !self.pending.is_empty() && self.pending.len() + line.len() > LOG_BATCH_BYTES {
            self.write_pending()?;
        }
        self.pending.extend_from_slice(&one_line(line, self.json));
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.waited = self
            .last_write
            .is_some_and(|at| at.elapsed() < LOG_BATCH_WINDOW);
        if self.waited {
            std::thread::sleep(LOG_BATCH_WINDOW);
        }
        self.write_pending()?;
        self.inner.flush()
    }
}

impl<W: std::io::Write> Drop for Batched<W> {
    fn drop(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.write_pending();
        }
    }
}

/// Logging for the server: `format`, to standard error, through a writer
/// thread of its own, so that a slow standard error never delays the
/// serving of clients, in batches while lines come fast (`Batched`).
/// When the writer falls 128,000 lines behind, new lines are dropped and
/// counted ([`ServerLogging::dropped_lines`]) rather than waited for.
pub fn init_server_logging(default: &str, format: LogFormat) -> ServerLogging {
    use std::io::IsTerminal;
    let json = format == LogFormat::Json;
    let (writer, guard) = tracing_appender::non_blocking(Batched::new(std::io::stderr(), json));
    let dropped = writer.error_counter();
    let foreign = ForeignEvents::default();
    let suppressed = foreign.suppressed.clone();
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(false);
    let layer = if json {
        layer
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .boxed()
    } else {
        layer
            .fmt_fields(EscapedFields)
            .with_ansi(colour_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .boxed()
    };
    tracing_subscriber::registry()
        .with(limited(layer, foreign, default))
        .init();
    ServerLogging {
        _writer: guard,
        dropped,
        suppressed,
    }
}

/// `layer` behind the level filter and then the dependencies' rate limit,
/// in that order: the filter outside decides first, so only an event that
/// would be written counts against its crate's limit.
fn limited<L>(
    layer: L,
    foreign: ForeignEvents,
    default: &str,
) -> impl tracing_subscriber::Layer<tracing_subscriber::Registry>
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry>,
{
    layer.with_filter(foreign).with_filter(env_filter(default))
}

/// `RUST_LOG` if set and valid, `default` otherwise.
fn env_filter(default: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default))
}

/// Logging for the client: plain text to standard error, filtered by
/// `RUST_LOG` if set and by `default` (an `EnvFilter` directive such as
/// `warn,nea=debug`) otherwise.
pub fn init_logging(default: &str) {
    init_logging_to(default, std::io::stderr);
}

/// Like [`init_logging`], but each line goes to `writer`: the client's
/// terminal front end prints log lines above its prompt, as it prints
/// everything else. Coloured as [`init_logging`] colours standard error;
/// escaped and rate-limited as the server's lines are.
pub fn init_logging_to<W>(default: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use std::io::IsTerminal;
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .fmt_fields(EscapedFields)
        .with_ansi(colour_wanted(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false);
    tracing_subscriber::registry()
        .with(limited(layer, ForeignEvents::default(), default))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that keeps each `write` call's bytes apart.
    #[derive(Default)]
    struct Writes(std::rc::Rc<std::cell::RefCell<Vec<Vec<u8>>>>);

    impl std::io::Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.borrow_mut().push(bytes.to_vec());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_in_quick_succession_share_a_write_and_a_lone_one_goes_at_once() {
        use std::io::Write as _;
        let writes = Writes::default();
        let seen = writes.0.clone();
        let mut log = Batched::new(writes, false);
        log.write_all(b"one\n").expect("write");
        assert!(seen.borrow().is_empty(), "held until the flush");
        log.flush().expect("flush");
        assert_eq!(*seen.borrow(), [b"one\n".to_vec()]);
        // Within the window of that write: the flush waits it out, and
        // everything logged before it goes in one write, in order.
        let started = std::time::Instant::now();
        log.write_all(b"two\n").expect("write");
        log.write_all(b"three\n").expect("write");
        log.flush().expect("flush");
        assert!(log.waited && started.elapsed() >= LOG_BATCH_WINDOW);
        assert_eq!(seen.borrow()[1], b"two\nthree\n");
        // After a quiet spell, at once.
        std::thread::sleep(LOG_BATCH_WINDOW);
        log.write_all(b"four\n").expect("write");
        log.flush().expect("flush");
        assert!(!log.waited, "a lone line waits for nothing");
        assert_eq!(seen.borrow()[2], b"four\n");
        // Nothing held back: a flush writes nothing.
        log.flush().expect("flush");
        assert_eq!(seen.borrow().len(), 3);
        // Dropped with lines held back: they are written.
        log.write_all(b"five\n").expect("write");
        drop(log);
        assert_eq!(seen.borrow()[3], b"five\n");
    }

    #[test]
    fn a_batch_is_written_before_it_would_pass_its_bound() {
        use std::io::Write as _;
        let writes = Writes::default();
        let seen = writes.0.clone();
        let mut log = Batched::new(writes, false);
        let line = vec![b'x'; LOG_BATCH_BYTES / 2 + 1];
        log.write_all(&line).expect("write");
        log.write_all(&line).expect("write");
        assert_eq!(seen.borrow().len(), 1, "the first line, alone");
        assert_eq!(seen.borrow()[0], line);
        drop(log);
        assert_eq!(seen.borrow().len(), 2);
    }

    #[test]
    fn a_dependency_logs_once_a_second_and_nea_is_not_limited_here() {
        let limit = ForeignEvents::default();
        assert!(limit.allow("rustls::server::hs"));
        assert!(!limit.allow("rustls::msgs::handshake"), "the same crate");
        assert!(limit.allow("hyper::proto"), "another crate");
        for own in [
            "nea::server::listener",
            "servercli",
            "clientcli::term",
            "nea_cli",
        ] {
            for _ in 0..3 {
                assert!(limit.allow(own), "{own}");
            }
        }
        assert_eq!(limit.suppressed.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn only_an_event_the_level_lets_through_counts_against_the_limit() {
        let lines = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let lines = lines.clone();
            move || SharedBuffer(lines.clone())
        };
        let limit = ForeignEvents::default();
        let suppressed = limit.suppressed.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .fmt_fields(EscapedFields);
        let subscriber = tracing_subscriber::registry().with(limited(layer, limit, "warn"));
        tracing::subscriber::with_default(subscriber, || {
            // Below the level: neither written nor counted, and the
            // crate's one line a second is still to come.
            tracing::debug!(target: "rustls::server", "hidden");
            tracing::warn!(target: "rustls::server", "first");
            tracing::warn!(target: "rustls::server", "second");
        });
        let written = String::from_utf8(lines.lock().expect("lines").clone()).expect("utf-8");
        assert!(
            written.contains("first") && !written.contains("second"),
            "{written}"
        );
        assert!(!written.contains("hidden"), "{written}");
        assert_eq!(suppressed.load(Ordering::Relaxed), 1);
    }

    /// A writer into a shared buffer, for a subscriber under test.
    struct SharedBuffer(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for SharedBuffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_value_with_spaces_quotes_or_breaks_stays_one_quoted_field() {
        let lines = std::sync::Arc::new(Mutex::new(Vec::<u8>::new()));
        let writer = {
            let lines = lines.clone();
            move || SharedBuffer(lines.clone())
        };
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer)
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .fmt_fields(EscapedFields)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                subject = "CN=a, O=b reason=x\nnext \u{202e}",
                bare = "plain",
                empty = "",
                n = 3,
                "client\nleft"
            );
        });
        let written = String::from_utf8(lines.lock().expect("lines").clone()).expect("utf-8");
        assert_eq!(
            written,
            " INFO client\\nleft subject=\"CN=a, O=b reason=x\\\\nnext \\\\u{202e}\" \
             bare=plain empty=\"\" n=3\n"
        );
    }

    #[test]
    fn one_event_is_one_line_and_json_escapes_what_serde_leaves() {
        assert_eq!(&*one_line(b"a\nb\r\n", false), b"a\\nb\\r\n");
        assert_eq!(&*one_line(b"plain\n", true), b"plain\n");
        let json = "{\"subject\":\"\u{202e}x\u{2028}\"}\n";
        assert_eq!(
            &*one_line(json.as_bytes(), true),
            b"{\"subject\":\"\\u202ex\\u2028\"}\n"
        );
        // In text, the field formatter has escaped them already.
        assert_eq!(
            &*one_line("\u{202e}\n".as_bytes(), false),
            "\u{202e}\n".as_bytes()
        );
    }

    #[test]
    fn no_color_turns_colour_off_on_a_terminal() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsString::new())));
        assert!(!colour_wanted(true, Some(OsString::from("1"))));
        assert!(!colour_wanted(false, None));
    }
}
