//! SPEC §6, fair to many addresses: stalled handshakes spread over hundreds
//! of source addresses (a few sockets each, a byte a second) do not delay a
//! fresh address's handshake by more than a fraction of a second.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::common::{Client, tcp_from, tls_over};
use crate::in_process::InProcess;

/// The first bytes a real TLS client sends: its ClientHello record.
fn client_hello() -> Vec<u8> {
    let config = crate::common::Pki::new().client_config();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let mut client = rustls::ClientConnection::new(config, name).expect("a client");
    let mut hello = Vec::new();
    client.write_tls(&mut hello).expect("the ClientHello");
    hello
}

/// `sockets` connections from each of `addresses` source addresses
/// (127.2.x.y), each sending `hello` one byte a second until aborted.
async fn stall_from_many(
    server: SocketAddr,
    addresses: u16,
    sockets: usize,
    hello: Arc<Vec<u8>>,
) -> tokio::task::JoinSet<()> {
    let mut stalled = tokio::task::JoinSet::new();
    for n in 0..addresses {
        let [hi, lo] = n.to_be_bytes();
        let source = Ipv4Addr::new(127, 2, hi, lo.max(1));
        for _ in 0..sockets {
            let mut tcp = tcp_from(source, server).await;
            let hello = hello.clone();
            stalled.spawn(async move {
                for byte in hello.iter() {
                    if tcp.write_all(&[*byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            });
        }
    }
    stalled
}

/// Raises this process's open-file limit to its hard limit: the test and
/// the in-process server hold a socket each for every stalled connection.
fn enough_files() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).expect("raised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_from_500_addresses_leave_a_fresh_address_served_within_a_second() {
    enough_files();
    let server = InProcess::start(nea::server::Config::builder());
    let stalled = stall_from_many(server.addr, 500, 2, Arc::new(client_hello())).await;
    // Every stalled connection is in: each holds its place in the server.
    server.until("nea_connections_total", |n| n >= 1000.0).await;
    let fresh = Ipv4Addr::new(127, 3, 0, 1);
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        let tcp = tcp_from(fresh, server.addr).await;
        let stream = tokio::time::timeout(
            Duration::from_secs(5),
            tls_over(tcp, server.pki.client_config()),
        )
        .await
        .expect("the fresh address's handshake does not wait behind the stalled ones")
        .expect("the fresh address's handshake succeeds");
        times.push(started.elapsed());
        let mut client = Client::from_stream(stream);
        assert_eq!(client.round_trip("fresh").await, "hserf");
        client.close().await;
    }
    let slowest = times.iter().max().copied().unwrap_or_default();
    assert!(
        slowest < Duration::from_secs(1),
        "a fresh address waited {slowest:?} (all: {times:?})"
    );
    // The stalled ones are still there, holding nothing a client needs.
    assert!(server.sample("nea_hellos_in_progress") >= 900.0);
    assert_eq!(server.sample("nea_handshakes_in_progress"), 0.0);
    drop(stalled);
    server.stop();
}
