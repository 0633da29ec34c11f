//! Every credential provider end to end through the CLI: the loopback
//! credential server hands out the real test keys (with a session token
//! s3s-fs does not check), so each provider is proven by a real append.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::credential_server::{Behaviour, CredentialServer, TokenPut, session_token};
use crate::common::proxy::{Fault, FaultProxy};
use crate::common::{Run, Server, TestLog};

pub(crate) fn behaviour(log: &TestLog) -> Behaviour {
    Behaviour {
        access_key: log.server.access_key.clone(),
        secret_key: log.server.secret_key.clone(),
        lifetime: Duration::from_secs(3600),
        token_put: TokenPut::Token,
        container_authorization: None,
        body: None,
    }
}

/// The binary for `log`, without the environment's keys.
fn keyless(log: &TestLog) -> Command {
    let mut command = log.command();
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY");
    command
}

/// The binary for `log`, with the metadata service at `server`.
fn on_ec2(log: &TestLog, server: &CredentialServer) -> Command {
    let mut command = keyless(log);
    command
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &server.url);
    command
}

#[track_caller]
fn appends(command: &mut Command) -> Run {
    let run = Run::of(command.args(["-v", "append", "hello"]));
    assert!(
        run.ok().contains("Appended record at offset: 1"),
        "{}",
        run.stderr
    );
    run
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn ec2_instance_role_over_imdsv2_appends() {
    let log = TestLog::new(Server::s3s(), "cred-imds");
    let server = CredentialServer::start(behaviour(&log));
    let run = appends(&mut on_ec2(&log, &server));
    assert_eq!(server.count("/latest/api/token"), 1);
    assert!(!run.stderr.contains(&session_token(3)), "{}", run.stderr);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn imdsv1_fallback_when_the_token_put_is_refused() {
    let log = TestLog::new(Server::s3s(), "cred-imdsv1");
    let server = CredentialServer::start(Behaviour {
        token_put: TokenPut::Refuse(403),
        ..behaviour(&log)
    });
    appends(&mut on_ec2(&log, &server));
}

#[test]
fn a_token_put_that_times_out_in_a_container_names_the_hop_limit() {
    let log = TestLog::without_server("cred-hop");
    let server = CredentialServer::start(Behaviour {
        token_put: TokenPut::Hang,
        ..behaviour(&log)
    });
    Run::of(on_ec2(&log, &server).args(["append", "x"])).fails(1, "hop limit");
}

#[test]
fn imds_v1_disabled_and_a_refused_token_put_is_an_error() {
    let log = TestLog::without_server("cred-v1off");
    let server = CredentialServer::start(Behaviour {
        token_put: TokenPut::Refuse(405),
        ..behaviour(&log)
    });
    let mut command = on_ec2(&log, &server);
    command.env("AWS_EC2_METADATA_V1_DISABLED", "true");
    Run::of(command.args(["append", "x"])).fails(
        1,
        "credentials from EC2 instance metadata: the metadata service refused",
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn container_endpoint_with_a_token_file_appends() {
    let log = TestLog::new(Server::s3s(), "cred-ecs");
    let server = CredentialServer::start(Behaviour {
        container_authorization: Some("pod-identity-token".into()),
        ..behaviour(&log)
    });
    let token_file = log.workdir.join("token");
    std::fs::write(&token_file, "pod-identity-token\n").unwrap();
    let mut command = keyless(&log);
    command
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/creds", server.url),
        )
        .env("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &token_file);
    let run = appends(&mut command);
    assert!(!run.stderr.contains("pod-identity-token"), "{}", run.stderr);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn web_identity_appends_and_sends_the_token_file_to_sts() {
    let log = TestLog::new(Server::s3s(), "cred-irsa");
    let server = CredentialServer::start(behaviour(&log));
    let token_file = log.workdir.join("jwt");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.payload.sig").unwrap();
    let mut command = keyless(&log);
    command
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/pod")
        .env("AWS_ENDPOINT_URL_STS", &server.url);
    let run = appends(&mut command);
    assert!(!run.stderr.contains("eyJ"), "{}", run.stderr);
    let seen = server.seen.lock().unwrap();
    assert!(
        seen[0].body.contains("Action=AssumeRoleWithWebIdentity"),
        "{:?}",
        seen[0]
    );
    assert!(
        seen[0]
            .body
            .contains("WebIdentityToken=eyJhbGciOiJSUzI1NiJ9.payload.sig")
    );
}

#[test]
fn a_configured_provider_that_fails_never_falls_through() {
    let log = TestLog::without_server("cred-nofall");
    let server = CredentialServer::start(behaviour(&log));
    let mut command = on_ec2(&log, &server);
    command
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", log.workdir.join("missing"))
        .env("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod")
        .env("AWS_ENDPOINT_URL_STS", &server.url);
    Run::of(command.args(["append", "x"])).fails(
        1,
        "credentials from web identity: cannot read the token file",
    );
    assert_eq!(server.seen.lock().unwrap().len(), 0, "IMDS was asked");
}

/// Writes an executable script and returns its path.
fn script(log: &TestLog, name: &str, body: &str) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = log.workdir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The binary for `log` with `config` as `~/.aws/config` and no keys in
/// the environment.
pub(crate) fn with_profile(log: &TestLog, config: &str) -> Command {
    std::fs::create_dir_all(log.workdir.join(".aws")).unwrap();
    std::fs::write(log.workdir.join(".aws/config"), config).unwrap();
    keyless(log)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn credential_process_appends() {
    let log = TestLog::new(Server::s3s(), "cred-process");
    let json = format!(
        r#"{{"Version": 1, "AccessKeyId": "{}", "SecretAccessKey": "{}", "Expiration": "2099-01-01T00:00:00+00:00"}}"#,
        log.server.access_key, log.server.secret_key
    );
    let helper = script(&log, "helper", &format!("echo '{json}'"));
    let mut command = with_profile(
        &log,
        &format!("[default]\ncredential_process = {helper} --x\n"),
    );
    let run = appends(&mut command);
    assert!(
        !run.stderr.contains(&log.server.secret_key),
        "{}",
        run.stderr
    );
}

#[test]
fn a_failing_credential_process_shows_its_reason_without_secrets() {
    let log = TestLog::without_server("cred-process-fail");
    let helper = script(
        &log,
        "helper",
        "echo 'expired: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY' >&2; exit 3",
    );
    let mut command = with_profile(&log, &format!("[default]\ncredential_process = {helper}\n"));
    let run = Run::of(command.args(["append", "x"]));
    run.fails(1, "credentials from credential_process: ");
    assert!(run.stderr.contains("expired: [hidden]"), "{}", run.stderr);
}

#[test]
fn a_hanging_credential_process_is_bounded_by_timeout() {
    let log = TestLog::without_server("cred-process-hang");
    let helper = script(&log, "helper", "exec sleep 30");
    let mut command = with_profile(&log, &format!("[default]\ncredential_process = {helper}\n"));
    let started = std::time::Instant::now();
    Run::of(command.args(["--timeout", "1", "append", "x"])).fails(1, "did not finish within 1 s");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn source_profile_loops_are_a_one_line_error() {
    let log = TestLog::without_server("cred-loop");
    let mut command = with_profile(
        &log,
        "[profile a]\nrole_arn = r\nsource_profile = b\n[profile b]\nrole_arn = r\nsource_profile = a\n",
    );
    Run::of(command.args(["--profile", "a", "append", "x"]))
        .fails(1, "source_profile loops: a -> b -> a");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn sso_profile_appends_with_the_cached_token() {
    let log = TestLog::new(Server::s3s(), "cred-sso");
    let server = CredentialServer::start(behaviour(&log));
    let mut command = sso_at(&log, &server);
    appends(&mut command);
    let seen = server.seen.lock().unwrap();
    assert_eq!(
        seen[0].path,
        "/federation/credentials?role_name=Dev&account_id=111"
    );
    assert!(
        seen[0]
            .headers
            .contains(&("x-amz-sso_bearer_token".into(), "sso-bearer".into()))
    );
}

#[test]
fn an_expired_sso_token_says_to_log_in_again() {
    let log = TestLog::without_server("cred-sso-old");
    let cache = log.workdir.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    // sha1("https://corp").
    std::fs::write(
        cache.join("17da54e8ec4ee05390f1915bb3ef5fea7ebd238e.json"),
        r#"{"accessToken": "t", "expiresAt": "2020-01-01T00:00:00UTC"}"#,
    )
    .unwrap();
    let mut command = with_profile(
        &log,
        "[default]\nsso_start_url = https://corp\nsso_region = eu-west-1\n\
         sso_account_id = 1\nsso_role_name = R\n",
    );
    Run::of(command.args(["append", "x"])).fails(1, "run `aws sso login`");
}

/// An endpoint of the chain: the command that takes its credentials
/// from `server`, the provider an error names, and its answers with
/// credentials that expired in 2001 and with a malformed body.
struct Endpoint {
    command: fn(&TestLog, &CredentialServer) -> Command,
    provider: &'static str,
    expired: &'static str,
    malformed: (&'static str, &'static str),
}

const JSON_EXPIRED: &str =
    r#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"2001-01-01T00:00:00Z"}"#;
const JSON_MALFORMED: (&str, &str) = (r#"{"AccessKeyId": "#, "malformed JSON");

fn container_at(log: &TestLog, server: &CredentialServer) -> Command {
    let mut command = keyless(log);
    command.env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/c", server.url),
    );
    command
}

fn sso_at(log: &TestLog, server: &CredentialServer) -> Command {
    let cache = log.workdir.join(".aws/sso/cache");
    std::fs::create_dir_all(&cache).unwrap();
    // sha1("corp"), as the aws CLI names it.
    std::fs::write(
        cache.join("ee0bfd2552fbd840c02cc48b6e823320543c450f.json"),
        r#"{"accessToken": "sso-bearer", "expiresAt": "2099-01-01T00:00:00Z"}"#,
    )
    .unwrap();
    let mut command = with_profile(
        log,
        "[default]\nsso_session = corp\nsso_account_id = 111\nsso_role_name = Dev\n\
         [sso-session corp]\nsso_region = eu-west-1\nsso_start_url = https://corp\n",
    );
    command.env("AWS_ENDPOINT_URL_SSO", &server.url);
    command
}

fn sts_at(log: &TestLog, server: &CredentialServer) -> Command {
    let token_file = log.workdir.join("jwt");
    std::fs::write(&token_file, "eyJ.e.s").unwrap();
    let mut command = keyless(log);
    command
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod")
        .env("AWS_ENDPOINT_URL_STS", &server.url);
    command
}

const ENDPOINTS: [Endpoint; 4] = [
    Endpoint {
        command: container_at,
        provider: "the container endpoint",
        expired: JSON_EXPIRED,
        malformed: JSON_MALFORMED,
    },
    Endpoint {
        command: on_ec2,
        provider: "EC2 instance metadata",
        expired: JSON_EXPIRED,
        malformed: JSON_MALFORMED,
    },
    Endpoint {
        command: sso_at,
        provider: "SSO",
        expired: r#"{"roleCredentials":{"accessKeyId":"A","secretAccessKey":"S","sessionToken":"T","expiration":978307200000}}"#,
        malformed: JSON_MALFORMED,
    },
    Endpoint {
        command: sts_at,
        provider: "web identity",
        expired: "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>\
                  <Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S</SecretAccessKey>\
                  <SessionToken>T</SessionToken><Expiration>2001-01-01T00:00:00Z</Expiration>\
                  </Credentials></AssumeRoleWithWebIdentityResult>\
                  </AssumeRoleWithWebIdentityResponse>",
        malformed: (
            "<AssumeRoleWithWebIdentityResponse><Credentials></Assume",
            "malformed XML",
        ),
    },
];

/// Runs an append whose credentials come from `endpoint` answering
/// `body`, and asserts a one-line error naming the provider, exit 1.
fn refused(log: &TestLog, endpoint: &Endpoint, body: &'static str, needle: &str) {
    let server = CredentialServer::start(Behaviour {
        body: Some(body.into()),
        ..behaviour(log)
    });
    let run = Run::of((endpoint.command)(log, &server).args(["append", "x"]));
    run.fails(1, &format!("credentials from {}: ", endpoint.provider));
    run.fails(1, needle);
}

#[test]
fn a_malformed_answer_from_each_endpoint_is_a_one_line_error() {
    let log = TestLog::without_server("cred-malformed");
    for endpoint in &ENDPOINTS {
        let (body, needle) = endpoint.malformed;
        refused(&log, endpoint, body, needle);
    }
}

#[test]
fn credentials_expired_when_handed_out_are_a_one_line_error() {
    let log = TestLog::without_server("cred-expired");
    for endpoint in &ENDPOINTS {
        refused(
            &log,
            endpoint,
            endpoint.expired,
            "expired at 2001-01-01T00:00:00Z",
        );
    }
}

#[test]
fn an_unreadable_container_token_file_is_a_one_line_error() {
    let log = TestLog::without_server("cred-ecs-token");
    let server = CredentialServer::start(behaviour(&log));
    let mut command = container_at(&log, &server);
    command.env(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        log.workdir.join("missing-token"),
    );
    Run::of(command.args(["append", "x"])).fails(1, "credentials from the container endpoint: ");
    assert_eq!(
        server.seen.lock().unwrap().len(),
        0,
        "asked without a token"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn credentials_are_renewed_during_a_run_longer_than_their_life() {
    let log = TestLog::new(Server::s3s(), "cred-refresh");
    let server = CredentialServer::start(Behaviour {
        lifetime: Duration::from_secs(3),
        ..behaviour(&log)
    });
    let mut child = keyless(&log)
        .env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{}/c", server.url),
        )
        .args(["append", "--lines"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for n in 0..7 {
        writeln!(stdin, "line {n}").unwrap();
        stdin.flush().unwrap();
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        server.count("/c") >= 3,
        "fetched {} times",
        server.count("/c")
    );
}

/// The binary for `log` through a proxy that answers the first `expired`
/// S3 requests 400 `ExpiredToken`, with container credentials from
/// `server`; and the proxy.
fn with_expiring_token(
    log: &TestLog,
    server: &CredentialServer,
    expired: usize,
) -> (Command, FaultProxy) {
    let mut left = expired;
    let proxy = FaultProxy::start(&log.server.endpoint, move |_, _| match left {
        0 => Fault::Forward,
        _ => {
            left -= 1;
            Fault::Answer(400, "ExpiredToken")
        }
    });
    let mut command = keyless(&log.via(&proxy.endpoint));
    command.env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        format!("{}/c", server.url),
    );
    (command, proxy)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn an_expired_token_renews_the_credentials_once_and_resends() {
    let log = TestLog::new(Server::s3s(), "cred-expired-once");
    let server = CredentialServer::start(behaviour(&log));
    let (mut command, proxy) = with_expiring_token(&log, &server, 1);
    appends(&mut command);
    assert_eq!(server.count("/c"), 2, "credentials fetched, then renewed");
    let refused = proxy.seen()[0].clone();
    let resent = proxy.seen()[1].clone();
    assert_eq!(refused.fault, Fault::Answer(400, "ExpiredToken"));
    assert_eq!(
        (resent.method, resent.path, resent.fault),
        (refused.method, refused.path, Fault::Forward)
    );
    assert_eq!(log.offsets(), [1]);
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_token_still_expired_after_renewal_is_a_clear_error() {
    let log = TestLog::new(Server::s3s(), "cred-expired-twice");
    let server = CredentialServer::start(behaviour(&log));
    let (mut command, proxy) = with_expiring_token(&log, &server, usize::MAX);
    Run::of(command.args(["append", "x"])).fails(1, "HTTP 400 ExpiredToken");
    // Each request (the probe's PUT, then the cleanup of its key) went
    // out twice: once, then once more with renewed credentials.
    let sent: Vec<(String, String)> = proxy
        .seen()
        .into_iter()
        .map(|s| (s.method, s.path))
        .collect();
    assert!(
        !sent.is_empty()
            && sent
                .chunks(2)
                .all(|pair| pair.len() == 2 && pair[0] == pair[1]),
        "{sent:?}"
    );
    assert_eq!(
        server.count("/c"),
        1 + sent.len() / 2,
        "one renewal per request"
    );
}
