//! A kit for tests on real network faults: network namespaces joined by veth
//! links, nftables rules that drop packets without a word, and a relay that
//! delays every byte.
//!
//! Loopback cannot show what a real network does to the service: a peer
//! whose path dies silently (no FIN, no RST, sends that succeed and are
//! never answered), a host name whose first address does not answer, a
//! round trip of hundreds of milliseconds. These faults are made here with
//! the kernel's own machinery, not imitated: packets really are dropped.
//! `tc netem` does not exist in every kernel the suite runs on, so latency
//! comes from a relay instead (see [`LatencyRelay`] for what that can and
//! cannot show).
//!
//! Everything here needs root (CI runs the suite as root) and two tools,
//! `ip` (iproute2) and `nft` (nftables), which `scripts/setup.sh` installs.
//! A test fails with one line naming what is missing.
//!
//! Invariants the kit keeps, because a test machine must never accumulate
//! namespaces or rules:
//! - every namespace, veth end, nft table and `/etc/netns` entry it makes is
//!   owned by a value whose `Drop` removes it, and `Drop` also runs while a
//!   failing test unwinds;
//! - namespaces left behind by a test process killed with SIGKILL (whose
//!   `Drop` never ran) are swept by the next test process that makes one;
//! - nothing touches the host's (root namespace's) interfaces, routes or
//!   rules: both ends of every link are in namespaces of their own.

use std::ffi::OsStr;
use std::fs::File;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicU16, AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, geteuid};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// Where `ip netns add` puts the file that keeps a namespace alive (a bind
/// mount of the namespace), and where `setns` opens it.
const NETNS_RUN_DIR: &str = "/var/run/netns";

/// Where `ip netns exec NAME` finds files to bind-mount over `/etc` for the
/// command it runs (`/etc/netns/NAME/hosts` over `/etc/hosts`).
const NETNS_ETC_DIR: &str = "/etc/netns";

/// The prefix of every namespace name the kit makes: `nea-<pid>-<n>`. The
/// pid says which test process owns it, so that a sweep can tell the
/// namespaces of dead processes from those of running ones.
const NAME_PREFIX: &str = "nea-";

/// How long processes still inside a namespace being dropped get to exit
/// after SIGTERM (so that a server writes its coverage profile) before they
/// are killed.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs a command of the kit's own and returns its standard output. Panics
/// with the command's error output if it fails: a network that could not be
/// built as asked must not let a test run on a different one.
fn run_checked(command: &mut Command) -> String {
    let output = command
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| panic!("{command:?} does not start: {err}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Like [`run_checked`], but returns the failure instead of panicking, for
/// `Drop`, which must not panic while a test unwinds.
fn run_for_cleanup(command: &mut Command) -> Result<(), String> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("{command:?} does not start: {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{command:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Reports a cleanup that failed: a panic (the test fails, and says what
/// was left behind) unless the thread is already unwinding, where a second
/// panic would abort the whole test process and hide the first failure.
fn cleanup_failed(what: &str) {
    if std::thread::panicking() {
        eprintln!("netns kit: {what}");
    } else {
        panic!("netns kit: {what}");
    }
}

/// Checks, once per test process, that it can make namespaces at all, and
/// sweeps what killed test processes left behind, before the process makes
/// its first namespace.
fn prepare_once() {
    static PREPARED: Once = Once::new();
    PREPARED.call_once(|| {
        assert!(
            geteuid().is_root(),
            "network namespaces need root: run the network-fault tests as root (CI does)"
        );
        crate::common::require_tool("ip", "iproute2");
        // Before this process's first namespace, any namespace carrying its
        // pid was left by a dead process that had the same pid: its name
        // would collide with ours.
        sweep(true);
    });
}

/// Deletes the namespaces (and `/etc/netns` entries) of test processes
/// that are no longer alive: a test process killed with SIGKILL runs no
/// `Drop`. Namespaces of live processes are never touched, so parallel test
/// processes may sweep at any time. The first namespace of each test
/// process runs this; it is public for the test that shows it works.
///
/// A dead pid may have been reused by an unrelated live process; its
/// namespaces then wait for a sweep after that process ends.
pub fn sweep_stale_namespaces() {
    sweep(false);
}

fn sweep(own_pid_is_stale: bool) {
    let own_pid = std::process::id();
    let is_stale = |name: &str| match owner_pid(name) {
        Some(pid) if pid == own_pid => own_pid_is_stale,
        Some(pid) => !Path::new(&format!("/proc/{pid}")).exists(),
        None => false,
    };
    let listed = run_checked(Command::new("ip").args(["netns", "list"]));
    // Lines are `NAME` or `NAME (id: N)`.
    for name in listed
        .lines()
        .filter_map(|line| line.split_whitespace().next())
    {
        if is_stale(name) {
            stop_processes_in(name);
            // Another test process may sweep the same name at the same
            // time; whoever is second fails, and that is fine.
            let _ = run_for_cleanup(Command::new("ip").args(["netns", "delete", name]));
        }
    }
    // A hosts directory outlives its namespace if the process died between
    // deleting one and the other.
    if let Ok(entries) = std::fs::read_dir(NETNS_ETC_DIR) {
        for entry in entries.filter_map(Result::ok) {
            if let Some(name) = entry.file_name().to_str().filter(|name| is_stale(name)) {
                let _ = std::fs::remove_dir_all(Path::new(NETNS_ETC_DIR).join(name));
            }
        }
    }
}

/// The pid in a kit namespace name `nea-<pid>-<n>`; `None` for any other
/// name, which the kit never touches.
fn owner_pid(name: &str) -> Option<u32> {
    let (pid, counter) = name.strip_prefix(NAME_PREFIX)?.split_once('-')?;
    let digits = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    if digits(pid) && digits(counter) {
        pid.parse().ok()
    } else {
        None
    }
}

/// The pids of the processes whose network namespace is `name`.
fn pids_in(name: &str) -> Vec<Pid> {
    let Ok(output) = Command::new("ip")
        .args(["netns", "pids", name])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter_map(|pid| pid.parse().ok())
        .map(Pid::from_raw)
        .collect()
}

/// Stops every process inside namespace `name`: SIGTERM, then SIGKILL for
/// those still there after [`STOP_GRACE`]. `ip netns delete` only removes
/// the name; a process left inside would keep the namespace, its veth ends
/// and its addresses alive, unnamed and unreachable for any cleanup.
fn stop_processes_in(name: &str) {
    for (signal, patience) in [(Signal::SIGTERM, STOP_GRACE), (Signal::SIGKILL, STOP_GRACE)] {
        let pids = pids_in(name);
        if pids.is_empty() {
            return;
        }
        for pid in pids {
            let _ = kill(pid, signal);
        }
        let deadline = Instant::now() + patience;
        while !pids_in(name).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A network namespace of its own: an isolated network stack with only its
/// loopback (up) until a [`Link`] joins it to another.
///
/// Its name is `nea-<pid>-<n>`: the pid of the test process that owns it,
/// for [`sweep_stale_namespaces`], and a counter of that process.
///
/// Dropping it stops the processes still inside, deletes the namespace
/// with everything in it (veth ends, addresses, nft tables) and its
/// `/etc/netns` directory; this also happens while a failing test unwinds.
#[derive(Debug)]
pub struct Namespace {
    name: String,
}

impl Namespace {
    /// Makes a fresh namespace with its loopback up.
    pub fn new() -> Self {
        prepare_once();
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        run_checked(Command::new("ip").args(["netns", "add", &name]));
        // From here on, Drop removes it, even if the next step fails.
        let namespace = Self { name };
        namespace.ip(&["link", "set", "lo", "up"]);
        namespace
    }

    /// The namespace's name, as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs `ip -n NAME ARGS…` (the `ip` command applied inside this
    /// namespace) and returns its output; panics if it fails.
    pub fn ip(&self, args: &[&str]) -> String {
        run_checked(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// A command that runs `program` inside this namespace, through `ip
    /// netns exec`, which execs it: the child's pid is the program's own, so
    /// signals sent to the child reach it. The command also sees the hosts
    /// file given to [`Namespace::set_hosts`]. Add arguments as usual.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }

    /// Makes `text` the `/etc/hosts` of the commands this namespace runs
    /// ([`Namespace::command`]): `ip netns exec` bind-mounts
    /// `/etc/netns/NAME/hosts` over `/etc/hosts` for them, so a test can
    /// give a name several addresses without touching the host's file.
    /// Code run by [`Namespace::run`] still reads the host's `/etc/hosts`.
    pub fn set_hosts(&self, text: &str) {
        let dir = self.etc_dir();
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|err| panic!("{} cannot be made: {err}", dir.display()));
        let hosts = dir.join("hosts");
        std::fs::write(&hosts, text)
            .unwrap_or_else(|err| panic!("{} cannot be written: {err}", hosts.display()));
    }

    /// Runs `f` on a thread of its own inside this namespace and returns
    /// what it returns (a panic in `f` goes on in the caller, with its
    /// message).
    ///
    /// The network namespace is a property of each thread (`setns` with
    /// `CLONE_NEWNET` moves only the calling thread), and the kernel puts a
    /// socket in the namespace of the thread that creates it, for good:
    /// - sockets `f` creates live in this namespace, whichever thread uses
    ///   them afterwards, so `f` may return a listener or a socket to the
    ///   test's own runtime;
    /// - threads that `f` starts inherit the namespace, so `f` may build a
    ///   tokio runtime (its blocking pool included) and run async code here.
    ///
    /// The thread is fresh and ends with `f`, so the caller's thread never
    /// changes namespace.
    pub fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let namespace = self.open();
        std::thread::scope(|scope| {
            let thread = scope.spawn(move || {
                setns(&namespace, CloneFlags::CLONE_NEWNET)
                    .unwrap_or_else(|err| panic!("setns into the namespace: {err}"));
                drop(namespace);
                f()
            });
            thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// A TCP socket, of the family of `addr`, that lives in this namespace
    /// (see [`Namespace::run`]): bind and listen on it, or connect from it,
    /// in the test's own runtime.
    pub fn tcp_socket(&self, addr: SocketAddr) -> TcpSocket {
        self.run(|| match addr {
            SocketAddr::V4(_) => TcpSocket::new_v4(),
            SocketAddr::V6(_) => TcpSocket::new_v6(),
        })
        .expect("a TCP socket in the namespace")
    }

    /// Adds `address` to `interface` in this namespace, in the subnet of a
    /// [`Link`] (a /24 for IPv4, a /64 for IPv6). IPv6 addresses skip
    /// duplicate address detection (`nodad`), so they work at once instead
    /// of a second or two later.
    pub fn add_address(&self, interface: &str, address: IpAddr) {
        let with_prefix = match address {
            IpAddr::V4(v4) => format!("{v4}/24"),
            IpAddr::V6(v6) => format!("{v6}/64"),
        };
        let mut args = vec!["address", "add", &with_prefix, "dev", interface];
        if address.is_ipv6() {
            args.push("nodad");
        }
        self.ip(&args);
    }

    /// The namespace file: open it to `setns` into the namespace.
    fn open(&self) -> File {
        let path = Path::new(NETNS_RUN_DIR).join(&self.name);
        File::open(&path).unwrap_or_else(|err| panic!("{} cannot be opened: {err}", path.display()))
    }

    fn etc_dir(&self) -> PathBuf {
        Path::new(NETNS_ETC_DIR).join(&self.name)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        stop_processes_in(&self.name);
        let deleted = run_for_cleanup(Command::new("ip").args(["netns", "delete", &self.name]));
        let hosts = match std::fs::remove_dir_all(self.etc_dir()) {
            Err(err) if err.kind() != ErrorKind::NotFound => Err(format!(
                "{} cannot be removed: {err}",
                self.etc_dir().display()
            )),
            _ => Ok(()),
        };
        if let Err(what) = deleted.and(hosts) {
            cleanup_failed(&what);
        }
    }
}

/// One end of a [`Link`]: its interface and addresses, in one namespace.
#[derive(Clone, Debug)]
pub struct LinkEnd {
    /// The veth interface's name inside its namespace.
    pub interface: String,
    pub v4: Ipv4Addr,
    pub v6: Ipv6Addr,
}

/// A veth pair joining two namespaces, like a cable between two hosts,
/// with an IPv4 /24 and an IPv6 /64 of its own: end `a` is host 1 of both
/// subnets, end `b` host 2.
///
/// Subnets are numbered per test process: its k-th link has
/// 10.(k / 256).(k % 256).0/24 and fd6e:6561:0:k::/64. Since both ends are in fresh namespaces,
/// the same subnet in two parallel test processes never meets: a
/// namespace's addresses and routes are its own. Numbering per process only
/// keeps the links that share a namespace apart. Interface names (`vethK`)
/// are made directly inside the namespaces, so they cannot collide with
/// the host's either.
///
/// The link lives as long as the first of its namespaces: it has no `Drop`.
#[derive(Clone, Debug)]
pub struct Link {
    pub a: LinkEnd,
    pub b: LinkEnd,
    subnet: u16,
}

impl Link {
    /// Joins `a` and `b` with a veth pair, both ends up with their
    /// addresses.
    pub fn new(a: &Namespace, b: &Namespace) -> Self {
        static NEXT: AtomicU16 = AtomicU16::new(1);
        let subnet = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(subnet != 0, "more than 65,535 links in one test process");
        let interface = format!("veth{subnet}");
        let link = Self {
            a: LinkEnd {
                interface: interface.clone(),
                v4: subnet_v4(subnet, 1),
                v6: subnet_v6(subnet, 1),
            },
            b: LinkEnd {
                interface: interface.clone(),
                v4: subnet_v4(subnet, 2),
                v6: subnet_v6(subnet, 2),
            },
            subnet,
        };
        run_checked(Command::new("ip").args([
            "link", "add", &interface, "netns", &a.name, "type", "veth", "peer", "name",
            &interface, "netns", &b.name,
        ]));
        for (namespace, end) in [(a, &link.a), (b, &link.b)] {
            namespace.add_address(&end.interface, end.v4.into());
            namespace.add_address(&end.interface, end.v6.into());
            namespace.ip(&["link", "set", &end.interface, "up"]);
        }
        link
    }

    /// Address `host` of this link's IPv4 subnet (1 is end `a`, 2 end `b`;
    /// others are free for [`Namespace::add_address`]).
    pub fn v4_host(&self, host: u8) -> Ipv4Addr {
        subnet_v4(self.subnet, host)
    }

    /// Address `host` of this link's IPv6 subnet (see [`Link::v4_host`]).
    pub fn v6_host(&self, host: u16) -> Ipv6Addr {
        subnet_v6(self.subnet, host)
    }
}

fn subnet_v4(subnet: u16, host: u8) -> Ipv4Addr {
    let [high, low] = subnet.to_be_bytes();
    Ipv4Addr::new(10, high, low, host)
}

fn subnet_v6(subnet: u16, host: u16) -> Ipv6Addr {
    // fd6e:6561::/32 ("nea"), a unique local prefix.
    Ipv6Addr::new(0xfd6e, 0x6561, 0, subnet, 0, 0, 0, host)
}

/// The usual shape of a network-fault test: a server host and a client
/// host, each a fresh namespace, joined by one link (`link.a` is the
/// server's end, `link.b` the client's).
///
/// Both ends are namespaces, rather than one end in the host, so that
/// nothing of the host's network changes (no addresses, routes or rules to
/// collide between parallel tests or to leak when a test is killed), and a
/// fault can be put on either side, or on one address, without affecting
/// anything else on the machine.
#[derive(Debug)]
pub struct Network {
    pub server: Namespace,
    pub client: Namespace,
    pub link: Link,
}

impl Network {
    pub fn new() -> Self {
        let server = Namespace::new();
        let client = Namespace::new();
        let link = Link::new(&server, &client);
        Self {
            server,
            client,
            link,
        }
    }
}

/// Which packets a [`Blackhole`] drops.
#[derive(Clone, Copy, Debug)]
pub enum Traffic {
    /// TCP segments to or from this port.
    TcpPort(u16),
    /// Packets to or from this address.
    Address(IpAddr),
}

/// An nftables table in one namespace that silently drops the packets of
/// some [`Traffic`], in both directions, on their way in (input hook) and
/// out (output hook). Nothing is sent back: no RST, no ICMP. A drop on the
/// way out is invisible to the sender: its sends succeed and its connects
/// stay pending. TCP gives up on a connect after about two minutes of SYN
/// retries and on data sent after about 15 minutes of retransmissions; a
/// connection with nothing to send never notices.
///
/// Dropping the value deletes the table: the path works again, and the
/// kernel's retransmissions deliver what was held back. Each blackhole has
/// a table of its own (`inet nea_blackhole_N`), so several may be on at
/// once and removing one leaves the others. It borrows its namespace, so it
/// cannot outlive it.
#[derive(Debug)]
pub struct Blackhole<'ns> {
    namespace: &'ns Namespace,
    table: String,
}

impl<'ns> Blackhole<'ns> {
    /// Starts dropping `traffic` in `namespace`.
    pub fn new(namespace: &'ns Namespace, traffic: Traffic) -> Self {
        static NFT_CHECKED: Once = Once::new();
        NFT_CHECKED.call_once(|| crate::common::require_tool("nft", "nftables"));
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let table = format!("nea_blackhole_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let matches = match traffic {
            Traffic::TcpPort(port) => [format!("tcp dport {port}"), format!("tcp sport {port}")],
            Traffic::Address(IpAddr::V4(v4)) => {
                [format!("ip daddr {v4}"), format!("ip saddr {v4}")]
            }
            Traffic::Address(IpAddr::V6(v6)) => {
                [format!("ip6 daddr {v6}"), format!("ip6 saddr {v6}")]
            }
        };
        let [to, from] = matches;
        // Before the usual filter priority, so that no other table of the
        // namespace sees (or accepts) the packets first.
        let chain = |hook: &str| {
            format!(
                "  chain {hook} {{\n    type filter hook {hook} priority filter - 10; policy accept;\n    {to} drop\n    {from} drop\n  }}\n"
            )
        };
        let ruleset = format!(
            "table inet {table} {{\n{}{}}}\n",
            chain("input"),
            chain("output")
        );
        let mut nft = namespace
            .command("nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nft starts");
        std::io::Write::write_all(
            &mut nft.stdin.take().expect("piped stdin"),
            ruleset.as_bytes(),
        )
        .expect("the rules reach nft");
        let output = nft.wait_with_output().expect("nft ends");
        assert!(
            output.status.success(),
            "nft refused the blackhole ({}):\n{ruleset}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        Self { namespace, table }
    }
}

impl Drop for Blackhole<'_> {
    fn drop(&mut self) {
        let deleted = run_for_cleanup(self.namespace.command("nft").args([
            "delete",
            "table",
            "inet",
            &self.table,
        ]));
        if let Err(what) = deleted {
            cleanup_failed(&what);
        }
    }
}

/// A TCP relay that delays every chunk of bytes by a fixed one-way delay in
/// each direction: 150 ms each way makes a 300 ms round trip.
///
/// Each chunk is stamped when it arrives and written on at arrival plus
/// the delay; chunks keep their order, and reading never waits for
/// writing, so the relay delays bytes without limiting how many are in
/// flight (a chunk is not held up by the delay of the one before it). An
/// end of stream (FIN) is passed on after the same delay; a reset arrives
/// as an end of stream too.
///
/// It is a TCP endpoint on both sides, unlike a slow network: it
/// acknowledges segments and answers keepalive probes itself, at once, and
/// its connect to the target starts when a client's connect has already
/// succeeded (if the target refuses, the client sees its connection
/// closed). So it shows round trips as the application sees them (TLS
/// handshakes, replies, dates), not TCP-level ones: keepalive, user
/// timeouts or retransmissions behind it see a fast peer.
///
/// It runs on a thread of its own with its own runtime, so it works from
/// synchronous and async tests alike, in the network namespace of the
/// thread that starts it: start it inside [`Namespace::run`] to relay
/// inside a namespace. Dropping it stops it and closes its connections.
#[derive(Debug)]
pub struct LatencyRelay {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl LatencyRelay {
    /// Listens on `listen` (port 0 picks one; see [`LatencyRelay::addr`])
    /// and relays each connection to `target` with `one_way` delay in each
    /// direction.
    pub fn start(listen: SocketAddr, target: SocketAddr, one_way: Duration) -> Self {
        let (bound_sender, bound) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("latency-relay".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the relay's runtime");
                runtime.block_on(async move {
                    let listener = match TcpListener::bind(listen).await {
                        Ok(listener) => listener,
                        Err(err) => {
                            let _ = bound_sender.send(Err(err));
                            return;
                        }
                    };
                    let _ = bound_sender.send(listener.local_addr());
                    loop {
                        tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => {
                                if let Ok((inbound, _)) = accepted {
                                    tokio::spawn(relay_connection(inbound, target, one_way));
                                }
                            }
                        }
                    }
                });
                // Dropping the runtime drops every connection task: their
                // sockets close.
            })
            .expect("the relay's thread starts");
        let addr = bound
            .recv()
            .expect("the relay reports its address")
            .unwrap_or_else(|err| panic!("the relay cannot listen on {listen}: {err}"));
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The address the relay listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for LatencyRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn relay_connection(inbound: TcpStream, target: SocketAddr, one_way: Duration) {
    let Ok(outbound) = TcpStream::connect(target).await else {
        return;
    };
    // Chunks go on as they are released: Nagle's algorithm would hold small
    // ones back for an acknowledgement and add delay of its own.
    let _ = inbound.set_nodelay(true);
    let _ = outbound.set_nodelay(true);
    let (inbound_read, inbound_write) = inbound.into_split();
    let (outbound_read, outbound_write) = outbound.into_split();
    tokio::join!(
        delayed_copy(inbound_read, outbound_write, one_way),
        delayed_copy(outbound_read, inbound_write, one_way),
    );
}

/// Copies `from` to `to`, each chunk released `delay` after it arrived.
/// `None` in the queue is the end of the stream.
async fn delayed_copy(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (queue, mut queued) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Option<Vec<u8>>)>();
    let reading = async move {
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = from.read(&mut buffer).await;
            let due = tokio::time::Instant::now() + delay;
            let chunk = match read {
                Ok(0) | Err(_) => None,
                Ok(n) => Some(buffer[..n].to_vec()),
            };
            let end = chunk.is_none();
            if queue.send((due, chunk)).is_err() || end {
                return;
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = queued.recv().await {
            tokio::time::sleep_until(due).await;
            match chunk {
                Some(bytes) => {
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reading, writing);
}
