//! The PROXY protocol (SPEC §12): behind a TCP load balancer, the client's
//! address comes from the header the balancer sends first, not from the
//! socket.
//!
//! Only connections from the networks of `--proxy-protocol-from`
//! ([`TrustedProxies`]) may, and must, begin with a header, version 1
//! (text) or 2 (binary); [`ppp`] parses it. The header is read byte-exact,
//! so that not one byte of the TLS handshake after it is consumed: a
//! version 2 header's length is in its first 16 bytes, and a version 1
//! header (at most 107 bytes) is read up to its CRLF. Either is bounded
//! ([`MAX_HEADER_BYTES`]) and must arrive within the handshake deadline.
//!
//! What a header names:
//! - v1 `TCP4`/`TCP6`, v2 `PROXY` with an IPv4 or IPv6 address: the
//!   client's address and port, used for everything an address is used for
//!   (log lines, the handshake queue, per-address limits).
//! - v2 `LOCAL` (a balancer's own health check), v1 `UNKNOWN`, and v2
//!   `PROXY` with an unspecified or UNIX-socket address: no client address;
//!   the connection is served as one from the balancer itself, as the
//!   protocol's specification asks.
//!
//! A header that is missing, malformed, too long or late ends the
//! connection; so does one from a socket outside the trusted networks,
//! seen from its first bytes ([`looks_like_a_header`]): an operator who
//! forgot `--proxy-protocol-from` is told so, rather than shown a TLS
//! error.

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};

/// A network of trusted balancers (`10.0.0.0/8`), as `--proxy-protocol-from` names them.
pub use ipnet::IpNet;
use ppp::v1;
use ppp::v2;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;

/// Longest header accepted, TLVs included. HAProxy's `send-proxy-v2` in TCP
/// mode sends 28 (IPv4) or 52 (IPv6) bytes; this leaves room for the TLVs
/// a balancer may add (unique id, authority, VPC endpoint) while keeping a
/// hostile length from costing memory.
pub(crate) const MAX_HEADER_BYTES: usize = 4096;

/// The fixed part of a version 2 header: its signature, version and
/// command, family and protocol, and the length of the rest.
const V2_FIXED_BYTES: usize = 16;

/// The shortest version 1 header, `PROXY UNKNOWN\r\n`, and so the number
/// of bytes that can be read at once without reading past a header.
const V1_SHORTEST_BYTES: usize = 15;

/// How a version 1 header begins: the word and its separator.
const V1_SIGNATURE: &[u8] = b"PROXY ";

/// The longest version 1 header, as the protocol's specification fixes it.
const V1_LONGEST_BYTES: usize = 107;

/// The networks whose connections begin with a PROXY protocol header
/// (`--proxy-protocol-from`). Empty: no connection may send one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
}

impl TrustedProxies {
    /// The given networks; a single address is a network of one.
    pub fn new(networks: impl IntoIterator<Item = IpNet>) -> Self {
        let mut networks: Vec<IpNet> = networks.into_iter().map(|net| net.trunc()).collect();
        networks.sort_unstable();
        networks.dedup();
        Self { networks }
    }

    /// Whether no network is trusted (the PROXY protocol is off).
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty()
    }

    /// Whether a connection from `ip` must begin with a header. An
    /// IPv4-mapped IPv6 address (a dual-stack listener) is its IPv4
    /// address.
    pub(crate) fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.networks.iter().any(|net| net.contains(&ip))
    }
}

impl fmt::Display for TrustedProxies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, net) in self.networks.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{net}")?;
        }
        Ok(())
    }
}

/// Parses one `--proxy-protocol-from` item: a network in CIDR notation
/// (`10.0.0.0/8`, `fd00::/8`) or a single address (`10.0.0.5`).
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(IpNet::from(ip));
    }
    text.parse::<IpNet>().map_err(|_| {
        format!("{text:?} is not an address or a network (such as 10.0.0.0/8 or fd00::/8)")
    })
}

/// What a valid header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// The client's address and port, as the balancer saw them.
    Client(SocketAddr),
    /// No client address (v2 `LOCAL`, v1 `UNKNOWN`, an unspecified or
    /// UNIX-socket address): a connection from the balancer itself.
    Local,
}

/// Why a trusted connection's header was refused. A value, not an error:
/// each ends the connection with a rate-limited log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The first bytes are not a header's signature.
    Missing,
    /// A header, but not a valid one; the parser's reason.
    Malformed(String),
    /// A version 2 header whose length is over [`MAX_HEADER_BYTES`], or a
    /// version 1 header with no CRLF within its longest length.
    TooLong(usize),
    /// The connection ended (or failed) before the header was complete.
    Closed,
    /// The handshake deadline passed before the header was complete.
    TimedOut,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Missing => {
                f.write_str("no PROXY protocol header from an address in --proxy-protocol-from")
            }
            Self::Malformed(why) => write!(f, "malformed PROXY protocol header: {why}"),
            Self::TooLong(bytes) => {
                write!(f, "PROXY protocol header too long ({bytes} bytes or more)")
            }
            Self::Closed => f.write_str("closed before its PROXY protocol header was complete"),
            Self::TimedOut => {
                f.write_str("no complete PROXY protocol header within the handshake deadline")
            }
        }
    }
}

/// Reads the header at the start of `io`, and nothing after it.
pub(crate) async fn read_header<IO>(io: &mut IO) -> Result<Header, Refusal>
where
    IO: AsyncRead + Unpin,
{
    let mut buf = [0u8; V1_LONGEST_BYTES];
    read_exact(io, &mut buf[..V1_SHORTEST_BYTES]).await?;
    if buf.starts_with(v2::PROTOCOL_PREFIX) {
        read_v2(io, &buf[..V1_SHORTEST_BYTES]).await
    } else if buf.starts_with(V1_SIGNATURE) {
        let mut len = V1_SHORTEST_BYTES;
        while !buf[..len].ends_with(b"\r\n") {
            if len == V1_LONGEST_BYTES {
                return Err(Refusal::TooLong(len));
            }
            read_exact(io, &mut buf[len..=len]).await?;
            len += 1;
        }
        parse_v1(&buf[..len])
    } else {
        Err(Refusal::Missing)
    }
}

/// The rest of a version 2 header whose first `start` bytes are read.
async fn read_v2<IO>(io: &mut IO, start: &[u8]) -> Result<Header, Refusal>
where
    IO: AsyncRead + Unpin,
{
    let mut fixed = [0u8; V2_FIXED_BYTES];
    fixed[..start.len()].copy_from_slice(start);
    read_exact(io, &mut fixed[start.len()..]).await?;
    let rest = usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    let total = V2_FIXED_BYTES + rest;
    if total > MAX_HEADER_BYTES {
        return Err(Refusal::TooLong(total));
    }
    let mut header = vec![0u8; total];
    header[..V2_FIXED_BYTES].copy_from_slice(&fixed);
    read_exact(io, &mut header[V2_FIXED_BYTES..]).await?;
    parse_v2(&header)
}

async fn read_exact<IO>(io: &mut IO, buf: &mut [u8]) -> Result<(), Refusal>
where
    IO: AsyncRead + Unpin,
{
    match io.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(_) => Err(Refusal::Closed),
    }
}

/// A complete version 1 header (ending in CRLF).
fn parse_v1(bytes: &[u8]) -> Result<Header, Refusal> {
    let header = v1::Header::try_from(bytes).map_err(|err| Refusal::Malformed(err.to_string()))?;
    Ok(match header.addresses {
        v1::Addresses::Tcp4(ip) => Header::Client(SocketAddr::new(
            IpAddr::V4(ip.source_address),
            ip.source_port,
        )),
        v1::Addresses::Tcp6(ip) => Header::Client(SocketAddr::new(
            IpAddr::V6(ip.source_address),
            ip.source_port,
        )),
        v1::Addresses::Unknown => Header::Local,
    })
}

/// A complete version 2 header (its stated length read), TLVs included:
/// a TLV that runs past the header makes it malformed.
fn parse_v2(bytes: &[u8]) -> Result<Header, Refusal> {
    let header = v2::Header::try_from(bytes).map_err(|err| Refusal::Malformed(err.to_string()))?;
    if let Some(Err(err)) = header.tlvs().find(Result::is_err) {
        return Err(Refusal::Malformed(err.to_string()));
    }
    if header.command == v2::Command::Local {
        return Ok(Header::Local);
    }
    Ok(match header.addresses {
        v2::Addresses::IPv4(ip) => Header::Client(SocketAddr::new(
            IpAddr::V4(ip.source_address),
            ip.source_port,
        )),
        v2::Addresses::IPv6(ip) => Header::Client(SocketAddr::new(
            IpAddr::V6(ip.source_address),
            ip.source_port,
        )),
        v2::Addresses::Unspecified | v2::Addresses::Unix(_) => Header::Local,
    })
}

/// Reads the PROXY protocol header (v1 or v2) at the start of `bytes`,
/// exactly as the server reads one from a trusted balancer's connection:
/// the client address it names (`None`: the balancer itself, a v2 `LOCAL`
/// header or a v1 `UNKNOWN`), or why it is refused, in one sentence; and
/// how many bytes the header took (no byte after it is read). The fuzz
/// targets check the server's parser through it.
pub fn read_proxy_header(bytes: &[u8]) -> (Result<Option<SocketAddr>, String>, usize) {
    let mut input = bytes;
    let header = {
        let read = std::pin::pin!(read_header(&mut input));
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        // Reading from a slice never waits: one poll completes.
        match read.poll(&mut cx) {
            std::task::Poll::Ready(header) => header,
            std::task::Poll::Pending => Err(Refusal::Closed),
        }
    };
    let taken = bytes.len() - input.len();
    let header = match header {
        Ok(Header::Client(addr)) => Ok(Some(addr)),
        Ok(Header::Local) => Ok(None),
        Err(refusal) => Err(refusal.to_string()),
    };
    (header, taken)
}

/// Whether a socket's first bytes, without reading them, are the start of
/// a PROXY protocol header (for a connection that must not send one). A TLS
/// handshake begins with a record type (22), never with `P` or CR; waits
/// for the first bytes to arrive.
pub(crate) async fn looks_like_a_header(tcp: &TcpStream) -> bool {
    let mut first = [0u8; 12];
    match tcp.peek(&mut first).await {
        Ok(n) if n > 0 => starts_a_header(&first[..n]),
        _ => false,
    }
}

/// Whether `bytes` could be the start of a version 1 or 2 header.
fn starts_a_header(bytes: &[u8]) -> bool {
    let prefix_of = |signature: &[u8]| {
        let n = bytes.len().min(signature.len());
        n > 0 && bytes[..n] == signature[..n]
    };
    prefix_of(V1_SIGNATURE) || prefix_of(v2::PROTOCOL_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::{Ipv4Addr, Ipv6Addr};

    use tokio::io::AsyncWriteExt;

    /// Reads a header from `bytes`, and what is left after it.
    fn read(bytes: &[u8]) -> (Result<Header, Refusal>, Vec<u8>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut input = bytes;
            let header = read_header(&mut input).await;
            (header, input.to_vec())
        })
    }

    fn v2_header(
        command: v2::Command,
        addresses: impl Into<v2::Addresses>,
        tlvs: &[(u8, &[u8])],
    ) -> Vec<u8> {
        let mut builder = v2::Builder::with_addresses(
            v2::Version::Two | command,
            v2::Protocol::Stream,
            addresses,
        );
        for (kind, value) in tlvs {
            builder = builder.write_tlv(*kind, value).expect("a TLV");
        }
        builder.build().expect("a header")
    }

    const CLIENT_HELLO_START: &[u8] = &[0x16, 0x03, 0x01, 0x02, 0x00];

    fn followed_by_tls(header: &[u8]) -> Vec<u8> {
        [header, CLIENT_HELLO_START].concat()
    }

    fn v4(a: [u8; 4], port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), port)
    }

    #[test]
    fn v1_tcp4_names_the_client_and_leaves_the_tls_bytes_unread() {
        let input = followed_by_tls(b"PROXY TCP4 192.0.2.7 198.51.100.1 51234 3443\r\n");
        let (header, rest) = read(&input);
        assert_eq!(header, Ok(Header::Client(v4([192, 0, 2, 7], 51234))));
        assert_eq!(rest, CLIENT_HELLO_START);
    }

    #[test]
    fn v1_tcp6_names_the_client() {
        let input = followed_by_tls(b"PROXY TCP6 2001:db8::7 2001:db8::1 40000 3443\r\n");
        let (header, rest) = read(&input);
        let ip: Ipv6Addr = "2001:db8::7".parse().expect("an address");
        assert_eq!(
            header,
            Ok(Header::Client(SocketAddr::new(IpAddr::V6(ip), 40000)))
        );
        assert_eq!(rest, CLIENT_HELLO_START);
    }

    #[test]
    fn v1_unknown_is_the_balancer_itself() {
        for line in [
            &b"PROXY UNKNOWN\r\n"[..],
            b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n",
        ] {
            let (header, rest) = read(&followed_by_tls(line));
            assert_eq!(header, Ok(Header::Local), "{line:?}");
            assert_eq!(rest, CLIENT_HELLO_START);
        }
    }

    #[test]
    fn v2_proxy_names_the_client_over_ipv4_and_ipv6_with_or_without_tlvs() {
        let client4 = v4([203, 0, 113, 9], 61000);
        let server4 = v4([10, 0, 0, 1], 3443);
        let client6: SocketAddr = "[2001:db8::9]:62000".parse().expect("an address");
        let server6: SocketAddr = "[2001:db8::1]:3443".parse().expect("an address");
        let unique_id: &[u8] = b"0123456789abcdef";
        for (addresses, client) in [((client4, server4), client4), ((client6, server6), client6)] {
            for tlvs in [&[][..], &[(0x05, unique_id), (0x04, &[][..])][..]] {
                let header = v2_header(v2::Command::Proxy, addresses, tlvs);
                let (parsed, rest) = read(&followed_by_tls(&header));
                assert_eq!(parsed, Ok(Header::Client(client)), "{tlvs:?}");
                assert_eq!(rest, CLIENT_HELLO_START);
            }
        }
    }

    #[test]
    fn v2_local_and_addressless_headers_are_the_balancer_itself() {
        let pair = (v4([127, 0, 0, 1], 1), v4([127, 0, 0, 1], 2));
        let local = v2_header(v2::Command::Local, pair, &[]);
        let unspecified = v2_header(v2::Command::Proxy, v2::Addresses::Unspecified, &[]);
        let unix = v2_header(
            v2::Command::Proxy,
            v2::Addresses::Unix(v2::Unix::new([1; 108], [2; 108])),
            &[],
        );
        let bare_local = v2_header(v2::Command::Local, v2::Addresses::Unspecified, &[]);
        for header in [local, unspecified, unix, bare_local] {
            let (parsed, rest) = read(&followed_by_tls(&header));
            assert_eq!(parsed, Ok(Header::Local));
            assert_eq!(rest, CLIENT_HELLO_START);
        }
    }

    #[test]
    fn a_connection_that_starts_with_tls_or_junk_has_no_header() {
        for input in [
            &[
                0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03, 0, 0, 0, 0, 0,
            ][..],
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"proxy tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY(TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        ] {
            let (refused, rest) = read(input);
            assert_eq!(refused, Err(Refusal::Missing), "{input:?}");
            assert!(input.len() - rest.len() <= V1_SHORTEST_BYTES, "{input:?}");
        }
    }

    #[test]
    fn malformed_v1_headers_are_refused_with_the_parsers_reason() {
        for line in [
            &b"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n"[..],
            b"PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
            b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
        ] {
            let (parsed, _) = read(line);
            assert!(
                matches!(parsed, Err(Refusal::Malformed(_))),
                "{:?}: {parsed:?}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn a_v1_header_without_crlf_in_its_longest_length_is_too_long() {
        let mut line = b"PROXY TCP4 ".to_vec();
        line.resize(300, b'1');
        assert_eq!(read(&line).0, Err(Refusal::TooLong(V1_LONGEST_BYTES)));
    }

    #[test]
    fn malformed_v2_headers_are_refused() {
        let pair = (v4([1, 2, 3, 4], 1), v4([5, 6, 7, 8], 2));
        let good = v2_header(v2::Command::Proxy, pair, &[]);
        let mut bad_version = good.clone();
        bad_version[12] = 0x11;
        let mut bad_command = good.clone();
        bad_command[12] = 0x2f;
        let mut bad_family = good.clone();
        bad_family[13] = 0x41;
        let mut short_addresses = good[..16].to_vec();
        short_addresses[15] = 4;
        short_addresses.extend_from_slice(&[1, 2, 3, 4]);
        // A TLV claiming 200 bytes where 3 remain.
        let mut bad_tlv = v2_header(v2::Command::Proxy, pair, &[]);
        bad_tlv.extend_from_slice(&[0x05, 0x00, 0xc8]);
        let rest = u16::try_from(bad_tlv.len() - 16).expect("short");
        bad_tlv[14..16].copy_from_slice(&rest.to_be_bytes());
        for header in [
            bad_version,
            bad_command,
            bad_family,
            short_addresses,
            bad_tlv,
        ] {
            let (parsed, _) = read(&followed_by_tls(&header));
            assert!(
                matches!(parsed, Err(Refusal::Malformed(_))),
                "{header:?}: {parsed:?}"
            );
        }
    }

    #[test]
    fn a_v2_header_longer_than_the_bound_is_refused_before_it_is_read() {
        let mut header = v2_header(
            v2::Command::Proxy,
            (v4([1, 2, 3, 4], 1), v4([5, 6, 7, 8], 2)),
            &[],
        );
        header[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert_eq!(
            read(&header).0,
            Err(Refusal::TooLong(V2_FIXED_BYTES + usize::from(u16::MAX)))
        );
        let mut exactly = header[..16].to_vec();
        let rest = u16::try_from(MAX_HEADER_BYTES - 16).expect("short");
        exactly[13] = 0x00; // unspecified family: any length of TLVs
        exactly[14..16].copy_from_slice(&rest.to_be_bytes());
        exactly.resize(MAX_HEADER_BYTES, 0);
        exactly[16..19].copy_from_slice(&[0x04, 0x0f, 0xfa]); // one NOOP TLV
        assert_eq!(read(&exactly).0, Ok(Header::Local));
    }

    #[test]
    fn every_truncation_of_a_valid_header_is_closed_not_accepted() {
        let pair = (v4([1, 2, 3, 4], 1), v4([5, 6, 7, 8], 2));
        let headers = [
            v2_header(v2::Command::Proxy, pair, &[(0x05, b"id")]),
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec(),
        ];
        for header in headers {
            for cut in 0..header.len() {
                let (parsed, _) = read(&header[..cut]);
                assert!(
                    matches!(parsed, Err(Refusal::Closed | Refusal::Missing)),
                    "cut at {cut}: {parsed:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn a_header_that_arrives_a_byte_at_a_time_is_read() {
        let header = b"PROXY TCP4 192.0.2.1 192.0.2.2 1000 3443\r\n";
        let (mut ours, mut theirs) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            for byte in header.iter().chain(CLIENT_HELLO_START) {
                theirs.write_all(&[*byte]).await.expect("write");
                tokio::task::yield_now().await;
            }
            theirs
        });
        let parsed = read_header(&mut ours).await;
        assert_eq!(parsed, Ok(Header::Client(v4([192, 0, 2, 1], 1000))));
        let _theirs = writer.await.expect("the writer");
        let mut rest = [0u8; 5];
        ours.read_exact(&mut rest).await.expect("the TLS bytes");
        assert_eq!(rest, CLIENT_HELLO_START);
    }

    #[test]
    fn the_start_of_either_signature_is_a_header_and_tls_is_not() {
        assert!(starts_a_header(b"PROXY TCP4 1.2.3.4"));
        assert!(starts_a_header(b"PRO"));
        assert!(starts_a_header(&v2::PROTOCOL_PREFIX[..5]));
        assert!(starts_a_header(v2::PROTOCOL_PREFIX));
        assert!(!starts_a_header(&[0x16, 0x03, 0x01]));
        assert!(!starts_a_header(b"GET /"));
        assert!(!starts_a_header(b""));
    }

    #[test]
    fn trusted_networks_contain_their_addresses_and_mapped_ones() {
        let trusted = TrustedProxies::new(
            ["10.0.0.0/8", "192.0.2.5", "fd00::/8"]
                .map(|net| parse_network(net).expect("a network")),
        );
        assert!(trusted.trusts("10.1.2.3".parse().expect("ip")));
        assert!(trusted.trusts("::ffff:10.1.2.3".parse().expect("ip")));
        assert!(trusted.trusts("192.0.2.5".parse().expect("ip")));
        assert!(!trusted.trusts("192.0.2.6".parse().expect("ip")));
        assert!(trusted.trusts("fd12::1".parse().expect("ip")));
        assert!(!trusted.trusts("2001:db8::1".parse().expect("ip")));
        assert!(!TrustedProxies::default().trusts("10.1.2.3".parse().expect("ip")));
        assert_eq!(trusted.to_string(), "10.0.0.0/8,192.0.2.5/32,fd00::/8");
    }

    #[test]
    fn a_network_with_host_bits_set_is_its_network_and_junk_is_refused() {
        let trusted = TrustedProxies::new([parse_network("10.1.2.3/8").expect("a network")]);
        assert_eq!(trusted.to_string(), "10.0.0.0/8");
        for junk in [
            "",
            "10.0.0.0/33",
            "10.0.0",
            "example.com",
            "::/129",
            "10.0.0.0/",
        ] {
            let err = parse_network(junk).expect_err(junk);
            assert!(err.contains("is not an address or a network"), "{err}");
        }
    }
}
