//! Replay at start: which journal files follow the file loaded, their records in order, and what is set aside.

use super::files::{file_id, files};
use super::record::holds_nothing;
use super::record::{Cursor, HEADER, MAGIC, Next, Record, header_of, next_record};
use crate::persist::datafile;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

/// What the journal is replayed over.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Over {
    /// No persistence file: journal files that start at change 0 apply.
    Nothing,
    /// Our file, of this lineage, holding the changes up to this one.
    Snapshot { lineage: u64, seq: u64 },
    /// A file without our trailer (the Go gateway's) or one that could not be read: no
    /// journal file follows it.
    Other,
}

/// What replay did.
#[derive(Debug, Default)]
pub struct Replayed {
    /// The lineage the files replayed belong to (None: none was).
    pub lineage: Option<u64>,
    /// The last change applied (or the snapshot's).
    pub last: u64,
    /// Records applied.
    pub applied: u64,
    /// Torn tails cut off (an unfinished, never acknowledged write): for an info line.
    pub cut: Vec<String>,
    /// Files to rename aside, each with why. Not done by replay: a damaged file still
    /// holds the records replayed from it, so it moves only once a snapshot holds them.
    pub set_aside: Vec<Aside>,
}

/// A journal file replay could not use, to be renamed `<name><suffix>`.
#[derive(Debug)]
pub struct Aside {
    pub path: PathBuf,
    pub suffix: &'static str,
    pub why: String,
    /// The file as replay saw it (device, inode): a file of that name made since is not it.
    id: Option<(u64, u64)>,
}

impl Aside {
    /// Renames the file aside: where it is kept, or `Ok(None)` if it is no longer there
    /// (renamed aside already).
    pub fn apply(&self) -> std::io::Result<Option<PathBuf>> {
        if self.id.is_none() || file_id(&self.path) != self.id {
            return Ok(None);
        }
        datafile::set_aside(&self.path, self.suffix).map(Some)
    }
}

fn aside(path: &Path, suffix: &'static str, why: &str, out: &mut Vec<Aside>) {
    out.push(Aside {
        path: path.to_path_buf(),
        suffix,
        why: why.to_string(),
        id: file_id(path),
    });
}

/// Replays, oldest first, the records of the journal files that follow `over`, handing
/// each to `each`; sets aside the files it cannot use (see the module's comment).
pub fn replay(base: &Path, over: Over, mut each: impl FnMut(u64, Record)) -> Replayed {
    let mut out = Replayed::default();
    let (mut lineage, mut last) = match over {
        Over::Snapshot { lineage, seq } => (Some(lineage), seq),
        Over::Nothing | Over::Other => (None, 0),
    };
    out.last = last;
    // A file after a damaged one is applied only if it follows on from what was replayed
    // (the check of its start below); else it is set aside too.
    for (n, path) in files(base) {
        if over == Over::Other {
            aside(
                &path,
                ".stale",
                "does not follow a persistence file that reads whole (it is another program's, damaged or unreadable), so it is not replayed",
                &mut out.set_aside,
            );
            continue;
        }
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) => {
                let why = format!("could not be read ({e})");
                aside(&path, ".damaged", &why, &mut out.set_aside);
                continue;
            }
        };
        if holds_nothing(&data) {
            continue;
        }
        let legacy = !data.starts_with(MAGIC);
        let (file_lineage, file_base, start) = if legacy {
            (0, n, 0)
        } else if data.len() >= HEADER && data[..HEADER] == header_of(&data) {
            let u = |i: usize| u64::from_le_bytes(data[i..i + 8].try_into().unwrap_or([0; 8]));
            (u(8), u(16), HEADER)
        } else {
            aside(
                &path,
                ".damaged",
                "has a damaged header",
                &mut out.set_aside,
            );
            continue;
        };
        match lineage {
            Some(l) if l != file_lineage => {
                aside(
                    &path,
                    ".stale",
                    &format!(
                        "belongs to another persistence file (lineage {file_lineage:016x}, the file's is {l:016x}), so it is not replayed"
                    ),
                    &mut out.set_aside,
                );
                continue;
            }
            None if file_base != 0 => {
                aside(
                    &path,
                    ".stale",
                    &format!(
                        "follows change {file_base} of a persistence file that is not there, so it is not replayed"
                    ),
                    &mut out.set_aside,
                );
                continue;
            }
            _ => lineage = Some(file_lineage),
        }
        if file_base > last {
            let why = format!(
                "starts after change {file_base}, but the changes replayed end at {last}, so it is not replayed"
            );
            aside(&path, ".stale", &why, &mut out.set_aside);
            continue;
        }
        let mut c = Cursor {
            b: &data,
            pos: start,
        };
        while c.pos < data.len() {
            let at = c.pos;
            match next_record(&mut c, legacy) {
                Next::Record(seq, _) if seq <= last => {}
                Next::Record(seq, rec) if seq == last + 1 => {
                    last = seq;
                    out.applied += 1;
                    each(seq, rec);
                }
                Next::Record(seq, _) => {
                    let why = format!(
                        "jumps from change {last} to {seq} at byte {at}; replay stopped there"
                    );
                    aside(&path, ".damaged", &why, &mut out.set_aside);
                    break;
                }
                Next::Torn => {
                    out.cut.push(format!(
                        "{}: an unfinished write of {} bytes at byte {at} cut off",
                        path.display(),
                        data.len() - at
                    ));
                    // So that records appended to this file later are not stuck behind it.
                    if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                        let _ = f.set_len(at as u64).and_then(|()| f.sync_all());
                    }
                    break;
                }
                Next::Damaged(what) => {
                    let why = format!(
                        "has {what} at byte {at} (after change {last}); replay stopped there, {} bytes not replayed",
                        data.len() - at
                    );
                    aside(&path, ".damaged", &why, &mut out.set_aside);
                    break;
                }
            }
        }
    }
    out.lineage = lineage;
    out.last = last;
    out
}
