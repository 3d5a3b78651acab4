//! Fuzz target: the persistence file reader (its trailer, the gob decoder, group shapes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use pushgateway::persist::datafile;

fuzz_target!(|data: &[u8]| {
    let mut groups = 0usize;
    let _ = datafile::decode(data, |_| groups += 1);
});
