//! Where the stalled sockets come from: a block of loopback addresses, one
//! source each (the server counts an IPv4 address as one source), and the
//! limits of this machine that bound how many sockets they may hold.
//!
//! Linux routes all of 127.0.0.0/8 to the loopback interface, so a socket
//! can bind any of its addresses with no setup. Each stalled socket binds
//! its address with port 0, so the kernel takes its port from the
//! ephemeral range, per address: an address can hold at most that many
//! sockets to one server.

use std::net::Ipv4Addr;

use super::super::LoadError;

/// File descriptors kept free beside the stalled sockets: the measured
/// handshakes, the runtime's own, standard streams.
const SPARE_DESCRIPTORS: u64 = 64;

/// The block of stalling addresses: `count` addresses from `first` on.
///
/// Invariant (checked with the flags): the block lies within
/// 127.0.0.1 – 127.255.255.254.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sources {
    pub first: Ipv4Addr,
    pub count: usize,
}

impl Sources {
    /// Address `n` of the block (0-based).
    pub(crate) fn nth(&self, n: usize) -> Ipv4Addr {
        Ipv4Addr::from_bits(self.first.to_bits() + n as u32)
    }

    /// The block's last address.
    pub(crate) fn last(&self) -> Ipv4Addr {
        self.nth(self.count.saturating_sub(1))
    }

    /// Whether `address` is one of the block's.
    pub(crate) fn contains(&self, address: Ipv4Addr) -> bool {
        let (first, bits) = (self.first.to_bits(), address.to_bits());
        bits >= first && u64::from(bits - first) < self.count as u64
    }

    /// Why the block is not one of loopback's usable addresses, if it is
    /// not.
    pub(crate) fn outside_loopback(&self) -> Option<String> {
        let lowest = Ipv4Addr::new(127, 0, 0, 1).to_bits();
        let highest = u64::from(Ipv4Addr::new(127, 255, 255, 254).to_bits());
        let last = u64::from(self.first.to_bits()) + self.count as u64 - 1;
        if self.first.to_bits() < lowest || last > highest {
            return Some(format!(
                "{} addresses from {} do not fit in 127.0.0.1 – 127.255.255.254",
                self.count, self.first
            ));
        }
        None
    }
}

/// Checks that this machine lets every address hold `per_address` sockets
/// and this process hold `total` of them; `open_files` is its open-file
/// limit (already raised as far as it goes).
pub(crate) fn check_limits(
    per_address: usize,
    total: usize,
    open_files: u64,
) -> Result<(), LoadError> {
    if let Some((low, high)) = ephemeral_ports()
        && per_address as u64 > u64::from(high.saturating_sub(low)) + 1
    {
        return Err(LoadError::Failed(format!(
            "{per_address} sockets per address do not fit in the ephemeral port range \
             {low}-{high} (net.ipv4.ip_local_port_range): use fewer per address and more addresses"
        )));
    }
    let needed = total as u64 + SPARE_DESCRIPTORS;
    if needed > open_files {
        return Err(LoadError::Failed(format!(
            "{total} stalled sockets need {needed} open files and this process may have \
             {open_files}: raise the hard limit (ulimit -Hn, LimitNOFILE)"
        )));
    }
    Ok(())
}

/// The kernel's ephemeral port range, if it can be read.
fn ephemeral_ports() -> Option<(u16, u16)> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    let mut ports = text.split_whitespace().map(str::parse::<u16>);
    Some((ports.next()?.ok()?, ports.next()?.ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_is_counted_from_its_first_address() {
        let block = Sources {
            first: Ipv4Addr::new(127, 1, 0, 250),
            count: 10,
        };
        assert_eq!(block.nth(0), Ipv4Addr::new(127, 1, 0, 250));
        assert_eq!(block.last(), Ipv4Addr::new(127, 1, 1, 3));
        assert!(block.contains(Ipv4Addr::new(127, 1, 1, 0)));
        assert!(!block.contains(Ipv4Addr::new(127, 1, 1, 4)));
        assert!(!block.contains(Ipv4Addr::new(127, 0, 0, 3)));
        assert_eq!(block.outside_loopback(), None);
    }

    #[test]
    fn a_block_must_stay_within_loopback() {
        let past_the_end = Sources {
            first: Ipv4Addr::new(127, 255, 255, 250),
            count: 10,
        };
        assert!(past_the_end.outside_loopback().is_some());
        let not_loopback = Sources {
            first: Ipv4Addr::new(10, 0, 0, 1),
            count: 1,
        };
        assert!(not_loopback.outside_loopback().is_some());
    }

    #[test]
    fn limits_are_checked_before_the_run() {
        assert!(check_limits(2, 1000, 20_000).is_ok());
        let err = check_limits(2, 1000, 500).expect_err("too few files");
        assert!(err.to_string().contains("1064 open files"), "{err}");
        let err = check_limits(100_000, 100_000, u64::MAX).expect_err("too many ports");
        assert!(err.to_string().contains("ephemeral port range"), "{err}");
    }
}
