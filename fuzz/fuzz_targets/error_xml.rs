//! The S3 error-body parser never panics and never returns empty fields.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3wal::s3::parse_error;

fuzz_target!(|body: &[u8]| {
    let error = parse_error(body);
    assert!(error.message.as_deref() != Some(""));
});
