//! The rest of the wire surface against the real binary: protobuf and compressed pushes,
//! scrape negotiation, the JSON API's headers, the route prefix and self-metrics.

use crate::common;
use crate::common::Gateway;
use std::io::Write;
use std::process::{Command, Stdio};

const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// Recorded from the Go gateway 1.5.1: its `GET /metrics` with the protobuf `Accept`
/// header, after `printf '# HELP pg A gauge.\n# TYPE pg gauge\npg{a="1"} 2.5\n'` was
/// pushed to `/metrics/job/j`; the bytes of that one family:
///   3d                                   message length 61
///   0a 02 "pg"                           name
///   12 08 "A gauge."                     help
///   18 01                                type GAUGE
///   22 2b                                metric, 43 bytes:
///     0a 06 (0a 01 "a" 12 01 "1")               label a="1"
///     0a 0c (0a 08 "instance" 12 00)            label instance=""
///     0a 08 (0a 03 "job" 12 01 "j")             label job="j"
///     12 09 (09 00 00 00 00 00 00 04 40)        gauge, value 2.5 (little-endian double)
const GO_PG: &str = "3d0a0270671208412067617567652e1801222b0a060a01611201310a0c0a08696e7374616e636512000a080a036a6f6212016a1209090000000000000440";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Runs the system's gzip with `args` on `data` (an independent encoder and decoder).
fn gzip_tool(args: &[&str], data: &[u8]) -> Vec<u8> {
    let mut child = Command::new(common::bin("gzip"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("feed gzip");
    let out = child.wait_with_output().expect("gzip output");
    assert!(out.status.success(), "gzip {args:?} failed");
    out.stdout
}

fn gzip(data: &[u8]) -> Vec<u8> {
    gzip_tool(&["-c"], data)
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    gzip_tool(&["-dc"], data)
}

#[test]
fn protobuf_push_is_stored_and_scraped_back_as_go_encodes_it() {
    let gw = Gateway::start(&[]);
    // Go's own encoding pushed back: the URL's job overrides the body's, instance="" stays.
    let family = hex(GO_PG);
    let r = gw.request(
        "PUT",
        "/metrics/job/j",
        &[("Content-Type", PROTO_CT)],
        &family,
    );
    assert_eq!((r.status, r.body.len()), (200, 0), "{}", r.text());
    assert!(gw.pushed().starts_with(
        "# HELP pg A gauge.\n# TYPE pg gauge\npg{a=\"1\",instance=\"\",job=\"j\"} 2.5\n"
    ));
    let r = gw.request("GET", "/metrics", &[("Accept", PROTO_CT)], b"");
    assert_eq!(r.header("content-type"), Some(PROTO_CT));
    let found = r.body.windows(family.len()).any(|w| w == family.as_slice());
    assert!(
        found,
        "the protobuf scrape does not hold the family as Go encodes it"
    );
    // The same text push scrapes back to the same bytes.
    let gw = Gateway::start(&[]);
    assert_eq!(
        gw.put(
            "/metrics/job/j",
            "# HELP pg A gauge.\n# TYPE pg gauge\npg{a=\"1\"} 2.5\n"
        )
        .status,
        200
    );
    let r = gw.request("GET", "/metrics", &[("Accept", PROTO_CT)], b"");
    assert!(r.body.windows(family.len()).any(|w| w == family.as_slice()));
}

#[test]
fn protobuf_errors_and_quirks_match_the_go_gateway() {
    let gw = Gateway::start(&[]);
    let pb = |path: &str, body: &[u8]| gw.request("PUT", path, &[("Content-Type", PROTO_CT)], body);
    // 6 bytes: length 5, then name (0a 03 "abc") cut one byte short.
    let r = pb("/metrics/job/t", &[0x05, 0x0a, 0x03, b'a', b'b']);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("unexpected EOF"), "{}", r.text());
    assert_eq!(gw.pushed(), "", "a truncated body changes nothing");
    // Family "x" without a type field (so a COUNTER) holding a gauge 1:
    // 0a 01 "x" | 22 0b (12 09 (09 <1.0>))
    let mut body = vec![0x10, 0x0a, 0x01, b'x', 0x22, 0x0b, 0x12, 0x09, 0x09];
    body.extend_from_slice(&1.0f64.to_le_bytes());
    let r = pb("/metrics/job/c", &body);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("is not a COUNTER"), "{}", r.text());
    // Two families named "x" (gauges 1, then 2): the second wins.
    let gauge = |v: f64| {
        let mut f = vec![
            0x12, 0x0a, 0x01, b'x', 0x18, 0x01, 0x22, 0x0b, 0x12, 0x09, 0x09,
        ];
        f.extend_from_slice(&v.to_le_bytes());
        f
    };
    let r = pb("/metrics/job/d", &[gauge(1.0), gauge(2.0)].concat());
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(gw.pushed().contains("x{instance=\"\",job=\"d\"} 2\n"));
    // A label value that is not UTF-8 (0xff): refused by the check, failure recorded.
    // Family of 26 bytes: 0a 01 "y" | 18 01 (GAUGE) | 22 13, a metric of 19 bytes:
    // 0a 06 (0a 01 "a" 12 01 ff) and 12 09 (09 <1.0>).
    let mut body = vec![
        0x1a, 0x0a, 0x01, b'y', 0x18, 0x01, 0x22, 0x13, 0x0a, 0x06, 0x0a, 0x01, b'a', 0x12, 0x01,
        0xff,
    ];
    body.extend_from_slice(&[0x12, 0x09, 0x09]);
    body.extend_from_slice(&1.0f64.to_le_bytes());
    let r = pb("/metrics/job/u", &body);
    assert_eq!(r.status, 400);
    assert!(r.text().contains("not utf8"), "{}", r.text());
    assert!(
        gw.pushed()
            .contains("push_failure_time_seconds{instance=\"\",job=\"u\"} <ts>\n")
    );
}

#[test]
fn gzip_and_snappy_bodies() {
    if !common::needs("gzip_and_snappy_bodies", &["gzip"]) {
        return;
    }
    let gw = Gateway::start(&[]);
    let r = gw.request(
        "PUT",
        "/metrics/job/g",
        &[("Content-Encoding", "gzip")],
        &gzip(b"m 1\n"),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(gw.pushed().contains("m{instance=\"\",job=\"g\"} 1\n"));
    let r = gw.request(
        "PUT",
        "/metrics/job/g",
        &[("Content-Encoding", "gzip")],
        b"m 2\n",
    );
    assert_eq!((r.status, r.text().as_str()), (400, "unexpected EOF\n"));
    let r = gw.request(
        "DELETE",
        "/metrics/job/g",
        &[("Content-Encoding", "gzip")],
        b"",
    );
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "EOF\n"),
        "Go unzips before routing"
    );
    // 100 MiB of zeros in ~100 KiB of gzip: refused, not inflated into memory.
    let bomb = gzip(&vec![0u8; 100 << 20]);
    let r = gw.request(
        "PUT",
        "/metrics/job/g",
        &[("Content-Encoding", "gzip")],
        &bomb,
    );
    assert_eq!(r.status, 413);
    assert!(
        r.text().contains(
            "once decompressed: more than 33554432 bytes (--push.max-decompressed-bytes)"
        ),
        "{}",
        r.text()
    );
    // Framed snappy "m 3\n": stream identifier, then an uncompressed chunk (type 1) with the
    // masked CRC-32C of "m 3\n" (0x5e 0x7c 0x0a 0x4e, little-endian).
    let crc = masked_crc32c(b"m 3\n");
    let mut snappy = vec![
        0xff, 6, 0, 0, b's', b'N', b'a', b'P', b'p', b'Y', 0x01, 8, 0, 0,
    ];
    snappy.extend_from_slice(&crc.to_le_bytes());
    snappy.extend_from_slice(b"m 3\n");
    let r = gw.request(
        "PUT",
        "/metrics/job/s",
        &[("Content-Encoding", "snappy")],
        &snappy,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(gw.pushed().contains("m{instance=\"\",job=\"s\"} 3\n"));
}

/// CRC-32C (Castagnoli), masked as the snappy framing format wants it.
fn masked_crc32c(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0x82F6_3B78 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    (!c).rotate_right(15).wrapping_add(0xa282_ead8)
}

#[test]
fn scrape_negotiation() {
    if !common::needs("scrape_negotiation", &["gzip"]) {
        return;
    }
    let gw = Gateway::start(&[]);
    assert_eq!(gw.put("/metrics/job/n", "m 1\n").status, 200);
    let text = gw.get("/metrics");
    assert_eq!(
        text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(text.header("content-encoding"), None);
    let om = gw.request(
        "GET",
        "/metrics",
        &[("Accept", "application/openmetrics-text; version=1.0.0")],
        b"",
    );
    assert_eq!(
        om.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let prefer_text = gw.request(
        "GET",
        "/metrics",
        &[("Accept", &format!("text/plain;q=0.9, {PROTO_CT};q=0.5"))],
        b"",
    );
    assert_eq!(
        prefer_text.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let z = gw.request("GET", "/metrics", &[("Accept-Encoding", "gzip")], b"");
    assert_eq!(z.header("content-encoding"), Some("gzip"));
    let plain = String::from_utf8(gunzip(&z.body)).expect("utf-8");
    assert!(plain.contains("m{instance=\"\",job=\"n\"} 1\n"), "{plain}");
}

#[test]
fn json_api_headers_and_status() {
    let gw = Gateway::start(&["--web.enable-admin-api", "--web.route-prefix=/pg"]);
    let r = gw.get("/pg/api/v1/status");
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("application/json"))
    );
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        r.header("cache-control"),
        Some("no-cache, no-store, must-revalidate")
    );
    let body = r.text();
    for key in [
        "\"web.route-prefix\":\"/pg\"",
        "\"web.enable-admin-api\":\"true\"",
        "\"build_information\":{\"branch\":",
    ] {
        assert!(body.contains(key), "{key} missing from {body}");
    }
    let r = gw.request("OPTIONS", "/pg/api/v1/anything", &[], b"");
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(
        r.header("access-control-allow-methods"),
        Some("GET, POST, DELETE, OPTIONS")
    );
    assert_eq!(gw.get("/api/v1/status").status, 404);
    assert_eq!(gw.put("/pg/metrics/job/p", "m 1\n").status, 200);
    assert!(
        gw.get("/pg/metrics")
            .text()
            .contains("m{instance=\"\",job=\"p\"} 1\n")
    );
    let r = gw.get("/pg");
    assert_eq!((r.status, r.header("location")), (301, Some("/pg/")));
    let r = gw.get("/-/quit");
    assert_eq!(
        (r.status, r.text().as_str()),
        (405, "Only POST or PUT requests allowed.\n")
    );
    assert_eq!(
        gw.get("/pg/-/quit").header("allow"),
        Some("OPTIONS, POST, PUT")
    );
}

#[test]
fn self_metrics_count_requests_like_go() {
    let gw = Gateway::start(&[]);
    assert_eq!(gw.put("/metrics/job/a", "m 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/a", "m 1 2\n").status, 400);
    assert_eq!(gw.delete("/metrics/job/a").status, 202);
    assert_eq!(gw.get("/-/healthy").status, 200);
    assert_eq!(gw.get("/nope").status, 404);
    let text = gw.get("/metrics").text();
    for line in [
        "pushgateway_http_requests_total{code=\"200\",handler=\"push\",method=\"put\"} 1\n",
        "pushgateway_http_requests_total{code=\"400\",handler=\"push\",method=\"post\"} 1\n",
        "pushgateway_http_requests_total{code=\"202\",handler=\"delete\",method=\"delete\"} 1\n",
        "pushgateway_http_requests_total{code=\"200\",handler=\"healthy\",method=\"get\"} 1\n",
        "pushgateway_http_push_duration_seconds_count{method=\"put\"} 1\n",
        "pushgateway_http_push_size_bytes_count{method=\"post\"} 1\n",
        "# TYPE pushgateway_http_push_size_bytes summary\n",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(!text.contains("handler=\"\""));
}

/// A native histogram, written by hand: `Histogram` message of 36 bytes:
///   08 04                    sample_count 4
///   11 <1.5>                 sample_sum 1.5
///   28 06                    schema 3 (zigzag)
///   31 <0.001>               zero_threshold
///   38 01                    zero_count 1
///   62 04 (08 00 10 02)      positive_span offset 0, length 2
///   6a 02 02 02              positive_delta +1, +1 (zigzag): bucket counts 1 and 2
fn native_histogram() -> Vec<u8> {
    let mut h = vec![0x08, 0x04, 0x11];
    h.extend_from_slice(&1.5f64.to_le_bytes());
    h.extend_from_slice(&[0x28, 0x06, 0x31]);
    h.extend_from_slice(&0.001f64.to_le_bytes());
    h.extend_from_slice(&[
        0x38, 0x01, 0x62, 0x04, 0x08, 0x00, 0x10, 0x02, 0x6a, 0x02, 0x02, 0x02,
    ]);
    h
}

#[test]
fn native_histograms_pass_through_protobuf_and_show_as_classic_text() {
    let gw = Gateway::start(&[]);
    let h = native_histogram();
    // Family: 0a 02 "nh" | 18 04 (HISTOGRAM) | 22 <metric: 3a <h>> (field 7 = histogram)
    let mut metric = vec![0x3a, h.len() as u8];
    metric.extend_from_slice(&h);
    let mut family = vec![0x0a, 0x02, b'n', b'h', 0x18, 0x04, 0x22, metric.len() as u8];
    family.extend_from_slice(&metric);
    let mut body = vec![family.len() as u8];
    body.extend_from_slice(&family);
    let r = gw.request(
        "PUT",
        "/metrics/job/n",
        &[("Content-Type", PROTO_CT)],
        &body,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(gw.pushed().starts_with(
        "# TYPE nh histogram\nnh_bucket{instance=\"\",job=\"n\",le=\"+Inf\"} 4\nnh_sum{instance=\"\",job=\"n\"} 1.5\nnh_count{instance=\"\",job=\"n\"} 4\n"
    ));
    // The protobuf scrape carries the native fields verbatim: 3a <h> after the labels.
    let r = gw.request("GET", "/metrics", &[("Accept", PROTO_CT)], b"");
    let mut field = vec![0x3a, h.len() as u8];
    field.extend_from_slice(&h);
    assert!(
        r.body.windows(field.len()).any(|w| w == field.as_slice()),
        "native fields lost"
    );
}

/// A protobuf field: its key, then the payload as `wire` carries it.
fn field(n: u64, wire: u8, payload: &[u8]) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    let mut out = Vec::new();
    varint(n << 3 | u64::from(wire), &mut out);
    match wire {
        0 => varint(
            u64::from_le_bytes(payload.try_into().expect("8 bytes")),
            &mut out,
        ),
        2 => {
            varint(payload.len() as u64, &mut out);
            out.extend_from_slice(payload);
        }
        _ => out.extend_from_slice(payload),
    }
    out
}
fn len(n: u64, payload: &[u8]) -> Vec<u8> {
    field(n, 2, payload)
}
fn double(n: u64, v: f64) -> Vec<u8> {
    field(n, 1, &v.to_le_bytes())
}
fn uint(n: u64, v: u64) -> Vec<u8> {
    field(n, 0, &v.to_le_bytes())
}

/// Delimited families in shapes Go's encoder never writes, each to a group of its own:
/// what each gateway stores of them must scrape alike. A gauge's value sent twice (the
/// last one counts); quantiles and buckets with their fields in reverse order; a bucket
/// with an exemplar (kept as pushed); a sample with a timestamp (refused).
fn odd_protobuf_pushes() -> Vec<(&'static str, Vec<u8>)> {
    let family = |name: &str, mtype: u64, metric: Vec<u8>| {
        let f = [len(1, name.as_bytes()), uint(3, mtype), len(4, &metric)].concat();
        let mut out = vec![f.len() as u8];
        out.extend(f);
        out
    };
    let twice = len(2, &[double(1, 1.0), double(1, 2.0)].concat());
    let quantile = len(3, &[double(2, 7.0), double(1, 0.5)].concat());
    let summary = len(4, &[uint(1, 3), double(2, 1.5), quantile].concat());
    let reversed = len(3, &[double(2, 1.0), uint(1, 1)].concat());
    let histogram = len(7, &[uint(1, 2), double(2, 0.5), reversed].concat());
    let label = len(1, &[len(1, b"t"), len(2, b"x")].concat());
    let exemplar = len(3, &[label, double(2, 0.25)].concat());
    let bucket = len(
        3,
        &[uint(1, 1), double(2, f64::INFINITY), exemplar].concat(),
    );
    let with_exemplar = len(7, &[uint(1, 1), double(2, 0.25), bucket].concat());
    let stamped = [len(2, &double(1, 1.0)), uint(6, 1000)].concat();
    vec![
        ("/metrics/job/p1", family("pg", 1, twice)),
        ("/metrics/job/p2", family("ps", 2, summary)),
        ("/metrics/job/p3", family("ph", 4, histogram)),
        ("/metrics/job/p4", family("pe", 4, with_exemplar)),
        ("/metrics/job/p5", family("pt", 1, stamped)),
    ]
}

/// The families of a delimited protobuf scrape, by name, each as its bytes (length prefix
/// included).
fn families(mut body: &[u8]) -> Vec<(String, Vec<u8>)> {
    fn varint(b: &[u8]) -> (u64, usize) {
        let (mut v, mut i) = (0u64, 0);
        while i < b.len() && i < 10 {
            v |= u64::from(b[i] & 0x7f) << (7 * i);
            i += 1;
            if b[i - 1] & 0x80 == 0 {
                break;
            }
        }
        (v, i)
    }
    let mut out = Vec::new();
    while !body.is_empty() {
        let (len, n) = varint(body);
        let end = n + len as usize;
        let message = &body[n..end];
        // Field 1 (name, length-delimited) comes first in both encoders.
        assert_eq!(message[0], 0x0a, "a family starting with its name");
        let (name_len, m) = varint(&message[1..]);
        let name = String::from_utf8_lossy(&message[1 + m..1 + m + name_len as usize]).into();
        out.push((name, body[..end].to_vec()));
        body = &body[end..];
    }
    out
}

/// The families both gateways serve alike: the pushed ones, less the push times (which
/// differ by when each gateway got the push) and the gateways' own.
fn comparable(body: &[u8]) -> Vec<(String, Vec<u8>)> {
    families(body)
        .into_iter()
        .filter(|(n, _)| {
            !n.starts_with("go_")
                && !n.starts_with("process_")
                && !n.starts_with("pushgateway_")
                && n != "push_time_seconds"
                && n != "push_failure_time_seconds"
        })
        .collect()
}

/// The self-metric lines both gateways count alike.
fn instrumentation(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| {
            l.starts_with("pushgateway_http_requests_total{")
                || l.starts_with("pushgateway_http_push_size_bytes")
                || l.starts_with("pushgateway_http_push_duration_seconds_count")
        })
        .map(str::to_string)
        .collect()
}

#[test]
fn protobuf_scrapes_match_the_go_gateway_whole() {
    if !common::needs(
        "protobuf_scrapes_match_the_go_gateway_whole",
        &["prometheus-pushgateway"],
    ) {
        return;
    }
    let dir = common::TempDir::new("proto-go");
    let gw = Gateway::start(&[]);
    // The push sizes count the Host header (as Go's do): both ports must have as many
    // digits for the instrumentation to match.
    let mut go = common::GoGateway::start(&dir.path("go.data"));
    for _ in 0..20 {
        if go.port.to_string().len() == gw.port.to_string().len() {
            break;
        }
        go = common::GoGateway::start(&dir.path("go.data"));
    }
    assert_eq!(go.port.to_string().len(), gw.port.to_string().len());
    // Both groups give a family the same HELP: Go picks one of differing HELPs at random.
    let pushes: [(&str, &str, &str); 7] = [
        (
            "PUT",
            "/metrics/job/a/instance/x",
            "# HELP c A counter, \\\\ and \\n.\n# TYPE c counter\nc{l=\"q\\\"\\\\\\n\"} 7\n# TYPE g gauge\ng -1.5e-7\n",
        ),
        (
            "PUT",
            "/metrics/job/b",
            "# HELP c A counter, \\\\ and \\n.\n# TYPE c counter\nc{l=\"2\"} 1e+300\n# TYPE s summary\ns{quantile=\"0.5\"} NaN\ns{quantile=\"0.99\"} +Inf\ns_sum 3\ns_count 2\n",
        ),
        (
            "POST",
            "/metrics/job/b",
            "# TYPE h histogram\nh_bucket{le=\"0.1\"} 1\nh_bucket{le=\"+Inf\"} 4\nh_sum 2.5\nh_count 4\nu{z=\"\"} 3\n",
        ),
        ("PUT", "/metrics/job@base64/Zm9vL2Jhcg", "w 1\n"),
        ("PUT", "/metrics/job@base64/YS9i/x@base64/", "w 2\n"),
        ("DELETE", "/metrics/job@base64/Zm9vL2Jhcg", ""),
        ("PUT", "/metrics/job/c", "u 12\n"),
    ];
    for (method, path, body) in pushes {
        let ours = gw.request(method, path, &[], body.as_bytes());
        let theirs = common::try_request(go.port, method, path, &[], body.as_bytes())
            .expect("the Go gateway answers");
        assert_eq!(ours.status, theirs.status, "{method} {path}");
    }
    for (path, body) in odd_protobuf_pushes() {
        let headers = [("Content-Type", PROTO_CT)];
        let ours = gw.request("PUT", path, &headers, &body);
        let theirs = common::try_request(go.port, "PUT", path, &headers, &body)
            .expect("the Go gateway answers");
        assert_eq!(
            (ours.status, ours.text()),
            (theirs.status, theirs.text()),
            "PUT {path}"
        );
    }
    // Go answers a DELETE before applying it; its queue is in order, so a change answered
    // after it was applied after it.
    for (name, headers) in [
        ("protobuf", vec![("Accept", PROTO_CT)]),
        (
            "protobuf, gzip",
            vec![("Accept", PROTO_CT), ("Accept-Encoding", "gzip")],
        ),
    ] {
        let ours = gw.request("GET", "/metrics", &headers, b"");
        let theirs = common::try_request(go.port, "GET", "/metrics", &headers, b"")
            .expect("the Go gateway answers");
        assert_eq!(
            ours.header("content-type"),
            theirs.header("content-type"),
            "{name}"
        );
        assert_eq!(
            ours.header("content-encoding"),
            theirs.header("content-encoding"),
            "{name}"
        );
        let body = |r: &common::Response| {
            if r.header("content-encoding") == Some("gzip") {
                gunzip(&r.body)
            } else {
                r.body.clone()
            }
        };
        let (ours, theirs) = (comparable(&body(&ours)), comparable(&body(&theirs)));
        assert!(ours.len() >= 5, "{name}: {ours:?}");
        for odd in ["pg", "ps", "ph", "pe"] {
            assert!(ours.iter().any(|(n, _)| n == odd), "{name}: no {odd}");
        }
        assert_eq!(ours, theirs, "{name}: the families differ");
    }
    let ours = instrumentation(&gw.get("/metrics").text());
    assert!(ours.len() >= 10, "{ours:?}");
    assert_eq!(
        ours,
        instrumentation(&go.get("/metrics")),
        "the gateways count requests, push sizes and durations differently"
    );
}
