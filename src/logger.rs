//! Log lines in the Go gateway's shapes: logfmt (`ts=… caller=… level=… msg=…`) or JSON.
//!
//! femme was the card's choice, but it picks its format from the build profile and cannot
//! write logfmt, the upstream default that operators' log pipelines parse; this backend
//! for the `log` facade is a few dozen lines instead.

use crate::model::gospell::{rfc3339_nano, write_str};
use std::io::Write;
use std::time::SystemTime;

/// A JSON string for a log line: the API's escaping, plus DEL and the C1 controls, which
/// JSON allows raw but a terminal or a line-based log shipper should never see.
fn json_value(out: &mut String, v: &str) {
    let mut quoted = String::with_capacity(v.len() + 2);
    write_str(&mut quoted, v);
    for c in quoted.chars() {
        if c.is_control() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
}

struct Logger {
    json: bool,
}

/// A logfmt value, quoted when it must be, as go-logfmt writes it: `\n`, `\r`, `\t`
/// and every other control character (C0, DEL, C1: a pushed label value or a client's
/// path may hold any of them) escaped, so that one record is always one line.
fn logfmt_value(out: &mut String, v: &str) {
    if !v.is_empty() && !v.contains([' ', '"', '=', '\\']) && !v.chars().any(char::is_control) {
        out.push_str(v);
    } else {
        out.push('"');
        for c in v.chars() {
            if let Some(e) = crate::model::gospell::common_escape(c) {
                out.push_str(e);
                continue;
            }
            match c {
                c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        // Only our own crate logs; the framework's chatter stays out.
        metadata.target().starts_with("pushgateway")
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let ts = rfc3339_nano(SystemTime::now());
        let caller = format!(
            "{}:{}",
            record
                .file()
                .and_then(|f| f.rsplit('/').next())
                .unwrap_or("?"),
            record.line().unwrap_or(0)
        );
        let level = record.level().as_str().to_lowercase();
        let msg = record.args().to_string();
        let mut line = String::with_capacity(96 + msg.len());
        if self.json {
            line.push_str("{\"caller\":");
            json_value(&mut line, &caller);
            line.push_str(",\"level\":");
            json_value(&mut line, &level);
            line.push_str(",\"msg\":");
            json_value(&mut line, &msg);
            line.push_str(",\"ts\":");
            json_value(&mut line, &ts);
            line.push('}');
        } else {
            line.push_str("ts=");
            line.push_str(&ts);
            line.push_str(" caller=");
            line.push_str(&caller);
            line.push_str(" level=");
            line.push_str(&level);
            line.push_str(" msg=");
            logfmt_value(&mut line, &msg);
        }
        line.push('\n');
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Installs the logger; messages below `level` are dropped.
pub fn init(level: log::LevelFilter, json: bool) {
    if log::set_boxed_logger(Box::new(Logger { json })).is_ok() {
        log::set_max_level(level);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_only_when_needed() {
        let mut s = String::new();
        logfmt_value(&mut s, "listening");
        s.push(' ');
        logfmt_value(&mut s, "a \"b\"=c");
        assert_eq!(s, "listening \"a \\\"b\\\"=c\"");
    }

    #[test]
    fn every_control_character_is_escaped_in_both_formats() {
        let nasty = "a\nb\rc\td\u{1b}[31me\u{7f}f\u{85}g\u{0}";
        let mut s = String::new();
        logfmt_value(&mut s, nasty);
        assert_eq!(s, "\"a\\nb\\rc\\td\\u001b[31me\\u007ff\\u0085g\\u0000\"");
        assert!(!s.chars().any(char::is_control));
        let mut j = String::new();
        json_value(&mut j, nasty);
        assert_eq!(j, "\"a\\nb\\rc\\td\\u001b[31me\\u007ff\\u0085g\\u0000\"");
    }
}
