//! IAM Identity Center (SSO): the token `aws sso login` cached, traded at
//! the portal for the role's credentials (`GetRoleCredentials`).

use std::path::PathBuf;
use std::time::Duration;

use rusty_s3::Credentials;

use super::http::Caller;
use super::json::{self, Json};
use super::{Fetched, parse_time};

/// One SSO profile's settings.
#[derive(Debug, Clone)]
pub(super) struct Sso {
    /// The session name (`sso_session`), or for the legacy form the start
    /// URL: the cache file is named after its SHA-1.
    pub(super) cache_key: String,
    /// `~/.aws/sso/cache`.
    pub(super) cache_dir: PathBuf,
    pub(super) account_id: String,
    pub(super) role_name: String,
    /// `AWS_ENDPOINT_URL_SSO`, else `https://portal.sso.<sso_region>.amazonaws.com`.
    pub(super) portal: String,
}

const LOGIN: &str = "run `aws sso login` to sign in again";

impl Sso {
    /// The cache file of the session.
    pub(super) fn cache_file(&self) -> PathBuf {
        let name = hex::encode(sha1(self.cache_key.as_bytes()));
        self.cache_dir.join(format!("{name}.json"))
    }

    /// The cached access token, if it has not expired by `now`.
    fn token(&self, now: jiff::Timestamp) -> Result<String, String> {
        let path = self.cache_file();
        let text = std::fs::read(&path)
            .map_err(|e| format!("no SSO token cached in {} ({e}): {LOGIN}", path.display()))?;
        let cached = json::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        let (Some(token), Some(expires)) = (cached.text("accessToken"), cached.text("expiresAt"))
        else {
            return Err(format!(
                "{} has no accessToken and expiresAt: {LOGIN}",
                path.display()
            ));
        };
        match parse_time(expires)? <= now {
            true => Err(format!("the SSO token expired at {expires}: {LOGIN}")),
            false => Ok(token.to_owned()),
        }
    }

    /// The portal URL of `GetRoleCredentials`.
    pub(super) fn url(&self) -> String {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("role_name", &self.role_name)
            .append_pair("account_id", &self.account_id)
            .finish();
        format!(
            "{}/federation/credentials?{query}",
            self.portal.trim_end_matches('/')
        )
    }

    pub(super) fn fetch(&self, http: &Caller, timeout: Duration) -> Result<Fetched, String> {
        let token = self.token(jiff::Timestamp::now())?;
        let answer = http
            .call(
                "GET",
                &self.url(),
                &[("x-amz-sso_bearer_token", &token)],
                None,
                timeout,
            )
            .map_err(|e| format!("the SSO portal did not answer: {e}"))?;
        match answer.status {
            200 => parse(&answer.body),
            401 | 403 => Err(format!(
                "the SSO portal refused the cached token (HTTP {}): {LOGIN}",
                answer.status
            )),
            status => Err(format!("the SSO portal answered HTTP {status}")),
        }
    }
}

/// SHA-1 (FIPS 180-4) of `data`, which names the SSO token cache files:
/// the one use of SHA-1 here, for a short name, where the `sha1` crate
/// cost the static binary 5 KB.
fn sha1(data: &[u8]) -> [u8; 20] {
    let mut state: [u32; 5] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&(data.len() as u64 * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = state;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i / 20 {
                0 => ((b & c) | (!b & d), 0x5A827999),
                1 => (b ^ c ^ d, 0x6ED9EBA1),
                2 => ((b & c) | (b & d) | (c & d), 0x8F1BBCDC),
                _ => (b ^ c ^ d, 0xCA62C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            (e, d, c, b, a) = (d, c, b.rotate_left(30), a, t);
        }
        for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
            *s = s.wrapping_add(v);
        }
    }
    let mut digest = [0; 20];
    for (out, word) in digest.chunks_exact_mut(4).zip(state) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}

/// The credentials of a `GetRoleCredentials` answer; its expiration is in
/// epoch milliseconds.
pub(super) fn parse(body: &[u8]) -> Result<Fetched, String> {
    let answer = json::parse(body)?;
    let role = answer.get("roleCredentials");
    let field = |name| role.and_then(|r| r.text(name));
    let expiration = match role.and_then(|r| r.get("expiration")) {
        Some(Json::Number(ms)) => ms.parse::<i64>().ok(),
        _ => None,
    };
    let (Some(key), Some(secret), Some(token), Some(ms)) = (
        field("accessKeyId"),
        field("secretAccessKey"),
        field("sessionToken"),
        expiration,
    ) else {
        return Err(
            "the SSO portal answered without roleCredentials accessKeyId, \
                    secretAccessKey, sessionToken and expiration"
                .into(),
        );
    };
    let expires = jiff::Timestamp::from_millisecond(ms)
        .map_err(|_| format!("the expiration {ms} is out of range"))?;
    Ok(Fetched {
        credentials: Credentials::new_with_token(key, secret, token),
        expires: Some(expires),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sso() -> Sso {
        Sso {
            cache_key: "my-sso".into(),
            cache_dir: "/home/u/.aws/sso/cache".into(),
            account_id: "123456789012".into(),
            role_name: "Admin".into(),
            portal: "https://portal.sso.eu-west-1.amazonaws.com".into(),
        }
    }

    #[test]
    fn the_cache_file_is_named_after_the_sha1_of_the_session() {
        // sha1("my-sso"), as the aws CLI names it.
        assert_eq!(
            sso().cache_file().file_name().unwrap().to_str(),
            Some("0ad374308c5a4e22f723adf10145eafad7c4031c.json")
        );
    }

    #[test]
    fn sha1_matches_fips_180_vectors_across_block_edges() {
        for (data, digest) in [
            (&b""[..], "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (&[b'a'; 55], "c1c8bbdc22796e28c0e15163d20899b65621d65a"),
            (&[b'a'; 56], "c2db330f6083854c99d4b5bfb6e8f29f201be699"),
            (&[b'a'; 64], "0098ba824b5c16427bd7a1122a5a442a25ec644d"),
        ] {
            assert_eq!(hex::encode(sha1(data)), digest, "{} bytes", data.len());
        }
    }

    #[test]
    fn the_portal_call_names_role_and_account() {
        assert_eq!(
            sso().url(),
            "https://portal.sso.eu-west-1.amazonaws.com/federation/credentials?\
             role_name=Admin&account_id=123456789012"
        );
    }

    #[test]
    fn expiration_is_in_epoch_milliseconds() {
        let body = br#"{"roleCredentials":{"accessKeyId":"A","secretAccessKey":"S",
            "sessionToken":"T","expiration":1795003575000}}"#;
        let fetched = parse(body).unwrap();
        assert_eq!(fetched.expires.unwrap().to_string(), "2026-11-18T12:06:15Z");
    }

    #[test]
    fn malformed_answers_are_errors() {
        assert!(parse(b"{\"roleCredentials\":{}}").is_err());
        assert!(parse(b"<html>").is_err());
    }
}
