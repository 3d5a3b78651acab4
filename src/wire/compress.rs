//! Compression at the edges: gzip and framed snappy push bodies (with a bound on the
//! decompressed size, so a small bomb cannot exhaust memory), and gzip scrape responses.
//!
//! Deflate itself comes from miniz_oxide; the gzip and snappy framing, CRC-32 and CRC-32C
//! are a few lines each here.

use miniz_oxide::deflate::core::{
    CompressorOxide, TDEFLFlush, TDEFLStatus, compress, create_comp_flags_from_zip_params,
};
use miniz_oxide::inflate::stream::{InflateState, inflate};
use miniz_oxide::{DataFormat, MZFlush, MZStatus};

use super::Error;

/// The largest decompressed push body we accept.
pub const MAX_DECOMPRESSED: usize = 32 << 20;

const fn crc_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { poly ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

static CRC32: [u32; 256] = crc_table(0xEDB8_8320);
static CRC32C: [u32; 256] = crc_table(0x82F6_3B78);

fn crc(table: &[u32; 256], data: &[u8]) -> u32 {
    !crc_update(table, !0, data)
}

/// Continues a CRC over more data (the register, before the final inversion).
fn crc_update(table: &[u32; 256], mut c: u32, data: &[u8]) -> u32 {
    for &b in data {
        c = table[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    c
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Inflates one raw deflate stream from `data`; returns the bytes it used.
/// Inflater state and output buffer, made once per body: a body of many tiny gzip
/// members must not cost an allocation of ~100 KB each.
struct Inflater {
    state: Box<InflateState>,
    buf: Vec<u8>,
}

fn inflate_raw(
    inf: &mut Inflater,
    data: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<usize, Error> {
    inf.state.reset(DataFormat::Raw);
    let (state, buf) = (&mut inf.state, &mut inf.buf);
    let mut pos = 0;
    loop {
        let r = inflate(state, &data[pos..], buf, MZFlush::None);
        pos += r.bytes_consumed;
        // Checked before growing: the output never holds more than the bound.
        if out.len() + r.bytes_written > limit {
            return Err(Error::TooBig { limit });
        }
        out.extend_from_slice(&buf[..r.bytes_written]);
        match r.status {
            Ok(MZStatus::StreamEnd) => return Ok(pos),
            Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => {
                return Err(Error::Corrupt("unexpected EOF"));
            }
            Ok(_) => {}
            Err(_) if pos >= data.len() => return Err(Error::Corrupt("unexpected EOF")),
            Err(_) => return Err(Error::Corrupt("flate: corrupt input")),
        }
    }
}

/// Decompresses a gzip body (several members allowed, as Go's reader allows), checking
/// each member's CRC-32 and size. Errors read like Go's.
pub fn gunzip(data: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    if data.is_empty() {
        return Err(Error::Corrupt("EOF"));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    let mut inflater = Inflater {
        state: InflateState::new_boxed(DataFormat::Raw),
        buf: vec![0u8; 64 * 1024],
    };
    while pos < data.len() {
        let h = &data[pos..];
        if h.len() < 10 {
            return Err(Error::Corrupt("unexpected EOF"));
        }
        if h[0] != 0x1f || h[1] != 0x8b || h[2] != 8 {
            return Err(Error::Corrupt("gzip: invalid header"));
        }
        let flags = h[3];
        let mut p = 10;
        if flags & 4 != 0 {
            let xlen = h.get(p..p + 2).ok_or(Error::Corrupt("unexpected EOF"))?;
            p += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
        }
        for bit in [8u8, 16] {
            if flags & bit != 0 {
                let end = h
                    .get(p..)
                    .and_then(|s| s.iter().position(|&b| b == 0))
                    .ok_or(Error::Corrupt("unexpected EOF"))?;
                p += end + 1;
            }
        }
        if flags & 2 != 0 {
            p += 2;
        }
        let body = h.get(p..).ok_or(Error::Corrupt("unexpected EOF"))?;
        let start = out.len();
        let used = inflate_raw(&mut inflater, body, &mut out, limit)?;
        let trailer = body
            .get(used..used + 8)
            .ok_or(Error::Corrupt("unexpected EOF"))?;
        let member = &out[start..];
        if le32(trailer) != crc(&CRC32, member) || le32(&trailer[4..]) != member.len() as u32 {
            return Err(Error::Corrupt("gzip: invalid checksum"));
        }
        pos += p + used + 8;
    }
    Ok(out)
}

/// Compresses a scrape response, given as pieces, into one gzip member without first
/// joining the pieces: only the compressed bytes and a staging buffer are ever held. Level
/// 1: a scrape is mostly repeated label text, which compresses well even at the fastest
/// level.
pub fn gzip_pieces<'a>(pieces: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut pieces = pieces;
    gzip_from(|staged| match pieces.next() {
        Some(p) => {
            staged.extend_from_slice(p);
            true
        }
        None => false,
    })
}

/// Compresses whatever `fill` appends to a staging buffer (false: nothing more) into one
/// gzip member, holding only the compressed output and one staging buffer at a time.
pub fn gzip_from(mut fill: impl FnMut(&mut Vec<u8>) -> bool) -> Vec<u8> {
    let flags = create_comp_flags_from_zip_params(1, -15, 0);
    let mut compressor = Box::new(CompressorOxide::new(flags));
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    let mut buf = vec![0u8; 64 * 1024];
    let mut staged: Vec<u8> = Vec::with_capacity(256 * 1024);
    let (mut sum, mut total) = (!0u32, 0u32);
    let mut feed = |input: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>| {
        let mut input = input;
        loop {
            let (status, used, written) = compress(&mut compressor, input, &mut buf, flush);
            out.extend_from_slice(&buf[..written]);
            input = &input[used..];
            let finished = match flush {
                TDEFLFlush::Finish => status == TDEFLStatus::Done,
                _ => input.is_empty(),
            };
            if finished || status != TDEFLStatus::Okay && status != TDEFLStatus::Done {
                return;
            }
        }
    };
    let mut more = true;
    while more {
        more = fill(&mut staged);
        if staged.len() >= 192 * 1024 || !more {
            sum = crc_update(&CRC32, sum, &staged);
            total = total.wrapping_add(staged.len() as u32);
            let flush = if more {
                TDEFLFlush::None
            } else {
                TDEFLFlush::Finish
            };
            feed(&staged, flush, &mut out);
            staged.clear();
        }
    }
    out.extend_from_slice(&(!sum).to_le_bytes());
    out.extend_from_slice(&total.to_le_bytes());
    out
}

/// One buffer as one gzip member.
#[cfg(test)]
pub fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_pieces(std::iter::once(data))
}

/// CRC-32C (Castagnoli) of `data`: the checksum of persistence files and journal records.
pub fn crc32c(data: &[u8]) -> u32 {
    crc(&CRC32C, data)
}

fn masked_crc32c(data: &[u8]) -> u32 {
    let c = crc(&CRC32C, data);
    c.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Decodes one raw snappy block.
fn unsnappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Error> {
    let corrupt = || Error::Corrupt("snappy: corrupt input");
    let mut p = 0;
    let mut len: u64 = 0;
    for shift in (0..35).step_by(7) {
        let b = *block.get(p).ok_or_else(corrupt)?;
        p += 1;
        len |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            break;
        }
        if shift == 28 {
            return Err(corrupt()); // more than five bytes: not a 32-bit length
        }
    }
    let len = usize::try_from(len).map_err(|_| corrupt())?;
    if len > limit.saturating_sub(out.len()) {
        return Err(Error::TooBig { limit });
    }
    let start = out.len();
    while p < block.len() {
        let tag = block[p];
        p += 1;
        let (length, offset) = match tag & 3 {
            0 => {
                let mut n = usize::from(tag >> 2);
                if n >= 60 {
                    let extra = n - 59;
                    let bytes = block.get(p..p + extra).ok_or_else(corrupt)?;
                    n = bytes
                        .iter()
                        .rev()
                        .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
                    p += extra;
                }
                let lit = block.get(p..p + n + 1).ok_or_else(corrupt)?;
                out.extend_from_slice(lit);
                p += n + 1;
                continue;
            }
            1 => {
                let b = *block.get(p).ok_or_else(corrupt)?;
                p += 1;
                (
                    4 + usize::from((tag >> 2) & 7),
                    usize::from(tag >> 5) << 8 | usize::from(b),
                )
            }
            2 => {
                let b = block.get(p..p + 2).ok_or_else(corrupt)?;
                p += 2;
                (
                    1 + usize::from(tag >> 2),
                    usize::from(u16::from_le_bytes([b[0], b[1]])),
                )
            }
            _ => {
                let b = block.get(p..p + 4).ok_or_else(corrupt)?;
                p += 4;
                (1 + usize::from(tag >> 2), le32(b) as usize)
            }
        };
        if offset == 0 || offset > out.len() - start || out.len() + length > start + len {
            return Err(corrupt());
        }
        // Copies may overlap their own output (run-length style), so go byte by byte.
        let from = out.len() - offset;
        for i in 0..length {
            out.push(out[from + i]);
        }
    }
    if out.len() - start != len {
        return Err(corrupt());
    }
    Ok(())
}

/// Decodes the snappy framing format (stream identifier, compressed and uncompressed
/// chunks with masked CRC-32C, skippable chunks), as client_python and Go send it.
pub fn unsnappy(data: &[u8], limit: usize) -> Result<Vec<u8>, Error> {
    let mut out = Vec::new();
    let mut p = 0;
    while p < data.len() {
        let head = data
            .get(p..p + 4)
            .ok_or(Error::Corrupt("snappy: corrupt input"))?;
        let kind = head[0];
        let len = usize::from(head[1]) | usize::from(head[2]) << 8 | usize::from(head[3]) << 16;
        let chunk = data
            .get(p + 4..p + 4 + len)
            .ok_or(Error::Corrupt("snappy: corrupt input"))?;
        p += 4 + len;
        match kind {
            0xff if chunk == b"sNaPpY" => {}
            0xff => return Err(Error::Corrupt("snappy: corrupt input")),
            0x00 | 0x01 => {
                let (sum, payload) = chunk
                    .split_at_checked(4)
                    .ok_or(Error::Corrupt("snappy: corrupt input"))?;
                let start = out.len();
                if kind == 0 {
                    unsnappy_block(payload, &mut out, limit)?;
                } else {
                    if out.len() + payload.len() > limit {
                        return Err(Error::TooBig { limit });
                    }
                    out.extend_from_slice(payload);
                }
                if le32(sum) != masked_crc32c(&out[start..]) {
                    return Err(Error::Corrupt("snappy: corrupt input (checksum mismatch)"));
                }
            }
            0x02..=0x7f => return Err(Error::Corrupt("snappy: unsupported chunk type")),
            _ => {} // skippable and padding chunks
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf 'm 1\n' | gzip -n | xxd -i` from GNU gzip.
    const GZ_M1: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x55, 0x30, 0xe4, 0x02,
        0x00, 0x8e, 0x58, 0xcd, 0xf6, 0x04, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn gunzip_reads_real_gzip_and_refuses_bad_input() {
        assert_eq!(gunzip(GZ_M1, 100).unwrap(), b"m 1\n");
        // Two members concatenated, as `cat a.gz b.gz` makes.
        let two = [GZ_M1, GZ_M1].concat();
        assert_eq!(gunzip(&two, 100).unwrap(), b"m 1\nm 1\n");
        assert_eq!(gunzip(b"", 100).unwrap_err().to_string(), "EOF");
        assert_eq!(
            gunzip(b"m 1\n", 100).unwrap_err().to_string(),
            "unexpected EOF"
        );
        assert_eq!(
            gunzip(b"plain text body\n", 100).unwrap_err().to_string(),
            "gzip: invalid header"
        );
        let mut bad = GZ_M1.to_vec();
        bad[18] ^= 1;
        assert_eq!(
            gunzip(&bad, 100).unwrap_err().to_string(),
            "gzip: invalid checksum"
        );
        assert_eq!(
            gunzip(&GZ_M1[..15], 100).unwrap_err().to_string(),
            "unexpected EOF"
        );
        assert!(
            gunzip(GZ_M1, 3)
                .unwrap_err()
                .to_string()
                .contains("more than 3 bytes")
        );
    }

    #[test]
    fn many_tiny_members_stay_cheap() {
        let many = GZ_M1.repeat(20_000);
        assert_eq!(gunzip(&many, 1 << 20).unwrap().len(), 4 * 20_000);
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![b'a'; 10 << 20]);
        assert!(bomb.len() < 100_000);
        assert!(
            gunzip(&bomb, 1 << 20)
                .unwrap_err()
                .to_string()
                .contains("more than 1048576 bytes")
        );
        assert_eq!(gunzip(&bomb, 20 << 20).unwrap().len(), 10 << 20);
    }

    #[test]
    fn gzip_pieces_is_real_gzip() {
        let pieces: Vec<Vec<u8>> = (0..50_000)
            .map(|i| format!("m{{i=\"{i}\"}} {i}\n").into_bytes())
            .collect();
        let z = gzip_pieces(pieces.iter().map(Vec::as_slice));
        assert_eq!(gunzip(&z, 10 << 20).unwrap(), pieces.concat());
        assert_eq!(gunzip(&gzip(b""), 10).unwrap(), b"");
    }

    #[test]
    fn crcs_match_their_check_values() {
        assert_eq!(crc(&CRC32, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(&CRC32C, b"123456789"), 0xE306_9283);
    }

    #[test]
    fn unsnappy_reads_framed_snappy() {
        // Framed snappy of "m 1\nm 1\n", written by hand: the stream identifier, then a
        // compressed chunk holding length 8 (varint 0x08), literal tag 0x0c (4 bytes)
        // "m 1\n", and copy tag 0x01 (length 4, offset high bits 0) with offset byte 4.
        let block: &[u8] = &[0x08, 0x0c, b'm', b' ', b'1', b'\n', 0x01, 0x04];
        let sum = masked_crc32c(b"m 1\nm 1\n").to_le_bytes();
        let mut framed = vec![0xff, 6, 0, 0];
        framed.extend_from_slice(b"sNaPpY");
        framed.extend_from_slice(&[0x00, (block.len() + 4) as u8, 0, 0]);
        framed.extend_from_slice(&sum);
        framed.extend_from_slice(block);
        assert_eq!(unsnappy(&framed, 100).unwrap(), b"m 1\nm 1\n");
        let last = framed.len() - 1;
        framed[last] = 0x08; // copy offset 8 > 4 bytes produced so far
        assert!(unsnappy(&framed, 100).is_err());
        assert!(unsnappy(b"\x00\x05\x00\x00abc", 100).is_err());
    }
}
