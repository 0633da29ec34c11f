//! What an exchange that got no answer means, and what the user can do.
//!
//! Most such failures (a reset, a stall, a garbled answer) are worth
//! another try. Some are not: a host name that does not resolve stays
//! unresolved, and a certificate the client refuses stays refused, so
//! retrying them only makes the user wait for the same error. A refused
//! connection is between: a store restarting comes back within seconds,
//! a wrong port never does, so it gets a few seconds of tries.

use std::io;
use std::time::Duration;

use rustls::CertificateError;

/// How long a refused connection is retried: enough for a store that is
/// restarting, short enough that a wrong port is reported at once.
pub(crate) const REFUSED_RETRY_TIME: Duration = Duration::from_secs(3);

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

/// One failed exchange, judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// Whether and how long to retry.
    pub retry: Retry,
    /// What went wrong and, where there is one, what to do; never a URL.
    pub message: String,
    /// It failed before the whole request was sent (resolving, connecting,
    /// the TLS handshake, or a stalled write), so it cannot have taken
    /// effect.
    pub while_sending: bool,
}

/// Judges a failed exchange with `host` (`name:port`), where `idle` is the
/// longest a network operation may make no progress (`--timeout`).
pub(crate) fn judge(error: &ureq::Error, host: &str, idle: Duration) -> Failure {
    use ureq::Timeout;
    let secs = idle.as_secs_f64();
    let (retry, message, while_sending) = match error {
        ureq::Error::Io(io) => return judge_io(io, host),
        ureq::Error::HostNotFound => (Retry::No, unresolved(host, "no address"), true),
        ureq::Error::Timeout(Timeout::Resolve) => (
            Retry::No,
            unresolved(host, &format!("no answer in {secs} s")),
            true,
        ),
        ureq::Error::Timeout(Timeout::Connect) => (
            Retry::Yes,
            format!("could not connect to {host} within {secs} s (--timeout)"),
            true,
        ),
        ureq::Error::Timeout(Timeout::PerWrite | Timeout::SendRequest | Timeout::SendBody) => (
            Retry::Yes,
            format!("{host} took no data for {secs} s (--timeout); the request was cut off"),
            true,
        ),
        ureq::Error::Timeout(_) => (
            Retry::Yes,
            format!("{host} sent nothing for {secs} s (--timeout)"),
            false,
        ),
        ureq::Error::Tls(what) => (Retry::No, format!("TLS with {host}: {what}"), true),
        other => (
            Retry::Yes,
            format!("{} ({host})", super::redact_urls(&other.to_string())),
            false,
        ),
    };
    Failure {
        retry,
        message,
        while_sending,
    }
}

fn unresolved(host: &str, why: &str) -> String {
    format!("cannot resolve the host name of {host} ({why}): check the endpoint (--endpoint)")
}

/// An I/O failure: refused, unresolved, a TLS error, or a transient one.
fn judge_io(io: &io::Error, host: &str) -> Failure {
    if let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return judge_tls(tls, host);
    }
    let text = io.to_string();
    let (retry, message, while_sending) = if io.kind() == io::ErrorKind::ConnectionRefused {
        (
            Retry::Briefly,
            format!(
                "{host} refused the connection (refused connections are retried for {} s \
                 at most): is the store running there? check the endpoint (--endpoint)",
                REFUSED_RETRY_TIME.as_secs()
            ),
            true,
        )
    } else if let Some(why) = text.strip_prefix("failed to lookup address information: ") {
        // std's getaddrinfo error: the name does not resolve. The resolver
        // has already retried its servers; s3wal trying again changes
        // nothing.
        (Retry::No, unresolved(host, why), true)
    } else {
        (Retry::Yes, format!("{text} ({host})"), false)
    };
    Failure {
        retry,
        message,
        while_sending,
    }
}

/// A TLS failure. Certificate and handshake failures are final and say
/// what to change; a record damaged in transit (a MAC that fails) is not.
fn judge_tls(error: &rustls::Error, host: &str) -> Failure {
    let advice = match error {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => format!(
            "the TLS certificate of {host} is signed by a CA that is not trusted \
             (UnknownIssuer): pass that CA's certificate with --ca-bundle (AWS_CA_BUNDLE)"
        ),
        // rustls reports webpki's CaUsedAsEndEntity only as text.
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            format!(
                "{host} presents a CA certificate as its own (CaUsedAsEndEntity): the \
                 server needs a leaf certificate (basicConstraints CA:FALSE) issued by \
                 that CA, whose certificate goes in --ca-bundle"
            )
        }
        rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the TLS certificate of {host} is not valid for that name (NotValidForName): \
             use the name the certificate was issued for in the endpoint"
        ),
        rustls::Error::InvalidCertificate(problem) => {
            format!("the TLS certificate of {host} is refused: {problem:?}")
        }
        rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType) => format!(
            "{host} does not speak TLS (InvalidContentType): it seems to speak plain \
             HTTP; use an http:// endpoint"
        ),
        rustls::Error::InvalidMessage(_)
        | rustls::Error::PeerIncompatible(_)
        | rustls::Error::NoCertificatesPresented
        | rustls::Error::UnsupportedNameType
        | rustls::Error::AlertReceived(_) => {
            format!("the TLS handshake with {host} failed: {error}")
        }
        transient => {
            return Failure {
                retry: Retry::Yes,
                message: format!("TLS with {host}: {transient}"),
                while_sending: false,
            };
        }
    };
    Failure {
        retry: Retry::No,
        message: advice,
        while_sending: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "store.example:9000";

    fn judged(error: ureq::Error) -> Failure {
        judge(&error, HOST, Duration::from_secs(2))
    }

    fn tls(error: rustls::Error) -> ureq::Error {
        ureq::Error::Io(io::Error::new(io::ErrorKind::InvalidData, error))
    }

    #[test]
    fn a_name_that_does_not_resolve_is_final_and_names_the_host() {
        let lookup =
            io::Error::other("failed to lookup address information: Name or service not known");
        let failure = judged(ureq::Error::Io(lookup));
        assert_eq!(failure.retry, Retry::No);
        assert!(failure.while_sending);
        assert!(failure.message.contains(HOST), "{}", failure.message);
        assert!(failure.message.contains("Name or service not known"));
        assert_eq!(judged(ureq::Error::HostNotFound).retry, Retry::No);
    }

    #[test]
    fn a_refused_connection_is_retried_briefly() {
        let failure = judged(ureq::Error::Io(io::ErrorKind::ConnectionRefused.into()));
        assert_eq!(failure.retry, Retry::Briefly);
        assert!(failure.message.contains("are retried for 3 s at most"));
        assert!(failure.while_sending);
    }

    #[test]
    fn an_unknown_issuer_is_final_and_points_at_ca_bundle() {
        let failure = judged(tls(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer,
        )));
        assert_eq!(failure.retry, Retry::No);
        assert!(
            failure.message.contains("--ca-bundle"),
            "{}",
            failure.message
        );
    }

    #[test]
    fn plain_http_behind_an_https_endpoint_is_final_and_says_use_http() {
        let failure = judged(tls(rustls::Error::InvalidMessage(
            rustls::InvalidMessage::InvalidContentType,
        )));
        assert_eq!(failure.retry, Retry::No);
        assert!(failure.message.contains("use an http:// endpoint"));
    }

    #[test]
    fn a_record_that_fails_its_mac_is_retried() {
        assert_eq!(judged(tls(rustls::Error::DecryptError)).retry, Retry::Yes);
    }

    #[test]
    fn a_stalled_upload_was_cut_off_while_sending() {
        let failure = judged(ureq::Error::Timeout(ureq::Timeout::PerWrite));
        assert_eq!(failure.retry, Retry::Yes);
        assert!(failure.while_sending);
        assert!(failure.message.contains("took no data for 2 s (--timeout)"));
    }

    #[test]
    fn a_missing_answer_may_follow_a_whole_request() {
        let failure = judged(ureq::Error::Timeout(ureq::Timeout::PerRead));
        assert_eq!(failure.retry, Retry::Yes);
        assert!(!failure.while_sending);
        let reset = judged(ureq::Error::Io(io::ErrorKind::ConnectionReset.into()));
        assert_eq!(reset.retry, Retry::Yes);
        assert!(!reset.while_sending);
    }
}
