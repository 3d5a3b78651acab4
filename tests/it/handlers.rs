//! Every status code a handler answers with, in-process through `Service` (no server):
//! what the client sees, and that a refusal changes nothing.

use super::inproc::{call, service, service_with};
use pushgateway::http::service::Service;
use std::sync::Arc;
use std::sync::atomic::Ordering;

fn status(s: &Arc<Service>, method: &str, target: &str, body: &[u8]) -> u16 {
    call(s, method, target, &[], body).0
}

fn header<'a>(h: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The pushed series a scrape shows (the gateway's own families aside).
fn pushed(s: &Arc<Service>) -> String {
    call(s, "GET", "/metrics", &[], b"")
        .2
        .lines()
        .filter(|l| l.starts_with("m{") || l.starts_with("n{"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn pushes_answer_200_and_deletes_202() {
    let s = service();
    assert_eq!(status(&s, "PUT", "/metrics/job/a", b"m 1\n"), 200);
    assert_eq!(status(&s, "POST", "/metrics/job/a", b"n 2\n"), 200);
    assert_eq!(
        pushed(&s),
        "m{instance=\"\",job=\"a\"} 1\nn{instance=\"\",job=\"a\"} 2\n"
    );
    assert_eq!(status(&s, "DELETE", "/metrics/job/a", b""), 202);
    assert_eq!(pushed(&s), "");
    // A key no group can have: nothing to delete, as in Go.
    assert_eq!(status(&s, "DELETE", "/metrics/job@base64/_w", b""), 202);
    // Without the consistency check Go acknowledges before applying: 202.
    let (unchecked, _) = service_with(false, false, false);
    assert_eq!(status(&unchecked, "PUT", "/metrics/job/a", b"m 1\n"), 202);
}

#[test]
fn refused_pushes_answer_400_and_change_nothing() {
    let s = service();
    assert_eq!(status(&s, "PUT", "/metrics/job/a", b"m 1\n"), 200);
    let before = pushed(&s);
    for (target, body, why) in [
        ("/metrics/job/a", &b"m{ 1\n"[..], "invalid label name"),
        ("/metrics/job/a/odd", b"m 1\n", "odd number of components"),
        ("/metrics/job/a", b"m 1 1700000000000\n", "timestamp"),
        ("/metrics/job/b", b"# TYPE m counter\nm 1\n", "m"),
    ] {
        let (code, _, text) = call(&s, "PUT", target, &[], body);
        assert_eq!(code, 400, "{target} {body:?}: {text}");
        assert!(text.contains(why), "{target}: {text}");
        assert_eq!(pushed(&s), before, "{target} changed the store");
    }
    let (code, _, text) = call(
        &s,
        "PUT",
        "/metrics/job/a",
        &[(
            "Content-Type",
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
        )],
        b"\x05\x0a\x03",
    );
    assert_eq!(code, 400, "{text}");
    assert_eq!(pushed(&s), before);
}

#[test]
fn compressed_bodies_answer_400_or_413_before_routing() {
    let s = service();
    let (code, _, text) = call(
        &s,
        "PUT",
        "/metrics/job/a",
        &[("Content-Encoding", "gzip")],
        b"not gzip",
    );
    assert_eq!(code, 400, "{text}");
    // More than the bound once decompressed (64 KiB here): a gzip of zeros.
    let zeros = pushgateway::wire::compress::gzip_pieces(std::iter::once(&[0u8; 1 << 17][..]));
    let (code, _, text) = call(
        &s,
        "PUT",
        "/metrics/job/a",
        &[("Content-Encoding", "gzip")],
        &zeros,
    );
    assert_eq!(code, 413, "{text}");
    assert!(text.contains("--push.max-decompressed-bytes"), "{text}");
    assert_eq!(pushed(&s), "");
}

#[test]
fn routing_answers_301_307_404_405_and_options() {
    let s = service();
    let (code, h, _) = call(&s, "PUT", "/metrics/job//a", &[], b"m 1\n");
    assert_eq!(
        (code, header(&h, "Location")),
        (301, Some("/metrics/job/a"))
    );
    let (code, h, _) = call(&s, "PUT", "/metrics/job/", &[], b"m 1\n");
    assert_eq!((code, header(&h, "Location")), (307, Some("/metrics/job")));
    let (code, _, text) = call(&s, "GET", "/nope", &[], b"");
    assert_eq!((code, text.as_str()), (404, "404 page not found\n"));
    let (code, h, _) = call(&s, "GET", "/metrics/job/a", &[], b"");
    assert_eq!(code, 405);
    assert_eq!(header(&h, "Allow"), Some("DELETE, OPTIONS, POST, PUT"));
    let (code, h, _) = call(&s, "OPTIONS", "/metrics/job/a", &[], b"");
    assert_eq!(
        (code, header(&h, "Allow")),
        (200, Some("DELETE, OPTIONS, POST, PUT"))
    );
    assert_eq!(status(&s, "GET", "/-/quit", b""), 405);
    // A malformed escape in the path: Go's server answers before routing.
    let (code, _, text) = call(&s, "PUT", "/metrics/job/j/v/%zz", &[], b"m 1\n");
    assert_eq!((code, text.as_str()), (400, "400 Bad Request"));
    assert_eq!(status(&s, "GET", "/api/v1/nope", b""), 404);
    assert_eq!(status(&s, "GET", "/api/v1/ui/groups/nope", b""), 404);
    assert_eq!(pushed(&s), "");
}

#[test]
fn reads_admin_and_lifecycle_answer_200_or_202() {
    let (s, quits) = service_with(true, true, true);
    assert_eq!(status(&s, "PUT", "/metrics/job/a", b"m 1\n"), 200);
    for target in [
        "/-/healthy",
        "/-/ready",
        "/metrics",
        "/api/v1/status",
        "/api/v1/metrics",
        "/",
    ] {
        assert_eq!(status(&s, "GET", target, b""), 200, "{target}");
    }
    assert_eq!(status(&s, "OPTIONS", "/api/v1/metrics", b""), 200);
    assert_eq!(status(&s, "PUT", "/api/v1/admin/wipe", b""), 202);
    assert_eq!(pushed(&s), "");
    assert_eq!(status(&s, "PUT", "/-/quit", b""), 200);
    assert_eq!(quits.load(Ordering::Relaxed), 1);
    // Off by default, as upstream: no wipe route, and quitting is forbidden.
    let (plain, quits) = service_with(false, false, true);
    assert_eq!(status(&plain, "PUT", "/api/v1/admin/wipe", b""), 404);
    let (code, _, text) = call(&plain, "PUT", "/-/quit", &[], b"");
    assert_eq!(
        (code, text.as_str()),
        (403, "Lifecycle API is not enabled.\n")
    );
    assert_eq!(quits.load(Ordering::Relaxed), 0);
}

#[test]
fn after_close_changes_answer_503_and_reads_go_on() {
    let s = service();
    assert_eq!(status(&s, "PUT", "/metrics/job/a", b"m 1\n"), 200);
    s.store.close();
    for (method, target) in [
        ("PUT", "/metrics/job/b"),
        ("POST", "/metrics/job/a"),
        ("DELETE", "/metrics/job/a"),
        ("PUT", "/api/v1/admin/wipe"),
    ] {
        let (code, _, text) = call(&s, method, target, &[], b"m 2\n");
        assert_eq!(code, 503, "{method} {target}: {text}");
    }
    assert_eq!(pushed(&s), "m{instance=\"\",job=\"a\"} 1\n");
}

#[test]
fn a_change_the_disk_refuses_answers_500_naming_why() {
    let (s, _) = service_with(true, true, true);
    let s = Arc::into_inner(s).expect("one owner");
    let s = Arc::new(s.with_settle(Some(Box::new(|_, _| {
        Box::pin(async {
            let full = std::io::Error::other("disk full");
            Err(pushgateway::persist::Error::Write(Arc::new(full)))
        })
    }))));
    let (code, _, text) = call(&s, "PUT", "/metrics/job/a", &[], b"m 1\n");
    assert_eq!(code, 500);
    assert_eq!(
        text,
        "applied, but not persisted: could not write the persistence journal: disk full\n"
    );
    // Applied (as README says), and reads are not held up.
    assert_eq!(pushed(&s), "m{instance=\"\",job=\"a\"} 1\n");
    assert_eq!(status(&s, "DELETE", "/metrics/job/a", b""), 500);
}
