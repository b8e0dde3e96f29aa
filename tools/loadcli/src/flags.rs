//! `loadcli`'s flags and their ranges, in a file of their own: the binary
//! parses them, and the docs generator (`tools/docgen`) makes the man page
//! and shell completions from the same definitions.

use std::net::{IpAddr, Ipv4Addr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use nea_cli::{DurationArg, count_within, duration_within, number_within};

/// `-n` clients (and `hold`'s, which may be 0 to measure an idle server).
pub(crate) const CLIENTS: RangeInclusive<usize> = 1..=100_000;
pub(crate) const HELD_CLIENTS: RangeInclusive<usize> = 0..=100_000;
/// `-k` lines in flight, `handshakes -n`, `hold --ramp`.
pub(crate) const CONCURRENCY: RangeInclusive<usize> = 1..=10_000;
/// `-m` lines per client.
pub(crate) const LINES: RangeInclusive<usize> = 1..=100_000_000;
/// `-l` bytes per line: at most what the server accepts at most.
pub(crate) const LINE_BYTES: RangeInclusive<usize> = nea::MAX_LINE_BYTES_RANGE;
/// `-d` how long a run lasts.
pub(crate) const RUN_TIME: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(7 * 24 * 3600);
/// `--period`: the server's --date-period.
pub(crate) const PERIOD: RangeInclusive<Duration> = nea::DATE_PERIOD_RANGE;
/// `--max-lateness`.
pub(crate) const LATENESS: RangeInclusive<Duration> =
    Duration::from_micros(1)..=Duration::from_secs(3600);
/// `--rate`, lines per second per client.
pub(crate) const RATE: RangeInclusive<f64> = 0.001..=100_000.0;
/// `--max-rss-growth`, percent.
pub(crate) const RSS_GROWTH: RangeInclusive<f64> = 0.0..=10_000.0;

/// `storm`'s defaults: a quick run against a server restarted by hand
/// (`scripts/bench/storm.sh` gives its own figures for the 10,000-client storm).
pub(crate) const STORM_CLIENTS: usize = 100;
pub(crate) const STORM_RATE: f64 = 1.0;
pub(crate) const STORM_DURATION: Duration = Duration::from_secs(30);
pub(crate) const STORM_RAMP: usize = 64;
pub(crate) const STORM_PATIENCE: Duration = Duration::from_secs(30);

/// `trickle --addresses`: stalling source addresses.
pub(crate) const ADDRESSES: RangeInclusive<usize> = 1..=1_000_000;
/// `trickle --sockets-per-address` (the ephemeral port range bounds it
/// further, checked when the run starts).
pub(crate) const SOCKETS_PER_ADDRESS: RangeInclusive<usize> = 1..=65_535;
/// `trickle --byte-interval`.
pub(crate) const BYTE_INTERVAL: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(3600);

/// `trickle`'s defaults: 500 addresses × 2 sockets, a byte a second each;
/// 20 handshakes measured a second apart, each given a minute, so that a
/// server that makes newcomers wait tens of seconds is measured rather
/// than only counted as failing.
pub(crate) const TRICKLE_ADDRESSES: usize = 500;
pub(crate) const TRICKLE_SOCKETS_PER_ADDRESS: usize = 2;
pub(crate) const TRICKLE_BYTE_INTERVAL: Duration = Duration::from_secs(1);
/// Well away from 127.0.0.1 (a server's usual address), and from
/// 127.0.0.2 and 127.0.0.3 (flood's addresses and the prober's).
pub(crate) const TRICKLE_FIRST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 1, 0, 1);
pub(crate) const TRICKLE_PROBER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
pub(crate) const TRICKLE_SAMPLES: usize = 20;
pub(crate) const TRICKLE_SAMPLE_INTERVAL: Duration = Duration::from_secs(1);
pub(crate) const TRICKLE_SAMPLE_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const TRICKLE_SETTLE: Duration = Duration::from_secs(2);

/// A value parser for an address of 127.0.0.0/8 (IPv4 loopback: every one
/// of them is local on Linux, with no setup).
pub(crate) fn loopback_v4(text: &str) -> Result<Ipv4Addr, String> {
    match text.parse::<Ipv4Addr>() {
        Ok(address) if address.is_loopback() => Ok(address),
        _ => Err(format!("'{text}' is not an IPv4 address of 127.0.0.0/8")),
    }
}

/// A value parser for `--server-name`: a name rustls can verify.
pub(crate) fn server_name(text: &str) -> Result<String, String> {
    rustls::pki_types::ServerName::try_from(text)
        .map(|_| text.to_owned())
        .map_err(|_| format!("'{text}' is neither a DNS name nor an IP address"))
}

/// Load, latency, punctuality and memory measurements against a nea server
/// (or the bare baseline server).
#[derive(Debug, Parser)]
#[command(name = "loadcli", version)]
pub(crate) struct Opts {
    #[command(subcommand)]
    pub(crate) mode: Mode,
}

/// Where the server is and how to trust it.
#[derive(Debug, Args)]
pub(crate) struct Server {
    /// Server host name or address (the first address it resolves to is used)
    #[arg(long, value_name = "NAME", default_value = nea::DEFAULT_HOST, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    pub(crate) host: String,
    /// Server port
    #[arg(long, value_name = "N", default_value_t = nea::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// CA certificate that signed the server's, PEM (default: the development CA, as clientcli)
    #[arg(long, value_name = "PEM")]
    pub(crate) ca: Option<PathBuf>,
    /// Name to verify in the server's certificate (default: --host)
    #[arg(long, value_name = "NAME", value_parser = server_name)]
    pub(crate) server_name: Option<String>,
    /// The server is `loadcli baseline-server` (raw reversed lines, no JSON)
    #[arg(long)]
    pub(crate) baseline: bool,
    /// Server process id: read its CPU, memory and context switches (one)
    #[arg(long, value_name = "PID", num_args = 1..)]
    pub(crate) pid: Vec<u32>,
    /// Print the report as JSON
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Mode {
    /// N clients, K lines in flight each: lines/s, round trips, CPU per line
    Rtt(RttFlags),
    /// Full TLS handshakes per second, and server CPU per handshake
    Handshakes(HandshakesFlags),
    /// Stalled handshakes from one address; handshake times from another
    Flood(FloodFlags),
    /// Real ClientHellos sent a byte at a time from many addresses, never
    /// completed; a fresh address's handshake times meanwhile
    Trickle(TrickleFlags),
    /// N clients that send and never read: the kernel's queues for them, server memory
    Unread(UnreadFlags),
    /// N silent clients: date lateness, server RSS per client, idle CPU
    Hold(HoldFlags),
    /// N clients sending at a steady rate: nothing lost, dates on time, flat memory
    Soak(SoakFlags),
    /// N clients reconnecting as clientcli --reconnect does, through server restarts:
    /// every line answered exactly once, time to recover, handshake rate
    Storm(StormFlags),
    /// The yardstick: a bare tokio-rustls server answering reversed bytes
    BaselineServer(BaselineServerFlags),
}

/// `loadcli rtt`'s flags.
#[derive(Debug, Args)]
pub(crate) struct RttFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Clients (1 to 100000)
    #[arg(short = 'n', value_name = "N", default_value_t = 1, value_parser = count_within(CLIENTS))]
    pub(crate) clients: usize,
    /// Lines in flight per client (1 to 10000)
    #[arg(short = 'k', value_name = "N", default_value_t = 1, value_parser = count_within(CONCURRENCY))]
    pub(crate) in_flight: usize,
    /// Lines per client (1 to 100000000)
    #[arg(short = 'm', value_name = "N", default_value_t = 10_000, value_parser = count_within(LINES))]
    pub(crate) lines: usize,
    /// Bytes per line (1 to 1048576)
    #[arg(short = 'l', value_name = "N", default_value_t = 32, value_parser = count_within(LINE_BYTES))]
    pub(crate) line_bytes: usize,
    /// Mostly-ASCII chat with accents and emoji instead of ASCII
    #[arg(long)]
    pub(crate) unicode: bool,
}

/// `loadcli handshakes`'s flags.
#[derive(Debug, Args)]
pub(crate) struct HandshakesFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Handshakes in progress at once (1 to 10000)
    #[arg(short = 'n', value_name = "N", default_value_t = 4, value_parser = count_within(CONCURRENCY))]
    pub(crate) concurrency: usize,
    /// How long to run (1ms to 168h)
    #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(10)), value_parser = duration_within(RUN_TIME))]
    pub(crate) duration: DurationArg,
}

/// `loadcli flood`'s flags.
#[derive(Debug, Args)]
pub(crate) struct FloodFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Sockets that send one byte of a ClientHello and stall (0 to 100000)
    #[arg(long, value_name = "N", default_value_t = 600, value_parser = count_within(HELD_CLIENTS))]
    pub(crate) stalled: usize,
    /// Source address of the stalled sockets (any of 127.0.0.0/8 is local)
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::from([127, 0, 0, 2]))]
    pub(crate) attacker: IpAddr,
    /// Handshakes to measure, one at a time (1 to 100000)
    #[arg(long, value_name = "N", default_value_t = 50, value_parser = count_within(CLIENTS))]
    pub(crate) probes: usize,
    /// Source address of the measured handshakes
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::from([127, 0, 0, 3]))]
    pub(crate) prober: IpAddr,
    /// Time for the server to take in the stalled sockets first (1ms to 168h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(1)), value_parser = duration_within(RUN_TIME))]
    pub(crate) settle: DurationArg,
}

/// `loadcli unread`'s flags.
#[derive(Debug, Args)]
pub(crate) struct UnreadFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Clients (1 to 100000)
    #[arg(short = 'n', value_name = "N", default_value_t = 50, value_parser = count_within(CLIENTS))]
    pub(crate) clients: usize,
    /// Lines each client sends (1 to 100000000)
    #[arg(short = 'm', value_name = "N", default_value_t = 30, value_parser = count_within(LINES))]
    pub(crate) lines: usize,
    /// Bytes per line, all control characters (1 to 1048576)
    #[arg(short = 'l', value_name = "N", default_value_t = 65_536, value_parser = count_within(LINE_BYTES))]
    pub(crate) line_bytes: usize,
    /// Time for the queues to fill before they are read (1ms to 168h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(3)), value_parser = duration_within(RUN_TIME))]
    pub(crate) settle: DurationArg,
}

/// `loadcli hold`'s flags.
#[derive(Debug, Args)]
pub(crate) struct HoldFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Clients, 0 to 100000 (0 measures the server with nobody connected)
    #[arg(short = 'n', value_name = "N", default_value_t = 100, value_parser = count_within(HELD_CLIENTS))]
    pub(crate) clients: usize,
    /// How long to hold them (1ms to 168h)
    #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(60)), value_parser = duration_within(RUN_TIME))]
    pub(crate) duration: DurationArg,
    /// The server's --date-period (10ms to 24h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(1)), value_parser = duration_within(PERIOD))]
    pub(crate) period: DurationArg,
    /// Handshakes in progress at once while connecting. Lateness is
    /// measured from when our side of the handshake completed, so more
    /// than 1 overstates it by the server's handshake backlog (1 to 10000)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = count_within(CONCURRENCY))]
    pub(crate) ramp: usize,
}

/// `loadcli soak`'s flags.
#[derive(Debug, Args)]
pub(crate) struct SoakFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Clients (1 to 100000)
    #[arg(short = 'n', value_name = "N", default_value_t = 100, value_parser = count_within(CLIENTS))]
    pub(crate) clients: usize,
    /// Lines per second per client (0.001 to 100000)
    #[arg(long, value_name = "N", default_value_t = 10.0, allow_negative_numbers = true, value_parser = number_within(RATE))]
    pub(crate) rate: f64,
    /// How long to send (1ms to 168h)
    #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(600)), value_parser = duration_within(RUN_TIME))]
    pub(crate) duration: DurationArg,
    /// The server's --date-period (10ms to 24h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(1)), value_parser = duration_within(PERIOD))]
    pub(crate) period: DurationArg,
    /// Fail if a date is later than this (1µs to 1h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_millis(5)), value_parser = duration_within(LATENESS))]
    pub(crate) max_lateness: DurationArg,
    /// Fail if server RSS grows by more than this percentage (0 to 10000)
    #[arg(long, value_name = "PERCENT", default_value_t = 5.0, allow_negative_numbers = true, value_parser = number_within(RSS_GROWTH))]
    pub(crate) max_rss_growth: f64,
}

/// `loadcli storm`'s flags.
#[derive(Debug, Args)]
pub(crate) struct StormFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Clients (1 to 100000)
    #[arg(short = 'n', value_name = "N", default_value_t = STORM_CLIENTS, value_parser = count_within(CLIENTS))]
    pub(crate) clients: usize,
    /// Lines per second per client (0.001 to 100000)
    #[arg(long, value_name = "N", default_value_t = STORM_RATE, allow_negative_numbers = true, value_parser = number_within(RATE))]
    pub(crate) rate: f64,
    /// How long lines come due (1ms to 168h); restart the server meanwhile
    #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(STORM_DURATION), value_parser = duration_within(RUN_TIME))]
    pub(crate) duration: DurationArg,
    /// Handshakes in progress at once while the clients first connect (1 to 10000)
    #[arg(long, value_name = "N", default_value_t = STORM_RAMP, value_parser = count_within(CONCURRENCY))]
    pub(crate) ramp: usize,
    /// After the last line is due, how long to wait for the last answers
    /// and reconnections before what is missing counts as lost (1ms to 168h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(STORM_PATIENCE), value_parser = duration_within(RUN_TIME))]
    pub(crate) patience: DurationArg,
    /// Write every 100 ms, as CSV: seconds, clients connected, lines due,
    /// lines answered, handshakes completed in the interval
    #[arg(long, value_name = "FILE")]
    pub(crate) series: Option<PathBuf>,
    /// Fail if a disconnection wave takes longer than this, from its first
    /// loss to every pending line answered (1ms to 168h)
    #[arg(long, value_name = "DURATION", value_parser = duration_within(RUN_TIME))]
    pub(crate) max_recovery: Option<DurationArg>,
    /// Do not re-send unanswered lines after reconnecting: a broken client,
    /// to check that the run then fails (it must report lines lost)
    #[arg(long)]
    pub(crate) no_resend: bool,
}

/// `loadcli baseline-server`'s flags.
#[derive(Debug, Args)]
pub(crate) struct BaselineServerFlags {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value_t = IpAddr::from([127, 0, 0, 1]), value_parser = nea_cli::listen_address)]
    pub(crate) bind: IpAddr,
    /// Port to listen on (0 picks one)
    #[arg(long, value_name = "N", default_value_t = 3444)]
    pub(crate) port: u16,
    /// Certificate chain, PEM
    #[arg(long, value_name = "PEM")]
    pub(crate) cert: PathBuf,
    /// Private key, PEM
    #[arg(long, value_name = "PEM")]
    pub(crate) key: PathBuf,
    /// Once listening, write the port to this file
    #[arg(long, value_name = "FILE")]
    pub(crate) port_file: Option<PathBuf>,
}

/// `loadcli trickle`'s flags.
#[derive(Debug, Args)]
pub(crate) struct TrickleFlags {
    #[command(flatten)]
    pub(crate) server: Server,
    /// Stalling source addresses, one after the other from --from (1 to 1000000)
    #[arg(long, value_name = "N", default_value_t = TRICKLE_ADDRESSES, value_parser = count_within(ADDRESSES))]
    pub(crate) addresses: usize,
    /// Stalled sockets from each address (1 to 65535, and at most the
    /// ephemeral port range)
    #[arg(long, value_name = "N", default_value_t = TRICKLE_SOCKETS_PER_ADDRESS, value_parser = count_within(SOCKETS_PER_ADDRESS))]
    pub(crate) sockets_per_address: usize,
    /// Time between two bytes of a stalled socket's ClientHello (1ms to 1h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(TRICKLE_BYTE_INTERVAL), value_parser = duration_within(BYTE_INTERVAL))]
    pub(crate) byte_interval: DurationArg,
    /// The first stalling address (of 127.0.0.0/8)
    #[arg(long, value_name = "ADDR", default_value_t = TRICKLE_FIRST_ADDRESS, value_parser = loopback_v4)]
    pub(crate) from: Ipv4Addr,
    /// Source address of the measured handshakes (of 127.0.0.0/8, outside the stalling ones)
    #[arg(long, value_name = "ADDR", default_value_t = TRICKLE_PROBER, value_parser = loopback_v4)]
    pub(crate) prober: Ipv4Addr,
    /// Handshakes to measure, one at a time (1 to 100000)
    #[arg(long, value_name = "N", default_value_t = TRICKLE_SAMPLES, value_parser = count_within(CLIENTS))]
    pub(crate) samples: usize,
    /// Time from the start of one measured handshake to the next, at least (1ms to 168h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(TRICKLE_SAMPLE_INTERVAL), value_parser = duration_within(RUN_TIME))]
    pub(crate) sample_interval: DurationArg,
    /// A measured handshake not done after this counts as timed out (1ms to 168h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(TRICKLE_SAMPLE_TIMEOUT), value_parser = duration_within(RUN_TIME))]
    pub(crate) sample_timeout: DurationArg,
    /// Time between every stalled socket open and the first measured handshake (1ms to 168h)
    #[arg(long, value_name = "DURATION", default_value_t = DurationArg(TRICKLE_SETTLE), value_parser = duration_within(RUN_TIME))]
    pub(crate) settle: DurationArg,
    /// Fail if a measured handshake takes longer than this (default: only
    /// a timeout or a failure fails the run) (1ms to 168h)
    #[arg(long, value_name = "DURATION", value_parser = duration_within(RUN_TIME))]
    pub(crate) max_handshake_time: Option<DurationArg>,
}
