//! The identity's files read off the threads that serve clients, with a
//! deadline (SPEC §11 v3): a certificate on a network mount that hangs
//! must not stop a single handshake, date or reply.
//!
//! Each read runs on a thread of its own, not on tokio's blocking pool
//! (`spawn_blocking`): a read that never returns (a hung NFS server)
//! cannot be cancelled, and the runtime's shutdown waits for every task
//! of its blocking pool, so a stuck one there would keep the server from
//! exiting on SIGTERM. A thread of our own is abandoned instead: the
//! server gives the read up at [`READ_DEADLINE`], keeps the certificate in
//! use, and exits normally; the thread ends when the read returns, or with
//! the process.
//!
//! At most one such thread is ever left behind: while a read given up
//! earlier has not returned, the files are not read again (the reload is
//! refused in one sentence), so a file system that hangs for hours costs
//! one thread, not one per reload.

use std::time::Duration;

use crate::error::TlsSetupError;

/// How long reading the identity's files may take. Local files take
/// milliseconds; this leaves room for a slow network mount and still gives
/// the operator an answer (an ERROR line, or a refusal to start) in
/// seconds.
pub(super) const READ_DEADLINE: Duration = Duration::from_secs(5);

/// Runs reads of the identity's files on threads of their own, one at a
/// time. Invariant: `abandoned` is the thread of the last read given up at
/// its deadline, until that thread has ended.
#[derive(Debug, Default)]
pub(super) struct BlockingReads {
    abandoned: Option<std::thread::JoinHandle<()>>,
}

impl BlockingReads {
    /// Runs `read` on a thread of its own and returns its result, or an
    /// error once `deadline` has passed without one (the thread is then
    /// left to finish alone). `files` names what is read, for the error.
    pub(super) async fn run<T, E>(
        &mut self,
        files: &str,
        deadline: Duration,
        read: impl FnOnce() -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<TlsSetupError> + Send + 'static,
    {
        if self.abandoned.as_ref().is_some_and(|t| !t.is_finished()) {
            return Err(TlsSetupError::ReadStuck {
                files: files.to_owned(),
            }
            .into());
        }
        self.abandoned = None;
        let (done, result) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("nea-cert-read".to_owned())
            .spawn(move || {
                // The receiver is gone when the read was given up.
                let _ = done.send(read());
            })
            .map_err(|source| TlsSetupError::Read {
                what: "the certificate files",
                path: files.into(),
                source,
            })?;
        // From here the read goes on whatever happens to this future: a
        // reload dropped at shutdown leaves it to finish alone.
        match tokio::time::timeout(deadline, result).await {
            Ok(Ok(result)) => result,
            // The thread ended without an answer: it cannot panic on any
            // input, but say so rather than wait.
            Ok(Err(_)) => Err(TlsSetupError::Read {
                what: "the certificate files",
                path: files.into(),
                source: std::io::Error::other("the reading thread ended without an answer"),
            }
            .into()),
            Err(_) => {
                // The thread may stay stuck in the kernel; the server goes
                // on without it.
                self.abandoned = Some(thread);
                Err(TlsSetupError::ReadTimedOut {
                    files: files.to_owned(),
                    after: deadline,
                }
                .into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[tokio::test]
    async fn a_read_past_its_deadline_is_given_up_and_not_repeated_until_it_returns() {
        let mut reads = BlockingReads::default();
        assert_eq!(
            reads
                .run("a.pem", READ_DEADLINE, || Ok::<_, TlsSetupError>(7))
                .await
                .expect("read"),
            7
        );

        // A read that hangs until the test lets it go, as on a hung mount.
        let (release, hung) = mpsc::channel::<()>();
        let started = std::time::Instant::now();
        let err = reads
            .run("hung.pem", Duration::from_millis(100), move || {
                let _ = hung.recv();
                Ok::<_, TlsSetupError>(0)
            })
            .await
            .expect_err("given up");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            err.to_string(),
            "reading hung.pem did not finish within 100ms; is their file system hung?"
        );
        // Meanwhile the caller goes on, and no second thread is started.
        let err = reads
            .run("hung.pem", READ_DEADLINE, || Ok::<_, TlsSetupError>(1))
            .await
            .expect_err("still stuck");
        assert!(matches!(err, TlsSetupError::ReadStuck { .. }), "{err}");

        release.send(()).expect("the hung read is waiting");
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while reads.abandoned.as_ref().is_some_and(|t| !t.is_finished()) {
            assert!(std::time::Instant::now() < until, "the thread never ended");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            reads
                .run("a.pem", READ_DEADLINE, || Ok::<_, TlsSetupError>(2))
                .await
                .expect("read again"),
            2
        );
    }
}
