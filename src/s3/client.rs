//! The client: one keep-alive agent, the bucket as S3 last placed it,
//! and the credentials each request is signed with.

use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rusty_s3::{Bucket, UrlStyle};

use super::config::bucket;
use super::{
    AwsEndpoint, CredentialSource, Exchange, RegionMemory, Request, Response, RetryPolicy,
    S3Config, Signer, Signing, redirect, xml,
};
use crate::error::Result;
use crate::http::{Limits, Setup};

/// The S3 error codes of a request signed with a session token the store
/// no longer takes: the credentials are refreshed once and it is retried.
const STALE_TOKEN_CODES: [&str; 3] = ["ExpiredToken", "InvalidToken", "TokenRefreshRequired"];

/// Called after every exchange, for `--verbose` and request counting.
pub type Observer = Box<dyn Fn(&Exchange) + Send + Sync>;

/// Sends requests over one keep-alive agent and reports each exchange.
pub struct Client {
    /// Replaced when S3 names the bucket's region (see [`redirect`]).
    bucket: RwLock<Bucket>,
    style: UrlStyle,
    name: String,
    /// The configured endpoint and the bucket, as `identity` gives them.
    identity: String,
    aws: Option<AwsEndpoint>,
    region_memory: Option<RegionMemory>,
    credentials: Arc<dyn CredentialSource>,
    pub(super) agent: ureq::Agent,
    pub(super) retry: RetryPolicy,
    pub(super) observer: Option<Observer>,
    /// The `Date` of the latest answer, in seconds: the store's clock, for
    /// leases.
    pub(super) last_date: Mutex<Option<i64>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("bucket", &self.name)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the bucket of `config`.
    pub fn new(config: &S3Config) -> Result<Client> {
        let agent = crate::http::agent(Setup {
            tls: config
                .trust()
                .tls_config(config.endpoint.scheme() == "https")?,
            proxy: crate::http::proxy(config.proxy.as_deref())?,
            limits: Limits::Stall {
                idle: config.retry.timeout,
                connections: config.parallel,
            },
        });
        Ok(Client {
            bucket: RwLock::new(config.bucket()?),
            style: config.url_style(),
            name: config.bucket.clone(),
            identity: format!("{} {}", config.endpoint, config.bucket),
            aws: config.aws,
            region_memory: config.region_memory.clone(),
            credentials: Arc::clone(&config.credentials),
            agent,
            retry: config.retry,
            observer: None,
            last_date: Mutex::new(None),
        })
    }

    /// Calls `observer` after every exchange, for `--verbose`.
    pub fn with_observer(mut self, observer: impl Fn(&Exchange) + Send + Sync + 'static) -> Self {
        self.observer = Some(Box::new(observer));
        self
    }

    /// The store's time, in seconds since the Unix epoch, as the `Date`
    /// of its latest answer gave it; `None` before any answer, or from a
    /// store that sends no `Date`.
    pub fn store_time(&self) -> Option<i64> {
        *self
            .last_date
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The name of the bucket this client talks to.
    pub fn bucket(&self) -> &str {
        &self.name
    }

    /// The configured endpoint and the bucket: which store this is, never
    /// a credential (an endpoint with a password is refused).
    pub fn identity(&self) -> String {
        self.identity.clone()
    }

    /// The region requests are signed for now: the configured one, or
    /// the one S3 named for the bucket.
    pub fn region(&self) -> String {
        self.current_bucket().region().to_owned()
    }

    /// When the credentials last used expire, for `doctor`; `None` for
    /// long-lived keys. Asks no endpoint once a request has been made.
    pub fn credentials_expire(&self) -> Option<jiff::Timestamp> {
        self.credentials.current().ok()?.expires
    }

    fn current_bucket(&self) -> Bucket {
        // A panic while the bucket was replaced left it whole either way.
        self.bucket
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A signer for the bucket as it is now, with `signing`, signing as
    /// of now: the one place the client reads the clock for a signature.
    fn signer(&self, signing: Signing) -> Signer {
        Signer::at(self.current_bucket(), signing, jiff::Timestamp::now())
    }

    /// Builds a request with `build`, signed with the current credentials,
    /// sends it, and returns it with its answer. Two answers make it build
    /// and send the request once more: one that says the session token
    /// expired or is unknown (after renewing the credentials), and, on
    /// AWS's endpoints, one that says the bucket is in another region
    /// (signed for that region on its endpoint, which every later request
    /// uses and the region memory keeps).
    pub(super) fn call<'a>(
        &self,
        build: impl Fn(&Signer) -> Request<'a>,
    ) -> Result<(Request<'a>, Response)> {
        let signing = self.credentials.current()?;
        let signer = self.signer(signing.clone());
        let mut request = build(&signer);
        let mut response = self.send(&request)?;
        if stale_token(&response) {
            request = build(&self.signer(self.credentials.refresh(&signing)?));
            response = self.send(&request)?.after(&response);
        }
        let signed_for = signer.bucket.region().to_owned();
        match redirect::next(&response.answer(), &signed_for, self.aws) {
            redirect::Next::Keep => Ok((request, response)),
            redirect::Next::Elsewhere(region) => Ok((request, response.elsewhere(region))),
            redirect::Next::Follow(aws, region) => self.follow(build, aws, &region, &response),
        }
    }

    /// Builds and sends the request again for the bucket in `region`, on
    /// AWS's endpoint there, after `earlier` said the bucket is there.
    fn follow<'a>(
        &self,
        build: impl Fn(&Signer) -> Request<'a>,
        aws: AwsEndpoint,
        region: &str,
        earlier: &Response,
    ) -> Result<(Request<'a>, Response)> {
        self.move_to(aws, region)?;
        let request = build(&self.signer(self.credentials.current()?));
        let response = self.send(&request)?.after(earlier);
        // Once per request: refused again, the answer is the answer.
        let response = match redirect::next(&response.answer(), region, None) {
            redirect::Next::Elsewhere(region) => response.elsewhere(region),
            _ => response,
        };
        Ok((request, response))
    }

    /// Signs every later request for `region`, on AWS's endpoint there,
    /// and remembers the region for the next command.
    fn move_to(&self, aws: AwsEndpoint, region: &str) -> Result<()> {
        let moved = bucket(&aws.url(region)?, self.style, &self.name, region)?;
        *self.bucket.write().unwrap_or_else(PoisonError::into_inner) = moved;
        if let Some(memory) = &self.region_memory {
            memory.store(region);
        }
        Ok(())
    }
}

/// Whether the store refused the request's session token as expired or
/// unknown.
fn stale_token(response: &Response) -> bool {
    matches!(response.status, 400 | 403)
        && xml::parse_error(&response.body)
            .code
            .is_some_and(|code| STALE_TOKEN_CODES.contains(&code.as_str()))
}
