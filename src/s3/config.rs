//! Where and as whom to talk to S3.

use std::path::PathBuf;
use std::sync::Arc;

use rusty_s3::{Bucket, UrlStyle};
use url::Url;

use super::{AwsEndpoint, CredentialSource, RegionMemory, RetryPolicy};
use crate::error::{Error, Result};
use crate::http::Trust;

/// Where and as whom to talk to S3.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The service endpoint, such as `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: Url,
    /// AWS's kind of endpoint when no custom one is set: only then does a
    /// request follow the bucket to the region S3 names, on this kind of
    /// endpoint of that region.
    pub aws: Option<AwsEndpoint>,
    /// Where the bucket's region is remembered once S3 names it.
    pub region_memory: Option<RegionMemory>,
    /// The bucket holding the log.
    pub bucket: String,
    /// The signing region.
    pub region: String,
    /// `endpoint/bucket/key` addressing instead of `bucket.endpoint/key`.
    pub path_style: bool,
    /// Where the signing keys come from (long-lived
    /// [`Credentials`](rusty_s3::Credentials) are one such source).
    pub credentials: Arc<dyn CredentialSource>,
    /// Retries and time limits of every request.
    pub retry: RetryPolicy,
    /// A PEM bundle to trust alone for HTTPS (`--ca-bundle`).
    pub ca_bundle: Option<PathBuf>,
    /// The system bundle's path if the environment names it
    /// (`SSL_CERT_FILE`); otherwise the usual places are searched.
    pub ssl_cert_file: Option<PathBuf>,
    /// The HTTP proxy to go through, if any (`HTTPS_PROXY` and friends).
    pub proxy: Option<String>,
    /// Requests sent at once at most (`--parallel`): the client keeps that
    /// many connections open between requests, so that a parallel read
    /// does not open a new one (a TLS handshake on S3) for most GETs.
    pub parallel: usize,
}

impl S3Config {
    /// How the bucket is addressed.
    pub(crate) fn url_style(&self) -> UrlStyle {
        match self.path_style {
            true => UrlStyle::Path,
            false => UrlStyle::VirtualHost,
        }
    }

    /// The bucket, at the configured endpoint and region.
    pub(crate) fn bucket(&self) -> Result<Bucket> {
        bucket(&self.endpoint, self.url_style(), &self.bucket, &self.region)
    }

    /// The certificate authorities HTTPS endpoints are checked against.
    pub(crate) fn trust(&self) -> Trust {
        Trust {
            ca_bundle: self.ca_bundle.clone(),
            ssl_cert_file: self.ssl_cert_file.clone(),
        }
    }
}

/// The bucket `name` at `endpoint`, signed for `region`.
pub(crate) fn bucket(endpoint: &Url, style: UrlStyle, name: &str, region: &str) -> Result<Bucket> {
    Bucket::new(endpoint.clone(), style, name.to_owned(), region.to_owned())
        .map_err(|e| Error::Config(format!("bucket {name:?}: {e}")))
}
