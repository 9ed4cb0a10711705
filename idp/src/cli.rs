//! Command-line parsing. The subcommands and option names are a contract that
//! the demo script and the end-to-end tests rely on, so they are spelled out
//! here in one place and every unknown or repeated option is an error.

use std::fmt;
use std::path::PathBuf;

use crate::keys::Alg;
use crate::mint::{parse_claim, TokenSpec};
use crate::server::ServeConfig;

/// Printed by `jwt-idp help` and after a usage error.
pub const USAGE: &str = "\
usage:
  jwt-idp keygen  --key-dir DIR [--alg RS256|ES256|EdDSA] [--bits 2048] [--now UNIX]
  jwt-idp jwks    --key-dir DIR [--now UNIX]
  jwt-idp mint    --key-dir DIR --iss URL --aud AUD --sub SUB [--role ROLE] [--scope \"a b\"]
                  [--ttl SECS] [--claim NAME=JSON]... [--now UNIX]
  jwt-idp rotate  --key-dir DIR [--alg ALG] [--bits 2048] [--grace SECS] [--now UNIX]
  jwt-idp hash-password            (reads one line from stdin)
  jwt-idp serve   --key-dir DIR --users FILE --issuer URL --audience AUD
                  [--listen 127.0.0.1:8081] [--token-ttl 300] [--alg ES256] [--bits 2048]
                  [--rotate-every SECS] [--grace 3600]";

/// Default token lifetime for `mint` and `serve`.
pub const DEFAULT_TTL: u64 = 300;
/// Default grace period of a rotated-out key.
pub const DEFAULT_GRACE: u64 = 3600;
/// Default RSA modulus size.
pub const DEFAULT_BITS: usize = 2048;
/// Default listen address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

/// A usage error; the message names the option, never its value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CliError {
    /// No subcommand, or an unknown one.
    UnknownCommand,
    /// An option this subcommand does not take.
    UnknownOption(String),
    /// An option given twice (only `--claim` repeats).
    Repeated(String),
    /// An option without its value.
    MissingValue(String),
    /// A required option is absent.
    Missing(&'static str),
    /// An option's value does not parse.
    BadValue(&'static str),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::UnknownCommand => f.write_str("unknown or missing command"),
            CliError::UnknownOption(o) => write!(f, "unknown option {o}"),
            CliError::Repeated(o) => write!(f, "option {o} given twice"),
            CliError::MissingValue(o) => write!(f, "option {o} needs a value"),
            CliError::Missing(o) => write!(f, "missing {o}"),
            CliError::BadValue(o) => write!(f, "invalid value for {o}"),
        }
    }
}

impl std::error::Error for CliError {}

/// What to do.
#[derive(Debug, Clone)]
pub enum Command {
    /// Print usage.
    Help,
    /// Create a key and make it active (older keys stay published).
    Keygen {
        /// Key directory.
        key_dir: PathBuf,
        /// Algorithm of the new key.
        alg: Alg,
        /// RSA modulus size.
        bits: usize,
        /// Creation time.
        now: Option<u64>,
    },
    /// Print the public JWKS.
    Jwks {
        /// Key directory.
        key_dir: PathBuf,
        /// Time at which grace periods are evaluated.
        now: Option<u64>,
    },
    /// Print a signed token.
    Mint {
        /// Key directory.
        key_dir: PathBuf,
        /// The token; `spec.now` is filled from `now` or the clock.
        spec: TokenSpec,
        /// `iat`.
        now: Option<u64>,
    },
    /// Create a key, make it active, retire the others after the grace period.
    Rotate {
        /// Key directory.
        key_dir: PathBuf,
        /// Algorithm of the new key (default: the active key's).
        alg: Option<Alg>,
        /// RSA modulus size.
        bits: usize,
        /// Seconds the old keys stay published.
        grace: u64,
        /// Rotation time.
        now: Option<u64>,
    },
    /// Read a password from stdin, print its argon2id hash.
    HashPassword,
    /// Run the HTTP server.
    Serve(ServeConfig),
}

/// Options collected for one subcommand.
struct Opts {
    values: Vec<(&'static str, String)>,
}

impl Opts {
    fn parse(allowed: &'static [&'static str], args: &[String]) -> Result<Self, CliError> {
        let mut values: Vec<(&'static str, String)> = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let Some(&known) = allowed.iter().find(|a| **a == name) else {
                return Err(CliError::UnknownOption(
                    name.chars().take(40).collect::<String>(),
                ));
            };
            let value = match inline {
                Some(v) => v,
                None => iter
                    .next()
                    .cloned()
                    .ok_or_else(|| CliError::MissingValue(known.to_owned()))?,
            };
            if known != "--claim" && values.iter().any(|(n, _)| *n == known) {
                return Err(CliError::Repeated(known.to_owned()));
            }
            values.push((known, value));
        }
        Ok(Opts { values })
    }

    fn get(&self, name: &'static str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &'static str) -> Result<String, CliError> {
        self.get(name)
            .map(str::to_owned)
            .ok_or(CliError::Missing(name))
    }

    fn parsed<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>, CliError> {
        self.get(name)
            .map(|v| v.parse().map_err(|_| CliError::BadValue(name)))
            .transpose()
    }

    fn all(&self, name: &'static str) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .filter(move |(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Command, CliError> {
    let Some((command, rest)) = args.split_first() else {
        return Err(CliError::UnknownCommand);
    };
    match command.as_str() {
        "help" | "--help" | "-h" => Ok(Command::Help),
        "keygen" => {
            let o = Opts::parse(&["--key-dir", "--alg", "--bits", "--now"], rest)?;
            Ok(Command::Keygen {
                key_dir: o.required("--key-dir")?.into(),
                alg: o.parsed("--alg")?.unwrap_or(Alg::Es256),
                bits: o.parsed("--bits")?.unwrap_or(DEFAULT_BITS),
                now: o.parsed("--now")?,
            })
        }
        "jwks" => {
            let o = Opts::parse(&["--key-dir", "--now"], rest)?;
            Ok(Command::Jwks {
                key_dir: o.required("--key-dir")?.into(),
                now: o.parsed("--now")?,
            })
        }
        "mint" => {
            let o = Opts::parse(
                &[
                    "--key-dir",
                    "--iss",
                    "--aud",
                    "--sub",
                    "--role",
                    "--scope",
                    "--ttl",
                    "--claim",
                    "--now",
                ],
                rest,
            )?;
            let extra = o
                .all("--claim")
                .map(|c| parse_claim(c).map_err(|_| CliError::BadValue("--claim")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Command::Mint {
                key_dir: o.required("--key-dir")?.into(),
                spec: TokenSpec {
                    issuer: o.required("--iss")?,
                    audience: o.required("--aud")?,
                    subject: o.required("--sub")?,
                    role: o.get("--role").map(str::to_owned),
                    scope: o.get("--scope").map(str::to_owned),
                    ttl: o.parsed("--ttl")?.unwrap_or(DEFAULT_TTL),
                    now: 0,
                    extra,
                },
                now: o.parsed("--now")?,
            })
        }
        "rotate" => {
            let o = Opts::parse(&["--key-dir", "--alg", "--bits", "--grace", "--now"], rest)?;
            Ok(Command::Rotate {
                key_dir: o.required("--key-dir")?.into(),
                alg: o.parsed("--alg")?,
                bits: o.parsed("--bits")?.unwrap_or(DEFAULT_BITS),
                grace: o.parsed("--grace")?.unwrap_or(DEFAULT_GRACE),
                now: o.parsed("--now")?,
            })
        }
        "hash-password" => {
            Opts::parse(&[], rest)?;
            Ok(Command::HashPassword)
        }
        "serve" => {
            let o = Opts::parse(
                &[
                    "--key-dir",
                    "--users",
                    "--listen",
                    "--issuer",
                    "--audience",
                    "--token-ttl",
                    "--alg",
                    "--bits",
                    "--rotate-every",
                    "--grace",
                ],
                rest,
            )?;
            let rotate_every: Option<u64> = o.parsed("--rotate-every")?;
            if rotate_every == Some(0) {
                return Err(CliError::BadValue("--rotate-every"));
            }
            let token_ttl = o.parsed("--token-ttl")?.unwrap_or(DEFAULT_TTL);
            if token_ttl == 0 || token_ttl > crate::mint::MAX_TTL {
                return Err(CliError::BadValue("--token-ttl"));
            }
            Ok(Command::Serve(ServeConfig {
                key_dir: o.required("--key-dir")?.into(),
                users: o.required("--users")?.into(),
                listen: o.get("--listen").unwrap_or(DEFAULT_LISTEN).to_owned(),
                issuer: o.required("--issuer")?,
                audience: o.required("--audience")?,
                token_ttl,
                alg: o.parsed("--alg")?.unwrap_or(Alg::Es256),
                rsa_bits: o.parsed("--bits")?.unwrap_or(DEFAULT_BITS),
                rotate_every,
                grace: o.parsed("--grace")?.unwrap_or(DEFAULT_GRACE),
            }))
        }
        _ => Err(CliError::UnknownCommand),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Vec<String> {
        s.iter().map(|a| a.to_string()).collect()
    }

    #[test]
    fn mint_with_all_options() {
        let cmd = parse(&args(&[
            "mint",
            "--key-dir",
            "k",
            "--iss",
            "http://i",
            "--aud",
            "a",
            "--sub",
            "s",
            "--role",
            "admin",
            "--scope",
            "x y",
            "--ttl=60",
            "--claim",
            "n=1",
            "--claim",
            "m=\"v\"",
            "--now",
            "5",
        ]))
        .unwrap();
        let Command::Mint { key_dir, spec, now } = cmd else {
            panic!("not mint")
        };
        assert_eq!(key_dir, PathBuf::from("k"));
        assert_eq!(now, Some(5));
        assert_eq!(spec.issuer, "http://i");
        assert_eq!(spec.scope.as_deref(), Some("x y"));
        assert_eq!(spec.ttl, 60);
        assert_eq!(spec.extra.len(), 2);
    }

    #[test]
    fn serve_defaults() {
        let cmd = parse(&args(&[
            "serve",
            "--key-dir",
            "k",
            "--users",
            "u.json",
            "--issuer",
            "http://i",
            "--audience",
            "a",
        ]))
        .unwrap();
        let Command::Serve(c) = cmd else {
            panic!("not serve")
        };
        assert_eq!(c.listen, "127.0.0.1:8081");
        assert_eq!(c.token_ttl, 300);
        assert_eq!(c.alg, Alg::Es256);
        assert_eq!(c.rotate_every, None);
        assert_eq!(c.grace, 3600);
    }

    #[test]
    fn usage_errors_are_typed() {
        let cases: Vec<(Vec<&str>, CliError)> = vec![
            (vec![], CliError::UnknownCommand),
            (vec!["frobnicate"], CliError::UnknownCommand),
            (vec!["jwks"], CliError::Missing("--key-dir")),
            (
                vec!["jwks", "--key-dir"],
                CliError::MissingValue("--key-dir".into()),
            ),
            (
                vec!["jwks", "--key-dir", "a", "--key-dir", "b"],
                CliError::Repeated("--key-dir".into()),
            ),
            (
                vec!["jwks", "--bogus", "1"],
                CliError::UnknownOption("--bogus".into()),
            ),
            (
                vec!["keygen", "--key-dir", "k", "--alg", "HS256"],
                CliError::BadValue("--alg"),
            ),
            (
                vec!["keygen", "--key-dir", "k", "--bits", "-1"],
                CliError::BadValue("--bits"),
            ),
            (
                vec!["mint", "--key-dir", "k", "--iss", "i", "--aud", "a"],
                CliError::Missing("--sub"),
            ),
            (
                vec![
                    "mint",
                    "--key-dir",
                    "k",
                    "--iss",
                    "i",
                    "--aud",
                    "a",
                    "--sub",
                    "s",
                    "--claim",
                    "x",
                ],
                CliError::BadValue("--claim"),
            ),
            (
                vec!["hash-password", "extra"],
                CliError::UnknownOption("extra".into()),
            ),
            (
                vec![
                    "serve",
                    "--key-dir",
                    "k",
                    "--users",
                    "u",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                    "--rotate-every",
                    "0",
                ],
                CliError::BadValue("--rotate-every"),
            ),
            (
                vec![
                    "serve",
                    "--key-dir",
                    "k",
                    "--users",
                    "u",
                    "--issuer",
                    "i",
                    "--audience",
                    "a",
                    "--token-ttl",
                    "0",
                ],
                CliError::BadValue("--token-ttl"),
            ),
        ];
        for (a, expected) in cases {
            assert_eq!(parse(&args(&a)).unwrap_err(), expected, "{a:?}");
        }
    }
}
