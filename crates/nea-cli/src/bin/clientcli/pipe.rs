//! The front end for standard input that is not a terminal (a pipe or a
//! file): every line is sent, and at end of input the session waits for
//! every reply still due, then closes with close_notify.
//!
//! Replies (or, with `--json`, every frame) go to standard output, one per
//! line; dates, notices and per-line errors go to standard error. So
//! `clientcli < in.txt > out.txt` writes exactly the replies.

use std::io::IsTerminal;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::display::{Stream, render};
use nea::client::Options;
use nea::client::session::{Event, Input, Outcome, Session};
use nea::codec::{Inbound, LineDecoder};
use nea::error::ClientError;

/// Longest line read from standard input. Longer lines are reported and not
/// sent (the server would refuse them anyway).
const MAX_INPUT_LINE: usize = 16 * 1024 * 1024;

/// Runs a session fed by standard input. SIGINT aborts it.
pub(crate) async fn run(
    options: Options,
    config: Arc<rustls::ClientConfig>,
) -> Result<Outcome, ClientError> {
    let (event_tx, event_rx) = mpsc::channel(256);
    let (input_tx, input_rx) = mpsc::channel(256);
    let escape = std::io::stdout().is_terminal();
    let printer = tokio::spawn(print_events(event_rx, escape));
    let session = match Session::connect(options, config, event_tx).await {
        Ok(session) => session,
        Err(err) => {
            let _ = printer.await;
            return Err(err);
        }
    };
    let reader = tokio::spawn(read_lines(tokio::io::stdin(), input_tx.clone()));
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = input_tx.send(Input::Abort).await;
        }
    });
    let outcome = session.run(input_rx).await;
    reader.abort();
    interrupt.abort();
    // The session has dropped its event sender: the printer ends after
    // writing everything, so nothing is lost at exit.
    let printed = printer.await;
    match printed {
        Ok(Err(err)) if err.kind() != std::io::ErrorKind::BrokenPipe => Err(ClientError::Io {
            phase: "writing to standard output",
            source: err,
        }),
        _ => outcome,
    }
}

/// Splits `source` into lines and sends them as inputs; ends with
/// [`Input::End`]. Lines that cannot be sent are reported on stderr.
pub(crate) async fn read_lines<R: tokio::io::AsyncRead + Unpin>(
    mut source: R,
    inputs: mpsc::Sender<Input>,
) {
    let mut decoder = LineDecoder::new(MAX_INPUT_LINE);
    let mut chunk = vec![0u8; 64 * 1024];
    let mut number = 0u64;
    loop {
        let read = match source.read(&mut chunk).await {
            Ok(read) => read,
            Err(err) => {
                eprintln!("clientcli: cannot read standard input: {err}");
                0
            }
        };
        let mut bytes = &chunk[..read];
        let mut items = Vec::new();
        while let Some(item) = decoder.decode(&mut bytes) {
            number += 1;
            items.push(to_input(item, number));
        }
        if read == 0
            && let Some(item) = decoder.finish()
        {
            number += 1;
            items.push(to_input(item, number));
        }
        for input in items {
            if inputs.send(input).await.is_err() {
                return;
            }
        }
        if read == 0 {
            let _ = inputs.send(Input::End).await;
            return;
        }
    }
}

/// The input for one line of standard input: the line, or, for one that
/// cannot be sent (after a notice naming it), its place in the count.
fn to_input(item: Inbound<'_>, number: u64) -> Input {
    match item {
        Inbound::Line(text) => Input::Line(text.as_bytes().to_vec()),
        Inbound::TooLong => {
            eprintln!(
                "clientcli: input line {number} is longer than {MAX_INPUT_LINE} bytes; not sent"
            );
            Input::Skipped
        }
        Inbound::InvalidUtf8 => {
            eprintln!("clientcli: input line {number} is not valid UTF-8; not sent");
            Input::Skipped
        }
    }
}

/// Writes each event to its stream. On a write error (a closed pipe) it
/// returns the error at once: dropping `events` tells the session that
/// nobody reads any more, and the session ends.
async fn print_events(
    mut events: mpsc::Receiver<Event>,
    escape_replies: bool,
) -> std::io::Result<()> {
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    while let Some(event) = events.recv().await {
        let (stream, mut text) = render(&event, escape_replies);
        text.push('\n');
        let written = match stream {
            Stream::Stdout => write_flush(&mut stdout, &text).await,
            Stream::Stderr => write_flush(&mut stderr, &text).await,
        };
        written?;
    }
    Ok(())
}

async fn write_flush<W: AsyncWriteExt + Unpin>(out: &mut W, text: &str) -> std::io::Result<()> {
    out.write_all(text.as_bytes()).await?;
    // Flush only when the queue is empty would be faster; but a person
    // watching a pipe expects each reply as it comes.
    out.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn inputs_from(bytes: &'static [u8]) -> Vec<Input> {
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(read_lines(bytes, tx));
        let mut inputs = Vec::new();
        while let Some(input) = rx.recv().await {
            inputs.push(input);
        }
        inputs
    }

    #[tokio::test]
    async fn lines_and_a_final_unterminated_line_are_sent_then_end() {
        let inputs = inputs_from(b"hello\r\nno\xc3\xabl\n\nlast").await;
        assert_eq!(
            inputs,
            [
                Input::Line(b"hello".to_vec()),
                Input::Line("noël".as_bytes().to_vec()),
                Input::Line(Vec::new()),
                Input::Line(b"last".to_vec()),
                Input::End,
            ]
        );
    }

    #[tokio::test]
    async fn invalid_utf8_is_not_sent_but_keeps_its_place() {
        let inputs = inputs_from(b"ok\n\xff\xfe\nfine\n").await;
        assert_eq!(
            inputs,
            [
                Input::Line(b"ok".to_vec()),
                Input::Skipped,
                Input::Line(b"fine".to_vec()),
                Input::End
            ]
        );
    }

    #[tokio::test]
    async fn a_line_of_16_mib_is_sent_and_a_longer_one_is_not() {
        // The documented limit, written out: a smaller one would still
        // agree with itself. Both lines span many reads from the source.
        let limit = 16 * 1024 * 1024;
        let mut bytes = vec![b'a'; limit];
        bytes.push(b'\n');
        bytes.extend(std::iter::repeat_n(b'b', limit + 1));
        bytes.extend_from_slice(b"\nok\n");
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(read_lines(std::io::Cursor::new(bytes), tx));
        let mut inputs = Vec::new();
        while let Some(input) = rx.recv().await {
            inputs.push(input);
        }
        assert_eq!(
            inputs,
            [
                Input::Line(vec![b'a'; limit]),
                Input::Skipped,
                Input::Line(b"ok".to_vec()),
                Input::End
            ]
        );
    }

    #[tokio::test]
    async fn input_of_one_unterminated_line_is_sent_then_end() {
        assert_eq!(
            inputs_from(b"only").await,
            [Input::Line(b"only".to_vec()), Input::End]
        );
        assert_eq!(inputs_from(b"").await, [Input::End]);
    }
}
