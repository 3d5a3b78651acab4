//! Go-compatible float spelling: `strconv.FormatFloat(v, 'g', -1, 64)` and `ParseFloat`.

use std::fmt::Write;

/// Appends `v` the way Go's `strconv.AppendFloat(v, 'g', -1, 64)` does, which is what the
/// text exposition and the JSON API print: shortest round-trip digits, exponent form iff the
/// decimal exponent is below -4 or at least 6, exponent signed with two digits at least.
pub fn write_go(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    if v == 0.0 {
        // Go prints -0 as "-0"; the exposition format never shows it differently from 0
        // because the Go client normalises through the same call, so keep Go's spelling.
        out.push_str(if v.is_sign_negative() { "-0" } else { "0" });
        return;
    }
    // Rust's `{:e}` yields the shortest round-trip digits as `d.ddde<exp>`.
    let mut sci = String::with_capacity(32);
    let _ = write!(sci, "{:e}", v.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if v < 0.0 {
        out.push('-');
    }
    if !(-4..6).contains(&exp) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        let _ = write!(out, "{:02}", exp.abs());
    } else if exp < 0 {
        out.push_str("0.");
        for _ in 0..(-exp - 1) {
            out.push('0');
        }
        out.push_str(&digits);
    } else {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            for _ in digits.len()..int_len {
                out.push('0');
            }
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    }
}

/// `write_go` into a fresh string.
pub fn go(v: f64) -> String {
    let mut s = String::new();
    write_go(&mut s, v);
    s
}

/// Parses a sample value the way the Go text parser does: `strconv.ParseFloat` after
/// refusing `p`, `P` and `_` (no hex floats, no digit separators). Accepts `Inf`,
/// `infinity` and `NaN` in any case, a leading sign (not on NaN), `.5` and `5.`; refuses
/// values out of the float64 range.
pub fn parse_go(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.is_empty() || b.iter().any(|c| matches!(c, b'p' | b'P' | b'_')) {
        return None;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    if unsigned.len() != s.len() && unsigned.eq_ignore_ascii_case("nan") {
        return None; // Go's ParseFloat takes no sign before NaN.
    }
    // Rust also accepts these spellings; only the set must match Go's.
    let special = unsigned.eq_ignore_ascii_case("inf")
        || unsigned.eq_ignore_ascii_case("infinity")
        || unsigned.eq_ignore_ascii_case("nan");
    if !special
        && !unsigned
            .bytes()
            .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let v: f64 = s.parse().ok()?;
    if v.is_infinite() && !special {
        return None; // ErrRange in Go
    }
    // Go's ParseFloat("NaN") is math.NaN(), whose bits differ from Rust's NaN; protobuf
    // scrapes carry the bits, so a text NaN is stored as Go stores it.
    Some(if v.is_nan() { GO_NAN } else { v })
}

/// Go's `math.NaN()`: `Float64frombits(0x7FF8000000000001)`.
pub const GO_NAN: f64 = f64::from_bits(0x7FF8_0000_0000_0001);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let cases: &[(f64, &str)] = &[
            (1.0, "1"),
            (0.0, "0"),
            (-1.0, "-1"),
            (3.25, "3.25"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (123456.0, "123456"),
            (1234567.0, "1.234567e+06"),
            (1e6, "1e+06"),
            (1_795_552_792.018_12, "1.79555279201812e+09"),
            (1782900000.5, "1.7829000005e+09"),
            (0.5, "0.5"),
            (-0.25, "-0.25"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (100.0, "100"),
            (999999.0, "999999"),
            (12.5e-3, "0.0125"),
        ];
        for (v, want) in cases {
            assert_eq!(go(*v), *want, "formatting {v:?}");
        }
    }

    #[test]
    fn parses_like_go() {
        for (s, want) in [
            ("+Inf", f64::INFINITY),
            ("-inf", f64::NEG_INFINITY),
            ("Infinity", f64::INFINITY),
            (".5", 0.5),
            ("5.", 5.0),
            ("+1e3", 1000.0),
            ("-0", 0.0),
            ("1e-400", 0.0),
        ] {
            assert_eq!(parse_go(s), Some(want), "{s}");
        }
        assert!(parse_go("nan").is_some_and(f64::is_nan));
        assert!(parse_go("NaN").is_some_and(f64::is_nan));
        assert_eq!(parse_go("NaN").map(f64::to_bits), Some(GO_NAN.to_bits()));
        for bad in [
            "", "1_000", "0x10", "0x1p3", "1e999", "-1e999", "+nan", "-NaN", "infin", "1\r", "1 ",
            "e5", ".",
        ] {
            assert_eq!(parse_go(bad), None, "{bad:?} must be refused");
        }
    }
}
