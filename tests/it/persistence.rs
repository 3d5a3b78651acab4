//! Persistence against the real binaries: a file the Go gateway 1.5.1 wrote loads with
//! everything; the file we write loads in the Go gateway; restarts keep everything;
//! damaged files give the documented results; the write schedule, SIGHUP and `/-/quit`.

use crate::common;
use crate::common::{Gateway, GoGateway, TempDir};
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GO_DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/go-1.5.1.data");
const GO_METRICS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/go-1.5.1.metrics"
);
const GO_API: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/go-1.5.1.api.json"
);

fn file_arg(p: &Path) -> String {
    format!("--persistence.file={}", p.display())
}

/// The pushed families of a scrape, byte for byte: the gateway's own families dropped.
fn pushed(text: &str) -> String {
    let own = |l: &str| {
        let name = l
            .strip_prefix("# HELP ")
            .or_else(|| l.strip_prefix("# TYPE "))
            .unwrap_or(l);
        ["go_", "process_", "pushgateway_"]
            .iter()
            .any(|p| name.starts_with(p))
    };
    text.lines()
        .filter(|l| !own(l))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `/api/v1/metrics` with its groups in a fixed order (the Go gateway's order is random).
fn normalized_api(json: &str) -> String {
    let mut child = Command::new(common::bin("python3"))
        .args([
            "-c",
            "import json,sys; d=json.load(sys.stdin); \
             d['data'].sort(key=lambda g: json.dumps(g['labels'], sort_keys=True)); \
             print(json.dumps(d, sort_keys=True, indent=1))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (make test installs it)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(json.as_bytes())
        .expect("write json");
    let out = child.wait_with_output().expect("python3 output");
    assert!(out.status.success(), "not JSON: {json}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn a_go_gateway_file_loads_whole_and_round_trips_back_to_go() {
    if !common::needs(
        "a_go_gateway_file_loads_whole_and_round_trips_back_to_go",
        &["python3", "prometheus-pushgateway"],
    ) {
        return;
    }
    let dir = TempDir::new("go-file");
    let file = dir.path("pushgateway.data");
    fs::copy(GO_DATA, &file).expect("copy the fixture");
    let go_metrics = fs::read_to_string(GO_METRICS).expect("fixture");
    let go_api = fs::read_to_string(GO_API).expect("fixture");

    // Every group, family, HELP, TYPE, label, value and push time, as Go served them.
    let gw = Gateway::start(&[&file_arg(&file)]);
    assert_eq!(pushed(&gw.get("/metrics").text()), pushed(&go_metrics));
    assert_eq!(
        normalized_api(&gw.get("/api/v1/metrics").text()),
        normalized_api(&go_api)
    );
    let (status, log) = gw.stop("TERM");
    assert_eq!(status.code(), Some(0));
    assert!(!log.contains("level=error"), "{log}");
    assert!(log.contains("metrics persisted"), "{log}");

    // The file we wrote at shutdown: the Go gateway serves the same from it.
    let go = GoGateway::start(&file);
    assert_eq!(pushed(&go.get("/metrics")), pushed(&go_metrics));
    assert_eq!(
        normalized_api(&go.get("/api/v1/metrics")),
        normalized_api(&go_api)
    );
}

#[test]
fn the_go_gateway_finds_our_groups_by_its_own_keys() {
    if !common::needs(
        "the_go_gateway_finds_our_groups_by_its_own_keys",
        &["prometheus-pushgateway"],
    ) {
        return;
    }
    let dir = TempDir::new("go-keys");
    let file = dir.path("p.data");
    let gw = Gateway::start(&[&file_arg(&file)]);
    assert_eq!(gw.put("/metrics/job/k/instance/i", "kv 1\n").status, 200);
    assert_eq!(gw.terminate().code(), Some(0));
    // A push to the same group replaces it in the Go gateway: the file's map key is the
    // one Go computes, else Go would keep two groups and serve both.
    let go = GoGateway::start(&file);
    let r = common::try_request(go.port, "PUT", "/metrics/job/k/instance/i", &[], b"kv 2\n")
        .expect("the Go gateway answers");
    assert_eq!(r.status, 200);
    let text = go.get("/metrics");
    let kv: Vec<&str> = text.lines().filter(|l| l.starts_with("kv{")).collect();
    assert_eq!(kv, ["kv{instance=\"i\",job=\"k\"} 2"]);
}

#[test]
fn a_file_named_without_a_directory_lives_in_the_working_directory() {
    let dir = TempDir::new("relative");
    // What an interrupted write leaves (the Go gateway's spelling of it, and ours).
    for leftover in [
        "p.data.in_progress.123",
        "p.data.corrupt.in_progress.4-5",
        "p.data.new.in_progress.6-7",
    ] {
        fs::write(dir.path(leftover), b"torn").expect("a leftover");
    }
    // A copy of a damaged file kept for the operator is not a leftover.
    fs::write(dir.path("p.data.corrupt"), b"kept").expect("a kept copy");
    fs::write(dir.path("other.data"), b"not ours").expect("a neighbour");
    let gw = Gateway::start_in(&dir.0, &["--persistence.file=p.data"]);
    assert_eq!(gw.put("/metrics/job/r", "m 1\n").status, 200);
    let (status, log) = gw.stop("TERM");
    assert_eq!(status.code(), Some(0));
    assert!(log.contains("metrics persisted: file=p.data"), "{log}");
    assert_eq!(dir.names(), ["other.data", "p.data", "p.data.corrupt"]);
}

#[test]
fn a_durable_journal_named_without_a_directory_replays_after_a_kill() {
    let dir = TempDir::new("relative-durable");
    let start = || {
        Gateway::start_in(
            &dir.0,
            &["--persistence.file=p.data", "--persistence.sync=always"],
        )
    };
    let gw = start();
    assert_eq!(gw.put("/metrics/job/r", "m 1\n").status, 200);
    gw.stop("KILL");
    let gw = start();
    let text = pushed(&gw.get("/metrics").text());
    assert!(
        text.starts_with("# TYPE m untyped\nm{instance=\"\",job=\"r\"} 1\n"),
        "{text}"
    );
}

#[test]
fn a_restart_keeps_everything_and_changes_are_written_on_schedule() {
    let dir = TempDir::new("restart");
    let file = dir.path("p.data");
    let gw = Gateway::start(&[&file_arg(&file), "--persistence.interval=100ms"]);
    assert!(!file.exists(), "nothing is written before a change");
    let body = "# HELP m Help.\n# TYPE m gauge\nm{a=\"1\"} 1\n# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n";
    assert_eq!(gw.put("/metrics/job/a/instance/i", body).status, 200);
    assert_eq!(gw.put("/metrics/job/b", "c 7\n").status, 200);
    assert_eq!(gw.delete("/metrics/job/b").status, 202);
    // Written without a shutdown, one interval after the start at the latest.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fs::read(&file).is_ok_and(|b| b.windows(2).any(|w| w == b"s\x12")) {
        assert!(Instant::now() < deadline, "the change was never written");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = pushed(&gw.get("/metrics").text());
    let api_before = gw.get("/api/v1/metrics").text();
    assert_eq!(gw.terminate().code(), Some(0));
    let gw = Gateway::start(&[&file_arg(&file)]);
    assert_eq!(pushed(&gw.get("/metrics").text()), before);
    assert_eq!(gw.get("/api/v1/metrics").text(), api_before);
    assert!(!before.contains("job=\"b\""));
    // The restart says what it restored.
    let log = gw.log();
    let restored = format!(
        "restored persisted metrics: file={} groups=1 skipped=0 journal_changes=0",
        file.display()
    );
    assert!(log.contains(&restored), "{log}");
    // A change after a restart over a file that read whole replaces the file: no copy
    // of it is kept as if it had been damaged, and no temporary file is left behind.
    assert_eq!(gw.put("/metrics/job/c", "c 8\n").status, 200);
    assert_eq!(gw.terminate().code(), Some(0));
    assert_eq!(dir.names(), ["p.data"]);
}

#[test]
fn a_persisted_group_the_flags_refuse_is_skipped_and_said_so() {
    let dir = TempDir::new("skip");
    let file = dir.path("p.data");
    let gw = Gateway::start(&[&file_arg(&file), "--push.enable-utf8-names"]);
    assert_eq!(gw.put("/metrics/job/u/U__a_2e_b/v", "m 1\n").status, 200);
    assert_eq!(gw.terminate().code(), Some(0));
    // Without UTF-8 names, the label `a.b` is not a valid grouping label: the group is
    // skipped, the start goes on, and the log counts it.
    let gw = Gateway::start(&[&file_arg(&file)]);
    assert_eq!(pushed(&gw.get("/metrics").text()), "");
    let (status, log) = gw.stop("TERM");
    assert_eq!(status.code(), Some(0));
    assert!(log.contains("skipped a persisted group"), "{log}");
    let counted = format!(
        "restored persisted metrics: file={} groups=0 skipped=1 journal_changes=0",
        file.display()
    );
    assert!(log.contains(&counted), "{log}");
}

#[test]
fn sighup_and_quit_write_the_file() {
    let dir = TempDir::new("hup");
    let file = dir.path("p.data");
    let gw = Gateway::start(&[&file_arg(&file), "--web.enable-lifecycle"]);
    assert_eq!(gw.put("/metrics/job/hup", "m 1\n").status, 200);
    // The default interval is 5 minutes: the change waits for it (or for SIGHUP). A
    // write within these 1.3 s (past the 1 s spacing of writes asked for now) would be
    // one before its time.
    std::thread::sleep(Duration::from_millis(1300));
    assert!(!file.exists(), "a change was written before its interval");
    gw.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(Instant::now() < deadline, "SIGHUP did not write the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Still serving after SIGHUP.
    assert_eq!(gw.put("/metrics/job/quit", "m 2\n").status, 200);
    assert_eq!(gw.post("/-/quit", "").status, 200);
    let (status, _) = gw.stop("CONT");
    assert_eq!(status.code(), Some(0));
    let gw = Gateway::start(&[&file_arg(&file)]);
    let text = pushed(&gw.get("/metrics").text());
    assert!(text.contains("m{instance=\"\",job=\"hup\"} 1\n"), "{text}");
    assert!(text.contains("m{instance=\"\",job=\"quit\"} 2\n"), "{text}");
}

/// Starts on `file`, returns the log and the pushed part of /metrics, then pushes a group
/// and stops, so that a good file is written.
fn start_on(file: &Path) -> (String, String) {
    let gw = Gateway::start(&[&file_arg(file)]);
    let text = pushed(&gw.get("/metrics").text());
    assert_eq!(gw.put("/metrics/job/after", "after 1\n").status, 200);
    let (status, log) = gw.stop("TERM");
    assert_eq!(status.code(), Some(0));
    (log, text)
}

#[test]
fn damaged_files_give_the_documented_results() {
    let dir = TempDir::new("damage");
    let good = dir.path("good.data");
    fs::copy(GO_DATA, &good).expect("copy the fixture");
    // Our own file of the fixture's groups (it has the checksum trailer).
    start_on(&good);
    let bytes = fs::read(&good).expect("read");

    // Missing: an empty store, no error.
    let missing = dir.path("missing.data");
    let (log, text) = start_on(&missing);
    assert!(!log.contains("level=error"), "{log}");
    assert_eq!(text, "");

    for (name, damaged) in [
        ("truncated", bytes[..bytes.len() / 2].to_vec()),
        ("flipped", {
            let mut b = bytes.clone();
            let at = b.len() / 2;
            b[at] ^= 0x01;
            b
        }),
        ("empty", Vec::new()),
    ] {
        let file = dir.path(&format!("{name}.data"));
        fs::write(&file, &damaged).expect("write");
        let (log, text) = start_on(&file);
        // One clear line naming the file and what is wrong.
        let line = log
            .lines()
            .find(|l| l.contains("could not load persisted metrics"))
            .unwrap_or_else(|| panic!("{name}: no error logged:\n{log}"));
        assert!(line.contains(&file.display().to_string()), "{line}");
        let why = match name {
            "truncated" => "truncated or corrupt",
            "flipped" => "checksum mismatch",
            _ => "empty",
        };
        assert!(line.contains(why), "{name}: {line}");
        if name == "truncated" {
            // The groups before the damage are kept.
            assert!(text.contains("push_time_seconds{"), "{text}");
        }
        // The bad file was kept aside, and replaced by a good one.
        let mut copy = file.clone().into_os_string();
        copy.push(".corrupt");
        assert_eq!(fs::read(&copy).expect("the bad copy"), damaged, "{name}");
        let (log, text) = start_on(&file);
        assert!(!log.contains("level=error"), "{name}: {log}");
        assert!(
            text.contains("after{instance=\"\",job=\"after\"} 1"),
            "{text}"
        );
    }

    // Unreadable, and no copy of it can be made (a directory where the file should be:
    // root reads any file, and a directory can be neither linked nor copied): it is left
    // untouched, the daemon serves on and writes beside it, and says so.
    let unreadable = dir.path("unreadable.data");
    fs::create_dir(&unreadable).expect("mkdir");
    fs::write(unreadable.join("inside"), "kept").expect("write");
    let (log, text) = start_on(&unreadable);
    assert!(log.contains("could not load persisted metrics"), "{log}");
    let beside = dir.path("unreadable.data.new");
    assert!(
        log.contains(&format!(
            "it is left untouched, and metrics are written to {}",
            beside.display()
        )),
        "{log}"
    );
    assert_eq!(text, "");
    assert_eq!(
        fs::read_to_string(unreadable.join("inside")).unwrap(),
        "kept"
    );
    // A restart serves what was written beside it, and still leaves it alone.
    let (log, text) = start_on(&unreadable);
    assert!(
        log.contains(&format!("loading {}", beside.display())),
        "{log}"
    );
    assert!(
        text.contains("after{instance=\"\",job=\"after\"} 1"),
        "{text}"
    );
    assert_eq!(
        fs::read_to_string(unreadable.join("inside")).unwrap(),
        "kept"
    );
    // Once an operator moves it away, the file is written where it belongs again.
    fs::rename(&unreadable, dir.path("moved")).expect("move");
    let (log, text) = start_on(&unreadable);
    assert!(!log.contains("level=error"), "{log}");
    assert!(
        text.contains("after{instance=\"\",job=\"after\"} 1"),
        "{text}"
    );
    assert!(unreadable.is_file() && !beside.exists());
}
