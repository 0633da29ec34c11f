//! Named profiles from `~/.aws/credentials` and `~/.aws/config`, read the
//! way aws CLI reads them.
//!
//! The credentials file has `[NAME]` sections; the config file has
//! `[default]` and `[profile NAME]` sections. Both may hold keys; the
//! credentials file wins for the same key. Indented lines (nested service
//! settings) are skipped.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The settings of one profile that s3wal uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Every `key = value` of the profile, credentials file first.
    values: HashMap<String, String>,
}

impl Profile {
    /// A setting, such as `region` or `aws_access_key_id`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// The `key = value` pairs of section `section` of an INI text.
fn section(text: &str, wanted: &str) -> Option<HashMap<String, String>> {
    let mut current: Option<String> = None;
    let mut found: Option<HashMap<String, String>> = None;
    for line in text.lines() {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let line = line.trim();
        if line.is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            if name == wanted {
                found.get_or_insert_with(HashMap::new);
            }
            current = Some(name);
            continue;
        }
        if current.as_deref() == Some(wanted)
            && let Some((key, value)) = line.split_once('=')
        {
            found
                .get_or_insert_with(HashMap::new)
                .insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    found
}

/// Reads a file that may be missing; an unreadable one is an error.
fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// Profile `name` from the two files. `required` makes a profile found in
/// neither an error (one named with `--profile` or `AWS_PROFILE`).
pub fn load(name: &str, credentials: &Path, config: &Path, required: bool) -> Result<Profile> {
    let config_section = if name == "default" {
        "default".to_owned()
    } else {
        format!("profile {name}")
    };
    let from_config = read_optional(config)?.and_then(|text| section(&text, &config_section));
    let from_credentials = read_optional(credentials)?.and_then(|text| section(&text, name));
    if from_config.is_none() && from_credentials.is_none() {
        if required {
            return Err(Error::Config(format!(
                "profile {name:?} is in neither {} nor {}",
                credentials.display(),
                config.display()
            )));
        }
        return Ok(Profile::default());
    }
    let mut values = from_config.unwrap_or_default();
    values.extend(from_credentials.unwrap_or_default());
    Ok(Profile { values })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = "[default]\nregion = eu-west-1\n\n[profile onprem]\nregion = us-east-1\n\
                          endpoint_url = https://ceph.internal:8443\ns3 =\n  addressing_style = path\n";
    const CREDENTIALS: &str = "[default]\naws_access_key_id = AK1\naws_secret_access_key = SK1\n\
                               # comment\n[onprem]\naws_access_key_id=AK2\naws_secret_access_key=SK2\n";

    #[test]
    fn config_sections_are_named_profile_space_name() {
        let values = section(CONFIG, "profile onprem").unwrap();
        assert_eq!(values["endpoint_url"], "https://ceph.internal:8443");
        assert!(!values.contains_key("addressing_style"));
    }

    #[test]
    fn credentials_sections_are_named_by_the_bare_name() {
        let values = section(CREDENTIALS, "onprem").unwrap();
        assert_eq!(values["aws_access_key_id"], "AK2");
        assert_eq!(section(CREDENTIALS, "missing"), None);
    }

    #[test]
    fn profile_joins_both_files() {
        let dir = std::env::temp_dir().join(format!("s3wal-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config"), CONFIG).unwrap();
        std::fs::write(dir.join("credentials"), CREDENTIALS).unwrap();
        let profile = load(
            "onprem",
            &dir.join("credentials"),
            &dir.join("config"),
            true,
        )
        .unwrap();
        assert_eq!(profile.get("aws_access_key_id"), Some("AK2"));
        assert_eq!(profile.get("region"), Some("us-east-1"));
        let missing = load("nope", &dir.join("credentials"), &dir.join("config"), true);
        assert!(missing.is_err());
        let optional = load("nope", &dir.join("credentials"), &dir.join("config"), false).unwrap();
        assert_eq!(optional, Profile::default());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
