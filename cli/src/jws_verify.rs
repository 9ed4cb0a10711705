//! `jws-verify`: check only the JWS layer (structure, algorithm, key,
//! signature) with the core's verifier, for signed payloads that are not JWT
//! claim sets. No claim is read, so no time, issuer or audience check runs.

use crate::args::Args;
use crate::help;
use crate::input::{read_text, read_token};
use crate::outcome::{input, usage, CliError, Outcome, EXIT_NO, EXIT_OK};
use jwt_authn::jwk::{parse_key_set, JwksOptions};
use jwt_authn::jws::{JwsError, UntrustedJws};
use serde::Serialize;

/// Longest token accepted: the largest `extensions.max_token_bytes` the
/// filter can be configured with.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;

/// The printed result; field names are a contract.
#[derive(Debug, Serialize)]
struct Report {
    valid: bool,
    reason: &'static str,
    alg: Option<String>,
    kid: Option<String>,
}

/// Runs `jwt-authn jws-verify --jwks FILE TOKEN`.
pub fn run(args: &[String]) -> Result<Outcome, CliError> {
    let a = Args::parse(args, &["--jwks"])?;
    if a.help {
        return Ok(Outcome::out(help::JWS_VERIFY.to_string(), EXIT_OK));
    }
    let file = a
        .one("--jwks")?
        .ok_or_else(|| usage("--jwks FILE is required"))?;
    a.expect_positionals(1, "TOKEN (or - for stdin)")?;
    // An offline tool: shared HMAC secrets in a local file are fine here.
    let opts = JwksOptions {
        allow_hmac: true,
        ..JwksOptions::default()
    };
    let text = read_text(file)?;
    let keys = parse_key_set(&text, &opts).map_err(|e| input(format!("{file}: {e}")))?;
    let mut stderr = String::new();
    for s in &keys.skipped {
        let kid = s
            .kid
            .as_deref()
            .map(|k| format!(" (kid {k:?})"))
            .unwrap_or_default();
        stderr.push_str(&format!(
            "warning: {file}: key {}{kid} skipped: {}\n",
            s.index, s.reason
        ));
    }
    let token = read_token(&a.positionals[0])?;
    let report = match UntrustedJws::parse(&token, MAX_TOKEN_BYTES) {
        Err(e) => {
            let alg = match &e {
                JwsError::AlgNotAllowed(name) if !name.is_empty() => Some(name.clone()),
                _ => None,
            };
            Report {
                valid: false,
                reason: e.code(),
                alg,
                kid: None,
            }
        }
        Ok(jws) => {
            let h = jws.header();
            let (valid, reason) = match jws.verify(&keys) {
                Ok(_) => (true, "ok"),
                Err(e) => (false, e.code()),
            };
            Report {
                valid,
                reason,
                alg: Some(h.alg.name().to_string()),
                kid: h.kid.clone(),
            }
        }
    };
    let code = if report.valid { EXIT_OK } else { EXIT_NO };
    let json = serde_json::to_string(&report).map_err(|_| input("cannot encode the result"))?;
    Ok(Outcome {
        stdout: format!("{json}\n"),
        stderr,
        code,
    })
}
