//! Telling a service manager how the server is doing (SPEC §11), through
//! the `sd_notify` protocol: `READY=1` once the server accepts,
//! `RELOADING=1` … `READY=1` around a certificate reload, `STOPPING=1` when
//! shutdown starts, and `STATUS=` with the clients connected.
//!
//! Each message is one datagram to the socket named by `NOTIFY_SOCKET`;
//! without that variable nothing is sent and nothing runs. A message that
//! cannot be sent is logged at DEBUG and otherwise ignored: the service
//! manager's view is not worth a client.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use super::admission::ClientSlots;

/// Least time between two `STATUS=` messages: a burst of clients joining
/// costs one message a second, not one each.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// Whether a service manager listens (`NOTIFY_SOCKET` is set).
pub(super) fn listening() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::debug!("service manager notification failed: {err}");
    }
}

/// The server accepts connections.
pub(super) fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts (with the monotonic time `Type=notify-reload` asks for).
pub(super) fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// A reload is over (whether it succeeded or kept the old files).
pub(super) fn reloaded() {
    send(&[NotifyState::Ready]);
}

/// Shutdown starts.
pub(super) fn stopping(clients: usize) {
    let status = format!("shutting down; {clients} clients connected");
    send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
}

/// The `STATUS=` text for `clients` of `max`.
pub(super) fn status(clients: usize, max: usize) -> String {
    format!("{clients} of {max} clients connected")
}

/// Sends `STATUS=` each time the number of clients changes, at most once
/// per [`STATUS_INTERVAL`], until `stop` is cancelled. Idle, it waits and
/// does nothing: no timer runs unless a client came or went.
pub(super) async fn report_clients(slots: Arc<ClientSlots>, stop: CancellationToken) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = slots.changed() => {}
        }
        send(&[NotifyState::Status(&status(slots.connected(), slots.max()))]);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(STATUS_INTERVAL) => {}
        }
    }
}
