//! Push, delete and scrape through the real binary: status codes and exact `/metrics` text.

use crate::common;
use crate::common::Gateway;

const PT_HELP: &str = "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n# TYPE push_time_seconds gauge\n";
const PF_HELP: &str = "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n# TYPE push_failure_time_seconds gauge\n";

/// The timestamp families for groups given by their sanitised label text, in order.
fn stamps(groups: &[&str]) -> String {
    let mut s = String::from(PF_HELP);
    for g in groups {
        s.push_str(&format!("push_failure_time_seconds{{{g}}} 0\n"));
    }
    s.push_str(PT_HELP);
    for g in groups {
        s.push_str(&format!("push_time_seconds{{{g}}} <ts>\n"));
    }
    s
}

#[test]
fn tutorial_pushes_are_exposed_byte_for_byte() {
    let gw = Gateway::start(&[]);
    let r = gw.post(
        "/metrics/job/myjob/instance/myinstance",
        "my_metric{label1=\"value1\", label2=\"value2\"} 42.5\n",
    );
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-type"), None);
    let body = "# HELP job_last_success_unixtime Last time a batch job successfully finished\n\
                # TYPE job_last_success_unixtime gauge\n\
                job_last_success_unixtime 1.7640539123456e+09\n";
    assert_eq!(gw.put("/metrics/job/batchA", body).status, 200);
    let want = format!(
        "# HELP job_last_success_unixtime Last time a batch job successfully finished\n\
         # TYPE job_last_success_unixtime gauge\n\
         job_last_success_unixtime{{instance=\"\",job=\"batchA\"}} 1.7640539123456e+09\n\
         # TYPE my_metric untyped\n\
         my_metric{{instance=\"myinstance\",job=\"myjob\",label1=\"value1\",label2=\"value2\"}} 42.5\n\
         {}",
        stamps(&[
            "instance=\"\",job=\"batchA\"",
            "instance=\"myinstance\",job=\"myjob\""
        ])
    );
    assert_eq!(gw.pushed(), want);
    let r = gw.get("/metrics");
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
}

#[test]
fn put_replaces_post_merges_delete_removes() {
    let gw = Gateway::start(&[]);
    let g = "instance=\"\",job=\"r\"";
    assert_eq!(gw.put("/metrics/job/r", "a 1\nb 1\n").status, 200);
    assert_eq!(gw.post("/metrics/job/r", "b 2\nc 3\n").status, 200);
    assert_eq!(
        gw.pushed(),
        format!(
            "# TYPE a untyped\na{{{g}}} 1\n# TYPE b untyped\nb{{{g}}} 2\n# TYPE c untyped\nc{{{g}}} 3\n{}",
            stamps(&[g])
        )
    );
    assert_eq!(gw.put("/metrics/job/r", "d 4\n").status, 200);
    assert_eq!(
        gw.pushed(),
        format!("# TYPE d untyped\nd{{{g}}} 4\n{}", stamps(&[g]))
    );
    // An empty PUT keeps the group with its timestamps only; an empty POST changes nothing else.
    assert_eq!(gw.put("/metrics/job/r", "").status, 200);
    assert_eq!(gw.pushed(), stamps(&[g]));
    assert_eq!(gw.put("/metrics/job/r", "d 4\n").status, 200);
    assert_eq!(gw.post("/metrics/job/r", "# TYPE x gauge\n").status, 200);
    assert_eq!(
        gw.pushed(),
        format!("# TYPE d untyped\nd{{{g}}} 4\n{}", stamps(&[g]))
    );
    // DELETE is 202 and removes exactly that grouping key.
    assert_eq!(gw.put("/metrics/job/r/instance/i", "e 5\n").status, 200);
    let r = gw.delete("/metrics/job/r");
    assert_eq!((r.status, r.body.len()), (202, 0));
    assert_eq!(
        gw.pushed(),
        format!(
            "# TYPE e untyped\ne{{instance=\"i\",job=\"r\"}} 5\n{}",
            stamps(&["instance=\"i\",job=\"r\""])
        )
    );
    assert_eq!(gw.delete("/metrics/job/nothere").status, 202);
    assert_eq!(gw.delete("/metrics/job/r/instance/i").status, 202);
    assert_eq!(gw.pushed(), "");
}

#[test]
fn grouping_labels_win_and_families_merge_across_groups_in_go_order() {
    let gw = Gateway::start(&[]);
    let body =
        "# HELP m A metric.\n# TYPE m gauge\nm{job=\"x\",instance=\"y\",zone=\"b\"} 1\nf 2\n";
    assert_eq!(gw.put("/metrics/job/j/zone/a", body).status, 200);
    assert_eq!(
        gw.put(
            "/metrics/job/b@base64/L3Zhci90bXA/x@base64/=",
            "m{instance=\"z\"} 3\n"
        )
        .status,
        400
    );
    assert_eq!(
        gw.put(
            "/metrics/job@base64/L3Zhci90bXA/x@base64/=",
            "# TYPE m gauge\nm{instance=\"z\"} 3\n"
        )
        .status,
        200
    );
    assert_eq!(
        gw.pushed(),
        "# TYPE f untyped\n\
         f{instance=\"\",job=\"j\",zone=\"a\"} 2\n\
         # HELP m A metric.\n\
         # TYPE m gauge\n\
         m{instance=\"y\",job=\"j\",zone=\"a\"} 1\n\
         m{instance=\"z\",job=\"/var/tmp\",x=\"\"} 3\n\
         # HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n\
         # TYPE push_failure_time_seconds gauge\n\
         push_failure_time_seconds{instance=\"\",job=\"/var/tmp\",x=\"\"} 0\n\
         push_failure_time_seconds{instance=\"\",job=\"j\",zone=\"a\"} 0\n\
         # HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n\
         # TYPE push_time_seconds gauge\n\
         push_time_seconds{instance=\"\",job=\"/var/tmp\",x=\"\"} <ts>\n\
         push_time_seconds{instance=\"\",job=\"j\",zone=\"a\"} <ts>\n"
    );
}

#[test]
fn summaries_histograms_and_go_number_spelling() {
    let gw = Gateway::start(&[]);
    let body = "# TYPE s summary\ns{quantile=\"0.50\"} 1\ns{quantile=\"9e-1\"} 1e6\ns_sum 12\ns_count 1234567\n\
                # TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"1e3\"} 2\nh_sum 0.7\nh_count 3\n\
                v{k=\"a\"} +Inf\nv{k=\"b\"} -inf\nv{k=\"c\"} nan\nv{k=\"d\"} .5\nv{k=\"e\"} 5.\nv{k=\"f\"} -0\n\
                v{k=\"g\"} 1234567\nv{k=\"h\"} 0.0001\nv{k=\"i\"} 1e-5\nv{k=\"j\"} 123456\n";
    assert_eq!(gw.put("/metrics/job/n", body).status, 200);
    let l = "instance=\"\",job=\"n\"";
    let want = format!(
        "# TYPE h histogram\n\
         h_bucket{{{l},le=\"1\"}} 1\nh_bucket{{{l},le=\"1000\"}} 2\nh_bucket{{{l},le=\"+Inf\"}} 3\n\
         h_sum{{{l}}} 0.7\nh_count{{{l}}} 3\n{}\
         # TYPE s summary\n\
         s{{{l},quantile=\"0.5\"}} 1\ns{{{l},quantile=\"0.9\"}} 1e+06\ns_sum{{{l}}} 12\ns_count{{{l}}} 1.234567e+06\n\
         # TYPE v untyped\n\
         v{{{l},k=\"a\"}} +Inf\nv{{{l},k=\"b\"}} -Inf\nv{{{l},k=\"c\"}} NaN\nv{{{l},k=\"d\"}} 0.5\nv{{{l},k=\"e\"}} 5\n\
         v{{{l},k=\"f\"}} 0\nv{{{l},k=\"g\"}} 1.234567e+06\nv{{{l},k=\"h\"}} 0.0001\nv{{{l},k=\"i\"}} 1e-05\nv{{{l},k=\"j\"}} 123456\n",
        stamps(&[l])
    );
    assert_eq!(gw.pushed(), want);
}

#[test]
fn escapes_survive_the_round_trip() {
    let gw = Gateway::start(&[]);
    let body = "# HELP e Back\\\\slash and\\nnewline <&>.\ne{v=\"q\\\"b\\\\n\\n}{,=\"} 1\n";
    assert_eq!(gw.put("/metrics/job/e/lab/a+b%20c", body).status, 200);
    let text = gw.pushed();
    assert!(
        text.starts_with(
            "# HELP e Back\\\\slash and\\nnewline <&>.\n# TYPE e untyped\ne{instance=\"\",job=\"e\",lab=\"a+b c\",v=\"q\\\"b\\\\n\\n}{,=\"} 1\n"
        ),
        "{text}"
    );
}

#[test]
fn failed_push_sets_failure_time_and_api_reports_it() {
    let gw = Gateway::start(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let r = gw.put("/metrics/job/j", "m 2 1000\n");
    assert_eq!(r.status, 400);
    assert_eq!(
        r.text(),
        "pushed metrics are invalid or inconsistent with existing metrics: pushed metrics must not have timestamps\n"
    );
    let text = gw.pushed();
    assert!(text.contains("m{instance=\"\",job=\"j\"} 1\n"), "{text}");
    assert!(
        text.contains("push_failure_time_seconds{instance=\"\",job=\"j\"} <ts>\n"),
        "{text}"
    );
    let api = gw.get("/api/v1/metrics").text();
    assert!(api.contains("\"last_push_successful\":false"), "{api}");
    assert_eq!(gw.put("/metrics/job/j", "m 3\n").status, 200);
    assert!(
        gw.get("/api/v1/metrics")
            .text()
            .contains("\"last_push_successful\":true")
    );
}

#[test]
fn consistency_check_spans_groups() {
    let gw = Gateway::start(&[]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE x counter\nx 1\n").status,
        200
    );
    let r = gw.put("/metrics/job/b", "# TYPE x gauge\nx 2\n");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("is not a COUNTER"), "{}", r.text());
    // Replacing the only holder of a name may change its type.
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE x gauge\nx 1\n").status,
        200
    );
    assert_eq!(
        gw.put("/metrics/job/b", "# TYPE x gauge\nx 2\n").status,
        200
    );
    // The same series from two groups is refused.
    assert_eq!(gw.put("/metrics/job/c/instance/i", "s 1\n").status, 200);
    let r = gw.put("/metrics/job/c", "s{instance=\"i\"} 2\n");
    assert_eq!(r.status, 400);
    assert!(
        r.text()
            .contains("was collected before with the same name and label values")
    );
    // Names colliding with a summary's series are refused, in both orders.
    assert_eq!(
        gw.put(
            "/metrics/job/d",
            "# TYPE sm summary\nsm{quantile=\"0.5\"} 1\n"
        )
        .status,
        200
    );
    assert_eq!(gw.put("/metrics/job/e", "sm_count 1\n").status, 400);
    assert_eq!(gw.put("/metrics/job/f", "hg_bucket 1\n").status, 200);
    assert_eq!(
        gw.put(
            "/metrics/job/g",
            "# TYPE hg histogram\nhg_bucket{le=\"1\"} 1\n"
        )
        .status,
        400
    );
    // Own families keep their type; go_* names are checked as the Go gateway would.
    let r = gw.put(
        "/metrics/job/h",
        "# TYPE process_start_time_seconds counter\nprocess_start_time_seconds 1\n",
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains(
        "gathered metric family process_start_time_seconds has type COUNTER but should have GAUGE"
    ));
    assert_eq!(
        gw.put(
            "/metrics/job/h",
            "# TYPE go_goroutines counter\ngo_goroutines 1\n"
        )
        .status,
        400
    );
    assert_eq!(
        gw.put(
            "/metrics/job/h",
            "# TYPE go_goroutines gauge\ngo_goroutines 5\n"
        )
        .status,
        200
    );
    assert!(gw.pushed().contains(
        "# HELP go_goroutines Number of goroutines that currently exist.\n# TYPE go_goroutines gauge\ngo_goroutines{instance=\"\",job=\"h\"} 5\n"
    ));
}

#[test]
fn disabled_check_answers_202_and_still_keeps_the_store_consistent() {
    let gw = Gateway::start(&["--push.disable-consistency-check"]);
    assert_eq!(
        gw.put("/metrics/job/a", "# TYPE x counter\nx 1\n").status,
        202
    );
    assert_eq!(
        gw.put("/metrics/job/b", "# TYPE x gauge\nx 2\n").status,
        202
    );
    assert_eq!(gw.put("/metrics/job/c", "t 1 1000\n").status, 202);
    assert_eq!(
        gw.put("/metrics/job/c", "t 1 \n").status,
        400,
        "parse errors stay 400"
    );
    let r = gw.get("/metrics");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(
        text.contains("x{instance=\"\",job=\"a\"} 1\n") && !text.contains("job=\"b\"} 2"),
        "{text}"
    );
}

#[test]
fn help_across_groups_is_the_newest_push() {
    let gw = Gateway::start(&[]);
    assert_eq!(
        gw.put("/metrics/job/h1", "# HELP hc one\nhc 1\n").status,
        200
    );
    assert_eq!(
        gw.put("/metrics/job/h2", "# HELP hc two\nhc 2\n").status,
        200
    );
    for _ in 0..3 {
        assert!(gw.pushed().starts_with("# HELP hc two\n"));
    }
    assert_eq!(gw.delete("/metrics/job/h2").status, 202);
    assert!(gw.pushed().starts_with("# HELP hc one\n"));
}

#[test]
fn router_answers_like_the_go_gateway() {
    let gw = Gateway::start(&[]);
    let r = gw.get("/metrics/job/x");
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("DELETE, OPTIONS, POST, PUT"))
    );
    assert_eq!(r.text(), "Method Not Allowed\n");
    let r = gw.request("OPTIONS", "/metrics/job/x", &[], b"");
    assert_eq!(
        (r.status, r.header("allow")),
        (200, Some("DELETE, OPTIONS, POST, PUT"))
    );
    let r = gw.request("HEAD", "/metrics", &[], b"");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, OPTIONS")));
    let r = gw.get("/nope");
    assert_eq!((r.status, r.text().as_str()), (404, "404 page not found\n"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let r = gw.put("/metrics/job/", "m 1\n");
    assert_eq!(
        (r.status, r.header("location")),
        (307, Some("/metrics/job"))
    );
    let r = gw.put("/metrics/job/ds/a//b/c", "m 1\n");
    assert_eq!(
        (r.status, r.header("location")),
        (301, Some("/metrics/job/ds/a/b/c"))
    );
    let r = gw.get("/METRICS");
    assert_eq!((r.status, r.header("location")), (301, Some("/metrics")));
    for p in ["/-/healthy", "/-/ready"] {
        let r = gw.get(p);
        assert_eq!((r.status, r.text().as_str()), (200, "OK"));
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
    assert_eq!(
        gw.put("/api/v1/admin/wipe", "").status,
        404,
        "admin API is off by default"
    );
    let r = gw.put("/-/quit", "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "Lifecycle API is not enabled.\n")
    );
}

#[test]
fn telemetry_path_moves_the_scrape_only() {
    let gw = Gateway::start(&["--web.telemetry-path=/m"]);
    assert_eq!(gw.put("/metrics/job/j", "x 1\n").status, 200);
    assert!(
        gw.get("/m")
            .text()
            .contains("x{instance=\"\",job=\"j\"} 1\n")
    );
    assert_eq!(gw.get("/metrics").status, 404);
}

#[test]
fn admin_wipe_empties_the_store() {
    let gw = Gateway::start(&["--web.enable-admin-api"]);
    assert_eq!(gw.put("/metrics/job/a", "x 1\n").status, 200);
    assert_eq!(gw.put("/metrics/job/b/instance/i", "x 1\n").status, 200);
    let r = gw.put("/api/v1/admin/wipe", "");
    assert_eq!((r.status, r.body.len()), (202, 0));
    assert_eq!(gw.pushed(), "");
    assert_eq!(
        gw.get("/api/v1/metrics").text(),
        "{\"status\":\"success\",\"data\":[]}"
    );
}

#[test]
fn a_scrape_never_sees_half_a_push() {
    let gw = Gateway::start(&[]);
    let port = gw.port;
    assert_eq!(gw.put("/metrics/job/j", "a 0\nb 0\n").status, 200);
    let pusher = std::thread::spawn(move || {
        for i in 1..=300 {
            let body = format!("a {i}\nb {i}\n");
            let r = common::try_request(port, "PUT", "/metrics/job/j", &[], body.as_bytes())
                .expect("push");
            assert_eq!(r.status, 200);
        }
    });
    let value = |text: &str, name: &str| -> String {
        let prefix = format!("{name}{{instance=\"\",job=\"j\"}} ");
        let line = text
            .lines()
            .find(|l| l.starts_with(&prefix))
            .expect("sample present");
        line[prefix.len()..].to_string()
    };
    let mut scrapes = 0;
    while !pusher.is_finished() {
        let text = gw.get("/metrics").text();
        assert_eq!(value(&text, "a"), value(&text, "b"), "torn scrape:\n{text}");
        scrapes += 1;
    }
    pusher.join().expect("pusher thread");
    assert!(scrapes > 0);
}
