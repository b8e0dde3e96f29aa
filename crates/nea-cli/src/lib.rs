//! What nea's programs share, and nothing the library needs: flags checked
//! against their ranges, usage errors, process set-up and logging.
//!
//! The `nea` library is the product; embedders never compile this crate.
//! It is the programs' support code, as ripgrep keeps `grep-cli` apart
//! from its search crates: `servercli` and `clientcli` (in `src/bin/`) and
//! the load tool (`tools/loadcli`) use it.
//!
//! # Layout
//!
//! - [`escape`]: text from elsewhere made safe for a terminal and for a
//!   log line (control, bidirectional and invisible characters escaped).
//! - [`flags`]: value parsers that accept only a flag's documented range,
//!   and [`flags::DurationArg`], a duration as flags write it.
//! - [`usage`]: parsing a command line; `--help` and `--version`; a
//!   mistake as one sentence and the usage status.
//! - [`process`]: the async runtime, the open-file limit, the port file.
//! - [`logging`]: log lines on standard error, as text or JSON; the
//!   server's through a writer thread of its own.
//! - `src/bin/servercli/`: flags into the library's server builder; the
//!   signals, the service manager's notifications and its passed socket.
//! - `src/bin/clientcli/`: flags into the library's client options; the
//!   terminal and pipe front ends and how events are shown.

#![deny(missing_docs)]

pub mod escape;
pub mod flags;
pub mod logging;
pub mod process;
pub mod usage;

pub use flags::{DurationArg, count_within, duration_within, listen_address, number_within};
pub use logging::{LogFormat, ServerLogging, init_logging, init_logging_to, init_server_logging};
pub use process::{raise_open_file_limit, runtime, stop_requested, write_port_file};
pub use usage::{NotRun, parse_args, parse_args_and_matches, usage_error_line};
