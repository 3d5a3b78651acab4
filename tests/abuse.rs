//! The HTTP edge against abuse, on loopback, with the real binary: HTTP/1.0 and
//! pipelining, framing conflicts (compared with the Go gateway's answers, live), nginx in
//! front, oversized and compressed bodies, slow and idle clients, connection floods, a
//! low descriptor limit, SIGTERM under load. Each case checks the answer, the memory
//! bound and that the store is unchanged. `make abuse` runs more SIGTERM rounds
//! (PGW_ABUSE_ROUNDS) and prints the figures.

mod common;

use common::{Gateway, Response, free_port, try_request};
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// The load-heavy cases run one at a time: their bounds are about the gateway, not about
/// the machine's two cores being shared with another flood.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Memory a gateway may reach while refusing anything here.
const RSS_BOUND_KIB: u64 = 64 * 1024;

/// Sends `bytes`, optionally half-closes, and reads until the server closes or `wait`
/// passes without a byte.
fn raw(port: u16, bytes: &[u8], shut: bool, wait: Duration) -> (Vec<u8>, bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(wait)).expect("timeout");
    let _ = s.write_all(bytes);
    if shut {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut out = Vec::new();
    let mut buf = [0u8; 65536];
    let closed = loop {
        match s.read(&mut buf) {
            Ok(0) => break true,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
            Err(_) => break false,
        }
    };
    (out, closed)
}

/// Splits a byte stream into the responses it holds (1xx included), in order.
fn responses(mut raw: &[u8]) -> Vec<(String, Response)> {
    let mut out = Vec::new();
    while let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let status_line = head.lines().next().unwrap_or("").to_string();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let rest = &raw[end + 4..];
        let (body, used) = if (100..200).contains(&status) {
            (Vec::new(), 0)
        } else if let Some(n) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
            (rest[..n.min(rest.len())].to_vec(), n.min(rest.len()))
        } else if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            let mut p = 0;
            while let Some(eol) = rest[p..].windows(2).position(|w| w == b"\r\n") {
                let size =
                    usize::from_str_radix(String::from_utf8_lossy(&rest[p..p + eol]).trim(), 16)
                        .unwrap_or(0);
                p += eol + 2;
                if size == 0 {
                    p += 2;
                    break;
                }
                body.extend_from_slice(&rest[p..(p + size).min(rest.len())]);
                p = (p + size + 2).min(rest.len());
            }
            (body, p.min(rest.len()))
        } else {
            (rest.to_vec(), rest.len())
        };
        out.push((
            status_line,
            Response {
                status,
                headers,
                body,
            },
        ));
        raw = &rest[used..];
    }
    out
}

fn statuses(raw: &[u8]) -> Vec<u16> {
    responses(raw).iter().map(|(_, r)| r.status).collect()
}

/// Lets this test process hold a few thousand sockets.
fn raise_own_nofile() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: l.maximum,
            maximum: l.maximum,
        },
    );
}

#[test]
fn http_1_0_keep_alive_pipelining_and_generous_heads() {
    let gw = Gateway::start(&[]);
    let wait = Duration::from_secs(5);
    // HTTP/1.0 without keep-alive: one answer in HTTP/1.0, then the server closes.
    let (out, closed) = raw(gw.port, b"GET /-/healthy HTTP/1.0\r\n\r\n", false, wait);
    let r = responses(&out);
    assert_eq!(r.len(), 1, "{}", String::from_utf8_lossy(&out));
    assert!(r[0].0.starts_with("HTTP/1.0 200"), "{}", r[0].0);
    assert_eq!(r[0].1.body, b"OK");
    assert!(
        closed,
        "an HTTP/1.0 connection without keep-alive is closed"
    );
    // HTTP/1.0 with keep-alive: the connection serves a second request.
    let (out, _) = raw(
        gw.port,
        b"GET /-/healthy HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /-/ready HTTP/1.0\r\n\r\n",
        false,
        wait,
    );
    assert_eq!(
        statuses(&out),
        [200, 200],
        "{}",
        String::from_utf8_lossy(&out)
    );
    // Pipelined: a push, a scrape that sees it, a close; answered in order.
    let push =
        "PUT /metrics/job/pipelined HTTP/1.1\r\nHost: x\r\nContent-Length: 12\r\n\r\npipelined 7\n";
    let req = format!(
        "{push}GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    let (out, closed) = raw(gw.port, req.as_bytes(), false, wait);
    let r = responses(&out);
    assert_eq!(
        r.iter().map(|(_, r)| r.status).collect::<Vec<_>>(),
        [200, 200, 200]
    );
    assert!(
        r[1].1
            .text()
            .contains("pipelined{instance=\"\",job=\"pipelined\"} 7\n")
    );
    assert_eq!(r[2].1.body, b"OK");
    assert!(closed);
    // Expect: 100-continue is answered before the body is sent.
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    s.write_all(b"PUT /metrics/job/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 100 Continue\r\n"));
    s.write_all(b"expect 1\n").unwrap();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    assert_eq!(statuses(&rest), [200]);
    // Header values that are not UTF-8, 300 headers, a 600 KiB head: all fine, as in Go.
    let (out, _) = raw(
        gw.port,
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-A: \xff\xfe\r\nConnection: close\r\n\r\n",
        false,
        wait,
    );
    assert_eq!(statuses(&out), [200]);
    let many: String = (0..300).map(|i| format!("X-{i}: v\r\n")).collect();
    let req = format!("GET /-/healthy HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n");
    assert_eq!(
        statuses(&raw(gw.port, req.as_bytes(), false, wait).0),
        [200]
    );
    let big = format!(
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-A: {}\r\nConnection: close\r\n\r\n",
        "a".repeat(600 << 10)
    );
    assert_eq!(
        statuses(&raw(gw.port, big.as_bytes(), false, wait).0),
        [200]
    );
    // Beyond 1 MiB (plus Go's 4 KiB of slack): 431, and the connection is closed.
    let huge = format!(
        "GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-A: {}\r\n\r\n",
        "a".repeat((1 << 20) + 8192)
    );
    let (out, closed) = raw(gw.port, huge.as_bytes(), false, wait);
    assert_eq!(statuses(&out), [431]);
    assert!(closed);
    // HEAD: 1.5.1's router answers 405 (with Allow) for /metrics, and no body comes.
    let (out, _) = raw(
        gw.port,
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
        wait,
    );
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 405 "), "{text}");
    assert!(text.to_ascii_lowercase().contains("\r\nallow: "), "{text}");
    assert!(text.ends_with("\r\n\r\n"), "{text}");
    // A query that is not ASCII, copied into a redirect's Location as Go copies it.
    let (out, _) = raw(
        gw.port,
        "GET //metrics?caf\u{e9}=1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".as_bytes(),
        false,
        wait,
    );
    let r = responses(&out);
    assert_eq!(r[0].1.status, 301, "{}", String::from_utf8_lossy(&out));
    assert_eq!(r[0].1.header("location"), Some("/metrics?caf\u{e9}=1"));
    assert_eq!(gw.get("/-/healthy").status, 200);
    // A small body sent to a route that takes none is read and dropped: the connection
    // serves the pipelined request after it.
    let (out, _) = raw(
        gw.port,
        b"DELETE /metrics/job/none HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nabcdGET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        false,
        wait,
    );
    assert_eq!(
        statuses(&out),
        [202, 200],
        "{}",
        String::from_utf8_lossy(&out)
    );
    // A grouping key with a 16 KiB label value (over async-h1's old 8 KiB head bound).
    let long = "v".repeat(16 << 10);
    let r = gw.put(&format!("/metrics/job/long/l/{long}"), "long_label 1\n");
    assert_eq!(r.status, 200);
    assert!(gw.pushed().contains(&format!(
        "long_label{{instance=\"\",job=\"long\",l=\"{long}\"}} 1\n"
    )));
}

/// One framing case: the request, our status, the Go gateway's (1.5.1) status.
struct Case {
    name: &'static str,
    req: Vec<u8>,
    ours: u16,
    go: u16,
}

fn framing_cases() -> Vec<Case> {
    let push = |job: &str, headers: &str, body: &str| -> Vec<u8> {
        format!(
            "PUT /metrics/job/{job} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n{body}"
        )
        .into_bytes()
    };
    let chunked = "a\r\nframing 1\n\r\n0\r\n\r\n";
    vec![
        // Where hyper and Go agree.
        Case { name: "te_chunked_and_cl", req: push("f1", "Content-Length: 10\r\nTransfer-Encoding: chunked\r\n", chunked), ours: 200, go: 200 },
        Case { name: "two_equal_cl", req: push("f2", "Content-Length: 10\r\nContent-Length: 10\r\n", "framing 1\n"), ours: 200, go: 200 },
        Case { name: "two_different_cl", req: push("x1", "Content-Length: 10\r\nContent-Length: 11\r\n", "framing 1\n"), ours: 400, go: 400 },
        Case { name: "cl_list", req: push("x2", "Content-Length: 10, 10\r\n", "framing 1\n"), ours: 400, go: 400 },
        Case { name: "cl_plus", req: push("x3", "Content-Length: +10\r\n", "framing 1\n"), ours: 400, go: 400 },
        Case { name: "cl_negative", req: push("x4", "Content-Length: -10\r\n", "framing 1\n"), ours: 400, go: 400 },
        Case { name: "cl_hex", req: push("x5", "Content-Length: 0xa\r\n", "framing 1\n"), ours: 400, go: 400 },
        Case { name: "te_chunked_twice", req: push("x6", "Transfer-Encoding: chunked, chunked\r\n", chunked), ours: 501, go: 501 },
        Case { name: "te_two_lines", req: push("x7", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", chunked), ours: 501, go: 501 },
        Case { name: "te_gzip_chunked", req: push("x8", "Transfer-Encoding: gzip, chunked\r\n", chunked), ours: 501, go: 501 },
        Case { name: "no_host", req: b"GET /-/healthy HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(), ours: 400, go: 400 },
        Case { name: "two_hosts", req: b"GET /-/healthy HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n".to_vec(), ours: 400, go: 400 },
        Case { name: "space_before_colon", req: b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-A : v\r\nConnection: close\r\n\r\n".to_vec(), ours: 400, go: 400 },
        Case { name: "header_without_colon", req: b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n".to_vec(), ours: 400, go: 400 },
        Case { name: "http_0_9", req: b"GET /-/healthy\r\n\r\n".to_vec(), ours: 400, go: 400 },
        Case { name: "expect_unknown", req: push("x9", "Content-Length: 10\r\nExpect: foo\r\n", "framing 1\n"), ours: 417, go: 417 },
        // Refused by both, with another code: hyper's parser answers 400 itself.
        Case { name: "te_gzip", req: push("y1", "Transfer-Encoding: gzip\r\n", ""), ours: 400, go: 501 },
        Case { name: "te_identity_and_cl", req: push("y2", "Transfer-Encoding: identity\r\nContent-Length: 10\r\n", "framing 1\n"), ours: 400, go: 501 },
        Case { name: "version_2_7", req: b"GET /-/healthy HTTP/2.7\r\nHost: x\r\n\r\n".to_vec(), ours: 400, go: 505 },
        // Accepted by Go, refused by us: each is a body or head a proxy may frame otherwise.
        Case { name: "te_in_http_1_0", req: b"PUT /metrics/job/z1 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\na\r\nframing 1\n\r\n0\r\n\r\n".to_vec(), ours: 400, go: 200 },
        Case { name: "bad_chunk_size", req: push("z2", "Transfer-Encoding: chunked\r\n", "zz\r\nframing 1\n\r\n0\r\n\r\n"), ours: 400, go: 200 },
        Case { name: "obsolete_line_folding", req: b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\nConnection: close\r\n\r\n".to_vec(), ours: 400, go: 200 },
    ]
}

#[test]
fn framing_conflicts_are_refused_as_the_go_gateway_refuses_them() {
    if !common::needs(
        "framing_conflicts_are_refused_as_the_go_gateway_refuses_them",
        &["prometheus-pushgateway"],
    ) {
        return;
    }
    let gw = Gateway::start(&[]);
    // An empty file name: the Go gateway keeps its store in memory only.
    let go = common::GoGateway::start(std::path::Path::new(""));
    let wait = Duration::from_secs(3);
    let mut report = Vec::new();
    for c in framing_cases() {
        let before = gw.pushed();
        let (ours, _) = raw(gw.port, &c.req, false, wait);
        let (theirs, _) = raw(go.port, &c.req, false, wait);
        let (ours, theirs) = (statuses(&ours), statuses(&theirs));
        report.push(format!("{:24} ours {:?} go {:?}", c.name, ours, theirs));
        assert_eq!(ours.first(), Some(&c.ours), "{}: ours", c.name);
        assert_eq!(
            theirs.first(),
            Some(&c.go),
            "{}: Go's answer changed",
            c.name
        );
        if c.ours != 200 {
            assert_eq!(
                gw.pushed(),
                before,
                "{}: a refusal changed the store",
                c.name
            );
        }
    }
    // The two accepted pushes are stored whole.
    let after = gw.pushed();
    assert!(
        after.contains("framing{instance=\"\",job=\"f1\"} 1\n"),
        "{after}"
    );
    assert!(
        after.contains("framing{instance=\"\",job=\"f2\"} 1\n"),
        "{after}"
    );
    println!("{}", report.join("\n"));
}

#[test]
fn nginx_with_a_default_proxy_pass_in_front() {
    if !common::needs("nginx_with_a_default_proxy_pass_in_front", &["nginx"]) {
        return;
    }
    if !common::needs("nginx_with_a_default_proxy_pass_in_front", &["gzip"]) {
        return;
    }
    let nginx = common::bin("nginx");
    let gw = Gateway::start(&[]);
    let dir = std::env::temp_dir().join(format!("pgw-nginx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let d = dir.display();
    // A plain proxy_pass: nginx talks HTTP/1.0 to the upstream, without keep-alive.
    let conf = format!(
        "daemon off; master_process off; worker_processes 1; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {d}/b; proxy_temp_path {d}/p; fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n\
           server {{ listen 127.0.0.1:{port}; location / {{ proxy_pass http://127.0.0.1:{}; }} }} }}\n",
        gw.port
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut child = Command::new(nginx)
        .args(["-p", &d.to_string(), "-e", &format!("{d}/error.log"), "-c"])
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nginx not listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    let via = |method: &str, path: &str, body: &[u8]| {
        try_request(port, method, path, &[], body).expect("through nginx")
    };
    let r = via(
        "PUT",
        "/metrics/job/proxied/instance/a",
        b"through_nginx 3\n",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = via("GET", "/metrics", b"");
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .contains("through_nginx{instance=\"a\",job=\"proxied\"} 3\n")
    );
    let r = via("DELETE", "/metrics/job/proxied/instance/a", b"");
    assert_eq!(r.status, 202);
    assert!(!gw.pushed().contains("through_nginx"));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(common::bin("gzip"))
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap().stdout;
    writer.join().unwrap().unwrap();
    out
}

#[test]
fn oversized_and_compressed_bodies_are_refused_within_the_memory_bound() {
    if !common::needs(
        "oversized_and_compressed_bodies_are_refused_within_the_memory_bound",
        &["gzip"],
    ) {
        return;
    }
    let _one_at_a_time = heavy();
    let gw = Gateway::start(&[]);
    assert_eq!(gw.put("/metrics/job/keep", "kept 1\n").status, 200);
    let before = gw.pushed();
    let wait = Duration::from_secs(10);
    // A 1 GiB Content-Length: 413 before any of it is read.
    let (out, _) = raw(
        gw.port,
        b"PUT /metrics/job/big HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\na 1\n",
        false,
        wait,
    );
    let r = responses(&out);
    assert_eq!(r[0].1.status, 413);
    assert!(
        r[0].1.text().contains("(--push.max-body-bytes)"),
        "{}",
        r[0].1.text()
    );
    let peak = |what: &str| {
        let kib = gw.peak_rss_kib();
        println!("peak RSS after {what}: {kib} KiB");
        assert!(kib < RSS_BOUND_KIB, "{what}: peak RSS {kib} KiB");
    };
    peak("a 1 GiB Content-Length");
    // The same to a path that takes no body: its answer, the body never read.
    let (out, _) = raw(
        gw.port,
        b"POST /no/such/path HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\na 1\n",
        false,
        wait,
    );
    assert_eq!(statuses(&out), [404]);
    // 1 GiB sent chunked, without a length: read up to the bound, then 413.
    let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let mut w = s.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        let _ = w.write_all(
            b"PUT /metrics/job/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let chunk = format!("10000\r\n{}\r\n", "a 1\n".repeat(16384));
        let mut sent = 0usize;
        while sent < 1 << 30 {
            if w.write_all(chunk.as_bytes()).is_err() {
                break;
            }
            sent += 65536;
        }
        sent
    });
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let sent = sender.join().unwrap();
    assert_eq!(statuses(&out), [413], "{}", String::from_utf8_lossy(&out));
    assert!(sent < 1 << 30, "the server stopped reading before 1 GiB");
    peak("1 GiB sent chunked");
    // Two million duplicate series in 7.8 KB of gzip: one short 400.
    let bomb = gzip("a 1\n".repeat(2_000_000).as_bytes());
    let r = gw.request(
        "PUT",
        "/metrics/job/dup",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 1024, "{} bytes", r.body.len());
    assert!(
        r.text()
            .contains("too many series in one push: more than 100000 (--push.max-series)"),
        "{}",
        r.text()
    );
    peak("two million duplicate series");
    // Under the series bound, 50,000 duplicates: one short 400 listing 20 of the errors;
    // the failure time is recorded (as the Go gateway does), nothing else changes.
    let dups = gzip("a 1\n".repeat(50_000).as_bytes());
    let r = gw.request(
        "PUT",
        "/metrics/job/keep",
        &[("Content-Encoding", "gzip")],
        &dups,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.len() < 4096, "{} bytes", r.body.len());
    assert_eq!(r.text().matches("\n* ").count(), 21, "{}", r.text());
    assert!(
        r.text().contains("and 49979 more (--push.max-error-lines)"),
        "{}",
        r.text()
    );
    peak("50,000 duplicate series");
    let after = gw.pushed();
    assert_eq!(
        after,
        before.replace(
            "push_failure_time_seconds{instance=\"\",job=\"keep\"} 0\n",
            "push_failure_time_seconds{instance=\"\",job=\"keep\"} <ts>\n"
        )
    );
    // A gzip bomb past the decompressed bound (32 MiB): 413. On a fresh gateway, so that
    // its peak is its own and not the malloc arenas the cases above left behind.
    drop(gw);
    let gw = Gateway::start(&[]);
    let zeros = gzip(&vec![b'\n'; 100 << 20]);
    let r = gw.request(
        "PUT",
        "/metrics/job/zeros",
        &[("Content-Encoding", "gzip")],
        &zeros,
    );
    assert_eq!(r.status, 413);
    assert_eq!(gw.pushed(), "");
    let kib = gw.peak_rss_kib();
    println!("peak RSS after a gzip bomb of 100 MiB: {kib} KiB");
    assert!(kib < RSS_BOUND_KIB, "gzip bomb: peak RSS {kib} KiB");
}

#[test]
fn short_slow_and_idle_clients_are_cut_off_and_change_nothing() {
    let gw = Gateway::start(&[
        "--web.read-header-timeout=1s",
        "--web.read-body-timeout=1s",
        // Longer than the others, so that each close below is told apart by its time.
        "--web.idle-timeout=4s",
    ]);
    let before = gw.pushed();
    let wait = Duration::from_secs(10);
    // A body shorter than its Content-Length, then a half-close: 400.
    let (out, _) = raw(
        gw.port,
        b"PUT /metrics/job/short HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort 1\n",
        true,
        wait,
    );
    let r = responses(&out);
    assert_eq!(r[0].1.status, 400, "{}", String::from_utf8_lossy(&out));
    assert!(r[0].1.text().contains("request body incomplete"));
    // A body that stops coming: 408 once the body timeout passes.
    let started = Instant::now();
    let (out, closed) = raw(
        gw.port,
        b"PUT /metrics/job/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nslow 1\n",
        false,
        wait,
    );
    assert_eq!(statuses(&out), [408]);
    assert!(closed && started.elapsed() < wait);
    // A head sent in one write that stops halfway: closed without an answer once the
    // head timeout passes (well before the idle timeout would).
    let started = Instant::now();
    let (out, closed) = raw(
        gw.port,
        b"PUT /metrics/job/slow HTTP/1.1\r\nHost:",
        false,
        wait,
    );
    assert!(out.is_empty() && closed);
    assert!(
        started.elapsed() < Duration::from_millis(3500),
        "{:?}",
        started.elapsed()
    );
    // An idle keep-alive connection: closed after its answer and the idle timeout.
    let started = Instant::now();
    let (out, closed) = raw(
        gw.port,
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n",
        false,
        wait,
    );
    assert_eq!(statuses(&out), [200]);
    assert!(closed);
    // (Deadlines are kept to the millisecond: a hair under 4 s is still the idle timeout,
    // not the 1 s ones.)
    assert!(
        started.elapsed() >= Duration::from_millis(3900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gw.pushed(), before);
}

#[test]
fn the_body_budget_counts_bytes_that_arrive_not_bytes_announced() {
    let gw = Gateway::start(&["--push.max-body-bytes-in-flight=32KB"]);
    // A client announces 30,000 bytes and sends none: it holds none of the budget.
    let mut idle = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
    idle.write_all(
        b"PUT /metrics/job/announced HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n",
    )
    .unwrap();
    let body: String = (0..500)
        .map(|i| format!("budget{{i=\"{i}\"}} 1\n"))
        .collect();
    assert!(body.len() > 8000 && body.len() < 16000);
    let r = gw.put("/metrics/job/fits", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    // A body larger than the whole budget: 503, and nothing changes.
    let before = gw.pushed();
    let big: String = (0..3000)
        .map(|i| format!("budget{{i=\"{i}\"}} 1\n"))
        .collect();
    let r = gw.put("/metrics/job/too_big", &big);
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(
        r.text().contains("(--push.max-body-bytes-in-flight)"),
        "{}",
        r.text()
    );
    assert_eq!(gw.pushed(), before);
    drop(idle);
}

#[test]
fn beyond_the_connection_cap_busy_connections_keep_theirs_and_newcomers_get_503() {
    let gw = Gateway::start(&["--web.max-connections=2"]);
    // Two requests mid-body: their "100 Continue" says the gateway is reading their
    // bodies, so both connections are answering a request.
    let slow: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", gw.port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            s.write_all(b"PUT /metrics/job/capped HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nExpect: 100-continue\r\n\r\n").unwrap();
            let mut buf = [0u8; 64];
            let n = s.read(&mut buf).unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 100 Continue\r\n"));
            s.write_all(b"cap").unwrap();
            s
        })
        .collect();
    let refused = try_request(gw.port, "GET", "/-/healthy", &[], b"").unwrap();
    assert_eq!(refused.status, 503);
    assert!(
        refused
            .text()
            .contains("too many open connections (--web.max-connections=2)")
    );
    // The busy ones finish their pushes.
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"ped 1\n").unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).unwrap();
        assert!(
            buf[..n].starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&buf[..n])
        );
    }
    assert!(
        gw.pushed()
            .contains("capped{instance=\"\",job=\"capped\"} 1\n")
    );
}

/// A client that asks for a large scrape and never reads it.
fn stalled_reader(port: u16) -> TcpStream {
    use rustix::net::sockopt;
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // A tiny receive window, so the server's buffers fill quickly.
    sockopt::set_socket_recv_buffer_size(&s, 4096).unwrap();
    let mut w = &s;
    w.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s
}

/// Whether the gateway's end of the connection from local port `client` to `server` is
/// still open (ESTABLISHED in /proc/net/tcp; a socket the gateway closed moves on to
/// FIN_WAIT, even while the client has not read what is in flight).
fn server_side_open(server: u16, client: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let port = |a: &str| {
            a.rsplit(':')
                .next()
                .and_then(|p| u16::from_str_radix(p, 16).ok())
        };
        f.len() > 3 && port(f[1]) == Some(server) && port(f[2]) == Some(client) && f[3] == "01"
    })
}

/// Waits until the gateway's end of that connection is closed; false after `wait`.
fn server_closes(server: u16, client: &TcpStream, wait: Duration) -> bool {
    let port = client.local_addr().unwrap().port();
    let deadline = Instant::now() + wait;
    while server_side_open(server, port) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn a_client_that_never_reads_its_answer_is_cut_off_and_makes_room() {
    let _one_at_a_time = heavy();
    let gw = Gateway::start(&["--web.max-connections=1", "--web.write-timeout=3s"]);
    // About 9 MB of scrape: more than the socket buffers and hyper's queue hold.
    let pad = "p".repeat(40);
    for g in 0..1 {
        let body: String = (0..90_000)
            .map(|i| format!("stall_metric{{pad=\"{pad}\",i=\"{i}\"}} {i}\n"))
            .collect();
        assert_eq!(gw.put(&format!("/metrics/job/s{g}"), &body).status, 200);
    }
    let stalled = stalled_reader(gw.port);
    let port = stalled.local_addr().unwrap().port();
    assert!(server_side_open(gw.port, port));
    // The cap is one connection, held by a client that takes nothing of its answer: once
    // it has stalled for a second, a newcomer makes it go and is served.
    std::thread::sleep(Duration::from_millis(1500));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = try_request(gw.port, "GET", "/-/healthy", &[], b"").unwrap();
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(
            Instant::now() < deadline,
            "the stalled reader was never evicted"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server_closes(gw.port, &stalled, Duration::from_secs(5)),
        "the stalled reader's connection is still open"
    );
    drop(stalled);
    // Without a newcomer, the write timeout (3 s) closes it, and not before.
    let stalled = stalled_reader(gw.port);
    let started = Instant::now();
    assert!(server_side_open(
        gw.port,
        stalled.local_addr().unwrap().port()
    ));
    assert!(
        server_closes(gw.port, &stalled, Duration::from_secs(15)),
        "never closed"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(2900),
        "{:?}",
        started.elapsed()
    );
    drop(stalled);
}

/// 1,000 idle connections and 200 that send a head a byte at a time, while a client
/// pushes and scrapes: every answer comes, none slower than 1 s.
fn flood(gw: &Gateway, label: &str) {
    raise_own_nofile();
    let idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", gw.port)).ok())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let port = gw.port;
    let slowloris = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut conns: Vec<TcpStream> = (0..200)
                .filter_map(|_| TcpStream::connect(("127.0.0.1", port)).ok())
                .collect();
            let head = b"PUT /metrics/job/loris HTTP/1.1\r\nHost: x\r\nX-Slow: ";
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let byte = [head.get(i).copied().unwrap_or(b'a')];
                // Evicted or timed out: open another, as an attacker would.
                for c in conns.iter_mut() {
                    if c.write_all(&byte).is_err()
                        && let Ok(n) = TcpStream::connect(("127.0.0.1", port))
                    {
                        *c = n;
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            conns.len()
        })
    };
    let started = Instant::now();
    let (mut worst, mut count) = (Duration::ZERO, 0);
    while started.elapsed() < Duration::from_secs(4) {
        for (method, path, body) in [
            ("PUT", "/metrics/job/flooded", &b"flooded 1\n"[..]),
            ("GET", "/metrics", &b""[..]),
        ] {
            let t = Instant::now();
            let r = try_request(port, method, path, &[], body)
                .unwrap_or_else(|e| panic!("{label}: {method} {path}: {e}"));
            assert_eq!(r.status, 200, "{label}: {method} {path}: {}", r.text());
            worst = worst.max(t.elapsed());
            count += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let lorises = slowloris.join().unwrap();
    println!(
        "{label}: {} idle + {lorises} slowloris connections opened; {count} requests answered, slowest {:?}; RSS {} KiB",
        idle.len(),
        worst,
        gw.rss_kib()
    );
    assert!(
        worst < Duration::from_secs(1),
        "{label}: a request took {worst:?}"
    );
    drop(idle);
}

#[test]
fn idle_and_slowloris_floods_do_not_starve_clients() {
    let _one_at_a_time = heavy();
    let gw = Gateway::start(&[]);
    flood(&gw, "default limits");
}

#[test]
fn with_256_descriptors_the_daemon_keeps_answering_and_persisting() {
    let _one_at_a_time = heavy();
    let dir = std::env::temp_dir().join(format!("pgw-nofile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pushgateway.data");
    let gw = Gateway::start_with_nofile(
        256,
        &[
            &format!("--persistence.file={}", file.display()),
            "--persistence.interval=200ms",
        ],
    );
    flood(&gw, "ulimit -n 256");
    assert!(
        gw.log().contains("caps open connections at 192"),
        "{}",
        gw.log()
    );
    let (status, log) = gw.stop("TERM");
    assert!(status.success());
    assert!(
        !log.contains("too many open files") && !log.contains("could not write"),
        "{log}"
    );
    let gw = Gateway::start(&[&format!("--persistence.file={}", file.display())]);
    assert!(
        gw.pushed()
            .contains("flooded{instance=\"\",job=\"flooded\"} 1\n")
    );
    drop(gw);
    let _ = std::fs::remove_dir_all(&dir);
}

/// An HTTP/1.1 client that keeps its connection open.
struct KeepAlive {
    s: TcpStream,
    buf: Vec<u8>,
}

impl KeepAlive {
    fn connect(port: u16) -> std::io::Result<KeepAlive> {
        let s = TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(KeepAlive { s, buf: Vec::new() })
    }

    /// PUTs `body`; the status, or an error once the connection is gone.
    fn put(&mut self, path: &str, body: &str) -> std::io::Result<u16> {
        let req = format!(
            "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        self.s.write_all(req.as_bytes())?;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_string())
                    })
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                if self.buf.len() >= end + 4 + len {
                    self.buf.drain(..end + 4 + len);
                    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok());
                    return status.ok_or_else(|| std::io::Error::other("bad status line"));
                }
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk)? {
                0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

#[test]
fn sigterm_under_keep_alive_pushes_loses_no_acknowledged_push() {
    let _one_at_a_time = heavy();
    let rounds: usize = std::env::var("PGW_ABUSE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("pgw-drain-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pushgateway.data");
    let arg = format!("--persistence.file={}", file.display());
    let mut x = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut report = Vec::new();
    let mut all_acked: HashSet<String> = HashSet::new();
    for round in 0..rounds {
        let gw = Gateway::start(&[&arg]);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let clients: Vec<_> = (0..4)
            .map(|t| {
                let (acked, port) = (acked.clone(), gw.port);
                std::thread::spawn(move || {
                    let mut c = KeepAlive::connect(port).expect("connect before the SIGTERM");
                    for i in 0.. {
                        let job = format!("r{round}_c{t}_{i}");
                        match c.put(&format!("/metrics/job/{job}"), &format!("drained {i}\n")) {
                            Ok(200) => acked.lock().unwrap().push(job),
                            Ok(503) | Err(_) => return,
                            Ok(s) => panic!("push answered {s}"),
                        }
                    }
                })
            })
            .collect();
        // The random instant is what this test is about.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(50 + x % 450));
        let (status, _) = gw.stop("TERM");
        assert!(status.success());
        for c in clients {
            c.join().unwrap();
        }
        let acked = std::mem::take(&mut *acked.lock().unwrap());
        let gw = Gateway::start(&[&arg]);
        let text = gw.get("/metrics").text();
        let present: HashSet<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("push_time_seconds{"))
            .filter_map(|l| l.split("job=\"").nth(1)?.split('"').next())
            .map(str::to_string)
            .collect();
        let missing: Vec<_> = acked.iter().filter(|j| !present.contains(*j)).collect();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged pushes lost: {missing:?}",
            missing.len()
        );
        report.push(format!(
            "round {round}: {} acknowledged, all present",
            acked.len()
        ));
        all_acked.extend(acked);
        drop(gw);
    }
    println!(
        "{}\n{} acknowledged pushes over {rounds} SIGTERMs, none lost",
        report.join("\n"),
        all_acked.len()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn healthy_stays_quick_while_heavy_requests_run() {
    if !common::needs("healthy_stays_quick_while_heavy_requests_run", &["gzip"]) {
        return;
    }
    let _one_at_a_time = heavy();
    let gw = Gateway::start(&[]);
    for i in 0..300 {
        let body: String = (0..20)
            .map(|j| format!("heavy_metric{{n=\"{j}\"}} {i}\n"))
            .collect();
        assert_eq!(gw.put(&format!("/metrics/job/h{i}"), &body).status, 200);
    }
    let big: String = (0..60_000)
        .map(|j| format!("gz_metric{{n=\"{j}\"}} {j}\n"))
        .collect();
    let big = Arc::new(gzip(big.as_bytes()));
    let stop = Arc::new(AtomicBool::new(false));
    let heavy: Vec<_> = (0..2)
        .map(|t| {
            let (stop, big, port) = (stop.clone(), big.clone(), gw.port);
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let r = if t == 0 {
                        try_request(
                            port,
                            "PUT",
                            "/metrics/job/gz",
                            &[("Content-Encoding", "gzip")],
                            &big,
                        )
                    } else {
                        try_request(port, "GET", "/api/v1/metrics", &[], b"")
                    };
                    assert_eq!(r.map(|r| r.status).ok(), Some(200));
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        assert_eq!(gw.get("/-/healthy").status, 200);
        times.push(t.elapsed());
        std::thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    let done: Vec<u32> = heavy.into_iter().map(|h| h.join().unwrap()).collect();
    times.sort();
    println!(
        "/-/healthy under {} gzip pushes of 60,000 series and {} /api/v1/metrics calls: p50 {:?}, p99 {:?}, max {:?}",
        done[0],
        done[1],
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1]
    );
}

#[test]
fn a_port_alone_listens_dual_stack_even_with_bindv6only() {
    if !common::needs(
        "a_port_alone_listens_dual_stack_even_with_bindv6only",
        &["ip", "curl", "root"],
    ) {
        return;
    }
    let ip = common::bin("ip").display().to_string();
    let ns = format!("pgw-v6only-{}", std::process::id());
    let run = |args: &[&str]| {
        let ok = Command::new(&ip).args(args).status().map(|s| s.success());
        assert_eq!(ok.ok(), Some(true), "ip {args:?}");
    };
    run(&["netns", "add", &ns]);
    struct Cleanup(String, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Command::new(&self.0)
                .args(["netns", "delete", &self.1])
                .status();
        }
    }
    let _cleanup = Cleanup(ip.clone(), ns.clone());
    run(&["-n", &ns, "link", "set", "lo", "up"]);
    run(&[
        "netns",
        "exec",
        &ns,
        "sysctl",
        "-q",
        "-w",
        "net.ipv6.bindv6only=1",
    ]);
    let mut cmd = Command::new(&ip);
    cmd.args([
        "netns",
        "exec",
        &ns,
        env!("CARGO_BIN_EXE_pushgateway"),
        "--web.listen-address=:9091",
    ]);
    let gw = Gateway::spawn_unready(cmd);
    for host in ["127.0.0.1", "[::1]"] {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = Command::new(&ip)
                .args(["netns", "exec", &ns, "curl", "-s", "-m", "5"])
                .arg(format!("http://{host}:9091/-/healthy"))
                .output()
                .expect("curl");
            if out.stdout == b"OK" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{host} cannot connect: {:?}",
                out
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    drop(gw);
}

#[test]
fn systemd_socket_activation() {
    if !common::needs("systemd_socket_activation", &["systemd-socket-activate"]) {
        return;
    }
    let activate = common::bin("systemd-socket-activate");
    let port = free_port();
    // systemd-socket-activate starts the daemon at the first connection: make one.
    let knock = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(20);
        while try_request(port, "GET", "/-/healthy", &[], b"").is_err() && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    let mut cmd = Command::new(activate);
    cmd.args([
        "-l",
        &format!("127.0.0.1:{port}"),
        env!("CARGO_BIN_EXE_pushgateway"),
        "--web.systemd-socket",
    ]);
    let gw = Gateway::spawn(cmd);
    knock.join().unwrap();
    assert_eq!(gw.port, port);
    assert_eq!(gw.put("/metrics/job/socket", "activated 1\n").status, 200);
    assert!(
        gw.pushed()
            .contains("activated{instance=\"\",job=\"socket\"} 1\n")
    );
    let status = gw.get("/api/v1/status").text();
    assert!(
        status.contains("\"web.systemd-socket\":\"true\""),
        "{status}"
    );
}
