//! The journal's files beside the persistence file: their names, opening one to append to, lineage ids.

use super::record::{HEADER, header, holds_nothing};
use crate::persist::datafile;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

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

fn file_name(base: &Path, generation: u64) -> PathBuf {
    let mut name = base.as_os_str().to_owned();
    name.push(format!(".journal.{generation}"));
    PathBuf::from(name)
}

/// The first `n` bytes of a file (fewer if it is shorter).
fn head(path: &Path, n: usize) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(n);
    File::open(path)?.take(n as u64).read_to_end(&mut out)?;
    Ok(out)
}

/// Opens file `generation` for appending: a new file gets its header; an existing one is
/// appended to only if it is that header and nothing more (see below).
pub(super) fn open_file(base: &Path, lineage: u64, generation: u64) -> io::Result<(File, u64)> {
    let path = file_name(base, generation);
    let want = header(lineage, generation);
    // Appended to only if it is this very file (a header and nothing after it) or holds
    // nothing; anything else holds records replay did not use: renamed aside first, so
    // that nothing acknowledged later is written behind them.
    match head(&path, HEADER + 1) {
        Ok(have) if have[..] == want[..] || holds_nothing(&have) => {}
        Ok(_) => {
            let to = datafile::set_aside(&path, ".stale")?;
            log::error!(
                "persistence journal: {} holds records that were not replayed; kept as {}",
                path.display(),
                to.display()
            );
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .append(true)
        .open(&path)?;
    if f.metadata()?.len() < HEADER as u64 {
        // New, or a header cut short by a crash as it was created (it holds nothing).
        let written = f
            .set_len(0)
            .and_then(|()| f.write_all(&want))
            .and_then(|()| f.sync_all());
        if let Err(e) = written {
            drop(f);
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    }
    if let Some(dir) = base.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    let len = f.metadata()?.len();
    Ok((f, len))
}

/// A lineage id for a new history of snapshots and journal files.
pub fn new_lineage() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    h.finish() | 1
}

pub(super) fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}
