//! The lines of a storm client: when each one is due, its text, the reply
//! it must get, and what a line from the server means to the client.
//!
//! Lines are scheduled, not counted by a timer: line `k` of client `c` is
//! due at `(k + c / N) / rate` seconds after sending starts (the clients'
//! lines are spread evenly over each interval), whether or not the client
//! is connected then, as lines typed while a client reconnects are kept
//! and sent once it is back. The schedule is pure, so the sampler and the
//! clients compute the same figures from it.

use std::time::Duration;

use nea::protocol::{ErrorCode, Frame};

use super::super::{Protocol, make_line};

/// Bytes per line (with the client and line numbers at its start).
const LINE_BYTES: usize = 32;

/// When each client's lines are due.
#[derive(Debug, Clone, Copy)]
pub(super) struct Schedule {
    /// Clients sharing the schedule; their lines are spread over each
    /// interval.
    pub(super) clients: usize,
    /// Lines per second per client.
    pub(super) rate: f64,
    /// Lines come due from 0 until this, after sending started.
    pub(super) duration: Duration,
}

impl Schedule {
    /// Client `client`'s offset in a line interval, in lines: in [0, 1).
    fn phase(&self, client: usize) -> f64 {
        client as f64 / self.clients.max(1) as f64
    }

    /// How many lines client `client` sends in all: those due before the
    /// end of the run.
    pub(super) fn total(&self, client: usize) -> u64 {
        let lines = self.duration.as_secs_f64() * self.rate - self.phase(client);
        if lines > 0.0 { lines.ceil() as u64 } else { 0 }
    }

    /// Every client's lines, in all.
    pub(super) fn lines(&self) -> u64 {
        (0..self.clients).map(|client| self.total(client)).sum()
    }

    /// How many of client `client`'s lines are due `elapsed` after sending
    /// started.
    pub(super) fn due(&self, client: usize, elapsed: Duration) -> u64 {
        let lines = elapsed.as_secs_f64() * self.rate - self.phase(client);
        if lines < 0.0 {
            0
        } else {
            (lines.floor() as u64)
                .saturating_add(1)
                .min(self.total(client))
        }
    }

    /// Every client's lines due `elapsed` after sending started.
    pub(super) fn due_all(&self, elapsed: Duration) -> u64 {
        (0..self.clients)
            .map(|client| self.due(client, elapsed))
            .sum()
    }

    /// When line `seq` of client `client` is due, after sending started.
    pub(super) fn due_at(&self, client: usize, seq: u64) -> Duration {
        Duration::from_secs_f64((seq as f64 + self.phase(client)) / self.rate)
    }
}

/// The text of line `seq` of client `id`, without its newline.
pub(super) fn line(id: usize, seq: u64) -> String {
    make_line(id, seq, LINE_BYTES, false)
}

/// Lines `seqs` of client `id`, each with its newline: one write.
pub(super) fn batch(id: usize, seqs: std::ops::Range<u64>, out: &mut String) {
    out.clear();
    for seq in seqs {
        out.push_str(&line(id, seq));
        out.push('\n');
    }
}

/// The reply line `seq` of client `id` must get.
pub(super) fn expected(protocol: Protocol, id: usize, seq: u64) -> String {
    let line = line(id, seq);
    match protocol {
        Protocol::Nea => nea::reverse::reverse(&line),
        Protocol::Baseline => line.chars().rev().collect(),
    }
}

/// Which line of client `id` a reply answers, read from the line numbers
/// that start every line (the reply ends with them, reversed); `None` if it
/// names another client or none.
pub(super) fn seq_of(id: usize, reply: &str) -> Option<u64> {
    let line: String = reply.chars().rev().collect();
    let (client, seq) = line.split(' ').next()?.split_once(':')?;
    (client.parse::<usize>().ok()? == id).then_some(())?;
    seq.parse().ok()
}

/// What one line from the server means to a storm client.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Incoming {
    Reply(String),
    /// A per-line error (`line_too_long`, `invalid_utf8`): it answers a line,
    /// wrongly.
    LineError(String),
    /// The server ends the connection (`shutting_down`, `server_full`,
    /// `address_limit`): clientcli reconnects.
    End,
    /// A date, or what this version does not know.
    Other,
}

/// Interprets one line from the server, without its newline.
pub(super) fn incoming(protocol: Protocol, line: &str) -> Incoming {
    if protocol == Protocol::Baseline {
        return Incoming::Reply(line.to_owned());
    }
    match Frame::parse(line) {
        Ok(Frame::String { payload }) => Incoming::Reply(payload),
        Ok(Frame::Error {
            code: ErrorCode::LineTooLong | ErrorCode::InvalidUtf8,
            payload,
        }) => Incoming::LineError(payload),
        Ok(Frame::Error {
            code: ErrorCode::ShuttingDown | ErrorCode::ServerFull | ErrorCode::AddressLimit,
            ..
        }) => Incoming::End,
        _ => Incoming::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(clients: usize, rate: f64, secs: u64) -> Schedule {
        Schedule {
            clients,
            rate,
            duration: Duration::from_secs(secs),
        }
    }

    #[test]
    fn every_line_is_due_once_spread_over_each_interval() {
        let s = schedule(4, 10.0, 2);
        // 20 lines each over 2 s at 10/s, client 1 a quarter interval later.
        assert_eq!((0..4).map(|c| s.total(c)).collect::<Vec<_>>(), [20; 4]);
        assert_eq!(s.lines(), 80);
        assert_eq!(s.due(0, Duration::ZERO), 1);
        assert_eq!(s.due(1, Duration::ZERO), 0);
        assert_eq!(s.due(1, Duration::from_millis(25)), 1);
        assert_eq!(s.due(0, Duration::from_millis(99)), 1);
        assert_eq!(s.due(0, Duration::from_millis(100)), 2);
        assert_eq!(s.due(3, Duration::from_secs(60)), 20);
        assert_eq!(s.due_all(Duration::from_secs(60)), 80);
        assert_eq!(s.due_at(1, 2), Duration::from_millis(225));
        for c in 0..4 {
            for seq in 0..20 {
                // Due at its time, not a moment before.
                let at = s.due_at(c, seq);
                assert_eq!(s.due(c, at + Duration::from_micros(1)), seq + 1);
                if let Some(before) = at.checked_sub(Duration::from_micros(1)) {
                    assert_eq!(s.due(c, before), seq);
                }
            }
        }
        // Slower than one line per run: some clients send none.
        let sparse = schedule(4, 0.25, 2);
        assert_eq!(
            (0..4).map(|c| sparse.total(c)).collect::<Vec<_>>(),
            [1, 1, 0, 0]
        );
    }

    #[test]
    fn replies_name_their_line() {
        let reply = expected(Protocol::Nea, 12, 345);
        assert_eq!(seq_of(12, &reply), Some(345));
        assert_eq!(seq_of(13, &reply), None);
        assert_eq!(seq_of(12, "olleh"), None);
        assert_eq!(
            expected(Protocol::Baseline, 1, 2),
            reply_of(&make_line(1, 2, 32, false))
        );
        let mut out = String::new();
        batch(1, 2..4, &mut out);
        assert_eq!(out, format!("{}\n{}\n", line(1, 2), line(1, 3)));
    }

    fn reply_of(line: &str) -> String {
        line.chars().rev().collect()
    }

    #[test]
    fn frames_that_end_a_connection_are_told_apart() {
        let end = r#"{"msg_type":"error","code":"shutting_down","payload":"bye"}"#;
        assert_eq!(incoming(Protocol::Nea, end), Incoming::End);
        let long = r#"{"msg_type":"error","code":"line_too_long","payload":"no"}"#;
        assert_eq!(
            incoming(Protocol::Nea, long),
            Incoming::LineError("no".into())
        );
        let date = r#"{"msg_type":"date","payload":"2026-12-02T00:00:00.000Z"}"#;
        assert_eq!(incoming(Protocol::Nea, date), Incoming::Other);
        assert_eq!(
            incoming(Protocol::Baseline, "x"),
            Incoming::Reply("x".into())
        );
    }
}
