//! What each signal does to the server (SPEC §8).
//!
//! | signal | effect |
//! |---|---|
//! | SIGINT, SIGTERM, SIGQUIT | graceful shutdown: answer, `shutting_down`, close_notify, exit 0 |
//! | SIGHUP | reload the certificate files (SPEC §11); serving goes on |
//! | SIGUSR1, SIGUSR2 | logged and ignored |
//! | SIGPIPE | ignored (a closed peer is an error on its own write) |
//!
//! Every handler is registered when [`termination`] is called, before the
//! server reports that it is listening, so a signal sent as soon as the
//! listening line appears is never lost, and none of these kills the
//! process silently. The returned future is built once and polled across
//! the accept loop (re-creating `ctrl_c()` on every loop turn can miss a
//! signal that arrives in between).

use std::future::Future;
use std::io;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// Registers the handlers of the table above and returns a future that
/// completes (and logs which signal came) when a signal asks the server to
/// stop, and a receiver of one message per SIGHUP (for
/// [`crate::server::start`]). The other signals are logged as they come.
/// The future must be polled for the signals to be handled.
pub fn termination() -> io::Result<(impl Future<Output = ()>, mpsc::Receiver<()>)> {
    let (reload, reloads) = mpsc::channel(1);
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
                    tracing::info!("SIGHUP received; reloading the certificate files");
                    // One pending request is enough: it reads everything.
                    let _ = reload.try_send(());
                }
                _ = user1.recv() => tracing::info!("SIGUSR1 received; it means nothing to the server: ignored"),
                _ = user2.recv() => tracing::info!("SIGUSR2 received; it means nothing to the server: ignored"),
            }
        };
        tracing::info!("{name} received");
    };
    Ok((stop, reloads))
}
