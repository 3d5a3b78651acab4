//! What each write of the persistence file holds, through the library: after a write
//! asked for now (as SIGHUP asks) and after the shutdown write, the file loaded into a
//! store of its own must scrape exactly as the store it was written from (HELP, TYPE,
//! every series and value, the push timestamps), through PUT, POST, DELETE and replace.

use super::common::TempDir;
use super::inproc::{call, service_over};
use pushgateway::http::service::Service;
use pushgateway::persist::{Options, Persister};
use pushgateway::store::Store;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn options(file: &Path) -> Options {
    Options {
        file: file.to_path_buf(),
        // Long: every write here is asked for, none is scheduled.
        interval: Duration::from_secs(3600),
        durable: false,
        utf8_names: false,
    }
}

/// The pushed part of a scrape, timestamps included (the gateway's own families aside).
fn scrape(s: &Arc<Service>) -> String {
    let (code, _, text) = call(s, "GET", "/metrics", &[], b"");
    assert_eq!(code, 200);
    text.lines()
        .filter(|l| {
            let name = l
                .strip_prefix("# HELP ")
                .or_else(|| l.strip_prefix("# TYPE "))
                .unwrap_or(l);
            !name.starts_with("pushgateway_") && !name.starts_with("process_")
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// What the file at `file` holds, loaded into a fresh store and scraped.
fn loaded(file: &Path, dir: &TempDir) -> String {
    let copy = dir.path("copy.data");
    std::fs::copy(file, &copy).expect("copy the written file");
    let store = Arc::new(Store::new());
    let p = Persister::start(options(&copy), store.clone()).expect("load");
    let (s, _) = service_over(store, false, false, true);
    let text = scrape(&s);
    p.shutdown();
    text
}

fn send(s: &Arc<Service>, method: &str, path: &str, body: &str) {
    let (code, _, text) = call(s, method, path, &[], body.as_bytes());
    assert!((200..300).contains(&code), "{method} {path}: {code} {text}");
}

/// Asks for a write now and waits until it is on disk (the count of writes, not a time).
fn write_now(p: &Persister) {
    let before = p.writes();
    p.write_now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.writes() == before {
        assert!(Instant::now() < deadline, "the write asked for never came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn every_write_holds_the_store_as_it_was() {
    let dir = TempDir::new("writes");
    let file = dir.path("p.data");
    let store = Arc::new(Store::new());
    let p = Persister::start(options(&file), store.clone()).expect("start");
    let (s, _) = service_over(store, false, false, true);

    send(
        &s,
        "PUT",
        "/metrics/job/a/instance/x",
        "# HELP m A gauge.\n# TYPE m gauge\nm{l=\"1\"} 1\nm{l=\"2\"} 2\n# TYPE c counter\nc 7\n",
    );
    send(
        &s,
        "POST",
        "/metrics/job/b",
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n",
    );
    let first = scrape(&s);
    write_now(&p);
    assert_eq!(loaded(&file, &dir), first, "after the first write");

    // Replace a group, add a family to another, delete a third, and add one.
    send(&s, "PUT", "/metrics/job/a/instance/x", "m{l=\"3\"} 3\n");
    send(
        &s,
        "POST",
        "/metrics/job/b",
        "# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 1\ns_count 1\n",
    );
    send(&s, "PUT", "/metrics/job/gone", "g 1\n");
    send(&s, "DELETE", "/metrics/job/gone", "");
    send(&s, "POST", "/metrics/job/c/x@base64/YS9i", "u 5\n");
    let second = scrape(&s);
    assert_ne!(first, second);
    write_now(&p);
    assert_eq!(loaded(&file, &dir), second, "after the second write");

    // The shutdown write.
    send(&s, "DELETE", "/metrics/job/b", "");
    send(&s, "POST", "/metrics/job/a/instance/x", "n 9\n");
    let last = scrape(&s);
    p.shutdown();
    assert_eq!(loaded(&file, &dir), last, "after the shutdown write");
    assert!(last.contains("n{instance=\"x\",job=\"a\"} 9\n"), "{last}");
    assert!(!last.contains("job=\"b\""), "{last}");
}

#[test]
fn a_durable_start_writes_only_what_it_must() {
    let dir = TempDir::new("durable-start");
    let file = dir.path("p.data");
    let durable = || Options {
        durable: true,
        ..options(&file)
    };
    // Over no file the journal may start at once: nothing it holds is lost without one.
    let store = Arc::new(Store::new());
    let p = Persister::start(durable(), store.clone()).expect("start");
    assert_eq!(p.writes(), 0);
    let (s, _) = service_over(store, false, false, true);
    send(&s, "PUT", "/metrics/job/a", "m 1\n");
    p.shutdown();
    let written = std::fs::read(&file).expect("the shutdown write");
    // Over that file: nothing to write until the interval is up, changes or not (they
    // are in the journal, far below the size at which it asks for a snapshot). A retry
    // or a snapshot asked for would come one second (the least spacing of writes)
    // after the start; 1.5 s pass without one.
    let store = Arc::new(Store::new());
    let p = Persister::start(durable(), store.clone()).expect("restart");
    let (s, _) = service_over(store, false, false, true);
    for i in 0..50 {
        send(&s, "PUT", &format!("/metrics/job/j{i}"), "m 1\n");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(p.writes(), 0);
    assert_eq!(std::fs::read(&file).expect("the file"), written);
    p.shutdown();
}

#[test]
fn a_journal_past_its_bound_asks_for_a_snapshot_before_the_interval() {
    let dir = TempDir::new("journal-bound");
    let file = dir.path("p.data");
    let opts = Options {
        durable: true,
        ..options(&file)
    };
    let store = Arc::new(Store::new());
    let p = Persister::start(opts, store.clone()).expect("start");
    let (s, _) = service_over(store, false, false, true);
    let pad = "x".repeat(1000);
    let body: String = (0..100)
        .map(|i| format!("m{{i=\"{i}\",pad=\"{pad}\"}} {i}\n"))
        .collect();
    // Each PUT journals its whole group: about 100 KB a time, past the 1 MiB floor of the
    // journal's bound within 20 (the interval is an hour: only the bound asks for this).
    for _ in 0..20 {
        send(&s, "PUT", "/metrics/job/big", &body);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.writes() == 0 {
        assert!(
            Instant::now() < deadline,
            "the journal never asked for a snapshot"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    p.shutdown();
}
