//! What is written to the terminal, as text: the prompt row and messages.
//! Pure functions, so that every layout can be tested without a terminal.
//!
//! The prompt row never wraps: a line wider than the terminal scrolls
//! sideways under the prompt, so that the cursor's cluster is always in
//! view. The last column stays empty (a glyph there would leave the
//! terminal waiting to wrap), so the row is redrawn with a carriage return
//! and nothing above it is ever touched. That is why a resize needs no
//! more than a redraw of that row, whatever the new width.
//!
//! Widths are those of `wcwidth`, character by character (CJK and most
//! emoji take two columns, combining marks none), as readline and the
//! usual terminals count them. Control characters and bidirectional
//! overrides typed with Ctrl-V are shown escaped (`\u{1}`), as server text
//! is, so that what the user types cannot move the cursor either.

use unicode_segmentation::UnicodeSegmentation;
use unicode_width::UnicodeWidthChar;

use crate::display::escape_for_terminal;

/// Back to the first column, and clear to the end of the row.
const CLEAR_ROW: &str = "\r\x1b[K";

/// Raw mode turns off the terminal's own `\n` to `\r\n`: every line ends
/// with both.
pub(super) const NEWLINE: &str = "\r\n";

/// One grapheme cluster of the line as it is shown.
#[derive(Debug)]
struct Cell {
    /// Where the cluster starts in the line, in bytes.
    start: usize,
    /// What the terminal is sent for it.
    shown: String,
    /// Columns it takes.
    width: usize,
}

/// The clusters of `text`, as shown.
fn cells(text: &str) -> Vec<Cell> {
    text.grapheme_indices(true)
        .map(|(start, cluster)| {
            let shown = escape_for_terminal(cluster);
            Cell {
                start,
                width: width(&shown),
                shown,
            }
        })
        .collect()
}

/// Columns `text` takes on a terminal (escaped text has no control
/// characters, whose width would be unknown).
pub(super) fn width(text: &str) -> usize {
    text.chars().map(|c| c.width().unwrap_or(0)).sum()
}

/// The prompt row's view of a line wider than the terminal: which part of
/// it is shown.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct View {
    /// Byte offset in the line of the first cluster shown. Invariant: a
    /// grapheme boundary of the line, at or before the cursor.
    first: usize,
}

/// How the prompt row is drawn on a terminal `columns` wide: the text to
/// write (the cursor ends where the user types next), and the view for the
/// next draw. Nothing is drawn in the last column.
pub(super) fn prompt_row(
    prompt: &str,
    line: &str,
    cursor: usize,
    columns: u16,
    view: View,
) -> (String, View) {
    let usable = usize::from(columns.max(1)) - 1;
    let prompt_width = width(prompt);
    // A terminal too narrow for the prompt and one column shows the line
    // alone.
    let (prompt, room) = match usable.checked_sub(prompt_width) {
        Some(room) if room > 0 => (prompt, room),
        _ => ("", usable),
    };
    let cells = cells(line);
    let at_cursor = cells.partition_point(|cell| cell.start < cursor);
    let first = scroll(&cells, at_cursor, view, room);
    let mut row = format!("{CLEAR_ROW}{prompt}");
    let mut used = 0;
    for cell in cells[first..].iter() {
        if used + cell.width > room {
            break;
        }
        row.push_str(&cell.shown);
        used += cell.width;
    }
    let column = width(prompt) + columns_between(&cells[first..at_cursor]);
    row.push('\r');
    if column > 0 {
        row.push_str(&format!("\x1b[{column}C"));
    }
    let start = cells.get(first).map_or(line.len(), |cell| cell.start);
    (row, View { first: start })
}

/// Index of the first cell shown: the previous view's, moved just enough
/// that the cursor (at cell `at_cursor`) is within `room` columns of it,
/// and back as far as the rest of the line allows (so that deleting at the
/// end of a long line brings its start back into view).
fn scroll(cells: &[Cell], at_cursor: usize, view: View, room: usize) -> usize {
    let mut first = cells
        .partition_point(|cell| cell.start < view.first)
        .min(at_cursor);
    while columns_between(&cells[first..at_cursor]) > room {
        first += 1;
    }
    while first > 0 && columns_between(&cells[first - 1..]) <= room {
        first -= 1;
    }
    first
}

fn columns_between(cells: &[Cell]) -> usize {
    cells.iter().map(|cell| cell.width).sum()
}

/// Clears the prompt row; the cursor is left at its start.
pub(super) fn clear_prompt_row() -> &'static str {
    CLEAR_ROW
}

/// A message (already made safe by `display::render`) on the row where the
/// cursor is, which is cleared first, and ended: the terminal wraps a long
/// one, and the next thing written starts on a row of its own.
pub(super) fn message(text: &str) -> String {
    let mut out = String::from(CLEAR_ROW);
    out.push_str(&text.replace('\n', NEWLINE));
    out.push_str(NEWLINE);
    out
}

/// A line that was sent, as it stays on the screen: the prompt and the
/// whole line (escaped), over as many rows as it needs.
pub(super) fn sent_line(prompt: &str, line: &str) -> String {
    message(&format!("{prompt}{}", escape_for_terminal(line)))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The prompt row as a terminal `columns` wide shows it: the text and
    /// the cursor's column.
    fn shown(row: &str, columns: u16) -> (String, usize) {
        let size = |n: u16| std::num::NonZeroU16::new(n).expect("a size");
        let mut parser = vt100::Parser::new(size(2), size(columns), 0);
        parser.process(row.as_bytes());
        let screen = parser.screen();
        let text = screen.contents();
        (
            text.trim_end().to_owned(),
            usize::from(screen.cursor_position().1),
        )
    }

    #[test]
    fn a_short_line_is_drawn_whole_with_the_cursor_after_its_cluster() {
        let line = "日本e\u{301}x";
        let cursor = line.len() - 1;
        let (row, view) = prompt_row("> ", line, cursor, 20, View::default());
        assert_eq!(shown(&row, 20), (format!("> {line}"), 2 + 5));
        assert_eq!(view, View::default());
    }

    #[test]
    fn a_long_line_scrolls_so_the_cursor_stays_in_view() {
        let line: String = ('a'..='z').collect();
        let (row, view) = prompt_row("> ", &line, line.len(), 10, View::default());
        // 10 columns: the prompt, 7 letters, the last column free.
        assert_eq!(shown(&row, 10), ("> tuvwxyz".to_owned(), 9));
        // Home: the start comes back.
        let (row, view) = prompt_row("> ", &line, 0, 10, view);
        assert_eq!(shown(&row, 10), ("> abcdefg".to_owned(), 2));
        // A move within the view does not scroll.
        let (row, _) = prompt_row("> ", &line, 5, 10, view);
        assert_eq!(shown(&row, 10), ("> abcdefg".to_owned(), 7));
    }

    #[test]
    fn wide_clusters_are_never_cut_in_two() {
        let line = "日本語日本語";
        let (row, _) = prompt_row("> ", line, line.len(), 8, View::default());
        // Room for 5 columns: two wide characters.
        assert_eq!(shown(&row, 8), ("> 本語".to_owned(), 6));
    }

    #[test]
    fn control_characters_in_the_line_are_shown_escaped() {
        let (row, _) = prompt_row("> ", "x\u{1}y", 2, 30, View::default());
        assert_eq!(shown(&row, 30), ("> x\\u{1}y".to_owned(), 8));
    }

    #[test]
    fn a_terminal_narrower_than_the_prompt_shows_the_line_alone() {
        let (row, _) = prompt_row("> ", "abc", 3, 3, View::default());
        assert_eq!(shown(&row, 3), ("bc".to_owned(), 2));
        let (row, _) = prompt_row("> ", "abc", 3, 1, View::default());
        assert_eq!(shown(&row, 1), (String::new(), 0));
    }

    #[test]
    fn messages_and_sent_lines_end_their_rows() {
        assert_eq!(message("a\nb"), "\r\x1b[Ka\r\nb\r\n");
        assert_eq!(sent_line("> ", "x\ry"), "\r\x1b[K> x\\ry\r\n");
    }

    fn any_line() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop_oneof![
                Just("a"),
                Just("日"),
                Just("e\u{301}"),
                Just("\u{1}"),
                Just("👨\u{200d}👩"),
                Just(" "),
            ],
            0..60,
        )
        .prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn the_row_fits_and_the_cursor_is_on_it(
            line in any_line(),
            at in 0usize..100,
            columns in 1u16..40,
            views in prop::collection::vec(0usize..100, 1..4),
        ) {
            let boundaries: Vec<usize> = line
                .grapheme_indices(true)
                .map(|(i, _)| i)
                .chain([line.len()])
                .collect();
            let cursor = boundaries[at % boundaries.len()];
            let mut view = View { first: boundaries[views[0] % boundaries.len()].min(cursor) };
            for _ in &views {
                let (row, next) = prompt_row("> ", &line, cursor, columns, view);
                let drawn = row.split('\r').nth(1).unwrap_or_default();
                prop_assert!(width(drawn.trim_start_matches("\x1b[K")) < usize::from(columns));
                let (_, column) = shown(&row, columns);
                prop_assert!(column < usize::from(columns));
                prop_assert!(next.first <= cursor);
                view = next;
            }
        }
    }
}
