//! Clients that never read (SPEC §7): `clients` clients each send `lines`
//! lines of `line_bytes` control characters, whose replies are six times
//! their size in JSON escapes, and never read a byte. After `settle`, the
//! run reports what the kernel holds for the server's side of those
//! connections (send and receive queues, from `/proc/net/tcp` and
//! `/proc/net/tcp6`) and, with `--pid`, the server's resident memory.

use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::proc::Sample;
use super::{LoadError, Target};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Clients that never read.
    pub clients: usize,
    /// Lines each sends.
    pub lines: usize,
    /// Bytes per line.
    pub line_bytes: usize,
    /// Time for the queues to fill before they are read.
    pub settle: Duration,
    /// The server, to read its memory.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Clients that never read.
    pub clients: usize,
    /// Server-side connections found on the server's port.
    pub connections: usize,
    /// Bytes in the kernel's send queues of those connections, in all.
    pub send_queue_bytes: u64,
    /// The largest send queue of one connection.
    pub max_send_queue_bytes: u64,
    /// Bytes in their receive queues, in all.
    pub receive_queue_bytes: u64,
    /// The largest receive queue of one connection.
    pub max_receive_queue_bytes: u64,
    /// Server RSS growth while they were connected, in KiB (with `--pid`).
    pub server_rss_growth_kib: Option<i64>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} clients that never read ({} connections seen): kernel send queues {} B in all \
             (at most {} B each), receive queues {} B (at most {} B each)",
            self.clients,
            self.connections,
            self.send_queue_bytes,
            self.max_send_queue_bytes,
            self.receive_queue_bytes,
            self.max_receive_queue_bytes
        )?;
        if let Some(growth) = self.server_rss_growth_kib {
            writeln!(f, "server RSS grew by {growth} KiB")?;
        }
        Ok(())
    }
}

/// The (send, receive) queue of each established connection whose local
/// port is `port`, from the kernel's tables.
fn kernel_queues(port: u16) -> Vec<(u64, u64)> {
    let port = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    // local_address, state 01 (established), tx_queue:rx_queue
                    if !fields.get(1)?.ends_with(&port) || *fields.get(3)? != "01" {
                        return None;
                    }
                    let (tx, rx) = fields.get(4)?.split_once(':')?;
                    Some((
                        u64::from_str_radix(tx, 16).ok()?,
                        u64::from_str_radix(rx, 16).ok()?,
                    ))
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Connects the clients, sends, waits, and reads the queues.
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let before = plan.server_pid.and_then(Sample::of);
    let mut line = "\u{1}".repeat(plan.line_bytes);
    line.push('\n');
    let line = std::sync::Arc::new(line);
    let mut clients = Vec::with_capacity(plan.clients);
    for client in 0..plan.clients {
        let stream = target.connect(client).await?;
        let (unread, mut writer) = tokio::io::split(stream);
        let (line, lines) = (line.clone(), plan.lines);
        let sending = tokio::spawn(async move {
            for _ in 0..lines {
                // The server stops reading once its queue for us is full;
                // what it has not read stays with the kernel, or with us.
                if writer.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            writer
        });
        clients.push((unread, sending));
    }
    tokio::time::sleep(plan.settle).await;
    let queues = kernel_queues(target.addr.port());
    let after = plan.server_pid.and_then(Sample::of);
    for (_, sending) in &clients {
        sending.abort();
    }
    drop(clients);
    Ok(Report {
        clients: plan.clients,
        connections: queues.len(),
        send_queue_bytes: queues.iter().map(|q| q.0).sum(),
        max_send_queue_bytes: queues.iter().map(|q| q.0).max().unwrap_or(0),
        receive_queue_bytes: queues.iter().map(|q| q.1).sum(),
        max_receive_queue_bytes: queues.iter().map(|q| q.1).max().unwrap_or(0),
        server_rss_growth_kib: before
            .zip(after)
            .map(|(b, a)| a.rss_kib as i64 - b.rss_kib as i64),
    })
}
