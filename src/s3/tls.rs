//! Which certificate authorities an HTTPS endpoint is checked against.
//!
//! A bundle the user names (`--ca-bundle`, `AWS_CA_BUNDLE`) is trusted
//! alone, as aws CLI does: that is how an air-gapped Ceph or MinIO behind a
//! private CA is reached. Otherwise the system's bundle is used, as rclone
//! and Litestream do, so a private CA installed system-wide works too.
//! Certificate checks are never turned off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts};

use crate::error::{Error, Result};

/// Where Linux distributions keep their CA bundle (the list Go uses).
const SYSTEM_BUNDLES: [&str; 6] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The certificates of a PEM bundle; an error if it holds none.
pub(crate) fn parse_bundle(pem: &[u8], path: &Path) -> Result<Vec<Certificate<'static>>> {
    let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(certificate)) => Some(certificate),
            _ => None,
        })
        .collect();
    if certificates.is_empty() {
        return Err(Error::Config(format!(
            "CA bundle {} holds no PEM certificate",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The system bundle: `SSL_CERT_FILE` if set, else the first that exists.
fn system_bundle(ssl_cert_file: Option<&Path>) -> Option<PathBuf> {
    match ssl_cert_file {
        Some(path) => Some(path.to_owned()),
        None => SYSTEM_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.exists()),
    }
}

/// The roots to trust: the user's bundle alone, or the system's.
pub(crate) fn root_certs(
    ca_bundle: Option<&Path>,
    ssl_cert_file: Option<&Path>,
) -> Result<RootCerts> {
    let path = match ca_bundle {
        Some(path) => path.to_owned(),
        None => system_bundle(ssl_cert_file).ok_or_else(|| {
            Error::Config(
                "no CA certificates for HTTPS: install your system's ca-certificates \
                 package or pass --ca-bundle (AWS_CA_BUNDLE)"
                    .into(),
            )
        })?,
    };
    let pem = std::fs::read(&path)
        .map_err(|e| Error::io(format!("cannot read CA bundle {}", path.display()), e))?;
    Ok(RootCerts::Specific(Arc::new(parse_bundle(&pem, &path)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_without_certificates_is_an_error() {
        let error = parse_bundle(b"not pem at all", Path::new("x.pem")).unwrap_err();
        assert!(
            error.to_string().contains("holds no PEM certificate"),
            "{error}"
        );
    }

    #[test]
    fn ssl_cert_file_names_the_system_bundle() {
        let named = system_bundle(Some(Path::new("/tmp/mine.pem")));
        assert_eq!(named, Some(PathBuf::from("/tmp/mine.pem")));
    }

    #[test]
    fn a_missing_bundle_is_a_clear_error() {
        let error = root_certs(Some(Path::new("/nonexistent/ca.pem")), None).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("cannot read CA bundle /nonexistent/ca.pem")
        );
    }
}
