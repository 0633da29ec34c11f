//! STS: `AssumeRoleWithWebIdentity` (unsigned; IRSA, GitHub Actions OIDC)
//! and `AssumeRole` (SigV4-signed; profile `role_arn`). Pure request
//! builders and one answer parser; [`super::http`] sends.

use std::path::PathBuf;
use std::time::Duration;

use rusty_s3::Credentials;
use url::Url;

use super::http::{Answer, Caller};
use super::{Fetched, sigv4};

/// The STS API version both actions are called with.
const VERSION: &str = "2011-06-15";

/// How many times an `IDPCommunicationError` (the identity provider did
/// not answer STS in time) is tried.
const IDP_TRIES: u32 = 3;

/// Where STS is: `AWS_ENDPOINT_URL_STS`, else the regional endpoint (in
/// China's partition under `amazonaws.com.cn`), else (with
/// `AWS_STS_REGIONAL_ENDPOINTS=legacy`, outside China, which has no
/// global endpoint) the global one; and the region that signs for it.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    pub(super) url: Url,
    pub(super) region: String,
}

impl Endpoint {
    /// The endpoint for `region`, from `custom` (`AWS_ENDPOINT_URL_STS`)
    /// and `regional` (`AWS_STS_REGIONAL_ENDPOINTS`).
    pub(super) fn new(
        region: &str,
        custom: Option<&str>,
        regional: Option<&str>,
    ) -> Result<Endpoint, String> {
        let suffix = crate::s3::dns_suffix(region);
        let legacy = regional == Some("legacy") && suffix == "amazonaws.com";
        let (url, region) = match custom {
            Some(url) => (url.to_owned(), region.to_owned()),
            None if legacy => ("https://sts.amazonaws.com".into(), "us-east-1".into()),
            None => (format!("https://sts.{region}.{suffix}"), region.to_owned()),
        };
        let url = Url::parse(&url).map_err(|e| format!("the STS endpoint {url:?}: {e}"))?;
        Ok(Endpoint { url, region })
    }
}

/// `AssumeRoleWithWebIdentity` with the token in `token_file`.
#[derive(Debug, Clone)]
pub(super) struct WebIdentity {
    pub(super) token_file: PathBuf,
    pub(super) role_arn: String,
    pub(super) session_name: String,
    pub(super) endpoint: Endpoint,
}

/// `AssumeRole` of `role_arn`, signed with the source credentials.
#[derive(Debug, Clone)]
pub(super) struct AssumeRole {
    pub(super) role_arn: String,
    pub(super) session_name: String,
    pub(super) external_id: Option<String>,
    pub(super) duration_seconds: Option<String>,
    pub(super) endpoint: Endpoint,
    /// The profile's `mfa_serial`: each call then needs a code, asked for
    /// on the terminal.
    pub(super) mfa_serial: Option<String>,
    /// The code for this call, once asked for.
    pub(super) mfa_code: Option<String>,
}

/// The form body of an STS call.
fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

impl WebIdentity {
    /// The form of the call with `token` (read fresh from the file on
    /// every refresh: it rotates).
    pub(super) fn body(&self, token: &str) -> String {
        form(&[
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", VERSION),
            ("RoleArn", &self.role_arn),
            ("RoleSessionName", &self.session_name),
            ("WebIdentityToken", token),
        ])
    }

    /// Reads the token and calls STS, trying again while the identity
    /// provider is unreachable for STS.
    pub(super) fn fetch(&self, http: &Caller, timeout: Duration) -> Result<Fetched, String> {
        let token = std::fs::read_to_string(&self.token_file).map_err(|e| {
            format!(
                "cannot read the token file {}: {e}",
                self.token_file.display()
            )
        })?;
        let body = self.body(token.trim());
        let mut tries = 0;
        loop {
            tries += 1;
            let answer = post(http, &self.endpoint, &body, &[], timeout)?;
            match parse(&answer) {
                Err(error) if error.contains("IDPCommunicationError") && tries < IDP_TRIES => {
                    std::thread::sleep(Duration::from_millis(200 * u64::from(tries)));
                }
                outcome => return outcome,
            }
        }
    }
}

impl AssumeRole {
    /// The form of the call.
    pub(super) fn body(&self) -> String {
        let mut pairs = vec![
            ("Action", "AssumeRole"),
            ("Version", VERSION),
            ("RoleArn", self.role_arn.as_str()),
            ("RoleSessionName", self.session_name.as_str()),
        ];
        pairs.extend(
            self.duration_seconds
                .as_deref()
                .map(|d| ("DurationSeconds", d)),
        );
        pairs.extend(self.external_id.as_deref().map(|e| ("ExternalId", e)));
        if let (Some(serial), Some(code)) = (&self.mfa_serial, &self.mfa_code) {
            pairs.extend([
                ("SerialNumber", serial.as_str()),
                ("TokenCode", code.as_str()),
            ]);
        }
        form(&pairs)
    }

    /// The headers that sign the call with `source` at `time`
    /// (`YYYYMMDDTHHMMSSZ`).
    pub(super) fn signed_headers(
        &self,
        source: &Credentials,
        time: &str,
    ) -> Vec<(&'static str, String)> {
        let url = &self.endpoint.url;
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let body = self.body();
        let mut headers = vec![("content-type", CONTENT_TYPE.to_owned())];
        headers.extend(sigv4::sign(
            &sigv4::Unsigned {
                method: "POST",
                host: &host,
                path: url.path(),
                query: url.query().unwrap_or(""),
                headers: &[("content-type", CONTENT_TYPE)],
                body: body.as_bytes(),
            },
            &sigv4::Scope {
                key: source.key(),
                secret: source.secret(),
                token: source.token(),
                region: &self.endpoint.region,
                service: "sts",
                time,
            },
        ));
        headers
    }

    /// Calls STS signed with `source`.
    pub(super) fn fetch(
        &self,
        source: &Credentials,
        http: &Caller,
        timeout: Duration,
    ) -> Result<Fetched, String> {
        let mut call = self.clone();
        if let Some(serial) = &self.mfa_serial {
            call.mfa_code = Some(ask_mfa_code(serial)?);
        }
        let time = jiff::Timestamp::now()
            .strftime("%Y%m%dT%H%M%SZ")
            .to_string();
        let headers = call.signed_headers(source, &time);
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = post(http, &call.endpoint, &call.body(), &headers, timeout)?;
        parse(&answer)
    }
}

const CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The MFA code for `serial`, asked for on the controlling terminal (not
/// stdin, which may carry records). Without one (cron, CI) there is no one
/// to ask: a clear error instead of a prompt nobody sees.
fn ask_mfa_code(serial: &str) -> Result<String, String> {
    use std::io::{BufRead, Write};
    let no_terminal = |_| {
        format!(
            "the role needs an MFA code (mfa_serial {serial}) and there is no terminal to \
             ask on: use credentials from `aws configure export-credentials` \
             (credential_process) or aws-vault"
        )
    };
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .map_err(no_terminal)?;
    write!(tty, "MFA code for {serial}: ").map_err(no_terminal)?;
    let mut code = String::new();
    std::io::BufReader::new(&tty)
        .read_line(&mut code)
        .map_err(no_terminal)?;
    let code = code.trim().to_owned();
    match code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()) {
        true => Ok(code),
        false => Err("an MFA code is 6 digits".into()),
    }
}

/// POSTs `body` to STS.
fn post(
    http: &Caller,
    endpoint: &Endpoint,
    body: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Answer, String> {
    let mut all = vec![("content-type", CONTENT_TYPE)];
    all.extend(headers.iter().filter(|(n, _)| *n != "content-type"));
    http.call(
        "POST",
        endpoint.url.as_str(),
        &all,
        Some(body.as_bytes()),
        timeout,
    )
    .map_err(|e| format!("STS at {} did not answer: {e}", host(&endpoint.url)))
}

fn host(url: &Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// The credentials of an STS answer (either action), or STS's error.
pub(super) fn parse(answer: &Answer) -> Result<Fetched, String> {
    let (mut key, mut secret, mut token, mut expiration) = (None, None, None, None);
    let (mut code, mut message) = (None, None);
    crate::s3::for_each_leaf(&answer.body, |path, text| {
        let slot = match path {
            [_, _, "Credentials", field] => match *field {
                "AccessKeyId" => &mut key,
                "SecretAccessKey" => &mut secret,
                "SessionToken" => &mut token,
                "Expiration" => &mut expiration,
                _ => return,
            },
            [.., "Error", "Code"] => &mut code,
            [.., "Error", "Message"] => &mut message,
            _ => return,
        };
        *slot = Some(text.to_owned());
    })
    .map_err(|e| {
        format!(
            "STS answered HTTP {} with malformed XML: {e}",
            answer.status
        )
    })?;
    if answer.status != 200 {
        let code = code.unwrap_or_else(|| "no error code".into());
        let message = message.map(|m| format!(": {m}")).unwrap_or_default();
        return Err(format!(
            "STS refused: HTTP {} {code}{message}",
            answer.status
        ));
    }
    let (Some(key), Some(secret), Some(token), Some(expiration)) = (key, secret, token, expiration)
    else {
        return Err(
            "STS answered without AccessKeyId, SecretAccessKey, SessionToken \
                    and Expiration"
                .into(),
        );
    };
    Ok(Fetched {
        credentials: Credentials::new_with_token(key, secret, token),
        expires: Some(super::parse_time(&expiration)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new("eu-west-1", None, None).unwrap()
    }

    #[test]
    fn endpoints_are_regional_unless_legacy_or_custom() {
        assert_eq!(
            endpoint().url.as_str(),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        let legacy = Endpoint::new("eu-west-1", None, Some("legacy")).unwrap();
        assert_eq!(
            (legacy.url.as_str(), legacy.region.as_str()),
            ("https://sts.amazonaws.com/", "us-east-1")
        );
        let custom = Endpoint::new("eu-west-1", Some("http://127.0.0.1:1"), None).unwrap();
        assert_eq!(custom.url.as_str(), "http://127.0.0.1:1/");
    }

    #[test]
    fn china_regions_call_sts_under_amazonaws_com_cn() {
        for regional in [None, Some("legacy")] {
            let china = Endpoint::new("cn-north-1", None, regional).unwrap();
            assert_eq!(
                (china.url.as_str(), china.region.as_str()),
                ("https://sts.cn-north-1.amazonaws.com.cn/", "cn-north-1"),
                "{regional:?}"
            );
        }
    }

    #[test]
    fn web_identity_form_carries_role_session_and_token() {
        let call = WebIdentity {
            token_file: "/t".into(),
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "s3wal".into(),
            endpoint: endpoint(),
        };
        assert_eq!(
            call.body("a.b+c"),
            "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&\
             RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&RoleSessionName=s3wal&\
             WebIdentityToken=a.b%2Bc"
        );
    }

    fn assume_role() -> AssumeRole {
        AssumeRole {
            role_arn: "arn:aws:iam::1:role/r".into(),
            session_name: "s".into(),
            external_id: Some("x".into()),
            mfa_serial: None,
            mfa_code: None,
            duration_seconds: Some("900".into()),
            endpoint: endpoint(),
        }
    }

    #[test]
    fn assume_role_with_mfa_sends_the_serial_and_the_code() {
        let call = AssumeRole {
            mfa_serial: Some("arn:aws:iam::1:mfa/me".into()),
            mfa_code: Some("123456".into()),
            ..assume_role()
        };
        let body = call.body();
        assert!(
            body.contains("SerialNumber=arn%3Aaws%3Aiam%3A%3A1%3Amfa%2Fme"),
            "{body}"
        );
        assert!(body.contains("TokenCode=123456"), "{body}");
    }

    #[test]
    fn assume_role_form_has_duration_and_external_id() {
        assert!(
            assume_role()
                .body()
                .ends_with("RoleSessionName=s&DurationSeconds=900&ExternalId=x")
        );
    }

    #[test]
    fn assume_role_is_signed_for_sts_in_the_endpoint_region() {
        let source = Credentials::new_with_token("AKID", "SECRET", "TOKEN");
        let headers = assume_role().signed_headers(&source, "20260101T000000Z");
        let names: Vec<&str> = headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "x-amz-date",
                "x-amz-security-token",
                "authorization"
            ]
        );
        let authorization = &headers[3].1;
        assert!(
            authorization.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/sts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature="
            ),
            "{authorization}"
        );
    }

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn reads_the_credentials_of_either_action() {
        for action in ["AssumeRoleWithWebIdentity", "AssumeRole"] {
            let body = format!(
                "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
                 <{action}Result><Credentials><AccessKeyId>AK</AccessKeyId>\
                 <SecretAccessKey>SK</SecretAccessKey><SessionToken>T</SessionToken>\
                 <Expiration>2026-11-24T12:06:15.123456Z</Expiration></Credentials>\
                 </{action}Result></{action}Response>"
            );
            let fetched = parse(&answer(200, &body)).unwrap();
            assert_eq!(fetched.credentials.token(), Some("T"), "{action}");
            assert_eq!(
                fetched.expires.unwrap().to_string(),
                "2026-11-24T12:06:15.123456Z"
            );
        }
    }

    #[test]
    fn sts_errors_name_their_code() {
        let body = "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                    <Message>Not authorized</Message></Error></ErrorResponse>";
        assert_eq!(
            parse(&answer(403, body)).unwrap_err(),
            "STS refused: HTTP 403 AccessDenied: Not authorized"
        );
    }

    #[test]
    fn malformed_or_incomplete_answers_are_errors() {
        let error = parse(&answer(200, "<a><b></a>")).unwrap_err();
        assert!(error.contains("malformed XML"), "{error}");
        let error = parse(&answer(
            200,
            "<R><X><Credentials><AccessKeyId>A</AccessKeyId>\
                                       </Credentials></X></R>",
        ))
        .unwrap_err();
        assert!(error.contains("without AccessKeyId"), "{error}");
    }
}
