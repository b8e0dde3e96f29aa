//! Certificates that warn (SPEC §11 v3): a certificate in use that expires
//! within [`WARN_WITHIN`] is said so at start, at each reload (their lines
//! are WARN, with the date and the days left) and once a day while it is
//! in use; the development certificate is renewed instead
//! (`devca::RENEW_WITHIN`).
//!
//! No periodic work while no certificate is near its end (SPEC §5: an idle
//! server does nothing): [`ExpirySchedule`] sets one timer, for the moment
//! the certificate in use enters its window; only from then on does it
//! come back daily.
//!
//! Time is read from tokio's clock from an anchor taken when the
//! certificate was loaded (the wall clock then, plus tokio's time since),
//! so that the same clock drives the timer and the day count, and a
//! paused-clock test drives both; the system's wall clock is taken instead
//! when it is ahead (after the machine was suspended, when tokio's clock
//! stood still). The timer itself runs on tokio's clock: after a suspend,
//! the daily line comes late by the time suspended.

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use tokio::time::Instant;

/// A certificate that expires within this is warned about: 14 days.
pub(super) const WARN_WITHIN: SignedDuration = SignedDuration::from_hours(14 * 24);

/// How often the check repeats once the certificate is in its window.
pub(super) const CHECK_EVERY: Duration = Duration::from_secs(24 * 60 * 60);

/// How long a day is, for a count of days left.
const DAY: i64 = 24 * 60 * 60;

/// The whole days left before `expiry` at `now` (rounded down: never more
/// time than there is), if `expiry` is within [`WARN_WITHIN`] of `now`;
/// negative once it has passed.
pub(super) fn days_left_if_soon(expiry: Option<Timestamp>, now: Timestamp) -> Option<i64> {
    let left = expiry?.duration_since(now);
    (left <= WARN_WITHIN).then(|| left.as_secs().div_euclid(DAY))
}

/// When the certificate in use is next checked: the moment it enters its
/// window, then every [`CHECK_EVERY`] while it stays in it. Invariant:
/// `next` is `None` only when the expiry is unknown (or too far to count).
#[derive(Debug)]
pub(super) struct ExpirySchedule {
    /// When the certificate in use expires.
    expiry: Option<Timestamp>,
    /// How long before `expiry` the checks begin.
    window: SignedDuration,
    /// The wall clock at `anchor`.
    wall: Timestamp,
    /// tokio's clock when the certificate was loaded.
    anchor: Instant,
    /// When the next check is due.
    next: Option<Instant>,
}

impl ExpirySchedule {
    /// The schedule of a certificate just loaded (and logged, so the first
    /// check inside the window is a day from now), checked from `window`
    /// before `expiry` on.
    pub(super) fn new(expiry: Option<Timestamp>, window: SignedDuration) -> Self {
        let mut schedule = Self {
            expiry,
            window,
            wall: Timestamp::now(),
            anchor: Instant::now(),
            next: None,
        };
        schedule.checked();
        schedule
    }

    /// The wall clock now, as this schedule counts it: the later of the
    /// anchor plus tokio's time since, and the system's wall clock (tokio's
    /// clock stands still while the machine is suspended; a paused test's
    /// wall clock is the one that stands still instead).
    pub(super) fn now(&self) -> Timestamp {
        let elapsed =
            SignedDuration::try_from(self.anchor.elapsed()).unwrap_or(SignedDuration::MAX);
        let counted = self.wall.checked_add(elapsed).unwrap_or(Timestamp::MAX);
        counted.max(Timestamp::now())
    }

    /// When the certificate in use expires.
    pub(super) fn expiry(&self) -> Option<Timestamp> {
        self.expiry
    }

    /// Whether the certificate in use is inside its window now.
    pub(super) fn in_window(&self) -> bool {
        self.expiry
            .is_some_and(|expiry| expiry.duration_since(self.now()) <= self.window)
    }

    /// Completes when the next check is due; never if none is.
    pub(super) async fn due(&self) {
        match self.next {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Makes the next check due now if the certificate is inside its
    /// window (rather than a day after it was loaded).
    pub(super) fn check_now_if_in_window(&mut self) {
        if self.in_window() {
            self.next = Some(Instant::now());
        }
    }

    /// Records a check done now: the next is a day from now inside the
    /// window, or the moment the certificate enters it.
    pub(super) fn checked(&mut self) {
        let now = Instant::now();
        self.next = match self.expiry {
            None => None,
            Some(_) if self.in_window() => now.checked_add(CHECK_EVERY),
            Some(expiry) => expiry
                .checked_sub(self.window)
                .ok()
                .and_then(|start| Duration::try_from(start.duration_since(self.now())).ok())
                .and_then(|wait| now.checked_add(wait)),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    #[test]
    fn days_left_are_counted_only_within_the_window() {
        let now = Timestamp::now();
        let at = |span: SignedDuration| Some(now.checked_add(span).expect("in range"));
        assert_eq!(days_left_if_soon(at(days(15)), now), None);
        assert_eq!(days_left_if_soon(at(days(14)), now), Some(14));
        assert_eq!(
            days_left_if_soon(at(days(3) + SignedDuration::from_hours(1)), now),
            Some(3)
        );
        assert_eq!(
            days_left_if_soon(at(SignedDuration::from_hours(23)), now),
            Some(0)
        );
        assert_eq!(
            days_left_if_soon(at(-SignedDuration::from_hours(1)), now),
            Some(-1)
        );
        assert_eq!(days_left_if_soon(None, now), None);
    }

    /// `elapsed` is `expected`, to the timer's millisecond.
    fn assert_about(elapsed: Duration, expected: Duration) {
        assert!(
            elapsed >= expected && elapsed < expected + Duration::from_millis(2),
            "{elapsed:?}"
        );
    }

    /// Counts the checks due over `span` of paused time.
    async fn checks_over(schedule: &mut ExpirySchedule, span: Duration) -> Vec<i64> {
        let end = Instant::now() + span;
        let mut seen = Vec::new();
        loop {
            tokio::select! {
                () = schedule.due() => {
                    seen.push(days_left_if_soon(schedule.expiry(), schedule.now()).unwrap_or(99));
                    schedule.checked();
                }
                () = tokio::time::sleep_until(end) => return seen,
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_certificate_in_its_window_is_checked_daily() {
        let expiry = Timestamp::now().checked_add(days(5) + SignedDuration::from_hours(1));
        let mut schedule = ExpirySchedule::new(expiry.ok(), WARN_WITHIN);
        // Logged at load; then a day later, and each day after.
        let started = Instant::now();
        schedule.due().await;
        assert_about(started.elapsed(), CHECK_EVERY);
        schedule.checked();
        let seen = checks_over(&mut schedule, CHECK_EVERY * 7 + Duration::from_secs(1)).await;
        // Days 2 to 8 after the load: 3, 2, 1, 0, then passed.
        assert_eq!(seen, [3, 2, 1, 0, -1, -2, -3]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_certificate_far_from_its_end_wakes_nothing_until_its_window() {
        let expiry = Timestamp::now().checked_add(days(20)).ok();
        let mut schedule = ExpirySchedule::new(expiry, WARN_WITHIN);
        // Six days of nothing at all, then the first check as the window
        // opens, then daily.
        let seen = checks_over(&mut schedule, CHECK_EVERY * 6 - Duration::from_secs(1)).await;
        assert!(seen.is_empty(), "{seen:?}");
        let seen = checks_over(&mut schedule, CHECK_EVERY * 3).await;
        // 14 days left as the window opens (13 and some hours once the
        // timer's millisecond has passed), one fewer each day.
        assert_eq!(seen.len(), 3, "{seen:?}");
        assert!(seen[0] == 14 || seen[0] == 13, "{seen:?}");
        assert_eq!(seen, [seen[0], seen[0] - 1, seen[0] - 2]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unknown_expiry_is_never_checked() {
        let mut schedule = ExpirySchedule::new(None, WARN_WITHIN);
        let seen = checks_over(&mut schedule, CHECK_EVERY * 400).await;
        assert!(seen.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_check_can_be_made_due_at_once_inside_the_window_only() {
        let far = Timestamp::now().checked_add(days(40)).ok();
        let mut schedule = ExpirySchedule::new(far, days(30));
        schedule.check_now_if_in_window();
        let seen = checks_over(&mut schedule, CHECK_EVERY * 9).await;
        assert!(seen.is_empty(), "{seen:?}");
        let near = Timestamp::now().checked_add(days(20)).ok();
        let mut schedule = ExpirySchedule::new(near, days(30));
        schedule.check_now_if_in_window();
        let started = Instant::now();
        schedule.due().await;
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wider_window_starts_earlier() {
        // The development certificate: renewed from 30 days before its end.
        let expiry = Timestamp::now().checked_add(days(31)).ok();
        let schedule = ExpirySchedule::new(expiry, days(30));
        assert!(!schedule.in_window());
        let started = Instant::now();
        schedule.due().await;
        assert_about(started.elapsed(), CHECK_EVERY);
        assert!(schedule.in_window());
    }
}
