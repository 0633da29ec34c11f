//! PutObject with `If-None-Match: *`: create a record only where none is.

use rusty_s3::S3Action;

use super::{Client, Request, Response, Signer, TOKEN_HEADER, integrity, xml};
use crate::error::Result;
use crate::store::{Deadline, PutOutcome};

impl Signer {
    /// A PUT of `body` at `key` that only succeeds if `key` does not exist.
    ///
    /// `If-None-Match` is sent unsigned: S3 honours it either way, and a
    /// store that ignores it is then told apart by a probe, not by a
    /// signature error.
    ///
    /// `token` goes into signed user metadata ([`TOKEN_HEADER`]).
    /// `Content-MD5` is signed too, so the store refuses a body damaged on
    /// the way (`BadDigest`) instead of storing it; the reasons for MD5
    /// and not `x-amz-checksum-sha256` are in [`integrity`].
    pub(crate) fn put_if_absent<'a>(&self, key: &str, body: &'a [u8], token: &str) -> Request<'a> {
        let mut request = self.put(key, body, Some(token));
        request.headers.insert(0, ("if-none-match", "*".to_owned()));
        request
    }

    /// A plain PUT of `body` at `key`, replacing what is there: for s3wal's
    /// own objects beside the log, never for a record.
    pub(crate) fn put_object<'a>(&self, key: &str, body: &'a [u8]) -> Request<'a> {
        self.put(key, body, None)
    }

    /// A PUT of `body` at `key` with a signed `Content-MD5`, and the
    /// append's `token` in signed user metadata when there is one.
    fn put<'a>(&self, key: &str, body: &'a [u8], token: Option<&str>) -> Request<'a> {
        let content_md5 = integrity::content_md5(body);
        let mut action = self.bucket.put_object(Some(&self.credentials), key);
        let mut headers = Vec::new();
        if let Some(token) = token {
            action.headers_mut().insert(TOKEN_HEADER, token);
            headers.push((TOKEN_HEADER, token.to_owned()));
        }
        action
            .headers_mut()
            .insert("content-md5", content_md5.as_str());
        let url = self.sign(&action);
        headers.push(("content-md5", content_md5));
        Request {
            action: "PutObject",
            method: rusty_s3::Method::Put,
            url,
            headers,
            body: body.into(),
            target: key.to_owned(),
            check_body: false,
        }
    }
}

/// Whether a plain PUT stored its body.
fn put_stored(request: &Request<'_>, response: Response) -> Result<()> {
    match response.status {
        200..=299 => Ok(()),
        _ => Err(response.into_error(request)),
    }
}

fn put_outcome(request: &Request<'_>, response: Response) -> Result<PutOutcome> {
    match response.status {
        200..=299 => Ok(PutOutcome::Created),
        412 => Ok(PutOutcome::Exists {
            retried: response.attempts > 1,
        }),
        409 if matches!(
            xml::parse_error(&response.body).code.as_deref(),
            Some("ConditionalRequestConflict" | "OperationAborted")
        ) =>
        {
            Ok(PutOutcome::Conflict)
        }
        _ => Err(response.into_error(request)),
    }
}

impl Client {
    /// Writes `body` at `key`, replacing what is there.
    pub fn put_object(&self, key: &str, body: &[u8]) -> Result<()> {
        let (request, response) = self.call(|signer| signer.put_object(key, body))?;
        put_stored(&request, response)
    }

    /// Writes `body` at `key`, replacing what is there, in a request the
    /// store refuses once `deadline` passed by its clock.
    pub fn put_object_until(&self, key: &str, body: &[u8], deadline: Deadline) -> Result<()> {
        let (request, response) =
            self.call(|signer| signer.until(Some(deadline)).put_object(key, body))?;
        put_stored(&request, response)
    }

    /// Writes `body` at `key`, tagged with `token`, unless an object is
    /// already there.
    pub fn put_if_absent(&self, key: &str, body: &[u8], token: &str) -> Result<PutOutcome> {
        let (request, response) = self.call(|signer| signer.put_if_absent(key, body, token))?;
        put_outcome(&request, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::s3::tests::{answer, coded, signer};

    #[test]
    fn plain_put_replaces_and_carries_content_md5_only() {
        let request = signer().put_object("wal/.s3wal/tail", b"hello world");
        let md5 = ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==".to_owned());
        assert_eq!(request.headers, [md5]);
        assert!(put_stored(&request, answer(200, "")).is_ok());
        assert!(put_stored(&request, coded(403, "AccessDenied")).is_err());
    }

    #[test]
    fn conditional_put_carries_if_none_match_star() {
        let request = signer().put_if_absent("wal/00000000000000000001", b"x", "t1");
        assert_eq!(request.headers[0], ("if-none-match", "*".to_owned()));
        let signed = request.url.query().unwrap();
        assert!(signed.contains("x-amz-meta-s3wal-token"), "{signed}");
        assert!(!signed.contains("if-none-match"), "{signed}");
        assert_eq!(request.url.path(), "/bucket/wal/00000000000000000001");
        assert_eq!(
            request.url.as_str(),
            "http://127.0.0.1:9000/bucket/wal/00000000000000000001?\
             X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKID%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&\
             X-Amz-Date=20260102T030405Z&X-Amz-Expires=3600&\
             X-Amz-SignedHeaders=content-md5%3Bhost%3Bx-amz-meta-s3wal-token&\
             X-Amz-Signature=1ad0e0604225a0ff54a5946b409679be7d49165925bb823caf5724c45d8dd248"
        );
    }

    #[test]
    fn every_put_carries_a_signed_content_md5_of_its_body() {
        let request = signer().put_if_absent("k", b"hello world", "t");
        let md5 = ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww==".to_owned());
        assert!(request.headers.contains(&md5), "{:?}", request.headers);
        assert!(request.url.query().unwrap().contains("content-md5"));
    }

    #[test]
    fn status_412_means_the_key_is_taken() {
        let request = signer().put_if_absent("k", b"", "t");
        assert_eq!(
            put_outcome(&request, answer(412, "")).unwrap(),
            PutOutcome::Exists { retried: false }
        );
    }

    #[test]
    fn conditional_conflict_409_means_nothing_was_decided() {
        let request = signer().put_if_absent("k", b"", "t");
        for code in ["ConditionalRequestConflict", "OperationAborted"] {
            let outcome = put_outcome(&request, coded(409, code)).unwrap();
            assert_eq!(outcome, PutOutcome::Conflict);
        }
    }

    #[test]
    fn other_409s_are_errors() {
        let request = signer().put_if_absent("k", b"", "t");
        assert!(put_outcome(&request, coded(409, "InvalidBucketState")).is_err());
        assert!(put_outcome(&request, answer(409, "")).is_err());
    }

    #[test]
    fn status_412_after_a_retry_may_be_our_own_write() {
        let request = signer().put_if_absent("k", b"", "t");
        let retried = Response {
            attempts: 2,
            ..answer(412, "")
        };
        assert_eq!(
            put_outcome(&request, retried).unwrap(),
            PutOutcome::Exists { retried: true }
        );
    }

    #[test]
    fn status_200_means_created() {
        let request = signer().put_if_absent("k", b"", "t");
        assert_eq!(
            put_outcome(&request, answer(200, "")).unwrap(),
            PutOutcome::Created
        );
    }

    #[test]
    fn other_statuses_are_errors() {
        let request = signer().put_if_absent("k", b"", "t");
        let error = put_outcome(&request, answer(403, "")).unwrap_err();
        assert!(matches!(error, Error::S3 { status: 403, .. }));
    }
}
