//! Bounded reads of files and tokens, so no input can make the CLI allocate
//! without limit.

use crate::outcome::{input, CliError};
use std::io::Read;

/// Largest file read (configurations, bootstraps, key sets): far above any
/// real one, small enough that a wrong path (a disk image...) fails fast.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Largest token read from stdin; the filter's own limit (at most 64 KiB) is
/// applied afterwards, so an oversized token still gets its real verdict.
pub const MAX_STDIN_TOKEN_BYTES: usize = 1024 * 1024;

/// Reads a whole file of at most [`MAX_FILE_BYTES`].
pub fn read_file(path: &str) -> Result<Vec<u8>, CliError> {
    let file = std::fs::File::open(path)
        .map_err(|e| input(format!("{path}: cannot read: {}", io_reason(&e))))?;
    read_bounded(file, MAX_FILE_BYTES).map_err(|e| match e {
        Bounded::TooLarge => input(format!("{path}: larger than {} MiB", MAX_FILE_BYTES >> 20)),
        Bounded::Io(e) => input(format!("{path}: cannot read: {}", io_reason(&e))),
    })
}

/// Reads a file as UTF-8 text.
pub fn read_text(path: &str) -> Result<String, CliError> {
    String::from_utf8(read_file(path)?).map_err(|_| input(format!("{path}: not UTF-8 text")))
}

/// A token argument: the text itself, or `-` to read stdin (surrounding
/// whitespace removed, so `echo $TOKEN |` works).
pub fn read_token(arg: &str) -> Result<String, CliError> {
    if arg != "-" {
        return Ok(arg.to_string());
    }
    let bytes =
        read_bounded(std::io::stdin().lock(), MAX_STDIN_TOKEN_BYTES).map_err(|e| match e {
            Bounded::TooLarge => input(format!(
                "token on stdin is larger than {} KiB",
                MAX_STDIN_TOKEN_BYTES >> 10
            )),
            Bounded::Io(e) => input(format!("stdin: cannot read: {}", io_reason(&e))),
        })?;
    let text = String::from_utf8(bytes).map_err(|_| input("token on stdin is not UTF-8"))?;
    Ok(text.trim().to_string())
}

enum Bounded {
    TooLarge,
    Io(std::io::Error),
}

fn read_bounded(r: impl Read, max: usize) -> Result<Vec<u8>, Bounded> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    r.take(limit).read_to_end(&mut buf).map_err(Bounded::Io)?;
    if buf.len() > max {
        return Err(Bounded::TooLarge);
    }
    Ok(buf)
}

/// The OS reason without Rust's "(os error N)" suffix, in lowercase.
fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn bounded_reads_refuse_oversized_input() {
        assert!(matches!(
            read_bounded(&[0u8; 11][..], 10),
            Err(Bounded::TooLarge)
        ));
        assert_eq!(read_bounded(&[1u8; 10][..], 10).ok().unwrap().len(), 10);
    }

    #[test]
    fn missing_files_say_so_without_os_codes() {
        let e = read_file("/nonexistent/x.json").unwrap_err().to_string();
        assert_eq!(
            e,
            "/nonexistent/x.json: cannot read: no such file or directory"
        );
    }

    #[test]
    fn token_arguments_pass_through() {
        assert_eq!(read_token("a.b.c").unwrap(), "a.b.c");
    }
}
