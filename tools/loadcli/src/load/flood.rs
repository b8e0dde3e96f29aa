//! Fairness under a handshake flood (SPEC §6): `stalled` sockets from one
//! source address each send the first byte of a ClientHello and nothing
//! more, holding whatever handshake capacity the server gives them; then a
//! client from another address completes `probes` full handshakes, one at
//! a time, and each one's time (TCP connect to handshake done) is
//! recorded. A probe that fails fails the run. One handshake before the
//! flood warms the tool up (its first handshake pays one-time costs of the
//! client's own) and is not counted.
//!
//! On Linux every address of 127.0.0.0/8 is local, so one machine can be
//! both addresses on loopback: 127.0.0.2 floods, 127.0.0.3 probes.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::{LoadError, Percentiles, Target, connect_from};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Sockets that stall in their handshake.
    pub stalled: usize,
    /// Where they come from.
    pub attacker: IpAddr,
    /// Handshakes measured.
    pub probes: usize,
    /// Where the measured client comes from.
    pub prober: IpAddr,
    /// Time given to the server to accept the stalled sockets before the
    /// first probe.
    pub settle: Duration,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Stalled sockets held open during the probes.
    pub stalled: usize,
    /// The stalled sockets' source.
    pub attacker: String,
    /// The probes' source.
    pub prober: String,
    /// Probe handshake times.
    pub handshake: Percentiles,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} stalled handshakes from {}; handshakes from {}: {}",
            self.stalled, self.attacker, self.prober, self.handshake
        )
    }
}

/// Floods, then probes.
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let warm_up = connect_from(plan.prober, target.addr)
        .await
        .map_err(|source| super::connect_failure(0, target.addr, source))?;
    let mut warm_up = target
        .handshake(warm_up)
        .await
        .map_err(|source| LoadError::Io { client: 0, source })?;
    let _ = warm_up.shutdown().await;
    let mut stalled = Vec::with_capacity(plan.stalled);
    for client in 0..plan.stalled {
        let mut tcp = connect_from(plan.attacker, target.addr)
            .await
            .map_err(|source| super::connect_failure(client, target.addr, source))?;
        // The first byte of a TLS record (a handshake), and nothing more.
        tcp.write_all(&[0x16])
            .await
            .map_err(|source| LoadError::Io { client, source })?;
        stalled.push(tcp);
    }
    tokio::time::sleep(plan.settle).await;
    let mut times = super::new_histogram();
    for probe in 0..plan.probes {
        let started = Instant::now();
        let tcp = connect_from(plan.prober, target.addr)
            .await
            .map_err(|source| super::connect_failure(probe, target.addr, source))?;
        let mut stream = target
            .handshake(tcp)
            .await
            .map_err(|source| LoadError::Io {
                client: probe,
                source,
            })?;
        let took = started.elapsed();
        let _ = stream.shutdown().await;
        times
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1))
            .map_err(|err| LoadError::Failed(format!("handshake time out of range: {err}")))?;
    }
    drop(stalled);
    Ok(Report {
        stalled: plan.stalled,
        attacker: plan.attacker.to_string(),
        prober: plan.prober.to_string(),
        handshake: Percentiles::of(&times),
    })
}
