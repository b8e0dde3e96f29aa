//! Stalled handshakes from many addresses (SPEC §6): from each of
//! `addresses` loopback addresses, `sockets_per_address` sockets each send
//! a real ClientHello one byte per `byte_interval` and never complete it
//! ([`stall`]); a socket the server closes is opened again. Meanwhile a
//! client from yet another address measures full handshakes, one at a
//! time ([`samples`]): how long a newcomer waits while many sources stall
//! theirs, and how many of its handshakes fail or time out ([`report`]).
//!
//! Unlike `flood` (one stalling address, one byte each), the stalled
//! sockets here are spread over many sources, so that a server sharing its
//! handshake slots fairly between sources has as many sources to share
//! them with as there are attackers.
//!
//! The run passes when every measured handshake completed within
//! `--sample-timeout`, and within `--max-handshake-time` if given.
//!
//! # Layout
//!
//! - this file: the plan and the run's steps.
//! - [`sources`]: the stalling addresses and this machine's limits for
//!   them (ephemeral ports per address, open files).
//! - [`stall`]: the ClientHello and the stalled sockets.
//! - [`samples`]: the measured handshakes.
//! - [`report`]: the report and what fails the run.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::proc::Sample;
use super::{LoadError, Percentiles, Target};

mod report;
mod samples;
mod sources;
mod stall;

pub(crate) use report::Report;
pub(crate) use samples::Sampling;
pub(crate) use sources::Sources;

use samples::Samples;
use stall::Stalls;

/// How long the stalled sockets may take to connect, all of them, before
/// the measured handshakes start anyway.
const OPEN_PATIENCE: Duration = Duration::from_secs(30);

/// What to run, and what counts as passing.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The stalling addresses.
    pub sources: Sources,
    /// Stalled sockets per address.
    pub sockets_per_address: usize,
    /// Between two bytes of a stalled socket.
    pub byte_interval: Duration,
    /// After every stalled socket is open, before the first measured
    /// handshake.
    pub settle: Duration,
    /// The measured handshakes.
    pub sampling: Sampling,
    /// Fail if a measured handshake took longer than this.
    pub max_handshake_time: Option<Duration>,
    /// The server's process, whose memory the report gives.
    pub server_pid: Option<u32>,
}

/// Runs the plan. `Err` only if the run could not be made (limits too
/// low, the server unreachable before anything stalled); what it found is
/// in the report, and what failed it in [`Report::failures`].
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    if !target.addr.is_ipv4() {
        return Err(LoadError::Failed(format!(
            "the server's address {} is not IPv4: the stalling sources are 127.x addresses",
            target.addr
        )));
    }
    let stalled = plan.sources.count * plan.sockets_per_address;
    sources::check_limits(
        plan.sockets_per_address,
        stalled,
        nea_cli::raise_open_file_limit(),
    )?;
    let hello: Arc<[u8]> = stall::client_hello(target)?.into();
    samples::warm_up(target, &plan.sampling).await?;
    let rss = || {
        plan.server_pid
            .and_then(Sample::of)
            .map(|sample| sample.rss_kib)
    };
    let memory_before = rss();
    let stalls = Arc::new(Stalls::default());
    let stop = CancellationToken::new();
    let mut sockets = start_stalling(target, plan, &hello, &stalls, &stop);
    wait_until_open(&stalls, stalled as u64).await;
    tokio::time::sleep(plan.settle).await;
    let memory = (memory_before, rss());
    let started = Instant::now();
    let samples = samples::measure(target, &plan.sampling, &stalls).await;
    let seconds = started.elapsed().as_secs_f64();
    stop.cancel();
    while sockets.join_next().await.is_some() {}
    let mut report = report_of(plan, hello.len(), &stalls, &samples, seconds);
    (report.server_rss_kib_before, report.server_rss_kib_stalled) = memory;
    Ok(report)
}

/// Starts every stalled socket, each a task of its own.
fn start_stalling(
    target: &Target,
    plan: &Plan,
    hello: &Arc<[u8]>,
    stalls: &Arc<Stalls>,
    stop: &CancellationToken,
) -> JoinSet<()> {
    let mut sockets = JoinSet::new();
    for n in 0..plan.sources.count {
        let source = IpAddr::V4(plan.sources.nth(n));
        for _ in 0..plan.sockets_per_address {
            sockets.spawn(stall::stall(
                source,
                target.addr,
                hello.clone(),
                plan.byte_interval,
                stalls.clone(),
                stop.clone(),
            ));
        }
    }
    sockets
}

/// Waits until `count` stalled sockets are open, or [`OPEN_PATIENCE`].
async fn wait_until_open(stalls: &Stalls, count: u64) {
    let opening = async {
        while stalls.open.load(Ordering::Relaxed) < count {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let _ = super::with_progress(
        "stalled sockets open",
        &stalls.open,
        tokio::time::timeout(OPEN_PATIENCE, opening),
    )
    .await;
    super::end_progress();
}

/// The report of a run.
fn report_of(
    plan: &Plan,
    hello_bytes: usize,
    stalls: &Stalls,
    samples: &Samples,
    seconds: f64,
) -> Report {
    let count = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    Report {
        addresses: plan.sources.count,
        sockets_per_address: plan.sockets_per_address,
        stalled_sockets: plan.sources.count * plan.sockets_per_address,
        first_address: plan.sources.first.to_string(),
        last_address: plan.sources.last().to_string(),
        prober: plan.sampling.prober.to_string(),
        hello_bytes,
        byte_interval_s: plan.byte_interval.as_secs_f64(),
        stalled_open_min: samples.stalled_open.map(|(low, _)| low),
        stalled_open_max: samples.stalled_open.map(|(_, high)| high),
        stalled_opened: count(&stalls.opened),
        stalled_closed_by_server: count(&stalls.closed_by_server),
        stalled_connect_failures: count(&stalls.connect_failures),
        samples: plan.sampling.samples,
        completed: samples.completed,
        failed: samples.failed,
        timed_out: samples.timed_out,
        sample_timeout_s: plan.sampling.timeout.as_secs_f64(),
        max_handshake_time_s: plan.max_handshake_time.map(|limit| limit.as_secs_f64()),
        handshake: Percentiles::of(&samples.times),
        first_failure: samples.first_failure.clone(),
        seconds,
        server_rss_kib_before: None,
        server_rss_kib_stalled: None,
    }
}
