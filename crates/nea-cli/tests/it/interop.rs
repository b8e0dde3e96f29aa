//! SPEC §1/§3 with a client nobody here wrote: `openssl s_client` verifies
//! the server, sends a line and reads the JSON reply.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use crate::common::{PATIENCE, Server};

fn openssl_round_trip(server: &Server, extra: &[&str]) -> Vec<String> {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(server.addr.to_string())
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(&server.pki.ca_pem)
        .args(["-verify_return_error", "-quiet", "-ign_eof"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl is installed");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all("hello\nnoe\u{308}l\n".as_bytes())
        .expect("write");
    stdin.flush().expect("flush");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut replies = Vec::new();
    while replies.len() < 2 {
        let line = rx
            .recv_timeout(PATIENCE)
            .expect("openssl prints the replies");
        if !line.contains("\"date\"") {
            replies.push(line);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    replies
}

#[test]
fn openssl_s_client_gets_json_reversals() {
    let server = Server::start(&[]);
    let replies = openssl_round_trip(&server, &[]);
    assert_eq!(
        replies,
        [
            r#"{"msg_type":"string","payload":"olleh"}"#.to_owned(),
            "{\"msg_type\":\"string\",\"payload\":\"le\u{308}on\"}".to_owned(),
        ]
    );
    server
        .wait_for_log("tls=TLSv1.3", PATIENCE)
        .expect("TLS 1.3 by default");
    assert!(server.stop().success());
}

#[test]
fn openssl_s_client_over_tls12_works_too() {
    let server = Server::start(&[]);
    let replies = openssl_round_trip(&server, &["-tls1_2"]);
    assert_eq!(replies[0], r#"{"msg_type":"string","payload":"olleh"}"#);
    server
        .wait_for_log("tls=TLSv1.2", PATIENCE)
        .expect("TLS 1.2 negotiated");
    assert!(server.stop().success());
}
