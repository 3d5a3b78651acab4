//! Durable mode's recovery against the real binaries: what is served after a restart over
//! a damaged or torn journal, journal files of another history (the Go gateway's file
//! swapped in), a journal whose file is gone, and a full disk; and which files are kept.

use crate::common;
use crate::common::{Gateway, GoGateway, TempDir};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn durable(file: &Path) -> Gateway {
    Gateway::start(&[
        &format!("--persistence.file={}", file.display()),
        "--persistence.sync=always",
    ])
}

/// The pushed series of a scrape (`name{labels} value` lines of the named metrics).
fn series(gw: &Gateway, names: &[&str]) -> Vec<String> {
    gw.get("/metrics")
        .text()
        .lines()
        .filter(|l| names.iter().any(|n| l.starts_with(&format!("{n}{{"))))
        .map(str::to_string)
        .collect()
}

/// Where each record of a journal file starts (after the 28-byte header).
fn record_offsets(journal: &[u8]) -> Vec<usize> {
    let mut at = 28;
    let mut out = Vec::new();
    while at + 12 <= journal.len() {
        out.push(at);
        let len = u32::from_le_bytes(journal[at..at + 4].try_into().unwrap()) as usize;
        at += 12 + len;
    }
    out
}

fn journal_0(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.journal.0", file.display()))
}

/// SIGHUP, then a readiness check: the log says the file was written.
fn hup_and_wait_for_the_file(gw: &Gateway) {
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gw.log().contains("metrics persisted") {
        assert!(Instant::now() < deadline, "SIGHUP did not write the file");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn error_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains("level=error")).collect()
}

/// PUTs a group per job in durable mode, kills the daemon, and damages the second
/// record of its journal: the journal's path, its bytes now, and where records start.
/// PUTs `v 1` for each job in durable mode and kills the daemon: its journal's path, its
/// bytes, and where each record starts.
fn journal_of_puts(file: &Path, jobs: &[&str]) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let gw = durable(file);
    for job in jobs {
        assert_eq!(gw.put(&format!("/metrics/job/{job}"), "v 1\n").status, 200);
    }
    gw.stop("KILL");
    let journal = journal_0(file);
    let bytes = fs::read(&journal).expect("the journal");
    let at = record_offsets(&bytes);
    assert_eq!(at.len(), jobs.len(), "one record per PUT");
    (journal, bytes, at)
}

fn damaged_journal(file: &Path, jobs: &[&str]) -> (PathBuf, Vec<u8>, Vec<usize>) {
    let (journal, mut bytes, at) = journal_of_puts(file, jobs);
    bytes[at[1] + 20] ^= 0x40;
    fs::write(&journal, &bytes).expect("damage it");
    (journal, bytes, at)
}

#[test]
fn a_damaged_record_stops_replay_there_and_its_file_is_kept() {
    let dir = TempDir::new("damaged-record");
    let file = dir.path("p.data");
    let (journal, bytes, at) = damaged_journal(&file, &["a", "b", "c"]);

    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    let log = gw.log();
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "{log}");
    let kept = format!("{}.damaged", journal.display());
    assert!(
        errors[0].contains(&format!(
            "{} has a record's checksum does not match at byte {}",
            journal.display(),
            at[1]
        )) && errors[0].contains(&format!("kept as {kept}")),
        "{}",
        errors[0]
    );
    assert_eq!(fs::read(&kept).expect("kept aside"), bytes);
    // What comes next is journaled after what was replayed; the kept file stays as it is.
    assert_eq!(gw.put("/metrics/job/d", "v 1\n").status, 200);
    gw.stop("KILL");
    let gw = durable(&file);
    assert_eq!(
        series(&gw, &["v"]),
        [
            "v{instance=\"\",job=\"a\"} 1",
            "v{instance=\"\",job=\"d\"} 1"
        ]
    );
    assert!(error_lines(&gw.log()).is_empty(), "{}", gw.log());
    assert_eq!(fs::read(&kept).expect("still kept"), bytes);
}

#[test]
fn a_torn_tail_is_the_only_thing_cut_silently() {
    let dir = TempDir::new("torn-tail");
    let file = dir.path("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/a", "w 2\n").status, 200);
    gw.stop("KILL");
    let journal = journal_0(&file);
    let bytes = fs::read(&journal).expect("the journal");
    let at = record_offsets(&bytes);
    assert_eq!(at.len(), 2);
    // The second record half written, as a crash mid-write leaves it.
    let torn = at[1] + (bytes.len() - at[1]) / 2;
    fs::write(&journal, &bytes[..torn]).expect("tear it");

    let gw = durable(&file);
    assert_eq!(series(&gw, &["v", "w"]), ["v{instance=\"\",job=\"a\"} 1"]);
    let log = gw.log();
    assert!(error_lines(&log).is_empty(), "{log}");
    assert!(log.contains("cut off"), "{log}");
    assert_eq!(
        fs::metadata(&journal).expect("journal").len() as usize,
        at[1]
    );
    assert!(!dir.names().iter().any(|n| n.ends_with(".damaged")));
}

#[test]
fn a_post_into_a_big_group_journals_the_post_alone() {
    let dir = TempDir::new("post-record");
    let file = dir.path("p.data");
    let gw = durable(&file);
    let big: String = (0..2000)
        .map(|i| format!("big{{i=\"{i}\"}} {i}\n"))
        .collect();
    assert_eq!(gw.put("/metrics/job/a", &big).status, 200);
    let journal = journal_0(&file);
    let before = fs::metadata(&journal).expect("journal").len();
    assert_eq!(gw.post("/metrics/job/a", "w 2\n").status, 200);
    let grown = fs::metadata(&journal).expect("journal").len() - before;
    // The POST's family and the group's two timestamp gauges, not 2,000 series.
    assert!(grown < 1024, "a one-sample POST journaled {grown} bytes");
    assert_eq!(gw.delete("/metrics/job/a").status, 202);
    assert_eq!(gw.put("/metrics/job/b", "v 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/b", "w 3\n").status, 200);
    let (_, log) = gw.stop("KILL");
    // A start on nothing restores nothing and does not say it did.
    assert!(!log.contains("restored persisted"), "{log}");
    let gw = durable(&file);
    assert_eq!(
        series(&gw, &["big", "v", "w"]),
        [
            "v{instance=\"\",job=\"b\"} 1",
            "w{instance=\"\",job=\"b\"} 3"
        ]
    );
    // No file was written yet (the interval is 5 minutes): the five changes come from
    // the journal alone, and the log counts them.
    let log = gw.log();
    let counted = format!(
        "restored persisted metrics: file={} groups=1 skipped=0 journal_changes=5",
        file.display()
    );
    assert!(log.contains(&counted), "{log}");
    // A journal that ends where its last record does has nothing cut off.
    assert!(!log.contains("cut off"), "{log}");
    // A request that changes nothing is answered at once: what was replayed counts as on
    // disk already.
    assert_eq!(gw.delete("/metrics/job/none").status, 202);
    // What was replayed is written soon (about a second), not after the 5-minute
    // interval, so that the next start replays less.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "the replayed changes were not written"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_go_gateways_newer_file_wins_over_a_stale_journal() {
    if !common::needs(
        "the_go_gateways_newer_file_wins_over_a_stale_journal",
        &["prometheus-pushgateway"],
    ) {
        return;
    }
    let dir = TempDir::new("swap");
    let file = dir.path("p.data");
    // Ours: a change in the journal only (killed before any snapshot).
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    gw.stop("KILL");
    assert!(!file.exists());
    // The Go gateway takes over, changes the same group and writes its file.
    let go = GoGateway::start(&file);
    assert_eq!(go.put("/metrics/job/a", "v 2\n").status, 200);
    assert_eq!(go.put("/metrics/job/b", "v 3\n").status, 200);
    assert!(go.terminate().success());
    assert!(file.exists());
    // Ours again: the Go gateway's state, the journal set aside with one line.
    let gw = durable(&file);
    assert_eq!(
        series(&gw, &["v"]),
        [
            "v{instance=\"\",job=\"a\"} 2",
            "v{instance=\"\",job=\"b\"} 3"
        ]
    );
    let log = gw.log();
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "{log}");
    let stale = format!("{}.stale", journal_0(&file).display());
    assert!(
        errors[0].contains(&format!("kept as {stale}")),
        "{}",
        errors[0]
    );
    assert!(Path::new(&stale).is_file());
    // And it stays aside: a later crash and restart does not bring it back.
    assert_eq!(gw.put("/metrics/job/c", "v 4\n").status, 200);
    gw.stop("KILL");
    let gw = durable(&file);
    assert_eq!(
        series(&gw, &["v"]),
        [
            "v{instance=\"\",job=\"a\"} 2",
            "v{instance=\"\",job=\"b\"} 3",
            "v{instance=\"\",job=\"c\"} 4"
        ]
    );
    assert!(error_lines(&gw.log()).is_empty(), "{}", gw.log());
}

#[test]
fn a_journal_whose_file_is_gone_is_set_aside() {
    let dir = TempDir::new("file-gone");
    let file = dir.path("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    hup_and_wait_for_the_file(&gw);
    assert_eq!(gw.put("/metrics/job/b", "v 2\n").status, 200);
    gw.stop("KILL");
    fs::remove_file(&file).expect("remove the file");
    let gw = durable(&file);
    assert!(series(&gw, &["v"]).is_empty());
    let log = gw.log();
    let errors = error_lines(&log);
    assert_eq!(errors.len(), 1, "{log}");
    assert!(
        errors[0].contains("follows change 1 of a persistence file that is not there"),
        "{}",
        errors[0]
    );
    assert!(dir.names().iter().any(|n| n == "p.data.journal.1.stale"));
}

/// A small tmpfs mounted for one test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        fs::create_dir_all(dir).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(ok.success(), "mount a tmpfs (the tests run as root)");
        Tmpfs(dir.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `path` until it has no space left.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = fs::File::create(path).expect("create the filler");
    let chunk = vec![0x55u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.sync_all();
}

#[test]
fn a_full_disk_refuses_changes_with_500_and_recovers_without_a_restart() {
    if !common::needs(
        "a_full_disk_refuses_changes_with_500_and_recovers_without_a_restart",
        &["root", "mount"],
    ) {
        return;
    }
    let dir = TempDir::new("disk-full");
    let mnt = dir.path("mnt");
    let _fs = Tmpfs::mount(&mnt, "2m");
    let file = mnt.join("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/before", "v 1\n").status, 200);
    let filler = mnt.join("filler");
    fill(&filler);
    // Bigger than what is left in the journal's last page.
    let body: String = (0..300)
        .map(|i| format!("full{{i=\"{i}\"}} {i}\n"))
        .collect();
    let r = gw.put("/metrics/job/full", &body);
    assert_eq!(r.status, 500, "{}", r.text());
    assert!(r.text().contains("No space left on device"), "{}", r.text());
    // Later changes are refused too while the journal has a hole...
    let r = gw.put("/metrics/job/during", "v 2\n");
    assert_eq!(r.status, 500, "{}", r.text());
    // ... scrapes are served...
    let scrape = gw.get("/metrics");
    assert_eq!(scrape.status, 200);
    assert!(scrape.text().contains("v{instance=\"\",job=\"before\"} 1"));
    // ... and once there is space again, a snapshot holds them all and changes are taken.
    fs::remove_file(&filler).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = gw.put("/metrics/job/after", "v 3\n");
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 500, "{}", r.text());
        assert!(Instant::now() < deadline, "never recovered: {}", gw.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        gw.log()
            .contains("the persistence journal is written again"),
        "{}",
        gw.log()
    );
    assert_eq!(gw.post("/metrics/job/after", "w 4\n").status, 200);
    gw.stop("KILL");
    let gw = durable(&file);
    let served = series(&gw, &["v", "w"]);
    for acknowledged in [
        "v{instance=\"\",job=\"before\"} 1",
        "v{instance=\"\",job=\"after\"} 3",
        "w{instance=\"\",job=\"after\"} 4",
    ] {
        assert!(
            served.iter().any(|s| s == acknowledged),
            "{acknowledged} lost: {served:?}"
        );
    }
}

#[test]
fn changes_held_for_a_snapshot_that_fails_are_refused_not_left_waiting() {
    if !common::needs(
        "changes_held_for_a_snapshot_that_fails_are_refused_not_left_waiting",
        &["root", "mount"],
    ) {
        return;
    }
    let dir = TempDir::new("heal-fails");
    let mnt = dir.path("mnt");
    let _fs = Tmpfs::mount(&mnt, "2m");
    let file = mnt.join("p.data");
    let gw = durable(&file);
    // A store bigger than the space that will be left: a snapshot of it cannot be written,
    // while a new journal file and small records still fit.
    let big: String = (0..2000)
        .map(|i| format!("big{{i=\"{i}\"}} {i}\n"))
        .collect();
    assert_eq!(gw.put("/metrics/job/big", &big).status, 200);
    let reserve = mnt.join("reserve");
    fs::write(&reserve, vec![0u8; 16 * 1024]).expect("reserve");
    fill(&mnt.join("filler"));
    fs::remove_file(&reserve).expect("free 16 KiB");
    // A change too big for what is left breaks the journal; a snapshot to heal it is tried
    // (its cut starts a new journal file, which fits) and fails.
    assert_eq!(gw.put("/metrics/job/big2", &big).status, 500);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gw.log().contains("error persisting metrics") {
        assert!(
            Instant::now() < deadline,
            "no snapshot was tried: {}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Small changes now are refused with 500 within a few seconds (at the latest when the
    // next try fails), never left waiting for a snapshot that will not come.
    for i in 0..3 {
        let r = gw.put(&format!("/metrics/job/small{i}"), "v 1\n");
        assert_eq!(r.status, 500, "{}", r.text());
    }
}

#[test]
fn a_damaged_journal_moves_aside_only_once_a_file_holds_what_was_replayed() {
    if !common::needs(
        "a_damaged_journal_moves_aside_only_once_a_file_holds_what_was_replayed",
        &["root", "mount"],
    ) {
        return;
    }
    let dir = TempDir::new("damaged-full");
    let mnt = dir.path("mnt");
    let _fs = Tmpfs::mount(&mnt, "2m");
    let file = mnt.join("p.data");
    let (journal, bytes, _) = damaged_journal(&file, &["a", "b"]);
    // No space for the file that would hold `a`: the damaged journal stays where it is,
    // the daemon serves what it replayed and refuses changes.
    let filler = mnt.join("filler");
    fill(&filler);
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    assert_eq!(gw.put("/metrics/job/c", "v 1\n").status, 500);
    assert!(
        gw.log()
            .contains("it stays in place until the persistence file can be written"),
        "{}",
        gw.log()
    );
    gw.stop("KILL");
    assert_eq!(fs::read(&journal).expect("still in place"), bytes);
    // With space, the next start writes the file, then moves the journal aside.
    fs::remove_file(&filler).expect("free the space");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    let kept = format!("{}.damaged", journal.display());
    assert!(
        gw.log().contains(&format!("kept as {kept}")),
        "{}",
        gw.log()
    );
    assert_eq!(fs::read(&kept).expect("kept aside"), bytes);
    gw.stop("KILL");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    assert!(error_lines(&gw.log()).is_empty(), "{}", gw.log());
}

#[test]
fn a_journal_that_cannot_be_renamed_aside_is_never_removed() {
    let dir = TempDir::new("no-rename");
    let file = dir.path("p.data");
    let (journal, bytes, _) = damaged_journal(&file, &["a", "b"]);
    // Every name it could be renamed to is taken.
    fs::create_dir(format!("{}.damaged", journal.display())).expect("mkdir");
    for n in 1..10 {
        fs::create_dir(format!("{}.damaged.{n}", journal.display())).expect("mkdir");
    }
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    assert!(
        gw.log().contains("is left as it is and is never removed"),
        "{}",
        gw.log()
    );
    // Snapshots come and go; the file stays.
    assert_eq!(gw.put("/metrics/job/c", "v 1\n").status, 200);
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while gw.log().matches("metrics persisted").count() < 2 {
        assert!(Instant::now() < deadline, "SIGHUP did not write the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    gw.stop("TERM");
    assert_eq!(fs::read(&journal).expect("never removed"), bytes);
}

#[test]
fn a_pushed_failure_family_replays_as_pushed() {
    let dir = TempDir::new("failure-family");
    let file = dir.path("p.data");
    let gw = durable(&file);
    let body = "push_failure_time_seconds{x=\"1\"} 5\npush_failure_time_seconds{x=\"2\"} 6\n";
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/a", body).status, 200);
    let before = series(&gw, &["push_failure_time_seconds"]);
    assert_eq!(before.len(), 2, "{before:?}");
    gw.stop("KILL");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["push_failure_time_seconds"]), before);
}

#[test]
fn a_journal_file_is_never_appended_behind_records_it_did_not_replay() {
    if !common::needs(
        "a_journal_file_is_never_appended_behind_records_it_did_not_replay",
        &["root", "mount"],
    ) {
        return;
    }
    let dir = TempDir::new("append-behind");
    let mnt = dir.path("mnt");
    let _fs = Tmpfs::mount(&mnt, "2m");
    let file = mnt.join("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    gw.stop("KILL");
    // The first record damaged: replay ends at change 0, where the journal starts again.
    let journal = journal_0(&file);
    let mut bytes = fs::read(&journal).expect("the journal");
    bytes[28 + 20] ^= 0x40;
    fs::write(&journal, &bytes).expect("damage it");
    let filler = mnt.join("filler");
    fill(&filler);
    let gw = durable(&file);
    assert_eq!(gw.get("/metrics").status, 200);
    // No change meanwhile: the file that heals the journal is cut at change 0 too.
    fs::remove_file(&filler).expect("free the space");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !gw
        .log()
        .contains("the persistence journal is written again")
    {
        assert!(Instant::now() < deadline, "never recovered: {}", gw.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(gw.put("/metrics/job/c", "v 3\n").status, 200);
    gw.stop("KILL");
    let gw = durable(&file);
    assert!(
        series(&gw, &["v"]).contains(&"v{instance=\"\",job=\"c\"} 3".to_string()),
        "{}",
        gw.log()
    );
    // The damaged file's bytes are all still somewhere beside the file.
    let kept = common::names(&mnt)
        .into_iter()
        .filter(|n| n.starts_with("p.data.journal.0."))
        .map(|n| fs::read(mnt.join(n)).expect("read"))
        .any(|b| b == bytes);
    assert!(kept, "{:?}", common::names(&mnt));
}

#[test]
fn a_file_whose_trailer_is_damaged_gets_no_journal_replayed_and_the_journal_is_kept() {
    let dir = TempDir::new("trailer");
    let file = dir.path("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    hup_and_wait_for_the_file(&gw);
    assert_eq!(gw.put("/metrics/job/c", "v 3\n").status, 200);
    gw.stop("KILL");
    let journal = PathBuf::from(format!("{}.journal.1", file.display()));
    let journal_bytes = fs::read(&journal).expect("the journal");
    // The trailer's change number raised: it could claim to hold the journal's changes.
    let mut data = fs::read(&file).expect("the file");
    let at = data.len() - 36 + 16 + 5;
    data[at] ^= 1;
    fs::write(&file, &data).expect("damage it");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    let log = gw.log();
    assert!(log.contains("checksum mismatch"), "{log}");
    let stale = format!("{}.stale", journal.display());
    assert!(log.contains(&format!("kept as {stale}")), "{log}");
    assert_eq!(fs::read(&stale).expect("kept"), journal_bytes);
}

#[test]
fn concurrent_durable_changes_are_each_answered_once_on_disk() {
    let dir = TempDir::new("concurrent");
    let file = dir.path("p.data");
    let gw = durable(&file);
    // Eight clients at once: their waits for the journal overlap, and each must be woken
    // for its own changes (a lost wake-up is a request that never gets its answer; the
    // client gives up after 30 s).
    std::thread::scope(|s| {
        for t in 0..8 {
            let gw = &gw;
            s.spawn(move || {
                for i in 0..25 {
                    let r = gw.put(&format!("/metrics/job/t{t}/i/{i}"), "m 1\n");
                    assert_eq!(r.status, 200, "{}", r.text());
                }
            });
        }
    });
    gw.stop("KILL");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["m"]).len(), 200);
}

#[test]
fn a_clean_stop_leaves_the_file_and_an_empty_journal() {
    let dir = TempDir::new("clean-stop");
    let file = dir.path("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    assert_eq!(gw.terminate().code(), Some(0));
    // The last snapshot holds every change: the journal that had them is gone, the next
    // one holds only its header.
    assert_eq!(dir.names(), ["p.data", "p.data.journal.1"]);
    let journal = fs::read(dir.path("p.data.journal.1")).expect("the journal");
    assert_eq!(journal.len(), 28);
}

#[test]
fn a_put_that_drops_families_replays_as_pushed_with_its_push_times() {
    let dir = TempDir::new("put-drops");
    let file = dir.path("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "x 1\ny 2\n").status, 200);
    // A PUT without `y`: the journal records the whole group, not a patch of `x`.
    assert_eq!(gw.put("/metrics/job/a", "x 3\n").status, 200);
    // The API shows each family's push time to the nanosecond.
    let before = gw.get("/api/v1/metrics").text();
    gw.stop("KILL");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["x", "y"]), ["x{instance=\"\",job=\"a\"} 3"]);
    assert_eq!(gw.get("/api/v1/metrics").text(), before);
}

#[test]
fn a_damaged_record_length_is_reported_not_cut_as_a_torn_tail() {
    let dir = TempDir::new("damaged-length");
    let file = dir.path("p.data");
    let (journal, mut bytes, at) = journal_of_puts(&file, &["a", "b", "c"]);
    // The second record's length, far past the end: only its header's checksum tells this
    // from a write cut short, and what follows it was acknowledged.
    bytes[at[1] + 3] ^= 0x40;
    fs::write(&journal, &bytes).expect("damage it");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    let log = gw.log();
    assert!(
        log.contains("a record header's checksum does not match"),
        "{log}"
    );
    let kept = format!("{}.damaged", journal.display());
    assert_eq!(fs::read(&kept).expect("kept aside"), bytes);
}

#[test]
fn a_journal_header_cut_short_is_reused_silently() {
    // The first bytes of a journal header, as a crash while the file was created leaves
    // them: that file holds nothing, and the journal starts in it with no complaint.
    let dir = TempDir::new("short-header");
    let file = dir.path("p.data");
    let gw = durable(&file);
    gw.stop("KILL");
    let header = fs::read(journal_0(&file)).expect("a new journal's header");
    assert_eq!(header.len(), 28);
    fs::write(journal_0(&file), &header[..10]).expect("cut it short");
    let gw = durable(&file);
    assert!(error_lines(&gw.log()).is_empty(), "{}", gw.log());
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    gw.stop("KILL");
    assert_eq!(dir.names(), ["p.data.journal.0"]);
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
}

#[test]
fn a_damaged_journal_header_or_a_missing_record_stops_replay_there() {
    let dir = TempDir::new("header-and-gap");
    let file = dir.path("p.data");
    let (journal, bytes, at) = journal_of_puts(&file, &["a", "b", "c"]);
    // The second record taken out: the third follows a change that is not there.
    let gap = [&bytes[..at[1]], &bytes[at[2]..]].concat();
    fs::write(&journal, &gap).expect("cut a record out");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), ["v{instance=\"\",job=\"a\"} 1"]);
    let log = gw.log();
    assert!(log.contains("jumps from change 1 to 3"), "{log}");
    gw.stop("KILL");
    // A header whose lineage is damaged: the file is kept aside whole, not replayed.
    let dir = TempDir::new("damaged-header");
    let file = dir.path("p.data");
    let (journal, mut bytes, _) = journal_of_puts(&file, &["a"]);
    bytes[10] ^= 0x01;
    fs::write(&journal, &bytes).expect("damage the header");
    let gw = durable(&file);
    assert_eq!(series(&gw, &["v"]), Vec::<String>::new());
    let log = gw.log();
    assert!(log.contains("has a damaged header"), "{log}");
    let kept = format!("{}.damaged", journal.display());
    assert_eq!(fs::read(&kept).expect("kept aside"), bytes);
}

#[test]
fn journal_records_a_snapshot_already_holds_are_skipped() {
    // A kill between a snapshot and the removal of the journal it made redundant leaves
    // that journal beside the file: its records are in the snapshot, nothing is wrong.
    let dir = TempDir::new("already-held");
    let file = dir.path("p.data");
    let gw = durable(&file);
    assert_eq!(gw.put("/metrics/job/a", "v 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/b", "v 2\n").status, 200);
    let old = fs::read(journal_0(&file)).expect("the journal");
    hup_and_wait_for_the_file(&gw);
    gw.stop("KILL");
    fs::write(journal_0(&file), &old).expect("put the old journal back");
    let gw = durable(&file);
    assert_eq!(
        series(&gw, &["v"]),
        [
            "v{instance=\"\",job=\"a\"} 1",
            "v{instance=\"\",job=\"b\"} 2"
        ]
    );
    assert!(error_lines(&gw.log()).is_empty(), "{}", gw.log());
    assert!(
        !dir.names().iter().any(|n| n.contains(".damaged")),
        "{:?}",
        dir.names()
    );
}
