//! The record decoder never panics, and accepts exactly what the encoder
//! makes: any body it accepts re-encodes to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3wal::record;

fuzz_target!(|input: (u64, &[u8])| {
    let (offset, body) = input;
    if let Ok(data) = record::decode(offset, body) {
        assert_eq!(record::encode(offset, data), body);
    }
    let encoded = record::encode(offset, body);
    assert_eq!(record::decode(offset, &encoded), Ok(body));
});
