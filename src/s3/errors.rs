//! The errors of the store's answers: a status the action did not
//! expect, an answer s3wal cannot read, or a request that never got an
//! answer it could use.

use super::retry::Tried;
use super::xml::{self, XmlError};
use super::{Request, Response};
use crate::error::{BodyKind, Error, ProtocolKind, Result, TransportKind};
use crate::http::Failure;

impl Response {
    /// The store's error for a status the action did not expect.
    ///
    /// A body that is not an S3 `<Error>` (a web server's HTML 404, a
    /// gateway's page) means the endpoint is probably not an S3 API at
    /// all, which a bare "HTTP 404" would hide. A 403 names the IAM
    /// permission the action needs, because a HEAD's 403 has no body at
    /// all to say so.
    pub(crate) fn into_error(self, request: &Request<'_>) -> Error {
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
        let message = with_hint(
            with_region(parsed.message, self.elsewhere),
            parsed.code.as_deref(),
            parsed.bucket.as_deref(),
            request,
        );
        Error::S3 {
            request: request.describe(),
            status: self.status,
            permission: denied.then(|| permission_for(request.action)).flatten(),
            code: parsed.code,
            message,
            request_id: parsed.request_id.or(self.request_id),
            may_have_acted: self.may_have_acted,
        }
    }
}

/// The store's message, saying which region the bucket is in when the
/// answer named one the request did not follow.
fn with_region(message: Option<String>, elsewhere: Option<String>) -> Option<String> {
    let Some(region) = elsewhere else {
        return message;
    };
    Some(format!(
        "{}S3 says the bucket is in region {region}: configure that region and its endpoint",
        message
            .map(|m| format!("{}; ", m.trim_end_matches('.')))
            .unwrap_or_default()
    ))
}

/// The store's message and what to do about the errors of a wrong key or
/// a wrong bucket, which a user fixes in the configuration.
fn with_hint(
    message: Option<String>,
    code: Option<&str>,
    bucket: Option<&str>,
    request: &Request<'_>,
) -> Option<String> {
    let hint = match code? {
        "SignatureDoesNotMatch" => "the secret access key is wrong for this access key ID: \
             check AWS_SECRET_ACCESS_KEY (or the profile's aws_secret_access_key)"
            .to_owned(),
        "InvalidAccessKeyId" => "the store knows no such access key ID: check \
             AWS_ACCESS_KEY_ID (or the profile's aws_access_key_id) and the endpoint"
            .to_owned(),
        "NoSuchBucket" => format!(
            "there is no bucket {} at {}: check the bucket (--bucket, AWS_BUCKET_NAME) \
             and the endpoint (--endpoint)",
            bucket.map_or_else(|| request.path_bucket(), str::to_owned),
            request.origin()
        ),
        _ => return message,
    };
    Some(match message {
        Some(message) => format!("{}; {hint}", message.trim_end_matches('.')),
        None => hint,
    })
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
    pub(crate) fn into_error(self, request: &Request<'_>) -> Error {
        Error::Protocol {
            request: request.describe(),
            host: Some(request.host()),
            kind: self.kind,
            source: self.source.map(|e| Box::new(e) as _),
        }
    }
}

/// The result of a request whose last try ended in `outcome`: the answer,
/// or an error that says how often it was tried, whether a body kept
/// arriving damaged, and whether a request body never reached the store.
pub(crate) fn last_outcome(
    request: &Request<'_>,
    outcome: Result<Response, Failure>,
    tried: &Tried,
) -> Result<Response> {
    let failure = match outcome {
        Ok(Response {
            damage: Some(damage),
            ..
        }) => Failure {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::s3::integrity::Damage;
    use crate::s3::tests::{answer, signer};

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
    fn a_bad_signature_says_the_secret_key_is_wrong() {
        let body = b"<Error><Code>SignatureDoesNotMatch</Code><Message>The request \
            signature we calculated does not match.</Message></Error>";
        let error = error_for("GetObject", 403, body).to_string();
        assert!(
            error.contains("does not match; the secret access key is wrong for this access key ID"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_access_key_says_so() {
        let body = b"<Error><Code>InvalidAccessKeyId</Code></Error>";
        let error = error_for("ListObjectsV2", 403, body).to_string();
        assert!(
            error.contains("the store knows no such access key ID"),
            "{error}"
        );
    }

    #[test]
    fn a_missing_bucket_is_named_with_the_endpoint() {
        let body = b"<Error><Code>NoSuchBucket</Code><BucketName>logz</BucketName></Error>";
        let error = error_for("ListObjectsV2", 404, body).to_string();
        assert!(
            error.contains("there is no bucket logz at http://"),
            "{error}"
        );
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

    fn cut_off() -> Failure {
        crate::http::judge(
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
}
