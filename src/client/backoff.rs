//! When a reconnecting session (`clientcli --reconnect`) tries again, and
//! after which failures. Public, and the one place the schedule is
//! written, so that a program that stands in for many such clients
//! (`loadcli storm`, which measures a server restart under thousands of
//! them) waits and gives up exactly as they do.
//!
//! A good citizen backs off across every kind of refusal: a connection
//! turned away after its handshake (`server_full`, `address_limit`), or
//! closed during it, counts as a failed attempt like a refused connect, so
//! that clients of a full server do not come back every half second with
//! a full handshake each. The schedule starts over only after a session
//! that was actually served for a while ([`SERVED_FOR`]).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::error::ClientError;

/// Delay before the first reconnection attempt.
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(500);

/// Longest delay between two reconnection attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long a connection must have been served (up, and sending more than
/// a rejection) for the next loss to start the schedule over.
pub const SERVED_FOR: Duration = Duration::from_secs(10);

/// Where a reconnecting client stands in its schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backoff {
    /// The delay before the first attempt after a served session.
    first: Duration,
    /// Attempts since the last served session. Invariant: the next delay
    /// is for attempt `attempts + 1`.
    attempts: u32,
}

impl Backoff {
    /// A schedule that starts at `first` and doubles to `MAX_BACKOFF`.
    pub fn new(first: Duration) -> Self {
        Self { first, attempts: 0 }
    }

    /// The next attempt's number (1 for the first) and the delay before it.
    pub fn next_attempt(&mut self) -> (u32, Duration) {
        self.attempts = self.attempts.saturating_add(1);
        (self.attempts, backoff(self.first, self.attempts))
    }

    /// A connection was served for `served` (and not only rejected): from
    /// [`SERVED_FOR`] on, the schedule starts over.
    pub fn served(&mut self, served: Duration) {
        if served >= SERVED_FOR {
            self.attempts = 0;
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(FIRST_BACKOFF)
    }
}

/// Whether `clientcli --reconnect` tries again after `failure` (the server
/// went away, refused, did not answer, or was full) rather than giving up
/// (a certificate not trusted, a failed handshake, an unknown host...).
///
pub fn is_retried(failure: &ClientError) -> bool {
    failure.is_transient()
}

/// `first × 2^(attempt-1)`, capped at [`MAX_BACKOFF`], then scaled by a
/// random factor in [0.5, 1) so that clients of a restarted server do not
/// all come back at the same instant.
pub(crate) fn backoff(first: Duration, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(16);
    let ceiling = first.saturating_mul(1 << exponent).min(MAX_BACKOFF);
    // A fresh `RandomState` is randomly keyed: enough randomness for jitter
    // without a random-number crate.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let fraction = 0.5 + (random % 1000) as f64 / 2000.0;
    ceiling.mul_f64(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::Options;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let first = Duration::from_millis(500);
        for attempt in 1..=10 {
            let ceiling = (first * 2u32.pow(attempt - 1)).min(MAX_BACKOFF);
            let delay = backoff(first, attempt);
            assert!(delay <= ceiling, "attempt {attempt}: {delay:?}");
            assert!(delay >= ceiling / 2, "attempt {attempt}: {delay:?}");
        }
        assert!(backoff(first, 1000) <= MAX_BACKOFF);
    }

    #[test]
    fn attempts_grow_across_losses_until_a_session_is_served_for_a_while() {
        let mut schedule = Backoff::new(Duration::from_millis(500));
        let (first, delay) = schedule.next_attempt();
        assert_eq!(first, 1);
        assert!(delay <= Duration::from_millis(500));
        // Rejected at once (server_full): the count goes on.
        schedule.served(Duration::from_millis(20));
        assert_eq!(schedule.next_attempt().0, 2);
        schedule.served(SERVED_FOR - Duration::from_millis(1));
        let (third, delay) = schedule.next_attempt();
        assert_eq!(third, 3);
        assert!(delay >= Duration::from_secs(1), "{delay:?}");
        // Served for a while: it starts over.
        schedule.served(SERVED_FOR);
        assert_eq!(schedule.next_attempt().0, 1);
        assert_eq!(Backoff::default(), Backoff::new(FIRST_BACKOFF));
    }

    #[test]
    fn the_public_schedule_is_the_one_clientcli_follows() {
        // What every session waits: the default first delay, then doubling.
        assert_eq!(
            Options::new("localhost", 1).expect("options").first_backoff,
            FIRST_BACKOFF
        );
        let mut schedule = Backoff::default();
        for attempt in 1..=8 {
            let ceiling = (FIRST_BACKOFF * 2u32.pow(attempt - 1)).min(MAX_BACKOFF);
            let (number, delay) = schedule.next_attempt();
            assert_eq!(number, attempt);
            assert!(
                ceiling / 2 <= delay && delay <= ceiling,
                "attempt {attempt}: {delay:?}"
            );
        }
        assert!(is_retried(&ClientError::ServerShutDown));
        assert!(!is_retried(&ClientError::NotTls {
            addr: "localhost:1".to_owned(),
        }));
    }
}
