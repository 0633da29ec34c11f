//! ListObjectsV2: one page of the keys under a prefix.

use rusty_s3::Map;

use super::{Client, Request, Response, Signer, Unreadable, xml};
use crate::error::{ProtocolKind, Result};
use crate::store::{ListPage, PageRequest};

impl Signer {
    /// A request for at most `max_keys` keys under `prefix` strictly after
    /// `start_after`, or, with `continuation`, for the page that token names.
    pub(crate) fn list_objects(&self, page: &PageRequest<'_>) -> Request<'static> {
        let PageRequest {
            prefix,
            start_after,
            continuation,
            max_keys,
        } = *page;
        let max_keys = max_keys.to_string();
        let mut query = Map::new();
        query.insert("list-type", "2");
        query.insert("max-keys", max_keys.as_str());
        query.insert("prefix", prefix);
        if let Some(key) = start_after {
            query.insert("start-after", key);
        }
        if let Some(token) = continuation {
            query.insert("continuation-token", token);
        }
        Request {
            action: "ListObjectsV2",
            method: rusty_s3::Method::Get,
            url: self.sign_bucket_request(rusty_s3::Method::Get, &query, &Map::new()),
            headers: Vec::new(),
            body: Default::default(),
            target: prefix.to_owned(),
            check_body: false,
        }
    }
}

impl ListPage {
    /// Reads a ListObjectsV2 answer. An empty or foreign document, or a
    /// truncated listing without a continuation token, is an error: it
    /// must never read as the end of the log.
    pub(crate) fn parse(body: &[u8]) -> Result<ListPage, Unreadable> {
        let mut page = ListPage::default();
        let mut truncated = false;
        let mut answered = false;
        xml::for_each_leaf(body, |path, text| match path {
            ["ListBucketResult"] => answered = true,
            ["ListBucketResult", "Contents", "Key"] => {
                page.keys.push(text.to_owned());
                page.modified.push(None);
            }
            ["ListBucketResult", "Contents", "LastModified"] => {
                if let Some(last) = page.modified.last_mut() {
                    *last = super::parse_timestamp_ms(text);
                }
            }
            ["ListBucketResult", "IsTruncated"] => truncated = text == "true",
            ["ListBucketResult", "NextContinuationToken"] => {
                page.continuation = Some(text.to_owned())
            }
            _ => {}
        })?;
        if !answered {
            return Err(ProtocolKind::WrongDocument {
                expected: "ListBucketResult",
            }
            .into());
        }
        if !truncated {
            page.continuation = None;
        } else if page.continuation.as_deref().is_none_or(str::is_empty) {
            return Err(ProtocolKind::NoContinuationToken.into());
        }
        Ok(page)
    }
}

/// The page answered to a request that carried the continuation token
/// `sent`. A truncated page that hands the same token back would make the
/// listing ask for it forever: an error naming the store, as is any
/// answer that is not a listing.
fn list_page(request: &Request<'_>, sent: Option<&str>, response: Response) -> Result<ListPage> {
    if response.status != 200 {
        return Err(response.into_error(request));
    }
    let page = ListPage::parse(&response.body).map_err(|e| e.into_error(request))?;
    if page.continuation.is_some() && page.continuation.as_deref() == sent {
        return Err(Unreadable::from(ProtocolKind::RepeatedContinuationToken).into_error(request));
    }
    Ok(page)
}

impl Client {
    /// One page of a listing.
    pub fn list_page(&self, page: &PageRequest<'_>) -> Result<ListPage> {
        let (request, response) = self.call(|signer| signer.list_objects(page))?;
        list_page(&request, page.continuation, response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::s3::tests::{answer, signer};

    fn kind(error: &Error) -> Option<&ProtocolKind> {
        match error {
            Error::Protocol { kind, .. } => Some(kind),
            _ => None,
        }
    }

    fn request() -> Request<'static> {
        signer().list_objects(&PageRequest {
            prefix: "wal/",
            start_after: Some("wal/00000000000000000002"),
            continuation: None,
            max_keys: 16,
        })
    }

    #[test]
    fn a_listing_is_signed_exactly() {
        assert_eq!(
            request().url.as_str(),
            "http://127.0.0.1:9000/bucket/?X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKID%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&\
             X-Amz-Date=20260102T030405Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&\
             list-type=2&max-keys=16&prefix=wal%2F&start-after=wal%2F00000000000000000002&\
             X-Amz-Signature=544f4eeba4b587b15089eae744900b1dda5fa49c9d58042d74d6c23e482a2aac"
        );
    }

    #[test]
    fn listing_is_signed_with_prefix_and_start_after() {
        let url = request().url;
        let query = url.query().unwrap();
        assert!(query.contains("list-type=2"), "{query}");
        assert!(query.contains("max-keys=16"), "{query}");
        assert!(query.contains("prefix=wal%2F"), "{query}");
        assert!(
            query.contains("start-after=wal%2F00000000000000000002"),
            "{query}"
        );
        assert!(query.contains("X-Amz-Signature="), "{query}");
        assert_eq!(url.path(), "/bucket/");
    }

    #[test]
    fn last_page_has_keys_and_no_continuation() {
        let page = list_page(
            &request(),
            None,
            answer(
                200,
                r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name>
<IsTruncated>false</IsTruncated>
<Contents><Key>wal/00000000000000000003</Key><Size>41</Size></Contents>
<Contents><Key>wal/a&amp;b</Key></Contents></ListBucketResult>"#,
            ),
        )
        .unwrap();
        assert_eq!(page.keys, ["wal/00000000000000000003", "wal/a&b"]);
        assert_eq!(page.continuation, None);
    }

    #[test]
    fn truncated_page_carries_its_continuation_token() {
        let page = list_page(
            &request(),
            None,
            answer(
                200,
                "<ListBucketResult><IsTruncated>true</IsTruncated>\
                 <NextContinuationToken>T1</NextContinuationToken></ListBucketResult>",
            ),
        )
        .unwrap();
        assert_eq!(page.continuation.as_deref(), Some("T1"));
    }

    #[test]
    fn truncated_page_without_token_is_a_protocol_error() {
        let error = list_page(
            &request(),
            None,
            answer(
                200,
                "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
            ),
        )
        .unwrap_err();
        assert_eq!(kind(&error), Some(&ProtocolKind::NoContinuationToken));
    }

    #[test]
    fn a_truncated_page_that_repeats_its_token_is_a_protocol_error_naming_the_store() {
        let repeated = "<ListBucketResult><IsTruncated>true</IsTruncated>\
                        <NextContinuationToken>T1</NextContinuationToken></ListBucketResult>";
        let error = list_page(&request(), Some("T1"), answer(200, repeated)).unwrap_err();
        assert_eq!(kind(&error), Some(&ProtocolKind::RepeatedContinuationToken));
        assert_eq!(
            error.to_string(),
            "ListObjectsV2 wal/: a truncated page carries the continuation token that asked \
             for it, so the listing would never end (the store at 127.0.0.1:9000)"
        );
    }

    #[test]
    fn empty_or_foreign_answer_is_not_an_empty_listing() {
        let not_a_listing = ProtocolKind::WrongDocument {
            expected: "ListBucketResult",
        };
        for body in ["", "<Error/>", "<html><body>proxy</body></html>"] {
            let error = list_page(&request(), None, answer(200, body)).unwrap_err();
            assert_eq!(kind(&error), Some(&not_a_listing), "{body:?}");
        }
    }

    #[test]
    fn malformed_listing_is_a_protocol_error() {
        let error = list_page(
            &request(),
            None,
            answer(200, "<ListBucketResult><Contents>"),
        )
        .unwrap_err();
        assert_eq!(kind(&error), Some(&ProtocolKind::MalformedXml));
        let source = std::error::Error::source(&error).unwrap();
        assert_eq!(source.to_string(), "the document ends inside an element");
    }
}
