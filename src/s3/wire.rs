//! What goes over the wire: a signed request, the parts of its answer
//! that s3wal looks at, and the exchange as `--verbose` shows it.

use std::borrow::Cow;
use std::time::Duration;

use rusty_s3::Method;
use url::Url;

use super::integrity::Damage;
use super::redirect;

/// The user-metadata header that carries an append's token, so that a
/// retried PUT can tell its own earlier, unacknowledged write from another
/// writer's record.
pub const TOKEN_HEADER: &str = "x-amz-meta-s3wal-token";

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
    pub(super) action: &'static str,
    pub(super) method: Method,
    pub(super) url: Url,
    /// Headers sent as they are; signed ones must match what was signed.
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Cow<'a, [u8]>,
    /// What the request is about, for errors and logs.
    pub(super) target: String,
    /// Check a 200 answer's body against its `Content-Length` and ETag,
    /// and fetch it again if it was damaged on the way (GetObject).
    pub(super) check_body: bool,
}

impl Request<'_> {
    /// `PutObject wal/00000000000000000001`, the way errors name a request.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.action, self.target)
    }

    /// The endpoint the request went to, `http://host:port`.
    pub(crate) fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    /// The bucket a path-style URL names first (`/logs/wal/…`): where a
    /// store's `NoSuchBucket` does not name it (AWS, which addresses buckets
    /// by host name, does).
    pub(crate) fn path_bucket(&self) -> String {
        let mut segments = self.url.path_segments().into_iter().flatten();
        segments.next().unwrap_or_default().to_owned()
    }

    /// The store's `host:port`, the way errors name the store.
    pub(crate) fn host(&self) -> String {
        format!(
            "{}:{}",
            self.url.host_str().unwrap_or_default(),
            self.url.port_or_known_default().unwrap_or_default()
        )
    }

    /// The exchange as `--verbose` shows it, answered with `status` after
    /// `elapsed`.
    pub(super) fn exchange(&self, status: Option<u16>, elapsed: Duration) -> Exchange {
        Exchange {
            action: self.action,
            method: method_name(self.method),
            target: self.target.clone(),
            status,
            elapsed,
        }
    }
}

/// The parts of an HTTP answer that s3wal looks at.
#[derive(Debug, Default)]
pub(crate) struct Response {
    pub(super) status: u16,
    pub(super) request_id: Option<String>,
    /// The value of the `x-amz-meta-s3wal-token` header, if any.
    pub(super) token: Option<String>,
    /// The server's `Date` header, for the clock check.
    pub(super) date: Option<String>,
    /// The `x-amz-bucket-region` header: where the bucket is.
    pub(super) bucket_region: Option<String>,
    /// The region the answer says the bucket is in, when the request did
    /// not follow it there, for the error to say.
    pub(super) elsewhere: Option<String>,
    pub(super) body: Vec<u8>,
    /// How many times the request was sent to get this answer.
    pub(super) attempts: u32,
    /// Why a checked body is not what the store sent, if it is not.
    pub(super) damage: Option<Damage>,
    /// Some try of the request may have taken effect, this answer aside.
    pub(super) may_have_acted: bool,
}

impl Response {
    /// This answer to a request sent again after `earlier`: the tries and
    /// the doubt add up, so that a PUT whose first try may have landed is
    /// still checked by its token after a resend (a 412 to it may be to
    /// our own record).
    pub(super) fn after(self, earlier: &Response) -> Response {
        Response {
            attempts: self.attempts + earlier.attempts,
            may_have_acted: self.may_have_acted || earlier.may_have_acted,
            ..self
        }
    }

    /// The parts that may say the bucket is in another region.
    pub(super) fn answer(&self) -> redirect::Answer<'_> {
        redirect::Answer {
            status: self.status,
            header: self.bucket_region.as_deref(),
            body: &self.body,
        }
    }

    /// The answer, noting that it says the bucket is in `region`.
    pub(super) fn elsewhere(self, region: String) -> Response {
        Response {
            elsewhere: Some(region),
            ..self
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::tests::answer;

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
}
