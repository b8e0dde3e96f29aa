//! SPEC §13 *(v3)*, long, slow paths: with a 300 ms round trip (a relay
//! that holds every chunk 150 ms each way, `netns::LatencyRelay`), a
//! handshake completes, a ClientHello that arrives in two segments too;
//! dates arrive on their grid plus the one-way delay; lines are answered;
//! and no one is given up as dead or slow, with a dead-peer timeout of a
//! second, a few round trips long.
//!
//! The relay acknowledges TCP segments itself, so what it delays is what
//! the programs see (handshakes, lines, dates), not the kernel's keepalive
//! probes: dead-peer detection on real dead paths is `dead_peers.rs` and
//! `client_network.rs`, in network namespaces.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use nea::protocol::Frame;
use nea::server::Config;

use crate::common::{Client, PATIENCE};
use crate::in_process::InProcess;
use crate::netns::LatencyRelay;

/// Each way.
const ONE_WAY: Duration = Duration::from_millis(150);

/// Short, so that a false give-up would show: a few round trips.
const DEAD_PEER_TIMEOUT: Duration = Duration::from_secs(1);

const DATE_PERIOD: Duration = Duration::from_millis(500);

fn slow_path() -> (InProcess, LatencyRelay) {
    let server = InProcess::start(
        Config::builder()
            .date_period(DATE_PERIOD)
            .dead_peer_timeout(DEAD_PEER_TIMEOUT),
    );
    let relay = LatencyRelay::start("127.0.0.1:0".parse().expect("addr"), server.addr, ONE_WAY);
    (server, relay)
}

/// How far `at` is past `payload`, a date frame's time.
fn since(payload: &str, at: jiff::Timestamp) -> Duration {
    let sent: jiff::Timestamp = payload.parse().expect("an RFC 3339 date");
    Duration::try_from(at.duration_since(sent)).expect("after it was sent")
}

#[tokio::test]
async fn dates_keep_their_grid_and_lines_are_answered_over_a_300_ms_round_trip() {
    let (server, relay) = slow_path();
    let started = Instant::now();
    let mut client = Client::connect(relay.addr(), server.pki.client_config())
        .await
        .expect("the handshake completes over the slow path");
    // TLS 1.3 needs a round trip of its own: the relay's delay is real.
    assert!(started.elapsed() >= 2 * ONE_WAY, "{:?}", started.elapsed());

    let mut dates = Vec::new();
    while dates.len() < 6 {
        if let Frame::Date { payload } = client.frame().await {
            let late = since(&payload, jiff::Timestamp::now());
            dates.push((payload, late));
        }
    }
    let first: jiff::Timestamp = dates[0].0.parse().expect("date");
    for (n, (payload, late)) in dates.iter().enumerate() {
        // Each arrives the one-way delay after it was sent (the payload
        // has millisecond precision), and no later than a loaded machine
        // may add.
        assert!(
            *late + Duration::from_millis(1) >= ONE_WAY && *late < ONE_WAY + Duration::from_secs(1),
            "date {n} arrived {late:?} after it was sent"
        );
        // On the grid: the n-th a whole number of periods after the first,
        // no drift from the delay.
        let at: jiff::Timestamp = payload.parse().expect("date");
        let offset = Duration::try_from(at.duration_since(first)).expect("later");
        let grid = DATE_PERIOD * u32::try_from(n).expect("small");
        let off_grid = offset.abs_diff(grid);
        assert!(
            off_grid < Duration::from_millis(250),
            "date {n}: {offset:?} after the first"
        );
    }

    // A line's round trip is the path's, and its answer is its own.
    let asked = Instant::now();
    assert_eq!(client.round_trip("slow path").await, "htap wols");
    assert!(asked.elapsed() >= 2 * ONE_WAY, "{:?}", asked.elapsed());

    // Twice the dead-peer timeout of quiet from the client: it is kept.
    tokio::time::sleep(2 * DEAD_PEER_TIMEOUT).await;
    assert_eq!(client.round_trip("still here").await, "ereh llits");
    assert_eq!(server.connected(), 1);
    assert_eq!(server.ended(), 0.0, "{}", server.metrics());
    server.stop();
}

#[tokio::test]
async fn a_client_hello_in_two_segments_300_ms_apart_completes() {
    let (server, relay) = slow_path();
    let (addr, config) = (relay.addr(), server.pki.client_config());
    let reply = tokio::task::spawn_blocking(move || {
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = rustls::ClientConnection::new(config, name).expect("client");
        let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(PATIENCE)).expect("timeout");
        let mut hello = Vec::new();
        tls.write_tls(&mut hello).expect("the ClientHello");
        let (head, tail) = hello.split_at(hello.len() / 2);
        tcp.write_all(head).expect("first segment");
        std::thread::sleep(2 * ONE_WAY);
        tcp.write_all(tail).expect("second segment");
        while tls.is_handshaking() {
            tls.complete_io(&mut tcp).expect("the handshake");
        }
        tls.writer().write_all(b"two segments\n").expect("a line");
        let mut reply = Vec::new();
        while !reply.ends_with(b"}\n") || !String::from_utf8_lossy(&reply).contains("string") {
            tls.complete_io(&mut tcp).expect("the reply");
            let mut chunk = [0u8; 4096];
            match tls.reader().read(&mut chunk) {
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(err) => panic!("reading: {err}"),
            }
        }
        String::from_utf8(reply).expect("utf-8")
    })
    .await
    .expect("the client");
    assert!(reply.contains(r#""payload":"stnemges owt""#), "{reply}");
    server.stop();
}

#[tokio::test]
async fn clientcli_over_a_300_ms_round_trip_is_not_given_up_while_it_waits() {
    let (server, relay) = slow_path();
    let mut command = crate::common::clientcli_for(relay.addr().port(), &server.pki.ca_pem);
    command
        .args(["--dead-peer-timeout", "1s"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command.spawn().expect("clientcli");
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(b"one\n").expect("a line");
        // Quiet for longer than the dead-peer timeout, dates arriving.
        std::thread::sleep(Duration::from_millis(2500));
        stdin.write_all(b"two\n").expect("a line");
        drop(stdin);
        child.wait_with_output().expect("clientcli ends")
    })
    .await
    .expect("the client");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "eno\nowt\n",
        "{stderr}"
    );
    server.stop();
}
