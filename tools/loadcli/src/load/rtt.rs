//! Round trips: N clients, K lines in flight each, M lines of L bytes per
//! client. Every reply is checked against the exact reversal, in order.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use super::proc::Sample;
use super::{
    LoadError, Percentiles, Received, Target, check_reply, interpret, make_line, new_histogram,
};

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Clients (`-n`).
    pub clients: usize,
    /// Lines in flight per client (`-k`).
    pub in_flight: usize,
    /// Lines per client (`-m`).
    pub lines: u64,
    /// Bytes per line (`-l`).
    pub line_bytes: usize,
    /// Mixed-Unicode lines instead of ASCII.
    pub unicode: bool,
    /// The server's process id, to read its CPU time.
    pub server_pid: Option<u32>,
}

/// What a run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    /// Lines answered (and checked) in all.
    pub lines: u64,
    /// Wall-clock time of the run, in seconds.
    pub seconds: f64,
    /// Lines per second, all clients together.
    pub lines_per_second: f64,
    /// Round-trip latency.
    pub latency: Percentiles,
    /// Server CPU time per line, in microseconds (with `--pid`).
    pub server_cpu_us_per_line: Option<f64>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} lines in {:.2} s: {:.0} lines/s",
            self.lines, self.seconds, self.lines_per_second
        )?;
        writeln!(f, "round trip: {}", self.latency)?;
        if let Some(cpu) = self.server_cpu_us_per_line {
            writeln!(f, "server CPU: {cpu:.2} µs per line")?;
        }
        Ok(())
    }
}

/// Runs the plan; fails on the first wrong or misordered reply.
pub(crate) async fn run(target: &Target, plan: &Plan) -> Result<Report, LoadError> {
    let done = Arc::new(AtomicU64::new(0));
    // Connect everyone first, so handshakes are not part of the figures.
    let mut streams = Vec::with_capacity(plan.clients);
    for client in 0..plan.clients {
        streams.push(target.connect(client).await?);
    }
    let before = plan.server_pid.and_then(Sample::of);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (client, stream) in streams.into_iter().enumerate() {
        let (target, plan, done) = (target.clone(), plan.clone(), done.clone());
        tasks.spawn(async move { one_client(&target, &plan, client, stream, &done).await });
    }
    let joined = super::with_progress("lines", &done, async {
        let mut hist = new_histogram();
        while let Some(result) = tasks.join_next().await {
            let client_hist = result.map_err(|err| LoadError::Failed(err.to_string()))??;
            hist.add(&client_hist)
                .map_err(|err| LoadError::Failed(err.to_string()))?;
        }
        Ok::<_, LoadError>(hist)
    })
    .await;
    let hist = joined?;
    let seconds = started.elapsed().as_secs_f64();
    let after = plan.server_pid.and_then(Sample::of);
    let lines = done.load(Ordering::Relaxed);
    let server_cpu_us_per_line = match (before, after) {
        (Some(before), Some(after)) if lines > 0 => {
            Some(after.since(&before).cpu_ns as f64 / 1000.0 / lines as f64)
        }
        _ => None,
    };
    super::end_progress();
    Ok(Report {
        lines,
        seconds,
        lines_per_second: lines as f64 / seconds,
        latency: Percentiles::of(&hist),
        server_cpu_us_per_line,
    })
}

async fn one_client(
    target: &Target,
    plan: &Plan,
    client: usize,
    stream: tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    done: &AtomicU64,
) -> Result<hdrhistogram::Histogram<u64>, LoadError> {
    let io = |source| LoadError::Io { client, source };
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    let mut hist = new_histogram();
    let mut waiting: VecDeque<(u64, String, Instant)> = VecDeque::new();
    let mut batch = Vec::new();
    let mut line = String::new();
    let (mut sent, mut answered) = (0u64, 0u64);
    while answered < plan.lines {
        while waiting.len() < plan.in_flight.max(1) && sent < plan.lines {
            let text = make_line(client, sent, plan.line_bytes, plan.unicode);
            batch.extend_from_slice(text.as_bytes());
            batch.push(b'\n');
            waiting.push_back((sent, target.expected_reply(&text), Instant::now()));
            sent += 1;
        }
        if !batch.is_empty() {
            write.write_all(&batch).await.map_err(io)?;
            write.flush().await.map_err(io)?;
            batch.clear();
        }
        line.clear();
        if reader.read_line(&mut line).await.map_err(io)? == 0 {
            return Err(LoadError::Failed(format!(
                "client {client}: the server closed the connection after {answered} replies"
            )));
        }
        let Received::Reply(reply) = interpret(target.protocol, line.trim_end_matches('\n')) else {
            continue;
        };
        let next = waiting.pop_front();
        let sent_at = next.as_ref().map(|(_, _, at)| *at);
        check_reply(
            client,
            next.map(|(seq, expected, _)| (seq, expected)),
            reply,
        )?;
        let micros = sent_at.map_or(1, |at| at.elapsed().as_micros().max(1) as u64);
        let _ = hist.record(micros.min(hist.high()));
        answered += 1;
        done.fetch_add(1, Ordering::Relaxed);
    }
    let _ = write.shutdown().await;
    Ok(hist)
}
