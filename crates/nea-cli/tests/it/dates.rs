//! SPEC §5 end to end, with short real periods: the first date one period
//! after the handshake, later ones on the `start + n × period` grid, and no
//! periodic work with no client. The exact schedule (20 periods, no drift,
//! under load) is shown with paused time in `nea::server::conn`'s tests.

use std::time::{Duration, Instant};

use nea::protocol::Frame;

use crate::common::{Client, Server};
use crate::in_process::{InProcess, dated};

/// The payload of the next date frame (skipping replies), and when it came.
async fn next_date(client: &mut Client) -> (jiff::Timestamp, Instant) {
    loop {
        if let Frame::Date { payload } = client.frame().await {
            assert_eq!(payload.len(), "2026-11-26T20:19:17.123Z".len(), "{payload}");
            assert!(
                payload.ends_with('Z') && payload.as_bytes()[19] == b'.',
                "{payload}"
            );
            let ts = payload.parse().expect("RFC 3339");
            return (ts, Instant::now());
        }
    }
}

fn millis(span: jiff::SignedDuration) -> i64 {
    span.as_millis() as i64
}

#[tokio::test]
async fn first_date_one_period_after_the_handshake_in_utc_milliseconds() {
    let server = Server::start(&["--date-period", "400ms"]);
    let connected = Instant::now();
    let mut client = server.connect().await;
    let (ts, arrived) = next_date(&mut client).await;
    let waited = arrived - connected;
    assert!(
        waited >= Duration::from_millis(350),
        "first date after {waited:?}, before one period"
    );
    assert!(
        waited <= Duration::from_millis(400 + 3_000),
        "first date after {waited:?}, far after one period"
    );
    let skew = millis(jiff::Timestamp::now().duration_since(ts)).abs();
    assert!(skew < 2_000, "date is {skew} ms away from now");
    assert!(server.stop().success());
}

#[tokio::test]
async fn dates_stay_on_their_grid_while_another_client_is_busy() {
    let period_ms = 100;
    let server = Server::start(&["--date-period", &format!("{period_ms}ms")]);
    let mut watcher = server.connect().await;
    let mut busy = server.connect().await;
    let load = tokio::spawn(async move {
        for i in 0..300 {
            let line = format!("{i} ").repeat(200);
            assert_eq!(busy.round_trip(&line).await, nea::reverse::reverse(&line));
        }
        busy
    });
    let (first, _) = next_date(&mut watcher).await;
    let mut worst = 0;
    for n in 1..=20 {
        let (ts, _) = next_date(&mut watcher).await;
        let expected = first + jiff::SignedDuration::from_millis(n * period_ms);
        let off = millis(ts.duration_since(expected)).abs();
        worst = worst.max(off);
    }
    // Each date stays within scheduling jitter of its deadline, whatever
    // the other client does (the tolerance is for a loaded machine; the
    // exact grid, to the millisecond over twenty periods, is the paused-
    // clock test in the session's unit tests).
    assert!(
        worst < 3 * period_ms,
        "a date was {worst} ms off its deadline"
    );
    load.await.expect("load task");
    assert!(server.stop().success());
}

#[tokio::test]
async fn no_periodic_work_without_clients() {
    let server = InProcess::start(dated(Duration::from_millis(20)));
    let mut client = server.connect().await;
    next_date(&mut client).await;
    // The count sees the server's threads: each date wakes them.
    let serving = server.context_switches();
    for _ in 0..5 {
        next_date(&mut client).await;
    }
    let woke = server.context_switches() - serving;
    assert!(woke >= 5, "5 dates sent with {woke} wake-ups");
    client.close().await;
    server
        .until("nea_sessions_ended_total{reason=\"closed\"}", |n| n == 1.0)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = server.context_switches();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let woke = server.context_switches() - before;
    // A broadcaster ticking every 20 ms would wake the server 50 times.
    assert!(
        woke <= 5,
        "the idle server was scheduled {woke} times in 1 s"
    );
    server.stop();
}
