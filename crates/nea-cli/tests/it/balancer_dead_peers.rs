//! SPEC §13 behind a real HAProxy running the shipped configuration: a
//! servercli behind HAProxy sees HAProxy's socket, which stays healthy when
//! a client's path dies, so the dead client must be noticed by HAProxy. A
//! client whose path dies silently (packets dropped by nftables, no FIN, no
//! RST) is given up within the configured bound and its server slot freed,
//! whether or not dates are going to it, while a live client that sends
//! nothing is kept. The other way round, a server whose host dies silently
//! does not keep its clients hanging on HAProxy: their connections end
//! within the same kind of bound, so that they can reconnect elsewhere.
//!
//! The nginx example (`contrib/nginx/nea.conf`) does what its comments
//! say, no more: its keepalive probes give up a dead client with nothing
//! sent to it, but one that dates are going to keeps its slot (nginx has
//! no user timeout).
//!
//! Three hosts, each a network namespace: the client, the balancer
//! (HAProxy) and the server (servercli), joined by two links. The bounds
//! are short (3 s) through the variables the configuration reads; the
//! defaults (60 s) match servercli's own `--dead-peer-timeout`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::balancer::{Balancer, Target};
use crate::common::{
    Client, PATIENCE, Pki, Server, sample_if_any, servercli_exe, tls_over, try_get,
};
use crate::netns::{Blackhole, Link, Namespace, Traffic};
use crate::nginx::Nginx;

/// The dead-peer timeout HAProxy is given for both sides in these tests.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The variables that give HAProxy [`TIMEOUT`], with keepalive probes
/// after a second of quiet and then every second (three probes fit in the
/// timeout, as the defaults' 20 s and 10 s fit in 60 s).
const SHORT: [(&str, &str); 6] = [
    ("NEA_DEAD_CLIENT_TIMEOUT", "3s"),
    ("NEA_DEAD_CLIENT_PROBE_IDLE", "1s"),
    ("NEA_DEAD_CLIENT_PROBE_INTERVAL", "1s"),
    ("NEA_DEAD_SERVER_TIMEOUT", "3s"),
    ("NEA_DEAD_SERVER_PROBE_IDLE", "1s"),
    ("NEA_DEAD_SERVER_PROBE_INTERVAL", "1s"),
];

/// The keepalive parameters the nginx example is given (`so_keepalive`,
/// `IDLE:INTERVAL:COUNT`): a dead client with nothing sent to it is given
/// up after 1 + 2 × 1 s, [`TIMEOUT`], as the example's 20 s, 10 s and 4
/// probes give it up after 60 s.
const NGINX_KEEPALIVE: &str = "1s:1s:2";

/// How much later than [`TIMEOUT`] a dead peer may be noticed: one probe
/// interval (a second), and the time for HAProxy to close the other side
/// and for the test to see it, with room for a loaded machine.
const LATE: Duration = Duration::from_secs(4);

/// How much earlier than [`TIMEOUT`] it may be noticed: the kernel counts
/// from the last packet heard, which came a little before the blackhole.
const EARLY: Duration = Duration::from_secs(1);

/// The port servercli and HAProxy listen on, each in a namespace of its
/// own, where every port is free.
const TLS_PORT: u16 = 3443;

/// servercli's admin port, in its namespace.
const ADMIN_PORT: u16 = 9443;

/// Three hosts joined by two links: client ↔ balancer (`front`; end `a`
/// is the balancer's) and balancer ↔ server (`back`; end `a` is the
/// balancer's). Dropping it stops what runs inside and removes them all,
/// also when a test fails.
struct Site {
    client: Namespace,
    balancer: Namespace,
    server: Namespace,
    front: Link,
    back: Link,
}

impl Site {
    fn new() -> Self {
        let client = Namespace::new();
        let balancer = Namespace::new();
        let server = Namespace::new();
        let front = Link::new(&balancer, &client);
        let back = Link::new(&balancer, &server);
        Self {
            client,
            balancer,
            server,
            front,
            back,
        }
    }

    /// Where clients reach HAProxy.
    fn frontend(&self) -> SocketAddr {
        SocketAddr::new(self.front.a.v4.into(), TLS_PORT)
    }

    /// servercli's admin endpoint.
    fn admin(&self) -> SocketAddr {
        SocketAddr::new(self.back.b.v4.into(), ADMIN_PORT)
    }

    /// servercli on the server host, trusting PROXY headers from the
    /// balancer only, sending a date every `date_period`.
    fn start_server(&self, pki: &Pki, date_period: &str) -> Server {
        let mut command = self.server.command(servercli_exe());
        command
            .args(["--bind", &self.back.b.v4.to_string()])
            .args(["--port", &TLS_PORT.to_string()])
            .arg("--cert")
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args(["--proxy-protocol-from", &format!("{}/32", self.back.a.v4)])
            .args(["--admin-addr", &self.admin().to_string()])
            .args(["--date-period", date_period]);
        Server::spawn(command, pki.copy())
    }

    /// HAProxy on the balancer host, with the shipped configuration and the
    /// short bounds, in front of the server; once it sees the server up.
    fn start_balancer(&self) -> Balancer {
        let server = Target {
            addr: SocketAddr::new(self.back.b.v4.into(), TLS_PORT),
            admin: ADMIN_PORT,
        };
        Balancer::start_with(
            self.balancer.command("haproxy"),
            self.frontend(),
            &[server],
            &SHORT,
        )
    }

    /// nginx on the balancer host, with the shipped example and
    /// [`NGINX_KEEPALIVE`], in front of the server; once it listens.
    fn start_nginx(&self) -> Nginx {
        Nginx::start_with(
            self.balancer.command("nginx"),
            self.frontend(),
            &[SocketAddr::new(self.back.b.v4.into(), TLS_PORT)],
            Some(NGINX_KEEPALIVE),
        )
    }

    /// The balancer of kind `front` on the balancer host.
    fn start_front(&self, front: Front) -> Running {
        match front {
            Front::HAProxy => Running::HAProxy(self.start_balancer()),
            Front::Nginx => Running::Nginx(self.start_nginx()),
        }
    }

    /// The clients connected to the server now, as its metrics say.
    fn connected(&self) -> usize {
        let admin = self.admin();
        let scrape = self.server.run(move || try_get(admin, "/metrics"));
        let (_, text) = scrape.expect("the admin endpoint answers");
        sample_if_any(&text, "nea_clients_connected").expect("the gauge") as usize
    }

    /// Waits until the server has `clients` clients connected; how long
    /// that took. Panics after the test's patience.
    async fn until_connected(&self, clients: usize) -> Duration {
        let started = Instant::now();
        loop {
            let connected = self.connected();
            if connected == clients {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{connected} clients connected after {PATIENCE:?}, not {clients}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A TLS client through HAProxy from address `from` of the client
    /// host, with one line answered.
    async fn client_from(&self, pki: &Pki, from: Ipv4Addr) -> Client {
        let frontend = self.frontend();
        let socket = self.client.tcp_socket(frontend);
        socket
            .bind(SocketAddr::new(from.into(), 0))
            .expect("bind the client's address");
        let tcp = socket.connect(frontend).await.expect("the client connects");
        let stream = tls_over(tcp, pki.client_config())
            .await
            .expect("a handshake through HAProxy");
        let mut client = Client::from_stream(stream);
        assert_eq!(client.round_trip("alive").await, "evila");
        client
    }

    /// Waits until HAProxy has nothing unacknowledged on its connections
    /// to `peer` (an address, or an address and port; their send queues, as `ss` shows them, are empty): the
    /// round trips just made are over at the TCP level too. Otherwise an
    /// acknowledgement still on its way when the path dies leaves data in
    /// flight, and the user timeout ends the connection where the test
    /// means the keepalive probes to.
    fn until_settled(&self, peer: &str) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let listed = self
                .balancer
                .command("ss")
                .args(["-Htn", "dst", peer])
                .output()
                .expect("ss runs");
            let listed = String::from_utf8_lossy(&listed.stdout);
            // State, Recv-Q, Send-Q, local and peer address.
            let queued: Vec<&str> = listed
                .lines()
                .filter_map(|line| line.split_whitespace().nth(2))
                .collect();
            if !queued.is_empty() && queued.iter().all(|q| *q == "0") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "HAProxy's connections to {peer} never settled:\n{listed}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// A second address of the client host, for a client whose path alone
    /// is to die.
    fn second_client_address(&self) -> Ipv4Addr {
        let address = self.front.v4_host(3);
        self.client
            .add_address(&self.front.b.interface, IpAddr::V4(address));
        address
    }
}

/// Which balancer a test puts between the clients and the server.
#[derive(Clone, Copy, Debug)]
enum Front {
    HAProxy,
    Nginx,
}

/// A balancer of either kind, running.
enum Running {
    HAProxy(Balancer),
    Nginx(Nginx),
}

impl Running {
    /// What it logged, to show when a check fails.
    fn log(&self) -> String {
        match self {
            Self::HAProxy(balancer) => format!("haproxy:\n{}", balancer.log()),
            Self::Nginx(nginx) => format!("nginx:\n{}", nginx.log()),
        }
    }
}

/// Asserts that `took`, the time from a blackhole to a peer given up, is
/// the timeout's doing: not before it, not much after.
fn within_the_bound(what: &str, took: Duration, log: &str) {
    assert!(
        took >= TIMEOUT - EARLY && took <= TIMEOUT + LATE,
        "{what} after {took:?}, not within {TIMEOUT:?} (-{EARLY:?}, +{LATE:?})\n{log}"
    );
}

/// Two clients through the balancer `front`, with a date every
/// `date_period` to each (a long one: nothing is sent to a quiet client);
/// the path of one then dies on the client host. The server frees that
/// client's slot within the bound, and the other client, quiet all along,
/// is still served.
async fn a_dead_client_behind(front: Front, date_period: &str) {
    let site = Site::new();
    let pki = Pki::new();
    let _server = site.start_server(&pki, date_period);
    let balancer = site.start_front(front);
    let mut alive = site.client_from(&pki, site.front.b.v4).await;
    let doomed = site.second_client_address();
    let _dead = site.client_from(&pki, doomed).await;
    site.until_connected(2).await;
    site.until_settled(&doomed.to_string());
    let silenced = Instant::now();
    let _blackhole = Blackhole::new(&site.client, Traffic::Address(doomed.into()));
    let took = site.until_connected(1).await;
    within_the_bound("the dead client's slot was freed", took, &balancer.log());
    // The live client has sent nothing since before the blackhole: it is
    // kept past the whole bound, probed and answering, and still served.
    tokio::time::sleep_until((silenced + TIMEOUT + LATE).into()).await;
    assert_eq!(site.connected(), 1, "the live client was dropped");
    assert_eq!(alive.round_trip("still here").await, "ereh llits");
    eprintln!("a dead client's slot freed after {took:?}");
}

#[tokio::test]
async fn a_dead_client_with_nothing_sent_to_it_frees_its_slot_and_a_quiet_one_stays() {
    // A date an hour: only HAProxy's keepalive probes can notice.
    a_dead_client_behind(Front::HAProxy, "1h").await;
}

#[tokio::test]
async fn a_dead_client_that_dates_go_to_frees_its_slot_within_the_bound() {
    // Dates every 200 ms go unacknowledged: HAProxy's user timeout
    // notices (keepalive probes wait while data is in flight).
    a_dead_client_behind(Front::HAProxy, "200ms").await;
}

#[tokio::test]
async fn behind_nginx_a_dead_client_with_nothing_sent_to_it_frees_its_slot_and_a_quiet_one_stays() {
    // The example's keepalive probes notice.
    a_dead_client_behind(Front::Nginx, "1h").await;
}

#[tokio::test]
async fn behind_nginx_a_dead_client_that_dates_go_to_keeps_its_slot_past_the_bound() {
    // The caveat the example states: with data in flight, keepalive probes
    // wait, and nginx cannot set a user timeout, so the dead client holds
    // its slot (until Linux stops retransmitting, about 15 minutes).
    let site = Site::new();
    let pki = Pki::new();
    let _server = site.start_server(&pki, "200ms");
    let nginx = site.start_nginx();
    let doomed = site.second_client_address();
    let _dead = site.client_from(&pki, doomed).await;
    site.until_connected(1).await;
    let silenced = Instant::now();
    let _blackhole = Blackhole::new(&site.client, Traffic::Address(doomed.into()));
    tokio::time::sleep_until((silenced + TIMEOUT + LATE).into()).await;
    assert_eq!(
        site.connected(),
        1,
        "the dead client was given up within the bound after all: update the example's caveat\nnginx:\n{}",
        nginx.log()
    );
}

/// A client through HAProxy to a server whose host then goes silent (its
/// packets to and from the balancer dropped on the server host: its health
/// checks fail too). `send` says whether the client sends a line after
/// that. The client's connection ends within the bound.
async fn a_dead_server_behind_haproxy(send: bool) {
    let site = Site::new();
    let pki = Pki::new();
    let _server = site.start_server(&pki, "1h");
    let balancer = site.start_balancer();
    let mut client = site.client_from(&pki, site.front.b.v4).await;
    site.until_settled(&format!("{}:{TLS_PORT}", site.back.b.v4));
    let silenced = Instant::now();
    let _blackhole = Blackhole::new(&site.server, Traffic::Address(site.back.a.v4.into()));
    if send {
        client.send(b"anyone there?\n").await;
    }
    // Nothing arrives; the connection ends (HAProxy closes it, without
    // close_notify, which only the server could send).
    let ended = client.read_line().await;
    let took = silenced.elapsed();
    assert!(
        matches!(&ended, Ok(None))
            || matches!(&ended, Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof),
        "the client's connection did not end: {ended:?}\nhaproxy:\n{}",
        balancer.log()
    );
    within_the_bound(
        "the dead server's client was let go",
        took,
        &format!("haproxy:\n{}", balancer.log()),
    );
    eprintln!("a dead server's client let go after {took:?}");
}

#[tokio::test]
async fn a_dead_server_with_nothing_sent_to_it_lets_its_quiet_client_go() {
    // Only HAProxy's keepalive probes to the server can notice.
    a_dead_server_behind_haproxy(false).await;
}

#[tokio::test]
async fn a_dead_server_that_a_line_goes_to_lets_its_client_go() {
    // The line goes unacknowledged: HAProxy's user timeout on the server
    // connection notices.
    a_dead_server_behind_haproxy(true).await;
}
