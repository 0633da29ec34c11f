//! STS through the CLI: `AssumeRole` and `AssumeRoleWithWebIdentity`
//! against moto's real STS (which accepts any signature and hands out keys
//! of its own, so these prove the call and our reading of its answer, and
//! S3 then refuses the keys), and `AssumeRole` end to end with a real
//! append through the loopback STS stand-in, which hands out the test keys.

use std::process::Command;

use crate::common::credential_server::CredentialServer;
use crate::common::{Run, Server, TestLog};
use crate::credentials::{behaviour, with_profile};

/// moto's STS, started by `make test`.
fn moto() -> String {
    std::env::var("S3WAL_TEST_MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!("S3WAL_TEST_MOTO_ENDPOINT is not set: run the tests with `make test`")
    })
}

/// Runs `doctor` with moto's STS and asserts that the credentials came
/// from `provider` and that S3, not the credential chain, refused them:
/// a failed or misread STS call is a credentials error, and the source
/// keys (the test keys) sent to S3 themselves would pass.
#[track_caller]
fn moto_credentials_reach_s3(command: &mut Command, provider: &str) {
    let run = Run::of(command.env("AWS_ENDPOINT_URL_STS", moto()).arg("doctor"));
    let out = run.out();
    let configuration = out.lines().next().unwrap_or_default();
    assert!(configuration.contains(provider), "{out}{}", run.stderr);
    let refused = out
        .lines()
        .find(|l| l.starts_with("credentials and bucket: "))
        .unwrap_or_default();
    assert!(refused.contains("PROBLEM"), "{out}{}", run.stderr);
    assert!(refused.contains("HTTP 403"), "not an S3 refusal: {refused}");
    assert!(!refused.contains("credentials from"), "{refused}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn assume_role_is_understood_by_moto_sts() {
    let log = TestLog::new(Server::s3s(), "sts-moto-role");
    let mut command = with_profile(
        &log,
        &format!(
            "[default]\nrole_arn = arn:aws:iam::123456789012:role/writer\n\
             source_profile = keys\nexternal_id = ext-1\nduration_seconds = 900\n\
             [profile keys]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            log.server.access_key, log.server.secret_key
        ),
    );
    moto_credentials_reach_s3(
        &mut command,
        "assume role arn:aws:iam::123456789012:role/writer from static keys",
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn assume_role_with_web_identity_is_understood_by_moto_sts() {
    let log = TestLog::new(Server::s3s(), "sts-moto-oidc");
    let token_file = log.workdir.join("jwt");
    std::fs::write(&token_file, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln").unwrap();
    let mut command = with_profile(&log, "");
    command
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", &token_file)
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/ci");
    moto_credentials_reach_s3(
        &mut command,
        "web identity, role arn:aws:iam::123456789012:role/ci",
    );
}

fn stand_in(log: &TestLog) -> CredentialServer {
    CredentialServer::start(behaviour(log))
}

/// Appends through `command`, and returns what STS was sent.
#[track_caller]
fn appends_assuming(command: &mut Command, sts: &CredentialServer) -> String {
    let run = Run::of(
        command
            .env("AWS_ENDPOINT_URL_STS", &sts.url)
            .args(["append", "hello"]),
    );
    assert!(
        run.ok().contains("Appended record at offset: 1"),
        "{}",
        run.stderr
    );
    let seen = sts.seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let authorization = seen[0]
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    assert!(
        authorization.starts_with("AWS4-HMAC-SHA256 Credential=source-key/"),
        "{authorization}"
    );
    seen[0].body.clone()
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_role_from_a_source_profile_appends() {
    let log = TestLog::new(Server::s3s(), "sts-source-profile");
    let sts = stand_in(&log);
    let mut command = with_profile(
        &log,
        "[default]\nrole_arn = arn:aws:iam::1:role/writer\nsource_profile = keys\n\
         role_session_name = nightly\n\
         [profile keys]\naws_access_key_id = source-key\naws_secret_access_key = source-secret\n",
    );
    let body = appends_assuming(&mut command, &sts);
    assert!(body.contains("Action=AssumeRole&"), "{body}");
    assert!(body.contains("RoleSessionName=nightly"), "{body}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn a_role_from_the_environment_appends() {
    let log = TestLog::new(Server::s3s(), "sts-env-source");
    let sts = stand_in(&log);
    let mut command = with_profile(
        &log,
        "[profile ci]\nrole_arn = arn:aws:iam::1:role/writer\ncredential_source = Environment\n",
    );
    // --profile, unlike AWS_PROFILE, puts the profile before the
    // environment's keys, which it then uses as its source.
    command
        .args(["--profile", "ci"])
        .env("AWS_ACCESS_KEY_ID", "source-key")
        .env("AWS_SECRET_ACCESS_KEY", "source-secret");
    let body = appends_assuming(&mut command, &sts);
    assert!(
        body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fwriter"),
        "{body}"
    );
}

#[test]
fn a_role_that_needs_mfa_without_a_terminal_is_a_clear_error() {
    use std::os::unix::process::CommandExt;
    let log = TestLog::without_server("sts-mfa");
    let mut command = with_profile(
        &log,
        "[default]\nrole_arn = arn:aws:iam::1:role/writer\nsource_profile = keys\n\
         mfa_serial = arn:aws:iam::1:mfa/me\n\
         [profile keys]\naws_access_key_id = k\naws_secret_access_key = s\n",
    );
    // As from cron: a session of its own, with no terminal to ask on.
    // SAFETY: setsid only detaches the child from the terminal.
    unsafe {
        command.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    Run::of(command.args(["recover"])).fails(1, "no terminal to ask on");
}
