//! One function per mode: its flags become a plan, the plan runs against
//! the server, and the report is printed (text, or JSON with `--json`).
//! A mode's `Err` is its one-sentence failure; `main` prints it and exits 1.

use crate::flags::{
    BaselineServerFlags, FloodFlags, HandshakesFlags, HoldFlags, RttFlags, Server, SoakFlags,
    StormFlags, TrickleFlags, UnreadFlags,
};
use crate::load::{
    LoadError, Protocol, Target, baseline, flood, handshakes, hold, rtt, soak, storm, trickle,
    unread,
};

/// `loadcli rtt`: round trips of N clients, K lines in flight each.
pub(crate) async fn rtt(flags: RttFlags) -> Result<(), LoadError> {
    let plan = rtt::Plan {
        clients: flags.clients,
        in_flight: flags.in_flight,
        lines: flags.lines as u64,
        line_bytes: flags.line_bytes,
        unicode: flags.unicode,
        server_pid: flags.server.pid(),
    };
    let report = rtt::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    Ok(())
}

/// `loadcli handshakes`: full handshakes per second.
pub(crate) async fn handshakes(flags: HandshakesFlags) -> Result<(), LoadError> {
    let server = &flags.server;
    let target = server.target().await?;
    let report =
        handshakes::run(&target, flags.concurrency, flags.duration.0, server.pid()).await?;
    print(&report, server.json);
    Ok(())
}

/// `loadcli flood`: stalled handshakes from one address, probes from
/// another.
pub(crate) async fn flood(flags: FloodFlags) -> Result<(), LoadError> {
    let plan = flood::Plan {
        stalled: flags.stalled,
        attacker: flags.attacker,
        probes: flags.probes,
        prober: flags.prober,
        settle: flags.settle.0,
    };
    let report = flood::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    Ok(())
}

/// `loadcli trickle`: ClientHellos dripped from many addresses, a fresh
/// address's handshakes measured meanwhile. The report is printed whether
/// or not the run passed: today's figures of a failing server are the
/// baseline its next version is compared with.
pub(crate) async fn trickle(flags: TrickleFlags) -> Result<(), LoadError> {
    let plan = trickle::Plan {
        sources: flags.sources(),
        sockets_per_address: flags.sockets_per_address,
        byte_interval: flags.byte_interval.0,
        settle: flags.settle.0,
        sampling: trickle::Sampling {
            prober: flags.prober.into(),
            samples: flags.samples,
            interval: flags.sample_interval.0,
            timeout: flags.sample_timeout.0,
        },
        max_handshake_time: flags.max_handshake_time.map(|limit| limit.0),
        server_pid: flags.server.pid(),
    };
    let report = trickle::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    failed_if_any(report.failures())
}

impl TrickleFlags {
    /// The stalling addresses.
    pub(crate) fn sources(&self) -> trickle::Sources {
        trickle::Sources {
            first: self.from,
            count: self.addresses,
        }
    }
}

/// `loadcli unread`: clients that never read.
pub(crate) async fn unread(flags: UnreadFlags) -> Result<(), LoadError> {
    let plan = unread::Plan {
        clients: flags.clients,
        lines: flags.lines,
        line_bytes: flags.line_bytes,
        settle: flags.settle.0,
        server_pid: flags.server.pid(),
    };
    let report = unread::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    Ok(())
}

/// `loadcli hold`: silent clients, date lateness and memory.
pub(crate) async fn hold(flags: HoldFlags) -> Result<(), LoadError> {
    let plan = hold::Plan {
        clients: flags.clients,
        duration: flags.duration.0,
        period: flags.period.0,
        ramp: flags.ramp,
        server_pid: flags.server.pid(),
    };
    let report = hold::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    Ok(())
}

/// `loadcli soak`: clients sending at a steady rate for a long time.
pub(crate) async fn soak(flags: SoakFlags) -> Result<(), LoadError> {
    let plan = soak::Plan {
        clients: flags.clients,
        rate: flags.rate,
        duration: flags.duration.0,
        period: flags.period.0,
        line_bytes: 32,
        max_lateness: flags.max_lateness.0,
        max_rss_growth: flags.max_rss_growth / 100.0,
        server_pid: flags.server.pid(),
    };
    let report = soak::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    Ok(())
}

/// `loadcli storm`: reconnecting clients through server restarts. The
/// report is printed whether or not the run passed: a failed storm's
/// figures are what to look at.
pub(crate) async fn storm(flags: StormFlags) -> Result<(), LoadError> {
    let plan = storm::Plan {
        clients: flags.clients,
        rate: flags.rate,
        duration: flags.duration.0,
        ramp: flags.ramp,
        patience: flags.patience.0,
        series: flags.series,
        max_recovery: flags.max_recovery.map(|limit| limit.0),
        resend: !flags.no_resend,
    };
    let report = storm::run(&flags.server.target().await?, &plan).await?;
    print(&report, flags.server.json);
    failed_if_any(report.failures(plan.max_recovery))
}

/// `loadcli baseline-server`: serves until SIGINT or SIGTERM.
pub(crate) async fn baseline_server(flags: BaselineServerFlags) -> Result<(), LoadError> {
    let tls = nea::tls::server_config(
        nea::tls::load_certs(&flags.cert)?,
        nea::tls::load_key(&flags.key)?,
        None,
    )?;
    let io = |source| LoadError::Io { client: 0, source };
    let listener = tokio::net::TcpListener::bind((flags.bind, flags.port))
        .await
        .map_err(io)?;
    let local = listener.local_addr().map_err(io)?;
    if let Some(path) = &flags.port_file {
        nea_cli::write_port_file(path, local.port()).map_err(io)?;
    }
    eprintln!("listening on {local}");
    let stop = nea_cli::stop_requested().map_err(io)?;
    baseline::run_server(listener, tls, stop).await;
    Ok(())
}

/// Prints a report as text or JSON.
fn print<R: std::fmt::Display + serde::Serialize>(report: &R, json: bool) {
    if json {
        println!("{}", serde_json::to_string(report).unwrap_or_default());
    } else {
        print!("{report}");
    }
}

/// The run failed if any of its checks did: one line, every clause.
fn failed_if_any(failures: Vec<String>) -> Result<(), LoadError> {
    if failures.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Failed(format!(
            "FAILED: {}",
            failures.join("; ")
        )))
    }
}

impl Server {
    /// Resolves the host and loads the trust: where and how to connect.
    async fn target(&self) -> Result<Target, LoadError> {
        let protocol = if self.baseline {
            Protocol::Baseline
        } else {
            Protocol::Nea
        };
        let addr = self.reachable_address().await?;
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

    /// Like clientcli, the first address of the host that takes a
    /// connection: `localhost` usually resolves to ::1 first, while a
    /// default server listens on IPv4 only. One probe, then every client
    /// uses it.
    async fn reachable_address(&self) -> Result<std::net::SocketAddr, LoadError> {
        let addrs: Vec<_> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map(Iterator::collect)
            .unwrap_or_default();
        let Some(&first) = addrs.first() else {
            return Err(LoadError::Failed(format!("host {} is unknown", self.host)));
        };
        if addrs.len() > 1 {
            for candidate in &addrs {
                if tokio::net::TcpStream::connect(candidate).await.is_ok() {
                    return Ok(*candidate);
                }
            }
        }
        Ok(first)
    }

    /// The one server process to measure, if given.
    fn pid(&self) -> Option<u32> {
        self.pid.first().copied()
    }
}
