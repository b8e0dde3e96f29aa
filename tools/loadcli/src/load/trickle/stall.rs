//! The stalled sockets: each sends a real ClientHello, one byte per
//! interval, and never its last byte, so that its handshake never
//! completes. When the server closes one (its handshake deadline), it is
//! opened again after one interval, from the same address: the pressure
//! holds for the whole run, as an attacker's would.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use super::super::{LoadError, Target, connect_from};

/// The bytes a rustls client writes first for `target`: its ClientHello
/// record, with the target's TLS configuration (the same key shares and
/// extensions as the measured handshakes).
pub(crate) fn client_hello(target: &Target) -> Result<Vec<u8>, LoadError> {
    let failed = |err: &dyn std::fmt::Display| {
        LoadError::Failed(format!("cannot make a ClientHello: {err}"))
    };
    let mut client = rustls::ClientConnection::new(target.tls.clone(), target.server_name.clone())
        .map_err(|err| failed(&err))?;
    let mut hello = Vec::new();
    while client.wants_write() {
        client.write_tls(&mut hello).map_err(|err| failed(&err))?;
    }
    Ok(hello)
}

/// What the stalled sockets count, together.
#[derive(Debug, Default)]
pub(crate) struct Stalls {
    /// Open now.
    pub open: AtomicU64,
    /// Connections made in all (first ones and those made again).
    pub opened: AtomicU64,
    /// Closed by the server (its handshake deadline, or a shed socket).
    pub closed_by_server: AtomicU64,
    /// Connections that could not be made.
    pub connect_failures: AtomicU64,
}

/// How one stalled connection ended.
enum Ended {
    /// The run is over.
    Stopped,
    /// The server closed it (or reset it).
    Closed,
}

/// One stalled socket from `source`, again and again until `stop`: it
/// sends `hello` but its last byte, one byte every `interval`. After the
/// server closes it, or a connection fails, it waits one interval.
pub(crate) async fn stall(
    source: IpAddr,
    server: SocketAddr,
    hello: Arc<[u8]>,
    interval: Duration,
    stalls: Arc<Stalls>,
    stop: CancellationToken,
) {
    loop {
        let connected = tokio::select! {
            () = stop.cancelled() => return,
            connected = connect_from(source, server) => connected,
        };
        match connected.and_then(|tcp| tcp.set_nodelay(true).map(|()| tcp)) {
            Ok(tcp) => {
                stalls.opened.fetch_add(1, Ordering::Relaxed);
                stalls.open.fetch_add(1, Ordering::Relaxed);
                let ended = hold(tcp, &hello, interval, &stop).await;
                stalls.open.fetch_sub(1, Ordering::Relaxed);
                match ended {
                    Ended::Stopped => return,
                    Ended::Closed => stalls.closed_by_server.fetch_add(1, Ordering::Relaxed),
                };
            }
            Err(_) => {
                stalls.connect_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// Drips `hello` on `tcp` while watching for the server to close it.
async fn hold(tcp: TcpStream, hello: &[u8], interval: Duration, stop: &CancellationToken) -> Ended {
    let (read, write) = tcp.into_split();
    tokio::select! {
        () = stop.cancelled() => Ended::Stopped,
        () = closed(read) => Ended::Closed,
        () = drip(write, hello, interval) => Ended::Closed,
    }
}

/// Writes every byte of `hello` but the last, one every `interval` (the
/// first at once), then waits for ever. Returns if a write fails.
async fn drip(mut write: OwnedWriteHalf, hello: &[u8], interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    for byte in &hello[..hello.len().saturating_sub(1)] {
        ticks.tick().await;
        if write.write_all(std::slice::from_ref(byte)).await.is_err() {
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Returns once the server has closed or reset the connection (whatever
/// it sends, an alert say, is read and dropped).
async fn closed(mut read: OwnedReadHalf) {
    let mut buf = [0u8; 512];
    while let Ok(n) = read.read(&mut buf).await {
        if n == 0 {
            return;
        }
    }
}
