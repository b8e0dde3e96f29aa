//! The interactive front end (standard input and output are terminals): a
//! line editor with history, and dates, replies and notices printed above
//! the prompt without disturbing what the user is typing (SPEC §10).
//!
//! # One owner of the terminal
//!
//! One task owns the screen and the keyboard ([`owner`]): it reads every
//! key, and it alone writes to standard output: the prompt, the line being
//! typed, and every message the session sends it through a channel. A
//! message is drawn in the same write that clears the prompt row and draws
//! it again below, so it can never land on the prompt's row, nor be lost
//! between two draws; log lines (`--verbose`) take the same way. The
//! session runs as a task of its own and never touches the terminal. When
//! it ends (end of input answered, Ctrl-C, the server gone), the owner
//! shows every message still queued, then clears the prompt and gives the
//! terminal back (cooked mode, cursor visible). Ctrl-C and Ctrl-D are keys
//! (raw mode is on from start to end, connecting included), and a lost
//! connection is just the session's task ending: no signal is raised to
//! stop anything.
//!
//! # Why a small editor of our own, on crossterm
//!
//! - rustyline, used before, has two owners: `readline` blocks one thread
//!   while its external printer, fed by another, writes straight to the
//!   terminal whenever raw mode is off. A message could be lost or land
//!   after a new prompt (rustyline issue #629), and ending `readline` from
//!   outside needed a raised SIGINT.
//! - reedline runs its own thread too and polls its printer every 100 ms:
//!   two owners again.
//! - rustyline-async 0.4 has the right shape (one task, `flush()` on exit)
//!   but lacks keys rustyline had (Ctrl-D that deletes, Ctrl-K, Ctrl-B/F,
//!   Alt-B/F, Ctrl-Y, Ctrl-V, Ctrl-Z), keeps no history file, wraps long
//!   lines by arithmetic that has had edge-case bugs with wide characters
//!   and the last column, and adds five crates of its own (thingbuf,
//!   pin-project, futures-util, ansi-width, thiserror) on top of crossterm.
//!
//! So the editor is ours: crossterm for raw mode, key events as an async
//! stream and resizes; unicode-segmentation and unicode-width for editing
//! by grapheme cluster and placing the cursor by display width. The
//! editing logic ([`editor`], [`line`], [`keys`], [`history`]) and the
//! layout ([`screen`]) write nothing, and are tested without a terminal.
//! A line wider than the terminal scrolls sideways under the prompt
//! ([`screen`] says why).
//!
//! # Keys
//!
//! Return sends the line. Ctrl-D on an empty line ends input: the client
//! waits for every reply due, then exits 0. Ctrl-C stops at once, exit 0.
//! Editing: Left/Right, Ctrl-B/Ctrl-F; Home/End, Ctrl-A/Ctrl-E;
//! Alt-B/Alt-F, Ctrl-Left/Ctrl-Right by word; Backspace, Ctrl-H; Delete,
//! Ctrl-D; Ctrl-K, Ctrl-U, Ctrl-W, Alt-D, Alt-Backspace kill, Ctrl-Y
//! yanks; Up/Down, Ctrl-P/Ctrl-N recall history; Ctrl-L clears the screen;
//! Ctrl-V inserts the next key as is; Ctrl-Z suspends.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use nea::client::Options;
use nea::client::session::{Event, Input, Outcome, Session};
use nea::error::ClientError;

mod editor;
mod history;
mod keys;
mod line;
mod logs;
mod owner;
mod screen;

pub(crate) use logs::log_lines;

/// Events the session may queue before it waits for the owner to draw.
const EVENT_QUEUE: usize = 256;

/// Inputs the owner may queue before the session takes them.
const INPUT_QUEUE: usize = 256;

/// True if both standard input and standard output are terminals: the line
/// editor needs both.
pub(crate) fn available() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Runs an interactive session, keeping what is typed in `history` (a
/// file; `None` keeps none) and showing `logs` above the prompt.
pub(crate) async fn run(
    options: Options,
    config: Arc<rustls::ClientConfig>,
    history: Option<PathBuf>,
    logs: mpsc::UnboundedReceiver<String>,
) -> Result<Outcome, ClientError> {
    let (entries, history_file) = open_history(history);
    let raw_mode = RawMode::enable().map_err(|source| ClientError::Io {
        phase: "setting up the terminal",
        source,
    })?;
    let (event_tx, events) = mpsc::channel(EVENT_QUEUE);
    let (inputs, input_rx) = mpsc::channel(INPUT_QUEUE);
    let abort = Arc::new(Notify::new());
    let session = tokio::spawn(connect_and_run(
        options,
        config,
        event_tx,
        input_rx,
        abort.clone(),
    ));
    let editor = editor::Editor::new(history::History::new(entries));
    let feeds = owner::Feeds {
        session,
        events,
        logs,
        inputs,
    };
    let outcome = owner::Owner::new(editor, history_file, abort)
        .serve(feeds)
        .await;
    drop(raw_mode);
    outcome
}

/// The session: connects (a Ctrl-C meanwhile, told by `abort`, stops
/// that), then runs on `inputs` (which carry any later Ctrl-C).
async fn connect_and_run(
    options: Options,
    config: Arc<rustls::ClientConfig>,
    events: mpsc::Sender<Event>,
    inputs: mpsc::Receiver<Input>,
    abort: Arc<Notify>,
) -> Result<Outcome, ClientError> {
    let session = tokio::select! {
        connected = Session::connect(options, config, events) => connected?,
        () = abort.notified() => return Ok(Outcome::Aborted(Default::default())),
    };
    session.run(inputs).await
}

/// The history file's entries, and the file to append to; none after a
/// notice on stderr when it cannot be used (the session goes on without).
fn open_history(file: Option<PathBuf>) -> (Vec<String>, Option<history::HistoryFile>) {
    let Some(path) = file else {
        return (Vec::new(), None);
    };
    match history::HistoryFile::open(path.clone()) {
        Ok((file, entries)) => (entries, Some(file)),
        Err(err) => {
            eprintln!(
                "clientcli: no history kept: cannot use {}: {err}",
                path.display()
            );
            (Vec::new(), None)
        }
    }
}

/// The terminal in raw mode (no echo, no line editing, Ctrl-C and Ctrl-D
/// as keys, no `\n` to `\r\n`) while this lives; put back as it was when
/// dropped, whatever way [`run`] ends.
struct RawMode;

impl RawMode {
    fn enable() -> std::io::Result<Self> {
        crossterm::terminal::enable_raw_mode()?;
        Ok(Self)
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = crossterm::terminal::disable_raw_mode();
    }
}
