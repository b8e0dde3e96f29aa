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
//!   written one after the other are read together; but never for longer
//!   than [`SETTLE_AT_MOST`] after the first change, so that a writer that
//!   never stops touching the directory cannot postpone a reload for ever.
//! - The files are read off the threads that serve clients, with a
//!   deadline, and only as `pem_files` allows (see `identity`).
//! - A reload that fails (unreadable or refused file, key that does not
//!   match, expired certificate) keeps the identity in force and logs one
//!   error line. A successful one logs the new fingerprint and expiry (at
//!   WARN when it expires within 14 days); a change of files that leaves
//!   the certificate as it was is logged at DEBUG, unless it heals a
//!   failed reload, which is said at INFO.
//! - Nothing runs while nothing changes: no polling, and one timer only
//!   for the moment the certificate in use nears its end (`expiry`); from
//!   then on it is checked daily: warned about, or renewed if it is the
//!   development CA's.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::blocking_read::{BlockingReads, READ_DEADLINE};
use super::expiry::{self, ExpirySchedule};
use super::identity::{self, FileStamps, IdentityFiles, LoadedCertificate};
use super::metrics::ReloadResult;
use super::{Event, Observer};

/// How long the files must stay quiet after a change before they are read.
const SETTLE: Duration = Duration::from_millis(200);

/// The longest a change waits for the files to settle: a reload comes at
/// most this long after the first change, however busy the directory.
const SETTLE_AT_MOST: Duration = Duration::from_secs(2);

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
    /// The certificate in use is due for its expiry check (and, if it is
    /// the development CA's, was renewed by it).
    Expiry,
}

/// What a reload reads, and what it updates.
pub(super) struct Reloadable {
    /// The files to read.
    files: IdentityFiles,
    /// The fingerprint of the certificate in use.
    fingerprint: String,
    /// The files as they were just before they were last read, or last
    /// found unchanged: a change is a difference from these.
    stamps: FileStamps,
    /// Where new handshakes find their configuration.
    current: Arc<CurrentTls>,
    /// Counts the reloads and shows the certificate's expiry.
    metrics: Arc<super::metrics::Metrics>,
    /// Told when a reload starts and ends.
    observer: Arc<dyn Observer>,
    /// When the certificate in use is next checked for its expiry.
    schedule: ExpirySchedule,
    /// The reads of the files, off the serving threads.
    reads: BlockingReads,
    /// Whether the last reload failed: the next that succeeds says it
    /// healed.
    failing: bool,
}

/// Reloads `current` from `files` on each request and on each change of the
/// files, until `shutdown` is cancelled. `requests` ending (its senders
/// gone), or none given, only stops the requests; the files are still
/// watched.
pub(super) async fn reload_on_change(
    mut reloadable: Reloadable,
    watch: FileWatch,
    requests: Option<mpsc::Receiver<()>>,
    shutdown: CancellationToken,
) {
    // The watcher lives for as long as this runs; dropping it stops the
    // watch.
    let FileWatch { _watcher, changes } = watch;
    let mut triggers = Triggers { requests, changes };
    while let Some(trigger) = triggers.next(&shutdown, &reloadable.schedule).await {
        if trigger == Trigger::Expiry && !reloadable.check_expiry().await {
            continue;
        }
        if trigger == Trigger::Files && !reloadable.files_changed().await {
            continue;
        }
        reloadable.observer.event(&Event::Reloading);
        reloadable.reload(trigger).await;
        reloadable.observer.event(&Event::Reloaded);
    }
}

/// Where reloads come from: requests, and changes in the watched
/// directories.
struct Triggers {
    /// Reload requests; `None` once their senders are gone (or if there
    /// were none).
    requests: Option<mpsc::Receiver<()>>,
    /// One message per burst of changes in the watched directories.
    changes: mpsc::Receiver<()>,
}

impl Triggers {
    /// The next reason to reload, once it comes; `None` once `shutdown` is
    /// cancelled. A change waits until the files have settled
    /// ([`settle`]); `schedule` says when the expiry check is
    /// due.
    async fn next(
        &mut self,
        shutdown: &CancellationToken,
        schedule: &ExpirySchedule,
    ) -> Option<Trigger> {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return None,
                request = next_request(&mut self.requests) => match request {
                    Some(()) => return Some(Trigger::Request),
                    None => self.requests = None,
                },
                Some(()) = self.changes.recv() => {
                    // A request while the files settle is the same
                    // reload: the operator who copies files into place
                    // and then signals says they are ready.
                    return tokio::select! {
                        () = shutdown.cancelled() => None,
                        () = settle(&mut self.changes) => Some(Trigger::Files),
                        Some(()) = next_request(&mut self.requests) => Some(Trigger::Request),
                    };
                }
                () = schedule.due() => return Some(Trigger::Expiry),
            }
        }
    }
}

/// The next reload request; `None` once their senders are gone, and never
/// if there are none.
async fn next_request(requests: &mut Option<mpsc::Receiver<()>>) -> Option<()> {
    match requests {
        Some(requests) => requests.recv().await,
        None => std::future::pending().await,
    }
}

/// Completes once `changes` have been quiet for [`SETTLE`], or
/// [`SETTLE_AT_MOST`] after it was called, whichever comes first.
async fn settle(changes: &mut mpsc::Receiver<()>) {
    let latest = tokio::time::Instant::now() + SETTLE_AT_MOST;
    loop {
        let quiet = tokio::time::timeout(SETTLE, changes.recv());
        match tokio::time::timeout_at(latest, quiet).await {
            // Another change: wait for quiet again.
            Ok(Ok(Some(()))) => {}
            // Quiet, the watch gone, or the bound reached.
            Ok(Ok(None) | Err(_)) | Err(_) => return,
        }
    }
}

impl Reloadable {
    /// The reload of `files` into `current`, whose certificate (logged
    /// already) has `fingerprint` and `expiry` and was read from the files
    /// as `stamps` found them.
    pub(super) fn new(
        files: IdentityFiles,
        fingerprint: &str,
        expiry: Option<jiff::Timestamp>,
        stamps: FileStamps,
        current: Arc<CurrentTls>,
        metrics: Arc<super::metrics::Metrics>,
        observer: Arc<dyn Observer>,
    ) -> Self {
        let schedule = ExpirySchedule::new(expiry, files.expiry_window());
        Self {
            files,
            fingerprint: fingerprint.to_owned(),
            stamps,
            current,
            metrics,
            observer,
            schedule,
            reads: BlockingReads::default(),
            failing: false,
        }
    }

    /// Whether the files differ from when they were last read: another
    /// file changing in their directories is no reason to reload. Files
    /// that cannot be looked at are read, and the read says why it fails.
    async fn files_changed(&mut self) -> bool {
        match self.files.stamps(&mut self.reads).await {
            Ok(now) if now == self.stamps => {
                tracing::debug!("a file beside the certificate files changed; they did not");
                false
            }
            Ok(now) => {
                self.stamps = now;
                true
            }
            Err(_) => true,
        }
    }

    /// Reads the files again: new handshakes use them if they load, and
    /// the certificate in use stays if they do not.
    async fn reload(&mut self, trigger: Trigger) {
        match self.files.load(&mut self.reads).await {
            Ok(loaded) => self.take(loaded, trigger),
            Err(err) => {
                self.failing = true;
                self.metrics.reloads.get(ReloadResult::Failed).inc();
                tracing::error!(
                    error = %err,
                    "certificate reload failed, keeping the certificate in use"
                );
            }
        }
    }

    /// Puts a certificate just loaded in use, and says so in one line.
    fn take(&mut self, loaded: LoadedCertificate, trigger: Trigger) {
        let unchanged = loaded.fingerprint == self.fingerprint;
        let healed = std::mem::take(&mut self.failing);
        self.current.set(loaded.config.clone());
        self.metrics.set_expiry(loaded.expiry);
        self.metrics.reloads.get(ReloadResult::Ok).inc();
        if healed {
            loaded.log(&self.files, "certificate reloaded after a failed reload");
        } else if trigger == Trigger::Files && unchanged {
            tracing::debug!("certificate files changed; the certificate is the same");
        } else {
            loaded.log(&self.files, "certificate reloaded");
        }
        if !unchanged || self.schedule.expiry() != loaded.expiry {
            self.schedule = ExpirySchedule::new(loaded.expiry, self.files.expiry_window());
            // A development certificate put in place near its end is
            // renewed at once; not one just renewed (no loop, whatever
            // the clock says).
            if self.files.development_dir().is_some() && trigger != Trigger::Expiry {
                self.schedule.check_now_if_in_window();
            }
        }
        self.fingerprint = loaded.fingerprint;
        self.stamps = loaded.stamps;
    }

    /// The daily check of the certificate in use, once it is near its end:
    /// the development certificate is renewed (true: reload it now);
    /// any other is warned about.
    async fn check_expiry(&mut self) -> bool {
        self.schedule.checked();
        if let Some(dir) = self.files.development_dir() {
            let dir = dir.to_path_buf();
            let now = self.schedule.now();
            let at = dir.clone();
            let renewal = self
                .reads
                .run(&dir.display().to_string(), READ_DEADLINE, move || {
                    crate::devca::renew_if_expiring(&at, now)
                })
                .await;
            let renewed = matches!(renewal, Ok(r) if r != crate::devca::Renewal::NotDue);
            identity::log_renewal(&dir, renewal);
            if renewed {
                return true;
            }
        }
        self.warn_if_soon();
        false
    }

    /// The daily line about a certificate in use that expires soon (WARN)
    /// or has expired (ERROR).
    fn warn_if_soon(&self) {
        let Some(days_left) =
            expiry::days_left_if_soon(self.schedule.expiry(), self.schedule.now())
        else {
            return;
        };
        let expires = self
            .schedule
            .expiry()
            .map_or_else(String::new, |at| at.to_string());
        let cert = self.files.cert.display().to_string();
        if days_left < 0 {
            tracing::error!(
                cert = cert.as_str(),
                sha256 = %self.fingerprint,
                expires = %expires,
                "the certificate in use has expired: clients refuse it; renew it"
            );
        } else {
            tracing::warn!(
                cert = cert.as_str(),
                sha256 = %self.fingerprint,
                expires = %expires,
                days_left,
                "the certificate in use expires soon: renew it"
            );
        }
    }
}

/// The watch on the directories of the identity files, set up before they
/// are first read: a change from then on, even one made before the server
/// runs, becomes a reload.
pub(super) struct FileWatch {
    /// Stops the watch when dropped; `None` if the directories could not
    /// be watched (SIGHUP still reloads).
    _watcher: Option<notify::RecommendedWatcher>,
    /// One message per burst of changes (one pending at most: a reload
    /// reads everything anyway).
    changes: mpsc::Receiver<()>,
}

impl FileWatch {
    /// Watches the directories of `files`. After a warning, a watch that
    /// cannot be set up sends nothing: SIGHUP still reloads.
    pub(super) fn start(files: &IdentityFiles) -> Self {
        let (changed, changes) = mpsc::channel(1);
        Self {
            _watcher: watch(files, changed),
            changes,
        }
    }
}

/// Watches the directories of `files`; each event sends on `changed`.
/// `None`, after a warning, if the directories cannot be watched.
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
pub(super) async fn first(
    files: &IdentityFiles,
) -> Result<LoadedCertificate, crate::error::ServerError> {
    let identity = files.load(&mut BlockingReads::default()).await?;
    identity.log(files, "server certificate");
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    /// Triggers with no requests, fed by the returned sender as the
    /// directory watch does.
    fn triggers() -> (Triggers, mpsc::Sender<()>) {
        let (changed, changes) = mpsc::channel(1);
        (
            Triggers {
                requests: None,
                changes,
            },
            changed,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_is_read_once_the_directory_is_quiet() {
        let (mut triggers, changed) = triggers();
        let never = ExpirySchedule::new(None, expiry::WARN_WITHIN);
        let started = Instant::now();
        changed.try_send(()).expect("sent");
        let trigger = triggers.next(&CancellationToken::new(), &never).await;
        assert_eq!(trigger, Some(Trigger::Files));
        let waited = started.elapsed();
        assert!(waited >= SETTLE && waited < SETTLE * 2, "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_directory_touched_every_150_ms_postpones_a_reload_by_the_bound_at_most() {
        let (mut triggers, changed) = triggers();
        let never = ExpirySchedule::new(None, expiry::WARN_WITHIN);
        let toucher = tokio::spawn(async move {
            loop {
                let _ = changed.try_send(());
                tokio::time::sleep(Duration::from_millis(150)).await;
            }
        });
        let started = Instant::now();
        let trigger = triggers.next(&CancellationToken::new(), &never).await;
        assert_eq!(trigger, Some(Trigger::Files));
        let waited = started.elapsed();
        assert!(
            waited >= SETTLE_AT_MOST && waited < SETTLE_AT_MOST + SETTLE,
            "{waited:?}"
        );
        // The next burst is bounded the same way.
        let trigger = triggers.next(&CancellationToken::new(), &never).await;
        assert_eq!(trigger, Some(Trigger::Files));
        assert!(started.elapsed() < (SETTLE_AT_MOST + SETTLE) * 2);
        toucher.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_while_the_files_settle_is_one_reload_at_once() {
        let (requested, requests) = mpsc::channel(1);
        let (changed, changes) = mpsc::channel(1);
        let mut triggers = Triggers {
            requests: Some(requests),
            changes,
        };
        let never = ExpirySchedule::new(None, expiry::WARN_WITHIN);
        changed.try_send(()).expect("a change");
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE / 2).await;
            requested.try_send(()).expect("a request");
        });
        let started = Instant::now();
        let trigger = triggers.next(&CancellationToken::new(), &never).await;
        assert_eq!(trigger, Some(Trigger::Request));
        assert_eq!(
            started.elapsed(),
            SETTLE / 2,
            "at once, not after the quiet"
        );
        // Nothing is left to trigger a second reload.
        let next = tokio::time::timeout(
            SETTLE_AT_MOST * 2,
            triggers.next(&CancellationToken::new(), &never),
        )
        .await;
        assert!(next.is_err(), "{next:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_wait_for_quiet() {
        let (mut triggers, changed) = triggers();
        let never = ExpirySchedule::new(None, expiry::WARN_WITHIN);
        let shutdown = CancellationToken::new();
        changed.try_send(()).expect("sent");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            tokio::time::sleep(SETTLE / 4).await;
            stop.cancel();
        });
        let started = Instant::now();
        assert_eq!(triggers.next(&shutdown, &never).await, None);
        assert!(started.elapsed() < SETTLE);
    }

    #[tokio::test(start_paused = true)]
    async fn the_expiry_check_comes_when_it_is_due() {
        let (mut triggers, _changed) = triggers();
        let soon = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(24 * 3))
            .ok();
        let schedule = ExpirySchedule::new(soon, expiry::WARN_WITHIN);
        let started = Instant::now();
        let trigger = triggers.next(&CancellationToken::new(), &schedule).await;
        assert_eq!(trigger, Some(Trigger::Expiry));
        assert!(started.elapsed() >= expiry::CHECK_EVERY);
    }
}
