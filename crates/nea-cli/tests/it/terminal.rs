//! `clientcli` in a real pseudo-terminal (SPEC §10): the line editor, output
//! above the prompt with the half-typed line intact, history, escaping, and
//! Ctrl-D / Ctrl-C ending the session cleanly.

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{OpenptyResult, Winsize, openpty};

use crate::common::{PATIENCE, Server};

/// `clientcli` running on the slave side of a pty; we hold the master.
struct Terminal {
    child: Child,
    master: File,
    /// Our copy of the slave side, to read the terminal's modes.
    slave: std::os::fd::OwnedFd,
    screen: Arc<(Mutex<Vec<u8>>, Condvar)>,
    /// Rows of the pty.
    rows: u16,
}

/// Rows and columns of the pty, unless a test asks for more rows.
const ROWS: u16 = 24;
const COLUMNS: u16 = 100;

impl Terminal {
    fn open(server: &Server) -> Self {
        Self::open_command(server.clientcli(), ROWS)
    }

    /// `command` (a `clientcli`) on a pty of `rows` rows, as a terminal
    /// runs it: in a session of its own whose controlling terminal is the
    /// pty, so that Ctrl-C outside the line editor is SIGINT, as it is for
    /// a person.
    fn open_command(clientcli: std::process::Command, rows: u16) -> Self {
        let mut command = std::process::Command::new("setsid");
        command
            .args(["--ctty", "--wait"])
            .arg(clientcli.get_program())
            .args(clientcli.get_args());
        for (name, value) in clientcli.get_envs() {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let size = Winsize {
            ws_row: rows,
            ws_col: COLUMNS,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let OpenptyResult { master, slave } = openpty(&size, None).expect("openpty");
        command
            .env("TERM", "xterm")
            .env("TZ", "UTC")
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave.try_clone().expect("dup")));
        let child = command.spawn().expect("clientcli starts");
        let master = File::from(master);
        let screen = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut reader = master.try_clone().expect("dup master");
        let mut answerer = master.try_clone().expect("dup master");
        let sink = screen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once the child has exited and the slave closed.
            while let Ok(n @ 1..) = reader.read(&mut buf) {
                let chunk = &buf[..n];
                // The editor asks where the cursor is; a terminal answers.
                if chunk.windows(4).any(|w| w == b"\x1b[6n") {
                    let _ = answerer.write_all(b"\x1b[1;1R");
                }
                let (lock, grew) = &*sink;
                lock.lock().expect("screen").extend_from_slice(chunk);
                grew.notify_all();
            }
        });
        Self {
            child,
            master,
            slave,
            screen,
            rows,
        }
    }

    /// What a person sees: the output so far, played through a terminal
    /// emulator of the pty's size (what was printed and then wiped is not
    /// there).
    fn visible(&self) -> String {
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a size");
        let mut parser = vt100::Parser::new(size(self.rows), size(COLUMNS), 0);
        parser.process(&self.screen.0.lock().expect("screen"));
        parser.screen().contents()
    }

    /// Waits until the client has written nothing for `quiet`, so that the
    /// screen is what it will stay.
    fn settle(&self, quiet: Duration) {
        let deadline = Instant::now() + PATIENCE;
        let mut seen = self.screen.0.lock().expect("screen").len();
        loop {
            std::thread::sleep(quiet);
            let now = self.screen.0.lock().expect("screen").len();
            if now == seen || Instant::now() > deadline {
                return;
            }
            seen = now;
        }
    }

    /// Everything the client has written so far, lossily decoded.
    fn output(&self) -> String {
        String::from_utf8_lossy(&self.screen.0.lock().expect("screen")).into_owned()
    }

    /// Waits until the output holds `needle` `count` times; returns the
    /// output.
    fn wait_for(&self, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        let (lock, grew) = &*self.screen;
        let mut screen = lock.lock().expect("screen");
        loop {
            let text = String::from_utf8_lossy(&screen).into_owned();
            if text.matches(needle).count() >= count {
                return text;
            }
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no {needle:?} x{count} in:\n{text}"));
            screen = grew.wait_timeout(screen, left).expect("screen").0;
        }
    }

    fn type_keys(&mut self, keys: &[u8]) {
        self.master.write_all(keys).expect("type");
        self.master.flush().expect("flush");
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "clientcli did not exit:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_date_arrives_above_a_half_typed_line_which_stays_intact() {
    let server = Server::start(&["--date-period", "700ms"]);
    let mut term = Terminal::open(&server);
    term.wait_for("connected to 127.0.0.1:", 1);
    term.wait_for("> ", 1);
    let dates_before = term.output().matches("date: ").count();
    term.type_keys(b"hel");
    term.wait_for("hel", 1);
    // A date arrives while "hel" is typed but not sent ...
    let screen = term.wait_for("date: ", dates_before + 1);
    let after_date = &screen[screen.rfind("date: ").expect("a date")..];
    assert!(after_date.contains(" UTC"), "{after_date:?}");
    // ... and the prompt is redrawn below it with the half-typed line.
    term.wait_for("> hel", 2);
    term.type_keys(b"lo\r");
    let screen = term.wait_for("olleh", 1);
    assert!(!screen.contains("oll\n"), "the line was sent whole");
    // Ctrl-D: end of input, close_notify, exit 0.
    term.type_keys(b"\x04");
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}\n{}", term.output());
    server
        .wait_for_log("reason=\"closed by client\"", PATIENCE)
        .expect("the session ended with close_notify");
    assert!(server.stop().success());
}

#[test]
fn history_recalls_a_line_and_ctrl_c_exits_cleanly() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    term.type_keys(b"abc\r");
    term.wait_for("cba", 1);
    // Up arrow recalls "abc"; Return sends it again.
    term.type_keys(b"\x1b[A");
    term.wait_for("abc", 2);
    term.type_keys(b"\r");
    term.wait_for("cba", 2);
    term.type_keys(b"\x03");
    let status = term.wait_exit();
    assert!(status.success(), "{status:?}\n{}", term.output());
    server
        .wait_for_log("reason=\"closed by client\"", PATIENCE)
        .expect("Ctrl-C also closes with close_notify");
    assert!(server.stop().success());
}

#[test]
fn control_characters_from_the_server_are_escaped_but_joiners_kept() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    // Ctrl-V Ctrl-A inserts a literal U+0001 into the line.
    term.type_keys(b"x\x16\x01y\r");
    term.wait_for("y\\u{1}x", 1);
    let family = "👨\u{200d}👩\u{200d}👧";
    term.type_keys(format!("{family}!\r").as_bytes());
    term.wait_for(&format!("!{family}"), 1);
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    assert!(server.stop().success());
}

#[test]
fn the_server_going_away_ends_the_session_and_restores_the_terminal() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    term.type_keys(b"half");
    term.wait_for("half", 1);
    assert!(server.stop().success());
    let status = term.wait_exit();
    assert_eq!(status.code(), Some(74), "{}", term.output());
    term.wait_for("clientcli: the server shut down", 1);
    // The editor left raw mode: canonical input and echo are back.
    let modes = nix::sys::termios::tcgetattr(&term.slave).expect("tcgetattr");
    let local = modes.local_flags;
    assert!(
        local.contains(nix::sys::termios::LocalFlags::ICANON),
        "{local:?}"
    );
    assert!(
        local.contains(nix::sys::termios::LocalFlags::ECHO),
        "{local:?}"
    );
}

#[test]
fn the_connected_line_stays_on_screen_after_the_first_prompt() {
    let server = Server::start(&[]);
    for run in 0..10 {
        let mut term = Terminal::open(&server);
        term.wait_for("connected to 127.0.0.1:", 1);
        term.wait_for("> ", 1);
        term.settle(Duration::from_millis(150));
        let screen = term.visible();
        assert!(
            screen.contains("connected to 127.0.0.1:"),
            "run {run}: the line is gone from the screen:\n{screen}"
        );
        term.type_keys(b"\x04");
        assert!(term.wait_exit().success());
    }
    assert!(server.stop().success());
}

/// A server written for the burst test: it sends a date every 100 ms and
/// answers each line, reversed, `delay` after it arrives; after it answers
/// `last`, it sends no more dates. Returns its port and a counter of the
/// dates it sent.
async fn delayed_server(
    pki: &crate::common::Pki,
    delay: Duration,
    last: String,
) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dates = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sent = dates.clone();
    let addr = crate::common::scripted_server(pki, move |stream| async move {
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = BufReader::new(read).lines();
        let mut ticks = tokio::time::interval(Duration::from_millis(100));
        ticks.tick().await;
        let mut dating = true;
        loop {
            let frame = tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(line)) => {
                        dating &= line != last;
                        tokio::time::sleep(delay).await;
                        let reply = nea::reverse::reverse(&line);
                        serde_json::json!({"msg_type": "string", "payload": reply})
                    }
                    _ => break,
                },
                _ = ticks.tick(), if dating => {
                    sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    serde_json::json!({"msg_type": "date", "payload": "2026-12-01T12:00:00.000Z"})
                }
            };
            if write
                .write_all(format!("{frame}\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = write.shutdown().await;
    })
    .await;
    (addr.port(), dates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_lines_shows_every_reply_and_date_once_in_order_whatever_the_server_delay() {
    let lines: Vec<String> = (0..30).map(|n| format!("burst line {n:02}")).collect();
    let mut run = 0;
    for delay_us in [0u64, 200, 1_000, 2_000] {
        for _ in 0..5 {
            run += 1;
            let pki = crate::common::Pki::new();
            let (port, dates) =
                delayed_server(&pki, Duration::from_micros(delay_us), lines[29].clone()).await;
            let command = crate::common::clientcli_for(port, &pki.ca_pem);
            let typed = lines.clone();
            let (screen, dates_sent) = tokio::task::spawn_blocking(move || {
                let mut term = Terminal::open_command(command, 300);
                term.wait_for("> ", 1);
                for line in &typed {
                    term.type_keys(format!("{line}\r").as_bytes());
                    std::thread::sleep(Duration::from_millis(50));
                }
                term.wait_for(&nea::reverse::reverse(&typed[29]), 1);
                // Stop the dates before reading the screen: end the input.
                term.type_keys(b"\x04");
                assert!(term.wait_exit().success(), "{}", term.output());
                let dates_sent = dates.load(std::sync::atomic::Ordering::SeqCst);
                (term.visible(), dates_sent)
            })
            .await
            .expect("terminal");
            let mut at = 0;
            for line in &lines {
                let reply = nea::reverse::reverse(line);
                assert_eq!(
                    screen.matches(&reply).count(),
                    1,
                    "run {run} (delay {delay_us} µs): {reply:?} not shown exactly once:\n{screen}"
                );
                let found = screen.find(&reply).expect("shown");
                assert!(found > at, "run {run}: {reply:?} out of order:\n{screen}");
                at = found;
            }
            // Every date was sent before the last reply, which was shown.
            let shown = screen.matches("date: ").count();
            assert!(
                shown == dates_sent,
                "run {run} (delay {delay_us} µs): {shown} dates shown of {dates_sent} sent:\n{screen}"
            );
        }
    }
}

#[test]
fn ctrl_c_ends_the_client_at_once_while_it_waits_to_reconnect() {
    let server = Server::start(&[]);
    let mut command = server.clientcli();
    command.arg("--reconnect");
    let mut term = Terminal::open_command(command, ROWS);
    term.wait_for("> ", 1);
    assert!(server.stop().success());
    term.wait_for("reconnecting in", 1);
    term.type_keys(b"pending\r");
    // Ctrl-D once the editor is back for the next line (typed before, the
    // terminal's own line discipline takes it).
    let prompts = term.output().matches("> ").count();
    term.wait_for("> ", prompts + 1);
    std::thread::sleep(Duration::from_millis(100));
    term.type_keys(b"\x04");
    // Input has ended, a line is unanswered, and the server is away: the
    // client keeps retrying, until Ctrl-C.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(term.child.try_wait().expect("try_wait").is_none());
    let pressed = Instant::now();
    term.type_keys(b"\x03");
    let status = term.wait_exit();
    assert!(
        pressed.elapsed() < Duration::from_secs(2),
        "Ctrl-C took {:?}:\n{}",
        pressed.elapsed(),
        term.output()
    );
    // A line was typed and never answered: the status says so, and one
    // sentence counts it (SPEC §10, "Honest about what was answered").
    assert_eq!(status.code(), Some(130), "{status:?}\n{}", term.output());
    assert!(
        term.output()
            .contains("stopped with 1 of 1 lines not answered"),
        "{}",
        term.output()
    );
}

#[test]
fn the_history_is_kept_across_sessions_owner_only_and_can_be_turned_off() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start(&[]);
    let state = tempfile::tempdir().expect("tempdir");
    let with_history = || {
        let mut command = server.clientcli();
        command
            .env_remove("NEA_NO_HISTORY")
            .env("XDG_STATE_HOME", state.path());
        command
    };
    let mut first = Terminal::open_command(with_history(), ROWS);
    first.wait_for("> ", 1);
    first.type_keys(b"remember me\r");
    first.wait_for("em rebmemer", 1);
    first.type_keys(b"\x04");
    assert!(first.wait_exit().success());
    let file = state.path().join("nea").join("history");
    let saved = std::fs::read_to_string(&file).expect("the history file");
    assert!(saved.contains("remember me"), "{saved}");
    let mode = std::fs::metadata(&file)
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let dir_mode = std::fs::metadata(file.parent().expect("its directory"))
        .expect("metadata")
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o777, 0o700, "{dir_mode:o}");

    // A new session recalls it with Up.
    let mut second = Terminal::open_command(with_history(), ROWS);
    second.wait_for("> ", 1);
    second.type_keys(b"\x1b[A\r");
    second.wait_for("em rebmemer", 1);
    second.type_keys(b"\x04");
    assert!(second.wait_exit().success());

    // --no-history: nothing is written.
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let mut command = server.clientcli();
    command
        .env_remove("NEA_NO_HISTORY")
        .env("XDG_STATE_HOME", elsewhere.path())
        .arg("--no-history");
    let mut third = Terminal::open_command(command, ROWS);
    third.wait_for("> ", 1);
    third.type_keys(b"forget me\r");
    third.wait_for("em tegrof", 1);
    third.type_keys(b"\x04");
    assert!(third.wait_exit().success());
    assert!(!elsewhere.path().join("nea").exists());
    assert!(server.stop().success());
}

/// Accepts TCP connections on `listener` and holds them without a word: a
/// TLS handshake with it never ends. The thread ends with the process.
fn hold_connections(listener: std::net::TcpListener) {
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for socket in listener.incoming().flatten() {
            held.push(socket);
        }
    });
}

#[test]
fn ctrl_c_ends_the_client_at_once_during_its_first_handshake() {
    let pki = crate::common::Pki::new();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    hold_connections(listener);
    // The handshake would wait 10 s for an answer that never comes.
    let mut term = Terminal::open_command(crate::common::clientcli_for(port, &pki.ca_pem), ROWS);
    std::thread::sleep(Duration::from_millis(500));
    assert!(term.child.try_wait().expect("try_wait").is_none());
    let pressed = Instant::now();
    term.type_keys(b"\x03");
    let status = term.wait_exit();
    assert!(
        pressed.elapsed() < Duration::from_secs(2),
        "Ctrl-C took {:?}:\n{}",
        pressed.elapsed(),
        term.output()
    );
    assert!(status.success(), "{status:?}\n{}", term.output());
}

#[test]
fn ctrl_c_ends_the_client_at_once_while_a_reconnection_hangs() {
    let server = Server::start(&[]);
    let port = server.addr.port();
    let mut command = server.clientcli();
    command.arg("--reconnect");
    let mut term = Terminal::open_command(command, ROWS);
    term.wait_for("> ", 1);
    assert!(server.stop().success());
    // Something else takes the port and never answers a handshake: the
    // next attempt hangs in it for the 10 s connect timeout.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    hold_connections(listener);
    term.wait_for("reconnecting in", 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(term.child.try_wait().expect("try_wait").is_none());
    let pressed = Instant::now();
    term.type_keys(b"\x03");
    let status = term.wait_exit();
    assert!(
        pressed.elapsed() < Duration::from_secs(2),
        "Ctrl-C took {:?}:\n{}",
        pressed.elapsed(),
        term.output()
    );
    assert!(status.success(), "{status:?}\n{}", term.output());
}
