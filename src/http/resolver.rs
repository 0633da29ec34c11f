//! Resolving host names so that a failure to resolve is told by its type.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// A host name that did not resolve: the resolver's own error, marked so
/// that [`super::judge`] tells it from other I/O errors by its type. (std reports
/// a failed lookup as an uncategorised I/O error, known only by its text.)
#[derive(Debug)]
pub(super) struct Unresolved(pub(super) io::Error);

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportKind;
    use crate::http::judge;

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
        assert_eq!(
            judge(error, std::time::Duration::from_secs(2)).kind,
            TransportKind::Dns
        );
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
}
