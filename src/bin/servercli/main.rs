//! `servercli`: the nea server. Parses flags into validated settings, sets
//! up logging and runs the library's server until SIGINT or SIGTERM.
//!
//! Exit status: 0 after a clean shutdown (or `--help`), 1 when the server
//! cannot start (certificates, address in use), 2 for invalid flags.

use std::net::SocketAddr;
use std::process::ExitCode;

use nea::cli::{NotRun, init_server_logging, parse_args, raise_open_file_limit, runtime};
use nea::server::{Config, Settings, TrustedProxies};

/// Exit status for an invalid command line.
const EXIT_USAGE: u8 = 2;

mod flags;

use flags::Opts;

impl Opts {
    /// The validated settings, or the sentence that says which flag is out
    /// of its range.
    fn into_settings(self) -> Result<Settings, NotRun> {
        let config = Config::builder()
            .max_clients(self.max_clients)
            .max_clients_per_address(self.max_clients_per_address)
            .date_period(self.date_period.0)
            .handshake_timeout(self.handshake_timeout.0)
            .max_handshakes(self.max_handshakes)
            .max_line_bytes(self.max_line_bytes)
            .write_timeout(self.write_timeout.0)
            .proxy_protocol_from(TrustedProxies::new(self.proxy_protocol_from))
            .build()?;
        Ok(Settings {
            listen: SocketAddr::new(self.bind, self.port),
            inherited: None,
            identity: self.cert.zip(self.key),
            client_ca: self.client_ca,
            port_file: self.port_file,
            admin: self.admin_addr,
            log_drops: None,
            config,
        })
    }
}

/// How the server logs: verbosely or not, as text or JSON.
#[derive(Debug, Clone, Copy)]
struct Logs {
    verbose: bool,
    format: nea::cli::LogFormat,
}

/// The settings a command line asks for, and how to log.
fn configure<I, A>(args: I) -> Result<(Settings, Logs), NotRun>
where
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let opts: Opts = parse_args(args)?;
    let logs = Logs {
        verbose: opts.verbose,
        format: opts.log_format,
    };
    Ok((opts.into_settings()?, logs))
}

fn main() -> ExitCode {
    let (mut settings, logs) = match configure(std::env::args_os()) {
        Ok(configured) => configured,
        Err(not_run) => return not_run.exit("servercli", EXIT_USAGE),
    };
    // Before any thread starts: taking the socket clears LISTEN_FDS.
    match nea::cli::inherited_listener() {
        Ok(inherited) => settings.inherited = inherited,
        Err(err) => {
            eprintln!("servercli: the socket passed in LISTEN_FDS cannot be used: {err}");
            return ExitCode::FAILURE;
        }
    }
    let logging = init_server_logging(
        if logs.verbose {
            "warn,nea=debug"
        } else {
            "warn,nea=info"
        },
        logs.format,
    );
    settings.log_drops = Some(logging.drops());
    // One file descriptor per client: the soft limit (often 1024) would cap
    // --max-clients far below what the administrator's hard limit allows.
    raise_open_file_limit();
    let runtime = match runtime("servercli") {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    let result = runtime.block_on(async {
        let (shutdown, reloads) =
            nea::shutdown::termination().map_err(|source| nea::error::ServerError::Io {
                phase: "installing signal handlers",
                source,
            })?;
        nea::server::start(settings, shutdown, reloads).await
    });
    // Every line queued is written before the last words below.
    let dropped = logging.dropped_lines();
    drop(logging);
    if dropped > 0 {
        eprintln!(
            "servercli: {dropped} log lines were dropped: standard error took them too slowly"
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

    const VALUED_FLAGS: [&str; 14] = [
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
            nea::cli::parse_duration(value).is_ok_and(|d| range.contains(&d))
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
