//! A small synchronous S3 client: rusty-s3 presigns, ureq sends (through
//! the crate's `http` layer, shared with the credential endpoints).
//!
//! Each S3 action has its own file with two pure halves, so both are
//! testable without a server: a builder on `Signer` that turns arguments
//! into a signed `Request`, and a function that maps a `Response` to a
//! result. [`Client`] only joins them: it signs as of now, sends with
//! retries (`retry` decides, `send` tries), and follows a bucket to its
//! region (`redirect`).

mod client;
mod config;
mod credentials;
mod delete_object;
mod delete_objects;
mod errors;
mod get_object;
mod head_object;
mod integrity;
mod list_objects;
mod put_object;
mod redirect;
mod region_memory;
mod retry;
mod send;
mod server_clock;
mod signer;
mod store;
mod wire;
mod xml;

use errors::Unreadable;
use signer::Signer;
use wire::{Request, Response};

pub use client::{Client, Observer};
pub use config::S3Config;
pub use credentials::{CredentialSource, Signing};
pub use redirect::AwsEndpoint;
pub(crate) use redirect::{dns_suffix, is_region_name};
pub use region_memory::RegionMemory;
pub use retry::RetryPolicy;
pub(crate) use server_clock::parse_timestamp_ms;
pub use wire::{Exchange, TOKEN_HEADER};
pub(crate) use xml::for_each_leaf;
pub use xml::{ErrorBody, parse_error};

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Arc;

    use rusty_s3::Credentials;

    use super::*;

    /// The configuration of a store at `127.0.0.1:9000`.
    pub(crate) fn config() -> S3Config {
        S3Config {
            endpoint: "http://127.0.0.1:9000".parse().unwrap(),
            aws: None,
            region_memory: None,
            bucket: "bucket".into(),
            region: "us-east-1".into(),
            path_style: true,
            credentials: Arc::new(Credentials::new("AKID", "SECRET")),
            retry: RetryPolicy::default(),
            ca_bundle: None,
            ssl_cert_file: None,
            proxy: None,
            parallel: crate::DEFAULT_PARALLEL,
        }
    }

    /// When the tests' requests are signed: 2026-01-02T03:04:05Z.
    pub(crate) const SIGNED_AT: i64 = 1_767_323_045;

    /// A signer for the bucket of `config`, with its current credentials,
    /// signing at [`SIGNED_AT`]: for tests of request building, where
    /// nothing is sent.
    pub(crate) fn signer_for(config: &S3Config) -> Signer {
        let now = jiff::Timestamp::from_second(SIGNED_AT).unwrap();
        let signing = config.credentials.current().unwrap();
        Signer::at(config.bucket().unwrap(), signing, now)
    }

    /// A signer for the store of [`config`].
    pub(crate) fn signer() -> Signer {
        signer_for(&config())
    }

    /// The store's answer to a request: `status` and `body`.
    pub(crate) fn answer(status: u16, body: impl AsRef<[u8]>) -> Response {
        Response {
            status,
            body: body.as_ref().to_vec(),
            ..Response::default()
        }
    }

    /// An S3 `<Error>` answer whose code is `code`.
    pub(crate) fn coded(status: u16, code: &str) -> Response {
        answer(status, format!("<Error><Code>{code}</Code></Error>"))
    }
}
