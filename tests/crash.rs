//! The durable mode against `kill -9`: clients PUT distinct groups, POST again and again
//! into big groups, and PUT and DELETE groups in turn, while the daemon is killed at a
//! random instant; after each restart every group must be as its last acknowledged change
//! left it (or as the one change in flight at the kill would), so nothing acknowledged is
//! lost and nothing unacknowledged or deleted comes back; the files must load cleanly.
//! Groups are compared series for series, value for value; some rounds start with a wipe.
//! The test fails if a request fails before the kill, if the daemon dies by itself or
//! logs an error, or if a round acknowledges nothing. It prints its seed:
//! `PGW_CRASH_SEED=N make crash` kills at the same instants again.
//! `make crash` runs many rounds (PGW_CRASH_ROUNDS); `make test` a few.
//! (PGW_CRASH_SYNC=interval shows the test failing without the durable mode.)

mod common;

use common::{Gateway, TempDir, try_request};
use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// This run's seed, named in every failure so that it can be rerun.
static SEED: OnceLock<u64> = OnceLock::new();

fn seed() -> u64 {
    *SEED.get().unwrap_or(&0)
}

const PUTTERS: usize = 4;
const PUTS_PER_ROUND: usize = 1000;
const POSTERS: usize = 2;
const BIG_SERIES: usize = 2000;
const DELETERS: usize = 2;
const DELETE_GROUPS: usize = 5;

/// What a group holds, as far as this test tells groups apart.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Absent,
    /// The group's test value (for a big group: the last POSTed value, with all its
    /// series there).
    Present(i64),
}

/// Per group: its state after the last acknowledged change, and after the change in
/// flight (sent, not answered) if any.
#[derive(Default)]
struct Model {
    groups: HashMap<String, (Option<State>, Option<State>)>,
    acked: HashMap<&'static str, usize>,
}

impl Model {
    fn send(&mut self, job: &str, to: State) {
        self.groups.entry(job.to_string()).or_default().1 = Some(to);
    }
    fn ack(&mut self, kind: &'static str, job: &str) {
        let e = self.groups.entry(job.to_string()).or_default();
        e.0 = e.1.take();
        *self.acked.entry(kind).or_default() += 1;
    }
}

type Shared = Arc<Mutex<Model>>;

fn lock(m: &Shared) -> std::sync::MutexGuard<'_, Model> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The state of every group a scrape shows, with problems (a big group missing series).
fn served(gw: &Gateway) -> (HashMap<String, State>, Vec<String>) {
    let text = gw.get("/metrics").text();
    let mut out = HashMap::new();
    let mut big_series: HashMap<String, usize> = HashMap::new();
    let mut bad_values = Vec::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((name, rest)) = line.split_once('{') else {
            continue;
        };
        let Some(job) = rest
            .split("job=\"")
            .nth(1)
            .and_then(|l| l.split('"').next())
        else {
            continue;
        };
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        match (name, value) {
            ("crash_value" | "crash_post" | "crash_del", Some(v)) => {
                out.insert(job.to_string(), State::Present(v as i64));
            }
            ("crash_big", Some(v)) => {
                // Each big series keeps the value it was PUT with: crash_big{i="N"} N.
                let i = rest
                    .split("i=\"")
                    .nth(1)
                    .and_then(|l| l.split('"').next())
                    .and_then(|i| i.parse::<f64>().ok());
                if i == Some(v) {
                    *big_series.entry(job.to_string()).or_default() += 1;
                } else {
                    bad_values.push(line.to_string());
                }
            }
            (_, _) if name.starts_with("crash_") => bad_values.push(line.to_string()),
            _ => {}
        }
    }
    let mut problems = bad_values;
    // A big group is all its series and its posted value, or nothing.
    let big_jobs: std::collections::BTreeSet<&String> = big_series
        .keys()
        .chain(out.keys().filter(|j| j.starts_with("big")))
        .collect();
    for job in big_jobs {
        let n = big_series.get(job).copied().unwrap_or(0);
        if n != BIG_SERIES || !out.contains_key(job) {
            problems.push(format!(
                "{job} has {n} of its {BIG_SERIES} series, posted value {:?}",
                out.get(job)
            ));
        }
    }
    (out, problems)
}

/// Checks what is served against the model, then takes it as the new acknowledged state.
fn check(gw: &Gateway, model: &Shared, round: usize) {
    let (served, problems) = served(gw);
    let seed = seed();
    assert!(
        problems.is_empty(),
        "seed {seed}, round {round}: {problems:?}"
    );
    let mut m = lock(model);
    // A group served that no client ever sent: something came back from nowhere.
    let mut wrong: Vec<String> = served
        .iter()
        .filter(|(job, _)| !m.groups.contains_key(*job))
        .map(|(job, s)| format!("{job}: served {s:?}, never sent"))
        .collect();
    for (job, (acked, in_flight)) in m.groups.iter_mut() {
        let now = served.get(job).cloned().unwrap_or(State::Absent);
        let acked_state = acked.clone().unwrap_or(State::Absent);
        if now != acked_state && in_flight.as_ref() != Some(&now) {
            wrong.push(format!(
                "{job}: served {now:?}, acknowledged {acked_state:?}, in flight {in_flight:?}"
            ));
        }
        *acked = Some(now);
        *in_flight = None;
    }
    wrong.sort();
    assert!(wrong.is_empty(), "seed {seed}, round {round}: {wrong:#?}");
    assert!(
        !gw.log().contains("level=error"),
        "seed {seed}, round {round}: {}",
        gw.log()
    );
}

fn start(file: &Path) -> Gateway {
    Gateway::start(&[
        "--web.enable-admin-api",
        &format!("--persistence.file={}", file.display()),
        &format!(
            "--persistence.sync={}",
            std::env::var("PGW_CRASH_SYNC").unwrap_or_else(|_| "always".into())
        ),
        // Short, so that snapshots, journal rotations and compactions happen mid-round.
        "--persistence.interval=150ms",
    ])
}

/// Set just before the kill: a request that fails after it was cut short by the kill;
/// one that fails before it is a failure of the daemon.
static KILLING: AtomicBool = AtomicBool::new(false);

/// One request: `Some(())` if acknowledged, None if the kill cut it short. Anything else
/// (a refusal, or an error before the kill) fails the test.
fn send(port: u16, method: &str, path: &str, body: &[u8]) -> Option<()> {
    match try_request(port, method, path, &[], body) {
        Ok(r) if (200..300).contains(&r.status) => Some(()),
        Ok(r) if !KILLING.load(Ordering::SeqCst) => panic!(
            "seed {}: {method} {path} refused: {} {}",
            seed(),
            r.status,
            r.text()
        ),
        Err(e) if !KILLING.load(Ordering::SeqCst) => {
            panic!(
                "seed {}: {method} {path} failed before the kill: {e}",
                seed()
            )
        }
        _ => None,
    }
}

fn putter(port: u16, model: Shared, stop: Arc<AtomicBool>, round: usize, t: usize) {
    for i in (t..PUTS_PER_ROUND).step_by(PUTTERS) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let job = format!("r{round}_{i}");
        lock(&model).send(&job, State::Present(i as i64));
        let body = format!("crash_value{{i=\"{i}\"}} {i}\n");
        if send(port, "PUT", &format!("/metrics/job/{job}"), body.as_bytes()).is_none() {
            return;
        }
        lock(&model).ack("PUT", &job);
    }
}

/// PUTs a big group (unless it is there), then POSTs one family into it, a new value
/// each time.
fn poster(port: u16, model: Shared, stop: Arc<AtomicBool>, round: usize, t: usize) {
    let job = format!("big{t}");
    let path = format!("/metrics/job/{job}");
    let mut value = (round * 1_000_000) as i64;
    let there = matches!(
        lock(&model).groups.get(&job),
        Some((Some(State::Present(_)), _))
    );
    if !there {
        let mut big: String = (0..BIG_SERIES)
            .map(|i| format!("crash_big{{i=\"{i}\"}} {i}\n"))
            .collect();
        big.push_str(&format!("crash_post {value}\n"));
        lock(&model).send(&job, State::Present(value));
        if send(port, "PUT", &path, big.as_bytes()).is_none() {
            return;
        }
        lock(&model).ack("PUT of a big group", &job);
    }
    while !stop.load(Ordering::Relaxed) {
        value += 1;
        lock(&model).send(&job, State::Present(value));
        let body = format!("crash_post {value}\n");
        if send(port, "POST", &path, body.as_bytes()).is_none() {
            return;
        }
        lock(&model).ack("POST into a big group", &job);
    }
}

/// PUTs a group and DELETEs it again, going round a few groups (values new each round,
/// so that a group rolled back to an earlier round's state shows).
fn deleter(port: u16, model: Shared, stop: Arc<AtomicBool>, round: usize, t: usize) {
    for n in (round as i64 * 1_000_000).. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let job = format!("del{t}_{}", (n / 2) as usize % DELETE_GROUPS);
        let path = format!("/metrics/job/{job}");
        let (method, to, body) = if n % 2 == 0 {
            ("PUT", State::Present(n), format!("crash_del {n}\n"))
        } else {
            ("DELETE", State::Absent, String::new())
        };
        lock(&model).send(&job, to);
        if send(port, method, &path, body.as_bytes()).is_none() {
            return;
        }
        lock(&model).ack(method, &job);
    }
}

#[test]
fn no_acknowledged_change_is_lost_to_kill_9() {
    let rounds: usize = std::env::var("PGW_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6);
    // Removed however the test ends.
    let dir = TempDir::new("crash");
    let file = dir.path("pushgateway.data");
    // xorshift, seeded from the clock unless PGW_CRASH_SEED says: each run kills at other
    // instants, and a failing run can be repeated.
    let seed = std::env::var("PGW_CRASH_SEED")
        .ok()
        .map(|s| s.parse::<u64>().expect("PGW_CRASH_SEED is a whole number"))
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
        | 1;
    SEED.get_or_init(|| seed);
    println!("seed {seed} (PGW_CRASH_SEED={seed} make crash repeats this run's kills)");
    let mut x = seed;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let model: Shared = Arc::default();
    let mut report = Vec::new();
    let mut wipes = 0;
    for round in 0..rounds {
        let mut gw = start(&file);
        check(&gw, &model, round);
        KILLING.store(false, Ordering::SeqCst);
        // One round in three (after the first) starts with a wipe: every group is gone,
        // and must stay gone after the kill unless a later change brings it back.
        if round > 0 && next() % 3 == 0 {
            let r = gw.request("PUT", "/api/v1/admin/wipe", &[], b"");
            assert_eq!(r.status, 202, "seed {seed}: wipe: {}", r.text());
            for (acked, _) in lock(&model).groups.values_mut() {
                *acked = Some(State::Absent);
            }
            *lock(&model).acked.entry("group wipes").or_default() += 1;
            wipes += 1;
        }
        let before: usize = lock(&model).acked.values().sum();
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for t in 0..PUTTERS {
            let (m, s, port) = (model.clone(), stop.clone(), gw.port);
            clients.push(std::thread::spawn(move || putter(port, m, s, round, t)));
        }
        for t in 0..POSTERS {
            let (m, s, port) = (model.clone(), stop.clone(), gw.port);
            clients.push(std::thread::spawn(move || poster(port, m, s, round, t)));
        }
        for t in 0..DELETERS {
            let (m, s, port) = (model.clone(), stop.clone(), gw.port);
            clients.push(std::thread::spawn(move || deleter(port, m, s, round, t)));
        }
        // The random instant: what this test is about, not a wait for readiness.
        let kill_after = Duration::from_millis(5 + next() % 500);
        let started = Instant::now();
        while started.elapsed() < kill_after {
            std::thread::sleep(Duration::from_millis(5));
        }
        if let Some(status) = gw.exited() {
            panic!(
                "seed {seed}, round {round}: the daemon died by itself ({status}): {}",
                gw.log()
            );
        }
        KILLING.store(true, Ordering::SeqCst);
        let (status, log) = gw.stop("KILL");
        assert_eq!(
            status.signal(),
            Some(9),
            "seed {seed}, round {round}: ended otherwise than by the kill ({status}): {log}"
        );
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().expect("client");
        }
        let after: usize = lock(&model).acked.values().sum();
        // A daemon hanging on its journal acknowledges nothing: a round that long must
        // (long enough for a first fsync on a loaded machine).
        assert!(
            after > before || kill_after < Duration::from_millis(400),
            "seed {seed}, round {round}: nothing acknowledged in {} ms",
            kill_after.as_millis()
        );
        report.push(format!(
            "round {round}: killed after {} ms, {} changes acknowledged",
            kill_after.as_millis(),
            after - before
        ));
    }
    let gw = start(&file);
    check(&gw, &model, rounds);
    let m = lock(&model);
    let mut kinds: Vec<String> = m.acked.iter().map(|(k, n)| format!("{n} {k}")).collect();
    kinds.sort();
    println!(
        "{}\n{rounds} kills ({wipes} rounds after a wipe); acknowledged and found after restart: {}",
        report.join("\n"),
        kinds.join(", ")
    );
    drop(gw);
}
