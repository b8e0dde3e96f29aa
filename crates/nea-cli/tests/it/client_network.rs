//! SPEC §10 and §13 for the real `clientcli` on real networks: a server
//! whose path dies silently is noticed within the dead-peer timeout (and a
//! reconnecting client comes back once the path does, every line answered
//! once); a server that accepts and then says nothing is given up too; a
//! name whose first address does not answer costs a fraction of a second;
//! a reconnecting client backs off across refusals and leaves a server that
//! is shutting down at once.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use nea::server::Config;
use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{PATIENCE, Pki, clientcli_exe, clientcli_for, scripted_server};
use crate::in_process::InProcess;
use crate::netns::{Blackhole, Network, Traffic};
use crate::running_client::RunningClient;

/// How much later than the timeout a dead server may be noticed.
const LATE: Duration = Duration::from_secs(4);

/// An in-process server in `network`'s server namespace, listening on
/// `addr` (port 0).
fn server_in(network: &Network, addr: SocketAddr, config: nea::server::ConfigBuilder) -> InProcess {
    let config = config.build().expect("a valid configuration");
    network.server.run(move || {
        InProcess::start_with(Pki::new(), move |builder| {
            builder.listen_on(addr).config(config)
        })
    })
}

/// `clientcli` run in `network`'s client namespace, for `host` and
/// `server`'s port, trusting its CA, with `args`.
fn clientcli_in(network: &Network, host: &str, server: &InProcess, args: &[&str]) -> RunningClient {
    let mut command = network.client.command(clientcli_exe());
    command
        .args([
            "--host",
            host,
            "--port",
            &server.addr.port().to_string(),
            "--ca",
        ])
        .arg(&server.pki.ca_pem)
        .args(["--server-name", "localhost"])
        .args(args)
        .env("NEA_DEV_DIR", "/nonexistent/nea-test")
        .env("NEA_NO_HISTORY", "1")
        // Dates shown in UTC, to compare with the test's clock.
        .env("TZ", "UTC");
    RunningClient::start(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_path_dies_is_given_up_within_the_timeout() {
    let network = Network::new();
    let host = network.link.a.v4;
    let server = server_in(&network, SocketAddr::new(host.into(), 0), Config::builder());
    let mut client = clientcli_in(
        &network,
        &host.to_string(),
        &server,
        &["--dead-peer-timeout", "3s"],
    );
    client.send(b"before");
    client.wait_for_stdout("erofeb");
    let silenced = Instant::now();
    let _blackhole = Blackhole::new(&network.client, Traffic::TcpPort(server.addr.port()));
    // Nothing is typed: only the client's own probes can notice.
    let ended = client.wait_exit(PATIENCE);
    let took = silenced.elapsed();
    let stderr = ended.stderr.join("\n");
    assert_eq!(ended.status.code(), Some(74), "{stderr}");
    assert_eq!(
        ended.stderr.last().map(String::as_str),
        Some("clientcli: the server stopped answering: nothing from it for 3s")
    );
    assert!(
        took <= Duration::from_secs(3) + LATE,
        "noticed after {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_comes_back_when_the_path_does_and_loses_no_line() {
    let network = Network::new();
    let host = network.link.a.v4;
    // Dates every 200 ms: many are sent into the dead path, to be
    // retransmitted once it is back.
    let server = server_in(
        &network,
        SocketAddr::new(host.into(), 0),
        Config::builder().date_period(Duration::from_millis(200)),
    );
    let mut client = clientcli_in(
        &network,
        &host.to_string(),
        &server,
        &[
            "--dead-peer-timeout",
            "2s",
            "--reconnect",
            "--connect-timeout",
            "1s",
        ],
    );
    client.send(b"line 0");
    client.wait_for_stdout("0 enil");
    let blackhole = Blackhole::new(&network.client, Traffic::TcpPort(server.addr.port()));
    for n in 1..=20 {
        client.send(format!("line {n}").as_bytes());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The client gave up on the dead connection and keeps trying.
    client.wait_for_stderr("the server stopped answering");
    // A second early, for the dates' whole seconds and the clocks' reads.
    let live_from = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1))
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string();
    let shown_before_restore = client.stderr().len();
    drop(blackhole);
    client.wait_for_stdout("02 enil");
    // Dates of the new connection, a few periods' worth.
    tokio::time::sleep(Duration::from_secs(1)).await;
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    let expected: Vec<String> = (0..=20)
        .map(|n| nea::reverse::reverse(&format!("line {n}")))
        .collect();
    assert_eq!(ended.stdout, expected, "{}", ended.stderr.join("\n"));
    assert!(ended.status.success(), "{}", ended.stderr.join("\n"));
    // The dead connection's dates are never shown as if live: every date
    // shown once the path is back is from after it came back, and the
    // dates shown never go back in time.
    let date = |line: &String| line.strip_prefix("date: ").map(str::to_owned);
    let dates: Vec<String> = ended.stderr.iter().filter_map(date).collect();
    assert!(
        dates.windows(2).all(|pair| pair[0] <= pair[1]),
        "{dates:#?}"
    );
    let after: Vec<String> = ended.stderr[shown_before_restore..]
        .iter()
        .filter_map(date)
        .collect();
    assert!(!after.is_empty(), "no date shown once the path came back");
    assert!(
        after.iter().all(|shown| *shown >= live_from),
        "dates from before {live_from} shown after the path came back: {after:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_accepts_and_then_says_nothing_is_given_up() {
    let pki = Pki::new();
    let addr = scripted_server(&pki, |mut stream| async move {
        // Reads what comes, answers nothing, closes nothing.
        let mut sink = Vec::new();
        let _ = stream.read_to_end(&mut sink).await;
    })
    .await;
    let mut command = clientcli_for(addr.port(), &pki.ca_pem);
    command.args(["--dead-peer-timeout", "2s"]);
    let mut client = RunningClient::start(command);
    client.send(b"hi");
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    let stderr = ended.stderr.join("\n");
    assert_eq!(ended.status.code(), Some(74), "{stderr}");
    assert_eq!(
        ended.stderr.last().map(String::as_str),
        Some("clientcli: the server stopped answering: nothing from it for 2s")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_address_that_does_not_answer_costs_a_fraction_of_a_second() {
    let network = Network::new();
    let (v4, v6) = (network.link.a.v4, network.link.a.v6);
    // One server on both families.
    let server = server_in(&network, "[::]:0".parse().expect("addr"), Config::builder());
    network
        .client
        .set_hosts(&format!("{v4} eyeballs.test\n{v6} eyeballs.test\n"));
    // Whichever address the resolver gives first does not answer.
    let first = first_resolved(&network, "eyeballs.test");
    let _blackhole = Blackhole::new(&network.client, Traffic::Address(first));
    let started = Instant::now();
    let mut client = clientcli_in(
        &network,
        "eyeballs.test",
        &server,
        &["--connect-timeout", "10s"],
    );
    client.send(b"eyeballs");
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    let took = started.elapsed();
    let stderr = ended.stderr.join("\n");
    assert!(ended.status.success(), "{stderr}");
    assert_eq!(ended.stdout, ["sllabeye"]);
    // Tried one after the other, the silent address would cost the whole
    // connect timeout (10 s) first.
    assert!(
        took < Duration::from_secs(5),
        "connected after {took:?}: {stderr}"
    );
}

/// The first address `name` resolves to in `network`'s client namespace,
/// in the resolver's order (`getent ahosts`, as clientcli's resolver sees it).
fn first_resolved(network: &Network, name: &str) -> std::net::IpAddr {
    let output = network
        .client
        .command("getent")
        .args(["ahosts", name])
        .output()
        .expect("getent runs");
    let text = String::from_utf8_lossy(&output.stdout);
    text.split_whitespace()
        .next()
        .and_then(|first| first.parse().ok())
        .unwrap_or_else(|| panic!("{name} does not resolve: {text}"))
}

/// The attempt numbers of a reconnecting client's notices so far.
fn attempts(stderr: &[String]) -> Vec<u32> {
    stderr
        .iter()
        .filter_map(|line| line.split("(attempt ").nth(1))
        .filter_map(|rest| rest.trim_end_matches(')').parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_backs_off_across_a_full_server() {
    let server = InProcess::start(Config::builder().max_clients(1));
    let _holder = server.connect().await;
    server.until_connected(1).await;
    let mut command = server.clientcli();
    command.arg("--reconnect");
    let client = RunningClient::start(command);
    client.wait_for_stderr("(attempt 3)");
    client.signal(Signal::SIGINT);
    let ended = client.wait_exit(PATIENCE);
    let seen = attempts(&ended.stderr);
    // Each refusal (server_full, after a full handshake) counts as a
    // failed attempt: the delays grow, the count never starts over.
    assert!(
        seen.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "{seen:?}\n{}",
        ended.stderr.join("\n")
    );
    assert!(
        server.sample("nea_rejections_total{code=\"server_full\"}") <= 4.0,
        "{}",
        server.metrics()
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutting_down_the_old_connection_is_closed_at_once() {
    let pki = Pki::new();
    let (closed, closed_after) = tokio::sync::oneshot::channel();
    let addr = scripted_server(&pki, |mut stream| async move {
        let frame = b"{\"msg_type\":\"error\",\"code\":\"shutting_down\",\"payload\":\"server is shutting down\"}\n";
        stream.write_all(frame).await.expect("write");
        stream.flush().await.expect("flush");
        let said = Instant::now();
        // The client's end of the connection: closed (EOF or an error)
        // once the client lets it go.
        let mut sink = Vec::new();
        let gone = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut sink)).await;
        let _ = closed.send(gone.is_ok().then(|| said.elapsed()));
    })
    .await;
    let mut command = clientcli_for(addr.port(), &pki.ca_pem);
    command.arg("--reconnect");
    let client = RunningClient::start(command);
    let closed_after = closed_after.await.expect("the script reports");
    client.signal(Signal::SIGINT);
    let ended = client.wait_exit(PATIENCE);
    let closed_after = closed_after
        .unwrap_or_else(|| panic!("the client kept the connection: {:?}", ended.stderr));
    assert!(
        closed_after < Duration::from_secs(4),
        "closed after {closed_after:?}"
    );
}
