//! `loadcli`: load, latency, punctuality and memory measurements against a
//! running server (nea's, or the bare baseline server in [`baseline`]).
//!
//! Every mode checks what it receives: a reply that is not the exact
//! reversal of its line, or that comes out of order, fails the run loudly
//! (exit status 1). Figures are reported as a human summary or, with
//! `--json`, as one JSON object. Given the server's process id, the modes
//! also read its CPU time, memory and context switches from `/proc`.
//!
//! - [`rtt`]: N clients, K lines in flight each, M lines of L bytes:
//!   lines/s, round-trip latency percentiles, server CPU per line.
//! - [`handshakes`]: full TLS handshakes per second, server CPU per
//!   handshake.
//! - [`flood`]: stalled handshakes from one address, and how long a
//!   client from another address takes to complete its own.
//! - [`trickle`]: real ClientHellos sent a byte at a time from many
//!   addresses and never completed, and how long a client from yet
//!   another address takes to complete its own meanwhile (or whether it
//!   can at all).
//! - [`hold`]: N silent clients: each date's lateness against its absolute
//!   deadline, server memory per connection, CPU and wake-ups while holding.
//! - [`soak`]: N clients sending at a steady rate for a long time: no lost,
//!   duplicated or misordered reply, punctual dates, flat memory.
//! - [`storm`]: N clients that reconnect as clientcli does while the server
//!   restarts: every line answered exactly once, how long until every client
//!   is back and every pending line answered, the handshake rate.
//! - [`unread`]: clients that send and never read: what the kernel holds
//!   for them.
//! - [`proc`]: the server's CPU time, memory and context switches, read
//!   from `/proc`.
//! - [`baseline`]: the yardstick server: a bare tokio-rustls server that
//!   answers each line with its bytes reversed, and nothing else.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub(crate) mod baseline;
pub(crate) mod flood;
pub(crate) mod handshakes;
pub(crate) mod hold;
pub(crate) mod proc;
pub(crate) mod rtt;
pub(crate) mod soak;
pub(crate) mod storm;
pub(crate) mod trickle;
pub(crate) mod unread;

/// A failure of a load run. A mismatch is the one that matters most: it
/// means the server answered wrongly.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LoadError {
    /// A reply was not the exact reversal of the line it answers.
    #[error("MISMATCH on client {client}, line {line}: expected {expected:?}, got {got:?}")]
    Mismatch {
        /// Which client.
        client: usize,
        /// Which of its lines (0-based).
        line: u64,
        /// What the reply should have been.
        expected: String,
        /// What came.
        got: String,
    },
    /// A client could not connect or lost its connection.
    #[error("client {client}: {source}")]
    Io {
        /// Which client.
        client: usize,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The run's own checks failed (lost replies, late dates, ...).
    #[error("{0}")]
    Failed(String),
    /// TLS setup failed.
    #[error(transparent)]
    Tls(#[from] nea::error::TlsSetupError),
}

/// Which protocol the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// nea: replies are `string` frames holding the grapheme reversal;
    /// `date` frames come in between.
    Nea,
    /// The baseline server: each reply is the line's bytes reversed, raw.
    Baseline,
}

/// Where and how to connect.
#[derive(Clone)]
pub(crate) struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// The name to verify.
    pub server_name: ServerName<'static>,
    /// Client TLS configuration (no resumption: every handshake is full).
    pub tls: Arc<rustls::ClientConfig>,
    /// What the server speaks.
    pub protocol: Protocol,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("addr", &self.addr)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Target {
    /// A target trusting the CA certificates in `ca`.
    pub(crate) fn new(
        addr: SocketAddr,
        server_name: &str,
        ca: &std::path::Path,
        protocol: Protocol,
    ) -> Result<Self, LoadError> {
        let roots = nea::tls::root_store(nea::tls::load_certs(ca)?)?;
        let mut config = (*nea::tls::client_config(roots, None)?).clone();
        config.resumption = rustls::client::Resumption::disabled();
        let server_name = ServerName::try_from(server_name.to_owned()).map_err(|_| {
            LoadError::Failed(format!("{server_name:?} is not a valid server name"))
        })?;
        Ok(Self {
            addr,
            server_name,
            tls: Arc::new(config),
            protocol,
        })
    }

    /// Connects and completes a full handshake.
    pub(crate) async fn connect(&self, client: usize) -> Result<TlsStream<TcpStream>, LoadError> {
        let io = |source| LoadError::Io { client, source };
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|source| connect_failure(client, self.addr, source))?;
        self.handshake(tcp).await.map_err(io)
    }

    /// A full handshake over a connected socket.
    pub(crate) async fn handshake(&self, tcp: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        tcp.set_nodelay(true)?;
        TlsConnector::from(self.tls.clone())
            .connect(self.server_name.clone(), tcp)
            .await
    }

    /// What the server must answer to `line`.
    pub(crate) fn expected_reply(&self, line: &str) -> String {
        match self.protocol {
            Protocol::Nea => nea::reverse::reverse(line),
            Protocol::Baseline => {
                // Bytes reversed; the lines the tool sends are ASCII in
                // baseline runs, so this is still text.
                let mut bytes = line.as_bytes().to_vec();
                bytes.reverse();
                String::from_utf8_lossy(&bytes).into_owned()
            }
        }
    }
}

/// Checks a reply against the oldest line still waiting for one (`seq` and
/// its expected reply): none waiting means a duplicate or a reply nobody
/// asked for; a different text is a mismatch. Both fail the run.
pub(crate) fn check_reply(
    client: usize,
    waiting: Option<(u64, String)>,
    reply: String,
) -> Result<(), LoadError> {
    let Some((seq, expected)) = waiting else {
        return Err(LoadError::Failed(format!(
            "client {client}: a reply nobody asked for (a duplicate?): {reply:?}"
        )));
    };
    if reply != expected {
        return Err(LoadError::Mismatch {
            client,
            line: seq,
            expected,
            got: reply,
        });
    }
    Ok(())
}

/// What one received line is, once the protocol is applied.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Received {
    /// A reply to a line.
    Reply(String),
    /// A date frame's payload.
    Date(String),
    /// Anything else (ignored).
    Other,
}

/// Interprets one line from the server.
pub(crate) fn interpret(protocol: Protocol, line: &str) -> Received {
    match protocol {
        Protocol::Baseline => Received::Reply(line.to_owned()),
        Protocol::Nea => match nea::protocol::Frame::parse(line) {
            Ok(nea::protocol::Frame::String { payload }) => Received::Reply(payload),
            Ok(nea::protocol::Frame::Date { payload }) => Received::Date(payload),
            _ => Received::Other,
        },
    }
}

/// The text of line `seq` of a client: exactly `len` bytes (for ASCII) or
/// about `len` bytes of mostly-ASCII chat with accents and emoji
/// (`unicode`), starting with the client and sequence numbers so that every
/// line is distinct.
pub(crate) fn make_line(client: usize, seq: u64, len: usize, unicode: bool) -> String {
    const ASCII: &str = "the quick brown fox jumps over the lazy dog ";
    const CHAT: &str = "ok see you at the café 👍🏽 then Zürich 🇨🇭 lol ";
    let mut line = format!("{client}:{seq} ");
    let filler = if unicode { CHAT } else { ASCII };
    'fill: while line.len() < len {
        for c in filler.chars() {
            if line.len() + c.len_utf8() > len {
                break 'fill;
            }
            line.push(c);
        }
    }
    while line.len() < len {
        line.push('.');
    }
    line
}

/// A latency histogram in microseconds, 1 µs to 1 hour, 3 significant
/// digits.
pub(crate) fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .expect("constant bounds: low >= 1, high >= 2 * low, sigfig <= 5")
}

/// Percentiles of a histogram in microseconds, for reports.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest sample.
    pub max_us: u64,
}

impl Percentiles {
    /// Summarises `hist`.
    pub(crate) fn of(hist: &Histogram<u64>) -> Self {
        Self {
            count: hist.len(),
            p50_us: hist.value_at_quantile(0.50),
            p90_us: hist.value_at_quantile(0.90),
            p99_us: hist.value_at_quantile(0.99),
            p999_us: hist.value_at_quantile(0.999),
            max_us: hist.max(),
        }
    }
}

/// Clears the progress line, if one was drawn.
pub(crate) fn end_progress() {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        eprint!("\r\x1b[K");
    }
}

/// A TCP connection to `addr` from `source` (any address of 127.0.0.0/8
/// is a source of its own on loopback, with no setup).
pub(crate) async fn connect_from(source: IpAddr, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(addr).await
}

/// A failure to connect, in the words clientcli uses.
pub(crate) fn connect_failure(
    client: usize,
    addr: SocketAddr,
    source: std::io::Error,
) -> LoadError {
    match source.kind() {
        std::io::ErrorKind::ConnectionRefused => LoadError::Failed(format!(
            "nothing is listening on {addr} (connection refused)"
        )),
        _ => LoadError::Io { client, source },
    }
}

impl fmt::Display for Percentiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return f.write_str("no samples");
        }
        write!(
            f,
            "p50 {} µs, p90 {} µs, p99 {} µs, p99.9 {} µs, max {} µs ({} samples)",
            self.p50_us, self.p90_us, self.p99_us, self.p999_us, self.max_us, self.count
        )
    }
}

/// Prints a progress line to stderr every few seconds while `work` runs,
/// when stderr is a terminal (redrawn in place); elsewhere (a log file, a
/// pipe) it prints nothing, so that the report stays clean.
pub(crate) async fn with_progress<T>(
    label: &str,
    counter: &std::sync::atomic::AtomicU64,
    work: impl std::future::Future<Output = T>,
) -> T {
    use std::io::{IsTerminal as _, Write as _};
    if !std::io::stderr().is_terminal() {
        return work.await;
    }
    tokio::pin!(work);
    let started = tokio::time::Instant::now();
    let mut ticks = tokio::time::interval(Duration::from_secs(2));
    ticks.tick().await;
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = ticks.tick() => {
                let done = counter.load(std::sync::atomic::Ordering::Relaxed);
                let secs = started.elapsed().as_secs_f64();
                eprint!("\r{label}: {done} in {secs:.0} s ({:.0}/s)   ", done as f64 / secs);
                let _ = std::io::stderr().flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_have_the_asked_length_and_are_distinct() {
        let a = make_line(3, 17, 32, false);
        assert_eq!(a.len(), 32);
        assert!(a.starts_with("3:17 "));
        assert_ne!(a, make_line(3, 18, 32, false));
        let chat = make_line(0, 0, 1000, true);
        assert!(chat.len() <= 1000 && chat.len() >= 990, "{}", chat.len());
        assert!(!chat.is_ascii());
        assert!(!chat.contains('\n'));
    }

    #[test]
    fn replies_are_checked_against_the_oldest_waiting_line() {
        assert!(check_reply(0, Some((3, "olleh".into())), "olleh".into()).is_ok());
        let err = check_reply(1, Some((3, "olleh".into())), "ohell".into()).expect_err("wrong");
        assert!(
            err.to_string().starts_with("MISMATCH on client 1, line 3"),
            "{err}"
        );
        let err = check_reply(2, None, "olleh".into()).expect_err("unasked");
        assert!(err.to_string().contains("nobody asked for"), "{err}");
    }

    #[test]
    fn replies_are_interpreted_per_protocol() {
        assert_eq!(
            interpret(Protocol::Nea, r#"{"msg_type":"string","payload":"olleh"}"#),
            Received::Reply("olleh".into())
        );
        assert_eq!(
            interpret(Protocol::Nea, r#"{"msg_type":"date","payload":"x"}"#),
            Received::Date("x".into())
        );
        assert_eq!(interpret(Protocol::Nea, "olleh"), Received::Other);
        assert_eq!(
            interpret(Protocol::Baseline, "olleh"),
            Received::Reply("olleh".into())
        );
    }

    #[test]
    fn percentiles_summarise_a_histogram() {
        let mut hist = new_histogram();
        for us in 1..=1000 {
            hist.record(us).expect("in range");
        }
        let p = Percentiles::of(&hist);
        assert_eq!(p.count, 1000);
        assert!((499..=501).contains(&p.p50_us), "{p}");
        assert!((989..=991).contains(&p.p99_us), "{p}");
        assert!(p.to_string().starts_with("p50 "));
    }
}
