//! Shell completions: clap_complete's scripts, from the flag definitions
//! with a value hint for every option that takes a value, so that each
//! shell completes what the value is:
//!
//! - `--host` and `--server-name`: host names (bash `compgen -A hostname`,
//!   zsh `_hosts`, fish `__fish_print_hostnames`);
//! - a path (`--cert PEM`): file names, a directory without a trailing
//!   space, so that one can go on into it (bash `-o filenames`);
//! - a value with a fixed set (`--log-format`): that set;
//! - anything else (numbers, durations, addresses, pins): nothing, and no
//!   file names either.
//!
//! clap_complete's bash script completes file names for a host name and
//! echoes the word back for a value it cannot complete; [`fix_bash`]
//! rewrites those cases, and fails loudly if a clap_complete upgrade
//! changes what it writes there.

use std::collections::BTreeMap;

use clap::{Arg, Command, ValueHint};
use clap_complete::Shell;

/// What an option's value completes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completes {
    HostNames,
    Paths,
    Choices,
    Nothing,
}

/// Options whose value is a host name.
const HOST_OPTIONS: [&str; 2] = ["host", "server-name"];

fn completes(arg: &Arg) -> Option<Completes> {
    if !arg.get_action().takes_values() || arg.is_positional() {
        return None;
    }
    Some(if !arg.get_possible_values().is_empty() {
        Completes::Choices
    } else if arg
        .get_long()
        .is_some_and(|long| HOST_OPTIONS.contains(&long))
    {
        Completes::HostNames
    } else if matches!(
        arg.get_value_hint(),
        ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
    ) {
        Completes::Paths
    } else {
        Completes::Nothing
    })
}

/// `arg` with the value hint that makes each shell complete what its
/// value is.
fn hinted(arg: Arg) -> Arg {
    match completes(&arg) {
        Some(Completes::HostNames) => arg.value_hint(ValueHint::Hostname),
        Some(Completes::Paths) => arg.value_hint(ValueHint::FilePath),
        Some(Completes::Nothing) => arg.value_hint(ValueHint::Other),
        Some(Completes::Choices) | None => arg,
    }
}

/// `command` (built) and its subcommands with [`hinted`] options.
pub(crate) fn with_hints(mut command: Command) -> Command {
    command.build();
    command.mut_args(hinted).mut_subcommands(with_hints)
}

/// What each option of `command` and its subcommands completes to, by
/// the names bash sees (`--host`, `-n`). An option name used for values of
/// two kinds in different subcommands would need a script per subcommand.
fn kinds(command: &Command, into: &mut BTreeMap<String, Completes>) {
    for arg in command.get_arguments() {
        let Some(kind) = completes(arg) else { continue };
        let names = arg
            .get_long()
            .map(|long| format!("--{long}"))
            .into_iter()
            .chain(arg.get_short().map(|short| format!("-{short}")));
        for name in names {
            let known = into.insert(name.clone(), kind);
            assert!(
                known.is_none_or(|known| known == kind),
                "{name} takes values of two kinds"
            );
        }
    }
    for sub in command.get_subcommands() {
        kinds(sub, into);
    }
}

/// The completion script of `command` (already [`with_hints`]) for `shell`.
pub(crate) fn script(shell: Shell, command: &Command) -> String {
    let name = command.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command.clone(), &name, &mut script);
    let script = String::from_utf8(script).expect("a script is text");
    match shell {
        Shell::Bash => {
            let mut options = BTreeMap::new();
            kinds(command, &mut options);
            fix_bash(&script, &options)
        }
        _ => script,
    }
}

/// Turns off bash's fallback to file names (`complete -o default`) for
/// the word being completed.
const NO_FALLBACK: &str = "compopt +o default +o bashdefault";

/// clap_complete's bash `script` with each host-name option completing host
/// names (`compgen -A hostname`, which reads `$HOSTFILE` or `/etc/hosts`)
/// and each option that completes nothing offering nothing; neither falls
/// back to file names.
fn fix_bash(script: &str, options: &BTreeMap<String, Completes>) -> String {
    let mut fixed = String::with_capacity(script.len() + 1024);
    // The option whose `case` arm the lines are in, and whether its
    // completion was rewritten.
    let mut arm: Option<(Completes, bool)> = None;
    for line in script.lines() {
        let trimmed = line.trim();
        let indent = &line[..line.len() - line.trim_start().len()];
        if let Some(option) = trimmed.strip_suffix(')')
            && let Some(kind) = options.get(option)
        {
            arm = Some((*kind, false));
        } else if trimmed == ";;" {
            if let Some((kind, rewritten)) = arm.take() {
                assert!(
                    rewritten || !matches!(kind, Completes::HostNames | Completes::Nothing),
                    "clap_complete's bash arm for a {kind:?} option changed; see fix_bash"
                );
            }
        } else if let Some((kind, rewritten)) = &mut arm {
            match (*kind, trimmed) {
                (Completes::HostNames, r#"COMPREPLY=($(compgen -f "${cur}"))"#) => {
                    fixed.push_str(&format!(
                        "{indent}COMPREPLY=($(compgen -A hostname -- \"${{cur}}\"))\n\
                         {indent}if [[ \"${{BASH_VERSINFO[0]}}\" -ge 4 ]]; then\n\
                         {indent}    {NO_FALLBACK}\n\
                         {indent}fi\n"
                    ));
                    *rewritten = true;
                    continue;
                }
                (Completes::Nothing, r#"COMPREPLY=("${cur}")"#) => {
                    fixed.push_str(&format!("{indent}COMPREPLY=()\n"));
                    *rewritten = true;
                    continue;
                }
                (Completes::Nothing, "compopt -o nospace") => {
                    fixed.push_str(&format!("{indent}{NO_FALLBACK}\n"));
                    continue;
                }
                _ => {}
            }
        }
        fixed.push_str(line);
        fixed.push('\n');
    }
    fixed
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::process::Command as Process;

    use clap::CommandFactory;

    use super::*;

    /// The bash script of `command`, written to a file in `dir`.
    fn bash_script(dir: &Path, command: Command) -> std::path::PathBuf {
        let command = with_hints(command);
        let path = dir.join(command.get_name());
        std::fs::write(&path, script(Shell::Bash, &command)).expect("written");
        path
    }

    /// What bash offers for the last of `words` (the command line typed
    /// so far, the word being completed last), by the completion function
    /// of the script at `script`, as bash calls it on Tab; and each
    /// `compopt` the function asked for (outside a real completion,
    /// `compopt` cannot run: a function of the same name records it).
    fn complete(script: &Path, words: &[&str]) -> (Vec<String>, Vec<String>) {
        const HARNESS: &str = r#"
            compopt() { printf '%s\n' "$*" >>"$COMPOPT_LOG"; }
            source "$SCRIPT" || exit 3
            COMP_WORDS=("$@")
            COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
            COMP_LINE="${COMP_WORDS[*]}"
            COMP_POINT=${#COMP_LINE}
            COMPREPLY=()
            "_$1" "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
            printf '%s\n' "${COMPREPLY[@]}"
        "#;
        let log = tempfile::NamedTempFile::new().expect("a log");
        let out = Process::new("bash")
            .args(["--norc", "--noprofile", "-c", HARNESS, "bash"])
            .args(words)
            .env("SCRIPT", script)
            .env("COMPOPT_LOG", log.path())
            // Host names come from /etc/hosts, as they do for a user
            // without $HOSTFILE.
            .env_remove("HOSTFILE")
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "bash: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let offered = String::from_utf8(out.stdout)
            .expect("text")
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect();
        let compopts = std::fs::read_to_string(log.path())
            .expect("the log")
            .lines()
            .map(str::to_owned)
            .collect();
        (offered, compopts)
    }

    #[test]
    fn host_options_complete_host_names_from_the_hosts_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let clientcli = bash_script(dir.path(), crate::clientcli::Opts::command());
        let (offered, compopts) = complete(&clientcli, &["clientcli", "--host", "lo"]);
        assert!(
            offered.iter().any(|host| host == "localhost"),
            "{offered:?}"
        );
        assert!(
            offered.iter().all(|host| host.starts_with("lo")),
            "{offered:?}"
        );
        assert_eq!(compopts, [NO_FALLBACK.trim_start_matches("compopt ")]);
        let (offered, _) = complete(&clientcli, &["clientcli", "--server-name", "localh"]);
        assert!(
            offered.iter().any(|host| host == "localhost"),
            "{offered:?}"
        );
        // In a subcommand too.
        let loadcli = bash_script(dir.path(), crate::loadcli::Opts::command());
        let (offered, _) = complete(&loadcli, &["loadcli", "rtt", "--host", "lo"]);
        assert!(
            offered.iter().any(|host| host == "localhost"),
            "{offered:?}"
        );
    }

    #[test]
    fn numbers_and_durations_complete_nothing_not_even_file_names() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A file that a fallback to file names would offer.
        std::fs::write(dir.path().join("3443.txt"), "").expect("a file");
        let servercli = bash_script(dir.path(), crate::servercli::Opts::command());
        let clientcli = bash_script(dir.path(), crate::clientcli::Opts::command());
        let loadcli = bash_script(dir.path(), crate::loadcli::Opts::command());
        for (script, words) in [
            (&clientcli, &["clientcli", "--port", ""][..]),
            (&clientcli, &["clientcli", "--port", "3"]),
            (&clientcli, &["clientcli", "--connect-timeout", ""]),
            (&clientcli, &["clientcli", "--pin", ""]),
            (&servercli, &["servercli", "--max-clients", ""]),
            (&servercli, &["servercli", "--date-period", ""]),
            (&servercli, &["servercli", "--bind", ""]),
            (&loadcli, &["loadcli", "rtt", "-n", ""]),
        ] {
            let (offered, compopts) = complete(script, words);
            assert!(offered.is_empty(), "{words:?} offered {offered:?}");
            assert_eq!(
                compopts,
                [NO_FALLBACK.trim_start_matches("compopt ")],
                "{words:?}: bash would fall back to file names"
            );
        }
    }

    #[test]
    fn a_directory_is_offered_without_a_trailing_space() {
        let dir = tempfile::tempdir().expect("tempdir");
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).expect("a directory");
        std::fs::write(certs.join("server.pem"), "").expect("a file");
        let clientcli = bash_script(dir.path(), crate::clientcli::Opts::command());
        let servercli = bash_script(dir.path(), crate::servercli::Opts::command());
        let typed = format!("{}/cer", dir.path().display());
        for (script, option) in [
            (&clientcli, "--ca"),
            (&clientcli, "--cert"),
            (&servercli, "--key"),
            (&servercli, "--port-file"),
        ] {
            let program = script.file_name().and_then(|n| n.to_str()).expect("name");
            let (offered, compopts) = complete(script, &[program, option, &typed]);
            assert_eq!(offered, [certs.display().to_string()], "{option}");
            // `-o filenames`: readline appends a slash to a directory and
            // no space, and quotes what needs it.
            assert!(
                compopts.iter().any(|opts| opts == "-o filenames"),
                "{option}: {compopts:?}"
            );
        }
        // Inside it, its files.
        let inside = format!("{}/", certs.display());
        let (offered, _) = complete(&clientcli, &["clientcli", "--ca", &inside]);
        assert_eq!(offered, [certs.join("server.pem").display().to_string()]);
    }

    #[test]
    fn choices_complete_to_their_values() {
        let dir = tempfile::tempdir().expect("tempdir");
        let servercli = bash_script(dir.path(), crate::servercli::Opts::command());
        let (offered, _) = complete(&servercli, &["servercli", "--log-format", ""]);
        assert_eq!(offered, ["text", "json"]);
        let (offered, _) = complete(&servercli, &["servercli", "--max-"]);
        assert!(offered.contains(&"--max-clients".to_owned()), "{offered:?}");
    }

    #[test]
    fn zsh_and_fish_are_told_the_same() {
        let command = with_hints(crate::clientcli::Opts::command());
        let zsh = script(Shell::Zsh, &command);
        assert!(zsh.contains(":NAME:_hosts'"), "{zsh}");
        assert!(
            zsh.contains("'--port=[Server TCP port (1 to 65535)]:N:' \\"),
            "{zsh}"
        );
        assert!(zsh.contains(":PEM:_files'"), "{zsh}");
        let fish = script(Shell::Fish, &command);
        assert!(
            fish.contains(
                "-l host -d 'Server host name or address' -r -f -a \"(__fish_print_hostnames)\""
            ),
            "{fish}"
        );
        assert!(
            fish.contains("-l port -d 'Server TCP port (1 to 65535)' -r -f"),
            "{fish}"
        );
        assert!(fish.contains("-l ca -d"), "{fish}");
    }
}
