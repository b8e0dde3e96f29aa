//! Disconnection waves: what an operator wants to know about a restart.
//!
//! A wave opens at the first connection lost while none is open, and
//! closes once every client is connected again and every line that was
//! pending, or came due, before its client was back is answered. Its times
//! count from its first loss.

use std::time::Duration;

/// One disconnection wave, times from the start of sending.
#[derive(Debug, Clone, Copy)]
pub(super) struct Wave {
    pub(super) first_loss: Duration,
    /// Connections lost while it was open.
    pub(super) losses: u64,
    /// Handshakes completed before it opened.
    handshakes_before: u64,
    /// Every client connected again (reset by a later loss in the wave).
    pub(super) reconnected: Option<Duration>,
    /// Every line pending before its client was back, answered: the wave
    /// is over.
    pub(super) answered: Option<Duration>,
    /// Handshakes completed while it was open.
    pub(super) handshakes: u64,
}

/// Which clients are away or catching up, and the waves so far.
///
/// Invariants: `disconnected` clients have lost their connection and not
/// made a new one; `recovering` clients (a superset) have lost one and not
/// yet had every line answered that was due before they were back; a wave
/// is open exactly while `recovering > 0` after a loss.
#[derive(Debug, Default)]
pub(super) struct Waves {
    disconnected: usize,
    recovering: usize,
    /// The wave open now, if any.
    pub(super) open: Option<Wave>,
    /// The waves closed, in order.
    pub(super) done: Vec<Wave>,
}

impl Waves {
    /// A client lost its connection; `was_recovering` if it had not caught
    /// up from an earlier loss.
    pub(super) fn lost(&mut self, now: Duration, handshakes: u64, was_recovering: bool) {
        self.disconnected += 1;
        if !was_recovering {
            self.recovering += 1;
        }
        let wave = self.open.get_or_insert(Wave {
            first_loss: now,
            losses: 0,
            handshakes_before: handshakes,
            reconnected: None,
            answered: None,
            handshakes: 0,
        });
        wave.losses += 1;
        wave.reconnected = None;
    }

    /// A client that had lost its connection has a new one.
    pub(super) fn connected(&mut self, now: Duration) {
        self.disconnected = self.disconnected.saturating_sub(1);
        if self.disconnected == 0
            && let Some(wave) = &mut self.open
        {
            wave.reconnected.get_or_insert(now);
        }
    }

    /// A client has caught up: every line due before it was back is
    /// answered.
    pub(super) fn recovered(&mut self, now: Duration, handshakes: u64) {
        self.recovering = self.recovering.saturating_sub(1);
        if self.recovering == 0
            && self.disconnected == 0
            && let Some(mut wave) = self.open.take()
        {
            wave.reconnected.get_or_insert(now);
            wave.answered = Some(now);
            wave.handshakes = handshakes.saturating_sub(wave.handshakes_before);
            self.done.push(wave);
        }
    }

    /// Every wave, closed or still open, in order.
    pub(super) fn all(&self) -> impl Iterator<Item = &Wave> {
        self.done.iter().chain(&self.open)
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::WaveReport;
    use super::*;

    #[test]
    fn a_wave_closes_once_every_client_is_back_and_caught_up() {
        let t = Duration::from_millis;
        let mut waves = Waves::default();
        waves.lost(t(100), 0, false);
        waves.lost(t(110), 0, false);
        waves.connected(t(300));
        waves.connected(t(400));
        assert_eq!(waves.open.and_then(|w| w.reconnected), Some(t(400)));
        waves.recovered(t(420), 2);
        assert!(waves.open.is_some());
        // One flaps: lost again before catching up, back, then caught up.
        waves.lost(t(450), 2, true);
        assert_eq!(waves.open.and_then(|w| w.reconnected), None);
        waves.connected(t(600));
        waves.recovered(t(650), 3);
        assert!(waves.open.is_none());
        let [wave] = waves.done.as_slice() else {
            panic!("one wave: {:?}", waves.done)
        };
        let report = WaveReport::of(wave);
        assert_eq!(report.connections_lost, 3);
        assert_eq!(report.handshakes, 3);
        assert!((report.reconnected_after_s.expect("back") - 0.5).abs() < 1e-9);
        assert!((report.answered_after_s.expect("over") - 0.55).abs() < 1e-9);
        // The next loss opens a second wave.
        waves.lost(t(2000), 3, false);
        assert_eq!(waves.open.map(|w| w.first_loss), Some(t(2000)));
        assert_eq!(waves.all().count(), 2);
    }
}
