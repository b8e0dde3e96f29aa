//! SPEC §11, the service manager, on the real binary with the real tools:
//! a `NOTIFY_SOCKET` datagram listener of the test's own sees `READY=1`,
//! `STATUS=`, `RELOADING=1` … `READY=1` and `STOPPING=1` at the right
//! moments, `systemd-socket-activate` passes a listening socket that the
//! server serves instead of binding its own, and a restart on that socket
//! under load refuses no connection and loses no line (SPEC §12).

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::common::{Client, PATIENCE, Pki, Server, require_tool, until_scraped};

/// The test's end of `NOTIFY_SOCKET`.
struct Notifications {
    socket: UnixDatagram,
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl Notifications {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        socket
            .set_read_timeout(Some(PATIENCE))
            .expect("read timeout");
        Self {
            socket,
            _dir: dir,
            path,
        }
    }

    /// The next message (one datagram, `KEY=value` lines).
    fn next(&self) -> String {
        let mut buf = vec![0; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .expect("a notification within the test's patience");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Skips messages until one contains `needle`; returns it.
    fn until(&self, needle: &str) -> String {
        loop {
            let message = self.next();
            if message.contains(needle) {
                return message;
            }
        }
    }

    /// A message that comes within `wait`, if any.
    fn within(&self, wait: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(wait)).expect("timeout");
        let mut buf = vec![0; 4096];
        let message = self
            .socket
            .recv(&mut buf)
            .ok()
            .map(|n| String::from_utf8_lossy(&buf[..n]).into_owned());
        self.socket
            .set_read_timeout(Some(PATIENCE))
            .expect("timeout");
        message
    }
}

#[tokio::test]
async fn the_service_manager_hears_ready_status_reloading_and_stopping() {
    let notifications = Notifications::new();
    let pki = Pki::new();
    let mut command = Server::command_with(&pki, &[]);
    command.env("NOTIFY_SOCKET", &notifications.path);
    let server = Server::spawn(command, pki);

    let ready = notifications.next();
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    assert!(
        ready.contains("STATUS=0 of 100 clients connected"),
        "{ready:?}"
    );
    // READY comes once the server accepts: a client is served right away.
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = server.connect().await;
        assert_eq!(client.round_trip("hi").await, "ih");
        clients.push(client);
    }
    notifications.until("STATUS=3 of 100 clients connected");

    server.signal(Signal::SIGHUP);
    let reloading = notifications.until("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let again = notifications.next();
    assert!(again.lines().any(|l| l == "READY=1"), "{again:?}");
    assert_eq!(clients[0].round_trip("still").await, "llits");

    clients.pop();
    notifications.until("STATUS=2 of 100 clients connected");
    server.signal(Signal::SIGTERM);
    let stopping = notifications.until("STOPPING=1");
    assert!(
        stopping.contains("STATUS=shutting down; 2 clients connected"),
        "{stopping:?}"
    );
    let mut server = server;
    assert!(server.wait_exit(PATIENCE).expect("exits").success());
}

#[tokio::test]
async fn without_clients_coming_or_going_no_status_is_sent() {
    let notifications = Notifications::new();
    let pki = Pki::new();
    let mut command = Server::command_with(&pki, &[]);
    command.env("NOTIFY_SOCKET", &notifications.path);
    let server = Server::spawn(command, pki);
    assert!(notifications.next().contains("READY=1"));
    let message = notifications.within(Duration::from_millis(1500));
    assert_eq!(message, None, "a message with nothing to say");
    assert!(server.stop().success());
}

/// `systemd-socket-activate` listening on `addr`, to start `program` (with
/// `args`) at the first connection and pass it the socket, its standard
/// error piped. The program is given `setenv` (`NAME=value`) and the
/// test's coverage profile file, and nothing else of the environment.
fn activator(addr: SocketAddr, setenv: &[String], program: &[OsString]) -> Child {
    require_tool("systemd-socket-activate", "systemd");
    let mut command = Command::new("systemd-socket-activate");
    command
        .arg("-l")
        .arg(addr.to_string())
        .args(setenv.iter().map(|variable| format!("--setenv={variable}")))
        .args(crate::common::activator_passes_profile_file())
        .args(program)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command.spawn().expect("systemd-socket-activate runs")
}

/// The command line (program first) of a `servercli` with `pki`'s
/// certificates that is told port 1, which it must not bind: it serves the
/// socket it is passed. Then `extra`.
fn passed_socket_server(pki: &Pki, extra: &[&str]) -> Vec<OsString> {
    let mut args = vec![crate::common::servercli_exe().into_os_string()];
    args.extend(["--bind", "127.0.0.1", "--port", "1", "--cert"].map(OsString::from));
    args.extend([
        pki.cert.clone().into_os_string(),
        "--key".into(),
        pki.key.clone().into_os_string(),
    ]);
    args.extend(extra.iter().map(OsString::from));
    args
}

/// Runs `program` behind `systemd-socket-activate`, serves two clients
/// through the socket it is passed, stops it, and returns its log.
async fn served_through_a_passed_socket(pki: &Pki, program: &[OsString]) -> String {
    let addr = crate::common::free_addr();
    // The activator listens, and starts servercli at the first connection,
    // passing it the socket (LISTEN_FDS=1).
    let mut activator = activator(addr, &["RUST_LOG=nea=info".to_owned()], program);
    // The socket exists before the server: the first connection waits in
    // its backlog while the server starts, and is served, not refused.
    let started = Instant::now();
    let mut first = loop {
        match Client::connect(addr, pki.client_config()).await {
            Ok(client) => break client,
            Err(_) if started.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(err) => panic!("no connection through the activator: {err}"),
        }
    };
    assert_eq!(first.round_trip("activated").await, "detavitca");
    let mut second = Client::connect(addr, pki.client_config())
        .await
        .expect("a second client");
    assert_eq!(second.round_trip("two").await, "owt");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(activator.id()).expect("pid")),
        Signal::SIGTERM,
    )
    .expect("signal");
    tokio::task::spawn_blocking(move || {
        let _ = activator.wait();
        let mut log = String::new();
        if let Some(mut stderr) = activator.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        }
        log
    })
    .await
    .expect("task")
}

/// The warning that a passed socket makes the listening flags moot.
const NOT_USED: &str = "these flags are not used";

#[tokio::test]
async fn a_socket_passed_by_systemd_socket_activate_is_served() {
    let pki = Pki::new();
    let log = served_through_a_passed_socket(&pki, &passed_socket_server(&pki, &[])).await;
    // The program's start-up line says which socket it serves, and that
    // the --bind and --port it was given are not used.
    assert!(log.contains("passed_socket=true"), "{log}");
    let warning = crate::common::line_with(&log, NOT_USED);
    assert!(
        warning.contains(" WARN ") && warning.contains("flags=\"--port --bind\""),
        "{warning}"
    );
}

#[tokio::test]
async fn a_passed_socket_without_listening_flags_warns_of_nothing() {
    let pki = Pki::new();
    let mut program = vec![crate::common::servercli_exe().into_os_string()];
    program.extend(
        ["--cert".into(), pki.cert.clone().into_os_string()]
            .into_iter()
            .chain(["--key".into(), pki.key.clone().into_os_string()]),
    );
    let log = served_through_a_passed_socket(&pki, &program).await;
    assert!(log.contains("passed_socket=true"), "{log}");
    assert!(!log.contains(NOT_USED), "{log}");
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    require_tool("systemd-analyze", "systemd");
    let units = crate::common::repository().join("contrib/systemd");
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = crate::common::servercli_exe();
    for name in ["nea.service", "nea.socket"] {
        let text = std::fs::read_to_string(units.join(name)).expect("unit");
        // As installed: the binary where the unit says it is. The man page
        // is not installed here.
        let text = text
            .replace("/usr/bin/servercli", &exe.display().to_string())
            .lines()
            .filter(|line| !line.starts_with("Documentation="))
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("nea.socket"))
        .arg(dir.path().join("nea.service"))
        .output()
        .expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{complaints}");
    assert!(
        !complaints.contains("nea.service") && !complaints.contains("nea.socket"),
        "{complaints}"
    );
}

/// What `systemd-socket-activate` runs for the restart test: the server,
/// then, once it has exited, the server again on the same socket, as a
/// service manager restarting a socket-activated service does. Each run
/// writes its process id to `$NEA_PID_DIR/<run>`, and is told that the
/// passed socket is its own (`LISTEN_PID`).
const RESTART_TWICE: &str = r#"
for run in 1 2; do
    (
        echo "$BASHPID" > "$NEA_PID_DIR/$run.tmp" && mv "$NEA_PID_DIR/$run.tmp" "$NEA_PID_DIR/$run"
        export LISTEN_PID=$BASHPID
        exec "$@"
    )
done
"#;

/// The process id the restart script wrote for `run`, once it has.
async fn run_pid(dir: &std::path::Path, run: u32) -> nix::unistd::Pid {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(dir.join(run.to_string())) {
            return nix::unistd::Pid::from_raw(text.trim().parse().expect("a pid"));
        }
        assert!(Instant::now() < deadline, "run {run} did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `n` reconnecting `clientcli`s in pipe mode for 127.0.0.1:`port`, with
/// their standard input.
fn reconnecting_clients(port: u16, pki: &Pki, n: usize) -> Vec<(Child, ChildStdin)> {
    (0..n)
        .map(|_| {
            let mut child = crate::common::clientcli_for(port, &pki.ca_pem)
                .arg("--reconnect")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("clientcli starts");
            let stdin = child.stdin.take().expect("stdin");
            (child, stdin)
        })
        .collect()
}

/// New connections to `addr` all along, until `probing` is cancelled: how
/// many were made, and the errors of those refused.
fn probe_all_along(
    addr: SocketAddr,
    pki: &Pki,
    probing: CancellationToken,
) -> JoinHandle<(usize, Vec<String>)> {
    let config = pki.client_config();
    tokio::spawn(async move {
        let (mut probes, mut refused) = (0, Vec::new());
        while !probing.is_cancelled() {
            probes += 1;
            match tokio::net::TcpStream::connect(addr).await {
                Ok(tcp) => {
                    // Served by one run or the other, or told it is
                    // shutting down: either way, not refused.
                    if let Ok(stream) = crate::common::tls_over(tcp, config.clone()).await {
                        drop(stream);
                    }
                }
                Err(err) => refused.push(err.to_string()),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        (probes, refused)
    })
}

/// The line the restart test's `client` sends `n`th.
fn numbered(client: usize, n: usize) -> String {
    format!("r{client} {n:03}")
}

/// Sends each client 100 numbered lines, 20 a second, stopping the first
/// run (`first`) after 30; then ends their input and returns their outputs.
async fn send_through_a_restart(
    clients: Vec<(Child, ChildStdin)>,
    first: nix::unistd::Pid,
) -> Vec<Output> {
    let mut clients = clients;
    let started = Instant::now();
    for n in 0..100 {
        for (client, (_, stdin)) in clients.iter_mut().enumerate() {
            let _ = writeln!(stdin, "{}", numbered(client, n));
        }
        if n == 30 {
            nix::sys::signal::kill(first, Signal::SIGTERM).expect("stop the first run");
        }
        let due = started + Duration::from_millis(50) * u32::try_from(n + 1).expect("small");
        tokio::time::sleep_until(due.into()).await;
    }
    tokio::task::spawn_blocking(move || {
        clients
            .into_iter()
            .map(|(child, stdin)| {
                drop(stdin);
                child.wait_with_output().expect("clientcli output")
            })
            .collect()
    })
    .await
    .expect("the clients")
}

/// Asserts that each client's lines were all answered, once and in
/// order, though it was told of the restart.
fn every_line_answered_once(outputs: &[Output], log: &str) {
    for (client, output) in outputs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "client {client}: {stderr}\n{log}");
        let expected: String = (0..100)
            .map(|n| {
                format!(
                    "{}\n",
                    numbered(client, n).chars().rev().collect::<String>()
                )
            })
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            expected,
            "client {client}"
        );
        assert!(
            stderr.contains("the server shut down; reconnecting in"),
            "client {client} was not told: {stderr}"
        );
    }
}

/// The whole of `child`'s standard error, read on a thread of its own until
/// the child and everything it started are gone.
fn read_stderr(child: &mut Child) -> std::thread::JoinHandle<String> {
    let mut stderr = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
        text
    })
}

#[tokio::test]
async fn a_restart_on_an_activated_socket_refuses_no_connection_and_loses_no_line() {
    let pki = Pki::new();
    let (addr, admin) = (crate::common::free_addr(), crate::common::free_addr());
    let pids = tempfile::tempdir().expect("tempdir");
    let mut script = vec![OsString::from("bash"), "-c".into(), RESTART_TWICE.into()];
    script.push("restart".into());
    script.extend(passed_socket_server(
        &pki,
        &["--admin-addr", &admin.to_string()],
    ));
    let setenv = [
        format!("NEA_PID_DIR={}", pids.path().display()),
        "PATH".to_owned(),
        "RUST_LOG=nea=debug".to_owned(),
    ];
    let mut activator = activator(addr, &setenv, &script);
    let log = read_stderr(&mut activator);
    // Once the activator listens (it starts the first run then)...
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the activator does not listen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...reconnecting clients connect; the restart comes once every one of
    // them is on the first run.
    let clients = reconnecting_clients(addr.port(), &pki, 10);
    let first = run_pid(pids.path(), 1).await;
    until_scraped(admin, "nea_clients_connected", |n| n == 10.0).await;
    // They send numbered lines through it, and new connections are made
    // all along: not one may be refused.
    let probing = CancellationToken::new();
    let prober = probe_all_along(addr, &pki, probing.clone());
    let outputs = send_through_a_restart(clients, first).await;
    let second = run_pid(pids.path(), 2).await;
    probing.cancel();
    let (probes, refused) = prober.await.expect("the prober");
    nix::sys::signal::kill(second, Signal::SIGTERM).expect("stop the second run");
    let log = tokio::task::spawn_blocking(move || {
        let _ = activator.wait();
        log.join().expect("the log")
    })
    .await
    .expect("the activator ends");
    assert!(
        refused.is_empty(),
        "{} of {probes} refused: {refused:?}",
        refused.len()
    );
    every_line_answered_once(&outputs, &log);
    // Each run's start-up line says it serves the socket it was passed.
    assert_eq!(log.matches("passed_socket=true").count(), 2, "{log}");
    eprintln!("{probes} probes, none refused");
}

/// The certificate and key a service manager passes as credentials
/// (`LoadCredential=cert.pem:…`, `key.pem:…`, as the shipped unit does) are
/// what the server presents when no flag names a certificate.
#[tokio::test]
async fn the_credentials_a_service_manager_passes_are_the_certificate_presented() {
    let pki = Pki::new();
    let credentials = tempfile::tempdir().expect("tempdir");
    std::fs::copy(&pki.cert, credentials.path().join("cert.pem")).expect("cert");
    std::fs::copy(&pki.key, credentials.path().join("key.pem")).expect("key");
    let dev = tempfile::tempdir().expect("tempdir");
    let mut command = Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .env("NEA_DEV_DIR", dev.path())
        .env_remove("NEA_CERT")
        .env_remove("NEA_KEY");
    let server = Server::spawn(command, pki);
    // The client trusts the test CA only: the development CA would fail.
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("credentials").await, "slaitnederc");
    client.close().await;
    assert!(
        std::fs::read_dir(dev.path()).expect("dir").next().is_none(),
        "no development CA was made"
    );
    assert!(server.stop().success());
}
