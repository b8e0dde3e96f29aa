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
