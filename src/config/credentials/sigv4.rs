//! AWS Signature Version 4 in an `Authorization` header, for the one
//! signed request of the credential chain (STS `AssumeRole`): rusty-s3
//! signs for the `s3` service only, and only in query strings.

use sha2::{Digest, Sha256};

/// A request to sign: its parts as they will be sent.
#[derive(Debug)]
pub(super) struct Unsigned<'a> {
    pub(super) method: &'a str,
    pub(super) host: &'a str,
    /// The path, already URI-encoded as it is sent.
    pub(super) path: &'a str,
    /// The query string as sent, without `?`.
    pub(super) query: &'a str,
    /// Headers besides `host` and `x-amz-date`, lower-case names.
    pub(super) headers: &'a [(&'a str, &'a str)],
    pub(super) body: &'a [u8],
}

/// Who signs, where and when.
#[derive(Debug)]
pub(super) struct Scope<'a> {
    pub(super) key: &'a str,
    pub(super) secret: &'a str,
    pub(super) token: Option<&'a str>,
    pub(super) region: &'a str,
    pub(super) service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub(super) time: &'a str,
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    match key.len() > 64 {
        true => block[..32].copy_from_slice(&Sha256::digest(key)),
        false => block[..key.len()].copy_from_slice(key),
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The query string in canonical form: pairs sorted by name, then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(&str, &str)> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
        .collect();
    pairs.sort_unstable();
    let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.join("&")
}

/// The headers to add to the request: `x-amz-date`, the session token if
/// any, and `authorization`.
pub(super) fn sign(request: &Unsigned<'_>, scope: &Scope<'_>) -> Vec<(&'static str, String)> {
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .chain([
            ("host".to_owned(), request.host.to_owned()),
            ("x-amz-date".to_owned(), scope.time.to_owned()),
        ])
        .chain(
            scope
                .token
                .map(|token| ("x-amz-security-token".to_owned(), token.to_owned())),
        )
        .collect();
    headers.sort();
    let signed: Vec<&str> = headers.iter().map(|(name, _)| name.as_str()).collect();
    let signed = signed.join(";");
    let canonical: String = headers.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
    let canonical_request = format!(
        "{}\n{}\n{}\n{canonical}\n{signed}\n{}",
        request.method,
        request.path,
        canonical_query(request.query),
        hex::encode(Sha256::digest(request.body))
    );
    let date = &scope.time[..8];
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{credential_scope}\n{}",
        scope.time,
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let key = [date, scope.region, scope.service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{}", scope.secret).into_bytes(), |key, part| {
            hmac(&key, part.as_bytes()).to_vec()
        });
    let signature = hex::encode(hmac(&key, to_sign.as_bytes()));
    let mut added = vec![("x-amz-date", scope.time.to_owned())];
    added.extend(scope.token.map(|t| ("x-amz-security-token", t.to_owned())));
    added.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{credential_scope}, SignedHeaders={signed}, \
             Signature={signature}",
            scope.key
        ),
    ));
    added
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases of AWS's published SigV4 test suite (aws-sig-v4-test-suite):
    /// (name, method, path, query, headers, body, expected authorization).
    /// All use its key, secret, region, service and time.
    #[allow(clippy::type_complexity)]
    const SUITE: &[(&str, &str, &str, &str, &[(&str, &str)], &str, &str)] = &[
        (
            "get-vanilla",
            "GET",
            "/",
            "",
            &[],
            "",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        ),
        (
            "get-vanilla-query-order-key-case",
            "GET",
            "/",
            "Param2=value2&Param1=value1",
            &[],
            "",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        ),
        (
            "post-x-www-form-urlencoded",
            "POST",
            "/",
            "",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            "Param1=value1",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
             SignedHeaders=content-type;host;x-amz-date, \
             Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        ),
    ];

    #[test]
    fn signs_as_the_aws_sigv4_test_suite_expects() {
        for (name, method, path, query, headers, body, expected) in SUITE {
            let request = Unsigned {
                method,
                host: "example.amazonaws.com",
                path,
                query,
                headers,
                body: body.as_bytes(),
            };
            let scope = Scope {
                key: "AKIDEXAMPLE",
                secret: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                token: None,
                region: "us-east-1",
                service: "service",
                time: "20150830T123600Z",
            };
            let added = sign(&request, &scope);
            assert_eq!(
                added[0],
                ("x-amz-date", "20150830T123600Z".into()),
                "{name}"
            );
            assert_eq!(added.last().unwrap().1, *expected, "{name}");
        }
    }

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let mac = hmac(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
