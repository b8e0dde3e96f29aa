//! The standard process metrics (`process_*`, as every Prometheus client
//! library exports them), read from `/proc/self` at each scrape: memory,
//! open and allowed file descriptors, CPU time, and when the process
//! started. Nothing is kept between scrapes and nothing runs between them.
//!
//! A value that cannot be read (another kernel, a sandbox hiding `/proc`)
//! is left out of the scrape rather than reported as 0.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// The `process_*` metrics, read at each scrape.
#[derive(Debug, Default)]
pub(super) struct ProcessMetrics;

/// One reading of `/proc/self`.
#[derive(Debug, Default, PartialEq)]
struct Reading {
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let reading = Reading::now();
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                reading.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                reading.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                reading.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors",
                reading.max_fds,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value.and_then(|v| i64::try_from(v).ok()) {
                let gauge = ConstGauge::new(value);
                gauge.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    gauge.metric_type(),
                )?)?;
            }
        }
        if let Some(start) = reading.start_time_seconds {
            let gauge = ConstGauge::new(start);
            let help = "Start time of the process since the Unix epoch, in seconds";
            gauge.encode(encoder.encode_descriptor(
                "process_start_time_seconds",
                help,
                None,
                gauge.metric_type(),
            )?)?;
        }
        if let Some(seconds) = reading.cpu_seconds {
            let counter = ConstCounter::new(seconds);
            let help = "Total user and system CPU time spent, in seconds";
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

impl Reading {
    /// This process, now.
    fn now() -> Self {
        let ticks = clock_ticks_per_second();
        let page = page_size();
        let stat = std::fs::read_to_string("/proc/self/stat").ok();
        let boot = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|stat| boot_time(&stat));
        let mut reading = stat
            .as_deref()
            .map(|stat| from_stat(stat, ticks, page, boot))
            .unwrap_or_default();
        reading.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64);
        reading.max_fds = Some(crate::limits::open_file_limit()).filter(|&n| n > 0);
        reading
    }
}

/// What `/proc/self/stat` says, given the clock ticks per second, the page
/// size and the boot time (seconds since the epoch).
fn from_stat(stat: &str, ticks: f64, page: u64, boot: Option<f64>) -> Reading {
    // The command name (field 2) is in parentheses and may hold spaces:
    // the fields that follow are counted from its closing one.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return Reading::default();
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `fields[0]` is field 3 (state): field N is `fields[N - 3]`.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let cpu = field(14)
        .zip(field(15))
        .map(|(user, system)| (user + system) as f64 / ticks);
    let start = field(22)
        .zip(boot)
        .map(|(start, boot)| boot + start as f64 / ticks);
    Reading {
        resident_bytes: field(24).map(|pages| pages * page),
        virtual_bytes: field(23),
        cpu_seconds: cpu,
        start_time_seconds: start,
        ..Reading::default()
    }
}

/// The boot time in `/proc/stat` (`btime`), in seconds since the epoch.
fn boot_time(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|seconds| seconds.trim().parse().ok())
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY-free: sysconf through nix, which checks the result.
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |ticks| ticks as f64)
}

fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .and_then(|size| u64::try_from(size).ok())
        .unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_memory_cpu_and_start() {
        // A real line's shape, with a command name holding a space and a
        // parenthesis.
        let stat = "4242 (nea (test) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 \
                    250 50 0 0 20 0 3 0 1000 123456789 300 18446744073709551615 0 0 0";
        let reading = from_stat(stat, 100.0, 4096, Some(1_700_000_000.0));
        assert_eq!(reading.cpu_seconds, Some(3.0));
        assert_eq!(reading.start_time_seconds, Some(1_700_000_010.0));
        assert_eq!(reading.virtual_bytes, Some(123_456_789));
        assert_eq!(reading.resident_bytes, Some(300 * 4096));
        assert_eq!(from_stat("garbage", 100.0, 4096, None), Reading::default());
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000.0)
        );
    }

    #[test]
    fn this_process_reads_as_running_with_memory_and_descriptors() {
        let reading = Reading::now();
        assert!(reading.resident_bytes.is_some_and(|b| b > 0));
        assert!(reading.open_fds.is_some_and(|n| n >= 3));
        assert!(
            reading
                .max_fds
                .is_some_and(|n| n >= reading.open_fds.unwrap_or(0))
        );
        let start = reading.start_time_seconds.expect("a start time");
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!(start <= now + 1.0 && start > now - 24.0 * 3600.0, "{start}");
    }
}
