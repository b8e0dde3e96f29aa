//! `docgen`: writes the man pages and shell completions of `servercli`,
//! `clientcli` and `loadcli`, made from the programs' own flag definitions
//! (the same `flags.rs` files the programs parse with), so they cannot
//! drift from the programs; and what no flag says (exit statuses, signals,
//! environment, files) from one table per program (`reference`), which
//! both the man pages and the guides in `docs/` are made from.
//!
//! `cargo run -p docgen -- contrib` rewrites `contrib/man/*.1`,
//! `contrib/completions/{bash,zsh,fish}/*`, `contrib/default/nea` (the
//! service's environment file, installed as `/etc/default/nea`) and the
//! marked tables of `docs/client.md` and `docs/operations.md` (beside
//! `contrib`); tests check that the files checked in are what this writes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::CommandFactory;
use clap_complete::Shell;

mod completions;
mod guides;
mod man;
mod reference;

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

/// A man page to write: its command, and how it is run (`loadcli rtt`).
struct Page {
    command: clap::Command,
    invocation: String,
    /// The program's version (a subcommand has none of its own).
    version: String,
}

/// The man pages to write: one per program, and one per subcommand
/// (`loadcli-rtt`), which the program's page refers to.
fn pages() -> Vec<Page> {
    let mut pages = Vec::new();
    for command in programs() {
        let name = command.get_name().to_owned();
        let version = command.get_version().unwrap_or_default().to_owned();
        for sub in command.get_subcommands() {
            // clap names commands with static strings; this program runs once.
            let sub_name: &'static str = format!("{name}-{}", sub.get_name()).leak();
            pages.push(Page {
                command: sub.clone().name(sub_name).bin_name(sub_name),
                invocation: format!("{name} {}", sub.get_name()),
                version: version.clone(),
            });
        }
        pages.push(Page {
            command,
            invocation: name,
            version,
        });
    }
    pages
}

/// The shells completions are written for, and the file name each expects.
const SHELLS: [(Shell, &str, &str); 3] = [
    (Shell::Bash, "bash", ""),
    (Shell::Zsh, "zsh", "_"),
    (Shell::Fish, "fish", ""),
];

/// The head of `/etc/default/nea`: what reads the file and how.
const ENVIRONMENT_HEAD: &str = "\
# /etc/default/nea: servercli's settings for nea.service, which reads this
# file (EnvironmentFile=) at each start: `systemctl restart nea` applies a
# change. Made by docgen from servercli's flag definitions, so every option
# is here, each with its help and its default; the man page servercli(1)
# says more.
#
# Each line is VAR=VALUE, read by systemd, not by a shell: no `export`, no
# $expansion; quote only a whole value. An option left commented out keeps
# its default. An option set to nothing (NEA_ADMIN_ADDR=) is an error, not
# its default: a value in capitals below (PEM, ADDR:PORT) is a placeholder.
#
# nea.service loads the certificate and key as credentials (cert.pem and
# key.pem), and the server finds them there by itself; NEA_CERT and NEA_KEY
# here would name other files instead. With nea.socket, the socket's
# ListenStream= decides the address and port, not NEA_BIND and NEA_PORT.
# The unit sets NEA_DEV_DIR (where the development CA lives) itself.
# RUST_LOG (e.g. nea=debug) sets the log level, as in a shell.
";

/// The environment file of `command` (servercli): each option that an
/// environment variable can set, as a commented `#VAR=default` line under
/// its help.
fn environment_file(command: &clap::Command) -> String {
    // Built, a switch has its default ("false") as the parser sees it.
    let mut command = command.clone();
    command.build();
    let mut text = String::from(ENVIRONMENT_HEAD);
    for arg in command.get_arguments() {
        let Some(var) = arg.get_env() else { continue };
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|value| value.to_string_lossy().into_owned())
            .collect();
        // An option with no default shows its value's name as the value:
        // a placeholder, never a value that would quietly mean "unset".
        let value = if defaults.is_empty() {
            arg.get_value_names()
                .and_then(|names| names.first())
                .map_or_else(|| "VALUE".to_owned(), ToString::to_string)
        } else {
            defaults.join(",")
        };
        let flag = arg.get_long().unwrap_or_default();
        text.push('\n');
        text.push_str(&comment(&format!("--{flag}: {help}")));
        text.push_str(&format!("#{}={value}\n", var.to_string_lossy()));
    }
    text
}

/// `text` as comment lines of at most 76 columns, broken between words.
fn comment(text: &str) -> String {
    let mut lines = String::new();
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() > 1 && line.len() + 1 + word.len() > 76 {
            lines.push_str(&line);
            lines.push('\n');
            line = String::from("#");
        }
        line.push(' ');
        line.push_str(word);
    }
    lines.push_str(&line);
    lines.push('\n');
    lines
}

/// Writes every man page and completion file, and the server's environment
/// file, under `root`; returns the files written.
fn write_all(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let default = root.join("default");
    std::fs::create_dir_all(&default)?;
    let path = default.join("nea");
    std::fs::write(&path, environment_file(&servercli::Opts::command()))?;
    written.push(path);
    let man = root.join("man");
    std::fs::create_dir_all(&man)?;
    for page in pages() {
        let name = page.command.get_name().to_owned();
        let path = man.join(format!("{name}.1"));
        std::fs::write(
            &path,
            man::page(&page.command, &page.invocation, &page.version),
        )?;
        written.push(path);
    }
    for command in programs() {
        let command = completions::with_hints(command);
        let name = command.get_name().to_owned();
        for (shell, dir, prefix) in SHELLS {
            let dir = root.join("completions").join(dir);
            std::fs::create_dir_all(&dir)?;
            let file_name = match shell {
                Shell::Fish => format!("{name}.fish"),
                _ => format!("{prefix}{name}"),
            };
            let path = dir.join(file_name);
            std::fs::write(&path, completions::script(shell, &command))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// The guides' directory beside `root` (the repository's `contrib`), if
/// there is one.
fn guides_beside(root: &Path) -> Option<PathBuf> {
    let docs = match root.parent() {
        Some(parent) => parent.join("docs"),
        None => root.join("..").join("docs"),
    };
    Some(docs).filter(|docs| docs.is_dir())
}

fn main() -> ExitCode {
    let Some(root) = std::env::args_os().nth(1) else {
        eprintln!("docgen: usage: docgen DIRECTORY (the repository's is contrib)");
        return ExitCode::from(2);
    };
    let root = Path::new(&root);
    let written = write_all(root).and_then(|mut written| {
        if let Some(docs) = guides_beside(root) {
            written.extend(guides::write(&docs)?);
        }
        Ok(written)
    });
    match written {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("docgen: cannot write under {}: {err}", root.display());
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
        assert_eq!(written.len(), 1 + pages().len() + 3 * SHELLS.len());
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
    fn the_environment_file_sets_every_server_option_but_help_and_version() {
        let command = servercli::Opts::command();
        let file = environment_file(&command);
        for arg in command.get_arguments() {
            let long = arg.get_long().unwrap_or_default();
            if matches!(long, "help" | "version") {
                continue;
            }
            let var = arg
                .get_env()
                .unwrap_or_else(|| panic!("--{long} has no variable"));
            let line = format!("\n#{}=", var.to_string_lossy());
            assert!(file.contains(&line), "no {line:?} line for --{long}");
        }
        // Every setting is commented out: the file changes nothing as
        // installed.
        assert!(
            file.lines()
                .all(|line| line.is_empty() || line.starts_with('#'))
        );
    }

    #[test]
    fn each_man_page_names_every_flag_of_its_program() {
        for page in pages() {
            let text = man::page(&page.command, &page.invocation, &page.version);
            for arg in page.command.get_arguments() {
                if let Some(long) = arg.get_long() {
                    // roff escapes the dashes.
                    let escaped = format!("\\-\\-{}", long.replace('-', "\\-"));
                    assert!(
                        text.contains(&escaped),
                        "{} lacks --{long}",
                        page.command.get_name()
                    );
                }
            }
        }
    }

    /// The repository's guides.
    fn guide(name: &str) -> String {
        std::fs::read_to_string(contrib().join("../docs").join(name)).expect("the guide")
    }

    #[test]
    fn the_guides_tables_are_what_the_reference_makes() {
        for (file, reference, which) in guides::GUIDES {
            let text = guide(file);
            let made = guides::update(&text, reference, which)
                .unwrap_or_else(|err| panic!("docs/{file}: {err}"));
            assert!(
                made == text,
                "docs/{file}'s tables are stale: run `cargo run -p docgen -- contrib`"
            );
        }
    }

    /// Each option of `command` has a row in `guide`'s options table that
    /// names it, its variable and its default, as the flags define them.
    fn every_option_in(command: clap::Command, guide_name: &str) {
        let text = guide(guide_name);
        let mut command = command;
        command.build();
        for arg in command.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            let row = text
                .lines()
                .find(|line| line.starts_with(&format!("| `--{long}")))
                .unwrap_or_else(|| panic!("docs/{guide_name} has no row for --{long}"));
            if let Some(var) = arg.get_env() {
                let var = format!("`{}`", var.to_string_lossy());
                assert!(row.contains(&var), "--{long}'s row lacks {var}: {row}");
            }
            if arg.get_action().takes_values() {
                for default in arg.get_default_values() {
                    let default = default.to_string_lossy();
                    assert!(
                        row.contains(&*default),
                        "--{long}'s row lacks its default {default}: {row}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_option_is_in_its_guide() {
        every_option_in(servercli::Opts::command(), "operations.md");
        every_option_in(clientcli::Opts::command(), "client.md");
    }
}
