//! Signing requests: presigned URLs, as of a time the caller gives.

use std::time::Duration;

use rusty_s3::{Bucket, Credentials, Map, Method};
use url::Url;

use super::Signing;
use crate::store::Deadline;

/// How long a presigned URL stays valid at most. Requests are signed
/// right before they are sent; an hour leaves room for slow bodies and
/// clock skew. Never longer than the credentials that sign it.
const PRESIGN_TTL: Duration = Duration::from_secs(3600);

/// Builds signed requests. Pure: no clock, no I/O. It signs as of the
/// time it was made with, which the client reads right before it builds
/// and sends a request, so that a test can pin a signed URL exactly.
#[derive(Debug, Clone)]
pub(crate) struct Signer {
    pub(super) bucket: Bucket,
    pub(super) credentials: Credentials,
    /// The signing time, unless a deadline says otherwise.
    now: jiff::Timestamp,
    /// How long its presigned URLs stay valid.
    ttl: Duration,
    /// Sign as of a time the store gave, to end at a deadline, instead of
    /// now for `ttl`: the fenced requests of a lease.
    deadline: Option<Deadline>,
}

/// How long a URL signed at `now` with credentials expiring at `expires`
/// may stay valid: an hour, but never past the expiry (at least a second,
/// so that a URL is never born expired).
fn presign_ttl(now: jiff::Timestamp, expires: Option<jiff::Timestamp>) -> Duration {
    let left = expires.map_or(PRESIGN_TTL, |expires| {
        let left = expires.as_second() - now.as_second();
        Duration::from_secs(u64::try_from(left).unwrap_or(0))
    });
    left.clamp(Duration::from_secs(1), PRESIGN_TTL)
}

impl Signer {
    /// A signer for `bucket`, signing with `signing` as of `now`.
    pub(super) fn at(bucket: Bucket, signing: Signing, now: jiff::Timestamp) -> Signer {
        Signer {
            bucket,
            ttl: presign_ttl(now, signing.expires),
            credentials: signing.credentials,
            now,
            deadline: None,
        }
    }

    /// The same signer, signing every request to end at `deadline`.
    pub(crate) fn until(&self, deadline: Option<Deadline>) -> Signer {
        Signer {
            deadline,
            ..self.clone()
        }
    }

    /// The signing time and validity of the next request: now and the
    /// TTL, or the deadline's.
    fn signing_time(&self) -> (jiff::Timestamp, Duration) {
        match self.deadline {
            Some(deadline) => (
                jiff::Timestamp::from_second(deadline.signed_at)
                    .unwrap_or(jiff::Timestamp::UNIX_EPOCH),
                Duration::from_secs(deadline.expires.max(1)),
            ),
            None => (self.now, self.ttl),
        }
    }

    /// Signs `action` at the signing time (see [`Signer::until`]).
    pub(crate) fn sign<'a>(&self, action: &impl rusty_s3::S3Action<'a>) -> Url {
        let (time, expires) = self.signing_time();
        action.sign_with_time(expires, &time)
    }

    /// Signs a request on the bucket itself (list, multi-delete), which
    /// rusty-s3 only offers with its own XML parser; the signing is the
    /// same. `query` and `headers` are signed; the headers must be sent as
    /// they are.
    pub(super) fn sign_bucket_request(
        &self,
        method: Method,
        query: &Map<'_>,
        headers: &Map<'_>,
    ) -> Url {
        let (time, expires) = self.signing_time();
        rusty_s3::signing::sign(
            &time,
            method,
            self.bucket.base_url().clone(),
            self.credentials.key(),
            self.credentials.secret(),
            self.credentials.token(),
            self.bucket.region(),
            expires.as_secs(),
            query.iter(),
            headers.iter(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Result;
    use crate::s3::tests::{SIGNED_AT, config, signer, signer_for};
    use crate::s3::{CredentialSource, S3Config};

    #[test]
    fn presigned_urls_never_outlive_their_credentials() {
        let now = jiff::Timestamp::from_second(1_000_000).unwrap();
        let at = |seconds| Some(jiff::Timestamp::from_second(seconds).unwrap());
        assert_eq!(presign_ttl(now, None), PRESIGN_TTL);
        assert_eq!(presign_ttl(now, at(1_000_600)), Duration::from_secs(600));
        assert_eq!(presign_ttl(now, at(1_900_000)), PRESIGN_TTL);
        assert_eq!(presign_ttl(now, at(999_000)), Duration::from_secs(1));
    }

    #[test]
    fn virtual_host_style_puts_the_bucket_in_the_host() {
        let signer = signer_for(&S3Config {
            endpoint: "https://s3.eu-west-1.amazonaws.com".parse().unwrap(),
            bucket: "logs".into(),
            region: "eu-west-1".into(),
            path_style: false,
            ..config()
        });
        let url = signer.get_object("wal/00000000000000000001").url;
        assert_eq!(url.host_str(), Some("logs.s3.eu-west-1.amazonaws.com"));
        assert_eq!(url.path(), "/wal/00000000000000000001");
    }

    /// The signed URL of a GET checked against a SigV4 computation of
    /// its own (Python's `hmac`, following AWS's "Authenticating Requests:
    /// Using Query Parameters").
    #[test]
    fn a_url_is_signed_as_of_the_time_given() {
        let url = signer().get_object("wal/00000000000000000001").url;
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/bucket/wal/00000000000000000001?\
             X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKID%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&\
             X-Amz-Date=20260102T030405Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&\
             X-Amz-Signature=8c7687390bfdc888f0fb32565d4342e0795e4bb7bf5914c7d08ef5dcb489adc3"
        );
    }

    /// Session credentials that expire ten minutes after [`SIGNED_AT`].
    #[derive(Debug)]
    struct Expiring;

    impl CredentialSource for Expiring {
        fn current(&self) -> Result<Signing> {
            Ok(Signing {
                credentials: Credentials::new_with_token("AKID", "SECRET", "TOKEN"),
                expires: Some(jiff::Timestamp::from_second(SIGNED_AT + 600).unwrap()),
            })
        }

        fn refresh(&self, _: &Signing) -> Result<Signing> {
            self.current()
        }
    }

    #[test]
    fn a_url_signed_with_a_session_ends_with_it_and_carries_its_token() {
        let config = S3Config {
            credentials: std::sync::Arc::new(Expiring),
            ..config()
        };
        let url = signer_for(&config).head_object("wal/k").url;
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:9000/bucket/wal/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&\
             X-Amz-Credential=AKID%2F20260102%2Fus-east-1%2Fs3%2Faws4_request&\
             X-Amz-Date=20260102T030405Z&X-Amz-Expires=600&X-Amz-Security-Token=TOKEN&\
             X-Amz-SignedHeaders=host&\
             X-Amz-Signature=5483ce286527c4ef09f640eaad3b65b352b6ac5525529e63a5c3062ce01f5795"
        );
    }
}
