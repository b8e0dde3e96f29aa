//! Logging for the programs: to standard error, as text or JSON lines,
//! coloured only on a terminal and without `NO_COLOR`. The server's lines
//! go through a writer thread of its own, in batches while they come fast,
//! so that writing logs never delays the serving of clients.

use std::ffi::OsString;
use std::time::Duration;

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
}

impl ServerLogging {
    /// Lines dropped so far because standard error did not keep up.
    pub fn dropped_lines(&self) -> usize {
        self.dropped.dropped_lines()
    }

    /// The writer's count of dropped lines, for the server's metrics
    /// (`nea::server::ServerBuilder::log_drops`).
    pub fn drops(&self) -> impl Fn() -> u64 + Send + Sync + 'static {
        let dropped = self.dropped.clone();
        move || dropped.dropped_lines() as u64
    }
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
    /// Lines written to this writer and not yet to `inner`.
    pending: Vec<u8>,
    /// When `pending` was last written out.
    last_write: Option<std::time::Instant>,
}

impl<W: std::io::Write> Batched<W> {
    fn new(inner: W) -> Self {
        Self {
            inner,
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
        self.pending.extend_from_slice(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if self
            .last_write
            .is_some_and(|at| at.elapsed() < LOG_BATCH_WINDOW)
        {
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let (writer, guard) = tracing_appender::non_blocking(Batched::new(std::io::stderr()));
    let dropped = writer.error_counter();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    match format {
        LogFormat::Text => builder
            .with_ansi(colour_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR"),
            ))
            .init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
    ServerLogging {
        _writer: guard,
        dropped,
    }
}

/// Logging for the client: plain text to standard error, filtered by
/// `RUST_LOG` if set and by `default` (an `EnvFilter` directive such as
/// `warn,nea=debug`) otherwise.
pub fn init_logging(default: &str) {
    init_logging_to(default, std::io::stderr);
}

/// Like [`init_logging`], but each line goes to `writer`: the client's
/// terminal front end prints log lines above its prompt, as it prints
/// everything else. Coloured as [`init_logging`] colours standard error.
pub fn init_logging_to<W>(default: &str, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour_wanted(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ))
        .with_target(false)
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
        let mut log = Batched::new(writes);
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
        assert!(started.elapsed() >= LOG_BATCH_WINDOW);
        assert_eq!(seen.borrow()[1], b"two\nthree\n");
        // After a quiet spell, at once.
        std::thread::sleep(LOG_BATCH_WINDOW);
        let started = std::time::Instant::now();
        log.write_all(b"four\n").expect("write");
        log.flush().expect("flush");
        assert!(started.elapsed() < LOG_BATCH_WINDOW);
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
        let mut log = Batched::new(writes);
        let line = vec![b'x'; LOG_BATCH_BYTES / 2 + 1];
        log.write_all(&line).expect("write");
        log.write_all(&line).expect("write");
        assert_eq!(seen.borrow().len(), 1, "the first line, alone");
        assert_eq!(seen.borrow()[0], line);
        drop(log);
        assert_eq!(seen.borrow().len(), 2);
    }

    #[test]
    fn no_color_turns_colour_off_on_a_terminal() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsString::new())));
        assert!(!colour_wanted(true, Some(OsString::from("1"))));
        assert!(!colour_wanted(false, None));
    }
}
