//! What an exchange that got no answer means, and what the user can do.
//!
//! Most such failures (a reset, a stall, a garbled answer) are worth
//! another try. Some are not: a host name that does not resolve stays
//! unresolved, and a certificate the client refuses stays refused, so
//! retrying them only makes the user wait for the same error. A refused
//! connection is between: a store restarting comes back within seconds,
//! a wrong port never does, so it gets a few seconds of tries.
//!
//! Failures are told apart by their types (ureq's error, the I/O error's
//! kind, rustls' and webpki's errors), never by their text.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::time::Duration;

use rustls::CertificateError;
use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::error::{CertificateProblem, Stage, TransportKind};

/// Whether to try again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Transient: retry within the policy.
    Yes,
    /// Retry, but for [`crate::error::REFUSED_RETRY_TIME`] at most.
    Briefly,
    /// Trying again cannot help.
    No,
}

/// One failed exchange, judged.
#[derive(Debug)]
pub(crate) struct Failure {
    /// What went wrong.
    pub kind: TransportKind,
    /// The error that says so, with nothing in it that names a signed URL.
    pub source: Box<dyn StdError + Send + Sync>,
}

impl Failure {
    /// Whether and how long to retry.
    pub(crate) fn retry(&self) -> Retry {
        match self.kind {
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
}

/// A host name that did not resolve: the resolver's own error, marked so
/// that [`judge`] tells it from other I/O errors by its type. (std reports
/// a failed lookup as an uncategorised I/O error, known only by its text.)
#[derive(Debug)]
struct Unresolved(io::Error);

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Unresolved {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        Some(&self.0)
    }
}

/// ureq's resolver, with its I/O errors marked [`Unresolved`], and an IP
/// address taken as it is.
///
/// With a resolve timeout set, ureq resolves every request in a thread of
/// its own, pooled connection or not: for an endpoint given as an address
/// (a local MinIO, RGW behind a load balancer) that was half the CPU of a
/// parallel dump (`make bench`), for nothing.
#[derive(Debug, Default)]
pub(crate) struct MarkingResolver(DefaultResolver);

/// The socket address `uri` names, when its host is an IP address.
fn literal_address(uri: &Uri) -> Option<std::net::SocketAddr> {
    let host = uri.host()?;
    let ip: std::net::IpAddr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()?;
    let port = uri.port_u16().or_else(|| match uri.scheme_str()? {
        "https" => Some(443),
        "http" => Some(80),
        _ => None,
    })?;
    Some((ip, port).into())
}

impl Resolver for MarkingResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(address) = literal_address(uri) {
            let mut resolved = self.0.empty();
            resolved.push(address);
            return Ok(resolved);
        }
        self.0
            .resolve(uri, config, timeout)
            .map_err(|error| match error {
                ureq::Error::Io(io) => ureq::Error::Other(Box::new(Unresolved(io))),
                other => other,
            })
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
                source: super::redact_urls(&error.to_string()).into(),
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
    fn a_name_that_does_not_resolve_is_final_and_keeps_the_resolvers_error() {
        let lookup = io::Error::other("Name or service not known");
        let failure = judged(ureq::Error::Other(Box::new(Unresolved(lookup))));
        assert_eq!(failure.kind, TransportKind::Dns);
        assert_eq!(failure.retry(), Retry::No);
        assert!(failure.while_sending());
        assert!(failure.source.is::<io::Error>());
        assert_eq!(judged(ureq::Error::HostNotFound).retry(), Retry::No);
    }

    #[test]
    fn the_resolver_marks_what_it_could_not_resolve() {
        // A label longer than 63 bytes fails in the resolver itself, with
        // no DNS packet sent.
        let uri: Uri = format!("http://{}.invalid:9000/", "a".repeat(64))
            .parse()
            .unwrap();
        let config = ureq::Agent::config_builder().build();
        let error = MarkingResolver::default()
            .resolve(&uri, &config, NextTimeout::default())
            .unwrap_err();
        assert_eq!(judged(error).kind, TransportKind::Dns);
    }

    #[test]
    fn an_ip_address_is_taken_as_it_is() {
        let config = ureq::Agent::config_builder().build();
        for (uri, address) in [
            ("http://127.0.0.1:9000/b/k", "127.0.0.1:9000"),
            ("https://10.1.2.3/b", "10.1.2.3:443"),
            ("http://[::1]:8080/", "[::1]:8080"),
        ] {
            let resolved = MarkingResolver::default()
                .resolve(&uri.parse().unwrap(), &config, NextTimeout::default())
                .unwrap();
            let expected: std::net::SocketAddr = address.parse().unwrap();
            assert_eq!(resolved.iter().collect::<Vec<_>>(), [&expected], "{uri}");
        }
        assert_eq!(
            literal_address(&"http://localhost:9000/".parse().unwrap()),
            None
        );
    }

    #[test]
    fn a_refused_connection_is_retried_briefly() {
        let failure = judged(ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(failure.kind, TransportKind::Refused);
        assert_eq!(failure.retry(), Retry::Briefly);
        assert!(failure.while_sending());
    }

    #[test]
    fn a_certificate_from_an_unknown_issuer_is_final_and_its_source_is_rustls_error() {
        let failure = judged(tls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )));
        assert_eq!(
            failure.kind,
            TransportKind::Certificate(CertificateProblem::UnknownIssuer)
        );
        assert_eq!(failure.retry(), Retry::No);
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
    fn plain_http_behind_an_https_endpoint_is_final() {
        let failure = judged(tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )));
        assert_eq!(failure.kind, TransportKind::NotTls);
        assert_eq!(failure.retry(), Retry::No);
    }

    #[test]
    fn a_record_that_fails_its_mac_is_retried() {
        let failure = judged(tls(rustls::Error::DecryptError));
        assert_eq!(failure.kind, TransportKind::Reset);
        assert_eq!(failure.retry(), Retry::Yes);
    }

    #[test]
    fn a_stalled_upload_was_cut_off_while_sending() {
        let failure = judged(ureq::Error::Timeout(ureq::Timeout::PerWrite));
        let cut_off = TransportKind::Timeout {
            during: Stage::Send,
            after: IDLE,
        };
        assert_eq!(failure.kind, cut_off);
        assert_eq!(failure.retry(), Retry::Yes);
        assert!(failure.while_sending());
    }

    #[test]
    fn a_missing_answer_may_follow_a_whole_request() {
        let failure = judged(ureq::Error::Timeout(ureq::Timeout::PerRead));
        assert_eq!(failure.retry(), Retry::Yes);
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
}
