//! The one owner of the terminal: a single task that reads every key and
//! writes every byte to standard output, so that the prompt, the line being
//! typed and the messages are drawn in one order, by one hand.
//!
//! Invariant between two steps of its loop: the cursor is on the prompt row
//! while the prompt is up, or at the start of an empty row before the first
//! connection and once input has ended; every row above it is finished and
//! never written again. A
//! message clears the prompt row, takes it, ends it, and draws the prompt
//! row again below, all in one write: no prompt shares a row with a
//! message, and no draw can come between.

use std::collections::VecDeque;
use std::io::Write;
use std::pin::Pin;
use std::sync::Arc;

use crossterm::event::{Event as TermEvent, EventStream, KeyEvent};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;

use super::editor::{Editor, Effect};
use super::history::HistoryFile;
use super::keys::{Action, action};
use super::screen::{self, View};
use crate::display::render;
use nea::client::session::{Event, Input, Outcome};
use nea::error::ClientError;

/// The prompt shown before the user's input.
pub(super) const PROMPT: &str = "> ";

/// Moves the cursor home and clears the screen (Ctrl-L).
const CLEAR_SCREEN: &str = "\x1b[H\x1b[2J";

/// Makes the cursor visible, as it must be when the client exits.
const SHOW_CURSOR: &str = "\x1b[?25h";

/// Columns assumed when the terminal does not say.
const DEFAULT_COLUMNS: u16 = 80;

/// What the owner serves: the session's task, what it shows, and where the
/// lines typed go.
pub(super) struct Feeds {
    /// The session (connecting, then running); its result ends the owner.
    pub(super) session: JoinHandle<Result<Outcome, ClientError>>,
    /// What the session shows.
    pub(super) events: mpsc::Receiver<Event>,
    /// Log lines (`--verbose`), shown like the session's messages.
    pub(super) logs: mpsc::UnboundedReceiver<String>,
    /// Lines typed, end of input and Ctrl-C, to the session.
    pub(super) inputs: mpsc::Sender<Input>,
}

/// Whether the user can type lines, and whether the prompt is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Typing {
    /// The first connection is being made: keys are taken (and lines sent
    /// once connected), but no prompt is drawn: a prompt says the client
    /// is connected.
    Connecting,
    /// The prompt row is on the screen, with the cursor on it.
    Open,
    /// Input has ended (Ctrl-D, Ctrl-C, a keyboard that went away): no
    /// prompt is drawn; only Ctrl-C is still heard.
    Ended,
}

/// The terminal's owner.
pub(super) struct Owner {
    /// Standard output. Everything goes through [`Self::write`]: one
    /// `write` and a flush per step.
    out: std::io::Stdout,
    /// The terminal's width, as of the last resize; never 0.
    columns: u16,
    /// The line being typed, the history, what was killed.
    editor: Editor,
    /// Where each line sent is appended; `None` keeps no history.
    history_file: Option<HistoryFile>,
    /// Which part of a line wider than the terminal is in view.
    view: View,
    /// Whether the prompt is up; [`Typing::Open`] only between the first
    /// connection and the end of input.
    typing: Typing,
    /// Inputs the session's channel has not taken yet, oldest first. The
    /// owner never waits for the session: it would stop drawing.
    outbox: VecDeque<Input>,
    /// Told on Ctrl-C, for a session still making its first connection
    /// (it reads no inputs until then).
    abort: Arc<Notify>,
    /// Lines the user sent (they are on the screen as sent) that a Ctrl-C
    /// kept from the session: they count as not answered.
    withheld: u64,
    /// False once writing to the terminal failed: nothing more is drawn.
    output_works: bool,
    /// False once the keyboard's stream ended or failed.
    keyboard_works: bool,
}

impl Owner {
    pub(super) fn new(
        editor: Editor,
        history_file: Option<HistoryFile>,
        abort: Arc<Notify>,
    ) -> Self {
        Self {
            out: std::io::stdout(),
            columns: terminal_columns(),
            editor,
            history_file,
            view: View::default(),
            typing: Typing::Connecting,
            outbox: VecDeque::new(),
            abort,
            withheld: 0,
            output_works: true,
            keyboard_works: true,
        }
    }

    /// Runs until the session ends, then shows every message it sent before
    /// it ended and clears the prompt; returns the session's result.
    pub(super) async fn serve(mut self, mut feeds: Feeds) -> Result<Outcome, ClientError> {
        let mut keyboard = EventStream::new();
        // `kill -INT` (Ctrl-C itself is a key in raw mode) stops the client
        // as Ctrl-C does, and the terminal is given back.
        let mut interrupts = signal(SignalKind::interrupt()).ok();
        let ended = loop {
            tokio::select! {
                biased;
                ended = &mut feeds.session => break ended,
                key = next_key(&mut keyboard), if self.keyboard_works => self.on_key(key),
                Some(()) = interrupted(&mut interrupts) => self.end_input(Input::Abort),
                Some(event) = feeds.events.recv() => self.show_event(&event),
                Some(line) = feeds.logs.recv() => self.show(&line),
                permit = feeds.inputs.reserve(), if !self.outbox.is_empty() => {
                    if let (Ok(permit), Some(input)) = (permit, self.outbox.pop_front()) {
                        permit.send(input);
                    }
                }
            }
        };
        // The session has ended: all it sent is queued, and nothing more
        // comes.
        while let Ok(event) = feeds.events.try_recv() {
            self.show_event(&event);
        }
        while let Ok(line) = feeds.logs.try_recv() {
            self.show(&line);
        }
        self.finish();
        let withheld = self.withheld;
        ended
            .unwrap_or_else(|failed| {
                Err(ClientError::Io {
                    phase: "running the session",
                    source: std::io::Error::other(failed),
                })
            })
            .map(|outcome| counting_withheld(outcome, withheld))
    }

    /// One event from the keyboard (or the terminal: a resize).
    fn on_key(&mut self, key: Option<std::io::Result<TermEvent>>) {
        match key {
            Some(Ok(TermEvent::Key(key))) => self.key(&key),
            Some(Ok(TermEvent::Resize(columns, _))) => {
                self.columns = usable_columns(columns);
                self.draw_prompt_row();
            }
            Some(Ok(_)) => {}
            // The keyboard is gone: as at Ctrl-D, the replies due are still
            // shown.
            None | Some(Err(_)) => {
                self.keyboard_works = false;
                self.end_input(Input::End);
            }
        }
    }

    fn key(&mut self, key: &KeyEvent) {
        if self.typing == Typing::Ended {
            if action(key) == Action::Abort {
                self.end_input(Input::Abort);
            }
            return;
        }
        match self.editor.key(key) {
            Effect::None => {}
            Effect::Redraw => self.draw_prompt_row(),
            Effect::Submit(line) => self.submit(line),
            Effect::EndOfInput => self.end_input(Input::End),
            Effect::Abort => self.end_input(Input::Abort),
            Effect::ClearScreen => {
                self.write(CLEAR_SCREEN);
                self.draw_prompt_row();
            }
            Effect::Suspend => self.suspend(),
        }
    }

    /// Return: the line stays on the screen as typed, goes to the history
    /// file at once, and to the session.
    fn submit(&mut self, line: String) {
        let mut drawn = screen::sent_line(PROMPT, &line);
        if let Some(file) = &mut self.history_file
            && let Err(err) = file.append(&line)
        {
            drawn.push_str(&screen::message(&format!(
                "clientcli: no history kept from now on: cannot write {}: {err}",
                file.path().display()
            )));
            self.history_file = None;
        }
        self.outbox.push_back(Input::Line(line.into_bytes()));
        self.view = View::default();
        if self.typing == Typing::Open {
            drawn.push_str(&self.prompt_row());
        }
        self.write(&drawn);
    }

    /// Ctrl-D on an empty line (`Input::End`), or Ctrl-C (`Input::Abort`):
    /// the prompt goes away. An abort goes before any line still queued
    /// here (the session may not be taking inputs: Ctrl-C must still stop
    /// it), those lines counted as not answered, and also stops a first
    /// connection still being made.
    fn end_input(&mut self, last: Input) {
        if last == Input::Abort {
            let lines = self
                .outbox
                .drain(..)
                .filter(|input| matches!(input, Input::Line(_)));
            self.withheld += lines.count() as u64;
            self.abort.notify_one();
        }
        self.outbox.push_back(last);
        let was = std::mem::replace(&mut self.typing, Typing::Ended);
        if was == Typing::Open {
            self.write(screen::clear_prompt_row());
        }
    }

    /// Ctrl-Z: the terminal is given back as it was, the client stops as
    /// any job does, and when it is continued (`fg`) the terminal is taken
    /// again and the prompt redrawn. A client that cannot be stopped (its
    /// process group has no shell to come back to) just goes on.
    fn suspend(&mut self) {
        self.write(&format!("{}{SHOW_CURSOR}", screen::clear_prompt_row()));
        let _ = crossterm::terminal::disable_raw_mode();
        let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGTSTP);
        let _ = crossterm::terminal::enable_raw_mode();
        self.columns = terminal_columns();
        self.draw_prompt_row();
    }

    /// One of the session's events above the prompt. The first connection
    /// brings the prompt up.
    fn show_event(&mut self, event: &Event) {
        if matches!(event, Event::Connected { .. }) && self.typing == Typing::Connecting {
            self.typing = Typing::Open;
        }
        self.show(&render(event, true).1);
    }

    /// A message above the prompt.
    fn show(&mut self, text: &str) {
        let mut drawn = screen::message(text);
        if self.typing == Typing::Open {
            drawn.push_str(&self.prompt_row());
        }
        self.write(&drawn);
    }

    fn draw_prompt_row(&mut self) {
        if self.typing == Typing::Open {
            let row = self.prompt_row();
            self.write(&row);
        }
    }

    /// The prompt row as it is to be drawn now.
    fn prompt_row(&mut self) -> String {
        let line = self.editor.line();
        let (row, view) =
            screen::prompt_row(PROMPT, line.text(), line.cursor(), self.columns, self.view);
        self.view = view;
        row
    }

    /// The last draw: the prompt (and a line typed but not sent) goes
    /// away, and the cursor is visible, at the start of an empty row.
    fn finish(&mut self) {
        let prompt = match self.typing {
            Typing::Open => screen::clear_prompt_row(),
            Typing::Connecting | Typing::Ended => "",
        };
        self.write(&format!("{prompt}{SHOW_CURSOR}"));
    }

    /// Writes and flushes. If the terminal cannot be written (it is gone),
    /// nothing more is drawn and the session is stopped, as by Ctrl-C.
    fn write(&mut self, text: &str) {
        if !self.output_works {
            return;
        }
        let mut out = self.out.lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            drop(out);
            self.output_works = false;
            self.end_input(Input::Abort);
        }
    }
}

/// `outcome` with the `withheld` lines counted: lines the user sent and a
/// Ctrl-C kept from the session are lines not answered (SPEC §10, "Honest
/// about what was answered").
fn counting_withheld(outcome: Outcome, withheld: u64) -> Outcome {
    let with = |mut tally: nea::client::Tally| {
        tally.lines += withheld;
        tally.unanswered += withheld;
        tally
    };
    match outcome {
        Outcome::Aborted(tally) => Outcome::Aborted(with(tally)),
        Outcome::Finished(tally) => Outcome::Finished(with(tally)),
        other => other,
    }
}

/// The next event from the keyboard.
async fn next_key(keyboard: &mut EventStream) -> Option<std::io::Result<TermEvent>> {
    std::future::poll_fn(|context| {
        futures_core::Stream::poll_next(Pin::new(&mut *keyboard), context)
    })
    .await
}

/// The next SIGINT; never, if it cannot be watched.
async fn interrupted(interrupts: &mut Option<Signal>) -> Option<()> {
    match interrupts {
        Some(interrupts) => interrupts.recv().await,
        None => std::future::pending().await,
    }
}

/// The terminal's width now.
fn terminal_columns() -> u16 {
    crossterm::terminal::size().map_or(DEFAULT_COLUMNS, |(columns, _)| usable_columns(columns))
}

/// A width of 0 (a terminal that does not say) is taken as the default.
fn usable_columns(columns: u16) -> u16 {
    if columns == 0 {
        DEFAULT_COLUMNS
    } else {
        columns
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_kept_from_the_session_by_a_ctrl_c_count_as_not_answered() {
        let tally = nea::client::Tally {
            lines: 2,
            answered: 2,
            ..Default::default()
        };
        let Outcome::Aborted(counted) = counting_withheld(Outcome::Aborted(tally), 3) else {
            panic!("still aborted");
        };
        assert_eq!((counted.lines, counted.unanswered), (5, 3));
        assert!(!counted.all_answered());
        assert_eq!(
            counting_withheld(Outcome::Aborted(tally), 0),
            Outcome::Aborted(tally)
        );
        assert_eq!(
            counting_withheld(Outcome::OutputClosed, 3),
            Outcome::OutputClosed
        );
    }
}
