//! The lines typed before, recalled with Up and Down, and kept in a file
//! across sessions as shells keep theirs.
//!
//! The file is the one earlier versions of the client wrote with rustyline,
//! in its format: a first line `#V2`, then one entry per line with `\` and
//! line feeds escaped (`\\`, `\n`). A file without that first line holds
//! one entry per line, as is. Each line sent is appended at once, with a
//! single `write` to a file opened for appending, so nothing typed is lost
//! if the client is killed, and two clients appending at once interleave
//! whole lines.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// Most entries kept in memory for Up and Down.
const MAX_ENTRIES: usize = 1000;

/// The first line of a history file whose entries are escaped.
const ESCAPED_FORMAT: &str = "#V2";

/// Lines typed before, oldest first, and where Up and Down stand in them.
#[derive(Debug, Default)]
pub(super) struct History {
    /// At most [`MAX_ENTRIES`], none empty, no two neighbours equal.
    entries: Vec<String>,
    /// The entry shown, or `entries.len()` while the line being typed is
    /// shown. Invariant: `position <= entries.len()`.
    position: usize,
    /// What was being typed when Up was first pressed, given back by Down
    /// past the newest entry. `None` while `position == entries.len()`.
    draft: Option<String>,
}

impl History {
    /// A history holding `entries` (the oldest are dropped past the limit).
    pub(super) fn new(entries: Vec<String>) -> Self {
        let mut history = Self::default();
        for entry in entries {
            history.push(entry);
        }
        history
    }

    /// Adds a line sent, unless it is empty or repeats the newest entry,
    /// and goes back to the line being typed. True if it was added.
    pub(super) fn push(&mut self, line: String) -> bool {
        self.position = self.entries.len();
        self.draft = None;
        if line.is_empty() || self.entries.last() == Some(&line) {
            return false;
        }
        if self.entries.len() == MAX_ENTRIES {
            self.entries.remove(0);
        }
        self.entries.push(line);
        self.position = self.entries.len();
        true
    }

    /// Up: the entry before the one shown, or `None` at the oldest.
    /// `current` is the line shown now, kept if it is the one being typed.
    pub(super) fn previous(&mut self, current: &str) -> Option<&str> {
        if self.position == 0 {
            return None;
        }
        if self.position == self.entries.len() {
            self.draft = Some(current.to_owned());
        }
        self.position -= 1;
        self.entries.get(self.position).map(String::as_str)
    }

    /// Down: the entry after the one shown, then the line that was being
    /// typed; `None` when that line is already shown.
    pub(super) fn next(&mut self) -> Option<String> {
        if self.position >= self.entries.len() {
            return None;
        }
        self.position += 1;
        match self.entries.get(self.position) {
            Some(entry) => Some(entry.clone()),
            None => Some(self.draft.take().unwrap_or_default()),
        }
    }
}

/// A history file open for appending.
#[derive(Debug)]
pub(super) struct HistoryFile {
    /// Where the file is, for notices.
    path: PathBuf,
    /// Opened with `O_APPEND`: every write goes to the end.
    file: File,
    /// Whether entries are written escaped (the file starts with `#V2`).
    escaped: bool,
}

impl HistoryFile {
    /// Makes the file's directory (owner only: 0700) and the file (0600:
    /// it holds what the user typed), and reads the entries it holds. A
    /// file of more than twice [`MAX_ENTRIES`] is first cut down to the
    /// newest [`MAX_ENTRIES`], so that it does not grow forever.
    pub(super) fn open(path: PathBuf) -> io::Result<(Self, Vec<String>)> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(dir) = path.parent() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let mut file = open_private(&path, false)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let (mut escaped, mut entries) = parse(&bytes);
        if bytes.is_empty() {
            file.write_all(format!("{ESCAPED_FORMAT}\n").as_bytes())?;
            escaped = true;
        }
        if entries.len() > 2 * MAX_ENTRIES {
            entries.drain(..entries.len() - MAX_ENTRIES);
            // If it cannot be rewritten, the file is kept as it is.
            if let Ok(rewritten) = rewrite(&path, &entries) {
                (file, escaped) = (rewritten, true);
            }
        }
        let opened = Self {
            path,
            file,
            escaped,
        };
        Ok((opened, entries))
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one entry with a single write.
    pub(super) fn append(&mut self, entry: &str) -> io::Result<()> {
        let mut record = if self.escaped {
            escape(entry)
        } else {
            entry.replace('\n', " ")
        };
        record.push('\n');
        self.file.write_all(record.as_bytes())
    }
}

/// Opens (or makes, 0600) a history file for reading and appending; with
/// `truncate`, empty.
fn open_private(path: &Path, truncate: bool) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.create(true).read(true).mode(0o600);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    options.open(path)
}

/// Writes `entries` to a new file beside `path` and renames it over
/// `path`, so that a reader never sees half a file; returns the new file,
/// open for appending. A client appending to the old file meanwhile loses
/// that line: this happens once per thousand lines at most, when a client
/// starts.
fn rewrite(path: &Path, entries: &[String]) -> io::Result<File> {
    let fresh = path.with_extension("new");
    let mut text = format!("{ESCAPED_FORMAT}\n");
    for entry in entries {
        text.push_str(&escape(entry));
        text.push('\n');
    }
    open_private(&fresh, true)?.write_all(text.as_bytes())?;
    std::fs::rename(&fresh, path)?;
    open_private(path, false)
}

/// The entries of a history file, and whether they are escaped. Lines
/// that are not UTF-8 are skipped.
fn parse(bytes: &[u8]) -> (bool, Vec<String>) {
    let mut lines = bytes.split(|&b| b == b'\n').peekable();
    let escaped = lines
        .next_if(|first| *first == ESCAPED_FORMAT.as_bytes())
        .is_some();
    let entries = lines
        .filter_map(|line| std::str::from_utf8(line).ok())
        .filter(|line| !line.is_empty())
        .map(|line| {
            if escaped {
                unescape(line)
            } else {
                line.to_owned()
            }
        })
        .collect();
    (escaped, entries)
}

fn escape(entry: &str) -> String {
    entry.replace('\\', "\\\\").replace('\n', "\\n")
}

fn unescape(line: &str) -> String {
    let mut entry = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (c, chars.clone().next()) {
            ('\\', Some('n')) => entry.push('\n'),
            ('\\', Some('\\')) => entry.push('\\'),
            _ => {
                entry.push(c);
                continue;
            }
        }
        chars.next();
    }
    entry
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn up_and_down_walk_the_entries_and_give_back_the_line_being_typed() {
        let mut history = History::new(vec!["one".into(), "two".into()]);
        assert_eq!(history.next(), None);
        assert_eq!(history.previous("typing"), Some("two"));
        assert_eq!(history.previous("two"), Some("one"));
        assert_eq!(history.previous("one"), None);
        assert_eq!(history.next().as_deref(), Some("two"));
        assert_eq!(history.next().as_deref(), Some("typing"));
        assert_eq!(history.next(), None);
        assert!(history.push("three".into()));
        assert_eq!(history.previous(""), Some("three"));
    }

    #[test]
    fn empty_lines_and_repeats_are_not_kept_and_the_oldest_go_past_the_limit() {
        let mut history = History::new(Vec::new());
        assert!(!history.push(String::new()));
        assert!(history.push("same".into()));
        assert!(!history.push("same".into()));
        for n in 0..MAX_ENTRIES {
            history.push(n.to_string());
        }
        assert_eq!(history.entries.len(), MAX_ENTRIES);
        assert_eq!(history.entries[0], "0");
    }

    #[test]
    fn the_file_is_made_owner_only_and_read_back_escaped() {
        let state = tempfile::tempdir().expect("tempdir");
        let path = state.path().join("nea").join("history");
        let (mut file, entries) = HistoryFile::open(path.clone()).expect("opened");
        assert!(entries.is_empty());
        for entry in ["plain", "back\\slash", "two\nlines", "trailing\r"] {
            file.append(entry).expect("appended");
        }
        drop(file);
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(state.path().join("nea").as_path()), 0o700);
        let written = std::fs::read_to_string(&path).expect("read");
        assert_eq!(
            written,
            "#V2\nplain\nback\\\\slash\ntwo\\nlines\ntrailing\r\n"
        );
        let (_, entries) = HistoryFile::open(path).expect("opened again");
        assert_eq!(
            entries,
            ["plain", "back\\slash", "two\nlines", "trailing\r"]
        );
    }

    #[test]
    fn a_file_without_the_format_line_is_read_and_appended_as_is() {
        let state = tempfile::tempdir().expect("tempdir");
        let path = state.path().join("history");
        std::fs::write(&path, b"old \\n one\n\xff\xfe\n\nsecond\n").expect("written");
        let (mut file, entries) = HistoryFile::open(path.clone()).expect("opened");
        assert_eq!(entries, ["old \\n one", "second"]);
        file.append("new\\").expect("appended");
        let written = std::fs::read(&path).expect("read");
        assert!(written.ends_with(b"second\nnew\\\n"), "{written:?}");
        assert_eq!(file.path(), path);
    }

    #[test]
    fn a_file_of_more_than_twice_the_limit_is_cut_to_the_newest_entries() {
        let state = tempfile::tempdir().expect("tempdir");
        let path = state.path().join("history");
        let lines: String = (0..=2 * MAX_ENTRIES).map(|n| format!("{n}\n")).collect();
        std::fs::write(&path, lines).expect("written");
        let (mut file, entries) = HistoryFile::open(path.clone()).expect("opened");
        assert_eq!(entries.len(), MAX_ENTRIES);
        assert_eq!(entries[0], (MAX_ENTRIES + 1).to_string());
        file.append("last").expect("appended");
        let (_, entries) = HistoryFile::open(path.clone()).expect("opened again");
        assert_eq!(entries.len(), MAX_ENTRIES + 1);
        assert_eq!(entries.last().map(String::as_str), Some("last"));
        let mode = std::fs::metadata(&path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn a_lone_or_unknown_escape_is_kept_as_written() {
        assert_eq!(unescape("a\\tb\\"), "a\\tb\\");
        assert_eq!(unescape(&escape("x\\n\n")), "x\\n\n");
    }
}
