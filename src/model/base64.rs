//! Base64 in the URL-safe alphabet: the Go gateway's lenient decoding of `@base64` path
//! segments, and an unpadded encoding for bytes kept inside text.

use std::fmt;

/// Go's `base64.CorruptInputError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Base64Error(pub usize);

impl fmt::Display for Base64Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "illegal base64 data at input byte {}", self.0)
    }
}

fn b64_value(c: u8) -> Option<u8> {
    Some(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    })
}

/// Decodes like the Go gateway: trailing `=` trimmed, then `RawURLEncoding` (URL-safe
/// alphabet, no padding, CR/LF ignored, non-zero trailing bits tolerated). On error the
/// bytes decoded so far come back too, because the Go message quotes them.
pub fn decode(s: &[u8]) -> Result<Vec<u8>, (Vec<u8>, Base64Error)> {
    let end = s.iter().rposition(|&c| c != b'=').map_or(0, |i| i + 1);
    let s = &s[..end];
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut quantum = [0u8; 4];
    let mut n = 0;
    for (i, &c) in s.iter().enumerate() {
        if c == b'\r' || c == b'\n' {
            continue;
        }
        let Some(v) = b64_value(c) else {
            return Err((out, Base64Error(i)));
        };
        quantum[n] = v;
        n += 1;
        if n == 4 {
            out.push(quantum[0] << 2 | quantum[1] >> 4);
            out.push(quantum[1] << 4 | quantum[2] >> 2);
            out.push(quantum[2] << 6 | quantum[3]);
            n = 0;
        }
    }
    match n {
        0 => {}
        1 => {
            let at = s.len() - 1;
            return Err((out, Base64Error(at)));
        }
        _ => {
            out.push(quantum[0] << 2 | quantum[1] >> 4);
            if n == 3 {
                out.push(quantum[1] << 4 | quantum[2] >> 2);
            }
        }
    }
    Ok(out)
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// URL-safe, unpadded.
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_is_lenient_like_go() {
        for s in ["YQ", "YQ==", "YQ===", "YR"] {
            assert_eq!(decode(s.as_bytes()).unwrap(), b"a", "{s}");
        }
        assert_eq!(decode(b"=").unwrap(), b"");
        assert_eq!(decode(b"L3RtcC8_Pw==").unwrap(), b"/tmp/??");
        assert_eq!(decode(b"Lz8+").unwrap_err().1, Base64Error(3));
        assert_eq!(decode(b"YQ=Y").unwrap_err().1, Base64Error(2));
        assert_eq!(decode(b"!!!!").unwrap_err().1, Base64Error(0));
        assert_eq!(
            decode(b"YWJjZ").unwrap_err(),
            (b"abc".to_vec(), Base64Error(4))
        );
    }

    #[test]
    fn encode_round_trips() {
        for data in [
            &b""[..],
            b"a",
            b"ab",
            b"abc",
            b"\x00\xff\xfe\x01",
            b"/tmp/??",
        ] {
            assert_eq!(decode(encode(data).as_bytes()).unwrap(), data);
        }
        assert_eq!(encode(b"/tmp/??"), "L3RtcC8_Pw");
    }
}
