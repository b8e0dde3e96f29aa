//! What a trickle run measured: the report (text and `--json`) and what
//! fails the run. The report is printed whether or not the run passed: a
//! failed run's figures are the point of it.

use std::time::Duration;

use super::super::Percentiles;

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Stalling addresses.
    pub addresses: usize,
    /// Stalled sockets per address.
    pub sockets_per_address: usize,
    /// Stalled sockets in all: `addresses × sockets_per_address`.
    pub stalled_sockets: usize,
    /// The first and last stalling address.
    pub first_address: String,
    pub last_address: String,
    /// The measured handshakes' address.
    pub prober: String,
    /// Bytes of the ClientHello record; each stalled socket sends all but
    /// the last.
    pub hello_bytes: usize,
    /// Seconds between two bytes of a stalled socket.
    pub byte_interval_s: f64,
    /// Stalled sockets open as the measured handshakes started: the fewest
    /// and the most (`null` if none was measured).
    pub stalled_open_min: Option<u64>,
    pub stalled_open_max: Option<u64>,
    /// Stalled connections made in all: the first ones, and those made
    /// again after the server closed one.
    pub stalled_opened: u64,
    /// Stalled connections the server closed (its handshake deadline, or
    /// shedding).
    pub stalled_closed_by_server: u64,
    /// Stalled connections that could not be made.
    pub stalled_connect_failures: u64,
    /// Handshakes measured, and how each ended.
    pub samples: usize,
    pub completed: usize,
    pub failed: usize,
    pub timed_out: usize,
    /// After this many seconds a handshake counted as timed out.
    pub sample_timeout_s: f64,
    /// `--max-handshake-time`, seconds, if given.
    pub max_handshake_time_s: Option<f64>,
    /// Times of the handshakes that completed (from the TCP connect to the
    /// handshake done).
    pub handshake: Percentiles,
    /// The first failed handshake's error.
    pub first_failure: Option<String>,
    /// Seconds from the first measured handshake to the end of the last.
    pub seconds: f64,
    /// The server's resident memory (`--pid`), KiB: before anything
    /// stalled, and once every stalled socket was open.
    pub server_rss_kib_before: Option<u64>,
    pub server_rss_kib_stalled: Option<u64>,
}

impl Report {
    /// What fails the run, one clause each; empty if it passed: every
    /// handshake completed, within `--max-handshake-time` if given.
    pub(crate) fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        if self.timed_out > 0 {
            failures.push(format!(
                "{} of {} handshakes took more than {:.1} s",
                self.timed_out, self.samples, self.sample_timeout_s
            ));
        }
        if self.failed > 0 {
            failures.push(format!(
                "{} of {} handshakes failed (first: {})",
                self.failed,
                self.samples,
                self.first_failure.as_deref().unwrap_or("?")
            ));
        }
        let slowest = Duration::from_micros(self.handshake.max_us).as_secs_f64();
        if let Some(limit) = self.max_handshake_time_s.filter(|limit| slowest > *limit) {
            failures.push(format!(
                "the slowest handshake took {slowest:.3} s (limit {limit:.3} s)"
            ));
        }
        failures
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} stalled handshakes: {} addresses ({} to {}) × {} sockets, each sending a \
             {}-byte ClientHello one byte every {:.3} s, all but its last byte",
            self.stalled_sockets,
            self.addresses,
            self.first_address,
            self.last_address,
            self.sockets_per_address,
            self.hello_bytes,
            self.byte_interval_s
        )?;
        let open = match (self.stalled_open_min, self.stalled_open_max) {
            (Some(low), Some(high)) => format!("{low} – {high}"),
            _ => "-".to_owned(),
        };
        writeln!(
            f,
            "stalled sockets open as each handshake started: {open}; {} connections made, \
             {} closed by the server, {} could not be made",
            self.stalled_opened, self.stalled_closed_by_server, self.stalled_connect_failures
        )?;
        if let (Some(before), Some(stalled)) =
            (self.server_rss_kib_before, self.server_rss_kib_stalled)
        {
            writeln!(
                f,
                "server memory: {before} KiB before, {stalled} KiB with every stalled socket open"
            )?;
        }
        writeln!(
            f,
            "handshakes from {}: {}; {} of {} completed, {} failed, {} timed out (after {:.1} s)",
            self.prober,
            self.handshake,
            self.completed,
            self.samples,
            self.failed,
            self.timed_out,
            self.sample_timeout_s
        )
    }
}
