//! Fuzz target: the text format parser, on any bytes, with and without UTF-8 names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgateway::wire::parse;

fuzz_target!(|data: &[u8]| {
    let (utf8, body) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, rest),
        None => (false, data),
    };
    if let Ok(families) = parse::parse_text_limited(body, utf8, 1000) {
        let series: usize = families.iter().map(|f| f.metrics.len()).sum();
        assert!(series <= 1000, "the series bound was not kept: {series}");
    }
});
