//! SPEC §11, logs, on the real binary: `--log-format json` (or
//! `NEA_LOG_FORMAT=json`) writes one JSON object per line, with the field
//! names docs/operations.md documents.

use std::net::SocketAddr;

use crate::common::{PATIENCE, Pki, Server, free_addr, start_with_admin, until_scraped};

/// The server's log lines, each parsed as a JSON object.
fn objects(log: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    log.lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(serde_json::Value::Object(object)) => object,
            other => panic!("not a JSON object: {line:?} ({other:?})"),
        })
        .collect()
}

/// Serves a client that closes, stops `server` (whose admin endpoint is
/// `admin`), and checks its whole log.
async fn logs_json(server: Server, admin: SocketAddr) {
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("json").await, "nosj");
    client.shutdown_write().await;
    assert!(client.clean_end().await);
    // The session ended as the client's close, not by the stop below.
    until_scraped(admin, "nea_sessions_ended_total{reason=\"closed\"}", |n| {
        n == 1.0
    })
    .await;
    let mut server = server;
    server.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(server.wait_exit(PATIENCE).expect("exits").success());
    // Everything written before the exit, read to the end.
    let lines = objects(&server.log());
    for line in &lines {
        for field in ["timestamp", "level", "message"] {
            assert!(line.contains_key(field), "{field} missing: {line:?}");
        }
    }
    let left = lines
        .iter()
        .find(|line| line["message"] == "client left")
        .expect("a client left line");
    assert_eq!(left["level"], "INFO");
    for field in [
        "peer", "tls", "cipher", "subject", "duration", "lines", "reason", "clients",
    ] {
        assert!(left.contains_key(field), "{field} missing: {left:?}");
    }
    assert_eq!(left["reason"], "closed by client");
    assert_eq!(left["lines"], 1);
    // Facts are typed fields: a duration is a number of seconds, counts
    // are numbers.
    assert!(left["duration"].is_f64(), "{left:?}");
    assert!(
        left["duration"]
            .as_f64()
            .is_some_and(|s| s > 0.0 && s < 60.0),
        "{left:?}"
    );
    assert_eq!(left["line_errors"], 0);
    assert_eq!(left["clients"], 0);
    // The listening line: its facts are fields.
    let listening = lines
        .iter()
        .find(|line| line["message"] == "listening")
        .expect("a listening line");
    assert!(
        listening["addr"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{listening:?}"
    );
    assert_eq!(listening["passed_socket"], false);
    assert!(listening["date_period"].is_f64(), "{listening:?}");
    let last = lines.last().expect("lines");
    assert_eq!(last["message"], "stopped", "{last:?}");
}

#[tokio::test]
async fn log_format_json_writes_one_object_per_line() {
    let (server, admin) = start_with_admin(&["--log-format", "json"]);
    logs_json(server, admin).await;
}

#[tokio::test]
async fn the_log_format_comes_from_the_environment_too() {
    let pki = Pki::new();
    let admin = free_addr();
    let mut command = Server::command_with(&pki, &["--admin-addr", &admin.to_string()]);
    command.env("NEA_LOG_FORMAT", "json");
    logs_json(Server::spawn(command, pki), admin).await;
}

#[tokio::test]
async fn a_standard_error_nobody_reads_does_not_stop_the_serving() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let port_file = dir.path().join("port");
    // stderr is a pipe that this test never reads: once its 64 KiB are
    // full, every write(2) to it blocks.
    let child = Server::command_with(&pki, &[])
        .arg("--port-file")
        .arg(&port_file)
        .env("RUST_LOG", "nea=debug")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("servercli starts");
    // Killed however the test ends.
    let _child = KillOnDrop(child);
    let deadline = std::time::Instant::now() + PATIENCE;
    let port: u16 = loop {
        if let Ok(text) = std::fs::read_to_string(&port_file) {
            break text.trim().parse().expect("a port");
        }
        assert!(std::time::Instant::now() < deadline, "no port file");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Two log lines per client, a few hundred bytes each: twice what the
    // pipe holds.
    let served = tokio::time::timeout(3 * PATIENCE, async {
        for i in 0..250 {
            let mut client = crate::common::Client::connect(addr, pki.client_config())
                .await
                .expect("connects");
            let line = format!("client {i} with a long enough line to make the log grow");
            assert_eq!(client.round_trip(&line).await, nea::reverse::reverse(&line));
            client.close().await;
        }
    })
    .await;
    served.expect("every client is served while standard error is full");
}

/// A child process killed when the test is done with it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `clients` of each leave line, as JSON numbers, in order.
fn leave_counts(log: &str) -> Vec<u64> {
    objects(log)
        .iter()
        .filter(|line| line["message"] == "client left")
        .filter_map(|line| line["clients"].as_u64())
        .collect()
}

#[tokio::test]
async fn leave_lines_at_shutdown_count_the_clients_still_connected() {
    let mut server = Server::start(&["--log-format", "json"]);
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = server.connect().await;
        assert_eq!(client.round_trip("x").await, "x");
        clients.push(client);
    }
    server.signal(nix::sys::signal::Signal::SIGTERM);
    for client in &mut clients {
        assert!(client.clean_end().await);
    }
    assert!(server.wait_exit(PATIENCE).expect("exits").success());
    server
        .wait_for_log("\"stopped\"", PATIENCE)
        .expect("the last line");
    // Each client left in turn: two, then one, then none still connected.
    let mut counts = leave_counts(&server.log());
    counts.sort_unstable();
    assert_eq!(counts, [0, 1, 2], "{}", server.log());
}
