//! SPEC §12, the PROXY protocol, on the real binary: a trusted balancer's
//! header names the client everywhere an address is used, a `LOCAL` header
//! is served, and a missing, malformed, late or unexpected header ends the
//! connection with a rate-limited log line. (HAProxy itself is in
//! `balancer.rs`.)
//!
//! The subject of most of these tests is what the log says: who a client
//! is (the server keeps no other record of it), and why a header was
//! refused (its metrics count every refusal under one reason). They read
//! the whole log once the server has stopped, and wait on no line.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use nea::protocol::{ErrorCode, Frame};
use ppp::v2;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::{Client, GENEROUS, PATIENCE, Server, line_with, tcp_from, tls_over};

/// The balancer's address in these tests; clients that send no header
/// connect from 127.0.0.2.
const BALANCER: Ipv4Addr = Ipv4Addr::LOCALHOST;
const DIRECT: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn proxied_server(args: &[&str]) -> Server {
    let mut all = vec!["--proxy-protocol-from", "127.0.0.1/32"];
    all.extend_from_slice(args);
    Server::start(&all)
}

/// A version 2 `PROXY` header for a TCP client at `client`.
fn v2_proxy(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Proxy,
        v2::Protocol::Stream,
        (client, server),
    )
    .write_tlv(v2::Type::UniqueId, b"a-balancer-request-id")
    .expect("a TLV")
    .build()
    .expect("a header")
}

/// A version 2 `LOCAL` header, as a balancer's health check sends.
fn v2_local() -> Vec<u8> {
    v2::Builder::with_addresses(
        v2::Version::Two | v2::Command::Local,
        v2::Protocol::Unspecified,
        v2::Addresses::Unspecified,
    )
    .build()
    .expect("a header")
}

/// A socket from the balancer's address that has sent `header`.
async fn balancer_socket(server: &Server, header: &[u8]) -> TcpStream {
    let mut tcp = tcp_from(BALANCER, server.addr).await;
    tcp.write_all(header).await.expect("the header");
    tcp
}

/// A TLS client through a header naming `client`.
async fn proxied_client(server: &Server, header: &[u8]) -> Client {
    let tcp = balancer_socket(server, header).await;
    Client::from_stream(
        tls_over(tcp, server.pki.client_config())
            .await
            .expect("handshake after the header"),
    )
}

/// Whether the server closed `tcp` without a TLS handshake: it ends
/// (EOF or reset) and sends no byte.
async fn closed_without_tls(mut tcp: TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match tokio::time::timeout(PATIENCE, tcp.read(&mut byte)).await {
        Ok(Ok(0) | Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("the connection stayed open"),
    }
}

#[tokio::test]
async fn a_v2_header_names_the_client_in_the_log_line() {
    let server = proxied_server(&[]);
    let client: SocketAddr = "203.0.113.7:4242".parse().expect("an address");
    let mut proxied = proxied_client(&server, &v2_proxy(client, server.addr)).await;
    assert_eq!(proxied.round_trip("balanced").await, "decnalab");
    proxied.close().await;
    let log = server.stop_and_read_log();
    let line = line_with(&log, "client left");
    assert!(line.contains("peer=203.0.113.7:4242"), "{line}");
    assert!(line.contains("via=127.0.0.1:"), "{line}");
}

#[tokio::test]
async fn a_v1_header_over_ipv6_names_the_client() {
    let server = proxied_server(&[]);
    let header = format!(
        "PROXY TCP6 2001:db8::7 ::1 50123 {}\r\n",
        server.addr.port()
    );
    let mut proxied = proxied_client(&server, header.as_bytes()).await;
    assert_eq!(proxied.round_trip("v1").await, "1v");
    proxied.close().await;
    let log = server.stop_and_read_log();
    let line = line_with(&log, "client left");
    assert!(line.contains("peer=[2001:db8::7]:50123"), "{line}");
}

#[tokio::test]
async fn a_local_header_is_served_as_the_balancer_itself() {
    let server = proxied_server(&[]);
    let mut check = proxied_client(&server, &v2_local()).await;
    assert_eq!(check.round_trip("health").await, "htlaeh");
    check.close().await;
    let log = server.stop_and_read_log();
    let line = line_with(&log, "client left");
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
    assert!(!line.contains("via="), "{line}");
}

#[tokio::test]
async fn the_per_address_limit_counts_the_address_the_header_names() {
    let server = proxied_server(&["--max-clients-per-address", "2"]);
    let first: SocketAddr = "198.51.100.1:1000".parse().expect("an address");
    let second: SocketAddr = "198.51.100.2:1000".parse().expect("an address");
    let mut held = Vec::new();
    for port in [1000, 1001] {
        let client = SocketAddr::new(first.ip(), port);
        let mut proxied = proxied_client(&server, &v2_proxy(client, server.addr)).await;
        assert_eq!(proxied.round_trip("in").await, "ni");
        held.push(proxied);
    }
    let mut third = proxied_client(&server, &v2_proxy(first, server.addr)).await;
    match third.non_date_frame().await {
        Frame::Error { code, .. } => assert_eq!(code, ErrorCode::AddressLimit),
        other => panic!("expected address_limit, got {other:?}"),
    }
    // Through the same balancer, another client is someone else.
    let mut other = proxied_client(&server, &v2_proxy(second, server.addr)).await;
    assert_eq!(other.round_trip("other").await, "rehto");
    let log = server.stop_and_read_log();
    let line = line_with(&log, "address at its limit");
    assert!(line.contains("198.51.100.1:1000"), "{line}");
}

#[tokio::test]
async fn a_trusted_connection_without_a_header_is_closed_and_logged() {
    let server = proxied_server(&[]);
    // Plain TLS from the balancer's address: no header.
    let tcp = tcp_from(BALANCER, server.addr).await;
    let refused = tls_over(tcp, server.pki.client_config()).await;
    assert!(refused.is_err(), "served without a header");
    let log = server.stop_and_read_log();
    let line = line_with(&log, "no PROXY protocol header");
    assert!(line.contains("peer=127.0.0.1:"), "{line}");
}

#[tokio::test]
async fn malformed_and_oversized_headers_are_closed_and_logged() {
    let server = proxied_server(&[]);
    let mut huge = v2_local();
    huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
    let refusals = [
        (
            &b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"[..],
            "malformed PROXY protocol header",
        ),
        (&huge[..16], "PROXY protocol header too long"),
    ];
    for (header, _) in refusals {
        let tcp = balancer_socket(&server, header).await;
        assert!(closed_without_tls(tcp).await, "{header:?}");
    }
    let log = server.stop_and_read_log();
    for (_, why) in refusals {
        line_with(&log, why);
    }
}

#[tokio::test]
async fn a_header_that_does_not_arrive_ends_the_connection_at_the_deadline() {
    let server = proxied_server(&["--handshake-timeout", "300ms"]);
    let started = Instant::now();
    // Half a header, then nothing.
    let tcp = balancer_socket(&server, b"PROXY TCP4 ").await;
    assert!(closed_without_tls(tcp).await);
    let took = started.elapsed();
    // Closed by the 300 ms deadline, not never: a connection left open
    // would be open still when the wait above gives up, after PATIENCE.
    assert!(
        took >= Duration::from_millis(250) && took < GENEROUS,
        "closed after {took:?}"
    );
    let log = server.stop_and_read_log();
    line_with(
        &log,
        "no complete PROXY protocol header within the handshake deadline",
    );
}

#[tokio::test]
async fn a_header_from_an_untrusted_address_is_refused_and_plain_tls_served() {
    let server = proxied_server(&[]);
    let mut tcp = tcp_from(DIRECT, server.addr).await;
    let header = v2_proxy("203.0.113.9:1".parse().expect("an address"), server.addr);
    tcp.write_all(&header).await.expect("the header");
    assert!(closed_without_tls(tcp).await);
    // A direct client that sends none is served, under its own address.
    let tcp = tcp_from(DIRECT, server.addr).await;
    let mut direct = Client::from_stream(
        tls_over(tcp, server.pki.client_config())
            .await
            .expect("handshake"),
    );
    assert_eq!(direct.round_trip("direct").await, "tcerid");
    direct.close().await;
    let log = server.stop_and_read_log();
    let line = line_with(&log, "not in --proxy-protocol-from");
    assert!(line.contains("peer=127.0.0.2:"), "{line}");
    let left = line_with(&log, "client left");
    assert!(left.contains("peer=127.0.0.2:"), "{left}");
}

#[tokio::test]
async fn a_flood_of_bad_headers_is_logged_at_a_bounded_rate_and_counted() {
    let (server, admin) = crate::common::start_with_admin(&["--proxy-protocol-from", "127.0.0.1"]);
    let started = Instant::now();
    for _ in 0..200 {
        let tcp = balancer_socket(&server, b"NOT A HEADER AT ALL\r\n").await;
        assert!(closed_without_tls(tcp).await);
    }
    let seconds = started.elapsed().as_secs() + 1;
    let (_, metrics) = crate::common::get(admin, "/metrics");
    // What an operator sees: at most one line per second; the rest is at
    // DEBUG.
    let log = server.stop_and_read_log();
    let logged = log
        .lines()
        .filter(|line| !line.contains(" DEBUG ") && line.contains("PROXY protocol header"))
        .count();
    assert!(
        logged <= usize::try_from(seconds).expect("seconds"),
        "{logged} lines in {seconds} s:\n{log}"
    );
    let refused = crate::common::sample(
        &metrics,
        "nea_handshake_failures_total{reason=\"proxy_header\"}",
    );
    assert_eq!(refused, 200.0, "{metrics}");
}
