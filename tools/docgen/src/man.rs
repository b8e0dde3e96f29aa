//! The man pages: clap_mangen's NAME, DESCRIPTION, OPTIONS, SUBCOMMANDS
//! and VERSION, with a SYNOPSIS that shows each option's value
//! (`[--port N]`, where clap_mangen writes `[--port]`) and the sections a
//! flag definition cannot give: EXIT STATUS, SIGNALS, ENVIRONMENT, FILES
//! and SEE ALSO, from [`crate::reference`].

use clap::{Arg, ArgAction, Command};
use roff::{Inline, Roff, bold, italic, roman};

use crate::reference::{self, Entry, Reference};

/// The man page of `command`: a program, or one of its subcommands named
/// `program-sub` (then `invocation` is `program sub`).
pub(crate) fn page(command: &Command, invocation: &str, version: &str) -> String {
    let program = invocation.split(' ').next().unwrap_or(invocation);
    let mut rendered = Vec::new();
    clap_mangen::Man::new(command.clone())
        .source(format!("{program} {version}"))
        .render(&mut rendered)
        .expect("writing to a Vec");
    let page = String::from_utf8(rendered).expect("roff is text");
    let mut built = command.clone();
    built.build();
    let page = with_synopsis(&page, &synopsis(&built, invocation));
    let extra = reference::of(program)
        .map(|reference| sections(&built, reference))
        .unwrap_or_default();
    // Before VERSION, the last section, where there is one.
    match page.split_once(".SH VERSION\n") {
        Some((head, version)) => format!("{head}{extra}.SH VERSION\n{version}"),
        None => format!("{page}{extra}"),
    }
}

/// `page` with the line under `.SH SYNOPSIS` replaced by `line`.
fn with_synopsis(page: &str, line: &str) -> String {
    let (head, rest) = page
        .split_once(".SH SYNOPSIS\n")
        .expect("clap_mangen writes a SYNOPSIS section");
    let (_, tail) = rest.split_once('\n').expect("the synopsis is one line");
    format!("{head}.SH SYNOPSIS\n{line}{tail}")
}

/// Roff lines without the apostrophe preamble every rendering starts with
/// (the page has it once, at its head).
fn body(roff: &Roff) -> String {
    roff.render()
        .lines()
        .filter(|line| !line.starts_with(".ie \\n(.g") && !line.starts_with(".el .ds Aq"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The order clap shows options in: their display order, then their
/// name.
fn sort_key(arg: &Arg) -> (usize, String) {
    let name = match (arg.get_short(), arg.get_long()) {
        (Some(short), _) => short.to_ascii_lowercase().to_string(),
        (None, Some(long)) => long.to_owned(),
        (None, None) => arg.get_id().to_string(),
    };
    (arg.get_display_order(), name)
}

/// The SYNOPSIS line: `invocation`, then each option with its value's
/// name, as `--help` shows them (`[--port N]`, `[--ca PEM]...` for one
/// that may repeat), then the positionals and the subcommand.
fn synopsis(command: &Command, invocation: &str) -> String {
    let mut line: Vec<Inline> = vec![bold(invocation), roman(" ")];
    let mut options: Vec<&Arg> = command
        .get_arguments()
        .filter(|arg| !arg.is_hide_set() && !arg.is_positional())
        .collect();
    options.sort_by_key(|arg| sort_key(arg));
    for arg in options {
        let (open, close) = if arg.is_required_set() {
            ("", "")
        } else {
            ("[", "]")
        };
        line.push(roman(open));
        match (arg.get_short(), arg.get_long()) {
            (Some(short), Some(long)) => {
                line.extend([
                    bold(format!("-{short}")),
                    roman("|"),
                    bold(format!("--{long}")),
                ]);
            }
            (Some(short), None) => line.push(bold(format!("-{short}"))),
            (None, Some(long)) => line.push(bold(format!("--{long}"))),
            (None, None) => continue,
        }
        let takes_value = arg.get_num_args().is_some_and(|n| n.takes_values());
        if takes_value {
            let names: Vec<String> = arg
                .get_value_names()
                .map(|names| names.iter().map(ToString::to_string).collect())
                .unwrap_or_else(|| vec![arg.get_id().to_string().to_uppercase()]);
            line.push(roman(" "));
            line.push(italic(names.join(" ")));
        }
        line.push(roman(close));
        if matches!(arg.get_action(), ArgAction::Append | ArgAction::Count) {
            line.push(roman("..."));
        }
        line.push(roman(" "));
    }
    for arg in command.get_positionals().filter(|arg| !arg.is_hide_set()) {
        let name = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().to_string(), ToString::to_string);
        line.extend([roman("["), italic(name), roman("] ")]);
    }
    if command.has_subcommands() {
        line.extend([roman("<"), italic("mode"), roman(">")]);
    }
    let mut roff = Roff::new();
    roff.text(line);
    body(&roff)
}

/// A text line from `text`, its code spans in bold.
fn text(text: &str) -> Vec<Inline> {
    reference::spans(text)
        .into_iter()
        .map(|(code, piece)| if code { bold(piece) } else { roman(piece) })
        .collect()
}

/// `entries` as a tagged list under the heading `title`, each name set by
/// `name`.
fn list(roff: &mut Roff, title: &str, entries: &[Entry], name: fn(&str) -> Inline) {
    if entries.is_empty() {
        return;
    }
    roff.control("SH", [title]);
    for entry in entries {
        roff.control("TP", []);
        let names: Vec<Inline> = entry
            .name
            .split(", ")
            .enumerate()
            .flat_map(|(i, each)| {
                let separator = (i > 0).then(|| roman(", "));
                separator.into_iter().chain([name(each)])
            })
            .collect();
        roff.text(names);
        roff.text(text(entry.meaning));
    }
}

/// The sections after OPTIONS (and SUBCOMMANDS): EXIT STATUS, SIGNALS,
/// ENVIRONMENT, FILES and SEE ALSO.
fn sections(command: &Command, reference: &Reference) -> String {
    let mut roff = Roff::new();
    list(&mut roff, "EXIT STATUS", reference.exit_statuses, |s| {
        bold(s.to_owned())
    });
    list(&mut roff, "SIGNALS", reference.signals, |s| {
        bold(s.to_owned())
    });
    environment(&mut roff, command, reference);
    list(&mut roff, "FILES", reference.files, |s| {
        italic(s.to_owned())
    });
    if !reference.see_also.is_empty() {
        roff.control("SH", ["SEE ALSO"]);
        let mut line = Vec::new();
        for (i, page) in reference.see_also.iter().enumerate() {
            if i > 0 {
                line.push(roman(", "));
            }
            let (name, section) = page.split_once('(').unwrap_or((page, ""));
            line.push(bold(name));
            line.push(roman(format!("({section}")));
        }
        roff.text(line);
    }
    body(&roff)
}

/// ENVIRONMENT: each option's variable, then the others the program reads.
fn environment(roff: &mut Roff, command: &Command, reference: &Reference) {
    let options: Vec<(String, String)> = command
        .get_arguments()
        .filter_map(|arg| {
            let var = arg.get_env()?.to_string_lossy().into_owned();
            let long = arg.get_long()?;
            Some((var, long.to_owned()))
        })
        .collect();
    if options.is_empty() && reference.environment.is_empty() {
        return;
    }
    roff.control("SH", ["ENVIRONMENT"]);
    if !options.is_empty() {
        roff.text([roman(
            "Each option can be given by its variable instead; the flag, when given, \
             wins. Switches take 1 or 0, true or false, yes or no, on or off.",
        )]);
    }
    for (var, long) in &options {
        roff.control("TP", []);
        roff.text([bold(var.as_str())]);
        roff.text([
            roman("The value of "),
            bold(format!("--{long}")),
            roman("."),
        ]);
    }
    for entry in reference.environment {
        roff.control("TP", []);
        let names: Vec<Inline> = entry
            .name
            .split(", ")
            .enumerate()
            .flat_map(|(i, each)| {
                let separator = (i > 0).then(|| roman(", "));
                separator.into_iter().chain([bold(each)])
            })
            .collect();
        roff.text(names);
        roff.text(text(entry.meaning));
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_synopsis_shows_each_value() {
        let mut command = crate::servercli::Opts::command();
        command.build();
        let line = synopsis(&command, "servercli");
        assert!(line.contains("[\\fB\\-\\-port\\fR \\fIN\\fR]"), "{line}");
        assert!(
            line.contains("[\\fB\\-\\-date\\-period\\fR \\fIDURATION\\fR]"),
            "{line}"
        );
        assert!(
            line.contains("[\\fB\\-v\\fR|\\fB\\-\\-verbose\\fR]"),
            "{line}"
        );
        let mut client = crate::clientcli::Opts::command();
        client.build();
        let line = synopsis(&client, "clientcli");
        assert!(line.contains("[\\fB\\-\\-ca\\fR \\fIPEM\\fR]..."), "{line}");
    }

    #[test]
    fn every_program_page_has_the_sections_of_its_reference() {
        for command in crate::programs() {
            let name = command.get_name().to_owned();
            let page = page(&command, &name, "0.0.0");
            let headings: Vec<&str> = page
                .lines()
                .filter_map(|line| line.strip_prefix(".SH "))
                .map(|heading| heading.trim_matches('"'))
                .collect();
            for section in [
                "SYNOPSIS",
                "OPTIONS",
                "EXIT STATUS",
                "SIGNALS",
                "ENVIRONMENT",
                "FILES",
                "SEE ALSO",
            ] {
                assert!(headings.contains(&section), "{name} lacks {section}");
            }
            assert_eq!(headings.last(), Some(&"VERSION"), "{name}");
            // One preamble, at the head.
            assert_eq!(page.matches(".ds Aq").count(), 2, "{name}");
        }
    }

    #[test]
    fn each_variable_of_an_option_is_in_environment() {
        let command = crate::servercli::Opts::command();
        let page = page(&command, "servercli", "0.0.0");
        let environment = page
            .split(".SH ENVIRONMENT\n")
            .nth(1)
            .expect("an ENVIRONMENT section");
        for arg in command.get_arguments() {
            if let Some(var) = arg.get_env() {
                let var = var.to_string_lossy();
                assert!(environment.contains(&*var), "{var}");
            }
        }
        assert!(environment.contains("NOTIFY_SOCKET"));
    }
}
