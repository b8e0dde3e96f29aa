//! SPEC §7: a client that stops reading is dropped once its writes stall
//! past the write timeout; nobody else is affected and memory stays bounded.
//! On the real binary, whose memory is its own to measure.

use std::net::SocketAddr;
use std::time::Duration;

use nea::protocol::Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::task::JoinHandle;

use crate::common::{Client, PATIENCE, Server, get, sample, start_with_admin, until_scraped};

const PERIOD_MS: i64 = 200;

/// The series of sessions ended because their client stopped reading.
const SLOW_READER: &str = "nea_sessions_ended_total{reason=\"slow_reader\"}";

/// A client with a small receive buffer that floods the server with lines
/// and never reads; the task ends with the number of lines it got to send
/// once the server drops it.
async fn flooding_client(server: &Server) -> JoinHandle<u32> {
    // A small receive buffer so the server's writes stall quickly.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(server.addr).await.expect("tcp");
    let mut slow = crate::common::tls_over(tcp, server.pki.client_config())
        .await
        .expect("tls");
    tokio::spawn(async move {
        let line = format!("{}\n", "s".repeat(60_000));
        // Up to 24 MB, far more than the server may hold; the writes stop
        // (blocked, then failing) once the server stops reading.
        for sent in 0..400 {
            if slow.write_all(line.as_bytes()).await.is_err() {
                return sent;
            }
        }
        400
    })
}

/// Reads the watcher's dates until the slow reader is dropped (or 50 dates
/// have come), checking that each comes one period after the one before.
async fn dates_keep_coming(watcher: &mut Client, admin: SocketAddr) {
    let mut previous: Option<jiff::Timestamp> = None;
    let mut dates = 0;
    while dates < 50 && sample(&get(admin, "/metrics").1, SLOW_READER) == 0.0 {
        if let Frame::Date { payload } = watcher.frame().await {
            let ts: jiff::Timestamp = payload.parse().expect("date");
            if let Some(previous) = previous {
                let gap = ts.duration_since(previous).as_millis() as i64;
                // A watcher held up by the stalled client would wait for
                // its write timeout (1 s); the tolerance is scheduling
                // jitter on a loaded machine, well short of that.
                assert!(
                    (gap - PERIOD_MS).abs() < 600,
                    "a date gap of {gap} ms while another client stalls"
                );
            }
            previous = Some(ts);
            dates += 1;
        }
    }
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_others_keep_their_dates() {
    let (server, admin) = start_with_admin(&[
        "--write-timeout",
        "1s",
        "--date-period",
        &format!("{PERIOD_MS}ms"),
    ]);
    let mut watcher = server.connect().await;
    let rss_before = server.rss_kib();
    let flood = flooding_client(&server).await;

    // While the slow client floods, the watcher's dates stay on time.
    dates_keep_coming(&mut watcher, admin).await;
    until_scraped(admin, SLOW_READER, |n| n == 1.0).await;
    let (_, metrics) = get(admin, "/metrics");
    assert_eq!(sample(&metrics, "nea_slow_reader_drops_total"), 1.0);
    let sent = tokio::time::timeout(PATIENCE, flood)
        .await
        .expect("the flood ends once the server drops the client")
        .expect("flood task");
    assert!(sent < 400, "the server took all {sent} lines");
    let growth = server.rss_kib().saturating_sub(rss_before);
    assert!(growth < 8 * 1024, "server RSS grew by {growth} KiB");

    assert_eq!(watcher.round_trip("alive").await, "evila");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(server.stop().success());
}
