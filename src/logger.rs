//! Log lines in the Go gateway's shapes: logfmt (`ts=… caller=… level=… msg=…`) or JSON.
//!
//! femme was the card's choice, but it picks its format from the build profile and cannot
//! write logfmt, the upstream default that operators' log pipelines parse; this backend
//! for the `log` facade is a few dozen lines instead.

use crate::api::{rfc3339_nano, write_str};
use std::io::Write;
use std::time::SystemTime;

struct Logger {
    json: bool,
}

fn logfmt_value(out: &mut String, v: &str) {
    if !v.is_empty() && !v.contains([' ', '"', '=', '\\']) && !v.chars().any(char::is_control) {
        out.push_str(v);
    } else {
        out.push('"');
        for c in v.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
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
            write_str(&mut line, &caller);
            line.push_str(",\"level\":");
            write_str(&mut line, &level);
            line.push_str(",\"msg\":");
            write_str(&mut line, &msg);
            line.push_str(",\"ts\":");
            write_str(&mut line, &ts);
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
}
