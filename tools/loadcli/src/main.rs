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

use std::process::ExitCode;

use nea_cli::{NotRun, parse_args, raise_open_file_limit, runtime};

mod flags;
mod load;
mod modes;

use flags::*;
use load::LoadError;

/// Exit status for an invalid command line.
const EXIT_USAGE: u8 = 2;

impl Server {
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

impl TrickleFlags {
    /// The stalling addresses fit in loopback, and the prober is not one
    /// of them (its handshakes would then queue behind its own stalls).
    fn check(&self) -> Result<(), NotRun> {
        let sources = self.sources();
        if let Some(sentence) = sources.outside_loopback() {
            return Err(NotRun::Usage(format!(
                "{sentence}: lower --addresses or --from"
            )));
        }
        if sources.contains(self.prober) {
            return Err(NotRun::Usage(format!(
                "--prober {} is one of the stalling addresses ({} to {}): pick one outside them",
                self.prober,
                sources.first,
                sources.last()
            )));
        }
        Ok(())
    }
}

impl Mode {
    /// Flags that clap cannot check one by one.
    fn check(&self) -> Result<(), NotRun> {
        if let Self::Storm(storm) = self
            && !storm.server.pid.is_empty()
        {
            return Err(NotRun::Usage(
                "storm does not take --pid: the server's process is replaced when it restarts"
                    .to_owned(),
            ));
        }
        if let Self::Trickle(trickle) = self {
            trickle.check()?;
        }
        self.server().map_or(Ok(()), Server::check)
    }

    /// The server a measuring mode is aimed at.
    fn server(&self) -> Option<&Server> {
        match self {
            Self::Rtt(RttFlags { server, .. })
            | Self::Handshakes(HandshakesFlags { server, .. })
            | Self::Hold(HoldFlags { server, .. })
            | Self::Flood(FloodFlags { server, .. })
            | Self::Trickle(TrickleFlags { server, .. })
            | Self::Unread(UnreadFlags { server, .. })
            | Self::Soak(SoakFlags { server, .. })
            | Self::Storm(StormFlags { server, .. }) => Some(server),
            Self::BaselineServer(_) => None,
        }
    }
}

/// Runs one mode, with as many open files as this process may have (a
/// descriptor per client).
async fn run(mode: Mode) -> Result<(), LoadError> {
    raise_open_file_limit();
    match mode {
        Mode::Rtt(flags) => modes::rtt(flags).await,
        Mode::Handshakes(flags) => modes::handshakes(flags).await,
        Mode::Flood(flags) => modes::flood(flags).await,
        Mode::Trickle(flags) => modes::trickle(flags).await,
        Mode::Unread(flags) => modes::unread(flags).await,
        Mode::Hold(flags) => modes::hold(flags).await,
        Mode::Soak(flags) => modes::soak(flags).await,
        Mode::Storm(flags) => modes::storm(flags).await,
        Mode::BaselineServer(flags) => modes::baseline_server(flags).await,
    }
}

fn main() -> ExitCode {
    let opts: Opts = match parse_args(std::env::args_os()) {
        Ok(opts) => opts,
        Err(not_run) => return not_run.exit("loadcli", EXIT_USAGE),
    };
    if let Err(not_run) = opts.mode.check() {
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

    use std::ops::RangeInclusive;
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    /// A mode, one of its flags that take a value, and whether a value is
    /// inside that flag's documented range.
    type Flag = (&'static str, &'static str, fn(&str) -> bool);

    fn count(range: RangeInclusive<usize>, v: &str) -> bool {
        v.parse::<usize>().is_ok_and(|n| range.contains(&n))
    }

    fn duration(range: RangeInclusive<Duration>, v: &str) -> bool {
        nea::duration::parse(v).is_ok_and(|d| range.contains(&d))
    }

    fn number(range: RangeInclusive<f64>, v: &str) -> bool {
        v.parse::<f64>().is_ok_and(|x| range.contains(&x))
    }

    fn loopback(v: &str) -> bool {
        v.parse::<std::net::Ipv4Addr>()
            .is_ok_and(|a| a.is_loopback())
    }

    fn flags() -> Vec<Flag> {
        [connecting_flags(), trickle_flags()].concat()
    }

    fn connecting_flags() -> Vec<Flag> {
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
            ("flood", "--stalled", |v| count(HELD_CLIENTS, v)),
            ("unread", "-n", |v| count(CLIENTS, v)),
            ("unread", "-l", |v| count(LINE_BYTES, v)),
            ("unread", "--settle", |v| duration(RUN_TIME, v)),
            ("flood", "--probes", |v| count(CLIENTS, v)),
            ("flood", "--settle", |v| duration(RUN_TIME, v)),
            ("flood", "--attacker", |v| {
                v.parse::<std::net::IpAddr>().is_ok()
            }),
            ("soak", "-n", |v| count(CLIENTS, v)),
            ("soak", "--rate", |v| number(RATE, v)),
            ("soak", "-d", |v| duration(RUN_TIME, v)),
            ("soak", "--period", |v| duration(PERIOD, v)),
            ("soak", "--max-lateness", |v| duration(LATENESS, v)),
            ("soak", "--max-rss-growth", |v| number(RSS_GROWTH, v)),
            ("storm", "-n", |v| count(CLIENTS, v)),
            ("storm", "--rate", |v| number(RATE, v)),
            ("storm", "-d", |v| duration(RUN_TIME, v)),
            ("storm", "--ramp", |v| count(CONCURRENCY, v)),
            ("storm", "--patience", |v| duration(RUN_TIME, v)),
            ("storm", "--max-recovery", |v| duration(RUN_TIME, v)),
        ]
    }

    fn trickle_flags() -> Vec<Flag> {
        vec![
            ("trickle", "--addresses", |v| count(ADDRESSES, v)),
            ("trickle", "--sockets-per-address", |v| {
                count(SOCKETS_PER_ADDRESS, v)
            }),
            ("trickle", "--byte-interval", |v| duration(BYTE_INTERVAL, v)),
            ("trickle", "--samples", |v| count(CLIENTS, v)),
            ("trickle", "--sample-interval", |v| duration(RUN_TIME, v)),
            ("trickle", "--sample-timeout", |v| duration(RUN_TIME, v)),
            ("trickle", "--settle", |v| duration(RUN_TIME, v)),
            ("trickle", "--max-handshake-time", |v| duration(RUN_TIME, v)),
            ("trickle", "--from", loopback),
            ("trickle", "--prober", loopback),
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
