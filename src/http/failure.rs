//! What an exchange that got no answer means: a [`TransportKind`] the
//! user can act on (a name that does not resolve, a refused certificate, a
//! stall), and the error that says so, which never names a signed URL.
//! Whether it is worth another try is the caller's decision.
//!
//! Failures are told apart by their types (ureq's error, the I/O error's
//! kind, rustls' and webpki's errors), never by their text.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use rustls::CertificateError;

use super::resolver::Unresolved;
use crate::error::{CertificateProblem, Stage, TransportKind};

/// One failed exchange, judged.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub kind: TransportKind,
    /// The error that says so, with nothing in it that names a signed URL.
    pub source: Box<dyn StdError + Send + Sync>,
}

impl Failure {
    /// It failed before the whole request was sent (resolving, connecting,
    /// the TLS handshake, or a stalled write), so it cannot have taken
    /// effect.
    pub(crate) fn while_sending(&self) -> bool {
        match self.kind {
            TransportKind::Timeout { during, .. } => during != Stage::Answer,
            TransportKind::Reset | TransportKind::DamagedBody | TransportKind::Other => false,
            _ => true,
        }
    }

    /// Nothing came within the time allowed, whatever the stage.
    pub(crate) fn timed_out(&self) -> bool {
        let io_timeout = self
            .source
            .downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::TimedOut);
        matches!(self.kind, TransportKind::Timeout { .. }) || io_timeout
    }
}

/// The failure in a few words, for a message that names the host itself:
/// a timeout as such, anything else as its source says.
impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.timed_out() {
            true => f.write_str("no answer in time"),
            false => self.source.fmt(f),
        }
    }
}

/// Judges a failed exchange, where `idle` is the longest a network
/// operation may make no progress (`--timeout`).
pub(crate) fn judge(error: ureq::Error, idle: Duration) -> Failure {
    use ureq::Timeout;
    let error = match error {
        ureq::Error::Io(io) => return judge_io(io),
        ureq::Error::Rustls(tls) => {
            return Failure {
                kind: judge_tls(&tls),
                source: Box::new(tls),
            };
        }
        ureq::Error::Other(other) => match other.downcast::<Unresolved>() {
            Ok(unresolved) => {
                return Failure {
                    kind: TransportKind::Dns,
                    source: Box::new(unresolved.0),
                };
            }
            Err(other) => ureq::Error::Other(other),
        },
        // ureq names the whole URL in these, and a presigned URL's query
        // string is a credential.
        error @ (ureq::Error::BadUri(_) | ureq::Error::RequireHttpsOnly(_)) => {
            return Failure {
                kind: TransportKind::Other,
                source: redact_urls(&error.to_string()).into(),
            };
        }
        other => other,
    };
    let timeout = |during| TransportKind::Timeout {
        during,
        after: idle,
    };
    let kind = match &error {
        ureq::Error::HostNotFound => TransportKind::Dns,
        ureq::Error::Timeout(Timeout::Resolve) => timeout(Stage::Resolve),
        ureq::Error::Timeout(Timeout::Connect) => timeout(Stage::Connect),
        ureq::Error::Timeout(Timeout::PerWrite | Timeout::SendRequest | Timeout::SendBody) => {
            timeout(Stage::Send)
        }
        ureq::Error::Timeout(_) => timeout(Stage::Answer),
        ureq::Error::Tls(_) => TransportKind::Handshake,
        ureq::Error::ConnectionFailed | ureq::Error::BodyStalled => TransportKind::Reset,
        _ => TransportKind::Other,
    };
    Failure {
        kind,
        source: Box::new(error),
    }
}

/// Removes the query string of every URL in `message`, because a presigned
/// URL's query string is a credential.
fn redact_urls(message: &str) -> String {
    message
        .split(' ')
        .map(|word| match word.find('?') {
            Some(at) if word.contains("://") => format!("{}?…", &word[..at]),
            _ => word.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// An I/O failure: a TLS error (whose source is rustls' own error), a
/// refused connection, or a transient one.
fn judge_io(io: io::Error) -> Failure {
    match io.downcast::<rustls::Error>() {
        Ok(tls) => Failure {
            kind: judge_tls(&tls),
            source: Box::new(tls),
        },
        Err(io) => Failure {
            kind: match io.kind() {
                io::ErrorKind::ConnectionRefused => TransportKind::Refused,
                _ => TransportKind::Reset,
            },
            source: Box::new(io),
        },
    }
}

/// A TLS failure. Certificate and handshake failures are final and say
/// what to change; a record damaged in transit (a MAC that fails) is not.
fn judge_tls(error: &rustls::Error) -> TransportKind {
    match error {
        rustls::Error::InvalidCertificate(problem) => {
            TransportKind::Certificate(match problem {
                CertificateError::UnknownIssuer => CertificateProblem::UnknownIssuer,
                CertificateError::NotValidForName
                | CertificateError::NotValidForNameContext { .. } => {
                    CertificateProblem::NotValidForName
                }
                // rustls passes webpki's CaUsedAsEndEntity on as webpki's error.
                CertificateError::Other(other)
                    if matches!(
                        other.0.downcast_ref::<webpki::Error>(),
                        Some(webpki::Error::CaUsedAsEndEntity)
                    ) =>
                {
                    CertificateProblem::CaUsedAsEndEntity
                }
                _ => CertificateProblem::Other,
            })
        }
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => {
            TransportKind::NotTls
        }
        rustls::Error::InvalidMessage(_)
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType
        | rustls::Error::AlertReceived(_) => TransportKind::Handshake,
        _ => TransportKind::Reset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDLE: Duration = Duration::from_secs(2);

    fn judged(error: ureq::Error) -> Failure {
        judge(error, IDLE)
    }

    fn tls(error: rustls::Error) -> ureq::Error {
        ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn a_name_that_does_not_resolve_keeps_the_resolvers_error() {
        let lookup = io::Error::other("Name or service not known");
        let failure = judged(ureq::Error::Other(Box::new(Unresolved(lookup))));
        assert_eq!(failure.kind, TransportKind::Dns);
        assert!(failure.while_sending());
        assert!(failure.source.is::<io::Error>());
        assert_eq!(judged(ureq::Error::HostNotFound).kind, TransportKind::Dns);
    }

    #[test]
    fn a_refused_connection_was_refused_before_sending() {
        let failure = judged(ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(failure.kind, TransportKind::Refused);
        assert!(failure.while_sending());
    }

    #[test]
    fn a_certificate_from_an_unknown_issuer_keeps_rustls_error() {
        let failure = judged(tls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )));
        assert_eq!(
            failure.kind,
            TransportKind::Certificate(CertificateProblem::UnknownIssuer)
        );
        assert!(failure.source.is::<rustls::Error>());
    }

    #[test]
    fn a_ca_certificate_served_as_the_servers_is_told_by_webpkis_error() {
        let webpki = rustls::OtherError(std::sync::Arc::new(webpki::Error::CaUsedAsEndEntity));
        let failure = judged(tls(rustls::Error::InvalidCertificate(
            CertificateError::Other(webpki),
        )));
        assert_eq!(
            failure.kind,
            TransportKind::Certificate(CertificateProblem::CaUsedAsEndEntity)
        );
    }

    #[test]
    fn plain_http_behind_an_https_endpoint_is_not_tls() {
        let failure = judged(tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )));
        assert_eq!(failure.kind, TransportKind::NotTls);
    }

    #[test]
    fn a_record_that_fails_its_mac_is_a_broken_connection() {
        let failure = judged(tls(rustls::Error::DecryptError));
        assert_eq!(failure.kind, TransportKind::Reset);
    }

    #[test]
    fn a_stalled_upload_was_cut_off_while_sending() {
        let failure = judged(ureq::Error::Timeout(ureq::Timeout::PerWrite));
        let cut_off = TransportKind::Timeout {
            during: Stage::Send,
            after: IDLE,
        };
        assert_eq!(failure.kind, cut_off);
        assert!(failure.while_sending());
    }

    #[test]
    fn a_missing_answer_may_follow_a_whole_request() {
        let failure = judged(ureq::Error::Timeout(ureq::Timeout::PerRead));
        assert!(!failure.while_sending());
        let reset = judged(ureq::Error::Io(io::ErrorKind::ConnectionReset.into()));
        assert_eq!(reset.kind, TransportKind::Reset);
        assert!(reset.source.is::<io::Error>());
        assert!(!reset.while_sending());
    }

    #[test]
    fn errors_that_name_a_url_keep_no_query_string() {
        let url = "http://h/b/k?X-Amz-Signature=abc".to_owned();
        let failure = judged(ureq::Error::RequireHttpsOnly(url));
        assert!(
            !failure.source.to_string().contains("abc"),
            "{}",
            failure.source
        );
    }

    #[test]
    fn redaction_drops_query_strings_of_urls() {
        let message = "bad uri: http://h/b/k?X-Amz-Signature=abc failed";
        assert_eq!(redact_urls(message), "bad uri: http://h/b/k?… failed");
    }

    #[test]
    fn a_timeout_at_any_stage_reads_as_no_answer_in_time() {
        let waited = judged(ureq::Error::Timeout(ureq::Timeout::Global));
        let timed_out = judged(ureq::Error::Io(io::ErrorKind::TimedOut.into()));
        let refused = judged(ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(waited.to_string(), "no answer in time");
        assert_eq!(timed_out.to_string(), "no answer in time");
        assert!(!refused.timed_out(), "{refused}");
    }
}
