//! SPEC §7: a client that stops reading is dropped once its writes stall
//! past the write timeout; nobody else is affected and memory stays bounded.

use std::time::Duration;

use nea::protocol::Frame;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

use crate::common::{PATIENCE, Server, tls_over};

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_others_keep_their_dates() {
    let period_ms: i64 = 200;
    let server = Server::start(&[
        "--write-timeout",
        "1s",
        "--date-period",
        &format!("{period_ms}ms"),
    ]);
    let mut watcher = server.connect().await;
    let rss_before = server.rss_kib();

    // A small receive buffer so the server's writes stall quickly.
    let socket = TcpSocket::new_v4().expect("socket");
    socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    let tcp = socket.connect(server.addr).await.expect("tcp");
    let mut slow = tls_over(tcp, server.pki.client_config())
        .await
        .expect("tls");
    let flood = tokio::spawn(async move {
        let line = format!("{}\n", "s".repeat(60_000));
        // Up to 24 MB, far more than the server may hold; the writes stop
        // (blocked, then failing) once the server stops reading.
        for sent in 0..400 {
            if slow.write_all(line.as_bytes()).await.is_err() {
                return sent;
            }
        }
        400
    });

    // While the slow client floods, the watcher's dates stay on time.
    let mut previous: Option<jiff::Timestamp> = None;
    let mut dates = 0;
    while server.count_logs("slow reader") == 0 && dates < 50 {
        if let Frame::Date { payload } = watcher.frame().await {
            let ts: jiff::Timestamp = payload.parse().expect("date");
            if let Some(previous) = previous {
                let gap = ts.duration_since(previous).as_millis() as i64;
                assert!(
                    (gap - period_ms).abs() < 100,
                    "a date gap of {gap} ms while another client stalls"
                );
            }
            previous = Some(ts);
            dates += 1;
        }
    }
    let line = server
        .wait_for_log("slow reader", PATIENCE)
        .expect("the slow reader is dropped");
    assert!(line.contains("client left"), "{line}");
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
