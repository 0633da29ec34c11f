//! Named profiles from `~/.aws/credentials` and `~/.aws/config`, read as
//! the AWS SDKs read them (the shared profile-parser test suite of
//! smithy-rs and botocore is the oracle of the tests below).
//!
//! The credentials file has `[NAME]` sections; the config file has
//! `[default]` and `[profile NAME]` sections. Both may hold keys; the
//! credentials file wins for the same key.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// The settings of one profile, by lower-case key.
type Properties = HashMap<String, String>;

/// Every profile of a file, by name.
type Profiles = HashMap<String, Properties>;

/// The profile s3wal reads settings from.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Profile {
    /// Every `key = value` of the profile, credentials file first.
    values: Properties,
}

/// The keys only: values hold secrets and session tokens.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.values.keys().collect();
        keys.sort_unstable();
        f.debug_struct("Profile").field("keys", &keys).finish()
    }
}

impl Profile {
    /// A setting, such as `region` or `aws_access_key_id`; an empty value
    /// counts as unset.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Every profile of both files, and the `[sso-session NAME]` sections of
/// the config file: a profile may name another (`source_profile`) or a
/// session (`sso_session`).
#[derive(Clone, Default)]
pub struct Files {
    profiles: Profiles,
    sso_sessions: Profiles,
}

/// The section names only: values hold secrets and session tokens.
impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut profiles: Vec<&String> = self.profiles.keys().collect();
        let mut sessions: Vec<&String> = self.sso_sessions.keys().collect();
        profiles.sort_unstable();
        sessions.sort_unstable();
        f.debug_struct("Files")
            .field("profiles", &profiles)
            .field("sso_sessions", &sessions)
            .finish()
    }
}

impl Files {
    /// The profile `name`, if either file has it.
    pub fn profile(&self, name: &str) -> Option<Profile> {
        let values = self.profiles.get(name)?.clone();
        Some(Profile { values })
    }

    /// The `[sso-session NAME]` section, if the config file has it.
    pub fn sso_session(&self, name: &str) -> Option<Profile> {
        let values = self.sso_sessions.get(name)?.clone();
        Some(Profile { values })
    }
}

/// What `[sso-session NAME]` sections are kept as until they are split
/// off: no profile name holds a space.
const SSO_SESSION: &str = "sso-session ";

/// Which of the two files a text is: they name their sections differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum File {
    /// `~/.aws/config`: `[default]` and `[profile NAME]`.
    Config,
    /// `~/.aws/credentials`: `[NAME]`.
    Credentials,
}

/// A section header: the profile's name and whether it was written
/// `[profile NAME]`, which in the config file beats a bare `[default]`.
type Section = (String, bool);

/// The profiles of one file. A malformed line is an error naming the line
/// (as in the SDKs); a section or key with an invalid name is ignored.
fn parse(text: &str, file: File) -> std::result::Result<Profiles, String> {
    let mut sections: HashMap<Section, Properties> = HashMap::new();
    // `None` before the first header; `Some(None)` in an ignored section.
    let mut section: Option<Option<Section>> = None;
    // The key that continuation lines extend, and whether its value began
    // empty (then they are `name = value` sub-properties).
    let mut property: Option<(String, bool)> = None;
    for (index, line) in text.lines().enumerate() {
        let fail = |why: &str| format!("line {}: {why}", index + 1);
        if line.trim().is_empty() || line.starts_with(['#', ';']) {
            continue;
        }
        if line.starts_with('[') {
            let header = header(line, file).map_err(&fail)?;
            if let Some(header) = &header {
                sections.entry(header.clone()).or_default();
            }
            (section, property) = (Some(header), None);
            continue;
        }
        let Some(current) = &section else {
            return Err(fail("expected a profile definition before any property"));
        };
        let values = current.as_ref().and_then(|s| sections.get_mut(s));
        if line.starts_with([' ', '\t']) {
            let Some((key, sub)) = &property else {
                return Err(fail("expected a property definition, found a continuation"));
            };
            let line = line.trim();
            if *sub {
                match line.split_once('=') {
                    None => return Err(fail("expected an '=' sign defining a sub-property")),
                    Some((name, _)) if name.trim().is_empty() => {
                        return Err(fail("a sub-property has no name"));
                    }
                    Some(_) => {}
                }
            }
            if let Some(value) = values.and_then(|values| values.get_mut(key)) {
                value.push('\n');
                value.push_str(line);
            }
            continue;
        }
        let Some((key, value)) = without_comment(line).split_once('=') else {
            return Err(fail("expected an '=' sign defining a property"));
        };
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if key.is_empty() {
            return Err(fail("a property has no name"));
        }
        let valid = key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if let Some(values) = values.filter(|_| valid) {
            values.insert(key.clone(), value.to_owned());
        }
        property = Some((key, value.is_empty()));
    }
    // `[profile default]` and `[default]` in one config file: the SDKs
    // read only the first form.
    if sections.contains_key(&("default".to_owned(), true)) {
        sections.remove(&("default".to_owned(), false));
    }
    let mut profiles = Profiles::new();
    for ((name, _), values) in sections {
        profiles.entry(name).or_default().extend(values);
    }
    Ok(profiles)
}

/// The section a `[...]` line opens, `None` for one s3wal ignores: a
/// bare name other than `default` in the config file, `[profile NAME]` in
/// the credentials file, `[sso-session NAME]`, an invalid name.
fn header(line: &str, file: File) -> std::result::Result<Option<Section>, &'static str> {
    // A comment may follow the header with no space: `[profile a];note`.
    let line = line.split(['#', ';']).next().unwrap_or(line).trim_end();
    let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
        return Err("a profile definition must end with ']'");
    };
    let inner = inner.trim();
    let section = match file {
        File::Credentials => (inner.to_owned(), false),
        File::Config if inner == "default" => (inner.to_owned(), false),
        File::Config => match (
            inner.strip_prefix("profile"),
            inner.strip_prefix("sso-session"),
        ) {
            (Some(name), _) if name.starts_with([' ', '\t']) => (name.trim().to_owned(), true),
            (_, Some(name)) if name.starts_with([' ', '\t']) => (name.trim().to_owned(), false),
            _ => return Ok(None),
        },
    };
    let valid = !section.0.is_empty()
        && section
            .0
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-/.%@_:+".contains(c));
    let section = match file == File::Config && inner.starts_with("sso-session") {
        true => (format!("{SSO_SESSION}{}", section.0), false),
        false => section,
    };
    Ok(valid.then_some(section))
}

/// A property line without its comment: `#` or `;` after whitespace
/// starts one; one right after the value is part of it (`a=b;c` is `b;c`).
fn without_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    let start = (1..bytes.len())
        .find(|&i| matches!(bytes[i], b'#' | b';') && matches!(bytes[i - 1], b' ' | b'\t'));
    start.map_or(line, |at| &line[..at])
}

/// The profiles of both files, joined by name; the credentials file wins
/// for a key both set.
fn join(config: Profiles, credentials: Profiles) -> Profiles {
    let mut profiles = config;
    for (name, values) in credentials {
        profiles.entry(name).or_default().extend(values);
    }
    profiles
}

/// The profiles of a file that may be missing; an unreadable or malformed
/// one is an error.
fn read(path: &Path, file: File) -> Result<Profiles> {
    match std::fs::read(path) {
        Ok(bytes) => parse(&String::from_utf8_lossy(&bytes), file)
            .map_err(|why| Error::Config(format!("{}: {why}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profiles::new()),
        Err(e) => Err(Error::io(format!("cannot read {}", path.display()), e)),
    }
}

/// The sections of the config file's text that are `[sso-session NAME]`,
/// moved out of `profiles`, by name.
fn sso_sessions(profiles: &mut Profiles) -> Profiles {
    let names: Vec<String> = profiles
        .keys()
        .filter(|name| name.starts_with(SSO_SESSION))
        .cloned()
        .collect();
    names
        .into_iter()
        .filter_map(|name| {
            let values = profiles.remove(&name)?;
            Some((name[SSO_SESSION.len()..].to_owned(), values))
        })
        .collect()
}

/// Both files.
pub(super) fn load_files(credentials: &Path, config: &Path) -> Result<Files> {
    let mut config = read(config, File::Config)?;
    let sso_sessions = sso_sessions(&mut config);
    Ok(Files {
        profiles: join(config, read(credentials, File::Credentials)?),
        sso_sessions,
    })
}

/// Profile `name` from the two files, and both files. `required` makes a
/// profile found in neither an error (one named with `--profile` or
/// `AWS_PROFILE`).
pub(super) fn load(
    name: &str,
    credentials: &Path,
    config: &Path,
    required: bool,
) -> Result<(Profile, Files)> {
    let files = load_files(credentials, config)?;
    match files.profile(name) {
        Some(profile) => Ok((profile, files)),
        None if required => Err(Error::Config(format!(
            "profile {name:?} is in neither {} nor {}",
            credentials.display(),
            config.display()
        ))),
        None => Ok((Profile::default(), files)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a pair of files reads as: every profile with its settings,
    /// or the error.
    enum Expected {
        Profiles(&'static [(&'static str, &'static [(&'static str, &'static str)])]),
        Error(&'static str),
    }
    use Expected::{Error as Fails, Profiles as Reads};

    /// The cases of the AWS SDKs' shared profile-parser suite that apply
    /// to s3wal, in its order: (what, config file, credentials file, result).
    const SUITE: &[(&str, &str, &str, Expected)] = &[
        ("empty files have no profiles", "", "", Reads(&[])),
        (
            "an empty profile has no properties",
            "[profile foo]",
            "",
            Reads(&[("foo", &[])]),
        ),
        (
            "profile names take alphanumerics and - / . % @ _ : +",
            "[profile some-thing:long/the_one%only.foo@bar+]\n[profile foo!bar]",
            "",
            Reads(&[("some-thing:long/the_one%only.foo@bar+", &[])]),
        ),
        (
            "a profile definition ends with ]",
            "[profile foo",
            "",
            Fails("must end with ']'"),
        ),
        (
            "profile names are trimmed",
            "[profile \tfoo \t]",
            "",
            Reads(&[("foo", &[])]),
        ),
        (
            "a tab may follow profile",
            "[profile\tfoo]",
            "",
            Reads(&[("foo", &[])]),
        ),
        (
            "properties need a profile",
            "name = value",
            "",
            Fails("expected a profile definition"),
        ),
        (
            "profiles hold properties",
            "[profile foo]\nname = value",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "Windows line endings",
            "[profile foo]\r\nname = value",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "values may hold =",
            "[profile foo]\nname = val=ue",
            "",
            Reads(&[("foo", &[("name", "val=ue")])]),
        ),
        (
            "values may hold any Unicode",
            "[profile foo]\nname = 😂",
            "",
            Reads(&[("foo", &[("name", "😂")])]),
        ),
        (
            "a profile holds several properties",
            "[profile foo]\nname = value\nname2 = value2",
            "",
            Reads(&[("foo", &[("name", "value"), ("name2", "value2")])]),
        ),
        (
            "keys and values are trimmed",
            "[profile foo]\nname \t=  \tvalue \t",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "values may be empty",
            "[profile foo]\nname =",
            "",
            Reads(&[("foo", &[("name", "")])]),
        ),
        (
            "keys may not be empty",
            "[profile foo]\n= value",
            "",
            Fails("has no name"),
        ),
        (
            "a property needs =",
            "[profile foo]\nkey : value",
            "",
            Fails("'=' sign defining a property"),
        ),
        (
            "several profiles may be empty",
            "[profile foo]\n[profile bar]",
            "",
            Reads(&[("foo", &[]), ("bar", &[])]),
        ),
        (
            "several profiles hold properties",
            "[profile foo]\nname = value\n[profile bar]\nname2 = value2",
            "",
            Reads(&[
                ("foo", &[("name", "value")]),
                ("bar", &[("name2", "value2")]),
            ]),
        ),
        (
            "blank lines are ignored",
            "\t \n[profile foo]\n\t\n \nname = value\n\t \n[profile bar]\n \t",
            "",
            Reads(&[("foo", &[("name", "value")]), ("bar", &[])]),
        ),
        (
            "# comments are ignored",
            "# Comment\n[profile foo] # Comment\nname = value # Comment with # sign",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "; comments are ignored",
            "; Comment\n[profile foo] ; Comment\nname = value ; Comment with ; sign",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "both comment signs together",
            "# Comment\n[profile foo] ; Comment\nname = value # Comment with ; sign",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "comments may be empty",
            ";\n[profile foo];\nname = value ;\n",
            "",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "comments may touch a profile header",
            "[profile foo]; Adjacent semicolons\n[profile bar]# Adjacent pound signs",
            "",
            Reads(&[("foo", &[]), ("bar", &[])]),
        ),
        (
            "comment signs touching a value are part of it",
            "[profile foo]\nname = value; Adjacent semicolons\nname2 = value# Adjacent pound signs",
            "",
            Reads(&[(
                "foo",
                &[
                    ("name", "value; Adjacent semicolons"),
                    ("name2", "value# Adjacent pound signs"),
                ],
            )]),
        ),
        (
            "a value continues on an indented line",
            "[profile foo]\nname = value\n -continued",
            "",
            Reads(&[("foo", &[("name", "value\n-continued")])]),
        ),
        (
            "a value continues on several lines",
            "[profile foo]\nname = value\n -continued\n -and-continued",
            "",
            Reads(&[("foo", &[("name", "value\n-continued\n-and-continued")])]),
        ),
        (
            "continuations are trimmed",
            "[profile foo]\nname = value\n \t -continued \t ",
            "",
            Reads(&[("foo", &[("name", "value\n-continued")])]),
        ),
        (
            "continuations keep # comments",
            "[profile foo]\nname = value\n -continued # Comment",
            "",
            Reads(&[("foo", &[("name", "value\n-continued # Comment")])]),
        ),
        (
            "continuations keep ; comments",
            "[profile foo]\nname = value\n -continued ; Comment",
            "",
            Reads(&[("foo", &[("name", "value\n-continued ; Comment")])]),
        ),
        (
            "a continuation needs a profile",
            " -continued",
            "",
            Fails("expected a profile definition"),
        ),
        (
            "a continuation needs a property",
            "[profile foo]\n -continued",
            "",
            Fails("expected a property definition"),
        ),
        (
            "a profile header ends a continuation",
            "[profile foo]\nname = value\n[profile foo]\n -continued",
            "",
            Fails("expected a property definition, found a continuation"),
        ),
        (
            "a profile twice in one file merges",
            "[profile foo]\nname = value\n[profile foo]\nname2 = value2",
            "",
            Reads(&[("foo", &[("name", "value"), ("name2", "value2")])]),
        ),
        (
            "the last of a key twice wins",
            "[profile foo]\nname = value\nname = value2",
            "",
            Reads(&[("foo", &[("name", "value2")])]),
        ),
        (
            "the last of a key twice wins across sections",
            "[profile foo]\nname = value\n[profile foo]\nname = value2",
            "",
            Reads(&[("foo", &[("name", "value2")])]),
        ),
        (
            "keys are case-insensitive",
            "[profile foo]\nName = value\n[profile foo]\nname = value2",
            "",
            Reads(&[("foo", &[("name", "value2")])]),
        ),
        (
            "[profile default] beats [default] written after it",
            "[profile default]\nname = value\n[default]\nname2 = value2",
            "",
            Reads(&[("default", &[("name", "value")])]),
        ),
        (
            "[profile default] beats [default] written before it",
            "[default]\nname2 = value2\n[profile default]\nname = value",
            "",
            Reads(&[("default", &[("name", "value")])]),
        ),
        (
            "invalid profile names are ignored",
            "[profile in valid]\nname = value",
            "[in valid 2]\nname2 = value2",
            Reads(&[]),
        ),
        (
            "invalid keys are ignored",
            "[profile foo]\nin valid = value",
            "",
            Reads(&[("foo", &[])]),
        ),
        (
            "every valid profile name character",
            "[profile ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_]",
            "",
            Reads(&[(
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                &[],
            )]),
        ),
        (
            "every valid key character, read in lower case",
            "[profile foo]\nABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_ = value",
            "",
            Reads(&[(
                "foo",
                &[(
                    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz0123456789-_",
                    "value",
                )],
            )]),
        ),
        (
            "a property may hold sub-properties",
            "[profile foo]\ns3 =\n name = value",
            "",
            Reads(&[("foo", &[("s3", "\nname = value")])]),
        ),
        (
            "a sub-property needs =",
            "[profile foo]\ns3 =\n invalid",
            "",
            Fails("'=' sign defining a sub-property"),
        ),
        (
            "a sub-property may be empty",
            "[profile foo]\ns3 =\n name =",
            "",
            Reads(&[("foo", &[("s3", "\nname =")])]),
        ),
        (
            "a sub-property needs a name",
            "[profile foo]\ns3 =\n = value",
            "",
            Fails("has no name"),
        ),
        (
            "a sub-property's name is not checked",
            "[profile foo]\ns3 =\n in valid = value",
            "",
            Reads(&[("foo", &[("s3", "\nin valid = value")])]),
        ),
        (
            "blank lines among sub-properties are ignored",
            "[profile foo]\ns3 =\n name = value\n\t \n name2 = value2",
            "",
            Reads(&[("foo", &[("s3", "\nname = value\nname2 = value2")])]),
        ),
        (
            "a profile in both files merges",
            "[profile foo]\nname = value",
            "[foo]\nname2 = value2",
            Reads(&[("foo", &[("name", "value"), ("name2", "value2")])]),
        ),
        (
            "[default] is left out wherever it is among [profile default]",
            "[profile default]\nname = value\n[default]\nname2 = value2\n[profile default]\nname3 = value3",
            "",
            Reads(&[("default", &[("name", "value"), ("name3", "value3")])]),
        ),
        (
            "mixed default sections still merge with credentials",
            "[profile default]\nname = value\n[default]\nname2 = value2\n[profile default]\nname3 = value3",
            "[default]\nsecret=foo",
            Reads(&[(
                "default",
                &[("name", "value"), ("name3", "value3"), ("secret", "foo")],
            )]),
        ),
        (
            "the credentials file wins for a key in both",
            "[profile foo]\nname = value",
            "[foo]\nname = value2",
            Reads(&[("foo", &[("name", "value2")])]),
        ),
        (
            "[NAME] in the config file is ignored",
            "[foo]\nname = value",
            "",
            Reads(&[]),
        ),
        (
            "[profile NAME] in the credentials file is ignored",
            "",
            "[profile foo]\nname = value",
            Reads(&[]),
        ),
        (
            "profile needs a space before the name",
            "[profilefoo]\nname = value\n[profile bar]",
            "",
            Reads(&[("bar", &[])]),
        ),
        (
            "spaces inside the brackets",
            "[   profile foo    ]\nname = value\n[profile bar]",
            "",
            Reads(&[("bar", &[]), ("foo", &[("name", "value")])]),
        ),
        (
            "spaces inside the brackets in credentials",
            "",
            "[   foo    ]\nname = value\n[profile bar]",
            Reads(&[("foo", &[("name", "value")])]),
        ),
        (
            "the properties of an invalid profile are ignored",
            "[profile foo]\nname = value\n[profile in valid]\nx = 1\n[profile bar]\nname = value2",
            "",
            Reads(&[
                ("bar", &[("name", "value2")]),
                ("foo", &[("name", "value")]),
            ]),
        ),
        (
            "sso-session sections are no profiles",
            "[sso-session foo]\nname = value\n[profile bar]",
            "",
            Reads(&[("bar", &[])]),
        ),
        (
            "sso-sessionNAME in credentials is a profile",
            "",
            "[sso-sessionfoo]\nname = value\n[bar]",
            Reads(&[("sso-sessionfoo", &[("name", "value")]), ("bar", &[])]),
        ),
    ];

    #[test]
    fn reads_the_files_as_the_aws_sdks_do() {
        for (what, config, credentials, expected) in SUITE {
            let read = parse(config, File::Config).and_then(|mut config| {
                sso_sessions(&mut config);
                Ok(join(config, parse(credentials, File::Credentials)?))
            });
            match (expected, read) {
                (Reads(profiles), Ok(read)) => {
                    let expected: Profiles = profiles
                        .iter()
                        .map(|(name, values)| {
                            let values = values.iter().map(|(k, v)| (k.to_string(), v.to_string()));
                            (name.to_string(), values.collect())
                        })
                        .collect();
                    assert_eq!(read, expected, "{what}");
                }
                (Fails(message), Err(error)) => {
                    assert!(error.contains(message), "{what}: {error}");
                }
                (Reads(_), Err(error)) => panic!("{what}: {error}"),
                (Fails(message), Ok(read)) => panic!("{what}: {read:?}, not {message}"),
            }
        }
    }

    #[test]
    fn sso_session_sections_are_kept_apart() {
        let mut config = parse(
            "[sso-session corp]\nsso_region = eu-west-1\n[profile dev]\nsso_session = corp\n",
            File::Config,
        )
        .unwrap();
        let sessions = sso_sessions(&mut config);
        assert_eq!(sessions["corp"]["sso_region"], "eu-west-1");
        assert_eq!(config.keys().collect::<Vec<_>>(), ["dev"]);
    }

    #[test]
    fn an_error_names_the_line() {
        let error = parse("[default]\nregion = x\nregion\n", File::Config).unwrap_err();
        assert!(error.starts_with("line 3: "), "{error}");
    }

    #[test]
    fn profile_joins_both_files() {
        let dir = std::env::temp_dir().join(format!("s3wal-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (credentials, config) = (dir.join("credentials"), dir.join("config"));
        std::fs::write(
            &config,
            "[profile onprem]\nregion = us-east-1\ns3 =\n  addressing_style = path\n",
        )
        .unwrap();
        std::fs::write(&credentials, "[onprem]\naws_access_key_id=AK2\n").unwrap();
        let (profile, _) = load("onprem", &credentials, &config, true).unwrap();
        assert_eq!(profile.get("aws_access_key_id"), Some("AK2"));
        assert_eq!(profile.get("region"), Some("us-east-1"));
        assert_eq!(profile.get("addressing_style"), None, "a sub-property");
        assert!(load("nope", &credentials, &config, true).is_err());
        let (optional, _) = load("nope", &credentials, &config, false).unwrap();
        assert_eq!(optional, Profile::default());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
