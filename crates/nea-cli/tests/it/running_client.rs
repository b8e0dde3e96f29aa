//! A `clientcli` process driven through pipes while it runs: lines written
//! to its standard input when the test says, its standard output and error
//! watched as they come, a signal sent, and its exit awaited with a bound
//! (a client that never exits fails the test with what it printed, instead
//! of hanging it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::common::PATIENCE;

/// Lines a stream has printed so far.
#[derive(Default)]
struct Printed {
    lines: Mutex<Vec<String>>,
    grew: Condvar,
}

/// A running `clientcli`.
pub struct RunningClient {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Printed>,
    stderr: Arc<Printed>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a client ended: its status and everything it printed.
pub struct Ended {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl RunningClient {
    /// Starts `command` with its three standard streams piped.
    pub fn start(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("clientcli starts");
        let stdout = Arc::new(Printed::default());
        let stderr = Arc::new(Printed::default());
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        Self {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            readers,
        }
    }

    /// Writes `line` and its newline to the client's standard input.
    pub fn send(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(line).expect("write to clientcli");
        stdin.write_all(b"\n").expect("write to clientcli");
        stdin.flush().expect("flush");
    }

    /// Closes the client's standard input: the end of its input.
    pub fn end_input(&mut self) {
        self.stdin = None;
    }

    /// Waits until a line of standard error contains `needle`; that line.
    pub fn wait_for_stderr(&self, needle: &str) -> String {
        wait_for(&self.stderr, needle, || self.describe())
    }

    /// Waits until a line of standard output contains `needle`.
    pub fn wait_for_stdout(&self, needle: &str) -> String {
        wait_for(&self.stdout, needle, || self.describe())
    }

    /// Lines of standard error so far.
    pub fn stderr(&self) -> Vec<String> {
        lock(&self.stderr).clone()
    }

    /// Sends `signal` to the client.
    pub fn signal(&self, signal: Signal) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        kill(Pid::from_raw(pid), signal).expect("the signal is sent");
    }

    /// Whether the client has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Waits for the client to exit, within `patience`; panics with what
    /// it printed if it does not (after killing it). Its input stays open
    /// unless [`RunningClient::end_input`] closed it.
    pub fn wait_exit(mut self, patience: Duration) -> Ended {
        let deadline = Instant::now() + patience;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "clientcli did not exit within {patience:?}:\n{}",
                    self.describe()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ended {
            status,
            stdout: lock(&self.stdout).clone(),
            stderr: lock(&self.stderr).clone(),
        }
    }

    fn describe(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            lock(&self.stdout).join("\n"),
            lock(&self.stderr).join("\n")
        )
    }
}

impl Drop for RunningClient {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn lock(printed: &Printed) -> std::sync::MutexGuard<'_, Vec<String>> {
    printed
        .lines
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A thread that collects `stream`'s lines into `printed`.
fn collect(
    stream: impl std::io::Read + Send + 'static,
    printed: Arc<Printed>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lock(&printed).push(line);
            printed.grew.notify_all();
        }
    })
}

/// Waits until a line of `printed` contains `needle`.
fn wait_for(printed: &Printed, needle: &str, describe: impl Fn() -> String) -> String {
    let deadline = Instant::now() + PATIENCE;
    let mut lines = lock(printed);
    loop {
        if let Some(line) = lines.iter().find(|line| line.contains(needle)) {
            return line.clone();
        }
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            drop(lines);
            panic!(
                "no line with {needle:?} within {PATIENCE:?}:\n{}",
                describe()
            );
        };
        lines = printed
            .grew
            .wait_timeout(lines, left)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
    }
}
