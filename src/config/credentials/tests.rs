//! The chain's choices, made without the network: which provider each
//! configuration picks, and the errors of the ones that are wrong.

use super::*;
use crate::config::tests::env;

fn named(name: &str, source: Source, config: &str, credentials: &str) -> NamedProfile {
    let dir = std::env::temp_dir().join(format!(
        "s3wal-chain-{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config"), config).unwrap();
    std::fs::write(dir.join("credentials"), credentials).unwrap();
    let files = super::super::profile::load_files(&dir.join("credentials"), &dir.join("config"));
    std::fs::remove_dir_all(&dir).unwrap();
    let files = files.unwrap();
    NamedProfile {
        name: name.into(),
        source,
        profile: files.profile(name).unwrap_or_default(),
        files,
    }
}

fn default_profile(config: &str) -> NamedProfile {
    named("default", Source::Default, config, "")
}

fn choose(vars: &[(&str, &str)], profile: &NamedProfile) -> Result<Chosen> {
    let settings = Settings {
        region: "eu-west-1",
        http: Http::default(),
        timeout: Duration::from_secs(5),
    };
    resolve(&env(vars), profile, settings)
}

/// The provider the chain picks.
fn pick(vars: &[(&str, &str)], profile: &NamedProfile) -> &'static str {
    choose(vars, profile).unwrap().provider.fetch.name()
}

const KEYS: [(&str, &str); 2] = [("AWS_ACCESS_KEY_ID", "AK"), ("AWS_SECRET_ACCESS_KEY", "SK")];
const WEB: [(&str, &str); 2] = [
    ("AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"),
    ("AWS_ROLE_ARN", "arn:aws:iam::1:role/pod"),
];
const CONTAINER: (&str, &str) = ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c");
const STATIC_PROFILE: &str = "[default]\naws_access_key_id = PK\naws_secret_access_key = PS\n";

#[test]
fn env_beats_web_identity_beats_profile_beats_container_beats_imds() {
    let profile = default_profile(STATIC_PROFILE);
    let all: Vec<_> = KEYS
        .iter()
        .chain(&WEB)
        .copied()
        .chain([CONTAINER])
        .collect();
    assert_eq!(pick(&all, &profile), "static keys");
    assert_eq!(pick(&all[2..], &profile), "web identity");
    assert_eq!(pick(&all[4..], &profile), "static keys");
    let empty = default_profile("");
    assert_eq!(pick(&all[4..], &empty), "the container endpoint");
    assert_eq!(pick(&[], &empty), "EC2 instance metadata");
    let error = choose(&[("AWS_EC2_METADATA_DISABLED", "true")], &empty).unwrap_err();
    assert!(error.to_string().starts_with("no credentials"), "{error}");
}

#[test]
fn profile_flag_beats_env_keys_and_web_identity() {
    let profile = named(
        "p",
        Source::Flag("--profile"),
        "[profile p]\ncredential_process = x\n",
        "",
    );
    let vars: Vec<_> = KEYS.iter().chain(&WEB).copied().collect();
    assert_eq!(pick(&vars, &profile), "credential_process");
}

#[test]
fn a_profile_flag_without_credentials_is_an_error() {
    let profile = named(
        "p",
        Source::Flag("--profile"),
        "[profile p]\nregion = x\n",
        "",
    );
    let error = choose(&KEYS, &profile).unwrap_err();
    assert!(error.to_string().contains("has no credentials"), "{error}");
}

#[test]
fn one_key_without_the_other_is_an_error() {
    for half in [&KEYS[..1], &KEYS[1..]] {
        let error = choose(half, &default_profile("")).unwrap_err();
        assert!(error.to_string().contains("without its pair"), "{error}");
    }
}

#[test]
fn legacy_security_token_is_the_session_token() {
    let vars = [KEYS[0], KEYS[1], ("AWS_SECURITY_TOKEN", "old")];
    let chosen = choose(&vars, &default_profile("")).unwrap();
    assert_eq!(
        chosen.provider.current().unwrap().credentials.token(),
        Some("old")
    );
}

#[test]
fn a_web_identity_token_without_a_role_is_an_error() {
    let error = choose(&WEB[..1], &default_profile("")).unwrap_err();
    assert!(error.to_string().contains("AWS_ROLE_ARN"), "{error}");
}

#[test]
fn profile_providers_in_botocore_order() {
    let cases = [
        (
            "role_arn = r\nweb_identity_token_file = /t\n",
            "web identity",
        ),
        (
            "role_arn = r\nsource_profile = default\naws_access_key_id = a\naws_secret_access_key = b\n",
            "assume role",
        ),
        (
            "role_arn = r\ncredential_source = Ec2InstanceMetadata\n",
            "assume role",
        ),
        (
            "sso_start_url = https://x\nsso_region = eu-west-1\nsso_account_id = 1\nsso_role_name = R\n",
            "SSO",
        ),
        (
            "aws_access_key_id = a\naws_secret_access_key = b\ncredential_process = x\n",
            "static keys",
        ),
        ("credential_process = x\n", "credential_process"),
    ];
    for (settings, provider) in cases {
        let profile = default_profile(&format!("[default]\n{settings}"));
        assert_eq!(pick(&[], &profile), provider, "{settings}");
    }
}

#[test]
fn sso_session_sections_configure_the_portal() {
    let profile = default_profile(
        "[default]\nsso_session = corp\nsso_account_id = 1\nsso_role_name = R\n\
         [sso-session corp]\nsso_region = ap-south-1\nsso_start_url = https://corp\n",
    );
    let chosen = choose(&[("HOME", "/h")], &profile).unwrap();
    let Fetch::Sso(sso) = &chosen.provider.fetch else {
        panic!("{:?}", chosen.provider.fetch)
    };
    assert_eq!(sso.portal, "https://portal.sso.ap-south-1.amazonaws.com");
    assert_eq!(sso.cache_key, "corp");
    assert_eq!(chosen.shown, "SSO account 1 role R");
}

#[test]
fn source_profile_chains_are_followed_and_loops_refused() {
    let chain = "[profile a]\nrole_arn = ra\nsource_profile = b\n\
                 [profile b]\nrole_arn = rb\nsource_profile = c\n\
                 [profile c]\naws_access_key_id = k\naws_secret_access_key = s\n";
    let profile = named("a", Source::Flag("--profile"), chain, "");
    assert_eq!(
        choose(&[], &profile).unwrap().shown,
        "assume role ra from assume role"
    );
    let looped = "[profile a]\nrole_arn = ra\nsource_profile = b\n\
                  [profile b]\nrole_arn = rb\nsource_profile = a\n";
    let profile = named("a", Source::Flag("--profile"), looped, "");
    let error = choose(&[], &profile).unwrap_err();
    assert_eq!(error.to_string(), "source_profile loops: a -> b -> a");
}

#[test]
fn role_profiles_need_exactly_one_source() {
    for (settings, needle) in [
        ("role_arn = r\n", "exactly one of"),
        (
            "role_arn = r\nsource_profile = x\ncredential_source = Environment\n",
            "exactly one of",
        ),
        (
            "role_arn = r\ncredential_source = Moon\n",
            "must be Environment",
        ),
        (
            "role_arn = r\nsource_profile = nope\n",
            "neither ~/.aws file",
        ),
    ] {
        let profile = default_profile(&format!("[default]\n{settings}"));
        let error = choose(&[], &profile).unwrap_err();
        assert!(error.to_string().contains(needle), "{settings}: {error}");
    }
}

#[test]
fn renewal_is_due_at_half_the_lifetime_or_15_minutes_before_expiry() {
    let at = |s: i64| Timestamp::from_second(s).unwrap();
    let start = 1_000_000;
    // Lives 30 s: renewed once 15 s are left.
    assert!(!due(at(start), Some(at(start + 30)), at(start + 14)));
    assert!(due(at(start), Some(at(start + 30)), at(start + 16)));
    // Lives 6 h: renewed 15 minutes before it ends.
    let end = start + 6 * 3600;
    assert!(!due(at(start), Some(at(end)), at(end - 901)));
    assert!(due(at(start), Some(at(end)), at(end - 899)));
    assert!(!due(at(start), None, at(i64::from(i32::MAX))));
}

#[test]
fn every_expiry_format_is_read() {
    for (text, expected) in [
        ("2026-11-24T12:06:15Z", "2026-11-24T12:06:15Z"),
        ("2026-11-24T12:06:15.123456Z", "2026-11-24T12:06:15.123456Z"),
        ("2026-11-24T12:06:15+00:00", "2026-11-24T12:06:15Z"),
        ("2026-11-24T14:06:15.5+02:00", "2026-11-24T12:06:15.5Z"),
        ("2026-11-24T12:06:15UTC", "2026-11-24T12:06:15Z"),
    ] {
        assert_eq!(parse_time(text).unwrap().to_string(), expected, "{text}");
    }
    assert!(parse_time("tomorrow").is_err());
}

#[test]
fn json_credentials_need_key_and_secret() {
    let fetched = from_json(
        br#"{"Code":"Success","AccessKeyId":"A","SecretAccessKey":"S","Token":"T",
            "Expiration":"2026-11-24T12:06:15Z"}"#,
        "Token",
    )
    .unwrap();
    assert_eq!(fetched.credentials.token(), Some("T"));
    assert!(from_json(br#"{"AccessKeyId":"A"}"#, "Token").is_err());
    assert!(
        from_json(
            br#"{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"x"}"#,
            "Token"
        )
        .is_err()
    );
}

#[test]
fn shown_credentials_hold_no_secret() {
    let long = Credentials::new_with_token("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "tok");
    assert_eq!(shown(&long), "access key …MPLE with a session token");
    assert_eq!(shown(&Credentials::new("AK", "SK")), "access key");
}

/// A provider whose credential_process runs `body` after counting its
/// runs in the file `$RUNS`.
fn process_provider(name: &str, body: &str) -> (Provider, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("s3wal-renew-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("helper");
    let runs = dir.join("runs");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nRUNS={}\necho run >> $RUNS\n{body}\n",
            runs.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let provider = Provider {
        fetch: Fetch::Process(script.display().to_string()),
        http: Caller::new(Http::default()),
        timeout: Duration::from_secs(5),
        cache: Mutex::new(None),
    };
    (provider, runs)
}

fn runs(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |s| s.lines().count())
}

#[test]
fn threads_refused_together_renew_once() {
    let (provider, counted) = process_provider(
        "together",
        r#"echo '{"Version": 1, "AccessKeyId": "AK'$(wc -l < $RUNS)'", "SecretAccessKey": "S", "Expiration": "2099-01-01T00:00:00Z"}'"#,
    );
    let first = provider.current().unwrap();
    let renewed = provider.refresh(&first).unwrap();
    // A second request refused with the same credentials finds them renewed.
    assert_eq!(
        provider.refresh(&first).unwrap().credentials,
        renewed.credentials
    );
    assert_eq!(runs(&counted), 2);
    std::fs::remove_dir_all(counted.parent().unwrap()).unwrap();
}

#[test]
fn a_failed_early_renewal_is_not_tried_again_at_once() {
    // Valid credentials whose renewal is due: less than half of a short
    // lifetime left. The first run hands them out, later runs fail.
    let soon = (Timestamp::now() + jiff::SignedDuration::from_secs(40)).to_string();
    let (provider, counted) = process_provider(
        "pause",
        &format!(
            "[ \"$(wc -l < $RUNS)\" -gt 1 ] && exit 1\necho '{{\"Version\": 1, \"AccessKeyId\": \"AK\", \"SecretAccessKey\": \"S\", \"Expiration\": \"{soon}\"}}'"
        ),
    );
    provider.current().unwrap();
    // Backdate the fetch so that the renewal is due now.
    if let Some(cached) = provider.cache.lock().unwrap().as_mut() {
        cached.fetched = Timestamp::now() - jiff::SignedDuration::from_secs(3600);
    }
    for _ in 0..3 {
        assert!(
            provider.current().is_ok(),
            "the old credentials still serve"
        );
    }
    assert_eq!(runs(&counted), 2, "one failed renewal, then a pause");
    std::fs::remove_dir_all(counted.parent().unwrap()).unwrap();
}
