//! `--push.enable-utf8-names` (upstream 1.11) against the real binary: `U__` names in the
//! path, quoted names in text bodies, UTF-8 names in protobuf bodies, and every scrape
//! escaping scheme; and, with the flag off, exactly 1.5.1's behaviour.

use crate::common::{Gateway, pushed_part};

const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// A delimited gauge family written by hand (what a Go client with UTF-8 names sends):
///   1e                                   message length 30
///   0a 03 "a.b"                          name
///   18 01                                type GAUGE
///   22 15                                metric, 21 bytes:
///     0a 08 (0a 03 "c.d" 12 01 "v")             label c.d="v"
///     12 09 (09 00 00 00 00 00 00 f0 3f)        gauge, value 1
const UTF8_GAUGE: &[u8] = b"\x1e\x0a\x03a.b\x18\x01\x22\x15\x0a\x08\x0a\x03c.d\x12\x01v\x12\x09\x09\x00\x00\x00\x00\x00\x00\xf0\x3f";

const BODY: &str = "# HELP \"a.b\" The help.\n# TYPE \"a.b\" summary\n\
{\"a.b\",x=\"1\",quantile=\"0.5\"} 2\n{\"a.b_sum\",x=\"1\"} 3\n{\"a.b_count\",x=\"1\"} 4\n\
plain{\"my.label\"=\"v\"} 1\n";

fn scrape(gw: &Gateway, accept: &str) -> (String, String) {
    let r = gw.request("GET", "/metrics", &[("Accept", accept)], b"");
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap_or_default().to_string();
    (ct, pushed_part(&r.text()))
}

#[test]
fn utf8_names_in_path_and_body_scrape_in_every_scheme() {
    let gw = Gateway::start(&["--push.enable-utf8-names"]);
    let r = gw.put("/metrics/job/j/U__in_2e_st/v", BODY);
    assert_eq!((r.status, r.text().as_str()), (200, ""));

    // The default: names escaped with underscores, labels in the order of the real names.
    let (ct, text) = scrape(&gw, "");
    assert_eq!(
        ct,
        "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
    );
    assert_eq!(
        text,
        "# HELP a_b The help.\n# TYPE a_b summary\n\
         a_b{in_st=\"v\",instance=\"\",job=\"j\",x=\"1\",quantile=\"0.5\"} 2\n\
         a_b_sum{in_st=\"v\",instance=\"\",job=\"j\",x=\"1\"} 3\n\
         a_b_count{in_st=\"v\",instance=\"\",job=\"j\",x=\"1\"} 4\n\
         # TYPE plain untyped\n\
         plain{in_st=\"v\",instance=\"\",job=\"j\",my_label=\"v\"} 1\n\
         # HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n\
         # TYPE push_failure_time_seconds gauge\n\
         push_failure_time_seconds{in_st=\"v\",instance=\"\",job=\"j\"} 0\n\
         # HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n\
         # TYPE push_time_seconds gauge\n\
         push_time_seconds{in_st=\"v\",instance=\"\",job=\"j\"} <ts>\n"
    );

    // allow-utf-8: names as pushed, quoted where they are not legacy names.
    let (ct, text) = scrape(&gw, "text/plain;version=0.0.4;escaping=allow-utf-8");
    assert!(ct.ends_with("; escaping=allow-utf-8"), "{ct}");
    assert!(
        text.starts_with(
            "# HELP \"a.b\" The help.\n# TYPE \"a.b\" summary\n\
             {\"a.b\",\"in.st\"=\"v\",instance=\"\",job=\"j\",x=\"1\",quantile=\"0.5\"} 2\n\
             {\"a.b_sum\",\"in.st\"=\"v\",instance=\"\",job=\"j\",x=\"1\"} 3\n"
        ),
        "{text}"
    );
    assert!(text.contains("plain{\"in.st\"=\"v\",instance=\"\",job=\"j\",\"my.label\"=\"v\"} 1\n"));

    // values and dots: the family's name escaped, then the suffix (as upstream writes it).
    let (_, text) = scrape(&gw, "text/plain;escaping=values");
    assert!(text.contains("U__a_2e_b_sum{U__in_2e_st=\"v\",instance=\"\",job=\"j\",x=\"1\"} 3\n"));
    let (_, text) = scrape(&gw, "text/plain;escaping=dots");
    assert!(text.contains("a_dot_b_sum{in_dot_st=\"v\",instance=\"\",job=\"j\",x=\"1\"} 3\n"));
    // An unknown scheme is ignored.
    let (ct, _) = scrape(&gw, "text/plain;escaping=nonsense");
    assert!(ct.ends_with("; escaping=underscores"), "{ct}");

    // The JSON API shows the names as pushed.
    let json = gw.get("/api/v1/metrics").text();
    assert!(
        json.contains("\"labels\":{\"in.st\":\"v\",\"job\":\"j\"}"),
        "{json}"
    );
    assert!(json.contains("{\"a.b\":{\"time_stamp\":"), "{json}");
    assert!(json.contains("\"my.label\":\"v\""), "{json}");

    // The name `a.b` stands for, not its stored form, decides suffix collisions.
    let r = gw.put("/metrics/job/k", "{\"a.b_count\"} 1\n");
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains(
            "collected metric named \"a.b_count\" collides with previously collected summary named \"a.b\""
        ),
        "{}",
        r.text()
    );
}

#[test]
fn utf8_protobuf_pushes_and_scrapes() {
    let gw = Gateway::start(&["--push.enable-utf8-names"]);
    let r = gw.request(
        "PUT",
        "/metrics/job/p",
        &[("Content-Type", PROTO_CT)],
        UTF8_GAUGE,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        gw.pushed()
            .contains("# TYPE a_b gauge\na_b{c_d=\"v\",instance=\"\",job=\"p\"} 1\n")
    );
    let find = |body: &[u8], needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    // Protobuf scrapes escape the same way: name field `0a 03 "a_b"`, label name `0a 03 "c_d"`.
    let r = gw.request("GET", "/metrics", &[("Accept", PROTO_CT)], b"");
    assert_eq!(
        r.header("content-type"),
        Some(format!("{PROTO_CT}; escaping=underscores").as_str())
    );
    assert!(find(&r.body, b"\x0a\x03a_b\x18\x01"));
    assert!(find(&r.body, b"\x0a\x03c_d\x12\x01v"));
    let accept = format!("{PROTO_CT}; escaping=allow-utf-8");
    let r = gw.request("GET", "/metrics", &[("Accept", &accept)], b"");
    assert!(find(&r.body, b"\x0a\x03a.b\x18\x01"));
    assert!(find(&r.body, b"\x0a\x03c.d\x12\x01v"));
}

#[test]
fn utf8_names_are_still_validated() {
    let gw = Gateway::start(&["--push.enable-utf8-names"]);
    for (path, body, status, message) in [
        // The escaped name must not start with `__`, nor may the real one.
        (
            "/metrics/job/j/__x/v",
            "m 1\n",
            400,
            "improper label name \"__x\"\n",
        ),
        (
            "/metrics/job/j/U___5f__5f_x/v",
            "m 1\n",
            400,
            "improper label name \"U___5f__5f_x\"\n",
        ),
        (
            "/metrics/job/j",
            "m{\"__x\"=\"1\"} 1\n",
            400,
            "invalid name: __x",
        ),
        (
            "/metrics/job/j",
            "{\"a\\q\"} 1\n",
            400,
            "invalid escape sequence '\\q'",
        ),
        ("/metrics/job/j", "{\"\"} 1\n", 400, "invalid metric name"),
        (
            "/metrics/job/j",
            "{x=\"1\",\"m\"} 1\n",
            400,
            "invalid metric name",
        ),
        (
            "/metrics/job/j",
            "{\"a\",\"b\"} 1\n",
            400,
            "multiple metric names for metric \"a\"",
        ),
        (
            "/metrics/job/j",
            "m{\"a\nb\"=\"1\"} 1\n",
            400,
            "contains unescaped new-line",
        ),
    ] {
        let r = gw.put(path, body);
        assert_eq!(r.status, status, "{path} {body:?}: {}", r.text());
        assert!(r.text().contains(message), "{body:?}: {}", r.text());
    }
    // Refused pushes leave nothing but the failure time of the group they aimed at.
    let pushed = gw.pushed();
    assert!(
        pushed
            .lines()
            .all(|l| l.starts_with('#') || l.starts_with("push_")),
        "{pushed}"
    );
    // A legacy name that looks encoded is kept apart from the name it would decode to.
    assert_eq!(gw.put("/metrics/job/j", "U__x 1\n").status, 200);
    let (_, text) = scrape(&gw, "text/plain;escaping=allow-utf-8");
    assert!(
        text.contains("\nU__x{instance=\"\",job=\"j\"} 1\n"),
        "{text}"
    );
}

#[test]
fn without_the_flag_names_are_1_5_1s() {
    let gw = Gateway::start(&[]);
    let r = gw.put("/metrics/job/j/U__in_2e_st/v", "m 1\n");
    assert_eq!(r.status, 200);
    let r = gw.get("/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert!(pushed_part(&r.text()).contains("m{U__in_2e_st=\"v\",instance=\"\",job=\"j\"} 1\n"));
    let r = gw.put("/metrics/job/j", "{\"a.b\"} 1\n");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "text format parsing error in line 1, column 1: invalid metric name\n"
    );
    let r = gw.put("/metrics/job/j/a.b/v", "m 1\n");
    assert_eq!(
        (r.status, r.text().as_str()),
        (400, "improper label name \"a.b\"\n")
    );
    let status = gw.get("/api/v1/status").text();
    assert!(!status.contains("utf8"), "{status}");
}
