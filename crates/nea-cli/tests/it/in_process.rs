//! A server run in the test's own process, through the library's one entry
//! point (`nea::server::Server::builder`), as an embedder runs it. Tests
//! whose subject is the server's behaviour use it and watch its state (its
//! metrics, its client count, its events), not its log text; tests whose
//! subject is a program (flags, exit statuses, signals, systemd, HAProxy,
//! the terminal) run the real binaries (`common::Server`).
//!
//! The server has a runtime and a thread of its own, so that a test may
//! block (waiting for a `clientcli` process, say) without stopping it, and
//! its clock is never the test's paused one.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nea::server::{ClientCount, Config, ConfigBuilder, Event, Identity, Metrics, Server};

use crate::common::{Client, PATIENCE, Pki, clientcli_for};

/// The events a server reported, in order.
#[derive(Default)]
struct Recorded {
    events: Mutex<Vec<Event>>,
}

impl nea::server::Observer for Recorded {
    fn event(&self, event: &Event) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.clone());
    }
}

/// What the server's thread hands back once it is bound.
struct Bound {
    addr: SocketAddr,
    admin: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    clients: ClientCount,
}

/// A running in-process server on 127.0.0.1 with test certificates.
pub struct InProcess {
    pub addr: SocketAddr,
    pub pki: Pki,
    /// Where its admin endpoint listens, if it has one.
    pub admin: Option<SocketAddr>,
    metrics: Arc<Metrics>,
    clients: ClientCount,
    events: Arc<Recorded>,
    /// Stops the server; `None` once sent.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The server's thread; `None` once joined.
    thread: Option<std::thread::JoinHandle<()>>,
    /// The name of the server's thread and of its runtime's threads.
    thread_name: String,
}

impl InProcess {
    /// A server with `config`.
    pub fn start(config: ConfigBuilder) -> Self {
        let config = config.build().expect("a valid configuration");
        Self::start_with(Pki::new(), move |builder| builder.config(config))
    }

    /// A server with the test certificates of `pki` (read from their files,
    /// so reloads work), set up further by `setup`.
    pub fn start_with(
        pki: Pki,
        setup: impl FnOnce(nea::server::ServerBuilder) -> nea::server::ServerBuilder + Send + 'static,
    ) -> Self {
        let identity = Identity::Files {
            cert: pki.cert.clone(),
            key: pki.key.clone(),
        };
        let events = Arc::new(Recorded::default());
        let observer = events.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let name = thread_name();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn({
                let name = name.clone();
                move || serve(&name, identity, observer, setup, &bound_tx, stopped)
            })
            .expect("a thread for the server");
        let bound = bound_rx.recv().expect("the server started");
        Self {
            thread_name: name,
            addr: bound.addr,
            pki,
            admin: bound.admin,
            metrics: bound.metrics,
            clients: bound.clients,
            events,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// The server's metrics now, in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.metrics.encode()
    }

    /// The value of one series (name and labels, as exported), 0 if absent.
    pub fn sample(&self, series: &str) -> f64 {
        crate::common::sample_if_any(&self.metrics(), series).unwrap_or(0.0)
    }

    /// Waits until `series` satisfies `holds`; its value then. Async, so
    /// that the test's own tasks go on meanwhile.
    pub async fn until(&self, series: &str, holds: impl Fn(f64) -> bool) -> f64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let value = self.sample(series);
            if holds(value) {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is {value}, never as expected within {PATIENCE:?}:\n{}",
                self.metrics()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Waits until `series` is at least `value`.
    pub async fn until_at_least(&self, series: &str, value: f64) -> f64 {
        self.until(series, |now| now >= value).await
    }

    /// Sessions ended so far, whatever the reason.
    pub fn ended(&self) -> f64 {
        crate::common::sum_of(&self.metrics(), "nea_sessions_ended_total")
    }

    /// Waits until `n` sessions have ended, whatever the reason.
    pub async fn until_ended(&self, n: f64) {
        let deadline = Instant::now() + PATIENCE;
        while self.ended() < n {
            assert!(
                Instant::now() < deadline,
                "{} sessions ended, not {n}, after {PATIENCE:?}:\n{}",
                self.ended(),
                self.metrics()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Clients connected now.
    pub fn connected(&self) -> usize {
        self.clients.connected()
    }

    /// Waits until exactly `n` clients are connected.
    pub async fn until_connected(&self, n: usize) {
        let deadline = Instant::now() + PATIENCE;
        while self.connected() != n {
            assert!(
                Instant::now() < deadline,
                "{} clients connected, not {n}, after {PATIENCE:?}",
                self.connected()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Context switches (voluntary and not) of the server's threads so far:
    /// how often it was woken.
    pub fn context_switches(&self) -> u64 {
        let tasks = std::fs::read_dir("/proc/self/task").expect("proc tasks");
        tasks
            .filter_map(Result::ok)
            .filter(|task| {
                std::fs::read_to_string(task.path().join("comm"))
                    .is_ok_and(|comm| comm.trim_end() == self.thread_name)
            })
            .map(|task| {
                let status =
                    std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
                ["voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:"]
                    .iter()
                    .map(|field| crate::common::field_value(&status, field))
                    .sum::<u64>()
            })
            .sum()
    }

    /// Waits until the server has reported an event that `wanted` accepts;
    /// that event.
    pub async fn until_event(&self, wanted: impl Fn(&Event) -> bool) -> Event {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(event) = self.events().into_iter().find(|event| wanted(event)) {
                return event;
            }
            assert!(
                Instant::now() < deadline,
                "no such event within {PATIENCE:?}: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The events the server reported so far.
    pub fn events(&self) -> Vec<Event> {
        self.events
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A TLS client of this server, trusting the test CA.
    pub async fn connect(&self) -> Client {
        Client::connect(self.addr, self.pki.client_config())
            .await
            .expect("client connects")
    }

    /// A `clientcli` command aimed at this server, trusting its test CA.
    pub fn clientcli(&self) -> Command {
        clientcli_for(self.addr.port(), &self.pki.ca_pem)
    }

    /// Asks the server to shut down and waits until `run` has returned.
    pub fn stop(mut self) {
        self.shut_down();
    }

    /// Starts the shutdown without waiting for it (the server answers,
    /// says `shutting_down` and closes meanwhile).
    pub fn begin_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    fn shut_down(&mut self) {
        self.begin_shutdown();
        if let Some(thread) = self.thread.take() {
            let joined = thread.join();
            if !std::thread::panicking() {
                joined.expect("the server's thread ends without a panic");
            }
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// The server's thread: a runtime of its own whose threads are called
/// `name`, the server bound as `setup` says, what it bound sent on `bound`,
/// and served until `stopped`.
fn serve(
    name: &str,
    identity: Identity,
    observer: Arc<Recorded>,
    setup: impl FnOnce(nea::server::ServerBuilder) -> nea::server::ServerBuilder,
    bound: &std::sync::mpsc::Sender<Bound>,
    stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("a runtime for the server");
    runtime.block_on(async move {
        let builder = Server::builder(identity)
            .listen_on("127.0.0.1:0".parse().expect("addr"))
            .observer(observer);
        let server = setup(builder).bind().await.expect("the server binds");
        let sent = bound.send(Bound {
            addr: server.local_addr(),
            admin: server.admin_addr(),
            metrics: server.metrics(),
            clients: server.clients(),
        });
        if sent.is_ok() {
            server.run(stopped).await;
        }
    });
}

/// A thread name of its own for each server of this process (at most 15
/// bytes, as Linux keeps them), to tell its threads from the test's.
fn thread_name() -> String {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("in-process-{n}")
}

/// A configuration builder with a date period of `period`.
pub fn dated(period: Duration) -> ConfigBuilder {
    Config::builder().date_period(period)
}
