//! Where the bucket is: the region, the endpoint URL and how buckets are
//! addressed on it.

use url::Url;

use super::Source;
use crate::error::{Error, Result};
use crate::s3::{AwsEndpoint, is_region_name};

/// `region` if it looks like a region name; it goes into the default
/// endpoint's host name, so anything else could point requests elsewhere.
pub(super) fn check_region(region: &str) -> Result<()> {
    match is_region_name(region) {
        true => Ok(()),
        false => Err(Error::Config(format!(
            "region {region:?} is not a region name like us-east-1"
        ))),
    }
}

/// A true-or-false setting, such as `AWS_USE_FIPS_ENDPOINT`, from where it
/// was `picked`; unset is false.
pub(super) fn boolean(name: &str, picked: Option<(String, Source)>) -> Result<Option<Source>> {
    let Some((value, source)) = picked else {
        return Ok(None);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(Some(source)),
        "false" => Ok(None),
        _ => Err(Error::Config(format!(
            "{name} ({source}) must be true or false, not {value:?}"
        ))),
    }
}

/// AWS's kind of endpoint, or an error if a custom endpoint (`custom`,
/// from where it was set) is set too: FIPS and dual-stack name AWS's own
/// endpoints, and a custom endpoint is neither, so one of the two settings
/// is a mistake (aws CLI refuses them together too).
pub(super) fn aws_endpoint(
    fips: Option<&Source>,
    dualstack: Option<&Source>,
    custom: Option<&Source>,
) -> Result<AwsEndpoint> {
    let conflict = [("FIPS", fips), ("dual-stack", dualstack)]
        .into_iter()
        .find_map(|(kind, asked)| Some((kind, asked?, custom?)));
    match conflict {
        Some((kind, asked, custom)) => Err(Error::Config(format!(
            "a {kind} endpoint ({asked}) is one of AWS's and cannot be combined with a \
             custom endpoint ({custom}): drop one of them"
        ))),
        None => Ok(AwsEndpoint {
            fips: fips.is_some(),
            dualstack: dualstack.is_some(),
        }),
    }
}

/// How buckets are addressed, `endpoint/bucket` (path-style) rather than
/// `bucket.endpoint` (virtual-hosted), and why, as doctor shows it:
/// path-style when asked for, on anything but AWS's own endpoints, and
/// for a bucket name that cannot be a host name label (a dotted one
/// breaks the TLS wildcard of a virtual host).
pub(super) fn addressing(asked: bool, endpoint: &Url, bucket: &str) -> (bool, &'static str) {
    let aws = endpoint.host_str().is_some_and(|host| {
        host.ends_with(".amazonaws.com") || host.ends_with(".amazonaws.com.cn")
    });
    let label = (3..=63).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !bucket.starts_with('-')
        && !bucket.ends_with('-');
    match (asked, aws, label) {
        (true, _, _) => (true, "path-style"),
        (false, false, _) => (true, "path-style (not an AWS endpoint)"),
        (false, true, false) => (true, "path-style (the bucket name is no host name)"),
        (false, true, true) => (false, "virtual-hosted"),
    }
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
    if !raw.contains("://") && Url::parse(&format!("http://{raw}")).is_ok() {
        return Err(bad(&format!(
            "has no scheme: write http://{shown} or https://{shown}"
        )));
    }
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

    fn path_style(asked: bool, endpoint: &str, bucket: &str) -> bool {
        addressing(asked, &endpoint.parse().unwrap(), bucket).0
    }

    #[test]
    fn only_aws_endpoints_with_host_name_buckets_are_virtual_hosted() {
        let aws = "https://s3.us-east-1.amazonaws.com/";
        let china = "https://s3.cn-north-1.amazonaws.com.cn/";
        assert!(!path_style(false, aws, "logs"));
        assert!(!path_style(false, china, "logs"));
        assert!(path_style(true, aws, "logs"));
        assert!(path_style(false, "http://ceph.internal:8080", "logs"));
    }

    #[test]
    fn bucket_names_that_are_no_host_name_label_stay_path_style() {
        let aws = "https://s3.us-east-1.amazonaws.com/";
        for bucket in ["my.logs", "192.168.1.1", "Logs", "my_logs", "-logs", "ab"] {
            assert!(path_style(false, aws, bucket), "{bucket}");
        }
        assert!(!path_style(false, aws, &"a".repeat(63)));
        assert!(path_style(false, aws, &"a".repeat(64)));
    }

    #[test]
    fn fips_or_dualstack_with_a_custom_endpoint_is_an_error() {
        let env = |name| Some(Source::Env(name));
        let fips = env("AWS_USE_FIPS_ENDPOINT");
        let dualstack = env("AWS_USE_DUALSTACK_ENDPOINT");
        let custom = Some(Source::Flag("--endpoint"));
        let error = aws_endpoint(fips.as_ref(), None, custom.as_ref()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "a FIPS endpoint (env AWS_USE_FIPS_ENDPOINT) is one of AWS's and cannot be \
             combined with a custom endpoint (--endpoint): drop one of them"
        );
        assert!(aws_endpoint(None, dualstack.as_ref(), custom.as_ref()).is_err());
        let both = aws_endpoint(fips.as_ref(), dualstack.as_ref(), None).unwrap();
        assert_eq!(
            both,
            AwsEndpoint {
                fips: true,
                dualstack: true
            }
        );
    }

    #[test]
    fn booleans_are_true_or_false_in_any_case() {
        let picked = |value: &str| Some((value.to_owned(), Source::Env("AWS_USE_FIPS_ENDPOINT")));
        let name = "AWS_USE_FIPS_ENDPOINT";
        assert!(boolean(name, picked("TRUE")).unwrap().is_some());
        assert!(boolean(name, picked("false")).unwrap().is_none());
        assert!(boolean(name, None).unwrap().is_none());
        let error = boolean(name, picked("yes")).unwrap_err().to_string();
        assert!(error.contains("must be true or false"), "{error}");
    }
}
