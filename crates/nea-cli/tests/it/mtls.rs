//! SPEC §1: with `--client-ca`, only clients with a certificate from that CA
//! are served, and the log says who each client is.

use std::net::SocketAddr;

use nea::devca::CertificateAuthority;

use crate::common::{Client, Pki, Server, line_with, write};
use crate::in_process::InProcess;

fn start_mutual() -> (Server, CertificateAuthority) {
    let pki = Pki::new();
    let client_ca = CertificateAuthority::new("client CA").expect("ca");
    let ca_file = write(pki.dir.path(), "client-ca.pem", &client_ca.cert_pem());
    let ca_arg = ca_file.to_str().expect("utf-8 path").to_owned();
    let server = Server::start_with(pki, &["--client-ca", &ca_arg]);
    (server, client_ca)
}

/// Connects and tries one line; with TLS 1.3 a rejected client certificate
/// shows up as an alert on the first read, not at connect.
async fn try_round_trip(
    addr: SocketAddr,
    config: std::sync::Arc<rustls::ClientConfig>,
) -> Result<String, String> {
    let mut client = Client::connect(addr, config)
        .await
        .map_err(|err| err.to_string())?;
    client.send(b"hello\n").await;
    match client.read_line().await {
        Ok(Some(line)) => Ok(line),
        Ok(None) => Err("closed".to_owned()),
        Err(err) => Err(err.to_string()),
    }
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let pki = Pki::new();
    let client_ca = CertificateAuthority::new("client CA").expect("ca");
    let ca_file = write(pki.dir.path(), "client-ca.pem", &client_ca.cert_pem());
    let server = InProcess::start_with(pki, move |builder| builder.client_ca(ca_file));
    let err = try_round_trip(server.addr, server.pki.client_config())
        .await
        .expect_err("refused");
    assert!(
        err.contains("CertificateRequired") || err.contains("alert"),
        "{err}"
    );
    // Refused in its handshake, not served and then closed.
    server
        .until("nea_handshake_failures_total{reason=\"failed\"}", |n| {
            n == 1.0
        })
        .await;
    assert_eq!(server.ended(), 0.0, "{}", server.metrics());
    server.stop();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused() {
    let (server, _) = start_mutual();
    let stranger = CertificateAuthority::new("another CA").expect("ca");
    let err = try_round_trip(
        server.addr,
        server.pki.client_config_with_identity(&stranger),
    )
    .await
    .expect_err("refused");
    assert!(err.contains("UnknownCA") || err.contains("alert"), "{err}");
    assert!(server.stop().success());
}

#[tokio::test]
async fn a_certificate_from_the_client_ca_is_served_and_logged() {
    let (server, client_ca) = start_mutual();
    let reply = try_round_trip(
        server.addr,
        server.pki.client_config_with_identity(&client_ca),
    )
    .await
    .expect("served");
    assert_eq!(reply, r#"{"msg_type":"string","payload":"olleh"}"#);
    // Who the client is, the server records only in its log.
    let log = server.stop_and_read_log();
    let line = line_with(&log, "client connected");
    assert!(line.contains("CN=test client"), "{line}");
}

#[tokio::test]
async fn clients_verify_the_server_chain_and_name() {
    let server = Server::start(&[]);
    // Trusting another CA: the chain does not verify.
    let stranger = Pki::new();
    let Err(err) = Client::connect(server.addr, stranger.client_config()).await else {
        panic!("an untrusted server is refused");
    };
    assert!(
        err.to_string().contains("invalid peer certificate"),
        "{err}"
    );
    // Trusting the right CA but expecting another name.
    let tcp = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    let name = rustls::pki_types::ServerName::try_from("example.com").expect("name");
    let err = tokio_rustls::TlsConnector::from(server.pki.client_config())
        .connect(name, tcp)
        .await
        .expect_err("a name mismatch is refused");
    assert!(err.to_string().contains("not valid for name"), "{err}");
    assert!(server.stop().success());
}
