//! The server's metrics (SPEC §11), in the Prometheus text format
//! (`prometheus-client`), served by [`super::admin`].
//!
//! Nothing here costs a client anything it could measure: gauges change
//! when a client or a handshake comes or goes, a session's counts (lines,
//! line errors, dates) are folded in once, when it ends, and the only
//! per-event work is a date's lateness and a handshake's duration, one
//! histogram observation each.

use std::sync::atomic::{AtomicBool, Ordering};

use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// One label, `name="value"`, both fixed in the code.
type Label = [(&'static str, &'static str); 1];

/// Every metric a server keeps, and the registry that encodes them: what
/// its admin endpoint serves, and what an embedder can read
/// ([`Metrics::encode`]) without one.
pub struct Metrics {
    registry: Registry,
    /// Clients connected now.
    pub(super) clients_connected: Gauge,
    /// TLS handshakes in progress now.
    pub(super) handshakes_in_progress: Gauge,
    /// TCP connections accepted.
    pub(super) connections: Counter,
    /// Handshakes that failed, by `reason`: `failed`, `timed_out`, `shed`,
    /// `abandoned` (the client closed while it waited), `proxy_header`.
    pub(super) handshake_failures: Family<Label, Counter>,
    /// Clients turned away after their handshake, by `code`.
    pub(super) rejections: Family<Label, Counter>,
    /// Lines answered by a reply.
    pub(super) lines_answered: Counter,
    /// Lines answered by an error frame, by `code`.
    pub(super) line_errors: Family<Label, Counter>,
    /// Date frames sent.
    pub(super) dates_sent: Counter,
    /// Clients dropped because they stopped reading.
    pub(super) slow_reader_drops: Counter,
    /// Certificate reloads, by `result`: `ok` or `failed`.
    pub(super) reloads: Family<Label, Counter>,
    /// How late each date was against its deadline, in seconds.
    pub(super) date_lateness: Histogram,
    /// TLS handshake time, from its turn to its end, in seconds.
    pub(super) handshake_duration: Histogram,
    /// The certificate in use's expiry, in seconds since the Unix epoch.
    pub(super) certificate_expiry: Gauge,
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

impl Metrics {
    /// The metrics of a server with `max_clients` slots, all at zero.
    pub(crate) fn new(max_clients: usize) -> Self {
        let mut registry = Registry::with_prefix("nea");
        let clients_connected = Gauge::default();
        registry.register(
            "clients_connected",
            "Clients connected now",
            clients_connected.clone(),
        );
        let clients_max = Gauge::<i64>::default();
        clients_max.set(i64::try_from(max_clients).unwrap_or(i64::MAX));
        registry.register(
            "clients_max",
            "Most clients connected at once (--max-clients)",
            clients_max,
        );
        let handshakes_in_progress = Gauge::default();
        registry.register(
            "handshakes_in_progress",
            "TLS handshakes in progress now",
            handshakes_in_progress.clone(),
        );
        let connections = Counter::default();
        registry.register(
            "connections",
            "TCP connections accepted",
            connections.clone(),
        );
        let handshake_failures = Family::default();
        registry.register(
            "handshake_failures",
            "Connections that ended before their TLS handshake completed, by reason",
            handshake_failures.clone(),
        );
        let rejections = Family::default();
        registry.register(
            "rejections",
            "Clients turned away after their handshake, by error code",
            rejections.clone(),
        );
        let lines_answered = Counter::default();
        registry.register(
            "lines_answered",
            "Lines answered with their reversal (counted when the client leaves)",
            lines_answered.clone(),
        );
        let line_errors = Family::default();
        registry.register(
            "line_errors",
            "Lines answered with an error frame, by error code (counted when the client leaves)",
            line_errors.clone(),
        );
        let dates_sent = Counter::default();
        registry.register(
            "dates_sent",
            "Date frames sent (counted when the client leaves)",
            dates_sent.clone(),
        );
        let slow_reader_drops = Counter::default();
        registry.register(
            "slow_reader_drops",
            "Clients dropped because they stopped reading",
            slow_reader_drops.clone(),
        );
        let reloads = Family::default();
        registry.register("reloads", "Certificate reloads, by result", reloads.clone());
        let date_lateness = Histogram::new(exponential_buckets(0.000_1, 4.0, 10));
        registry.register_with_unit(
            "date_lateness",
            "How late each date frame was against its deadline",
            Unit::Seconds,
            date_lateness.clone(),
        );
        let handshake_duration = Histogram::new(exponential_buckets(0.000_25, 4.0, 10));
        registry.register_with_unit(
            "handshake_duration",
            "TLS handshake time, from the start of its turn to its end",
            Unit::Seconds,
            handshake_duration.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the server certificate in use expires, in seconds since the Unix epoch",
            certificate_expiry.clone(),
        );
        let log_lines_dropped = Counter::default();
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because standard error took them too slowly",
            log_lines_dropped.clone(),
        );
        Self {
            registry,
            log_lines_dropped,
            log_drops: std::sync::Mutex::new(None),
            clients_connected,
            handshakes_in_progress,
            connections,
            handshake_failures,
            rejections,
            lines_answered,
            line_errors,
            dates_sent,
            slow_reader_drops,
            reloads,
            date_lateness,
            handshake_duration,
            certificate_expiry,
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

/// The label `name="value"`.
pub(super) fn label(name: &'static str, value: &'static str) -> Label {
    [(name, value)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_end_in_total_and_units_are_in_the_names() {
        let metrics = Metrics::new(100);
        metrics.connections.inc();
        metrics
            .rejections
            .get_or_create(&label("code", "server_full"))
            .inc();
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
