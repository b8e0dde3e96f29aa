//! The server's metrics (SPEC §11), in the Prometheus text format
//! (`prometheus-client`), served by [`super::admin`].
//!
//! Every labelled counter is a [`CounterSet`]: one counter per value of
//! its label, each exported from the start at 0, because a series that
//! appears only at its first event is invisible to `increase()` and an
//! alert on it misses that event. The values are enums here, so a count is
//! an index into the set, never a lookup by text.
//!
//! Nothing here costs a client anything it could measure: gauges change
//! when a client or a handshake comes or goes, a session's counts (lines,
//! line errors, dates) are folded in once, when it ends, and the only
//! per-event work is a date's lateness and a handshake's duration, one
//! histogram observation each.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// One label, `name="value"`, both fixed in the code.
type Label = [(&'static str, &'static str); 1];

/// The values one label takes, all known in advance.
pub(super) trait LabelValue: Copy + PartialEq + 'static {
    /// The label's name.
    const LABEL: &'static str;
    /// Every value, in the order they are exported.
    const ALL: &'static [Self];
    /// The value as exported.
    fn as_str(self) -> &'static str;
}

/// One counter per value of a label, registered as one family, every
/// value present from the start. Invariant: `counters[i]` counts
/// `L::ALL[i]`.
pub(super) struct CounterSet<L: LabelValue> {
    counters: Vec<Counter>,
    label: PhantomData<L>,
}

impl<L: LabelValue> CounterSet<L> {
    fn register(registry: &mut Registry, (name, help): Described) -> Self {
        let family = Family::<Label, Counter>::default();
        registry.register(name, help, family.clone());
        let counters = L::ALL
            .iter()
            .map(|value| family.get_or_create(&[(L::LABEL, value.as_str())]).clone())
            .collect();
        Self {
            counters,
            label: PhantomData,
        }
    }

    /// The counter of `value`.
    pub(super) fn get(&self, value: L) -> &Counter {
        let index = L::ALL.iter().position(|v| *v == value).unwrap_or(0);
        &self.counters[index]
    }
}

/// Why a connection ended before its TLS handshake completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HandshakeFailure {
    /// The handshake failed (junk bytes, a TLS error, a reset).
    Failed,
    /// The handshake did not complete by its deadline.
    TimedOut,
    /// Closed before its turn, to make room for other sources.
    Shed,
    /// The client closed while it waited for its turn.
    Abandoned,
    /// A PROXY protocol header was missing, malformed or not allowed.
    ProxyHeader,
}

impl LabelValue for HandshakeFailure {
    const LABEL: &'static str = "reason";
    const ALL: &'static [Self] = &[
        Self::Failed,
        Self::TimedOut,
        Self::Shed,
        Self::Abandoned,
        Self::ProxyHeader,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Shed => "shed",
            Self::Abandoned => "abandoned",
            Self::ProxyHeader => "proxy_header",
        }
    }
}

/// The code a client was turned away with after its handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RejectionCode {
    /// `server_full`.
    ServerFull,
    /// `address_limit`.
    AddressLimit,
}

impl LabelValue for RejectionCode {
    const LABEL: &'static str = "code";
    const ALL: &'static [Self] = &[Self::ServerFull, Self::AddressLimit];
    fn as_str(self) -> &'static str {
        match self {
            Self::ServerFull => "server_full",
            Self::AddressLimit => "address_limit",
        }
    }
}

/// The code of an error frame that answered a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LineError {
    /// `line_too_long`.
    TooLong,
    /// `invalid_utf8`.
    InvalidUtf8,
}

impl LabelValue for LineError {
    const LABEL: &'static str = "code";
    const ALL: &'static [Self] = &[Self::TooLong, Self::InvalidUtf8];
    fn as_str(self) -> &'static str {
        match self {
            Self::TooLong => "line_too_long",
            Self::InvalidUtf8 => "invalid_utf8",
        }
    }
}

/// Whether a certificate reload took the new files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReloadResult {
    /// The new files are in use.
    Ok,
    /// They could not be used; the certificate in use was kept.
    Failed,
}

impl LabelValue for ReloadResult {
    const LABEL: &'static str = "result";
    const ALL: &'static [Self] = &[Self::Ok, Self::Failed];
    fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Failed => "failed",
        }
    }
}

/// Why a client's session ended (its leave line's reason, as a label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionEnd {
    /// The client closed cleanly.
    Closed,
    /// The client closed cleanly in the middle of a line.
    ClosedMidLine,
    /// The stream ended without TLS close_notify.
    Truncated,
    /// Reading failed (a reset, a TLS error).
    ReadFailed,
    /// Writing failed.
    WriteFailed,
    /// The client stopped reading past the write timeout.
    SlowReader,
    /// The server shut down.
    Shutdown,
    /// The shutdown grace passed before the session could close.
    GraceExpired,
}

impl LabelValue for SessionEnd {
    const LABEL: &'static str = "reason";
    const ALL: &'static [Self] = &[
        Self::Closed,
        Self::ClosedMidLine,
        Self::Truncated,
        Self::ReadFailed,
        Self::WriteFailed,
        Self::SlowReader,
        Self::Shutdown,
        Self::GraceExpired,
    ];
    fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::ClosedMidLine => "closed_mid_line",
            Self::Truncated => "truncated",
            Self::ReadFailed => "read_failed",
            Self::WriteFailed => "write_failed",
            Self::SlowReader => "slow_reader",
            Self::Shutdown => "shutdown",
            Self::GraceExpired => "grace_expired",
        }
    }
}

/// Every metric a server keeps, and the registry that encodes them: what
/// its admin endpoint serves, and what an embedder can read
/// ([`Metrics::encode`]) without one.
pub struct Metrics {
    registry: Registry,
    /// Clients connected now.
    pub(super) clients_connected: Gauge,
    /// Connections reading their TLS ClientHello now.
    pub(super) hellos_in_progress: Gauge,
    /// TLS handshakes in progress now (past their ClientHello).
    pub(super) handshakes_in_progress: Gauge,
    /// TCP connections accepted.
    pub(super) connections: Counter,
    /// Connections that ended before their handshake completed, by reason.
    pub(super) handshake_failures: CounterSet<HandshakeFailure>,
    /// Clients turned away after their handshake, by code.
    pub(super) rejections: CounterSet<RejectionCode>,
    /// Lines answered by a reply.
    pub(super) lines_answered: Counter,
    /// Lines answered by an error frame, by code.
    pub(super) line_errors: CounterSet<LineError>,
    /// Date frames sent.
    pub(super) dates_sent: Counter,
    /// Clients dropped because they stopped reading.
    pub(super) slow_reader_drops: Counter,
    /// Sessions ended, by why.
    pub(super) sessions_ended: CounterSet<SessionEnd>,
    /// Certificate reloads, by result.
    pub(super) reloads: CounterSet<ReloadResult>,
    /// How late each date was against its deadline, in seconds.
    pub(super) date_lateness: Histogram,
    /// TLS handshake time, from its turn to its end, in seconds.
    pub(super) handshake_duration: Histogram,
    /// The certificate in use's expiry, in seconds since the Unix epoch.
    certificate_expiry: Gauge,
    /// Log lines dropped because the log writer fell behind.
    log_lines_dropped: Counter,
    /// Where the log writer counts the lines it dropped, when it does;
    /// read at each scrape.
    log_drops: std::sync::Mutex<Option<LogDrops>>,
    /// False once shutdown has started (for `/healthz`).
    accepting: AtomicBool,
    /// `--max-clients`.
    max_clients: usize,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The log writer's count of the lines it dropped, and how many of them
/// the metrics have counted already.
struct LogDrops {
    /// Lines dropped so far, as the program's log writer counts them.
    dropped_so_far: Box<dyn Fn() -> u64 + Send + Sync>,
    /// Invariant: at most the last value `dropped_so_far` returned.
    counted: u64,
}

/// Whether the server takes clients now, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Health {
    /// Accepting, with a free slot.
    Serving,
    /// Every client slot is taken.
    Full,
    /// Shutdown has started.
    ShuttingDown,
}

/// A metric's name (without the `nea_` prefix, and without `_total` or
/// the unit, which the encoder adds) and its help text.
type Described = (&'static str, &'static str);

const CLIENTS_CONNECTED: Described = ("clients_connected", "Clients connected now");
const CLIENTS_MAX: Described = (
    "clients_max",
    "Most clients connected at once (--max-clients)",
);
const HELLOS_IN_PROGRESS: Described = (
    "hellos_in_progress",
    "Connections reading their TLS ClientHello now",
);
const HANDSHAKES_IN_PROGRESS: Described = (
    "handshakes_in_progress",
    "TLS handshakes in progress now, past their ClientHello",
);
const CONNECTIONS: Described = ("connections", "TCP connections accepted");
const HANDSHAKE_FAILURES: Described = (
    "handshake_failures",
    "Connections that ended before their TLS handshake completed, by reason",
);
const REJECTIONS: Described = (
    "rejections",
    "Clients turned away after their handshake, by error code",
);
const LINES_ANSWERED: Described = (
    "lines_answered",
    "Lines answered with their reversal (counted when the client leaves)",
);
const LINE_ERRORS: Described = (
    "line_errors",
    "Lines answered with an error frame, by error code (counted when the client leaves)",
);
const DATES_SENT: Described = (
    "dates_sent",
    "Date frames sent (counted when the client leaves)",
);
const SLOW_READER_DROPS: Described = (
    "slow_reader_drops",
    "Clients dropped because they stopped reading",
);
const SESSIONS_ENDED: Described = ("sessions_ended", "Client sessions ended, by why");
const RELOADS: Described = ("reloads", "Certificate reloads, by result");
const DATE_LATENESS: Described = (
    "date_lateness",
    "How late each date frame was against its deadline",
);
const HANDSHAKE_DURATION: Described = (
    "handshake_duration",
    "TLS handshake time, from the start of its turn to its end",
);
const CERTIFICATE_EXPIRY: Described = (
    "certificate_expiry_timestamp_seconds",
    "When the server certificate in use expires, in seconds since the Unix epoch",
);
const LOG_LINES_DROPPED: Described = (
    "log_lines_dropped",
    "Log lines dropped because standard error took them too slowly",
);

/// A metric registered in `registry` as `described`.
fn registered<M>(registry: &mut Registry, (name, help): Described) -> M
where
    M: prometheus_client::registry::Metric + Clone + Default,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

/// A histogram of seconds with `buckets`, registered as `described`.
fn seconds(
    registry: &mut Registry,
    (name, help): Described,
    buckets: impl Iterator<Item = f64>,
) -> Histogram {
    let histogram = Histogram::new(buckets);
    registry.register_with_unit(name, help, Unit::Seconds, histogram.clone());
    histogram
}

impl Metrics {
    /// The metrics of a server with `max_clients` slots, all at zero.
    pub(crate) fn new(max_clients: usize) -> Self {
        let r = &mut Registry::with_prefix("nea");
        let clients_max: Gauge = registered(r, CLIENTS_MAX);
        clients_max.set(i64::try_from(max_clients).unwrap_or(i64::MAX));
        Self {
            clients_connected: registered(r, CLIENTS_CONNECTED),
            hellos_in_progress: registered(r, HELLOS_IN_PROGRESS),
            handshakes_in_progress: registered(r, HANDSHAKES_IN_PROGRESS),
            connections: registered(r, CONNECTIONS),
            handshake_failures: CounterSet::register(r, HANDSHAKE_FAILURES),
            rejections: CounterSet::register(r, REJECTIONS),
            lines_answered: registered(r, LINES_ANSWERED),
            line_errors: CounterSet::register(r, LINE_ERRORS),
            dates_sent: registered(r, DATES_SENT),
            slow_reader_drops: registered(r, SLOW_READER_DROPS),
            sessions_ended: CounterSet::register(r, SESSIONS_ENDED),
            reloads: CounterSet::register(r, RELOADS),
            date_lateness: seconds(r, DATE_LATENESS, exponential_buckets(0.000_1, 4.0, 10)),
            handshake_duration: seconds(
                r,
                HANDSHAKE_DURATION,
                exponential_buckets(0.000_25, 4.0, 10),
            ),
            certificate_expiry: registered(r, CERTIFICATE_EXPIRY),
            log_lines_dropped: registered(r, LOG_LINES_DROPPED),
            registry: std::mem::take(r),
            log_drops: std::sync::Mutex::new(None),
            accepting: AtomicBool::new(true),
            max_clients,
        }
    }

    /// Counts the lines the log writer drops (read at each scrape).
    pub(super) fn count_log_drops(&self, dropped_so_far: Box<dyn Fn() -> u64 + Send + Sync>) {
        if let Ok(mut drops) = self.log_drops.lock() {
            *drops = Some(LogDrops {
                dropped_so_far,
                counted: 0,
            });
        }
    }

    /// The exposition, in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        if let Ok(mut guard) = self.log_drops.lock()
            && let Some(drops) = guard.as_mut()
        {
            let now = (drops.dropped_so_far)();
            self.log_lines_dropped
                .inc_by(now.saturating_sub(drops.counted));
            drops.counted = now;
        }
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut text, &self.registry);
        text
    }

    /// Records the expiry of the certificate now in use.
    pub(super) fn set_expiry(&self, expiry: Option<jiff::Timestamp>) {
        if let Some(at) = expiry {
            self.certificate_expiry.set(at.as_second());
        }
    }

    /// Shutdown has started: health says so from now on.
    pub(super) fn stop_accepting(&self) {
        self.accepting.store(false, Ordering::Release);
    }

    /// Whether the server takes clients now.
    pub(super) fn health(&self) -> Health {
        if !self.accepting.load(Ordering::Acquire) {
            Health::ShuttingDown
        } else if usize::try_from(self.clients_connected.get()).unwrap_or(0) >= self.max_clients {
            Health::Full
        } else {
            Health::Serving
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_end_in_total_and_units_are_in_the_names() {
        let metrics = Metrics::new(100);
        metrics.connections.inc();
        metrics.rejections.get(RejectionCode::ServerFull).inc();
        metrics.date_lateness.observe(0.002);
        let text = metrics.encode();
        assert!(
            text.contains("# TYPE nea_connections_total counter\n"),
            "{text}"
        );
        assert!(text.contains("nea_connections_total 1\n"), "{text}");
        assert!(
            text.contains("nea_rejections_total{code=\"server_full\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("nea_clients_max 100\n"), "{text}");
        assert!(
            text.contains("nea_date_lateness_seconds_count 1\n"),
            "{text}"
        );
    }

    #[test]
    fn every_label_value_is_exported_at_zero_from_the_start() {
        let text = Metrics::new(1).encode();
        let zero = |series: String| {
            assert!(text.contains(&format!("{series} 0\n")), "{series}:\n{text}");
        };
        for value in HandshakeFailure::ALL {
            zero(format!(
                "nea_handshake_failures_total{{reason=\"{}\"}}",
                value.as_str()
            ));
        }
        for value in RejectionCode::ALL {
            zero(format!(
                "nea_rejections_total{{code=\"{}\"}}",
                value.as_str()
            ));
        }
        for value in LineError::ALL {
            zero(format!(
                "nea_line_errors_total{{code=\"{}\"}}",
                value.as_str()
            ));
        }
        for value in ReloadResult::ALL {
            zero(format!(
                "nea_reloads_total{{result=\"{}\"}}",
                value.as_str()
            ));
        }
        for value in SessionEnd::ALL {
            zero(format!(
                "nea_sessions_ended_total{{reason=\"{}\"}}",
                value.as_str()
            ));
        }
    }

    #[test]
    fn each_value_counts_in_its_own_series() {
        let metrics = Metrics::new(1);
        metrics.handshake_failures.get(HandshakeFailure::Shed).inc();
        metrics
            .sessions_ended
            .get(SessionEnd::GraceExpired)
            .inc_by(2);
        let text = metrics.encode();
        assert!(text.contains("nea_handshake_failures_total{reason=\"shed\"} 1\n"));
        assert!(text.contains("nea_handshake_failures_total{reason=\"failed\"} 0\n"));
        assert!(text.contains("nea_sessions_ended_total{reason=\"grace_expired\"} 2\n"));
    }

    #[test]
    fn health_follows_the_slots_and_shutdown() {
        let metrics = Metrics::new(2);
        assert_eq!(metrics.health(), Health::Serving);
        metrics.clients_connected.set(2);
        assert_eq!(metrics.health(), Health::Full);
        metrics.clients_connected.set(1);
        assert_eq!(metrics.health(), Health::Serving);
        metrics.stop_accepting();
        assert_eq!(metrics.health(), Health::ShuttingDown);
    }
}
