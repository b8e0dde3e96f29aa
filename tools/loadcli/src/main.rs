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

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use nea::cli::{parse_args, parse_duration, parse_positive, raise_open_file_limit, runtime};

mod load;

use load::{LoadError, Protocol, Target, baseline, handshakes, hold, rtt, soak};

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
    /// Server address
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Server port
    #[arg(long, default_value_t = nea::DEFAULT_PORT)]
    port: u16,
    /// CA certificate that signed the server's, PEM
    #[arg(long, value_name = "PEM")]
    ca: PathBuf,
    /// Name to verify in the server's certificate
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// The server is `loadcli baseline-server` (raw reversed lines, no JSON)
    #[arg(long)]
    baseline: bool,
    /// Server process id: read its CPU, memory and context switches
    #[arg(long)]
    pid: Option<u32>,
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
        /// Clients
        #[arg(short = 'n', default_value = "1", value_parser = parse_positive)]
        clients: usize,
        /// Lines in flight per client
        #[arg(short = 'k', default_value = "1", value_parser = parse_positive)]
        in_flight: usize,
        /// Lines per client
        #[arg(short = 'm', default_value = "10000", value_parser = parse_positive)]
        lines: usize,
        /// Bytes per line
        #[arg(short = 'l', default_value = "32", value_parser = parse_positive)]
        line_bytes: usize,
        /// Mostly-ASCII chat with accents and emoji instead of ASCII
        #[arg(long)]
        unicode: bool,
    },
    /// Full TLS handshakes per second, and server CPU per handshake
    Handshakes {
        #[command(flatten)]
        server: Server,
        /// Handshakes in progress at once
        #[arg(short = 'n', default_value = "4", value_parser = parse_positive)]
        concurrency: usize,
        /// How long to run
        #[arg(short = 'd', long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
    },
    /// N silent clients: date lateness, server RSS per client, idle CPU
    Hold {
        #[command(flatten)]
        server: Server,
        /// Clients (0 measures the server with nobody connected)
        #[arg(short = 'n', default_value = "100")]
        clients: usize,
        /// How long to hold them
        #[arg(short = 'd', long, default_value = "60s", value_parser = parse_duration)]
        duration: Duration,
        /// The server's --date-period
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        period: Duration,
        /// Handshakes in progress at once while connecting. Lateness is
        /// measured from when our side of the handshake completed, so more
        /// than 1 overstates it by the server's handshake backlog
        #[arg(long, default_value = "1", value_parser = parse_positive)]
        ramp: usize,
    },
    /// N clients sending at a steady rate: nothing lost, dates on time, flat memory
    Soak {
        #[command(flatten)]
        server: Server,
        /// Clients
        #[arg(short = 'n', default_value = "100", value_parser = parse_positive)]
        clients: usize,
        /// Lines per second per client
        #[arg(long, default_value = "10")]
        rate: f64,
        /// How long to send
        #[arg(short = 'd', long, default_value = "600s", value_parser = parse_duration)]
        duration: Duration,
        /// The server's --date-period
        #[arg(long, default_value = "1s", value_parser = parse_duration)]
        period: Duration,
        /// Fail if a date is later than this
        #[arg(long, default_value = "5ms", value_parser = parse_duration)]
        max_lateness: Duration,
        /// Fail if server RSS grows by more than this percentage
        #[arg(long, default_value = "5")]
        max_rss_growth: f64,
    },
    /// The yardstick: a bare tokio-rustls server answering reversed bytes
    BaselineServer {
        /// Address to listen on
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// Port to listen on (0 picks one)
        #[arg(long, default_value = "3444")]
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
    fn target(&self) -> Result<Target, LoadError> {
        let protocol = if self.baseline {
            Protocol::Baseline
        } else {
            Protocol::Nea
        };
        Target::new(
            SocketAddr::new(self.host, self.port),
            &self.server_name,
            &self.ca,
            protocol,
        )
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
                server_pid: server.pid,
            };
            print(&rtt::run(&server.target()?, &plan).await?, server.json);
        }
        Mode::Handshakes {
            server,
            concurrency,
            duration,
        } => {
            let report =
                handshakes::run(&server.target()?, concurrency, duration, server.pid).await?;
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
                duration,
                period,
                ramp,
                server_pid: server.pid,
            };
            print(&hold::run(&server.target()?, &plan).await?, server.json);
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
                duration,
                period,
                line_bytes: 32,
                max_lateness,
                max_rss_growth: max_rss_growth / 100.0,
                server_pid: server.pid,
            };
            print(&soak::run(&server.target()?, &plan).await?, server.json);
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
    let opts: Opts = match parse_args("loadcli", 2) {
        Ok(opts) => opts,
        Err(status) => return status,
    };
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
