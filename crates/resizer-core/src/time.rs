//! Wall-clock helpers (RFC 3339, UTC) without a date-time dependency.

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(unix_secs: i64) -> String {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Parses an RFC 3339 instant (`2026-11-22T10:00:00Z`, optional fraction,
/// `Z` or `±HH:MM`) into Unix milliseconds. `None` for anything else.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    // Every valid instant is ASCII; refusing anything else up front is what
    // makes the byte-offset slicing below unable to split a character.
    if !s.is_ascii() {
        return None;
    }
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = s.get(from..to)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (h, mi, sec) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo as u32) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let ms: String = frac[..digits].chars().chain("000".chars()).take(3).collect();
        millis = ms.parse::<i64>().ok()?;
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) && &rest[3..4] == ":" => {
            let (oh, om) = (digits(&rest[1..3])?, digits(&rest[4..6])?);
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec - offset_secs) * 1000) + millis)
}

/// A run of ASCII digits as a number; no sign, no spaces.
fn digits(part: &str) -> Option<i64> {
    (!part.is_empty() && part.bytes().all(|c| c.is_ascii_digit()))
        .then(|| part.parse().ok())
        .flatten()
}

fn days_in_month(y: i64, m: u32) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Converts a proleptic Gregorian date to days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Returns the current Unix time in milliseconds: job deadlines and the identity change log.
pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Returns the current Unix time in seconds.
pub fn now_unix_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_rfc3339_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_314_645), "2026-11-22T02:30:45Z");
    }

    #[test]
    fn test_parse_rfc3339_round_trips_and_rejects() {
        for secs in [0, 951_782_400, 1_795_314_645, 4_102_444_800] {
            assert_eq!(parse_rfc3339_ms(&rfc3339(secs)), Some(secs * 1000));
        }
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T02:30:45.25Z"),
            Some(1_795_314_645_250)
        );
        assert_eq!(
            parse_rfc3339_ms("2026-11-22T03:30:45+01:00"),
            Some(1_795_314_645_000)
        );
        for bad in [
            "",
            "2026-11-22",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-22T02:30:45",
            "2026-11-22T02:30:45.Z",
            "x026-11-22T02:30:45Z",
            "2026-11-22T02:30:45+-1:00",
            "2026-11-22T02:30:45+0\u{e9}00",
        ] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }

    /// Any character at any position, multi-byte ones included, is an answer
    /// (`None` or a time), never a panic: the query string is the caller's.
    #[test]
    fn test_parse_rfc3339_never_panics_on_any_substitution() {
        let good = "2026-11-22T02:30:45.123+01:00";
        for at in 0..good.len() {
            for c in ['\u{e9}', '\u{1F600}', '+', '-', ':', '.', 'Z', '9', ' '] {
                let mut s = good[..at].to_string();
                s.push(c);
                s.push_str(&good[at + 1..]);
                let _ = parse_rfc3339_ms(&s);
                let _ = parse_rfc3339_ms(&s[..at + c.len_utf8()]);
            }
        }
    }
}
