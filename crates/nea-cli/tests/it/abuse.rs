//! SPEC §6, §7 and §8 (v2) under abuse: one address cannot keep others out
//! of their handshakes nor hold every slot (in process, watched through the
//! server's metrics), the kernel's buffers stay bounded for a client that
//! never reads, running out of file descriptors is logged at a bounded rate
//! and recovered from, and a handshake under way at SIGTERM ends with
//! `shutting_down` (on the real binary).

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use nea::protocol::{ErrorCode, Frame};
use nix::sys::signal::Signal;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use nea::server::Config;

use crate::common::{Client, GENEROUS, PATIENCE, Pki, Server, require_tool, tcp_from, tls_over};
use crate::in_process::InProcess;

/// A TLS client of `server` from `source`.
async fn client_from(source: Ipv4Addr, server: &Server) -> Client {
    let tcp = tcp_from(source, server.addr).await;
    Client::from_stream(
        tls_over(tcp, server.pki.client_config())
            .await
            .expect("handshake"),
    )
}

/// Lets this test process open `files` descriptors.
fn allow_open_files(files: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < files {
        setrlimit(Resource::RLIMIT_NOFILE, files.min(hard), hard).expect("setrlimit");
    }
}

#[tokio::test]
async fn stalled_handshakes_from_one_address_do_not_delay_another() {
    // Both ends of each connection are in this process.
    allow_open_files(4000);
    // A deadline long enough that no stalled socket expires during the test.
    let server = InProcess::start(Config::builder().handshake_timeout(Duration::from_secs(60)));
    let attacker = Ipv4Addr::new(127, 0, 0, 2);
    let mut stalled = Vec::new();
    for _ in 0..600 {
        let mut tcp = tcp_from(attacker, server.addr).await;
        // The first byte of a ClientHello, and nothing more, ever.
        tcp.write_all(&[0x16]).await.expect("one byte");
        stalled.push(tcp);
    }
    // Let the server accept them all and give them every slot they may take.
    server.until_at_least("nea_connections_total", 600.0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for probe in 0..10 {
        let started = Instant::now();
        let tcp = tcp_from(Ipv4Addr::new(127, 0, 0, 3), server.addr).await;
        // Behind the stalled handshakes, a probe would wait for their 60 s
        // deadline.
        let stream = tokio::time::timeout(GENEROUS, tls_over(tcp, server.pki.client_config()))
            .await
            .unwrap_or_else(|_| panic!("probe {probe}: no handshake within {GENEROUS:?}"))
            .expect("handshake");
        let took = started.elapsed();
        let mut client = Client::from_stream(stream);
        assert_eq!(client.round_trip("fair").await, "riaf");
        client.close().await;
        eprintln!("probe {probe}: handshake in {took:?}");
    }
    drop(stalled);
    server.stop();
}

#[tokio::test]
async fn thousands_connecting_at_once_from_one_address_are_all_served() {
    // Both ends of each connection are in this process.
    allow_open_files(8000);
    let server = InProcess::start(Config::builder().max_clients(1500));
    let config = server.pki.client_config();
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..1500 {
        let (addr, config) = (server.addr, config.clone());
        connecting.spawn(async move {
            let mut client = Client::connect(addr, config).await.expect("connects");
            assert_eq!(client.round_trip("many").await, "ynam");
            client
        });
    }
    let mut served = Vec::new();
    while let Some(client) = connecting.join_next().await {
        served.push(client.expect("every client is served"));
    }
    assert_eq!(served.len(), 1500);
    assert_eq!(server.connected(), 1500);
    // None was shed for want of room, nor failed in any other way.
    let failures = crate::common::sum_of(&server.metrics(), "nea_handshake_failures_total");
    assert_eq!(failures, 0.0, "{}", server.metrics());
    drop(served);
    server.stop();
}

#[tokio::test]
async fn one_address_gets_at_most_its_limit_and_the_next_is_told_why() {
    let server = Server::start(&["--max-clients-per-address", "2"]);
    let busy = Ipv4Addr::new(127, 0, 0, 2);
    let mut first = client_from(busy, &server).await;
    let mut second = client_from(busy, &server).await;
    assert_eq!(first.round_trip("one").await, "eno");
    assert_eq!(second.round_trip("two").await, "owt");

    let mut third = client_from(busy, &server).await;
    match third.non_date_frame().await {
        Frame::Error { code, payload } => {
            assert_eq!(code, ErrorCode::AddressLimit);
            assert!(payload.contains("address"), "{payload}");
        }
        other => panic!("expected address_limit, got {other:?}"),
    }
    assert!(
        third.clean_end().await,
        "address_limit ends with close_notify"
    );

    // Another address is served, and those connected notice nothing.
    let mut other = client_from(Ipv4Addr::new(127, 0, 0, 3), &server).await;
    assert_eq!(other.round_trip("other").await, "rehto");
    assert_eq!(first.round_trip("still").await, "llits");

    // A freed slot is the address's again at once.
    first.shutdown_write().await;
    assert!(first.clean_end().await);
    let mut again = client_from(busy, &server).await;
    assert_eq!(again.round_trip("again").await, "niaga");
    assert!(server.stop().success());
}

#[tokio::test]
async fn clientcli_reports_the_address_limit_in_its_own_sentence() {
    let server = Server::start(&["--max-clients-per-address", "1"]);
    let mut holder = server.connect().await;
    assert_eq!(holder.round_trip("mine").await, "enim");
    // Standard input stays open (a person who has not typed yet): the
    // client waits for the server, which tells it why it is turned away.
    // (With an input already ended, the client may close first, with
    // nothing to wait for.)
    let mut command = server.clientcli();
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("clientcli runs");
    let stdin = child.stdin.take().expect("stdin");
    let output = tokio::time::timeout(
        PATIENCE,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await
    .expect("clientcli ends by itself")
    .expect("task")
    .expect("output");
    drop(stdin);
    assert_eq!(output.status.code(), Some(75), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no more clients from this address"),
        "{stderr}"
    );
    assert_eq!(holder.round_trip("still").await, "llits");
    assert!(server.stop().success());
}

/// Bytes queued in the kernel for the server's side of each connection on
/// `port`: (send queue, receive queue), from `/proc/net/tcp`.
fn kernel_queues(port: u16) -> Vec<(u64, u64)> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let port = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 01 (established), tx_queue:rx_queue
            if !fields.get(1)?.ends_with(&port) || *fields.get(3)? != "01" {
                return None;
            }
            let (tx, rx) = fields.get(4)?.split_once(':')?;
            Some((
                u64::from_str_radix(tx, 16).ok()?,
                u64::from_str_radix(rx, 16).ok()?,
            ))
        })
        .collect()
}

#[tokio::test]
async fn a_client_that_never_reads_cannot_make_the_kernel_hold_megabytes() {
    let server = Server::start(&["--write-timeout", "60s"]);
    // Each line of control characters is answered by six times its size
    // of JSON escapes: far more than any buffer along the way holds.
    let line = format!("{}\n", "\u{1}".repeat(65_536));
    let mut stuck = Vec::new();
    for _ in 0..20 {
        let tcp = TcpStream::connect(server.addr).await.expect("connect");
        let stream = tls_over(tcp, server.pki.client_config())
            .await
            .expect("handshake");
        let (_unread, mut writer) = tokio::io::split(stream);
        let line = line.clone();
        stuck.push(tokio::spawn(async move {
            for _ in 0..30 {
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            // Keep the connection (and its unread half) open.
            std::future::pending::<()>().await;
            drop((_unread, writer));
        }));
    }
    // Wait until the queues stop growing.
    let mut last = Vec::new();
    let deadline = Instant::now() + PATIENCE;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = kernel_queues(server.addr.port());
        if now.len() == 20 && now == last || Instant::now() > deadline {
            break;
        }
        last = now;
    }
    let sent: u64 = last.iter().map(|q| q.0).sum();
    let received: u64 = last.iter().map(|q| q.1).sum();
    eprintln!("kernel queues of 20 clients: send {sent} B, receive {received} B");
    assert_eq!(last.len(), 20, "20 connections: {last:?}");
    assert!(sent > 0, "the test did fill the send queues: {last:?}");
    // 64 KiB asked of each buffer; Linux doubles it for its bookkeeping.
    let bound = 2 * 64 * 1024;
    for (send, receive) in &last {
        assert!(*send <= bound, "send queue {send} B above {bound} B");
        assert!(
            *receive <= bound,
            "receive queue {receive} B above {bound} B"
        );
    }
    for task in stuck {
        task.abort();
    }
    assert!(server.stop().success());
}

#[tokio::test]
async fn running_out_of_file_descriptors_is_logged_at_a_bounded_rate_and_recovered_from() {
    require_tool("prlimit", "util-linux");
    let pki = Pki::new();
    let server_command = Server::command_with(&pki, &["--handshake-timeout", "60s"]);
    // The same command, under a hard limit of 64 open files.
    let mut command = Command::new("prlimit");
    command
        .arg("--nofile=64:64")
        .arg(server_command.get_program())
        .args(server_command.get_args());
    let server = Server::spawn(command, pki);
    // Idle sockets, more than the server has descriptors for.
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(TcpStream::connect(server.addr).await.expect("connect"));
    }
    server
        .wait_for_log("accept failed", PATIENCE)
        .expect("the server runs out of descriptors");
    tokio::time::sleep(Duration::from_secs(3)).await;
    // What an operator sees; the rest is at DEBUG.
    let log = server.log();
    let logged = log
        .lines()
        .filter(|line| !line.contains(" DEBUG ") && line.contains("accept failed"))
        .count();
    assert!(
        logged <= 5,
        "{logged} lines about failed accepts in 3 s:\n{log}"
    );
    // Descriptors come free: the server accepts again (its retries back
    // off to 1 s at most, far within the bound).
    drop(idle);
    let started = Instant::now();
    let mut client = tokio::time::timeout(GENEROUS, server.connect())
        .await
        .expect("served soon after descriptors come free");
    assert_eq!(client.round_trip("back").await, "kcab");
    eprintln!("served {:?} after descriptors came free", started.elapsed());
    assert!(server.stop().success());
}

/// One run: clients connecting in a burst while SIGTERM arrives. Returns
/// how many completed their handshake.
async fn sigterm_during_a_burst_of_handshakes(signal_after: Duration) -> usize {
    let server = Server::start(&[]);
    let config = server.pki.client_config();
    let mut connecting = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (addr, config) = (server.addr, config.clone());
        connecting.spawn(async move {
            // A client whose connection or handshake fails was not served;
            // one whose handshake completed must be told, and closed cleanly.
            let tcp = TcpStream::connect(addr).await.ok()?;
            let stream = tls_over(tcp, config).await.ok()?;
            let mut client = Client::from_stream(stream);
            let last = loop {
                match client.read_line().await {
                    Ok(Some(line)) => match Frame::parse(&line) {
                        Ok(Frame::Date { .. }) => {}
                        other => break other.ok(),
                    },
                    Ok(None) => panic!("the stream ended without shutting_down"),
                    Err(err) => panic!("a handshake completed, then: {err}"),
                }
            };
            assert!(
                matches!(
                    last,
                    Some(Frame::Error {
                        code: ErrorCode::ShuttingDown,
                        ..
                    })
                ),
                "{last:?}"
            );
            assert!(client.clean_end().await, "ended without close_notify");
            Some(())
        });
    }
    tokio::time::sleep(signal_after).await;
    server.signal(Signal::SIGTERM);
    let mut completed = 0;
    while let Some(outcome) = connecting.join_next().await {
        completed += usize::from(outcome.expect("a client's checks").is_some());
    }
    let mut server = server;
    let status = server.wait_exit(PATIENCE).expect("the server exits");
    assert!(status.success(), "{status:?}");
    completed
}

#[tokio::test]
async fn sigterm_while_handshakes_are_under_way_closes_each_cleanly() {
    let mut completed = Vec::new();
    for run in 0..20u64 {
        // Signals at varied points of the burst.
        let after = Duration::from_millis(2 * run);
        completed.push(sigterm_during_a_burst_of_handshakes(after).await);
    }
    eprintln!("handshakes completed per run: {completed:?}");
    assert!(
        completed.iter().any(|&n| n > 0),
        "no run had a handshake complete: the test tested nothing"
    );
}

/// Sends `signal` and checks that the server logs it and keeps serving.
async fn survives(signal: Signal, logged: &str) {
    let server = Server::start(&[]);
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("before").await, "erofeb");
    server.signal(signal);
    server
        .wait_for_log(logged, PATIENCE)
        .unwrap_or_else(|| panic!("{signal} is not logged:\n{}", server.log()));
    assert_eq!(client.round_trip("after").await, "retfa");
    let mut late = server.connect().await;
    assert_eq!(late.round_trip("new").await, "wen");
    assert!(server.stop().success());
}

#[tokio::test]
async fn sighup_is_logged_and_serving_goes_on() {
    survives(Signal::SIGHUP, "SIGHUP received").await;
}

#[tokio::test]
async fn sigusr1_and_sigusr2_are_logged_and_ignored() {
    survives(Signal::SIGUSR1, "SIGUSR1 received").await;
    survives(Signal::SIGUSR2, "SIGUSR2 received").await;
}

#[tokio::test]
async fn sigquit_shuts_down_gracefully() {
    let server = Server::start(&[]);
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("bye").await, "eyb");
    server.signal(Signal::SIGQUIT);
    assert!(matches!(
        client.non_date_frame().await,
        Frame::Error {
            code: ErrorCode::ShuttingDown,
            ..
        }
    ));
    assert!(client.clean_end().await);
    let mut server = server;
    let status = server.wait_exit(PATIENCE).expect("exits");
    assert!(status.success(), "{status:?}");
    assert!(server.log().contains("SIGQUIT received"));
}
