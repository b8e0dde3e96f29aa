//! What the binaries share: duration flags, usage errors, logging.

use std::time::Duration;

/// Parses a duration flag: `250ms`, `1.5s`, `2m`, or a bare number of
/// seconds (`10`). Zero and negative values are refused: every duration the
/// binaries take is a period or a deadline.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else if let Some(m) = text.strip_suffix('m') {
        (m, 60.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (use e.g. 250ms, 1.5s, 2m or 10)"))?;
    let seconds = value * scale;
    if !seconds.is_finite() || seconds <= 0.0 || seconds > 1e9 {
        return Err(format!("'{text}' must be a positive duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses a count that must be at least 1.
pub fn parse_positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_owned()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{text}' is not a whole number")),
    }
}

/// Turns a clap error into one line: clap's own text without its `error:`
/// prefix, usage block and hint.
pub fn usage_error_line(err: &clap::Error) -> String {
    let text = err.to_string();
    let first_block = text.split("\n\n").next().unwrap_or_default();
    let joined = first_block
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

/// Parses the command line of the binary `name`. On `--help`/`--version`
/// prints and gives `Err(0)`; on a usage error prints one line
/// (`name: sentence`) and gives `Err(usage_status)`: the binary exits with
/// that status.
pub fn parse_args<T: clap::Parser>(
    name: &str,
    usage_status: u8,
) -> Result<T, std::process::ExitCode> {
    T::try_parse().map_err(|err| {
        if err.use_stderr() {
            eprintln!("{name}: {}", usage_error_line(&err));
            std::process::ExitCode::from(usage_status)
        } else {
            let _ = err.print();
            std::process::ExitCode::SUCCESS
        }
    })
}

/// A multi-threaded tokio runtime, or the exit status after saying why
/// there is none.
pub fn runtime(name: &str) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    tokio::runtime::Runtime::new().map_err(|err| {
        eprintln!("{name}: cannot start the async runtime: {err}");
        std::process::ExitCode::FAILURE
    })
}

/// Raises the open-file soft limit to the hard limit, as a server for
/// thousands of clients (or a load tool that opens them) needs; returns the
/// limit now in force (0 if it cannot be read). Process-wide, so only the
/// binaries call it, at start-up.
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

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` if set and by
/// `default` (an `EnvFilter` directive such as `warn,nea=info`) otherwise.
pub fn init_logging(default: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_the_documented_forms() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn durations_refuse_nonsense_with_a_sentence() {
        for bad in ["", "abc", "10x", "-1", "0", "0ms", "inf", "NaN"] {
            let err = parse_duration(bad).expect_err(bad);
            assert!(err.contains('\''), "{bad}: {err}");
        }
    }

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
    fn counts_must_be_positive() {
        assert_eq!(parse_positive("100"), Ok(100));
        assert!(parse_positive("0").is_err());
        assert!(parse_positive("-3").is_err());
        assert!(parse_positive("many").is_err());
    }
}
