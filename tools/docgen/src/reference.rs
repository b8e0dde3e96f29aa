//! What each program's flags cannot say about it: its exit statuses, the
//! signals it answers, the environment variables and files it reads
//! beside its flags'. Written once, here: the man pages' EXIT STATUS,
//! SIGNALS, ENVIRONMENT and FILES sections and the tables of the guides
//! (`docs/client.md`, `docs/operations.md`) are made from these tables, and
//! the tests below hold them to the programs' code where it can be read
//! from here (every exit status the client's errors map to, every
//! `EXIT_*` constant of a program's `main.rs`).
//!
//! Text may hold `code` spans, in backquotes: Markdown keeps them, a man
//! page sets them in bold.

/// One row: what (a status, a signal, a variable, a file) and what it
/// means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The status, signal, variable or file, as written in the table's
    /// first column.
    pub(crate) name: &'static str,
    /// What it means, in one or a few sentences.
    pub(crate) meaning: &'static str,
}

const fn entry(name: &'static str, meaning: &'static str) -> Entry {
    Entry { name, meaning }
}

/// One program's reference tables.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reference {
    /// The program these are for: `servercli`, `clientcli` or `loadcli`.
    pub(crate) program: &'static str,
    /// Every exit status, lowest first.
    pub(crate) exit_statuses: &'static [Entry],
    /// What each signal does; empty when the program catches none.
    pub(crate) signals: &'static [Entry],
    /// Environment variables read beside those of the flags (which the
    /// flag definitions list themselves).
    pub(crate) environment: &'static [Entry],
    /// Files read or written by default.
    pub(crate) files: &'static [Entry],
    /// Other manual pages to read.
    pub(crate) see_also: &'static [&'static str],
}

/// The reference of `program` (a subcommand's page, such as
/// `loadcli-rtt`, shares its program's).
pub(crate) fn of(program: &str) -> Option<&'static Reference> {
    let program = program.split('-').next().unwrap_or(program);
    ALL.iter().find(|reference| reference.program == program)
}

/// Every program's reference.
pub(crate) const ALL: [Reference; 3] = [SERVERCLI, CLIENTCLI, LOADCLI];

/// The development CA's directory, as both programs find it.
const DEV_DIR: Entry = entry(
    "NEA_DEV_DIR",
    "The directory of the development CA, instead of `$XDG_DATA_HOME/nea`; \
     empty means unset.",
);

/// Where the development CA's directory is by default.
const XDG_DATA_HOME: Entry = entry(
    "XDG_DATA_HOME",
    "The per-user data directory (default `~/.local/share`, from `HOME`): \
     the development CA is in its `nea` directory.",
);

const NO_COLOR: Entry = entry(
    "NO_COLOR",
    "Set to anything but the empty string: no colour in log lines. Log \
     lines are coloured only when standard error is a terminal.",
);

pub(crate) const SERVERCLI: Reference = Reference {
    program: "servercli",
    exit_statuses: &[
        entry(
            "0",
            "Stopped by SIGINT, SIGTERM or SIGQUIT after a graceful shutdown; or \
             `--help` or `--version` was printed.",
        ),
        entry(
            "1",
            "Could not start, or stopped on an error: a certificate, key or client-CA \
             file unreadable or refused (not a regular file, larger than 1 MiB, a chain \
             of more than 10 certificates, not read within 5 s), a certificate that has \
             expired, a key that does not match the certificate, the address or \
             `--admin-addr` in use, no data directory for the development CA (or an \
             incomplete one), a `--port-file` that cannot be written, a socket passed in \
             `LISTEN_FDS` that cannot be used. One sentence on standard error, after \
             `servercli:`, says which.",
        ),
        entry(
            "2",
            "Invalid command line or environment variable (an unknown flag, a value out \
             of its range): one sentence on standard error names the problem, before \
             anything starts.",
        ),
    ],
    signals: &[
        entry(
            "SIGINT, SIGTERM, SIGQUIT",
            "Graceful shutdown: the server stops accepting, answers every line it has \
             received, sends each client a `shutting_down` frame and TLS close_notify, \
             finishes the handshakes under way the same way, and exits 0 (connections \
             get 3 s in all).",
        ),
        entry(
            "SIGHUP",
            "Reloads the certificate, key and client-CA files; serving goes on, and \
             connected clients notice nothing. A SIGHUP while the files are settling \
             after a change is that same reload, at once.",
        ),
        entry("SIGUSR1, SIGUSR2", "Logged and ignored."),
        entry(
            "SIGPIPE",
            "Ignored: a write to a closed connection fails on its own.",
        ),
        entry(
            "SIGTSTP, SIGCONT",
            "The usual job control: the server is stopped, then resumed.",
        ),
    ],
    environment: &[
        entry(
            "RUST_LOG",
            "A log filter (`nea=debug`, say) that replaces the level `--verbose` sets; \
             a value that is not a valid filter is ignored.",
        ),
        NO_COLOR,
        DEV_DIR,
        XDG_DATA_HOME,
        entry(
            "NOTIFY_SOCKET",
            "Set by a service manager: the server reports `READY=1` once it accepts, \
             `RELOADING=1` and `READY=1` around each certificate reload, `STOPPING=1` when \
             shutdown starts, and `STATUS=N of M clients connected`.",
        ),
        entry(
            "LISTEN_FDS, LISTEN_PID",
            "Set by a service manager that passes a listening socket: the server serves \
             the first socket passed instead of binding its own (`--bind` and `--port` \
             are then unused, and a WARN line says so when they were given). When \
             `LISTEN_PID` is set and is not the server's process id, the sockets are \
             not the server's and it binds its own.",
        ),
        entry(
            "CREDENTIALS_DIRECTORY",
            "Set by systemd for `LoadCredential=`: the server uses the files `cert.pem` \
             and `key.pem` there (both, or neither) and `client-ca.pem`, for what no flag \
             or variable names.",
        ),
    ],
    files: &[
        entry(
            "~/.local/share/nea/",
            "The development CA and certificate, made on the first run without `--cert` \
             and `--key` and reused after: `ca.pem` (what clients trust), `ca-key.pem`, \
             `server.pem` and `server-key.pem` (keys mode 0600, directory mode 0700). \
             `$XDG_DATA_HOME/nea/`, or `$NEA_DEV_DIR`, when set.",
        ),
        entry(
            "/etc/default/nea",
            "The service's options, as `NEA_*` variables (read by `nea.service`, not by \
             the server itself).",
        ),
        entry(
            "/etc/nea/cert.pem, /etc/nea/key.pem",
            "The certificate chain and key `nea.service` passes to the server as \
             credentials.",
        ),
        entry(
            "/var/lib/nea/dev-ca/",
            "The development CA of `nea.service` (its state directory).",
        ),
    ],
    see_also: &["clientcli(1)", "loadcli(1)", "systemctl(1)"],
};

pub(crate) const CLIENTCLI: Reference = Reference {
    program: "clientcli",
    exit_statuses: &[
        entry(
            "0",
            "Input ended and every line sent got its own reply; or Ctrl-C in a terminal \
             with nothing unanswered; or the reader of standard output went away \
             (`clientcli | head -1`): the client then ends at once, quietly, as other \
             Unix tools do. Also `--help` and `--version`.",
        ),
        entry(
            "1",
            "The client could not start its runtime (the system is out of threads or \
             memory).",
        ),
        entry(
            "64",
            "Invalid command line or environment variable: an unknown flag, a value out \
             of its range, an empty host or one with spaces, port 0, a `--server-name` \
             that is neither a DNS name nor an IP address. Nothing is tried.",
        ),
        entry(
            "65",
            "Input ended, but some lines did not get their reply: the server rejected \
             them (each reported with its input line number), or they could not be sent \
             (not UTF-8, over 16 MiB); one sentence counts them.",
        ),
        entry(
            "66",
            "A `--ca`, `--cert` or `--key` file cannot be read, or is refused: not a \
             regular file, or larger than 1 MiB.",
        ),
        entry("68", "The host name is unknown."),
        entry(
            "69",
            "Nothing is listening on the port (connection refused), or the connection \
             was closed during the TLS handshake with no TLS alert (what a load balancer \
             does when no server behind it can take the client).",
        ),
        entry(
            "71",
            "The host cannot be reached, or does not answer: no TCP connection, or no \
             answer to the TLS handshake, within `--connect-timeout`.",
        ),
        entry(
            "74",
            "The server shut down, the connection was lost, or the server stopped \
             answering for `--dead-peer-timeout` (its path died, or it said nothing while \
             lines waited for replies); or reading standard input or writing standard \
             output failed.",
        ),
        entry(
            "75",
            "The server is full (`server_full`), or holds every client it takes from \
             this address (`address_limit`); try again later.",
        ),
        entry(
            "76",
            "The server requires or rejected the client's certificate, the server does \
             not speak TLS (something else answered on that port), the TLS handshake \
             failed otherwise, or the server sent a frame the client cannot take (over \
             16 MiB, not UTF-8, not JSON).",
        ),
        entry(
            "77",
            "The server's key does not match `--pin` (both pins are in the sentence), or \
             the server's certificate is not trusted: signed by an authority the client \
             does not trust (the sentence says to use `--ca`), expired, not yet valid, \
             revoked, or for a name its authority may not vouch for (name constraints, \
             as the development CA has).",
        ),
        entry(
            "78",
            "The server's certificate is not valid for the name; the sentence lists the \
             names it is valid for (connect by one, or use `--server-name`).",
        ),
        entry(
            "130",
            "SIGINT stopped a session that is not in a terminal, or Ctrl-C (or SIGINT) \
             stopped any session with lines still unanswered; one sentence counts them.",
        ),
    ],
    signals: &[
        entry(
            "SIGINT",
            "Ends the client at once, whatever it is doing (connecting, waiting to \
             reconnect, waiting for replies), as Ctrl-C does in a terminal, where the \
             terminal is given back as it was. The status is 130 if lines were still \
             waiting for replies; otherwise 65 if some lines were rejected or not sent, \
             0 in a terminal, and 130 outside one.",
        ),
        entry(
            "SIGTSTP, SIGCONT",
            "In a terminal, Ctrl-Z gives the terminal back, then stops the client with \
             SIGTSTP; continued (`fg`, SIGCONT), it takes the terminal again and redraws \
             the prompt. A SIGTSTP sent by another process stops it as it is.",
        ),
        entry(
            "SIGWINCH",
            "In a terminal, the prompt's row is drawn again for the new width.",
        ),
        entry(
            "SIGPIPE",
            "Ignored: when the reader of standard output goes away, the client ends at \
             once, quietly, with status 0.",
        ),
        entry(
            "SIGTERM, SIGHUP, SIGQUIT",
            "Not caught: the client ends at once, as the signal's default action does, \
             without closing its connection cleanly, and in a terminal without giving \
             the terminal back (`stty sane` restores it).",
        ),
    ],
    environment: &[
        entry(
            "RUST_LOG",
            "A log filter (`nea=debug`, say) that replaces the level `--verbose` sets; \
             a value that is not a valid filter is ignored.",
        ),
        NO_COLOR,
        DEV_DIR,
        XDG_DATA_HOME,
        entry(
            "XDG_STATE_HOME",
            "The per-user state directory (default `~/.local/state`): the terminal's \
             history is `nea/history` there.",
        ),
        entry(
            "SSL_CERT_FILE, SSL_CERT_DIR",
            "When either is set, the system's root certificates are read from that file \
             (PEM) or those directories (colon-separated) instead of the system's store.",
        ),
    ],
    files: &[
        entry(
            "~/.local/share/nea/ca.pem",
            "The development CA that `servercli` makes, trusted when the file exists \
             (unless `--pin` is given). `$XDG_DATA_HOME/nea/ca.pem`, or \
             `$NEA_DEV_DIR/ca.pem`, when set.",
        ),
        entry(
            "~/.local/state/nea/history",
            "The lines typed in a terminal, kept across sessions: a first line `#V2`, \
             then one line each, with backslashes and line feeds escaped (rustyline's \
             format); the directory and the file readable by the owner only. None \
             with `--no-history`. `$XDG_STATE_HOME/nea/history`, when set.",
        ),
    ],
    see_also: &["servercli(1)", "loadcli(1)"],
};

pub(crate) const LOADCLI: Reference = Reference {
    program: "loadcli",
    exit_statuses: &[
        entry(
            "0",
            "The run passed its checks; or `--help` or `--version` was printed.",
        ),
        entry(
            "1",
            "The run failed its checks (a wrong or misordered reply, a lost line, a late \
             date, growing memory, a connection error), or could not start; one sentence \
             on standard error says why.",
        ),
        entry(
            "2",
            "Invalid command line, or no mode given (the help is printed).",
        ),
    ],
    signals: &[entry(
        "SIGINT, SIGTERM",
        "Not caught: the run ends at once, without a report.",
    )],
    environment: &[DEV_DIR, XDG_DATA_HOME],
    files: &[entry(
        "~/.local/share/nea/ca.pem",
        "The development CA, trusted when no `--ca` is given. `$XDG_DATA_HOME/nea/ca.pem`, \
         or `$NEA_DEV_DIR/ca.pem`, when set.",
    )],
    see_also: &["servercli(1)", "clientcli(1)"],
};

/// `text` with its `code` spans as `(is_code, piece)` pieces.
pub(crate) fn spans(text: &str) -> Vec<(bool, &str)> {
    text.split('`')
        .enumerate()
        .filter(|(_, piece)| !piece.is_empty())
        .map(|(i, piece)| (i % 2 == 1, piece))
        .collect()
}

/// A Markdown table of `entries` under the headings `what` and `meaning`;
/// each first column in a code span.
pub(crate) fn markdown_table(what: &str, entries: &[Entry]) -> String {
    let mut table = format!("| {what} | meaning |\n|---|---|\n");
    for entry in entries {
        let names: Vec<String> = entry
            .name
            .split(", ")
            .map(|name| format!("`{name}`"))
            .collect();
        table.push_str(&format!(
            "| {} | {} |\n",
            names.join(", "),
            entry.meaning.replace('|', "\\|")
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn code_spans_alternate_with_text() {
        assert_eq!(
            spans("a `b` c `d`"),
            [(false, "a "), (true, "b"), (false, " c "), (true, "d")]
        );
        assert_eq!(spans("`x`"), [(true, "x")]);
    }

    /// The exit statuses a program's `main.rs` names as `EXIT_*`
    /// constants.
    fn exit_constants(main: &str) -> Vec<u8> {
        let source = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../..")
                .join(main),
        )
        .expect("main.rs");
        source
            .lines()
            .filter_map(|line| line.trim().strip_prefix("const EXIT_"))
            .filter_map(|rest| rest.split("u8 = ").nth(1))
            .map(|value| value.trim_end_matches(';').parse().expect("a status"))
            .collect()
    }

    fn documents(reference: &Reference, status: u8) -> bool {
        reference
            .exit_statuses
            .iter()
            .any(|entry| entry.name == status.to_string())
    }

    #[test]
    fn every_exit_status_a_main_names_is_documented() {
        for (reference, main) in [
            (&SERVERCLI, "crates/nea-cli/src/bin/servercli/main.rs"),
            (&CLIENTCLI, "crates/nea-cli/src/bin/clientcli/main.rs"),
            (&LOADCLI, "tools/loadcli/src/main.rs"),
        ] {
            let constants = exit_constants(main);
            assert!(!constants.is_empty(), "{main} names no EXIT_ constant");
            for status in constants.into_iter().chain([0, 1]) {
                assert!(
                    documents(reference, status),
                    "{}: status {status} is not documented",
                    reference.program
                );
            }
        }
    }

    /// Compiles only while every kind of client error is named here: a new
    /// kind must be added to [`every_client_error`] (and its status then
    /// documented) before this builds again.
    fn listed(error: &nea::error::ClientError) -> bool {
        use nea::error::ClientError as E;
        match error {
            E::Tls(_)
            | E::UnknownHost { .. }
            | E::Refused { .. }
            | E::Unreachable { .. }
            | E::HandshakeUnanswered { .. }
            | E::HandshakeClosed { .. }
            | E::NotTrusted { .. }
            | E::NameMismatch { .. }
            | E::PinMismatch(_)
            | E::ClientCertRejected { .. }
            | E::NotTls { .. }
            | E::Handshake { .. }
            | E::ServerFull
            | E::AddressLimit
            | E::ServerShutDown
            | E::ServerSilent { .. }
            | E::Protocol { .. }
            | E::ConnectionLost { .. }
            | E::Io { .. } => true,
        }
    }

    /// One of each of the client's errors, in the order of [`listed`].
    fn every_client_error() -> Vec<nea::error::ClientError> {
        use nea::error::{ClientError as E, TlsSetupError};
        let io = || std::io::Error::other("x");
        let second = std::time::Duration::from_secs(1);
        let pin = "sha256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        vec![
            E::Tls(TlsSetupError::NoCertificates { path: "x".into() }),
            E::UnknownHost {
                host: "x".into(),
                source: io(),
            },
            E::Refused { addr: "x".into() },
            E::Unreachable {
                addr: "x".into(),
                reason: "x".into(),
            },
            E::HandshakeUnanswered {
                addr: "x".into(),
                after: second,
            },
            E::HandshakeClosed { addr: "x".into() },
            E::NotTrusted {
                reason: "x".into(),
                advice: "x",
            },
            E::NameMismatch {
                name: "x".into(),
                valid_for: Vec::new(),
            },
            E::PinMismatch(nea::tls::PinMismatch {
                presented: pin.parse().expect("a pin"),
                expected: Vec::new(),
            }),
            E::ClientCertRejected { reason: "x".into() },
            E::NotTls { addr: "x".into() },
            E::Handshake {
                addr: "x".into(),
                reason: "x".into(),
            },
            E::ServerFull,
            E::AddressLimit,
            E::ServerShutDown,
            E::ServerSilent { after: second },
            E::Protocol { reason: "x".into() },
            E::ConnectionLost { reason: "x".into() },
            E::Io {
                phase: "x",
                source: io(),
            },
        ]
    }

    #[test]
    fn every_status_a_client_error_maps_to_is_documented() {
        let errors = every_client_error();
        // One of each kind, as many kinds as `listed` names.
        let kinds: std::collections::HashSet<_> =
            errors.iter().map(std::mem::discriminant).collect();
        assert_eq!((kinds.len(), errors.len()), (19, 19));
        for error in errors {
            assert!(listed(&error));
            assert!(
                documents(&CLIENTCLI, error.exit_code()),
                "{error:?} exits {}, which is not documented",
                error.exit_code()
            );
        }
    }

    #[test]
    fn statuses_are_in_order_and_each_once() {
        for reference in ALL {
            let statuses: Vec<u8> = reference
                .exit_statuses
                .iter()
                .map(|entry| entry.name.parse().expect("a number"))
                .collect();
            assert!(
                statuses.windows(2).all(|pair| pair[0] < pair[1]),
                "{}: {statuses:?}",
                reference.program
            );
        }
    }

    #[test]
    fn a_markdown_table_sets_each_name_in_code() {
        let table = markdown_table("signal", &[entry("SIGUSR1, SIGUSR2", "Logged | ignored.")]);
        assert_eq!(
            table,
            "| signal | meaning |\n|---|---|\n| `SIGUSR1`, `SIGUSR2` | Logged \\| ignored. |\n"
        );
    }
}
