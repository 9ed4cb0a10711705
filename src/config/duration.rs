//! proto3-JSON `google.protobuf.Duration` strings ("5s", "0.5s", "1.000000001s").
//!
//! jwt_authn configs carry durations in this form; accepting exactly it (and
//! nothing looser like "5 s" or "5m") keeps a config portable between the
//! native filter and this one.

use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A non-negative duration parsed from proto3-JSON text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ProtoDuration(pub Duration);

/// Why a duration string was refused; the message quotes the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid duration {:?}", self.0)
    }
}

/// Longest input echoed back in an error, so a hostile config cannot blow up logs.
const MAX_ECHO: usize = 40;

/// Parses "<seconds>[.<1-9 digits>]s". Negative values are refused: no field of
/// ours has a meaning for them.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || {
        let mut shown: String = text.chars().take(MAX_ECHO).collect();
        if shown.len() < text.len() {
            shown.push('…');
        }
        DurationError(shown)
    };
    let body = text.strip_suffix('s').ok_or_else(err)?;
    let (secs, frac) = match body.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (body, None),
    };
    if secs.is_empty() || secs.len() > 12 || !secs.bytes().all(|b| b.is_ascii_digit()) {
        return Err(err());
    }
    let secs: u64 = secs.parse().map_err(|_| err())?;
    let nanos = match frac {
        None => 0,
        Some(f) => {
            if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err());
            }
            let scale = 10u32.pow(9 - f.len() as u32);
            f.parse::<u32>().map_err(|_| err())? * scale
        }
    };
    Ok(Duration::new(secs, nanos))
}

impl<'de> serde::Deserialize<'de> for ProtoDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ProtoDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"5s\" or \"0.5s\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ProtoDuration, E> {
                parse_duration(v).map(ProtoDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_proto3_forms() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("0.5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.000000001s"), Ok(Duration::new(1, 1)));
        assert_eq!(parse_duration("600s"), Ok(Duration::from_secs(600)));
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "5 s",
            "5",
            "s",
            "-1s",
            "1.s",
            "1.0000000001s",
            "5m",
            "",
            "1e3s",
            "+1s",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_duration("5 s").unwrap_err().to_string(),
            "invalid duration \"5 s\""
        );
    }
}
