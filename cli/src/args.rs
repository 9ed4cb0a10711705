//! A small command-line parser: flags with values (`--f v` or `--f=v`),
//! repeatable flags, `--help`, and positionals (`-` stays a positional: it
//! means stdin). Hand-written so the CLI keeps few dependencies and every
//! error is ours to word.

use crate::outcome::{usage, CliError};

/// Parsed arguments of one command.
#[derive(Debug, Default)]
pub struct Args {
    values: Vec<(&'static str, String)>,
    /// Arguments that are not flags, in order.
    pub positionals: Vec<String>,
    /// `--help` or `-h` was given.
    pub help: bool,
}

impl Args {
    /// Parses `args` (without the command name); `value_flags` lists the
    /// flags that take a value. Anything else starting with `-` (besides a
    /// lone `-`) is refused, so a typo never silently changes a check.
    pub fn parse(args: &[String], value_flags: &[&'static str]) -> Result<Args, CliError> {
        let mut out = Args::default();
        let mut it = args.iter();
        let mut only_positionals = false;
        while let Some(arg) = it.next() {
            if only_positionals || arg == "-" || !arg.starts_with('-') {
                out.positionals.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_positionals = true;
                continue;
            }
            if arg == "--help" || arg == "-h" {
                out.help = true;
                continue;
            }
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.as_str(), None),
            };
            let Some(flag) = value_flags.iter().find(|f| **f == name) else {
                return Err(usage(format!("unknown option {}", shown(name))));
            };
            let value = match inline {
                Some(v) => v,
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| usage(format!("{flag} needs a value")))?,
            };
            out.values.push((flag, value));
        }
        Ok(out)
    }

    /// The value of a flag given at most once.
    pub fn one(&self, flag: &str) -> Result<Option<&str>, CliError> {
        let mut found = self.values.iter().filter(|(f, _)| *f == flag);
        let first = found.next().map(|(_, v)| v.as_str());
        if found.next().is_some() {
            return Err(usage(format!("{flag} may be given only once")));
        }
        Ok(first)
    }

    /// Every value of a repeatable flag, in command-line order.
    pub fn all(&self, flag: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(f, _)| *f == flag)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Exactly `n` positionals, named in the error by `what`.
    pub fn expect_positionals(&self, n: usize, what: &str) -> Result<(), CliError> {
        match self.positionals.len() {
            k if k == n => Ok(()),
            0 => Err(usage(format!("missing {what}"))),
            _ => Err(usage(format!(
                "expected {what}, got {} arguments",
                self.positionals.len()
            ))),
        }
    }
}

/// An argument for an error message: quoted and cut short (it may be a token
/// pasted in the wrong place, which must not be echoed whole).
fn shown(arg: &str) -> String {
    let cut: String = arg.chars().take(24).collect();
    if cut.len() < arg.len() {
        format!("{cut:?}…")
    } else {
        format!("{cut:?}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn strings(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_values_and_positionals() {
        let a = Args::parse(
            &strings(&[
                "--path",
                "/x",
                "--header=a: b",
                "-",
                "--header",
                "c: d",
                "tok",
            ]),
            &["--path", "--header"],
        )
        .unwrap();
        assert_eq!(a.one("--path").unwrap(), Some("/x"));
        assert_eq!(a.all("--header"), vec!["a: b", "c: d"]);
        assert_eq!(a.positionals, vec!["-".to_string(), "tok".to_string()]);
        assert!(!a.help);
    }

    #[test]
    fn errors_are_usage_errors() {
        assert_eq!(
            Args::parse(&strings(&["--nope"]), &[]).unwrap_err(),
            CliError::Usage("unknown option \"--nope\"".into())
        );
        assert!(Args::parse(&strings(&["--path"]), &["--path"]).is_err());
        let a = Args::parse(&strings(&["--path", "a", "--path", "b"]), &["--path"]).unwrap();
        assert!(a.one("--path").is_err());
    }

    #[test]
    fn double_dash_ends_flags_and_help_is_seen() {
        let a = Args::parse(&strings(&["-h", "--", "--path"]), &["--path"]).unwrap();
        assert!(a.help);
        assert_eq!(a.positionals, vec!["--path".to_string()]);
    }

    #[test]
    fn long_unknown_options_are_not_echoed_whole() {
        let long = format!("-{}", "x".repeat(200));
        let e = Args::parse(&[long], &[]).unwrap_err().to_string();
        assert!(e.len() < 60, "{e}");
    }
}
