//! The line being typed, edited grapheme by grapheme: a cursor never stands
//! inside a cluster (an emoji family, a letter with its combining accent, a
//! flag), so one key moves over or deletes what a person sees as one
//! character.

use unicode_segmentation::{GraphemeCursor, UnicodeSegmentation};

/// A line of text and the cursor in it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(super) struct LineBuffer {
    /// What is typed so far.
    text: String,
    /// Where the next character goes: a byte offset into `text`, always on
    /// a grapheme cluster boundary (0 and `text.len()` included).
    cursor: usize,
}

impl LineBuffer {
    /// The text typed so far.
    pub(super) fn text(&self) -> &str {
        &self.text
    }

    /// The cursor, as a byte offset into [`text`](Self::text) on a
    /// grapheme boundary.
    pub(super) fn cursor(&self) -> usize {
        self.cursor
    }

    pub(super) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Replaces the whole line (a line recalled from history), with the
    /// cursor at its end.
    pub(super) fn replace(&mut self, text: String) {
        self.text = text;
        self.cursor = self.text.len();
    }

    /// Empties the line and returns what it held.
    pub(super) fn take(&mut self) -> String {
        self.cursor = 0;
        std::mem::take(&mut self.text)
    }

    /// Inserts text at the cursor and leaves the cursor after it. If what
    /// is inserted joins the cluster after it (a combining accent typed
    /// before a letter's own, a joiner), the cursor goes to that cluster's
    /// end, the next boundary.
    pub(super) fn insert(&mut self, text: &str) {
        self.text.insert_str(self.cursor, text);
        self.cursor += text.len();
        if !is_boundary(&self.text, self.cursor) {
            self.cursor = next_boundary(&self.text, self.cursor);
        }
    }

    pub(super) fn move_left(&mut self) {
        self.cursor = previous_boundary(&self.text, self.cursor);
    }

    pub(super) fn move_right(&mut self) {
        self.cursor = next_boundary(&self.text, self.cursor);
    }

    pub(super) fn move_home(&mut self) {
        self.cursor = 0;
    }

    pub(super) fn move_end(&mut self) {
        self.cursor = self.text.len();
    }

    /// Back to the start of the word before the cursor (words are runs of
    /// letters and digits, as in Emacs and readline).
    pub(super) fn word_left(&mut self) {
        self.cursor = self.word_start_before(self.cursor, is_word);
    }

    /// On to the end of the word after the cursor.
    pub(super) fn word_right(&mut self) {
        let mut at = self.cursor;
        let mut seen_word = false;
        for (offset, cluster) in self.text[self.cursor..].grapheme_indices(true) {
            if is_word(cluster) {
                seen_word = true;
            } else if seen_word {
                break;
            }
            at = self.cursor + offset + cluster.len();
        }
        self.cursor = at;
    }

    /// Deletes the cluster before the cursor (Backspace); false at the
    /// start of the line.
    pub(super) fn delete_before(&mut self) -> bool {
        let start = previous_boundary(&self.text, self.cursor);
        let deleted = start < self.cursor;
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
        deleted
    }

    /// Deletes the cluster under the cursor (Delete, Ctrl-D); false at the
    /// end of the line.
    pub(super) fn delete_at(&mut self) -> bool {
        let end = next_boundary(&self.text, self.cursor);
        self.text.replace_range(self.cursor..end, "");
        end > self.cursor
    }

    /// Removes and returns everything after the cursor (Ctrl-K).
    pub(super) fn kill_to_end(&mut self) -> String {
        self.text.split_off(self.cursor)
    }

    /// Removes and returns everything before the cursor (Ctrl-U).
    pub(super) fn kill_to_start(&mut self) -> String {
        let killed = self.text[..self.cursor].to_owned();
        self.text.replace_range(..self.cursor, "");
        self.cursor = 0;
        killed
    }

    /// Removes and returns the whitespace-delimited word before the cursor,
    /// with the blanks after it (Ctrl-W, as in a Unix terminal).
    pub(super) fn kill_word_before(&mut self) -> String {
        let start = self.word_start_before(self.cursor, |cluster| {
            !cluster.chars().all(char::is_whitespace)
        });
        let killed = self.text[start..self.cursor].to_owned();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
        killed
    }

    /// Removes and returns the text from the cursor to the end of the next
    /// word (Alt-D).
    pub(super) fn kill_word_after(&mut self) -> String {
        let start = self.cursor;
        self.word_right();
        let killed = self.text[start..self.cursor].to_owned();
        self.text.replace_range(start..self.cursor, "");
        self.cursor = start;
        killed
    }

    /// Where the word that ends at or before `from` starts: clusters that
    /// are not `in_word` are skipped backwards, then those that are.
    fn word_start_before(&self, from: usize, in_word: impl Fn(&str) -> bool) -> usize {
        let mut start = from;
        let mut seen_word = false;
        for (offset, cluster) in self.text[..from].grapheme_indices(true).rev() {
            if in_word(cluster) {
                seen_word = true;
            } else if seen_word {
                break;
            }
            start = offset;
        }
        start
    }
}

/// Whether a cluster belongs to a word: it starts with a letter or digit.
fn is_word(cluster: &str) -> bool {
    cluster.chars().next().is_some_and(char::is_alphanumeric)
}

/// Whether `at` (a char boundary of `text`) is a grapheme boundary.
fn is_boundary(text: &str, at: usize) -> bool {
    GraphemeCursor::new(at, text.len(), true)
        .is_boundary(text, 0)
        .unwrap_or(true)
}

/// The first grapheme boundary after `at`, or the end of `text`.
fn next_boundary(text: &str, at: usize) -> usize {
    GraphemeCursor::new(at, text.len(), true)
        .next_boundary(text, 0)
        .ok()
        .flatten()
        .unwrap_or(text.len())
}

/// The last grapheme boundary before `at`, or 0.
fn previous_boundary(text: &str, at: usize) -> usize {
    GraphemeCursor::new(at, text.len(), true)
        .prev_boundary(text, 0)
        .ok()
        .flatten()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn typed(text: &str) -> LineBuffer {
        let mut line = LineBuffer::default();
        for c in text.chars() {
            line.insert(c.encode_utf8(&mut [0; 4]));
        }
        line
    }

    #[test]
    fn the_cursor_moves_and_deletes_whole_clusters() {
        let family = "👨\u{200d}👩\u{200d}👧";
        let mut line = typed(&format!("a{family}e\u{301}日"));
        line.move_left();
        line.move_left();
        assert_eq!(&line.text()[line.cursor()..], "e\u{301}日");
        assert!(line.delete_at());
        assert_eq!(line.text(), format!("a{family}日"));
        assert!(line.delete_before());
        assert_eq!(line.text(), "a日");
        line.move_right();
        line.move_right();
        assert_eq!(line.cursor(), line.text().len());
        assert!(!line.delete_at());
        line.move_home();
        assert!(!line.delete_before());
    }

    #[test]
    fn a_joiner_or_an_accent_typed_inside_a_line_keeps_the_cursor_on_a_boundary() {
        let mut line = typed("👨👩");
        line.move_left();
        line.insert("\u{200d}");
        assert_eq!(line.text(), "👨\u{200d}👩");
        assert_eq!(line.cursor(), line.text().len());
        let mut flags = typed("🇫🇷");
        flags.move_home();
        flags.insert("🇮");
        // 🇮🇫 pairs up, 🇷 is left alone: the cursor is after the pair.
        assert_eq!(flags.cursor(), "🇮🇫".len());
    }

    #[test]
    fn words_are_letters_and_digits_for_moves_and_blanks_for_ctrl_w() {
        let mut line = typed("say hello-world  now");
        line.word_left();
        assert_eq!(&line.text()[line.cursor()..], "now");
        line.word_left();
        assert_eq!(&line.text()[line.cursor()..], "world  now");
        line.word_right();
        assert_eq!(&line.text()[line.cursor()..], "  now");
        line.move_end();
        assert_eq!(line.kill_word_before(), "now");
        assert_eq!(line.kill_word_before(), "hello-world  ");
        line.move_home();
        assert_eq!(line.kill_word_after(), "say");
        assert_eq!(line.text(), " ");
    }

    #[test]
    fn kills_take_what_is_before_or_after_the_cursor() {
        let mut line = typed("hello world");
        line.word_left();
        assert_eq!(line.kill_to_end(), "world");
        assert_eq!(line.kill_to_start(), "hello ");
        assert!(line.is_empty());
        line.replace("again".to_owned());
        assert_eq!(line.cursor(), 5);
        assert_eq!(line.take(), "again");
        assert_eq!((line.text(), line.cursor()), ("", 0));
    }

    /// One editing step, as the keys make them.
    #[derive(Debug, Clone)]
    enum Step {
        Insert(String),
        Left,
        Right,
        Home,
        End,
        WordLeft,
        WordRight,
        DeleteBefore,
        DeleteAt,
        KillToEnd,
        KillToStart,
        KillWordBefore,
        KillWordAfter,
    }

    fn step() -> impl Strategy<Value = Step> {
        let pieces = prop_oneof![
            "\\PC{0,3}",
            Just("\u{301}".to_owned()),
            Just("\u{200d}".to_owned()),
            Just("🇫".to_owned()),
            Just("\r\n".to_owned()),
            Just(" ".to_owned()),
            Just("👩".to_owned()),
        ];
        prop_oneof![
            pieces.prop_map(Step::Insert),
            Just(Step::Left),
            Just(Step::Right),
            Just(Step::Home),
            Just(Step::End),
            Just(Step::WordLeft),
            Just(Step::WordRight),
            Just(Step::DeleteBefore),
            Just(Step::DeleteAt),
            Just(Step::KillToEnd),
            Just(Step::KillToStart),
            Just(Step::KillWordBefore),
            Just(Step::KillWordAfter),
        ]
    }

    fn apply(line: &mut LineBuffer, step: Step) {
        match step {
            Step::Insert(text) => line.insert(&text),
            Step::Left => line.move_left(),
            Step::Right => line.move_right(),
            Step::Home => line.move_home(),
            Step::End => line.move_end(),
            Step::WordLeft => line.word_left(),
            Step::WordRight => line.word_right(),
            Step::DeleteBefore => drop(line.delete_before()),
            Step::DeleteAt => drop(line.delete_at()),
            Step::KillToEnd => drop(line.kill_to_end()),
            Step::KillToStart => drop(line.kill_to_start()),
            Step::KillWordBefore => drop(line.kill_word_before()),
            Step::KillWordAfter => drop(line.kill_word_after()),
        }
    }

    proptest! {
        #[test]
        fn any_steps_keep_the_cursor_on_a_grapheme_boundary(steps in prop::collection::vec(step(), 0..40)) {
            let mut line = LineBuffer::default();
            for step in steps {
                apply(&mut line, step);
                let boundaries: Vec<usize> = line
                    .text()
                    .grapheme_indices(true)
                    .map(|(at, _)| at)
                    .chain([line.text().len()])
                    .collect();
                prop_assert!(boundaries.contains(&line.cursor()), "{:?}", line);
            }
        }
    }
}
