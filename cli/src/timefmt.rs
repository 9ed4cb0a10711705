//! Unix times as UTC dates and as "3m ago" / "in 2h", for people reading
//! `exp`/`nbf`/`iat`. Written out here (days-to-civil arithmetic) so the CLI
//! needs no date library.

/// 9999-12-31T23:59:59Z: later times are shown as a plain number.
const MAX_SHOWN_SECS: u64 = 253_402_300_799;

/// RFC 3339 UTC date for Unix seconds, e.g. `2023-11-14T22:13:20Z`.
pub fn utc(secs: u64) -> String {
    if secs > MAX_SHOWN_SECS {
        return "after year 9999".to_string();
    }
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (days >= 0).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// `t` relative to `now`: "3m ago", "in 2h", or "now".
pub fn relative(t: u64, now: u64) -> String {
    if t == now {
        "now".to_string()
    } else if t < now {
        format!("{} ago", span(now - t))
    } else {
        format!("in {}", span(t - now))
    }
}

/// A duration in its two largest units: "45s", "3m20s", "2h", "1d4h", "400d".
pub fn span(secs: u64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3600, "h"), (60, "m"), (1, "s")];
    for (i, (size, name)) in UNITS.iter().enumerate() {
        if secs >= *size {
            let major = secs / size;
            let mut out = format!("{major}{name}");
            // Beyond 30 days the second unit is noise.
            if let Some((next, next_name)) = UNITS.get(i + 1) {
                let minor = (secs % size) / next;
                if minor > 0 && secs < 30 * 86_400 {
                    out.push_str(&format!("{minor}{next_name}"));
                }
            }
            return out;
        }
    }
    "0s".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_in_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(4_102_444_800), "2100-01-01T00:00:00Z");
        assert_eq!(utc(MAX_SHOWN_SECS), "9999-12-31T23:59:59Z");
        assert_eq!(utc(u64::MAX), "after year 9999");
    }

    #[test]
    fn relative_times() {
        assert_eq!(relative(1000, 1180), "3m ago");
        assert_eq!(relative(1000 + 7200, 1000), "in 2h");
        assert_eq!(relative(1000, 1000 + 200), "3m20s ago");
        assert_eq!(relative(5, 5), "now");
        assert_eq!(span(90_061), "1d1h");
        assert_eq!(span(400 * 86_400 + 5), "400d");
        assert_eq!(span(45), "45s");
    }
}
