//! `servercli`: the nea server. Parses flags into validated settings, sets
//! up logging and runs the library's server until SIGINT or SIGTERM.
//!
//! Exit status: 0 after a clean shutdown (or `--help`), 1 when the server
//! cannot start (certificates, address in use), 2 for invalid flags.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nea::cli::{
    init_logging, parse_args, parse_duration, parse_positive, raise_open_file_limit, runtime,
};
use nea::server::{Config, Settings};

/// TLS date-and-reverse server: sends each client the date every period and
/// answers every line with the line reversed.
#[derive(Debug, Parser)]
#[command(name = "servercli", version)]
struct Opts {
    /// TCP port to listen on (0 picks a free one)
    #[arg(long, env = "NEA_PORT", default_value_t = nea::DEFAULT_PORT)]
    port: u16,
    /// Address to listen on (use :: for IPv6 and IPv4)
    #[arg(long, env = "NEA_BIND", default_value = "0.0.0.0")]
    bind: IpAddr,
    /// Server certificate chain, PEM (default: the development certificate)
    #[arg(long, env = "NEA_CERT", value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key for --cert, PEM
    #[arg(long, env = "NEA_KEY", value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// CA certificates, PEM; clients must present a certificate it signed
    #[arg(long, env = "NEA_CLIENT_CA", value_name = "PEM")]
    client_ca: Option<PathBuf>,
    /// Most clients connected at once
    #[arg(long, env = "NEA_MAX_CLIENTS", default_value = "100", value_parser = parse_positive)]
    max_clients: usize,
    /// Time between two dates sent to a client (e.g. 10s, 250ms, 1.5)
    #[arg(long, env = "NEA_DATE_PERIOD", default_value = "10s", value_parser = parse_duration)]
    date_period: Duration,
    /// Deadline for a client's TLS handshake
    #[arg(long, env = "NEA_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    handshake_timeout: Duration,
    /// Most TLS handshakes in progress at once
    #[arg(long, env = "NEA_MAX_HANDSHAKES", default_value = "128", value_parser = parse_positive)]
    max_handshakes: usize,
    /// Longest line accepted, in bytes
    #[arg(long, env = "NEA_MAX_LINE_BYTES", default_value = "65536", value_parser = parse_positive)]
    max_line_bytes: usize,
    /// Drop a client whose writes stall this long (it is not reading)
    #[arg(long, env = "NEA_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    write_timeout: Duration,
    /// Once listening, write the port to this file (useful with --port 0)
    #[arg(long, env = "NEA_PORT_FILE", value_name = "FILE")]
    port_file: Option<PathBuf>,
    /// Debug logs, including a line for each client as it joins (RUST_LOG overrides)
    #[arg(long, short, env = "NEA_VERBOSE")]
    verbose: bool,
}

impl Opts {
    fn into_settings(self) -> Settings {
        Settings {
            listen: SocketAddr::new(self.bind, self.port),
            identity: self.cert.zip(self.key),
            client_ca: self.client_ca,
            port_file: self.port_file,
            config: Config {
                max_clients: self.max_clients,
                date_period: self.date_period,
                handshake_timeout: self.handshake_timeout,
                max_handshakes: self.max_handshakes,
                max_line_bytes: self.max_line_bytes,
                write_timeout: self.write_timeout,
                ..Config::default()
            },
        }
    }
}

fn main() -> ExitCode {
    let opts: Opts = match parse_args("servercli", 2) {
        Ok(opts) => opts,
        Err(status) => return status,
    };
    init_logging(if opts.verbose {
        "warn,nea=debug"
    } else {
        "warn,nea=info"
    });
    let settings = opts.into_settings();
    // One file descriptor per client: the soft limit (often 1024) would cap
    // --max-clients far below what the administrator's hard limit allows.
    raise_open_file_limit();
    let runtime = match runtime("servercli") {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    let result = runtime.block_on(async {
        let shutdown =
            nea::shutdown::termination().map_err(|source| nea::error::ServerError::Io {
                phase: "installing signal handlers",
                source,
            })?;
        nea::server::start(settings, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("servercli: {err}");
            ExitCode::FAILURE
        }
    }
}
