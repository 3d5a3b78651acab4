//! The durable mode's journal (`--persistence.sync=always`): each store change appended and fsynced, many per fsync, before its request is answered; replayed over the snapshot at start.
//!
//! Files sit beside the persistence file as `<file>.journal.<N>`, where N is the number of
//! the last change before the file's first record. A snapshot that holds changes up to S
//! starts file `.journal.S` (at the very instant it is cut, under the store's lock), and
//! once the snapshot is safely on disk the older files go. A record is
//! `u32 length | u32 CRC-32C | u64 change number | u8 kind | body` (little-endian): kind 1
//! is a group's new state (labels, then families as name, push time in nanoseconds and a
//! protobuf `MetricFamily`), kind 2 a group's removal (labels). A torn last record (a
//! crash mid-write, never acknowledged) ends the replay.

use crate::compress::crc32c;
use crate::snapshot::{self, FamilyRecord, GroupRecord};
use crate::store::Change;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, UNIX_EPOCH};

/// A replayed record.
#[derive(Debug, PartialEq)]
pub enum Record {
    Upsert(GroupRecord),
    Remove(Vec<(String, String)>),
}

enum Item {
    Change(u64, Change),
    Rotate(u64),
    Compact(u64),
}

#[derive(Default)]
struct Queue {
    items: Vec<Item>,
    /// Every change up to this number is on disk.
    durable: u64,
    /// Batches that could not be written: their change numbers and why (until a snapshot
    /// on disk holds those changes).
    failed: Vec<(u64, u64, String)>,
    shutdown: bool,
}

pub struct Journal {
    base: PathBuf,
    utf8: bool,
    queue: Mutex<Queue>,
    work: Condvar,
    done: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
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

fn encode(out: &mut Vec<u8>, seq: u64, change: &Change, utf8: bool) {
    let mut body = Vec::new();
    body.extend_from_slice(&seq.to_le_bytes());
    match change {
        Change::Upsert(g) => {
            let rec = snapshot::record_of(g, utf8);
            body.push(1);
            put_labels(&mut body, &rec.labels);
            body.extend_from_slice(&(rec.families.len() as u32).to_le_bytes());
            for f in &rec.families {
                put_str(&mut body, f.name.as_bytes());
                let nanos =
                    f.at.duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64);
                body.extend_from_slice(&nanos.to_le_bytes());
                put_str(&mut body, &f.message);
            }
        }
        Change::Remove(key) => {
            body.push(2);
            let labels: Vec<(String, String)> = key
                .labels()
                .map(|(n, v)| {
                    let n = if utf8 {
                        crate::names::decode(n)
                    } else {
                        n.into()
                    };
                    (n.into_owned(), v.to_string())
                })
                .collect();
            put_labels(&mut body, &labels);
        }
    }
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c(&body).to_le_bytes());
    out.extend_from_slice(&body);
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
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
}

fn decode_body(body: &[u8]) -> Option<(u64, Record)> {
    let mut c = Cursor { b: body, pos: 0 };
    let seq = c.u64()?;
    let rec = match c.take(1)?[0] {
        1 => {
            let labels = c.labels()?;
            let n = c.u32()?;
            let families = (0..n)
                .map(|_| {
                    Some(FamilyRecord {
                        name: c.string()?,
                        at: UNIX_EPOCH + Duration::from_nanos(c.u64()?),
                        message: c.bytes()?,
                    })
                })
                .collect::<Option<Vec<_>>>()?;
            Record::Upsert(GroupRecord { labels, families })
        }
        2 => Record::Remove(c.labels()?),
        _ => return None,
    };
    (c.pos == body.len()).then_some((seq, rec))
}

/// The journal files of persistence file `base`, oldest first.
pub fn files(base: &Path) -> Vec<(u64, PathBuf)> {
    let prefix = format!(
        "{}.journal.",
        base.file_name()
            .map_or_else(String::new, |b| b.to_string_lossy().into_owned())
    );
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut out: Vec<(u64, PathBuf)> = fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix(&prefix)?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Replays the records of every journal file numbered after `after`, oldest first.
/// Returns the last change number seen and, if a file ends in a torn or damaged record,
/// where (what follows it in that file is ignored).
pub fn replay(base: &Path, after: u64, mut each: impl FnMut(u64, Record)) -> (u64, Vec<String>) {
    let mut last = after;
    let mut problems = Vec::new();
    for (_, path) in files(base) {
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                problems.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let mut c = Cursor { b: &data, pos: 0 };
        while c.pos < data.len() {
            let at = c.pos;
            let record = (|| {
                let len = c.u32()? as usize;
                let sum = c.u32()?;
                let body = c.take(len)?;
                if crc32c(body) != sum {
                    return None;
                }
                decode_body(body)
            })();
            let Some((seq, rec)) = record else {
                problems.push(format!(
                    "{}: torn or damaged record at byte {at}, {} bytes cut off",
                    path.display(),
                    data.len() - at
                ));
                // Cut it off, so that records appended later are not stuck behind it.
                if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                    let _ = f.set_len(at as u64).and_then(|()| f.sync_all());
                }
                break;
            };
            if seq > after {
                last = last.max(seq);
                each(seq, rec);
            }
        }
    }
    (last, problems)
}

fn open_file(base: &Path, generation: u64) -> io::Result<File> {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".journal.{generation}"));
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(PathBuf::from(name))?;
    if let Some(dir) = base.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(f)
}

impl Journal {
    /// Starts a journal whose first file is numbered `generation` (the last change so far).
    pub fn start(base: &Path, generation: u64, utf8: bool) -> io::Result<Arc<Journal>> {
        let file = open_file(base, generation)?;
        let j = Arc::new(Journal {
            base: base.to_path_buf(),
            utf8,
            queue: Mutex::new(Queue {
                durable: generation,
                ..Queue::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            thread: Mutex::new(None),
        });
        let runner = j.clone();
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || runner.run(file, generation))?;
        *j.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(j)
    }

    fn enqueue(&self, item: Item) {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        q.items.push(item);
        self.work.notify_one();
    }

    /// Queues change `seq` (called under the store's lock, in change order).
    pub fn push(&self, seq: u64, change: Change) {
        self.enqueue(Item::Change(seq, change));
    }

    /// Starts file `seq` after the changes queued so far (called as a snapshot is cut).
    pub fn rotate(&self, seq: u64) {
        self.enqueue(Item::Rotate(seq));
    }

    /// Removes the files before file `seq`, whose changes a snapshot on disk now holds.
    pub fn compact(&self, seq: u64) {
        self.enqueue(Item::Compact(seq));
    }

    /// Waits until the changes numbered `after + 1 ..= upto` are on disk; an error if one
    /// of them could not be written. (A request knows the change number before and after
    /// its change, so it may wait for others' changes too: never for less than its own.)
    pub fn wait(&self, after: u64, upto: u64) -> Result<(), String> {
        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if q.durable >= upto {
                if let Some((_, _, e)) = q
                    .failed
                    .iter()
                    .find(|(lo, hi, _)| *lo <= upto && *hi > after)
                {
                    return Err(e.clone());
                }
                return Ok(());
            }
            if q.shutdown && q.items.is_empty() {
                return Err("the journal is closed".into());
            }
            q = self.done.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Writes what is queued, then stops the thread.
    pub fn shutdown(&self) {
        {
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            q.shutdown = true;
            self.work.notify_one();
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    fn run(&self, mut file: File, mut current: u64) {
        let mut buf = Vec::new();
        loop {
            let items = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.items.is_empty() && !q.shutdown {
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.items.is_empty() {
                    self.done.notify_all();
                    return;
                }
                std::mem::take(&mut q.items)
            };
            // One write and one fsync for everything queued meanwhile (group commit).
            let (mut lo, mut hi) = (u64::MAX, 0);
            let mut result: io::Result<()> = Ok(());
            buf.clear();
            for item in items {
                match item {
                    Item::Change(seq, change) => {
                        lo = lo.min(seq);
                        hi = hi.max(seq);
                        encode(&mut buf, seq, &change, self.utf8);
                    }
                    Item::Rotate(generation) => {
                        result = result.and_then(|()| {
                            file.write_all(&buf)?;
                            file.sync_data()?;
                            file = open_file(&self.base, generation)?;
                            current = generation;
                            Ok(())
                        });
                        buf.clear();
                    }
                    Item::Compact(generation) => {
                        // Never the file being written, even if a rotation failed.
                        for (n, path) in files(&self.base) {
                            if n < generation && n != current {
                                let _ = fs::remove_file(path);
                            }
                        }
                        let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                        q.failed.retain(|(_, hi, _)| *hi > generation);
                    }
                }
            }
            result = result.and_then(|()| {
                file.write_all(&buf)?;
                file.sync_data()
            });
            if let Err(e) = &result {
                log::error!("could not write the persistence journal: {e}");
                // The file may now end in a partial record: later records go to a new
                // file, so that replay reaches them. (These changes wait for the snapshot.)
                let next = current.max(hi);
                match open_file(&self.base, next) {
                    Ok(f) if next != current => {
                        file = f;
                        current = next;
                    }
                    Ok(_) => {}
                    Err(e) => log::error!("could not start a new journal file: {e}"),
                }
            }
            let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(()) if hi > 0 => q.durable = q.durable.max(hi),
                Ok(()) => {}
                Err(e) => {
                    if hi > 0 {
                        q.failed
                            .push((lo, hi, format!("could not write the journal: {e}")));
                        q.durable = q.durable.max(hi);
                    }
                }
            }
            self.done.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grouping::GroupingKey;
    use crate::parse::parse_text;
    use crate::store::{Mode, Store};

    #[test]
    fn records_replay_in_order_and_a_torn_tail_is_cut() {
        let dir = std::env::temp_dir().join(format!("pgw-journal-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let base = dir.join("p.data");
        let store = Store::new();
        let j = Journal::start(&base, 0, false).unwrap();
        let jj = j.clone();
        store.observe(Box::new(move |seq, c| jj.push(seq, c)));
        let key = GroupingKey::parse(b"a", false, b"", false).unwrap();
        let fams = parse_text(b"m 1\n").unwrap();
        store.push(&key, fams, Mode::Replace, UNIX_EPOCH).unwrap();
        let _ = store.delete(&key);
        j.wait(0, store.seq()).unwrap();
        j.shutdown();
        let mut got = Vec::new();
        let (last, problems) = replay(&base, 0, |seq, r| got.push((seq, r)));
        assert_eq!((last, problems.len()), (2, 0));
        assert!(matches!(got[0], (1, Record::Upsert(_))));
        assert_eq!(
            got[1],
            (2, Record::Remove(vec![("job".into(), "a".into())]))
        );
        // A torn record at the end is reported and ignored.
        let (_, path) = files(&base).pop().unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        let (last, problems) = replay(&base, 1, |_, _| {});
        assert_eq!(last, 2);
        assert!(
            problems[0].contains("torn or damaged record"),
            "{problems:?}"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
