//! Process limits. A server for thousands of clients needs a file
//! descriptor per client, and the usual soft limit (1024) is far below
//! that; the hard limit is what the administrator allows.

use nix::sys::resource::{Resource, getrlimit, setrlimit};

/// Raises the open-file soft limit to the hard limit; returns the limit now
/// in force (0 if it cannot be read).
pub fn raise_open_file_limit() -> u64 {
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Ok((soft, _)) => soft,
        Err(_) => 0,
    }
}

/// File descriptors a server needs besides its clients: the listener,
/// handshakes in progress, the runtime's own, standard streams, and slack.
pub const SERVER_SPARE_FILES: u64 = 64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limit = raise_open_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
        assert_eq!(limit, soft);
        assert_eq!(soft, hard);
    }
}
