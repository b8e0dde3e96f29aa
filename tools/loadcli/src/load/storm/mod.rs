//! Reconnect storms: N clients that reconnect as `clientcli --reconnect`
//! does, each sending numbered lines at a steady rate, while the server is
//! restarted under them (SPEC §10, §12: with reconnection every line is
//! answered exactly once).
//!
//! Each client waits before each attempt exactly as clientcli does, and
//! gives up exactly when it would ([`reconnect`]). After a new connection a
//! client sends again, in order, every line not answered yet, and checks
//! every reply ([`client`]): each line must be answered exactly once, in
//! order, by its exact reversal. A duplicate, a reply out of order, a wrong
//! reply, a line never answered or a client that gave up fails the run.
//!
//! What an operator wants to know about a restart is measured per
//! disconnection wave ([`waves`]); for each the report gives the time from
//! its first loss until every client was back and until every pending line
//! was answered ([`report`]). `--series` writes the curve of a restart
//! every 100 ms ([`series`]). Lines come due on a fixed schedule, whether
//! or not their client is connected ([`lines`]).
//!
//! # Layout
//!
//! - this file: the plan and the run's steps (connect, start the clients,
//!   wait and sample, report).
//! - [`lines`]: when each line is due, its text, the reply it must get.
//! - [`reconnect`]: connecting as clientcli does; the reconnection schedule
//!   it shares with clientcli.
//! - [`client`]: one client's connections, writes and reply checks.
//! - [`shared`]: the counters and clock every client adds to.
//! - [`waves`]: disconnection waves.
//! - [`series`]: the `--series` samples and the peak handshake rate.
//! - [`report`]: the report and what fails the run.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;

use super::{LoadError, Target};

mod client;
mod lines;
mod reconnect;
mod report;
mod series;
mod shared;
mod waves;

pub(crate) use report::Report;

use client::Client;
use lines::Schedule;
use reconnect::Connection;
use series::Sample;
use shared::Shared;

/// What to run, and what counts as passing.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Clients.
    pub clients: usize,
    /// Lines per second per client.
    pub rate: f64,
    /// How long lines come due.
    pub duration: Duration,
    /// Handshakes in progress at once while the clients first connect.
    pub ramp: usize,
    /// After the last line is due, how long to wait for the last answers
    /// (and reconnections) before what is missing counts as lost.
    pub patience: Duration,
    /// Where to write the samples, as CSV.
    pub series: Option<PathBuf>,
    /// Fail if a wave takes longer than this to close.
    pub max_recovery: Option<Duration>,
    /// Re-send unanswered lines after reconnecting. Off only to check that
    /// the check catches a client that forgets them.
    pub resend: bool,
}

/// Runs the plan. `Err` only if the run could not be made (the first
/// connections failed, the series cannot be written); what it found wrong
/// is in [`Report::failures`].
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let series_file = series::create(plan.series.as_deref())?;
    let options = Arc::new(reconnect::options(target)?);
    let streams = reconnect::connect_all(target, &options, plan.clients, plan.ramp).await?;
    let schedule = Schedule {
        clients: plan.clients,
        rate: plan.rate,
        duration: plan.duration,
    };
    let started_unix_s = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
    let shared = Arc::new(Shared::new(schedule, target.protocol));
    let clients = start_clients(&shared, target, &options, streams, plan.resend);
    let (seconds, samples) = wait_and_sample(&shared, clients, plan).await;
    if let Some(file) = series_file {
        series::write(file, &samples)?;
    }
    Ok(Report::of(plan, &shared, &samples, seconds, started_unix_s))
}

/// Starts one task per client, on its first connection.
fn start_clients(
    shared: &Arc<Shared>,
    target: &Target,
    options: &Arc<nea::client::Options>,
    streams: Vec<Connection>,
    resend: bool,
) -> JoinSet<()> {
    let mut clients = JoinSet::new();
    for (id, stream) in streams.into_iter().enumerate() {
        let client = Client::new(
            id,
            shared.clone(),
            target.tls.clone(),
            options.clone(),
            resend,
        );
        clients.spawn(client.run(stream));
    }
    clients
}

/// Samples the counters until every client is done or patience runs out
/// after the last line is due (what is left is then stopped); returns the
/// seconds since sending started and the samples.
async fn wait_and_sample(
    shared: &Shared,
    mut clients: JoinSet<()>,
    plan: &Plan,
) -> (f64, Vec<Sample>) {
    let finished = AtomicBool::new(false);
    let deadline = tokio::time::Instant::from_std(shared.started) + plan.duration + plan.patience;
    let waiting = async {
        let all_done = async { while clients.join_next().await.is_some() {} };
        let _ = tokio::time::timeout_at(deadline, all_done).await;
        clients.abort_all();
        finished.store(true, Ordering::Relaxed);
    };
    let sampled = super::with_progress("answered", &shared.answered, async {
        let ((), samples) = tokio::join!(waiting, series::sample(shared, &finished));
        (shared.now().as_secs_f64(), samples)
    })
    .await;
    super::end_progress();
    sampled
}
