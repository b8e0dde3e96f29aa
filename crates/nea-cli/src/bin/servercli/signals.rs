//! What each signal does to the server (SPEC §8).
//!
//! | signal | effect |
//! |---|---|
//! | SIGINT, SIGTERM, SIGQUIT | graceful shutdown: answer, `shutting_down`, close_notify, exit 0 |
//! | SIGHUP | reload the certificate files (SPEC §11); serving goes on |
//! | SIGUSR1, SIGUSR2 | logged and ignored |
//! | SIGPIPE | ignored (a closed peer is an error on its own write) |
//!
//! Every handler is registered by [`install`], before the server reports
//! that it is listening, so a signal sent as soon as the listening line
//! appears is never lost, and none of these kills the process silently.
//! The stop future is built once and polled across the accept loop
//! (re-creating `ctrl_c()` on every loop turn can miss a signal that
//! arrives in between).

use std::future::Future;
use std::io;
use std::pin::Pin;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// The signals' effects, as the server takes them.
pub(crate) struct Signals {
    /// Completes (after logging which signal came) when a signal asks the
    /// server to stop. It must be polled for any of the signals to be
    /// handled: it is the loop that receives them all.
    pub(crate) stop: Pin<Box<dyn Future<Output = ()> + Send>>,
    /// One message per SIGHUP: a request to reload the certificate files.
    pub(crate) reload_requests: mpsc::Receiver<()>,
}

/// Registers the handlers of the table above.
pub(crate) fn install() -> io::Result<Signals> {
    let (reload, reload_requests) = mpsc::channel(1);
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut hangup = signal(SignalKind::hangup())?;
    let mut user1 = signal(SignalKind::user_defined1())?;
    let mut user2 = signal(SignalKind::user_defined2())?;
    let stop = async move {
        let name = loop {
            tokio::select! {
                _ = interrupt.recv() => break "SIGINT",
                _ = terminate.recv() => break "SIGTERM",
                _ = quit.recv() => break "SIGQUIT",
                _ = hangup.recv() => {
                    tracing::info!(target: crate::LOG_TARGET, "SIGHUP received; reloading the certificate files");
                    // One pending request is enough: it reads everything.
                    let _ = reload.try_send(());
                }
                _ = user1.recv() => tracing::info!(target: crate::LOG_TARGET, "SIGUSR1 received; it means nothing to the server: ignored"),
                _ = user2.recv() => tracing::info!(target: crate::LOG_TARGET, "SIGUSR2 received; it means nothing to the server: ignored"),
            }
        };
        tracing::info!(target: crate::LOG_TARGET, "{name} received");
    };
    Ok(Signals {
        stop: Box::pin(stop),
        reload_requests,
    })
}
