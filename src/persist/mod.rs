//! Persistence: loads the file (and replays the journal) at start, writes it on upstream's schedule, on SIGHUP and at shutdown, and makes pushes wait for the journal in durable mode.
//!
//! When a write is due is `schedule`'s. Writes run on their own thread from a consistent
//! cut of the store (pointer copies under the lock, the encoding outside it), so they
//! never hold up pushes or scrapes.

pub mod datafile;
mod error;
pub(crate) mod gob;
pub(crate) mod journal;
pub(crate) mod schedule;

use crate::store::Store;
pub use error::Error;
use journal::{Journal, Over, Record};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct Options {
    pub file: PathBuf,
    pub interval: Duration,
    /// `--persistence.sync=always`: a change is answered once it is in the journal.
    pub durable: bool,
    pub utf8_names: bool,
}

#[derive(Default)]
struct Flags {
    dirty: bool,
    now: bool,
    shutdown: bool,
    /// The start-up write failed: retry soon, as after any failed write.
    failed: bool,
}

use schedule::{MIN_SPACING, Pending};

struct Shared {
    opts: Options,
    store: Arc<Store>,
    /// Set once the journal is started (durable mode), after a start-up write if one is needed.
    journal: OnceLock<Arc<Journal>>,
    /// The history this process's snapshots and journal files belong to.
    lineage: u64,
    flags: Mutex<Flags>,
    wake: Condvar,
    /// The file could not be read at start: keep a copy before a write replaces it.
    keep_bad: Mutex<bool>,
    /// Journal files replay could not use, renamed aside once a written file holds what
    /// was replayed from them (and whether the wait was logged).
    asides: Mutex<(Vec<journal::Aside>, bool)>,
    /// Journal files that could not be renamed aside: never removed.
    protected: journal::Protected,
    /// Writes that reached the disk, for whoever waits for one (`Persister::writes`).
    written: std::sync::atomic::AtomicU64,
}

pub struct Persister {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What loading found.
struct Loaded {
    last: u64,
    lineage: u64,
    /// The file could not be read whole: it is copied aside before it is replaced.
    bad: bool,
    /// Something was replayed: a snapshot soon keeps the next start short.
    write_soon: bool,
    asides: Vec<journal::Aside>,
    /// The size of the file loaded.
    bytes: u64,
    /// What is in the store can be rebuilt from the files on disk by the next start, so
    /// the journal may go on from here. Not so over a file of another program (its
    /// lineage is not ours), a damaged file, or a chain of journal files that was set
    /// aside somewhere: a snapshot must be written first.
    anchored: bool,
}

/// Where snapshots go while a damaged file that could not be copied aside is left alone.
pub fn beside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".new");
    PathBuf::from(name)
}

/// Which of the file and the one written beside it to load: `Some(true)` the one beside,
/// `Some(false)` the file (the one beside is then stale), None if there is none beside.
fn choose(path: &Path, next: &Path) -> Option<bool> {
    if !next.is_file() {
        return None;
    }
    let trailer = |p: &Path| {
        fs::read(p).ok().and_then(|b| {
            let r = datafile::decode(&b, |_| {});
            r.problem.is_none().then_some((r.lineage, r.seq))
        })
    };
    let Some((lineage, seq)) = trailer(path) else {
        return Some(true);
    };
    Some(match trailer(next) {
        Some((l, s)) => l == lineage && s > seq,
        None => false,
    })
}

fn load(store: &Store, opts: &Options) -> Loaded {
    let path = &opts.file;
    for leftover in datafile::remove_leftovers(path) {
        log::info!(
            "removed {} left behind by an interrupted write",
            leftover.display()
        );
    }
    let (mut restored, mut skipped) = (0usize, 0usize);
    let mut restore = |rec: &datafile::GroupRecord, whole: bool| match datafile::restore(
        store,
        rec,
        opts.utf8_names,
        whole,
    ) {
        Ok(()) => restored += 1,
        Err(e) => {
            skipped += 1;
            log::warn!("skipped a persisted group: labels={:?} err={e}", rec.labels);
        }
    };
    // A file written beside a damaged one (see `Shared::write`) is the newer of the two
    // while the damaged one is still there and still does not read whole. If it reads
    // whole again (an operator mended it), the one holding more of the same history wins;
    // the other is kept aside, not removed.
    let next = beside(path);
    let source = match choose(path, &next) {
        Some(true) => {
            log::warn!(
                "loading {} (written while {} was left untouched for an operator)",
                next.display(),
                path.display()
            );
            &next
        }
        Some(false) => {
            match datafile::set_aside(&next, ".stale") {
                Ok(to) => log::warn!(
                    "{} reads whole again and holds no less than {}: loading it, the other kept as {}",
                    path.display(),
                    next.display(),
                    to.display()
                ),
                Err(e) => log::warn!("could not rename {} aside: {e}", next.display()),
            }
            path
        }
        None => path,
    };
    let mut bad = source == &next && path.exists();
    let mut size = 0;
    let over = match fs::read(source) {
        Ok(bytes) => {
            size = bytes.len() as u64;
            let read = datafile::decode(&bytes, |g| restore(&g, true));
            if let Some(p) = &read.problem {
                log::error!(
                    "could not load persisted metrics: file={} err=\"{p}\" (kept what could be read; a copy of the file is kept before it is next written)",
                    source.display(),
                );
                bad = true;
            }
            // A file that does not read whole cannot say which changes it holds.
            match (read.lineage, read.seq, &read.problem) {
                (Some(lineage), Some(seq), None) => Over::Snapshot { lineage, seq },
                _ => Over::Other,
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Over::Nothing,
        Err(e) => {
            log::error!(
                "could not load persisted metrics: file={} err=\"{e}\"",
                source.display()
            );
            bad = true;
            Over::Other
        }
    };
    // Also without the durable mode: journal files left by a run in that mode hold
    // acknowledged changes (they are removed after the next write of the file).
    let replayed = journal::replay(path, over, |_, rec| match rec {
        Record::Put(g) => restore(&g, true),
        Record::Patch(g) => restore(&g, false),
        Record::Remove(labels) => {
            match crate::model::grouping::GroupingKey::from_labels(labels, opts.utf8_names) {
                Ok(key) => {
                    let _ = store.delete(&key);
                }
                Err(e) => log::warn!("skipped a journal removal: {e}"),
            }
        }
    });
    for c in &replayed.cut {
        log::info!("persistence journal: {c}");
    }
    // Every change the journal replays restores a group or removes one that was restored
    // before it: a replay that applied anything has restored something.
    if restored + skipped > 0 {
        log::info!(
            "restored persisted metrics: file={} groups={} skipped={skipped} journal_changes={}",
            source.display(),
            store.groups().len(),
            replayed.applied
        );
    }
    // Lineage 0 is every earlier build's: go on under a lineage of our own. So does a
    // start that is not anchored: files of the old history left in place (they could not
    // be renamed aside) are then of another lineage, never replayed over the new one.
    let lineage = replayed.lineage.filter(|&l| l != 0);
    let anchored = over != Over::Other
        && !bad
        && replayed.set_aside.is_empty()
        && (lineage.is_some() || replayed.lineage.is_none());
    Loaded {
        last: replayed.last,
        lineage: lineage
            .filter(|_| anchored)
            .unwrap_or_else(journal::new_lineage),
        bad,
        write_soon: replayed.applied > 0 || !replayed.set_aside.is_empty(),
        anchored,
        asides: replayed.set_aside,
        bytes: size,
    }
}

impl Shared {
    /// Writes a snapshot; whether it reached the disk.
    fn write(&self) -> bool {
        let started = Instant::now();
        let (seq, groups) = self.store.cut(|seq| {
            if let Some(j) = self.journal.get() {
                j.rotate(seq);
            }
        });
        let bytes = datafile::encode(&groups, seq, self.lineage, self.opts.utf8_names);
        let group_count = groups.len();
        drop(groups);
        let path = &self.opts.file;
        let mut keep_bad = self.keep_bad.lock().unwrap_or_else(|e| e.into_inner());
        let mut target = path.clone();
        if *keep_bad {
            // The unreadable file may still hold something of value: keep it aside, and
            // while that cannot be done, leave it alone and write beside it.
            let kept = if !path.exists() {
                Ok(None)
            } else {
                match datafile::aside_name(path, ".corrupt") {
                    // A copy goes through a temporary file: never a partial `.corrupt`.
                    Some(copy) => fs::hard_link(path, &copy)
                        .or_else(|_| {
                            fs::read(path).and_then(|b| datafile::write_atomically(&copy, &b))
                        })
                        .map(|()| Some(copy)),
                    None => Err(std::io::Error::other("every .corrupt name is taken")),
                }
            };
            match kept {
                Ok(copy) => {
                    if let Some(copy) = copy {
                        log::warn!("kept the unreadable persistence file as {}", copy.display());
                    }
                    *keep_bad = false;
                }
                Err(e) => {
                    target = beside(path);
                    log::error!(
                        "could not keep a copy of the unreadable persistence file {} ({e}): it is left untouched, and metrics are written to {} until it is moved away",
                        path.display(),
                        target.display()
                    );
                }
            }
        }
        match datafile::write_atomically(&target, &bytes) {
            Ok(()) => {
                self.written
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                log::info!(
                    "metrics persisted: file={} groups={group_count} bytes={} took={:?}",
                    target.display(),
                    bytes.len(),
                    started.elapsed()
                );
                if target == *path {
                    // Written while a damaged file was left alone, now older than this.
                    let _ = fs::remove_file(beside(path));
                }
                self.set_asides_aside();
                match self.journal.get() {
                    Some(j) => j.compact(seq, bytes.len() as u64),
                    // Left by a run in the durable mode, replayed at start, now redundant.
                    None => {
                        let protected = self.protected.lock().unwrap_or_else(|e| e.into_inner());
                        for (_, f) in journal::files(path) {
                            if !protected.contains(&f) {
                                let _ = fs::remove_file(f);
                            }
                        }
                    }
                }
                true
            }
            Err(e) => {
                log::error!(
                    "error persisting metrics: file={} err=\"{e}\"",
                    target.display()
                );
                if let Some(j) = self.journal.get() {
                    j.snapshot_failed(seq, Error::Snapshot(target.clone(), Arc::new(e)));
                }
                let mut asides = self.asides.lock().unwrap_or_else(|e| e.into_inner());
                if !asides.1 {
                    asides.1 = true;
                    for a in &asides.0 {
                        log::error!(
                            "{} {}; it stays in place until the persistence file can be written",
                            a.path.display(),
                            a.why
                        );
                    }
                }
                false
            }
        }
    }

    /// Renames aside the journal files replay could not use, now that a written file holds
    /// what was replayed from them: one error line each.
    fn set_asides_aside(&self) {
        let pending = std::mem::take(&mut self.asides.lock().unwrap_or_else(|e| e.into_inner()).0);
        for a in pending {
            let (path, why) = (a.path.display(), &a.why);
            match a.apply() {
                Ok(Some(to)) => {
                    log::error!(
                        "persistence journal: {path} {why}; kept as {}",
                        to.display()
                    );
                }
                Ok(None) => {}
                Err(e) => {
                    log::error!(
                        "persistence journal: {path} {why}; it could not be renamed aside ({e}), is left as it is and is never removed"
                    );
                    self.protected
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(a.path);
                }
            }
        }
    }

    fn run(&self) {
        let mut last_start = Instant::now();
        // After a failed write, the next is tried sooner than the interval (doubling).
        let failed = self.flags.lock().unwrap_or_else(|e| e.into_inner()).failed;
        let mut retry: Option<Duration> = failed.then_some(MIN_SPACING);
        loop {
            let mut f = self.flags.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let pending = Pending {
                    dirty: f.dirty,
                    now: f.now,
                    shutdown: f.shutdown,
                    retry,
                };
                f = match schedule::due(last_start, self.opts.interval, &pending) {
                    None => self.wake.wait(f).unwrap_or_else(|e| e.into_inner()),
                    Some(at) => {
                        let left = at.saturating_duration_since(Instant::now());
                        if left.is_zero() {
                            break;
                        }
                        self.wake
                            .wait_timeout(f, left)
                            .unwrap_or_else(|e| e.into_inner())
                            .0
                    }
                };
            }
            let shutdown = f.shutdown;
            f.dirty = false;
            f.now = false;
            drop(f);
            last_start = Instant::now();
            retry = if self.write() {
                None
            } else {
                Some(schedule::next_retry(retry, self.opts.interval))
            };
            if shutdown {
                return;
            }
        }
    }
}

impl Persister {
    /// Loads the file (and journal), then starts writing on schedule; changes made to
    /// `store` from now on are seen.
    pub fn start(opts: Options, store: Arc<Store>) -> std::io::Result<Persister> {
        let loaded = load(&store, &opts);
        store.set_seq(loaded.last);
        let durable = opts.durable;
        let shared = Arc::new(Shared {
            opts,
            store: store.clone(),
            journal: OnceLock::new(),
            lineage: loaded.lineage,
            flags: Mutex::new(Flags {
                now: loaded.write_soon,
                ..Flags::default()
            }),
            wake: Condvar::new(),
            keep_bad: Mutex::new(loaded.bad),
            asides: Mutex::new((loaded.asides, false)),
            protected: journal::Protected::default(),
            written: Default::default(),
        });
        if durable {
            // A journal must follow a file on disk that the next start will replay it
            // over: write one first if there is none (before any change is taken).
            let anchored = loaded.anchored || shared.write();
            if !anchored {
                shared
                    .flags
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .failed = true;
            }
            let asker = Arc::downgrade(&shared);
            let start = journal::Start {
                utf8: shared.opts.utf8_names,
                anchored,
                snapshot_now: Box::new(move || {
                    if let Some(s) = asker.upgrade() {
                        let mut f = s.flags.lock().unwrap_or_else(|e| e.into_inner());
                        f.now = true;
                        s.wake.notify_one();
                    }
                }),
                last_snapshot: loaded.bytes,
                protected: shared.protected.clone(),
            };
            let j = Journal::start(&shared.opts.file, loaded.lineage, store.seq(), start)?;
            let _ = shared.journal.set(j);
        }
        let observer = shared.clone();
        store.observe(Box::new(move |seq, change| {
            if let Some(j) = observer.journal.get() {
                j.push(seq, change);
            }
            let mut f = observer.flags.lock().unwrap_or_else(|e| e.into_inner());
            if !f.dirty {
                f.dirty = true;
                observer.wake.notify_one();
            }
        }));
        let runner = shared.clone();
        let thread = std::thread::Builder::new()
            .name("persist".into())
            .spawn(move || runner.run())?;
        Ok(Persister {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// In durable mode, what waits for a change to reach the disk.
    pub fn settle(&self) -> Option<journal::Settle> {
        let j = self.shared.journal.get()?.clone();
        Some(Box::new(move |after, upto| {
            Box::pin(j.wait_async(after, upto))
        }))
    }

    /// How many writes of the file have reached the disk: what a caller of `write_now`
    /// waits on.
    pub fn writes(&self) -> u64 {
        self.shared
            .written
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Writes the file as soon as possible (SIGHUP).
    pub fn write_now(&self) {
        let mut f = self.shared.flags.lock().unwrap_or_else(|e| e.into_inner());
        f.now = true;
        self.shared.wake.notify_one();
    }

    /// Writes the file one last time and stops.
    pub fn shutdown(&self) {
        {
            let mut f = self.shared.flags.lock().unwrap_or_else(|e| e.into_inner());
            f.shutdown = true;
            self.shared.wake.notify_one();
        }
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
        if let Some(j) = self.shared.journal.get() {
            j.shutdown();
        }
    }
}

/// A fresh directory for a unit test, named after it.
#[cfg(test)]
pub(crate) fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pgw-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create a scratch dir");
    dir
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_written_beside_wins_only_while_it_holds_more() {
        let dir = scratch_dir("choose");
        let (path, next) = (dir.join("p.data"), dir.join("p.data.new"));
        let file = |p: &Path, lineage: u64, seq: u64| {
            fs::write(p, datafile::encode(&[], seq, lineage, false)).unwrap()
        };
        assert_eq!(choose(&path, &next), None);
        file(&next, 7, 5);
        // The file is missing, or does not read whole: the one beside it.
        assert_eq!(choose(&path, &next), Some(true));
        fs::write(&path, b"damaged").unwrap();
        assert_eq!(choose(&path, &next), Some(true));
        // Mended, of the same history: whichever holds more changes.
        file(&path, 7, 4);
        assert_eq!(choose(&path, &next), Some(true));
        file(&path, 7, 5);
        assert_eq!(choose(&path, &next), Some(false));
        // Another history put back by an operator: the file.
        file(&path, 8, 1);
        assert_eq!(choose(&path, &next), Some(false));
        let _ = fs::remove_dir_all(&dir);
    }
}
