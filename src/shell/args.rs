//! The command-line parser under `rtcam` and `rtcam-client`: long options (`--name VALUE`,
//! `--name=VALUE`, `--flag`), positionals, `--` and `-h`/`-V`; nothing else.
//!
//! Hand-written instead of clap: clap (derive, default features) was about 200 KiB of the
//! stripped aarch64 binary, a sixth of what rtcam's own code costs, for two option lists
//! that fit on a screen. Usage errors read like clap's did (`error: invalid value 'x' for
//! '--fps <N>': …`) and exit with status 2.

use std::ffi::OsString;
use std::fmt;
use std::str::FromStr;

/// A command line that cannot be used: the message, the usage line and the help hint.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// One item of the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Arg {
    /// `--name` (or `--name=value`; the value is then taken with `Parser::value`), and `-h`,
    /// `-V` as `help`, `version`.
    Long(String),
    /// Anything else (and everything after `--`).
    Positional(OsString),
}

/// Reads the arguments one at a time; the caller asks for option values as it meets options.
pub struct Parser {
    args: std::vec::IntoIter<OsString>,
    /// The value of the last `--name=value`, until taken.
    inline: Option<(String, OsString)>,
    only_positionals: bool,
}

impl Parser {
    /// `args` without the program name.
    pub fn new<I, T>(args: I) -> Parser
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString>,
    {
        Parser {
            args: args
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>()
                .into_iter(),
            inline: None,
            only_positionals: false,
        }
    }

    /// The next item, or None at the end.
    pub fn next_arg(&mut self) -> Result<Option<Arg>, UsageError> {
        if let Some((name, _)) = self.inline.take() {
            return Err(UsageError(format!(
                "unexpected value for '--{name}': it takes none"
            )));
        }
        let Some(arg) = self.args.next() else {
            return Ok(None);
        };
        if self.only_positionals {
            return Ok(Some(Arg::Positional(arg)));
        }
        let Some(text) = arg.to_str() else {
            return Ok(Some(Arg::Positional(arg)));
        };
        if text == "--" {
            self.only_positionals = true;
            return self.next_arg();
        }
        if let Some(long) = text.strip_prefix("--") {
            return Ok(Some(match long.split_once('=') {
                Some((name, value)) => {
                    self.inline = Some((name.to_string(), value.into()));
                    Arg::Long(name.to_string())
                }
                None => Arg::Long(long.to_string()),
            }));
        }
        match text {
            "-h" => Ok(Some(Arg::Long("help".into()))),
            "-V" => Ok(Some(Arg::Long("version".into()))),
            "-" => Ok(Some(Arg::Positional(arg))),
            _ if text.starts_with('-') => {
                Err(UsageError(format!("unexpected argument '{text}' found")))
            }
            _ => Ok(Some(Arg::Positional(arg))),
        }
    }

    /// The value of the option just read, `--name VALUE` or `--name=VALUE`. `shown` is how
    /// messages name it, e.g. `--fps <N>`.
    pub fn value(&mut self, shown: &str) -> Result<OsString, UsageError> {
        if let Some((_, value)) = self.inline.take() {
            return Ok(value);
        }
        match self.args.next() {
            Some(value) if !value.to_str().is_some_and(|v| v.starts_with("--")) => Ok(value),
            _ => Err(UsageError(format!(
                "a value is required for '{shown}' but none was supplied"
            ))),
        }
    }

    /// The value as text.
    pub fn string(&mut self, shown: &str) -> Result<String, UsageError> {
        let value = self.value(shown)?;
        value
            .into_string()
            .map_err(|v| invalid(&v.to_string_lossy(), shown, "not valid UTF-8"))
    }

    /// The value parsed as `T`; its parse error is the message.
    pub fn parse<T>(&mut self, shown: &str) -> Result<T, UsageError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let text = self.string(shown)?;
        text.parse().map_err(|e| invalid(&text, shown, e))
    }

    /// A whole number in `range`.
    pub fn number_in<T>(
        &mut self,
        shown: &str,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, UsageError>
    where
        T: FromStr + PartialOrd + fmt::Display,
        T::Err: fmt::Display,
    {
        let text = self.string(shown)?;
        let n: T = text.parse().map_err(|e| invalid(&text, shown, e))?;
        if range.contains(&n) {
            Ok(n)
        } else {
            Err(invalid(
                &text,
                shown,
                format_args!("{n} is not in {}..={}", range.start(), range.end()),
            ))
        }
    }

    /// The value checked by `check`, which says what is wrong.
    pub fn checked<T>(
        &mut self,
        shown: &str,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, UsageError> {
        let text = self.string(shown)?;
        check(&text).map_err(|e| invalid(&text, shown, e))
    }
}

/// `error: invalid value 'VALUE' for 'OPTION': WHY`, as clap said it.
pub fn invalid(value: &str, shown: &str, why: impl fmt::Display) -> UsageError {
    UsageError(format!("invalid value '{value}' for '{shown}': {why}"))
}

/// An option or argument that is not one of ours.
pub fn unexpected(arg: &Arg) -> UsageError {
    match arg {
        Arg::Long(name) => UsageError(format!("unexpected argument '--{name}' found")),
        Arg::Positional(value) => UsageError(format!(
            "unexpected argument '{}' found",
            value.to_string_lossy()
        )),
    }
}

/// The help text's option lines: `--name <VALUE>` in a column, the description after it.
pub fn option_lines<S: AsRef<str>>(options: &[(&str, S)]) -> String {
    // Long-only options are indented past the `-h, ` of those with a short form.
    let shown = |option: &str| {
        let indent = if option.starts_with("--") { "    " } else { "" };
        format!("{indent}{option}")
    };
    let width = options
        .iter()
        .map(|(o, _)| shown(o).len())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (option, about) in options {
        out.push_str(&format!("  {:width$}  {}\n", shown(option), about.as_ref()));
    }
    out
}

/// Reports a usage error as clap did: on standard error, with the usage line and a hint. The
/// program then exits with status 2 (`USAGE_EXIT`).
pub fn print_usage_error(error: &UsageError, usage: &str) {
    eprintln!("error: {error}\n\n{usage}\n\nFor more information, try '--help'.");
}

/// The exit status for bad usage.
pub const USAGE_EXIT: u8 = 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn parser(args: &[&str]) -> Parser {
        Parser::new(args.iter().copied())
    }

    #[test]
    fn long_options_with_separate_or_inline_values() {
        let mut p = parser(&["--fps", "15", "--size=640x480", "--json", "devices"]);
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Long("fps".into())));
        assert_eq!(p.number_in("--fps <N>", 1..=120).unwrap(), 15);
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Long("size".into())));
        assert_eq!(p.string("--size <WxH>").unwrap(), "640x480");
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Long("json".into())));
        assert_eq!(
            p.next_arg().unwrap(),
            Some(Arg::Positional("devices".into()))
        );
        assert_eq!(p.next_arg().unwrap(), None);
    }

    #[test]
    fn short_help_and_version_and_double_dash() {
        let mut p = parser(&["-h", "-V", "--", "--json", "-x"]);
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Long("help".into())));
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Long("version".into())));
        assert_eq!(
            p.next_arg().unwrap(),
            Some(Arg::Positional("--json".into()))
        );
        assert_eq!(p.next_arg().unwrap(), Some(Arg::Positional("-x".into())));
    }

    #[test]
    fn errors_say_what_and_where() {
        let mut p = parser(&["--fps", "0"]);
        p.next_arg().unwrap();
        assert_eq!(
            p.number_in("--fps <N>", 1..=120).unwrap_err().0,
            "invalid value '0' for '--fps <N>': 0 is not in 1..=120"
        );
        let mut p = parser(&["--fps", "x"]);
        p.next_arg().unwrap();
        assert!(
            p.number_in("--fps <N>", 1..=120)
                .unwrap_err()
                .0
                .starts_with("invalid value 'x' for '--fps <N>': ")
        );
        let mut p = parser(&["--listen"]);
        p.next_arg().unwrap();
        assert_eq!(
            p.string("--listen <ADDR:PORT>").unwrap_err().0,
            "a value is required for '--listen <ADDR:PORT>' but none was supplied"
        );
        let mut p = parser(&["--config", "--print-config"]);
        p.next_arg().unwrap();
        assert!(p.value("--config <PATH>").is_err(), "an option is no value");
        let mut p = parser(&["--json=yes"]);
        p.next_arg().unwrap();
        assert!(p.next_arg().is_err(), "a flag with a value");
        assert!(parser(&["-x"]).next_arg().is_err());
    }
}
