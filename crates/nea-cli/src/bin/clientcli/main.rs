//! `clientcli`: the nea client. Parses flags into validated options, picks
//! the interactive or the pipe front end, and maps the outcome to an exit
//! status (BSD sysexits; `docs/client.md` lists them).

use std::process::ExitCode;

use nea::client::session::Outcome;
use nea::client::{Options, tls_config};
use nea_cli::{NotRun, init_logging, init_logging_to, parse_args, runtime};

/// Exit status for an invalid command line (EX_USAGE).
const EXIT_USAGE: u8 = 64;

/// Exit status when SIGINT stops a non-interactive session, or any session
/// with lines not answered yet (128 + 2).
const EXIT_INTERRUPTED: u8 = 130;

/// Exit status when input ended but some lines did not get their reply:
/// the server rejected them, or they were not sent (EX_DATAERR).
const EXIT_LINES_NOT_ANSWERED: u8 = 65;

mod display;
mod flags;
mod pipe;
mod term;

use flags::Opts;

/// What a command line asks for: the session's options, and what only the
/// program decides (the history file, how much to log).
#[derive(Debug)]
struct Configured {
    options: Options,
    /// Where the terminal front end keeps what is typed; `None` keeps none.
    history: Option<std::path::PathBuf>,
    verbose: bool,
}

/// Where the interactive history is kept by default, as shells keep theirs:
/// `$XDG_STATE_HOME/nea/history` (`~/.local/state/nea/history`).
fn default_history_file() -> Option<std::path::PathBuf> {
    dirs::state_dir().map(|dir| dir.join("nea").join("history"))
}

impl Opts {
    /// The validated options, or the sentence that says which flag is wrong.
    fn into_options(self) -> Result<Options, NotRun> {
        let mut options = Options::new(&self.host, self.port)?
            .connect_timeout(self.connect_timeout.0)?
            .dead_peer_timeout(self.dead_peer_timeout.0)?
            .json(self.json)
            .reconnect(self.reconnect)
            .development_ca(nea::client::development_ca_file());
        if let Some(name) = &self.server_name {
            options = options.server_name(name)?;
        }
        for ca in self.ca {
            options = options.trust(ca);
        }
        for pin in self.pin {
            options = options.pin(pin);
        }
        if let Some((cert, key)) = self.cert.zip(self.key) {
            options = options.identity(cert, key);
        }
        Ok(options)
    }
}

/// What a command line asks for.
fn configure<I, A>(args: I) -> Result<Configured, NotRun>
where
    I: IntoIterator<Item = A>,
    A: Into<std::ffi::OsString> + Clone,
{
    let opts: Opts = parse_args(args)?;
    let verbose = opts.verbose;
    let history = if opts.no_history {
        None
    } else {
        default_history_file()
    };
    Ok(Configured {
        options: opts.into_options()?,
        history,
        verbose,
    })
}

fn main() -> ExitCode {
    let Configured {
        options,
        history,
        verbose,
    } = match configure(std::env::args_os()) {
        Ok(configured) => configured,
        Err(not_run) => return not_run.exit("clientcli", EXIT_USAGE),
    };
    let log_filter = if verbose { "warn,nea=debug" } else { "error" };
    let interactive = term::available();
    // In a terminal, log lines go to its owner, which prints them above the
    // prompt; elsewhere, to standard error.
    let (log_writer, log_lines) = term::log_lines();
    if interactive {
        init_logging_to(log_filter, log_writer);
    } else {
        init_logging(log_filter);
    }
    let runtime = match runtime("clientcli") {
        Ok(runtime) => runtime,
        Err(status) => return status,
    };
    let result = runtime.block_on(async {
        let config = tls_config(&options)?;
        if interactive {
            term::run(options, config, history, log_lines).await
        } else {
            pipe::run(options, config).await
        }
    });
    // Everything is written by now. A read of standard input may still be
    // blocked in tokio's thread pool (the server went away first); do not
    // wait for it.
    runtime.shutdown_background();
    match result {
        Ok(outcome) => exit_status(outcome, interactive),
        Err(err) => {
            eprintln!("clientcli: {err}");
            ExitCode::from(err.exit_code())
        }
    }
}

/// The exit status of a session that ended without a failure, after one
/// sentence on stderr when some lines did not get their own reply: 0 only
/// when every line sent did (SPEC §10, "Honest about what was answered").
fn exit_status(outcome: Outcome, interactive: bool) -> ExitCode {
    match outcome {
        // A closed standard output is a normal way to stop, as for other
        // Unix tools (`clientcli | head -1`).
        Outcome::OutputClosed => ExitCode::SUCCESS,
        Outcome::Finished(tally) if tally.all_answered() => ExitCode::SUCCESS,
        Outcome::Aborted(tally) if tally.unanswered > 0 => {
            eprintln!(
                "clientcli: stopped with {} of {} lines not answered",
                tally.unanswered, tally.lines
            );
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Outcome::Finished(tally) | Outcome::Aborted(tally) if !tally.all_answered() => {
            eprintln!(
                "clientcli: {} of {} lines answered ({} rejected by the server, {} not sent)",
                tally.answered, tally.lines, tally.rejected, tally.skipped
            );
            ExitCode::from(EXIT_LINES_NOT_ANSWERED)
        }
        // Ctrl-C in a terminal, with every line answered, is how one quits.
        Outcome::Aborted(_) if interactive => ExitCode::SUCCESS,
        Outcome::Finished(_) | Outcome::Aborted(_) => ExitCode::from(EXIT_INTERRUPTED),
    }
}

#[cfg(test)]
mod tests {
    //! Every flag that takes a value, fed arbitrary text: accepted into
    //! options, or refused with one sentence (exit status 64); nothing
    //! panics.

    use proptest::prelude::*;

    use super::*;

    fn flag_value() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| x.to_string()),
            (0u32..70_000).prop_map(|n| n.to_string()),
            Just("[::1]".to_owned()),
            Just("::1".to_owned()),
            Just("localhost".to_owned()),
            Just(String::new()),
            Just(" ".to_owned()),
            ".{0,16}",
        ]
    }

    /// Whether `value` is what `flag` documents it accepts (a value that
    /// starts with `-` is taken for a flag, as by every clap program).
    fn in_documented_range(flag: &str, value: &str) -> bool {
        let a_value = value == "-" || !value.starts_with('-');
        a_value
            && match flag {
                "--host" => {
                    let host = value
                        .strip_prefix('[')
                        .and_then(|inner| inner.strip_suffix(']'))
                        .unwrap_or(value);
                    !host.is_empty() && !host.chars().any(|c| c.is_whitespace() || c.is_control())
                }
                "--port" => value.parse::<u16>().is_ok_and(|port| port != 0),
                "--server-name" => rustls::pki_types::ServerName::try_from(value).is_ok(),
                "--connect-timeout" => nea::duration::parse(value)
                    .is_ok_and(|d| nea::CONNECT_TIMEOUT_RANGE.contains(&d)),
                "--dead-peer-timeout" => nea::duration::parse(value)
                    .is_ok_and(|d| nea::DEAD_PEER_TIMEOUT_RANGE.contains(&d)),
                "--ca" => !value.is_empty(),
                "--pin" => value
                    .split(',')
                    .all(|pin| pin.parse::<nea::pin::Pin>().is_ok()),
                // --cert needs --key.
                "--cert" => false,
                _ => unreachable!("{flag}"),
            }
    }

    proptest! {
        #[test]
        fn every_flag_value_is_accepted_or_refused_in_one_sentence(
            flag in prop::sample::select(vec!["--host", "--port", "--server-name", "--connect-timeout", "--dead-peer-timeout", "--pin", "--ca", "--cert"]),
            value in flag_value(),
        ) {
            let expected = in_documented_range(flag, &value);
            match configure(["clientcli", flag, &value]) {
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
    fn a_bad_host_port_or_name_is_refused_before_connecting() {
        for args in [
            &["--host", ""][..],
            &["--host", "two words"],
            &["--port", "0"],
            &["--port", "65536"],
            &["--server-name", "not a name"],
        ] {
            let refused = configure(std::iter::once("clientcli").chain(args.iter().copied()));
            assert!(
                matches!(refused, Err(NotRun::Usage(_))),
                "{args:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn an_ipv6_address_may_be_written_with_or_without_brackets() {
        for host in ["[::1]", "::1"] {
            let configured = configure(["clientcli", "--host", host]).expect(host);
            let debug = format!("{:?}", configured.options);
            assert!(debug.contains("host: \"::1\""), "{debug}");
        }
    }
}
