//! A bucket in another region than the one configured, on AWS's endpoints:
//! S3's refusals (301 `PermanentRedirect`, 400
//! `AuthorizationHeaderMalformed`, 400 `AuthorizationQueryParametersError`)
//! name the bucket's region, s3wal signs once more for it and remembers it.
//!
//! The redirect only happens without a custom endpoint, so these tests
//! reach AWS's endpoint names (`https://s3.<region>.amazonaws.com`) the way
//! a user behind a proxy does, with nothing but documented settings:
//! `HTTPS_PROXY` names the fault proxy, which ends the `CONNECT` tunnel
//! itself with a certificate of a test CA that `--ca-bundle` trusts, and
//! plays S3's wrong-region answers in front of the real s3s-fs (which
//! verifies every signature with the region of its scope). ureq asks the
//! proxy to resolve the tunnelled host, so no name is ever looked up and no
//! packet leaves loopback. `--path-style` keeps the bucket out of the host
//! name, which s3s-fs (started without `--domain`) would not route.

use crate::common;
use crate::https::private_ca_for;

use std::process::Command;

use common::proxy::{Fault, FaultProxy, Seen, WrongRegion};
use common::{Run, Server, TestLog};

/// Where the test bucket "is".
const BUCKET_REGION: &str = "eu-west-1";

/// A log on s3s-fs reached as an AWS bucket in [`BUCKET_REGION`] while
/// s3wal is configured for us-east-1, through a proxy that answers
/// requests for the wrong region with `wrong`.
struct AwsLog {
    log: TestLog,
    proxy: FaultProxy,
    ca: std::path::PathBuf,
}

impl AwsLog {
    fn new(name: &str, wrong: WrongRegion) -> AwsLog {
        let log = TestLog::new(Server::s3s(), name);
        let san = "DNS:s3.us-east-1.amazonaws.com,DNS:s3.eu-west-1.amazonaws.com";
        let (ca, tls) = private_ca_for(&log.workdir, "aws-test-ca", san);
        let proxy = FaultProxy::start_intercepting(&log.server.endpoint, tls, move |_, _| {
            Fault::InRegion(BUCKET_REGION, wrong)
        });
        AwsLog { log, proxy, ca }
    }

    /// `s3wal ARGS` with no custom endpoint, through the proxy.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = self.log.command();
        command
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_REGION", "us-east-1")
            .env("HTTPS_PROXY", &self.proxy.endpoint)
            .args(["--ca-bundle", self.ca.to_str().unwrap(), "--path-style"])
            .args(args);
        command
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(&mut self.command(args))
    }

    /// The requests since the last call, without the tunnels.
    fn requests(&self, before: usize) -> Vec<Seen> {
        let seen = self.proxy.seen();
        seen[before..]
            .iter()
            .filter(|s| s.method != "CONNECT")
            .cloned()
            .collect()
    }

    /// The region remembered for the bucket.
    fn remembered(&self) -> Option<String> {
        let dir = std::fs::read_dir(&self.log.lock_dir).ok()?;
        dir.flatten()
            .find(|entry| entry.path().extension().is_some_and(|e| e == "region"))
            .map(|entry| std::fs::read_to_string(entry.path()).unwrap())
    }
}

fn refused(seen: &[Seen]) -> usize {
    seen.iter()
        .filter(|s| matches!(s.fault, Fault::Refuse(..)))
        .count()
}

/// An append, then a read, of a bucket that answers `wrong` to requests
/// for us-east-1: the append is refused once and re-signed, the read
/// goes straight to the remembered region.
fn follows_and_remembers(name: &str, wrong: WrongRegion) {
    let aws = AwsLog::new(name, wrong);
    assert_eq!(
        aws.run(&["append", "far away"]).ok(),
        "Appended record at offset: 1, data: far away\n"
    );
    let first = aws.requests(0);
    assert_eq!(refused(&first), 1, "{first:?}");
    assert!(matches!(first[0].fault, Fault::Refuse(..)), "{first:?}");
    assert_eq!(aws.remembered().as_deref(), Some(BUCKET_REGION));

    let before = aws.proxy.seen().len();
    let run = aws.run(&["-v", "read", "1"]);
    assert_eq!(run.ok(), "Offset: 1, Data: far away\n");
    let second = aws.requests(before);
    assert_eq!(refused(&second), 0, "{second:?}");
    assert_eq!(second.len(), 1, "one request, no redirect: {second:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_permanent_redirect_is_followed_to_the_region_in_its_header_and_remembered() {
    follows_and_remembers("region-301", WrongRegion::Redirect);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn authorization_header_malformed_is_followed_to_the_region_in_its_body() {
    follows_and_remembers("region-400-header", WrongRegion::HeaderMalformed);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn authorization_query_parameters_error_is_followed_to_the_region_in_its_body() {
    follows_and_remembers("region-400-query", WrongRegion::QueryParametersError);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_custom_endpoint_is_never_redirected_and_the_error_names_the_buckets_region() {
    let log = TestLog::new(Server::s3s(), "region-custom");
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| {
        Fault::InRegion(BUCKET_REGION, WrongRegion::Redirect)
    });
    let log = log.via(&proxy.endpoint);
    log.run(&["recover"]).fails(
        1,
        "HTTP 301 PermanentRedirect: The bucket you are attempting to access must be addressed \
         using the specified endpoint; S3 says the bucket is in region eu-west-1: configure \
         that region and its endpoint",
    );
    assert_eq!(refused(&proxy.seen()), 1, "{:?}", proxy.seen());
    let locks = std::fs::read_dir(&log.lock_dir).into_iter().flatten();
    assert!(
        !locks
            .flatten()
            .any(|entry| entry.path().extension().is_some_and(|e| e == "region"))
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_says_which_region_and_addressing_are_in_use_and_where_they_came_from() {
    let aws = AwsLog::new("region-doctor", WrongRegion::Redirect);
    let out = aws.run(&["doctor"]).ok();
    for shown in [
        "region us-east-1 (env AWS_REGION)",
        "endpoint https://s3.us-east-1.amazonaws.com/ (default)",
        "addressing path-style (--path-style)",
        "S3 said the bucket is in eu-west-1, not us-east-1",
    ] {
        assert!(out.contains(shown), "{shown:?} not in: {out}");
    }
    let out = aws.run(&["doctor"]).ok();
    let remembered = "region eu-west-1 (S3 named it; remembered in ";
    assert!(out.contains(remembered), "{out}");
}

#[test]
fn fips_with_a_custom_endpoint_is_a_configuration_error() {
    let log = TestLog::without_server("region-fips-custom");
    let mut command = log.command();
    command.env("AWS_USE_FIPS_ENDPOINT", "true").arg("recover");
    Run::of(&mut command).fails(
        1,
        "a FIPS endpoint (env AWS_USE_FIPS_ENDPOINT) is one of AWS's and cannot be combined \
         with a custom endpoint (env AWS_ENDPOINT_URL): drop one of them",
    );
}

#[test]
fn a_setting_that_is_not_true_or_false_is_a_configuration_error() {
    let log = TestLog::without_server("region-dualstack-bad");
    let mut command = log.command();
    command
        .env_remove("AWS_ENDPOINT_URL")
        // Should the check ever pass, nothing reaches AWS: a dead proxy.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("AWS_USE_DUALSTACK_ENDPOINT", "yes")
        .arg("recover");
    Run::of(&mut command).fails(
        1,
        "AWS_USE_DUALSTACK_ENDPOINT (env AWS_USE_DUALSTACK_ENDPOINT) must be true or false",
    );
}
