//! EC2 instance metadata (IMDSv2): a session token from
//! `PUT /latest/api/token`, then the instance role's name and its
//! credentials, each asked with the token.

use std::time::Duration;

use super::http::{Answer, Caller};
use super::{Fetched, from_json};
use crate::http::Failure;

/// How long the session token lives (botocore's value).
const TOKEN_TTL: &str = "21600";

/// The path of the role list and, with the role appended, its credentials.
const ROLE_PATH: &str = "/latest/meta-data/iam/security-credentials/";

/// The metadata service and how to talk to it.
#[derive(Debug, Clone)]
pub(super) struct Imds {
    /// `http://169.254.169.254`, `http://[fd00:ec2::254]`, or
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT`; no trailing slash.
    pub(super) endpoint: String,
    /// `AWS_EC2_METADATA_V1_DISABLED`: never fall back to token-less
    /// requests.
    pub(super) v1_disabled: bool,
    /// `AWS_METADATA_SERVICE_TIMEOUT`: 1 s, so that a laptop without a
    /// metadata service fails fast.
    pub(super) timeout: Duration,
}

/// The endpoint from `AWS_EC2_METADATA_SERVICE_ENDPOINT` and
/// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE`.
pub(super) fn endpoint(custom: Option<&str>, mode: Option<&str>) -> String {
    let endpoint = match (custom, mode) {
        (Some(custom), _) => custom,
        (None, Some(mode)) if mode.eq_ignore_ascii_case("ipv6") => "http://[fd00:ec2::254]",
        _ => "http://169.254.169.254",
    };
    endpoint.trim_end_matches('/').to_owned()
}

/// How the metadata requests of one fetch are made.
enum Session {
    /// With this IMDSv2 token.
    Token(String),
    /// Without one; `put_timed_out` if the token request got no answer.
    V1 { put_timed_out: bool },
}

/// Said when the token PUT got no answer: the usual cause on EC2.
const HOP_LIMIT: &str = "the metadata service did not answer the token request (PUT \
    /latest/api/token) within the timeout; inside a container on EC2 this is the \
    instance's metadata hop limit of 1: raise it to 2 (aws ec2 \
    modify-instance-metadata-options --http-put-response-hop-limit 2)";

impl Imds {
    fn call(
        &self,
        http: &Caller,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.endpoint);
        let body = (method == "PUT").then_some(&b""[..]);
        http.call(method, &url, headers, body, self.timeout)
    }

    /// The session token, or how to go on without one (IMDSv1): an
    /// older metadata service refuses the PUT (403/404/405); one that
    /// does not answer it may be behind a hop limit of 1.
    fn token(&self, http: &Caller) -> Result<Session, String> {
        let headers = [("x-aws-ec2-metadata-token-ttl-seconds", TOKEN_TTL)];
        match self.call(http, "PUT", "/latest/api/token", &headers) {
            Ok(answer) if answer.status == 200 => String::from_utf8(answer.body)
                .map(Session::Token)
                .map_err(|_| "the metadata token is not text".into()),
            Ok(answer) if matches!(answer.status, 403..=405) && !self.v1_disabled => {
                Ok(Session::V1 {
                    put_timed_out: false,
                })
            }
            Ok(answer) => Err(format!(
                "the metadata service refused the token request: HTTP {}",
                answer.status
            )),
            Err(failure) if failure.timed_out() && self.v1_disabled => Err(HOP_LIMIT.into()),
            Err(failure) if failure.timed_out() => Ok(Session::V1 {
                put_timed_out: true,
            }),
            Err(why) => Err(format!(
                "the metadata service at {} cannot be reached: {why}",
                self.endpoint
            )),
        }
    }

    /// A GET with the session's token, if it has one.
    fn get(&self, http: &Caller, path: &str, session: &Session) -> Result<Vec<u8>, String> {
        let headers: Vec<(&str, &str)> = match session {
            Session::Token(token) => vec![("x-aws-ec2-metadata-token", token)],
            Session::V1 { .. } => Vec::new(),
        };
        let answer = match self.call(http, "GET", path, &headers) {
            Ok(answer) => answer,
            Err(failure) if failure.timed_out() => {
                return Err(format!(
                    "no metadata service answered at {} (not on EC2?)",
                    self.endpoint
                ));
            }
            Err(e) => {
                return Err(format!(
                    "the metadata service did not answer GET {path}: {e}"
                ));
            }
        };
        match (answer.status, session) {
            (200, _) => Ok(answer.body),
            (404, _) if path == ROLE_PATH => Err("this instance has no IAM role attached".into()),
            (
                401,
                Session::V1 {
                    put_timed_out: true,
                },
            ) => Err(HOP_LIMIT.into()),
            (status, _) => Err(format!(
                "the metadata service answered GET {path} with HTTP {status}"
            )),
        }
    }

    pub(super) fn fetch(&self, http: &Caller) -> Result<Fetched, String> {
        let session = self.token(http)?;
        let roles = self.get(http, ROLE_PATH, &session)?;
        let roles = String::from_utf8_lossy(&roles);
        let Some(role) = roles.lines().map(str::trim).find(|r| !r.is_empty()) else {
            return Err("this instance has no IAM role attached".into());
        };
        let body = self.get(http, &format!("{ROLE_PATH}{role}"), &session)?;
        from_json(&body, "Token").map_err(|e| format!("role {role}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_follows_the_variables() {
        assert_eq!(endpoint(None, None), "http://169.254.169.254");
        assert_eq!(endpoint(None, Some("IPv6")), "http://[fd00:ec2::254]");
        assert_eq!(
            endpoint(Some("http://127.0.0.1:1/"), Some("IPv6")),
            "http://127.0.0.1:1"
        );
    }
}
