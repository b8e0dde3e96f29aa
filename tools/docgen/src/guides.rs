//! The tables of the guides in `docs/` that [`crate::reference`] holds:
//! each sits between a start marker that names it and an end marker, and
//! docgen writes it anew there, so that a guide and the man pages say the
//! same.
//!
//! ```text
//! <!-- docgen: clientcli exit statuses -->
//! | status | meaning |
//! ...
//! <!-- end docgen -->
//! ```

use std::path::Path;

use crate::reference::{self, Reference};

/// The end of a generated table.
const END: &str = "<!-- end docgen -->";

/// Every table of a reference.
const ALL_TABLES: &[&str] = &["exit statuses", "signals", "environment", "files"];

/// The guides, the reference whose tables each holds, and which of them.
pub(crate) const GUIDES: [(&str, &Reference, &[&str]); 3] = [
    ("client.md", &reference::CLIENTCLI, ALL_TABLES),
    ("operations.md", &reference::SERVERCLI, ALL_TABLES),
    ("operations.md", &reference::LOADCLI, &["exit statuses"]),
];

/// Each table a reference has: its name in the marker (`clientcli exit
/// statuses`), and its Markdown.
fn tables(reference: &Reference) -> Vec<(String, String)> {
    let program = reference.program;
    let mut tables = vec![(
        format!("{program} exit statuses"),
        reference::markdown_table("status", reference.exit_statuses),
    )];
    for (what, heading, entries) in [
        ("signals", "signal", reference.signals),
        ("environment", "variable", reference.environment),
        ("files", "file", reference.files),
    ] {
        if !entries.is_empty() {
            tables.push((
                format!("{program} {what}"),
                reference::markdown_table(heading, entries),
            ));
        }
    }
    tables
}

/// `text` (a guide) with the tables of `reference` named in `which`
/// written anew; an error names a table it does not mark, or a start
/// marker without its end.
pub(crate) fn update(text: &str, reference: &Reference, which: &[&str]) -> Result<String, String> {
    let mut text = text.to_owned();
    for (name, table) in tables(reference) {
        if !which.iter().any(|kind| name.ends_with(kind)) {
            continue;
        }
        let start = format!("<!-- docgen: {name} -->\n");
        let Some(at) = text.find(&start) else {
            return Err(format!("no `{}` marker", start.trim_end()));
        };
        let from = at + start.len();
        let Some(length) = text[from..].find(END) else {
            return Err(format!("the table `{name}` has no `{END}` marker"));
        };
        text.replace_range(from..from + length, &table);
    }
    Ok(text)
}

/// Writes the tables into the guides under `docs`; returns the guides
/// changed.
pub(crate) fn write(docs: &Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    let mut files: Vec<&str> = GUIDES.iter().map(|(file, _, _)| *file).collect();
    files.dedup();
    for file in files {
        let path = docs.join(file);
        let text = std::fs::read_to_string(&path)?;
        let mut updated = text.clone();
        for (_, reference, which) in GUIDES.iter().filter(|(each, _, _)| *each == file) {
            updated = update(&updated, reference, which)
                .map_err(|err| std::io::Error::other(format!("{}: {err}", path.display())))?;
        }
        if updated != text {
            std::fs::write(&path, updated)?;
            written.push(path);
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_marked_table_is_written_anew_and_the_rest_kept() {
        let guide = "# Guide\n\n<!-- docgen: loadcli exit statuses -->\nold\n<!-- end docgen -->\n\n\
                     <!-- docgen: loadcli signals -->\n<!-- end docgen -->\n\
                     <!-- docgen: loadcli environment -->\n<!-- end docgen -->\n\
                     <!-- docgen: loadcli files -->\n<!-- end docgen -->\nafter\n";
        let updated = update(guide, &reference::LOADCLI, ALL_TABLES).expect("updated");
        assert!(updated.starts_with(
            "# Guide\n\n<!-- docgen: loadcli exit statuses -->\n| status | meaning |\n"
        ));
        assert!(!updated.contains("old"));
        assert!(updated.ends_with("<!-- end docgen -->\nafter\n"));
        assert_eq!(
            update(&updated, &reference::LOADCLI, ALL_TABLES),
            Ok(updated.clone())
        );
        assert!(update("nothing", &reference::LOADCLI, ALL_TABLES).is_err());
        // Only the tables asked for.
        assert_eq!(
            update("nothing", &reference::LOADCLI, &[]),
            Ok("nothing".to_owned())
        );
    }
}
