//! The journal's bytes: a file's header, and each record's frame and body (what a change records, how it is read back).

use crate::persist::datafile::{self, FamilyRecord, GroupRecord};
use crate::store::Change;
use crate::wire::compress::crc32c;
use std::time::{Duration, UNIX_EPOCH};

pub(super) const MAGIC: &[u8; 8] = b"pgw-jrn\x01";
pub(super) const HEADER: usize = 28;

/// A replayed record.
#[derive(Debug, PartialEq)]
pub enum Record {
    /// The group became exactly this.
    Put(GroupRecord),
    /// These families were written into the group; its others stay.
    Patch(GroupRecord),
    /// The group was removed.
    Remove(Vec<(String, String)>),
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s);
}

fn put_labels(out: &mut Vec<u8>, labels: &[(String, String)]) {
    out.extend_from_slice(&(labels.len() as u32).to_le_bytes());
    for (n, v) in labels {
        put_str(out, n.as_bytes());
        put_str(out, v.as_bytes());
    }
}

fn put_group(body: &mut Vec<u8>, rec: &GroupRecord) {
    put_labels(body, &rec.labels);
    body.extend_from_slice(&(rec.families.len() as u32).to_le_bytes());
    for f in &rec.families {
        put_str(body, f.name.as_bytes());
        let nanos =
            f.at.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
        body.extend_from_slice(&nanos.to_le_bytes());
        put_str(body, &f.message);
    }
}

fn frame(out: &mut Vec<u8>, body: &[u8]) {
    let mut head = [0u8; 12];
    head[..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    head[4..8].copy_from_slice(&crc32c(body).to_le_bytes());
    let sum = crc32c(&head[..8]);
    head[8..].copy_from_slice(&sum.to_le_bytes());
    out.extend_from_slice(&head);
    out.extend_from_slice(body);
}

pub(super) fn encode(out: &mut Vec<u8>, seq: u64, change: &Change, utf8: bool) {
    let mut body = Vec::new();
    body.extend_from_slice(&seq.to_le_bytes());
    match change {
        Change::Put(g) => {
            body.push(1);
            put_group(&mut body, &datafile::record_of(g, utf8));
        }
        Change::Patch(g, names) => {
            body.push(3);
            put_group(
                &mut body,
                &datafile::record_of_families(g, Some(names), utf8),
            );
        }
        Change::Remove(key) => {
            body.push(2);
            let labels: Vec<(String, String)> = key
                .labels()
                .map(|(n, v)| {
                    let n = if utf8 {
                        crate::model::names::decode(n)
                    } else {
                        n.into()
                    };
                    (n.into_owned(), v.to_string())
                })
                .collect();
            put_labels(&mut body, &labels);
        }
    }
    frame(out, &body);
}

pub(super) fn header(lineage: u64, base: u64) -> [u8; HEADER] {
    let mut h = [0u8; HEADER];
    h[..8].copy_from_slice(MAGIC);
    h[8..16].copy_from_slice(&lineage.to_le_bytes());
    h[16..24].copy_from_slice(&base.to_le_bytes());
    let sum = crc32c(&h[..24]);
    h[24..].copy_from_slice(&sum.to_le_bytes());
    h
}

pub(super) struct Cursor<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.b.len())?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Some(s)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        Some(self.take(n)?.to_vec())
    }
    fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
    fn labels(&mut self) -> Option<Vec<(String, String)>> {
        let n = self.u32()?;
        (0..n)
            .map(|_| Some((self.string()?, self.string()?)))
            .collect()
    }
    fn group(&mut self) -> Option<GroupRecord> {
        let labels = self.labels()?;
        let n = self.u32()?;
        let families = (0..n)
            .map(|_| {
                Some(FamilyRecord {
                    name: self.string()?,
                    at: UNIX_EPOCH + Duration::from_nanos(self.u64()?),
                    message: self.bytes()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(GroupRecord { labels, families })
    }
}

pub(super) fn decode_body(body: &[u8]) -> Option<(u64, Record)> {
    let mut c = Cursor { b: body, pos: 0 };
    let seq = c.u64()?;
    let rec = match c.take(1)?[0] {
        1 => Record::Put(c.group()?),
        3 => Record::Patch(c.group()?),
        2 => Record::Remove(c.labels()?),
        _ => return None,
    };
    (c.pos == body.len()).then_some((seq, rec))
}

/// What reading the record at a file's position found.
pub(super) enum Next {
    Record(u64, Record),
    /// The rest of the file is an unfinished write: shorter than a record, or zeros.
    Torn,
    Damaged(String),
}

/// The record at `c`; `legacy` files (an earlier build's) have no header checksum.
pub(super) fn next_record(c: &mut Cursor<'_>, legacy: bool) -> Next {
    let rest = &c.b[c.pos..];
    if rest.iter().all(|&b| b == 0) {
        return Next::Torn;
    }
    let head_len = if legacy { 8 } else { 12 };
    let Some(head) = c.take(head_len) else {
        return Next::Torn;
    };
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let sum = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !legacy {
        let head_sum = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if crc32c(&head[..8]) != head_sum {
            return Next::Damaged("a record header's checksum does not match".into());
        }
    }
    let Some(body) = c.take(len) else {
        // With a checked header, a short body is an unfinished write; in a legacy file
        // the length itself may be what is damaged, and cutting would lose what follows.
        return if legacy {
            Next::Damaged("a record longer than the rest of the file".into())
        } else {
            Next::Torn
        };
    };
    if crc32c(body) != sum {
        return Next::Damaged("a record's checksum does not match".into());
    }
    match decode_body(body) {
        Some((seq, rec)) => Next::Record(seq, rec),
        None => Next::Damaged("a record of an unknown shape".into()),
    }
}

/// The header `data` should start with, if its checksum holds (else one that cannot match).
pub(super) fn header_of(data: &[u8]) -> [u8; HEADER] {
    let u = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().unwrap_or([0; 8]));
    let h = header(u(8), u(16));
    if h[..] == data[..HEADER] {
        h
    } else {
        [0xff; HEADER]
    }
}

/// A file that holds nothing: empty, or a header cut short (a crash as it was created).
pub(super) fn holds_nothing(data: &[u8]) -> bool {
    data.len() < HEADER && data.iter().zip(MAGIC).all(|(a, b)| a == b)
}
