//! Where the log is and who may write it: flags, then the environment
//! (over `./.env`), then the `~/.aws` profile, then defaults, as aws CLI
//! does it. Every setting keeps where it came from, for `doctor`.
//!
//! One file per concern: [`settings`] (the table: each setting's flag,
//! variables, profile key and default), [`env`] (the process environment
//! and `.env`), `endpoint` (region, endpoint, addressing style),
//! `credentials` (the keys, assembled in one place), `proxy`, `profile`
//! (the `~/.aws` files). This file resolves: one short function a concern,
//! each reading its settings through the table's order of precedence.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use url::Url;

use crate::error::{Error, Result};
use crate::local::LocalState;
use crate::log::keys::Prefix;
use crate::log::wal::MAX_PARALLEL;
use crate::s3::{AwsEndpoint, RegionMemory, RetryPolicy, S3Config};

mod credentials;
mod endpoint;
mod env;
mod profile;
mod proxy;
pub mod settings;

pub use env::{Env, parse_dotenv};
use profile::Profile;
pub use proxy::proxy_for;
use settings::{
    ADDRESSING, BUCKET, CA_BUNDLE, CREDENTIALS, DUALSTACK, ENDPOINT, FIPS, Fallback, Form, LEASE,
    LOCK_DIR, PARALLEL, PREFIX, PROFILE, PROXY, REGION, RETRIES, TIMEOUT, UNSAFE_STORE,
    UNSAFE_TAKEOVER,
};
pub use settings::{Flags, SETTINGS, Setting};

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
    /// The region S3 named for the bucket, remembered in this file.
    Remembered(PathBuf),
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
            Source::Remembered(path) => write!(f, "S3 named it; remembered in {}", path.display()),
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
    /// The lease fences are held by.
    pub lease: Duration,
    /// Take over dead machines' fences even where the store does not
    /// refuse expired requests.
    pub allow_unsafe_takeover: bool,
    /// Where each setting came from, in the order `doctor` shows them.
    pub origins: Vec<Origin>,
}

/// The profile settings are read from, and who named it.
struct NamedProfile {
    name: String,
    source: Source,
    profile: Profile,
    /// Every profile and SSO session, for `source_profile` and
    /// `sso_session`.
    files: profile::Files,
}

/// A value and where it came from.
type Picked<T> = Option<(T, Source)>;

/// What settings are read from, in the order they win: the flags, the
/// environment (over `.env`), the profile. The resolution decides from
/// these alone; the files behind them are read before.
#[derive(Clone, Copy)]
struct Inputs<'a> {
    flags: &'a Flags,
    env: &'a Env,
    /// `None` while the profile itself is being named.
    profile: Option<&'a NamedProfile>,
}

impl Inputs<'_> {
    /// The value of `setting` from the first place that gives it: its
    /// flag, the first of its variables that is set, its profile key.
    fn pick(&self, setting: &'static Setting) -> Picked<String> {
        let flag = setting.flag.as_ref().and_then(|flag| {
            let value = self.flags.given(setting)?;
            let given = flag.form != Form::Text || !value.is_empty();
            given.then(|| (value.to_owned(), Source::Flag(flag.name)))
        });
        flag.or_else(|| text(self.env.first_of(setting.env)))
            .or_else(|| {
                let profile = self.profile?;
                let value = profile.profile.get(setting.profile?)?;
                Some((value.to_owned(), Source::Profile(profile.name.clone())))
            })
    }

    /// The value of `setting`, else its default (empty where it has
    /// none).
    fn value(&self, setting: &'static Setting) -> (String, Source) {
        self.pick(setting).unwrap_or_else(|| match setting.default {
            Fallback::Value(value) => (value(), Source::Default),
            Fallback::None | Fallback::Derived(_) => (String::new(), Source::Default),
        })
    }

    /// Whether `setting` is on, and who turned it on: `true` or `false`
    /// in any case, its flag alone, or unset.
    fn boolean(&self, setting: &'static Setting) -> Result<Option<Source>> {
        endpoint::boolean(
            setting.env.first().unwrap_or(&setting.name),
            self.pick(setting),
        )
    }

    /// A whole-number setting, checked as its flag is.
    fn whole(&self, setting: &'static Setting) -> Result<(u64, Source)> {
        let (raw, source) = self.value(setting);
        let max = match setting.flag.as_ref().map(|flag| flag.form) {
            Some(Form::Whole(max)) => max,
            _ => u64::MAX,
        };
        let number = settings::whole(flag_name(setting), &raw, max).map_err(Error::Usage)?;
        Ok((number, source))
    }
}

/// The flag of `setting`, or its name if it has none, for messages.
fn flag_name(setting: &Setting) -> &'static str {
    setting.flag.as_ref().map_or(setting.name, |flag| flag.name)
}

/// The origins of the settings, as they are resolved.
#[derive(Default)]
struct Shown(Vec<Origin>);

impl Shown {
    fn push(&mut self, setting: &'static Setting, value: impl fmt::Display, source: Source) {
        self.0.push(Origin {
            setting: setting.name,
            value: value.to_string(),
            source,
        });
    }

    /// In the table's order, whatever the order they were resolved in (a
    /// walk of the table: a sort would cost the binary its code).
    fn sorted(self) -> Vec<Origin> {
        let in_table = |setting: &&Setting| {
            let shown = self
                .0
                .iter()
                .filter(|origin| origin.setting == setting.name);
            shown.cloned().collect::<Vec<_>>()
        };
        SETTINGS.iter().flat_map(in_table).collect()
    }
}

impl NamedProfile {
    /// The profile that `--profile`, else `AWS_PROFILE`, else `default`
    /// names, from the files `AWS_SHARED_CREDENTIALS_FILE` and
    /// `AWS_CONFIG_FILE` name (default `~/.aws/credentials` and
    /// `~/.aws/config`). A profile named by a flag or variable must exist.
    fn load(inputs: Inputs<'_>) -> Result<NamedProfile> {
        let (name, source) = inputs.value(PROFILE);
        let env = inputs.env;
        let home = env.get("HOME").map(PathBuf::from);
        let file = |variable: &'static str, default: &str| {
            env.get(variable)
                .map(PathBuf::from)
                .or_else(|| home.as_ref().map(|home| home.join(".aws").join(default)))
        };
        let (profile, files) = match (
            file("AWS_SHARED_CREDENTIALS_FILE", "credentials"),
            file("AWS_CONFIG_FILE", "config"),
        ) {
            (Some(credentials), Some(config)) => {
                let required = source != Source::Default;
                profile::load(&name, &credentials, &config, required)?
            }
            _ => Default::default(),
        };
        Ok(NamedProfile {
            name,
            source,
            profile,
            files,
        })
    }
}

/// An environment value, owned.
fn text(found: Option<(&str, Source)>) -> Picked<String> {
    found.map(|(value, source)| (value.to_owned(), source))
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

/// How often and how long failing requests are retried.
fn retry_policy(inputs: Inputs<'_>, shown: &mut Shown) -> Result<RetryPolicy> {
    let (timeout, timeout_source) = inputs.whole(TIMEOUT)?;
    if timeout == 0 {
        let flag = flag_name(TIMEOUT);
        return Err(Error::Usage(format!("{flag} must be at least 1 second")));
    }
    let (retries, source) = inputs.whole(RETRIES)?;
    let retries = u32::try_from(retries).unwrap_or(u32::MAX);
    shown.push(RETRIES, retries, source);
    shown.push(TIMEOUT, format_args!("{timeout} s"), timeout_source);
    Ok(RetryPolicy {
        retries,
        timeout: Duration::from_secs(timeout),
    })
}

/// How many requests may be in flight at once: checked first, as a usage
/// error.
fn parallel(inputs: Inputs<'_>, shown: &mut Shown) -> Result<usize> {
    let (parallel, source) = inputs.whole(PARALLEL)?;
    match usize::try_from(parallel) {
        Ok(n) if (1..=MAX_PARALLEL).contains(&n) => {
            shown.push(PARALLEL, format_args!("{n} requests"), source);
            Ok(n)
        }
        _ => Err(Error::Usage(format!(
            "{} must be from 1 to {MAX_PARALLEL}, not {parallel}",
            flag_name(PARALLEL)
        ))),
    }
}

/// The longest lease a fence may be held by: an hour, past which a dead
/// machine would hold the others back for longer than any job waits.
const MAX_LEASE_SECS: u64 = 3600;

/// The shortest: the store's `Date` counts whole seconds, so a lease of
/// one would often be over as soon as it is taken.
const MIN_LEASE_SECS: u64 = 2;

/// The lease of fences.
fn lease(inputs: Inputs<'_>, shown: &mut Shown) -> Result<Duration> {
    let (lease, source) = inputs.value(LEASE);
    let lease = lease.trim();
    match lease.parse::<u64>() {
        Ok(seconds) if (MIN_LEASE_SECS..=MAX_LEASE_SECS).contains(&seconds) => {
            shown.push(LEASE, format_args!("{seconds} s"), source);
            Ok(Duration::from_secs(seconds))
        }
        _ => Err(Error::Usage(format!(
            "the lease ({source}) must be a whole number of seconds from \
             {MIN_LEASE_SECS} to {MAX_LEASE_SECS}, not {lease:?}"
        ))),
    }
}

/// Whether dead machines' fences may be taken over unsafely.
fn unsafe_takeover(inputs: Inputs<'_>, shown: &mut Shown) -> Result<bool> {
    let asked = inputs.boolean(UNSAFE_TAKEOVER)?;
    let allowed = asked.is_some();
    let value = if allowed { "allowed" } else { "refused" };
    shown.push(UNSAFE_TAKEOVER, value, asked.unwrap_or(Source::Default));
    Ok(allowed)
}

/// The bucket and the log's folder in it.
fn location(inputs: Inputs<'_>, shown: &mut Shown) -> Result<(String, Prefix)> {
    let (prefix, prefix_source) = inputs.value(PREFIX);
    let (bucket, prefix) = match (inputs.pick(BUCKET), s3_location(&prefix)) {
        (Some((bucket, _)), _) if bucket.starts_with("s3://") => {
            let (name, path) = s3_location(&bucket).unwrap_or_default();
            return Err(Error::Config(format!(
                "the bucket {bucket:?} is a location, not a name: write --bucket {name}, \
                 or the whole location as --prefix s3://{name}/{}",
                if path.is_empty() { "PREFIX" } else { path }
            )));
        }
        (Some((bucket, source)), None) => ((bucket, source), prefix),
        (None, Some((name, path))) => ((name.to_owned(), prefix_source.clone()), path.to_owned()),
        (Some((bucket, source)), Some((name, path))) if bucket == name => {
            ((bucket, source), path.to_owned())
        }
        (Some((bucket, _)), Some((name, _))) => {
            return Err(Error::Config(format!(
                "the prefix {prefix:?} names bucket {name:?}, but the bucket is {bucket:?}"
            )));
        }
        (None, None) => {
            let variable = BUCKET.env.join(", ");
            let flag = flag_name(BUCKET);
            return Err(Error::Config(format!(
                "no bucket: pass {flag}, set {variable}, or give the location as \
                 --prefix s3://BUCKET/PREFIX"
            )));
        }
    };
    let (bucket, source) = bucket;
    shown.push(BUCKET, &bucket, source);
    let source = prefix_source;
    let prefix = Prefix::new(&prefix).map_err(Error::Config)?;
    shown.push(PREFIX, prefix.as_str(), source);
    Ok((bucket, prefix))
}

/// `s3://bucket/prefix` as its bucket and prefix (either may be empty),
/// as aws CLI and rclone users write a location; `None` for a plain prefix.
fn s3_location(text: &str) -> Option<(&str, &str)> {
    let location = text.strip_prefix("s3://")?;
    Some(location.split_once('/').unwrap_or((location, "")))
}

/// Where the bucket is served, and what this machine keeps of it.
struct Place {
    region: String,
    endpoint: Url,
    /// AWS's endpoints of the kind asked for; `None` for a custom one.
    aws: Option<AwsEndpoint>,
    local: LocalState,
    /// The lock folder; `None` without a home, where only commands that
    /// take the lock (append, truncate, trim) fail, with this reason.
    lock_dir: std::result::Result<PathBuf, String>,
    lock_source: Source,
}

/// The region and endpoint: configured, or on AWS's endpoints the region
/// S3 named for the bucket last time (that is where the bucket is).
fn place(inputs: Inputs<'_>, bucket: &str, prefix: &Prefix, shown: &mut Shown) -> Result<Place> {
    let (configured, region_source) = inputs.value(REGION);
    endpoint::check_region(&configured)?;
    let fips = inputs.boolean(FIPS)?;
    let dualstack = inputs.boolean(DUALSTACK)?;
    let custom = inputs.pick(ENDPOINT);
    let aws = endpoint::aws_endpoint(
        fips.as_ref(),
        dualstack.as_ref(),
        custom.as_ref().map(|(_, source)| source),
    )?;
    let (configured_endpoint, endpoint_source) = match &custom {
        Some((raw, source)) => (endpoint::parse_endpoint(raw)?, source.clone()),
        None => (aws.url(&configured)?, Source::Default),
    };
    // The local files are named after the configured endpoint, so that a
    // redirect does not move them.
    let (lock_dir, lock_source) = match inputs.pick(LOCK_DIR) {
        Some((dir, source)) => (Ok(PathBuf::from(dir)), source),
        None => (
            default_lock_dir(inputs.env).map_err(|error| error.to_string()),
            Source::Default,
        ),
    };
    let local = match &lock_dir {
        Ok(dir) => LocalState::in_dir(dir, configured_endpoint.as_str(), bucket, prefix.as_str()),
        Err(why) => LocalState::without_folder(why),
    };
    let aws = custom.is_none().then_some(aws);
    let remembered = aws.and_then(|aws| Some((aws, RegionMemory::at(local.region_path()).load()?)));
    let (region, endpoint, source) = match remembered {
        Some((aws, region)) if region != configured => {
            let path = local.region_path().to_owned();
            let endpoint = aws.url(&region)?;
            (region, endpoint, Source::Remembered(path))
        }
        _ => (configured, configured_endpoint, region_source),
    };
    shown.push(REGION, &region, source);
    shown.push(ENDPOINT, &endpoint, endpoint_source);
    for (setting, asked) in [(FIPS, fips), (DUALSTACK, dualstack)] {
        if let Some(source) = asked {
            shown.push(setting, "yes", source);
        }
    }
    Ok(Place {
        region,
        endpoint,
        aws,
        local,
        lock_dir,
        lock_source,
    })
}

/// Resolves the configuration, with aws CLI's precedence: flags, then
/// the environment (over `.env`), then the profile, then defaults.
/// Usage errors come first, before any file is read.
pub fn resolve(flags: &Flags, env: &Env) -> Result<Config> {
    let mut shown = Shown::default();
    let bare = Inputs {
        flags,
        env,
        profile: None,
    };
    let parallel = parallel(bare, &mut shown)?;
    let lease = lease(bare, &mut shown)?;
    let allow_unsafe_takeover = unsafe_takeover(bare, &mut shown)?;
    let profile = NamedProfile::load(bare)?;
    let inputs = Inputs {
        profile: Some(&profile),
        ..bare
    };
    let (bucket, prefix) = location(inputs, &mut shown)?;
    let place = place(inputs, &bucket, &prefix, &mut shown)?;
    let asked = inputs.pick(ADDRESSING);
    let (path_style, addressing) = endpoint::addressing(asked.is_some(), &place.endpoint, &bucket);
    shown.push(
        ADDRESSING,
        addressing,
        asked.map_or(Source::Default, |(_, s)| s),
    );
    let ca_bundle = inputs.pick(CA_BUNDLE);
    let ca_bundle = ca_bundle.map(|(bundle, source)| (PathBuf::from(bundle), source));
    let ssl_cert_file = env.get("SSL_CERT_FILE").map(PathBuf::from);
    let retry = retry_policy(inputs, &mut shown)?;
    let settings = credentials::Settings {
        region: &place.region,
        http: credentials::Http {
            ca_bundle: ca_bundle.as_ref().map(|(bundle, _)| bundle.clone()),
            ssl_cert_file: ssl_cert_file.clone(),
        },
        timeout: retry.timeout,
    };
    let chosen = credentials::resolve(env, &profile, settings)?;
    shown.push(CREDENTIALS, &chosen.shown, chosen.source);
    shown.push(PROFILE, &profile.name, profile.source.clone());
    match &ca_bundle {
        Some((bundle, source)) => shown.push(CA_BUNDLE, bundle.display(), source.clone()),
        None => shown.push(CA_BUNDLE, "the system's", Source::Default),
    }
    let proxy = proxy_for(&place.endpoint, env);
    match &proxy {
        Some((proxy, source)) => shown.push(PROXY, proxy::shown(proxy), source.clone()),
        None => shown.push(PROXY, "none", Source::Default),
    }
    match &place.lock_dir {
        Ok(dir) => shown.push(LOCK_DIR, dir.display(), place.lock_source),
        Err(_) => shown.push(LOCK_DIR, "none: HOME is not set", place.lock_source),
    }
    Ok(Config {
        s3: S3Config {
            endpoint: place.endpoint,
            aws: place.aws,
            region_memory: place
                .aws
                .map(|_| RegionMemory::at(place.local.region_path())),
            bucket,
            region: place.region,
            path_style,
            credentials: Arc::new(chosen.provider),
            retry,
            ca_bundle: ca_bundle.map(|(bundle, _)| bundle),
            ssl_cert_file,
            proxy: proxy.map(|(proxy, _)| proxy),
            parallel,
        },
        prefix,
        local: place.local,
        allow_unsafe_store: inputs.pick(UNSAFE_STORE).is_some(),
        lease,
        allow_unsafe_takeover,
        origins: shown.sorted(),
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::config::settings::{BUCKET, PARALLEL, PREFIX, PROFILE, REGION};

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
        let flags = Flags::default()
            .with(BUCKET, "other")
            .with(PREFIX, "p")
            .with(REGION, "ap-south-1");
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

    /// The credentials `config` signs with (static ones: no network).
    fn signing(config: &Config) -> rusty_s3::Credentials {
        config.s3.credentials.current().unwrap().credentials
    }

    #[test]
    fn credentials_come_from_one_layer_only() {
        let env = Env::new(
            base().iter().map(|(k, v)| (k.to_string(), v.to_string())),
            parse_dotenv("AWS_SESSION_TOKEN=stale\n"),
        );
        let config = resolve(&Flags::default(), &env).unwrap();
        assert_eq!(signing(&config).token(), None);
    }

    #[test]
    fn session_token_is_signed_into_requests() {
        let mut vars = base();
        vars.push(("AWS_SESSION_TOKEN", "the-token"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert_eq!(signing(&config).token(), Some("the-token"));
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
        let flags = Flags::default().with(BUCKET, "other");
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
            (
                "addressing",
                "path-style (not an AWS endpoint)",
                Source::Default,
            ),
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
        let flags = Flags::default().with(PARALLEL, "200");
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
            let flags = Flags::default().with(PARALLEL, &n.to_string());
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
        let flags = Flags::default().with(PROFILE, "onprem");
        let config = resolve(&flags, &env(&vars)).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        assert_eq!(signing(&config).key(), "AKIAONPREMKEY0001234");
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

    /// A scratch folder for `name`, removed by the caller.
    fn folder(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("s3wal-config-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn region_comes_from_the_config_files_profile_after_the_environment() {
        let dir = folder("region-profile");
        let config_file = dir.join("config");
        std::fs::write(
            &config_file,
            "[default]\nregion = ap-south-1\n[profile eu]\nregion = eu-north-1\n\
             aws_access_key_id = AK\naws_secret_access_key = SK\n",
        )
        .unwrap();
        let mut vars = base();
        vars.push(("AWS_CONFIG_FILE", config_file.to_str().unwrap()));
        let default = resolve(&Flags::default(), &env(&vars)).unwrap();
        let named = Flags::default().with(PROFILE, "eu");
        let eu = resolve(&named, &env(&vars)).unwrap();
        vars.push(("AWS_DEFAULT_REGION", "sa-east-1"));
        let legacy = resolve(&named, &env(&vars)).unwrap();
        vars.push(("AWS_REGION", "ca-central-1"));
        let exported = resolve(&named, &env(&vars)).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        let profile = |name: &str| Source::Profile(name.into());
        assert_eq!(
            origin(&default, "region"),
            ("ap-south-1".into(), profile("default"))
        );
        assert_eq!(origin(&eu, "region"), ("eu-north-1".into(), profile("eu")));
        assert_eq!(
            origin(&legacy, "region"),
            ("sa-east-1".into(), Source::Env("AWS_DEFAULT_REGION"))
        );
        assert_eq!(
            origin(&exported, "region"),
            ("ca-central-1".into(), Source::Env("AWS_REGION"))
        );
        assert_eq!(
            exported.s3.endpoint.as_str(),
            "https://s3.ca-central-1.amazonaws.com/"
        );
    }

    #[test]
    fn fips_and_dualstack_choose_awss_endpoints() {
        let mut vars = base();
        vars.push(("AWS_REGION", "us-west-2"));
        vars.push(("AWS_USE_FIPS_ENDPOINT", "true"));
        vars.push(("AWS_USE_DUALSTACK_ENDPOINT", "true"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert_eq!(
            config.s3.endpoint.as_str(),
            "https://s3-fips.dualstack.us-west-2.amazonaws.com/"
        );
        assert_eq!(
            origin(&config, "FIPS endpoint"),
            ("yes".into(), Source::Env("AWS_USE_FIPS_ENDPOINT"))
        );
        assert!(config.s3.aws.is_some_and(|aws| aws.fips && aws.dualstack));
    }

    #[test]
    fn fips_with_a_custom_endpoint_is_a_config_error() {
        let mut vars = base();
        vars.push(("AWS_USE_FIPS_ENDPOINT", "true"));
        vars.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"));
        let error = resolve(&Flags::default(), &env(&vars)).unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error}");
    }

    #[test]
    fn a_custom_endpoint_is_never_followed_to_another_region() {
        let mut vars = base();
        vars.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        assert_eq!(config.s3.aws, None);
        assert!(config.s3.region_memory.is_none());
    }

    #[test]
    fn the_region_s3_named_for_the_bucket_beats_the_configured_one_on_aws() {
        let dir = folder("remembered");
        let mut vars = base();
        vars.push(("S3WAL_LOCK_DIR", dir.to_str().unwrap()));
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        let memory = config.s3.region_memory.clone().unwrap();
        memory.store("eu-west-1");
        let config = resolve(&Flags::default(), &env(&vars)).unwrap();
        vars.push(("AWS_ENDPOINT_URL", "http://127.0.0.1:9000"));
        let custom = resolve(&Flags::default(), &env(&vars)).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(config.s3.region, "eu-west-1");
        assert_eq!(
            config.s3.endpoint.as_str(),
            "https://s3.eu-west-1.amazonaws.com/"
        );
        assert_eq!(
            origin(&config, "region"),
            (
                "eu-west-1".into(),
                Source::Remembered(memory.path().to_owned())
            )
        );
        // The lock stays where the configured endpoint put it.
        let configured =
            LocalState::in_dir(&dir, "https://s3.us-east-1.amazonaws.com/", "logs", "wal");
        assert_eq!(config.local, configured);
        assert_eq!(custom.s3.region, "us-east-1");
    }
}
