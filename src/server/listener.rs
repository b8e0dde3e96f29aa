//! Accepting clients (SPEC §1, §6, §7, §8): the accept loop, and each
//! connection's steps from the TCP accept to the end of its session.
//!
//! The accept loop never awaits a handshake. It keeps accepting, and puts
//! each socket in its source's queue for a *handshake slot*
//! ([`super::handshake_queue`]: at most `max_handshakes` at once, shared
//! fairly between sources). Each accepted socket gets its own task, which
//! takes it through its steps:
//!
//! 1. its turn for a hello slot (or being shed when too many wait, or
//!    closed unread if its client gave up while it waited);
//! 2. its ClientHello ([`super::client_hello`]), bounded by the handshake
//!    deadline from the start of that turn;
//! 3. its turn for a handshake slot, which only connections with a whole
//!    ClientHello wait for (shed or abandoned likewise);
//! 4. the rest of the TLS handshake ([`handshake`]), bounded by the
//!    handshake deadline from the start of that turn;
//! 5. admission ([`super::admission`]): a client slot without waiting, or
//!    a rejection (`server_full`, `address_limit`) and a clean close;
//! 6. [`run_session`]: the session ([`super::session`]) and its log line.
//!
//! The steps are generic over the stream, so that a step before the
//! handshake (reading a PROXY protocol header) fits in without widening
//! them.
//!
//! Shutdown follows tokio's graceful-shutdown pattern: one
//! [`CancellationToken`] tells every task to stop, and a [`TaskTracker`]
//! waits for them, each bounded by the shutdown grace. A handshake under
//! way when shutdown starts is finished (within the grace), so that its
//! client is told `shutting_down` and closed cleanly rather than reset.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::time::{Instant, timeout, timeout_at};
use tokio_rustls::StartHandshake;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::admission::{self, ClientCount, ClientSlot, ClientSlots};
use super::client_hello;
use super::handshake_queue::{HandshakeQueue, HandshakeSlot, WaitTicket};
use super::metrics::{HandshakeFailure, Metrics, SessionEnd};
use super::proxy;
use super::reload::CurrentTls;
use super::session;
use super::source::Source;
use super::{Config, Event, Observer};

/// First pause after a failed `accept()` (for example, out of file
/// descriptors), so the loop neither spins nor dies; it doubles up to
/// [`ACCEPT_BACKOFF_MAX`] while accepting keeps failing, and a connection
/// that closes (freeing its descriptor) ends it at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Longest pause between two attempts to accept.
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Most sockets that may wait for a handshake slot, whatever the open-file
/// limit: each costs a descriptor, a task and the kernel's buffers for the
/// bytes it sent (a few KiB), so this bounds them to tens of MiB.
const MAX_WAITING: usize = 16 * 1024;

/// What every connection task shares.
struct Shared {
    /// Limits and periods.
    config: Config,
    /// The TLS configuration new handshakes use (replaced by a reload).
    tls: Arc<CurrentTls>,
    /// What the admin endpoint reports.
    metrics: Arc<Metrics>,
    /// The counters each session adds its work to.
    session_counters: super::metrics::SessionCounters,
    /// Told when shutdown starts.
    observer: Arc<dyn Observer>,
    /// The `max_clients` client slots. A session holds its slot from the
    /// end of its handshake until its last frame is written.
    client_slots: Arc<ClientSlots>,
    /// The hello slots (a connection reading its ClientHello holds one),
    /// and the sockets waiting for one.
    hellos: Arc<HandshakeQueue>,
    /// The handshake slots (a connection whose ClientHello is complete
    /// holds one for the rest of its handshake), and the connections
    /// waiting for one.
    handshakes: Arc<HandshakeQueue>,
    /// Cancelled once, when the server starts shutting down.
    shutdown: CancellationToken,
    /// Failed or timed-out handshakes, reported at most once a second.
    handshake_failures: RateLimitedLog,
    /// Clients turned away by a full server, reported at most once a second.
    rejections: RateLimitedLog,
    /// Waiting sockets shed to make room, reported at most once a second.
    sheds: RateLimitedLog,
    /// Failed `accept()` calls, reported at most once a second.
    accept_failures: RateLimitedLog,
    /// Told each time a connection's socket is closed: a descriptor is free
    /// again, for an accept loop that ran out of them.
    socket_closed: Notify,
    /// Gives freed memory back when the last client leaves, at most once a
    /// second (clients that come and go one at a time would otherwise pay
    /// for it on every departure).
    memory_release: OncePerSecond,
    /// Sessions whose connection is not yet dropped: from taking a client
    /// slot until the socket and every buffer are freed (one
    /// [`AllocatedSession`] each). A slot is given back earlier (before the
    /// final close), so this, not the slots, says when memory can be
    /// released.
    sessions: AtomicUsize,
}

impl Shared {
    /// Clients connected right now.
    fn connected(&self) -> usize {
        self.client_slots.connected()
    }

    /// Completes once shutdown has started and its grace has passed: every
    /// step of a connection ends by then.
    async fn grace_over(&self) {
        self.shutdown.cancelled().await;
        tokio::time::sleep(self.config.shutdown_grace).await;
    }
}

/// How many sockets may wait for a handshake slot: as many as the
/// open-file limit holds beside the clients and the handshakes (so that a
/// burst from one address is taken in rather than left to overflow the
/// kernel's backlog), at most [`MAX_WAITING`], never fewer than the slots.
fn waiting_bound(config: &Config) -> usize {
    let files = crate::limits::open_file_limit();
    let spare = files
        .saturating_sub((config.max_clients + config.max_handshakes) as u64)
        .saturating_sub(crate::limits::SERVER_SPARE_FILES);
    let spare = usize::try_from(spare).unwrap_or(usize::MAX);
    spare.min(MAX_WAITING).max(config.max_handshakes)
}

/// Hello slots per handshake slot: reading a ClientHello costs a task and
/// a few KiB, a handshake's own work far more, so there are many more of
/// the first (see [`super::client_hello`]).
const HELLO_SLOTS_PER_HANDSHAKE: usize = 32;

/// How many connections may read their ClientHello at once: as many as
/// [`HELLO_SLOTS_PER_HANDSHAKE`] says, within [`MAX_WAITING`], never fewer
/// than the handshake slots.
fn hello_slots(config: &Config) -> usize {
    config
        .max_handshakes
        .saturating_mul(HELLO_SLOTS_PER_HANDSHAKE)
        .min(MAX_WAITING)
        .max(config.max_handshakes)
}

/// One session counted in [`Shared::sessions`], from its admission until
/// its connection and buffers are dropped. When the last one goes, the
/// freed memory is given back (glibc would keep it otherwise).
struct AllocatedSession {
    shared: Arc<Shared>,
}

impl AllocatedSession {
    fn new(shared: Arc<Shared>) -> Self {
        shared.sessions.fetch_add(1, Ordering::AcqRel);
        Self { shared }
    }
}

impl Drop for AllocatedSession {
    fn drop(&mut self) {
        let shared = &self.shared;
        if shared.sessions.fetch_sub(1, Ordering::AcqRel) == 1 && shared.memory_release.ready() {
            crate::limits::release_free_memory();
        }
    }
}

/// What [`accept_loop`] serves with, from the [`super::Server`].
pub(super) struct Serving {
    /// The TLS configuration new handshakes use (replaced by a reload).
    pub(super) tls: Arc<CurrentTls>,
    /// Limits and periods.
    pub(super) config: Config,
    /// What the admin endpoint reports.
    pub(super) metrics: Arc<Metrics>,
    /// Told when shutdown starts.
    pub(super) observer: Arc<dyn Observer>,
    /// The client slots.
    pub(super) clients: ClientCount,
}

/// Serves clients on `listener` until `shutdown` completes, then stops
/// accepting, lets every session answer what it has received, send
/// `shutting_down` and close, and returns once they are done (or the
/// shutdown grace has passed).
pub(super) async fn accept_loop(
    listener: TcpListener,
    serving: Serving,
    shutdown: impl std::future::Future,
) {
    let tracker = TaskTracker::new();
    let shared = Arc::new(Shared::new(serving));
    tokio::pin!(shutdown);
    let mut backoff = ACCEPT_BACKOFF;
    loop {
        let accepted = tokio::select! {
            biased;
            _ = &mut shutdown => break,
            accepted = accept(&listener, &shared.hellos) => accepted,
        };
        match accepted {
            Ok((tcp, peer)) => {
                backoff = ACCEPT_BACKOFF;
                shared.metrics.connections.inc();
                let ticket = shared.hellos.enqueue(Source::from(peer.ip()));
                let shared = shared.clone();
                // Boxed, so that tokio moves a pointer, not the future:
                // it copies a task's future into the task, and writes the
                // task's whole stage over it twice when it finishes.
                tracker.spawn(Box::pin(async move {
                    connection(tcp, peer, ticket, &shared).await;
                    // Everything of the connection is dropped by now.
                    shared.socket_closed.notify_one();
                }));
            }
            Err(err) => {
                shared
                    .accept_failures
                    .report(None, "accept failed; retrying", Some(&err));
                tokio::select! {
                    _ = &mut shutdown => break,
                    () = tokio::time::sleep(backoff) => {}
                    () = shared.socket_closed.notified() => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
            }
        }
    }
    drop(listener);
    shut_down(&shared, tracker).await;
}

impl Shared {
    fn new(serving: Serving) -> Self {
        let Serving {
            tls,
            config,
            metrics,
            observer,
            clients,
        } = serving;
        Self {
            tls,
            client_slots: clients.slots(),
            hellos: HandshakeQueue::new(
                hello_slots(&config),
                waiting_bound(&config),
                metrics.hellos_in_progress.clone(),
            ),
            handshakes: HandshakeQueue::new(
                config.max_handshakes,
                waiting_bound(&config),
                metrics.handshakes_in_progress.clone(),
            ),
            session_counters: metrics.session_counters(),
            metrics,
            observer,
            shutdown: CancellationToken::new(),
            handshake_failures: RateLimitedLog::default(),
            rejections: RateLimitedLog::default(),
            sheds: RateLimitedLog::default(),
            accept_failures: RateLimitedLog {
                warning: true,
                ..RateLimitedLog::default()
            },
            socket_closed: Notify::new(),
            memory_release: OncePerSecond::default(),
            sessions: AtomicUsize::new(0),
            config,
        }
    }
}

/// Tells every connection to finish, waits for them (bounded by the
/// shutdown grace), and reports what the rate limits held back.
async fn shut_down(shared: &Shared, tracker: TaskTracker) {
    shared.metrics.stop_accepting();
    shared.observer.event(&Event::Stopping {
        clients: shared.connected(),
    });
    info!(clients = shared.connected(), "shutting down");
    shared.shutdown.cancel();
    tracker.close();
    // Each session bounds itself by the grace; this is only a backstop.
    let backstop = shared.config.shutdown_grace + Duration::from_secs(1);
    if timeout(backstop, tracker.wait()).await.is_err() {
        warn!("connections still open after {backstop:?}; dropping them");
    }
    shared
        .handshake_failures
        .flush("handshake failures not reported yet");
    shared.rejections.flush("rejections not reported yet");
    shared.sheds.flush("sockets shed not reported yet");
    shared
        .accept_failures
        .flush("accept failures not reported yet");
    info!("stopped");
}

/// Waits until the hello queue has room, then for a connection.
async fn accept(
    listener: &TcpListener,
    hellos: &HandshakeQueue,
) -> io::Result<(TcpStream, SocketAddr)> {
    hellos.room().await;
    listener.accept().await
}

/// Who a connection is from.
#[derive(Debug, Clone, Copy)]
struct Peer {
    /// The client's address: the socket's, or the one a trusted
    /// balancer's PROXY protocol header names.
    addr: SocketAddr,
    /// The balancer's address, when a header named the client.
    via: Option<SocketAddr>,
}

/// One connection, from the TCP accept to the end of its session.
async fn connection(
    mut tcp: TcpStream,
    socket: SocketAddr,
    ticket: WaitTicket,
    shared: &Arc<Shared>,
) {
    // Frames are small and interactive: send them without Nagle's delay.
    let _ = tcp.set_nodelay(true);
    crate::limits::bound_socket_buffers(&tcp);
    crate::dead_peer::watch(&tcp, shared.config.dead_peer_timeout);
    let trusted = shared.config.proxies.trusts(socket.ip());
    let Some((peer, ticket)) = identify(&mut tcp, socket, ticket, trusted, shared).await else {
        return;
    };
    let Some(hello_slot) = wait_for_turn(ticket, &tcp, peer.addr, shared).await else {
        return;
    };
    // Each phase's deadline counts from its turn, not the accept: a burst
    // of thousands from one address waits its turn without timing out.
    let deadline = Instant::now() + shared.config.handshake_timeout;
    if !trusted
        && !shared.config.proxies.is_empty()
        && unexpected_header(&tcp, socket, deadline, shared).await
    {
        return;
    }
    let Some(hello) = client_hello(tcp, peer.addr, deadline, shared).await else {
        return;
    };
    let ticket = shared.handshakes.enqueue(Source::from(peer.addr.ip()));
    drop(hello_slot);
    let Some(handshake_slot) = wait_for_turn(ticket, &hello.tcp, peer.addr, shared).await else {
        return;
    };
    let turn = Instant::now();
    let deadline = turn + shared.config.handshake_timeout;
    let Some(stream) = handshake(hello, peer.addr, deadline, shared).await else {
        return;
    };
    shared
        .metrics
        .handshake_duration
        .observe(turn.elapsed().as_secs_f64());
    admit(stream, peer, handshake_slot, shared).await;
}

/// Who a connection is from, and the queue it waits in: the socket's
/// address, or, from a trusted balancer, the client its PROXY protocol
/// header names (read while waiting in the balancer's queue; then the
/// connection waits in the client's, as any connection from there would).
/// `None` if the header is missing or refused.
async fn identify(
    tcp: &mut TcpStream,
    socket: SocketAddr,
    ticket: WaitTicket,
    trusted: bool,
    shared: &Shared,
) -> Option<(Peer, WaitTicket)> {
    if !trusted {
        return Some((Peer::direct(socket), ticket));
    }
    match proxy_header(tcp, socket, shared).await? {
        proxy::Header::Client(client) => Some((
            Peer {
                addr: client,
                via: Some(socket),
            },
            ticket.requeue(Source::from(client.ip())),
        )),
        proxy::Header::Local => Some((Peer::direct(socket), ticket)),
    }
}

/// A client whose handshake is done: its session if it gets a client
/// slot, or a rejection and a clean close.
async fn admit<IO>(
    stream: Box<TlsStream<IO>>,
    peer: Peer,
    handshake_slot: HandshakeSlot,
    shared: &Arc<Shared>,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match shared.client_slots.admit(Source::from(peer.addr.ip())) {
        Ok(slot) => {
            // The handshake is over: the next connection may start its own.
            drop(handshake_slot);
            run_session(stream, peer, slot, AllocatedSession::new(shared.clone())).await;
        }
        Err(rejection) => {
            shared.metrics.rejections.get(rejection.metric_code()).inc();
            shared
                .rejections
                .report(Some(peer.addr), "connection rejected", Some(&rejection));
            // The rejection keeps its handshake slot until it is closed, so
            // a flood at a full server is bounded like handshakes are.
            admission::reject(stream, rejection).await;
            drop(handshake_slot);
        }
    }
}

impl Peer {
    /// A connection whose socket's address is the client's.
    fn direct(addr: SocketAddr) -> Self {
        Self { addr, via: None }
    }
}

/// The PROXY protocol header a trusted balancer sends first, within the
/// handshake deadline from the accept; `None` (after a rate-limited log
/// line) if it is missing, malformed or late, or if the shutdown grace
/// ends first.
async fn proxy_header(
    tcp: &mut TcpStream,
    balancer: SocketAddr,
    shared: &Shared,
) -> Option<proxy::Header> {
    let limit = shared.config.handshake_timeout;
    let refusal = tokio::select! {
        header = timeout(limit, proxy::read_header(tcp)) => match header {
            Ok(Ok(header)) => return Some(header),
            Ok(Err(refusal)) => refusal,
            Err(_) => proxy::Refusal::TimedOut,
        },
        () = shared.grace_over() => return None,
    };
    proxy_failure(
        shared,
        balancer,
        "PROXY protocol header refused",
        Some(&refusal),
    );
    None
}

/// Whether a connection from outside `--proxy-protocol-from` begins with a
/// PROXY protocol header, which it must not send; if so, after a
/// rate-limited log line, it is to be closed. Waits for the first bytes
/// until `deadline` at most.
async fn unexpected_header(
    tcp: &TcpStream,
    from: SocketAddr,
    deadline: Instant,
    shared: &Shared,
) -> bool {
    let sent = timeout_at(deadline, proxy::looks_like_a_header(tcp))
        .await
        .unwrap_or(false);
    if sent {
        proxy_failure(
            shared,
            from,
            "sent a PROXY protocol header, but is not in --proxy-protocol-from",
            None,
        );
    }
    sent
}

/// Counts and reports a connection ended for its PROXY protocol header.
fn proxy_failure(
    shared: &Shared,
    from: SocketAddr,
    message: &'static str,
    error: Option<&dyn fmt::Display>,
) {
    shared
        .metrics
        .handshake_failures
        .get(HandshakeFailure::ProxyHeader)
        .inc();
    shared.handshake_failures.report(Some(from), message, error);
}

/// The socket's turn for a handshake slot; `None` if it is shed to make
/// room, or if its client closed while it waited (each after a
/// rate-limited log line), or if the shutdown grace ends first. The wait
/// has no deadline of its own: the sockets waiting are bounded in number,
/// and the busiest address's are shed first.
async fn wait_for_turn(
    ticket: WaitTicket,
    tcp: &TcpStream,
    peer: SocketAddr,
    shared: &Shared,
) -> Option<HandshakeSlot> {
    let turn = tokio::select! {
        turn = ticket.turn() => turn,
        () = shared.grace_over() => return None,
    };
    match turn {
        Ok(_) if closed_by_peer(tcp) => {
            shared
                .metrics
                .handshake_failures
                .get(HandshakeFailure::Abandoned)
                .inc();
            shared.handshake_failures.report(
                Some(peer),
                "closed by the client while waiting for its handshake",
                None,
            );
            None
        }
        Ok(slot) => Some(slot),
        Err(_shed) => {
            shared
                .metrics
                .handshake_failures
                .get(HandshakeFailure::Shed)
                .inc();
            shared.sheds.report(
                Some(peer),
                "closed before its handshake: too many connections waiting, most of them from its address",
                None,
            );
            None
        }
    }
}

/// Whether the peer has already closed its end of `tcp` (or reset it), as
/// far as the runtime has been told: a client that gave up while its
/// socket waited, typically at its own connect timeout in a reconnect
/// storm. Such a client can never finish a handshake (it would still have
/// to send its Finished), so the server's part, the costly one, would be
/// wasted on it, and in a storm that waste delays every live client behind
/// it. Asks the readiness the runtime already holds, with no system call;
/// a close it has not seen yet is handshaken and fails as before.
fn closed_by_peer(tcp: &TcpStream) -> bool {
    let ready = std::pin::pin!(tcp.ready(tokio::io::Interest::READABLE));
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match ready.poll(&mut cx) {
        std::task::Poll::Ready(Ok(ready)) => ready.is_read_closed(),
        std::task::Poll::Ready(Err(_)) => true,
        std::task::Poll::Pending => false,
    }
}

/// The connection's ClientHello (see [`super::client_hello`]), before
/// `deadline`; `None` if it is refused or late (after a rate-limited log
/// line), or if the shutdown grace ends first.
async fn client_hello(
    tcp: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    shared: &Shared,
) -> Option<client_hello::Hello> {
    let failure = tokio::select! {
        hello = timeout_at(deadline, client_hello::read(tcp)) => match hello {
            Ok(Ok(hello)) => return Some(hello),
            Ok(Err(err)) => HandshakeFailed::Error(err),
            Err(_) => HandshakeFailed::TimedOut("TLS handshake timed out before a complete ClientHello"),
        },
        () = shared.grace_over() => return None,
    };
    handshake_failed(shared, peer, &failure);
    None
}

/// How a handshake ended before it completed.
enum HandshakeFailed {
    /// An error: the peer's bytes, or its connection.
    Error(std::io::Error),
    /// Its deadline passed; what it was waiting for.
    TimedOut(&'static str),
}

/// Counts and reports a handshake that ended before it completed.
fn handshake_failed(shared: &Shared, peer: SocketAddr, failure: &HandshakeFailed) {
    let (reason, message, error) = match failure {
        HandshakeFailed::Error(err) => (
            HandshakeFailure::Failed,
            "TLS handshake failed",
            Some(err as &dyn fmt::Display),
        ),
        HandshakeFailed::TimedOut(message) => (HandshakeFailure::TimedOut, *message, None),
    };
    shared.metrics.handshake_failures.get(reason).inc();
    shared.handshake_failures.report(Some(peer), message, error);
}

/// The rest of the TLS handshake, after the ClientHello, before
/// `deadline`; `None` if it fails or times out
/// (after a rate-limited log line), or if the shutdown grace ends first. A
/// handshake is finished even after shutdown starts, so that its client is
/// told and closed cleanly.
///
/// The stream comes back boxed. A `TlsStream` is about 1.2 KiB, and every
/// async function it is passed to by value keeps it twice in its future
/// (the argument and the local it is moved into); unboxed, the
/// connection's task is a future several times that size, copied whole
/// each time the task moves it. Boxed, the stream is allocated and copied
/// once (what that saved per handshake: BENCHMARKS.md, "Where the
/// handshake's extra instructions went").
async fn handshake(
    hello: client_hello::Hello,
    peer: SocketAddr,
    deadline: Instant,
    shared: &Shared,
) -> Option<Box<TlsStream<TcpStream>>> {
    let rest = StartHandshake::from_parts(hello.accepted, hello.tcp).into_stream(shared.tls.get());
    let failure = tokio::select! {
        handshake = timeout_at(deadline, rest) => match handshake {
            Ok(Ok(stream)) => return Some(Box::new(stream)),
            Ok(Err(err)) => HandshakeFailed::Error(err),
            Err(_) => HandshakeFailed::TimedOut("TLS handshake timed out"),
        },
        () = shared.grace_over() => return None,
    };
    handshake_failed(shared, peer, &failure);
    None
}

/// An admitted client's session, bounded by the shutdown grace once
/// shutdown starts, and its one log line.
async fn run_session<IO>(
    stream: Box<TlsStream<IO>>,
    peer: Peer,
    slot: ClientSlot,
    live: AllocatedSession,
) where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let shared = &*live.shared;
    let started = Instant::now();
    let log = SessionLog::new(&stream, peer);
    log.joined(shared.connected());
    let session = session::run(
        stream,
        &shared.config,
        &shared.shutdown,
        slot,
        &shared.session_counters,
    );
    tokio::select! {
        report = session => {
            count(&shared.metrics, &report);
            log.left(&report, started.elapsed());
        }
        () = shared.grace_over() => {
            shared.metrics.sessions_ended.get(SessionEnd::GraceExpired).inc();
            log.dropped(started.elapsed());
        }
    }
    // The session, its stream and its buffers are dropped by now; `live`
    // goes last.
}

/// What a session's log lines say about it. One INFO line per client,
/// when it leaves, with everything about it (as TCP proxies log a
/// connection at its end); a second line per client would cost each
/// handshake more than everything else nea adds to it, so the join line
/// is for `--verbose`.
struct SessionLog {
    peer: SocketAddr,
    via: Option<SocketAddr>,
    version: std::borrow::Cow<'static, str>,
    cipher: &'static str,
    /// The client certificate's subject, under mutual TLS.
    subject: Option<String>,
}

impl SessionLog {
    fn new<IO>(stream: &TlsStream<IO>, peer: Peer) -> Self {
        let (version, cipher, subject) = describe(stream);
        Self {
            peer: peer.addr,
            via: peer.via,
            version,
            cipher,
            subject,
        }
    }

    fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or("-")
    }

    fn joined(&self, clients: usize) {
        debug!(
            peer = %self.peer,
            via = self.via.map(tracing::field::display),
            tls = %self.version,
            cipher = self.cipher,
            subject = self.subject(),
            clients,
            "client connected"
        );
    }

    /// The leave line. `lines` counts the lines answered with their
    /// reply, as `nea_lines_answered_total` does, and `line_errors` those
    /// answered by an error frame; `duration` is in seconds.
    fn left(&self, report: &session::Report, duration: Duration) {
        info!(
            peer = %self.peer,
            via = self.via.map(tracing::field::display),
            tls = %self.version,
            cipher = self.cipher,
            subject = self.subject(),
            duration = duration.as_secs_f64(),
            lines = report.lines - report.too_long - report.invalid_utf8,
            line_errors = report.too_long + report.invalid_utf8,
            dates = report.dates,
            reason = &*report.reason.text(),
            clients = report.clients,
            "client left"
        );
    }

    fn dropped(&self, duration: Duration) {
        warn!(
            peer = %self.peer,
            via = self.via.map(tracing::field::display),
            duration = duration.as_secs_f64(),
            reason = "shutdown grace expired",
            "client dropped"
        );
    }
}

/// Counts how a finished session ended (its work was counted as it went).
fn count(metrics: &Metrics, report: &session::Report) {
    if matches!(report.reason, session::EndReason::SlowReader(_)) {
        metrics.slow_reader_drops.inc();
    }
    metrics.sessions_ended.get(report.reason.metric()).inc();
}

/// The negotiated protocol version, cipher suite and, under mutual TLS, the
/// client certificate's subject, for the log line.
fn describe<IO>(
    stream: &TlsStream<IO>,
) -> (std::borrow::Cow<'static, str>, &'static str, Option<String>) {
    let (_, session) = stream.get_ref();
    let (version, cipher) = crate::tls::negotiated(session);
    let subject = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(crate::tls::subject);
    (version, cipher, subject)
}

/// Says yes at most once per second: the first call in any one-second
/// window. No timer: an idle server that is never asked does no work.
#[derive(Default)]
struct OncePerSecond {
    /// When the last call said yes.
    last: Mutex<Option<Instant>>,
}

impl OncePerSecond {
    const WINDOW: Duration = Duration::from_secs(1);

    fn ready(&self) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let due = last.is_none_or(|at| now.duration_since(at) >= Self::WINDOW);
        if due {
            *last = Some(now);
        }
        due
    }
}

/// A log line that a flood cannot turn into a storm: the first event in any
/// one-second window is logged at INFO (WARN if `warning`) with the number
/// of events suppressed since the last one; the others go to DEBUG.
#[derive(Default)]
struct RateLimitedLog {
    /// Whether the events are a problem of the server's own (WARN), not of
    /// a peer (INFO).
    warning: bool,
    /// Whether this event may be logged at INFO.
    window: OncePerSecond,
    /// Events sent to DEBUG since the last INFO line.
    suppressed: AtomicU64,
}

impl RateLimitedLog {
    /// Logs the count of events not reported yet, if any: at shutdown, so
    /// that the last ones of a flood are not lost from the record.
    fn flush(&self, what: &str) {
        let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
        if suppressed > 0 {
            info!(suppressed, "{what}");
        }
    }

    /// Logs one event: `message` says what happened, in words of nea's
    /// own; its facts are fields: `peer` if it concerns one connection,
    /// and `error`, what went wrong, which may quote a peer's bytes.
    fn report(
        &self,
        peer: Option<SocketAddr>,
        message: &'static str,
        error: Option<&dyn fmt::Display>,
    ) {
        let peer = peer.map(tracing::field::display);
        let error = error.map(tracing::field::display);
        if self.window.ready() {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            if self.warning {
                warn!(peer, error, suppressed, "{message}");
            } else {
                info!(peer, error, suppressed, "{message}");
            }
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            debug!(peer, error, "{message}");
        }
    }
}
