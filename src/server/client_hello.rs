//! A connection's ClientHello, read before the connection takes a
//! handshake slot (SPEC §6, "Fair to many addresses").
//!
//! A handshake slot bounds the costly part of a handshake: the key
//! exchange and the signature, the session's buffers. A connection that
//! has not sent its whole ClientHello has cost nothing of that yet, but
//! when it took its slot at once, stalled handshakes spread over hundreds
//! of addresses (a byte a second each, never completing their first
//! flight) held every slot until their deadline, and a fresh address
//! waited its turn behind all of them: tens of seconds. So a connection
//! first reads its ClientHello here, holding only a *hello slot* (many
//! more of them, each cheap: a task, a few KiB of buffer), and takes a
//! handshake slot only once its ClientHello is complete. Stalled first
//! flights then wait among themselves and time out, and never stand in
//! front of a client whose ClientHello came whole.
//!
//! A ClientHello is read through [`HelloBound`], which refuses more than
//! [`MAX_HELLO_BYTES`]: a real one is well under 2 KiB (a post-quantum key
//! share included), so a peer sending more is refused instead of making
//! the server buffer it, whatever it claims the message's length is.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

/// The most bytes read from a connection before its ClientHello is
/// complete.
pub(super) const MAX_HELLO_BYTES: usize = 16 * 1024;

/// A connection whose ClientHello is complete, ready for the rest of its
/// handshake.
pub(super) struct Hello {
    /// What rustls read: the ClientHello, and what came after it.
    pub(super) accepted: rustls::server::Accepted,
    /// The connection itself.
    pub(super) tcp: TcpStream,
}

/// Reads `tcp`'s ClientHello. An error if the peer closes first, sends
/// something that is not a ClientHello (after which rustls' alert is sent),
/// or sends more than [`MAX_HELLO_BYTES`] before it is complete. No
/// deadline of its own: the caller bounds it.
pub(super) async fn read(tcp: TcpStream) -> io::Result<Hello> {
    let bounded = HelloBound {
        io: tcp,
        remaining: MAX_HELLO_BYTES,
    };
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), bounded).await?;
    Ok(Hello {
        accepted: start.accepted,
        tcp: start.io.io,
    })
}

/// A stream that gives at most `remaining` more bytes to its reader, then
/// fails: the bound on what a ClientHello may make the server read.
struct HelloBound {
    io: TcpStream,
    /// Bytes that may still be read.
    remaining: usize,
}

impl AsyncRead for HelloBound {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.remaining == 0 {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no complete TLS ClientHello within {MAX_HELLO_BYTES} bytes"),
            )));
        }
        let allowed = buf.remaining().min(self.remaining);
        let mut limited = ReadBuf::new(buf.initialize_unfilled_to(allowed));
        std::task::ready!(Pin::new(&mut self.io).poll_read(cx, &mut limited))?;
        let read = limited.filled().len();
        buf.advance(read);
        self.remaining -= read;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for HelloBound {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;
    use crate::devca::CertificateAuthority;

    /// A real client's ClientHello record.
    fn real_hello() -> Vec<u8> {
        let ca = CertificateAuthority::new("test CA").expect("ca");
        let ca_cert: rustls::pki_types::CertificateDer<'static> =
            rustls::pki_types::pem::PemObject::from_pem_slice(ca.cert_pem().as_bytes())
                .expect("ca cert");
        let roots = crate::tls::root_store(vec![ca_cert]).expect("roots");
        let config = crate::tls::client_config(roots, None).expect("config");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut client = rustls::ClientConnection::new(config, name).expect("client");
        let mut hello = Vec::new();
        client.write_tls(&mut hello).expect("hello");
        hello
    }

    /// A connected pair of loopback sockets: (the client's end, the
    /// server's end).
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        (client, server)
    }

    #[tokio::test]
    async fn a_client_hello_in_two_segments_apart_is_read_whole() {
        let (mut client, server) = pair().await;
        let hello = real_hello();
        let (first, second) = hello.split_at(hello.len() / 2);
        let read = tokio::spawn(read(server));
        client.write_all(first).await.expect("first half");
        // A slow path: the second segment a round trip later.
        tokio::time::sleep(Duration::from_millis(300)).await;
        client.write_all(second).await.expect("second half");
        let hello = read.await.expect("joins").expect("a whole ClientHello");
        assert_eq!(
            hello.accepted.client_hello().server_name(),
            Some("localhost")
        );
    }

    #[tokio::test]
    async fn more_than_the_bound_before_a_whole_client_hello_is_refused() {
        let (mut client, server) = pair().await;
        // A handshake record header announcing the largest record, then
        // a ClientHello header announcing the largest message: valid
        // framing that would have the server buffer 64 KiB.
        let mut flood = vec![22, 3, 1, 0x40, 0x00, 1, 0x00, 0xff, 0xff];
        flood.resize(MAX_HELLO_BYTES + 4096, 0);
        let read = tokio::spawn(read(server));
        let _ = client.write_all(&flood).await;
        let err = match read.await.expect("joins") {
            Ok(_) => panic!("a ClientHello past the bound was accepted"),
            Err(err) => err,
        };
        assert!(
            err.to_string().contains(&format!(
                "no complete TLS ClientHello within {MAX_HELLO_BYTES} bytes"
            )),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_peer_that_closes_first_is_an_error() {
        let (client, server) = pair().await;
        drop(client);
        assert!(read(server).await.is_err());
    }
}
