//! `clientcli` with standard input that is not a terminal (SPEC §10): pipe
//! mode, `--json`, every failure as one sentence and its own exit status,
//! and `--reconnect`.

use std::io::Write;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use nea::server::Config;

use crate::common::{GENEROUS, PATIENCE, Pki, Server, clientcli_for, scripted_server};
use crate::in_process::InProcess;

/// Runs `command` with `input` on stdin and waits for it (off the async
/// runtime's thread, so servers in this process keep running).
async fn run_with_input(command: std::process::Command, input: &[u8]) -> Output {
    let input = input.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut child = spawn_interactive_pipe(command);
        let mut stdin = child.stdin.take().expect("stdin");
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let output = child.wait_with_output().expect("clientcli ends");
        writer.join().expect("stdin writer");
        output
    })
    .await
    .expect("blocking task")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts that stderr starts with the "connected to TARGET (TLSv1.3,
/// TLS13_...)" line.
fn assert_connected_first(output: &Output, target: &str) {
    let stderr = text(&output.stderr);
    let expected = format!("connected to {target} (TLSv1.3, TLS13_");
    assert!(stderr.starts_with(&expected), "{stderr}");
}

/// Asserts a failure: the exit status, and one `clientcli:` sentence on
/// stderr containing `needle`.
fn assert_failure(output: &Output, status: i32, needle: &str) {
    let stderr = text(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert_eq!(output.status.code(), Some(status), "stderr: {stderr}");
    assert!(last.starts_with("clientcli: "), "{stderr}");
    assert!(last.contains(needle), "{stderr}");
    assert!(output.stdout.is_empty(), "stdout: {}", text(&output.stdout));
}

/// An in-process server with the default configuration.
fn in_process() -> InProcess {
    InProcess::start(Config::builder())
}

/// An in-process server on 127.0.0.1:`port`, with `pki`'s certificates
/// (where a client expects one that went away).
fn in_process_on(pki: Pki, port: u16) -> InProcess {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    InProcess::start_with(pki, move |builder| builder.listen_on(addr))
}

#[tokio::test]
async fn piped_lines_are_answered_in_order_and_the_client_exits_zero() {
    let server = in_process();
    let output = run_with_input(server.clientcli(), "hello\nnoël\n\n".as_bytes()).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "olleh\nlëon\n\n");
    assert_connected_first(&output, &format!("127.0.0.1:{}", server.addr.port()));
    // The client closes with close_notify: its session ends as closed.
    server
        .until("nea_sessions_ended_total{reason=\"closed\"}", |n| n == 1.0)
        .await;
    assert_eq!(server.ended(), 1.0, "{}", server.metrics());
    server.stop();
}

#[tokio::test]
async fn ten_thousand_lines_are_all_answered_in_order_right_away() {
    // Dates a day apart: a client that waited for anything periodic before
    // exiting would not exit within the bound.
    let server = Server::start(&["--date-period", "24h"]);
    let lines: Vec<String> = (0..10_000).map(|i| format!("line {i} ñ")).collect();
    let mut input = lines.join("\n");
    input.push('\n');
    let started = Instant::now();
    let output = tokio::time::timeout(
        PATIENCE,
        run_with_input(server.clientcli(), input.as_bytes()),
    )
    .await
    .expect("clientcli exits once its lines are answered");
    let took = started.elapsed();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let replies: Vec<&str> = stdout.lines().collect();
    assert_eq!(replies.len(), 10_000);
    for (reply, line) in replies.iter().zip(&lines) {
        assert_eq!(*reply, nea::reverse::reverse(line));
    }
    // It exits after the last reply, not after some period.
    assert!(took < GENEROUS, "took {took:?}");
    assert!(server.stop().success());
}

#[tokio::test]
async fn dates_go_to_stderr_in_local_time_and_stdout_keeps_only_replies() {
    let server = Server::start(&["--date-period", "100ms"]);
    let mut command = server.clientcli();
    command.env("TZ", "UTC");
    let mut child = spawn_interactive_pipe(command);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"abc\n").expect("write");
    // Read stderr until two dates have come, however long a loaded machine
    // takes to start the client, then end the input.
    let stderr = child.stderr.take().expect("stderr");
    let stderr = tokio::task::spawn_blocking(move || {
        let mut seen = String::new();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stderr));
        let mut dates = 0;
        while dates < 2 {
            let Some(Ok(line)) = lines.next() else { break };
            dates += usize::from(line.starts_with("date: "));
            seen.push_str(&line);
            seen.push('\n');
        }
        drop(stdin);
        for line in lines.map_while(Result::ok) {
            seen.push_str(&line);
            seen.push('\n');
        }
        seen
    });
    let stderr = tokio::time::timeout(crate::common::PATIENCE, stderr)
        .await
        .expect("two dates within the patience")
        .expect("task");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("task")
        .expect("output");
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "cba\n");
    let dates: Vec<&str> = stderr.lines().filter(|l| l.starts_with("date: ")).collect();
    assert!(dates.len() >= 2, "{stderr}");
    // `date: 2026-11-26 20:19:17 UTC`
    assert!(
        dates.iter().all(|d| d.len() == 29 && d.ends_with(" UTC")),
        "{dates:?}"
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn boolean_environment_variables_take_the_usual_spellings() {
    let server = Server::start(&[]);
    for (value, json) in [
        ("1", true),
        ("yes", true),
        ("on", true),
        ("0", false),
        ("off", false),
    ] {
        let mut command = server.clientcli();
        command.env("NEA_JSON", value);
        let output = run_with_input(command, b"hello\n").await;
        assert!(
            output.status.success(),
            "NEA_JSON={value}: {}",
            text(&output.stderr)
        );
        let expected = if json {
            "{\"msg_type\":\"string\",\"payload\":\"olleh\"}\n"
        } else {
            "olleh\n"
        };
        assert_eq!(text(&output.stdout), expected, "NEA_JSON={value}");
    }
    let mut command = server.clientcli();
    command.env("NEA_RECONNECT", "perhaps");
    let output = run_with_input(command, b"").await;
    assert_eq!(output.status.code(), Some(64));
    assert_eq!(text(&output.stderr).lines().count(), 1);
    assert!(server.stop().success());
}

#[tokio::test]
async fn json_mode_prints_every_frame_as_received() {
    let server = Server::start(&["--date-period", "100ms", "--max-line-bytes", "8"]);
    let mut command = server.clientcli();
    command.arg("--json");
    let output = run_with_input(command, b"hello\nfar too long\n").await;
    // Line 2 was rejected: every frame is printed, and the status says
    // that not every line got its reply.
    assert_eq!(output.status.code(), Some(65), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let frames: Vec<&str> = stdout.lines().filter(|l| !l.contains("\"date\"")).collect();
    assert_eq!(
        frames,
        [
            r#"{"msg_type":"string","payload":"olleh"}"#,
            r#"{"msg_type":"error","code":"line_too_long","payload":"line longer than 8 bytes dropped"}"#,
        ]
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn unknown_frames_and_fields_are_passed_through_not_fatal() {
    let pki = Pki::new();
    let script = |mut stream: tokio_rustls::server::TlsStream<tokio::net::TcpStream>| async move {
        let mut line = String::new();
        let mut reader = BufReader::new(&mut stream);
        reader.read_line(&mut line).await.expect("a line");
        let frames = concat!(
            "{\"msg_type\":\"ping\",\"payload\":1}\n",
            "{\"msg_type\":\"error\",\"code\":\"new_code\",\"payload\":\"a new kind of error\"}\n",
            "{\"msg_type\":\"string\",\"payload\":\"olleh\",\"extra\":[1,2]}\n",
        );
        stream.write_all(frames.as_bytes()).await.expect("write");
        stream.flush().await.expect("flush");
        // Wait for the client to finish (close_notify) before closing: a
        // server that closes first would be a lost connection.
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
        let _ = stream.shutdown().await;
    };
    let addr = scripted_server(&pki, script).await;
    let mut command = clientcli_for(addr.port(), &pki.ca_pem);
    command.arg("--json");
    let output = run_with_input(command, b"hello\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        concat!(
            "{\"msg_type\":\"ping\",\"payload\":1}\n",
            "{\"msg_type\":\"error\",\"code\":\"new_code\",\"payload\":\"a new kind of error\"}\n",
            "{\"msg_type\":\"string\",\"payload\":\"olleh\",\"extra\":[1,2]}\n",
        )
    );

    // The same frames in text mode: the reply is shown, the unknown type is
    // skipped, the unknown error is reported on stderr.
    let addr = scripted_server(&pki, script).await;
    let output = run_with_input(clientcli_for(addr.port(), &pki.ca_pem), b"hello\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "olleh\n");
    assert!(text(&output.stderr).contains("the server says: a new kind of error"));
}

#[tokio::test]
async fn nothing_listening_is_status_69() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let pki = Pki::new();
    let output = run_with_input(clientcli_for(port, &pki.ca_pem), b"").await;
    assert_failure(&output, 69, "nothing is listening on 127.0.0.1:");
}

#[tokio::test]
async fn an_unknown_host_is_status_68() {
    let mut command = std::process::Command::new(crate::common::clientcli_exe());
    command.args(["--host", "no-such-host.invalid"]);
    let output = run_with_input(command, b"").await;
    assert_failure(&output, 68, "host no-such-host.invalid is unknown");
}

#[tokio::test]
async fn an_untrusted_certificate_is_status_77_and_names_ca() {
    let server = Server::start(&[]);
    let stranger = Pki::new();
    let output = run_with_input(clientcli_for(server.addr.port(), &stranger.ca_pem), b"hi\n").await;
    assert_failure(&output, 77, "--ca");
    assert!(text(&output.stderr).contains("not trusted"));
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_name_mismatch_is_status_78() {
    let server = Server::start(&[]);
    let mut command = server.clientcli();
    command.args(["--server-name", "example.com"]);
    let output = run_with_input(command, b"hi\n").await;
    assert_failure(&output, 78, "not valid for the name example.com");

    // --server-name is how to verify a name the certificate does list.
    let mut command = server.clientcli();
    command.args(["--server-name", "localhost"]);
    let output = run_with_input(command, b"hi\n").await;
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "ih\n");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_rejected_client_certificate_is_status_76() {
    let pki = Pki::new();
    let ca_arg = pki.ca_pem.to_str().expect("utf-8").to_owned();
    let server = Server::start_with(pki, &["--client-ca", &ca_arg]);
    let output = run_with_input(server.clientcli(), b"hi\n").await;
    assert_failure(&output, 76, "client certificate");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_full_server_is_status_75() {
    let server = Server::start(&["--max-clients", "1"]);
    let mut holder = server.connect().await;
    assert_eq!(holder.round_trip("mine").await, "enim");
    let output = run_with_input(server.clientcli(), b"hi\n").await;
    assert_failure(&output, 75, "the server is full");
    assert!(server.stop().success());
}

#[tokio::test]
async fn json_mode_prints_the_server_full_frame_then_exits_75() {
    let server = Server::start(&["--max-clients", "1"]);
    let mut holder = server.connect().await;
    assert_eq!(holder.round_trip("mine").await, "enim");
    let mut command = server.clientcli();
    command.arg("--json");
    let output = run_with_input(command, b"hi\n").await;
    assert_eq!(output.status.code(), Some(75), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let frame: serde_json::Value = serde_json::from_str(stdout.trim_end()).expect("one frame");
    assert_eq!(frame["msg_type"], "error", "{stdout}");
    assert_eq!(frame["code"], "server_full", "{stdout}");
    assert!(server.stop().success());
}

#[tokio::test]
async fn json_mode_prints_the_shutting_down_frame_then_exits_74() {
    let server = in_process();
    let mut command = server.clientcli();
    command.arg("--json");
    let output = stopped_under_a_session(server, command).await;
    assert_eq!(output.status.code(), Some(74), "{}", text(&output.stderr));
    let frames: Vec<serde_json::Value> = text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a frame"))
        .collect();
    let last = frames.last().expect("frames");
    assert_eq!(last["code"], "shutting_down", "{frames:?}");
    assert_eq!(frames[0]["payload"], "tsrif", "{frames:?}");
}

/// Starts `clientcli` on `command` with stdin, stdout and stderr piped
/// (stdin stays open until the test drops it); returns the child.
fn spawn_interactive_pipe(mut command: std::process::Command) -> Child {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("clientcli starts")
}

async fn wait_output(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .expect("task")
        .expect("output")
}

/// Runs `command` (a `clientcli` for `server`) with "first" sent and its
/// input kept open, stops the server once the client is connected and
/// answered (its first line of output is out), and returns the client's
/// output.
async fn stopped_under_a_session(server: InProcess, command: std::process::Command) -> Output {
    let mut child = spawn_interactive_pipe(command);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"first\n").expect("write");
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let reading = tokio::task::spawn_blocking(move || {
        let mut first = Vec::new();
        std::io::BufRead::read_until(&mut stdout, b'\n', &mut first).expect("the first reply");
        (first, stdout)
    });
    let (mut printed, mut stdout) = tokio::time::timeout(PATIENCE, reading)
        .await
        .expect("the first reply within the test's patience")
        .expect("task");
    server.stop();
    let mut output = wait_output(child).await;
    std::io::Read::read_to_end(&mut stdout, &mut printed).expect("the rest of the output");
    output.stdout = printed;
    drop(stdin);
    output
}

#[tokio::test]
async fn a_server_shutdown_is_status_74() {
    let server = in_process();
    let command = server.clientcli();
    let output = stopped_under_a_session(server, command).await;
    assert_eq!(output.status.code(), Some(74), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "tsrif\n");
    assert!(text(&output.stderr).ends_with("clientcli: the server shut down\n"));
}

#[tokio::test]
async fn a_lost_connection_is_status_74() {
    let pki = Pki::new();
    // A server that reads one line and vanishes without a word.
    let addr = scripted_server(&pki, |mut stream| async move {
        let mut line = String::new();
        let _ = BufReader::new(&mut stream).read_line(&mut line).await;
    })
    .await;
    let output = run_with_input(clientcli_for(addr.port(), &pki.ca_pem), b"hi\n").await;
    assert_failure(&output, 74, "connection to the server lost");
}

#[tokio::test]
async fn reconnect_resends_unanswered_lines_and_lines_typed_meanwhile() {
    let pki = Pki::new();
    // The first "server" takes one line and drops the connection unanswered.
    let (line_read, read) = tokio::sync::oneshot::channel();
    let addr = scripted_server(&pki, |mut stream| async move {
        let mut line = String::new();
        let _ = BufReader::new(&mut stream).read_line(&mut line).await;
        assert_eq!(line, "one\n");
        let _ = line_read.send(());
    })
    .await;
    let mut command = clientcli_for(addr.port(), &pki.ca_pem);
    command.arg("--reconnect");
    let mut child = spawn_interactive_pipe(command);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"one\n").expect("write");
    // However long the client takes to start: the line is in, and the
    // scripted server's port is free.
    tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the first server reads the line")
        .expect("the script ran");
    // Typed while disconnected.
    stdin.write_all(b"two\n").expect("write");
    // The real server comes up on the same port.
    let server = in_process_on(pki, addr.port());
    // The client reconnects.
    server.until_connected(1).await;
    stdin.write_all(b"three\n").expect("write");
    drop(stdin);
    let output = wait_output(child).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    // Each line answered exactly once, in order.
    assert_eq!(text(&output.stdout), "eno\nowt\neerht\n");
    let stderr = text(&output.stderr);
    assert!(stderr.contains("reconnecting in"), "{stderr}");
    assert!(stderr.contains("(attempt 1)"), "{stderr}");
    server.stop();
}

/// A server, and a `clientcli --reconnect` in pipe mode connected to it
/// that has sent "before" and keeps its input open.
async fn reconnecting_client_sent_before() -> (InProcess, Child, std::process::ChildStdin) {
    let server = in_process();
    let mut command = server.clientcli();
    command.arg("--reconnect");
    let mut child = spawn_interactive_pipe(command);
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"before\n").expect("write");
    server.until_connected(1).await;
    (server, child, stdin)
}

#[tokio::test]
async fn reconnect_tries_again_when_a_balancer_closes_the_handshake() {
    let (server, child, mut stdin) = reconnecting_client_sent_before().await;
    let port = server.addr.port();
    let certs = server.pki.copy();
    server.stop();
    // On the same port, what a load balancer with no server left does:
    // accept, then close before any TLS answer.
    let balancer = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port");
    let (closed, attempts) = std::sync::mpsc::channel();
    let balancing = std::thread::spawn(move || {
        for _ in 0..2 {
            let Ok((socket, _)) = balancer.accept() else {
                return;
            };
            drop(socket);
            let _ = closed.send(());
        }
    });
    for attempt in 1..=2 {
        if attempts.recv_timeout(PATIENCE).is_err() {
            drop(stdin);
            let output = wait_output(child).await;
            panic!(
                "no attempt {attempt} after a closed handshake: {:?}\n{}",
                output.status,
                text(&output.stderr)
            );
        }
    }
    // Its listener is gone once its thread is: the port is free.
    balancing.join().expect("the balancer's thread");
    let restarted = in_process_on(certs, port);
    stdin.write_all(b"after\n").expect("write");
    drop(stdin);
    let output = wait_output(child).await;
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(text(&output.stdout), "erofeb\nretfa\n");
    assert!(
        stderr.contains("closed the connection during the TLS handshake; reconnecting in"),
        "{stderr}"
    );
    restarted.stop();
}

#[tokio::test]
async fn reconnect_survives_a_server_restart() {
    let (server, child, mut stdin) = reconnecting_client_sent_before().await;
    let port = server.addr.port();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Restart with the same certificates, on the same port.
    let certs = server.pki.copy();
    server.stop();
    let restarted = in_process_on(certs, port);
    // The client comes back.
    restarted.until_connected(1).await;
    stdin.write_all(b"after\n").expect("write");
    drop(stdin);
    let output = wait_output(child).await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "erofeb\nretfa\n");
    assert!(text(&output.stderr).contains("the server shut down; reconnecting in"));
    restarted.stop();
}

#[tokio::test]
async fn with_the_development_ca_no_other_step_is_needed() {
    let home = tempfile::tempdir().expect("tempdir");
    let dev_dir = home.path().join("nea");
    let mut command = std::process::Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .env("NEA_DEV_DIR", &dev_dir);
    let server = Server::spawn(command, Pki::new());
    let mut client = std::process::Command::new(crate::common::clientcli_exe());
    client
        .args(["--port", &server.addr.port().to_string()])
        .env("NEA_DEV_DIR", &dev_dir);
    let output = run_with_input(client, b"hello\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "olleh\n");
    assert_connected_first(&output, &format!("localhost:{}", server.addr.port()));
    assert!(server.stop().success());
}

#[tokio::test]
async fn an_invalid_command_line_is_status_64() {
    let mut command = std::process::Command::new(crate::common::clientcli_exe());
    command.args(["--port", "not-a-port"]);
    let output = run_with_input(command, b"").await;
    assert_eq!(output.status.code(), Some(64));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("clientcli: invalid value 'not-a-port'"),
        "{stderr}"
    );
}

/// `lines | clientcli | head -1`: the reader of standard output goes away
/// after the first reply, while thousands of replies are still coming.
/// Standard input stays open, so only the closed output can end the
/// client. Returns clientcli's status and stderr, or `None` if it did not
/// end within the test's patience (it is killed then).
fn run_into_a_reader_that_leaves(server: &Server, lines: usize) -> Option<(Option<i32>, String)> {
    let mut child = spawn_interactive_pipe(server.clientcli());
    let mut stdin = child.stdin.take().expect("stdin");
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let feeder = std::thread::spawn(move || {
        let input = "hello\n".repeat(lines);
        let _ = stdin.write_all(input.as_bytes());
        // Input does not end until the client has.
        let _ = finished.recv();
        drop(stdin);
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).expect("first reply");
    assert_eq!(first, "olleh\n");
    drop(stdout);
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = done.send(());
    let _ = feeder.join();
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut pipe, &mut stderr);
    }
    status.map(|status| (status.code(), stderr))
}

#[test]
fn a_reader_of_standard_output_that_goes_away_ends_the_client_quietly_with_0() {
    let server = Server::start(&[]);
    for run in 0..20 {
        let ended = run_into_a_reader_that_leaves(&server, 5000);
        let (status, stderr) = ended.unwrap_or_else(|| panic!("run {run}: clientcli hung"));
        assert_eq!(status, Some(0), "run {run}: {stderr}");
        assert!(!stderr.contains("clientcli:"), "run {run}: {stderr}");
    }
    assert!(server.stop().success());
}

/// A plain TCP listener on 127.0.0.1 that is not a nea server, and its port.
async fn plain_listener() -> (tokio::net::TcpListener, u16) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    (listener, port)
}

#[tokio::test]
async fn a_server_that_never_answers_the_handshake_is_status_71() {
    let pki = Pki::new();
    // Accepts TCP connections and holds them, saying nothing.
    let (listener, port) = plain_listener().await;
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let mut command = clientcli_for(port, &pki.ca_pem);
    command.args(["--connect-timeout", "300ms"]);
    let started = Instant::now();
    let output = tokio::time::timeout(PATIENCE, run_with_input(command, b"hi\n"))
        .await
        .expect("clientcli gives up by itself");
    assert_failure(&output, 71, "did not answer the TLS handshake within 300ms");
    // By its own timeout: the server would hold the handshake for ever.
    let took = started.elapsed();
    assert!(took < GENEROUS, "gave up after {took:?}");
    holder.abort();
}

#[tokio::test]
async fn verbose_logs_what_a_person_debugging_a_connection_needs() {
    let server = Server::start(&[]);
    let mut command = server.clientcli();
    command.arg("-v").env_remove("RUST_LOG");
    let output = run_with_input(command, b"hi\n").await;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    for needle in [
        "resolved",
        "127.0.0.1:",
        "addresses=[127.0.0.1:",
        "TCP connected",
        "TLS handshake done",
        "tls=TLSv1.3",
        "cipher=TLS13_",
        "key_exchange=",
        "server certificate",
        "expires=",
    ] {
        assert!(stderr.contains(needle), "{needle} missing:\n{stderr}");
    }
    assert_eq!(text(&output.stdout), "ih\n");
    // Without -v, none of it.
    let mut quiet = server.clientcli();
    quiet.env_remove("RUST_LOG").env_remove("NEA_VERBOSE");
    let output = run_with_input(quiet, b"hi\n").await;
    assert!(!text(&output.stderr).contains("TCP connected"));
    assert!(server.stop().success());
}

#[test]
fn a_mistyped_flag_is_one_line_that_suggests_the_flag_and_points_to_help() {
    let output = clientcli_for(1, std::path::Path::new("/nonexistent"))
        .args(["--hots", "x"])
        .output()
        .expect("clientcli runs");
    assert_eq!(output.status.code(), Some(64));
    let stderr = text(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("clientcli: unexpected argument '--hots'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("a similar argument exists: '--host'"),
        "{stderr}"
    );
    assert!(stderr.contains("see --help"), "{stderr}");
}

/// The sentence on stderr names no rustls enum: it says what happened in
/// words.
fn assert_plain_words(output: &Output) {
    let stderr = text(&output.stderr);
    for name in [
        "UnknownIssuer",
        "CertificateRequired",
        "InvalidContentType",
        "NotValidForName",
        "BadCertificate",
        "UnknownCA",
    ] {
        assert!(!stderr.contains(name), "{name} in:\n{stderr}");
    }
}

#[tokio::test]
async fn tls_failures_are_told_in_words_a_person_can_act_on() {
    let server = Server::start(&[]);
    // Not trusted: says who signed it is unknown, and what to do.
    let stranger = Pki::new();
    let output = run_with_input(clientcli_for(server.addr.port(), &stranger.ca_pem), b"hi\n").await;
    assert_failure(&output, 77, "this client does not trust");
    assert_plain_words(&output);
    // A name mismatch lists the names the certificate is valid for.
    let mut command = server.clientcli();
    command.args(["--server-name", "example.com"]);
    let output = run_with_input(command, b"hi\n").await;
    assert_failure(&output, 78, "it is valid for localhost, 127.0.0.1");
    assert_plain_words(&output);
    assert!(server.stop().success());

    // A server that wants a client certificate, and gets none.
    let pki = Pki::new();
    let ca_arg = pki.ca_pem.to_str().expect("utf-8").to_owned();
    let server = Server::start_with(pki, &["--client-ca", &ca_arg]);
    let output = run_with_input(server.clientcli(), b"hi\n").await;
    assert_failure(&output, 76, "the server requires a client certificate");
    assert_plain_words(&output);
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_server_that_does_not_speak_tls_is_called_that() {
    let pki = Pki::new();
    let (listener, port) = plain_listener().await;
    let plain = tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
            let mut sink = [0u8; 1024];
            while let Ok(1..) = socket.read(&mut sink).await {}
        }
    });
    let output = run_with_input(clientcli_for(port, &pki.ca_pem), b"hi\n").await;
    assert_failure(&output, 76, "does not speak TLS");
    assert_plain_words(&output);
    plain.abort();
}

#[tokio::test]
async fn an_ipv6_host_works_with_and_without_brackets() {
    // The development certificate is valid for ::1.
    let home = tempfile::tempdir().expect("tempdir");
    let dev_dir = home.path().join("nea");
    let mut command = std::process::Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "::1", "--port", "0"])
        .env("NEA_DEV_DIR", &dev_dir);
    let server = Server::spawn(command, Pki::new());
    let port = server.addr.port().to_string();
    for host in ["[::1]", "::1"] {
        let mut command = std::process::Command::new(crate::common::clientcli_exe());
        command
            .args(["--host", host, "--port", &port])
            .env("NEA_DEV_DIR", &dev_dir)
            .env("NEA_NO_HISTORY", "1");
        let output = run_with_input(command, b"hi\n").await;
        assert!(output.status.success(), "{host}: {}", text(&output.stderr));
        assert_eq!(text(&output.stdout), "ih\n", "{host}");
        assert_connected_first(&output, &format!("[::1]:{port}"));
    }
    assert!(server.stop().success());
}
