//! SPEC §11, the service manager, on the real binary with the real tools:
//! a `NOTIFY_SOCKET` datagram listener of the test's own sees `READY=1`,
//! `STATUS=`, `RELOADING=1` … `READY=1` and `STOPPING=1` at the right
//! moments, `systemd-socket-activate` passes a listening socket that the
//! server serves instead of binding its own, and a restart on that socket
//! under load refuses no connection and loses no line (SPEC §12).

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::{Client, PATIENCE, Pki, Server};

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

#[tokio::test]
async fn a_socket_passed_by_systemd_socket_activate_is_served() {
    let pki = Pki::new();
    // A free port for the activator to listen on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // The activator listens, and starts servercli at the first connection,
    // passing it the socket (LISTEN_FDS=1). servercli is told port 1,
    // which it must not bind: it serves the socket it is given.
    let mut activator = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(addr.to_string())
        .arg(crate::common::servercli_exe())
        .args(["--bind", "127.0.0.1", "--port", "1", "--cert"])
        .arg(&pki.cert)
        .arg("--key")
        .arg(&pki.key)
        .env("RUST_LOG", "nea=info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate runs");
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
    let output = tokio::task::spawn_blocking(move || {
        let _ = activator.wait();
        let mut log = String::new();
        if let Some(mut stderr) = activator.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut log);
        }
        log
    })
    .await
    .expect("task");
    assert!(
        output.contains("the socket the service manager passed"),
        "{output}"
    );
}

#[test]
fn the_systemd_units_pass_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("systemd-analyze is not installed; skipped");
        return;
    }
    let units = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd");
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

#[tokio::test]
async fn a_restart_on_an_activated_socket_refuses_no_connection_and_loses_no_line() {
    let pki = Pki::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let pids = tempfile::tempdir().expect("tempdir");
    let mut activator = Command::new("systemd-socket-activate")
        .arg("-l")
        .arg(addr.to_string())
        // The activator gives its program only the variables it is told.
        .arg(format!("--setenv=NEA_PID_DIR={}", pids.path().display()))
        .arg("--setenv=PATH")
        .arg("--setenv=RUST_LOG=nea=debug")
        .args(["bash", "-c", RESTART_TWICE, "restart"])
        .arg(crate::common::servercli_exe())
        .args(["--bind", "127.0.0.1", "--port", "1", "--cert"])
        .arg(&pki.cert)
        .arg("--key")
        .arg(&pki.key)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("systemd-socket-activate runs");
    // Once the activator listens (it starts the first run then)...
    let deadline = Instant::now() + PATIENCE;
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the activator does not listen");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...reconnecting clients send 100 numbered lines each, 20 a second.
    let clients: Vec<_> = (0..10)
        .map(|_| {
            let mut command = crate::common::clientcli_for(port, &pki.ca_pem);
            command
                .arg("--reconnect")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("clientcli starts")
        })
        .collect();
    // New connections all along: not one may be refused.
    let probing = tokio_util::sync::CancellationToken::new();
    let prober = tokio::spawn({
        let probing = probing.clone();
        let config = pki.client_config();
        async move {
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
        }
    });
    // Both runs' logs, as they come.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let log = log.clone();
        let stderr = activator.stderr.take().expect("piped stderr");
        std::thread::spawn(move || {
            for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
                let Ok(line) = line else { break };
                let mut text = log.lock().expect("log lock");
                text.push_str(&line);
                text.push('\n');
            }
        })
    };
    let logged = |needle: &str| log.lock().expect("log lock").matches(needle).count();
    let first = run_pid(pids.path(), 1).await;
    // The restart comes once every client is on the first run.
    let deadline = Instant::now() + PATIENCE;
    while logged("client connected") < 10 {
        assert!(Instant::now() < deadline, "the clients did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut clients: Vec<_> = clients
        .into_iter()
        .map(|mut child| {
            let stdin = child.stdin.take().expect("stdin");
            (child, stdin)
        })
        .collect();
    let line = |client: usize, n: usize| format!("r{client} {n:03}");
    let started = Instant::now();
    for n in 0..100 {
        for (client, (_, stdin)) in clients.iter_mut().enumerate() {
            let _ = std::io::Write::write_all(stdin, format!("{}\n", line(client, n)).as_bytes());
        }
        if n == 30 {
            nix::sys::signal::kill(first, Signal::SIGTERM).expect("stop the first run");
        }
        let due = started + Duration::from_millis(50) * u32::try_from(n + 1).expect("small");
        tokio::time::sleep_until(due.into()).await;
    }
    let second = run_pid(pids.path(), 2).await;
    let outputs = tokio::task::spawn_blocking(move || {
        clients
            .into_iter()
            .map(|(child, stdin)| {
                drop(stdin);
                child.wait_with_output().expect("clientcli output")
            })
            .collect::<Vec<_>>()
    })
    .await
    .expect("the clients");
    probing.cancel();
    let (probes, refused) = prober.await.expect("the prober");
    nix::sys::signal::kill(second, Signal::SIGTERM).expect("stop the second run");
    tokio::task::spawn_blocking(move || {
        let _ = activator.wait();
        let _ = reader.join();
    })
    .await
    .expect("the activator ends");
    let log = log.lock().expect("log lock").clone();
    assert!(
        refused.is_empty(),
        "{} of {probes} refused: {refused:?}",
        refused.len()
    );
    for (client, output) in outputs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "client {client}: {stderr}\n{log}");
        let expected: String = (0..100)
            .map(|n| format!("{}\n", line(client, n).chars().rev().collect::<String>()))
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
    assert_eq!(
        log.matches("the socket the service manager passed").count(),
        2,
        "{log}"
    );
    eprintln!("{probes} probes, none refused");
}
