//! GetObject: the body of one record.

use super::{Client, Request, Response, Signer, xml};
use crate::error::Result;

impl Signer {
    /// A GET of the object at `key`, whose body is checked against its
    /// ETag: damage on the way is fetched again, not reported as a
    /// corrupt record.
    pub(crate) fn get_object(&self, key: &str) -> Request<'static> {
        let action = self.bucket.get_object(Some(&self.credentials), key);
        Request {
            action: "GetObject",
            method: rusty_s3::Method::Get,
            url: self.sign(&action),
            headers: Vec::new(),
            body: Default::default(),
            target: key.to_owned(),
            check_body: true,
        }
    }
}

/// The body, or `None` when the key does not exist. A missing bucket is
/// also a 404, but an error: it must not read as an empty log.
fn object_body(request: &Request<'_>, response: Response) -> Result<Option<Vec<u8>>> {
    match response.status {
        200 => Ok(Some(response.body)),
        404 if xml::parse_error(&response.body).code.as_deref() == Some("NoSuchKey") => Ok(None),
        _ => Err(response.into_error(request)),
    }
}

impl Client {
    /// The body of the object at `key`, or `None` if there is none.
    pub fn get_object(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (request, response) = self.call(|signer| signer.get_object(key))?;
        object_body(&request, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::s3::tests::{answer, signer};

    #[test]
    fn missing_key_is_none() {
        let request = signer().get_object("k");
        let body = b"<Error><Code>NoSuchKey</Code></Error>";
        assert_eq!(object_body(&request, answer(404, body)).unwrap(), None);
    }

    #[test]
    fn missing_bucket_is_an_error() {
        let request = signer().get_object("k");
        let body = b"<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>";
        let error = object_body(&request, answer(404, body)).unwrap_err();
        assert!(matches!(error, Error::S3 { status: 404, .. }));
        assert_eq!(
            error.to_string(),
            "GetObject k: HTTP 404 NoSuchBucket: gone; there is no bucket bucket at \
             http://127.0.0.1:9000: check the bucket (--bucket, AWS_BUCKET_NAME) and the \
             endpoint (--endpoint)"
        );
    }

    #[test]
    fn a_404_page_that_is_not_s3s_is_an_error() {
        let request = signer().get_object("k");
        assert!(object_body(&request, answer(404, b"<html>Not Found</html>")).is_err());
        assert!(object_body(&request, answer(404, b"")).is_err());
    }

    #[test]
    fn found_key_gives_its_body() {
        let request = signer().get_object("k");
        assert_eq!(
            object_body(&request, answer(200, b"abc")).unwrap(),
            Some(b"abc".to_vec())
        );
    }
}
