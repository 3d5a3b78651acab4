//! Persistence: loads the file (and replays the journal) at start, writes it on upstream's schedule, on SIGHUP and at shutdown, and makes pushes wait for the journal in durable mode.
//!
//! Schedule (the Go gateway's): after a change, a write is due one interval after the
//! start of the previous write (or of the process), at once if that is past; so at most
//! one write per interval, and none without changes. Writes run on their own thread
//! from a consistent cut of the store (pointer copies under the lock, the encoding
//! outside it), so they never hold up pushes or scrapes.

use crate::journal::{self, Journal, Record};
use crate::snapshot;
use crate::store::Store;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
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
}

struct Shared {
    opts: Options,
    store: Arc<Store>,
    journal: Option<Arc<Journal>>,
    flags: Mutex<Flags>,
    wake: Condvar,
    /// The file could not be read at start: keep a copy before the first write replaces it.
    keep_bad: Mutex<bool>,
}

pub struct Persister {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What loading found, for the start-up log.
fn load(store: &Store, opts: &Options) -> (u64, bool) {
    let path = &opts.file;
    for leftover in snapshot::remove_leftovers(path) {
        log::info!(
            "removed {} left behind by an interrupted write",
            leftover.display()
        );
    }
    let (mut restored, mut skipped) = (0usize, 0usize);
    let mut restore =
        |rec: snapshot::GroupRecord| match snapshot::restore(store, &rec, opts.utf8_names) {
            Ok(()) => restored += 1,
            Err(e) => {
                skipped += 1;
                log::warn!("skipped a persisted group: labels={:?} err={e}", rec.labels);
            }
        };
    let (seq, bad) = match fs::read(path) {
        Ok(bytes) => {
            let read = snapshot::decode(&bytes, &mut restore);
            if let Some(p) = &read.problem {
                log::error!(
                    "could not load persisted metrics: file={} err=\"{p}\" (kept what could be read; the file is copied to {} before it is next written)",
                    path.display(),
                    corrupt_copy(path).display()
                );
            }
            (read.seq.unwrap_or(0), read.problem.is_some())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, false),
        Err(e) => {
            log::error!(
                "could not load persisted metrics: file={} err=\"{e}\"",
                path.display()
            );
            (0, true)
        }
    };
    let mut last = seq;
    // Also without the durable mode: journal files left by a run in that mode hold
    // acknowledged changes (they are removed after the next write of the file).
    if opts.durable || !journal::files(path).is_empty() {
        let (l, problems) = journal::replay(path, seq, |_, rec| match rec {
            Record::Upsert(g) => restore(g),
            Record::Remove(labels) => {
                match crate::grouping::GroupingKey::from_labels(labels, opts.utf8_names) {
                    Ok(key) => {
                        let _ = store.delete(&key);
                    }
                    Err(e) => log::warn!("skipped a journal removal: {e}"),
                }
            }
        });
        last = l;
        for p in problems {
            log::warn!("persistence journal: {p}");
        }
    }
    if restored + skipped > 0 || last > seq {
        log::info!(
            "restored persisted metrics: file={} groups={} skipped={skipped} journal_changes={}",
            path.display(),
            store.groups().len(),
            last - seq
        );
    }
    (last, bad)
}

fn corrupt_copy(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".corrupt");
    PathBuf::from(name)
}

impl Shared {
    fn write(&self) {
        let started = Instant::now();
        let (seq, groups) = self.store.cut(|seq| {
            if let Some(j) = &self.journal {
                j.rotate(seq);
            }
        });
        let bytes = snapshot::encode(&groups, seq, self.opts.utf8_names);
        drop(groups);
        let path = &self.opts.file;
        let mut keep_bad = self.keep_bad.lock().unwrap_or_else(|e| e.into_inner());
        if *keep_bad {
            // The unreadable file may still hold something of value: keep it aside.
            let copy = corrupt_copy(path);
            let _ = fs::remove_file(&copy);
            if fs::hard_link(path, &copy).is_ok()
                || fs::copy(path, &copy).is_ok()
                || !path.is_file()
            {
                *keep_bad = false;
            } else {
                log::warn!(
                    "could not keep a copy of the unreadable file: file={}",
                    copy.display()
                );
            }
        }
        match snapshot::write_atomically(path, &bytes) {
            Ok(()) => {
                log::info!(
                    "metrics persisted: file={} groups={} bytes={} took={:?}",
                    path.display(),
                    self.store.groups().len(),
                    bytes.len(),
                    started.elapsed()
                );
                match &self.journal {
                    Some(j) => j.compact(seq),
                    // Left by a run in the durable mode, replayed at start, now redundant.
                    None => {
                        for (_, f) in journal::files(path) {
                            let _ = fs::remove_file(f);
                        }
                    }
                }
            }
            Err(e) => log::error!(
                "error persisting metrics: file={} err=\"{e}\"",
                path.display()
            ),
        }
    }

    fn run(&self) {
        let mut last_start = Instant::now();
        loop {
            let mut f = self.flags.lock().unwrap_or_else(|e| e.into_inner());
            while !f.dirty && !f.now && !f.shutdown {
                f = self.wake.wait(f).unwrap_or_else(|e| e.into_inner());
            }
            // A change: wait out the rest of the interval, unless told to write now.
            let due = last_start + self.opts.interval;
            while !f.now && !f.shutdown {
                let left = due.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                f = self
                    .wake
                    .wait_timeout(f, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            let shutdown = f.shutdown;
            f.dirty = false;
            f.now = false;
            drop(f);
            last_start = Instant::now();
            self.write();
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
        let (last, bad) = load(&store, &opts);
        store.set_seq(last);
        let journal = if opts.durable {
            Some(Journal::start(&opts.file, store.seq(), opts.utf8_names)?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            opts,
            store: store.clone(),
            journal,
            flags: Mutex::new(Flags::default()),
            wake: Condvar::new(),
            keep_bad: Mutex::new(bad),
        });
        let observer = shared.clone();
        store.observe(Box::new(move |seq, change| {
            if let Some(j) = &observer.journal {
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
    pub fn settle(&self) -> Option<crate::service::Settle> {
        let j = self.shared.journal.clone()?;
        Some(Box::new(move |after, upto| j.wait(after, upto)))
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
        if let Some(j) = &self.shared.journal {
            j.shutdown();
        }
    }
}
