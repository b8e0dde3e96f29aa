//! `docgen`: writes the man pages and shell completions of `servercli`,
//! `clientcli` and `loadcli`, made from the programs' own flag definitions
//! (the same `flags.rs` files the programs parse with), so they cannot
//! drift from the programs.
//!
//! `cargo run -p docgen -- contrib` rewrites `contrib/man/*.1` and
//! `contrib/completions/{bash,zsh,fish}/*`; a test checks that the files
//! checked in are what this writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

#[allow(dead_code, unreachable_pub)]
#[path = "../../../crates/nea-cli/src/bin/servercli/flags.rs"]
mod servercli;

#[allow(dead_code, unreachable_pub)]
#[path = "../../../crates/nea-cli/src/bin/clientcli/flags.rs"]
mod clientcli;

#[allow(dead_code, unreachable_pub)]
#[path = "../../loadcli/src/flags.rs"]
mod loadcli;

/// Each program's command definition.
fn programs() -> Vec<clap::Command> {
    vec![
        servercli::Opts::command(),
        clientcli::Opts::command(),
        loadcli::Opts::command(),
    ]
}

/// The man pages to write: one per program, and one per subcommand
/// (`loadcli-rtt`), which the program's page refers to.
fn pages() -> Vec<clap::Command> {
    let mut pages = Vec::new();
    for command in programs() {
        let name = command.get_name().to_owned();
        for sub in command.get_subcommands() {
            // clap names commands with static strings; this program runs once.
            let sub_name: &'static str = format!("{name}-{}", sub.get_name()).leak();
            pages.push(sub.clone().name(sub_name).bin_name(sub_name));
        }
        pages.push(command);
    }
    pages
}

/// The shells completions are written for, and the file name each expects.
const SHELLS: [(Shell, &str, &str); 3] = [
    (Shell::Bash, "bash", ""),
    (Shell::Zsh, "zsh", "_"),
    (Shell::Fish, "fish", ""),
];

/// Writes every man page and completion file under `root`; returns the
/// files written.
fn write_all(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let man = root.join("man");
    std::fs::create_dir_all(&man)?;
    for command in pages() {
        let mut page = Vec::new();
        let name = command.get_name().to_owned();
        clap_mangen::Man::new(command).render(&mut page)?;
        let path = man.join(format!("{name}.1"));
        std::fs::write(&path, page)?;
        written.push(path);
    }
    for command in programs() {
        let name = command.get_name().to_owned();
        for (shell, dir, prefix) in SHELLS {
            let dir = root.join("completions").join(dir);
            std::fs::create_dir_all(&dir)?;
            let file_name = match shell {
                Shell::Fish => format!("{name}.fish"),
                _ => format!("{prefix}{name}"),
            };
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command.clone(), &name, &mut script);
            let path = dir.join(file_name);
            std::fs::write(&path, script)?;
            written.push(path);
        }
    }
    Ok(written)
}

fn main() -> ExitCode {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("docgen: usage: docgen DIRECTORY (the repository's is contrib)");
        return ExitCode::from(2);
    };
    match write_all(Path::new(&root)) {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!(
                "docgen: cannot write under {}: {err}",
                Path::new(&root).display()
            );
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's `contrib` directory.
    fn contrib() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib")
    }

    #[test]
    fn the_checked_in_pages_and_completions_are_what_the_flags_make() {
        let fresh = tempfile::tempdir().expect("tempdir");
        let written = write_all(fresh.path()).expect("written");
        assert_eq!(written.len(), pages().len() + 3 * SHELLS.len());
        for path in written {
            let relative = path.strip_prefix(fresh.path()).expect("under the root");
            let checked_in = std::fs::read(contrib().join(relative)).unwrap_or_default();
            let made = std::fs::read(&path).expect("made");
            assert!(
                checked_in == made,
                "contrib/{} is stale: run `cargo run -p docgen -- contrib`",
                relative.display()
            );
        }
    }

    #[test]
    fn each_man_page_names_every_flag_of_its_program() {
        for command in pages() {
            let mut page = Vec::new();
            clap_mangen::Man::new(command.clone())
                .render(&mut page)
                .expect("rendered");
            let page = String::from_utf8(page).expect("text");
            for arg in command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    // roff escapes the dashes.
                    let escaped = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(
                        page.contains(&escaped),
                        "{} lacks --{long}",
                        command.get_name()
                    );
                }
            }
        }
    }
}
