//! SPEC §12 behind a real HAProxy, running the configuration the project
//! ships (`contrib/haproxy/haproxy.cfg`): TCP mode with TLS passed through,
//! `send-proxy-v2`, health from each server's `/healthz`, `balance
//! leastconn`. Replies are correct and each server sees the real client;
//! per-address limits count the real address; a full server gets no new
//! clients; and when servers stop or die, reconnecting clients lose
//! nothing and see nothing twice. The file takes any number of servers,
//! from 1 to its documented maximum, and refuses what it cannot serve.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nea::protocol::{ErrorCode, Frame};
use nix::sys::signal::Signal;

use crate::common::{
    Client, PATIENCE, Pki, Server, clientcli_for, require_tool, sample_if_any, tcp_from, tls_over,
    try_get,
};

/// How many servers the shipped configuration has a place for (its
/// header says so; the file refuses one more).
const MAX_SERVERS: usize = 16;

/// A free TCP port on 127.0.0.1, for a process started next to take.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// One of the servers behind the balancer: where it listens, and how to
/// start it again there.
pub struct Backend {
    server: Option<Server>,
    pub port: u16,
    pub admin: u16,
    args: Vec<String>,
}

impl Backend {
    /// A servercli that trusts the balancer's PROXY headers, with its
    /// admin endpoint for the health checks, and `extra` flags.
    pub fn start(pki: &Pki, extra: &[&str]) -> Self {
        let admin = free_port();
        let args: Vec<String> = [
            "--proxy-protocol-from",
            "127.0.0.1/32",
            "--admin-addr",
            &format!("127.0.0.1:{admin}"),
            "--date-period",
            "1s",
        ]
        .iter()
        .chain(extra)
        .map(|arg| (*arg).to_owned())
        .collect();
        let mut backend = Self {
            server: None,
            port: 0,
            admin,
            args,
        };
        backend.run(pki);
        backend
    }

    /// Starts the server (again) on its port. Once it is started, its
    /// admin endpoint is up: it is bound before the port file is written.
    fn run(&mut self, pki: &Pki) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let server = Server::start_on(pki.copy(), self.port, &args);
        self.port = server.addr.port();
        self.server = Some(server);
    }

    pub fn server(&self) -> &Server {
        self.server.as_ref().expect("the server runs")
    }

    /// The clients connected to this server now, as its admin endpoint
    /// says; 0 while it does not answer (the server is restarting).
    pub fn clients(&self) -> usize {
        self.sample("nea_clients_connected") as usize
    }

    /// The value of `series` (name and labels, as exported) in this
    /// server's metrics now; 0 while it is absent or the server does not
    /// answer.
    pub fn sample(&self, series: &str) -> f64 {
        let admin = SocketAddr::from(([127, 0, 0, 1], self.admin));
        try_get(admin, "/metrics")
            .map_or(0.0, |(_, text)| sample_if_any(&text, series).unwrap_or(0.0))
    }
}

/// The clients connected to each of `backends` now.
fn clients_of(backends: &[Backend]) -> Vec<usize> {
    backends.iter().map(Backend::clients).collect()
}

/// What HAProxy is told of one server: where it serves TLS, and its admin
/// endpoint's port, for the health checks.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub admin: u16,
}

impl Backend {
    /// This backend, as HAProxy is told of it.
    fn target(&self) -> Target {
        Target {
            addr: SocketAddr::from(([127, 0, 0, 1], self.port)),
            admin: self.admin,
        }
    }
}

/// HAProxy with the shipped configuration, in front of some servers.
pub struct Balancer {
    child: Child,
    pub addr: SocketAddr,
    stats: PathBuf,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Balancer {
    fn config() -> PathBuf {
        crate::common::repository().join("contrib/haproxy/haproxy.cfg")
    }

    /// HAProxy on a free port of 127.0.0.1 in front of `backends`, once it
    /// sees every one of them up.
    fn start(backends: &[Backend]) -> Self {
        let targets: Vec<Target> = backends.iter().map(Backend::target).collect();
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        Self::start_with(Command::new("haproxy"), addr, &targets, &[])
    }

    /// `haproxy` (a command that runs it: in a network namespace, say) with
    /// the shipped configuration, listening on `addr` in front of
    /// `servers`, with the variables `env` set too; returns once it sees
    /// every server up.
    pub fn start_with(
        haproxy: Command,
        addr: SocketAddr,
        servers: &[Target],
        env: &[(&str, &str)],
    ) -> Self {
        let balancer = Self::spawn(haproxy, addr, servers, env);
        balancer.wait_until_up(servers.len());
        balancer
    }

    /// [`Balancer::start_with`], without waiting for the servers.
    fn spawn(haproxy: Command, addr: SocketAddr, servers: &[Target], env: &[(&str, &str)]) -> Self {
        require_tool("haproxy", "haproxy");
        let dir = tempfile::tempdir().expect("tempdir");
        let stats = dir.path().join("stats.sock");
        let mut child = Self::command(haproxy, addr, &stats, servers, env)
            .arg("-db")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("haproxy starts");
        let log = collect_output(&mut child);
        Self {
            child,
            addr,
            stats,
            log,
            _dir: dir,
        }
    }

    /// `haproxy` with the shipped configuration and the variables that
    /// make it listen on `addr`, with its runtime API on `stats`, in front
    /// of `servers` (`NEA_SERVER_N`, `NEA_ADMIN_PORT_N`), and `env`. Any
    /// such variable of the test's own environment is removed, so that
    /// only the servers given are configured.
    fn command(
        mut haproxy: Command,
        addr: SocketAddr,
        stats: &Path,
        servers: &[Target],
        env: &[(&str, &str)],
    ) -> Command {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("NEA_") {
                haproxy.env_remove(name);
            }
        }
        haproxy
            .arg("-f")
            .arg(Self::config())
            .env("NEA_FRONTEND", addr.to_string())
            .env("NEA_HAPROXY_STATS", stats)
            .envs(env.iter().copied());
        for (i, server) in servers.iter().enumerate() {
            haproxy
                .env(format!("NEA_SERVER_{}", i + 1), server.addr.to_string())
                .env(
                    format!("NEA_ADMIN_PORT_{}", i + 1),
                    server.admin.to_string(),
                );
        }
        haproxy
    }

    /// Waits until HAProxy listens and sees each of its `servers` up.
    fn wait_until_up(&self, servers: usize) {
        let up = self.wait_until(|states| {
            states.get("FRONTEND").is_some_and(|s| s == "OPEN")
                && (1..=servers).all(|i| states.get(&format!("nea{i}")).is_some_and(|s| s == "UP"))
        });
        assert!(
            up,
            "haproxy did not come up: {:?}\n{}",
            self.states(),
            self.log()
        );
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// What the runtime API answers to `request`; `None` while it does not
    /// answer.
    fn ask(&self, request: &str) -> Option<String> {
        let mut socket = UnixStream::connect(&self.stats).ok()?;
        socket.write_all(format!("{request}\n").as_bytes()).ok()?;
        let mut answer = String::new();
        socket.read_to_string(&mut answer).ok()?;
        Some(answer)
    }

    /// Each server's status as HAProxy's runtime API reports it (`UP`,
    /// `DOWN`, `DOWN 1/2`...), and the frontend's (`FRONTEND`: `OPEN` once
    /// it listens); empty while the API does not answer.
    pub fn states(&self) -> HashMap<String, String> {
        let Some(csv) = self.ask("show stat") else {
            return HashMap::new();
        };
        let mut lines = csv.lines();
        let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
            return HashMap::new();
        };
        let column = |name: &str| header.split(',').position(|c| c == name);
        let (Some(proxy), Some(server), Some(status)) =
            (column("pxname"), column("svname"), column("status"))
        else {
            return HashMap::new();
        };
        lines
            .map(|line| line.split(',').collect::<Vec<_>>())
            .filter(|fields| fields.get(proxy) == Some(&"nea"))
            .filter_map(|fields| {
                Some((
                    (*fields.get(server)?).to_owned(),
                    (*fields.get(status)?).to_owned(),
                ))
            })
            .collect()
    }

    /// Polls the states until `done` holds; false after the test's patience.
    fn wait_until(&self, done: impl Fn(&HashMap<String, String>) -> bool) -> bool {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if done(&self.states()) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn wait_for_state(&self, server: &str, state: &str) {
        let reached = self.wait_until(|states| states.get(server).is_some_and(|s| s == state));
        assert!(
            reached,
            "{server} did not become {state}: {:?}\n{}",
            self.states(),
            self.log()
        );
    }

    /// A TLS client through the balancer, from the loopback address `from`.
    async fn client(&self, pki: &Pki, from: Ipv4Addr) -> (Client, SocketAddr) {
        let tcp = tcp_from(from, self.addr).await;
        let local = tcp.local_addr().expect("local address");
        let stream = tls_over(tcp, pki.client_config())
            .await
            .expect("a handshake through the balancer");
        (Client::from_stream(stream), local)
    }
}

/// What `child` writes on its standard output and error, as it comes.
pub fn collect_output(child: &mut Child) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let stdout = child
        .stdout
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    let stderr = child
        .stderr
        .take()
        .map(|p| Box::new(p) as Box<dyn Read + Send>);
    for pipe in [stdout, stderr].into_iter().flatten() {
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut text = sink.lock().expect("log lock");
                text.push_str(&line);
                text.push('\n');
            }
        });
    }
    log
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Backends for HAProxy to balance, one with each of `extra`'s flags:
/// without HAProxy, the test says so before starting them.
fn backends(pki: &Pki, extra: &[&[&str]]) -> Vec<Backend> {
    require_tool("haproxy", "haproxy");
    extra.iter().map(|args| Backend::start(pki, args)).collect()
}

/// Which backend's log has `needle`, once one has.
pub fn serving(backends: &[Backend], needle: &str) -> usize {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        let having: Vec<usize> = (0..backends.len())
            .filter(|&i| backends[i].server().log().contains(needle))
            .collect();
        match having[..] {
            [i] => return i,
            [] => std::thread::sleep(Duration::from_millis(20)),
            _ => panic!("{needle:?} is in the logs of servers {having:?}"),
        }
    }
    panic!("no server logged {needle:?}");
}

#[tokio::test]
async fn haproxy_runs_as_its_own_user_shut_in_its_directory() {
    let pki = Pki::new();
    let backends = backends(&pki, &[&[]]);
    let balancer = Balancer::start(&backends);
    let pid = balancer.child.id();
    let id = Command::new("id")
        .args(["-u", "haproxy"])
        .output()
        .expect("id runs");
    let haproxy_uid = String::from_utf8_lossy(&id.stdout).trim().to_owned();
    assert!(id.status.success(), "no haproxy user: run scripts/setup.sh");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("its status");
    let uids = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .expect("a Uid line");
    // Real, effective, saved and file-system user: root kept none of them.
    assert!(
        uids.split_whitespace().all(|uid| uid == haproxy_uid),
        "Uid:{uids}, not {haproxy_uid}"
    );
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/root")).expect("its root"),
        Path::new("/var/lib/haproxy")
    );
    // And it serves as before.
    let (mut client, _) = balancer.client(&pki, Ipv4Addr::new(127, 0, 0, 5)).await;
    assert_eq!(client.round_trip("dropped").await, "deppord");
}

#[tokio::test]
async fn replies_through_haproxy_are_correct_and_each_server_sees_the_real_client() {
    let pki = Pki::new();
    let backends = backends(&pki, &[&[], &[], &[]]);
    let balancer = Balancer::start(&backends);
    let mut held = Vec::new();
    let mut chosen = Vec::new();
    for (i, from) in [5, 6, 7].into_iter().enumerate() {
        let (mut client, local) = balancer.client(&pki, Ipv4Addr::new(127, 0, 0, from)).await;
        assert_eq!(
            client.round_trip(&format!("client {i}")).await,
            format!("{i} tneilc")
        );
        // The server logs the client's own address and port, and the
        // balancer's as `via`.
        let joined = format!("client connected peer={local} via=127.0.0.1:");
        chosen.push(serving(&backends, &joined));
        held.push(client);
    }
    chosen.sort_unstable();
    assert_eq!(chosen, [0, 1, 2], "leastconn spreads three held clients");
    // Dates come through too.
    let mut client = held.pop().expect("a client");
    assert!(matches!(client.frame().await, Frame::Date { .. }));
}

#[tokio::test]
async fn per_address_limits_count_the_real_client_behind_haproxy() {
    let pki = Pki::new();
    let limit: &[&str] = &["--max-clients-per-address", "1"];
    let backends = backends(&pki, &[limit, limit, limit]);
    let balancer = Balancer::start(&backends);
    let busy = Ipv4Addr::new(127, 0, 0, 5);
    // One slot per server for this address: three in all.
    let mut held = Vec::new();
    for i in 0..3 {
        let (mut client, _) = balancer.client(&pki, busy).await;
        assert_eq!(client.round_trip(&format!("{i}")).await, format!("{i}"));
        held.push(client);
    }
    let (mut fourth, _) = balancer.client(&pki, busy).await;
    match fourth.non_date_frame().await {
        Frame::Error { code, .. } => assert_eq!(code, ErrorCode::AddressLimit),
        other => panic!("expected address_limit, got {other:?}"),
    }
    // All of them came through the same balancer address; another client
    // is still someone else.
    let (mut other, _) = balancer.client(&pki, Ipv4Addr::new(127, 0, 0, 6)).await;
    assert_eq!(other.round_trip("other").await, "rehto");
}

#[tokio::test]
async fn a_full_server_turns_unhealthy_and_new_clients_go_to_the_others() {
    let pki = Pki::new();
    let backends = backends(&pki, &[&["--max-clients", "2"], &[], &[]]);
    let balancer = Balancer::start(&backends);
    // Fill the first server directly, from an address it does not expect
    // PROXY headers from.
    let direct = backends[0].server().addr;
    let mut fillers = Vec::new();
    for _ in 0..2 {
        let tcp = tcp_from(Ipv4Addr::new(127, 0, 0, 8), direct).await;
        let mut client = Client::from_stream(
            tls_over(tcp, pki.client_config())
                .await
                .expect("a direct handshake"),
        );
        assert_eq!(client.round_trip("fill").await, "llif");
        fillers.push(client);
    }
    balancer.wait_for_state("nea1", "DOWN");
    // Without the health check, leastconn would send the next clients to
    // the server with no balanced connection: the full one.
    let mut held = Vec::new();
    for i in 0..6 {
        let (mut client, _) = balancer.client(&pki, Ipv4Addr::new(127, 0, 0, 5)).await;
        client.send(format!("{i}\n").as_bytes()).await;
        match client.non_date_frame().await {
            Frame::String { payload } => assert_eq!(payload, format!("{i}")),
            other => panic!("client {i} was not served: {other:?}"),
        }
        // Served, so counted by the server that serves it: not the full one.
        let clients = clients_of(&backends);
        assert_eq!(clients[0], 2, "client {i} was sent to the full server");
        assert_eq!(clients[1] + clients[2], i + 1, "{clients:?}");
        held.push(client);
    }
    // A free slot makes it healthy again.
    drop(fillers);
    balancer.wait_for_state("nea1", "UP");
}

/// What one reconnecting `clientcli` did through a failover.
struct Run {
    output: Output,
    expected: String,
}

impl Run {
    /// Why this client's run is not "every line answered exactly once, in
    /// order, and a clean exit"; `None` if it is.
    fn fault(&self) -> Option<String> {
        let stdout = String::from_utf8_lossy(&self.output.stdout);
        let stderr = String::from_utf8_lossy(&self.output.stderr);
        if !self.output.status.success() {
            return Some(format!("exit {:?}: {stderr}", self.output.status));
        }
        if stdout != self.expected {
            let got = stdout.lines().count();
            let want = self.expected.lines().count();
            return Some(format!("{got} lines of output, {want} expected:\n{stdout}"));
        }
        // Dates, connection lines and notices of reconnection are all a
        // client may print on stderr: never an error.
        stderr
            .lines()
            .find(|line| {
                !line.starts_with("date: ")
                    && !line.starts_with("connected to ")
                    && !line.contains("; reconnecting in ")
            })
            .map(|line| format!("printed {line:?}"))
    }
}

/// `clients` clientcli in pipe mode (`--reconnect` if asked) through
/// `balancer`, with their standard input.
fn clients_through(
    balancer: &Balancer,
    pki: &Pki,
    clients: usize,
    reconnect: bool,
) -> Vec<(Child, ChildStdin)> {
    (0..clients)
        .map(|_| {
            let mut command = clientcli_for(balancer.addr.port(), &pki.ca_pem);
            if reconnect {
                command.arg("--reconnect");
            }
            let mut child = command
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

/// Waits until `clients` clients are connected to the backends in all.
async fn until_connected(backends: &[Backend], clients: usize) {
    let deadline = Instant::now() + PATIENCE * 3;
    loop {
        let connected = clients_of(backends);
        if connected.iter().sum::<usize>() >= clients {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "only {connected:?} clients connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `n`th line of the failover's `client`.
fn failover_line(client: usize, n: usize) -> String {
    format!("c{client:02} n{n:04}")
}

/// Sends each of `children` `lines` numbered lines at 20 lines a second;
/// after a quarter of them the first server gets SIGTERM, after half the
/// second is killed (SIGKILL) and started again on its ports.
async fn send_through_a_stop_and_a_crash(
    children: &mut [(Child, ChildStdin)],
    backends: &mut [Backend],
    pki: &Pki,
    lines: usize,
) {
    let started = Instant::now();
    for n in 0..lines {
        for (client, (_, stdin)) in children.iter_mut().enumerate() {
            // A client that gave up has closed its input: the test notices
            // from its output.
            let _ = writeln!(stdin, "{}", failover_line(client, n));
        }
        if n == lines / 4 {
            backends[0].server().signal(Signal::SIGTERM);
        }
        if n == lines / 2 {
            let mut killed = backends[1].server.take().expect("the second server");
            killed.signal(Signal::SIGKILL);
            killed.wait_exit(PATIENCE).expect("killed");
            backends[1].run(pki);
        }
        let due = started + Duration::from_millis(50) * u32::try_from(n + 1).expect("lines");
        tokio::time::sleep_until(due.into()).await;
    }
}

/// Ends each child's input and returns its output, once every one has
/// ended.
async fn outputs_of(children: Vec<(Child, ChildStdin)>) -> Vec<Output> {
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|(child, stdin)| {
                drop(stdin);
                child.wait_with_output().expect("clientcli output")
            })
            .collect::<Vec<_>>()
    });
    tokio::time::timeout(PATIENCE * 2, outputs)
        .await
        .expect("every client ends once its lines are answered")
        .expect("the waiting task")
}

/// HAProxy's log and the servers', to show when a check fails.
fn logs_for_diagnosis(balancer: &Balancer, backends: &[Backend]) -> String {
    let mut log = balancer.log();
    for (i, backend) in backends.iter().enumerate() {
        if let Some(server) = &backend.server {
            log.push_str(&format!("--- server {}:\n{}", i + 1, server.log()));
        }
    }
    log
}

/// Sends `lines` numbered lines from each of `clients` clientcli (pipe
/// mode, `--reconnect` if asked) at 20 lines a second through HAProxy in
/// front of three servers, once all are connected, through a stop and a
/// crash (see [`send_through_a_stop_and_a_crash`]). Returns each client's
/// run, and the logs to show if a check fails.
async fn failover(clients: usize, lines: usize, reconnect: bool) -> (Vec<Run>, String) {
    let pki = Pki::new();
    let mut backends = backends(&pki, &[&[], &[], &[]]);
    let balancer = Balancer::start(&backends);
    let mut children = clients_through(&balancer, &pki, clients, reconnect);
    // The failures start once every client is connected: a client's first
    // connection is not retried, by design.
    until_connected(&backends, clients).await;
    send_through_a_stop_and_a_crash(&mut children, &mut backends, &pki, lines).await;
    let outputs = outputs_of(children).await;
    let log = logs_for_diagnosis(&balancer, &backends);
    drop(balancer);
    let runs = outputs
        .into_iter()
        .enumerate()
        .map(|(client, output)| Run {
            output,
            expected: (0..lines)
                .map(|n| {
                    let line = failover_line(client, n);
                    format!("{}\n", line.chars().rev().collect::<String>())
                })
                .collect(),
        })
        .collect();
    (runs, log)
}

#[tokio::test]
async fn through_a_stop_and_a_crash_every_line_is_answered_exactly_once() {
    let (runs, log) = failover(50, 200, true).await;
    let faults: Vec<String> = runs
        .iter()
        .enumerate()
        .filter_map(|(i, run)| run.fault().map(|fault| format!("client {i}: {fault}")))
        .collect();
    assert!(faults.is_empty(), "{}\nhaproxy:\n{log}", faults.join("\n"));
    // The stop and the crash did reach clients.
    let reconnected = runs
        .iter()
        .filter(|run| String::from_utf8_lossy(&run.output.stderr).contains("reconnecting in"))
        .count();
    eprintln!("{reconnected} of {} clients reconnected", runs.len());
    assert!(reconnected >= 2, "only {reconnected} clients reconnected");
}

#[tokio::test]
async fn without_reconnect_the_failover_check_sees_lines_lost() {
    // The same check, on clients that do not reconnect: it must fail.
    let (runs, _) = failover(9, 60, false).await;
    let faulty = runs.iter().filter(|run| run.fault().is_some()).count();
    assert!(
        faulty > 0,
        "no fault found, though clients without --reconnect lost a server"
    );
}

/// `count` servers for HAProxy to be told of, none of them listening:
/// server N at 127.0.1.N, port 4000 + N, its admin port 5000 + N.
fn placeholders(count: usize) -> Vec<Target> {
    (1..=count)
        .map(|n| {
            let n = u16::try_from(n).expect("a few servers");
            Target {
                addr: SocketAddr::from(([127, 0, 1, u8::try_from(n).expect("a few")], 4000 + n)),
                admin: 5000 + n,
            }
        })
        .collect()
}

/// `haproxy -c` (a check of the file, which binds and connects nothing)
/// of the shipped configuration for `servers`, with `adjust` applied to
/// the command first.
fn check(servers: &[Target], adjust: impl FnOnce(&mut Command)) -> Output {
    require_tool("haproxy", "haproxy");
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = SocketAddr::from(([127, 0, 0, 1], 3443));
    let mut command = Balancer::command(
        Command::new("haproxy"),
        addr,
        &dir.path().join("stats.sock"),
        servers,
        &[],
    );
    adjust(&mut command);
    command
        .arg("-c")
        .stdin(Stdio::null())
        .output()
        .expect("haproxy runs")
}

#[test]
fn the_configuration_takes_any_number_of_servers_up_to_its_most() {
    for count in [1, 2, 5, MAX_SERVERS] {
        let output = check(&placeholders(count), |_| {});
        assert!(
            output.status.success(),
            "haproxy -c refuses {count} servers:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn the_configuration_refuses_no_server_a_gap_a_missing_admin_port_and_one_too_many() {
    let refusals: [(&str, Vec<Target>, &[&str], &str); 4] = [
        ("no server", Vec::new(), &[], "NEA_SERVER_1 is not set"),
        (
            "a gap",
            placeholders(3),
            &["NEA_SERVER_2", "NEA_ADMIN_PORT_2"],
            "NEA_SERVER_3 needs NEA_SERVER_2",
        ),
        (
            "no admin port",
            placeholders(2),
            &["NEA_ADMIN_PORT_2"],
            "NEA_SERVER_2 needs NEA_SERVER_1 (no gap) and NEA_ADMIN_PORT_2",
        ),
        (
            "one server too many",
            placeholders(MAX_SERVERS + 1),
            &[],
            "NEA_SERVER_17 is set, but this file has blocks for 16 servers",
        ),
    ];
    for (case, servers, unset, message) in refusals {
        let output = check(&servers, |command| {
            for name in unset {
                command.env_remove(name);
            }
        });
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "haproxy -c takes {case}");
        assert!(
            stderr.contains(message),
            "{case}: no {message:?} in:\n{stderr}"
        );
    }
}

#[test]
fn each_server_of_the_most_gets_its_own_address_and_check_port() {
    let servers = placeholders(MAX_SERVERS);
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let balancer = Balancer::spawn(Command::new("haproxy"), addr, &servers, &[]);
    let deadline = Instant::now() + PATIENCE;
    let state = loop {
        if let Some(state) = balancer.ask("show servers state nea") {
            break state;
        }
        assert!(
            Instant::now() < deadline,
            "the runtime API does not answer:\n{}",
            balancer.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // A version line, a header of column names, one line per server.
    let mut lines = state.lines().skip(1);
    let header: Vec<&str> = lines
        .next()
        .and_then(|h| h.strip_prefix("# "))
        .expect("a header")
        .split(' ')
        .collect();
    let column = |name: &str| {
        header
            .iter()
            .position(|c| *c == name)
            .unwrap_or_else(|| panic!("no {name} in {header:?}"))
    };
    let configured: Vec<(String, SocketAddr, u16)> = lines
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let addr = format!(
                "{}:{}",
                fields[column("srv_addr")],
                fields[column("srv_port")]
            );
            (
                fields[column("srv_name")].to_owned(),
                addr.parse().expect("an address"),
                fields[column("srv_check_port")].parse().expect("a port"),
            )
        })
        .collect();
    let expected: Vec<(String, SocketAddr, u16)> = servers
        .iter()
        .enumerate()
        .map(|(i, server)| (format!("nea{}", i + 1), server.addr, server.admin))
        .collect();
    assert_eq!(configured, expected);
}

#[tokio::test]
async fn two_servers_serve_clients_and_leastconn_gives_each_one() {
    let pki = Pki::new();
    let backends = backends(&pki, &[&[], &[]]);
    let balancer = Balancer::start(&backends);
    let mut held = Vec::new();
    let mut chosen = Vec::new();
    for (i, from) in [5, 6].into_iter().enumerate() {
        let (mut client, local) = balancer.client(&pki, Ipv4Addr::new(127, 0, 0, from)).await;
        assert_eq!(
            client.round_trip(&format!("two {i}")).await,
            format!("{i} owt")
        );
        let joined = format!("client connected peer={local} via=127.0.0.1:");
        chosen.push(serving(&backends, &joined));
        held.push(client);
    }
    chosen.sort_unstable();
    assert_eq!(chosen, [0, 1], "leastconn spreads two held clients");
    assert_eq!(clients_of(&backends), [1, 1]);
}
