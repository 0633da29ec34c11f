//! Which failed exchanges are worth another try, and how long to wait:
//! the whole decision, pure; the client only sends, sleeps and asks.
//!
//! Throttling and server errors (500, 502, 503 `SlowDown`, 504, 408, 429),
//! bodies damaged on the way (400 `BadDigest`, or a download that differs
//! from its ETag) and most answers that never came are transient; 400,
//! 403, 404 and the rest are answers and are not retried. Waits grow
//! exponentially with full jitter, bounded by a number of retries and by
//! a time after the first failure.
//!
//! Some exchanges that got no answer are not worth another try either: a
//! host name that does not resolve stays unresolved, and a certificate
//! the client refuses stays refused, so retrying them only makes the user
//! wait for the same error. A refused connection is between: a store
//! restarting comes back within seconds, a wrong port never does, so it
//! gets a few seconds of tries.

use std::time::Duration;

use super::Response;
use super::xml;
use crate::error::{REFUSED_RETRY_TIME, Stage, TransportKind};
use crate::http::Failure;

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

/// Whether to try again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Transient: retry within the policy.
    Yes,
    /// Retry, but for [`REFUSED_RETRY_TIME`] at most.
    Briefly,
    /// Trying again cannot help.
    No,
}

/// How a request's tries went so far.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tried {
    /// How many times the request was sent.
    pub(crate) tries: u32,
    /// From the first try to the end of the last.
    pub(crate) elapsed: Duration,
    /// Some try may have taken effect: it sent the whole request and got
    /// no answer, or an answer that leaves doubt.
    pub(crate) may_have_acted: bool,
}

impl Tried {
    /// These tries and one more, which ended in `outcome` after sending
    /// the whole request body (`body_sent`) or not.
    pub(crate) fn and(self, outcome: &Result<Response, Failure>, body_sent: bool) -> Tried {
        let doubt = match outcome {
            Ok(response) => crate::error::status_may_have_acted(response.status),
            Err(failure) => !failure.while_sending() && body_sent,
        };
        Tried {
            tries: self.tries + 1,
            may_have_acted: self.may_have_acted || doubt,
            ..self
        }
    }
}

/// Whether to send a request again after try number `tries` ended in
/// `outcome`, when the next try would start `resumes_after` the first
/// failure (the wait before it included).
///
/// Retries stop after `--retries` of them, or once `--timeout` has passed
/// since the first failure ([`REFUSED_RETRY_TIME`] for a refused
/// connection); failures that no retry can mend end at once.
pub(crate) fn again(
    policy: &RetryPolicy,
    outcome: &Result<Response, Failure>,
    tries: u32,
    resumes_after: Duration,
) -> bool {
    let retry = match outcome {
        Ok(response) => answer_retry(response),
        Err(failure) => failure_retry(failure.kind),
    };
    let budget = match retry {
        Retry::Briefly => REFUSED_RETRY_TIME.min(policy.timeout),
        _ => policy.timeout,
    };
    retry != Retry::No && tries <= policy.retries && resumes_after < budget
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

/// Whether to send the request again after an exchange that got no
/// answer, by what went wrong.
pub(crate) fn failure_retry(kind: TransportKind) -> Retry {
    match kind {
        TransportKind::Refused => Retry::Briefly,
        TransportKind::Dns
        | TransportKind::Timeout {
            during: Stage::Resolve,
            ..
        }
        | TransportKind::Certificate(_)
        | TransportKind::NotTls
        | TransportKind::Handshake => Retry::No,
        _ => Retry::Yes,
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
    use std::io;

    use super::*;
    use crate::error::CertificateProblem;
    use crate::http::judge;
    use crate::s3::integrity::Damage;
    use crate::s3::tests::{answer, coded};

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

    fn judged(error: ureq::Error) -> Failure {
        judge(error, Duration::from_secs(2))
    }

    fn tls(error: rustls::Error) -> ureq::Error {
        ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn a_name_that_does_not_resolve_is_final() {
        assert_eq!(failure_retry(TransportKind::Dns), Retry::No);
        assert_eq!(
            failure_retry(judged(ureq::Error::HostNotFound).kind),
            Retry::No
        );
    }

    #[test]
    fn a_refused_connection_is_retried_briefly() {
        let refused = judged(ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(failure_retry(refused.kind), Retry::Briefly);
    }

    #[test]
    fn certificate_and_handshake_failures_are_final() {
        let unknown = TransportKind::Certificate(CertificateProblem::UnknownIssuer);
        assert_eq!(failure_retry(unknown), Retry::No);
        let not_tls = judged(tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )));
        assert_eq!(failure_retry(not_tls.kind), Retry::No);
    }

    #[test]
    fn a_record_that_fails_its_mac_is_retried() {
        let failure = judged(tls(rustls::Error::DecryptError));
        assert_eq!(failure_retry(failure.kind), Retry::Yes);
    }

    #[test]
    fn stalls_and_missing_answers_are_retried() {
        for timeout in [ureq::Timeout::PerWrite, ureq::Timeout::PerRead] {
            let failure = judged(ureq::Error::Timeout(timeout));
            assert_eq!(failure_retry(failure.kind), Retry::Yes, "{timeout:?}");
        }
    }

    const POLICY: RetryPolicy = RetryPolicy {
        retries: 3,
        timeout: Duration::from_secs(10),
    };

    #[test]
    fn a_transient_answer_is_retried_until_the_retries_run_out() {
        let busy = Ok(coded(503, "SlowDown"));
        let soon = Duration::from_secs(1);
        assert!(again(&POLICY, &busy, 1, soon));
        assert!(again(&POLICY, &busy, 3, soon));
        assert!(!again(&POLICY, &busy, 4, soon));
        assert!(!again(&POLICY, &Ok(answer(404, "")), 1, soon));
    }

    #[test]
    fn retries_end_when_the_next_would_start_past_the_timeout() {
        let busy = Ok(coded(503, "SlowDown"));
        assert!(again(&POLICY, &busy, 1, Duration::from_millis(9_999)));
        assert!(!again(&POLICY, &busy, 1, Duration::from_secs(10)));
    }

    #[test]
    fn a_refused_connection_is_retried_for_a_few_seconds_only() {
        let refused = Err(judged(ureq::Error::Io(
            io::ErrorKind::ConnectionRefused.into(),
        )));
        assert!(again(&POLICY, &refused, 1, REFUSED_RETRY_TIME / 2));
        assert!(!again(&POLICY, &refused, 1, REFUSED_RETRY_TIME));
    }

    #[test]
    fn a_try_that_sent_its_whole_body_and_got_no_answer_may_have_acted() {
        let lost = || Err(judged(ureq::Error::Timeout(ureq::Timeout::PerRead)));
        let cut_off = || Err(judged(ureq::Error::Timeout(ureq::Timeout::PerWrite)));
        let tried = Tried::default().and(&cut_off(), false);
        assert_eq!((tried.tries, tried.may_have_acted), (1, false));
        let tried = tried.and(&lost(), false);
        assert!(!tried.may_have_acted);
        let tried = tried.and(&lost(), true).and(&Ok(answer(200, "")), true);
        assert_eq!((tried.tries, tried.may_have_acted), (4, true));
        assert!(
            Tried::default()
                .and(&Ok(answer(502, "")), true)
                .may_have_acted
        );
    }
}
