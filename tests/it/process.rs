//! The binary as a process: flags, exit statuses, signals and the lifecycle API.

use crate::common;
use crate::common::Gateway;
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pushgateway"))
        .args(args)
        .output()
        .expect("run the binary")
}

#[test]
fn bad_flags_exit_nonzero_with_one_line_naming_them() {
    for (args, needle) in [
        (&["--web.nope=1"][..], "--web.nope"),
        (&["--log.level=loud"][..], "--log.level"),
        (&["--log.format", "xml"][..], "--log.format"),
        (&["--web.listen-address"][..], "--web.listen-address"),
        (&["--web.listen-address=9091"][..], "--web.listen-address"),
        (
            &["--persistence.interval=soon"][..],
            "--persistence.interval",
        ),
        (&["--persistence.sync=never"][..], "--persistence.sync"),
        (&["--web.config.file=/tmp/x"][..], "--web.config.file"),
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn help_documents_every_flag_and_version_prints() {
    let out = run(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--web.listen-address=:9091",
        "--web.telemetry-path=/metrics",
        "--[no-]web.enable-lifecycle",
        "--[no-]web.enable-admin-api",
        "--[no-]push.disable-consistency-check",
        "--log.level=info",
        "--log.format=logfmt",
        "--persistence.file=",
        "--persistence.interval=5m",
        "--persistence.sync=interval",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
    let out = run(&["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("pushgateway, version "));
}

#[test]
fn a_port_in_use_is_a_failure() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = format!("--web.listen-address={}", taken.local_addr().expect("addr"));
    let out = run(&[&addr]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("level=error"));
}

#[test]
fn sigterm_is_a_clean_exit() {
    let gw = Gateway::start(&[]);
    assert_eq!(gw.put("/metrics/job/j", "m 1\n").status, 200);
    let status = gw.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn quit_over_http_when_enabled() {
    let gw = Gateway::start(&["--web.enable-lifecycle", "--log.format=json"]);
    let r = gw.post("/-/quit", "");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "Requesting termination... Goodbye!")
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while common::try_request(gw.port, "GET", "/-/healthy", &[], b"").is_ok() {
        assert!(Instant::now() < deadline, "still serving after /-/quit");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(gw.terminate().code(), Some(0));
}
