//! Noticing a peer whose path died without a word (SPEC §13).
//!
//! On loopback a peer that goes away says so at once (FIN or RST). On real
//! networks a path dies silently: a laptop sleeps, a NAT forgets its
//! mapping, a cable is pulled. Linux then retransmits unacknowledged data
//! for about fifteen minutes before it gives up, and a connection with
//! nothing to send lives for ever. Two socket options bound both cases to
//! the dead-peer timeout `D`, with no change to the protocol and no work
//! while data flows:
//!
//! - `TCP_USER_TIMEOUT = D`: data sent and not acknowledged for `D` ends
//!   the connection (the case of a client that gets dates);
//! - TCP keepalive, first probe after `D/3` with nothing received, then
//!   one every `D/6`: a connection with nothing to send (a long date
//!   period, an idle client) sends probes, which a live peer's kernel
//!   answers whatever its program does; with the user timeout set, Linux
//!   ends the connection at the first probe that finds nothing received
//!   for `D`. So the peer is given up within `D` plus one probe interval.
//!
//! Probes go out only after a third of `D` with nothing received: a client
//! that gets dates every 10 s acknowledges each, so with the default `D`
//! of 60 s no probe is ever sent to it. The connection then fails with
//! `ETIMEDOUT` ([`gave_up`]). (Cloudflare's "When TCP sockets refuse to
//! die" explains the two options and how they interact.)

use std::io;
use std::time::Duration;

/// Sets the dead-peer options on `tcp` for a timeout of `timeout`. A socket
/// that refuses them keeps the kernel's defaults: it still works, and a
/// dead peer is noticed as late as it was before.
pub(crate) fn watch(tcp: &tokio::net::TcpStream, timeout: Duration) {
    let socket = socket2::SockRef::from(tcp);
    let _ = socket.set_tcp_keepalive(&keepalive(timeout));
    let _ = socket.set_tcp_user_timeout(Some(timeout));
}

/// The keepalive schedule for `timeout`: the first probe after a third of
/// it, then one every sixth, four in all (the count matters only where the
/// user timeout is not honoured). Whole seconds, at least one, as the
/// kernel counts them.
fn keepalive(timeout: Duration) -> socket2::TcpKeepalive {
    let seconds = |divisor: u64| Duration::from_secs(timeout.as_secs().div_ceil(divisor).max(1));
    socket2::TcpKeepalive::new()
        .with_time(seconds(3))
        .with_interval(seconds(6))
        .with_retries(4)
}

/// Whether `err` says the kernel gave up on the peer: the user timeout or
/// the keepalive probes found nobody there.
pub(crate) fn gave_up(err: &io::Error) -> bool {
    err.raw_os_error() == Some(libc::ETIMEDOUT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both ends of a loopback connection.
    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn the_default_sets_a_minute_of_user_timeout_and_probes_from_twenty_seconds() {
        let (tcp, _peer) = pair().await;
        watch(&tcp, crate::DEFAULT_DEAD_PEER_TIMEOUT);
        let socket = socket2::SockRef::from(&tcp);
        assert!(socket.keepalive().expect("SO_KEEPALIVE"));
        assert_eq!(
            socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            Duration::from_secs(20)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            Duration::from_secs(10)
        );
        assert_eq!(socket.tcp_keepalive_retries().expect("TCP_KEEPCNT"), 4);
    }

    #[tokio::test]
    async fn short_timeouts_probe_every_second_at_least() {
        let (tcp, _peer) = pair().await;
        watch(&tcp, Duration::from_secs(1));
        let socket = socket2::SockRef::from(&tcp);
        assert_eq!(
            socket.tcp_keepalive_time().expect("TCP_KEEPIDLE"),
            Duration::from_secs(1)
        );
        assert_eq!(
            socket.tcp_keepalive_interval().expect("TCP_KEEPINTVL"),
            Duration::from_secs(1)
        );
        assert_eq!(
            socket.tcp_user_timeout().expect("TCP_USER_TIMEOUT"),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn only_a_timed_out_connection_is_a_dead_peer() {
        assert!(gave_up(&io::Error::from_raw_os_error(libc::ETIMEDOUT)));
        assert!(!gave_up(&io::Error::from_raw_os_error(libc::ECONNRESET)));
        assert!(!gave_up(&io::ErrorKind::TimedOut.into()));
    }
}
