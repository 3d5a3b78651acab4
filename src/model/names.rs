//! UTF-8 metric and label names (`--push.enable-utf8-names`): their stored legacy form and the escaping schemes a scrape asks for.
//!
//! With the flag on, a name that is not a legacy name is stored "value encoded" (`a.b` →
//! `U__a_2e_b`, as upstream's `model.EscapeName` does it), so that the store, the label
//! blocks and their order keep working on legacy names only. A legacy name that happens to
//! start with `U__` is encoded too (`U__x` → `U__U____x`), so every stored name starting
//! with `U__` is an encoded one and decodes back exactly. Only the edges convert: the
//! parsers' output and the URL on the way in, the scrape, the JSON API and the UI on the
//! way out. With the flag off nothing is encoded, and nothing here runs.

use crate::model::metric::{is_label_name, is_metric_name};
use std::borrow::Cow;
use std::fmt::Write;

/// The prefix of an encoded name.
const PREFIX: &str = "U__";

/// How a scrape spells names that are not legacy names (the `escaping=` parameter of
/// upstream's content negotiation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escaping {
    /// Names as pushed; non-legacy ones are quoted in the text format.
    AllowUtf8,
    /// Every character a legacy name cannot hold becomes `_` (upstream's default).
    Underscores,
    /// `.` → `_dot_`, `_` → `__`, other illegal characters → `__`.
    Dots,
    /// `U__` value encoding, which decodes back exactly.
    Values,
}

impl Escaping {
    /// The scheme an `escaping=` parameter names; unknown values are ignored (None).
    pub fn from_param(v: &str) -> Option<Escaping> {
        Some(match v {
            "allow-utf-8" => Escaping::AllowUtf8,
            "underscores" => Escaping::Underscores,
            "dots" => Escaping::Dots,
            "values" => Escaping::Values,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Escaping::AllowUtf8 => "allow-utf-8",
            Escaping::Underscores => "underscores",
            Escaping::Dots => "dots",
            Escaping::Values => "values",
        }
    }
}

/// upstream's `isValidLegacyRune`: `i` is the byte offset of `c` in the name.
fn legacy_rune(c: char, i: usize) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (c.is_ascii_digit() && i > 0)
}

/// Whether a stored name is an encoded one (only ever true with the flag on).
pub fn is_encoded(name: &str) -> bool {
    name.starts_with(PREFIX)
}

/// The stored form of a pushed name: unchanged if it is a legacy name (a label name may
/// not hold `:`) not starting with `U__`, value encoded otherwise.
pub fn store_form(name: &str, metric: bool) -> Cow<'_, str> {
    let legacy = if metric {
        is_metric_name(name)
    } else {
        is_label_name(name)
    };
    if legacy && !is_encoded(name) {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    out.push_str(PREFIX);
    for c in name.chars() {
        match c {
            '_' => out.push_str("__"),
            // After the prefix a digit is legal anywhere; `:` only in metric names.
            c if c.is_ascii_alphanumeric() || (metric && c == ':') => out.push(c),
            c => {
                let _ = write!(out, "_{:x}_", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// upstream's `UnescapeName(name, ValueEncodingEscaping)`: the name a `U__` name stands
/// for; a name without the prefix, or malformed, comes back unchanged.
pub fn decode(name: &str) -> Cow<'_, str> {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return Cow::Borrowed(name);
    };
    let b = rest.as_bytes();
    let mut out = String::with_capacity(rest.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'_' {
            // Copy the run up to the next underscore (keeps multi-byte characters whole).
            let end = memchr::memchr(b'_', &b[i..]).map_or(b.len(), |j| i + j);
            out.push_str(&rest[i..end]);
            i = end;
            continue;
        }
        i += 1;
        match b.get(i) {
            None => return Cow::Borrowed(name),
            Some(b'_') => {
                out.push('_');
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let mut code: u32 = 0;
        let mut digits = 0;
        loop {
            match b.get(i) {
                Some(b'_') if digits > 0 => break,
                Some(&c) if digits < 6 && c.is_ascii_hexdigit() => {
                    code = code * 16 + (c as char).to_digit(16).unwrap_or(0);
                    digits += 1;
                    i += 1;
                }
                _ => return Cow::Borrowed(name),
            }
        }
        match char::from_u32(code) {
            Some(c) => out.push(c),
            None => return Cow::Borrowed(name),
        }
        i += 1; // the closing underscore
    }
    Cow::Owned(out)
}

/// upstream's `EscapeName`: `name` (as pushed) spelled for `scheme`.
pub fn escape(name: &str, scheme: Escaping) -> Cow<'_, str> {
    if name.is_empty() {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    match scheme {
        Escaping::AllowUtf8 => return Cow::Borrowed(name),
        Escaping::Underscores => {
            if is_metric_name(name) {
                return Cow::Borrowed(name);
            }
            for (i, c) in name.char_indices() {
                out.push(if legacy_rune(c, i) { c } else { '_' });
            }
        }
        Escaping::Dots => {
            for (i, c) in name.char_indices() {
                match c {
                    '_' => out.push_str("__"),
                    '.' => out.push_str("_dot_"),
                    c if legacy_rune(c, i) => out.push(c),
                    _ => out.push_str("__"),
                }
            }
        }
        Escaping::Values => {
            if is_metric_name(name) {
                return Cow::Borrowed(name);
            }
            out.push_str(PREFIX);
            for (i, c) in name.char_indices() {
                match c {
                    '_' => out.push_str("__"),
                    c if legacy_rune(c, i) => out.push(c),
                    c => {
                        let _ = write!(out, "_{:x}_", c as u32);
                    }
                }
            }
        }
    }
    Cow::Owned(out)
}

/// A real name as a scrape with `scheme` spells it: legacy names never change (upstream's
/// `EscapeMetricFamily` leaves them alone, even for `dots`).
fn spell(real: &str, scheme: Escaping) -> Cow<'_, str> {
    if is_metric_name(real) {
        return Cow::Borrowed(real);
    }
    escape(real, scheme)
}

/// A stored name as a scrape with `scheme` spells it.
pub fn output(stored: &str, scheme: Escaping) -> Cow<'_, str> {
    if !is_encoded(stored) {
        return Cow::Borrowed(stored);
    }
    Cow::Owned(spell(&decode(stored), scheme).into_owned())
}

/// upstream's `writeName`: a legacy name as is, anything else quoted and escaped.
pub fn write_name(out: &mut String, name: &str) {
    if is_metric_name(name) {
        out.push_str(name);
        return;
    }
    out.push('"');
    crate::model::metric::escape_label_value(out, name);
    out.push('"');
}

/// Rewrites the stored sample lines of one series of family `family` (its stored name)
/// for `scheme`: names decoded and escaped, label pairs in the order of their real names
/// (a trailing `quantile`/`le` stays last when `extra`), and with `AllowUtf8` a
/// non-legacy metric name moved inside the braces, quoted, as upstream writes it.
pub fn rewrite_lines(family: &str, lines: &str, extra: bool, scheme: Escaping) -> String {
    let mut out = String::with_capacity(lines.len() + 16);
    let family_out = decode(family);
    for line in lines.split_inclusive('\n') {
        let b = line.as_bytes();
        let Some(end) = memchr::memchr2(b'{', b' ', b) else {
            out.push_str(line);
            continue;
        };
        let suffix = line[..end].strip_prefix(family).unwrap_or("");
        // Upstream escapes the family's name, then the text writer appends the suffix
        // (`a.b` with dots: `a_dot_b_sum`); only a quoted name holds the suffix inside.
        let name = match scheme {
            Escaping::AllowUtf8 => format!("{family_out}{suffix}"),
            _ => format!("{}{suffix}", spell(&family_out, scheme)),
        };
        let (content, rest) = if b[end] == b'{' {
            match line.rfind('}') {
                Some(close) if close > end => (&line[end + 1..close], &line[close + 1..]),
                _ => ("", &line[end..]),
            }
        } else {
            ("", &line[end..])
        };
        let mut pairs: Vec<(Cow<'_, str>, &str)> = crate::model::metric::raw_pairs(content)
            .map(|(n, v)| (decode(n), v))
            .collect();
        let last = if extra
            && pairs
                .last()
                .is_some_and(|(n, _)| n == "le" || n == "quantile")
        {
            pairs.pop()
        } else {
            None
        };
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.extend(last);
        let inside = !is_metric_name(&name);
        if inside {
            out.push('{');
            write_name(&mut out, &name);
        } else {
            out.push_str(&name);
        }
        if !pairs.is_empty() {
            out.push(if inside { ',' } else { '{' });
            for (i, (n, v)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_name(&mut out, &spell(n, scheme));
                out.push_str("=\"");
                out.push_str(v);
                out.push('"');
            }
        }
        if inside || !pairs.is_empty() {
            out.push('}');
        }
        out.push_str(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_forms_decode_back_exactly() {
        for (name, metric, stored) in [
            ("foo.bar", true, "U__foo_2e_bar"),
            ("a:b", true, "a:b"),
            ("a:b", false, "U__a_3a_b"),
            ("U__x", true, "U__U____x"),
            ("1st", false, "U__1st"),
            ("ü_z", false, "U___fc___z"),
            ("legal_name", false, "legal_name"),
        ] {
            assert_eq!(store_form(name, metric), stored);
            assert_eq!(decode(stored), name);
        }
    }

    #[test]
    fn decoding_mirrors_upstream_unescape() {
        assert_eq!(decode("U__foo_2e_bar"), "foo.bar");
        assert_eq!(decode("U__foo_2E_bar"), "foo.bar");
        assert_eq!(decode("U__a__b"), "a_b");
        // Malformed: the name comes back as it was.
        for bad in [
            "U__a_",
            "U__a_zz_",
            "U__a_1234567_",
            "U__a_d800_",
            "U__a_2e",
        ] {
            assert_eq!(decode(bad), bad);
        }
        assert_eq!(decode("plain"), "plain");
    }

    #[test]
    fn escaping_schemes_match_upstream() {
        assert_eq!(escape("a.b-c", Escaping::Underscores), "a_b_c");
        assert_eq!(escape("1a", Escaping::Underscores), "_a");
        assert_eq!(escape("ü", Escaping::Underscores), "_");
        assert_eq!(escape("a.b_c", Escaping::Dots), "a_dot_b__c");
        assert_eq!(escape("a.b", Escaping::Values), "U__a_2e_b");
        assert_eq!(escape("a_b", Escaping::Values), "a_b");
        assert_eq!(escape("a.b", Escaping::AllowUtf8), "a.b");
    }

    #[test]
    fn lines_are_rewritten_for_each_scheme() {
        let lines = "U__a_2e_b_sum{U__x_2e_y=\"1\",job=\"j\"} 2\n";
        assert_eq!(
            rewrite_lines("U__a_2e_b", lines, false, Escaping::Underscores),
            "a_b_sum{job=\"j\",x_y=\"1\"} 2\n"
        );
        assert_eq!(
            rewrite_lines("U__a_2e_b", lines, false, Escaping::AllowUtf8),
            "{\"a.b_sum\",job=\"j\",\"x.y\"=\"1\"} 2\n"
        );
        let q = "m{U__z_2e_a=\"v\",job=\"j\",quantile=\"0.5\"} 1\n";
        assert_eq!(
            rewrite_lines("m", q, true, Escaping::AllowUtf8),
            "m{job=\"j\",\"z.a\"=\"v\",quantile=\"0.5\"} 1\n"
        );
        assert_eq!(
            rewrite_lines("U__a_2e_b", "U__a_2e_b 1\n", false, Escaping::AllowUtf8),
            "{\"a.b\"} 1\n"
        );
        // The suffix follows the escaped family name, as upstream writes it.
        assert_eq!(
            rewrite_lines("U__a_2e_b", lines, false, Escaping::Dots),
            "a_dot_b_sum{job=\"j\",x_dot_y=\"1\"} 2\n"
        );
        assert_eq!(
            rewrite_lines("U__a_2e_b", lines, false, Escaping::Values),
            "U__a_2e_b_sum{job=\"j\",U__x_2e_y=\"1\"} 2\n"
        );
    }
}
