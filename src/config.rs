//! Where the log is and who may write it: flags, then the environment,
//! then `./.env`, then defaults.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusty_s3::Credentials;
use url::Url;

use crate::error::{Error, Result};
use crate::local::LocalState;
use crate::profile::{self, Profile};
use crate::record::Prefix;
use crate::s3::{RetryPolicy, S3Config};

/// Settings given on the command line; `None` falls back to the environment.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--bucket`
    pub bucket: Option<String>,
    /// `--prefix`
    pub prefix: Option<String>,
    /// `--region`
    pub region: Option<String>,
    /// `--endpoint`
    pub endpoint: Option<String>,
    /// `--path-style`
    pub path_style: bool,
    /// `--lock-dir`
    pub lock_dir: Option<PathBuf>,
    /// `--retries`
    pub retries: Option<u32>,
    /// `--timeout`, in seconds
    pub timeout: Option<u64>,
    /// `--allow-unsafe-store`
    pub allow_unsafe_store: bool,
    /// `--ca-bundle`
    pub ca_bundle: Option<PathBuf>,
    /// `--profile`
    pub profile: Option<String>,
}

/// Environment variables in two layers: the process's, then `./.env`'s.
#[derive(Debug, Clone, Default)]
pub struct Env {
    /// Process first: a `.env` value never overrides a variable that is
    /// already set, as in the seed.
    layers: [HashMap<String, String>; 2],
}

impl Env {
    /// The `process` environment over the `dotenv` one.
    pub fn new(
        process: impl IntoIterator<Item = (String, String)>,
        dotenv: impl IntoIterator<Item = (String, String)>,
    ) -> Env {
        Env {
            layers: [process.into_iter().collect(), dotenv.into_iter().collect()],
        }
    }

    /// The process environment over `path` (usually `./.env`); a missing
    /// file is no error, an unreadable one is.
    pub fn load(path: &Path) -> Result<Env> {
        let dotenv = match std::fs::read(path) {
            Ok(bytes) => parse_dotenv(&String::from_utf8_lossy(&bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(Error::io(format!("cannot read {}", path.display()), e)),
        };
        let process = std::env::vars_os().map(|(k, v)| {
            (
                k.to_string_lossy().into_owned(),
                v.to_string_lossy().into_owned(),
            )
        });
        Ok(Env::new(process, dotenv))
    }

    /// A variable's value; an empty value counts as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.first_of(&[name])
    }

    /// The value of the first of `names` that is set, looking through the
    /// whole process environment before `.env`: an exported
    /// `AWS_ENDPOINT_URL` beats `AWS_ENDPOINT_URL_S3` from `.env`.
    fn first_of(&self, names: &[&str]) -> Option<&str> {
        self.layers.iter().find_map(|layer| {
            names.iter().find_map(|name| {
                layer
                    .get(*name)
                    .map(String::as_str)
                    .filter(|v| !v.is_empty())
            })
        })
    }

    /// Access key, secret and token from the one layer that sets the access
    /// key, so that a stale token in `.env` never joins exported keys.
    fn credentials(&self) -> Option<Credentials> {
        let layer = self.layers.iter().find(|layer| {
            layer
                .get("AWS_ACCESS_KEY_ID")
                .is_some_and(|v| !v.is_empty())
        })?;
        let get = |name: &str| {
            layer
                .get(name)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let (key, secret) = (get("AWS_ACCESS_KEY_ID")?, get("AWS_SECRET_ACCESS_KEY")?);
        Some(match get("AWS_SESSION_TOKEN") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        })
    }
}

/// Credentials from one source, whose settings for key, secret and token
/// are named `names`; `None` unless it has both key and secret.
fn credentials_from<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    names: [&str; 3],
) -> Option<Credentials> {
    let get = |name| get(name).filter(|v: &&str| !v.is_empty());
    let (key, secret) = (get(names[0])?, get(names[1])?);
    Some(match get(names[2]) {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    })
}

/// The `KEY=value` pairs of a `.env` file: `#` comments, an optional
/// `export `, and single or double quotes around the value.
pub fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.trim();
            let line = line.strip_prefix("export ").unwrap_or(line);
            if line.starts_with('#') {
                return None;
            }
            let (key, value) = line.split_once('=')?;
            let key = key.trim();
            if key.is_empty() || key.contains(char::is_whitespace) {
                return None;
            }
            Some((key.to_owned(), unquote(value.trim()).to_owned()))
        })
        .collect()
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            return inner.split(quote).next().unwrap_or(inner);
        }
    }
    match value.find(" #") {
        Some(at) => value[..at].trim_end(),
        None => value,
    }
}

/// Everything needed to open a log.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bucket and how to reach it.
    pub s3: S3Config,
    /// The log's folder in the bucket.
    pub prefix: Prefix,
    /// The lock, tail hint and probe verdict this machine keeps for the log.
    pub local: LocalState,
    /// Append even where the store ignores `If-None-Match`.
    pub allow_unsafe_store: bool,
}

/// The first of `flag` and the environment variables `names` that is set.
fn pick(flag: &Option<String>, env: &Env, names: &[&str]) -> Option<String> {
    flag.clone()
        .filter(|v| !v.is_empty())
        .or_else(|| env.first_of(names).map(str::to_owned))
}

/// The default lock folder: per user, and the same for cron jobs and
/// login shells, so that every local appender finds the same lock.
///
/// As the XDG base directory spec says, `XDG_STATE_HOME` counts only as an
/// absolute path (a relative one would move with the working folder), and
/// `$HOME/.local/state` stands in for it. Without a home there is no
/// per-user place: a shared folder such as `/tmp/s3wal-locks` would let
/// other users hold or spoof the lock, so that is an error.
pub fn default_lock_dir(env: &Env) -> Result<PathBuf> {
    let absolute = |name: &str| env.get(name).map(Path::new).filter(|p| p.is_absolute());
    match (absolute("XDG_STATE_HOME"), absolute("HOME")) {
        (Some(state), _) => Ok(state.join("s3wal/locks")),
        (None, Some(home)) => Ok(home.join(".local/state/s3wal/locks")),
        (None, None) => Err(Error::Config(
            "no lock folder: HOME is not set to an absolute path; set S3WAL_LOCK_DIR or \
             pass --lock-dir (a folder only this user can write)"
                .into(),
        )),
    }
}

/// The proxy for `endpoint`, as curl and aws CLI choose it: `HTTPS_PROXY`
/// for an HTTPS endpoint, `HTTP_PROXY` for plain HTTP, `ALL_PROXY` for
/// either (lower-case names too), unless `NO_PROXY` names the host.
pub fn proxy_for(endpoint: &Url, env: &Env) -> Option<String> {
    let names: &[&str] = match endpoint.scheme() {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    let proxy = env.first_of(names)?;
    let host = endpoint
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let bypass = env.first_of(&["NO_PROXY", "no_proxy"]).unwrap_or_default();
    let bypassed = bypass.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches("*.").trim_start_matches('.');
        entry == "*"
            || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
    });
    (!bypassed).then(|| proxy.to_owned())
}

/// Whether `endpoint` is AWS's own, which addresses buckets by host name.
fn is_aws(endpoint: &Url) -> bool {
    endpoint
        .host_str()
        .is_some_and(|host| host.ends_with(".amazonaws.com"))
}

fn parse_endpoint(raw: &str) -> Result<Url> {
    // An endpoint may carry a password (`http://user:pass@host`): never echo it.
    let shown = if raw.contains('@') {
        "(with user info)"
    } else {
        raw
    };
    let bad = |why: &str| Error::Config(format!("endpoint {shown:?} {why}"));
    let url = Url::parse(raw).map_err(|e| bad(&format!("is not a URL: {e}")))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("must not carry a user name or password"));
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("must start with http:// or https://"));
    }
    if url.host_str().is_none() {
        return Err(bad("has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(without_trailing_slashes(url))
}

/// `http://h:9000//` as `http://h:9000/`: a doubled slash would go into
/// every signed path (`//bucket/key`) while the store normalises it away
/// before checking, so every request would fail with SignatureDoesNotMatch.
fn without_trailing_slashes(mut url: Url) -> Url {
    let path = format!("{}/", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

fn retry_policy(flags: &Flags) -> Result<RetryPolicy> {
    let default = RetryPolicy::default();
    let timeout = match flags.timeout {
        Some(0) => return Err(Error::Usage("--timeout must be at least 1 second".into())),
        Some(seconds) => Duration::from_secs(seconds),
        None => default.timeout,
    };
    Ok(RetryPolicy {
        retries: flags.retries.unwrap_or(default.retries),
        timeout,
    })
}

/// The profile that `--profile`, else `AWS_PROFILE`, else `default`
/// names, from the files `AWS_SHARED_CREDENTIALS_FILE` and `AWS_CONFIG_FILE`
/// name (default `~/.aws/credentials` and `~/.aws/config`).
fn named_profile(flags: &Flags, env: &Env) -> Result<Profile> {
    let named = flags
        .profile
        .clone()
        .or_else(|| env.get("AWS_PROFILE").map(str::to_owned));
    let home = env.get("HOME").map(PathBuf::from);
    let file = |variable: &str, default: &str| {
        env.get(variable)
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|home| home.join(".aws").join(default)))
    };
    match (
        file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
        file("AWS_CONFIG_FILE", "config"),
    ) {
        (Some(credentials), Some(config)) => profile::load(
            named.as_deref().unwrap_or("default"),
            &credentials,
            &config,
            named.is_some(),
        ),
        _ => Ok(Profile::default()),
    }
}

/// Resolves the configuration, with aws CLI's precedence: flags, then
/// the environment (over `.env`), then the profile.
pub fn resolve(flags: &Flags, env: &Env) -> Result<Config> {
    let profile = named_profile(flags, env)?;
    let bucket = pick(&flags.bucket, env, &["AWS_BUCKET_NAME"])
        .ok_or_else(|| Error::Config("no bucket: pass --bucket or set AWS_BUCKET_NAME".into()))?;
    let prefix = Prefix::new(&pick(&flags.prefix, env, &["AWS_PREFIX"]).unwrap_or_default())
        .map_err(Error::Config)?;
    let region = pick(&flags.region, env, &["AWS_REGION", "AWS_DEFAULT_REGION"])
        .or_else(|| profile.get("region").map(str::to_owned))
        .unwrap_or_else(|| "us-east-1".to_owned());
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(Error::Config(format!(
            "region {region:?} is not a region name like us-east-1"
        )));
    }
    let endpoint = match pick(
        &flags.endpoint,
        env,
        &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
    )
    .or_else(|| profile.get("endpoint_url").map(str::to_owned))
    {
        Some(raw) => parse_endpoint(&raw)?,
        None => parse_endpoint(&format!("https://s3.{region}.amazonaws.com"))?,
    };
    let proxy = proxy_for(&endpoint, env);
    // A dotted bucket name breaks the TLS wildcard of a virtual host.
    let path_style = flags.path_style || !is_aws(&endpoint) || bucket.contains('.');
    let from_profile = || {
        credentials_from(
            |name| profile.get(name),
            [
                "aws_access_key_id",
                "aws_secret_access_key",
                "aws_session_token",
            ],
        )
    };
    // `--profile` is a flag, so its credentials beat the environment's;
    // `AWS_PROFILE` is not, so exported keys beat it, as in aws CLI.
    let credentials = match &flags.profile {
        Some(name) => Some(from_profile().ok_or_else(|| {
            Error::Config(format!(
                "profile {name:?} has no aws_access_key_id and aws_secret_access_key"
            ))
        })?),
        None => env.credentials().or_else(from_profile),
    }
    .ok_or_else(|| {
        Error::Config(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a profile"
                .into(),
        )
    })?;
    let lock_dir = flags
        .lock_dir
        .clone()
        .or_else(|| env.get("S3WAL_LOCK_DIR").map(PathBuf::from))
        .map_or_else(|| default_lock_dir(env), Ok)?;
    let local = LocalState::in_dir(&lock_dir, endpoint.as_str(), &bucket, prefix.as_str());
    Ok(Config {
        s3: S3Config {
            endpoint,
            bucket,
            region,
            path_style,
            credentials,
            retry: retry_policy(flags)?,
            ca_bundle: flags
                .ca_bundle
                .clone()
                .or_else(|| env.get("AWS_CA_BUNDLE").map(PathBuf::from))
                .or_else(|| profile.get("ca_bundle").map(PathBuf::from)),
            ssl_cert_file: env.get("SSL_CERT_FILE").map(PathBuf::from),
            proxy,
        },
        prefix,
        local,
        allow_unsafe_store: flags.allow_unsafe_store,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())),
            Vec::new(),
        )
    }

    fn base() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AWS_BUCKET_NAME", "logs"),
            ("AWS_PREFIX", "/wal/"),
            ("AWS_ACCESS_KEY_ID", "AK"),
            ("AWS_SECRET_ACCESS_KEY", "SK"),
            ("HOME", "/home/u"),
        ]
    }

    #[test]
    fn dotenv_never_overrides_the_process_environment() {
        let env = Env::new(
            [("AWS_REGION".to_owned(), "eu-west-1".to_owned())],
            parse_dotenv("AWS_REGION=us-west-2\nAWS_PREFIX=wal\n"),
        );
        assert_eq!(env.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(env.get("AWS_PREFIX"), Some("wal"));
    }

    #[test]
    fn dotenv_handles_comments_export_and_quotes() {
        let pairs = parse_dotenv(
            "# comment\nexport A=1\nB=\"two words\"\nC='x#y'\nD=plain # note\n\nnot a pair\n",
        );
        let expected = [("A", "1"), ("B", "two words"), ("C", "x#y"), ("D", "plain")];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert_eq!(pairs, expected);
    }

    #[test]
    fn flags_beat_the_environment() {
        let flags = Flags {
            bucket: Some("other".into()),
            prefix: Some("p".into()),
            region: Some("ap-south-1".into()),
            ..Flags::default()
        };
        let config = resolve(&flags, &env(&base())).unwrap();
        assert_eq!(config.s3.bucket, "other");
        assert_eq!(config.prefix.as_str(), "p");
        assert_eq!(config.s3.region, "ap-south-1");
    }

    #[test]
    fn aws_without_endpoint_uses_virtual_hosted_style() {
        let config = resolve(&Flags::default(), &env(&base())).unwrap();
        assert_eq!(
            config.s3.endpoint.as_str(),
            "https://s3.us-east-1.amazonaws.com/"
        );
        assert!(!config.s3.path_style);
        assert_eq!(config.prefix.as_str(), "wal");
    }

    #[test]
    fn custom_endpoint_uses_path_style() {
        let mut vars = base();
        vars.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert!(config.s3.path_style);
    }

    #[test]
    fn s3_specific_endpoint_beats_the_general_one() {
        let mut vars = base();
        vars.push(("AWS_ENDPOINT_URL", "http://general:1"));
        vars.push(("AWS_ENDPOINT_URL_S3", "http://s3only:2"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert_eq!(config.s3.endpoint.host_str(), Some("s3only"));
    }

    #[test]
    fn region_falls_back_to_aws_default_region() {
        let mut vars = base();
        vars.push(("AWS_DEFAULT_REGION", "sa-east-1"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert_eq!(config.s3.region, "sa-east-1");
    }

    #[test]
    fn missing_bucket_prefix_or_credentials_is_a_config_error() {
        for missing in ["AWS_BUCKET_NAME", "AWS_PREFIX", "AWS_SECRET_ACCESS_KEY"] {
            let vars: Vec<_> = base().into_iter().filter(|(k, _)| *k != missing).collect();
            let error = resolve(&Flags::default(), &env(&vars)).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{missing}: {error}");
        }
    }

    #[test]
    fn exported_general_endpoint_beats_a_specific_one_from_dotenv() {
        let env = Env::new(
            base()
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .chain([(
                    "AWS_ENDPOINT_URL".to_owned(),
                    "http://exported:1".to_owned(),
                )]),
            parse_dotenv("AWS_ENDPOINT_URL_S3=http://dotenv:2\n"),
        );
        let config = resolve(&Flags::default(), &env).unwrap();
        assert_eq!(config.s3.endpoint.host_str(), Some("exported"));
    }

    #[test]
    fn credentials_come_from_one_layer_only() {
        let env = Env::new(
            base().iter().map(|(k, v)| (k.to_string(), v.to_string())),
            parse_dotenv("AWS_SESSION_TOKEN=stale\n"),
        );
        let config = resolve(&Flags::default(), &env).unwrap();
        assert_eq!(config.s3.credentials.token(), None);
    }

    #[test]
    fn session_token_is_signed_into_requests() {
        let mut vars = base();
        vars.push(("AWS_SESSION_TOKEN", "the-token"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert_eq!(config.s3.credentials.token(), Some("the-token"));
    }

    #[test]
    fn dotted_bucket_on_aws_uses_path_style() {
        let mut vars = base();
        vars.retain(|(k, _)| *k != "AWS_BUCKET_NAME");
        vars.push(("AWS_BUCKET_NAME", "my.logs"));
        assert!(
            resolve(&Flags::default(), &env(&vars))
                .unwrap()
                .s3
                .path_style
        );
    }

    #[test]
    fn endpoint_password_is_refused_and_never_echoed() {
        let flags = Flags {
            endpoint: Some("http://user:hunter2@h:1".into()),
            ..Flags::default()
        };
        let error = resolve(&flags, &env(&base())).unwrap_err().to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn region_must_look_like_a_region() {
        let flags = Flags {
            region: Some("x.evil.com:8/".into()),
            ..Flags::default()
        };
        assert!(resolve(&flags, &env(&base())).is_err());
    }

    #[test]
    fn proxy_is_chosen_by_the_endpoint_scheme() {
        let env = env(&[
            ("HTTPS_PROXY", "http://tls-proxy:3128"),
            ("HTTP_PROXY", "http://plain:3128"),
        ]);
        let https: Url = "https://s3.example.com".parse().unwrap();
        let http: Url = "http://minio.local:9000".parse().unwrap();
        assert_eq!(
            proxy_for(&https, &env).as_deref(),
            Some("http://tls-proxy:3128")
        );
        assert_eq!(proxy_for(&http, &env).as_deref(), Some("http://plain:3128"));
    }

    #[test]
    fn no_proxy_names_hosts_and_domains_that_go_direct() {
        let with = |no_proxy: &str, url: &str| {
            let env = env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", no_proxy)]);
            proxy_for(&url.parse().unwrap(), &env)
        };
        assert_eq!(
            with("localhost, .internal", "http://ceph.internal:8080"),
            None
        );
        assert_eq!(with("*.internal", "http://a.b.internal"), None);
        assert_eq!(with("127.0.0.1", "http://127.0.0.1:9000"), None);
        assert_eq!(with("*", "https://anything"), None);
        assert!(with("internal", "http://notinternal").is_some());
        assert!(with("", "http://h").is_some());
    }

    #[test]
    fn trailing_slashes_of_the_endpoint_are_one() {
        for (raw, expected) in [
            ("http://127.0.0.1:9000//", "http://127.0.0.1:9000/"),
            ("http://127.0.0.1:9000", "http://127.0.0.1:9000/"),
            ("https://gw.example/s3///", "https://gw.example/s3/"),
        ] {
            assert_eq!(parse_endpoint(raw).unwrap().as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn endpoint_must_be_an_http_url() {
        for bad in ["ftp://x", "not a url", "http://h/?a=b"] {
            let flags = Flags {
                endpoint: Some(bad.into()),
                ..Flags::default()
            };
            assert!(resolve(&flags, &env(&base())).is_err(), "{bad}");
        }
    }

    #[test]
    fn absolute_xdg_state_home_holds_the_lock_folder() {
        let env = env(&[("XDG_STATE_HOME", "/state"), ("HOME", "/home/u")]);
        assert_eq!(
            default_lock_dir(&env).unwrap(),
            Path::new("/state/s3wal/locks")
        );
    }

    #[test]
    fn relative_xdg_state_home_is_ignored() {
        let env = env(&[("XDG_STATE_HOME", "state"), ("HOME", "/home/u")]);
        assert_eq!(
            default_lock_dir(&env).unwrap(),
            Path::new("/home/u/.local/state/s3wal/locks")
        );
    }

    #[test]
    fn no_home_and_no_lock_dir_is_a_config_error() {
        for vars in [
            vec![],
            vec![("HOME", "relative")],
            vec![("XDG_STATE_HOME", "s")],
        ] {
            let error = default_lock_dir(&env(&vars)).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{vars:?}");
            assert!(error.to_string().contains("S3WAL_LOCK_DIR"), "{error}");
        }
    }

    #[test]
    fn lock_dir_defaults_under_home_and_follows_s3wal_lock_dir() {
        let config = resolve(&Flags::default(), &env(&base())).unwrap();
        assert!(
            config
                .local
                .lock_path()
                .starts_with("/home/u/.local/state/s3wal/locks")
        );
        let mut vars = base();
        vars.push(("S3WAL_LOCK_DIR", "/run/locks"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert!(config.local.lock_path().starts_with("/run/locks"));
    }
}
