//! What `/proc` says about a process: CPU time, resident memory, context
//! switches. Summed over all its threads.

use std::fs;

/// One reading of a process's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Sample {
    /// CPU time on all threads, in nanoseconds (`/proc/PID/task/*/schedstat`,
    /// nanosecond resolution, unlike the 10 ms ticks of `/proc/PID/stat`).
    pub cpu_ns: u64,
    /// Resident set size, in KiB.
    pub rss_kib: u64,
    /// The anonymous part of it (heap and stacks, not the program's own
    /// code pages), in KiB.
    pub rss_anon_kib: u64,
    /// Voluntary and involuntary context switches, all threads.
    pub context_switches: u64,
}

impl Sample {
    /// Reads the counters of process `pid`; `None` if it is gone.
    pub(crate) fn of(pid: u32) -> Option<Self> {
        let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let mut sample = Self {
            rss_kib: field(&status, "VmRSS:"),
            rss_anon_kib: field(&status, "RssAnon:"),
            ..Self::default()
        };
        for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
            let path = task.path();
            if let Ok(schedstat) = fs::read_to_string(path.join("schedstat")) {
                sample.cpu_ns += schedstat
                    .split_whitespace()
                    .next()
                    .and_then(|ns| ns.parse::<u64>().ok())
                    .unwrap_or(0);
            }
            if let Ok(status) = fs::read_to_string(path.join("status")) {
                sample.context_switches += field(&status, "voluntary_ctxt_switches:")
                    + field(&status, "nonvoluntary_ctxt_switches:");
            }
        }
        Some(sample)
    }

    /// Counters that grew between `earlier` and `self` (RSS is `self`'s).
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            cpu_ns: self.cpu_ns.saturating_sub(earlier.cpu_ns),
            rss_kib: self.rss_kib,
            rss_anon_kib: self.rss_anon_kib,
            context_switches: self
                .context_switches
                .saturating_sub(earlier.context_switches),
        }
    }
}

fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|line| line.strip_prefix(name))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let before = Sample::of(std::process::id()).expect("this process");
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let after = Sample::of(std::process::id()).expect("this process");
        assert!(before.rss_kib > 0);
        assert!(before.rss_anon_kib > 0 && before.rss_anon_kib <= before.rss_kib);
        assert!(after.since(&before).cpu_ns > 0);
        assert!(Sample::of(u32::MAX).is_none());
    }
}
