//! Following a bucket to its region, as botocore's S3 redirector does.
//!
//! A bucket lives in one region, and S3 only serves it there: a request
//! sent to another region's endpoint, or signed for another region, is
//! answered with the bucket's region instead (a 301 `PermanentRedirect`,
//! a 400 `AuthorizationHeaderMalformed`, or for presigned requests such as
//! s3wal's a 400 `AuthorizationQueryParametersError`), in the
//! `x-amz-bucket-region` header or the `<Region>` of the error body. The
//! request is then signed once more for that region, and the region is
//! remembered. Only on AWS's own endpoints: a custom endpoint (MinIO, Ceph
//! RGW, a gateway) is where the user said the bucket is, and its region
//! is whatever the user configured.

use url::Url;

use super::xml;
use crate::error::{Error, Result};

/// AWS's S3 endpoints, one per region: which kind the user chose
/// (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AwsEndpoint {
    /// FIPS 140 validated endpoints (`s3-fips.<region>…`).
    pub fips: bool,
    /// Endpoints that answer over IPv6 too (`s3.dualstack.<region>…`).
    pub dualstack: bool,
}

impl AwsEndpoint {
    /// The endpoint of this kind in `region`, such as
    /// `https://s3-fips.dualstack.us-east-1.amazonaws.com/`; China's
    /// regions are under `amazonaws.com.cn`.
    pub fn url(self, region: &str) -> Result<Url> {
        if !is_region_name(region) {
            return Err(Error::Config(format!(
                "region {region:?} is not a region name like us-east-1"
            )));
        }
        let service = if self.fips { "s3-fips" } else { "s3" };
        let dualstack = if self.dualstack { ".dualstack" } else { "" };
        let suffix = dns_suffix(region);
        let raw = format!("https://{service}{dualstack}.{region}.{suffix}/");
        Url::parse(&raw).map_err(|e| Error::Config(format!("endpoint {raw}: {e}")))
    }
}

/// Whether `region` looks like a region name. It goes into the endpoint's
/// host name, whether the user or an answer named it, so anything else
/// could send requests elsewhere.
pub(crate) fn is_region_name(region: &str) -> bool {
    !region.is_empty()
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The domain of the AWS partition `region` is in (S3's and STS's).
pub(crate) fn dns_suffix(region: &str) -> &'static str {
    match region.starts_with("cn-") {
        true => "amazonaws.com.cn",
        false => "amazonaws.com",
    }
}

/// The parts of an answer that may say where the bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Answer<'a> {
    /// The HTTP status.
    pub status: u16,
    /// The `x-amz-bucket-region` header.
    pub header: Option<&'a str>,
    /// The body: an S3 error, or nothing for a HEAD.
    pub body: &'a [u8],
}

/// What to do after an answer to a request signed for one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Next {
    /// The answer is the answer: it names no other region.
    Keep,
    /// Sign the request again for this region, on this kind of AWS
    /// endpoint there.
    Follow(AwsEndpoint, String),
    /// The answer says the bucket is in this region, but the request may
    /// not follow it there: the error says so.
    Elsewhere(String),
}

/// What to do after `answer` to a request signed for `signed_for`: follow
/// the bucket to the region it names on AWS's endpoints of kind `aws`;
/// never on a custom endpoint (`aws` is `None`), which is where the user
/// said the bucket is, nor a second time for one request (the caller
/// passes `None` then).
pub(crate) fn next(answer: &Answer<'_>, signed_for: &str, aws: Option<AwsEndpoint>) -> Next {
    match (region_named(answer, signed_for), aws) {
        (None, _) => Next::Keep,
        (Some(region), Some(aws)) => Next::Follow(aws, region),
        (Some(region), None) => Next::Elsewhere(region),
    }
}

/// The region the answer says the bucket is in, if it is not
/// `signed_for`: only a well-formed region of the same partition (a
/// region never moves a request out of `amazonaws.com`).
///
/// The answers that say so: a redirect (301, and 302 or 307 as botocore
/// also takes), or a 400 `AuthorizationHeaderMalformed` or
/// `AuthorizationQueryParametersError`, or a 400 without a body (HEAD).
/// The region is the header's, else the body's. Any other 400 may carry
/// the header too, and means something else.
fn region_named(answer: &Answer<'_>, signed_for: &str) -> Option<String> {
    // Only these answers' bodies are read: a 200's may be a 5 GiB record.
    if !matches!(answer.status, 301 | 302 | 307 | 400) {
        return None;
    }
    let error = xml::parse_error(answer.body);
    let wrong_region = answer.status != 400
        || matches!(
            error.code.as_deref(),
            None | Some("AuthorizationHeaderMalformed" | "AuthorizationQueryParametersError")
        );
    let region = answer.header.or(error.region.as_deref())?;
    let follow = wrong_region
        && region != signed_for
        && is_region_name(region)
        && dns_suffix(region) == dns_suffix(signed_for);
    follow.then(|| region.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer of `status` with the `x-amz-bucket-region` header
    /// `header`, and an S3 error body with `code` and `<Region>` `region`
    /// if either is given.
    struct Given {
        status: u16,
        header: Option<&'static str>,
        body: Vec<u8>,
    }

    fn answer(
        status: u16,
        code: Option<&str>,
        header: Option<&'static str>,
        region: Option<&str>,
    ) -> Given {
        let field = |name, value: Option<&str>| match value {
            Some(value) => format!("<{name}>{value}</{name}>"),
            None => String::new(),
        };
        let body = match (code, region) {
            (None, None) => String::new(),
            _ => format!(
                "<Error>{}<Message>m</Message>{}</Error>",
                field("Code", code),
                field("Region", region)
            ),
        };
        Given {
            status,
            header,
            body: body.into_bytes(),
        }
    }

    /// What s3wal does after `given`, for a request signed for
    /// `signed_for`, on AWS's endpoints of kind `aws` or a custom one.
    fn decide(given: &Given, signed_for: &str, aws: Option<AwsEndpoint>) -> Next {
        let answer = Answer {
            status: given.status,
            header: given.header,
            body: &given.body,
        };
        next(&answer, signed_for, aws)
    }

    /// Where s3wal goes after `given` to a request signed for us-east-1
    /// on AWS's plain endpoint.
    fn followed(given: Given) -> Option<String> {
        match decide(&given, "us-east-1", Some(AwsEndpoint::default())) {
            Next::Follow(aws, region) => {
                assert_eq!(aws, AwsEndpoint::default());
                Some(region)
            }
            Next::Keep => None,
            Next::Elsewhere(region) => panic!("not followed to {region} on AWS"),
        }
    }

    const EU: Option<&str> = Some("eu-west-1");

    #[test]
    fn a_permanent_redirect_is_followed_to_the_region_its_header_names() {
        let redirect = answer(301, Some("PermanentRedirect"), EU, None);
        assert_eq!(followed(redirect).as_deref(), EU);
    }

    #[test]
    fn a_head_redirect_without_a_body_is_followed_by_its_header() {
        assert_eq!(followed(answer(301, None, EU, None)).as_deref(), EU);
        assert_eq!(followed(answer(400, None, EU, None)).as_deref(), EU);
    }

    #[test]
    fn a_wrong_region_signature_is_followed_to_the_region_its_body_names() {
        for code in [
            "AuthorizationHeaderMalformed",
            "AuthorizationQueryParametersError",
        ] {
            let refused = answer(400, Some(code), None, EU);
            assert_eq!(followed(refused).as_deref(), EU, "{code}");
        }
    }

    #[test]
    fn temporary_redirects_are_followed_too() {
        for status in [302, 307] {
            let redirect = answer(status, Some("TemporaryRedirect"), EU, None);
            assert_eq!(followed(redirect).as_deref(), EU, "{status}");
        }
    }

    #[test]
    fn the_header_beats_the_body() {
        let both = answer(301, Some("PermanentRedirect"), EU, Some("ap-south-1"));
        assert_eq!(followed(both).as_deref(), EU);
    }

    #[test]
    fn a_custom_endpoint_is_never_redirected_but_told_where_the_bucket_is() {
        for status in [301, 400] {
            let refused = answer(status, Some("AuthorizationHeaderMalformed"), EU, EU);
            let decided = decide(&refused, "us-east-1", None);
            assert_eq!(decided, Next::Elsewhere("eu-west-1".into()));
        }
    }

    #[test]
    fn the_kind_of_aws_endpoint_is_kept_when_following() {
        let fips = AwsEndpoint {
            fips: true,
            dualstack: false,
        };
        let redirect = answer(301, Some("PermanentRedirect"), EU, None);
        let decided = decide(&redirect, "us-east-1", Some(fips));
        assert_eq!(decided, Next::Follow(fips, "eu-west-1".into()));
    }

    #[test]
    fn an_answer_that_names_no_region_is_an_error() {
        let refused = answer(400, Some("AuthorizationQueryParametersError"), None, None);
        assert_eq!(followed(refused), None);
        assert_eq!(followed(answer(301, None, None, None)), None);
    }

    #[test]
    fn the_region_already_signed_for_is_not_followed_again() {
        let same = answer(301, Some("PermanentRedirect"), Some("us-east-1"), None);
        assert_eq!(followed(same), None);
    }

    #[test]
    fn other_answers_naming_a_region_are_not_redirects() {
        for (status, code) in [
            (400, Some("InvalidArgument")),
            (400, Some("AuthorizationHeaderMalformed2")),
            (403, Some("AccessDenied")),
            (403, None),
            (404, Some("NoSuchBucket")),
            (200, None),
            (500, None),
        ] {
            assert_eq!(followed(answer(status, code, EU, EU)), None, "{status}");
        }
    }

    #[test]
    fn a_region_that_is_no_region_name_is_never_followed() {
        for bad in ["evil.example.com:443/", "EU-WEST-1", ""] {
            let header = answer(301, None, None, None);
            let header = Given {
                header: Some(bad),
                ..header
            };
            assert_eq!(followed(header), None, "{bad:?}");
            let body = answer(400, Some("AuthorizationHeaderMalformed"), None, Some(bad));
            assert_eq!(followed(body), None, "{bad:?}");
        }
    }

    #[test]
    fn a_redirect_never_leaves_the_partition() {
        let to_china = answer(301, None, Some("cn-north-1"), None);
        assert_eq!(followed(to_china), None);
        let within_china = answer(301, None, Some("cn-northwest-1"), None);
        let decided = decide(&within_china, "cn-north-1", Some(AwsEndpoint::default()));
        assert_eq!(
            decided,
            Next::Follow(AwsEndpoint::default(), "cn-northwest-1".into())
        );
    }

    #[test]
    fn every_kind_of_aws_endpoint_has_its_host() {
        let kinds = [
            (false, false, "s3.us-east-1.amazonaws.com"),
            (true, false, "s3-fips.us-east-1.amazonaws.com"),
            (false, true, "s3.dualstack.us-east-1.amazonaws.com"),
            (true, true, "s3-fips.dualstack.us-east-1.amazonaws.com"),
        ];
        for (fips, dualstack, host) in kinds {
            let url = AwsEndpoint { fips, dualstack }.url("us-east-1").unwrap();
            assert_eq!(
                url.as_str(),
                format!("https://{host}/"),
                "{fips} {dualstack}"
            );
        }
    }

    #[test]
    fn china_regions_are_under_amazonaws_com_cn() {
        let plain = AwsEndpoint::default().url("cn-north-1").unwrap();
        assert_eq!(plain.as_str(), "https://s3.cn-north-1.amazonaws.com.cn/");
        let dualstack = AwsEndpoint {
            dualstack: true,
            ..AwsEndpoint::default()
        };
        assert_eq!(
            dualstack.url("cn-northwest-1").unwrap().as_str(),
            "https://s3.dualstack.cn-northwest-1.amazonaws.com.cn/"
        );
    }

    #[test]
    fn an_endpoint_is_only_made_for_a_region_name() {
        assert!(AwsEndpoint::default().url("x.evil.com:8/").is_err());
    }
}
