//! SPEC §1/§3 with a client nobody here wrote: `openssl s_client` verifies
//! the server, sends a line and reads the JSON reply; it says which TLS
//! version it negotiated.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use nea::server::Config;

use crate::common::{PATIENCE, require_tool};
use crate::in_process::InProcess;

/// What `openssl s_client` did: the replies it printed, and the protocol
/// version it reports having negotiated.
struct Exchange {
    replies: Vec<String>,
    protocol: String,
}

fn openssl_round_trip(server: &InProcess, extra: &[&str]) -> Exchange {
    require_tool("openssl", "openssl");
    let mut child = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(server.addr.to_string())
        .args(["-servername", "localhost", "-verify_hostname", "localhost"])
        .arg("-CAfile")
        .arg(&server.pki.ca_pem)
        // -brief: the connection's parameters on standard error.
        .args(["-verify_return_error", "-quiet", "-brief", "-ign_eof"])
        .args(extra)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl runs");
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
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    let protocol = stderr
        .lines()
        .find_map(|line| line.strip_prefix("Protocol version: "))
        .unwrap_or_else(|| panic!("openssl does not say the protocol:\n{stderr}"))
        .trim()
        .to_owned();
    Exchange { replies, protocol }
}

#[test]
fn openssl_s_client_gets_json_reversals() {
    let server = InProcess::start(Config::builder());
    let exchange = openssl_round_trip(&server, &[]);
    assert_eq!(
        exchange.replies,
        [
            r#"{"msg_type":"string","payload":"olleh"}"#.to_owned(),
            "{\"msg_type\":\"string\",\"payload\":\"le\u{308}on\"}".to_owned(),
        ]
    );
    assert_eq!(exchange.protocol, "TLSv1.3", "TLS 1.3 by default");
    server.stop();
}

#[test]
fn openssl_s_client_over_tls12_works_too() {
    let server = InProcess::start(Config::builder());
    let exchange = openssl_round_trip(&server, &["-tls1_2"]);
    assert_eq!(
        exchange.replies[0],
        r#"{"msg_type":"string","payload":"olleh"}"#
    );
    assert_eq!(exchange.protocol, "TLSv1.2", "TLS 1.2 negotiated");
    server.stop();
}
