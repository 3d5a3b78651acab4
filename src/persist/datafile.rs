//! The persistence file's format (the Go gateway's gob `map[string]MetricGroup`, plus a checksum trailer Go ignores) and its crash-safe replacement on disk.
//!
//! The Go gateway writes one gob value: grouping-key string → `MetricGroup {Labels
//! map[string]string; Metrics map[string]TimestampedMetricFamily}`, each family a
//! `{Timestamp time.Time; GobbableMetricFamily}` whose bytes are a protobuf
//! `MetricFamily` with the complete label sets. We write the same, so the Go gateway can
//! read our file, and append a trailer after the value (Go's decoder stops at the end of
//! the value and never sees it): magic, the file's lineage (the history of snapshots and
//! journal files it belongs to, see `journal`), the number of the last store change the
//! file holds, the value's length and its CRC-32C. (Files of earlier builds have a
//! trailer without the lineage: they read as lineage 0.)

use super::Error;
use crate::model::grouping::GroupingKey;
use crate::model::names::{self, Escaping};
use crate::persist::gob::{self, Def, Value};
use crate::store::PushError;
use crate::store::{Group, Store};
use crate::wire;
use crate::wire::compress::crc32c;
use crate::wire::expose;
use crate::wire::proto;
use std::borrow::Cow;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const MAGIC_V1: &[u8; 8] = b"\0pgw-rs\x01";
const TRAILER_V1: usize = 28;
const MAGIC: &[u8; 8] = b"\0pgw-rs\x02";
const TRAILER: usize = 36;

/// One family of a group as files and the journal keep it.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyRecord {
    pub name: String,
    pub at: SystemTime,
    /// A protobuf `MetricFamily`, labels complete.
    pub message: Vec<u8>,
}

/// A group as files and the journal keep it: names as pushed (not in stored form).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    pub labels: Vec<(String, String)>,
    pub families: Vec<FamilyRecord>,
}

fn real_name(stored: &str, utf8: bool) -> Cow<'_, str> {
    if utf8 {
        names::decode(stored)
    } else {
        Cow::Borrowed(stored)
    }
}

/// The record of a stored group.
pub fn record_of(g: &Group, utf8: bool) -> GroupRecord {
    record_of_families(g, None, utf8)
}

/// The record of a stored group with only the families named in `only` (sorted), if given.
pub fn record_of_families(g: &Group, only: Option<&[Arc<str>]>, utf8: bool) -> GroupRecord {
    let escaping = utf8.then_some(Escaping::AllowUtf8);
    let labels = g
        .key
        .labels()
        .map(|(n, v)| (real_name(n, utf8).into_owned(), v.to_string()))
        .collect();
    let families = g
        .families
        .iter()
        .filter(|f| {
            only.is_none_or(|names| names.binary_search_by(|n| (**n).cmp(f.name())).is_ok())
        })
        .map(|f| {
            let metrics: Vec<proto::EncodeMetric<'_>> = f
                .metrics
                .iter()
                .filter_map(|s| {
                    let value = expose::read_value(f.name(), f.mtype(), s)?;
                    Some((s.block(), value, s.raw()))
                })
                .collect();
            let name = real_name(f.name(), utf8);
            FamilyRecord {
                message: proto::encode_message(&name, f.help(), f.mtype(), &metrics, escaping),
                name: name.into_owned(),
                at: f.pushed_at(),
            }
        })
        .collect();
    GroupRecord { labels, families }
}

/// Puts a recorded group into the store, replacing the group of that key (with `whole`
/// false, only its families of the recorded names); says why not if it cannot be
/// (invalid key or family, or inconsistent with the store).
pub fn restore(store: &Store, rec: &GroupRecord, utf8: bool, whole: bool) -> Result<(), Error> {
    let key = GroupingKey::from_labels(rec.labels.clone(), utf8).map_err(Error::Key)?;
    let mut families = Vec::with_capacity(rec.families.len());
    for f in &rec.families {
        let (family, invalid) = proto::decode_message(&f.message, utf8)
            .map_err(|e| Error::Family(f.name.clone(), wire::Error::from(e)))?;
        if !invalid.is_empty() {
            return Err(Error::Refused(PushError::Inconsistent(invalid)));
        }
        families.push((family, f.at));
    }
    store.restore(&key, families, whole).map_err(Error::Refused)
}

/// `time.Time.MarshalBinary` (version 1, UTC): seconds since year 1, nanoseconds, and
/// -1 for the UTC zone.
fn time_bytes(t: SystemTime) -> [u8; 15] {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    };
    let mut out = [0u8; 15];
    out[0] = 1;
    out[1..9].copy_from_slice(&(secs + UNIX_TO_YEAR_ONE).to_be_bytes());
    out[9..13].copy_from_slice(&(nanos as i32).to_be_bytes());
    out[13..15].copy_from_slice(&(-1i16).to_be_bytes());
    out
}

/// Seconds from 0001-01-01 to 1970-01-01, Go's `unixToInternal`.
const UNIX_TO_YEAR_ONE: i64 = 62_135_596_800;

/// `time.Time.UnmarshalBinary`, versions 1 and 2 (the zone does not change the instant).
fn parse_time(b: &[u8]) -> Option<SystemTime> {
    let len = match b.first()? {
        1 => 15,
        2 => 16,
        _ => return None,
    };
    if b.len() != len {
        return None;
    }
    let secs = i64::from_be_bytes(b[1..9].try_into().ok()?).checked_sub(UNIX_TO_YEAR_ONE)?;
    let nanos = i32::from_be_bytes(b[9..13].try_into().ok()?);
    if !(0..1_000_000_000).contains(&nanos) {
        return None;
    }
    let d = Duration::new(secs.unsigned_abs(), 0);
    let base = if secs >= 0 {
        UNIX_EPOCH.checked_add(d)?
    } else {
        UNIX_EPOCH.checked_sub(d)?
    };
    base.checked_add(Duration::from_nanos(nanos as u64))
}

// Type ids of our stream (any ids from 65 on would do: gob matches by structure).
const T_GROUPS: i64 = 65;
const T_GROUP: i64 = 66;
const T_LABELS: i64 = 67;
const T_FAMILIES: i64 = 68;
const T_FAMILY: i64 = 69;
const T_TIME: i64 = 70;
const T_MESSAGE: i64 = 71;
const T_STRING: i64 = 6;

/// A gob writer with the file's types defined, as the Go gateway names them.
fn writer() -> gob::Writer {
    let mut w = gob::Writer::default();
    w.define(
        T_GROUPS,
        Def::Map("GroupingKeyToMetricGroup", T_STRING, T_GROUP),
    );
    w.define(
        T_GROUP,
        Def::Struct(
            "MetricGroup",
            &[("Labels", T_LABELS), ("Metrics", T_FAMILIES)],
        ),
    );
    w.define(T_LABELS, Def::Map("map[string]string", T_STRING, T_STRING));
    w.define(
        T_FAMILIES,
        Def::Map("NameToTimestampedMetricFamilyMap", T_STRING, T_FAMILY),
    );
    w.define(
        T_FAMILY,
        Def::Struct(
            "TimestampedMetricFamily",
            &[("Timestamp", T_TIME), ("GobbableMetricFamily", T_MESSAGE)],
        ),
    );
    w.define(T_TIME, Def::GobEncoder("Time"));
    w.define(T_MESSAGE, Def::GobEncoder("GobbableMetricFamily"));
    w
}

/// The whole file: the gob value for `groups`, then the trailer naming `lineage` and
/// change `seq`.
pub fn encode(groups: &[Arc<Group>], seq: u64, lineage: u64, utf8: bool) -> Vec<u8> {
    let mut w = writer();
    let mut body = Vec::with_capacity(256 * groups.len());
    gob::put_uint(&mut body, groups.len() as u64);
    for g in groups {
        let rec = record_of(g, utf8);
        // The Go gateway's map key: names and values joined by 0xFF bytes.
        let mut key = Vec::new();
        for (i, (n, v)) in rec.labels.iter().enumerate() {
            if i > 0 {
                key.push(0xFF);
            }
            key.extend_from_slice(n.as_bytes());
            key.push(0xFF);
            key.extend_from_slice(v.as_bytes());
        }
        gob::put_bytes(&mut body, &key);
        body.push(1); // Labels
        gob::put_uint(&mut body, rec.labels.len() as u64);
        for (n, v) in &rec.labels {
            gob::put_bytes(&mut body, n.as_bytes());
            gob::put_bytes(&mut body, v.as_bytes());
        }
        if rec.families.is_empty() {
            body.push(0);
            continue;
        }
        body.push(1); // Metrics
        gob::put_uint(&mut body, rec.families.len() as u64);
        for f in &rec.families {
            gob::put_bytes(&mut body, f.name.as_bytes());
            body.push(1); // Timestamp
            gob::put_bytes(&mut body, &time_bytes(f.at));
            body.push(1); // GobbableMetricFamily
            gob::put_bytes(&mut body, &f.message);
            body.push(0);
        }
        body.push(0);
    }
    w.value(T_GROUPS, &body);
    let mut out = w.out;
    let len = out.len() as u64;
    let sum = trailer_sum(crc32c(&out), lineage, seq, len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&lineage.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// The v2 trailer's checksum: over the value's CRC and the trailer's fields, so that a
/// damaged change number or lineage is caught too.
fn trailer_sum(value_sum: u32, lineage: u64, seq: u64, len: u64) -> u32 {
    let mut b = [0u8; 28];
    b[..4].copy_from_slice(&value_sum.to_le_bytes());
    b[4..12].copy_from_slice(&lineage.to_le_bytes());
    b[12..20].copy_from_slice(&seq.to_le_bytes());
    b[20..].copy_from_slice(&len.to_le_bytes());
    crc32c(&b)
}

/// What reading a file found besides its groups.
#[derive(Debug, Default, PartialEq)]
pub struct Read {
    /// The last store change the file holds, if it has our trailer.
    pub seq: Option<u64>,
    /// The lineage the file belongs to, if it has our trailer (0 for an earlier build's).
    pub lineage: Option<u64>,
    /// What is wrong with it, if anything: the groups delivered are what could be saved.
    pub problem: Option<String>,
}

/// A label or family name: a Go `string` (the file's maps are keyed by strings only).
fn str_of(v: &Value) -> Option<String> {
    match v {
        Value::Str(s) => Some(s.clone()),
        _ => None,
    }
}

/// A group from its gob value; None if it does not have the expected shape. Families
/// stored as nil (a corrupt Go file) are left out, with a note in `dropped`.
fn group_of(v: &Value, dropped: &mut usize) -> Option<GroupRecord> {
    let Some(Value::Map(labels)) = v.field("Labels") else {
        return None;
    };
    let labels = labels
        .iter()
        .map(|(k, v)| Some((str_of(k)?, str_of(v)?)))
        .collect::<Option<Vec<_>>>()?;
    let mut families = Vec::new();
    if let Some(Value::Map(fams)) = v.field("Metrics") {
        for (name, f) in fams {
            let (Some(Value::Bytes(message)), Some(name)) =
                (f.field("GobbableMetricFamily"), str_of(name))
            else {
                *dropped += 1;
                continue;
            };
            let at = match f.field("Timestamp") {
                Some(Value::Bytes(t)) => parse_time(t)?,
                _ => UNIX_EPOCH,
            };
            families.push(FamilyRecord {
                name,
                at,
                message: message.clone(),
            });
        }
    }
    Some(GroupRecord { labels, families })
}

/// Reads a file (ours or the Go gateway's), handing each group to `each` as soon as it
/// is decoded, so that a file broken halfway still gives up its first half.
pub fn decode(bytes: &[u8], mut each: impl FnMut(GroupRecord)) -> Read {
    let mut read = Read::default();
    let mut gob_part = bytes;
    // (lineage, seq, value length, checksum) from a trailer of either version.
    let trailer = |size: usize, magic: &[u8; 8]| {
        let t = bytes.get(bytes.len().checked_sub(size)?..)?;
        if &t[..8] != magic {
            return None;
        }
        let u64_at = |i: usize| u64::from_le_bytes(t[i..i + 8].try_into().unwrap_or([0; 8]));
        let sum = u32::from_le_bytes(t[size - 4..].try_into().unwrap_or([0; 4]));
        Some(if size == TRAILER {
            (u64_at(8), u64_at(16), u64_at(24), sum, size)
        } else {
            (0, u64_at(8), u64_at(16), sum, size)
        })
    };
    if let Some((lineage, seq, len, sum, size)) =
        trailer(TRAILER, MAGIC).or_else(|| trailer(TRAILER_V1, MAGIC_V1))
        && len == (bytes.len() - size) as u64
    {
        gob_part = &bytes[..bytes.len() - size];
        read.seq = Some(seq);
        read.lineage = Some(lineage);
        let want = if size == TRAILER {
            trailer_sum(crc32c(gob_part), lineage, seq, len)
        } else {
            crc32c(gob_part)
        };
        if want != sum {
            read.problem = Some(
                "checksum mismatch: the file was changed or damaged after it was written".into(),
            );
        }
    }
    let (mut bad, mut dropped) = (0usize, 0usize);
    let result = gob::decode_map(gob_part, |_, v| match group_of(&v, &mut dropped) {
        Some(g) => each(g),
        None => bad += 1,
    });
    let mut problems: Vec<String> = read.problem.take().into_iter().collect();
    match result {
        Err(e) if gob_part.is_empty() => problems.push(format!("the file is empty ({e})")),
        Err(e) => problems.push(format!("truncated or corrupt: {e}")),
        Ok(end) if end < gob_part.len() => {
            problems.push(format!(
                "{} unexpected bytes after the data (a damaged trailer?)",
                gob_part.len() - end
            ));
        }
        Ok(_) => {}
    }
    if bad > 0 {
        problems.push(format!("{bad} groups of an unexpected shape skipped"));
    }
    if dropped > 0 {
        problems.push(format!("{dropped} families without data skipped"));
    }
    if !problems.is_empty() {
        read.problem = Some(problems.join("; "));
    }
    read
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Temporary files of an interrupted write start with this, next to the file (the Go
/// gateway's spelling, so that its leftovers are cleaned up too).
pub fn temp_prefix(path: &Path) -> String {
    let base = path
        .file_name()
        .map_or_else(String::new, |b| b.to_string_lossy().into_owned());
    format!("{base}.in_progress.")
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Replaces `path` with `data` so that a crash at any instant leaves either the old or
/// the new file, complete: write a temporary file beside it, fsync it, rename it over,
/// fsync the directory. A failure removes the temporary file.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = dir_of(path);
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!("{}{}-{n}", temp_prefix(path), std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A free name for keeping a copy of `path` aside: `<path><suffix>`, else the first free
/// of `<path><suffix>.1` to `.9` (an earlier copy is never replaced); None if all are taken.
pub fn aside_name(path: &Path, suffix: &str) -> Option<PathBuf> {
    (0..10).find_map(|n| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        if n > 0 {
            name.push(format!(".{n}"));
        }
        let name = PathBuf::from(name);
        (fs::symlink_metadata(&name).is_err()).then_some(name)
    })
}

/// Renames `path` aside to a free `aside_name`, returning the new name.
pub fn set_aside(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let to = aside_name(path, suffix).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("every name for {}{suffix} is taken", path.display()),
        )
    })?;
    fs::rename(path, &to)?;
    File::open(dir_of(path))?.sync_all()?;
    Ok(to)
}

/// Removes temporary files that a crash during a write left beside `path` (of the file
/// itself, or of a copy or file written beside it, `<file>.corrupt` or `<file>.new`);
/// returns them.
pub fn remove_leftovers(path: &Path) -> Vec<PathBuf> {
    let base = path
        .file_name()
        .map_or_else(String::new, |b| b.to_string_lossy().into_owned());
    let Ok(entries) = fs::read_dir(dir_of(path)) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    let temp = temp_prefix(path);
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with(&temp)
            || name.strip_prefix(&base).is_some_and(|rest| {
                rest.starts_with(".corrupt") && rest.contains(".in_progress.")
                    || rest.starts_with(".new.in_progress.")
            });
        if ours && fs::remove_file(e.path()).is_ok() {
            removed.push(e.path());
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Mode;
    use crate::wire::parse::parse_text;

    fn store_with(body: &str) -> Store {
        let s = Store::new();
        let key = GroupingKey::parse(b"j", false, b"/instance/i", false).unwrap();
        let fams = parse_text(body.as_bytes()).unwrap();
        s.push(
            &key,
            fams,
            Mode::Replace,
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
        )
        .unwrap();
        s
    }

    #[test]
    fn times_round_trip_like_go() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let b = time_bytes(t);
        assert_eq!(b[0], 1);
        assert_eq!(&b[13..], &[0xff, 0xff]);
        assert_eq!(parse_time(&b), Some(t));
        // Bytes from a Go gateway file (zone offset 0): 2026-11-25T08:31:28.103997453Z.
        let go = [
            1, 0, 0, 0, 0x0e, 0xe2, 0x98, 0x93, 0xe0, 0x06, 0x32, 0xe0, 0x0d, 0, 0,
        ];
        assert_eq!(
            parse_time(&go),
            Some(UNIX_EPOCH + Duration::new(1_795_595_488, 103_997_453))
        );
        // Before 1970 (a clock not yet set): whole seconds round down, as Go's do.
        let early = UNIX_EPOCH - Duration::new(1, 500_000_000);
        let mut want = vec![1];
        want.extend_from_slice(&(UNIX_TO_YEAR_ONE - 2).to_be_bytes());
        want.extend_from_slice(&500_000_000i32.to_be_bytes());
        want.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(time_bytes(early).to_vec(), want);
        assert_eq!(parse_time(&time_bytes(early)), Some(early));
        let whole = UNIX_EPOCH - Duration::from_secs(2);
        let b = time_bytes(whole);
        assert_eq!(b[1..9], (UNIX_TO_YEAR_ONE - 2).to_be_bytes());
        assert_eq!(b[9..13], [0, 0, 0, 0]);
        assert_eq!(parse_time(&time_bytes(whole)), Some(whole));
        // Version 2 (a zone offset with seconds, Go 1.19 on): the zone does not move the
        // instant.
        let mut v2 = time_bytes(t).to_vec();
        v2[0] = 2;
        v2.extend_from_slice(&[0, 1, 30]);
        v2.truncate(16);
        assert_eq!(parse_time(&v2), Some(t));
        assert_eq!(parse_time(&v2[..15]), None);
    }

    #[test]
    fn groups_and_families_of_an_unexpected_shape_are_counted_and_skipped() {
        let mut w = writer();
        let mut body = Vec::new();
        gob::put_uint(&mut body, 2);
        // A group whose one family has a push time but no data (a corrupt Go file).
        gob::put_bytes(&mut body, b"job\xffa");
        body.push(1); // Labels
        gob::put_uint(&mut body, 1);
        gob::put_bytes(&mut body, b"job");
        gob::put_bytes(&mut body, b"a");
        body.push(1); // Metrics
        gob::put_uint(&mut body, 1);
        gob::put_bytes(&mut body, b"f");
        body.push(1); // Timestamp
        gob::put_bytes(&mut body, &time_bytes(UNIX_EPOCH));
        body.push(0);
        body.push(0);
        // A group without labels.
        gob::put_bytes(&mut body, b"");
        body.push(0);
        w.value(T_GROUPS, &body);
        let mut groups = Vec::new();
        let read = decode(&w.out, |g| groups.push(g));
        assert_eq!(
            read.problem.as_deref(),
            Some("1 groups of an unexpected shape skipped; 1 families without data skipped")
        );
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].labels, [("job".to_string(), "a".to_string())]);
        assert!(groups[0].families.is_empty());
    }

    #[test]
    fn a_store_round_trips_through_a_file() {
        let s = store_with(
            "# HELP m A gauge.\n# TYPE m gauge\nm{a=\"1\"} 2.5\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n",
        );
        let (seq, groups) = s.cut(|_| {});
        let bytes = encode(&groups, seq, 7, false);
        let restored = Store::new();
        let mut n = 0;
        let read = decode(&bytes, |g| {
            n += 1;
            restore(&restored, &g, false, true).unwrap();
        });
        assert_eq!(
            read,
            Read {
                seq: Some(seq),
                lineage: Some(7),
                problem: None
            }
        );
        assert_eq!(n, 1);
        let text = |s: &Store| {
            expose::text(Vec::new(), s.scrape(), None)
                .iter()
                .map(|p| p.lines().to_string())
                .collect::<String>()
        };
        assert_eq!(text(&restored), text(&s));
        let g = restored.groups();
        assert_eq!(
            g[0].family("m").unwrap().pushed_at(),
            UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)
        );
    }

    #[test]
    fn damage_is_reported_and_never_panics() {
        let s = store_with("m 1\n");
        let (seq, groups) = s.cut(|_| {});
        let bytes = encode(&groups, seq, 7, false);
        let mut flipped = bytes.clone();
        flipped[bytes.len() / 2] ^= 0x10;
        let read = decode(&flipped, |_| {});
        assert!(read.problem.unwrap().contains("checksum mismatch"));
        // Cut anywhere but right after the gob value (then it is whole, and reads like a
        // Go gateway's file): reported.
        for cut in (0..bytes.len()).filter(|&c| c != bytes.len() - TRAILER) {
            let read = decode(&bytes[..cut], |_| {});
            assert!(read.problem.is_some(), "cut at {cut}");
        }
        assert!(decode(b"", |_| {}).problem.unwrap().contains("empty"));
        // What the log says of a Go gateway's file cut short.
        let gob = &bytes[..bytes.len() - TRAILER];
        let read = decode(&gob[..gob.len() - 3], |_| {});
        assert_eq!(
            read.problem.as_deref(),
            Some("truncated or corrupt: gob: length 130 runs past the end at byte 636")
        );
    }

    #[test]
    fn copies_kept_aside_never_replace_an_earlier_one() {
        let dir = crate::persist::scratch_dir("aside");
        let file = dir.join("p.data");
        let mut taken = Vec::new();
        while let Some(name) = aside_name(&file, ".corrupt") {
            fs::write(&name, b"").unwrap();
            taken.push(name.file_name().unwrap().to_string_lossy().into_owned());
        }
        let mut want = vec!["p.data.corrupt".to_string()];
        want.extend((1..10).map(|n| format!("p.data.corrupt.{n}")));
        assert_eq!(taken, want);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_earlier_builds_trailer_reads_as_lineage_0() {
        let s = store_with("m 1\n");
        let (seq, groups) = s.cut(|_| {});
        let v2 = encode(&groups, seq, 7, false);
        let gob = &v2[..v2.len() - TRAILER];
        let mut v1 = gob.to_vec();
        v1.extend_from_slice(MAGIC_V1);
        v1.extend_from_slice(&seq.to_le_bytes());
        v1.extend_from_slice(&(gob.len() as u64).to_le_bytes());
        v1.extend_from_slice(&crc32c(gob).to_le_bytes());
        let read = decode(&v1, |_| {});
        assert_eq!(
            (read.seq, read.lineage, read.problem),
            (Some(seq), Some(0), None)
        );
        // A Go gateway's file (the gob value alone) has neither.
        let read = decode(gob, |_| {});
        assert_eq!((read.seq, read.lineage, read.problem), (None, None, None));
        // The trailer's change number is under the checksum.
        let mut bumped = v2.clone();
        let at = v2.len() - TRAILER + 16;
        bumped[at] ^= 1;
        assert!(
            decode(&bumped, |_| {})
                .problem
                .unwrap()
                .contains("checksum mismatch")
        );
    }
}
