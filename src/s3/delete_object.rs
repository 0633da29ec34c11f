//! DeleteObject: remove one key, with a request that has no body.
//!
//! The fenced deletes of a lease use it rather than DeleteObjects: a store
//! checks a presigned request's expiry when its headers arrive, and the
//! body of a DeleteObjects request may follow much later (RGW waits 65 s,
//! SeaweedFS 120 s, s3s-fs for ever), so only a request without a body
//! ends when its lease does.

use super::{Client, Request, Response, Signer};
use crate::error::Result;
use crate::store::Deadline;

impl Signer {
    /// A DELETE of the object at `key`.
    pub(crate) fn delete_object(&self, key: &str) -> Request<'static> {
        let action = self.bucket.delete_object(Some(&self.credentials), key);
        Request {
            action: "DeleteObject",
            method: rusty_s3::Method::Delete,
            url: self.sign(&action),
            headers: Vec::new(),
            body: Default::default(),
            target: key.to_owned(),
            check_body: false,
        }
    }
}

/// A missing key counts as deleted, as S3 itself answers.
fn deleted(request: &Request<'_>, response: Response) -> Result<()> {
    match response.status {
        200..=299 | 404 => Ok(()),
        _ => Err(response.into_error(request)),
    }
}

impl Client {
    /// Deletes `key`; with a `deadline`, the store refuses the request once
    /// it has passed by the store's clock.
    pub fn delete_object(&self, key: &str, deadline: Option<Deadline>) -> Result<()> {
        let (request, response) = self.call(|signer| signer.until(deadline).delete_object(key))?;
        deleted(&request, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::tests::{answer, signer};

    #[test]
    fn a_delete_has_no_body() {
        let request = signer().delete_object("wal/k");
        assert!(request.body.is_empty());
        assert_eq!(request.method, rusty_s3::Method::Delete);
    }

    #[test]
    fn a_fenced_delete_is_signed_at_the_store_time_to_end_with_its_lease() {
        let deadline = Deadline {
            signed_at: 1_795_483_686,
            expires: 30,
        };
        let url = signer().until(Some(deadline)).delete_object("wal/k").url;
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let get = |name: &str| {
            query
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("X-Amz-Date"), Some("20261124T012806Z"));
        assert_eq!(get("X-Amz-Expires"), Some("30"));
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/bucket/wal/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKID%2F20261124%2Fus-east-1%2Fs3%2Faws4_request&\
             X-Amz-Date=20261124T012806Z&X-Amz-Expires=30&X-Amz-SignedHeaders=host&\
             X-Amz-Signature=2d51b3130fa1d67398149c84d17da212611398a60f245a05fecf1f7e139aca84"
        );
    }

    #[test]
    fn a_missing_key_counts_as_deleted_and_a_refusal_is_an_error() {
        let request = signer().delete_object("wal/k");
        assert!(deleted(&request, answer(204, "")).is_ok());
        assert!(deleted(&request, answer(404, "")).is_ok());
        let expired =
            "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>";
        assert!(deleted(&request, answer(403, expired)).is_err());
    }
}
