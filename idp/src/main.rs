//! `jwt-idp`: a small, honest identity provider for demos and tests, and an
//! offline token minter. It signs with keys it generates itself (RS256, ES256,
//! EdDSA), publishes only their public halves, and never prints, logs or
//! serves a private key, a password or a token it did not mean to output.
//!
//! Design choices:
//! - The key id is the RFC 7638 thumbprint, so a `kid` always names exactly one key.
//! - All time-dependent logic takes `now` as an argument; only `main` and the
//!   server loop read the clock (and `--now` overrides it for tests).
//! - The HTTP layer is our own ~300 lines: one request per connection, bounded
//!   head and body, no allocation sized by the client.

mod cli;
mod http;
mod keys;
mod keystore;
mod login;
mod mint;
mod server;
mod users;

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::ExitCode;

use cli::Command;
use keystore::{jwks_text, KeyStore, Retire};
use zeroize::Zeroizing;

/// Unix seconds from the system clock (0 if the clock is before 1970).
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads one line of at most `max` bytes from stdin, without its line ending.
fn read_secret_line(max: usize) -> Result<Zeroizing<String>, String> {
    let mut buf = Zeroizing::new(Vec::new());
    std::io::stdin()
        .lock()
        .take(max as u64 + 2)
        .read_until(b'\n', &mut buf)
        .map_err(|e| format!("stdin: {e}"))?;
    while matches!(buf.last(), Some(b'\n' | b'\r')) {
        buf.pop();
    }
    if buf.len() > max {
        return Err(format!("password longer than {max} bytes"));
    }
    String::from_utf8(buf.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| "password is not UTF-8".to_owned())
}

fn print_line(text: &str) -> Result<(), String> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

fn run(command: Command) -> Result<(), String> {
    match command {
        Command::Help => print_line(cli::USAGE),
        Command::Keygen {
            key_dir,
            alg,
            bits,
            now,
        } => {
            let mut store = KeyStore::open(&key_dir).map_err(|e| e.to_string())?;
            let kid = store
                .generate(alg, bits, now.unwrap_or_else(unix_now), Retire::Keep)
                .map_err(|e| e.to_string())?;
            print_line(&kid)
        }
        Command::Jwks { key_dir, now } => {
            let store = KeyStore::open(&key_dir).map_err(|e| e.to_string())?;
            store.active().map_err(|e| e.to_string())?;
            print_line(&jwks_text(&store.jwks(now.unwrap_or_else(unix_now))))
        }
        Command::Mint {
            key_dir,
            mut spec,
            now,
        } => {
            spec.now = now.unwrap_or_else(unix_now);
            let store = KeyStore::open(&key_dir).map_err(|e| e.to_string())?;
            let token = mint::mint(&store, &spec).map_err(|e| e.to_string())?;
            print_line(&token)
        }
        Command::Rotate {
            key_dir,
            alg,
            bits,
            grace,
            now,
        } => {
            let mut store = KeyStore::open(&key_dir).map_err(|e| e.to_string())?;
            let alg = match alg {
                Some(a) => a,
                None => store.active().map_err(|e| e.to_string())?.1.alg(),
            };
            let kid = store
                .generate(
                    alg,
                    bits,
                    now.unwrap_or_else(unix_now),
                    Retire::After(grace),
                )
                .map_err(|e| e.to_string())?;
            print_line(&kid)
        }
        Command::HashPassword => {
            let password = read_secret_line(users::MAX_PASSWORD)?;
            let hash = users::hash_password(&password).map_err(|e| e.to_string())?;
            print_line(&hash)
        }
        Command::Serve(config) => {
            let users = users::UserDb::load(&config.users).map_err(|e| e.to_string())?;
            server::serve(config, users).map_err(|e| e.to_string())
        }
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match cli::parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("jwt-idp: {e}\n{}", cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jwt-idp: {e}");
            ExitCode::FAILURE
        }
    }
}
