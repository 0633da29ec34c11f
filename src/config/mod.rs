//! Where the log is and who may write it: flags, then the environment
//! (over `./.env`), then the `~/.aws` profile, then defaults, as aws CLI
//! does it. Every setting keeps where it came from, for `doctor`.
//!
//! One file per concern: [`env`] (the process environment and `.env`),
//! `endpoint` (region, endpoint, addressing style), `credentials` (the
//! keys, assembled in one place), `proxy`, `profile` (the `~/.aws` files).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::local::LocalState;
use crate::record::Prefix;
use crate::s3::{RetryPolicy, S3Config};
use crate::wal::{DEFAULT_PARALLEL, MAX_PARALLEL};

mod credentials;
mod endpoint;
mod env;
mod profile;
mod proxy;

pub use env::{Env, parse_dotenv};
use profile::Profile;
pub use proxy::proxy_for;

/// Settings given on the command line, each named after its flag; `None`
/// falls back to the environment.
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
    /// `--parallel`
    pub parallel: Option<usize>,
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A flag, such as `--bucket`.
    Flag(&'static str),
    /// A variable of the process environment.
    Env(&'static str),
    /// A variable of `./.env`.
    DotEnv(&'static str),
    /// The `~/.aws` profile of this name.
    Profile(String),
    /// s3wal's default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => f.write_str(flag),
            Source::Env(name) => write!(f, "env {name}"),
            Source::DotEnv(name) => write!(f, ".env {name}"),
            Source::Profile(name) => write!(f, "profile {name}"),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One resolved setting, as it may be shown: never a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The setting, such as `bucket`.
    pub setting: &'static str,
    /// Its value, or for credentials what identifies them.
    pub value: String,
    /// Where the value came from.
    pub source: Source,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.setting, self.value, self.source)
    }
}

/// Everything needed to open a log.
#[derive(Debug, Clone)]
pub struct Config {
    /// The bucket and how to reach it.
    pub s3: S3Config,
    /// The log's folder in the bucket.
    pub prefix: Prefix,
    /// The local lock for appends and truncates.
    pub local: LocalState,
    /// Append even where the store ignores `If-None-Match`.
    pub allow_unsafe_store: bool,
    /// Where each setting came from, in the order `doctor` shows them.
    pub origins: Vec<Origin>,
}

/// The profile settings are read from, and who named it.
struct NamedProfile {
    name: String,
    source: Source,
    profile: Profile,
}

/// A value and where it came from.
type Picked<T> = Option<(T, Source)>;

/// A string flag's value; an empty one counts as unset.
fn flag(name: &'static str, value: &Option<String>) -> Picked<String> {
    let value = value.as_ref().filter(|v| !v.is_empty())?;
    Some((value.clone(), Source::Flag(name)))
}

impl NamedProfile {
    /// The profile that `--profile`, else `AWS_PROFILE`, else `default`
    /// names, from the files `AWS_SHARED_CREDENTIALS_FILE` and
    /// `AWS_CONFIG_FILE` name (default `~/.aws/credentials` and
    /// `~/.aws/config`). A profile named by a flag or variable must exist.
    fn load(flags: &Flags, env: &Env) -> Result<NamedProfile> {
        let (name, source) = flag("--profile", &flags.profile)
            .or_else(|| text(env.first_of(&["AWS_PROFILE"])))
            .unwrap_or_else(|| ("default".to_owned(), Source::Default));
        let home = env.get("HOME").map(PathBuf::from);
        let file = |variable: &'static str, default: &str| {
            env.get(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(".aws").join(default)))
        };
        let profile = match (
            file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            file("AWS_CONFIG_FILE", "config"),
        ) {
            (Some(credentials), Some(config)) => {
                let required = source != Source::Default;
                profile::load(&name, &credentials, &config, required)?
            }
            _ => Profile::default(),
        };
        Ok(NamedProfile {
            name,
            source,
            profile,
        })
    }

    /// The first of the environment variables `names`, else the profile's
    /// `key`, that is set.
    fn pick(&self, env: &Env, names: &[&'static str], key: Option<&str>) -> Picked<String> {
        text(env.first_of(names)).or_else(|| {
            let value = self.profile.get(key?)?;
            Some((value.to_owned(), Source::Profile(self.name.clone())))
        })
    }
}

/// An environment value, owned.
fn text(found: Option<(&str, Source)>) -> Picked<String> {
    found.map(|(value, source)| (value.to_owned(), source))
}

/// A path setting: the flag, else the first of `names` that is set.
fn path(flag: (&'static str, &Option<PathBuf>), picked: Picked<String>) -> Picked<PathBuf> {
    let (name, value) = flag;
    match value {
        Some(path) => Some((path.clone(), Source::Flag(name))),
        None => picked.map(|(value, source)| (PathBuf::from(value), source)),
    }
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
    let absolute = |name| env.get(name).map(Path::new).filter(|p| p.is_absolute());
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

/// How often and how long failing requests are retried, from the flags.
fn retry_policy(flags: &Flags) -> Result<(RetryPolicy, [Origin; 2])> {
    let default = RetryPolicy::default();
    let source = |given: bool, flag| match given {
        true => Source::Flag(flag),
        false => Source::Default,
    };
    let timeout = match flags.timeout {
        Some(0) => return Err(Error::Usage("--timeout must be at least 1 second".into())),
        Some(seconds) => Duration::from_secs(seconds),
        None => default.timeout,
    };
    let retries = flags.retries.unwrap_or(default.retries);
    Ok((
        RetryPolicy { retries, timeout },
        [
            Origin {
                setting: "retries",
                value: retries.to_string(),
                source: source(flags.retries.is_some(), "--retries"),
            },
            Origin {
                setting: "timeout",
                value: format!("{} s", timeout.as_secs()),
                source: source(flags.timeout.is_some(), "--timeout"),
            },
        ],
    ))
}

/// How many requests may be in flight at once, from the flags: checked
/// first, as a usage error.
fn parallel(flags: &Flags) -> Result<(usize, Origin)> {
    let (parallel, source) = match flags.parallel {
        Some(n) if !(1..=MAX_PARALLEL).contains(&n) => {
            return Err(Error::Usage(format!(
                "--parallel must be from 1 to {MAX_PARALLEL}, not {n}"
            )));
        }
        Some(n) => (n, Source::Flag("--parallel")),
        None => (DEFAULT_PARALLEL, Source::Default),
    };
    let origin = Origin {
        setting: "parallel",
        value: format!("{parallel} requests"),
        source,
    };
    Ok((parallel, origin))
}

/// Resolves the configuration, with aws CLI's precedence: flags, then
/// the environment (over `.env`), then the profile, then defaults.
pub fn resolve(flags: &Flags, env: &Env) -> Result<Config> {
    let (parallel, parallel_origin) = parallel(flags)?;
    let profile = NamedProfile::load(flags, env)?;
    let mut origins = Vec::new();
    let mut shown = |setting, value: &dyn fmt::Display, source: &Source| {
        origins.push(Origin {
            setting,
            value: value.to_string(),
            source: source.clone(),
        });
    };
    let (bucket, source) = flag("--bucket", &flags.bucket)
        .or_else(|| profile.pick(env, &["AWS_BUCKET_NAME"], None))
        .ok_or_else(|| Error::Config("no bucket: pass --bucket or set AWS_BUCKET_NAME".into()))?;
    shown("bucket", &bucket, &source);
    let (prefix, source) = flag("--prefix", &flags.prefix)
        .or_else(|| profile.pick(env, &["AWS_PREFIX"], None))
        .unwrap_or((String::new(), Source::Default));
    let prefix = Prefix::new(&prefix).map_err(Error::Config)?;
    shown("prefix", &prefix.as_str(), &source);
    let (region, source) = flag("--region", &flags.region)
        .or_else(|| profile.pick(env, &["AWS_REGION", "AWS_DEFAULT_REGION"], Some("region")))
        .unwrap_or_else(|| ("us-east-1".to_owned(), Source::Default));
    endpoint::check_region(&region)?;
    shown("region", &region, &source);
    let (endpoint, source) = match flag("--endpoint", &flags.endpoint).or_else(|| {
        let names = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"];
        profile.pick(env, &names, Some("endpoint_url"))
    }) {
        Some((raw, source)) => (endpoint::parse_endpoint(&raw)?, source),
        None => (endpoint::aws_endpoint(&region)?, Source::Default),
    };
    shown("endpoint", &endpoint, &source);
    let path_style = endpoint::path_style(flags.path_style, &endpoint, &bucket);
    shown(
        "addressing",
        &if path_style {
            "path-style"
        } else {
            "virtual-hosted"
        },
        &match flags.path_style {
            true => Source::Flag("--path-style"),
            false => Source::Default,
        },
    );
    let (credentials, source) = credentials::resolve(env, &profile)?;
    shown("credentials", &credentials::shown(&credentials), &source);
    shown("profile", &profile.name, &profile.source);
    let ca_bundle = path(
        ("--ca-bundle", &flags.ca_bundle),
        profile.pick(env, &["AWS_CA_BUNDLE"], Some("ca_bundle")),
    );
    match &ca_bundle {
        Some((bundle, source)) => shown("CA bundle", &bundle.display(), source),
        None => shown("CA bundle", &"the system's", &Source::Default),
    }
    let proxy = proxy_for(&endpoint, env);
    match &proxy {
        Some((proxy, source)) => shown("proxy", &proxy::shown(proxy), source),
        None => shown("proxy", &"none", &Source::Default),
    }
    let (lock_dir, source) = match path(("--lock-dir", &flags.lock_dir), {
        text(env.first_of(&["S3WAL_LOCK_DIR"]))
    }) {
        Some(picked) => picked,
        None => (default_lock_dir(env)?, Source::Default),
    };
    shown("lock folder", &lock_dir.display(), &source);
    let (retry, retry_origins) = retry_policy(flags)?;
    origins.extend(retry_origins);
    origins.push(parallel_origin);
    let local = LocalState::in_dir(&lock_dir, endpoint.as_str(), &bucket, prefix.as_str());
    Ok(Config {
        s3: S3Config {
            endpoint,
            bucket,
            region,
            path_style,
            credentials,
            retry,
            ca_bundle: ca_bundle.map(|(bundle, _)| bundle),
            ssl_cert_file: env.get("SSL_CERT_FILE").map(PathBuf::from),
            proxy: proxy.map(|(proxy, _)| proxy),
            parallel,
        },
        prefix,
        local,
        allow_unsafe_store: flags.allow_unsafe_store,
        origins,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A process environment of `pairs`, with no `.env`.
    pub(super) fn env(pairs: &[(&str, &str)]) -> Env {
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

    /// The origin of `setting` in `config`.
    fn origin(config: &Config, setting: &str) -> (String, Source) {
        let origin = config
            .origins
            .iter()
            .find(|o| o.setting == setting)
            .unwrap();
        (origin.value.clone(), origin.source.clone())
    }

    #[test]
    fn every_setting_records_where_it_came_from() {
        let env = Env::new(
            base().iter().map(|(k, v)| (k.to_string(), v.to_string())),
            parse_dotenv("AWS_REGION=eu-west-1\nAWS_ENDPOINT_URL=http://ceph:8080\n"),
        );
        let flags = Flags {
            bucket: Some("other".into()),
            ..Flags::default()
        };
        let config = resolve(&flags, &env).unwrap();
        let expected = [
            ("bucket", "other", Source::Flag("--bucket")),
            ("prefix", "wal", Source::Env("AWS_PREFIX")),
            ("region", "eu-west-1", Source::DotEnv("AWS_REGION")),
            (
                "endpoint",
                "http://ceph:8080/",
                Source::DotEnv("AWS_ENDPOINT_URL"),
            ),
            ("addressing", "path-style", Source::Default),
            (
                "credentials",
                "access key",
                Source::Env("AWS_ACCESS_KEY_ID"),
            ),
            ("profile", "default", Source::Default),
            ("CA bundle", "the system's", Source::Default),
            ("proxy", "none", Source::Default),
            ("retries", "8", Source::Default),
            ("parallel", "64 requests", Source::Default),
        ];
        for (setting, value, source) in expected {
            assert_eq!(
                origin(&config, setting),
                (value.to_owned(), source),
                "{setting}"
            );
        }
        assert_eq!(config.origins[0].to_string(), "bucket other (--bucket)");
    }

    #[test]
    fn parallel_flag_sets_the_requests_in_flight_and_is_shown() {
        let flags = Flags {
            parallel: Some(200),
            ..Flags::default()
        };
        let config = resolve(&flags, &env(&base())).unwrap();
        assert_eq!(config.s3.parallel, 200);
        assert_eq!(
            origin(&config, "parallel"),
            ("200 requests".into(), Source::Flag("--parallel"))
        );
    }

    #[test]
    fn parallel_outside_1_to_256_is_a_usage_error_before_anything_else() {
        for n in [0, MAX_PARALLEL + 1] {
            let flags = Flags {
                parallel: Some(n),
                ..Flags::default()
            };
            let error = resolve(&flags, &env(&[])).unwrap_err();
            assert!(matches!(error, Error::Usage(_)), "{n}: {error}");
        }
    }

    #[test]
    fn profile_flag_beats_exported_keys_and_is_named_as_their_source() {
        let dir = std::env::temp_dir().join(format!("s3wal-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let credentials = dir.join("credentials");
        std::fs::write(
            &credentials,
            "[onprem]\naws_access_key_id = AKIAONPREMKEY0001234\naws_secret_access_key = S\n\
             region = eu-central-1\n",
        )
        .unwrap();
        let mut vars = base();
        vars.push(("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()));
        let flags = Flags {
            profile: Some("onprem".into()),
            ..Flags::default()
        };
        let config = resolve(&flags, &env(&vars)).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(config.s3.credentials.key(), "AKIAONPREMKEY0001234");
        let onprem = Source::Profile("onprem".into());
        assert_eq!(
            origin(&config, "credentials"),
            ("access key …1234".into(), onprem.clone())
        );
        assert_eq!(origin(&config, "region"), ("eu-central-1".into(), onprem));
        assert_eq!(
            origin(&config, "profile"),
            ("onprem".into(), Source::Flag("--profile"))
        );
    }
}
