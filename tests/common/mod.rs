//! Test support: start the real binary on a free loopback port and talk HTTP/1.1 to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A response as a client sees it.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A running gateway, killed when dropped.
pub struct Gateway {
    child: Child,
    pub port: u16,
    log: Arc<Mutex<String>>,
    drain: Option<std::thread::JoinHandle<()>>,
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl Gateway {
    /// Starts the binary with `args` on `127.0.0.1:0`, reads the port it bound from its
    /// log, and waits until it answers HTTP. Letting the gateway pick its port
    /// avoids two tests racing for the same free port.
    pub fn start(args: &[&str]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pushgateway"));
        cmd.arg("--web.listen-address=127.0.0.1:0").args(args);
        Gateway::spawn(cmd)
    }

    /// Starts the binary in working directory `dir` (for paths relative to it).
    pub fn start_in(dir: &std::path::Path, args: &[&str]) -> Gateway {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pushgateway"));
        cmd.current_dir(dir)
            .arg("--web.listen-address=127.0.0.1:0")
            .args(args);
        Gateway::spawn(cmd)
    }

    /// Starts the binary under a shell with `ulimit -n <nofile>` in force.
    pub fn start_with_nofile(nofile: u32, args: &[&str]) -> Gateway {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(format!(
                "ulimit -n {nofile} && exec \"$0\" --web.listen-address=127.0.0.1:0 \"$@\""
            ))
            .arg(env!("CARGO_BIN_EXE_pushgateway"))
            .args(args);
        Gateway::spawn(cmd)
    }

    /// Starts `cmd` (the binary, however wrapped), learns its port from its log, and
    /// waits until it answers on 127.0.0.1.
    pub fn spawn(cmd: Command) -> Gateway {
        let mut gw = Gateway::spawn_unready(cmd);
        gw.wait_ready();
        gw
    }

    /// Starts `cmd` and learns its port from its log, without waiting for an answer (it
    /// may listen where this process cannot reach, in another network namespace).
    pub fn spawn_unready(mut cmd: Command) -> Gateway {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the pushgateway binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut lines = BufReader::new(stderr).lines();
        let log = Arc::new(Mutex::new(String::new()));
        let keep = |line: &str| {
            let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
            l.push_str(line);
            l.push('\n');
        };
        let port = loop {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                _ => {
                    let _ = child.kill();
                    panic!(
                        "gateway exited before it listened: {:?}\n{}",
                        child.wait(),
                        log.lock().unwrap_or_else(|e| e.into_inner())
                    );
                }
            };
            keep(&line);
            if let Some(addr) = line.split("listening on address=").nth(1) {
                // logfmt ends the value at the line's end, JSON at the closing quote.
                let addr = addr.split(['"', ' ']).next().unwrap_or(addr);
                match addr.rsplit(':').next().and_then(|p| p.parse().ok()) {
                    Some(port) => break port,
                    None => {
                        let _ = child.kill(); // never leave an orphan behind a failed test
                        panic!("no port in the log line {line:?}");
                    }
                }
            }
        };
        // Keep draining the log so the gateway never blocks on a full pipe.
        let sink = log.clone();
        let drain = std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut l = sink.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        Gateway {
            child,
            port,
            log,
            drain: Some(drain),
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited before it was ready: {status}");
            }
            // Any answer will do: under a route prefix, /-/ready is a 404.
            if try_request(self.port, "GET", "/-/ready", &[], b"").is_ok() {
                return;
            }
            assert!(Instant::now() < deadline, "gateway not ready in 20 s");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The peak resident set size so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }

    /// The resident set size now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmRSS:")
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        try_request(self.port, method, path, headers, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }
    pub fn get(&self, path: &str) -> Response {
        self.request("GET", path, &[], b"")
    }
    pub fn put(&self, path: &str, body: &str) -> Response {
        self.request("PUT", path, &[], body.as_bytes())
    }
    pub fn post(&self, path: &str, body: &str) -> Response {
        self.request("POST", path, &[], body.as_bytes())
    }
    pub fn delete(&self, path: &str) -> Response {
        self.request("DELETE", path, &[], b"")
    }

    /// The pushed part of `/metrics`: every family except the gateway's own
    /// `process_*` and `pushgateway_*`, with `push_time_seconds` values replaced by
    /// `<ts>` (and failure times other than 0 too) so tests can compare exact text.
    pub fn pushed(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "scrape failed: {}", r.text());
        pushed_part(&r.text())
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(self) -> std::process::ExitStatus {
        self.stop("TERM").0
    }

    /// Sends `signal` (`TERM`, `KILL`...) and waits for the exit status and the whole log.
    pub fn stop(mut self, signal: &str) -> (std::process::ExitStatus, String) {
        self.signal(signal);
        let status = self.child.wait().expect("wait for the gateway");
        if let Some(d) = self.drain.take() {
            let _ = d.join();
        }
        let log = self.log();
        (status, log)
    }

    /// The gateway's exit status if it has exited (by itself, or by a signal sent).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Sends `signal` without waiting.
    pub fn signal(&self, signal: &str) {
        send_signal(self.child.id(), signal);
    }

    /// What the gateway has logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Drops own families and masks push timestamps, keeping every other byte.
pub fn pushed_part(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let name = line
            .strip_prefix("# HELP ")
            .or_else(|| line.strip_prefix("# TYPE "))
            .unwrap_or(line);
        if name.starts_with("process_") || name.starts_with("pushgateway_") {
            continue;
        }
        if line.starts_with("push_time_seconds{")
            || (line.starts_with("push_failure_time_seconds{") && !line.ends_with("} 0"))
        {
            let cut = line.rfind(' ').expect("sample has a value");
            out.push_str(&line[..cut]);
            out.push_str(" <ts>\n");
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

pub fn try_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    if !body.is_empty() || method == "PUT" || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_response(&raw).ok_or_else(|| std::io::Error::other("malformed HTTP response"))
}

pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_str = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_str.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// A fresh directory, removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("pgw-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
    /// The names in the directory, sorted.
    pub fn names(&self) -> Vec<String> {
        names(&self.0)
    }
}

/// The names in `dir`, sorted.
pub fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The Go gateway (`prometheus-pushgateway` on PATH) persisting to `file` on a free port,
/// killed when dropped.
pub struct GoGateway {
    child: Child,
    pub port: u16,
}

impl GoGateway {
    pub fn start(file: &std::path::Path) -> GoGateway {
        let port = free_port();
        let child = Command::new(bin("prometheus-pushgateway"))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--persistence.file={}", file.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the Go gateway (make test installs prometheus-pushgateway)");
        let deadline = Instant::now() + Duration::from_secs(20);
        while try_request(port, "GET", "/-/ready", &[], b"").is_err() {
            assert!(Instant::now() < deadline, "Go gateway not ready");
            std::thread::sleep(Duration::from_millis(20));
        }
        GoGateway { child, port }
    }

    pub fn get(&self, path: &str) -> String {
        let r = try_request(self.port, "GET", path, &[], b"").expect("Go gateway answers");
        String::from_utf8_lossy(&r.body).into_owned()
    }

    pub fn put(&self, path: &str, body: &str) -> Response {
        try_request(self.port, "PUT", path, &[], body.as_bytes()).expect("Go gateway answers")
    }

    /// SIGTERM (the Go gateway writes its file then), and the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        send_signal(self.child.id(), "TERM");
        self.child.wait().expect("wait for the Go gateway")
    }
}

impl Drop for GoGateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An outside program: `$PGW_BIN_<NAME>` (upper case, `-` as `_`) if set, else `name` on
/// PATH.
pub fn find(name: &str) -> Option<std::path::PathBuf> {
    let var = format!("PGW_BIN_{}", name.to_uppercase().replace('-', "_"));
    if let Some(p) = std::env::var_os(&var) {
        return Some(p.into());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The program to run for `name`: what `find` finds, else the bare name (a test that
/// gets this far checked with `needs`).
pub fn bin(name: &str) -> std::path::PathBuf {
    find(name).unwrap_or_else(|| name.into())
}

/// A Python with `prometheus_client`: `$PGW_PYTHON`, else the first `python3` on PATH
/// that imports it (Debian's python3-prometheus-client serves only Debian's python3).
pub fn find_python() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("PGW_PYTHON") {
        return Some(p.into());
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("python3"))
        .filter(|p| p.is_file())
        .find(|p| {
            Command::new(p)
                .args(["-c", "import prometheus_client"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
}

/// Whether `test` can run: every program in `names` is there (`python3+client` stands
/// for `find_python`, `root` for running as root). If not, a bare `cargo test` skips it
/// with a line on stderr; with PGW_REQUIRE_TOOLS set (as `make test` does) it fails.
pub fn needs(test: &str, names: &[&str]) -> bool {
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| match *n {
            "python3+client" => find_python().is_none(),
            "root" => !rustix::process::geteuid().is_root(),
            n => find(n).is_none(),
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if std::env::var_os("PGW_REQUIRE_TOOLS").is_some() {
        panic!("{test} needs {what}, not found (make test-deps installs them)");
    }
    // Straight to the descriptor: the test harness captures print!/eprint!, and a skip
    // must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: needs {what}");
    false
}

/// Sends `signal` (`TERM`, `KILL`, `HUP`, `INT`...) to process `pid`.
pub fn send_signal(pid: u32, signal: &str) {
    use rustix::process::{Pid, Signal, kill_process};
    let sig = match signal {
        "TERM" => Signal::TERM,
        "KILL" => Signal::KILL,
        "HUP" => Signal::HUP,
        "INT" => Signal::INT,
        "STOP" => Signal::STOP,
        "CONT" => Signal::CONT,
        other => panic!("no such signal in the tests: {other}"),
    };
    let pid = Pid::from_raw(pid as i32).expect("a child's pid");
    let _ = kill_process(pid, sig);
}
