//! SPEC §6–7: connections still in their handshake are bounded (deadline and
//! cap), and broken peers end their own connection only, each counted once
//! under its reason. A flood of them is a few lines at INFO, not one each.

use std::time::{Duration, Instant};

use nea::server::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Client, PATIENCE, Server, tls_connect, tls_over};
use crate::in_process::InProcess;

/// The series of handshake failures for `reason`.
fn failures(reason: &str) -> String {
    format!("nea_handshake_failures_total{{reason=\"{reason}\"}}")
}

/// The series of sessions ended for `reason`.
fn ended(reason: &str) -> String {
    format!("nea_sessions_ended_total{{reason=\"{reason}\"}}")
}

/// Reads until the server closes; returns the bytes it sent and how long
/// the close took.
async fn until_closed(mut socket: TcpStream, started: Instant) -> (Vec<u8>, Duration) {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (received, started.elapsed()),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the server never closed the socket"),
        }
    }
}

#[tokio::test]
async fn idle_sockets_are_closed_at_the_deadline_while_real_clients_are_served() {
    let server = InProcess::start(Config::builder().handshake_timeout(Duration::from_millis(600)));
    let mut idle = Vec::new();
    for _ in 0..3 {
        let socket = TcpStream::connect(server.addr).await.expect("tcp");
        idle.push((socket, Instant::now()));
    }
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("served").await, "devres");
    for (socket, connected) in idle {
        let (sent, after) = until_closed(socket, connected).await;
        assert!(sent.is_empty(), "nothing is sent to a silent socket");
        assert!(
            after >= Duration::from_millis(550),
            "closed after {after:?}"
        );
    }
    // Each closed as a handshake that timed out, and as nothing else.
    server.until(&failures("timed_out"), |n| n == 3.0).await;
    assert_eq!(server.sample(&failures("failed")), 0.0);
    assert_eq!(client.round_trip("still").await, "llits");
    server.stop();
}

#[tokio::test]
async fn junk_bytes_are_rejected_and_counted_once() {
    let server = InProcess::start(Config::builder());
    let mut junk = TcpStream::connect(server.addr).await.expect("tcp");
    junk.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let (sent, _) = until_closed(junk, Instant::now()).await;
    // At most a TLS alert record (content type 21), never a frame.
    assert!(
        sent.is_empty() || sent[0] == 21,
        "unexpected reply {sent:?}"
    );
    server.until(&failures("failed"), |n| n == 1.0).await;
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("ok").await, "ko");
    assert_eq!(server.sample(&failures("failed")), 1.0);
    assert_eq!(server.sample(&failures("timed_out")), 0.0);
    server.stop();
}

#[tokio::test]
async fn the_handshake_cap_makes_new_clients_wait_not_fail() {
    let server = Server::start(&["--max-handshakes", "2", "--handshake-timeout", "1s"]);
    let idle = [
        stalled_after_hello(server.addr).await,
        stalled_after_hello(server.addr).await,
    ];
    // Make sure both stalled sockets hold their handshake slots first.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let mut client = server.connect().await;
    let waited = started.elapsed();
    assert_eq!(client.round_trip("patient").await, "tneitap");
    assert!(
        waited >= Duration::from_millis(500),
        "the handshake ran after {waited:?}, before an idle slot was freed"
    );
    drop(idle);
    assert!(server.stop().success());
}

/// A connection that sends a whole ClientHello and then nothing: it holds
/// a handshake slot (a ClientHello still coming holds none) until its
/// handshake deadline.
pub async fn stalled_after_hello(addr: std::net::SocketAddr) -> TcpStream {
    let config = crate::common::Pki::new().client_config();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut client = rustls::ClientConnection::new(config, name).expect("a client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("the ClientHello");
    let mut tcp = TcpStream::connect(addr).await.expect("tcp");
    tcp.write_all(&hello)
        .await
        .expect("the ClientHello is sent");
    tcp
}

#[tokio::test]
async fn a_client_that_gives_up_while_waiting_for_its_turn_costs_no_handshake() {
    const GAVE_UP: usize = 50;
    let server = InProcess::start(
        Config::builder()
            .max_handshakes(2)
            .handshake_timeout(Duration::from_secs(1)),
    );
    // Two stalled handshakes hold both slots for a second.
    let idle = [
        stalled_after_hello(server.addr).await,
        stalled_after_hello(server.addr).await,
    ];
    server
        .until("nea_handshakes_in_progress", |n| n == 2.0)
        .await;
    // Clients that send their ClientHello, wait up to 10–110 ms for an
    // answer, and give up (close) while their sockets wait for a slot.
    let config = server.pki.client_config();
    let gave_up = (0..GAVE_UP).map(|n| {
        let (addr, config) = (server.addr, config.clone());
        tokio::spawn(async move {
            let patience = Duration::from_millis(10 + (n as u64 * 37) % 100);
            tokio::time::timeout(patience, tls_connect(addr, config))
                .await
                .is_err()
        })
    });
    for client in gave_up.collect::<Vec<_>>() {
        assert!(client.await.expect("joins"), "a client was served early");
    }
    // Their turn comes when the idle sockets time out: each is closed
    // unhandshaken, counted as abandoned, not as a failed handshake.
    server
        .until(&failures("abandoned"), |n| n >= GAVE_UP as f64)
        .await;
    assert_eq!(server.sample(&failures("abandoned")), GAVE_UP as f64);
    assert_eq!(server.sample(&failures("failed")), 0.0);
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("still here").await, "ereh llits");
    drop(idle);
    server.stop();
}

#[tokio::test]
async fn a_reset_in_the_middle_of_a_line_ends_only_that_connection() {
    let server = InProcess::start(Config::builder());
    let mut bystander = server.connect().await;
    let tcp = TcpStream::connect(server.addr).await.expect("tcp");
    tcp.set_zero_linger().expect("SO_LINGER 0");
    let mut doomed = tls_over(tcp, server.pki.client_config())
        .await
        .expect("tls");
    doomed.write_all(b"half a li").await.expect("write");
    doomed.flush().await.expect("flush");
    server.until_connected(2).await;
    // Time for the half line to reach the session.
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(doomed); // closes with a TCP reset
    server.until(&ended("read_failed"), |n| n == 1.0).await;
    assert_eq!(bystander.round_trip("unaffected").await, "detceffanu");
    assert_eq!(server.ended(), 1.0, "{}", server.metrics());
    assert_eq!(server.connected(), 1);
    server.stop();
}

#[tokio::test]
async fn end_of_stream_without_close_notify_ends_the_session_as_truncated() {
    let server = InProcess::start(Config::builder());
    let mut bystander = server.connect().await;
    let stream = tls_connect(server.addr, server.pki.client_config())
        .await
        .expect("tls");
    let mut client = Client::from_stream(stream);
    assert_eq!(client.round_trip("abc").await, "cba");
    client.send(b"unterminated").await;
    drop(client); // TCP close without TLS close_notify
    server.until(&ended("truncated"), |n| n == 1.0).await;
    assert_eq!(server.ended(), 1.0, "{}", server.metrics());
    // The one line it sent whole was answered; the unterminated one not.
    assert_eq!(server.sample("nea_lines_answered_total"), 1.0);
    assert_eq!(bystander.round_trip("fine").await, "enif");
    server.stop();
}

#[tokio::test]
async fn a_flood_of_broken_handshakes_is_not_a_log_storm() {
    let (server, admin) = crate::common::start_with_admin(&[]);
    for _ in 0..20 {
        let mut junk = TcpStream::connect(server.addr).await.expect("tcp");
        junk.write_all(b"\x16\x03\x01\x00\x05hello")
            .await
            .expect("write");
        until_closed(junk, Instant::now()).await;
    }
    crate::common::until_scraped(admin, &failures("failed"), |n| n == 20.0).await;
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("calm").await, "mlac");
    client.close().await;
    let mut server = server;
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait_exit(PATIENCE).expect("exits").success());
    let log = server.log();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("TLS handshake failed"))
        .collect();
    // Every failure is one line (at DEBUG once the rate limit holds it
    // back), naming its peer.
    assert_eq!(failed.len(), 20, "{failed:#?}");
    assert!(
        failed.iter().all(|l| l.contains("peer=127.0.0.1:")),
        "{failed:#?}"
    );
    // One INFO line per second at most; the rest are counted, at DEBUG.
    let info = info_lines(&failed);
    assert!(!info.is_empty() && info.len() <= 3, "{info:#?}");
    // The count of the failures not yet reported is not lost at the stop:
    // every failure is an INFO line or counted in one.
    let reported: usize = info.len() + info.iter().map(|l| suppressed_in(l)).sum::<usize>();
    let at_stop = log
        .lines()
        .find(|l| l.contains("not reported yet"))
        .map_or(0, suppressed_in);
    assert_eq!(reported + at_stop, 20, "{info:#?}\n{log}");
}

/// The INFO lines among `lines`.
fn info_lines<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .copied()
        .filter(|l| l.contains(" INFO "))
        .collect()
}

/// The `suppressed=N` of a log line.
fn suppressed_in(line: &str) -> usize {
    line.split("suppressed=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}
