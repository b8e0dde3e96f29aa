//! Reading a command line: `--help` and `--version` printed, and every
//! mistake turned into one sentence and the program's usage status.
//!
//! The sentence is built from clap's structured error (its [`ErrorKind`]
//! and context values), never from its rendered text, so that a clap
//! upgrade that rewords or restyles its messages cannot break it silently.

use std::ffi::OsString;
use std::fmt::Write as _;

use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Why a command line does not run its program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotRun {
    /// `--help` or `--version` was printed: exit 0.
    Printed,
    /// The command line was incomplete (no subcommand) and the help was
    /// printed to stderr: exit with the usage status.
    PrintedUsage,
    /// The command line is wrong: this sentence, and the usage status.
    Usage(String),
}

impl NotRun {
    /// Says so (`name: sentence` on stderr for a usage error) and gives the
    /// exit status.
    pub fn exit(self, name: &str, usage_status: u8) -> std::process::ExitCode {
        match self {
            Self::Printed => std::process::ExitCode::SUCCESS,
            Self::PrintedUsage => std::process::ExitCode::from(usage_status),
            Self::Usage(sentence) => {
                eprintln!("{name}: {sentence}");
                std::process::ExitCode::from(usage_status)
            }
        }
    }
}

impl From<nea::error::ConfigError> for NotRun {
    fn from(err: nea::error::ConfigError) -> Self {
        Self::Usage(err.to_string())
    }
}

/// Parses a command line (`args`, the program name first). `--help` and
/// `--version` are printed here.
pub fn parse_args<T, I, A>(args: I) -> Result<T, NotRun>
where
    T: clap::Parser,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    T::try_parse_from(args).map_err(not_run)
}

/// Like [`parse_args`], with the matches too: where each value came from
/// (the command line, the environment, or its default).
pub fn parse_args_and_matches<T, I, A>(args: I) -> Result<(T, clap::ArgMatches), NotRun>
where
    T: clap::Parser,
    I: IntoIterator<Item = A>,
    A: Into<OsString> + Clone,
{
    let matches = T::command().try_get_matches_from(args).map_err(not_run)?;
    let parsed = T::from_arg_matches(&matches).map_err(not_run)?;
    Ok((parsed, matches))
}

/// What a clap error means for the program: usage printed, or a usage
/// error in one line.
fn not_run(err: clap::Error) -> NotRun {
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let _ = err.print();
        NotRun::PrintedUsage
    } else if err.use_stderr() {
        NotRun::Usage(usage_error_line(&err))
    } else {
        let _ = err.print();
        NotRun::Printed
    }
}

/// One line for a clap error: what is wrong, a similar flag or value that
/// exists (when clap suggests one), and a pointer to `--help`.
pub fn usage_error_line(err: &clap::Error) -> String {
    let mut line = what_is_wrong(err);
    for (kind, what) in [
        (ContextKind::SuggestedArg, "a similar argument exists"),
        (
            ContextKind::SuggestedSubcommand,
            "a similar subcommand exists",
        ),
        (ContextKind::SuggestedValue, "a similar value exists"),
    ] {
        if let Some(suggested) = text(err, kind) {
            let _ = write!(line, "; {what}: '{suggested}'");
        }
    }
    line.push_str(" (see --help)");
    line
}

/// The sentence for `err`'s kind, from its context values; clap's
/// one-line description of the kind when the context lacks what the
/// sentence needs.
fn what_is_wrong(err: &clap::Error) -> String {
    let arg = text(err, ContextKind::InvalidArg);
    let value = text(err, ContextKind::InvalidValue);
    let sentence = match (err.kind(), arg, value) {
        (ErrorKind::ValueValidation, Some(arg), Some(value)) => {
            let why = std::error::Error::source(err)
                .map(|source| format!(": {source}"))
                .unwrap_or_default();
            Some(format!("invalid value '{value}' for '{arg}'{why}"))
        }
        (ErrorKind::InvalidValue, Some(arg), Some(value)) if value.is_empty() => Some(format!(
            "a value is required for '{arg}' but none was supplied"
        )),
        (ErrorKind::InvalidValue, Some(arg), Some(value)) => {
            let possible = text(err, ContextKind::ValidValue)
                .map(|values| format!(" (possible values: {values})"))
                .unwrap_or_default();
            Some(format!("invalid value '{value}' for '{arg}'{possible}"))
        }
        (ErrorKind::UnknownArgument, Some(arg), _) => {
            Some(format!("unexpected argument '{arg}' found"))
        }
        (ErrorKind::MissingRequiredArgument, Some(args), _) => Some(format!(
            "the following required arguments were not provided: {args}"
        )),
        (ErrorKind::ArgumentConflict, Some(arg), _) => Some(
            match text(err, ContextKind::PriorArg).filter(|prior| *prior != arg) {
                Some(prior) => format!("the argument '{arg}' cannot be used with '{prior}'"),
                None => format!("the argument '{arg}' cannot be used more than once"),
            },
        ),
        (ErrorKind::TooManyValues, Some(arg), Some(value)) => Some(format!(
            "unexpected value '{value}' for '{arg}' found; no more were expected"
        )),
        (ErrorKind::NoEquals, Some(arg), _) => Some(format!(
            "an equal sign is needed when assigning values to '{arg}'"
        )),
        _ => None,
    };
    sentence
        .or_else(|| subcommand_sentence(err))
        .unwrap_or_else(|| described(err.kind()))
}

/// The sentence for a wrong or missing subcommand.
fn subcommand_sentence(err: &clap::Error) -> Option<String> {
    let sub = text(err, ContextKind::InvalidSubcommand)?;
    match err.kind() {
        ErrorKind::InvalidSubcommand => Some(format!("unrecognized subcommand '{sub}'")),
        ErrorKind::MissingSubcommand => Some(format!(
            "'{sub}' requires a subcommand but one was not provided"
        )),
        _ => None,
    }
}

/// clap's own description of an error kind, without its final period.
fn described(kind: ErrorKind) -> String {
    kind.as_str()
        .unwrap_or("the command line is not valid")
        .trim_end_matches('.')
        .to_owned()
}

/// A context value as text: a list joined with commas.
fn text(err: &clap::Error, kind: ContextKind) -> Option<String> {
    match err.get(kind)? {
        ContextValue::String(value) => Some(value.clone()),
        ContextValue::Strings(values) if !values.is_empty() => Some(values.join(", ")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Flags {
        #[arg(long)]
        count: u8,
        #[arg(long, value_enum, default_value_t = Colour::Red)]
        colour: Colour,
        #[arg(long, requires = "key")]
        cert: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(num_args = 0..=2)]
        words: Vec<String>,
        #[arg(long, require_equals = true)]
        exact: Option<String>,
    }

    /// A program with subcommands, as loadcli is.
    #[derive(Debug, clap::Parser)]
    struct Modes {
        #[arg(long)]
        verbose: bool,
        #[command(subcommand)]
        mode: Mode,
    }

    #[derive(Debug, clap::Subcommand)]
    enum Mode {
        Run,
        Stop,
    }

    #[derive(Debug, Clone, Copy, clap::ValueEnum)]
    enum Colour {
        Red,
        Green,
    }

    fn refused(args: &[&str]) -> String {
        let args = std::iter::once("prog").chain(args.iter().copied());
        match parse_args::<Flags, _, _>(args) {
            Err(NotRun::Usage(sentence)) => {
                assert!(!sentence.contains('\n'), "{sentence}");
                assert!(sentence.ends_with(" (see --help)"), "{sentence}");
                sentence
            }
            other => panic!("not a usage error: {other:?}"),
        }
    }

    #[test]
    fn a_usage_error_is_one_line_built_from_what_clap_found() {
        assert_eq!(
            refused(&["--count", "300"]),
            "invalid value '300' for '--count <COUNT>': 300 is not in 0..=255 (see --help)"
        );
        assert_eq!(
            refused(&["--count", "3", "--cuont", "3"]),
            "unexpected argument '--cuont' found; a similar argument exists: '--count' (see --help)"
        );
        assert_eq!(
            refused(&["--count", "3", "--colour", "blue"]),
            "invalid value 'blue' for '--colour <COLOUR>' (possible values: red, green) (see --help)"
        );
        assert_eq!(
            refused(&[]),
            "the following required arguments were not provided: --count <COUNT> (see --help)"
        );
        assert_eq!(
            refused(&["--count", "3", "--cert", "c"]),
            "the following required arguments were not provided: --key <KEY> (see --help)"
        );
        assert_eq!(
            refused(&["--count", "3", "--count", "4"]),
            "the argument '--count <COUNT>' cannot be used more than once (see --help)"
        );
        assert_eq!(
            refused(&["--count"]),
            "a value is required for '--count <COUNT>' but none was supplied (see --help)"
        );
        assert_eq!(
            refused(&["--count", "3", "a", "b", "c"]),
            "unexpected value 'c' for '[WORDS]...' found; no more were expected (see --help)"
        );
        assert_eq!(
            refused(&["--count", "3", "--exact", "e"]),
            "an equal sign is needed when assigning values to '--exact=<EXACT>' (see --help)"
        );
        assert_eq!(
            parse_args::<Flags, _, _>(["prog", "--count", "3"]).map(|f| f.count),
            Ok(3)
        );
    }

    #[test]
    fn a_wrong_or_missing_subcommand_is_named() {
        let refused = |args: &[&str]| {
            let args = std::iter::once("prog").chain(args.iter().copied());
            match parse_args::<Modes, _, _>(args) {
                Err(NotRun::Usage(sentence)) => sentence,
                other => panic!("not a usage error: {other:?}"),
            }
        };
        assert_eq!(
            refused(&["jump"]),
            "unrecognized subcommand 'jump' (see --help)"
        );
        assert_eq!(
            refused(&["--verbose"]),
            "'prog' requires a subcommand but one was not provided (see --help)"
        );
        assert!(matches!(
            parse_args::<Modes, _, _>(["prog", "--verbose", "stop"]),
            Ok(Modes {
                verbose: true,
                mode: Mode::Stop
            })
        ));
    }

    #[test]
    fn a_context_without_the_values_a_sentence_needs_gets_the_kind_described() {
        use clap::error::{ContextKind, ContextValue};
        let mut err = clap::Error::new(ErrorKind::MissingRequiredArgument);
        err.insert(ContextKind::InvalidArg, ContextValue::Strings(Vec::new()));
        assert_eq!(
            usage_error_line(&err),
            "one or more required arguments were not provided (see --help)"
        );
    }

    #[test]
    fn each_way_of_not_running_has_its_exit_status() {
        // `ExitCode` has no equality; its debug form shows the status.
        let status = |code: std::process::ExitCode| format!("{code:?}");
        assert_eq!(
            status(NotRun::Printed.exit("prog", 2)),
            status(std::process::ExitCode::SUCCESS)
        );
        assert_eq!(
            status(NotRun::PrintedUsage.exit("prog", 2)),
            status(std::process::ExitCode::from(2))
        );
        assert_eq!(
            status(NotRun::Usage("wrong".into()).exit("prog", 64)),
            status(std::process::ExitCode::from(64))
        );
    }

    #[test]
    fn every_kind_has_a_sentence() {
        for kind in [
            ErrorKind::InvalidUtf8,
            ErrorKind::Io,
            ErrorKind::Format,
            ErrorKind::WrongNumberOfValues,
        ] {
            let err = clap::Error::new(kind);
            let line = usage_error_line(&err);
            assert!(line.len() > " (see --help)".len(), "{kind:?}: {line}");
            assert!(!line.contains('\n'), "{line}");
        }
    }
}
