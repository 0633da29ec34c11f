//! The ListObjectsV2 parser never panics, and a listing it accepts that
//! says it goes on always has a token to go on with.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3wal::s3::ListPage;

fuzz_target!(|body: &[u8]| {
    if let Ok(page) = ListPage::parse(body) {
        assert!(page.continuation.as_deref() != Some(""));
    }
});
