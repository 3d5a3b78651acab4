//! Fuzz target: the delimited protobuf `MetricFamily` decoder, on any bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgateway::wire::proto;

fuzz_target!(|data: &[u8]| {
    let (utf8, body) = match data.split_first() {
        Some((flag, rest)) => (flag & 1 == 1, rest),
        None => (false, data),
    };
    if let Ok(decoded) = proto::decode_delimited_limited(body, utf8, 1000) {
        let series: usize = decoded.families.iter().map(|f| f.metrics.len()).sum();
        assert!(series <= 1000, "the series bound was not kept: {series}");
    }
});
