//! `servercli`'s flags, in a file of their own: the binary parses them, and
//! the docs generator (`tools/docgen`) makes the man page and shell
//! completions from the same definitions.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::Parser;
use clap::builder::BoolishValueParser;
use nea_cli::{DurationArg, LogFormat};

/// TLS date-and-reverse server: sends each client the date every period and
/// answers every line with the line reversed.
#[derive(Debug, Parser)]
#[command(name = "servercli", version)]
pub(crate) struct Opts {
    /// TCP port to listen on, 0 to 65535 (0 picks a free one)
    #[arg(long, env = "NEA_PORT", value_name = "N", default_value_t = nea::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// Address to listen on (use :: for IPv6 and IPv4)
    #[arg(long, env = "NEA_BIND", value_name = "ADDR", default_value_t = nea::DEFAULT_BIND, value_parser = nea_cli::listen_address)]
    pub(crate) bind: IpAddr,
    /// Server certificate chain, PEM (default: the development certificate)
    #[arg(long, env = "NEA_CERT", value_name = "PEM", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key for --cert, PEM
    #[arg(long, env = "NEA_KEY", value_name = "PEM", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// CA certificates, PEM; clients must present a certificate it signed
    #[arg(long, env = "NEA_CLIENT_CA", value_name = "PEM")]
    pub(crate) client_ca: Option<PathBuf>,
    /// Most clients connected at once (1 to 1000000)
    #[arg(long, env = "NEA_MAX_CLIENTS", value_name = "N", default_value_t = nea::DEFAULT_MAX_CLIENTS)]
    pub(crate) max_clients: usize,
    /// Most clients connected at once from one address, an IPv4 address or an IPv6 /64 (0 for no limit, up to 1000000)
    #[arg(long, env = "NEA_MAX_CLIENTS_PER_ADDRESS", value_name = "N", default_value_t = nea::DEFAULT_MAX_CLIENTS_PER_ADDRESS)]
    pub(crate) max_clients_per_address: usize,
    /// Time between two dates sent to a client, e.g. 10s, 250ms, 1.5 (10ms to 24h)
    #[arg(long, env = "NEA_DATE_PERIOD", value_name = "DURATION", default_value_t = DurationArg(nea::DEFAULT_DATE_PERIOD))]
    pub(crate) date_period: DurationArg,
    /// Deadline for a client's TLS handshake, from its turn (10ms to 1h)
    #[arg(long, env = "NEA_HANDSHAKE_TIMEOUT", value_name = "DURATION", default_value_t = DurationArg(nea::DEFAULT_HANDSHAKE_TIMEOUT))]
    pub(crate) handshake_timeout: DurationArg,
    /// Most TLS handshakes past their ClientHello in progress at once; 32 times as many may read their ClientHello (1 to 100000)
    #[arg(long, env = "NEA_MAX_HANDSHAKES", value_name = "N", default_value_t = nea::DEFAULT_MAX_HANDSHAKES)]
    pub(crate) max_handshakes: usize,
    /// Longest line accepted, in bytes (1 to 1048576)
    #[arg(long, env = "NEA_MAX_LINE_BYTES", value_name = "N", default_value_t = nea::DEFAULT_MAX_LINE_BYTES)]
    pub(crate) max_line_bytes: usize,
    /// Drop a client whose writes stall this long: it is not reading (10ms to 1h)
    #[arg(long, env = "NEA_WRITE_TIMEOUT", value_name = "DURATION", default_value_t = DurationArg(nea::DEFAULT_WRITE_TIMEOUT))]
    pub(crate) write_timeout: DurationArg,
    /// Serve /metrics and /healthz over plain HTTP here, e.g. 127.0.0.1:9443 (off by default)
    #[arg(long, env = "NEA_ADMIN_ADDR", value_name = "ADDR:PORT")]
    pub(crate) admin_addr: Option<std::net::SocketAddr>,
    /// Load balancers whose connections begin with a PROXY protocol header (v1 or v2) naming the client: addresses or networks, comma-separated, e.g. 10.0.0.0/8,fd00::/8 (off by default)
    #[arg(long, env = "NEA_PROXY_PROTOCOL_FROM", value_name = "CIDR,...", value_delimiter = ',', value_parser = nea::server::parse_network)]
    pub(crate) proxy_protocol_from: Vec<nea::server::IpNet>,
    /// Once listening, write the port to this file (useful with --port 0)
    #[arg(long, env = "NEA_PORT_FILE", value_name = "FILE")]
    pub(crate) port_file: Option<PathBuf>,
    /// Log lines as text or as JSON objects (one per line)
    #[arg(long, env = "NEA_LOG_FORMAT", value_name = "FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Debug logs, including a line for each client as it joins (RUST_LOG overrides)
    #[arg(long, short, env = "NEA_VERBOSE", value_parser = BoolishValueParser::new())]
    pub(crate) verbose: bool,
}
