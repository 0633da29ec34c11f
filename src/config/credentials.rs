//! The keys requests are signed with: taken whole from one place, with
//! aws CLI's precedence, and shown without their secrets.

use rusty_s3::Credentials;

use super::{Env, NamedProfile, Source};
use crate::error::{Error, Result};

/// The access key, secret and session token, as environment variables.
const VARIABLES: [&str; 3] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
];

/// The same, as profile keys.
const PROFILE_KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];

/// The credentials and where they came from. `--profile` is a flag, so
/// its credentials beat the environment's; `AWS_PROFILE` is not, so
/// exported keys beat it, as in aws CLI. Key, secret and token come from
/// one place (one layer of the environment, or the profile), so a stale
/// token in `.env` never joins exported keys.
pub(super) fn resolve(env: &Env, profile: &NamedProfile) -> Result<(Credentials, Source)> {
    let from_profile = || {
        let credentials = whole(|key| profile.profile.get(key), PROFILE_KEYS)?;
        Some((credentials, Source::Profile(profile.name.clone())))
    };
    if let Source::Flag(_) = profile.source {
        return from_profile().ok_or_else(|| {
            Error::Config(format!(
                "profile {:?} has no aws_access_key_id and aws_secret_access_key",
                profile.name
            ))
        });
    }
    let from_env = || {
        let (get, source) = env.layer_setting(VARIABLES[0])?;
        Some((whole(get, VARIABLES)?, source))
    };
    from_env().or_else(from_profile).ok_or_else(|| {
        Error::Config(
            "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or use a profile"
                .into(),
        )
    })
}

/// Credentials from one place, whose settings for key, secret and token
/// are named `names`; `None` unless it has both key and secret.
fn whole<'a>(get: impl Fn(&str) -> Option<&'a str>, names: [&str; 3]) -> Option<Credentials> {
    let (key, secret) = (get(names[0])?, get(names[1])?);
    Some(match get(names[2]) {
        Some(token) => Credentials::new_with_token(key, secret, token),
        None => Credentials::new(key, secret),
    })
}

/// The credentials as `doctor` may show them: the access key's last 4
/// characters (as `aws configure list` shows them; none of a key too short
/// to hide the rest), and whether a session token goes with it. Never the
/// secret or the token.
pub(super) fn shown(credentials: &Credentials) -> String {
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
mod tests {
    use super::*;

    #[test]
    fn shown_credentials_hold_no_secret() {
        let long = Credentials::new_with_token("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI", "tok");
        assert_eq!(shown(&long), "access key …MPLE with a session token");
        assert_eq!(shown(&Credentials::new("AK", "SK")), "access key");
    }
}
