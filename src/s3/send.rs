//! Sending a request: tries until [`retry::again`] says to stop, each an
//! exchange over the client's agent whose answer is read into a
//! [`Response`], its body checked on the way in.

use std::io::Read as _;
use std::sync::PoisonError;
use std::time::Instant;

use rusty_s3::Method;
use ureq::http::Response as HttpResponse;
use ureq::{Body, RequestBuilder, SendBody};

use super::errors::last_outcome;
use super::retry::{self, Tried};
use super::{Client, Request, Response, TOKEN_HEADER, integrity, server_clock};
use crate::error::Result;
use crate::http::judge;

/// The largest response body read into memory: one record of the largest
/// size a single PUT can carry, 5 GiB, plus the record's framing.
const MAX_BODY: u64 = 5 * 1024 * 1024 * 1024 + 40;

impl Client {
    /// Sends `request`, retrying transient failures within the policy
    /// (see [`retry`]), and returns the last answer, whatever its status.
    /// A body that kept arriving damaged is an error, never a corrupt
    /// record.
    pub(super) fn send(&self, request: &Request<'_>) -> Result<Response> {
        let started = Instant::now();
        let mut first_failure: Option<Instant> = None;
        let mut tried = Tried::default();
        loop {
            let mut unsent: &[u8] = &request.body;
            let outcome = self
                .exchange_observed(request, &mut unsent)
                .map_err(|error| judge(error, self.retry.timeout));
            tried = tried.and(&outcome, unsent.is_empty());
            let since_failure = first_failure.get_or_insert_with(Instant::now).elapsed();
            let pause = crate::random::jitter(retry::longest_wait(tried.tries));
            if !retry::again(&self.retry, &outcome, tried.tries, since_failure + pause) {
                let elapsed = started.elapsed();
                return last_outcome(request, outcome, &Tried { elapsed, ..tried });
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
            let status = outcome.as_ref().ok().map(|r| r.status);
            observer(&request.exchange(status, started.elapsed()));
        }
        outcome
    }

    /// One exchange: the request sent, its answer read, and the store's
    /// clock noted from it.
    fn exchange(&self, request: &Request<'_>, unsent: &mut &[u8]) -> Result<Response, ureq::Error> {
        let mut answer = self.start(request, unsent)?;
        let head = Head::of(&answer);
        if let Some(seconds) = head.date.as_deref().and_then(server_clock::parse_http_date) {
            *self
                .last_date
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = Some(seconds);
        }
        let check = request.check_body && head.status == 200;
        let (body, damage) = read_body(request.method, answer.body_mut(), &head, check)?;
        Ok(Response {
            status: head.status,
            request_id: head.request_id,
            token: head.token,
            date: head.date,
            bucket_region: head.bucket_region,
            elsewhere: None,
            body,
            attempts: 1,
            damage,
            may_have_acted: false,
        })
    }

    /// Sends `request` and waits for the head of its answer.
    fn start(
        &self,
        request: &Request<'_>,
        unsent: &mut &[u8],
    ) -> Result<HttpResponse<Body>, ureq::Error> {
        let url = request.url.as_str();
        let bodyless = match request.method {
            Method::Get => self.agent.get(url),
            Method::Head => self.agent.head(url),
            Method::Delete => self.agent.delete(url),
            Method::Put => return with_body(self.agent.put(url), request, unsent),
            Method::Post => return with_body(self.agent.post(url), request, unsent),
        };
        with_headers(bodyless, request).call()
    }
}

/// `builder` with the request's headers.
fn with_headers<B>(builder: RequestBuilder<B>, request: &Request<'_>) -> RequestBuilder<B> {
    request
        .headers
        .iter()
        .fold(builder, |builder, (name, value)| {
            builder.header(*name, value)
        })
}

/// Sends the request's headers and its body with a known length, because
/// S3 refuses chunked bodies. The body is read from `unsent`, so that
/// afterwards it tells whether the whole body went out.
fn with_body(
    builder: RequestBuilder<ureq::typestate::WithBody>,
    request: &Request<'_>,
    unsent: &mut &[u8],
) -> Result<HttpResponse<Body>, ureq::Error> {
    with_headers(builder, request)
        .header("content-length", request.body.len())
        .send(SendBody::from_reader(unsent))
}

/// The headers of an answer that s3wal reads.
struct Head {
    status: u16,
    request_id: Option<String>,
    token: Option<String>,
    date: Option<String>,
    bucket_region: Option<String>,
    content_length: Option<u64>,
    /// The MD5 of the stored bytes, when the headers state one.
    stated_md5: Option<[u8; 16]>,
}

impl Head {
    fn of(answer: &HttpResponse<Body>) -> Head {
        let header = |name: &str| {
            answer
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Head {
            status: answer.status().as_u16(),
            request_id: header("x-amz-request-id"),
            token: header(TOKEN_HEADER),
            date: header("date"),
            bucket_region: header("x-amz-bucket-region"),
            content_length: header("content-length").and_then(|n| n.parse().ok()),
            stated_md5: integrity::stated_md5(
                header("etag").as_deref(),
                header("x-amz-server-side-encryption").as_deref(),
                header("x-amz-server-side-encryption-customer-algorithm").is_some(),
            ),
        }
    }
}

/// The answer's body (none to a HEAD), and, when it is to be checked
/// (`check`), why it is not what the store sent, if it is not.
fn read_body(
    method: Method,
    body: &mut Body,
    head: &Head,
    check: bool,
) -> Result<(Vec<u8>, Option<integrity::Damage>), ureq::Error> {
    let mut read = Vec::new();
    let mut arrived_md5 = None;
    if method != Method::Head {
        let mut reader = integrity::Md5Reader::new(
            body.with_config().limit(MAX_BODY).reader(),
            check && head.stated_md5.is_some(),
        );
        reader.read_to_end(&mut read)?;
        arrived_md5 = reader.md5();
    }
    let damage = match check {
        true => integrity::transit_damage(
            read.len() as u64,
            arrived_md5,
            head.content_length,
            head.stated_md5,
        ),
        false => None,
    };
    Ok((read, damage))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::error::{Error, TransportKind};
    use crate::s3::{RetryPolicy, S3Config, tests};

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
}
