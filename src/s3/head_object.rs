//! HeadObject: does a key exist? The cheapest request S3 has.

use super::{Client, Request, Response, Signer};
use crate::error::Result;
use crate::store::ObjectHead;

impl Signer {
    /// A HEAD of the object at `key`.
    pub(crate) fn head_object(&self, key: &str) -> Request<'static> {
        let action = self.bucket.head_object(Some(&self.credentials), key);
        Request {
            action: "HeadObject",
            method: rusty_s3::Method::Head,
            url: self.sign(&action),
            headers: Vec::new(),
            body: Default::default(),
            target: key.to_owned(),
            check_body: false,
        }
    }
}

/// The object's head, or `None` if it does not exist. A HEAD answer has no
/// body, so a missing bucket also reads as `None`; callers fall back to a
/// listing, which reports it.
fn object_head(request: &Request<'_>, response: Response) -> Result<Option<ObjectHead>> {
    match response.status {
        200 => Ok(Some(ObjectHead {
            token: response.token,
        })),
        404 => Ok(None),
        _ => Err(response.into_error(request)),
    }
}

impl Client {
    /// The head of the object at `key`, or `None` if there is none.
    pub fn head_object(&self, key: &str) -> Result<Option<ObjectHead>> {
        let (request, response) = self.call(|signer| signer.head_object(key))?;
        object_head(&request, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::tests::{answer, signer};

    #[test]
    fn status_200_gives_the_head_with_its_token() {
        let request = signer().head_object("k");
        let found = Response {
            token: Some("t1".into()),
            ..answer(200, "")
        };
        let head = object_head(&request, found).unwrap().unwrap();
        assert_eq!(head.token.as_deref(), Some("t1"));
    }

    #[test]
    fn status_404_means_no_object() {
        let request = signer().head_object("k");
        assert_eq!(object_head(&request, answer(404, "")).unwrap(), None);
    }

    #[test]
    fn status_403_is_an_error() {
        let request = signer().head_object("k");
        assert!(object_head(&request, answer(403, "")).is_err());
    }
}
