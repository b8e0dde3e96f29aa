//! What the binaries share: duration flags, usage errors, logging.
//!
//! Every flag is checked when the command line is read: a value outside its
//! range is one sentence and the usage status, never a panic later.

use std::ffi::OsString;
use std::fmt;
use std::ops::RangeInclusive;
use std::str::FromStr;
use std::time::Duration;

/// Parses a duration flag: `250ms`, `1.5s`, `2m`, `1h`, or a bare number of
/// seconds (`10`). Zero and negative values are refused: every duration the
/// binaries take is a period or a deadline.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    // Seconds per unit, as a fraction: milliseconds are divided by 1000,
    // not multiplied by 0.001, which binary floating point cannot hold
    // exactly (the product could be one step off what was written).
    let (number, per, unit) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 1.0, 1000.0)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0, 1.0)
    } else if let Some(h) = text.strip_suffix('h') {
        (h, 3600.0, 1.0)
    } else {
        (text, 1.0, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (use e.g. 250ms, 1.5s, 2m, 1h or 10)"))?;
    let seconds = value * per / unit;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        return Err(format!("'{text}' must be a positive duration"));
    }
    let duration = Duration::from_secs_f64(seconds);
    if duration.is_zero() {
        return Err(format!("'{text}' is shorter than a nanosecond"));
    }
    Ok(duration)
}

/// A duration flag's value: parsed by [`parse_duration`], shown as it is
/// written (`10s`, `250ms`), so that clap can show a default taken from a
/// `Duration` constant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl fmt::Display for DurationArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            match d.as_secs() {
                s if s > 0 && s % 3600 == 0 => write!(f, "{}h", s / 3600),
                s if s > 0 && s % 60 == 0 => write!(f, "{}m", s / 60),
                s => write!(f, "{s}s"),
            }
        } else if d.as_nanos().is_multiple_of(1_000_000) {
            write!(f, "{}ms", d.as_millis())
        } else {
            write!(f, "{}s", d.as_secs_f64())
        }
    }
}

impl FromStr for DurationArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Self)
    }
}

/// A value parser for a duration flag that accepts only `range`.
pub fn duration_within(
    range: RangeInclusive<Duration>,
) -> impl Fn(&str) -> Result<DurationArg, String> + Clone + Send + Sync + 'static {
    move |text| {
        let duration = parse_duration(text)?;
        if range.contains(&duration) {
            Ok(DurationArg(duration))
        } else {
            Err(format!(
                "'{text}' is outside {} to {}",
                DurationArg(*range.start()),
                DurationArg(*range.end())
            ))
        }
    }
}

/// A value parser for a whole-number flag that accepts only `range`.
pub fn count_within(
    range: RangeInclusive<usize>,
) -> impl Fn(&str) -> Result<usize, String> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<usize>() {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(format!(
            "'{text}' is not a whole number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// A value parser for a decimal flag that accepts only `range` (never NaN
/// or an infinity).
pub fn number_within(
    range: RangeInclusive<f64>,
) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<f64>() {
        Ok(x) if range.contains(&x) => Ok(x),
        _ => Err(format!(
            "'{text}' is not a number from {} to {}",
            range.start(),
            range.end()
        )),
    }
}

/// Turns a clap error into one line: clap's own sentence without its
/// `error:` prefix and usage block, with clap's tips (a similar flag that
/// exists), and a pointer to `--help`.
pub fn usage_error_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let mut blocks = text.split("\n\n");
    let first_block = blocks.next().unwrap_or_default();
    let joined = first_block
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let mut line = joined.strip_prefix("error: ").unwrap_or(&joined).to_owned();
    for tip in blocks
        .flat_map(str::lines)
        .filter_map(|l| l.trim().strip_prefix("tip: "))
    {
        line.push_str("; ");
        line.push_str(tip);
    }
    line.push_str(" (see --help)");
    line
}

/// A value parser for an address to listen on: an IP address, and a
/// sentence that says so for a host name.
pub fn listen_address(text: &str) -> Result<std::net::IpAddr, String> {
    text.parse().map_err(|_| {
        format!(
            "'{text}' is not an IP address; give the address to listen on, \
             such as 127.0.0.1, 0.0.0.0 or ::"
        )
    })
}

/// Why a command line does not run its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    /// `--help` or `--version` was printed: exit 0.
    Printed,
    /// The command line was incomplete (no subcommand) and the help was
    /// printed to stderr: exit with the usage status.
    PrintedUsage,
    /// The command line is wrong: this sentence, and the usage status.
    Usage(String),
}

impl NotRun {
    /// Says so (`name: sentence` on stderr for a usage error) and gives the
    /// exit status.
    pub fn exit(self, name: &str, usage_status: u8) -> std::process::ExitCode {
        match self {
            Self::Printed => std::process::ExitCode::SUCCESS,
            Self::PrintedUsage => std::process::ExitCode::from(usage_status),
            Self::Usage(sentence) => {
                eprintln!("{name}: {sentence}");
                std::process::ExitCode::from(usage_status)
            }
        }
    }
}

impl From<crate::error::ConfigError> for NotRun {
    fn from(err: crate::error::ConfigError) -> Self {
        Self::Usage(err.to_string())
    }
}

/// Parses a command line (`args`, the program name first). `--help` and
/// `--version` are printed here.
pub fn parse_args<T, I, A>(args: I) -> Result<T, NotRun>
where
    T: clap::Parser,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    T::try_parse_from(args).map_err(|err| {
        if err.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            let _ = err.print();
            NotRun::PrintedUsage
        } else if err.use_stderr() {
            NotRun::Usage(usage_error_line(&err))
        } else {
            let _ = err.print();
            NotRun::Printed
        }
    })
}

/// A multi-threaded tokio runtime, or the exit status after saying why
/// there is none.
pub fn runtime(name: &str) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Runtime::new().map_err(|err| {
        eprintln!("{name}: cannot start the async runtime: {err}");
        std::process::ExitCode::FAILURE
    })
}

/// Raises the open-file soft limit to the hard limit, as a server for
/// thousands of clients (or a load tool that opens them) needs; returns the
/// limit now in force (0 if it cannot be read). Process-wide, so only the
/// binaries call it, at start-up.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// The listening TCP socket a service manager passed (`LISTEN_FDS`, for
/// this process: `LISTEN_PID`), if any; the variables are cleared, so that
/// children do not take it too. Call it before starting threads.
pub fn inherited_listener() -> std::io::Result<Option<std::net::TcpListener>> {
    listenfd::ListenFd::from_env().take_tcp_listener(0)
}

/// Writes `port` and a newline to `path`, for whoever started the program
/// on port 0 and needs to know where it listens. The file appears whole or
/// not at all: it is written beside `path` and renamed over it.
pub fn write_port_file(path: &std::path::Path, port: u16) -> std::io::Result<()> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(".tmp");
    let staging = std::path::PathBuf::from(staging);
    std::fs::write(&staging, format!("{port}\n"))?;
    std::fs::rename(&staging, path)
}

/// Whether logs are coloured: on a terminal, unless `NO_COLOR` is set to
/// anything but the empty string (the convention of no-color.org).
fn colour_wanted(terminal: bool, no_color: Option<OsString>) -> bool {
    terminal && no_color.is_none_or(|value| value.is_empty())
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` if set and by
/// `default` (an `EnvFilter` directive such as `warn,nea=info`) otherwise.
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

    /// The writer's count of dropped lines, for the metrics.
    pub fn drops(&self) -> tracing_appender::non_blocking::ErrorCounter {
        self.dropped.clone()
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

pub fn init_logging(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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
    fn durations_accept_the_documented_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn a_duration_shown_in_milliseconds_parses_back_exactly() {
        // Found by fuzzing: 5108087.6 s is shown as 5108087600ms, which
        // parsed as 5108087.600000001 s when milliseconds were multiplied
        // by 0.001.
        let duration = parse_duration("5108087.6").expect("a duration");
        let shown = DurationArg(duration).to_string();
        assert_eq!(shown, "5108087600ms");
        assert_eq!(parse_duration(&shown), Ok(duration));
    }

    #[test]
    fn durations_refuse_nonsense_with_a_sentence() {
        for bad in ["", "abc", "10x", "-1", "0", "0ms", "inf", "NaN"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains('\''), "{bad}: {err}");
        }
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        use nix::sys::resource::{Resource, getrlimit};
        let limit = raise_open_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
        assert_eq!(limit, soft);
        assert_eq!(soft, hard);
    }

    #[test]
    fn the_port_file_holds_the_port_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("port");
        write_port_file(&path, 3443).expect("written");
        write_port_file(&path, 4443).expect("rewritten");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "4443\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["port"]);
        let missing = dir.path().join("no/such/dir/port");
        assert!(write_port_file(&missing, 1).is_err());
    }

    #[test]
    fn no_color_turns_colour_off_on_a_terminal() {
        assert!(colour_wanted(true, None));
        assert!(colour_wanted(true, Some(OsString::new())));
        assert!(!colour_wanted(true, Some(OsString::from("1"))));
        assert!(!colour_wanted(false, None));
    }

    #[test]
    fn durations_show_as_they_are_written() {
        for (duration, text) in [
            (Duration::from_secs(10), "10s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(86_400), "24h"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_nanos(1_500), "0.0000015s"),
        ] {
            assert_eq!(DurationArg(duration).to_string(), text);
            assert_eq!(text.parse(), Ok(DurationArg(duration)));
        }
        assert_eq!(DurationArg(Duration::ZERO).to_string(), "0s");
    }

    #[test]
    fn a_tiny_fraction_is_not_a_zero_duration() {
        let err = parse_duration("0.0000000001").expect_err("rounds to zero");
        assert_eq!(err, "'0.0000000001' is shorter than a nanosecond");
    }

    #[test]
    fn ranged_flags_accept_their_bounds_only() {
        let count = count_within(1..=100);
        assert_eq!(count("1"), Ok(1));
        assert_eq!(count("100"), Ok(100));
        for bad in ["0", "101", "-3", "many", "18446744073709551616", ""] {
            let err = count(bad).expect_err(bad);
            assert_eq!(err, format!("'{bad}' is not a whole number from 1 to 100"));
        }
        let number = number_within(0.5..=10.0);
        assert_eq!(number("0.5"), Ok(0.5));
        assert_eq!(number("10"), Ok(10.0));
        for bad in ["0.49", "10.01", "NaN", "inf", "-inf", "x"] {
            assert!(number(bad).is_err(), "{bad}");
        }
        let duration = duration_within(Duration::from_millis(1)..=Duration::from_secs(60));
        assert_eq!(duration("1ms"), Ok(DurationArg(Duration::from_millis(1))));
        assert_eq!(duration("1m"), Ok(DurationArg(Duration::from_secs(60))));
        assert_eq!(
            duration("61s"),
            Err("'61s' is outside 1ms to 1m".to_owned())
        );
        assert!(duration("0.5ms").is_err());
    }

    #[test]
    fn a_usage_error_is_one_line_without_clap_decoration() {
        #[derive(Debug, clap::Parser)]
        struct Flags {
            #[arg(long)]
            count: u8,
        }
        let err = parse_args::<Flags, _, _>(["prog", "--count", "300"]).expect_err("out of range");
        let NotRun::Usage(sentence) = err else {
            panic!("{err:?}")
        };
        assert!(
            !sentence.contains('\n') && !sentence.starts_with("error:"),
            "{sentence}"
        );
        assert!(sentence.contains("'300'"), "{sentence}");
        assert!(sentence.ends_with(" (see --help)"), "{sentence}");
        let NotRun::Usage(typo) =
            parse_args::<Flags, _, _>(["prog", "--cuont", "3"]).expect_err("a typo")
        else {
            panic!("not a usage error")
        };
        assert!(
            typo.contains("a similar argument exists: '--count'"),
            "{typo}"
        );
        assert!(!typo.contains('\n'), "{typo}");
        assert_eq!(
            parse_args::<Flags, _, _>(["prog", "--count", "3"]).map(|f| f.count),
            Ok(3)
        );
    }

    #[test]
    fn the_longest_duration_accepted_is_a_billion_seconds() {
        assert_eq!(
            parse_duration("1000000000"),
            Ok(Duration::from_secs(1_000_000_000))
        );
        for too_long in ["1000000001", "16666667m", "1e30h"] {
            assert_eq!(
                parse_duration(too_long),
                Err(format!("'{too_long}' must be a positive duration"))
            );
        }
    }

    #[test]
    fn each_way_of_not_running_has_its_exit_status() {
        // `ExitCode` has no equality; its debug form shows the status.
        let status = |code: std::process::ExitCode| format!("{code:?}");
        assert_eq!(
            status(NotRun::Printed.exit("prog", 2)),
            status(std::process::ExitCode::SUCCESS)
        );
        assert_eq!(
            status(NotRun::PrintedUsage.exit("prog", 2)),
            status(std::process::ExitCode::from(2))
        );
        assert_eq!(
            status(NotRun::Usage("wrong".into()).exit("prog", 64)),
            status(std::process::ExitCode::from(64))
        );
    }

    #[test]
    fn a_listen_address_is_an_ip_address_not_a_host_name() {
        assert_eq!(
            listen_address("127.0.0.1"),
            Ok(std::net::IpAddr::from([127, 0, 0, 1]))
        );
        assert_eq!(
            listen_address("::"),
            Ok(std::net::IpAddr::from(std::net::Ipv6Addr::UNSPECIFIED))
        );
        let err = listen_address("localhost").expect_err("a host name");
        assert!(
            err.starts_with("'localhost' is not an IP address;"),
            "{err}"
        );
    }

    #[test]
    fn a_soft_limit_below_the_hard_one_is_raised_to_it() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        // The limit is process-wide and the test above reads it, so the
        // lowered limit is tried in a child process that runs this test
        // alone.
        const LOWERED: &str = "NEA_TEST_LOWERED_OPEN_FILE_LIMIT";
        const NAME: &str = "cli::tests::a_soft_limit_below_the_hard_one_is_raised_to_it";
        if std::env::var_os(LOWERED).is_some() {
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
            setrlimit(Resource::RLIMIT_NOFILE, hard.saturating_sub(1), hard).expect("lowered");
            assert_eq!(raise_open_file_limit(), hard);
            assert_eq!(
                getrlimit(Resource::RLIMIT_NOFILE).expect("readable"),
                (hard, hard)
            );
            return;
        }
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", NAME, "--test-threads=1"])
            .env(LOWERED, "1")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "{stdout}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
    }
}
