//! SPEC §11, the service manager, on the real binary with the real tools:
//! a `NOTIFY_SOCKET` datagram listener of the test's own sees `READY=1`,
//! `STATUS=`, `RELOADING=1` … `READY=1` and `STOPPING=1` at the right
//! moments, and `systemd-socket-activate` passes a listening socket that
//! the server serves instead of binding its own.

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
            .replace("/usr/local/bin/servercli", &exe.display().to_string())
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
