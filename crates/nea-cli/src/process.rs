//! Process set-up the programs share: the async runtime, the open-file
//! limit, and the port file that tells a supervisor where a program
//! listens.

/// A multi-threaded tokio runtime, or the exit status after saying why
/// there is none.
pub fn runtime(name: &str) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Runtime::new().map_err(|err| {
        eprintln!("{name}: cannot start the async runtime: {err}");
        std::process::ExitCode::FAILURE
    })
}

/// Completes when SIGINT or SIGTERM asks the program to stop. The handlers
/// are registered here, at once, so a signal sent after this returns is
/// never lost; the future must be polled for them to be handled.
pub fn stop_requested() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Raises the open-file soft limit to the hard limit, as a server for
/// thousands of clients (or a load tool that opens them) needs; returns the
/// limit now in force (0 if it cannot be read). Process-wide, so only the
/// programs call it, at start-up.
pub fn raise_open_file_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
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

/// Writes `port` and a newline to `path`, for whoever started the program
/// on port 0 and needs to know where it listens. The file appears whole or
/// not at all: it is written beside `path` and renamed over it.
pub fn write_port_file(path: &std::path::Path, port: u16) -> std::io::Result<()> {
    let mut staging = path.as_os_str().to_owned();
    staging.push(".tmp");
    let staging = std::path::PathBuf::from(staging);
    std::fs::write(&staging, format!("{port}\n"))?;
    std::fs::rename(&staging, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        use nix::sys::resource::{Resource, getrlimit};
        let limit = raise_open_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
        assert_eq!(limit, soft);
        assert_eq!(soft, hard);
    }

    #[test]
    fn the_port_file_holds_the_port_and_nothing_is_left_beside_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("port");
        write_port_file(&path, 3443).expect("written");
        write_port_file(&path, 4443).expect("rewritten");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "4443\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["port"]);
        let missing = dir.path().join("no/such/dir/port");
        assert!(write_port_file(&missing, 1).is_err());
    }

    #[test]
    fn a_soft_limit_below_the_hard_one_is_raised_to_it() {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        // The limit is process-wide and the test above reads it, so the
        // lowered limit is tried in a child process that runs this test
        // alone.
        const LOWERED: &str = "NEA_TEST_LOWERED_OPEN_FILE_LIMIT";
        const NAME: &str = "process::tests::a_soft_limit_below_the_hard_one_is_raised_to_it";
        if std::env::var_os(LOWERED).is_some() {
            let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("readable");
            setrlimit(Resource::RLIMIT_NOFILE, hard.saturating_sub(1), hard).expect("lowered");
            assert_eq!(raise_open_file_limit(), hard);
            assert_eq!(
                getrlimit(Resource::RLIMIT_NOFILE).expect("readable"),
                (hard, hard)
            );
            return;
        }
        let child = std::process::Command::new(std::env::current_exe().expect("test binary"))
            .args(["--exact", NAME, "--test-threads=1"])
            .env(LOWERED, "1")
            .output()
            .expect("the test binary runs");
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(child.status.success(), "{stdout}");
        assert!(
            stdout.contains("1 passed"),
            "the child ran no test: {stdout}"
        );
    }
}
