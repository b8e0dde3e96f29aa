//! The line editor's state: what a key does to the line, the history and
//! the text last killed. It writes nothing: it says what changed, and the
//! terminal's owner draws it.

use crossterm::event::KeyEvent;

use super::history::History;
use super::keys::{Action, action, literal};
use super::line::LineBuffer;

/// What a key asks of the terminal's owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Effect {
    /// Nothing visible changed.
    None,
    /// The line or its cursor changed: redraw the prompt row.
    Redraw,
    /// Return: send this line (and keep it on the screen).
    Submit(String),
    /// Ctrl-D on an empty line: no more lines.
    EndOfInput,
    /// Ctrl-C: stop at once.
    Abort,
    /// Ctrl-L: clear the screen and redraw the prompt at the top.
    ClearScreen,
    /// Ctrl-Z: suspend the client.
    Suspend,
}

/// The line editor.
#[derive(Debug, Default)]
pub(super) struct Editor {
    /// The line being typed.
    line: LineBuffer,
    /// Lines typed before.
    history: History,
    /// What the last Ctrl-K, Ctrl-U, Ctrl-W or Alt-D removed, for Ctrl-Y.
    killed: String,
    /// True after Ctrl-V: the next key is inserted as the character it
    /// sends, whatever it is bound to (but a line feed, which would end
    /// the line, is not).
    quoting: bool,
}

impl Editor {
    pub(super) fn new(history: History) -> Self {
        Self {
            history,
            ..Self::default()
        }
    }

    pub(super) fn line(&self) -> &LineBuffer {
        &self.line
    }

    /// Applies one key.
    pub(super) fn key(&mut self, key: &KeyEvent) -> Effect {
        if std::mem::take(&mut self.quoting) {
            return match literal(key) {
                // A line cannot hold its own end: the server would take
                // it for two.
                Some('\n') | None => Effect::None,
                Some(c) => self.insert(c.encode_utf8(&mut [0; 4])),
            };
        }
        match action(key) {
            Action::Insert(c) => self.insert(c.encode_utf8(&mut [0; 4])),
            Action::Submit => self.submit(),
            Action::DeleteOrEnd if self.line.is_empty() => Effect::EndOfInput,
            Action::DeleteOrEnd | Action::DeleteAt => redraw_if(self.line.delete_at()),
            Action::DeleteBefore => redraw_if(self.line.delete_before()),
            Action::Abort => Effect::Abort,
            Action::ClearScreen => Effect::ClearScreen,
            Action::Suspend => Effect::Suspend,
            Action::QuoteNext => {
                self.quoting = true;
                Effect::None
            }
            Action::Ignore => Effect::None,
            Action::HistoryPrevious | Action::HistoryNext => self.recall(action(key)),
            motion => self.edit(motion),
        }
    }

    fn insert(&mut self, text: &str) -> Effect {
        self.line.insert(text);
        Effect::Redraw
    }

    /// Return: the line goes to the history and is sent.
    fn submit(&mut self) -> Effect {
        let line = self.line.take();
        self.history.push(line.clone());
        Effect::Submit(line)
    }

    /// Up or Down: the line shown becomes the entry recalled.
    fn recall(&mut self, direction: Action) -> Effect {
        let recalled = if direction == Action::HistoryPrevious {
            self.history.previous(self.line.text()).map(str::to_owned)
        } else {
            self.history.next()
        };
        match recalled {
            Some(text) => {
                self.line.replace(text);
                Effect::Redraw
            }
            None => Effect::None,
        }
    }

    /// Cursor motions, kills and yank.
    fn edit(&mut self, motion: Action) -> Effect {
        let line = &mut self.line;
        match motion {
            Action::Left => line.move_left(),
            Action::Right => line.move_right(),
            Action::Home => line.move_home(),
            Action::End => line.move_end(),
            Action::WordLeft => line.word_left(),
            Action::WordRight => line.word_right(),
            Action::Yank => line.insert(&self.killed),
            Action::KillToEnd => return self.kill(LineBuffer::kill_to_end),
            Action::KillToStart => return self.kill(LineBuffer::kill_to_start),
            Action::KillWordBefore => return self.kill(LineBuffer::kill_word_before),
            Action::KillWordAfter => return self.kill(LineBuffer::kill_word_after),
            _ => return Effect::None,
        }
        Effect::Redraw
    }

    /// A kill: what it removed (if anything) is what Ctrl-Y inserts next.
    fn kill(&mut self, cut: fn(&mut LineBuffer) -> String) -> Effect {
        let killed = cut(&mut self.line);
        if killed.is_empty() {
            return Effect::None;
        }
        self.killed = killed;
        Effect::Redraw
    }
}

fn redraw_if(changed: bool) -> Effect {
    if changed {
        Effect::Redraw
    } else {
        Effect::None
    }
}

#[cfg(test)]
mod tests {
    use crossterm::event::{KeyCode, KeyModifiers};

    use super::*;

    fn press(editor: &mut Editor, keys: &str) -> Vec<Effect> {
        keys.chars()
            .map(|c| {
                let event = match c {
                    '\r' => KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE),
                    '←' => KeyEvent::new(KeyCode::Left, KeyModifiers::NONE),
                    '↑' => KeyEvent::new(KeyCode::Up, KeyModifiers::NONE),
                    '↓' => KeyEvent::new(KeyCode::Down, KeyModifiers::NONE),
                    c if c.is_ascii_control() => KeyEvent::new(
                        KeyCode::Char(char::from(c as u8 + b'a' - 1)),
                        KeyModifiers::CONTROL,
                    ),
                    c => KeyEvent::new(KeyCode::Char(c), KeyModifiers::NONE),
                };
                editor.key(&event)
            })
            .collect()
    }

    #[test]
    fn return_sends_the_line_and_keeps_it_for_up() {
        let mut editor = Editor::default();
        press(&mut editor, "abc");
        assert_eq!(press(&mut editor, "\r"), [Effect::Submit("abc".into())]);
        assert!(editor.line().is_empty());
        assert_eq!(press(&mut editor, "x↑"), [Effect::Redraw, Effect::Redraw]);
        assert_eq!(editor.line().text(), "abc");
        assert_eq!(press(&mut editor, "↑"), [Effect::None]);
        press(&mut editor, "↓");
        assert_eq!(editor.line().text(), "x");
    }

    #[test]
    fn ctrl_d_deletes_under_the_cursor_and_ends_input_on_an_empty_line() {
        let mut editor = Editor::default();
        press(&mut editor, "ab\u{1}");
        assert_eq!(press(&mut editor, "\u{4}"), [Effect::Redraw]);
        assert_eq!(editor.line().text(), "b");
        assert_eq!(
            press(&mut editor, "\u{5}\u{4}"),
            [Effect::Redraw, Effect::None]
        );
        press(&mut editor, "\u{8}");
        assert_eq!(press(&mut editor, "\u{4}"), [Effect::EndOfInput]);
        assert_eq!(press(&mut editor, "\u{3}"), [Effect::Abort]);
    }

    #[test]
    fn ctrl_y_inserts_what_the_last_kill_removed() {
        let mut editor = Editor::default();
        press(&mut editor, "one two\u{17}");
        assert_eq!(editor.line().text(), "one ");
        assert_eq!(press(&mut editor, "\u{b}"), [Effect::None]);
        press(&mut editor, "\u{1}\u{19}");
        assert_eq!(editor.line().text(), "twoone ");
        press(&mut editor, "\u{15}");
        assert_eq!(editor.line().text(), "one ");
    }

    #[test]
    fn ctrl_v_inserts_the_next_key_as_is() {
        let mut editor = Editor::default();
        press(&mut editor, "x\u{16}\u{3}\u{16}←\u{16}\u{a}y");
        assert_eq!(editor.line().text(), "x\u{3}y");
        assert_eq!(
            press(&mut editor, "\u{c}\u{1a}\u{18}"),
            [Effect::ClearScreen, Effect::Suspend, Effect::None]
        );
    }
}
