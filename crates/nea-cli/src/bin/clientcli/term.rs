//! The interactive front end (standard input and output are terminals): a
//! line editor with history, and dates and replies printed above the prompt
//! without disturbing what the user is typing.
//!
//! rustyline's `readline` blocks, so it runs on its own thread and sends
//! each line to the session. Output goes through rustyline's external
//! printer, which clears the prompt, prints, and redraws the prompt with the
//! half-typed line intact. A second thread feeds the printer, because its
//! `print` blocks until the editor has drawn the previous message.
//!
//! Every message is printed with its own newline: between two `readline`
//! calls the printer writes straight to the terminal, and a message without
//! one was wiped by the next prompt's redraw.
//!
//! Ctrl-D ends input: the session closes with close_notify once every line
//! is answered. Ctrl-C stops at once, also with close_notify. Both exit 0.
//! Inside `readline` Ctrl-C is a key; outside it (before the first prompt,
//! after Ctrl-D, while reconnecting) it is SIGINT, which a task here turns
//! into the same abort.
//! When the session ends on its own (the server went away), the editor
//! thread is still inside `readline`, which has no way to be cancelled; the
//! session raises SIGINT, which rustyline turns into `Interrupted`, and the
//! thread sees the stop flag and returns, restoring the terminal.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustyline::error::ReadlineError;
use rustyline::{DefaultEditor, ExternalPrinter};
use tokio::sync::mpsc;

use crate::display::render;
use nea::client::Options;
use nea::client::session::{Event, Input, Outcome, Session};
use nea::error::ClientError;

/// The prompt shown before the user's input.
pub(crate) const PROMPT: &str = "> ";

/// How long the session tries to stop a blocked editor before giving up.
const EDITOR_STOP_TIMEOUT: Duration = Duration::from_secs(2);

/// True if both standard input and standard output are terminals: the line
/// editor needs both.
pub(crate) fn available() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Runs an interactive session, keeping what is typed in `history` (a
/// file; `None` keeps none).
pub(crate) async fn run(
    options: Options,
    config: Arc<rustls::ClientConfig>,
    history: Option<std::path::PathBuf>,
) -> Result<Outcome, ClientError> {
    let editor_failed = |err: ReadlineError| ClientError::Io {
        phase: "starting the line editor",
        source: std::io::Error::other(err),
    };
    let mut editor = DefaultEditor::new().map_err(editor_failed)?;
    let history = history.and_then(|file| open_history(&mut editor, file));
    let printer = editor.create_external_printer().map_err(editor_failed)?;
    // Outside `readline` (before the first, between two, after Ctrl-D)
    // Ctrl-C is SIGINT, not a key: it must end the client at once, as the
    // key does. Registered before anything else can be interrupted.
    let mut sigint = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|source| ClientError::Io {
            phase: "installing the SIGINT handler",
            source,
        })?;

    let (event_tx, event_rx) = mpsc::channel(256);
    let printer_thread = std::thread::spawn(move || print_events(printer, event_rx));
    // Ctrl-C while the first connection is being made ends it too.
    let connected = tokio::select! {
        connected = Session::connect(options, config, event_tx) => connected.map(Some),
        _ = sigint.recv() => Ok(None),
    };
    let session = match connected {
        Ok(Some(session)) => session,
        // The connection attempt, and with it the events' sender, is
        // dropped: the printer thread ends.
        Ok(None) => {
            let _ = tokio::task::spawn_blocking(move || printer_thread.join()).await;
            return Ok(Outcome::Aborted(Default::default()));
        }
        Err(err) => {
            let _ = tokio::task::spawn_blocking(move || printer_thread.join()).await;
            return Err(err);
        }
    };

    let (input_tx, input_rx) = mpsc::channel(256);
    let interrupts = input_tx.clone();
    let interrupted = tokio::spawn(async move {
        while sigint.recv().await.is_some() {
            if interrupts.send(Input::Abort).await.is_err() {
                return;
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let editor_stop = stop.clone();
    let editor_thread =
        std::thread::spawn(move || edit_lines(editor, input_tx, &editor_stop, history.as_deref()));

    let outcome = session.run(input_rx).await;
    interrupted.abort();

    stop.store(true, Ordering::SeqCst);
    let deadline = tokio::time::Instant::now() + EDITOR_STOP_TIMEOUT;
    while !editor_thread.is_finished() && tokio::time::Instant::now() < deadline {
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGINT);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tokio::task::spawn_blocking(move || printer_thread.join()).await;
    outcome
}

/// Makes the history file's directory (owner only) and the file (0600, as
/// it holds what the user typed), and loads what it holds. `None`, after a
/// notice on stderr, when it cannot be used: the session goes on without.
fn open_history(
    editor: &mut DefaultEditor,
    file: std::path::PathBuf,
) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let prepared = file
        .parent()
        .map_or(Ok(()), |dir| {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
        })
        .and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(&file)
        });
    match prepared {
        Ok(_) => {
            let _ = editor.load_history(&file);
            Some(file)
        }
        Err(err) => {
            eprintln!(
                "clientcli: no history kept: cannot use {}: {err}",
                file.display()
            );
            None
        }
    }
}

/// The editor thread: one `readline` per line, until end of input, Ctrl-C,
/// or the stop flag. Each line is appended to the history file at once, so
/// that nothing typed is lost if the client is killed.
fn edit_lines(
    mut editor: DefaultEditor,
    inputs: mpsc::Sender<Input>,
    stop: &AtomicBool,
    history: Option<&std::path::Path>,
) {
    while !stop.load(Ordering::SeqCst) {
        let input = match editor.readline(PROMPT) {
            Ok(line) => {
                let _ = editor.add_history_entry(line.as_str());
                if let Some(file) = history {
                    let _ = editor.append_history(file);
                }
                Input::Line(line.into_bytes())
            }
            Err(ReadlineError::Eof) => Input::End,
            Err(ReadlineError::Interrupted) if stop.load(Ordering::SeqCst) => return,
            Err(_) => Input::Abort,
        };
        // End and Abort are the last input this thread sends.
        let last = !matches!(input, Input::Line(_));
        if inputs.blocking_send(input).is_err() || last {
            return;
        }
    }
}

/// The printer thread: shows each event above the prompt.
fn print_events<P: ExternalPrinter>(mut printer: P, mut events: mpsc::Receiver<Event>) {
    while let Some(event) = events.blocking_recv() {
        let mut text = render(&event, true).1;
        // Between two `readline` calls the printer writes straight to the
        // terminal, as is: without its own newline, the next prompt's
        // redraw (`\r`, clear line) wiped the message. Inside `readline`
        // a message that ends with a newline gets no second one.
        text.push('\n');
        if printer.print(text).is_err() {
            return;
        }
    }
}
