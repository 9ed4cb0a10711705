//! `jwt-authn`: the operator CLI of jwt-authn-wasm.
//!
//! Every decision comes from the core crate `jwt_authn`, the very code the
//! filter runs in Envoy: the CLI only reads files, builds a request and
//! prints. So "what would the filter do with this?" has one answer, whether
//! asked of Envoy or of this tool.
//!
//! Design choices:
//! - Offline: remote keys come from files (`--jwks`), never the network.
//! - Commands return an [`outcome::Outcome`]; only `main` writes, so a closed
//!   pipe cannot panic, and exit codes are decided in one place.
//! - Nothing prints a token, a signature or key material; inputs are bounded.

mod args;
mod bootstrap;
mod check_config;
mod decode;
mod describe;
mod help;
mod input;
mod jws_verify;
mod outcome;
mod timefmt;
mod verify;

use outcome::{usage, CliError, Outcome, EXIT_OK, EXIT_USAGE};
use std::io::Write as _;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(_) => return finish(Err(usage("arguments must be UTF-8")), None),
        }
    }
    let command = args.first().cloned();
    let result = run(&args);
    finish(result, command.as_deref())
}

/// Dispatches on the command name.
fn run(args: &[String]) -> Result<Outcome, CliError> {
    let Some((command, rest)) = args.split_first() else {
        return Ok(Outcome {
            stdout: String::new(),
            stderr: help::MAIN.to_string(),
            code: EXIT_USAGE,
        });
    };
    match command.as_str() {
        "check-config" => check_config::run(rest),
        "decode" => decode::run(rest),
        "verify" => verify::run(rest),
        "jws-verify" => jws_verify::run(rest),
        "--help" | "-h" => Ok(Outcome::out(help::MAIN.to_string(), EXIT_OK)),
        "help" => match rest.first().map(String::as_str) {
            None => Ok(Outcome::out(help::MAIN.to_string(), EXIT_OK)),
            Some("check-config") => Ok(Outcome::out(help::CHECK_CONFIG.to_string(), EXIT_OK)),
            Some("decode") => Ok(Outcome::out(help::DECODE.to_string(), EXIT_OK)),
            Some("verify") => Ok(Outcome::out(help::VERIFY.to_string(), EXIT_OK)),
            Some("jws-verify") => Ok(Outcome::out(help::JWS_VERIFY.to_string(), EXIT_OK)),
            Some(_) => Err(usage(
                "unknown command (commands: check-config, decode, verify, jws-verify)",
            )),
        },
        "--version" | "-V" => Ok(Outcome::out(
            format!("jwt-authn {}\n", env!("CARGO_PKG_VERSION")),
            EXIT_OK,
        )),
        _ => Err(usage(
            "unknown command (commands: check-config, decode, verify, jws-verify)",
        )),
    }
}

/// Writes the outcome (write errors, e.g. a closed pipe, are ignored) and
/// turns it into the exit code.
fn finish(result: Result<Outcome, CliError>, command: Option<&str>) -> ExitCode {
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            let hint = match (&e, command) {
                (CliError::Usage(_), Some(c))
                    if matches!(c, "check-config" | "decode" | "verify" | "jws-verify") =>
                {
                    format!("\n(see 'jwt-authn {c} --help')")
                }
                (CliError::Usage(_), _) => "\n(see 'jwt-authn --help')".to_string(),
                _ => String::new(),
            };
            Outcome {
                stdout: String::new(),
                stderr: format!("jwt-authn: {e}{hint}\n"),
                code: EXIT_USAGE,
            }
        }
    };
    let _ = std::io::stdout()
        .lock()
        .write_all(outcome.stdout.as_bytes());
    let _ = std::io::stdout().lock().flush();
    let _ = std::io::stderr()
        .lock()
        .write_all(outcome.stderr.as_bytes());
    ExitCode::from(outcome.code)
}
