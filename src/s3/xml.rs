//! The little XML S3 speaks, read with quick-xml.
//!
//! S3 answers are shallow documents; every action only needs the text of a
//! few leaf elements, named by their path (`ListBucketResult/Contents/Key`).
//! [`for_each_leaf`] walks a document once and hands out each element's
//! path and full text, with entities resolved.

use quick_xml::escape::resolve_predefined_entity;
use quick_xml::events::Event;
use quick_xml::reader::Reader;

/// Why a document could not be read.
#[derive(Debug)]
pub(crate) enum XmlError {
    /// The bytes are not UTF-8.
    NotUtf8(std::str::Utf8Error),
    /// quick-xml could not read it.
    Malformed(quick_xml::Error),
    /// An entity that is neither predefined nor a character reference.
    UnknownEntity(String),
    /// The document ends inside an element: it was cut short.
    Unclosed,
}

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XmlError::NotUtf8(e) => write!(f, "not UTF-8: {e}"),
            XmlError::Malformed(e) => e.fmt(f),
            XmlError::UnknownEntity(name) => write!(f, "unknown entity &{name};"),
            XmlError::Unclosed => f.write_str("the document ends inside an element"),
        }
    }
}

impl std::error::Error for XmlError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            XmlError::NotUtf8(e) => Some(e),
            XmlError::Malformed(e) => Some(e),
            XmlError::UnknownEntity(_) | XmlError::Unclosed => None,
        }
    }
}

/// Calls `visit` with the path of element names and the text of every
/// element, at its end tag. Fails on malformed or truncated XML.
pub(crate) fn for_each_leaf(
    xml: &[u8],
    mut visit: impl FnMut(&[&str], &str),
) -> Result<(), XmlError> {
    let xml = std::str::from_utf8(xml).map_err(XmlError::NotUtf8)?;
    let mut reader = Reader::from_str(xml);
    let mut names: Vec<String> = Vec::new();
    let mut text = String::new();
    loop {
        match reader.read_event().map_err(XmlError::Malformed)? {
            Event::Start(start) => {
                names.push(start.local_name().as_ref().to_owned());
                text.clear();
            }
            Event::Empty(empty) => {
                names.push(empty.local_name().as_ref().to_owned());
                visit(&path(&names), "");
                names.pop();
            }
            Event::End(_) => {
                visit(&path(&names), &text);
                names.pop();
                text.clear();
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(c) => text.push_str(&c),
            Event::GeneralRef(r) => match r.resolve_char_ref() {
                Ok(Some(ch)) => text.push(ch),
                _ => match resolve_predefined_entity(&r) {
                    Some(s) => text.push_str(s),
                    None => return Err(XmlError::UnknownEntity(r.to_string())),
                },
            },
            Event::Eof => break,
            _ => {}
        }
    }
    if names.is_empty() {
        Ok(())
    } else {
        Err(XmlError::Unclosed)
    }
}

fn path(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

/// The fields of an S3 `<Error>` body that are worth showing.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ErrorBody {
    /// The error code, such as `NoSuchKey`.
    pub code: Option<String>,
    /// The human-readable message, when not empty.
    pub message: Option<String>,
    /// The request id, for the store's operators.
    pub request_id: Option<String>,
    /// The bucket's region, which S3 names when a request went to or was
    /// signed for the wrong one (`AuthorizationHeaderMalformed`,
    /// `AuthorizationQueryParametersError`, `PermanentRedirect`).
    pub region: Option<String>,
    /// The bucket a `NoSuchBucket` answer names.
    pub bucket: Option<String>,
}

/// Reads an S3 error body. Anything unreadable (HTML from a proxy, an
/// empty body) gives empty fields: the HTTP status still tells the story.
pub fn parse_error(body: &[u8]) -> ErrorBody {
    let mut error = ErrorBody::default();
    let parsed = for_each_leaf(body, |path, text| {
        let field = match path {
            ["Error", "Code"] => &mut error.code,
            ["Error", "Message"] => &mut error.message,
            ["Error", "RequestId"] => &mut error.request_id,
            ["Error", "Region"] => &mut error.region,
            ["Error", "BucketName"] => &mut error.bucket,
            _ => return,
        };
        // Ceph RGW sends an empty <Message/>: no message, not an empty one.
        if !text.is_empty() {
            *field = Some(text.to_owned());
        }
    });
    match parsed {
        Ok(()) => error,
        Err(_) => ErrorBody::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_gives_code_message_and_request_id() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access &amp; denied</Message><RequestId>R1</RequestId></Error>"#;
        assert_eq!(
            parse_error(body),
            ErrorBody {
                code: Some("AccessDenied".into()),
                message: Some("Access & denied".into()),
                request_id: Some("R1".into()),
                region: None,
                bucket: None,
            }
        );
    }

    #[test]
    fn wrong_region_error_names_the_buckets_region() {
        let body = b"<Error><Code>AuthorizationHeaderMalformed</Code><Message>the region \
            'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region>\
            <RequestId>R2</RequestId></Error>";
        assert_eq!(parse_error(body).region.as_deref(), Some("eu-west-1"));
    }

    #[test]
    fn empty_message_element_is_no_message() {
        let body = b"<Error><Code>PreconditionFailed</Code><Message/></Error>";
        let error = parse_error(body);
        assert_eq!(error.code.as_deref(), Some("PreconditionFailed"));
        assert_eq!(error.message, None);
    }

    #[test]
    fn unreadable_error_body_gives_no_fields() {
        for body in [
            &b""[..],
            b"<html>oops",
            b"\xff\xfe",
            b"<Error><Code>X</Error>",
        ] {
            assert_eq!(parse_error(body), ErrorBody::default());
        }
    }

    #[test]
    fn character_references_are_resolved() {
        let mut seen = Vec::new();
        for_each_leaf(b"<a><b>x&#65;&#x42;y</b></a>", |path, text| {
            seen.push((path.join("/"), text.to_owned()))
        })
        .unwrap();
        assert_eq!(seen[0], ("a/b".to_owned(), "xABy".to_owned()));
    }

    #[test]
    fn truncated_document_is_an_error() {
        let error = for_each_leaf(b"<a><b>x</b>", |_, _| {}).unwrap_err();
        assert!(matches!(error, XmlError::Unclosed), "{error:?}");
    }
}
