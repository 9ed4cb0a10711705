//! `check-config`: validate a plugin configuration (or every one of ours in
//! an Envoy bootstrap) with the filter's own parser, and read back what it
//! understood.

use crate::args::Args;
use crate::bootstrap::{classify, Document};
use crate::describe;
use crate::help;
use crate::input::read_file;
use crate::outcome::{input, usage, CliError, Outcome, EXIT_OK, EXIT_USAGE};
use jwt_authn::config::{Config, ConfigError};
use serde_json::Value;

/// Runs `jwt-authn check-config FILE`.
pub fn run(args: &[String]) -> Result<Outcome, CliError> {
    let a = Args::parse(args, &[])?;
    if a.help {
        return Ok(Outcome::out(help::CHECK_CONFIG.to_string(), EXIT_OK));
    }
    a.expect_positionals(1, "FILE")?;
    let file = a.positionals[0].as_str();
    let bytes = read_file(file)?;
    let mut out = Outcome::default();
    match classify(&bytes, file)? {
        Document::Plugin => match check(&bytes) {
            Ok((lines, warnings)) => {
                push_lines(&mut out.stdout, "", &lines);
                push_lines(&mut out.stderr, "", &warnings);
            }
            Err(e) => {
                out.stderr = format!("{e}\n");
                out.code = EXIT_USAGE;
            }
        },
        Document::Bootstrap(filters) => {
            for f in filters {
                if let Some(w) = &f.warning {
                    out.stderr
                        .push_str(&format!("warning: filter {}: {w}\n", f.label));
                }
                let result = f
                    .configuration
                    .and_then(|b| check(&b).map_err(|e| e.to_string()));
                match result {
                    Ok((lines, warnings)) => {
                        out.stdout.push_str(&format!("filter {}:\n", f.label));
                        push_lines(&mut out.stdout, "  ", &lines);
                        push_lines(&mut out.stderr, "", &warnings);
                    }
                    Err(e) => {
                        out.stderr.push_str(&format!("filter {}: {e}\n", f.label));
                        out.code = EXIT_USAGE;
                    }
                }
            }
        }
    }
    Ok(out)
}

fn push_lines(buf: &mut String, indent: &str, lines: &[String]) {
    for l in lines {
        buf.push_str(indent);
        buf.push_str(l);
        buf.push('\n');
    }
}

/// Parses with the core (the filter's exact code path) and summarizes.
fn check(bytes: &[u8]) -> Result<(Vec<String>, Vec<String>), ConfigError> {
    let config = Config::parse(bytes)?;
    let raw: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
    Ok((
        describe::describe(&config, &raw),
        describe::warnings(&config),
    ))
}

/// Loads the configuration `verify` replays: a plugin configuration, or a
/// bootstrap holding exactly one of our filters. Errors carry the core's
/// message with its JSON path.
pub fn load(file: &str) -> Result<Config, CliError> {
    let bytes = read_file(file)?;
    match classify(&bytes, file)? {
        Document::Plugin => Config::parse(&bytes).map_err(|e| input(format!("{file}: {e}"))),
        Document::Bootstrap(mut filters) => {
            if filters.len() != 1 {
                return Err(usage(format!(
                    "{file}: the bootstrap has {} jwt-authn filters; pass one plugin configuration instead",
                    filters.len()
                )));
            }
            let f = filters.remove(0);
            let b = f
                .configuration
                .map_err(|e| input(format!("{file}: filter {}: {e}", f.label)))?;
            Config::parse(&b).map_err(|e| input(format!("{file}: filter {}: {e}", f.label)))
        }
    }
}
