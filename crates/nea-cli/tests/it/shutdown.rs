//! SPEC §8 on the real binary: on SIGTERM or SIGINT, lines already received
//! are answered, every client gets `shutting_down` and close_notify, and the
//! process exits 0 within a few seconds.

use std::time::{Duration, Instant};

use nea::protocol::{ErrorCode, Frame};
use nix::sys::signal::Signal;

use crate::common::Server;

async fn shuts_down_gracefully_on(signal: Signal) {
    let server = Server::start(&[]);
    let mut busy = server.connect().await;
    let mut idle = server.connect().await;
    assert_eq!(idle.round_trip("idle").await, "eldi");

    let lines: Vec<String> = (0..200).map(|i| format!("pending line {i}")).collect();
    let mut burst = lines.join("\n");
    burst.push('\n');
    busy.send(burst.as_bytes()).await;
    // Once the first reply is back, the whole burst has reached the server.
    assert_eq!(busy.reply().await, nea::reverse::reverse(&lines[0]));

    server.signal(signal);
    let signalled = Instant::now();
    server
        .wait_for_log("shutting down", crate::common::PATIENCE)
        .expect("shutdown starts");
    // No longer accepting: the listening socket is closed.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
    for line in &lines[1..] {
        assert_eq!(busy.reply().await, nea::reverse::reverse(line));
    }
    for client in [&mut busy, &mut idle] {
        match client.non_date_frame().await {
            Frame::Error { code, .. } => assert_eq!(code, ErrorCode::ShuttingDown),
            other => panic!("expected shutting_down, got {other:?}"),
        }
        assert!(
            client.clean_end().await,
            "the session ends with close_notify"
        );
    }
    let mut server = server;
    let status = server
        .wait_exit(Duration::from_secs(5))
        .expect("the server exits within 5 s");
    assert!(status.success(), "exit status {status:?}");
    assert!(signalled.elapsed() < Duration::from_secs(5));
    let log = server.log();
    assert!(
        log.contains(&format!("{} received", signal.as_str())),
        "{log}"
    );
    assert!(log.contains("reason=\"server shutdown\""), "{log}");
}

#[tokio::test]
async fn sigterm_answers_pending_lines_then_closes_everyone() {
    shuts_down_gracefully_on(Signal::SIGTERM).await;
}

#[tokio::test]
async fn sigint_answers_pending_lines_then_closes_everyone() {
    shuts_down_gracefully_on(Signal::SIGINT).await;
}

#[tokio::test]
async fn an_idle_server_stops_at_once() {
    let mut server = Server::start(&[]);
    server.signal(Signal::SIGTERM);
    let status = server.wait_exit(Duration::from_secs(5)).expect("exits");
    assert!(status.success());
}
