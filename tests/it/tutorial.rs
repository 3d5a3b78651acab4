//! The seed tutorial, end to end against the real binary:
//!
//! ```sh
//! echo 'my_metric{label1="value1", label2="value2"} 42.5' | curl --data-binary @- http://127.0.0.1:9091/metrics/job/myjob/instance/myinstance
//! echo "my_date{source=\"system\"} $(date +%s)" | curl --data-binary @- http://127.0.0.1:9091/metrics/job/cronjob/instance/myscript
//! python3 -c "...; push_to_gateway('127.0.0.1:9091', job='batchA', registry=r)"
//! curl http://127.0.0.1:9091/metrics
//! ```
//!
//! then a real Prometheus scraping the gateway with `honor_labels: true`, plus the
//! Python client's `pushadd_to_gateway` and `delete_from_gateway`.
//!
//! The outside programs (a `python3` on PATH with `prometheus_client`, or
//! `$PGW_PYTHON`; `prometheus` on PATH, or `$PGW_BIN_PROMETHEUS`) are installed by
//! `make test`, where a missing one fails; a bare `cargo test` skips these tests and
//! says so.

use crate::common;
use crate::common::{Gateway, Response};
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INSTALL_HINT: &str =
    "run `make test`, which installs python3-prometheus-client and prometheus";

/// Shared by every Python snippet: imports, `GW` (the gateway's host:port from argv),
/// and a push handler that sends exactly what prometheus_client's default handler
/// sends but also prints `STATUS <method> <code>`, so the test can see the codes.
const PY_PRELUDE: &str = r#"
import sys
from urllib.request import HTTPHandler, Request, build_opener
from prometheus_client import (CollectorRegistry, Gauge, delete_from_gateway,
                               push_to_gateway, pushadd_to_gateway)

GW = sys.argv[1]

def recording_handler(url, method, timeout, headers, data):
    def handle():
        request = Request(url, data=data)
        request.get_method = lambda: method
        for k, v in headers:
            request.add_header(k, v)
        resp = build_opener(HTTPHandler).open(request, timeout=timeout)
        print('STATUS', method, resp.code)
    return handle
"#;

// ---------------------------------------------------------------------------
// The tests.

/// The tutorial's three pushes, the exact `/metrics` text they produce, and a real
/// Prometheus scraping it with `honor_labels: true`.
#[test]
fn seed_tutorial_pushes_show_in_metrics_and_in_prometheus() {
    if !common::needs(
        "seed_tutorial_pushes_show_in_metrics_and_in_prometheus",
        &["python3+client", "prometheus"],
    ) {
        return;
    }
    let gw = Gateway::start(&[]);
    let t0 = now();

    // echo 'my_metric{label1="value1", label2="value2"} 42.5' | curl --data-binary @- .../metrics/job/myjob/instance/myinstance
    let r = curl_data_binary(
        &gw,
        "/metrics/job/myjob/instance/myinstance",
        "my_metric{label1=\"value1\", label2=\"value2\"} 42.5\n",
    );
    assert_eq!(r.status, 200, "push of my_metric: {}", r.text());

    // echo "my_date{source=\"system\"} $(date +%s)" | curl --data-binary @- .../metrics/job/cronjob/instance/myscript
    let date = now().floor();
    let r = curl_data_binary(
        &gw,
        "/metrics/job/cronjob/instance/myscript",
        &format!("my_date{{source=\"system\"}} {date}\n"),
    );
    assert_eq!(r.status, 200, "push of my_date: {}", r.text());

    // The tutorial's Python one-liner, with prometheus_client's default handler; it
    // raises (and so fails the test) on any status >= 400.
    let out = python(
        &gw,
        "r=CollectorRegistry(); g=Gauge('job_last_success_unixtime','Last time a batch job successfully finished',registry=r); g.set_to_current_time(); push_to_gateway(GW, job='batchA', registry=r)\n\
         print('VALUE', repr(r.get_sample_value('job_last_success_unixtime')))",
    );
    let success_time = python_value(&out);
    let t1 = now();

    // curl http://127.0.0.1:9091/metrics
    let raw = gw.get("/metrics");
    assert_eq!(raw.status, 200, "GET /metrics: {}", raw.text());
    let raw = raw.text();
    let m = common::pushed_part(&raw);
    assert_sorted_families(&raw);
    assert_eq!(
        family(&m, "my_metric"),
        [
            "# TYPE my_metric untyped",
            r#"my_metric{instance="myinstance",job="myjob",label1="value1",label2="value2"} 42.5"#,
        ],
        "in /metrics:\n{m}"
    );
    assert_eq!(
        family(&m, "my_date"),
        [
            "# TYPE my_date untyped".to_string(),
            format!(
                r#"my_date{{instance="myscript",job="cronjob",source="system"}} {}"#,
                go_float(date)
            ),
        ],
        "in /metrics:\n{m}"
    );
    assert_eq!(
        family(&m, "job_last_success_unixtime"),
        [
            "# HELP job_last_success_unixtime Last time a batch job successfully finished"
                .to_string(),
            "# TYPE job_last_success_unixtime gauge".to_string(),
            format!(
                r#"job_last_success_unixtime{{instance="",job="batchA"}} {}"#,
                go_float(success_time)
            ),
        ],
        "in /metrics:\n{m}"
    );
    assert_eq!(
        family(&m, "push_time_seconds"),
        [
            "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.",
            "# TYPE push_time_seconds gauge",
            r#"push_time_seconds{instance="",job="batchA"} <ts>"#,
            r#"push_time_seconds{instance="myinstance",job="myjob"} <ts>"#,
            r#"push_time_seconds{instance="myscript",job="cronjob"} <ts>"#,
        ],
        "in /metrics:\n{m}"
    );
    assert_eq!(
        family(&m, "push_failure_time_seconds"),
        [
            "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.",
            "# TYPE push_failure_time_seconds gauge",
            r#"push_failure_time_seconds{instance="",job="batchA"} 0"#,
            r#"push_failure_time_seconds{instance="myinstance",job="myjob"} 0"#,
            r#"push_failure_time_seconds{instance="myscript",job="cronjob"} 0"#,
        ],
        "in /metrics:\n{m}"
    );
    // The masked push times: taken during the pushes, in Go's float format.
    for line in family(&raw, "push_time_seconds") {
        if line.starts_with('#') {
            continue;
        }
        let value = line.rsplit(' ').next().expect("sample has a value");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|e| panic!("push time in {line:?}: {e}"));
        assert!(
            t0 - 1.0 <= v && v <= t1 + 1.0,
            "{line:?} is not between {t0} and {t1}"
        );
        assert_eq!(value, go_float(v), "Go float formatting of {line:?}");
    }

    // A real Prometheus scraping the gateway every second with honor_labels.
    let dir = TempDir::new("prometheus");
    let mut prom = Prometheus::start(&dir, gw.port);
    // The pushed job/instance win over the target's (no exported_job/exported_instance).
    let body = prom.query_until_found("my_metric");
    assert!(
        body.contains(r#""metric":{"__name__":"my_metric","instance":"myinstance","job":"myjob","label1":"value1","label2":"value2"}"#)
            && body.contains(r#","42.5"]"#)
            && !body.contains("exported_"),
        "my_metric in Prometheus: {body}"
    );
    let body = prom.query_until_found("my_date");
    assert!(
        body.contains(r#""metric":{"__name__":"my_date","instance":"myscript","job":"cronjob","source":"system"}"#),
        "my_date in Prometheus: {body}"
    );
    // Pushed with instance="", which Prometheus drops: no instance label at all.
    let body = prom.query_until_found("job_last_success_unixtime");
    assert!(
        body.contains(r#""metric":{"__name__":"job_last_success_unixtime","job":"batchA"}"#)
            && !body.contains("instance"),
        "job_last_success_unixtime in Prometheus: {body}"
    );
    let body = prom.query_until_found("push_time_seconds");
    for group in [
        r#""metric":{"__name__":"push_time_seconds","job":"batchA"}"#,
        r#""metric":{"__name__":"push_time_seconds","instance":"myinstance","job":"myjob"}"#,
        r#""metric":{"__name__":"push_time_seconds","instance":"myscript","job":"cronjob"}"#,
    ] {
        assert!(body.contains(group), "{group} in Prometheus: {body}");
    }
}

/// `pushadd_to_gateway` (POST) adds to a group and replaces only same-named metrics,
/// `push_to_gateway` (PUT) replaces the whole group, `delete_from_gateway` (DELETE)
/// removes exactly the addressed group.
#[test]
fn python_client_push_pushadd_and_delete() {
    if !common::needs("python_client_push_pushadd_and_delete", &["python3+client"]) {
        return;
    }
    let gw = Gateway::start(&[]);

    // A group that must survive everything below.
    let r = curl_data_binary(
        &gw,
        "/metrics/job/myjob/instance/myinstance",
        "my_metric{label1=\"value1\", label2=\"value2\"} 42.5\n",
    );
    assert_eq!(r.status, 200, "push of my_metric: {}", r.text());
    let my_metric = [
        "# TYPE my_metric untyped",
        r#"my_metric{instance="myinstance",job="myjob",label1="value1",label2="value2"} 42.5"#,
    ];

    let out = python(
        &gw,
        "r=CollectorRegistry(); g=Gauge('job_last_success_unixtime','Last time a batch job successfully finished',registry=r); g.set_to_current_time()\n\
         push_to_gateway(GW, job='batchA', registry=r, handler=recording_handler)\n\
         print('VALUE', repr(r.get_sample_value('job_last_success_unixtime')))",
    );
    assert_eq!(statuses(&out), ["PUT 200"], "python output: {out}");
    let last_success = [
        "# HELP job_last_success_unixtime Last time a batch job successfully finished".to_string(),
        "# TYPE job_last_success_unixtime gauge".to_string(),
        format!(
            r#"job_last_success_unixtime{{instance="",job="batchA"}} {}"#,
            go_float(python_value(&out))
        ),
    ];
    let m = gw.pushed();
    assert_eq!(family(&m, "job_last_success_unixtime"), last_success, "{m}");

    // pushadd adds a metric to the group and keeps the existing one.
    let out = python(
        &gw,
        "r=CollectorRegistry(); Gauge('job_duration_seconds','Duration of the batch job',registry=r).set(12.5)\n\
         pushadd_to_gateway(GW, job='batchA', registry=r, handler=recording_handler)",
    );
    assert_eq!(statuses(&out), ["POST 200"], "python output: {out}");
    let m = gw.pushed();
    assert_eq!(family(&m, "job_last_success_unixtime"), last_success, "{m}");
    assert_eq!(
        family(&m, "job_duration_seconds"),
        [
            "# HELP job_duration_seconds Duration of the batch job",
            "# TYPE job_duration_seconds gauge",
            r#"job_duration_seconds{instance="",job="batchA"} 12.5"#,
        ],
        "{m}"
    );

    // pushadd of a metric with the same name replaces only that metric.
    let out = python(
        &gw,
        "r=CollectorRegistry(); Gauge('job_duration_seconds','Duration of the batch job',registry=r).set(7.25)\n\
         pushadd_to_gateway(GW, job='batchA', registry=r, handler=recording_handler)",
    );
    assert_eq!(statuses(&out), ["POST 200"], "python output: {out}");
    let m = gw.pushed();
    assert_eq!(family(&m, "job_last_success_unixtime"), last_success, "{m}");
    assert_eq!(
        family(&m, "job_duration_seconds"),
        [
            "# HELP job_duration_seconds Duration of the batch job",
            "# TYPE job_duration_seconds gauge",
            r#"job_duration_seconds{instance="",job="batchA"} 7.25"#,
        ],
        "{m}"
    );

    // A second group of the same job, addressed by a grouping key.
    let out = python(
        &gw,
        "r=CollectorRegistry(); Gauge('job_duration_seconds','Duration of the batch job',registry=r).set(3)\n\
         pushadd_to_gateway(GW, job='batchA', grouping_key={'instance': 'worker1'}, registry=r, handler=recording_handler)",
    );
    assert_eq!(statuses(&out), ["POST 200"], "python output: {out}");
    let m = gw.pushed();
    assert_eq!(
        family(&m, "job_duration_seconds"),
        [
            "# HELP job_duration_seconds Duration of the batch job",
            "# TYPE job_duration_seconds gauge",
            r#"job_duration_seconds{instance="",job="batchA"} 7.25"#,
            r#"job_duration_seconds{instance="worker1",job="batchA"} 3"#,
        ],
        "{m}"
    );
    assert_sorted_families(&m);

    // delete_from_gateway(job='batchA') removes only the {job="batchA"} group.
    let out = python(
        &gw,
        "delete_from_gateway(GW, job='batchA', handler=recording_handler)",
    );
    assert_eq!(statuses(&out), ["DELETE 202"], "python output: {out}");
    let m = gw.pushed();
    assert!(
        family(&m, "job_last_success_unixtime").is_empty(),
        "deleted group still shown:\n{m}"
    );
    assert_eq!(
        family(&m, "job_duration_seconds"),
        [
            "# HELP job_duration_seconds Duration of the batch job",
            "# TYPE job_duration_seconds gauge",
            r#"job_duration_seconds{instance="worker1",job="batchA"} 3"#,
        ],
        "{m}"
    );
    assert_eq!(family(&m, "my_metric"), my_metric, "{m}");
    assert_eq!(
        family(&m, "push_time_seconds")[2..],
        [
            r#"push_time_seconds{instance="myinstance",job="myjob"} <ts>"#,
            r#"push_time_seconds{instance="worker1",job="batchA"} <ts>"#,
        ],
        "{m}"
    );

    // ...and with the grouping key, the other one; then nothing of batchA is left.
    let out = python(
        &gw,
        "delete_from_gateway(GW, job='batchA', grouping_key={'instance': 'worker1'}, handler=recording_handler)",
    );
    assert_eq!(statuses(&out), ["DELETE 202"], "python output: {out}");
    let m = gw.pushed();
    assert!(!m.contains("batchA"), "deleted groups still shown:\n{m}");
    assert!(
        family(&m, "job_duration_seconds").is_empty(),
        "deleted family still shown:\n{m}"
    );
    assert_eq!(family(&m, "my_metric"), my_metric, "{m}");
    assert_eq!(
        family(&m, "push_time_seconds")[2..],
        [r#"push_time_seconds{instance="myinstance",job="myjob"} <ts>"#],
        "{m}"
    );
}

// ---------------------------------------------------------------------------
// Pushing and reading the exposition.

/// What `curl --data-binary @- URL` sends: a POST with curl's default form type.
fn curl_data_binary(gw: &Gateway, path: &str, body: &str) -> Response {
    gw.request(
        "POST",
        path,
        &[("Content-Type", "application/x-www-form-urlencoded")],
        body.as_bytes(),
    )
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// The lines of family `name` (its `# HELP`/`# TYPE` comments and samples, whose
/// names must equal `name` exactly), asserting that they are contiguous.
fn family<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    let mut found: Vec<(usize, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let rest = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if rest
            .strip_prefix(name)
            .is_some_and(|r| r.starts_with(['{', ' ']))
        {
            found.push((i, line));
        }
    }
    if let (Some(first), Some(last)) = (found.first(), found.last()) {
        assert_eq!(
            last.0 - first.0 + 1,
            found.len(),
            "family {name} is not contiguous in:\n{text}"
        );
    }
    found.into_iter().map(|(_, line)| line).collect()
}

/// Families come sorted by name.
fn assert_sorted_families(text: &str) {
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "families not sorted by name in:\n{text}");
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which the text format uses for values:
/// the shortest digits that round-trip, in exponent form (at least two exponent
/// digits) when the decimal exponent is < -4 or >= 6, e.g. `1.764053912e+09`, `42.5`.
fn go_float(v: f64) -> String {
    // Rust's `{:e}` also prints the shortest round-trip digits: "1.764053912e9".
    let e = format!("{v:e}");
    let (mantissa, exp) = e.split_once('e').expect("exponent form has an e");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

// ---------------------------------------------------------------------------
// Python.

/// The Python with `prometheus_client` (`needs` checked that there is one).
fn python3() -> std::path::PathBuf {
    static FOUND: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    FOUND
        .get_or_init(|| common::find_python().unwrap_or_else(|| "python3".into()))
        .clone()
}

/// Runs `script` (after [`PY_PRELUDE`]) with that Python, asserts that it
/// succeeded and returns what it printed.
fn python(gw: &Gateway, script: &str) -> String {
    let out = Command::new(python3())
        .arg("-c")
        .arg(format!("{PY_PRELUDE}\n{script}\n"))
        .arg(format!("127.0.0.1:{}", gw.port))
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3: {e}; {INSTALL_HINT}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "python failed ({}):\n{script}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The `STATUS <method> <code>` lines the recording handler printed.
fn statuses(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.strip_prefix("STATUS "))
        .collect()
}

/// The float a snippet printed as `VALUE <repr>` (Python's repr round-trips).
fn python_value(out: &str) -> f64 {
    let v = out
        .lines()
        .find_map(|l| l.strip_prefix("VALUE "))
        .unwrap_or_else(|| panic!("no VALUE line in python output: {out}"));
    v.parse()
        .unwrap_or_else(|e| panic!("python VALUE {v:?}: {e}"))
}

// ---------------------------------------------------------------------------
// Prometheus.

/// A Prometheus server scraping one gateway; killed when dropped.
struct Prometheus {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &TempDir, gateway_port: u16) -> Prometheus {
        let config = dir.path.join("prometheus.yml");
        fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: pushgateway\n    honor_labels: true\n    \
                 static_configs:\n      - targets: ['127.0.0.1:{gateway_port}']\n"
            ),
        )
        .expect("write prometheus.yml");
        let log = dir.path.join("prometheus.log");
        let log_file = fs::File::create(&log).expect("create prometheus.log");
        let port = common::free_port();
        let child = Command::new(common::bin("prometheus"))
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("clone prometheus.log handle"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run prometheus: {e}; {INSTALL_HINT}"));
        let mut prom = Prometheus { child, port, log };
        prom.wait_until("to be ready", |p| {
            p.get("/-/ready")
                .ok_or_else(|| "/-/ready is not 200 yet".to_string())
        });
        prom
    }

    /// The body of a 200 answer to `GET path`, if there is one.
    fn get(&self, path: &str) -> Option<String> {
        let r = common::try_request(self.port, "GET", path, &[], b"").ok()?;
        (r.status == 200).then(|| r.text())
    }

    /// Polls the instant query `query` (URL-safe) until its result is non-empty, and
    /// returns the JSON answer.
    fn query_until_found(&mut self, query: &str) -> String {
        let path = format!("/api/v1/query?query={query}");
        self.wait_until(&format!("for a {query} series"), |p| {
            let body = p.get(&path).unwrap_or_default();
            if body.contains(r#""status":"success""#) && body.contains(r#""result":[{"#) {
                Ok(body)
            } else {
                Err(format!("last answer: {body:?}"))
            }
        })
    }

    /// Retries `attempt` every 200 ms for up to 30 s; on timeout fails with the last
    /// attempt's error and Prometheus's own view of things.
    fn wait_until<T>(
        &mut self,
        what: &str,
        mut attempt: impl FnMut(&Prometheus) -> Result<T, String>,
    ) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let last = match attempt(self) {
                Ok(v) => return v,
                Err(e) => e,
            };
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "prometheus exited ({status}) waiting {what}; log:\n{}",
                    self.log_tail()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "prometheus: gave up after 30 s waiting {what} ({last})\ntargets: {}\nlog:\n{}",
                    self.get("/api/v1/targets").unwrap_or_default(),
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .subsec_nanos();
        let path = std::env::temp_dir().join(format!(
            "pushgateway-tutorial-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
