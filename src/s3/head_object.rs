//! HeadObject: does a key exist? The cheapest request S3 has.

use rusty_s3::S3Action;

use super::{Client, PRESIGN_TTL, Request, Response, Signer};
use crate::error::Result;

impl Signer {
    /// A HEAD of the object at `key`.
    pub(crate) fn head_object(&self, key: &str) -> Request {
        let action = self.bucket.head_object(Some(&self.credentials), key);
        Request {
            action: "HeadObject",
            method: rusty_s3::Method::Head,
            url: action.sign(PRESIGN_TTL),
            headers: Vec::new(),
            body: Vec::new(),
            target: key.to_owned(),
        }
    }
}

/// Whether the object exists. A HEAD answer has no body, so a missing
/// bucket also reads as `false`; callers fall back to a listing, which
/// reports it.
fn exists(request: &Request, response: Response) -> Result<bool> {
    match response.status {
        200 => Ok(true),
        404 => Ok(false),
        _ => Err(response.into_error(request)),
    }
}

impl Client {
    /// Whether an object exists at `key`.
    pub fn head_object(&self, key: &str) -> Result<bool> {
        let request = self.signer.head_object(key);
        let response = self.send(&request)?;
        exists(&request, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::tests::signer;

    fn answer(status: u16) -> Response {
        Response {
            status,
            request_id: None,
            body: Vec::new(),
        }
    }

    #[test]
    fn status_200_means_the_key_exists() {
        let request = signer().head_object("k");
        assert!(exists(&request, answer(200)).unwrap());
    }

    #[test]
    fn status_404_means_it_does_not() {
        let request = signer().head_object("k");
        assert!(!exists(&request, answer(404)).unwrap());
    }

    #[test]
    fn status_403_is_an_error() {
        let request = signer().head_object("k");
        assert!(exists(&request, answer(403)).is_err());
    }
}
