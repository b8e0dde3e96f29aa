//! The yardstick: a bare tokio-rustls server that answers each line with
//! its bytes reversed, and nothing else. No JSON, no limits, no dates, no
//! grapheme segmentation, no logging. It uses the same TLS configuration as
//! nea (same provider, same key exchange, no session tickets), and batches
//! its writes the same way (one flush per batch of pipelined lines), so the
//! difference between the two is what nea adds.

use std::future::Future;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

/// Serves on `listener` until `shutdown` completes.
pub(crate) async fn run_server(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => {
                if let Ok((tcp, _)) = accepted {
                    tokio::spawn(answer(tcp, acceptor.clone()));
                }
            }
        }
    }
}

/// One connection: reversed lines until end of stream or an error.
async fn answer(tcp: TcpStream, acceptor: TlsAcceptor) -> std::io::Result<()> {
    tcp.set_nodelay(true)?;
    let stream = acceptor.accept(tcp).await?;
    let (read, mut write) = tokio::io::split(stream);
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    let mut out = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        out.extend(line.iter().rev());
        out.push(b'\n');
        if reader.buffer().is_empty() {
            write.write_all(&out).await?;
            write.flush().await?;
            out.clear();
        }
    }
    write.shutdown().await
}
