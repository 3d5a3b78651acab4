//! Fuzz target: gzip and framed-snappy push bodies, within their output bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgateway::wire::compress;

const LIMIT: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let (snappy, body) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, rest),
        None => (false, data),
    };
    let out = if snappy {
        compress::unsnappy(body, LIMIT)
    } else {
        compress::gunzip(body, LIMIT)
    };
    if let Ok(out) = out {
        assert!(
            out.len() <= LIMIT,
            "the output bound was not kept: {}",
            out.len()
        );
    }
});
