//! The network-fault kit itself (`netns`): each test here fails if the part
//! of the kit it names stops doing what later tests rely on. Things that
//! must happen get the suite's patience; things that must not happen are
//! watched for one second.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::require_tool;
use crate::common::{Client, PATIENCE, Pki, Server, servercli_exe, tls_over};
use crate::netns::{Blackhole, LatencyRelay, Namespace, Network, Traffic, sweep_stale_namespaces};

/// How long something that must not happen is watched for.
const QUIET: Duration = Duration::from_secs(1);

/// The names of the namespaces that exist now.
fn namespaces() -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The inode of a network namespace file: two files with the same inode
/// are the same namespace.
fn inode(path: impl AsRef<Path>) -> u64 {
    std::fs::metadata(path).expect("a namespace file").ino()
}

/// A TCP echo server in `namespace` on `addr` (port 0 picks one), served
/// by the caller's runtime; returns where it listens.
fn echo_server(namespace: &Namespace, addr: SocketAddr) -> SocketAddr {
    let socket = namespace.tcp_socket(addr);
    socket.bind(addr).expect("the echo server binds");
    let listener = socket.listen(16).expect("the echo server listens");
    let local = listener.local_addr().expect("local address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = stream.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    local
}

/// A TCP connection from `namespace` to `addr`.
async fn connect_from(namespace: &Namespace, addr: SocketAddr) -> std::io::Result<TcpStream> {
    namespace.tcp_socket(addr).connect(addr).await
}

/// Sends `bytes` and reads as many back, within the suite's patience.
async fn echo(stream: &mut TcpStream, bytes: &[u8]) -> Vec<u8> {
    stream.write_all(bytes).await.expect("send");
    let mut back = vec![0; bytes.len()];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut back))
        .await
        .expect("the echo within the test's patience")
        .expect("the echo");
    back
}

#[test]
fn code_run_in_a_namespace_and_threads_it_starts_are_in_that_namespace() {
    let network = Network::new();
    let server_ns = format!("/var/run/netns/{}", network.server.name());
    let (own, started) = network.server.run(|| {
        let started = std::thread::spawn(|| inode("/proc/thread-self/ns/net"))
            .join()
            .expect("a thread started in the namespace");
        (inode("/proc/thread-self/ns/net"), started)
    });
    assert_eq!(own, inode(&server_ns), "run's thread is in the namespace");
    assert_eq!(started, own, "a thread started there inherits it");
    assert_ne!(
        inode("/proc/thread-self/ns/net"),
        own,
        "the caller stays where it was"
    );

    // The server's link address exists in its namespace only: a socket
    // made by run binds to it, one made here cannot.
    let addr = SocketAddr::from((network.link.a.v4, 0));
    let listener = network
        .server
        .run(|| std::net::TcpListener::bind(addr))
        .expect("bind in the namespace");
    let bound = listener.local_addr().expect("local address");
    let here = std::net::TcpListener::bind(addr).expect_err("the address is not here");
    assert_eq!(here.kind(), std::io::ErrorKind::AddrNotAvailable, "{here}");

    // The listener keeps its namespace on any thread: the client's
    // namespace reaches it through the link, from run's own runtime.
    let accepting = std::thread::spawn(move || listener.accept().map(|(_, peer)| peer));
    let client_addr = network.client.run(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime in the namespace");
        runtime.block_on(async {
            let stream = tokio::time::timeout(PATIENCE, TcpStream::connect(bound))
                .await
                .expect("connect within the test's patience")
                .expect("connect");
            stream.local_addr().expect("local address")
        })
    });
    let peer = accepting.join().expect("accepting").expect("accept");
    assert_eq!(peer, client_addr);
    assert_eq!(peer.ip(), IpAddr::from(network.link.b.v4));
}

#[tokio::test]
async fn linked_namespaces_reach_each_other_over_tcp_on_ipv4_and_ipv6() {
    let network = Network::new();
    for server_ip in [IpAddr::from(network.link.a.v4), network.link.a.v6.into()] {
        let addr = echo_server(&network.server, (server_ip, 0).into());
        let mut stream = tokio::time::timeout(PATIENCE, connect_from(&network.client, addr))
            .await
            .expect("connect within the test's patience")
            .expect("connect");
        let client_ip = stream.local_addr().expect("local address").ip();
        assert!(
            client_ip == IpAddr::from(network.link.b.v4)
                || client_ip == IpAddr::from(network.link.b.v6),
            "the connection comes from the client's end of the link: {client_ip}"
        );
        assert_eq!(
            echo(&mut stream, b"across the link").await,
            b"across the link"
        );
    }
}

#[tokio::test]
async fn a_port_blackhole_keeps_connects_pending_and_sends_unanswered_until_dropped() {
    let network = Network::new();
    let addr = echo_server(&network.server, (network.link.a.v4, 0).into());
    let mut established = connect_from(&network.client, addr).await.expect("connect");
    assert_eq!(echo(&mut established, b"before").await, b"before");

    let blackhole = Blackhole::new(&network.server, Traffic::TcpPort(addr.port()));
    // The send succeeds (the bytes wait in the kernel for an
    // acknowledgement), and nothing comes back; a new connect stays pending.
    // Both are watched at once so the blackhole is on for one second only.
    established
        .write_all(b"during")
        .await
        .expect("a send into a blackhole succeeds");
    let mut reply = [0; 6];
    let (read, connect) = tokio::join!(
        tokio::time::timeout(QUIET, established.read_exact(&mut reply)),
        tokio::time::timeout(QUIET, connect_from(&network.client, addr)),
    );
    assert!(
        read.is_err(),
        "a reply came through the blackhole: {read:?}"
    );
    assert!(
        connect.is_err(),
        "a connect ended while the path was dropped: {connect:?}"
    );

    drop(blackhole);
    // The path works again: new connections, and the held-back bytes,
    // which the kernel retransmits.
    let mut after = tokio::time::timeout(PATIENCE, connect_from(&network.client, addr))
        .await
        .expect("connect within the test's patience")
        .expect("connect");
    assert_eq!(echo(&mut after, b"after").await, b"after");
    tokio::time::timeout(PATIENCE, established.read_exact(&mut reply))
        .await
        .expect("the held-back reply within the test's patience")
        .expect("the held-back reply");
    assert_eq!(&reply, b"during");
}

#[tokio::test]
async fn address_blackholes_silence_their_addresses_only_and_each_lifts_alone() {
    let network = Network::new();
    let (interface, link) = (&network.link.a.interface, &network.link);
    network
        .server
        .add_address(interface, link.v4_host(3).into());
    network
        .server
        .add_address(interface, link.v6_host(3).into());
    let v4_port = echo_server(&network.server, (Ipv4Addr::UNSPECIFIED, 0).into()).port();
    let v6_port = echo_server(&network.server, (Ipv6Addr::UNSPECIFIED, 0).into()).port();
    let silenced_v4 = SocketAddr::from((link.a.v4, v4_port));
    let open_v4 = SocketAddr::from((link.v4_host(3), v4_port));
    let silenced_v6 = SocketAddr::from((link.v6_host(3), v6_port));
    let open_v6 = SocketAddr::from((link.a.v6, v6_port));

    // As for a host name whose first addresses are dead: one address of
    // each family does not answer the client, the others do.
    let blackhole_v4 = Blackhole::new(&network.client, Traffic::Address(silenced_v4.ip()));
    let blackhole_v6 = Blackhole::new(&network.client, Traffic::Address(silenced_v6.ip()));
    let connect =
        |addr, patience| tokio::time::timeout(patience, connect_from(&network.client, addr));
    let (to_silenced_v4, to_silenced_v6, to_open_v4, to_open_v6) = tokio::join!(
        connect(silenced_v4, QUIET),
        connect(silenced_v6, QUIET),
        connect(open_v4, PATIENCE),
        connect(open_v6, PATIENCE),
    );
    assert!(
        to_silenced_v4.is_err(),
        "{silenced_v4} answered: {to_silenced_v4:?}"
    );
    assert!(
        to_silenced_v6.is_err(),
        "{silenced_v6} answered: {to_silenced_v6:?}"
    );
    for (addr, stream) in [(open_v4, to_open_v4), (open_v6, to_open_v6)] {
        let mut stream = stream
            .unwrap_or_else(|_| panic!("{addr} did not answer in time"))
            .unwrap_or_else(|err| panic!("{addr} refused: {err}"));
        assert_eq!(echo(&mut stream, b"open").await, b"open");
    }

    // Lifting one blackhole leaves the other on.
    drop(blackhole_v4);
    let (to_silenced_v4, to_silenced_v6) =
        tokio::join!(connect(silenced_v4, PATIENCE), connect(silenced_v6, QUIET),);
    let mut to_silenced_v4 = to_silenced_v4
        .expect("the lifted address answers in time")
        .expect("connect");
    assert_eq!(echo(&mut to_silenced_v4, b"lifted").await, b"lifted");
    assert!(
        to_silenced_v6.is_err(),
        "{silenced_v6} answered: {to_silenced_v6:?}"
    );
    drop(blackhole_v6);
}

#[test]
fn a_dropped_namespace_is_deleted_with_its_processes_and_hosts_file() {
    let namespace = Namespace::new();
    let name = namespace.name().to_owned();
    namespace.set_hosts("10.0.0.1 gone.test\n");
    let mut inside = namespace
        .command("sleep")
        .arg("600")
        .stdin(Stdio::null())
        .spawn()
        .expect("sleep starts in the namespace");
    assert!(namespaces().contains(&name));

    drop(namespace);
    assert!(
        !namespaces().contains(&name),
        "{name} is still listed: {:?}",
        namespaces()
    );
    assert!(!Path::new("/etc/netns").join(&name).exists());
    // Stopped, not merely left behind in an unnamed namespace.
    let status = inside.try_wait().expect("try_wait");
    assert!(
        status.is_some(),
        "a process inside outlived its namespace's drop"
    );
}

#[test]
fn a_namespace_is_deleted_when_its_test_panics() {
    let name = Mutex::new(String::new());
    let outcome = std::panic::catch_unwind(|| {
        let namespace = Namespace::new();
        namespace.set_hosts("10.0.0.1 gone.test\n");
        *name.lock().expect("name lock") = namespace.name().to_owned();
        panic!("a test fails while it owns a namespace");
    });
    assert!(outcome.is_err());
    let name = name.into_inner().expect("name lock");
    assert!(!name.is_empty(), "the namespace was made");
    assert!(
        !namespaces().contains(&name),
        "{name} survived the panic: {:?}",
        namespaces()
    );
    assert!(!Path::new("/etc/netns").join(&name).exists());
}

#[test]
fn namespaces_of_dead_test_processes_are_swept_and_live_ones_kept() {
    let live = Namespace::new();
    // A pid that was alive and is no longer: a test process killed before
    // its namespaces' Drop could run.
    let mut exited = Command::new("true").spawn().expect("true starts");
    let dead_pid = exited.id();
    exited.wait().expect("true ends");
    let stale = format!("nea-{dead_pid}-0");
    let made = Command::new("ip")
        .args(["netns", "add", &stale])
        .status()
        .expect("ip netns add");
    assert!(made.success());
    let stale_etc = Path::new("/etc/netns").join(&stale);
    std::fs::create_dir_all(&stale_etc).expect("a stale /etc/netns entry");

    sweep_stale_namespaces();
    let listed = namespaces();
    assert!(
        !listed.contains(&stale),
        "{stale} was not swept: {listed:?}"
    );
    assert!(!stale_etc.exists(), "{} was not swept", stale_etc.display());
    assert!(
        listed.contains(&live.name().to_owned()),
        "a live process's namespace was swept"
    );
}

#[test]
fn set_hosts_gives_a_name_its_addresses_in_commands_run_in_the_namespace() {
    let network = Network::new();
    // A name with four addresses, two on the link's ends and two more.
    let link = &network.link;
    let (second_v4, second_v6) = (link.v4_host(3), link.v6_host(3));
    network
        .server
        .add_address(&link.a.interface, second_v4.into());
    network
        .server
        .add_address(&link.a.interface, second_v6.into());
    let addresses = [
        IpAddr::from(link.a.v4),
        link.a.v6.into(),
        second_v4.into(),
        second_v6.into(),
    ];
    let hosts: String = addresses
        .iter()
        .map(|address| format!("{address} server.nea.test\n"))
        .collect();
    network.client.set_hosts(&hosts);
    let output = network
        .client
        .command("getent")
        .args(["ahosts", "server.nea.test"])
        .output()
        .expect("getent runs in the namespace");
    assert!(output.status.success(), "{output:?}");
    let resolved = String::from_utf8_lossy(&output.stdout);
    for address in addresses.map(|address| address.to_string()) {
        assert!(
            resolved
                .lines()
                .any(|line| line.split_whitespace().next() == Some(address.as_str())),
            "{address} missing from:\n{resolved}"
        );
    }
    // The host's own resolution is untouched.
    let host = Command::new("getent")
        .args(["ahosts", "server.nea.test"])
        .output()
        .expect("getent runs");
    assert!(!host.status.success(), "the host resolves it: {host:?}");
}

#[test]
fn a_missing_tool_is_named_in_one_line_with_the_setup_script() {
    let panic = std::panic::catch_unwind(|| require_tool("nea-no-such-tool", "nea-no-package"))
        .expect_err("a missing tool fails");
    let message = panic.downcast_ref::<String>().expect("a formatted message");
    assert_eq!(
        message,
        "nea-no-such-tool (Debian package nea-no-package) is needed: run scripts/setup.sh"
    );
}

#[tokio::test]
async fn the_real_server_in_one_namespace_serves_a_client_in_another() {
    let network = Network::new();
    let pki = Pki::new();
    let mut command = network.server.command(servercli_exe());
    command
        .args(["--bind", &network.link.a.v4.to_string(), "--port", "0"])
        .arg("--cert")
        .arg(&pki.cert)
        .arg("--key")
        .arg(&pki.key);
    let config = pki.client_config();
    let server = Server::spawn(command, pki);
    let addr = SocketAddr::from((network.link.a.v4, server.addr.port()));

    let tcp = connect_from(&network.client, addr).await.expect("connect");
    let mut client = Client::from_stream(tls_over(tcp, config).await.expect("handshake"));
    assert_eq!(client.round_trip("namespace").await, "ecapseman");
    client.close().await;
    assert!(server.stop().success(), "the server exits cleanly");
}

#[tokio::test]
async fn the_relay_delays_each_round_trip_and_keeps_bytes_in_order() {
    let one_way = Duration::from_millis(150);
    let network = Network::new();
    let target = echo_server(&network.server, (network.link.a.v4, 0).into());
    // Started inside the server's namespace, on an address that exists
    // only there: the relay's thread inherits the namespace.
    let listen = SocketAddr::from((network.link.a.v4, 0));
    let relay = network
        .server
        .run(|| LatencyRelay::start(listen, target, one_way));
    let mut stream = tokio::time::timeout(PATIENCE, connect_from(&network.client, relay.addr()))
        .await
        .expect("connect within the test's patience")
        .expect("connect");

    let started = Instant::now();
    assert_eq!(echo(&mut stream, b"x").await, b"x");
    let round_trip = started.elapsed();
    assert!(
        round_trip >= 2 * one_way,
        "a round trip of {round_trip:?} through a relay of {one_way:?} each way"
    );

    // Forty chunks sent 10 ms apart come back whole and in order, and the
    // delays overlap: a relay that held each chunk until the one before it
    // was out would need 40 x 300 ms.
    let chunks: Vec<Vec<u8>> = (0..40u8).map(|n| vec![n; 1000]).collect();
    let expected = chunks.concat();
    let (mut read, mut write) = stream.into_split();
    let started = Instant::now();
    let sending = tokio::spawn(async move {
        for chunk in chunks {
            write.write_all(&chunk).await.expect("send");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        write
    });
    let mut back = vec![0; expected.len()];
    tokio::time::timeout(PATIENCE, read.read_exact(&mut back))
        .await
        .expect("everything back within the test's patience")
        .expect("read");
    let elapsed = started.elapsed();
    assert!(back == expected, "the bytes came back changed or reordered");
    assert!(
        elapsed < Duration::from_secs(3),
        "40 chunks took {elapsed:?}: the relay serialises its delays"
    );
    drop(sending.await.expect("sending"));
}
