//! Named profiles from ~/.aws, with aws CLI's precedence: flags, then the
//! environment, then the profile.

use crate::common;

use common::{Run, Server, TestLog};

/// Writes `~/.aws/config` and `~/.aws/credentials` (HOME is the workdir).
fn write_aws_files(log: &TestLog, config: &str, credentials: &str) {
    let dir = log.workdir.join(".aws");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("credentials"), credentials).unwrap();
}

/// A profile `onprem` holding this server's endpoint and keys.
fn onprem_profile(log: &TestLog) -> (String, String) {
    let config = format!(
        "[default]\nregion = us-east-1\n\n[profile onprem]\nregion = us-east-1\nendpoint_url = {}\n",
        log.server.endpoint
    );
    let credentials = format!(
        "[onprem]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        log.server.access_key, log.server.secret_key
    );
    (config, credentials)
}

/// The log's command without endpoint and keys in the environment.
fn bare(log: &TestLog, args: &[&str]) -> Run {
    let mut command = log.command();
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ] {
        command.env_remove(name);
    }
    Run::of(command.args(args))
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn profile_flag_supplies_endpoint_and_credentials() {
    let log = TestLog::new(Server::s3s(), "profile-flag");
    let (config, credentials) = onprem_profile(&log);
    write_aws_files(&log, &config, &credentials);
    assert_eq!(
        bare(&log, &["--profile", "onprem", "recover"]).ok(),
        "Last offset: 0\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn aws_profile_names_the_profile_too() {
    let log = TestLog::new(Server::s3s(), "profile-env");
    let (config, credentials) = onprem_profile(&log);
    write_aws_files(&log, &config, &credentials);
    let mut command = log.command();
    command
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_PROFILE", "onprem")
        .arg("recover");
    assert_eq!(Run::of(&mut command).ok(), "Last offset: 0\n");
}

#[test]
fn a_profile_that_does_not_exist_is_an_error() {
    let log = TestLog::without_server("profile-missing");
    write_aws_files(&log, "[default]\n", "");
    bare(&log, &["--profile", "nope", "recover"]).fails(1, "profile \"nope\" is in neither");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn environment_beats_the_profile_for_the_endpoint() {
    let log = TestLog::new(Server::s3s(), "profile-env-wins");
    let config = "[profile onprem]\nendpoint_url = http://127.0.0.1:9\n";
    let credentials = format!(
        "[onprem]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        log.server.access_key, log.server.secret_key
    );
    write_aws_files(&log, config, &credentials);
    // AWS_ENDPOINT_URL (set by the harness) beats the profile's dead endpoint.
    assert_eq!(
        log.run(&["--profile", "onprem", "recover"]).ok(),
        "Last offset: 0\n"
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn profile_flag_credentials_beat_exported_ones() {
    let log = TestLog::new(Server::s3s(), "profile-flag-creds");
    let (config, credentials) = onprem_profile(&log);
    write_aws_files(&log, &config, &credentials);
    let mut command = log.command();
    command
        .env("AWS_SECRET_ACCESS_KEY", "stale-exported-secret")
        .args(["--profile", "onprem", "recover"]);
    assert_eq!(Run::of(&mut command).ok(), "Last offset: 0\n");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn exported_credentials_beat_aws_profile() {
    let log = TestLog::new(Server::s3s(), "profile-env-creds");
    let config = "[profile onprem]\nregion = us-east-1\n";
    let credentials = "[onprem]\naws_access_key_id = wrong\naws_secret_access_key = wrong\n";
    write_aws_files(&log, config, credentials);
    let mut command = log.command();
    command.env("AWS_PROFILE", "onprem").arg("recover");
    assert_eq!(Run::of(&mut command).ok(), "Last offset: 0\n");
}

#[test]
fn a_named_profile_without_keys_is_an_error_not_a_fallback() {
    let log = TestLog::without_server("profile-no-keys");
    write_aws_files(&log, "[profile empty]\nregion = us-east-1\n", "");
    log.run(&["--profile", "empty", "recover"])
        .fails(1, "profile \"empty\" has no credentials");
}
