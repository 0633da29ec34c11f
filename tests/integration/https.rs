//! HTTPS for real: a private CA made with openssl, a TLS front before the
//! local server, and s3wal trusting that CA only through the bundle.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::proxy::FaultProxy;
use common::{Run, Server, TestLog};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Runs openssl in `dir`, which must succeed.
fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA named `name` in `dir`, and a certificate it signed for localhost.
/// Returns the CA's PEM path and the server's TLS configuration.
fn private_ca(dir: &Path, name: &str) -> (PathBuf, Arc<rustls::ServerConfig>) {
    private_ca_for(dir, name, "DNS:localhost,IP:127.0.0.1")
}

/// A CA named `name` in `dir`, and a certificate it signed for the
/// subject alternative names `san` (`DNS:host,IP:address`). Returns the
/// CA's PEM path and the server's TLS configuration.
pub fn private_ca_for(dir: &Path, name: &str, san: &str) -> (PathBuf, Arc<rustls::ServerConfig>) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let ca_subject = format!("/CN={name}");
    let (ca_key, ca_pem) = (format!("{name}.key"), format!("{name}.pem"));
    openssl(
        dir,
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                &ca_key,
                "-out",
                &ca_pem,
                "-days",
                "2",
                "-subj",
                &ca_subject,
            ],
        ]
        .concat(),
    );
    std::fs::write(dir.join("san.ext"), format!("subjectAltName={san}\n")).unwrap();
    openssl(
        dir,
        &[
            &["req"][..],
            &ec,
            &[
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
                "-subj",
                "/CN=localhost",
            ],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    let config = serving(&dir.join("server.pem"), &dir.join("server.key"));
    (dir.join(ca_pem), config)
}

/// A TLS server configuration that presents the certificate at `pem`.
fn serving(pem: &Path, key: &Path) -> Arc<rustls::ServerConfig> {
    let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(pem)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certificates, key)
    .unwrap();
    Arc::new(config)
}

/// Certificate and protocol errors are final: no retry can mend them.
const AT_ONCE: Duration = Duration::from_secs(2);

/// A log reached over HTTPS through a TLS front signed by a private CA.
fn https_log(name: &str) -> (TestLog, PathBuf, FaultProxy) {
    let log = TestLog::new(Server::s3s(), name);
    let (ca, tls) = private_ca(&log.workdir, "s3wal-test-ca");
    let front = FaultProxy::start_tls(&log.server.endpoint, tls);
    (log.via(&front.endpoint), ca, front)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn https_endpoint_works_with_the_private_ca_bundle() {
    let (log, ca, _front) = https_log("https-bundle");
    let ca = ca.to_str().unwrap();
    assert_eq!(
        log.run(&["--ca-bundle", ca, "append", "over TLS"]).ok(),
        "Appended record at offset: 1, data: over TLS\n"
    );
    assert_eq!(
        log.run(&["--ca-bundle", ca, "read", "1"]).ok(),
        "Offset: 1, Data: over TLS\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn aws_ca_bundle_names_the_bundle_too() {
    let (log, ca, _front) = https_log("https-env");
    let mut command = log.command();
    command.env("AWS_CA_BUNDLE", &ca).arg("recover");
    assert_eq!(Run::of(&mut command).ok(), "Last offset: 0\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn without_the_bundle_the_private_ca_is_not_trusted_and_no_retry_is_made() {
    let (log, _ca, _front) = https_log("https-untrusted");
    log.fails_within(
        AT_ONCE,
        &["recover"],
        "(UnknownIssuer): pass that CA's certificate with --ca-bundle",
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_ca_certificate_served_as_the_server_certificate_is_refused_at_once_saying_why() {
    let log = TestLog::new(Server::s3s(), "https-ca-as-leaf");
    let (ca, _) = private_ca(&log.workdir, "leafless-ca");
    let front = FaultProxy::start_tls(
        &log.server.endpoint,
        serving(&ca, &log.workdir.join("leafless-ca.key")),
    );
    let args = ["--ca-bundle", ca.to_str().unwrap(), "recover"];
    log.via(&front.endpoint).fails_within(
        AT_ONCE,
        &args,
        "(CaUsedAsEndEntity): the server needs a leaf certificate (basicConstraints CA:FALSE)",
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn https_to_a_plain_http_server_is_refused_at_once_saying_use_http() {
    let log = TestLog::new(Server::s3s(), "https-to-http");
    let endpoint = log.server.endpoint.replace("http://", "https://");
    log.via(&endpoint).fails_within(
        AT_ONCE,
        &["recover"],
        "it seems to speak plain HTTP; use an http:// endpoint",
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_bundle_of_another_ca_is_not_enough() {
    let (log, _ca, _front) = https_log("https-other-ca");
    let other = log.workdir.join("other");
    std::fs::create_dir(&other).unwrap();
    let (other_ca, _) = private_ca(&other, "another-ca");
    log.run(&[
        "--ca-bundle",
        other_ca.to_str().unwrap(),
        "--retries",
        "0",
        "recover",
    ])
    .fails(1, "--ca-bundle");
}

#[test]
fn a_bundle_without_certificates_is_refused() {
    // Read before any request: no server, and no TLS front, needed.
    let log = TestLog::without_server("https-empty-bundle").via("https://127.0.0.1:9");
    let empty = log.workdir.join("empty.pem");
    std::fs::write(&empty, "nothing here\n").unwrap();
    log.run(&["--ca-bundle", empty.to_str().unwrap(), "recover"])
        .fails(1, "holds no PEM certificate");
}
