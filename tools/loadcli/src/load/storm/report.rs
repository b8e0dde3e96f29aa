//! What a storm measured: the report (text and `--json`) and what fails
//! the run.
//!
//! The report is printed whether or not the run passed: a failed storm's
//! figures are what to look at. [`Report::failures`] says what failed it,
//! one clause each.

use std::time::Duration;

use super::Plan;
use super::series::{Sample, peak_rate};
use super::shared::{Shared, count};
use super::waves::Wave;

/// One wave, as reported: seconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct WaveReport {
    /// When its first connection was lost, after sending started.
    pub first_loss_s: f64,
    /// Connections lost in it.
    pub connections_lost: u64,
    /// From the first loss until every client was connected again.
    pub reconnected_after_s: Option<f64>,
    /// From the first loss until every line pending before its client was
    /// back was answered: the wave's end.
    pub answered_after_s: Option<f64>,
    /// Handshakes completed in it.
    pub handshakes: u64,
}

impl WaveReport {
    pub(super) fn of(wave: &Wave) -> Self {
        let after = |at: Duration| at.saturating_sub(wave.first_loss).as_secs_f64();
        Self {
            first_loss_s: wave.first_loss.as_secs_f64(),
            connections_lost: wave.losses,
            reconnected_after_s: wave.reconnected.map(after),
            answered_after_s: wave.answered.map(after),
            handshakes: wave.handshakes,
        }
    }
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Clients.
    pub clients: usize,
    /// Lines due in all (every client's, over the run).
    pub lines: u64,
    /// Lines answered in order by their exact reversal.
    pub answered: u64,
    /// Lines never answered in order: `lines - answered`.
    pub lost: u64,
    /// Replies to a line already answered.
    pub duplicates: u64,
    /// Replies that came before the reply to an earlier line.
    pub out_of_order: u64,
    /// Replies that are not the reversal of any line of the client, and
    /// line errors.
    pub wrong: u64,
    /// Clients that stopped on a failure clientcli does not retry.
    pub gave_up: u64,
    /// Connections lost, all waves.
    pub connections_lost: u64,
    /// Handshakes completed after the first connections.
    pub handshakes: u64,
    /// Reconnection attempts that failed and were retried.
    pub failed_attempts: u64,
    /// Of those, refused (nothing listening on the port yet).
    pub refused_attempts: u64,
    /// Of those, timed out (no TCP connection or no handshake within
    /// clientcli's connect timeout) or unreachable.
    pub timed_out_attempts: u64,
    /// Most handshakes completed in one sampling interval, per second.
    pub peak_handshakes_per_s: f64,
    /// The disconnection waves, in order.
    pub waves: Vec<WaveReport>,
    /// Waves still open when the run ended (clients away or lines
    /// missing).
    pub unfinished_waves: usize,
    /// The first problem seen, if any.
    pub first_problem: Option<String>,
    /// Seconds from the start of sending to the last client done.
    pub seconds: f64,
    /// When sending started, Unix time in seconds (to line the series up
    /// with events outside, such as a server's restart).
    pub started_unix_s: f64,
}

impl Report {
    /// The report of a run that sent from `shared.started` for `seconds`
    /// (until the last client was done, or patience ran out), started at
    /// `started_unix_s`.
    pub(super) fn of(
        plan: &Plan,
        shared: &Shared,
        samples: &[Sample],
        seconds: f64,
        started_unix_s: f64,
    ) -> Self {
        let lines = shared.schedule.lines();
        let answered = count(&shared.answered);
        let waves = shared.waves();
        Self {
            clients: plan.clients,
            lines,
            answered,
            lost: lines.saturating_sub(answered),
            duplicates: count(&shared.duplicates),
            out_of_order: count(&shared.out_of_order),
            wrong: count(&shared.wrong),
            gave_up: count(&shared.gave_up),
            connections_lost: waves.all().map(|wave| wave.losses).sum(),
            handshakes: count(&shared.handshakes),
            failed_attempts: count(&shared.failed_attempts),
            refused_attempts: count(&shared.refused_attempts),
            timed_out_attempts: count(&shared.timed_out_attempts),
            peak_handshakes_per_s: peak_rate(samples),
            waves: waves.all().map(WaveReport::of).collect(),
            unfinished_waves: usize::from(waves.open.is_some()),
            first_problem: shared.first_problem(),
            seconds,
            started_unix_s,
        }
    }

    /// What fails the run, one clause each; empty if it passed.
    pub(crate) fn failures(&self, max_recovery: Option<Duration>) -> Vec<String> {
        let mut failures = Vec::new();
        for (count, what) in [
            (self.lost, "lines never answered"),
            (self.duplicates, "replies duplicated"),
            (self.out_of_order, "replies out of order"),
            (self.wrong, "wrong replies"),
            (self.gave_up, "clients gave up"),
        ] {
            if count > 0 {
                failures.push(format!("{count} {what}"));
            }
        }
        if self.unfinished_waves > 0 {
            failures.push(format!(
                "{} disconnection wave(s) not over when the run ended",
                self.unfinished_waves
            ));
        }
        if let Some(limit) = max_recovery {
            for (n, wave) in self.waves.iter().enumerate() {
                if let Some(after) = wave
                    .answered_after_s
                    .filter(|after| *after > limit.as_secs_f64())
                {
                    failures.push(format!(
                        "wave {} took {after:.2} s (limit {:.2} s)",
                        n + 1,
                        limit.as_secs_f64()
                    ));
                }
            }
        }
        if let Some(problem) = self.first_problem.as_ref().filter(|_| !failures.is_empty()) {
            failures.push(format!("first: {problem}"));
        }
        failures
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} clients, {} lines in {:.1} s: {} answered exactly once and in order, {} lost, \
             {} duplicated, {} out of order, {} wrong; {} clients gave up",
            self.clients,
            self.lines,
            self.seconds,
            self.answered,
            self.lost,
            self.duplicates,
            self.out_of_order,
            self.wrong,
            self.gave_up
        )?;
        writeln!(
            f,
            "{} connections lost, {} handshakes after the first connections (peak {:.0}/s), \
             {} failed attempts ({} refused, {} timed out)",
            self.connections_lost,
            self.handshakes,
            self.peak_handshakes_per_s,
            self.failed_attempts,
            self.refused_attempts,
            self.timed_out_attempts
        )?;
        let secs = |s: Option<f64>| s.map_or_else(|| "never".to_owned(), |s| format!("{s:.2} s"));
        for (n, wave) in self.waves.iter().enumerate() {
            writeln!(
                f,
                "wave {} at {:.2} s: {} connections lost; every client connected again after {}, \
                 every pending line answered after {}; {} handshakes",
                n + 1,
                wave.first_loss_s,
                wave.connections_lost,
                secs(wave.reconnected_after_s),
                secs(wave.answered_after_s),
                wave.handshakes
            )?;
        }
        if self.unfinished_waves > 0 {
            writeln!(f, "a wave was not over when the run ended")?;
        }
        Ok(())
    }
}
