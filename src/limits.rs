//! Process resources. A server for thousands of clients needs a file
//! descriptor per client, and the usual soft limit (1024) is far below
//! that: the binaries raise it to the hard limit at start-up
//! ([`crate::cli::raise_open_file_limit`]); the library only reads it. And
//! memory freed by clients that left should go back to the system.

use nix::sys::resource::{Resource, getrlimit};

/// The open-file soft limit in force (0 if it cannot be read).
pub(crate) fn open_file_limit() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(0, |(soft, _)| soft)
}

/// Gives memory that the allocator holds but no longer uses back to the
/// operating system.
///
/// glibc keeps freed memory in its arenas, where fragmentation stops it
/// from shrinking on its own: after 100 clients left, the server's RSS
/// stayed about 40% above its idle level, and after 10,000 clients, 26
/// times (BENCHMARKS.md). The server calls this when its last client
/// leaves, so it costs nothing while anyone is served.
pub(crate) fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim has no preconditions: it walks glibc's own arenas
    // under their locks and returns whole free pages to the kernel.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The most bytes the kernel may buffer for one client socket in each
/// direction, as asked of `SO_SNDBUF` and `SO_RCVBUF` (Linux doubles the
/// value asked for, to cover its own bookkeeping, and reports that).
///
/// Without a cap, the kernel grows an unread socket's send buffer up to
/// `net.ipv4.tcp_wmem`'s maximum (4 MiB on common systems): a client that
/// stops reading would make the kernel hold megabytes for it, outside the
/// server's own per-client bound. 64 KiB matches the outgoing queue
/// (`DEFAULT_QUEUE_BYTES`), keeps a steady reader's stream flowing, and
/// turns off autotuning for the socket.
pub(crate) const SOCKET_BUFFER_BYTES: usize = 64 * 1024;

/// Caps the kernel's buffers for one client socket
/// ([`SOCKET_BUFFER_BYTES`]). A socket that refuses keeps the kernel's
/// defaults: it still works, only with the kernel's larger bound.
pub(crate) fn bound_socket_buffers(tcp: &tokio::net::TcpStream) {
    let socket = socket2::SockRef::from(tcp);
    let _ = socket.set_send_buffer_size(SOCKET_BUFFER_BYTES);
    let _ = socket.set_recv_buffer_size(SOCKET_BUFFER_BYTES);
}

/// File descriptors a server needs besides its clients: the listener,
/// handshakes in progress, the runtime's own, standard streams, and slack.
pub(crate) const SERVER_SPARE_FILES: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_read_is_the_soft_limit() {
        let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
        assert_eq!(open_file_limit(), soft);
    }
}
