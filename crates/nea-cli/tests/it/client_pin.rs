//! SPEC §10, "Connecting from another machine is one command": the
//! server's start-up log gives a working `clientcli … --pin sha256:…`
//! command for the address it listens on, and `--pin` trusts exactly a
//! server whose public key matches, with no CA and no name check; a
//! mismatch is refused before any line is sent, with both pins said.

use crate::common::{PATIENCE, Pki, clientcli_exe, write};
use crate::in_process::InProcess;
use crate::running_client::RunningClient;

/// A server whose certificate no CA the client knows signed, for a name
/// that is not the one the client connects by; its pin.
fn stranger() -> (InProcess, String) {
    let pki = Pki::new();
    let issued = pki
        .authority
        .issue_server(&["elsewhere.example"])
        .expect("a certificate");
    let cert = write(pki.dir.path(), "elsewhere.pem", &issued.cert_pem);
    let key = write(pki.dir.path(), "elsewhere-key.pem", &issued.key_pem);
    let der = nea::tls::load_certs(&cert).expect("the certificate");
    let pin = nea::pin::Pin::of(&der[0]).expect("a pin").to_string();
    let server = InProcess::start_with(pki, move |builder| {
        builder.identity(nea::server::Identity::Files { cert, key })
    });
    (server, pin)
}

/// `clientcli` for `server` by its address, trusting no CA at all (not
/// even the development CA), with `args`.
fn clientcli_without_a_ca(server: &InProcess, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(clientcli_exe());
    command
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &server.addr.port().to_string(),
        ])
        .args(args)
        .env("NEA_DEV_DIR", "/nonexistent/nea-test")
        .env("NEA_NO_HISTORY", "1")
        .env_remove("NEA_CERT")
        .env_remove("NEA_KEY");
    command
}

#[tokio::test]
async fn a_pin_trusts_a_key_no_ca_signed_for_a_name_it_does_not_hold() {
    let (server, pin) = stranger();
    let mut client = RunningClient::start(clientcli_without_a_ca(&server, &["--pin", &pin]));
    client.send(b"pinned");
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    assert!(ended.status.success(), "{}", ended.stderr.join("\n"));
    assert_eq!(ended.stdout, ["dennip"]);
    server.stop();
}

#[tokio::test]
async fn a_wrong_pin_is_refused_before_any_line_with_both_pins_said() {
    let (server, pin) = stranger();
    let (other, wrong) = stranger();
    drop(other);
    let mut client = RunningClient::start(clientcli_without_a_ca(&server, &["--pin", &wrong]));
    client.send(b"secret");
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    let stderr = ended.stderr.join("\n");
    assert_eq!(ended.status.code(), Some(77), "{stderr}");
    let last = ended.stderr.last().cloned().unwrap_or_default();
    assert!(
        last.starts_with("clientcli: the server's key does not match --pin"),
        "{last}"
    );
    assert!(last.contains(&pin) && last.contains(&wrong), "{last}");
    assert!(ended.stdout.is_empty());
    assert_eq!(server.sample("nea_lines_answered_total"), 0.0);
    assert_eq!(server.connected(), 0);
    server.stop();
}

/// The `command="…"` of `server`'s start-up line that says how to
/// connect, once it is written (the log's writer may not have written it
/// yet when the port file appears).
fn connect_command(server: &crate::common::Server) -> String {
    let line = server
        .wait_for_log("connect with", crate::common::PATIENCE)
        .expect("a start-up line that says how to connect");
    let (_, rest) = line
        .split_once("command=\"")
        .unwrap_or_else(|| panic!("no command in {line}"));
    rest.split('"').next().expect("a quoted command").to_owned()
}

#[tokio::test]
async fn the_start_up_line_gives_a_command_that_works_from_anywhere() {
    let server = crate::common::Server::start(&[]);
    let command = connect_command(&server);
    let mut words = command.split_whitespace();
    assert_eq!(words.next(), Some("clientcli"), "{command}");
    let args: Vec<&str> = words.collect();
    assert!(
        command.contains(&format!(
            "--host 127.0.0.1 --port {} --pin sha256:",
            server.addr.port()
        )),
        "{command}"
    );
    let mut run = std::process::Command::new(clientcli_exe());
    run.args(&args)
        .env("NEA_DEV_DIR", "/nonexistent/nea-test")
        .env("NEA_NO_HISTORY", "1");
    let mut client = RunningClient::start(run);
    client.send(b"anywhere");
    client.end_input();
    let ended = client.wait_exit(PATIENCE);
    assert!(
        ended.status.success(),
        "{command}: {}",
        ended.stderr.join("\n")
    );
    assert_eq!(ended.stdout, ["erehwyna"]);
    assert!(server.stop().success());
}
