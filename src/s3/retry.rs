//! Which failed exchanges are worth another try, and how long to wait.
//!
//! Throttling and server errors (500, 502, 503 `SlowDown`, 504, 408, 429),
//! bodies damaged on the way (400 `BadDigest`, or a download that differs
//! from its ETag) and most answers that never came are transient; 400,
//! 403, 404 and the rest are answers and are not retried. Waits grow
//! exponentially with full jitter, bounded by a number of retries and by
//! a time after the first failure.

use std::time::Duration;

use super::Response;
use super::failure::Retry;
use super::xml;

/// How hard one request tries before its failure is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries after the first one.
    pub retries: u32,
    /// `--timeout`: the longest a network operation (resolving,
    /// connecting, each read or write) may make no progress, so a hung
    /// server cannot hold s3wal, while a slow transfer that keeps moving
    /// is never cut off; also how long after its first failure a request
    /// is retried.
    pub timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> RetryPolicy {
        RetryPolicy {
            retries: 8,
            timeout: Duration::from_secs(60),
        }
    }
}

/// The first wait; each retry doubles it, up to [`MAX_WAIT`].
const FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest single wait between two tries.
const MAX_WAIT: Duration = Duration::from_secs(15);

/// Whether an answer with this status is transient.
pub(crate) fn is_transient(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Whether to send the request again after this answer: a transient
/// status, a body the store received damaged (`400 BadDigest`: nothing
/// was stored), or a body that arrived damaged here.
pub(crate) fn answer_retry(response: &Response) -> Retry {
    let bad_digest = || {
        response.status == 400
            && xml::parse_error(&response.body).code.as_deref() == Some("BadDigest")
    };
    match is_transient(response.status) || bad_digest() || response.damage.is_some() {
        true => Retry::Yes,
        false => Retry::No,
    }
}

/// The longest wait before retry number `retry` (from 1): exponential up
/// to [`MAX_WAIT`]. The wait itself is a random part of it
/// ([`crate::random::jitter`]).
pub(crate) fn longest_wait(retry: u32) -> Duration {
    FIRST_WAIT
        .saturating_mul(1 << retry.saturating_sub(1).min(16))
        .min(MAX_WAIT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::integrity::Damage;
    use crate::s3::tests::coded;

    #[test]
    fn throttling_and_server_errors_are_transient() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(status), "{status}");
        }
    }

    #[test]
    fn answers_are_not_retried() {
        for status in [200, 400, 403, 404, 409, 412, 501] {
            assert!(!is_transient(status), "{status}");
        }
    }

    #[test]
    fn bad_digest_means_the_body_was_damaged_on_the_way_and_is_sent_again() {
        assert_eq!(answer_retry(&coded(400, "BadDigest")), Retry::Yes);
    }

    #[test]
    fn other_400s_are_final() {
        assert_eq!(answer_retry(&coded(400, "InvalidArgument")), Retry::No);
    }

    #[test]
    fn body_damaged_in_transit_is_retried() {
        let answer = Response {
            status: 200,
            damage: Some(Damage::Length {
                arrived: 1,
                announced: 2,
            }),
            ..Response::default()
        };
        assert_eq!(answer_retry(&answer), Retry::Yes);
    }

    #[test]
    fn waits_double_from_100_ms_up_to_15_s() {
        assert_eq!(longest_wait(1), Duration::from_millis(100));
        assert_eq!(longest_wait(2), Duration::from_millis(200));
        assert_eq!(longest_wait(4), Duration::from_millis(800));
        assert_eq!(longest_wait(8), Duration::from_millis(12_800));
        assert_eq!(longest_wait(9), MAX_WAIT);
        assert_eq!(longest_wait(40), MAX_WAIT);
    }
}
