//! The HTTP side of the credential endpoints (STS, SSO, container, IMDS):
//! never through a proxy (a proxy would see the tokens, and cannot reach a
//! link-local address anyway), never following a redirect, with the time
//! limits the caller chooses.

use std::sync::OnceLock;
use std::time::Duration;

use ureq::tls::TlsConfig;
use ureq::{Agent, AsSendBody};

use crate::error::TransportKind;
use crate::http::{Failure, Limits, Setup, Trust, judge};

/// An HTTP answer: its status and body.
#[derive(Debug)]
pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) body: Vec<u8>,
}

/// The largest answer read: credentials are a few kilobytes.
const MAX_ANSWER: u64 = 1024 * 1024;

/// How a provider reaches its endpoints: one agent for its life, so that
/// a renewal can reuse the connection of the fetch before it.
pub(super) struct Caller {
    /// Trusts no certificate: an HTTPS request brings its own roots.
    agent: Agent,
    trust: Trust,
    /// The roots for HTTPS endpoints, read at the first one: a provider on
    /// plain HTTP (IMDS, the ECS agent) needs no CA bundle.
    tls: OnceLock<TlsConfig>,
}

/// Shown by its trust alone: the `Debug` of the agent and of the TLS
/// settings would cost the static binary 4 KB, for no reader.
impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caller")
            .field("trust", &self.trust)
            .finish_non_exhaustive()
    }
}

impl Caller {
    /// A caller checking HTTPS endpoints against `trust`.
    pub(super) fn new(trust: Trust) -> Caller {
        Caller {
            agent: crate::http::agent(Setup {
                tls: crate::http::trusting_nothing(),
                proxy: None,
                limits: Limits::PerRequest,
            }),
            trust,
            tls: OnceLock::new(),
        }
    }

    /// Sends one request; `timeout` bounds the whole exchange.
    pub(super) fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        let request = headers.iter().fold(
            ureq::http::Request::builder().method(method).uri(url),
            |request, (name, value)| request.header(*name, *value),
        );
        let mut response = match body {
            Some(body) => self.run(request.body(body.to_vec()), timeout)?,
            None => self.run(request.body(()), timeout)?,
        };
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER)
            .read_to_vec()
            .map_err(|error| judge(error, timeout))?;
        Ok(Answer { status, body })
    }

    /// Sends `request`, with the roots it needs, within `timeout`.
    fn run(
        &self,
        request: Result<ureq::http::Request<impl AsSendBody>, ureq::http::Error>,
        timeout: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        let failed = |error| judge(error, timeout);
        let request = request.map_err(|error| failed(error.into()))?;
        let https = request.uri().scheme_str() == Some("https");
        let config = self
            .agent
            .configure_request(request)
            .timeout_global(Some(timeout));
        let config = match https {
            true => config.tls_config(self.roots()?),
            false => config,
        };
        self.agent.run(config.build()).map_err(failed)
    }

    /// The TLS settings of HTTPS requests, read once.
    fn roots(&self) -> Result<TlsConfig, Failure> {
        if let Some(tls) = self.tls.get() {
            return Ok(tls.clone());
        }
        // The error's message alone: a boxed `crate::Error` would bring its
        // whole `Debug` into the static binary, for no reader.
        let tls = self.trust.tls_config(true).map_err(|error| Failure {
            kind: TransportKind::Other,
            source: error.to_string().into(),
        })?;
        Ok(self.tls.get_or_init(|| tls).clone())
    }
}
