//! SPEC §13, dead peers, on real network faults: a client whose path dies
//! silently (packets dropped in a network namespace, no FIN, no RST) is
//! given up within the dead-peer timeout plus a few seconds, whatever the
//! date period; a client that is alive but quiet is kept.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nea::server::Config;

use crate::common::{Client, Pki, tls_over};
use crate::in_process::InProcess;
use crate::netns::{Blackhole, Network, Traffic};

/// How much later than the timeout a dead peer may be noticed: one probe
/// interval of the kernel's (a second for the timeouts here) and the time
/// to see it, with room for a loaded machine.
const LATE: Duration = Duration::from_secs(4);

/// An in-process server listening in `network`'s server namespace with
/// `config`.
fn server_in(network: &Network, config: nea::server::ConfigBuilder) -> InProcess {
    let addr = SocketAddr::new(network.link.a.v4.into(), 0);
    let config = config.build().expect("a valid configuration");
    network.server.run(move || {
        InProcess::start_with(Pki::new(), move |builder| {
            builder.listen_on(addr).config(config)
        })
    })
}

/// A TLS client of `server` from `network`'s client namespace, with one
/// line answered.
async fn client_of(network: &Network, server: &InProcess) -> Client {
    let tcp = network
        .client
        .tcp_socket(server.addr)
        .connect(server.addr)
        .await
        .expect("the client connects");
    let stream = tls_over(tcp, server.pki.client_config())
        .await
        .expect("the handshake");
    let mut client = Client::from_stream(stream);
    assert_eq!(client.round_trip("alive").await, "evila");
    client
}

/// Drops every packet of the client's connection in the client's
/// namespace, and returns how long the server took to give the client up
/// (its slot free, its session counted as ended by a dead peer).
async fn blackholed_client_given_up_after(config: nea::server::ConfigBuilder) -> Duration {
    let network = Network::new();
    let server = server_in(&network, config);
    let _client = client_of(&network, &server).await;
    server.until_connected(1).await;
    let silenced = Instant::now();
    let _blackhole = Blackhole::new(&network.client, Traffic::TcpPort(server.addr.port()));
    // Polled here rather than with the harness's patience, which is
    // shorter than the default timeout.
    let gave_up = "nea_sessions_ended_total{reason=\"dead_peer\"}";
    while server.sample(gave_up) < 1.0 {
        assert!(
            silenced.elapsed() < Duration::from_secs(120),
            "the dead client is still kept after {:?}:\n{}",
            silenced.elapsed(),
            server.metrics()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = silenced.elapsed();
    server.until_connected(0).await;
    assert_eq!(
        server.sample("nea_sessions_ended_total{reason=\"read_failed\"}"),
        0.0
    );
    server.stop();
    took
}

#[tokio::test]
async fn a_silent_client_with_nothing_sent_to_it_is_given_up_within_the_timeout() {
    let timeout = Duration::from_secs(5);
    // A date an hour: nothing is sent, only keepalive probes notice.
    let took = blackholed_client_given_up_after(
        Config::builder()
            .dead_peer_timeout(timeout)
            .date_period(Duration::from_secs(3600)),
    )
    .await;
    assert!(
        took >= timeout - Duration::from_secs(1),
        "given up after {took:?}"
    );
    assert!(took <= timeout + LATE, "given up after {took:?}");
}

#[tokio::test]
async fn a_silent_client_that_dates_go_to_is_given_up_within_the_timeout() {
    let timeout = Duration::from_secs(5);
    // Dates every 200 ms go unacknowledged: the user timeout notices.
    let took = blackholed_client_given_up_after(
        Config::builder()
            .dead_peer_timeout(timeout)
            .date_period(Duration::from_millis(200)),
    )
    .await;
    assert!(
        took >= timeout - Duration::from_secs(1),
        "given up after {took:?}"
    );
    assert!(took <= timeout + LATE, "given up after {took:?}");
}

/// The defaults (a minute, a date every 10 s), end to end. It waits a
/// real minute, so CI leaves it out; the unit tests in `src/dead_peer.rs`
/// check the socket options the default sets, and the tests above the
/// same mechanism with a shorter timeout. Run it with
/// `cargo nextest run --run-ignored only dead_peers`.
#[tokio::test]
#[ignore = "waits a real minute"]
async fn a_silent_client_is_given_up_within_the_default_minute() {
    let timeout = nea::DEFAULT_DEAD_PEER_TIMEOUT;
    let took = blackholed_client_given_up_after(Config::builder()).await;
    assert!(
        took >= timeout - Duration::from_secs(1),
        "given up after {took:?}"
    );
    // One probe interval of the default schedule (10 s) late at most.
    assert!(
        took <= timeout + Duration::from_secs(10) + LATE,
        "given up after {took:?}"
    );
}

#[tokio::test]
async fn a_quiet_client_that_is_alive_is_kept_for_many_timeouts() {
    let timeout = Duration::from_secs(1);
    let network = Network::new();
    let server = server_in(
        &network,
        Config::builder()
            .dead_peer_timeout(timeout)
            .date_period(Duration::from_secs(3600)),
    );
    let mut client = client_of(&network, &server).await;
    // Eight timeouts with nothing sent either way: the client's kernel
    // answers the probes.
    tokio::time::sleep(timeout * 8).await;
    assert_eq!(server.connected(), 1);
    assert_eq!(client.round_trip("still here").await, "ereh llits");
    assert_eq!(
        server.sample("nea_sessions_ended_total{reason=\"dead_peer\"}"),
        0.0
    );
    client.close().await;
    server.until_connected(0).await;
    server.stop();
}
