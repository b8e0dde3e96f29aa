//! What every client of a storm adds to, and the clock they share: the
//! counters the report and the series are made of, the waves, and the
//! first problem seen.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::super::Protocol;
use super::lines::Schedule;
use super::waves::Waves;

/// The run's state, shared by every client, the sampler and the report.
/// Counters only grow, except `connected`.
#[derive(Debug)]
pub(super) struct Shared {
    pub(super) schedule: Schedule,
    pub(super) protocol: Protocol,
    /// When sending started: time zero of the schedule and the waves.
    pub(super) started: Instant,
    /// Clients connected now.
    pub(super) connected: AtomicU64,
    /// Lines answered in order by their exact reversal.
    pub(super) answered: AtomicU64,
    /// Handshakes completed after the first connections.
    pub(super) handshakes: AtomicU64,
    /// Reconnection attempts that failed (refused, reset, timed out...).
    pub(super) failed_attempts: AtomicU64,
    /// Of those, refused: nothing listening.
    pub(super) refused_attempts: AtomicU64,
    /// Of those, no TCP connection or no handshake within clientcli's
    /// connect timeout (the server's queue was longer than that), or the
    /// host unreachable.
    pub(super) timed_out_attempts: AtomicU64,
    pub(super) duplicates: AtomicU64,
    pub(super) out_of_order: AtomicU64,
    pub(super) wrong: AtomicU64,
    pub(super) gave_up: AtomicU64,
    waves: Mutex<Waves>,
    /// The first thing that went wrong, in one sentence.
    first_problem: Mutex<Option<String>>,
}

impl Shared {
    /// The state of a run whose `clients` are all connected, sending from
    /// now.
    pub(super) fn new(schedule: Schedule, protocol: Protocol) -> Self {
        Self {
            schedule,
            protocol,
            started: Instant::now(),
            connected: AtomicU64::new(schedule.clients as u64),
            answered: AtomicU64::new(0),
            handshakes: AtomicU64::new(0),
            failed_attempts: AtomicU64::new(0),
            refused_attempts: AtomicU64::new(0),
            timed_out_attempts: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            wrong: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            waves: Mutex::new(Waves::default()),
            first_problem: Mutex::new(None),
        }
    }

    /// Time since sending started.
    pub(super) fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// The waves (a poisoned lock still holds valid counts: each update
    /// is a few integer steps).
    pub(super) fn waves(&self) -> MutexGuard<'_, Waves> {
        self.waves.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a problem in `counter`, and keeps its sentence if it is the
    /// first of the run.
    pub(super) fn problem(&self, counter: &AtomicU64, sentence: impl FnOnce() -> String) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            *first = Some(sentence());
        }
    }

    /// The first problem's sentence, if any.
    pub(super) fn first_problem(&self) -> Option<String> {
        self.first_problem
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A counter's value now.
pub(super) fn count(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}
