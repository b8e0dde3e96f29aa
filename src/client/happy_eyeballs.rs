//! Connecting to the first of several addresses that answers, as Happy
//! Eyeballs v2 (RFC 8305) does (SPEC §13).
//!
//! A host name often resolves to an IPv6 and an IPv4 address, and one of
//! them may not answer at all (a broken IPv6 route is the classic case):
//! tried one after the other, each silent address would cost a whole
//! connect timeout. Here the addresses are tried in the RFC's order
//! (families interleaved, the resolver's first family first), a new
//! attempt starts every [`ATTEMPT_DELAY`] while the earlier ones are still
//! pending, or at once when one fails, and the first connection made wins;
//! the others are dropped. A silent first address costs [`ATTEMPT_DELAY`],
//! not a timeout.
//!
//! hyper-util's connector implements the older RFC 6555 (two families,
//! one fallback), and no well-kept crate implements RFC 8305 for tokio,
//! so this is written here: the order and the race, generic over how one
//! attempt connects, so that the schedule is tested with a paused clock
//! and the real thing with real sockets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::task::JoinSet;

/// How long an attempt is given before the next one starts beside it: the
/// "Connection Attempt Delay" RFC 8305 §5 recommends (250 ms; at least
/// 100 ms, at most 2 s).
pub(crate) const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// `addrs` in the order RFC 8305 §4 tries them: the family of the
/// resolver's first address first, then alternating between the families,
/// each family in the resolver's order.
pub(crate) fn attempt_order(addrs: &[SocketAddr]) -> Vec<SocketAddr> {
    let Some(first) = addrs.first() else {
        return Vec::new();
    };
    let (mut preferred, mut other): (Vec<SocketAddr>, Vec<SocketAddr>) = addrs
        .iter()
        .partition(|addr| addr.is_ipv6() == first.is_ipv6());
    let mut order = Vec::with_capacity(addrs.len());
    let (mut a, mut b) = (preferred.drain(..), other.drain(..));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return order,
            (x, y) => order.extend(x.into_iter().chain(y)),
        }
    }
}

/// Connects to the first of `addrs` (already in [`attempt_order`]) that
/// answers, starting an attempt with `connect` every `delay` while earlier
/// ones are pending, or as soon as one fails. On success, the connection
/// and the address it went to; the other attempts are dropped. If every
/// attempt fails, each address with its error, in the order tried. No
/// deadline of its own: the caller bounds the whole race.
pub(crate) async fn first_to_connect<F, Fut, T>(
    addrs: Vec<SocketAddr>,
    delay: Duration,
    connect: F,
) -> Result<(T, SocketAddr), Vec<(SocketAddr, io::Error)>>
where
    F: Fn(SocketAddr) -> Fut,
    Fut: Future<Output = io::Result<T>> + Send + 'static,
    T: Send + 'static,
{
    let mut waiting = addrs.into_iter();
    let mut attempts = JoinSet::new();
    let mut failures = Vec::new();
    let start = |attempts: &mut JoinSet<_>, addr: SocketAddr| {
        let attempt = connect(addr);
        attempts.spawn(async move { (addr, attempt.await) });
    };
    loop {
        if attempts.is_empty() {
            match waiting.next() {
                Some(addr) => start(&mut attempts, addr),
                None => return Err(failures),
            }
        }
        let more_waiting = waiting.len() > 0;
        tokio::select! {
            Some(done) = attempts.join_next() => match done {
                Ok((addr, Ok(connection))) => return Ok((connection, addr)),
                Ok((addr, Err(err))) => {
                    failures.push((addr, err));
                    // A failure starts the next attempt at once.
                    if let Some(addr) = waiting.next() {
                        start(&mut attempts, addr);
                    }
                }
                // An attempt cannot panic or be cancelled here; were it to,
                // it is one failure among the others.
                Err(_) => {}
            },
            () = tokio::time::sleep(delay), if more_waiting => {
                if let Some(addr) = waiting.next() {
                    start(&mut attempts, addr);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};
    use std::sync::{Arc, Mutex};

    use tokio::time::Instant;

    use super::*;

    fn v4(last: u8) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, last), 3443))
    }

    fn v6(last: u16) -> SocketAddr {
        SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, last), 3443))
    }

    #[test]
    fn families_alternate_starting_with_the_first_one_resolved() {
        assert_eq!(
            attempt_order(&[v6(1), v6(2), v6(3), v4(1), v4(2)]),
            [v6(1), v4(1), v6(2), v4(2), v6(3)]
        );
        assert_eq!(attempt_order(&[v4(1), v6(1), v4(2)]), [v4(1), v6(1), v4(2)]);
        assert_eq!(attempt_order(&[v4(1), v4(2)]), [v4(1), v4(2)]);
        assert!(attempt_order(&[]).is_empty());
    }

    /// How each address behaves: it answers (or fails) after a time, or
    /// never answers.
    #[derive(Clone, Copy)]
    enum Answer {
        ConnectsAfter(Duration),
        FailsAfter(Duration),
        Silent,
    }

    /// One attempt of a scripted connector: the address it reached.
    type Attempt = std::pin::Pin<Box<dyn Future<Output = io::Result<SocketAddr>> + Send>>;

    /// When each attempt started, from the start of the test.
    type Started = Arc<Mutex<Vec<(SocketAddr, Duration)>>>;

    /// A connector with a scripted answer per address, recording when each
    /// attempt started (paused clock: exact instants).
    fn scripted(answers: Vec<(SocketAddr, Answer)>) -> (impl Fn(SocketAddr) -> Attempt, Started) {
        let began = Instant::now();
        let started = Arc::new(Mutex::new(Vec::new()));
        let log = started.clone();
        let connect = move |addr: SocketAddr| {
            log.lock().expect("log").push((addr, began.elapsed()));
            let answer = answers
                .iter()
                .find(|(a, _)| *a == addr)
                .map_or(Answer::Silent, |(_, answer)| *answer);
            Box::pin(async move {
                match answer {
                    Answer::ConnectsAfter(after) => {
                        tokio::time::sleep(after).await;
                        Ok(addr)
                    }
                    Answer::FailsAfter(after) => {
                        tokio::time::sleep(after).await;
                        Err(io::ErrorKind::ConnectionRefused.into())
                    }
                    Answer::Silent => std::future::pending().await,
                }
            }) as Attempt
        };
        (connect, started)
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[tokio::test(start_paused = true)]
    async fn a_silent_first_address_costs_one_attempt_delay() {
        let (connect, started) = scripted(vec![
            (v6(1), Answer::Silent),
            (v4(1), Answer::ConnectsAfter(MS(10))),
        ]);
        let began = Instant::now();
        let (connected, addr) = first_to_connect(vec![v6(1), v4(1)], ATTEMPT_DELAY, connect)
            .await
            .expect("the second address answers");
        assert_eq!((connected, addr), (v4(1), v4(1)));
        assert_eq!(began.elapsed(), ATTEMPT_DELAY + MS(10));
        assert_eq!(
            *started.lock().expect("log"),
            [(v6(1), MS(0)), (v4(1), ATTEMPT_DELAY)]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_starts_the_next_attempt_at_once() {
        let (connect, started) = scripted(vec![
            (v6(1), Answer::FailsAfter(MS(20))),
            (v4(1), Answer::FailsAfter(MS(30))),
            (v6(2), Answer::ConnectsAfter(MS(5))),
        ]);
        let (_, addr) = first_to_connect(vec![v6(1), v4(1), v6(2)], ATTEMPT_DELAY, connect)
            .await
            .expect("the third address answers");
        assert_eq!(addr, v6(2));
        assert_eq!(
            *started.lock().expect("log"),
            [(v6(1), MS(0)), (v4(1), MS(20)), (v6(2), MS(50))]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_first_answer_still_wins_over_a_later_one() {
        let (connect, started) = scripted(vec![
            (v6(1), Answer::ConnectsAfter(ATTEMPT_DELAY + MS(10))),
            (v4(1), Answer::ConnectsAfter(MS(100))),
        ]);
        let (_, addr) = first_to_connect(vec![v6(1), v4(1)], ATTEMPT_DELAY, connect)
            .await
            .expect("connects");
        // The first attempt answers 10 ms after the second started, before
        // the second's 100 ms.
        assert_eq!(addr, v6(1));
        assert_eq!(started.lock().expect("log").len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn every_failure_is_reported_in_the_order_tried() {
        let (connect, _) = scripted(vec![
            (v4(1), Answer::FailsAfter(MS(1))),
            (v4(2), Answer::FailsAfter(MS(1))),
        ]);
        let failures = first_to_connect(vec![v4(1), v4(2)], ATTEMPT_DELAY, connect)
            .await
            .expect_err("nothing answers");
        let tried: Vec<_> = failures.iter().map(|(addr, _)| *addr).collect();
        assert_eq!(tried, [v4(1), v4(2)]);
        assert!(
            failures
                .iter()
                .all(|(_, err)| err.kind() == io::ErrorKind::ConnectionRefused)
        );
        let none = first_to_connect(Vec::new(), ATTEMPT_DELAY, |_| async {
            Ok::<(), io::Error>(())
        })
        .await;
        assert!(none.expect_err("no address").is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn every_address_gets_an_attempt_while_all_stay_silent() {
        let (connect, started) = scripted(Vec::new());
        let addrs = vec![v6(1), v4(1), v6(2)];
        let raced =
            tokio::time::timeout(MS(2_000), first_to_connect(addrs, ATTEMPT_DELAY, connect));
        assert!(raced.await.is_err(), "nothing answers");
        assert_eq!(
            *started.lock().expect("log"),
            [
                (v6(1), MS(0)),
                (v4(1), ATTEMPT_DELAY),
                (v6(2), ATTEMPT_DELAY * 2)
            ]
        );
    }
}
