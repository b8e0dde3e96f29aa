//! The signal that stops the server: SIGINT or SIGTERM (SPEC §8).
//!
//! Both handlers are registered when [`termination`] is called, before the
//! server reports that it is listening, so a signal sent as soon as the
//! listening line appears is never lost. The returned future is built once
//! and polled across the accept loop (re-creating `ctrl_c()` on every loop
//! turn can miss a signal that arrives in between).

use std::future::Future;
use std::io;

use tokio::signal::unix::{SignalKind, signal};

/// Registers SIGINT and SIGTERM handlers and returns a future that completes
/// (and logs which signal came) when either arrives.
pub fn termination() -> io::Result<impl Future<Output = ()>> {
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!("{name} received");
    })
}
