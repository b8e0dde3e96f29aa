//! SPEC §11 *(v3)*, on the real binary: every log line, from nea or from a
//! library it uses, follows the same rules. A flood that makes a library
//! warn (rustls, about an illegal server name) writes a bounded number of
//! lines; a value a peer controls (a name in its ClientHello, its
//! certificate's subject, the text of a PROXY header) is escaped, in text
//! and in JSON, so that one event is one line and a field cannot pass for
//! another.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use nea::devca::CertificateAuthority;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::common::{Client, Pki, Server, line_with, write};

/// A TLS 1.3 ClientHello record whose server name extension carries
/// `name` as it is, legal or not: what an attacker sends, and no TLS
/// library would.
fn hello_naming(name: &[u8]) -> Vec<u8> {
    fn u16_be(n: usize) -> [u8; 2] {
        u16::try_from(n).expect("fits in 16 bits").to_be_bytes()
    }
    let mut names = vec![0];
    names.extend(u16_be(name.len()));
    names.extend(name);
    let mut sni = u16_be(names.len()).to_vec();
    sni.extend(names);
    let mut extensions = vec![0, 0];
    extensions.extend(u16_be(sni.len()));
    extensions.extend(sni);
    // supported_versions (TLS 1.3), supported_groups (x25519),
    // signature_algorithms, and an x25519 key share.
    extensions.extend([0, 0x2b, 0, 3, 2, 3, 4]);
    extensions.extend([0, 0x0a, 0, 4, 0, 2, 0, 0x1d]);
    extensions.extend([0, 0x0d, 0, 8, 0, 6, 4, 3, 8, 4, 8, 7]);
    extensions.extend([0, 0x33, 0, 0x26, 0, 0x24, 0, 0x1d, 0, 0x20]);
    extensions.extend([0x42; 32]);
    let mut body = vec![3, 3];
    body.extend([7; 32]);
    body.push(0);
    body.extend([0, 2, 0x13, 1, 1, 0]);
    body.extend(u16_be(extensions.len()));
    body.extend(extensions);
    let length = u32::try_from(body.len()).expect("small").to_be_bytes();
    let mut handshake = vec![1, length[1], length[2], length[3]];
    handshake.extend(body);
    let mut record = vec![0x16, 3, 1];
    record.extend(u16_be(handshake.len()));
    record.extend(handshake);
    record
}

/// Sends `hello` from `from` to `addr` and waits until the server closes
/// (or 5 s pass).
async fn send_hello(from: IpAddr, addr: SocketAddr, hello: &[u8]) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(from, 0)).expect("bind");
    let Ok(mut tcp) = socket.connect(addr).await else {
        return;
    };
    if tcp.write_all(hello).await.is_err() {
        return;
    }
    let _ = tcp.shutdown().await;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
}

/// The server as deployed: its default log filter, which lets the
/// libraries' warnings through.
fn deployed(pki: Pki, args: &[&str]) -> Server {
    let mut command = Server::command_with(&pki, args);
    command.env("RUST_LOG", "warn,nea=info");
    Server::spawn(command, pki)
}

#[tokio::test]
async fn a_flood_of_illegal_names_writes_a_bounded_number_of_lines() {
    let server = deployed(Pki::new(), &[]);
    // A 15 KB name: rustls warns about each, quoting it whole.
    let hello = hello_naming(&[b'a'; 15_000]);
    let started = Instant::now();
    let mut senders = tokio::task::JoinSet::new();
    for task in 0..8u8 {
        let hello = hello.clone();
        let addr = server.addr;
        senders.spawn(async move {
            let from = IpAddr::from([127, 0, 1, task + 1]);
            for _ in 0..250 {
                send_hello(from, addr, &hello).await;
            }
        });
    }
    senders.join_all().await;
    let seconds = started.elapsed().as_secs() + 1;
    // Served still, and the flood was processed, not refused unread.
    let mut client = server.connect().await;
    assert_eq!(client.round_trip("after").await, "retfa");
    drop(client);
    let log = server.stop_and_read_log();
    let warned = log.lines().filter(|l| l.contains("Illegal SNI")).count();
    eprintln!(
        "2,000 hellos in {seconds} s: {warned} rustls lines, {} lines, {} bytes",
        log.lines().count(),
        log.len()
    );
    assert!(warned >= 1, "the warning is kept, once a second:\n{log}");
    // One line a second from rustls, and nea's own handshake-failure line
    // once a second: nothing near the 2,000 lines a flood would make.
    assert!(
        warned <= usize::try_from(seconds).expect("small") + 1,
        "{warned} rustls lines in {seconds} s"
    );
    assert!(
        log.lines().count() <= 3 * usize::try_from(seconds).expect("small") + 30,
        "{} lines in {seconds} s",
        log.lines().count()
    );
    // What was held back is said when the server exits.
    line_with(&log, "log lines of its libraries were held back");
}

/// The fields of a text log line: `name=value` pairs, a value either bare
/// (up to the next space) or quoted (with `\"` and `\\` inside); the
/// message before them is skipped. Panics on a line that does not parse.
fn text_fields(line: &str) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find('=') {
        let before = &rest[..at];
        let name = before.rsplit(' ').next().expect("a name").to_owned();
        rest = &rest[at + 1..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => value.push(chars.next().expect("an escaped char").1),
                    Some((i, '"')) => break i + 1,
                    Some((_, c)) => value.push(c),
                    None => panic!("an unterminated quote in {line:?}"),
                }
            };
            rest = &quoted[end..];
            value
        } else {
            let end = rest.find(' ').unwrap_or(rest.len());
            let value = rest[..end].to_owned();
            rest = &rest[end..];
            value
        };
        fields.push((name, value));
    }
    fields
}

/// A client configuration presenting a certificate named `common_name`,
/// from `issuer`, to a server of `pki`.
fn named_client(
    pki: &Pki,
    issuer: &CertificateAuthority,
    common_name: &str,
) -> std::sync::Arc<rustls::ClientConfig> {
    let issued = issuer.issue_client(common_name).expect("client cert");
    let cert = write(pki.dir.path(), "named.pem", &issued.cert_pem);
    let key = write(pki.dir.path(), "named-key.pem", &issued.key_pem);
    let roots =
        nea::tls::root_store(nea::tls::load_certs(&pki.ca_pem).expect("ca")).expect("roots");
    let identity = (
        nea::tls::load_certs(&cert).expect("cert"),
        nea::tls::load_key(&key).expect("key"),
    );
    nea::tls::client_config(roots, Some(identity)).expect("config")
}

/// A subject built to forge fields and lines: commas and spaces, an `=`,
/// a would-be field, a line break and a right-to-left override.
const FORGED: &str = "evil, O=x reason=\"closed by client\"\nfake line \u{202e}txt.exe";

/// A server with mutual TLS whose one client presents [`FORGED`], served
/// and gone; its log.
async fn log_of_a_forged_subject(format: &str) -> String {
    let pki = Pki::new();
    let client_ca = CertificateAuthority::new("client CA").expect("ca");
    let ca_file = write(pki.dir.path(), "client-ca.pem", &client_ca.cert_pem());
    let ca_arg = ca_file.to_str().expect("utf-8").to_owned();
    let server = deployed(pki, &["--client-ca", &ca_arg, "--log-format", format]);
    let config = named_client(&server.pki, &client_ca, FORGED);
    let mut client = Client::connect(server.addr, config).await.expect("served");
    assert_eq!(client.round_trip("hi").await, "ih");
    client.shutdown_write().await;
    assert!(client.clean_end().await);
    server.stop_and_read_log()
}

#[tokio::test]
async fn a_forged_subject_stays_one_field_of_one_line_in_text() {
    let log = log_of_a_forged_subject("text").await;
    assert!(!log.contains('\u{202e}'), "a raw U+202E:\n{log}");
    assert!(
        !log.contains("\nfake line"),
        "the subject split the line:\n{log}"
    );
    let line = line_with(&log, "client left");
    let fields = text_fields(line);
    let named = |name: &str| -> Vec<&str> {
        fields
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert_eq!(named("reason"), ["closed by client"], "{line}");
    let subject = named("subject");
    assert_eq!(subject.len(), 1, "{line}");
    // The whole subject, escaped: its line break and override visible.
    assert!(
        subject[0].contains("evil, O=x reason=\"closed by client\"\\nfake line \\u{202e}txt.exe"),
        "{line}"
    );
}

#[tokio::test]
async fn a_forged_subject_is_escaped_in_json_and_reads_back_whole() {
    let log = log_of_a_forged_subject("json").await;
    assert!(!log.contains('\u{202e}'), "a raw U+202E:\n{log}");
    assert!(log.contains("\\u202e"), "U+202E not escaped:\n{log}");
    let left = log
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("one JSON object a line")
        })
        .find(|object| object["message"] == "client left")
        .expect("a leave line");
    assert_eq!(left["reason"], "closed by client");
    let subject = left["subject"].as_str().expect("a subject");
    assert!(subject.contains('\u{202e}'), "{subject:?}");
    assert!(
        subject.contains("evil, O=x reason=\"closed by client\"\nfake line"),
        "{subject:?}"
    );
}

/// Every line of a text log is an event of its own: it begins with its
/// timestamp.
fn each_line_is_an_event(log: &str) {
    for line in log.lines().filter(|l| !l.starts_with("servercli: ")) {
        let year = line.get(..4).unwrap_or_default();
        assert!(
            year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()),
            "a line that is not an event of its own: {line:?}\n{log}"
        );
    }
}

#[tokio::test]
async fn a_malformed_proxy_header_with_line_breaks_is_logged_on_one_line() {
    let server = deployed(Pki::new(), &["--proxy-protocol-from", "127.0.0.1/32"]);
    let headers: [&[u8]; 4] = [
        // A space before the CRLF: the parser's own message for it holds
        // a raw CR and LF.
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535 \r\n",
        b"PROXY TCP4 1.2.3.4\r5.6.7.8 1 2\r\n",
        b"PROXY TCP4 \xe2\x80\xae1.2.3.4 5.6.7.8 1 2\r\n",
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1\n2\r\n",
    ];
    for header in headers {
        let mut tcp = tokio::net::TcpStream::connect(server.addr)
            .await
            .expect("tcp");
        tcp.write_all(header).await.expect("header");
        let mut sink = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut sink)).await;
        // One a second: nea's own rate limit would hold the next back.
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    let log = server.stop_and_read_log();
    each_line_is_an_event(&log);
    assert!(!log.contains('\u{202e}'), "a raw U+202E:\n{log}");
    let refused = log
        .lines()
        .filter(|l| l.contains("PROXY protocol header refused"))
        .count();
    assert_eq!(refused, 4, "{log}");
}

#[test]
fn clientcli_v_escapes_the_subjects_of_a_forged_chain() {
    use std::io::Write as _;
    // A CA named to forge lines, sent by the server in its chain: the
    // client logs each certificate's subject with -v.
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = CertificateAuthority::new(FORGED).expect("ca");
    let leaf = ca
        .issue_server(&["localhost", "127.0.0.1"])
        .expect("server cert");
    let pki = Pki {
        ca_pem: write(dir.path(), "ca.pem", &ca.cert_pem()),
        cert: write(
            dir.path(),
            "server.pem",
            &format!("{}{}", leaf.cert_pem, ca.cert_pem()),
        ),
        key: write(dir.path(), "server-key.pem", &leaf.key_pem),
        authority: std::sync::Arc::new(ca),
        dir,
    };
    let server = Server::start_with(pki, &[]);
    let mut command = server.clientcli();
    command
        .arg("-v")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().expect("clientcli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hi\n")
        .expect("a line");
    let output = child.wait_with_output().expect("clientcli ends");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ih\n");
    assert!(!stderr.contains('\u{202e}'), "a raw U+202E:\n{stderr}");
    assert!(
        !stderr.lines().any(|l| l.starts_with("fake line")),
        "a subject split a line:\n{stderr}"
    );
    let line = stderr
        .lines()
        .find(|l| l.contains("server certificate") && l.contains("evil"))
        .unwrap_or_else(|| panic!("no line for the forged CA:\n{stderr}"));
    let subject = text_fields(line)
        .into_iter()
        .find(|(name, _)| name == "subject")
        .map(|(_, value)| value)
        .unwrap_or_else(|| panic!("no subject in {line}"));
    assert!(
        subject.contains("CN=evil, O=x reason=\"closed by client\"\\nfake line \\u{202e}txt.exe"),
        "{subject}"
    );
    drop(server);
}
