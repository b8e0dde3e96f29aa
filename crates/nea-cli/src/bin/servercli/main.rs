//! `servercli`: the nea server. Parses flags into validated settings, sets
//! up logging and the signals, and runs the library's server (the same
//! entry point any embedder uses) until SIGINT or SIGTERM.
//!
//! Exit status: 0 after a clean shutdown (or `--help`), 1 when the server
//! cannot start (certificates, address in use), 2 for invalid flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use nea::error::ServerError;
use nea::server::{Config, Identity, Server, TrustedProxies};
use nea_cli::{
    LogFormat, NotRun, ServerLogging, init_server_logging, parse_args_and_matches,
    raise_open_file_limit, runtime,
};

/// Exit status for an invalid command line.
const EXIT_USAGE: u8 = 2;

/// The target of this program's own log lines: under `nea`, so that one
/// filter (`RUST_LOG=nea=debug`, the default `nea=info`) covers the
/// library's lines and the program's alike.
const LOG_TARGET: &str = "nea::servercli";

mod credentials;
mod flags;
mod service_manager;
mod signals;

use flags::Opts;

/// What the command line asks the server to be.
#[derive(Debug)]
struct Settings {
    /// Address and port to listen on, unless a socket is passed.
    listen: SocketAddr,
    /// The listening flags given (on the command line or in the
    /// environment), which a passed socket makes moot.
    listen_named: Vec<&'static str>,
    /// Certificate chain and key files (from the flags, or the service
    /// manager's credentials); `None` uses the development CA.
    identity: Option<(PathBuf, PathBuf)>,
    /// CA file whose certificates clients must present (mutual TLS).
    client_ca: Option<PathBuf>,
    /// File to write the listening port to once bound.
    port_file: Option<PathBuf>,
    /// Where to serve `/metrics` and `/healthz`.
    admin: Option<SocketAddr>,
    /// Limits and periods.
    config: Config,
}

/// How the server logs: verbosely or not, as text or JSON.
#[derive(Debug, Clone, Copy)]
struct Logs {
    verbose: bool,
    format: LogFormat,
}

impl Opts {
    /// The validated settings, or the sentence that says which flag is out
    /// of its range.
    fn into_settings(self, listen_named: Vec<&'static str>) -> Result<Settings, NotRun> {
        let config = Config::builder()
            .max_clients(self.max_clients)
            .max_clients_per_address(self.max_clients_per_address)
            .date_period(self.date_period.0)
            .handshake_timeout(self.handshake_timeout.0)
            .max_handshakes(self.max_handshakes)
            .max_line_bytes(self.max_line_bytes)
            .write_timeout(self.write_timeout.0)
            .dead_peer_timeout(self.dead_peer_timeout.0)
            .proxy_protocol_from(TrustedProxies::new(self.proxy_protocol_from))
            .build()?;
        // What no flag names, a service manager may pass as credentials.
        let passed = credentials::Credentials::from_env();
        let (passed_identity, passed_client_ca) = passed
            .map(|passed| (passed.identity, passed.client_ca))
            .unwrap_or_default();
        Ok(Settings {
            listen: SocketAddr::new(self.bind, self.port),
            listen_named,
            identity: self.cert.zip(self.key).or(passed_identity),
            client_ca: self.client_ca.or(passed_client_ca),
            port_file: self.port_file,
            admin: self.admin_addr,
            config,
        })
    }
}

/// The settings a command line asks for, and how to log.
fn configure<I, A>(args: I) -> Result<(Settings, Logs), NotRun>
where
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let (opts, matches): (Opts, _) = parse_args_and_matches(args)?;
    let logs = Logs {
        verbose: opts.verbose,
        format: opts.log_format,
    };
    let listen_named = [("port", "--port"), ("bind", "--bind")]
        .into_iter()
        .filter(|(id, _)| {
            matches
                .value_source(id)
                .is_some_and(|source| source != clap::parser::ValueSource::DefaultValue)
        })
        .map(|(_, flag)| flag)
        .collect();
    Ok((opts.into_settings(listen_named)?, logs))
}

fn main() -> ExitCode {
    let (settings, logs) = match configure(std::env::args_os()) {
        Ok(configured) => configured,
        Err(not_run) => return not_run.exit("servercli", EXIT_USAGE),
    };
    // Before any thread starts: taking the socket clears LISTEN_FDS, so
    // that children do not take it too.
    let passed = match listenfd::ListenFd::from_env().take_tcp_listener(0) {
        Ok(passed) => passed,
        Err(err) => {
            eprintln!("servercli: the socket passed in LISTEN_FDS cannot be used: {err}");
            return ExitCode::FAILURE;
        }
    };
    let logging = init_server_logging(
        if logs.verbose {
            "warn,nea=debug"
        } else {
            "warn,nea=info"
        },
        logs.format,
    );
    // One file descriptor per client: the soft limit (often 1024) would cap
    // --max-clients far below what the administrator's hard limit allows.
    raise_open_file_limit();
    let runtime = match runtime("servercli") {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    if passed.is_some() {
        warn_if_moot(&settings.listen_named);
    }
    let result = runtime.block_on(serve(settings, passed, &logging));
    // Every line queued is written before the last words below.
    let dropped = logging.dropped_lines();
    let suppressed = logging.suppressed_lines();
    drop(logging);
    if dropped > 0 {
        eprintln!(
            "servercli: {dropped} log lines were dropped: standard error took them too slowly"
        );
    }
    if suppressed > 0 {
        eprintln!(
            "servercli: {suppressed} log lines of its libraries were held back: \
             each logs one line a second at most"
        );
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("servercli: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Says, when a service manager passed the listening socket, that the
/// listening flags given (`named`) are not used: a socket unit that listens
/// elsewhere than `--port` says silently overrides it otherwise.
fn warn_if_moot(named: &[&str]) {
    if !named.is_empty() {
        tracing::warn!(
            target: LOG_TARGET,
            flags = named.join(" ").as_str(),
            "serving the socket the service manager passed; these flags are not used"
        );
    }
}

/// Builds the server the settings describe, tells whoever started it where
/// it listens, and serves until a signal stops it.
async fn serve(
    settings: Settings,
    passed: Option<std::net::TcpListener>,
    logging: &ServerLogging,
) -> Result<(), ServerError> {
    let signals = signals::install().map_err(|source| ServerError::Io {
        phase: "installing signal handlers",
        source,
    })?;
    let service_manager = service_manager::ServiceManager::from_env(settings.config.max_clients());
    let notifying = service_manager.is_some();
    let server = builder(settings.identity, passed.ok_or(settings.listen))?
        .config(settings.config)
        .reload_requests(signals.reload_requests)
        .log_drops(logging.drops());
    let server = match settings.client_ca {
        Some(ca) => server.client_ca(ca),
        None => server,
    };
    let server = match settings.admin {
        Some(addr) => server.admin(addr),
        None => server,
    };
    let server = match service_manager {
        Some(manager) => server.observer(Arc::new(manager)),
        None => server,
    };
    let server = server.bind().await?;
    if let Some(path) = &settings.port_file {
        nea_cli::write_port_file(path, server.local_addr().port()).map_err(|source| {
            ServerError::Io {
                phase: "writing the port file",
                source,
            }
        })?;
    }
    let status = notifying.then(|| tokio::spawn(service_manager::report_clients(server.clients())));
    server.run(signals.stop).await;
    if let Some(status) = status {
        status.abort();
    }
    Ok(())
}

/// A server builder for the identity the flags name (the development CA's
/// when none), listening where they say or on the passed socket.
fn builder(
    identity: Option<(PathBuf, PathBuf)>,
    listen: Result<std::net::TcpListener, SocketAddr>,
) -> Result<nea::server::ServerBuilder, ServerError> {
    let identity = match identity {
        Some((cert, key)) => Identity::Files { cert, key },
        None => Identity::Development {
            dir: nea::devca::default_dir().ok_or(nea::error::DevCaError::NoHome)?,
        },
    };
    let builder = Server::builder(identity);
    Ok(match listen {
        Ok(passed) => builder.listener(passed),
        Err(addr) => builder.listen_on(addr),
    })
}

#[cfg(test)]
mod tests {
    //! Every flag, fed arbitrary text: each value is either accepted into
    //! settings inside their ranges, or refused with one sentence (exit
    //! status 2), and nothing panics. The real binary runs at the bounds in
    //! the integration tests (`tests/it/cli.rs`).

    use std::net::IpAddr;

    use clap::builder::BoolishValueParser;
    use proptest::prelude::*;

    use super::*;

    /// Values a person or a script might give a flag: huge, zero,
    /// negative, tiny fractions, units, non-numbers, any text.
    fn flag_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| x.to_string()),
            (0u32..2_000_000).prop_map(|n| n.to_string()),
            (
                0u32..100_000,
                prop::sample::select(vec!["ns", "ms", "s", "m", "h", ""])
            )
                .prop_map(|(n, unit)| format!("{n}{unit}")),
            Just("18446744073709551616".to_owned()),
            Just("0.0000000001".to_owned()),
            Just("1e400".to_owned()),
            Just("NaN".to_owned()),
            Just("-0".to_owned()),
            Just(String::new()),
            ".{0,12}",
        ]
    }

    const VALUED_FLAGS: [&str; 15] = [
        "--dead-peer-timeout",
        "--log-format",
        "--proxy-protocol-from",
        "--admin-addr",
        "--client-ca",
        "--port-file",
        "--port",
        "--bind",
        "--max-clients",
        "--max-clients-per-address",
        "--date-period",
        "--handshake-timeout",
        "--max-handshakes",
        "--max-line-bytes",
        "--write-timeout",
    ];

    /// Whether `value` is inside the range `flag` documents: what the
    /// command line must accept, and all it may accept.
    fn in_documented_range(flag: &str, value: &str) -> bool {
        let count = |range: std::ops::RangeInclusive<usize>| {
            value.parse::<usize>().is_ok_and(|n| range.contains(&n))
        };
        let duration = |range: std::ops::RangeInclusive<std::time::Duration>| {
            nea::duration::parse(value).is_ok_and(|d| range.contains(&d))
        };
        let a_value = value == "-" || !value.starts_with('-');
        match flag {
            "--client-ca" | "--port-file" => a_value && !value.is_empty(),
            "--port" => value.parse::<u16>().is_ok(),
            "--bind" => value.parse::<IpAddr>().is_ok(),
            "--max-clients" => count(nea::MAX_CLIENTS_RANGE),
            "--max-clients-per-address" => count(nea::MAX_CLIENTS_PER_ADDRESS_RANGE),
            "--log-format" => value == "text" || value == "json",
            "--admin-addr" => value.parse::<std::net::SocketAddr>().is_ok(),
            "--proxy-protocol-from" => value.split(',').all(|item| {
                let item = item.trim();
                item.parse::<IpAddr>().is_ok() || item.parse::<nea::server::IpNet>().is_ok()
            }),
            "--max-handshakes" => count(nea::MAX_HANDSHAKES_RANGE),
            "--max-line-bytes" => count(nea::MAX_LINE_BYTES_RANGE),
            "--date-period" => duration(nea::DATE_PERIOD_RANGE),
            "--handshake-timeout" => duration(nea::HANDSHAKE_TIMEOUT_RANGE),
            "--write-timeout" => duration(nea::WRITE_TIMEOUT_RANGE),
            "--dead-peer-timeout" => duration(nea::DEAD_PEER_TIMEOUT_RANGE),
            _ => unreachable!("{flag} is not in VALUED_FLAGS"),
        }
    }

    proptest! {
        #[test]
        fn every_flag_value_is_accepted_or_refused_in_one_sentence(
            flag in prop::sample::select(VALUED_FLAGS.to_vec()),
            value in flag_value(),
        ) {
            let expected = in_documented_range(flag, &value);
            match configure(["servercli", flag, &value]) {
                Ok(_) => prop_assert!(expected, "{} {:?} was accepted", flag, value),
                Err(NotRun::Usage(sentence)) => {
                    prop_assert!(!expected, "{} {:?} was refused: {}", flag, value, sentence);
                    prop_assert!(!sentence.is_empty());
                    prop_assert!(!sentence.contains('\n'), "{}", sentence);
                }
                Err(NotRun::Printed | NotRun::PrintedUsage) => prop_assert!(false, "{} {:?} printed help", flag, value),
            }
        }
    }

    #[test]
    fn the_values_that_used_to_panic_or_overflow_are_refused() {
        for (flag, value) in [
            ("--max-clients", "18446744073709551615"),
            ("--date-period", "0.0000000001"),
            ("--max-line-bytes", "18446744073709551615"),
        ] {
            let refused = configure(["servercli", flag, value]).map(|_| ());
            let Err(NotRun::Usage(sentence)) = refused else {
                panic!("{flag} {value} was accepted");
            };
            assert!(sentence.contains(flag), "{sentence}");
        }
    }

    #[test]
    fn boolean_environment_spellings_are_accepted() {
        // The parser clap uses for NEA_VERBOSE; the real binary reads the
        // variable in the integration tests.
        let parser = BoolishValueParser::new();
        let cmd = clap::Command::new("servercli");
        for (text, expected) in [
            ("1", true),
            ("true", true),
            ("yes", true),
            ("on", true),
            ("0", false),
            ("false", false),
            ("no", false),
            ("off", false),
        ] {
            let parsed = clap::builder::TypedValueParser::parse_ref(
                &parser,
                &cmd,
                None,
                std::ffi::OsStr::new(text),
            );
            assert_eq!(parsed.ok(), Some(expected), "{text}");
        }
    }
}
