//! Go's spellings that several layers write: a JSON string (`encoding/json`, HTML-safe), a time in RFC 3339 with nanoseconds, a `time.Duration`.

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// The escape of a character both JSON and logfmt escape alike, if it is one.
pub fn common_escape(c: char) -> Option<&'static str> {
    Some(match c {
        '"' => "\\\"",
        '\\' => "\\\\",
        '\n' => "\\n",
        '\r' => "\\r",
        '\t' => "\\t",
        _ => return None,
    })
}

/// Appends `s` as a JSON string the way Go's encoder writes it (HTML-safe escapes).
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        if let Some(e) = common_escape(c) {
            out.push_str(e);
            continue;
        }
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Days since 1970-01-01 to a civil date (proleptic Gregorian), after Howard Hinnant.
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Go's `time.Time` JSON form in UTC: RFC 3339 with nanoseconds, trailing zeros dropped.
pub fn rfc3339_nano(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (y, mo, day) = civil(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let mut s = format!(
        "{y:04}-{mo:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Formats a duration as Go's `time.Duration.String` does (`5m0s`, `1h0m0s`, `1.5s`).
pub fn go_duration(d: std::time::Duration) -> String {
    let n = d.as_nanos();
    if n == 0 {
        return "0s".into();
    }
    let frac = |v: u128, unit: u128, suffix: &str| {
        let (whole, rem) = (v / unit, v % unit);
        let mut s = whole.to_string();
        if rem > 0 {
            let digits = format!("{rem:0width$}", width = unit.ilog10() as usize);
            s.push('.');
            s.push_str(digits.trim_end_matches('0'));
        }
        s + suffix
    };
    if n < 1_000 {
        return format!("{n}ns");
    }
    if n < 1_000_000 {
        return frac(n, 1_000, "µs");
    }
    if n < 1_000_000_000 {
        return frac(n, 1_000_000, "ms");
    }
    let secs = frac(n % 60_000_000_000, 1_000_000_000, "s");
    let mins = n / 60_000_000_000;
    match (mins / 60, mins % 60) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_782_900_000, 500_000_000);
        assert_eq!(rfc3339_nano(t), "2026-07-01T10:00:00.5Z");
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::new(951_782_400, 0)),
            "2000-02-29T00:00:00Z"
        );
        assert_eq!(
            rfc3339_nano(UNIX_EPOCH + Duration::new(1, 18_119_841)),
            "1970-01-01T00:00:01.018119841Z"
        );
    }

    #[test]
    fn strings_like_go() {
        let mut s = String::new();
        write_str(&mut s, "A <&>.\"\\\n\u{1}\u{2028}");
        assert_eq!(s, "\"A \\u003c\\u0026\\u003e.\\\"\\\\\\n\\u0001\\u2028\"");
    }
}
