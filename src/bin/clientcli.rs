//! `clientcli`: the nea client. Parses flags into validated options, picks
//! the interactive or the pipe front end, and maps the outcome to an exit
//! status (BSD sysexits; the README lists them).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use nea::cli::{init_logging, parse_args, runtime};
use nea::client::session::Outcome;
use nea::client::{Options, pipe, term, tls_config};

/// Exit status for an invalid command line (EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// Exit status when SIGINT stops a non-interactive session (128 + 2).
const EXIT_INTERRUPTED: u8 = 130;

/// TLS client for nea: shows the server's dates and sends each line typed
/// (or piped in), printing its reversal.
#[derive(Debug, Parser)]
#[command(name = "clientcli", version)]
struct Opts {
    /// Server host name or address
    #[arg(long, env = "NEA_HOST", default_value = "localhost")]
    host: String,
    /// Server TCP port
    #[arg(long, env = "NEA_PORT", default_value_t = nea::DEFAULT_PORT)]
    port: u16,
    /// Also trust this CA certificate, PEM (may repeat)
    #[arg(long, env = "NEA_CA", value_name = "PEM")]
    ca: Vec<PathBuf>,
    /// Client certificate chain for mutual TLS, PEM
    #[arg(long, env = "NEA_CERT", value_name = "PEM", requires = "key")]
    cert: Option<PathBuf>,
    /// Private key for --cert, PEM
    #[arg(long, env = "NEA_KEY", value_name = "PEM", requires = "cert")]
    key: Option<PathBuf>,
    /// Name to verify in the server certificate (default: --host)
    #[arg(long, env = "NEA_SERVER_NAME", value_name = "NAME")]
    server_name: Option<String>,
    /// Print the server's frames as NDJSON, one per line, as received
    #[arg(long, env = "NEA_JSON")]
    json: bool,
    /// After a lost connection or a server shutdown, reconnect and re-send unanswered lines
    #[arg(long, env = "NEA_RECONNECT")]
    reconnect: bool,
    /// Log connection details to stderr (RUST_LOG overrides)
    #[arg(long, short, env = "NEA_VERBOSE")]
    verbose: bool,
}

impl Opts {
    fn into_options(self) -> Options {
        let mut options = Options::new(self.host, self.port);
        options.server_name = self.server_name;
        options.extra_cas = self.ca;
        options.identity = self.cert.zip(self.key);
        options.json = self.json;
        options.reconnect = self.reconnect;
        options
    }
}

fn main() -> ExitCode {
    let opts: Opts = match parse_args("clientcli", EXIT_USAGE) {
        Ok(opts) => opts,
        Err(status) => return status,
    };
    init_logging(if opts.verbose {
        "warn,nea=debug"
    } else {
        "error"
    });
    let options = opts.into_options();
    let interactive = term::available();
    let runtime = match runtime("clientcli") {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    let result = runtime.block_on(async {
        let config = tls_config(&options)?;
        if interactive {
            term::run(options, config).await
        } else {
            pipe::run(options, config).await
        }
    });
    // Everything is written by now. A read of standard input may still be
    // blocked in tokio's thread pool (the server went away first); do not
    // wait for it.
    runtime.shutdown_background();
    match result {
        Ok(Outcome::Finished) => ExitCode::SUCCESS,
        Ok(Outcome::Aborted) if interactive => ExitCode::SUCCESS,
        Ok(Outcome::Aborted) => ExitCode::from(EXIT_INTERRUPTED),
        Err(err) => {
            eprintln!("clientcli: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}
