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
}

impl Terminal {
    fn open(server: &Server) -> Self {
        let size = Winsize {
            ws_row: 24,
            ws_col: 100,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let OpenptyResult { master, slave } = openpty(&size, None).expect("openpty");
        let mut command = server.clientcli();
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
        .wait_for_log("reason=closed by client", PATIENCE)
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
        .wait_for_log("reason=closed by client", PATIENCE)
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
