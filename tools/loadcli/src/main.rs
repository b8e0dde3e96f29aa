//! `loadcli`: load and measurement tool for nea (as redis ships
//! redis-benchmark). Parses flags, runs one mode of [`load`], prints a
//! summary (or JSON with `--json`).
//!
//! It is a measurement program, not part of the product, so it is a package
//! of its own: nothing of it reaches nea's dependencies or API.
//!
//! Exit status: 0 when the run passed its checks, 1 when it failed (a wrong
//! or misordered reply, a lost line, a late date, growing memory, a
//! connection error), 2 for an invalid command line.

use std::net::IpAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use nea::cli::{
    DurationArg, NotRun, count_within, duration_within, number_within, parse_args,
    raise_open_file_limit, runtime,
};

mod load;

use load::{LoadError, Protocol, Target, baseline, handshakes, hold, rtt, soak};

/// Exit status for an invalid command line.
const EXIT_USAGE: u8 = 2;

/// `-n` clients (and `hold`'s, which may be 0 to measure an idle server).
const CLIENTS: RangeInclusive<usize> = 1..=100_000;
const HELD_CLIENTS: RangeInclusive<usize> = 0..=100_000;
/// `-k` lines in flight, `handshakes -n`, `hold --ramp`.
const CONCURRENCY: RangeInclusive<usize> = 1..=10_000;
/// `-m` lines per client.
const LINES: RangeInclusive<usize> = 1..=100_000_000;
/// `-l` bytes per line: at most what the server accepts at most.
const LINE_BYTES: RangeInclusive<usize> = nea::MAX_LINE_BYTES_RANGE;
/// `-d` how long a run lasts.
const RUN_TIME: RangeInclusive<Duration> =
    Duration::from_millis(1)..=Duration::from_secs(7 * 24 * 3600);
/// `--period`: the server's --date-period.
const PERIOD: RangeInclusive<Duration> = nea::DATE_PERIOD_RANGE;
/// `--max-lateness`.
const LATENESS: RangeInclusive<Duration> = Duration::from_micros(1)..=Duration::from_secs(3600);
/// `--rate`, lines per second per client.
const RATE: RangeInclusive<f64> = 0.001..=100_000.0;
/// `--max-rss-growth`, percent.
const RSS_GROWTH: RangeInclusive<f64> = 0.0..=10_000.0;

/// A value parser for `--server-name`: a name rustls can verify.
fn server_name(text: &str) -> Result<String, String> {
    rustls::pki_types::ServerName::try_from(text)
        .map(|_| text.to_owned())
        .map_err(|_| format!("'{text}' is neither a DNS name nor an IP address"))
}

/// Load, latency, punctuality and memory measurements against a nea server
/// (or the bare baseline server).
#[derive(Debug, Parser)]
#[command(name = "loadcli", version)]
struct Opts {
    #[command(subcommand)]
    mode: Mode,
}

/// Where the server is and how to trust it.
#[derive(Debug, Args)]
struct Server {
    /// Server host name or address (the first address it resolves to is used)
    #[arg(long, value_name = "NAME", default_value = nea::DEFAULT_HOST, value_parser = clap::builder::NonEmptyStringValueParser::new())]
    host: String,
    /// Server port
    #[arg(long, value_name = "N", default_value_t = nea::DEFAULT_PORT)]
    port: u16,
    /// CA certificate that signed the server's, PEM (default: the development CA, as clientcli)
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Name to verify in the server's certificate (default: --host)
    #[arg(long, value_name = "NAME", value_parser = server_name)]
    server_name: Option<String>,
    /// The server is `loadcli baseline-server` (raw reversed lines, no JSON)
    #[arg(long)]
    baseline: bool,
    /// Server process id: read its CPU, memory and context switches (one)
    #[arg(long, value_name = "PID", num_args = 1..)]
    pid: Vec<u32>,
    /// Print the report as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// N clients, K lines in flight each: lines/s, round trips, CPU per line
    Rtt {
        #[command(flatten)]
        server: Server,
        /// Clients (1 to 100000)
        #[arg(short = 'n', value_name = "N", default_value_t = 1, value_parser = count_within(CLIENTS))]
        clients: usize,
        /// Lines in flight per client (1 to 10000)
        #[arg(short = 'k', value_name = "N", default_value_t = 1, value_parser = count_within(CONCURRENCY))]
        in_flight: usize,
        /// Lines per client (1 to 100000000)
        #[arg(short = 'm', value_name = "N", default_value_t = 10_000, value_parser = count_within(LINES))]
        lines: usize,
        /// Bytes per line (1 to 1048576)
        #[arg(short = 'l', value_name = "N", default_value_t = 32, value_parser = count_within(LINE_BYTES))]
        line_bytes: usize,
        /// Mostly-ASCII chat with accents and emoji instead of ASCII
        #[arg(long)]
        unicode: bool,
    },
    /// Full TLS handshakes per second, and server CPU per handshake
    Handshakes {
        #[command(flatten)]
        server: Server,
        /// Handshakes in progress at once (1 to 10000)
        #[arg(short = 'n', value_name = "N", default_value_t = 4, value_parser = count_within(CONCURRENCY))]
        concurrency: usize,
        /// How long to run (1ms to 168h)
        #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(10)), value_parser = duration_within(RUN_TIME))]
        duration: DurationArg,
    },
    /// N silent clients: date lateness, server RSS per client, idle CPU
    Hold {
        #[command(flatten)]
        server: Server,
        /// Clients, 0 to 100000 (0 measures the server with nobody connected)
        #[arg(short = 'n', value_name = "N", default_value_t = 100, value_parser = count_within(HELD_CLIENTS))]
        clients: usize,
        /// How long to hold them (1ms to 168h)
        #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(60)), value_parser = duration_within(RUN_TIME))]
        duration: DurationArg,
        /// The server's --date-period (10ms to 24h)
        #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(1)), value_parser = duration_within(PERIOD))]
        period: DurationArg,
        /// Handshakes in progress at once while connecting. Lateness is
        /// measured from when our side of the handshake completed, so more
        /// than 1 overstates it by the server's handshake backlog (1 to 10000)
        #[arg(long, value_name = "N", default_value_t = 1, value_parser = count_within(CONCURRENCY))]
        ramp: usize,
    },
    /// N clients sending at a steady rate: nothing lost, dates on time, flat memory
    Soak {
        #[command(flatten)]
        server: Server,
        /// Clients (1 to 100000)
        #[arg(short = 'n', value_name = "N", default_value_t = 100, value_parser = count_within(CLIENTS))]
        clients: usize,
        /// Lines per second per client (0.001 to 100000)
        #[arg(long, value_name = "N", default_value_t = 10.0, allow_negative_numbers = true, value_parser = number_within(RATE))]
        rate: f64,
        /// How long to send (1ms to 168h)
        #[arg(short = 'd', long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(600)), value_parser = duration_within(RUN_TIME))]
        duration: DurationArg,
        /// The server's --date-period (10ms to 24h)
        #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_secs(1)), value_parser = duration_within(PERIOD))]
        period: DurationArg,
        /// Fail if a date is later than this (1µs to 1h)
        #[arg(long, value_name = "DURATION", default_value_t = DurationArg(Duration::from_millis(5)), value_parser = duration_within(LATENESS))]
        max_lateness: DurationArg,
        /// Fail if server RSS grows by more than this percentage (0 to 10000)
        #[arg(long, value_name = "PERCENT", default_value_t = 5.0, allow_negative_numbers = true, value_parser = number_within(RSS_GROWTH))]
        max_rss_growth: f64,
    },
    /// The yardstick: a bare tokio-rustls server answering reversed bytes
    BaselineServer {
        /// Address to listen on
        #[arg(long, value_name = "ADDR", default_value_t = IpAddr::from([127, 0, 0, 1]), value_parser = nea::cli::listen_address)]
        bind: IpAddr,
        /// Port to listen on (0 picks one)
        #[arg(long, value_name = "N", default_value_t = 3444)]
        port: u16,
        /// Certificate chain, PEM
        #[arg(long, value_name = "PEM")]
        cert: PathBuf,
        /// Private key, PEM
        #[arg(long, value_name = "PEM")]
        key: PathBuf,
        /// Once listening, write the port to this file
        #[arg(long, value_name = "FILE")]
        port_file: Option<PathBuf>,
    },
}

impl Server {
    /// Resolves the host and loads the trust: where and how to connect.
    async fn target(&self) -> Result<Target, LoadError> {
        let protocol = if self.baseline {
            Protocol::Baseline
        } else {
            Protocol::Nea
        };
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| LoadError::Failed(format!("host {} is unknown", self.host)))?;
        let ca = match &self.ca {
            Some(ca) => ca.clone(),
            None => nea::client::development_ca_file()
                .filter(|file| file.exists())
                .ok_or_else(|| {
                    LoadError::Failed(
                        "no --ca given, and no development CA on this machine: pass the CA \
                         that signed the server's certificate with --ca"
                            .to_owned(),
                    )
                })?,
        };
        let name = self.server_name.as_deref().unwrap_or(&self.host);
        Target::new(addr, name, &ca, protocol)
    }

    /// The one server process to measure, if given.
    fn pid(&self) -> Option<u32> {
        self.pid.first().copied()
    }

    /// Flags that clap cannot check one by one.
    fn check(&self) -> Result<(), NotRun> {
        if self.pid.len() > 1 {
            let pids: Vec<String> = self.pid.iter().map(u32::to_string).collect();
            return Err(NotRun::Usage(format!(
                "--pid takes one process id, not {} ({}): give the server's (see --help)",
                self.pid.len(),
                pids.join(" ")
            )));
        }
        Ok(())
    }
}

impl Mode {
    /// The server a measuring mode is aimed at.
    fn server(&self) -> Option<&Server> {
        match self {
            Self::Rtt { server, .. }
            | Self::Handshakes { server, .. }
            | Self::Hold { server, .. }
            | Self::Soak { server, .. } => Some(server),
            Self::BaselineServer { .. } => None,
        }
    }
}

/// Prints a report as text or JSON.
fn print<R: std::fmt::Display + serde::Serialize>(report: &R, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
    } else {
        print!("{report}");
    }
}

async fn run(mode: Mode) -> Result<(), LoadError> {
    raise_open_file_limit();
    match mode {
        Mode::Rtt {
            server,
            clients,
            in_flight,
            lines,
            line_bytes,
            unicode,
        } => {
            let plan = rtt::Plan {
                clients,
                in_flight,
                lines: lines as u64,
                line_bytes,
                unicode,
                server_pid: server.pid(),
            };
            print(
                &rtt::run(&server.target().await?, &plan).await?,
                server.json,
            );
        }
        Mode::Handshakes {
            server,
            concurrency,
            duration,
        } => {
            let report = handshakes::run(
                &server.target().await?,
                concurrency,
                duration.0,
                server.pid(),
            )
            .await?;
            print(&report, server.json);
        }
        Mode::Hold {
            server,
            clients,
            duration,
            period,
            ramp,
        } => {
            let plan = hold::Plan {
                clients,
                duration: duration.0,
                period: period.0,
                ramp,
                server_pid: server.pid(),
            };
            print(
                &hold::run(&server.target().await?, &plan).await?,
                server.json,
            );
        }
        Mode::Soak {
            server,
            clients,
            rate,
            duration,
            period,
            max_lateness,
            max_rss_growth,
        } => {
            let plan = soak::Plan {
                clients,
                rate,
                duration: duration.0,
                period: period.0,
                line_bytes: 32,
                max_lateness: max_lateness.0,
                max_rss_growth: max_rss_growth / 100.0,
                server_pid: server.pid(),
            };
            print(
                &soak::run(&server.target().await?, &plan).await?,
                server.json,
            );
        }
        Mode::BaselineServer {
            bind,
            port,
            cert,
            key,
            port_file,
        } => {
            let tls = nea::tls::server_config(
                nea::tls::load_certs(&cert)?,
                nea::tls::load_key(&key)?,
                None,
            )?;
            let io = |source| LoadError::Io { client: 0, source };
            let listener = tokio::net::TcpListener::bind((bind, port))
                .await
                .map_err(io)?;
            let local = listener.local_addr().map_err(io)?;
            if let Some(path) = port_file {
                nea::cli::write_port_file(&path, local.port()).map_err(io)?;
            }
            eprintln!("listening on {local}");
            let shutdown = nea::shutdown::termination().map_err(io)?;
            baseline::serve(listener, tls, shutdown).await;
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let opts: Opts = match parse_args(std::env::args_os()) {
        Ok(opts) => opts,
        Err(not_run) => return not_run.exit("loadcli", EXIT_USAGE),
    };
    if let Some(Err(not_run)) = opts.mode.server().map(Server::check) {
        return not_run.exit("loadcli", EXIT_USAGE);
    }
    let runtime = match runtime("loadcli") {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    match runtime.block_on(run(opts.mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("loadcli: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    //! Every flag of every mode, fed arbitrary text: accepted only inside
    //! its documented range, otherwise refused with one sentence (exit
    //! status 2); nothing panics.

    use proptest::prelude::*;

    use super::*;

    /// A mode, one of its flags that take a value, and whether a value is
    /// inside that flag's documented range.
    type Flag = (&'static str, &'static str, fn(&str) -> bool);

    fn flags() -> Vec<Flag> {
        fn count(range: RangeInclusive<usize>, v: &str) -> bool {
            v.parse::<usize>().is_ok_and(|n| range.contains(&n))
        }
        fn duration(range: RangeInclusive<Duration>, v: &str) -> bool {
            nea::cli::parse_duration(v).is_ok_and(|d| range.contains(&d))
        }
        fn number(range: RangeInclusive<f64>, v: &str) -> bool {
            v.parse::<f64>().is_ok_and(|x| range.contains(&x))
        }
        vec![
            ("rtt", "-n", |v| count(CLIENTS, v)),
            ("rtt", "-k", |v| count(CONCURRENCY, v)),
            ("rtt", "-m", |v| count(LINES, v)),
            ("rtt", "-l", |v| count(LINE_BYTES, v)),
            ("rtt", "--port", |v| v.parse::<u16>().is_ok()),
            ("rtt", "--host", |v| !v.is_empty() && !v.starts_with('-')),
            ("rtt", "--pid", |v| v.parse::<u32>().is_ok()),
            ("hold", "--port", |v| v.parse::<u16>().is_ok()),
            ("soak", "--pid", |v| v.parse::<u32>().is_ok()),
            ("handshakes", "--server-name", |v| {
                !v.starts_with('-') && rustls::pki_types::ServerName::try_from(v).is_ok()
            }),
            ("handshakes", "-n", |v| count(CONCURRENCY, v)),
            ("handshakes", "-d", |v| duration(RUN_TIME, v)),
            ("hold", "-n", |v| count(HELD_CLIENTS, v)),
            ("hold", "-d", |v| duration(RUN_TIME, v)),
            ("hold", "--period", |v| duration(PERIOD, v)),
            ("hold", "--ramp", |v| count(CONCURRENCY, v)),
            ("soak", "-n", |v| count(CLIENTS, v)),
            ("soak", "--rate", |v| number(RATE, v)),
            ("soak", "-d", |v| duration(RUN_TIME, v)),
            ("soak", "--period", |v| duration(PERIOD, v)),
            ("soak", "--max-lateness", |v| duration(LATENESS, v)),
            ("soak", "--max-rss-growth", |v| number(RSS_GROWTH, v)),
        ]
    }

    fn flag_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| x.to_string()),
            (0u32..200_000).prop_map(|n| n.to_string()),
            (
                0u32..100_000,
                prop::sample::select(vec!["ms", "s", "m", ""])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
            Just("NaN".to_owned()),
            Just("inf".to_owned()),
            Just("0.0000000001".to_owned()),
            Just(String::new()),
            ".{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn every_flag_value_is_accepted_only_inside_its_range(
            (mode, flag, in_range) in prop::sample::select(flags()),
            value in flag_value(),
        ) {
            let parsed = parse_args::<Opts, _, _>(["loadcli", mode, "--ca", "ca.pem", flag, &value]);
            match parsed {
                Ok(_) => prop_assert!(in_range(&value), "{} {} {:?} was accepted", mode, flag, value),
                Err(NotRun::Usage(sentence)) => {
                    prop_assert!(!in_range(&value), "{} {} {:?} was refused: {}", mode, flag, value, sentence);
                    prop_assert!(!sentence.contains('\n'), "{}", sentence);
                }
                Err(NotRun::Printed | NotRun::PrintedUsage) => prop_assert!(false, "{} {:?} printed help", flag, value),
            }
        }
    }

    #[test]
    fn a_rate_that_is_not_a_positive_number_is_refused() {
        for rate in ["0", "-1", "NaN", "inf", "1e400", "0.0001"] {
            let parsed =
                parse_args::<Opts, _, _>(["loadcli", "soak", "--ca", "ca.pem", "--rate", rate]);
            assert!(
                matches!(parsed, Err(NotRun::Usage(_))),
                "{rate}: {parsed:?}"
            );
        }
    }
}
