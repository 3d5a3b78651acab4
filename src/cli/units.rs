//! The values flags take, spelled as kingpin spells them: Go durations (`5m`, `1h30m`) and byte sizes (`16MB`).

/// Parses a Go duration (`5m`, `1h30m`, `1.5s`, `300ms`, `0`), as kingpin does.
pub fn parse_go_duration(s: &str) -> Option<std::time::Duration> {
    if s == "0" {
        return Some(std::time::Duration::ZERO);
    }
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        nanos += num * scale;
    }
    (nanos.is_finite() && nanos < u64::MAX as f64)
        .then(|| std::time::Duration::from_nanos(nanos.round() as u64))
}

/// Parses a size in bytes as kingpin's `Base2Bytes` does: a number with an optional unit
/// (`B`, `KB`, `MB`, `GB`, `TB`, each 1024 times the last; `KiB`... too).
pub fn parse_bytes(s: &str) -> Option<usize> {
    let s = s.trim();
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let n: u64 = s[..digits].parse().ok()?;
    let shift = match &s[digits..] {
        "" | "B" => 0,
        "KB" | "KiB" | "K" => 10,
        "MB" | "MiB" | "M" => 20,
        "GB" | "GiB" | "G" => 30,
        "TB" | "TiB" | "T" => 40,
        _ => return None,
    };
    usize::try_from(n.checked_mul(1u64 << shift)?).ok()
}

/// Formats a size as kingpin's `Base2Bytes` does: the largest unit that divides it.
pub fn format_bytes(n: usize) -> String {
    for (shift, unit) in [(40, "TB"), (30, "GB"), (20, "MB"), (10, "KB")] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    format!("{n}B")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::gospell::go_duration;

    #[test]
    fn go_durations_parse_and_print_like_go() {
        let d = |s: &str| parse_go_duration(s).map(go_duration);
        assert_eq!(d("5m").as_deref(), Some("5m0s"));
        assert_eq!(d("1h30m").as_deref(), Some("1h30m0s"));
        assert_eq!(d("1.5s").as_deref(), Some("1.5s"));
        assert_eq!(d("300ms").as_deref(), Some("300ms"));
        assert_eq!(d("0").as_deref(), Some("0s"));
        assert_eq!(d("90s").as_deref(), Some("1m30s"));
        for bad in ["", "5", "5x", "m", "-1s"] {
            assert_eq!(parse_go_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn sizes_read_and_print_like_kingpin() {
        assert_eq!(parse_bytes("1MB"), Some(1 << 20));
        assert_eq!(parse_bytes("512KB"), Some(512 << 10));
        assert_eq!(parse_bytes("16MiB"), Some(16 << 20));
        assert_eq!(parse_bytes("1000"), Some(1000));
        for bad in ["", "MB", "1XB", "-1", "1.5MB"] {
            assert_eq!(parse_bytes(bad), None, "{bad}");
        }
        assert_eq!(format_bytes(1 << 20), "1MB");
        assert_eq!(format_bytes(1500), "1500B");
        assert_eq!(format_bytes(3 << 10), "3KB");
    }
}
