//! Integration tests: the real `s3wal` binary and library against real
//! servers, one module per concern. One test crate, so that ureq and
//! rustls are linked once, not once per file.

mod common;

mod bad_input;
mod cli_errors;
mod crash;
mod credentials;
mod cursors;
mod doctor;
mod edges;
mod faults;
mod fence_races;
mod fixtures;
mod follow;
mod foreign_keys;
mod https;
mod json;
mod lease_races;
mod library;
mod local_lock;
mod lost_acks;
mod parallel_reads;
mod permissions;
mod profiles;
mod proxy_env;
mod regions;
mod request_counts;
mod retention;
mod rgw_races;
mod scripting;
mod secrets;
mod seed_stories;
mod store_hint;
mod sts;
mod verify;
mod wire;
