//! The web UI end to end in headless Chromium: `tests/ui/e2e.py` drives it over WebDriver
//! (listing, expanding, filtering, deleting through the button, the Status tab, a phone's
//! width, no JavaScript errors, 10,000 groups) and saves screenshots under the target
//! directory's tmp folder.

use crate::common;
use std::process::Command;

#[test]
fn the_web_ui_works_in_a_real_browser() {
    if !common::needs(
        "the_web_ui_works_in_a_real_browser",
        &["python3", "chromium", "chromedriver"],
    ) {
        return;
    }
    let out = concat!(env!("CARGO_TARGET_TMPDIR"), "/ui");
    let run = Command::new(common::bin("python3"))
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/e2e.py"))
        .arg(env!("CARGO_BIN_EXE_pushgateway"))
        .arg(out)
        .output()
        .expect("python3 (make test installs it, with chromium and chromium-driver)");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    println!("{stdout}");
}
