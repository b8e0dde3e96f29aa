//! Certificate reload (SPEC §11): on SIGHUP, and when the certificate, key
//! or client-CA files change on disk, the identity is read again and new
//! handshakes use it. Sessions already established keep the keys they
//! were made with; nothing about them changes.
//!
//! - The directories holding the files are watched (inotify, through
//!   `notify`), not the files: secret managers replace a file by renaming a
//!   new one over it, and Kubernetes swaps a `..data` symlink in the
//!   directory, neither of which a watch on the old file's inode would see.
//!   Events are debounced ([`SETTLE`]), so that a certificate and its key
//!   written one after the other are read together.
//! - A reload that fails (unreadable file, key that does not match) keeps
//!   the identity in force and logs one error line. A successful one logs
//!   the new fingerprint and expiry; a change of files that leaves the
//!   certificate as it was is logged at DEBUG.
//! - Nothing runs while nothing changes: no timer, no polling.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::identity::{IdentityFiles, LoadedCertificate};
use super::{Event, Observer};

/// How long the files must stay quiet after a change before they are read.
const SETTLE: Duration = Duration::from_millis(200);

/// The TLS configuration new handshakes use, replaced whole by a reload.
#[derive(Debug)]
pub(super) struct CurrentTls {
    /// Invariant: always a configuration that loaded successfully.
    config: RwLock<Arc<rustls::ServerConfig>>,
}

impl CurrentTls {
    pub(super) fn new(config: Arc<rustls::ServerConfig>) -> Arc<Self> {
        Arc::new(Self {
            config: RwLock::new(config),
        })
    }

    /// The configuration in force now.
    pub(super) fn get(&self) -> Arc<rustls::ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, config: Arc<rustls::ServerConfig>) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = config;
    }
}

/// What asked for a reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    /// SIGHUP (or the embedder's request).
    Request,
    /// A file in a watched directory changed.
    Files,
}

/// What a reload reads, and what it updates.
pub(super) struct Reloadable {
    /// The files to read.
    pub(super) files: IdentityFiles,
    /// The fingerprint of the certificate in use.
    pub(super) fingerprint: String,
    /// Where new handshakes find their configuration.
    pub(super) current: Arc<CurrentTls>,
    /// Counts the reloads and shows the certificate's expiry.
    pub(super) metrics: Arc<super::metrics::Metrics>,
    /// Told when a reload starts and ends.
    pub(super) observer: Arc<dyn Observer>,
}

/// Reloads `current` from `files` on each request and on each change of the
/// files, until `shutdown` is cancelled. `requests` ending (its senders
/// gone), or none given, only stops the requests; the files are still
/// watched.
pub(super) async fn reload_on_change(
    reloadable: Reloadable,
    requests: Option<mpsc::Receiver<()>>,
    shutdown: CancellationToken,
) {
    let Reloadable {
        files,
        mut fingerprint,
        current,
        metrics,
        observer,
    } = reloadable;
    let (_no_requests, unrequested) = mpsc::channel(1);
    let mut requests = requests.unwrap_or(unrequested);
    let (changed, mut changes) = mpsc::channel(1);
    // Kept alive for as long as this runs; dropping it stops the watch.
    let _watcher = watch(&files, changed);
    let mut requests_open = true;
    loop {
        let trigger = tokio::select! {
            () = shutdown.cancelled() => break,
            request = requests.recv(), if requests_open => match request {
                Some(()) => Trigger::Request,
                None => {
                    requests_open = false;
                    continue;
                }
            },
            Some(()) = changes.recv() => {
                // Until the files have been quiet for SETTLE.
                while let Ok(Some(())) = tokio::time::timeout(SETTLE, changes.recv()).await {}
                Trigger::Files
            }
        };
        observer.event(&Event::Reloading);
        match files.load() {
            Ok(identity) => {
                let unchanged = identity.fingerprint == fingerprint;
                current.set(identity.config.clone());
                metrics.set_expiry(identity.expiry);
                metrics
                    .reloads
                    .get_or_create(&super::metrics::label("result", "ok"))
                    .inc();
                if trigger == Trigger::Files && unchanged {
                    tracing::debug!("certificate files changed; the certificate is the same");
                } else {
                    identity.log(&files, "certificate reloaded");
                }
                fingerprint = identity.fingerprint;
            }
            Err(err) => {
                metrics
                    .reloads
                    .get_or_create(&super::metrics::label("result", "failed"))
                    .inc();
                tracing::error!("certificate reload failed, keeping the certificate in use: {err}");
            }
        }
        observer.event(&Event::Reloaded);
    }
}

/// Watches the directories of `files`; each event sends on `changed` (one
/// pending at most: the reload reads everything anyway). `None`, after a
/// warning, if the directories cannot be watched: SIGHUP still reloads.
fn watch(files: &IdentityFiles, changed: mpsc::Sender<()>) -> Option<notify::RecommendedWatcher> {
    use notify::Watcher as _;
    let dirs: BTreeSet<PathBuf> = files
        .files()
        .map(|file| match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        })
        .collect();
    let handler = move |event: notify::Result<notify::Event>| {
        if event.is_ok_and(|event| !event.kind.is_access()) {
            let _ = changed.try_send(());
        }
    };
    let mut watcher = match notify::recommended_watcher(handler) {
        Ok(watcher) => watcher,
        Err(err) => {
            tracing::warn!("cannot watch the certificate files ({err}); SIGHUP reloads them");
            return None;
        }
    };
    for dir in &dirs {
        if let Err(err) = watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(
                "cannot watch {} ({err}); SIGHUP reloads the certificate files",
                dir.display()
            );
        }
    }
    Some(watcher)
}

/// The identity to start with, logged as the start's.
pub(super) fn first(files: &IdentityFiles) -> Result<LoadedCertificate, crate::error::ServerError> {
    let identity = files.load()?;
    identity.log(files, "server certificate");
    Ok(identity)
}
