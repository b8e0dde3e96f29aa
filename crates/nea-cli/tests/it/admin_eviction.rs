//! SPEC §11, "Connections that hold the admin endpoint without completing
//! a request cannot keep health checks out": at its cap, a new admin
//! connection evicts the oldest one that has not sent a whole request.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::in_process::InProcess;

/// Holds the admin endpoint without completing a request: connects, drips
/// a header a byte every 500 ms, and connects again as soon as it is
/// closed. Runs until aborted.
async fn hold(admin: SocketAddr) {
    loop {
        let Ok(mut tcp) = TcpStream::connect(admin).await else {
            continue;
        };
        for byte in b"GET /healthz HTTP/1.1\r\nHost: nea\r\n" {
            if tcp.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// One health check: the status line's code, or `None` if the endpoint
/// did not answer within `patience`.
async fn health_check(admin: SocketAddr, method: &str, patience: Duration) -> Option<u16> {
    let check = async {
        let mut tcp = TcpStream::connect(admin).await.ok()?;
        let request =
            format!("{method} /healthz HTTP/1.1\r\nHost: nea\r\nConnection: close\r\n\r\n");
        tcp.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        tcp.read_to_string(&mut response).await.ok()?;
        response.split_whitespace().nth(1)?.parse().ok()
    };
    tokio::time::timeout(patience, check).await.ok().flatten()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixteen_stalled_admin_connections_do_not_keep_health_checks_out() {
    let server = InProcess::start_with(crate::common::Pki::new(), |builder| {
        builder.admin("127.0.0.1:0".parse().expect("addr"))
    });
    let admin = server.admin.expect("an admin endpoint");
    let holders: Vec<_> = (0..16).map(|_| tokio::spawn(hold(admin))).collect();
    // Every place is held by now.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut answered = 0;
    for _ in 0..20 {
        if health_check(admin, "GET", Duration::from_secs(5)).await == Some(200) {
            answered += 1;
        }
    }
    assert_eq!(answered, 20, "health checks answered out of 20");
    assert_eq!(
        health_check(admin, "HEAD", Duration::from_secs(5)).await,
        Some(200),
        "HEAD /healthz is a health check too"
    );
    for holder in holders {
        holder.abort();
    }
    server.stop();
}
