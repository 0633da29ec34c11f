//! DeleteObjects: remove up to 1000 keys in one request.

use quick_xml::escape::escape;
use rusty_s3::Map;

use super::{Client, Request, Response, Signer, Unreadable, integrity, xml};
use crate::error::{ProtocolKind, Result};
use crate::store::MAX_KEYS_PER_DELETE;

/// The request body: quiet mode, so the answer lists only failures.
fn delete_body(keys: &[String]) -> Vec<u8> {
    let mut body = String::from("<Delete><Quiet>true</Quiet>");
    for key in keys {
        body.push_str("<Object><Key>");
        body.push_str(&escape(key.as_str()));
        body.push_str("</Key></Object>");
    }
    body.push_str("</Delete>");
    body.into_bytes()
}

impl Signer {
    /// A DeleteObjects request for `keys` (1 to 1000 of them).
    ///
    /// S3 requires an integrity header on this request; `Content-MD5` is the
    /// one every S3-compatible store knows.
    pub(crate) fn delete_objects(&self, keys: &[String]) -> Request<'static> {
        assert!(
            (1..=MAX_KEYS_PER_DELETE).contains(&keys.len()),
            "DeleteObjects takes 1 to 1000 keys"
        );
        let body = delete_body(keys);
        let content_md5 = integrity::content_md5(&body);
        let mut query = Map::new();
        query.insert("delete", "");
        Request {
            action: "DeleteObjects",
            method: rusty_s3::Method::Post,
            url: self.sign_bucket_request(rusty_s3::Method::Post, &query, &Map::new()),
            headers: vec![("content-md5", content_md5)],
            body: body.into(),
            target: format!("{} .. {}", keys[0], keys[keys.len() - 1]),
            check_body: false,
        }
    }
}

/// Success only if the store reports no key it failed to delete.
fn deleted(request: &Request<'_>, response: Response) -> Result<()> {
    if response.status != 200 {
        return Err(response.into_error(request));
    }
    let mut failures: Vec<(String, String)> = Vec::new();
    let mut answered = false;
    xml::for_each_leaf(&response.body, |path, text| match path {
        ["DeleteResult"] => answered = true,
        ["DeleteResult", "Error", "Key"] => failures.push((text.to_owned(), String::new())),
        ["DeleteResult", "Error", "Code"] => {
            if let Some(last) = failures.last_mut() {
                last.1 = text.to_owned();
            }
        }
        _ => {}
    })
    .map_err(|e| Unreadable::from(e).into_error(request))?;
    let kind = if !answered {
        ProtocolKind::WrongDocument {
            expected: "DeleteResult",
        }
    } else if let Some((key, code)) = failures.first() {
        ProtocolKind::NotDeleted {
            keys: failures.len(),
            first: key.as_str().into(),
            code: code.as_str().into(),
        }
    } else {
        return Ok(());
    };
    Err(Unreadable::from(kind).into_error(request))
}

impl Client {
    /// Deletes `keys` (1 to 1000) in one request; missing keys count as
    /// deleted.
    pub fn delete_objects(&self, keys: &[String]) -> Result<()> {
        let (request, response) = self.call(|signer| signer.delete_objects(keys))?;
        deleted(&request, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::tests::{answer, signer};

    fn keys() -> Vec<String> {
        vec!["wal/00000000000000000002".into(), "wal/a<b".into()]
    }

    #[test]
    fn a_multi_delete_is_signed_exactly() {
        assert_eq!(
            signer().delete_objects(&keys()).url.as_str(),
            "http://127.0.0.1:9000/bucket/?X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKID%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&\
             X-Amz-Date=20260102T030405Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&\
             delete=&\
             X-Amz-Signature=406847d03bb66cfd50c017f268f97a454f8a0881d4179228c4e67cfef95d99dc"
        );
    }

    #[test]
    fn body_lists_escaped_keys_in_quiet_mode() {
        let request = signer().delete_objects(&keys());
        assert_eq!(
            String::from_utf8(request.body.into_owned()).unwrap(),
            "<Delete><Quiet>true</Quiet><Object><Key>wal/00000000000000000002</Key></Object>\
             <Object><Key>wal/a&lt;b</Key></Object></Delete>"
        );
    }

    #[test]
    fn content_md5_is_the_base64_md5_of_the_body() {
        let request = signer().delete_objects(&keys());
        let expected = integrity::content_md5(&request.body);
        assert_eq!(request.headers, [("content-md5", expected)]);
        assert!(request.url.query().unwrap().contains("delete="));
    }

    #[test]
    fn empty_delete_result_is_success() {
        let request = signer().delete_objects(&keys());
        deleted(&request, answer(200, "<DeleteResult/>")).unwrap();
    }

    #[test]
    fn an_answer_that_is_not_a_delete_result_is_an_error() {
        let request = signer().delete_objects(&keys());
        for body in ["", "<Error><Code>X</Code></Error>", "<html/>"] {
            assert!(deleted(&request, answer(200, body)).is_err(), "{body:?}");
        }
    }

    #[test]
    fn a_key_that_failed_is_an_error_naming_it() {
        let request = signer().delete_objects(&keys());
        let body = "<DeleteResult><Error><Key>wal/x</Key><Code>AccessDenied</Code>\
                    <Message>no</Message></Error></DeleteResult>";
        let error = deleted(&request, answer(200, body)).unwrap_err();
        let not_deleted = ProtocolKind::NotDeleted {
            keys: 1,
            first: "wal/x".into(),
            code: "AccessDenied".into(),
        };
        assert!(
            matches!(&error, crate::Error::Protocol { kind, .. } if *kind == not_deleted),
            "{error:?}"
        );
    }
}
