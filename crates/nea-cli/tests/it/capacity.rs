//! SPEC §6 with the real default of 100 clients: the 101st is turned away
//! with `server_full` and a clean close, nobody connected notices, and a
//! freed slot is usable at once.

use nea::protocol::{ErrorCode, Frame};

use crate::common::{Client, Server};
use crate::in_process::{InProcess, dated};

#[tokio::test]
async fn the_hundred_and_first_client_gets_server_full_and_a_clean_close() {
    let server = InProcess::start(dated(std::time::Duration::from_millis(500)));
    let mut clients = Vec::new();
    for _ in 0..100 {
        clients.push(server.connect().await);
    }
    server.until_connected(100).await;

    let mut extra = server.connect().await;
    match extra.non_date_frame().await {
        Frame::Error { code, payload } => {
            assert_eq!(code, ErrorCode::ServerFull);
            assert!(payload.contains("full"), "{payload}");
        }
        other => panic!("expected server_full, got {other:?}"),
    }
    assert!(
        extra.clean_end().await,
        "server_full ends with close_notify"
    );
    let rejected_at = jiff::Timestamp::now();

    // Everyone connected still gets answers and fresh dates.
    for (i, client) in clients.iter_mut().enumerate() {
        let line = format!("client {i}");
        assert_eq!(client.round_trip(&line).await, nea::reverse::reverse(&line));
    }
    for client in &mut clients {
        wait_for_date_after(client, rejected_at).await;
    }

    // Closing one frees its slot at once: once our close is acknowledged by
    // the server's close_notify, the next client is served, not rejected.
    let mut leaving = clients.pop().expect("a client");
    leaving.shutdown_write().await;
    assert!(leaving.clean_end().await);
    let mut next = server.connect().await;
    assert_eq!(next.round_trip("next").await, "txen");
    assert_eq!(
        server.sample("nea_rejections_total{code=\"server_full\"}"),
        1.0
    );
    server.stop();
}

async fn wait_for_date_after(client: &mut Client, after: jiff::Timestamp) {
    loop {
        if let Frame::Date { payload } = client.frame().await {
            let ts: jiff::Timestamp = payload.parse().expect("date");
            if ts > after {
                return;
            }
        }
    }
}

#[tokio::test]
async fn max_clients_comes_from_the_environment_too() {
    let pki = crate::common::Pki::new();
    let mut command = Server::command_with(&pki, &[]);
    command.env("NEA_MAX_CLIENTS", "1");
    let server = Server::spawn(command, pki);
    let mut first = server.connect().await;
    assert_eq!(first.round_trip("one").await, "eno");
    let mut second = server.connect().await;
    assert!(matches!(
        second.non_date_frame().await,
        Frame::Error {
            code: ErrorCode::ServerFull,
            ..
        }
    ));
    assert_eq!(first.round_trip("still").await, "llits");
    assert!(server.stop().success());
}
