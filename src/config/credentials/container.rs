//! The ECS/EKS Pod Identity container endpoint:
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` under `169.254.170.2`, or
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` where it is safe to send the
//! authorization token.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::http::Caller;
use super::{Fetched, from_json};

/// The ECS agent's address for relative URIs.
const ECS_HOST: &str = "http://169.254.170.2";

/// botocore's limits: 2 s a try, 3 tries.
const TIMEOUT: Duration = Duration::from_secs(2);
const TRIES: u32 = 3;

/// Where the authorization header comes from, if anywhere.
#[derive(Clone)]
pub(super) enum Authorization {
    None,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`, read on every fetch
    /// (EKS Pod Identity rotates it).
    File(PathBuf),
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
    Token(String),
}

/// The container endpoint and its authorization.
#[derive(Debug, Clone)]
pub(super) struct Container {
    pub(super) url: Url,
    pub(super) authorization: Authorization,
}

/// The endpoint from the two variables; a full URI must be HTTPS, on a
/// loopback address, or one of the documented link-local hosts, so that
/// the token never goes anywhere else.
/// The token is a credential: never shown.
impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Authorization::None => f.write_str("None"),
            Authorization::File(path) => f.debug_tuple("File").field(path).finish(),
            Authorization::Token(_) => f.write_str("Token(..)"),
        }
    }
}

pub(super) fn endpoint(relative: Option<&str>, full: Option<&str>) -> Result<Url, String> {
    if let Some(relative) = relative {
        // A path on the ECS agent's host and nowhere else: `@evil/x` or
        // `.evil/x` would otherwise move the token to another host.
        let url = Url::parse(&format!("{ECS_HOST}{relative}"))
            .map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: {e}"))?;
        let on_the_agent = relative.starts_with('/')
            && url.host_str() == Some("169.254.170.2")
            && url.username().is_empty()
            && url.password().is_none();
        return match on_the_agent {
            true => Ok(url),
            false => Err(
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must be a path such as \
                          /v2/credentials/…"
                    .into(),
            ),
        };
    }
    let full = full.unwrap_or_default();
    let url = Url::parse(full).map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI: {e}"))?;
    let allowed = match (url.scheme(), url.host()) {
        ("https", _) => true,
        ("http", Some(url::Host::Domain(name))) => name == "localhost",
        ("http", Some(url::Host::Ipv4(ip))) => allowed_ip(IpAddr::V4(ip)),
        ("http", Some(url::Host::Ipv6(ip))) => allowed_ip(IpAddr::V6(ip)),
        _ => false,
    };
    match allowed {
        true => Ok(url),
        false => Err(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, a loopback address, \
             169.254.170.2, 169.254.170.23 or fd00:ec2::23, not {}",
            url.host_str().unwrap_or_default()
        )),
    }
}

fn allowed_ip(ip: IpAddr) -> bool {
    let link_local: [IpAddr; 3] = [
        [169, 254, 170, 2].into(),
        [169, 254, 170, 23].into(),
        [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23].into(),
    ];
    ip.is_loopback() || link_local.contains(&ip)
}

impl Container {
    /// The `Authorization` value, if any; CR or LF in it is refused (it
    /// would smuggle headers).
    fn authorization(&self) -> Result<Option<String>, String> {
        let token = match &self.authorization {
            Authorization::None => return Ok(None),
            Authorization::Token(token) => token.clone(),
            Authorization::File(path) => std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?,
        };
        let token = token.trim();
        match token.contains(['\r', '\n']) {
            true => Err("the authorization token holds a line break".into()),
            false => Ok(Some(token.to_owned())),
        }
    }

    pub(super) fn fetch(&self, http: &Caller) -> Result<Fetched, String> {
        let authorization = self.authorization()?;
        let headers: Vec<(&str, &str)> = authorization
            .iter()
            .map(|token| ("authorization", token.as_str()))
            .collect();
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            match http.call("GET", self.url.as_str(), &headers, None, TIMEOUT) {
                Ok(answer) => break answer,
                Err(_) if tries < TRIES => continue,
                Err(e) => {
                    let host = self.url.host_str().unwrap_or_default();
                    return Err(format!("the endpoint {host} did not answer: {e}"));
                }
            }
        };
        if answer.status != 200 {
            return Err(format!("the endpoint answered HTTP {}", answer.status));
        }
        from_json(&answer.body, "Token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_relative_uri_never_leaves_the_agent_host() {
        for relative in ["@evil.com/x", ".evil.com/x", "x", ":80@evil/x"] {
            assert!(endpoint(Some(relative), None).is_err(), "{relative}");
        }
        assert!(endpoint(Some("/v2/credentials/abc"), None).is_ok());
    }

    #[test]
    fn the_authorization_token_is_never_shown() {
        let shown = format!("{:?}", Authorization::Token("secret-token".into()));
        assert!(!shown.contains("secret-token"), "{shown}");
    }

    #[test]
    fn relative_uris_go_to_the_ecs_agent() {
        let url = endpoint(Some("/v2/credentials/abc"), None).unwrap();
        assert_eq!(url.as_str(), "http://169.254.170.2/v2/credentials/abc");
    }

    #[test]
    fn full_uris_must_be_https_loopback_or_documented_link_local() {
        for ok in [
            "https://example.com/creds",
            "http://127.0.0.1:8080/creds",
            "http://localhost/creds",
            "http://[::1]/creds",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
        ] {
            assert!(endpoint(None, Some(ok)).is_ok(), "{ok}");
        }
        for refused in [
            "http://example.com/creds",
            "http://10.0.0.1/",
            "ftp://127.0.0.1/",
        ] {
            assert!(endpoint(None, Some(refused)).is_err(), "{refused}");
        }
    }

    #[test]
    fn a_token_with_a_line_break_is_refused() {
        let container = Container {
            url: endpoint(Some("/x"), None).unwrap(),
            authorization: Authorization::Token("a\r\nX-Evil: 1".into()),
        };
        assert!(container.authorization().is_err());
    }
}
