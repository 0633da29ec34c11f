//! A small synchronous S3 client: rusty-s3 presigns, ureq sends.
//!
//! Each S3 action has its own file with two pure halves, so both are
//! testable without a server: a builder on `Signer` that turns arguments
//! into a signed `Request`, and a function that maps a `Response` to a
//! result. [`Client`] only joins them with one keep-alive `ureq::Agent`.

mod delete_object;
mod delete_objects;
mod failure;
mod get_object;
mod head_object;
mod integrity;
mod list_objects;
mod put_object;
mod redirect;
mod region_memory;
mod retry;
mod server_clock;
mod store;
mod tls;
mod xml;

use std::borrow::Cow;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use rusty_s3::{Bucket, Credentials, Map, Method, UrlStyle};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::unversioned::transport::DefaultConnector;
use ureq::{Proxy, SendBody};
use url::Url;

use crate::error::{BodyKind, Error, ProtocolKind, Result, TransportKind};
use crate::store::Deadline;
use failure::Retry;
use integrity::Damage;
use xml::XmlError;

pub(crate) use tls::root_certs;
pub(crate) use xml::for_each_leaf;

pub use redirect::AwsEndpoint;
pub(crate) use redirect::{dns_suffix, is_region_name};
pub use region_memory::RegionMemory;
pub use retry::RetryPolicy;
pub(crate) use server_clock::parse_timestamp_ms;
pub use xml::{ErrorBody, parse_error};

/// How long a presigned URL stays valid at most. Requests are signed
/// right before they are sent; an hour leaves room for slow bodies and
/// clock skew. Never longer than the credentials that sign it.
const PRESIGN_TTL: Duration = Duration::from_secs(3600);

/// The S3 error codes of a request signed with a session token the store
/// no longer takes: the credentials are refreshed once and it is retried.
const STALE_TOKEN_CODES: [&str; 3] = ["ExpiredToken", "InvalidToken", "TokenRefreshRequired"];

/// Credentials to sign with, and until when they are valid.
#[derive(Debug, Clone)]
pub struct Signing {
    /// Access key, secret key and optional session token.
    pub credentials: Credentials,
    /// When they expire; `None` for long-lived keys.
    pub expires: Option<jiff::Timestamp>,
}

/// Where the client gets the credentials it signs each request with:
/// asked at signing time, so that temporary credentials are renewed
/// during a long run (`dump --follow`, `append --lines`).
pub trait CredentialSource: Send + Sync + std::fmt::Debug {
    /// Credentials valid now, renewed when they are about to expire.
    fn current(&self) -> Result<Signing>;
    /// New credentials, because the store refused the session token of
    /// `refused` (`ExpiredToken`); ones another thread renewed meanwhile
    /// serve as well, so that threads refused together renew once.
    fn refresh(&self, refused: &Signing) -> Result<Signing>;
}

/// Long-lived keys: always the same, never expiring.
impl CredentialSource for Credentials {
    fn current(&self) -> Result<Signing> {
        Ok(Signing {
            credentials: self.clone(),
            expires: None,
        })
    }

    fn refresh(&self, _: &Signing) -> Result<Signing> {
        self.current()
    }
}

/// The longest wait for a connection to the store (TCP and TLS).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The user-metadata header that carries an append's token, so that a
/// retried PUT can tell its own earlier, unacknowledged write from another
/// writer's record.
pub const TOKEN_HEADER: &str = "x-amz-meta-s3wal-token";

/// The largest response body read into memory: one record of the largest
/// size a single PUT can carry, 5 GiB, plus the record's framing.
const MAX_BODY: u64 = 5 * 1024 * 1024 * 1024 + 40;

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
    /// Where the signing keys come from (long-lived [`Credentials`] are
    /// one such source).
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

/// One HTTP exchange, as shown by `--verbose`: never the query string, so
/// never a signature.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The S3 action, such as `PutObject` or `ListObjectsV2`.
    pub action: &'static str,
    /// `GET`, `PUT`, `POST`, …
    pub method: &'static str,
    /// The key, the listed prefix, or the range of keys deleted.
    pub target: String,
    /// The HTTP status, or `None` when no answer came.
    pub status: Option<u16>,
    /// Time from sending to the end of the response body.
    pub elapsed: Duration,
}

/// A signed request, ready to send. Its body is borrowed: a record of
/// many megabytes is not copied on its way to the socket.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    action: &'static str,
    method: Method,
    url: Url,
    /// Headers sent as they are; signed ones must match what was signed.
    headers: Vec<(&'static str, String)>,
    body: Cow<'a, [u8]>,
    /// What the request is about, for errors and logs.
    target: String,
    /// Check a 200 answer's body against its `Content-Length` and ETag,
    /// and fetch it again if it was damaged on the way (GetObject).
    check_body: bool,
}

impl Request<'_> {
    /// `PutObject wal/00000000000000000001`, the way errors name a request.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.action, self.target)
    }

    /// The store's `host:port`, the way errors name the store.
    pub(crate) fn host(&self) -> String {
        format!(
            "{}:{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port_or_known_default().unwrap_or_default()
        )
    }
}

/// The parts of an HTTP answer that s3wal looks at.
#[derive(Debug, Default)]
pub(crate) struct Response {
    status: u16,
    request_id: Option<String>,
    /// The value of the `x-amz-meta-s3wal-token` header, if any.
    token: Option<String>,
    /// The server's `Date` header, for the clock check.
    date: Option<String>,
    /// The `x-amz-bucket-region` header: where the bucket is.
    bucket_region: Option<String>,
    /// The region the answer says the bucket is in, when the request did
    /// not follow it there, for the error to say.
    elsewhere: Option<String>,
    body: Vec<u8>,
    /// How many times the request was sent to get this answer.
    attempts: u32,
    /// Why a checked body is not what the store sent, if it is not.
    damage: Option<Damage>,
    /// Some try of the request may have taken effect, this answer aside.
    may_have_acted: bool,
}

impl Response {
    /// This answer to a request sent again after `earlier`: the tries and
    /// the doubt add up, so that a PUT whose first try may have landed is
    /// still checked by its token after a resend (a 412 to it may be to
    /// our own record).
    fn after(self, earlier: &Response) -> Response {
        Response {
            attempts: self.attempts + earlier.attempts,
            may_have_acted: self.may_have_acted || earlier.may_have_acted,
            ..self
        }
    }

    /// The parts that may say the bucket is in another region.
    fn answer(&self) -> redirect::Answer<'_> {
        redirect::Answer {
            status: self.status,
            header: self.bucket_region.as_deref(),
            body: &self.body,
        }
    }

    /// The answer, noting that it says the bucket is in `region`.
    fn elsewhere(self, region: String) -> Response {
        Response {
            elsewhere: Some(region),
            ..self
        }
    }

    /// The store's error for a status the action did not expect.
    ///
    /// A body that is not an S3 `<Error>` (a web server's HTML 404, a
    /// gateway's page) means the endpoint is probably not an S3 API at
    /// all, which a bare "HTTP 404" would hide. A 403 names the IAM
    /// permission the action needs, because a HEAD's 403 has no body at
    /// all to say so.
    fn into_error(self, request: &Request<'_>) -> Error {
        let parsed = xml::parse_error(&self.body);
        if !self.body.is_empty() && !is_s3_error(&self.body) {
            return Unreadable::from(ProtocolKind::NotS3 {
                status: self.status,
                body: body_kind(&self.body),
            })
            .into_error(request);
        }
        let denied =
            self.status == 403 && parsed.code.as_deref().is_none_or(|c| c == "AccessDenied");
        Error::S3 {
            request: request.describe(),
            status: self.status,
            permission: denied.then(|| permission_for(request.action)).flatten(),
            code: parsed.code,
            message: match (parsed.message, self.elsewhere) {
                (message, None) => message,
                (message, Some(region)) => Some(format!(
                    "{}S3 says the bucket is in region {region}: configure that region and \
                     its endpoint",
                    message
                        .map(|m| format!("{}; ", m.trim_end_matches('.')))
                        .unwrap_or_default()
                )),
            },
            request_id: parsed.request_id.or(self.request_id),
            may_have_acted: self.may_have_acted,
        }
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

/// Whether `body` is an S3 `<Error>` document, whatever fields it fills.
fn is_s3_error(body: &[u8]) -> bool {
    let mut error = false;
    xml::for_each_leaf(body, |path, _| error |= path == ["Error"]).is_ok() && error
}

/// What a body that is not S3's XML looks like, for the error message.
fn body_kind(body: &[u8]) -> BodyKind {
    let start = String::from_utf8_lossy(&body[..body.len().min(64)]).to_ascii_lowercase();
    let start = start.trim_start();
    if start.starts_with("<!doctype html") || start.starts_with("<html") {
        BodyKind::Html
    } else if start.starts_with('<') {
        BodyKind::OtherXml
    } else {
        BodyKind::NotXml
    }
}

/// An answer s3wal cannot read, before it is tied to the request it
/// answered.
#[derive(Debug)]
pub(crate) struct Unreadable {
    kind: ProtocolKind,
    source: Option<XmlError>,
}

impl From<ProtocolKind> for Unreadable {
    fn from(kind: ProtocolKind) -> Unreadable {
        Unreadable { kind, source: None }
    }
}

impl From<XmlError> for Unreadable {
    fn from(error: XmlError) -> Unreadable {
        Unreadable {
            kind: ProtocolKind::MalformedXml,
            source: Some(error),
        }
    }
}

impl Unreadable {
    /// The error for `request`, naming the store that answered.
    fn into_error(self, request: &Request<'_>) -> Error {
        Error::Protocol {
            request: request.describe(),
            host: Some(request.host()),
            kind: self.kind,
            source: self.source.map(|e| Box::new(e) as _),
        }
    }
}

/// The IAM permission an S3 action needs, named when the store denies it.
fn permission_for(action: &str) -> Option<&'static str> {
    match action {
        "HeadObject" | "GetObject" => Some("s3:GetObject"),
        "PutObject" => Some("s3:PutObject"),
        "ListObjectsV2" => Some("s3:ListBucket"),
        "DeleteObjects" => Some("s3:DeleteObject"),
        _ => None,
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Head => "HEAD",
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
    }
}

/// Builds signed requests. Pure: no clock but the signing time, no I/O.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    bucket: Bucket,
    credentials: Credentials,
    /// How long its presigned URLs stay valid.
    ttl: Duration,
    /// Sign as of a time the store gave, to end at a deadline, instead of
    /// now for `ttl`: the fenced requests of a lease.
    deadline: Option<Deadline>,
}

/// How the bucket of `config` is addressed.
fn url_style(config: &S3Config) -> UrlStyle {
    match config.path_style {
        true => UrlStyle::Path,
        false => UrlStyle::VirtualHost,
    }
}

/// How long a URL signed at `now` with credentials expiring at `expires`
/// may stay valid: an hour, but never past the expiry (at least a second,
/// so that a URL is never born expired).
fn presign_ttl(now: jiff::Timestamp, expires: Option<jiff::Timestamp>) -> Duration {
    let left = expires.map_or(PRESIGN_TTL, |expires| {
        let left = expires.as_second() - now.as_second();
        Duration::from_secs(u64::try_from(left).unwrap_or(0))
    });
    left.clamp(Duration::from_secs(1), PRESIGN_TTL)
}

impl Signer {
    /// A signer for `bucket`, signing with `signing`.
    fn with(bucket: Bucket, signing: Signing) -> Signer {
        Signer {
            bucket,
            ttl: presign_ttl(jiff::Timestamp::now(), signing.expires),
            credentials: signing.credentials,
            deadline: None,
        }
    }

    /// The same signer, signing every request to end at `deadline`.
    pub(crate) fn until(&self, deadline: Option<Deadline>) -> Signer {
        Signer {
            deadline,
            ..self.clone()
        }
    }

    /// The signing time and validity of the next request: now and the
    /// TTL, or the deadline's.
    fn signing_time(&self) -> (jiff::Timestamp, Duration) {
        match self.deadline {
            Some(deadline) => (
                jiff::Timestamp::from_second(deadline.signed_at)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                Duration::from_secs(deadline.expires.max(1)),
            ),
            None => (jiff::Timestamp::now(), self.ttl),
        }
    }

    /// Signs `action` at the signing time (see [`Signer::until`]).
    pub(crate) fn sign<'a>(&self, action: &impl rusty_s3::S3Action<'a>) -> Url {
        let (time, expires) = self.signing_time();
        action.sign_with_time(expires, &time)
    }

    /// A signer for the bucket of `config`, with its current credentials:
    /// for the tests of request building, where nothing is sent.
    #[cfg(test)]
    pub(crate) fn new(config: &S3Config) -> Result<Signer> {
        let bucket = bucket(
            &config.endpoint,
            url_style(config),
            &config.bucket,
            &config.region,
        )?;
        Ok(Signer::with(bucket, config.credentials.current()?))
    }

    /// Signs a request on the bucket itself (list, multi-delete), which
    /// rusty-s3 only offers with its own XML parser; the signing is the
    /// same. `query` and `headers` are signed; the headers must be sent as
    /// they are.
    fn sign_bucket_request(&self, method: Method, query: &Map<'_>, headers: &Map<'_>) -> Url {
        let (time, expires) = self.signing_time();
        rusty_s3::signing::sign(
            &time,
            method,
            self.bucket.base_url().clone(),
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            expires.as_secs(),
            query.iter(),
            headers.iter(),
        )
    }
}

/// The bucket `name` at `endpoint`, signed for `region`.
fn bucket(endpoint: &Url, style: UrlStyle, name: &str, region: &str) -> Result<Bucket> {
    Bucket::new(endpoint.clone(), style, name.to_owned(), region.to_owned())
        .map_err(|e| Error::Config(format!("bucket {name:?}: {e}")))
}

/// Bytes of each connection's input and of its output buffer.
const CONNECTION_BUFFER: usize = 16 * 1024;

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
    agent: ureq::Agent,
    retry: RetryPolicy,
    observer: Option<Observer>,
    /// The `Date` of the latest answer, in seconds: the store's clock, for
    /// leases.
    last_date: Mutex<Option<i64>>,
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
        // Roots are read only for HTTPS; an HTTP endpoint trusts nothing.
        let roots = match config.endpoint.scheme() {
            "https" => {
                tls::root_certs(config.ca_bundle.as_deref(), config.ssl_cert_file.as_deref())?
            }
            _ => RootCerts::Specific(Arc::new(Vec::new())),
        };
        // s3wal decides on the proxy itself (with `.env` and NO_PROXY), so
        // ureq's own reading of the environment is replaced, not added to.
        let proxy = match &config.proxy {
            Some(url) => Some(Proxy::new(url).map_err(|_| {
                Error::Config(
                    "the proxy URL (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) is not valid".into(),
                )
            })?),
            None => None,
        };
        let agent_config = ureq::Agent::config_builder()
            .proxy(proxy)
            .tls_config(TlsConfig::builder().root_certs(roots).build())
            // Error statuses are answers to map (412, 404), not failures.
            .http_status_as_error(false)
            // A redirect would resend a presigned request to another host;
            // S3 answers wrong-region requests with a 301 worth showing.
            .max_redirects(0)
            .max_redirects_will_error(false)
            // `--timeout` limits how long the exchange may make no progress,
            // never how long it may take: an upload or a download that
            // keeps moving is not cut off, one that stalls fails in time.
            .timeout_resolve(Some(config.retry.timeout))
            .timeout_connect(Some(CONNECT_TIMEOUT.min(config.retry.timeout)))
            .timeout_per_read(Some(config.retry.timeout))
            .timeout_per_write(Some(config.retry.timeout))
            // Every connection, busy or idle, keeps its buffers: ureq's
            // 128 KiB each way would cost 16 MiB at 64 connections. 16 KiB
            // holds any request head (the output buffer must) and is a
            // TLS record; a bigger answer head makes the input one grow.
            .input_buffer_size(CONNECTION_BUFFER)
            .output_buffer_size(CONNECTION_BUFFER)
            .max_idle_connections(config.parallel)
            .max_idle_connections_per_host(config.parallel)
            .build();
        // The resolver marks names that do not resolve, so that the
        // failure is told by its type (see `failure`).
        let agent = ureq::Agent::with_parts(
            agent_config,
            DefaultConnector::new(),
            failure::MarkingResolver::default(),
        );
        Ok(Client {
            bucket: RwLock::new(bucket(
                &config.endpoint,
                url_style(config),
                &config.bucket,
                &config.region,
            )?),
            style: url_style(config),
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

    /// A signer for the bucket as it is now, with `signing`.
    fn signer(&self, signing: Signing) -> Signer {
        Signer::with(self.current_bucket(), signing)
    }

    /// Builds a request with `build`, signed with the current credentials,
    /// sends it, and returns it with its answer. Two answers make it build
    /// and send the request once more: one that says the session token
    /// expired or is unknown (after renewing the credentials), and, on
    /// AWS's endpoints, one that says the bucket is in another region
    /// (signed for that region on its endpoint, which every later request
    /// uses and the region memory keeps).
    fn call<'a>(&self, build: impl Fn(&Signer) -> Request<'a>) -> Result<(Request<'a>, Response)> {
        let signing = self.credentials.current()?;
        let signer = self.signer(signing.clone());
        let mut request = build(&signer);
        let mut response = self.send(&request)?;
        if stale_token(&response) {
            request = build(&self.signer(self.credentials.refresh(&signing)?));
            response = self.send(&request)?.after(&response);
        }
        let signed_for = signer.bucket.region().to_owned();
        let (aws, region) = match redirect::next(&response.answer(), &signed_for, self.aws) {
            redirect::Next::Keep => return Ok((request, response)),
            redirect::Next::Elsewhere(region) => return Ok((request, response.elsewhere(region))),
            redirect::Next::Follow(aws, region) => (aws, region),
        };
        self.move_to(aws, &region)?;
        let request = build(&self.signer(self.credentials.current()?));
        let response = self.send(&request)?.after(&response);
        // Once per request: refused again, the answer is the answer.
        let response = match redirect::next(&response.answer(), &region, None) {
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

    /// Sends `request`, retrying transient failures within the policy,
    /// and returns the last answer, whatever its status.
    ///
    /// Retries stop after `--retries` of them, or once `--timeout` has
    /// passed since the first failure ([`crate::error::REFUSED_RETRY_TIME`] for
    /// a refused connection); failures that no retry can mend (a host name
    /// that does not resolve, a refused certificate) end at once. A body
    /// that kept arriving damaged is an error, never a corrupt record.
    fn send(&self, request: &Request<'_>) -> Result<Response> {
        let idle = self.retry.timeout;
        let started = Instant::now();
        let mut first_failure: Option<Instant> = None;
        // Whether some try may have taken effect in the store.
        let mut may_have_acted = false;
        let mut tries = 0;
        loop {
            tries += 1;
            let mut unsent: &[u8] = &request.body;
            let outcome = self
                .exchange_observed(request, &mut unsent)
                .map_err(|error| failure::judge(error, idle));
            let retry = match &outcome {
                Ok(response) => {
                    may_have_acted |= crate::error::status_may_have_acted(response.status);
                    retry::answer_retry(response)
                }
                Err(failure) => {
                    may_have_acted |= !failure.while_sending() && unsent.is_empty();
                    failure.retry()
                }
            };
            let budget = match retry {
                Retry::Briefly => crate::error::REFUSED_RETRY_TIME.min(idle),
                _ => idle,
            };
            let since_failure = first_failure.get_or_insert_with(Instant::now).elapsed();
            let pause = crate::random::jitter(retry::longest_wait(tries));
            if retry == Retry::No || tries > self.retry.retries || since_failure + pause >= budget {
                let tried = Tried {
                    tries,
                    elapsed: started.elapsed(),
                    may_have_acted,
                };
                return last_outcome(request, outcome, &tried);
            }
            std::thread::sleep(pause);
        }
    }

    /// One exchange, reported to the observer. `unsent` is the part of the
    /// body not yet handed to the connection.
    fn exchange_observed(
        &self,
        request: &Request<'_>,
        unsent: &mut &[u8],
    ) -> Result<Response, ureq::Error> {
        let started = Instant::now();
        let outcome = self.exchange(request, unsent);
        if let Some(observer) = &self.observer {
            observer(&Exchange {
                action: request.action,
                method: method_name(request.method),
                target: request.target.clone(),
                status: outcome.as_ref().ok().map(|r| r.status),
                elapsed: started.elapsed(),
            });
        }
        outcome
    }

    fn exchange(&self, request: &Request<'_>, unsent: &mut &[u8]) -> Result<Response, ureq::Error> {
        let url = request.url.as_str();
        let mut response = match request.method {
            Method::Get | Method::Head | Method::Delete => {
                let mut builder = match request.method {
                    Method::Get => self.agent.get(url),
                    Method::Head => self.agent.head(url),
                    _ => self.agent.delete(url),
                };
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                builder.call()?
            }
            Method::Put | Method::Post => {
                let mut builder = match request.method {
                    Method::Put => self.agent.put(url),
                    _ => self.agent.post(url),
                };
                for (name, value) in &request.headers {
                    builder = builder.header(*name, value);
                }
                // A known length, because S3 refuses chunked bodies; read
                // from `unsent`, so that afterwards it tells whether the
                // whole body went out.
                builder
                    .header("content-length", request.body.len())
                    .send(SendBody::from_reader(unsent))?
            }
        };
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let (request_id, token, date, bucket_region) = (
            header("x-amz-request-id"),
            header(TOKEN_HEADER),
            header("date"),
            header("x-amz-bucket-region"),
        );
        if let Some(seconds) = date.as_deref().and_then(server_clock::parse_http_date) {
            *self
                .last_date
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(seconds);
        }
        let content_length = header("content-length").and_then(|n| n.parse().ok());
        let stated_md5 = integrity::stated_md5(
            header("etag").as_deref(),
            header("x-amz-server-side-encryption").as_deref(),
            header("x-amz-server-side-encryption-customer-algorithm").is_some(),
        );
        let check = request.check_body && status == 200;
        let mut body = Vec::new();
        let mut arrived_md5 = None;
        if request.method != Method::Head {
            let mut reader = integrity::Md5Reader::new(
                response.body_mut().with_config().limit(MAX_BODY).reader(),
                check && stated_md5.is_some(),
            );
            reader.read_to_end(&mut body)?;
            arrived_md5 = reader.md5();
        }
        let damage = match check {
            true => integrity::transit_damage(
                body.len() as u64,
                arrived_md5,
                content_length,
                stated_md5,
            ),
            false => None,
        };
        Ok(Response {
            status,
            request_id,
            token,
            date,
            bucket_region,
            elsewhere: None,
            body,
            attempts: 1,
            damage,
            may_have_acted: false,
        })
    }
}

/// How a request's tries went, for the outcome of the last one.
#[derive(Debug, Clone, Copy)]
struct Tried {
    /// How many times the request was sent.
    tries: u32,
    /// From the first try to the end of the last.
    elapsed: Duration,
    /// Some try may have taken effect: it sent the whole request and got
    /// no answer, or an answer that leaves doubt.
    may_have_acted: bool,
}

/// The result of a request whose last try ended in `outcome`: the answer,
/// or an error that says how often it was tried, whether a body kept
/// arriving damaged, and whether a request body never reached the store.
fn last_outcome(
    request: &Request<'_>,
    outcome: Result<Response, failure::Failure>,
    tried: &Tried,
) -> Result<Response> {
    let failure = match outcome {
        Ok(Response {
            damage: Some(damage),
            ..
        }) => failure::Failure {
            kind: TransportKind::DamagedBody,
            source: Box::new(damage),
        },
        Ok(response) => {
            return Ok(Response {
                attempts: tried.tries,
                may_have_acted: tried.may_have_acted,
                ..response
            });
        }
        Err(failure) => failure,
    };
    let body_never_arrived = failure.kind != TransportKind::DamagedBody
        && !request.body.is_empty()
        && !tried.may_have_acted;
    Err(Error::Transport {
        request: request.describe(),
        host: request.host(),
        kind: failure.kind,
        attempts: tried.tries,
        elapsed: tried.elapsed,
        body_never_arrived,
        source: failure.source,
    })
}

/// Removes the query string of every URL in `message`, because a presigned
/// URL's query string is a credential.
pub(crate) fn redact_urls(message: &str) -> String {
    message
        .split(' ')
        .map(|word| match word.find('?') {
            Some(at) if word.contains("://") => format!("{}?…", &word[..at]),
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
pub(crate) mod tests {
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

    /// A signer for tests of request building; nothing is sent.
    pub(crate) fn signer() -> Signer {
        Signer::new(&config()).unwrap()
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

    fn error_for(action: &str, status: u16, body: &[u8]) -> Error {
        let request = match action {
            "HeadObject" => signer().head_object("wal/k"),
            _ => signer().get_object("wal/k"),
        };
        answer(status, body).into_error(&request)
    }

    #[test]
    fn html_error_page_says_the_endpoint_may_not_be_s3() {
        let error = error_for("GetObject", 404, b"<!DOCTYPE html><html>Not Found</html>");
        assert_eq!(
            error.to_string(),
            "GetObject wal/k: the endpoint 127.0.0.1:9000 answered HTTP 404 with a body that is \
             not S3's XML (an HTML page): is --endpoint an S3 API endpoint?"
        );
    }

    #[test]
    fn plain_text_error_body_is_not_s3_either() {
        let error = error_for("GetObject", 500, b"Internal Server Error").to_string();
        assert!(error.contains("is not S3's XML (not XML)"), "{error}");
    }

    #[test]
    fn access_denied_names_the_missing_iam_permission() {
        let body = b"<Error><Code>AccessDenied</Code><RequestId>R1</RequestId></Error>";
        let error = error_for("GetObject", 403, body).to_string();
        assert!(
            error.contains("lack the s3:GetObject permission"),
            "{error}"
        );
    }

    #[test]
    fn head_403_without_a_body_names_the_permission_it_may_lack() {
        let error = error_for("HeadObject", 403, b"").to_string();
        assert!(error.starts_with("HeadObject wal/k: HTTP 403"), "{error}");
        assert!(error.contains("s3:GetObject"), "{error}");
    }

    #[test]
    fn bad_signature_403_names_no_permission() {
        let body = b"<Error><Code>SignatureDoesNotMatch</Code></Error>";
        let error = error_for("GetObject", 403, body).to_string();
        assert!(!error.contains("permission"), "{error}");
    }

    #[test]
    fn every_action_of_the_log_has_a_permission() {
        for (action, permission) in [
            ("HeadObject", "s3:GetObject"),
            ("GetObject", "s3:GetObject"),
            ("PutObject", "s3:PutObject"),
            ("ListObjectsV2", "s3:ListBucket"),
            ("DeleteObjects", "s3:DeleteObject"),
        ] {
            assert_eq!(permission_for(action), Some(permission), "{action}");
        }
    }

    #[test]
    fn a_resent_request_keeps_the_tries_and_doubt_of_the_first() {
        let first = Response {
            status: 400,
            attempts: 2,
            may_have_acted: true,
            ..Response::default()
        };
        let again = Response {
            attempts: 1,
            ..answer(412, "")
        }
        .after(&first);
        assert_eq!((again.attempts, again.may_have_acted), (3, true));
        assert_eq!(again.status, 412);
    }

    #[test]
    fn presigned_urls_never_outlive_their_credentials() {
        let now = jiff::Timestamp::from_second(1_000_000).unwrap();
        let at = |seconds| Some(jiff::Timestamp::from_second(seconds).unwrap());
        assert_eq!(presign_ttl(now, None), PRESIGN_TTL);
        assert_eq!(presign_ttl(now, at(1_000_600)), Duration::from_secs(600));
        assert_eq!(presign_ttl(now, at(1_900_000)), PRESIGN_TTL);
        assert_eq!(presign_ttl(now, at(999_000)), Duration::from_secs(1));
    }

    fn cut_off() -> failure::Failure {
        failure::judge(
            ureq::Error::Timeout(ureq::Timeout::PerWrite),
            Duration::from_secs(5),
        )
    }

    fn never_arrived(error: &Error) -> bool {
        matches!(
            error,
            Error::Transport {
                body_never_arrived: true,
                ..
            }
        )
    }

    fn tried(tries: u32, may_have_acted: bool) -> Tried {
        Tried {
            tries,
            elapsed: Duration::from_millis(1500),
            may_have_acted,
        }
    }

    #[test]
    fn a_put_whose_body_never_arrived_says_it_had_no_effect() {
        let request = signer().put_if_absent("k", b"data", "t");
        let error = last_outcome(&request, Err(cut_off()), &tried(3, false)).unwrap_err();
        assert!(never_arrived(&error));
        assert_eq!(
            error.to_string(),
            "PutObject k: 3 tries in 1.5 s: 127.0.0.1:9000 took no data for 5 s (--timeout); the \
             request was cut off; the request body never reached the store whole, so it \
             had no effect"
        );
    }

    #[test]
    fn a_put_that_an_earlier_try_may_have_delivered_makes_no_such_claim() {
        let request = signer().put_if_absent("k", b"data", "t");
        let error = last_outcome(&request, Err(cut_off()), &tried(2, true)).unwrap_err();
        assert!(!never_arrived(&error));
        assert!(!error.to_string().contains("no effect"), "{error}");
    }

    #[test]
    fn a_body_that_kept_arriving_damaged_is_a_transport_error() {
        let request = signer().get_object("k");
        let damaged = Response {
            status: 200,
            damage: Some(Damage::Length {
                arrived: 3,
                announced: 5,
            }),
            ..Response::default()
        };
        let error = last_outcome(&request, Ok(damaged), &tried(9, false)).unwrap_err();
        assert!(
            matches!(
                &error,
                Error::Transport {
                    kind: TransportKind::DamagedBody,
                    attempts: 9,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "GetObject k: 9 tries in 1.5 s: the body kept arriving damaged from \
             127.0.0.1:9000: 3 bytes arrived of the 5 announced"
        );
        let source = std::error::Error::source(&error).unwrap();
        assert!(source.is::<Damage>(), "{source:?}");
    }

    /// The error of a GET to a store at `127.0.0.1:port`, tried once,
    /// waiting `idle` for progress.
    fn failed_get(port: u16, idle: Duration) -> Error {
        let config = S3Config {
            endpoint: format!("http://127.0.0.1:{port}").parse().unwrap(),
            retry: RetryPolicy {
                retries: 0,
                timeout: idle,
            },
            ..tests::config()
        };
        Client::new(&config).unwrap().get_object("k").unwrap_err()
    }

    /// The kind of a transport error, and whether its source is `E`.
    fn kind_and_source<E: std::error::Error + 'static>(error: &Error) -> (TransportKind, bool) {
        match error {
            Error::Transport { kind, source, .. } => (*kind, source.is::<E>()),
            other => panic!("not a transport error: {other:?}"),
        }
    }

    #[test]
    fn a_port_nobody_listens_on_is_a_refused_connection_keeping_the_io_error() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let error = failed_get(port, Duration::from_secs(2));
        assert_eq!(
            kind_and_source::<std::io::Error>(&error),
            (TransportKind::Refused, true)
        );
    }

    #[test]
    fn a_store_that_hangs_up_is_a_broken_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || drop(listener.accept()));
        let error = failed_get(port, Duration::from_secs(2));
        server.join().unwrap();
        let (kind, io_source) = kind_and_source::<std::io::Error>(&error);
        assert_eq!((kind, io_source), (TransportKind::Reset, true));
    }

    #[test]
    fn a_store_that_never_answers_times_out_waiting_for_the_answer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let idle = Duration::from_millis(200);
        let error = failed_get(port, idle);
        drop(listener);
        let waited = TransportKind::Timeout {
            during: crate::error::Stage::Answer,
            after: idle,
        };
        assert_eq!(kind_and_source::<ureq::Error>(&error), (waited, true));
        assert_eq!(
            error.to_string(),
            format!("GetObject k: 127.0.0.1:{port} sent nothing for 0.2 s (--timeout)")
        );
    }

    #[test]
    fn redaction_drops_query_strings_of_urls() {
        let message = "bad uri: http://h/b/k?X-Amz-Signature=abc failed";
        assert_eq!(redact_urls(message), "bad uri: http://h/b/k?… failed");
    }

    #[test]
    fn virtual_host_style_puts_the_bucket_in_the_host() {
        let signer = Signer::new(&S3Config {
            endpoint: "https://s3.eu-west-1.amazonaws.com".parse().unwrap(),
            bucket: "logs".into(),
            region: "eu-west-1".into(),
            path_style: false,
            ..config()
        })
        .unwrap();
        let url = signer.get_object("wal/00000000000000000001").url;
        assert_eq!(url.host_str(), Some("logs.s3.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/wal/00000000000000000001");
    }
}
