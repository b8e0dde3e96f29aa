//! `clientcli`'s flags, in a file of their own: the binary parses them, and
//! the docs generator (`tools/docgen`) makes the man page and shell
//! completions from the same definitions.

use std::path::PathBuf;

use clap::Parser;
use clap::builder::BoolishValueParser;
use nea_cli::DurationArg;

/// TLS client for nea: shows the server's dates and sends each line typed
/// (or piped in), printing its reversal.
#[derive(Debug, Parser)]
#[command(name = "clientcli", version)]
pub(crate) struct Opts {
    /// Server host name or address
    #[arg(long, env = "NEA_HOST", value_name = "NAME", default_value = nea::DEFAULT_HOST)]
    pub(crate) host: String,
    /// Server TCP port (1 to 65535)
    #[arg(long, env = "NEA_PORT", value_name = "N", default_value_t = nea::DEFAULT_PORT)]
    pub(crate) port: u16,
    /// Also trust this CA certificate, PEM (may repeat)
    #[arg(long, env = "NEA_CA", value_name = "PEM")]
    pub(crate) ca: Vec<PathBuf>,
    /// Trust exactly a server whose public key has this SHA-256 (sha256:BASE64, as the server's start-up line gives it; 64 hex digits too): no CA, no name check (may repeat)
    #[arg(
        long,
        env = "NEA_PIN",
        value_name = "sha256:BASE64",
        value_delimiter = ','
    )]
    pub(crate) pin: Vec<nea::pin::Pin>,
    /// Client certificate chain for mutual TLS, PEM
    #[arg(long, env = "NEA_CERT", value_name = "PEM", requires = "key")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key for --cert, PEM
    #[arg(long, env = "NEA_KEY", value_name = "PEM", requires = "cert")]
    pub(crate) key: Option<PathBuf>,
    /// Name to verify in the server certificate (default: --host)
    #[arg(long, env = "NEA_SERVER_NAME", value_name = "NAME")]
    pub(crate) server_name: Option<String>,
    /// Deadline for each connection phase: TCP connect, then TLS handshake (10ms to 10m)
    #[arg(long, env = "NEA_CONNECT_TIMEOUT", value_name = "DURATION", default_value_t = DurationArg(nea::DEFAULT_CONNECT_TIMEOUT))]
    pub(crate) connect_timeout: DurationArg,
    /// Give the server up when it stops answering (at the TCP level, or with lines waiting for replies) for this long (1s to 24h)
    #[arg(long, env = "NEA_DEAD_PEER_TIMEOUT", value_name = "DURATION", default_value_t = DurationArg(nea::DEFAULT_DEAD_PEER_TIMEOUT))]
    pub(crate) dead_peer_timeout: DurationArg,
    /// Keep no history of the lines typed (by default it is kept in $XDG_STATE_HOME/nea/history)
    #[arg(long, env = "NEA_NO_HISTORY", value_parser = BoolishValueParser::new())]
    pub(crate) no_history: bool,
    /// Print the server's frames as NDJSON, one per line, as received
    #[arg(long, env = "NEA_JSON", value_parser = BoolishValueParser::new())]
    pub(crate) json: bool,
    /// After a lost connection or a server shutdown, reconnect and re-send unanswered lines
    #[arg(long, env = "NEA_RECONNECT", value_parser = BoolishValueParser::new())]
    pub(crate) reconnect: bool,
    /// Log connection details to stderr (RUST_LOG overrides)
    #[arg(long, short, env = "NEA_VERBOSE", value_parser = BoolishValueParser::new())]
    pub(crate) verbose: bool,
}
