//! Which certificate authorities an HTTPS endpoint is checked against.
//!
//! A bundle the user names (`--ca-bundle`, `AWS_CA_BUNDLE`) is trusted
//! alone, as aws CLI does: that is how an air-gapped Ceph or MinIO behind a
//! private CA is reached. Otherwise the system's bundle is used, as rclone
//! and Litestream do, so a private CA installed system-wide works too.
//! Certificate checks are never turned off.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

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

/// Which certificate authorities a client trusts, as configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct Trust {
    /// A PEM bundle to trust alone (`--ca-bundle`, `AWS_CA_BUNDLE`).
    pub(crate) ca_bundle: Option<PathBuf>,
    /// The system bundle's path if the environment names it
    /// (`SSL_CERT_FILE`); otherwise the usual places are searched.
    pub(crate) ssl_cert_file: Option<PathBuf>,
}

impl Trust {
    /// The TLS settings for a host reached over HTTPS or not. The roots
    /// are read only for HTTPS: a plain HTTP host trusts nothing, so a
    /// machine without any CA bundle can still reach a local store or the
    /// instance metadata.
    pub(crate) fn tls_config(&self, https: bool) -> Result<TlsConfig> {
        if !https {
            return Ok(trusting_nothing());
        }
        let roots = root_certs(self.ca_bundle.as_deref(), self.ssl_cert_file.as_deref())?;
        Ok(TlsConfig::builder().root_certs(roots).build())
    }
}

/// TLS settings that trust no certificate at all, for plain HTTP.
pub(crate) fn trusting_nothing() -> TlsConfig {
    let roots = RootCerts::Specific(Arc::new(Vec::new()));
    TlsConfig::builder().root_certs(roots).build()
}

/// The certificates of a PEM bundle; an error if it holds none.
fn parse_bundle(pem: &[u8], path: &Path) -> Result<Vec<Certificate<'static>>> {
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
fn root_certs(ca_bundle: Option<&Path>, ssl_cert_file: Option<&Path>) -> Result<RootCerts> {
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
