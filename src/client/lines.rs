//! The lines of a session, across connections, and what became of each
//! (SPEC §10, "Honest about what was answered").
//!
//! Every line the front end hands over gets the next input number (1, 2,
//! …), also a line the front end did not send ([`super::session::Input::Skipped`]),
//! so that a notice names the line as the user counts them. A line sent
//! stays pending until its own answer comes: a reply, or a per-line error
//! frame (a rejection). The server answers in order, so an answer is for
//! the oldest pending line sent on this connection; a reply that cannot
//! be that line's reversal (it is made of other characters) answers no
//! line, and is reported instead of retiring one. The [`Tally`] at the end
//! says whether every line got its own reply.

use std::collections::VecDeque;
use std::ops::ControlFlow;

use super::session::Input;

/// What became of a session's lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Lines the front end handed over, sent or not.
    pub lines: u64,
    /// Lines answered with their reply.
    pub answered: u64,
    /// Lines the server rejected (`line_too_long`, `invalid_utf8`).
    pub rejected: u64,
    /// Lines the front end did not send (it said why).
    pub skipped: u64,
    /// Lines sent, or to be sent, with no answer yet.
    pub unanswered: u64,
}

impl Tally {
    /// Whether every line got its own reply.
    pub fn all_answered(&self) -> bool {
        self.answered == self.lines
    }
}

/// One line waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingLine {
    /// Its input number, from 1.
    pub(crate) number: u64,
    /// The line, without its terminator.
    pub(crate) text: Vec<u8>,
}

/// The session's lines, across connections.
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// Lines sent or to be sent and not yet answered, oldest first.
    /// Invariant: input numbers strictly increase.
    pub(crate) pending: VecDeque<PendingLine>,
    /// True once the front end has no more lines.
    pub(crate) input_done: bool,
    /// True once the front end's sender is gone: nothing, not even an
    /// abort, can come any more. An abort can come after the last line
    /// (Ctrl-C after Ctrl-D), so inputs are read until then.
    inputs_closed: bool,
    /// The counts so far. Invariant: `tally.unanswered` is
    /// `pending.len()`, and `lines` is the sum of the other four.
    tally: Tally,
}

impl Lines {
    /// Whether inputs are still to be read.
    pub(crate) fn listening(&self) -> bool {
        !self.inputs_closed
    }

    /// Whether the session is done: input over, every line answered.
    pub(crate) fn all_done(&self) -> bool {
        self.input_done && self.pending.is_empty()
    }

    /// Records one input from the front end; `Break` for an abort.
    pub(crate) fn take(&mut self, input: Option<Input>) -> ControlFlow<()> {
        match input {
            Some(Input::Line(text)) => {
                self.tally.lines += 1;
                self.tally.unanswered += 1;
                self.pending.push_back(PendingLine {
                    number: self.tally.lines,
                    text,
                });
            }
            Some(Input::Skipped) => {
                self.tally.lines += 1;
                self.tally.skipped += 1;
            }
            Some(Input::End) => self.input_done = true,
            None => {
                self.input_done = true;
                self.inputs_closed = true;
            }
            Some(Input::Abort) => return ControlFlow::Break(()),
        }
        ControlFlow::Continue(())
    }

    /// Reads inputs, keeping lines, until an abort (forever if none can
    /// come any more).
    pub(crate) async fn until_abort(&mut self, inputs: &mut tokio::sync::mpsc::Receiver<Input>) {
        while self.listening() {
            if self.take(inputs.recv().await).is_break() {
                return;
            }
        }
        std::future::pending().await
    }

    /// Whether `reply` can be the reply to the oldest pending line: a
    /// reversal moves characters, never changes them, so a reply made of
    /// other characters answers no line. (Comparing the characters, not
    /// the exact reversal, keeps a server that reverses by code points
    /// rather than graphemes answering its lines.)
    pub(crate) fn is_reply_to_oldest(&self, reply: &str) -> bool {
        let Some(oldest) = self.pending.front() else {
            return false;
        };
        let Ok(line) = std::str::from_utf8(&oldest.text) else {
            return false;
        };
        same_characters(line, reply)
    }

    /// The oldest pending line got its reply.
    pub(crate) fn answered(&mut self) {
        if self.pending.pop_front().is_some() {
            self.tally.answered += 1;
            self.tally.unanswered -= 1;
        }
    }

    /// The oldest pending line was rejected by the server; its number.
    pub(crate) fn rejected(&mut self) -> Option<u64> {
        let line = self.pending.pop_front()?;
        self.tally.rejected += 1;
        self.tally.unanswered -= 1;
        Some(line.number)
    }

    /// What became of the lines so far.
    pub(crate) fn tally(&self) -> Tally {
        self.tally
    }
}

/// Whether `a` and `b` hold the same characters, each as many times.
fn same_characters(a: &str, b: &str) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut a: Vec<char> = a.chars().collect();
    let mut b: Vec<char> = b.chars().collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Option<Input> {
        Some(Input::Line(text.as_bytes().to_vec()))
    }

    #[test]
    fn inputs_are_kept_in_order_and_numbered_until_end_or_abort() {
        let mut lines = Lines::default();
        assert!(lines.take(line("a")).is_continue());
        assert!(lines.take(Some(Input::Skipped)).is_continue());
        assert!(lines.take(line("b")).is_continue());
        let numbers: Vec<u64> = lines.pending.iter().map(|l| l.number).collect();
        assert_eq!(numbers, [1, 3]);
        assert!(!lines.input_done);
        assert!(lines.take(Some(Input::End)).is_continue());
        assert!(lines.input_done);
        // After the last line an abort can still come (Ctrl-C after Ctrl-D).
        assert!(lines.listening());
        assert!(lines.take(Some(Input::Abort)).is_break());
        assert!(lines.take(None).is_continue());
        assert!(!lines.listening());
        assert_eq!(
            lines.tally(),
            Tally {
                lines: 3,
                answered: 0,
                rejected: 0,
                skipped: 1,
                unanswered: 2
            }
        );
    }

    #[test]
    fn a_reply_made_of_other_characters_answers_no_line() {
        let mut lines = Lines::default();
        assert!(!lines.is_reply_to_oldest("eno"), "nothing is pending");
        let _ = lines.take(line("one"));
        let _ = lines.take(line("noe\u{308}l"));
        assert!(!lines.is_reply_to_oldest("UNSOLICITED"));
        assert!(!lines.is_reply_to_oldest("en"));
        assert!(lines.is_reply_to_oldest("eno"));
        lines.answered();
        // By graphemes or by code points, a reversal of the same line.
        assert!(lines.is_reply_to_oldest("le\u{308}on"));
        assert!(lines.is_reply_to_oldest("l\u{308}eon"));
        assert_eq!(lines.rejected(), Some(2));
        assert!(lines.pending.is_empty());
        let tally = lines.tally();
        assert_eq!(
            (tally.answered, tally.rejected, tally.unanswered),
            (1, 1, 0)
        );
        assert!(!tally.all_answered());
    }

    #[test]
    fn every_line_answered_is_all_answered() {
        let mut lines = Lines::default();
        let _ = lines.take(line("x"));
        let _ = lines.take(Some(Input::End));
        assert!(!lines.all_done());
        lines.answered();
        assert!(lines.all_done());
        assert!(lines.tally().all_answered());
        assert!(Tally::default().all_answered());
    }

    #[tokio::test]
    async fn waiting_for_an_abort_keeps_the_lines_typed_meanwhile() {
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        for input in [
            Input::Line(b"a".to_vec()),
            Input::Line(b"b".to_vec()),
            Input::End,
            Input::Abort,
            Input::Line(b"after".to_vec()),
        ] {
            tx.send(input).await.expect("queued");
        }
        let mut lines = Lines::default();
        lines.until_abort(&mut rx).await;
        let texts: Vec<&[u8]> = lines.pending.iter().map(|l| l.text.as_slice()).collect();
        assert_eq!(texts, [b"a".as_slice(), b"b".as_slice()]);
        assert!(lines.input_done);
        // What follows the abort is left for whoever reads next.
        assert_eq!(rx.recv().await, Some(Input::Line(b"after".to_vec())));
    }

    #[tokio::test(start_paused = true)]
    async fn with_no_inputs_left_an_abort_is_awaited_forever() {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Input>(1);
        drop(tx);
        let mut lines = Lines::default();
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(3600),
            lines.until_abort(&mut rx),
        )
        .await;
        assert!(waited.is_err(), "until_abort returned");
        assert!(lines.input_done && !lines.listening());
    }
}
