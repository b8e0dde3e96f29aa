//! The limits and periods of a server: how many clients, how often dates
//! go out, and every deadline and bound of one connection. Every value is
//! checked against its range in the crate root when the configuration is
//! built, so no value can make the server panic, overflow, or hold more
//! memory per client than its bounds say.

use std::time::Duration;

use super::TrustedProxies;
use crate::error::ConfigError;

/// The limits and periods a [`super::Server`] serves with: how many clients, how
/// often dates go out, and every deadline and bound of one connection.
///
/// Built only through [`Config::builder`] (or [`Config::default`]): every
/// value is inside its range in the crate root (`MAX_CLIENTS_RANGE` and the
/// like), so no value can make the server panic, overflow, or hold more
/// memory per client than its bounds say.
#[derive(Debug, Clone)]
pub struct Config {
    /// Most clients connected at once; one slot is held from the end of a
    /// client's TLS handshake until its connection closes.
    pub(crate) max_clients: usize,
    /// Most clients connected at once from one source address; 0 for no
    /// limit.
    pub(crate) max_clients_per_address: usize,
    /// Time between two `date` frames to one client.
    pub(crate) date_period: Duration,
    /// Deadline for a TLS handshake, from the socket's turn for a
    /// handshake slot; and for a PROXY protocol header, from the accept.
    pub(crate) handshake_timeout: Duration,
    /// Most TLS handshakes in progress at once.
    pub(crate) max_handshakes: usize,
    /// Longest line accepted, in bytes, terminator excluded.
    pub(crate) max_line_bytes: usize,
    /// Longest a client's socket may take none of the frames waiting for
    /// it before the client is dropped as a slow reader.
    pub(crate) write_timeout: Duration,
    /// Encoded frames, in bytes, waiting to be written to one client at
    /// which the server stops reading that client's lines.
    pub(crate) queue_bytes: usize,
    /// After shutdown starts, how long a connection gets to finish.
    pub(crate) shutdown_grace: Duration,
    /// How long a client may stop answering at the TCP level before it is
    /// given up (see `crate::dead_peer`).
    pub(crate) dead_peer_timeout: Duration,
    /// The balancers whose connections begin with a PROXY protocol header
    /// naming the real client; empty for none.
    pub(crate) proxies: TrustedProxies,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            max_clients: crate::DEFAULT_MAX_CLIENTS,
            max_clients_per_address: crate::DEFAULT_MAX_CLIENTS_PER_ADDRESS,
            date_period: crate::DEFAULT_DATE_PERIOD,
            handshake_timeout: crate::DEFAULT_HANDSHAKE_TIMEOUT,
            max_handshakes: crate::DEFAULT_MAX_HANDSHAKES,
            max_line_bytes: crate::DEFAULT_MAX_LINE_BYTES,
            write_timeout: crate::DEFAULT_WRITE_TIMEOUT,
            queue_bytes: crate::DEFAULT_QUEUE_BYTES,
            shutdown_grace: crate::DEFAULT_SHUTDOWN_GRACE,
            dead_peer_timeout: crate::DEFAULT_DEAD_PEER_TIMEOUT,
            proxies: TrustedProxies::default(),
        }
    }
}

impl Config {
    /// A builder that starts from the defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder {
            config: Self::default(),
        }
    }

    /// Most clients connected at once.
    pub fn max_clients(&self) -> usize {
        self.max_clients
    }
}

/// Sets [`Config`] values; [`ConfigBuilder::build`] checks each against its
/// range. Unset values keep their defaults.
#[derive(Debug, Clone)]
#[must_use]
pub struct ConfigBuilder {
    config: Config,
}

impl ConfigBuilder {
    /// Most clients connected at once (`MAX_CLIENTS_RANGE`).
    pub fn max_clients(mut self, n: usize) -> Self {
        self.config.max_clients = n;
        self
    }

    /// Most clients at once from one source address, 0 for no limit
    /// (`MAX_CLIENTS_PER_ADDRESS_RANGE`).
    pub fn max_clients_per_address(mut self, n: usize) -> Self {
        self.config.max_clients_per_address = n;
        self
    }

    /// Time between two dates to one client (`DATE_PERIOD_RANGE`).
    pub fn date_period(mut self, period: Duration) -> Self {
        self.config.date_period = period;
        self
    }

    /// Deadline for a TLS handshake (`HANDSHAKE_TIMEOUT_RANGE`).
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.config.handshake_timeout = timeout;
        self
    }

    /// Most TLS handshakes at once (`MAX_HANDSHAKES_RANGE`).
    pub fn max_handshakes(mut self, n: usize) -> Self {
        self.config.max_handshakes = n;
        self
    }

    /// Longest line accepted, in bytes (`MAX_LINE_BYTES_RANGE`).
    pub fn max_line_bytes(mut self, n: usize) -> Self {
        self.config.max_line_bytes = n;
        self
    }

    /// How long a client's socket may take nothing before the client is
    /// dropped (`WRITE_TIMEOUT_RANGE`).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.config.write_timeout = timeout;
        self
    }

    /// Outgoing bytes at which a client's lines stop being read
    /// (`QUEUE_BYTES_RANGE`).
    pub fn queue_bytes(mut self, n: usize) -> Self {
        self.config.queue_bytes = n;
        self
    }

    /// How long connections get to finish after shutdown starts
    /// (`SHUTDOWN_GRACE_RANGE`).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// How long a client may stop answering at the TCP level (no ACK, no
    /// answer to keepalive probes) before it is given up as gone
    /// (`DEAD_PEER_TIMEOUT_RANGE`).
    pub fn dead_peer_timeout(mut self, timeout: Duration) -> Self {
        self.config.dead_peer_timeout = timeout;
        self
    }

    /// The networks whose connections must begin with a PROXY protocol
    /// header, and whose header names the client (SPEC §12).
    pub fn proxy_protocol_from(mut self, proxies: TrustedProxies) -> Self {
        self.config.proxies = proxies;
        self
    }

    /// The configuration, or the first value outside its range.
    pub fn build(self) -> Result<Config, ConfigError> {
        let c = self.config;
        ConfigError::within("--max-clients", c.max_clients, &crate::MAX_CLIENTS_RANGE)?;
        ConfigError::within(
            "--max-clients-per-address",
            c.max_clients_per_address,
            &crate::MAX_CLIENTS_PER_ADDRESS_RANGE,
        )?;
        ConfigError::within("--date-period", c.date_period, &crate::DATE_PERIOD_RANGE)?;
        ConfigError::within(
            "--handshake-timeout",
            c.handshake_timeout,
            &crate::HANDSHAKE_TIMEOUT_RANGE,
        )?;
        ConfigError::within(
            "--max-handshakes",
            c.max_handshakes,
            &crate::MAX_HANDSHAKES_RANGE,
        )?;
        ConfigError::within(
            "--max-line-bytes",
            c.max_line_bytes,
            &crate::MAX_LINE_BYTES_RANGE,
        )?;
        ConfigError::within(
            "--write-timeout",
            c.write_timeout,
            &crate::WRITE_TIMEOUT_RANGE,
        )?;
        ConfigError::within(
            "the outgoing queue bound",
            c.queue_bytes,
            &crate::QUEUE_BYTES_RANGE,
        )?;
        ConfigError::within(
            "--dead-peer-timeout",
            c.dead_peer_timeout,
            &crate::DEAD_PEER_TIMEOUT_RANGE,
        )?;
        ConfigError::within(
            "the shutdown grace",
            c.shutdown_grace,
            &crate::SHUTDOWN_GRACE_RANGE,
        )?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_inside_their_ranges() {
        let built = Config::builder().build().expect("the defaults are valid");
        assert_eq!(built.max_clients(), crate::DEFAULT_MAX_CLIENTS);
    }

    #[test]
    fn each_bound_is_accepted_and_the_values_beyond_it_are_refused() {
        let ok = |b: ConfigBuilder| b.build().expect("inside the range");
        let refused = |b: ConfigBuilder| b.build().expect_err("outside the range");
        let (lo, hi) = (
            *crate::MAX_CLIENTS_RANGE.start(),
            *crate::MAX_CLIENTS_RANGE.end(),
        );
        assert_eq!(ok(Config::builder().max_clients(lo)).max_clients, lo);
        assert_eq!(ok(Config::builder().max_clients(hi)).max_clients, hi);
        assert_eq!(
            refused(Config::builder().max_clients(usize::MAX)).to_string(),
            format!(
                "--max-clients must be from 1 to 1000000, not {}",
                usize::MAX
            )
        );
        refused(Config::builder().max_clients(0));
        ok(Config::builder().max_clients_per_address(0));
        ok(Config::builder().max_clients_per_address(1_000_000));
        refused(Config::builder().max_clients_per_address(1_000_001));
        refused(Config::builder().max_handshakes(0));
        refused(Config::builder().max_handshakes(usize::MAX));
        refused(Config::builder().max_line_bytes(usize::MAX));
        refused(Config::builder().queue_bytes(0));
        let ms = Duration::from_millis;
        assert_eq!(
            refused(Config::builder().date_period(Duration::ZERO)).to_string(),
            "--date-period must be from 10ms to 24h, not 0s"
        );
        ok(Config::builder().date_period(ms(10)));
        refused(Config::builder().date_period(Duration::MAX));
        refused(Config::builder().handshake_timeout(ms(9)));
        ok(Config::builder().dead_peer_timeout(Duration::from_secs(1)));
        ok(Config::builder().dead_peer_timeout(Duration::from_secs(86_400)));
        assert_eq!(
            refused(Config::builder().dead_peer_timeout(ms(999))).to_string(),
            "--dead-peer-timeout must be from 1s to 24h, not 999ms"
        );
        refused(Config::builder().dead_peer_timeout(Duration::from_secs(86_401)));
        refused(Config::builder().write_timeout(Duration::from_nanos(1)));
        assert_eq!(
            refused(Config::builder().shutdown_grace(Duration::from_secs(61))).to_string(),
            "the shutdown grace must be from 10ms to 1m, not 61s"
        );
        assert_eq!(
            refused(Config::builder().queue_bytes(0)).to_string(),
            "the outgoing queue bound must be from 1024 to 67108864, not 0"
        );
        ok(Config::builder()
            .max_line_bytes(*crate::MAX_LINE_BYTES_RANGE.end())
            .write_timeout(ms(10))
            .handshake_timeout(ms(10))
            .shutdown_grace(ms(10)));
    }
}
