//! SPEC §10, "Honest about what was answered", on the real `clientcli`:
//! status 0 only when every line got its own reply; a rejected line is
//! named by its input line number and the status says so; an unsolicited
//! reply never stands in for a pending line; a frame the client cannot
//! take ends the session with a sentence; lines left unanswered when the
//! user gives up are counted.

use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::common::{PATIENCE, Pki, clientcli_for, scripted_server};
use crate::in_process::InProcess;
use crate::running_client::{Ended, RunningClient};

/// A TLS server stream, as the scripted servers get it.
type ServerStream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Reads lines from `stream` and answers each with its reversal, until the
/// client closes; what a well-behaved server does after `before`.
async fn answer_each_line(stream: ServerStream, before: &[u8]) {
    let (read, mut write) = tokio::io::split(stream);
    write.write_all(before).await.expect("write");
    write.flush().await.expect("flush");
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let reply = format!(
            "{{\"msg_type\":\"string\",\"payload\":\"{}\"}}\n",
            nea::reverse::reverse(&line)
        );
        write.write_all(reply.as_bytes()).await.expect("reply");
        write.flush().await.expect("flush");
    }
    let _ = write.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_middle_line_is_named_and_the_status_says_so() {
    let server = InProcess::start(nea::server::Config::builder());
    let mut client = RunningClient::start(server.clientcli());
    client.send(b"one");
    client.send(&vec![b'x'; 70_000]);
    client.send(b"three");
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    assert_eq!(ended.stdout, ["eno", "eerht"]);
    let stderr = ended.stderr.join("\n");
    assert!(
        stderr.contains(
            "clientcli: the server rejected line 2: line longer than 65536 bytes dropped"
        ),
        "{stderr}"
    );
    assert_eq!(
        ended.stderr.last().map(String::as_str),
        Some("clientcli: 2 of 3 lines answered (1 rejected by the server, 0 not sent)")
    );
    assert_eq!(ended.status.code(), Some(65), "{stderr}");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsolicited_reply_never_stands_in_for_a_pending_line() {
    let pki = Pki::new();
    let addr = scripted_server(&pki, |stream| async move {
        // A reply to no line, before the client's lines are answered.
        answer_each_line(
            stream,
            b"{\"msg_type\":\"string\",\"payload\":\"UNSOLICITED\"}\n",
        )
        .await;
    })
    .await;
    let mut client = RunningClient::start(clientcli_for(addr.port(), &pki.ca_pem));
    for line in ["one", "two", "three"] {
        client.send(line.as_bytes());
    }
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    let stderr = ended.stderr.join("\n");
    assert_eq!(ended.stdout, ["eno", "owt", "eerht"], "{stderr}");
    assert!(
        stderr.contains("clientcli: the server sent a reply to no line: UNSOLICITED"),
        "{stderr}"
    );
    assert!(ended.status.success(), "{stderr}");
}

/// Runs clientcli against a server that reads its first line, answers it
/// with `frame` (written as is) and then waits for the client to go:
/// what the client does with a frame it cannot take.
async fn client_given_one_frame(frame: Vec<u8>) -> Ended {
    let pki = Pki::new();
    let addr = scripted_server(&pki, move |mut stream| async move {
        let mut line = String::new();
        let _ = BufReader::new(&mut stream).read_line(&mut line).await;
        let _ = stream.write_all(&frame).await;
        let _ = stream.flush().await;
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest).await;
    })
    .await;
    let mut client = RunningClient::start(clientcli_for(addr.port(), &pki.ca_pem));
    client.send(b"hello");
    client.end_input();
    client.wait_exit(PATIENCE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_too_large_to_take_ends_the_session_with_a_sentence() {
    let mut huge = vec![b'a'; 16 * 1024 * 1024 + 1];
    huge.push(b'\n');
    let ended = client_given_one_frame(huge).await;
    let stderr = ended.stderr.join("\n");
    assert_eq!(ended.status.code(), Some(76), "{stderr}");
    assert_eq!(
        ended.stderr.last().map(String::as_str),
        Some("clientcli: the server sent a frame larger than 16777216 bytes")
    );
    assert!(ended.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frame_not_utf8_or_not_json_ends_the_session_with_a_sentence() {
    for (frame, sentence) in [
        (
            &b"\xff\xfe\n"[..],
            "clientcli: the server sent a frame that is not UTF-8",
        ),
        (
            &b"olleh\n"[..],
            "clientcli: the server sent a frame that is not valid JSON (",
        ),
    ] {
        let ended = client_given_one_frame(frame.to_vec()).await;
        let stderr = ended.stderr.join("\n");
        assert_eq!(ended.status.code(), Some(76), "{stderr}");
        let last = ended.stderr.last().map(String::as_str).unwrap_or_default();
        assert!(last.starts_with(sentence), "{stderr}");
        assert!(ended.stdout.is_empty(), "{:?}", ended.stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lines_unanswered_when_the_user_gives_up_are_counted() {
    let pki = Pki::new();
    let (received, all_received) = tokio::sync::oneshot::channel();
    let addr = scripted_server(&pki, |stream| async move {
        // Answers the first line only, takes the next two, then goes away
        // without a word: the client is left reconnecting.
        let (read, mut write) = tokio::io::split(stream);
        let mut lines = BufReader::new(read).lines();
        let first = lines.next_line().await.expect("read").expect("a line");
        let reply = format!(
            "{{\"msg_type\":\"string\",\"payload\":\"{}\"}}\n",
            nea::reverse::reverse(&first)
        );
        write.write_all(reply.as_bytes()).await.expect("reply");
        write.flush().await.expect("flush");
        for _ in 0..2 {
            let _ = lines.next_line().await;
        }
        let _ = received.send(());
    })
    .await;
    let mut command = clientcli_for(addr.port(), &pki.ca_pem);
    command.arg("--reconnect");
    let mut client = RunningClient::start(command);
    for line in ["answered", "left", "behind"] {
        client.send(line.as_bytes());
    }
    client.wait_for_stdout("derewsna");
    all_received.await.expect("the server took every line");
    client.wait_for_stderr("reconnecting in");
    client.signal(Signal::SIGINT);
    let ended = client.wait_exit(PATIENCE);
    let stderr = ended.stderr.join("\n");
    assert_eq!(ended.status.code(), Some(130), "{stderr}");
    assert_eq!(
        ended.stderr.last().map(String::as_str),
        Some("clientcli: stopped with 2 of 3 lines not answered")
    );
}
