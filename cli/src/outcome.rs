//! What a command produces: text for stdout and stderr and an exit code, or
//! an error. Commands return values instead of printing, so `main` is the one
//! place that writes (and a closed pipe can never turn into a panic).

use std::fmt;

/// Exit code: success (valid config, token decoded, request allowed, signature valid).
pub const EXIT_OK: u8 = 0;
/// Exit code: a negative answer (request denied, signature invalid, token not decodable).
pub const EXIT_NO: u8 = 1;
/// Exit code: usage error, unreadable input, invalid configuration.
pub const EXIT_USAGE: u8 = 2;

/// The finished result of one command.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Printed to stdout as is.
    pub stdout: String,
    /// Printed to stderr as is (warnings, error lines).
    pub stderr: String,
    /// Process exit code.
    pub code: u8,
}

impl Outcome {
    /// An outcome with only stdout text, so the common case reads short.
    pub fn out(stdout: String, code: u8) -> Self {
        Outcome {
            stdout,
            stderr: String::new(),
            code,
        }
    }
}

/// Why a command could not run at all; always exit code 2. Messages are
/// short, lowercase, and never quote a token or key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// The command line is wrong (unknown flag, missing value...).
    Usage(String),
    /// An input file, stdin or configuration could not be read or used.
    Input(String),
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(m) | CliError::Input(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for CliError {}

/// Shorthand for building a usage error.
pub fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

/// Shorthand for building an input error.
pub fn input(msg: impl Into<String>) -> CliError {
    CliError::Input(msg.into())
}
