//! What each key does: the usual Emacs bindings of readline and shells.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// An editing action, one per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Insert this character (a printable key).
    Insert(char),
    /// Return: send the line.
    Submit,
    /// Ctrl-D: delete the character under the cursor, or end input on an
    /// empty line.
    DeleteOrEnd,
    /// Ctrl-C: stop at once.
    Abort,
    /// Backspace, Ctrl-H.
    DeleteBefore,
    /// Delete.
    DeleteAt,
    /// Left, Ctrl-B.
    Left,
    /// Right, Ctrl-F.
    Right,
    /// Home, Ctrl-A.
    Home,
    /// End, Ctrl-E.
    End,
    /// Alt-B, Ctrl-Left.
    WordLeft,
    /// Alt-F, Ctrl-Right.
    WordRight,
    /// Ctrl-K.
    KillToEnd,
    /// Ctrl-U.
    KillToStart,
    /// Ctrl-W, Alt-Backspace.
    KillWordBefore,
    /// Alt-D.
    KillWordAfter,
    /// Ctrl-Y: insert the text last killed.
    Yank,
    /// Up, Ctrl-P.
    HistoryPrevious,
    /// Down, Ctrl-N.
    HistoryNext,
    /// Ctrl-L.
    ClearScreen,
    /// Ctrl-V: insert the next key as the character it sends.
    QuoteNext,
    /// Ctrl-Z: suspend the client, as a shell's job control does.
    Suspend,
    /// Any other key (Tab, Escape, function keys): nothing.
    Ignore,
}

/// The action of one key event. Releases (sent only by terminals with the
/// kitty keyboard protocol, which is not turned on) do nothing.
pub(super) fn action(key: &KeyEvent) -> Action {
    if key.kind == KeyEventKind::Release {
        return Action::Ignore;
    }
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    let alt = key.modifiers.contains(KeyModifiers::ALT);
    match key.code {
        KeyCode::Char(c) if control && !alt => control_action(c),
        KeyCode::Char(c) if alt && !control => alt_action(c),
        KeyCode::Char(c) if !control && !alt => Action::Insert(c),
        KeyCode::Backspace if alt => Action::KillWordBefore,
        KeyCode::Left if control || alt => Action::WordLeft,
        KeyCode::Right if control || alt => Action::WordRight,
        _ if control || alt => Action::Ignore,
        code => plain_action(code),
    }
}

/// Keys without Ctrl or Alt, letters aside.
fn plain_action(code: KeyCode) -> Action {
    match code {
        KeyCode::Enter => Action::Submit,
        KeyCode::Backspace => Action::DeleteBefore,
        KeyCode::Delete => Action::DeleteAt,
        KeyCode::Left => Action::Left,
        KeyCode::Right => Action::Right,
        KeyCode::Home => Action::Home,
        KeyCode::End => Action::End,
        KeyCode::Up => Action::HistoryPrevious,
        KeyCode::Down => Action::HistoryNext,
        _ => Action::Ignore,
    }
}

/// Ctrl and a letter.
fn control_action(c: char) -> Action {
    match c {
        'a' => Action::Home,
        'b' => Action::Left,
        'c' => Action::Abort,
        'd' => Action::DeleteOrEnd,
        'e' => Action::End,
        'f' => Action::Right,
        'h' => Action::DeleteBefore,
        // Ctrl-J is a line feed, which raw mode no longer turns into Return.
        'j' | 'm' => Action::Submit,
        'k' => Action::KillToEnd,
        'l' => Action::ClearScreen,
        'n' => Action::HistoryNext,
        'p' => Action::HistoryPrevious,
        'u' => Action::KillToStart,
        'v' => Action::QuoteNext,
        'w' => Action::KillWordBefore,
        'y' => Action::Yank,
        'z' => Action::Suspend,
        _ => Action::Ignore,
    }
}

/// Alt (or Escape, then) a letter.
fn alt_action(c: char) -> Action {
    match c {
        'b' => Action::WordLeft,
        'f' => Action::WordRight,
        'd' => Action::KillWordAfter,
        _ => Action::Ignore,
    }
}

/// The character a key sends, for Ctrl-V: Ctrl-A is U+0001, Tab is U+0009,
/// Escape U+001B. `None` for keys that send a sequence (arrows, function
/// keys) or for a release.
pub(super) fn literal(key: &KeyEvent) -> Option<char> {
    if key.kind == KeyEventKind::Release || key.modifiers.contains(KeyModifiers::ALT) {
        return None;
    }
    let control = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char(c) if control => control_character(c),
        KeyCode::Char(c) => Some(c),
        KeyCode::Enter => Some('\r'),
        KeyCode::Tab => Some('\t'),
        KeyCode::Backspace => Some('\u{7f}'),
        KeyCode::Esc => Some('\u{1b}'),
        _ => None,
    }
}

/// The control character that Ctrl and `c` send (as the terminal encodes
/// it: Ctrl-Space is NUL, Ctrl-4 to Ctrl-7 are FS to US).
fn control_character(c: char) -> Option<char> {
    let code = match c {
        'a'..='z' => u32::from(c) - u32::from('a') + 1,
        '4'..='7' => u32::from(c) - u32::from('4') + 0x1c,
        ' ' => 0,
        _ => return None,
    };
    char::from_u32(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode, modifiers: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, modifiers)
    }

    fn ctrl(c: char) -> KeyEvent {
        key(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn emacs_keys_do_what_readline_does() {
        let none = KeyModifiers::NONE;
        let alt = KeyModifiers::ALT;
        for (event, expected) in [
            (ctrl('a'), Action::Home),
            (ctrl('e'), Action::End),
            (ctrl('b'), Action::Left),
            (ctrl('f'), Action::Right),
            (ctrl('d'), Action::DeleteOrEnd),
            (ctrl('h'), Action::DeleteBefore),
            (ctrl('k'), Action::KillToEnd),
            (ctrl('u'), Action::KillToStart),
            (ctrl('w'), Action::KillWordBefore),
            (ctrl('l'), Action::ClearScreen),
            (ctrl('c'), Action::Abort),
            (ctrl('j'), Action::Submit),
            (ctrl('x'), Action::Ignore),
            (key(KeyCode::Char('b'), alt), Action::WordLeft),
            (key(KeyCode::Char('f'), alt), Action::WordRight),
            (key(KeyCode::Char('d'), alt), Action::KillWordAfter),
            (key(KeyCode::Char('q'), alt), Action::Ignore),
            (key(KeyCode::Backspace, alt), Action::KillWordBefore),
            (key(KeyCode::Left, KeyModifiers::CONTROL), Action::WordLeft),
            (key(KeyCode::Up, none), Action::HistoryPrevious),
            (key(KeyCode::Delete, none), Action::DeleteAt),
            (key(KeyCode::Tab, none), Action::Ignore),
            (
                key(KeyCode::Char('É'), KeyModifiers::SHIFT),
                Action::Insert('É'),
            ),
            (key(KeyCode::Up, alt), Action::Ignore),
        ] {
            assert_eq!(action(&event), expected, "{event:?}");
        }
        let mut released = ctrl('c');
        released.kind = KeyEventKind::Release;
        assert_eq!(action(&released), Action::Ignore);
    }

    #[test]
    fn ctrl_v_takes_the_character_a_key_sends() {
        assert_eq!(literal(&ctrl('a')), Some('\u{1}'));
        assert_eq!(literal(&ctrl('z')), Some('\u{1a}'));
        assert_eq!(literal(&ctrl(' ')), Some('\0'));
        assert_eq!(literal(&ctrl('7')), Some('\u{1f}'));
        assert_eq!(literal(&ctrl('!')), None);
        let none = KeyModifiers::NONE;
        assert_eq!(literal(&key(KeyCode::Tab, none)), Some('\t'));
        assert_eq!(literal(&key(KeyCode::Esc, none)), Some('\u{1b}'));
        assert_eq!(literal(&key(KeyCode::Char('x'), none)), Some('x'));
        assert_eq!(literal(&key(KeyCode::Left, none)), None);
        assert_eq!(literal(&key(KeyCode::Char('x'), KeyModifiers::ALT)), None);
    }
}
