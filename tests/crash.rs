//! The durable mode against `kill -9`: clients push distinct groups while the daemon is
//! killed at a random instant; after each restart every acknowledged push must be there
//! and the file must load cleanly. `make crash` runs many rounds (PGW_CRASH_ROUNDS);
//! `make test` a few. (PGW_CRASH_SYNC=interval shows the test failing without the
//! durable mode.)

mod common;

use common::{Gateway, try_request};
use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const PUSHERS: usize = 4;
const GROUPS_PER_ROUND: usize = 1000;

/// The jobs of every group a scrape shows.
fn jobs(gw: &Gateway) -> HashSet<String> {
    let text = gw.get("/metrics").text();
    text.lines()
        .filter_map(|l| l.strip_prefix("push_time_seconds{"))
        .filter_map(|l| l.split("job=\"").nth(1))
        .filter_map(|l| l.split('"').next())
        .map(str::to_string)
        .collect()
}

fn start(file: &Path) -> Gateway {
    Gateway::start(&[
        &format!("--persistence.file={}", file.display()),
        &format!(
            "--persistence.sync={}",
            std::env::var("PGW_CRASH_SYNC").unwrap_or_else(|_| "always".into())
        ),
        // Short, so that snapshots, journal rotations and compactions happen mid-round.
        "--persistence.interval=150ms",
    ])
}

#[test]
fn no_acknowledged_push_is_lost_to_kill_9() {
    let rounds: usize = std::env::var("PGW_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("pgw-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("pushgateway.data");
    // xorshift, seeded from the clock: each run kills at other instants.
    let mut x = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut acked_total: HashSet<String> = HashSet::new();
    let mut report = Vec::new();
    for round in 0..rounds {
        let gw = start(&file);
        let present = jobs(&gw);
        let missing: Vec<&String> = acked_total.difference(&present).collect();
        assert!(missing.is_empty(), "round {round}: lost {missing:?}");
        assert!(
            !gw.log().contains("could not load persisted metrics"),
            "round {round}: {}",
            gw.log()
        );
        let acked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let pushers: Vec<_> = (0..PUSHERS)
            .map(|t| {
                let (acked, stop, port) = (acked.clone(), stop.clone(), gw.port);
                std::thread::spawn(move || {
                    for i in (t..GROUPS_PER_ROUND).step_by(PUSHERS) {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        let job = format!("r{round}_{i}");
                        let path = format!("/metrics/job/{job}");
                        let body = format!("crash_test_value{{i=\"{i}\"}} {i}\n");
                        match try_request(port, "PUT", &path, &[], body.as_bytes()) {
                            Ok(r) if r.status == 200 => {
                                acked.lock().unwrap_or_else(|e| e.into_inner()).push(job)
                            }
                            Ok(r) => panic!("push refused: {} {}", r.status, r.text()),
                            Err(_) => return, // killed
                        }
                    }
                })
            })
            .collect();
        // The random instant: what this test is about, not a wait for readiness.
        let kill_after = Duration::from_millis(5 + next() % 500);
        let started = Instant::now();
        while started.elapsed() < kill_after && pushers.iter().any(|p| !p.is_finished()) {
            std::thread::sleep(Duration::from_millis(5));
        }
        gw.stop("KILL");
        stop.store(true, Ordering::Relaxed);
        for p in pushers {
            p.join().expect("pusher");
        }
        let acked = std::mem::take(&mut *acked.lock().unwrap_or_else(|e| e.into_inner()));
        report.push(format!(
            "round {round}: killed after {} ms, {} pushes acknowledged",
            kill_after.as_millis(),
            acked.len()
        ));
        acked_total.extend(acked);
    }
    let gw = start(&file);
    let present = jobs(&gw);
    let missing: Vec<&String> = acked_total.difference(&present).collect();
    assert!(missing.is_empty(), "lost {missing:?}");
    assert!(!gw.log().contains("could not load persisted metrics"));
    println!(
        "{}\n{rounds} kills, {} acknowledged pushes, all {} present after restart",
        report.join("\n"),
        acked_total.len(),
        acked_total.len()
    );
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}
