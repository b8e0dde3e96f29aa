//! The unit of fairness (SPEC §6): which connections count as coming from
//! the same place.
//!
//! One IPv4 address is one source. An IPv6 source is a /64 prefix, because
//! one host is routinely given a whole /64 and can pick any address in it;
//! counting single IPv6 addresses would let it look like 2^64 sources. An
//! IPv4 address seen through an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
//! on a dual-stack listener) is that IPv4 address.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// A connection's source: an IPv4 address, or an IPv6 /64 prefix.
///
/// Invariant: an IPv6 value has its low 64 bits zero, and is never an
/// IPv4-mapped address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Source(IpAddr);

impl From<IpAddr> for Source {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self(IpAddr::V4(v4)),
                None => Self(IpAddr::V6(Ipv6Addr::from_bits(
                    v6.to_bits() & !u128::from(u64::MAX),
                ))),
            },
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/64"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source::from(text.parse::<IpAddr>().expect("an address"))
    }

    #[test]
    fn an_ipv4_address_is_its_own_source() {
        assert_eq!(source("127.0.0.2"), source("127.0.0.2"));
        assert_ne!(source("127.0.0.2"), source("127.0.0.3"));
        assert_eq!(source("127.0.0.2").to_string(), "127.0.0.2");
    }

    #[test]
    fn ipv6_addresses_in_one_slash_64_are_one_source() {
        assert_eq!(source("2001:db8:1:2::1"), source("2001:db8:1:2:ffff::9"));
        assert_ne!(source("2001:db8:1:2::1"), source("2001:db8:1:3::1"));
        assert_eq!(
            source("2001:db8:1:2:aaaa::1").to_string(),
            "2001:db8:1:2::/64"
        );
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_source() {
        assert_eq!(source("::ffff:192.0.2.7"), source("192.0.2.7"));
        assert_eq!(source("::ffff:192.0.2.7").to_string(), "192.0.2.7");
    }
}
