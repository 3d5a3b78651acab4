//! The gateway's own metric families: `process_*` from /proc, `pushgateway_*`, and the
//! names the Go gateway reserves for its runtime (`go_*`), which pushes must not contradict.

use crate::model::metric::{Labels, Metric, MetricType, Summary, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One own family: its name, type and HELP as the Go gateway 1.5.1 exposes them.
pub struct OwnFamily {
    pub name: &'static str,
    pub mtype: MetricType,
    pub help: &'static str,
}

const fn own(name: &'static str, mtype: MetricType, help: &'static str) -> OwnFamily {
    OwnFamily { name, mtype, help }
}

use MetricType::{Counter as C, Gauge as G, Summary as S};

/// Every family the Go gateway registers itself, sorted by name. We expose the
/// `process_*` and `pushgateway_*` ones; the `go_*` ones describe a Go runtime we do not
/// have, but a push of one of those names is still checked against (and shown with) the
/// Go gateway's type and HELP, so that every push is accepted or refused as there.
pub static OWN_FAMILIES: &[OwnFamily] = &[
    own(
        "go_gc_duration_seconds",
        S,
        "A summary of the pause duration of garbage collection cycles.",
    ),
    own(
        "go_goroutines",
        G,
        "Number of goroutines that currently exist.",
    ),
    own("go_info", G, "Information about the Go environment."),
    own(
        "go_memstats_alloc_bytes",
        G,
        "Number of bytes allocated and still in use.",
    ),
    own(
        "go_memstats_alloc_bytes_total",
        C,
        "Total number of bytes allocated, even if freed.",
    ),
    own(
        "go_memstats_buck_hash_sys_bytes",
        G,
        "Number of bytes used by the profiling bucket hash table.",
    ),
    own("go_memstats_frees_total", C, "Total number of frees."),
    own(
        "go_memstats_gc_sys_bytes",
        G,
        "Number of bytes used for garbage collection system metadata.",
    ),
    own(
        "go_memstats_heap_alloc_bytes",
        G,
        "Number of heap bytes allocated and still in use.",
    ),
    own(
        "go_memstats_heap_idle_bytes",
        G,
        "Number of heap bytes waiting to be used.",
    ),
    own(
        "go_memstats_heap_inuse_bytes",
        G,
        "Number of heap bytes that are in use.",
    ),
    own(
        "go_memstats_heap_objects",
        G,
        "Number of allocated objects.",
    ),
    own(
        "go_memstats_heap_released_bytes",
        G,
        "Number of heap bytes released to OS.",
    ),
    own(
        "go_memstats_heap_sys_bytes",
        G,
        "Number of heap bytes obtained from system.",
    ),
    own(
        "go_memstats_last_gc_time_seconds",
        G,
        "Number of seconds since 1970 of last garbage collection.",
    ),
    own(
        "go_memstats_lookups_total",
        C,
        "Total number of pointer lookups.",
    ),
    own("go_memstats_mallocs_total", C, "Total number of mallocs."),
    own(
        "go_memstats_mcache_inuse_bytes",
        G,
        "Number of bytes in use by mcache structures.",
    ),
    own(
        "go_memstats_mcache_sys_bytes",
        G,
        "Number of bytes used for mcache structures obtained from system.",
    ),
    own(
        "go_memstats_mspan_inuse_bytes",
        G,
        "Number of bytes in use by mspan structures.",
    ),
    own(
        "go_memstats_mspan_sys_bytes",
        G,
        "Number of bytes used for mspan structures obtained from system.",
    ),
    own(
        "go_memstats_next_gc_bytes",
        G,
        "Number of heap bytes when next garbage collection will take place.",
    ),
    own(
        "go_memstats_other_sys_bytes",
        G,
        "Number of bytes used for other system allocations.",
    ),
    own(
        "go_memstats_stack_inuse_bytes",
        G,
        "Number of bytes in use by the stack allocator.",
    ),
    own(
        "go_memstats_stack_sys_bytes",
        G,
        "Number of bytes obtained from system for stack allocator.",
    ),
    own(
        "go_memstats_sys_bytes",
        G,
        "Number of bytes obtained from system.",
    ),
    own("go_threads", G, "Number of OS threads created."),
    own(
        "process_cpu_seconds_total",
        C,
        "Total user and system CPU time spent in seconds.",
    ),
    own(
        "process_max_fds",
        G,
        "Maximum number of open file descriptors.",
    ),
    own("process_open_fds", G, "Number of open file descriptors."),
    own(
        "process_resident_memory_bytes",
        G,
        "Resident memory size in bytes.",
    ),
    own(
        "process_start_time_seconds",
        G,
        "Start time of the process since unix epoch in seconds.",
    ),
    own(
        "process_virtual_memory_bytes",
        G,
        "Virtual memory size in bytes.",
    ),
    own(
        "process_virtual_memory_max_bytes",
        G,
        "Maximum amount of virtual memory available in bytes.",
    ),
    own(
        "pushgateway_build_info",
        G,
        "A metric with a constant '1' value labeled by version, revision, branch, goversion from which pushgateway was built, and the goos and goarch for the build.",
    ),
    own(
        "pushgateway_http_push_duration_seconds",
        S,
        "HTTP request duration for pushes to the Pushgateway.",
    ),
    own(
        "pushgateway_http_push_size_bytes",
        S,
        "HTTP request size for pushes to the Pushgateway.",
    ),
    own(
        "pushgateway_http_requests_total",
        C,
        "Total HTTP requests processed by the Pushgateway, excluding scrapes.",
    ),
];

/// The own family of that name, if any.
pub fn own_family(name: &str) -> Option<&'static OwnFamily> {
    OWN_FAMILIES
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &OWN_FAMILIES[i])
}

/// A gathered own family with its current metrics.
pub struct Gathered {
    pub family: &'static OwnFamily,
    pub metrics: Vec<Metric>,
}

fn gauge(v: f64) -> Vec<Metric> {
    vec![Metric {
        labels: Labels::from_sorted([]),
        value: Value::Gauge(v),
    }]
}

/// The version our build reports in `pushgateway_build_info` and `--version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Reads the process families from /proc (Linux); missing files leave a family out, as
/// the Go collector does when procfs is unavailable.
pub fn gather(instruments: &Instruments) -> Vec<Gathered> {
    let mut out = instruments.gather();
    let mut push = |name: &str, metrics: Vec<Metric>| {
        if let Some(family) = own_family(name) {
            out.push(Gathered { family, metrics });
        }
    };
    let stat = std::fs::read_to_string("/proc/self/stat").ok();
    // Fields after the parenthesised command name; field 3 of the man page is index 0.
    let fields: Vec<&str> = stat
        .as_deref()
        .and_then(|s| s.rsplit_once(')'))
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let field = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<f64>().ok());
    // procfs (which the Go collector uses) fixes USER_HZ at 100.
    const USER_HZ: f64 = 100.0;
    if let (Some(utime), Some(stime)) = (field(14), field(15)) {
        let v = (utime + stime) / USER_HZ;
        push(
            "process_cpu_seconds_total",
            vec![Metric {
                labels: Labels::from_sorted([]),
                value: Value::Counter(v),
            }],
        );
    }
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    if let Some(v) = limit(&limits, "Max open files") {
        push("process_max_fds", gauge(v));
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        push("process_open_fds", gauge(dir.count() as f64));
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    if let Some(kib) = status_kib(&status, "VmRSS:") {
        push("process_resident_memory_bytes", gauge(kib * 1024.0));
    }
    if let (Some(start), Some(btime)) = (field(22), boot_time()) {
        push("process_start_time_seconds", gauge(btime + start / USER_HZ));
    }
    if let Some(v) = field(23) {
        push("process_virtual_memory_bytes", gauge(v));
    }
    if let Some(v) = limit(&limits, "Max address space") {
        push("process_virtual_memory_max_bytes", gauge(v));
    }
    push(
        "pushgateway_build_info",
        vec![Metric {
            labels: Labels::from_sorted([
                ("branch", "HEAD"),
                ("goarch", go_arch()),
                ("goos", std::env::consts::OS),
                ("goversion", "rust"),
                (
                    "revision",
                    option_env!("PUSHGATEWAY_REVISION").unwrap_or("unknown"),
                ),
                ("version", VERSION),
            ]),
            value: Value::Gauge(1.0),
        }],
    );
    out
}

/// How many recent observations a push summary keeps for its quantiles.
const WINDOW: usize = 1024;

/// Observations of one summary: all-time count and sum, recent values for quantiles.
#[derive(Default)]
struct Observations {
    count: u64,
    sum: f64,
    recent: VecDeque<f64>,
}

impl Observations {
    fn observe(&mut self, v: f64) {
        self.count += 1;
        self.sum += v;
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent.push_back(v);
    }

    /// The Go gateway's objectives 0.1, 0.5 and 0.9, over the recent window (the Go
    /// client estimates them over ten minutes; an exact window is simpler and as useful).
    fn summary(&self) -> Summary {
        let mut sorted: Vec<f64> = self.recent.iter().copied().collect();
        sorted.sort_by(f64::total_cmp);
        let quantiles = [0.1, 0.5, 0.9]
            .iter()
            .map(|&q| {
                let v = match sorted.len() {
                    0 => f64::NAN,
                    n => sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1],
                };
                (q, v)
            })
            .collect();
        Summary {
            count: self.count,
            sum: self.sum,
            quantiles,
        }
    }
}

#[derive(Default)]
struct Counts {
    /// (code, handler, method) → requests.
    requests: BTreeMap<(String, &'static str, String), u64>,
    /// method → push durations in seconds, and push sizes in bytes.
    durations: BTreeMap<String, Observations>,
    sizes: BTreeMap<String, Observations>,
}

/// The `pushgateway_http_*` families, as the Go gateway instruments its handlers.
#[derive(Default)]
pub struct Instruments {
    counts: Mutex<Counts>,
}

/// The Go handler label's spelling of a method: lower case, `unknown` for others.
fn method_label(method: &str) -> String {
    match method {
        "GET" | "PUT" | "POST" | "DELETE" | "OPTIONS" | "HEAD" | "PATCH" | "CONNECT" | "TRACE" => {
            method.to_ascii_lowercase()
        }
        _ => "unknown".into(),
    }
}

impl Instruments {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a request answered by `handler` (`push`, `delete`, `healthy`, ...).
    pub fn request(&self, handler: &'static str, method: &str, code: u16) {
        let key = (code.to_string(), handler, method_label(method));
        *self.lock().requests.entry(key).or_insert(0) += 1;
    }

    /// Records a PUT or POST push: its duration and its approximate request size.
    pub fn push(&self, method: &str, seconds: f64, size: usize) {
        let mut c = self.lock();
        let m = method_label(method);
        c.durations.entry(m.clone()).or_default().observe(seconds);
        c.sizes.entry(m).or_default().observe(size as f64);
    }

    /// The families that have series; like the Go gateway's, absent until used.
    fn gather(&self) -> Vec<Gathered> {
        let c = self.lock();
        let mut out = Vec::new();
        let summaries = |obs: &BTreeMap<String, Observations>| -> Vec<Metric> {
            obs.iter()
                .map(|(m, o)| Metric {
                    labels: Labels::from_sorted([("method", m.as_str())]),
                    value: Value::Summary(Box::new(o.summary())),
                })
                .collect()
        };
        if !c.durations.is_empty() {
            if let Some(family) = own_family("pushgateway_http_push_duration_seconds") {
                out.push(Gathered {
                    family,
                    metrics: summaries(&c.durations),
                });
            }
            if let Some(family) = own_family("pushgateway_http_push_size_bytes") {
                out.push(Gathered {
                    family,
                    metrics: summaries(&c.sizes),
                });
            }
        }
        if !c.requests.is_empty()
            && let Some(family) = own_family("pushgateway_http_requests_total")
        {
            let metrics = c
                .requests
                .iter()
                .map(|((code, handler, method), n)| Metric {
                    labels: Labels::from_sorted([
                        ("code", code.as_str()),
                        ("handler", handler),
                        ("method", method.as_str()),
                    ]),
                    value: Value::Counter(*n as f64),
                })
                .collect();
            out.push(Gathered { family, metrics });
        }
        out
    }
}

/// GOARCH spelling of the target architecture.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// A soft limit from /proc/self/limits; "unlimited" is the largest uint64, as in Go.
fn limit(limits: &str, name: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(u64::MAX as f64);
    }
    soft.parse().ok()
}

fn status_kib(status: &str, key: &str) -> Option<f64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line[6..].trim().parse().ok()
}

/// Seconds since the epoch with sub-second precision, as the timestamp gauges hold them.
pub fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as f64 / 1e9,
        Err(_) => 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds of user and of system CPU this process has used, read from /proc/self/stat
    /// here (fields 14 and 15, in ticks of 1/100 s), independently of `gather`.
    fn cpu() -> (f64, f64) {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let rest = stat.rsplit_once(')').unwrap().1;
        let f: Vec<f64> = rest
            .split_whitespace()
            .map(|v| v.parse().unwrap_or(0.0))
            .collect();
        (f[11] / 100.0, f[12] / 100.0)
    }

    /// Computed as `gather` does, `(user + system) / 100`, so equal figures are equal to
    /// the last bit.
    fn cpu_seconds() -> f64 {
        let (user, system) = cpu();
        (user * 100.0 + system * 100.0).round() / 100.0
    }

    #[test]
    fn limits_read_as_go_reads_them() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max open files            1024                 1048576              files     \n\
                      Max address space         unlimited            unlimited            bytes     \n";
        assert_eq!(limit(limits, "Max open files"), Some(1024.0));
        // "unlimited" is the largest uint64, as Go's procfs reports it.
        assert_eq!(limit(limits, "Max address space"), Some(u64::MAX as f64));
        assert_eq!(limit(limits, "Max processes"), None);
    }

    #[test]
    fn process_figures_are_this_process_s() {
        // User and system time to measure (counted, not timed: a loaded machine gives
        // less), so that a sum computed wrongly shows.
        let ((user0, system0), deadline) = (
            cpu(),
            std::time::Instant::now() + std::time::Duration::from_secs(20),
        );
        let mut x = 0u64;
        while std::time::Instant::now() < deadline {
            let (user, system) = cpu();
            if user >= user0 + 0.25 && system >= system0 + 0.05 {
                break;
            }
            if user < user0 + 0.25 {
                for _ in 0..100_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
                }
            }
            if system < system0 + 0.05 {
                for _ in 0..100 {
                    let _ = std::fs::read_to_string("/proc/self/status");
                }
            }
        }
        let before = cpu_seconds();
        let gathered = gather(&Instruments::default());
        let after = cpu_seconds();
        let value = |name: &str| {
            let g = gathered.iter().find(|g| g.family.name == name).unwrap();
            match g.metrics[0].value {
                Value::Counter(v) | Value::Gauge(v) => v,
                _ => panic!("{name} is not a counter or gauge"),
            }
        };
        let cpu = value("process_cpu_seconds_total");
        assert!(
            cpu >= 0.2 && before <= cpu && cpu <= after,
            "{before} <= {cpu} <= {after}"
        );
        let rss = value("process_resident_memory_bytes");
        assert!(
            (1024.0 * 1024.0..64.0 * 1024.0 * 1024.0 * 1024.0).contains(&rss),
            "{rss}"
        );
        // The test binary started moments ago, not at boot, and not in the future.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = value("process_start_time_seconds");
        assert!(
            start <= now + 1.0 && start >= now - 600.0,
            "{start} vs now {now}"
        );
    }

    #[test]
    fn goarch_is_go_s_spelling_of_this_build_s_architecture() {
        let want = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        if matches!(std::env::consts::ARCH, "x86_64" | "aarch64") {
            assert_eq!(go_arch(), want);
        }
    }

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(OWN_FAMILIES.windows(2).all(|w| w[0].name < w[1].name));
        assert_eq!(
            own_family("go_goroutines").map(|f| f.mtype),
            Some(MetricType::Gauge)
        );
        assert!(own_family("push_time_seconds").is_none());
    }

    #[test]
    fn instruments_count_like_the_go_gateway() {
        let i = Instruments::default();
        assert!(i.gather().is_empty(), "families appear only once used");
        i.request("push", "PUT", 200);
        i.request("push", "PUT", 200);
        i.request("delete", "BREW", 202);
        for v in 1..=10 {
            i.push("PUT", f64::from(v), 100);
        }
        let g = i.gather();
        let names: Vec<&str> = g.iter().map(|f| f.family.name).collect();
        assert_eq!(
            names,
            [
                "pushgateway_http_push_duration_seconds",
                "pushgateway_http_push_size_bytes",
                "pushgateway_http_requests_total"
            ]
        );
        let Value::Summary(d) = &g[0].metrics[0].value else {
            panic!("not a summary")
        };
        assert_eq!(
            (d.count, d.sum, d.quantiles.clone()),
            (10, 55.0, vec![(0.1, 1.0), (0.5, 5.0), (0.9, 9.0)])
        );
        assert_eq!(
            g[2].metrics[1].labels.block(),
            "code=\"202\",handler=\"delete\",method=\"unknown\""
        );
        assert_eq!(g[2].metrics[0].value, Value::Counter(2.0));
    }

    #[test]
    fn gathers_process_families_on_linux() {
        let names: Vec<&str> = gather(&Instruments::default())
            .iter()
            .map(|g| g.family.name)
            .collect();
        for want in [
            "process_cpu_seconds_total",
            "process_open_fds",
            "process_resident_memory_bytes",
            "pushgateway_build_info",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
    }
}
