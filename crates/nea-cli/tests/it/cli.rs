//! `servercli` as a command: flags, usage errors, exit statuses, and the
//! development CA it creates on first run (SPEC §9).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use crate::common::{Client, PATIENCE, Pki, Server, line_with};

fn servercli(args: &[&str]) -> Output {
    Command::new(crate::common::servercli_exe())
        .args(args)
        .output()
        .expect("servercli runs")
}

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_lists_every_option_and_exits_zero() {
    let output = servercli(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--port",
        "--bind",
        "--cert",
        "--key",
        "--client-ca",
        "--max-clients",
        "--date-period",
        "--handshake-timeout",
        "--max-handshakes",
        "--max-line-bytes",
        "--write-timeout",
        "--verbose",
        "NEA_PORT",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn invalid_values_get_one_sentence_and_status_2() {
    for args in [
        &["--max-clients", "0"][..],
        &["--date-period", "soon"],
        &["--write-timeout", "0s"],
        &["--port", "99999"],
        &["--bind", "not-an-address"],
        &["--cert", "only-a-cert.pem"],
        &["--no-such-flag"],
    ] {
        let output = servercli(args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = stderr_of(&output);
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("servercli: "), "{args:?}: {stderr}");
    }
    let stderr = stderr_of(&servercli(&["--cert", "only-a-cert.pem"]));
    assert!(stderr.contains("--key"), "{stderr}");
}

#[test]
fn unreadable_certificates_are_one_sentence_and_status_1() {
    let pki = Pki::new();
    let missing = pki.dir.path().join("missing.pem");
    let output = servercli(&[
        "--port",
        "0",
        "--cert",
        missing.to_str().expect("utf-8"),
        "--key",
        pki.key.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    let last = stderr.lines().last().expect("an error line");
    assert!(
        last.starts_with("servercli: cannot read certificates from"),
        "{stderr}"
    );
    assert!(last.contains("missing.pem"), "{stderr}");
}

/// Runs `command` until it exits, up to `patience`: its status and
/// standard error, or `None` (and the process killed) if it is still
/// running then.
fn run_at_most(mut command: Command, patience: std::time::Duration) -> Option<(i32, String)> {
    let stderr = tempfile::NamedTempFile::new().expect("a file for stderr");
    let mut child = command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(stderr.reopen().expect("reopened"))
        .spawn()
        .expect("servercli starts");
    let deadline = std::time::Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let text = std::fs::read_to_string(stderr.path()).expect("stderr");
    status.map(|status| (status.code().unwrap_or(-1), text))
}

#[test]
fn an_expired_certificate_is_refused_at_start_in_one_sentence() {
    let pki = Pki::new();
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let expired = pki
        .authority
        .issue_server_valid(&["localhost", "127.0.0.1"], now - day * 30, now - day)
        .expect("issued");
    std::fs::write(&pki.cert, &expired.cert_pem).expect("cert");
    std::fs::write(&pki.key, &expired.key_pem).expect("key");
    let command = Server::command_with(&pki, &[]);
    let (status, stderr) =
        run_at_most(command, PATIENCE).expect("servercli refuses to start, and exits");
    assert_eq!(status, 1, "{stderr}");
    let last = stderr.lines().last().expect("an error line");
    let on = (now - day).strftime("%Y-%m-%d").to_string();
    assert!(
        last.starts_with(&format!(
            "servercli: the certificate in {} expired on {on} ",
            pki.cert.display()
        )),
        "{stderr}"
    );
    assert!(last.ends_with("; renew it"), "{stderr}");
}

/// Two paths in `dir` that are no regular file, each with what an error
/// calls it: a FIFO (opening it blocks until a writer comes) and a
/// symbolic link to `/dev/zero` (reading it never ends).
fn paths_that_are_no_regular_file(
    dir: &std::path::Path,
) -> [(std::path::PathBuf, &'static str); 2] {
    let fifo = dir.join("fifo.pem");
    let made = Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let to_zero = dir.join("zero.pem");
    std::os::unix::fs::symlink("/dev/zero", &to_zero).expect("symlink");
    [(fifo, "a FIFO"), (to_zero, "a character device")]
}

#[test]
fn a_certificate_path_that_is_no_regular_file_is_refused_at_start_in_one_sentence() {
    let pki = Pki::new();
    for (cert, kind) in paths_that_are_no_regular_file(pki.dir.path()) {
        let mut command = Command::new(crate::common::servercli_exe());
        command
            .args(["--bind", "127.0.0.1", "--port", "0", "--cert"])
            .arg(&cert)
            .arg("--key")
            .arg(&pki.key);
        let (status, stderr) =
            run_at_most(command, PATIENCE).expect("servercli refuses to start, and exits");
        assert_eq!(status, 1, "{stderr}");
        let last = stderr.lines().last().expect("an error line");
        assert_eq!(
            last,
            format!(
                "servercli: cannot read certificates from {}: it is {kind}, not a regular file",
                cert.display()
            ),
            "{stderr}"
        );
    }
}

#[test]
fn a_client_file_that_is_no_regular_file_is_refused_at_once_in_one_sentence() {
    let pki = Pki::new();
    // Nothing listens on the port: the files are refused before any
    // connection is tried.
    let port = crate::balancer::free_port().to_string();
    for (path, kind) in paths_that_are_no_regular_file(pki.dir.path()) {
        for (flags, what) in [
            (vec!["--ca".into(), path.clone()], "certificates"),
            (
                vec![
                    "--cert".into(),
                    path.clone(),
                    "--key".into(),
                    pki.key.clone(),
                ],
                "certificates",
            ),
            (
                vec![
                    "--cert".into(),
                    pki.cert.clone(),
                    "--key".into(),
                    path.clone(),
                ],
                "a private key",
            ),
        ] {
            let mut command = Command::new(crate::common::clientcli_exe());
            command
                .args(["--host", "127.0.0.1", "--port", &port])
                .args(&flags);
            let (status, stderr) = run_at_most(command, PATIENCE)
                .unwrap_or_else(|| panic!("clientcli {flags:?} is still running"));
            assert_eq!(status, 66, "{flags:?}: {stderr}");
            assert_eq!(
                stderr.lines().last().unwrap_or_default(),
                format!(
                    "clientcli: cannot read {what} from {}: it is {kind}, not a regular file",
                    path.display()
                ),
                "{flags:?}: {stderr}"
            );
        }
    }
}

#[tokio::test]
async fn a_port_in_use_is_one_sentence_and_status_1() {
    let server = Server::start(&[]);
    let pki = &server.pki;
    let output = servercli(&[
        "--bind",
        "127.0.0.1",
        "--port",
        &server.addr.port().to_string(),
        "--cert",
        pki.cert.to_str().expect("utf-8"),
        "--key",
        pki.key.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.starts_with("servercli: cannot listen on")),
        "{stderr}"
    );
    assert!(server.stop().success());
}

/// Runs `servercli` with no certificate flags and `NEA_DEV_DIR` set.
fn start_with_dev_dir(dir: &std::path::Path) -> Server {
    let mut command = Command::new(crate::common::servercli_exe());
    command
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .env("NEA_DEV_DIR", dir);
    Server::spawn(command, Pki::new())
}

/// Checks what a first run's start-up log says, in `log`: the development
/// CA created in `dir`, how to connect on `port` and what other clients
/// must trust, and the fingerprint of the certificate, which it returns.
fn first_run_says(log: &str, dir: &std::path::Path, port: u16) -> String {
    let created = line_with(log, "created development certificates");
    assert!(created.contains(dir.to_str().expect("utf-8")), "{created}");
    // A command that works from anywhere (the key pinned), and the CA
    // that clients on this machine trust already.
    let hint = line_with(log, "connect with");
    assert!(
        hint.contains(&format!(
            "clientcli --host 127.0.0.1 --port {port} --pin sha256:"
        )),
        "{hint}"
    );
    assert!(
        hint.contains(&format!("ca={}", dir.join("ca.pem").display())),
        "{hint}"
    );
    let fingerprint = line_with(log, "sha256=")
        .split("sha256=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("fingerprint")
        .to_owned();
    assert_eq!(fingerprint.len(), 95, "{fingerprint}");
    fingerprint
}

/// Connects to `server` trusting only the development CA in `dir`, and
/// sends a line.
async fn served_trusting_the_development_ca(server: &Server, dir: &std::path::Path) {
    let ca = dir.join("ca.pem");
    let roots = nea::tls::root_store(nea::tls::load_certs(&ca).expect("ca")).expect("roots");
    let config = nea::tls::client_config(roots, None).expect("config");
    let mut client = Client::connect(server.addr, config)
        .await
        .expect("verified");
    assert_eq!(client.round_trip("dev").await, "ved");
}

#[tokio::test]
async fn first_run_creates_the_development_ca_and_later_runs_reuse_it() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("nea");

    let first = start_with_dev_dir(&dir);
    let port = first.addr.port();
    for key in ["server-key.pem", "ca-key.pem"] {
        let mode = std::fs::metadata(dir.join(key))
            .expect("key")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }
    // A client that trusts only the development CA verifies the server.
    served_trusting_the_development_ca(&first, &dir).await;
    // The start-up log says what was made, how to connect, and what other
    // clients trust.
    let fingerprint = first_run_says(&first.stop_and_read_log(), &dir, port);

    let second = start_with_dev_dir(&dir);
    served_trusting_the_development_ca(&second, &dir).await;
    let log = second.stop_and_read_log();
    line_with(&log, "using development certificates");
    let again = line_with(&log, "sha256=");
    assert!(again.contains(&format!("sha256={fingerprint} ")), "{again}");
}

#[tokio::test]
async fn an_expiring_development_certificate_is_renewed_at_start() {
    let home = tempfile::tempdir().expect("tempdir");
    let dir = home.path().join("nea");
    let first = start_with_dev_dir(&dir);
    assert!(first.stop().success());

    // Five days left on a certificate from the development CA.
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("readable");
    let ca = nea::devca::CertificateAuthority::from_pem(&read("ca.pem"), &read("ca-key.pem"))
        .expect("the development CA");
    let now = jiff::Timestamp::now();
    let day = jiff::SignedDuration::from_hours(24);
    let ending = ca
        .issue_server_valid(&["localhost", "127.0.0.1", "::1"], now - day, now + day * 5)
        .expect("issued");
    std::fs::write(dir.join("server.pem"), &ending.cert_pem).expect("cert");
    std::fs::write(dir.join("server-key.pem"), &ending.key_pem).expect("key");

    let second = start_with_dev_dir(&dir);
    let renewed = second
        .wait_for_log("renewed the development server certificate", PATIENCE)
        .unwrap_or_else(|| panic!("no renewal:\n{}", second.log()));
    assert!(renewed.contains(" INFO "), "{renewed}");
    // A client that trusts the development CA is shown a certificate for
    // a year, made for the key already there (the handshake proves the
    // server holds it, and the key file is as it was).
    let roots = nea::tls::root_store(nea::tls::load_certs(&dir.join("ca.pem")).expect("ca"))
        .expect("roots");
    let config = nea::tls::client_config(roots, None).expect("config");
    let stream = crate::common::tls_connect(second.addr, config)
        .await
        .expect("the renewed certificate verifies");
    let (_, session) = stream.get_ref();
    let presented = &session.peer_certificates().expect("a certificate")[0];
    let expires = nea::tls::expiry(presented).expect("an expiry");
    assert!(expires > now + day * 360, "{expires}");
    assert_eq!(read("server-key.pem"), ending.key_pem);
    drop(stream);
    assert!(second.stop().success());
}

/// Runs `servercli` with test certificates and its own default log level
/// (no `RUST_LOG`), plus `args`.
fn start_with_default_logging(args: &[&str]) -> Server {
    let pki = Pki::new();
    let mut command = Server::command_with(&pki, args);
    command.env_remove("RUST_LOG").env_remove("NEA_VERBOSE");
    Server::spawn(command, pki)
}

/// Serves one client of `server` that sends `line` and closes cleanly;
/// once the server's close_notify is back, its session has ended as the
/// client's close (and not as the server's stop).
async fn one_client_comes_and_goes(server: &Server, line: &str) {
    let mut client = server.connect().await;
    assert_eq!(client.round_trip(line).await, nea::reverse::reverse(line));
    client.shutdown_write().await;
    assert!(client.clean_end().await);
}

#[tokio::test]
async fn by_default_each_client_is_one_log_line_when_it_leaves() {
    let server = start_with_default_logging(&[]);
    one_client_comes_and_goes(&server, "hello").await;
    let log = server.stop_and_read_log();
    let line = line_with(&log, "client left");
    for field in [
        " INFO ",
        "tls=TLSv1.3",
        "cipher=TLS13_",
        "subject=-",
        "lines=1",
        "reason=\"closed by client\"",
        "clients=0",
    ] {
        assert!(line.contains(field), "{field} missing: {line}");
    }
    assert_eq!(log.matches("client connected").count(), 0, "{log}");
    assert_eq!(log.matches("client left").count(), 1, "{log}");
}

#[tokio::test]
async fn verbose_adds_a_line_when_each_client_joins() {
    let server = start_with_default_logging(&["--verbose"]);
    one_client_comes_and_goes(&server, "abc").await;
    let log = server.stop_and_read_log();
    let joined = line_with(&log, "client connected");
    assert!(joined.contains("clients=1"), "{joined}");
    line_with(&log, "client left");
}

#[test]
fn values_that_used_to_panic_or_overflow_are_refused_with_status_2() {
    // Each of these once reached the server: a semaphore too large for
    // tokio (a panic), a period that parsed to zero (a panic in every
    // connection), a line limit whose `+ 1` overflowed (a 300 MB line held).
    for (flag, value) in [
        ("--max-clients", "18446744073709551615"),
        ("--date-period", "0.0000000001"),
        ("--max-line-bytes", "18446744073709551615"),
    ] {
        let output = servercli(&["--port", "0", flag, value]);
        assert_eq!(output.status.code(), Some(2), "{flag} {value}");
        let stderr = stderr_of(&output);
        assert_eq!(stderr.lines().count(), 1, "{flag} {value}: {stderr}");
        assert!(stderr.starts_with("servercli: "), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// Starts a server with `args`, checks that it answers a line (and, if
/// `dates_soon`, that a date arrives), then stops it cleanly.
async fn serves_with(args: &[&str], dates_soon: bool) {
    let server = Server::start(args);
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("bounds").await, "sdnuob");
    if dates_soon {
        assert!(matches!(
            client.frame().await,
            nea::protocol::Frame::Date { .. }
        ));
    }
    assert!(server.stop().success(), "{args:?}");
}

#[tokio::test]
async fn every_numeric_flag_works_at_both_ends_of_its_range() {
    serves_with(
        &[
            "--max-clients",
            "1",
            "--max-handshakes",
            "1",
            "--max-line-bytes",
            "6",
            "--date-period",
            "10ms",
            "--handshake-timeout",
            "1h",
            "--write-timeout",
            "1h",
        ],
        true,
    )
    .await;
    serves_with(
        &[
            "--max-clients",
            "1000000",
            "--max-handshakes",
            "100000",
            "--max-line-bytes",
            "1048576",
            "--date-period",
            "24h",
            "--handshake-timeout",
            "10s",
            "--write-timeout",
            "10ms",
        ],
        false,
    )
    .await;
}

#[tokio::test]
async fn boolean_environment_variables_take_the_usual_spellings() {
    for (value, verbose) in [
        ("1", true),
        ("yes", true),
        ("on", true),
        ("true", true),
        ("0", false),
        ("no", false),
        ("off", false),
        ("false", false),
    ] {
        let pki = Pki::new();
        let mut command = Server::command_with(&pki, &[]);
        command.env_remove("RUST_LOG").env("NEA_VERBOSE", value);
        let server = Server::spawn(command, pki);
        one_client_comes_and_goes(&server, "env").await;
        let log = server.stop_and_read_log();
        assert_eq!(log.matches("client left").count(), 1, "{log}");
        assert_eq!(
            log.matches("client connected").count() == 1,
            verbose,
            "NEA_VERBOSE={value}"
        );
    }
    let output = Command::new(crate::common::servercli_exe())
        .env("NEA_VERBOSE", "maybe")
        .output()
        .expect("servercli runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(stderr_of(&output).lines().count(), 1);
}

#[test]
fn a_host_name_for_bind_is_refused_with_a_sentence_that_says_to_give_an_address() {
    let output = servercli(&["--bind", "localhost"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("give the address to listen on"), "{stderr}");
    assert!(stderr.contains("see --help"), "{stderr}");
}

#[test]
fn a_key_that_does_not_match_the_certificate_is_said_in_words() {
    let one = Pki::new();
    let other = Pki::new();
    let output = servercli(&[
        "--port",
        "0",
        "--cert",
        one.cert.to_str().expect("utf-8"),
        "--key",
        other.key.to_str().expect("utf-8"),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    let last = stderr.lines().last().expect("an error line");
    assert!(
        last.contains("the private key does not match the certificate"),
        "{stderr}"
    );
    assert!(!last.contains("KeyMismatch"), "{stderr}");
}

#[tokio::test]
async fn the_start_up_log_says_how_to_connect_with_given_certificates() {
    let server = Server::start(&[]);
    let port = server.addr.port();
    let log = server.stop_and_read_log();
    let hint = line_with(&log, "connect with");
    assert!(
        hint.contains(&format!(
            "clientcli --host 127.0.0.1 --port {port} --pin sha256:"
        )),
        "{hint}"
    );
    // The command pins the certificate's key: no CA file to name.
    assert!(!hint.contains("--ca"), "{hint}");
}

#[tokio::test]
async fn a_full_server_of_one_says_one_client() {
    let server = Server::start(&["--max-clients", "1"]);
    let mut holder = server.connect().await;
    assert_eq!(holder.round_trip("mine").await, "enim");
    let mut second = server.connect().await;
    let _ = second.non_date_frame().await;
    let log = server.stop_and_read_log();
    // The rejection is logged in the singular.
    line_with(&log, "server full (1 client); sent server_full");
}

#[test]
fn no_color_keeps_escape_codes_out_of_the_log_on_a_terminal() {
    use std::io::Read;
    for (no_color, coloured) in [(None, true), (Some("1"), false)] {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 200,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(&size, None).expect("openpty");
        let pki = Pki::new();
        let mut command = Server::command_with(&pki, &["--port-file"]);
        command.arg(pki.dir.path().join("port"));
        command
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(pty.slave));
        if let Some(value) = no_color {
            command.env("NO_COLOR", value);
        }
        let mut child = command.spawn().expect("servercli starts");
        let mut master = std::fs::File::from(pty.master);
        let mut seen = Vec::new();
        let mut chunk = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("connect with") {
            let n = master.read(&mut chunk).expect("read the log");
            seen.extend_from_slice(&chunk[..n]);
        }
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid")),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("signal");
        assert!(child.wait().expect("exits").success());
        let escapes = seen.windows(2).any(|w| w == b"\x1b[");
        assert_eq!(
            escapes,
            coloured,
            "NO_COLOR={no_color:?}: {}",
            String::from_utf8_lossy(&seen)
        );
    }
}
