//! The test harness: certificates made per test, the real `servercli` binary
//! on an ephemeral port (stopped by SIGTERM so it exits 0 and writes its
//! coverage profile), and a small TLS client that reads frames.

use std::io::{BufRead, BufReader as StdBufReader, ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nea::devca::CertificateAuthority;
use nea::protocol::Frame;
use nea::tls;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The `servercli` binary: Cargo names it to the tests of its package; the
/// tests of the workspace's other packages (loadcli) find it beside their
/// own binary, where building the workspace puts it. `NEA_TEST_SERVERCLI`
/// names another build instead, to show that a test fails on it (the build
/// before a fix, say).
pub fn servercli_exe() -> PathBuf {
    overridden("NEA_TEST_SERVERCLI")
        .unwrap_or_else(|| workspace_binary(option_env!("CARGO_BIN_EXE_servercli"), "servercli"))
}

/// The `clientcli` binary (see [`servercli_exe`]; `NEA_TEST_CLIENTCLI`).
pub fn clientcli_exe() -> PathBuf {
    overridden("NEA_TEST_CLIENTCLI")
        .unwrap_or_else(|| workspace_binary(option_env!("CARGO_BIN_EXE_clientcli"), "clientcli"))
}

/// The binary named by the environment variable `name`, if it is set.
fn overridden(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|path| !path.is_empty())
        .map(PathBuf::from)
}

fn workspace_binary(from_cargo: Option<&str>, name: &str) -> PathBuf {
    if let Some(path) = from_cargo {
        return PathBuf::from(path);
    }
    // The test binary is target/<profile>/deps/<test>-<hash>.
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory")
        .join(name);
    assert!(
        path.exists(),
        "{} is not built: run the tests of the whole workspace (cargo test --workspace)",
        path.display()
    );
    path
}

/// The repository's root, where the shipped files (`contrib/`) are.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// How long any single expected event may take before a test fails. Generous,
/// because CI runs instrumented builds on two loaded cores.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// The upper bound a test puts on something that takes well under a second
/// on an idle machine (a timeout of a few hundred milliseconds, a drain):
/// many times what two loaded cores running an instrumented build need, so
/// it never fails for want of time; and under [`PATIENCE`], so that the
/// failure it exists to catch (a wait for a much longer period, or for
/// ever) is told by this bound, not by a wait that gave up elsewhere.
pub const GENEROUS: Duration = Duration::from_secs(15);

/// A CA and a server certificate for `localhost`/`127.0.0.1`, as files.
pub struct Pki {
    pub dir: tempfile::TempDir,
    /// The CA itself, to issue more certificates.
    pub authority: Arc<CertificateAuthority>,
    pub ca_pem: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CertificateAuthority::new("nea test CA").expect("ca");
        let server = ca
            .issue_server(&["localhost", "127.0.0.1"])
            .expect("server cert");
        let ca_pem = write(dir.path(), "ca.pem", &ca.cert_pem());
        let cert = write(dir.path(), "server.pem", &server.cert_pem);
        let key = write(dir.path(), "server-key.pem", &server.key_pem);
        Self {
            dir,
            authority: Arc::new(ca),
            ca_pem,
            cert,
            key,
        }
    }

    /// The same certificates in a directory of their own: for a restarted
    /// server, or another one, to use after this one (and its directory) is
    /// gone.
    pub fn copy(&self) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let copy = |from: &Path, name: &str| {
            let to = dir.path().join(name);
            std::fs::copy(from, &to).expect("copy");
            to
        };
        Self {
            authority: self.authority.clone(),
            ca_pem: copy(&self.ca_pem, "ca.pem"),
            cert: copy(&self.cert, "server.pem"),
            key: copy(&self.key, "server-key.pem"),
            dir,
        }
    }

    /// A client configuration that trusts this CA and presents no certificate.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let roots = tls::root_store(tls::load_certs(&self.ca_pem).expect("ca")).expect("roots");
        tls::client_config(roots, None).expect("client config")
    }

    /// A client configuration that trusts this CA and presents a client
    /// certificate issued by `issuer`.
    pub fn client_config_with_identity(
        &self,
        issuer: &CertificateAuthority,
    ) -> Arc<rustls::ClientConfig> {
        let issued = issuer.issue_client("test client").expect("client cert");
        let cert = write(self.dir.path(), "client.pem", &issued.cert_pem);
        let key = write(self.dir.path(), "client-key.pem", &issued.key_pem);
        let roots = tls::root_store(tls::load_certs(&self.ca_pem).expect("ca")).expect("roots");
        let identity = (
            tls::load_certs(&cert).expect("cert"),
            tls::load_key(&key).expect("key"),
        );
        tls::client_config(roots, Some(identity)).expect("client config")
    }
}

pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

/// Everything the server has written to stderr so far, shared with the
/// thread that reads it.
#[derive(Default)]
struct Log {
    text: Mutex<String>,
    /// True once standard error has ended (the process has exited, and
    /// everything it wrote is in `text`).
    ended: Mutex<bool>,
    grew: Condvar,
    /// Told when `ended` becomes true.
    finished: Condvar,
}

/// A running `servercli`.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub pki: Pki,
    log: Arc<Log>,
}

impl Server {
    /// Starts `servercli` with fresh test certificates on 127.0.0.1, port 0,
    /// plus `args`.
    pub fn start(args: &[&str]) -> Self {
        Self::start_with(Pki::new(), args)
    }

    pub fn start_with(pki: Pki, args: &[&str]) -> Self {
        let command = Self::command_with(&pki, args);
        Self::spawn(command, pki)
    }

    /// The `servercli` command that [`Server::start_with`] runs, for a test
    /// to adjust before [`Server::spawn`].
    pub fn command_with(pki: &Pki, args: &[&str]) -> Command {
        let mut command = Command::new(servercli_exe());
        command
            .args(["--bind", "127.0.0.1", "--port", "0", "--cert"])
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args(args);
        command
    }

    /// Starts `command` (a prepared `servercli` or `loadcli baseline-server`
    /// invocation) and waits until it accepts connections: it is given
    /// `--port-file`, and the port it writes there is where it listens.
    /// `addr` is 127.0.0.1 and that port: the commands the harness builds
    /// bind there; a test that binds elsewhere uses the port only.
    /// Logs are at debug level unless the command sets or removes
    /// `RUST_LOG` itself.
    pub fn spawn(mut command: Command, pki: Pki) -> Self {
        if !command.get_envs().any(|(name, _)| name == "RUST_LOG") {
            command.env("RUST_LOG", "nea=debug");
        }
        let port_file = fresh_port_file(&pki);
        command
            .arg("--port-file")
            .arg(&port_file)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("servercli starts");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Log::default());
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in StdBufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.text.lock().expect("log lock");
                text.push_str(&line);
                text.push('\n');
                sink.grew.notify_all();
            }
            *sink.ended.lock().expect("log lock") = true;
            sink.finished.notify_all();
        });
        let mut server = Self {
            child,
            addr: "127.0.0.1:0".parse().expect("addr"),
            pki,
            log,
        };
        let port = server
            .wait_for_port_file(&port_file)
            .unwrap_or_else(|| panic!("server did not start:\n{}", server.log()));
        server.addr.set_port(port);
        server
    }

    /// The port the server wrote to `path`, once it has; `None` if it
    /// exited or took longer than the test's patience.
    fn wait_for_port_file(&mut self, path: &Path) -> Option<u16> {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if let Ok(text) = std::fs::read_to_string(path) {
                return Some(text.trim().parse().expect("a port in the port file"));
            }
            if self.child.try_wait().expect("try_wait").is_some() {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }

    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).expect("pid fits")
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        self.log.text.lock().expect("log lock").clone()
    }

    /// Waits until a log line contains `needle`; returns that line. For
    /// tests whose subject is the log; others wait on the server's state.
    pub fn wait_for_log(&self, needle: &str, patience: Duration) -> Option<String> {
        self.wait_for_logs(needle, 1, patience)
    }

    /// Waits until `count` log lines contain `needle`; returns the last one.
    pub fn wait_for_logs(&self, needle: &str, count: usize, patience: Duration) -> Option<String> {
        let deadline = Instant::now() + patience;
        let mut text = self.log.text.lock().expect("log lock");
        loop {
            let matching: Vec<&str> = text.lines().filter(|l| l.contains(needle)).collect();
            if matching.len() >= count {
                return matching.last().map(|l| (*l).to_owned());
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            text = self.log.grew.wait_timeout(text, left).expect("log lock").0;
        }
    }

    /// Sends `signal` to the server.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("the signal is sent");
    }

    /// Waits for the process to exit on its own, up to `patience`. Once it
    /// has, [`Server::log`] holds everything it wrote (read to the end of
    /// its standard error, within the test's patience).
    pub fn wait_exit(&mut self, patience: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.wait_for_the_end_of_stderr();
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the thread reading standard error has read it to its end.
    fn wait_for_the_end_of_stderr(&self) {
        let ended = self.log.ended.lock().expect("log lock");
        let _ = self
            .log
            .finished
            .wait_timeout_while(ended, PATIENCE, |ended| !*ended)
            .expect("log lock");
    }

    /// Stops the server with SIGTERM and returns its exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(PATIENCE)
            .expect("server exits after SIGTERM")
    }

    /// Stops the server with SIGTERM, checks that it exits 0, and returns
    /// everything it logged: for a test whose subject is the log, read
    /// whole once no line can be missing yet, with no wait on its text.
    pub fn stop_and_read_log(mut self) -> String {
        self.signal(Signal::SIGTERM);
        let status = self
            .wait_exit(PATIENCE)
            .expect("server exits after SIGTERM");
        let log = self.log();
        assert!(status.success(), "{status:?}:\n{log}");
        log
    }

    /// Resident set size of the server process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_field(self.pid(), "VmRSS:")
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr, self.pki.client_config())
            .await
            .expect("client connects")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.pid()), Signal::SIGTERM);
            if self.wait_exit(PATIENCE).is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

/// The line of `log` that contains `needle` (the first); panics with the
/// whole log if none does.
pub fn line_with<'a>(log: &'a str, needle: &str) -> &'a str {
    log.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} line in:\n{log}"))
}

/// A port file path no earlier server of this `pki` has written.
fn fresh_port_file(pki: &Pki) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    pki.dir.path().join(format!("port-{n}"))
}

fn proc_status_field(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    field_value(&status, field)
}

pub fn field_value(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// A test client: real TLS over a real socket, reading NDJSON frames.
pub struct Client {
    reader: BufReader<ReadHalf<TlsStream<TcpStream>>>,
    writer: WriteHalf<TlsStream<TcpStream>>,
}

impl Client {
    pub async fn connect(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<Self> {
        Ok(Self::from_stream(tls_connect(addr, config).await?))
    }

    pub fn from_stream(stream: TlsStream<TcpStream>) -> Self {
        let (read, write) = tokio::io::split(stream);
        Self {
            reader: BufReader::new(read),
            writer: write,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("send");
        self.writer.flush().await.expect("flush");
    }

    /// Reads one raw line (without `\n`); `None` at a clean end of stream.
    pub async fn read_line(&mut self) -> std::io::Result<Option<String>> {
        let mut line = String::new();
        let read = tokio::time::timeout(PATIENCE, self.reader.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::other("no frame within the test's patience"))??;
        if read == 0 {
            return Ok(None);
        }
        assert!(line.ends_with('\n'), "frame without newline: {line:?}");
        line.pop();
        Ok(Some(line))
    }

    /// The next frame; panics on end of stream, error or timeout.
    pub async fn frame(&mut self) -> Frame {
        let line = self
            .read_line()
            .await
            .expect("read a frame")
            .expect("a frame, not end of stream");
        Frame::parse(&line).unwrap_or_else(|err| panic!("bad frame {line:?}: {err}"))
    }

    /// The next frame that is not a date.
    pub async fn non_date_frame(&mut self) -> Frame {
        loop {
            let frame = self.frame().await;
            if !matches!(frame, Frame::Date { .. }) {
                return frame;
            }
        }
    }

    /// The next reply (`string` frame) payload, skipping dates.
    pub async fn reply(&mut self) -> String {
        match self.non_date_frame().await {
            Frame::String { payload } => payload,
            other => panic!("expected a string frame, got {other:?}"),
        }
    }

    /// Sends `line` plus `\n` and returns the reply.
    pub async fn round_trip(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes()).await;
        self.reply().await
    }

    /// Reads until the server ends the stream; returns true if it ended with
    /// TLS close_notify (a clean end), false on EOF without it.
    pub async fn clean_end(&mut self) -> bool {
        let mut rest = Vec::new();
        match tokio::time::timeout(PATIENCE, self.reader.read_to_end(&mut rest)).await {
            Ok(Ok(_)) => true,
            Ok(Err(err)) if err.kind() == std::io::ErrorKind::UnexpectedEof => false,
            Ok(Err(err)) => panic!("stream ended with an error: {err}"),
            Err(_) => panic!("stream did not end within the test's patience"),
        }
    }

    /// Sends close_notify and shuts our writing side, but keeps reading.
    pub async fn shutdown_write(&mut self) {
        self.writer.shutdown().await.expect("close_notify sent");
    }

    /// Sends close_notify and closes our side.
    pub async fn close(mut self) {
        let _ = self.writer.shutdown().await;
    }
}

/// A TCP connection to `addr` from the loopback address `source`
/// (127.0.0.2 and up are as local as 127.0.0.1 on Linux).
pub async fn tcp_from(source: std::net::Ipv4Addr, addr: SocketAddr) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from((source, 0)))
        .expect("bind a loopback source address");
    socket.connect(addr).await.expect("connect")
}

/// A TLS session to `addr`, verifying the name `localhost`.
pub async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    tls_over(tcp, config).await
}

/// A TLS session over an already connected socket.
pub async fn tls_over(
    tcp: TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").expect("name");
    TlsConnector::from(config).connect(name, tcp).await
}

impl Server {
    /// Starts `servercli` on a given port of 127.0.0.1 with existing
    /// certificates (to restart a server where a client expects it).
    pub fn start_on(pki: Pki, port: u16, args: &[&str]) -> Self {
        let mut command = Command::new(servercli_exe());
        command
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--cert"])
            .arg(&pki.cert)
            .arg("--key")
            .arg(&pki.key)
            .args(args);
        Self::spawn(command, pki)
    }

    /// A `clientcli` command aimed at this server, trusting its test CA
    /// only (the per-user development CA is kept out of the test).
    pub fn clientcli(&self) -> Command {
        clientcli_for(self.addr.port(), &self.pki.ca_pem)
    }
}

/// A `clientcli` command for 127.0.0.1:`port` that trusts `ca` (and the
/// system roots), but not the per-user development CA.
pub fn clientcli_for(port: u16, ca: &Path) -> Command {
    let mut command = Command::new(clientcli_exe());
    command
        .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--ca"])
        .arg(ca)
        .env("NEA_DEV_DIR", "/nonexistent/nea-test")
        // Tests keep no history, unless one asks for it in a place of its own.
        .env("NEA_NO_HISTORY", "1")
        .env_remove("NEA_CERT")
        .env_remove("NEA_KEY");
    command
}

/// A TLS server written for one test: it accepts one connection with the
/// test certificates and hands the stream to `script`.
pub async fn scripted_server<F, Fut>(pki: &Pki, script: F) -> SocketAddr
where
    F: FnOnce(tokio_rustls::server::TlsStream<TcpStream>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let chain = tls::load_certs(&pki.cert).expect("cert");
    let key = tls::load_key(&pki.key).expect("key");
    let config = tls::server_config(chain, key, None).expect("server config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.expect("accept");
        // One connection only: the port is free again for a test that
        // starts a real server there.
        drop(listener);
        let stream = tokio_rustls::TlsAcceptor::from(config)
            .accept(tcp)
            .await
            .expect("handshake");
        script(stream).await;
    });
    addr
}

/// The arguments that make `systemd-socket-activate` give the program it
/// starts this test's `LLVM_PROFILE_FILE`, when there is one. It gives its
/// program only the variables it is told, and a coverage-instrumented
/// program given none writes its profile as `default_*.profraw` in the
/// working directory, the checkout, where no one collects it.
pub fn activator_passes_profile_file() -> Vec<String> {
    std::env::var("LLVM_PROFILE_FILE")
        .map(|file| vec![format!("--setenv=LLVM_PROFILE_FILE={file}")])
        .unwrap_or_default()
}

/// Panics with one line unless `program` can be run: the line names the
/// Debian `package` that has it and `scripts/setup.sh`, which installs it.
/// A missing tool must not surface as an obscure failure deep in a test.
pub fn require_tool(program: &str, package: &str) {
    let status = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match status {
        Ok(_) => {}
        Err(err) if err.kind() == ErrorKind::NotFound => {
            panic!("{program} (Debian package {package}) is needed: run scripts/setup.sh")
        }
        Err(err) => panic!("{program} (Debian package {package}) does not run: {err}"),
    }
}

/// A free address on 127.0.0.1, for a process started next to bind (an
/// admin endpoint, say).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
}

/// A server with its admin endpoint on a free port; returns it and the
/// endpoint's address.
pub fn start_with_admin(args: &[&str]) -> (Server, SocketAddr) {
    let admin = free_addr();
    let pki = Pki::new();
    let mut all = vec!["--admin-addr".to_owned(), admin.to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    // The admin socket is bound before the port file is written: once the
    // server is started, the endpoint takes connections.
    let server = Server::start_with(pki, &all);
    (server, admin)
}

/// `GET path` over HTTP/1.1: (status, body).
pub fn get(admin: SocketAddr, path: &str) -> (u16, String) {
    try_get(admin, path).expect("the admin endpoint answers")
}

/// [`get`], or the error if the endpoint cannot be reached (not up yet).
pub fn try_get(admin: SocketAddr, path: &str) -> std::io::Result<(u16, String)> {
    let mut tcp = std::net::TcpStream::connect(admin)?;
    tcp.set_read_timeout(Some(PATIENCE))?;
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: nea\r\nConnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    tcp.read_to_string(&mut response)?;
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not HTTP: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// The value of the sample `name` (with its labels, as written) in `text`.
pub fn sample(text: &str, name: &str) -> f64 {
    sample_if_any(text, name).unwrap_or_else(|| panic!("{name} not in:\n{text}"))
}

/// [`sample`], or `None` if `text` has no such sample (a label value not
/// counted yet).
pub fn sample_if_any(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let (key, value) = line.rsplit_once(' ')?;
        (key == name).then(|| value.parse().ok())?
    })
}

/// Scrapes the admin endpoint at `admin` until `series` (name and labels,
/// as exported; 0 while absent, or while the endpoint is not up yet)
/// satisfies `holds`; its value then. Panics with the last scrape after
/// the test's patience.
pub async fn until_scraped(admin: SocketAddr, series: &str, holds: impl Fn(f64) -> bool) -> f64 {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = try_get(admin, "/metrics").map_or_else(|err| err.to_string(), |(_, text)| text);
        let value = sample_if_any(&text, series).unwrap_or(0.0);
        if holds(value) {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{series} is {value}, never as expected within {PATIENCE:?}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The sum of every sample of `metric` (whatever its labels) in `text`: the
/// sessions ended for any reason, say.
pub fn sum_of(text: &str, metric: &str) -> f64 {
    let labelled = format!("{metric}{{");
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.rsplit_once(' ')?;
            (key == metric || key.starts_with(&labelled))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}
