//! The keys requests are signed with: the first configured provider of
//! botocore's chain (environment, web identity, profile, container, EC2
//! instance metadata), resolved lazily at the first request, cached, and
//! renewed before it expires. Shown without secrets.
//!
//! A provider that is configured but fails is an error naming it: the
//! chain never falls through to a broader identity (an IRSA pod must not
//! silently run as its node's role).
//!
//! One file per provider, each a pure request builder and answer parser
//! where it can be; [`http`] is the one way out to the network, through
//! the crate's HTTP layer.

mod container;
mod http;
mod imds;
mod json;
mod process;
mod sigv4;
mod sso;
mod sts;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use rusty_s3::Credentials;

use super::profile::{Files, Profile};
use super::{Env, NamedProfile, Source};
use crate::error::{Error, Result};
use crate::s3::{CredentialSource, Signing};

use http::Caller;

/// The CA bundles the credential endpoints are checked against, under the
/// name the configuration gives them.
pub(crate) use crate::http::Trust as Http;

/// Credentials a provider handed out, and their expiry.
type Fetched = Signing;

/// The longest margin before expiry at which credentials are renewed
/// (botocore's advisory refresh).
const REFRESH_MARGIN: Duration = Duration::from_secs(15 * 60);

/// A time in any of the formats the providers use: RFC 3339 with `Z` or
/// an offset, with or without fractions, or the SSO cache's old `UTC`
/// suffix.
fn parse_time(text: &str) -> std::result::Result<Timestamp, String> {
    let text = text.trim();
    let text = match text.strip_suffix("UTC") {
        Some(bare) => format!("{bare}Z"),
        None => text.to_owned(),
    };
    text.parse()
        .map_err(|_| format!("the expiration {text:?} is not a time"))
}

/// Credentials from a JSON answer with `AccessKeyId`, `SecretAccessKey`,
/// the token under `token_field` and `Expiration` (container, IMDS,
/// `credential_process`); token and expiration are optional.
fn from_json(body: &[u8], token_field: &str) -> std::result::Result<Fetched, String> {
    let json = json::parse(body)?;
    let (Some(key), Some(secret)) = (json.text("AccessKeyId"), json.text("SecretAccessKey")) else {
        return Err("an answer without AccessKeyId and SecretAccessKey".into());
    };
    let credentials = match json.text(token_field) {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    };
    let expires = json.text("Expiration").map(parse_time).transpose()?;
    Ok(Fetched {
        credentials,
        expires,
    })
}

/// One provider of the chain, configured.
#[derive(Debug, Clone)]
enum Fetch {
    /// Long-lived keys (environment or profile).
    Static(Credentials),
    /// A profile's `credential_process` command line.
    Process(String),
    WebIdentity(sts::WebIdentity),
    /// A profile's `role_arn`, assumed with the source's credentials.
    AssumeRole(sts::AssumeRole, Box<Fetch>),
    Sso(sso::Sso),
    Container(container::Container),
    Imds(imds::Imds),
}

impl Fetch {
    /// The provider's name, for errors and `doctor`.
    fn name(&self) -> &'static str {
        match self {
            Fetch::Static(_) => "static keys",
            Fetch::Process(_) => "credential_process",
            Fetch::WebIdentity(_) => "web identity",
            Fetch::AssumeRole(..) => "assume role",
            Fetch::Sso(_) => "SSO",
            Fetch::Container(_) => "the container endpoint",
            Fetch::Imds(_) => "EC2 instance metadata",
        }
    }

    fn fetch(&self, http: &Caller, timeout: Duration) -> std::result::Result<Fetched, String> {
        match self {
            Fetch::Static(credentials) => credentials.current().map_err(|e| e.to_string()),
            Fetch::Process(command) => process::fetch(command, timeout),
            Fetch::WebIdentity(call) => call.fetch(http, timeout),
            Fetch::AssumeRole(call, source) => {
                let source = source
                    .fetch(http, timeout)
                    .map_err(|e| format!("its source ({}): {e}", source.name()))?;
                call.fetch(&source.credentials, http, timeout)
            }
            Fetch::Sso(sso) => sso.fetch(http, timeout),
            Fetch::Container(container) => container.fetch(http),
            Fetch::Imds(imds) => imds.fetch(http),
        }
    }
}

/// Credentials, with when they were fetched.
#[derive(Debug, Clone)]
struct Cached {
    fetched: Timestamp,
    signing: Signing,
    /// After an early renewal failed: when to try again. Until then the
    /// still valid credentials serve, instead of every request waiting
    /// on an endpoint that is down.
    retry_at: Option<Timestamp>,
}

/// How long a failed early renewal is not tried again.
const RENEWAL_PAUSE: Duration = Duration::from_secs(30);

/// Whether credentials fetched at `fetched` and expiring at `expires`
/// are to be renewed at `now`: when less than 15 minutes, or half their
/// lifetime, is left (a credential living 30 s is renewed after 15 s).
fn due(fetched: Timestamp, expires: Option<Timestamp>, now: Timestamp) -> bool {
    let Some(expires) = expires else {
        return false;
    };
    let lifetime = expires.as_millisecond() - fetched.as_millisecond();
    let left = expires.as_millisecond() - now.as_millisecond();
    let margin = (lifetime / 2).min(REFRESH_MARGIN.as_millis() as i64);
    left < margin
}

/// The chosen provider: fetched at the first request, not before (a
/// command that fails on its arguments makes no network call), cached,
/// renewed when due.
#[derive(Debug)]
pub struct Provider {
    fetch: Fetch,
    http: Caller,
    /// `--timeout`: bounds STS, SSO and `credential_process`.
    timeout: Duration,
    cache: Mutex<Option<Cached>>,
}

impl Provider {
    fn error(&self, message: String) -> Error {
        Error::Credentials {
            provider: self.fetch.name(),
            message,
        }
    }

    /// Fetches afresh and caches; credentials that are already expired
    /// are an error.
    fn renew(&self, cache: &mut Option<Cached>) -> Result<Signing> {
        let signing = self
            .fetch
            .fetch(&self.http, self.timeout)
            .map_err(|e| self.error(e))?;
        let now = Timestamp::now();
        if let Some(expires) = signing.expires.filter(|e| *e <= now) {
            return Err(self.error(format!("the credentials it gave expired at {expires}")));
        }
        *cache = Some(Cached {
            fetched: now,
            signing: signing.clone(),
            retry_at: None,
        });
        Ok(signing)
    }
}

impl CredentialSource for Provider {
    /// The cached credentials, renewed when due. A renewal that fails
    /// while the old credentials are still valid keeps them.
    fn current(&self) -> Result<Signing> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Timestamp::now();
        let cached = cache.clone();
        match cached {
            Some(c) if !due(c.fetched, c.signing.expires, now) => Ok(c.signing),
            Some(c) if c.retry_at.is_some_and(|at| now < at) => Ok(c.signing),
            Some(c) => match self.renew(&mut cache) {
                Err(_) if c.signing.expires.is_some_and(|e| e > now) => {
                    let pause = jiff::SignedDuration::try_from(RENEWAL_PAUSE).unwrap_or_default();
                    *cache = Some(Cached {
                        retry_at: now.checked_add(pause).ok(),
                        ..c.clone()
                    });
                    Ok(c.signing)
                }
                outcome => outcome,
            },
            None => self.renew(&mut cache),
        }
    }

    fn refresh(&self, refused: &Signing) -> Result<Signing> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        match &*cache {
            Some(c) if c.signing.credentials != refused.credentials => Ok(c.signing.clone()),
            _ => self.renew(&mut cache),
        }
    }
}

/// The chosen provider and how `doctor` shows it.
#[derive(Debug)]
pub(super) struct Chosen {
    pub(super) provider: Provider,
    /// The provider and what identifies its credentials: never a secret.
    pub(super) shown: String,
    pub(super) source: Source,
}

/// What the chain needs besides the environment and the profile.
#[derive(Debug)]
pub(super) struct Settings<'a> {
    /// The region STS is called in.
    pub(super) region: &'a str,
    pub(super) http: Http,
    pub(super) timeout: Duration,
}

/// Everything the providers read their configuration from.
struct Context<'a> {
    env: &'a Env,
    files: &'a Files,
    region: &'a str,
}

/// The access key, secret and session token, as environment variables.
const VARIABLES: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// Chooses the provider, in botocore's order. `--profile` leaves out the
/// environment's keys and web identity; `AWS_PROFILE` does not.
pub(super) fn resolve(env: &Env, profile: &NamedProfile, settings: Settings<'_>) -> Result<Chosen> {
    let context = Context {
        env,
        files: &profile.files,
        region: settings.region,
    };
    let chosen = |fetch: Fetch, shown: String, source: Source| Chosen {
        provider: Provider {
            fetch,
            http: Caller::new(settings.http.clone()),
            timeout: settings.timeout,
            cache: Mutex::new(None),
        },
        shown,
        source,
    };
    let flagged = matches!(profile.source, Source::Flag(_));
    if !flagged {
        if let Some((credentials, source)) = from_env(env)? {
            return Ok(chosen(
                Fetch::Static(credentials.clone()),
                shown(&credentials),
                source,
            ));
        }
        if let Some(token_file) = env.get("AWS_WEB_IDENTITY_TOKEN_FILE") {
            let role_arn = env.get("AWS_ROLE_ARN").ok_or_else(|| {
                Error::Config("AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not".into())
            })?;
            let call = web_identity(
                &context,
                token_file,
                role_arn,
                env.get("AWS_ROLE_SESSION_NAME"),
            )?;
            let shown = format!("web identity, role {role_arn}");
            return Ok(chosen(
                call,
                shown,
                Source::Env("AWS_WEB_IDENTITY_TOKEN_FILE"),
            ));
        }
    }
    if let Some((fetch, shown)) = from_profile(&context, &profile.name, &mut Vec::new())? {
        return Ok(chosen(fetch, shown, Source::Profile(profile.name.clone())));
    }
    if flagged {
        return Err(Error::Config(format!(
            "profile {:?} has no credentials (aws_access_key_id and aws_secret_access_key, \
             role_arn, sso_session, web_identity_token_file or credential_process)",
            profile.name
        )));
    }
    if let Some((fetch, variable)) = container(env)? {
        let shown = format!("container endpoint {}", container_host(&fetch));
        return Ok(chosen(fetch, shown, Source::Env(variable)));
    }
    if let Some(fetch) = imds(env) {
        return Ok(chosen(
            fetch,
            "EC2 instance metadata".into(),
            Source::Default,
        ));
    }
    Err(Error::Config(
        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a profile \
         (--profile, AWS_PROFILE), web identity (AWS_WEB_IDENTITY_TOKEN_FILE) or a \
         container or instance role"
            .into(),
    ))
}

/// The environment's keys, all from one layer (the process's, or
/// `.env`'s), so that a stale token in `.env` never joins exported keys;
/// one key without the other is an error.
fn from_env(env: &Env) -> Result<Option<(Credentials, Source)>> {
    let Some((get, source)) = env
        .layer_setting(VARIABLES[0])
        .or_else(|| env.layer_setting(VARIABLES[1]))
    else {
        return Ok(None);
    };
    let (Some(key), Some(secret)) = (get(VARIABLES[0]), get(VARIABLES[1])) else {
        return Err(Error::Config(format!(
            "{source} is set without its pair: set both AWS_ACCESS_KEY_ID and \
             AWS_SECRET_ACCESS_KEY"
        )));
    };
    let credentials = match get(VARIABLES[2]).or_else(|| get("AWS_SECURITY_TOKEN")) {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    };
    Ok(Some((credentials, source)))
}

/// The STS endpoint for the context's region.
fn sts_endpoint(context: &Context<'_>) -> Result<sts::Endpoint> {
    sts::Endpoint::new(
        context.region,
        context.env.get("AWS_ENDPOINT_URL_STS"),
        context.env.get("AWS_STS_REGIONAL_ENDPOINTS"),
    )
    .map_err(Error::Config)
}

/// The session name STS records: the one configured, else one that
/// tells s3wal's sessions apart in CloudTrail.
fn session_name(configured: Option<&str>) -> String {
    configured.map_or_else(
        || format!("s3wal-{}", Timestamp::now().as_second()),
        str::to_owned,
    )
}

fn web_identity(
    context: &Context<'_>,
    token_file: &str,
    role_arn: &str,
    session: Option<&str>,
) -> Result<Fetch> {
    Ok(Fetch::WebIdentity(sts::WebIdentity {
        token_file: PathBuf::from(token_file),
        role_arn: role_arn.to_owned(),
        session_name: session_name(session),
        endpoint: sts_endpoint(context)?,
    }))
}

/// The provider profile `name` configures, and how `doctor` shows it;
/// `None` if it configures none. `visited` holds the profiles that led
/// here through `source_profile`, so that a loop is an error.
fn from_profile(
    context: &Context<'_>,
    name: &str,
    visited: &mut Vec<String>,
) -> Result<Option<(Fetch, String)>> {
    if visited.iter().any(|v| v == name) {
        visited.push(name.to_owned());
        return Err(Error::Config(format!(
            "source_profile loops: {}",
            visited.join(" -> ")
        )));
    }
    visited.push(name.to_owned());
    let profile = match context.files.profile(name) {
        Some(profile) => profile,
        None if visited.len() > 1 => {
            return Err(Error::Config(format!(
                "source_profile {name:?} is in neither ~/.aws file"
            )));
        }
        None => return Ok(None),
    };
    let get = |key| profile.get(key);
    if let Some(role_arn) = get("role_arn") {
        return assume_role(context, name, &profile, role_arn, visited).map(Some);
    }
    if let Some(sso) = sso(context, name, &profile)? {
        let shown = format!("SSO account {} role {}", sso.account_id, sso.role_name);
        return Ok(Some((Fetch::Sso(sso), shown)));
    }
    if let Some(credentials) = static_keys(name, &profile)? {
        let shown = shown(&credentials);
        return Ok(Some((Fetch::Static(credentials), shown)));
    }
    Ok(get("credential_process").map(|command| {
        (
            Fetch::Process(command.to_owned()),
            "credential_process".into(),
        )
    }))
}

/// A profile's `aws_access_key_id` and `aws_secret_access_key` (and
/// `aws_session_token`); one without the other is an error.
fn static_keys(name: &str, profile: &Profile) -> Result<Option<Credentials>> {
    match (
        profile.get("aws_access_key_id"),
        profile.get("aws_secret_access_key"),
    ) {
        (Some(key), Some(secret)) => Ok(Some(match profile.get("aws_session_token") {
            Some(token) => Credentials::new_with_token(key, secret, token),
            None => Credentials::new(key, secret),
        })),
        (None, None) => Ok(None),
        _ => Err(Error::Config(format!(
            "profile {name:?} has only one of aws_access_key_id and aws_secret_access_key"
        ))),
    }
}

/// A profile's `role_arn`: web identity with `web_identity_token_file`,
/// else `AssumeRole` with exactly one of `source_profile` and
/// `credential_source`.
fn assume_role(
    context: &Context<'_>,
    name: &str,
    profile: &Profile,
    role_arn: &str,
    visited: &mut Vec<String>,
) -> Result<(Fetch, String)> {
    let get = |key| profile.get(key);
    if let Some(token_file) = get("web_identity_token_file") {
        let call = web_identity(context, token_file, role_arn, get("role_session_name"))?;
        return Ok((call, format!("web identity, role {role_arn}")));
    }
    let source = match (get("source_profile"), get("credential_source")) {
        (Some(source), None) if source == name => static_keys(name, profile)?
            .map(Fetch::Static)
            .ok_or_else(|| {
                Error::Config(format!(
                    "profile {name:?} is its own source_profile but has no keys"
                ))
            })?,
        (Some(source), None) => from_profile(context, source, visited)?
            .map(|(fetch, _)| fetch)
            .ok_or_else(|| {
                Error::Config(format!("source_profile {source:?} has no credentials"))
            })?,
        (None, Some(source)) => credential_source(context.env, source)?,
        _ => {
            return Err(Error::Config(format!(
                "profile {name:?}: role_arn needs exactly one of source_profile and \
                 credential_source"
            )));
        }
    };
    let shown = format!("assume role {role_arn} from {}", source.name());
    let call = sts::AssumeRole {
        role_arn: role_arn.to_owned(),
        session_name: session_name(get("role_session_name")),
        external_id: get("external_id").map(str::to_owned),
        duration_seconds: get("duration_seconds").map(str::to_owned),
        endpoint: sts_endpoint(context)?,
        mfa_serial: get("mfa_serial").map(str::to_owned),
        mfa_code: None,
    };
    Ok((Fetch::AssumeRole(call, Box::new(source)), shown))
}

/// A profile's `credential_source`.
fn credential_source(env: &Env, source: &str) -> Result<Fetch> {
    let missing = |what: &str| Error::Config(format!("credential_source {source}: {what}"));
    match source {
        "Environment" => from_env(env)?
            .map(|(credentials, _)| Fetch::Static(credentials))
            .ok_or_else(|| missing("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set")),
        "EcsContainer" => container(env)?
            .map(|(fetch, _)| fetch)
            .ok_or_else(|| missing("no AWS_CONTAINER_CREDENTIALS_*_URI is set")),
        "Ec2InstanceMetadata" => {
            imds(env).ok_or_else(|| missing("AWS_EC2_METADATA_DISABLED is set"))
        }
        _ => Err(missing(
            "must be Environment, Ec2InstanceMetadata or EcsContainer",
        )),
    }
}

/// An SSO profile: `sso_session` naming an `[sso-session]` section, or
/// the legacy `sso_start_url` and `sso_region` in the profile itself.
fn sso(context: &Context<'_>, name: &str, profile: &Profile) -> Result<Option<sso::Sso>> {
    let (cache_key, settings) = match (profile.get("sso_session"), profile.get("sso_start_url")) {
        (Some(session), _) => {
            let section = context.files.sso_session(session).ok_or_else(|| {
                Error::Config(format!(
                    "profile {name:?}: no [sso-session {session}] section"
                ))
            })?;
            (session.to_owned(), section)
        }
        (None, Some(start_url)) => (start_url.to_owned(), profile.clone()),
        (None, None) => return Ok(None),
    };
    let needed = |key: &str, from: &Profile| {
        from.get(key)
            .map(str::to_owned)
            .ok_or_else(|| Error::Config(format!("profile {name:?}: SSO needs {key}")))
    };
    let region = needed("sso_region", &settings)?;
    let home = context.env.get("HOME").unwrap_or("~");
    let portal = match context.env.get("AWS_ENDPOINT_URL_SSO") {
        Some(url) => url.to_owned(),
        None => format!("https://portal.sso.{region}.amazonaws.com"),
    };
    Ok(Some(sso::Sso {
        cache_key,
        cache_dir: Path::new(home).join(".aws/sso/cache"),
        account_id: needed("sso_account_id", profile)?,
        role_name: needed("sso_role_name", profile)?,
        portal,
    }))
}

/// The container endpoint, if one of its variables is set, and which.
fn container(env: &Env) -> Result<Option<(Fetch, &'static str)>> {
    let relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    let full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    let variable = match (relative, full) {
        (Some(_), _) => "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        (None, Some(_)) => "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        (None, None) => return Ok(None),
    };
    let url = container::endpoint(relative, full).map_err(Error::Config)?;
    let authorization = match (
        env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
        env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
    ) {
        (Some(file), _) => container::Authorization::File(file.into()),
        (None, Some(token)) => container::Authorization::Token(token.to_owned()),
        (None, None) => container::Authorization::None,
    };
    let fetch = Fetch::Container(container::Container { url, authorization });
    Ok(Some((fetch, variable)))
}

fn container_host(fetch: &Fetch) -> String {
    match fetch {
        Fetch::Container(container) => container.url.host_str().unwrap_or_default().to_owned(),
        _ => String::new(),
    }
}

/// The instance metadata service, unless `AWS_EC2_METADATA_DISABLED`.
fn imds(env: &Env) -> Option<Fetch> {
    let set = |name| {
        env.get(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    if set("AWS_EC2_METADATA_DISABLED") {
        return None;
    }
    // Whole seconds, as botocore reads it.
    let timeout = env
        .get("AWS_METADATA_SERVICE_TIMEOUT")
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(1), Duration::from_secs);
    Some(Fetch::Imds(imds::Imds {
        endpoint: imds::endpoint(
            env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT"),
            env.get("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
        ),
        v1_disabled: set("AWS_EC2_METADATA_V1_DISABLED"),
        timeout,
    }))
}

/// Long-lived credentials as `doctor` may show them: the access key's
/// last 4 characters (as `aws configure list` shows them; none of a key
/// too short to hide the rest), and whether a session token goes with
/// it. Never the secret or the token.
fn shown(credentials: &Credentials) -> String {
    let key = credentials.key();
    let tail = match key.len() >= 16 && key.is_char_boundary(key.len() - 4) {
        true => format!(" …{}", &key[key.len() - 4..]),
        false => String::new(),
    };
    let token = match credentials.token() {
        Some(_) => " with a session token",
        None => "",
    };
    format!("access key{tail}{token}")
}

#[cfg(test)]
mod tests;
