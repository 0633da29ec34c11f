//! The HTTP side of the credential endpoints (STS, SSO, container, IMDS):
//! never through a proxy (a proxy would see the tokens, and cannot reach a
//! link-local address anyway), never following a redirect, with the time
//! limits the caller chooses.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{RootCerts, TlsConfig};

/// An HTTP answer: its status and body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// Why no answer came.
#[derive(Debug)]
pub(super) enum Failed {
    /// Nothing within the time limit.
    Timeout,
    /// Anything else (refused, reset, bad certificate, bad URL).
    Other(String),
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failed::Timeout => f.write_str("no answer in time"),
            Failed::Other(why) => f.write_str(why),
        }
    }
}

/// The largest answer read: credentials are a few kilobytes.
const MAX_ANSWER: u64 = 1024 * 1024;

/// How the credential endpoints are reached.
#[derive(Debug, Clone, Default)]
pub(crate) struct Http {
    /// `--ca-bundle` (or `AWS_CA_BUNDLE`), for HTTPS endpoints.
    pub(crate) ca_bundle: Option<PathBuf>,
    /// `SSL_CERT_FILE`.
    pub(crate) ssl_cert_file: Option<PathBuf>,
}

impl Http {
    /// Sends one request; `timeout` bounds the whole exchange.
    pub(super) fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Answer, Failed> {
        let roots = match url.starts_with("https:") {
            true => crate::s3::root_certs(self.ca_bundle.as_deref(), self.ssl_cert_file.as_deref())
                .map_err(|e| Failed::Other(e.to_string()))?,
            false => RootCerts::Specific(Arc::new(Vec::new())),
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .proxy(None)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            .build()
            .into();
        let request = ureq::http::Request::builder().method(method).uri(url);
        let request = headers.iter().fold(request, |request, (name, value)| {
            request.header(*name, *value)
        });
        let outcome = match body {
            Some(body) => request
                .body(body.to_vec())
                .map_err(|e| Failed::Other(e.to_string()))
                .and_then(|request| agent.run(request).map_err(failed)),
            None => request
                .body(())
                .map_err(|e| Failed::Other(e.to_string()))
                .and_then(|request| agent.run(request).map_err(failed)),
        };
        let mut response = outcome?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(failed)?;
        Ok(Answer { status, body })
    }
}

fn failed(error: ureq::Error) -> Failed {
    match error {
        ureq::Error::Timeout(_) => Failed::Timeout,
        ureq::Error::Io(e) if e.kind() == std::io::ErrorKind::TimedOut => Failed::Timeout,
        other => Failed::Other(crate::s3::redact_urls(&other.to_string())),
    }
}
