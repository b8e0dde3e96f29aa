//! SPEC §8: at shutdown, lines already received are answered, every client
//! gets `shutting_down` and close_notify, and the server stops without
//! waiting out its grace. What a shutdown does is shown on a server run in
//! process, through its state; that SIGTERM and SIGINT start one, and that
//! the program then exits 0, on the real binary.

use std::time::{Duration, Instant};

use nea::protocol::{ErrorCode, Frame};
use nea::server::{Config, Event};
use nix::sys::signal::Signal;

use crate::common::{Client, GENEROUS, PATIENCE, Server, get, start_with_admin};
use crate::in_process::InProcess;

/// A client that has sent a burst of lines the server has received (its
/// first reply is back), and the lines still to be answered.
async fn with_lines_pending(mut busy: Client) -> (Client, Vec<String>) {
    let lines: Vec<String> = (0..200).map(|i| format!("pending line {i}")).collect();
    let mut burst = lines.join("\n");
    burst.push('\n');
    busy.send(burst.as_bytes()).await;
    // Once the first reply is back, the whole burst has reached the server.
    assert_eq!(busy.reply().await, nea::reverse::reverse(&lines[0]));
    (busy, lines[1..].to_vec())
}

/// The rest of the lines answered, then, to each client, `shutting_down`
/// and close_notify.
async fn answered_then_told(busy: &mut Client, idle: &mut Client, pending: &[String]) {
    for line in pending {
        assert_eq!(busy.reply().await, nea::reverse::reverse(line));
    }
    for client in [busy, idle] {
        match client.non_date_frame().await {
            Frame::Error { code, .. } => assert_eq!(code, ErrorCode::ShuttingDown),
            other => panic!("expected shutting_down, got {other:?}"),
        }
        assert!(
            client.clean_end().await,
            "the session ends with close_notify"
        );
    }
}

#[tokio::test]
async fn shutdown_answers_pending_lines_then_closes_everyone_without_waiting_out_the_grace() {
    // A grace far longer than the bound below: a shutdown that waited it
    // out could not pass.
    let config = Config::builder().shutdown_grace(Duration::from_secs(60));
    let mut server = InProcess::start(config);
    let mut idle = server.connect().await;
    assert_eq!(idle.round_trip("idle").await, "eldi");
    let (mut busy, pending) = with_lines_pending(server.connect().await).await;

    let started = Instant::now();
    server.begin_shutdown();
    let stopping = server
        .until_event(|event| matches!(event, Event::Stopping { .. }))
        .await;
    assert_eq!(stopping, Event::Stopping { clients: 2 });
    // No longer accepting: the listening socket is closed.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
    answered_then_told(&mut busy, &mut idle, &pending).await;
    drop((busy, idle));
    server.until_ended(2.0).await;
    assert_eq!(
        server.sample("nea_sessions_ended_total{reason=\"shutdown\"}"),
        2.0,
        "{}",
        server.metrics()
    );
    assert_eq!(
        server.sample("nea_sessions_ended_total{reason=\"grace_expired\"}"),
        0.0
    );
    assert_eq!(server.sample("nea_lines_answered_total"), 201.0);
    server.stop();
    let took = started.elapsed();
    assert!(took < GENEROUS, "the shutdown took {took:?}");
}

/// `signal` to the real binary: shutdown starts (its health says so), the
/// pending lines are answered, everyone is told and closed cleanly, the
/// process exits 0, and the signal is in its log.
async fn shuts_down_gracefully_on(signal: Signal) {
    let (server, admin) = start_with_admin(&[]);
    let mut idle = server.connect().await;
    assert_eq!(idle.round_trip("idle").await, "eldi");
    let (mut busy, pending) = with_lines_pending(server.connect().await).await;

    server.signal(signal);
    let deadline = Instant::now() + PATIENCE;
    while get(admin, "/healthz") != (503, "shutting down\n".to_owned()) {
        assert!(Instant::now() < deadline, "shutdown did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // No longer accepting: the listening socket is closed.
    assert!(tokio::net::TcpStream::connect(server.addr).await.is_err());
    // Closed cleanly, each session was drained, not dropped at the grace.
    answered_then_told(&mut busy, &mut idle, &pending).await;
    let mut server = server;
    let status = server.wait_exit(PATIENCE).expect("the server exits");
    assert!(status.success(), "exit status {status:?}");
    let log = server.log();
    assert!(
        log.contains(&format!("{} received", signal.as_str())),
        "{log}"
    );
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
    let status = server.wait_exit(GENEROUS).expect("exits");
    assert!(status.success());
}
