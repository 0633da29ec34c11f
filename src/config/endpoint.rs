//! Where the bucket is: the region, the endpoint URL and how buckets are
//! addressed on it.

use url::Url;

use crate::error::{Error, Result};

/// `region` if it looks like a region name; it goes into the default
/// endpoint's host name, so anything else could point requests elsewhere.
pub(super) fn check_region(region: &str) -> Result<()> {
    match region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        true => Ok(()),
        false => Err(Error::Config(format!(
            "region {region:?} is not a region name like us-east-1"
        ))),
    }
}

/// AWS's endpoint for `region`.
pub(super) fn aws_endpoint(region: &str) -> Result<Url> {
    parse_endpoint(&format!("https://s3.{region}.amazonaws.com"))
}

/// Whether buckets are addressed as `endpoint/bucket` rather than
/// `bucket.endpoint`: asked for, or anything but AWS's own endpoints,
/// or a dotted bucket name, which breaks the TLS wildcard of a virtual
/// host.
pub(super) fn path_style(asked: bool, endpoint: &Url, bucket: &str) -> bool {
    let aws = endpoint
        .host_str()
        .is_some_and(|host| host.ends_with(".amazonaws.com"));
    asked || !aws || bucket.contains('.')
}

/// An endpoint URL: http or https, a host, no user info, query or
/// fragment.
pub(super) fn parse_endpoint(raw: &str) -> Result<Url> {
    // An endpoint may carry a password (`http://user:pass@host`): never echo it.
    let shown = if raw.contains('@') {
        "(with user info)"
    } else {
        raw
    };
    let bad = |why: &str| Error::Config(format!("endpoint {shown:?} {why}"));
    let url = Url::parse(raw).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none() {
        return Err(bad("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(without_trailing_slashes(url))
}

/// `http://h:9000//` as `http://h:9000/`: a doubled slash would go into
/// every signed path (`//bucket/key`) while the store normalises it away
/// before checking, so every request would fail with SignatureDoesNotMatch.
fn without_trailing_slashes(mut url: Url) -> Url {
    let path = format!("{}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_slashes_of_the_endpoint_are_one() {
        for (raw, expected) in [
            ("http://127.0.0.1:9000//", "http://127.0.0.1:9000/"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000/"),
            ("https://gw.example/s3///", "https://gw.example/s3/"),
        ] {
            assert_eq!(parse_endpoint(raw).unwrap().as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn endpoint_must_be_an_http_url() {
        for bad in ["ftp://x", "not a url", "http://h/?a=b", "http://h/#f"] {
            assert!(parse_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn endpoint_password_is_refused_and_never_echoed() {
        let error = parse_endpoint("http://user:hunter2@h:1").unwrap_err();
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn region_must_look_like_a_region() {
        assert!(check_region("eu-west-1").is_ok());
        assert!(check_region("x.evil.com:8/").is_err());
    }

    #[test]
    fn only_aws_endpoints_with_undotted_buckets_are_virtual_hosted() {
        let aws = aws_endpoint("us-east-1").unwrap();
        let ceph: Url = "http://ceph.internal:8080".parse().unwrap();
        assert!(!path_style(false, &aws, "logs"));
        assert!(path_style(true, &aws, "logs"));
        assert!(path_style(false, &aws, "my.logs"));
        assert!(path_style(false, &ceph, "logs"));
    }
}
