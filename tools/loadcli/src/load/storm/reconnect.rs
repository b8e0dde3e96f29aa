//! Connecting as clientcli does: the first connections, then the
//! reconnection schedule shared with `clientcli --reconnect`.
//!
//! Connecting is [`nea::client::connect`] itself, with clientcli's
//! options, deadlines and classification of failures. Before each
//! reconnection attempt a client waits as its [`nea::client::Backoff`]
//! says, which grows across refusals and rejections (`server_full`,
//! `address_limit`) and starts over only after a connection served for a
//! while, and it gives up exactly when [`nea::client::is_retried`] says
//! clientcli would: so what the storm measures is what clientcli's users
//! get, and a storm against a full server is as gentle as they are.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use nea::client::{Backoff, Options, is_retried};
use nea::error::ClientError;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::super::{LoadError, Target};
use super::shared::Shared;

/// A connection as clientcli makes it.
pub(super) type Connection = TlsStream<TcpStream>;

/// clientcli's options for the target.
pub(super) fn options(target: &Target) -> Result<Options, LoadError> {
    let config = |err: nea::error::ConfigError| LoadError::Failed(err.to_string());
    Options::new(&target.addr.ip().to_string(), target.addr.port())
        .map_err(config)?
        .server_name(&target.server_name.to_str())
        .map_err(config)
}

/// The first connection of every client, `ramp` handshakes at a time; any
/// failure fails the run (as clientcli does not retry a first connection).
/// The connections are in client order.
pub(super) async fn connect_all(
    target: &Target,
    options: &Arc<Options>,
    clients: usize,
    ramp: usize,
) -> Result<Vec<Connection>, LoadError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(ramp.max(1)));
    let mut connecting = tokio::task::JoinSet::new();
    for id in 0..clients {
        let (slots, options, tls) = (slots.clone(), options.clone(), target.tls.clone());
        connecting.spawn(async move {
            let _permit = slots.acquire_owned().await;
            let stream = nea::client::connect(&options, tls).await;
            (id, stream)
        });
    }
    let mut streams: Vec<Option<Connection>> = Vec::new();
    streams.resize_with(clients, || None);
    let connected = AtomicU64::new(0);
    super::super::with_progress("connected", &connected, async {
        while let Some(joined) = connecting.join_next().await {
            let (id, stream) = joined.map_err(|err| LoadError::Failed(err.to_string()))?;
            let stream = stream.map_err(|err| LoadError::Failed(format!("client {id}: {err}")))?;
            streams[id] = Some(stream);
            connected.fetch_add(1, Ordering::Relaxed);
        }
        Ok::<_, LoadError>(())
    })
    .await?;
    super::super::end_progress();
    Ok(streams.into_iter().flatten().collect())
}

/// Client `id` waits as `schedule` says and tries as clientcli does until
/// it connects (counted in `handshakes`), or gives up (counted in
/// `gave_up`, `None`).
pub(super) async fn reconnect(
    id: usize,
    shared: &Shared,
    options: &Options,
    tls: &Arc<rustls::ClientConfig>,
    schedule: &mut Backoff,
) -> Option<Connection> {
    loop {
        let (_, delay) = schedule.next_attempt();
        tokio::time::sleep(delay).await;
        match nea::client::connect(options, tls.clone()).await {
            Ok(stream) => {
                shared.handshakes.fetch_add(1, Ordering::Relaxed);
                return Some(stream);
            }
            Err(err) if is_retried(&err) => failed_attempt(shared, &err),
            Err(err) => {
                shared.problem(&shared.gave_up, || format!("client {id} gave up: {err}"));
                return None;
            }
        }
    }
}

/// Counts an attempt that failed and will be retried, by its kind.
fn failed_attempt(shared: &Shared, err: &ClientError) {
    shared.failed_attempts.fetch_add(1, Ordering::Relaxed);
    let kind = match err {
        ClientError::Refused { .. } => Some(&shared.refused_attempts),
        ClientError::HandshakeUnanswered { .. } | ClientError::Unreachable { .. } => {
            Some(&shared.timed_out_attempts)
        }
        _ => None,
    };
    if let Some(counter) = kind {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
