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

mod load;

use load::{
    LoadError, Protocol, Target, baseline, flood, handshakes, hold, rtt, soak, storm, unread,
};

/// Exit status for an invalid command line.
const EXIT_USAGE: u8 = 2;

mod flags;

use flags::*;

impl Server {
    /// Resolves the host and loads the trust: where and how to connect.
    async fn target(&self) -> Result<Target, LoadError> {
        let protocol = if self.baseline {
            Protocol::Baseline
        } else {
            Protocol::Nea
        };
        let addrs: Vec<_> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map(Iterator::collect)
            .unwrap_or_default();
        let Some(&first) = addrs.first() else {
            return Err(LoadError::Failed(format!("host {} is unknown", self.host)));
        };
        // Like clientcli, use the first address that takes a connection:
        // `localhost` usually resolves to ::1 first, while a default server
        // listens on IPv4 only. One probe, then every client uses it.
        let mut addr = first;
        if addrs.len() > 1 {
            for candidate in &addrs {
                if tokio::net::TcpStream::connect(candidate).await.is_ok() {
                    addr = *candidate;
                    break;
                }
            }
        }
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
    /// Flags that clap cannot check one by one.
    fn check(&self) -> Result<(), NotRun> {
        if let Self::Storm { server, .. } = self
            && !server.pid.is_empty()
        {
            return Err(NotRun::Usage(
                "storm does not take --pid: the server's process is replaced when it restarts"
                    .to_owned(),
            ));
        }
        self.server().map_or(Ok(()), Server::check)
    }

    /// The server a measuring mode is aimed at.
    fn server(&self) -> Option<&Server> {
        match self {
            Self::Rtt { server, .. }
            | Self::Handshakes { server, .. }
            | Self::Hold { server, .. }
            | Self::Flood { server, .. }
            | Self::Unread { server, .. }
            | Self::Soak { server, .. }
            | Self::Storm { server, .. } => Some(server),
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
        Mode::Flood {
            server,
            stalled,
            attacker,
            probes,
            prober,
            settle,
        } => {
            let plan = flood::Plan {
                stalled,
                attacker,
                probes,
                prober,
                settle: settle.0,
            };
            print(
                &flood::run(&server.target().await?, &plan).await?,
                server.json,
            );
        }
        Mode::Unread {
            server,
            clients,
            lines,
            line_bytes,
            settle,
        } => {
            let plan = unread::Plan {
                clients,
                lines,
                line_bytes,
                settle: settle.0,
                server_pid: server.pid(),
            };
            print(
                &unread::run(&server.target().await?, &plan).await?,
                server.json,
            );
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
        Mode::Storm {
            server,
            clients,
            rate,
            duration,
            ramp,
            patience,
            series,
            max_recovery,
            no_resend,
        } => {
            let plan = storm::Plan {
                clients,
                rate,
                duration: duration.0,
                ramp,
                patience: patience.0,
                series,
                max_recovery: max_recovery.map(|limit| limit.0),
                resend: !no_resend,
            };
            let report = storm::run(&server.target().await?, &plan).await?;
            print(&report, server.json);
            // The report is printed either way: a failed storm's figures are
            // what to look at.
            let failures = report.failures(plan.max_recovery);
            if !failures.is_empty() {
                return Err(LoadError::Failed(format!(
                    "FAILED: {}",
                    failures.join("; ")
                )));
            }
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
                nea_cli::write_port_file(&path, local.port()).map_err(io)?;
            }
            eprintln!("listening on {local}");
            let stop = nea_cli::stop_requested().map_err(io)?;
            baseline::run_server(listener, tls, stop).await;
        }
    }
    Ok(())
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

    fn flags() -> Vec<Flag> {
        fn count(range: RangeInclusive<usize>, v: &str) -> bool {
            v.parse::<usize>().is_ok_and(|n| range.contains(&n))
        }
        fn duration(range: RangeInclusive<Duration>, v: &str) -> bool {
            nea::duration::parse(v).is_ok_and(|d| range.contains(&d))
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
