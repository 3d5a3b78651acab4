//! The durable mode's journal (`--persistence.sync=always`): each store change appended and fsynced, many per fsync, before its request is answered; replayed over the snapshot it follows at start.
//!
//! Files sit beside the persistence file as `<file>.journal.<N>`: a header (magic, the
//! lineage, N), then records of the changes after change N. A snapshot that holds
//! changes up to S starts file `.journal.S` at the instant it is cut (under the store's
//! lock); once the snapshot is on disk, the older files go. The lineage is the history
//! a snapshot and its journal files share (the snapshot's trailer names it too): a
//! journal is replayed only over a snapshot of its lineage (or, with no file at all, from
//! change 0), so the Go gateway's file, or one restored from a backup, never gets stale
//! changes replayed over it.
//!
//! A record is `u32 length | u32 CRC-32C of the body | u32 CRC-32C of those 8 bytes |
//! body`, little-endian; the body is `u64 change number | u8 kind | ...`: kind 1, a
//! group's whole new state (labels, then families as name, push time in nanoseconds and
//! a protobuf `MetricFamily`); kind 3, the families a change wrote into a group (same
//! layout, the group's other families kept); kind 2, a group's removal (labels). Change
//! numbers follow each other without a hole, which replay checks.
//!
//! Replay keeps every byte it cannot use: a torn last record (shorter than its length
//! says, or zeros: a crash mid-write, never acknowledged) is cut off; a damaged record
//! stops the replay of its file there, and the file is to be renamed `.damaged`; files of
//! another lineage, or that do not follow on from what was replayed, `.stale` (`Aside`:
//! renamed by `persist` once a written file holds what was replayed). A write that fails
//! (disk full, read-only) fails its changes and every later one until a snapshot holds
//! them (`Journal::run`).

mod files;
mod record;
mod replay;

use files::open_file;
pub use files::{files, new_lineage};
pub use record::Record;
use record::encode;
pub use replay::{Aside, Over, replay};

use super::Error;
use crate::store::Change;
use std::fs::{self, File};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;

/// The journal asks for an early snapshot once its file outgrows the last snapshot, and
/// never below this: what a restart replays stays about one snapshot's worth.
const MIN_BOUND: u64 = 1 << 20;
/// Failed ranges remembered for waiters that have not looked yet.
const FAILURES_KEPT: usize = 256;

/// Waits until the store changes numbered after A up to B are durable (the durable
/// mode), as a future: a change waiting for the disk holds no thread. What `service`
/// takes to answer a change only once it is on disk.
pub type Settle = Box<dyn Fn(u64, u64) -> DurableFuture + Send + Sync>;

pub type DurableFuture = Pin<Box<dyn Future<Output = Result<(), Error>> + Send>>;

enum Item {
    Change(u64, Change),
    Rotate(u64),
    /// A snapshot holding every change up to this one is on disk.
    Compact(u64),
    /// The snapshot cut at this change could not be written.
    SnapshotFailed(u64, Error),
}

#[derive(Default)]
struct Queue {
    items: Vec<Item>,
    /// Every change up to this number is decided: on disk, or failed.
    decided: u64,
    /// Decided changes that failed: first, last, why (merged, the latest kept).
    failed: Vec<(u64, u64, Error)>,
    shutdown: bool,
    /// The thread has stopped: every change it was given is decided.
    exited: bool,
    /// Futures waiting (`Journal::wait_async`): id → the change they wait for, whom to wake.
    wakers: std::collections::HashMap<u64, (u64, Waker)>,
    next_waiter: u64,
}

impl Queue {
    /// Records changes `lo..=hi` as decided, failed with `why` if given: a failure that
    /// goes on for the same reason extends the last range rather than adding one.
    fn decide(&mut self, lo: u64, hi: u64, failed: Option<&Error>) {
        if let Some(why) = failed {
            match self.failed.last_mut() {
                Some(last) if last.1 + 1 == lo && last.2 == *why => last.1 = hi,
                _ => self.failed.push((lo, hi, why.clone())),
            }
            if self.failed.len() > FAILURES_KEPT {
                self.failed.remove(0);
            }
        }
        self.decided = self.decided.max(hi);
    }

    /// The outcome for changes `after + 1 ..= upto`, once they are all decided.
    fn outcome(&self, after: u64, upto: u64) -> Option<Result<(), Error>> {
        if self.decided >= upto {
            if let Some((_, _, e)) = self
                .failed
                .iter()
                .rev()
                .find(|(lo, hi, _)| *lo <= upto && *hi > after)
            {
                return Some(Err(e.clone()));
            }
            return Some(Ok(()));
        }
        if self.exited {
            return Some(Err(Error::Closed));
        }
        None
    }

    /// The wakers of futures whose changes are now decided (all, once shut down).
    fn ready(&mut self) -> Vec<Waker> {
        let (decided, all) = (self.decided, self.exited);
        let mut woken = Vec::new();
        self.wakers.retain(|_, (upto, w)| {
            let go = all || *upto <= decided;
            if go {
                woken.push(w.clone());
            }
            !go
        });
        woken
    }
}

/// The outcome of a change's journaling, as a future (`Journal::wait_async`).
pub struct Durable {
    journal: Arc<Journal>,
    after: u64,
    upto: u64,
    id: Option<u64>,
}

impl Future for Durable {
    type Output = Result<(), Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut q = this.journal.lock();
        if let Some(outcome) = q.outcome(this.after, this.upto) {
            if let Some(id) = this.id.take() {
                q.wakers.remove(&id);
            }
            return Poll::Ready(outcome);
        }
        let id = *this.id.get_or_insert_with(|| {
            q.next_waiter += 1;
            q.next_waiter
        });
        q.wakers.insert(id, (this.upto, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Durable {
    fn drop(&mut self) {
        // A request whose client left: forget its waker.
        if let Some(id) = self.id.take() {
            self.journal.lock().wakers.remove(&id);
        }
    }
}

/// Why the journal's chain is broken (a write failed), and how far healing got.
struct Broken {
    why: Error,
    /// The snapshot cut at this change started a new file; its changes wait for it.
    healing: Option<u64>,
    /// Changes written to that new file, waiting for the snapshot: first, last.
    held: Option<(u64, u64)>,
}

pub struct Journal {
    base: PathBuf,
    utf8: bool,
    lineage: u64,
    queue: Mutex<Queue>,
    work: Condvar,
    done: Condvar,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Asks for a snapshot now (the file outgrew its bound, or a write failed).
    snapshot_now: Box<dyn Fn() + Send + Sync>,
    /// The size of the last snapshot written, for the bound.
    last_snapshot: AtomicU64,
    /// Files never to remove (they could not be set aside).
    protected: Protected,
}

/// Journal files that could not be set aside: never removed by a compaction.
pub type Protected = Arc<Mutex<std::collections::HashSet<PathBuf>>>;

/// What `Journal::start` needs besides where to start.
pub struct Start {
    pub utf8: bool,
    /// The files on disk reproduce the store as it is (see `persist`).
    pub anchored: bool,
    pub snapshot_now: Box<dyn Fn() + Send + Sync>,
    pub last_snapshot: u64,
    pub protected: Protected,
}

/// The file being appended to, and how much of it is known good.
struct Current {
    file: Option<File>,
    generation: u64,
    /// Bytes on disk, fsynced: a failed write is cut back to this.
    good: u64,
    /// An early snapshot was asked for since this file started.
    asked: bool,
}

impl Journal {
    /// Starts a journal of `lineage` whose first file is numbered `generation` (the last
    /// change so far). Not `anchored` (no file on disk holds the store as it is), or
    /// without a file it can open, it takes no change until a snapshot holds the store,
    /// as after a failed write; `snapshot_now` asks for one. `last_snapshot` is the size
    /// of the file loaded, for the early-snapshot bound.
    pub fn start(
        base: &Path,
        lineage: u64,
        generation: u64,
        start: Start,
    ) -> io::Result<Arc<Journal>> {
        let mut broken = (!start.anchored).then_some(Broken {
            why: Error::NotAnchored,
            healing: None,
            held: None,
        });
        let (file, good) = match open_file(base, lineage, generation) {
            Ok((f, good)) => (Some(f), good),
            Err(e) => {
                log::error!("could not start the persistence journal: {e}");
                broken = Some(Broken {
                    why: Error::Start(Arc::new(e)),
                    healing: None,
                    held: None,
                });
                (None, 0)
            }
        };
        let j = Arc::new(Journal {
            base: base.to_path_buf(),
            utf8: start.utf8,
            lineage,
            queue: Mutex::new(Queue {
                decided: generation,
                ..Queue::default()
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            thread: Mutex::new(None),
            snapshot_now: start.snapshot_now,
            last_snapshot: AtomicU64::new(start.last_snapshot),
            protected: start.protected,
        });
        let runner = j.clone();
        let current = Current {
            file,
            generation,
            good,
            asked: false,
        };
        let handle = std::thread::Builder::new()
            .name("journal".into())
            .spawn(move || runner.run(current, broken))?;
        *j.thread.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        Ok(j)
    }

    fn ask_snapshot(&self) {
        (self.snapshot_now)();
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn enqueue(&self, item: Item) {
        let mut q = self.lock();
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

    /// The snapshot cut at `seq`, `bytes` long, is on disk: the files before file `seq`
    /// go.
    pub fn compact(&self, seq: u64, bytes: u64) {
        self.last_snapshot.store(bytes, Ordering::Relaxed);
        self.enqueue(Item::Compact(seq));
    }

    /// The snapshot cut at `seq` could not be written.
    pub fn snapshot_failed(&self, seq: u64, why: Error) {
        self.enqueue(Item::SnapshotFailed(seq, why));
    }

    /// Waits until the changes numbered `after + 1 ..= upto` are decided; an error if one
    /// of them could not be made durable. (A request knows the change number before and
    /// after its change, so it may wait for others' changes too: never for less than its
    /// own.)
    #[cfg(test)]
    pub fn wait(&self, after: u64, upto: u64) -> Result<(), Error> {
        let mut q = self.lock();
        loop {
            if let Some(outcome) = q.outcome(after, upto) {
                return outcome;
            }
            q = self.done.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// `wait` as a future: a change waiting for the disk holds no thread.
    pub fn wait_async(self: &Arc<Self>, after: u64, upto: u64) -> Durable {
        Durable {
            journal: self.clone(),
            after,
            upto,
            id: None,
        }
    }

    fn wake_ready(&self, mut q: MutexGuard<'_, Queue>) {
        let woken = q.ready();
        self.done.notify_all();
        drop(q);
        for w in woken {
            w.wake();
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

    /// Decides changes `lo..=hi`: failed with `why` if given.
    fn decide(&self, lo: u64, hi: u64, failed: Option<&Error>) {
        if hi == 0 || lo > hi {
            return;
        }
        let mut q = self.lock();
        q.decide(lo, hi, failed);
        self.wake_ready(q);
    }

    /// Appends `buf` and fsyncs; on failure cuts the file back to what was good.
    fn append(cur: &mut Current, buf: &[u8]) -> io::Result<()> {
        let Some(file) = cur.file.as_mut() else {
            return Err(io::Error::other("no journal file is open"));
        };
        if buf.is_empty() {
            return Ok(());
        }
        let result = file.write_all(buf).and_then(|()| file.sync_data());
        match &result {
            Ok(()) => cur.good += buf.len() as u64,
            Err(_) => {
                // A partial record would stop replay at it: cut it off. If even that
                // fails, the file is not written to again.
                if file
                    .set_len(cur.good)
                    .and_then(|()| file.sync_data())
                    .is_err()
                {
                    cur.file = None;
                }
            }
        }
        result
    }

    fn run(&self, mut cur: Current, mut broken: Option<Broken>) {
        let mut buf = Vec::new();
        if broken.is_some() {
            self.ask_snapshot();
        }
        loop {
            let items = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                while q.items.is_empty() && !q.shutdown {
                    q = self.work.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                if q.items.is_empty() {
                    q.exited = true;
                    self.wake_ready(q);
                    return;
                }
                std::mem::take(&mut q.items)
            };
            // One write and one fsync for everything queued meanwhile (group commit);
            // rotations and compactions split the batch where they were queued.
            let (mut lo, mut hi) = (u64::MAX, 0u64);
            buf.clear();
            for item in items {
                match item {
                    Item::Change(seq, change) => {
                        lo = lo.min(seq);
                        hi = hi.max(seq);
                        encode(&mut buf, seq, &change, self.utf8);
                    }
                    Item::Rotate(generation) => {
                        self.flush(&mut cur, &mut buf, &mut broken, (lo, hi));
                        (lo, hi) = (u64::MAX, 0);
                        match open_file(&self.base, self.lineage, generation) {
                            Ok((f, good)) => {
                                cur = Current {
                                    file: Some(f),
                                    generation,
                                    good,
                                    asked: false,
                                };
                                if let Some(b) = &mut broken {
                                    b.healing = Some(generation);
                                    b.held = None;
                                }
                            }
                            // Records after the cut may go on in the old file: replay
                            // over the new snapshot skips what it holds.
                            Err(e) => {
                                log::error!("could not start a new journal file: {e}");
                            }
                        }
                    }
                    Item::Compact(generation) => {
                        self.flush(&mut cur, &mut buf, &mut broken, (lo, hi));
                        (lo, hi) = (u64::MAX, 0);
                        let protected = self.protected.lock().unwrap_or_else(|e| e.into_inner());
                        for (n, path) in files(&self.base) {
                            if n < generation && n != cur.generation && !protected.contains(&path) {
                                let _ = fs::remove_file(path);
                            }
                        }
                        drop(protected);
                        if let Some(b) = broken.take_if(|b| b.healing == Some(generation)) {
                            log::info!(
                                "the persistence journal is written again: a snapshot holds the changes it missed"
                            );
                            if let Some((l, h)) = b.held {
                                self.decide(l, h, None);
                            }
                        } else if broken.is_some() {
                            // That snapshot came too early (or its new file could not be
                            // opened): another one heals the journal.
                            self.ask_snapshot();
                        }
                    }
                    Item::SnapshotFailed(generation, why) => {
                        self.flush(&mut cur, &mut buf, &mut broken, (lo, hi));
                        (lo, hi) = (u64::MAX, 0);
                        if let Some(b) = &mut broken
                            && b.healing == Some(generation)
                        {
                            b.healing = None;
                            if let Some((l, h)) = b.held.take() {
                                let why = Error::Then(Box::new(b.why.clone()), Box::new(why));
                                self.decide(l, h, Some(&why));
                            }
                        }
                    }
                }
            }
            self.flush(&mut cur, &mut buf, &mut broken, (lo, hi));
            let bound = self.last_snapshot.load(Ordering::Relaxed).max(MIN_BOUND);
            if !cur.asked && cur.good > bound {
                cur.asked = true;
                self.ask_snapshot();
            }
        }
    }

    /// Writes the buffered records of changes `lo..=hi` and decides them.
    fn flush(
        &self,
        cur: &mut Current,
        buf: &mut Vec<u8>,
        broken: &mut Option<Broken>,
        (lo, hi): (u64, u64),
    ) {
        if hi == 0 {
            buf.clear();
            return;
        }
        match broken {
            // The chain has a hole: these records would be replayed over a state
            // without the missing changes. They wait for a snapshot that holds them.
            Some(b) if b.healing.is_none() => {
                self.decide(lo, hi, Some(&b.why));
            }
            // After the snapshot's cut, in its new file: durable once that snapshot is.
            Some(b) => match Self::append(cur, buf) {
                Ok(()) => {
                    b.held = Some(b.held.map_or((lo, hi), |(l, _)| (l, hi)));
                }
                Err(e) => {
                    b.why = Error::Write(Arc::new(e));
                    b.healing = None;
                    let held = b.held.take().map_or(lo, |(l, _)| l);
                    self.decide(held, hi, Some(&b.why));
                    self.ask_snapshot();
                }
            },
            None => match Self::append(cur, buf) {
                Ok(()) => self.decide(lo, hi, None),
                Err(e) => {
                    let why = Error::Write(Arc::new(e));
                    log::error!(
                        "{why}; changes are refused with 500 until the persistence file holds them"
                    );
                    self.decide(lo, hi, Some(&why));
                    *broken = Some(Broken {
                        why,
                        healing: None,
                        held: None,
                    });
                    self.ask_snapshot();
                }
            },
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::grouping::GroupingKey;
    use crate::store::{Mode, Store};
    use crate::wire::parse::parse_text;
    use std::fs::OpenOptions;
    use std::time::UNIX_EPOCH;

    #[test]
    fn each_waiter_learns_the_failure_of_its_own_changes() {
        let mut q = Queue::default();
        q.decide(1, 2, Some(&Error::Closed));
        q.decide(3, 4, Some(&Error::Closed));
        q.decide(5, 5, None);
        q.decide(6, 6, Some(&Error::NotAnchored));
        q.decide(7, 7, Some(&Error::Closed));
        // The same reason going on is one range; another reason, or a gap, starts one.
        let ranges: Vec<(u64, u64, String)> = q
            .failed
            .iter()
            .map(|(lo, hi, e)| (*lo, *hi, e.to_string()))
            .collect();
        let closed = Error::Closed.to_string();
        let not_anchored = Error::NotAnchored.to_string();
        assert_eq!(
            ranges,
            [
                (1, 4, closed.clone()),
                (6, 6, not_anchored.clone()),
                (7, 7, closed.clone())
            ]
        );
        assert_eq!(q.outcome(2, 4), Some(Err(Error::Closed)));
        assert_eq!(q.outcome(4, 5), Some(Ok(())));
        assert_eq!(q.outcome(5, 6), Some(Err(Error::NotAnchored)));
        assert_eq!(q.outcome(7, 8), None, "change 8 is not decided yet");
        // Only the last ranges are kept: the oldest go first.
        for i in 0..FAILURES_KEPT as u64 {
            let why = if i % 2 == 0 {
                Error::Closed
            } else {
                Error::NotAnchored
            };
            q.decide(10 + i, 10 + i, Some(&why));
        }
        assert_eq!(q.failed.len(), FAILURES_KEPT);
        assert_eq!(q.failed[0].0, 10);
    }

    #[test]
    fn records_replay_in_order_and_a_torn_tail_is_cut() {
        let dir = crate::persist::scratch_dir("journal");
        let base = dir.join("p.data");
        let store = Store::new();
        let start = Start {
            utf8: false,
            anchored: true,
            snapshot_now: Box::new(|| {}),
            last_snapshot: 0,
            protected: Protected::default(),
        };
        let j = Journal::start(&base, 5, 0, start).unwrap();
        let jj = j.clone();
        store.observe(Box::new(move |seq, c| jj.push(seq, c)));
        let key = GroupingKey::parse(b"a", false, b"", false).unwrap();
        let fams = parse_text(b"m 1\n").unwrap();
        store.push(&key, fams, Mode::Replace, UNIX_EPOCH).unwrap();
        let fams = parse_text(b"n 1\n").unwrap();
        store.push(&key, fams, Mode::Add, UNIX_EPOCH).unwrap();
        let _ = store.delete(&key);
        j.wait(0, store.seq()).unwrap();
        j.shutdown();
        let mut got = Vec::new();
        let r = replay(&base, Over::Nothing, |seq, r| got.push((seq, r)));
        assert_eq!((r.last, r.lineage, r.set_aside.len()), (3, Some(5), 0));
        assert!(matches!(got[0], (1, Record::Patch(_))));
        let (2, Record::Patch(g)) = &got[1] else {
            panic!("{:?}", got[1])
        };
        let names: Vec<&str> = g.families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["n", "push_time_seconds"]);
        assert_eq!(
            got[2],
            (3, Record::Remove(vec![("job".into(), "a".into())]))
        );
        // A torn record at the end is cut off, silently, and the rest replays.
        let (_, path) = files(&base).pop().unwrap();
        let len = fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        let r = replay(&base, Over::Nothing, |_, _| {});
        assert_eq!((r.last, r.cut.len(), r.set_aside.len()), (3, 1, 0));
        assert_eq!(fs::metadata(&path).unwrap().len(), len);
        // Zeros at the end (a crash after the file grew) are a torn tail too.
        f.write_all(&[0; 100]).unwrap();
        let r = replay(&base, Over::Nothing, |_, _| {});
        assert_eq!((r.last, r.cut.len(), r.set_aside.len()), (3, 1, 0));
        let _ = fs::remove_dir_all(&dir);
    }
}
