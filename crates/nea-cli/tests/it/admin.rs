//! SPEC §11, metrics and health, on the real binary: `/metrics` passes
//! `promtool check metrics` on a live scrape, its gauges and counters follow
//! real traffic, `/healthz` flips when the server is full and on SIGTERM,
//! and a hostile scraper cannot hurt clients.

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::{GENEROUS, PATIENCE, get, require_tool, sample, start_with_admin};

/// Asserts that `promtool check metrics` finds nothing wrong in `text`.
fn promtool_passes(text: &str) {
    require_tool("promtool", "prometheus");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "promtool: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn a_live_scrape_passes_promtool_and_follows_real_traffic() {
    let (server, admin) = start_with_admin(&["--date-period", "100ms"]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(server.connect().await);
    }
    for client in &mut clients {
        assert_eq!(client.round_trip("abc").await, "cba");
    }
    clients[0].send(&[0xff, b'\n']).await;
    let _ = clients[0].non_date_frame().await;
    // Wait for a date or two to go out.
    let _ = clients[1].frame().await;
    let (status, text) = get(admin, "/metrics");
    assert_eq!(status, 200);
    assert_eq!(sample(&text, "nea_clients_connected"), 3.0);
    assert_eq!(sample(&text, "nea_clients_max"), 100.0);
    assert!(sample(&text, "nea_connections_total") >= 3.0);
    assert!(sample(&text, "nea_date_lateness_seconds_count") >= 1.0);
    assert_eq!(sample(&text, "nea_handshake_duration_seconds_count"), 3.0);
    assert!(sample(&text, "nea_certificate_expiry_timestamp_seconds") > 1.7e9);
    // The log writer keeps up here; the count is there all the same.
    assert_eq!(sample(&text, "nea_log_lines_dropped_total"), 0.0);
    // The real external tool checks the exposition.
    promtool_passes(&text);

    // Sessions' counts are folded in when they end.
    for client in clients.drain(..) {
        client.close().await;
    }
    crate::common::until_scraped(admin, "nea_clients_connected", |n| n == 0.0).await;
    crate::common::until_scraped(admin, "nea_sessions_ended_total{reason=\"closed\"}", |n| {
        n == 3.0
    })
    .await;
    let (_, text) = get(admin, "/metrics");
    assert_eq!(sample(&text, "nea_lines_answered_total"), 3.0);
    assert_eq!(
        sample(&text, "nea_line_errors_total{code=\"invalid_utf8\"}"),
        1.0
    );
    assert!(sample(&text, "nea_dates_sent_total") >= 1.0);
    assert!(server.stop().success());
}

#[tokio::test]
async fn health_is_503_when_full_and_on_sigterm() {
    let (server, admin) = start_with_admin(&["--max-clients", "1"]);
    assert_eq!(get(admin, "/healthz"), (200, "ok\n".to_owned()));
    let mut only = server.connect().await;
    assert_eq!(only.round_trip("one").await, "eno");
    let (status, body) = get(admin, "/healthz");
    assert_eq!(status, 503);
    assert!(body.contains("full"), "{body}");
    let mut rejected = server.connect().await;
    let _ = rejected.non_date_frame().await;
    let (_, text) = get(admin, "/metrics");
    assert_eq!(
        sample(&text, "nea_rejections_total{code=\"server_full\"}"),
        1.0
    );

    // While the connected client is drained (it does not close at once),
    // health says the server is shutting down.
    server.signal(Signal::SIGTERM);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get(admin, "/healthz");
        if !body.starts_with("full") {
            assert_eq!((status, body.as_str()), (503, "shutting down\n"));
            break;
        }
        assert!(Instant::now() < deadline, "shutdown did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(only);
    let mut server = server;
    assert!(server.wait_exit(PATIENCE).expect("exits").success());
}

#[tokio::test]
async fn a_hostile_scraper_cannot_hurt_clients() {
    let (server, admin) = start_with_admin(&[]);
    let mut client = server.connect().await;
    // One connection that sends half a request and stalls: it is closed
    // after the header timeout.
    let mut slow = std::net::TcpStream::connect(admin).expect("connect");
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost:")
        .expect("half");
    slow.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    let closed_after = started.elapsed();
    eprintln!("the stalled request was closed after {closed_after:?}");
    // Closed by the header timeout (2 s), not by the end of this test's
    // patience: the read above gives up only after PATIENCE.
    assert!(
        closed_after > Duration::from_millis(500) && closed_after < GENEROUS,
        "{closed_after:?}"
    );
    // Then idle ones, far more than the endpoint serves at once (each new
    // one takes the place of the oldest, which has sent nothing).
    let mut idle = Vec::new();
    for _ in 0..50 {
        idle.push(std::net::TcpStream::connect(admin).expect("connect"));
    }
    assert_eq!(client.round_trip("unharmed").await, "demrahnu");
    let mut late = server.connect().await;
    assert_eq!(late.round_trip("new").await, "wen");
    drop(idle);
    // Once they are gone, scrapes are served again.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let mut tcp = std::net::TcpStream::connect(admin).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: nea\r\nConnection: close\r\n\r\n");
        let mut response = String::new();
        let _ = tcp.read_to_string(&mut response);
        if response.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the endpoint never recovered");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(get(admin, "/nothing").0, 404);
    assert!(server.stop().success());
}
