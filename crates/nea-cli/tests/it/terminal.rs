//! `clientcli` in a real pseudo-terminal (SPEC §10): the line editor (keys,
//! wide and combining characters, long lines, resizes), output above the
//! prompt with the half-typed line intact, history, escaping, Ctrl-D /
//! Ctrl-C ending the session cleanly, and the one owner of the terminal
//! (v3): no message lost or drawn on the prompt's row, whenever it comes.

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Child, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::pty::{OpenptyResult, Winsize, openpty};

use crate::common::{PATIENCE, Server, sample_if_any, start_with_admin, try_get};

/// `clientcli` running on the slave side of a pty; we hold the master.
struct Terminal {
    child: Child,
    master: File,
    /// Our copy of the slave side, to read the terminal's modes and resize
    /// it; closed once the client has exited, so that the reader sees the
    /// end of the output.
    slave: Option<std::os::fd::OwnedFd>,
    /// The terminal's modes as the client left them, once it has exited.
    modes_at_exit: Option<nix::sys::termios::Termios>,
    /// Copies what the client writes into `screen`; ends when no slave side
    /// is left open and everything written has been read.
    reader: Option<std::thread::JoinHandle<()>>,
    /// Everything the client has written so far.
    screen: Arc<(Mutex<Vec<u8>>, Condvar)>,
    /// Rows of the pty.
    rows: u16,
    /// Each resize of the pty: how much output came before it, and the new
    /// number of columns (the emulator follows at that point).
    resizes: Vec<(usize, u16)>,
}

/// Rows and columns of the pty, unless a test asks for more rows.
const ROWS: u16 = 24;
const COLUMNS: u16 = 100;

/// How soon "at once" must be: generous for a loaded machine, yet far from
/// the minutes the client would otherwise wait (the tests that use it make
/// the connect timeout ten minutes).
const AT_ONCE: Duration = Duration::from_secs(10);

/// A connect timeout no test waits out: what ends the client must be
/// something else.
const NEVER: &str = "10m";

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
        let mut output = master.try_clone().expect("dup master");
        let sink = screen.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends with EIO once no slave side is open and nothing is left.
            while let Ok(n @ 1..) = output.read(&mut buf) {
                let (lock, grew) = &*sink;
                lock.lock().expect("screen").extend_from_slice(&buf[..n]);
                grew.notify_all();
            }
        });
        Self {
            child,
            master,
            slave: Some(slave),
            modes_at_exit: None,
            reader: Some(reader),
            screen,
            rows,
            resizes: Vec::new(),
        }
    }

    /// The output so far played through a terminal emulator of the pty's
    /// size (resized where the pty was).
    fn emulator(&self) -> vt100::Parser {
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a size");
        let mut parser = vt100::Parser::new(size(self.rows), size(COLUMNS), 0);
        let output = self.screen.0.lock().expect("screen");
        let mut done = 0;
        for &(at, columns) in &self.resizes {
            parser.process(&output[done..at]);
            parser.set_size(size(self.rows), size(columns));
            done = at;
        }
        parser.process(&output[done..]);
        parser
    }

    /// What a person sees: the output so far, played through a terminal
    /// emulator of the pty's size (what was printed and then wiped is not
    /// there).
    fn visible(&self) -> String {
        self.emulator().screen().contents()
    }

    /// The screen's rows, trailing blanks trimmed.
    fn visible_rows(&self) -> Vec<String> {
        let parser = self.emulator();
        let columns = parser.screen().size().1.get();
        let rows = parser.screen().rows(0, columns);
        rows.map(|row| row.trim_end().to_owned()).collect()
    }

    /// The row the cursor is on, and the cursor's column.
    fn cursor_row(&self) -> (String, u16) {
        let parser = self.emulator();
        let (row, column) = parser.screen().cursor_position();
        let rows = self.visible_rows();
        (rows[usize::from(row)].clone(), column)
    }

    /// Makes the pty `columns` wide, as a person resizing the window does
    /// (the client gets SIGWINCH).
    fn resize(&mut self, columns: u16) {
        let before = self.screen.0.lock().expect("screen").len();
        let status = std::process::Command::new("stty")
            .args(["cols", &columns.to_string()])
            .stdin(Stdio::from(self.slave().try_clone().expect("dup")))
            .status()
            .expect("stty runs");
        assert!(status.success(), "stty cols {columns}: {status:?}");
        self.resizes.push((before, columns));
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

    /// Waits for the client to exit after Ctrl-C, which must end it at once:
    /// well within [`AT_ONCE`], though what it was doing (a handshake, a
    /// reconnection) would have taken minutes.
    fn wait_exit_after_ctrl_c(&mut self) -> std::process::ExitStatus {
        let pressed = Instant::now();
        let status = self.wait_exit();
        assert!(
            pressed.elapsed() < AT_ONCE,
            "Ctrl-C took {:?}:\n{}",
            pressed.elapsed(),
            self.output()
        );
        status
    }

    /// Our slave side, while the client runs.
    fn slave(&self) -> &std::os::fd::OwnedFd {
        self.slave.as_ref().expect("the client still runs")
    }

    /// Waits for the client to exit, then for all it wrote: the output and
    /// the screen are final when this returns.
    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.read_to_the_end(deadline);
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

    /// Once the client has exited: keeps the terminal's modes as it left
    /// them, closes our slave side, and waits until the reader has read
    /// all that was written (the process may be gone while its last bytes
    /// are still in the pty).
    fn read_to_the_end(&mut self, deadline: Instant) {
        if let Some(slave) = self.slave.take() {
            self.modes_at_exit = nix::sys::termios::tcgetattr(&slave).ok();
        }
        let Some(reader) = self.reader.take() else {
            return;
        };
        while !reader.is_finished() {
            assert!(
                Instant::now() < deadline,
                "the output never ended:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        reader.join().expect("the reader");
    }

    /// The local modes the client left the terminal in.
    fn local_modes_at_exit(&self) -> nix::sys::termios::LocalFlags {
        self.modes_at_exit
            .as_ref()
            .expect("the client has exited")
            .local_flags
    }
}

/// Waits until the server whose admin endpoint is `admin` has counted a
/// session its client closed cleanly (close_notify); `what` says what
/// that shows.
fn closed_cleanly(admin: std::net::SocketAddr, what: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let text = try_get(admin, "/metrics").map_or_else(|err| err.to_string(), |(_, text)| text);
        if sample_if_any(&text, "nea_sessions_ended_total{reason=\"closed\"}") >= Some(1.0) {
            return;
        }
        assert!(Instant::now() < deadline, "not so: {what}\n{text}");
        std::thread::sleep(Duration::from_millis(20));
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
    let (server, admin) = start_with_admin(&["--date-period", "700ms"]);
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
    closed_cleanly(admin, "the session ended with close_notify");
    assert!(server.stop().success());
}

#[test]
fn history_recalls_a_line_and_ctrl_c_exits_cleanly() {
    let (server, admin) = start_with_admin(&[]);
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
    closed_cleanly(admin, "Ctrl-C also closes with close_notify");
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
    let local = term.local_modes_at_exit();
    assert!(
        local.contains(nix::sys::termios::LocalFlags::ICANON),
        "{local:?}"
    );
    assert!(
        local.contains(nix::sys::termios::LocalFlags::ECHO),
        "{local:?}"
    );
    // The cursor is visible, and the sentence has a row of its own (the
    // prompt and the unsent line are gone).
    assert!(!term.emulator().screen().hide_cursor());
    let rows = term.visible_rows();
    assert!(
        rows.iter()
            .any(|row| row.starts_with("clientcli: the server shut down")),
        "{rows:#?}"
    );
    assert!(!rows.iter().any(|row| row.starts_with("> ")), "{rows:#?}");
}

#[test]
fn sigint_from_outside_ends_the_client_as_ctrl_c_does() {
    let (server, admin) = start_with_admin(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    term.type_keys(b"half");
    term.wait_for("half", 1);
    // `setsid` runs the client in its own process, without forking.
    let pid = i32::try_from(term.child.id()).expect("a pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGINT,
    )
    .expect("SIGINT sent");
    let status = term.wait_exit_after_ctrl_c();
    assert!(status.success(), "{status:?}\n{}", term.output());
    closed_cleanly(admin, "the session ended with close_notify");
    let local = term.local_modes_at_exit();
    assert!(
        local.contains(nix::sys::termios::LocalFlags::ICANON),
        "{local:?}"
    );
    assert!(server.stop().success());
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
    term.type_keys(b"\x03");
    let status = term.wait_exit_after_ctrl_c();
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
    // The handshake would wait ten minutes for an answer that never comes.
    let mut command = crate::common::clientcli_for(port, &pki.ca_pem);
    command.args(["--connect-timeout", NEVER]);
    let mut term = Terminal::open_command(command, ROWS);
    std::thread::sleep(Duration::from_millis(500));
    assert!(term.child.try_wait().expect("try_wait").is_none());
    term.type_keys(b"\x03");
    let status = term.wait_exit_after_ctrl_c();
    assert!(status.success(), "{status:?}\n{}", term.output());
}

#[test]
fn ctrl_c_ends_the_client_at_once_while_a_reconnection_hangs() {
    let server = Server::start(&[]);
    let port = server.addr.port();
    let mut command = server.clientcli();
    command.args(["--reconnect", "--connect-timeout", NEVER]);
    let mut term = Terminal::open_command(command, ROWS);
    term.wait_for("> ", 1);
    assert!(server.stop().success());
    // Something else takes the port and never answers a handshake: the
    // next attempt hangs in it for the ten-minute connect timeout.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port again");
    hold_connections(listener);
    term.wait_for("reconnecting in", 1);
    std::thread::sleep(Duration::from_millis(1500));
    assert!(term.child.try_wait().expect("try_wait").is_none());
    term.type_keys(b"\x03");
    let status = term.wait_exit_after_ctrl_c();
    assert!(status.success(), "{status:?}\n{}", term.output());
}

impl Terminal {
    /// Waits until `ready` holds for the emulated screen (what a person
    /// would see once the client has drawn it); panics with the screen if
    /// it never does.
    fn wait_until(&self, what: &str, ready: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !ready(self) {
            assert!(
                Instant::now() < deadline,
                "never {what}:\n{}",
                self.visible()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until the prompt row shows `row` with the cursor at `column`.
    fn wait_for_prompt_row(&self, row: &str, column: u16) {
        self.wait_until(
            &format!("the prompt row {row:?} at column {column}"),
            |term| term.cursor_row() == (row.to_owned(), column),
        );
    }

    /// Types `keys` and Return, and waits for the reply to `line`, what the
    /// keys must have made.
    fn send_edited(&mut self, keys: &[u8], line: &str) {
        self.type_keys(keys);
        self.type_keys(b"\r");
        self.wait_for(&nea::reverse::reverse(line), 1);
    }
}

#[test]
fn the_emacs_keys_edit_the_line() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    // Ctrl-A, Ctrl-E.
    term.send_edited(b"world\x01hello \x05!", "hello world!");
    // Left, Backspace, Delete.
    term.send_edited(b"abcd\x1b[D\x1b[D\x7f\x1b[3~", "ad");
    // Ctrl-B, Ctrl-H, Ctrl-F.
    term.send_edited(b"xyz\x02\x02\x08\x06Q", "yQz");
    // Home, End.
    term.send_edited(b"mid\x1b[Hstart-\x1b[F-end", "start-mid-end");
    // Ctrl-D deletes under the cursor on a line that is not empty; Alt-D
    // kills a word.
    term.send_edited(b"abc\x01\x04", "bc");
    term.send_edited(b"first second\x01\x1bd", " second");
    // Alt-B, Ctrl-K, Alt-F, Ctrl-Y.
    term.send_edited(b"one two three\x1bb\x0b\x1bb\x1bf!\x19", "one two!three ");
    // Ctrl-W, Ctrl-U.
    term.send_edited(b"alpha beta\x17gamma", "alpha gamma");
    term.send_edited(b"junk\x15clean", "clean");
    // Ctrl-L clears the screen; the half-typed line is redrawn at the top.
    term.type_keys(b"half");
    term.wait_for("half", 1);
    term.type_keys(b"\x0c");
    term.wait_until("the prompt at the top", |term| {
        term.visible_rows().first().map(String::as_str) == Some("> half")
    });
    term.send_edited(b"way", "halfway");
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    assert!(server.stop().success());
}

#[test]
fn wide_and_combining_characters_are_edited_whole_and_the_cursor_placed_by_width() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    term.type_keys("日本語".as_bytes());
    term.wait_for_prompt_row("> 日本語", 8);
    term.type_keys(b"\x1b[D\x1b[D");
    term.wait_for_prompt_row("> 日本語", 4);
    term.send_edited(b"x", "日x本語");
    // Backspace takes the accent with its letter.
    term.type_keys("ae\u{301}".as_bytes());
    term.wait_for_prompt_row("> ae\u{301}", 4);
    term.send_edited(b"\x7f!", "a!");
    // Left steps over a whole emoji family.
    let family = "👨\u{200d}👩\u{200d}👧";
    term.type_keys(family.as_bytes());
    term.send_edited(b"\x1b[D<", &format!("<{family}"));
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    assert!(server.stop().success());
}

#[test]
fn a_line_longer_than_the_terminal_scrolls_under_the_prompt_and_is_sent_whole() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    let line: String = (0..150)
        .map(|n| char::from(b'a' + (n % 26) as u8))
        .collect();
    term.type_keys(line.as_bytes());
    // 100 columns: the prompt, 97 characters, and the last column free for
    // the cursor.
    term.wait_for_prompt_row(&format!("> {}", &line[150 - 97..]), 99);
    term.type_keys(b"\x01");
    term.wait_for_prompt_row(&format!("> {}", &line[..97]), 2);
    term.send_edited(b"", &line);
    // The sent line stays on the screen whole, over two rows.
    let rows = term.visible_rows();
    let at = rows
        .iter()
        .position(|row| row.starts_with("> abc"))
        .expect("the sent line");
    assert_eq!(format!("{}{}", rows[at], rows[at + 1]), format!("> {line}"));
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    assert!(server.stop().success());
}

#[test]
fn a_resize_redraws_the_prompt_row_to_the_new_width() {
    let server = Server::start(&[]);
    let mut term = Terminal::open(&server);
    term.wait_for("> ", 1);
    let line: String = (0..80).map(|n| char::from(b'A' + (n % 26) as u8)).collect();
    term.type_keys(line.as_bytes());
    term.wait_for_prompt_row(&format!("> {line}"), 82);
    term.resize(40);
    term.wait_for_prompt_row(&format!("> {}", &line[80 - 37..]), 39);
    term.resize(120);
    term.wait_for_prompt_row(&format!("> {line}"), 82);
    term.send_edited(b"", &line);
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    assert!(server.stop().success());
}

#[test]
fn a_history_file_that_cannot_be_used_gives_one_notice_and_the_session_goes_on() {
    let server = Server::start(&[]);
    let state = tempfile::tempdir().expect("tempdir");
    // The state directory is a file: no directory can be made in it.
    let not_a_directory = state.path().join("file");
    std::fs::write(&not_a_directory, "").expect("written");
    let mut command = server.clientcli();
    command
        .env_remove("NEA_NO_HISTORY")
        .env("XDG_STATE_HOME", &not_a_directory);
    let mut term = Terminal::open_command(command, ROWS);
    term.wait_for("> ", 1);
    term.send_edited(b"still works", "still works");
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    let output = term.output();
    assert_eq!(
        output
            .matches("clientcli: no history kept: cannot use")
            .count(),
        1,
        "{output}"
    );
    assert!(server.stop().success());
}

#[test]
fn log_lines_are_printed_above_the_prompt_and_no_colour_with_no_color() {
    let server = Server::start(&[]);
    let mut command = server.clientcli();
    command.arg("--verbose").env("NO_COLOR", "1");
    let mut term = Terminal::open_command(command, ROWS);
    term.wait_for("> ", 1);
    term.send_edited(b"logged", "logged");
    term.type_keys(b"\x04");
    assert!(term.wait_exit().success());
    let rows = term.visible_rows();
    let logged = rows
        .iter()
        .find(|row| row.contains("TCP connected"))
        .unwrap_or_else(|| panic!("no log line:\n{rows:#?}"));
    // A row of its own, from its first column (raw mode turns off the
    // terminal's own carriage return: a line written past the owner would
    // start where the last one ended).
    assert!(logged.starts_with("20"), "{rows:#?}");
    let output = term.output();
    let coloured = output.split("\x1b[").skip(1).any(|sequence| {
        sequence
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ';')
            .starts_with('m')
    });
    assert!(!coloured, "a colour despite NO_COLOR:\n{output:?}");
    assert!(server.stop().success());
}

#[test]
fn ctrl_z_suspends_the_client_and_fg_brings_it_back_as_it_was() {
    let server = Server::start(&[]);
    let clientcli = server.clientcli();
    // A shell with job control runs the client, as a person's does.
    let mut shell = std::process::Command::new("bash");
    shell
        .args(["--norc", "--noprofile", "-i"])
        .env("PS1", "shell$ ");
    for (name, value) in clientcli.get_envs() {
        match value {
            Some(value) => shell.env(name, value),
            None => shell.env_remove(name),
        };
    }
    let mut term = Terminal::open_command(shell, ROWS);
    term.wait_for("shell$ ", 1);
    let mut typed = clientcli.get_program().to_string_lossy().into_owned();
    for arg in clientcli.get_args() {
        typed.push_str(&format!(" '{}'", arg.to_string_lossy()));
    }
    term.type_keys(format!("{typed}\r").as_bytes());
    term.wait_for("connected to", 1);
    term.wait_for("> ", 1);
    term.type_keys(b"abc");
    term.wait_for_prompt_row("> abc", 5);
    term.type_keys(b"\x1a");
    term.wait_for("Stopped", 1);
    term.wait_for("shell$ ", 2);
    term.type_keys(b"fg\r");
    term.wait_for_prompt_row("> abc", 5);
    term.send_edited(b"d", "abcd");
    term.type_keys(b"\x04");
    term.wait_for("shell$ ", 3);
    term.type_keys(b"exit\r");
    assert!(term.wait_exit().success(), "{}", term.output());
    assert!(server.stop().success());
}

/// How a run of the race test ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RaceEnd {
    /// Ctrl-D typed at once after the last line, while dates keep coming:
    /// the client exits as the last reply comes in.
    CtrlD,
    /// The server answers the last line, sends two more dates at once and
    /// closes the connection.
    ServerLeaves,
    /// Ctrl-C once the first reply is on the screen, while dates come.
    CtrlC,
    /// The real server, dating every 10 ms (the least it allows); Ctrl-D as
    /// for `CtrlD`.
    RealServer,
}

/// What the racing server sent, as the test reads it once the client has
/// exited.
#[derive(Debug, Default)]
struct RaceSent {
    /// Dates sent in all.
    dates: std::sync::atomic::AtomicUsize,
    /// Dates sent before the reply to the last line (each of them was read
    /// by a client that read that reply).
    dates_before_last_reply: std::sync::atomic::AtomicUsize,
}

/// The payload of the racing server's date `n`: 12:00:00 plus `n` seconds,
/// so that each date is told apart on the screen.
fn race_date(n: usize) -> String {
    let second = 12 * 3600 + n;
    let (hour, minute, second) = (second / 3600, second / 60 % 60, second % 60);
    format!("2026-12-01T{hour:02}:{minute:02}:{second:02}.000Z")
}

/// Which date a row shows (`date: 2026-12-01 12:00:07 UTC` is 7), if it is
/// one of the racing server's.
fn race_date_number(shown: &str) -> Option<usize> {
    let time = shown.strip_prefix("2026-12-01 ")?.strip_suffix(" UTC")?;
    let mut parts = time.split(':').map(|part| part.parse::<usize>().ok());
    let (hour, minute, second) = (parts.next()??, parts.next()??, parts.next()??);
    (hour * 3600 + minute * 60 + second).checked_sub(12 * 3600)
}

/// A server for the race test: a numbered date every `period`, each line
/// answered `delay` after it arrives; after it answers `last`, it goes on
/// dating until the client closes, or (`ServerLeaves`) sends two more dates
/// at once and closes.
async fn racing_server(
    pki: &crate::common::Pki,
    period: Duration,
    delay: Duration,
    last: String,
    end: RaceEnd,
) -> (u16, Arc<RaceSent>) {
    use std::sync::atomic::Ordering::SeqCst;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let sent = Arc::new(RaceSent::default());
    let counts = sent.clone();
    let addr = crate::common::scripted_server(pki, move |stream| async move {
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = BufReader::new(read).lines();
        let start = tokio::time::Instant::now() + period;
        let mut ticks = tokio::time::interval_at(start, period);
        let mut frames = Vec::new();
        let mut leaving = false;
        loop {
            tokio::select! {
                line = lines.next_line() => {
                    let Ok(Some(line)) = line else { break };
                    tokio::time::sleep(delay).await;
                    let reply = nea::reverse::reverse(&line);
                    frames.push(serde_json::json!({"msg_type": "string", "payload": reply}));
                    if line == last {
                        counts.dates_before_last_reply.store(counts.dates.load(SeqCst), SeqCst);
                        if end == RaceEnd::ServerLeaves {
                            leaving = true;
                            for _ in 0..2 {
                                let n = counts.dates.fetch_add(1, SeqCst);
                                frames.push(serde_json::json!({"msg_type": "date", "payload": race_date(n)}));
                            }
                        }
                    }
                }
                _ = ticks.tick() => {
                    let n = counts.dates.fetch_add(1, SeqCst);
                    frames.push(serde_json::json!({"msg_type": "date", "payload": race_date(n)}));
                }
            }
            if !write_frames(&mut write, frames.drain(..)).await {
                return;
            }
            if leaving {
                break;
            }
        }
        let _ = write.shutdown().await;
        // Read what the client still sends, so that closing does not reset
        // the connection under the last frames.
        let _ = tokio::time::timeout(PATIENCE, async { while let Ok(Some(_)) = lines.next_line().await {} }).await;
    })
    .await;
    (addr.port(), sent)
}

/// Writes `frames`, one per line, and flushes; false if the client is gone.
async fn write_frames<W: tokio::io::AsyncWrite + Unpin>(
    write: &mut W,
    frames: impl Iterator<Item = serde_json::Value>,
) -> bool {
    use tokio::io::AsyncWriteExt;
    for frame in frames {
        if write
            .write_all(format!("{frame}\n").as_bytes())
            .await
            .is_err()
        {
            return false;
        }
    }
    write.flush().await.is_ok()
}

/// What one row of the screen is, in a race run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RaceRow {
    Blank,
    Connected,
    /// A date: the racing server's number, or `None` for a real date.
    Date(Option<usize>),
    /// The reply to line `i`.
    Reply(usize),
    /// Line `i` as it was sent, after the prompt.
    Sent(usize),
    /// The client's last sentence (`clientcli: ...`).
    Notice,
}

/// What `row` is; an error if it is none of the messages, whole (a message
/// drawn on the prompt's row, or two messages on one row, is neither).
fn classify(row: &str, lines: &[String]) -> Result<RaceRow, String> {
    let line_number = |text: &str| lines.iter().position(|line| line == text);
    let reply_number = |text: &str| {
        lines
            .iter()
            .position(|line| nea::reverse::reverse(line) == text)
    };
    let is_real_date =
        |shown: &str| shown.len() == "2026-12-01 12:00:00 UTC".len() && shown.ends_with(" UTC");
    let row_kind = if row.is_empty() {
        Some(RaceRow::Blank)
    } else if row.starts_with("connected to 127.0.0.1:")
        && row.ends_with(')')
        && !row.contains("> ")
    {
        Some(RaceRow::Connected)
    } else if let Some(shown) = row.strip_prefix("date: ") {
        race_date_number(shown)
            .map(|n| RaceRow::Date(Some(n)))
            .or(is_real_date(shown).then_some(RaceRow::Date(None)))
    } else if let Some(typed) = row.strip_prefix("> ") {
        line_number(typed).map(RaceRow::Sent)
    } else if row.starts_with("clientcli: ") && !row.contains("date: ") {
        Some(RaceRow::Notice)
    } else {
        reply_number(row).map(RaceRow::Reply)
    };
    row_kind.ok_or_else(|| format!("{row:?} is not one message, whole"))
}

/// One run of the race test: the rows of the screen at the end, checked
/// row by row, and what they show in order.
struct RaceScreen {
    rows: Vec<RaceRow>,
    /// The screen as text, for failures.
    text: String,
}

impl RaceScreen {
    fn read(term: &Terminal, lines: &[String], context: &str) -> Self {
        let rows = term.visible_rows();
        assert!(
            rows.last().is_some_and(String::is_empty),
            "{context}: the screen filled up; make it taller"
        );
        let rows = rows
            .iter()
            .enumerate()
            .map(|(at, row)| {
                classify(row, lines)
                    .unwrap_or_else(|err| panic!("{context}: row {at}: {err}\n{}", term.visible()))
            })
            .collect();
        Self {
            rows,
            text: term.visible(),
        }
    }

    fn count(&self, kind: RaceRow) -> usize {
        self.rows.iter().filter(|&&row| row == kind).count()
    }

    /// The numbers of the rows of one kind, in screen order.
    fn numbers(&self, of: impl Fn(RaceRow) -> Option<usize>) -> Vec<usize> {
        self.rows.iter().filter_map(|&row| of(row)).collect()
    }
}

/// One run of the race test, with its own server and client.
#[derive(Debug, Clone, Copy)]
struct RaceRun {
    number: usize,
    end: RaceEnd,
    period: Duration,
    delay: Duration,
    /// Pause while typing each line (in the middle of it) and after it;
    /// zero types the whole burst, Ctrl-D included, in one write.
    gap: Duration,
}

/// Lines typed in each race run.
const RACE_LINES: usize = 12;

/// Runs of the race test: every way to end, with every date period, reply
/// delay and typing pace, several times over.
const RACE_RUNS: usize = 72;

impl RaceRun {
    /// The lines typed: of 20 to 60 characters, so that a half-typed one
    /// is sometimes longer than a date and sometimes shorter (a message
    /// drawn over it without clearing the row leaves some of it).
    fn lines(&self) -> Vec<String> {
        let filler = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ";
        (0..RACE_LINES)
            .map(|i| {
                let length = 1 + (i * 7 + self.number) % (filler.len() - 7);
                format!("race {:02} line {i:02} {}", self.number, &filler[..length])
            })
            .collect()
    }

    /// Where line `i` is cut when it is typed in two parts: anywhere.
    fn cut(&self, i: usize, line: &str) -> usize {
        (i * 13 + self.number * 5) % line.len()
    }

    /// Types the burst of lines, and ends the run as `end` says; returns the
    /// client's exit status.
    fn drive(&self, term: &mut Terminal, lines: &[String]) -> std::process::ExitStatus {
        term.wait_for("> ", 1);
        let ctrl_d = matches!(self.end, RaceEnd::CtrlD | RaceEnd::RealServer);
        if self.gap.is_zero() {
            let mut burst: String = lines.iter().map(|line| format!("{line}\r")).collect();
            if ctrl_d {
                burst.push('\u{4}');
            }
            term.type_keys(burst.as_bytes());
        } else {
            for (i, line) in lines.iter().enumerate() {
                let (head, tail) = line.split_at(self.cut(i, line));
                term.type_keys(head.as_bytes());
                std::thread::sleep(self.gap);
                term.type_keys(format!("{tail}\r").as_bytes());
                std::thread::sleep(self.gap);
            }
            if ctrl_d {
                term.type_keys(b"\x04");
            }
        }
        if self.end == RaceEnd::CtrlC {
            term.wait_for(&nea::reverse::reverse(&lines[0]), 1);
            std::thread::sleep(self.gap);
            term.type_keys(b"\x03");
        }
        term.wait_exit()
    }

    /// Checks the screen of a finished run against what the server sent.
    fn check(
        &self,
        screen: &RaceScreen,
        status: std::process::ExitStatus,
        sent: Option<&RaceSent>,
    ) {
        use std::sync::atomic::Ordering::SeqCst;
        let context = format!("{self:?}, screen:\n{}\n", screen.text.trim_end());
        assert_eq!(screen.count(RaceRow::Connected), 1, "{context}");
        for i in 0..RACE_LINES {
            assert_eq!(screen.count(RaceRow::Sent(i)), 1, "{context}: line {i}");
        }
        let replies = screen.numbers(|row| {
            if let RaceRow::Reply(i) = row {
                Some(i)
            } else {
                None
            }
        });
        assert!(
            replies.iter().copied().eq(0..replies.len()),
            "{context}: replies {replies:?}"
        );
        if self.end != RaceEnd::CtrlC {
            assert_eq!(replies.len(), RACE_LINES, "{context}: replies {replies:?}");
        }
        // Ctrl-C with lines still unanswered says so in its status (SPEC
        // §10, "Honest about what was answered").
        let expected_status = match self.end {
            RaceEnd::ServerLeaves => 74,
            RaceEnd::CtrlC if replies.len() < RACE_LINES => 130,
            _ => 0,
        };
        assert_eq!(status.code(), Some(expected_status), "{context}");
        let dates = screen.numbers(|row| if let RaceRow::Date(n) = row { n } else { None });
        assert!(
            dates.iter().copied().eq(0..dates.len()),
            "{context}: dates {dates:?}"
        );
        let Some(sent) = sent else { return };
        let (all, before_last) = (
            sent.dates.load(SeqCst),
            sent.dates_before_last_reply.load(SeqCst),
        );
        match self.end {
            RaceEnd::ServerLeaves => assert_eq!(dates.len(), all, "{context}"),
            RaceEnd::CtrlD => assert!(
                dates.len() >= before_last,
                "{context}: {} dates shown, {before_last} sent before the last reply",
                dates.len()
            ),
            RaceEnd::CtrlC | RaceEnd::RealServer => {}
        }
    }
}

/// SPEC v3 §10, one owner of the terminal, tested as a race: bursts of
/// lines typed fast while dates come every 10 to 50 ms, with Ctrl-D at the
/// instant of the last line, the server leaving right after its last
/// reply, or Ctrl-C while frames come. At the end, every row of the screen
/// is one whole message (none on the prompt's row, none cut), the
/// `connected to` line is there once, every reply due is there once and
/// in order, and the dates are there in order with none missing: all those
/// the client read before exiting (the server's count says which).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_frame_read_is_on_the_screen_at_exit_and_none_on_the_prompt_row() {
    let ends = [
        RaceEnd::CtrlD,
        RaceEnd::ServerLeaves,
        RaceEnd::CtrlC,
        RaceEnd::RealServer,
    ];
    let periods = [10, 20, 50].map(Duration::from_millis);
    let delays = [0, 2, 15].map(Duration::from_millis);
    let gaps = [0, 1, 4].map(Duration::from_millis);
    let real = Server::start(&["--date-period", "10ms"]);
    for number in 0..RACE_RUNS {
        let run = RaceRun {
            number,
            end: ends[number % ends.len()],
            period: periods[number % periods.len()],
            delay: delays[number / 4 % delays.len()],
            gap: gaps[number / 3 % gaps.len()],
        };
        let lines = run.lines();
        let pki = crate::common::Pki::new();
        let (command, sent) = if run.end == RaceEnd::RealServer {
            (real.clientcli(), None)
        } else {
            let last = lines[RACE_LINES - 1].clone();
            let (port, sent) = racing_server(&pki, run.period, run.delay, last, run.end).await;
            (crate::common::clientcli_for(port, &pki.ca_pem), Some(sent))
        };
        let typed = lines.clone();
        let (screen, status) = tokio::task::spawn_blocking(move || {
            let mut term = Terminal::open_command(command, 3000);
            let status = run.drive(&mut term, &typed);
            (RaceScreen::read(&term, &typed, &format!("{run:?}")), status)
        })
        .await
        .expect("terminal");
        run.check(&screen, status, sent.as_deref());
    }
    assert!(real.stop().success());
}
