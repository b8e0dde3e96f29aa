//! Log lines (`--verbose`) in a terminal: written to standard error by the
//! logging thread, they would break into the prompt's row (and, in raw
//! mode, stair-step). Each one goes to the terminal's owner instead, which
//! prints it above the prompt like any message.

use std::io::Write;

use tokio::sync::mpsc;
use tracing_subscriber::fmt::MakeWriter;

/// Makes a writer per log event; each event becomes one message.
#[derive(Debug, Clone)]
pub(crate) struct LogLines {
    /// To the terminal's owner. Unbounded: logging never waits (there are
    /// a few lines per connection attempt, with `--verbose` only).
    lines: mpsc::UnboundedSender<String>,
}

/// The writers for the logging set-up, and where their lines arrive.
pub(crate) fn log_lines() -> (LogLines, mpsc::UnboundedReceiver<String>) {
    let (lines, received) = mpsc::unbounded_channel();
    (LogLines { lines }, received)
}

impl<'a> MakeWriter<'a> for LogLines {
    type Writer = LogLine;

    fn make_writer(&'a self) -> LogLine {
        LogLine {
            lines: self.lines.clone(),
            text: Vec::new(),
        }
    }
}

/// One log event's text, sent when the event is written out (dropped).
#[derive(Debug)]
pub(crate) struct LogLine {
    /// To the terminal's owner.
    lines: mpsc::UnboundedSender<String>,
    /// The event's text so far.
    text: Vec<u8>,
}

impl Write for LogLine {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.text.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.text);
        let line = text.trim_end_matches('\n');
        if line.is_empty() {
            return;
        }
        // Once the owner is gone the terminal is cooked again: standard
        // error is fine.
        if let Err(unsent) = self.lines.send(line.to_owned()) {
            eprintln!("{}", unsent.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_one_line_without_its_newline() {
        let (writers, mut received) = log_lines();
        let mut writer = writers.make_writer();
        writer.write_all(b"first part, ").expect("written");
        writer.write_all(b"second part\n").expect("written");
        writer.flush().expect("flushed");
        drop(writer);
        drop(writers.make_writer());
        assert_eq!(
            received.try_recv().ok().as_deref(),
            Some("first part, second part")
        );
        assert!(received.try_recv().is_err(), "an empty event is no line");
    }
}
