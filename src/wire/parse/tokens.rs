//! The parser's byte-level readers: blanks, tokens, quoted strings, names and label values, with the Go parser's errors.

use super::*;

/// Quotes bytes like Go's `%q` (`strconv.Quote`): printable characters as they are, `"`
/// and `\` escaped, the rest as Go escapes them (`\t`, `\x01`, `\u0085`), invalid
/// bytes as `\xNN`.
pub(super) fn go_quote(raw: &[u8]) -> String {
    let mut s = String::from("\"");
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' | '\\' => {
                    s.push('\\');
                    s.push(c);
                }
                '\x07' => s.push_str("\\a"),
                '\x08' => s.push_str("\\b"),
                '\x0c' => s.push_str("\\f"),
                '\n' => s.push_str("\\n"),
                '\r' => s.push_str("\\r"),
                '\t' => s.push_str("\\t"),
                '\x0b' => s.push_str("\\v"),
                c if c < ' ' || c == '\x7f' => s.push_str(&format!("\\x{:02x}", c as u32)),
                c if !go_printable(c) && (c as u32) < 0x10000 => {
                    s.push_str(&format!("\\u{:04x}", c as u32))
                }
                c if !go_printable(c) => s.push_str(&format!("\\U{:08x}", c as u32)),
                c => s.push(c),
            }
        }
        for b in chunk.invalid() {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('"');
    s
}

/// Go's `strconv.IsPrint` for the characters a label value meets: not a control, not a
/// space other than U+0020, not a format character (Cf), not private use. (Code points
/// unassigned in Go's Unicode tables, which Go also escapes, are printed as they are.)
fn go_printable(c: char) -> bool {
    let format_or_private = matches!(c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x8e2 | 0x180e | 0x200b..=0x200f
        | 0x202a..=0x202e | 0x2060..=0x2064 | 0x2066..=0x206f | 0xfeff | 0xfff9..=0xfffb
        | 0x110bd | 0x110cd | 0x13430..=0x13438 | 0x1bca0..=0x1bca3 | 0x1d173..=0x1d17a
        | 0xe0001 | 0xe0020..=0xe007f
        | 0xe000..=0xf8ff | 0xf0000..=0xffffd | 0x100000..=0x10fffd);
    !(c.is_control() || (c.is_whitespace() && c != ' ') || format_or_private)
}

pub(super) fn is_blank(b: u8) -> bool {
    b == b' ' || b == b'\t'
}
pub(super) fn is_label_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}
pub(super) fn is_label_cont(b: u8) -> bool {
    is_label_start(b) || b.is_ascii_digit()
}
pub(super) fn is_metric_start(b: u8) -> bool {
    is_label_start(b) || b == b':'
}
pub(super) fn is_metric_cont(b: u8) -> bool {
    is_label_cont(b) || b == b':'
}

impl<'a> Parser<'a> {
    pub(super) fn read_byte(&mut self) -> Result<u8, Eof> {
        let b = *self.buf.get(self.pos).ok_or(Eof)?;
        self.pos += 1;
        self.cur = b;
        Ok(b)
    }

    pub(super) fn skip_blank_tab(&mut self) -> Result<(), Eof> {
        while is_blank(self.read_byte()?) {}
        Ok(())
    }

    pub(super) fn skip_blank_tab_if_current(&mut self) -> Result<(), Eof> {
        if is_blank(self.cur) {
            self.skip_blank_tab()?;
        }
        Ok(())
    }

    /// The token from the byte already read up to (not including) the first blank or
    /// newline, which is left in `cur`.
    pub(super) fn read_token_until_whitespace(&mut self) -> Result<(), Eof> {
        let start = self.pos - 1;
        while !is_blank(self.cur) && self.cur != b'\n' {
            self.read_byte()?;
        }
        self.token = self.slice(start, self.pos - 1);
        Ok(())
    }

    pub(super) fn slice(&self, start: usize, end: usize) -> Cow<'a, str> {
        let buf: &'a [u8] = self.buf;
        String::from_utf8_lossy(&buf[start..end])
    }

    /// Rest of the line from the byte already read; with `escapes`, `\\` and `\n` are
    /// decoded and any other escape is an error (HELP text); without, every backslash is
    /// dropped, as Go's parser drops it (TYPE).
    pub(super) fn read_token_until_newline(
        &mut self,
        escapes: bool,
    ) -> Result<Result<(), ParseError>, Eof> {
        let start = self.pos - 1;
        let end = match memchr(b'\n', &self.buf[start..]) {
            Some(i) => start + i,
            None => return Err(Eof),
        };
        let raw = &self.buf[start..end];
        self.pos = end + 1;
        self.cur = b'\n';
        if memchr(b'\\', raw).is_none() {
            self.token = self.slice(start, end);
            return Ok(Ok(()));
        }
        if !escapes {
            // Go's parser drops every backslash where it does not read escapes (TYPE):
            // `gau\ge` is `gauge`.
            let kept: Vec<u8> = raw.iter().copied().filter(|&b| b != b'\\').collect();
            self.token = Cow::Owned(String::from_utf8_lossy(&kept).into_owned());
            return Ok(Ok(()));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut i = 0;
        while i < raw.len() {
            if raw[i] == b'\\' {
                match raw.get(i + 1) {
                    Some(b'\\') => out.push(b'\\'),
                    Some(b'n') => out.push(b'\n'),
                    Some(&c) => {
                        let msg = format!("invalid escape sequence '\\{}'", c as char);
                        return Ok(Err(self.error_at(start + i, msg)));
                    }
                    // A backslash right before the newline escapes the newline itself.
                    None => {
                        return Ok(Err(
                            self.error_at(start + i, "invalid escape sequence '\\\n'")
                        ));
                    }
                }
                i += 2;
            } else {
                out.push(raw[i]);
                i += 1;
            }
        }
        self.token = Cow::Owned(String::from_utf8_lossy(&out).into_owned());
        Ok(Ok(()))
    }

    /// The bytes of a quoted string up to its closing quote (left in `cur`), the opening
    /// quote already read: escapes `\\`, `\n` and `\"`; `what` names it in errors.
    pub(super) fn read_quoted(&mut self, what: &str) -> Result<Result<Vec<u8>, ParseError>, Eof> {
        let mut out: Vec<u8> = Vec::new();
        let mut escaped = false;
        loop {
            let b = self.read_byte()?;
            if escaped {
                match b {
                    b'"' | b'\\' => out.push(b),
                    b'n' => out.push(b'\n'),
                    _ => {
                        let msg = format!("invalid escape sequence '\\{}'", b as char);
                        return Ok(Err(self.error_at(self.pos - 2, msg)));
                    }
                }
                escaped = false;
                continue;
            }
            match b {
                b'"' => return Ok(Ok(out)),
                b'\n' => {
                    let msg = format!(
                        "{what} {:?} contains unescaped new-line",
                        String::from_utf8_lossy(&out)
                    );
                    return Ok(Err(self.error_at(self.pos - 1, msg)));
                }
                b'\\' => escaped = true,
                _ => out.push(b),
            }
        }
    }

    /// A quoted name (with `utf8_names`), the opening quote in `cur`: escapes `\\`, `\n`
    /// and `\"`; the byte after the closing quote is left in `cur`.
    pub(super) fn read_quoted_name(&mut self, what: &str) -> Result<Result<(), ParseError>, Eof> {
        let start = self.pos;
        let out = match self.read_quoted(&format!("{what} name"))? {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        self.read_byte()?;
        match String::from_utf8(out) {
            Ok(v) => {
                self.token = Cow::Owned(v);
                Ok(Ok(()))
            }
            Err(e) => {
                let msg = format!("invalid {what} name {}", go_quote(e.as_bytes()));
                Ok(Err(self.error_at(start, msg)))
            }
        }
    }

    /// A metric name, quoted or not; an error only for a bad quoted one.
    pub(super) fn read_metric_name(&mut self) -> Result<Result<(), ParseError>, Eof> {
        if self.utf8_names && self.cur == b'"' {
            return self.read_quoted_name("metric");
        }
        self.read_token_as_metric_name()?;
        Ok(Ok(()))
    }

    /// A label name, quoted or not; an error only for a bad quoted one.
    pub(super) fn read_label_name(&mut self) -> Result<Result<(), ParseError>, Eof> {
        if self.utf8_names && self.cur == b'"' {
            return self.read_quoted_name("label");
        }
        self.read_token_as_label_name()?;
        Ok(Ok(()))
    }

    pub(super) fn read_token_as_metric_name(&mut self) -> Result<(), Eof> {
        let start = self.pos - 1;
        if !is_metric_start(self.cur) {
            self.token = Cow::Borrowed("");
            return Ok(());
        }
        while is_metric_cont(self.read_byte()?) {}
        self.token = self.slice(start, self.pos - 1);
        Ok(())
    }

    pub(super) fn read_token_as_label_name(&mut self) -> Result<(), Eof> {
        let start = self.pos - 1;
        if !is_label_start(self.cur) {
            self.token = Cow::Borrowed("");
            return Ok(());
        }
        while is_label_cont(self.read_byte()?) {}
        self.token = self.slice(start, self.pos - 1);
        Ok(())
    }

    /// A quoted label value starting after the opening quote (already in `cur`).
    pub(super) fn read_token_as_label_value(&mut self) -> Result<Result<(), ParseError>, Eof> {
        let start = self.pos;
        // Fast path: no escape before the closing quote.
        let stop = memchr3(b'"', b'\\', b'\n', &self.buf[start..])
            .map(|i| start + i)
            .ok_or(Eof)?;
        if self.buf[stop] == b'"' {
            self.pos = stop + 1;
            self.cur = b'"';
            let buf: &'a [u8] = self.buf;
            return Ok(match std::str::from_utf8(&buf[start..stop]) {
                Ok(v) => {
                    self.token = Cow::Borrowed(v);
                    Ok(())
                }
                Err(_) => Err(self.invalid_value(start, &buf[start..stop])),
            });
        }
        let out = match self.read_quoted("label value")? {
            Ok(out) => out,
            Err(e) => return Ok(Err(e)),
        };
        match String::from_utf8(out) {
            Ok(v) => {
                self.token = Cow::Owned(v);
                Ok(Ok(()))
            }
            Err(e) => Ok(Err(self.invalid_value(start, e.as_bytes()))),
        }
    }

    pub(super) fn invalid_value(&self, start: usize, raw: &[u8]) -> ParseError {
        self.error_at(start, format!("invalid label value {}", go_quote(raw)))
    }
}
