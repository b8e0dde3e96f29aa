//! SPEC §2–4: lines in, reversed lines out, rejections that keep the
//! connection open.

use nea::protocol::{ErrorCode, Frame};
use nea::reverse::reverse;

use crate::common::Server;

#[tokio::test]
async fn spec_examples_ascii_empty_and_crlf() {
    let server = Server::start(&[]);
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("noe\u{308}l").await, "le\u{308}on");
    assert_eq!(client.round_trip("🇮🇹🇫🇷").await, "🇫🇷🇮🇹");
    let family = "👨\u{200d}👩\u{200d}👧\u{200d}👦";
    assert_eq!(
        client.round_trip(&format!("the {family}!")).await,
        format!("!{family} eht")
    );
    assert_eq!(client.round_trip("hello, world").await, "dlrow ,olleh");
    assert_eq!(client.round_trip("").await, "");
    client.send(b"crlf\r\n").await;
    assert_eq!(client.reply().await, "flrc");
    // Only the '\r' right before '\n' is a terminator.
    client.send(b"a\rb\r\n").await;
    assert_eq!(client.reply().await, "b\ra");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_sixty_thousand_byte_line_is_reversed_whole() {
    let server = Server::start(&[]);
    let mut client = server.connect().await;
    let unit = "abcdé🇫🇷"; // 5 ASCII bytes, a 2-byte letter, an 8-byte flag
    let mut line = unit.repeat(60_000 / unit.len());
    line.push_str(&"z".repeat(60_000 - line.len()));
    assert_eq!(line.len(), 60_000);
    let reply = client.round_trip(&line).await;
    assert_eq!(reply.len(), 60_000);
    assert_eq!(reply, reverse(&line));
    assert!(reply.starts_with("zzz"));
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_thousand_pipelined_lines_are_answered_in_order() {
    let server = Server::start(&[]);
    let mut client = server.connect().await;
    let lines: Vec<String> = (0..1000).map(|i| format!("line {i} ë")).collect();
    let mut burst = lines.join("\n");
    burst.push('\n');
    client.send(burst.as_bytes()).await;
    for line in &lines {
        assert_eq!(client.reply().await, reverse(line));
    }
    assert!(server.stop().success());
}

#[tokio::test]
async fn rejected_lines_get_an_error_and_the_connection_goes_on() {
    let server = Server::start(&["--max-line-bytes", "16"]);
    let mut client = server.connect().await;
    client.send(b"this line is far too long\nok\n").await;
    match client.non_date_frame().await {
        Frame::Error { code, payload } => {
            assert_eq!(code, ErrorCode::LineTooLong);
            assert!(payload.contains("16 bytes"), "{payload}");
        }
        other => panic!("expected line_too_long, got {other:?}"),
    }
    assert_eq!(client.reply().await, "ko");
    // Exactly the limit is fine.
    assert_eq!(client.round_trip(&"x".repeat(16)).await, "x".repeat(16));

    client.send(b"bad \xff\xfe bytes\nfine\n").await;
    assert!(matches!(
        client.non_date_frame().await,
        Frame::Error {
            code: ErrorCode::InvalidUtf8,
            ..
        }
    ));
    assert_eq!(client.reply().await, "enif");
    assert!(server.stop().success());
}

#[tokio::test]
async fn ten_megabytes_without_newline_do_not_grow_the_server() {
    let server = Server::start(&[]);
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("warm up").await, "pu mraw");
    let before = server.rss_kib();
    let chunk = vec![b'q'; 64 * 1024];
    for _ in 0..160 {
        client.send(&chunk).await; // 10 MiB in all, no newline
    }
    client.send(b"\nafter\n").await;
    assert!(matches!(
        client.non_date_frame().await,
        Frame::Error {
            code: ErrorCode::LineTooLong,
            ..
        }
    ));
    assert_eq!(client.reply().await, "retfa");
    let after = server.rss_kib();
    let growth = after.saturating_sub(before);
    assert!(
        growth < 5 * 1024,
        "server RSS grew by {growth} KiB while discarding a 10 MiB line"
    );
    assert!(server.stop().success());
}
