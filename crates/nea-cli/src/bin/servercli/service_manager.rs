//! Telling a service manager how the server is doing (SPEC §11), through
//! the `sd_notify` protocol: `READY=1` once the server accepts,
//! `RELOADING=1` … `READY=1` around a certificate reload, `STOPPING=1` when
//! shutdown starts, and `STATUS=` with the clients connected.
//!
//! Each message is one datagram to the socket named by `NOTIFY_SOCKET`;
//! without that variable there is no [`ServiceManager`] and nothing runs.
//! A message that cannot be sent is logged at DEBUG and otherwise ignored:
//! the service manager's view is not worth a client.

use std::time::Duration;

use nea::server::{ClientCount, Event, Observer};
use sd_notify::NotifyState;

/// Least time between two `STATUS=` messages: a burst of clients joining
/// costs one message a second, not one each.
const STATUS_INTERVAL: Duration = Duration::from_secs(1);

/// The service manager that started the server, told each server event.
pub(crate) struct ServiceManager {
    /// `--max-clients`, for the status line.
    max_clients: usize,
}

impl ServiceManager {
    /// The service manager named by `NOTIFY_SOCKET`, if it is set.
    pub(crate) fn from_env(max_clients: usize) -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET").map(|_| Self { max_clients })
    }
}

impl Observer for ServiceManager {
    fn event(&self, event: &Event) {
        match event {
            Event::Listening(_) => send(&[
                NotifyState::Ready,
                NotifyState::Status(&status(0, self.max_clients)),
            ]),
            // With the monotonic time `Type=notify-reload` asks for.
            Event::Reloading => match NotifyState::monotonic_usec_now() {
                Ok(now) => send(&[NotifyState::Reloading, now]),
                Err(_) => send(&[NotifyState::Reloading]),
            },
            Event::Reloaded => send(&[NotifyState::Ready]),
            Event::Stopping { clients } => {
                let status = format!("shutting down; {clients} clients connected");
                send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
            }
            _ => {}
        }
    }
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::debug!(target: crate::LOG_TARGET, "service manager notification failed: {err}");
    }
}

/// The `STATUS=` text for `clients` of `max`.
fn status(clients: usize, max: usize) -> String {
    format!("{clients} of {max} clients connected")
}

/// Sends `STATUS=` each time the number of clients changes, at most once
/// per [`STATUS_INTERVAL`], until the task is dropped. Idle, it waits and
/// does nothing: no timer runs unless a client came or went.
pub(crate) async fn report_clients(clients: ClientCount) {
    loop {
        clients.changed().await;
        send(&[NotifyState::Status(&status(
            clients.connected(),
            clients.max(),
        ))]);
        tokio::time::sleep(STATUS_INTERVAL).await;
    }
}
