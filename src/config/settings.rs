//! The table of settings: one entry a setting, saying everything about it
//! that is not how its value is used (its flag, its environment variables
//! in the order they win, its profile key, its default, its help line).
//!
//! The entry drives every place a setting used to be written again: the
//! command line's parser ([`Flags::take`]), the order of precedence and the
//! source of each value (`resolve`), the order of
//! `doctor`'s listing, `s3wal --help` ([`help_lines`], [`variables`]), and
//! the README's table, which a test holds against this one. A new setting
//! is an entry here and the few lines of `resolve` that use its value.

use crate::log::wal::DEFAULT_PARALLEL;
use crate::s3::RetryPolicy;

/// One setting.
#[derive(Debug)]
pub struct Setting {
    /// Its name, as `doctor` shows it and the README's table lists it.
    pub name: &'static str,
    /// Its flag, if the command line can give it.
    pub flag: Option<Flag>,
    /// The environment variables that give it, the first one set winning
    /// (`AWS_REGION` before botocore's `AWS_DEFAULT_REGION`).
    pub env: &'static [&'static str],
    /// The key of the `~/.aws` profile that gives it, after the
    /// environment.
    pub profile: Option<&'static str>,
    /// What it is when nothing gives it.
    pub default: Fallback,
}

/// A setting's flag on the command line.
#[derive(Debug)]
pub struct Flag {
    /// As typed: `--bucket`.
    pub name: &'static str,
    /// What follows it.
    pub form: Form,
    /// What `--help` says of it, before the environment and default.
    pub help: &'static str,
    /// The Go seed took it with one dash too (`-bucket`), and scripts
    /// written for the seed still do.
    pub seed: bool,
    /// Other spellings it answers to: `--endpoint-url`, as aws CLI and
    /// s5cmd spell `--endpoint`.
    pub also: &'static [&'static str],
}

impl Flag {
    /// Whether `arg` spells this flag.
    pub fn answers_to(&self, arg: &str) -> bool {
        self.name == arg || self.also.contains(&arg)
    }
}

/// What follows a flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Nothing: the flag alone turns the setting on.
    Switch,
    /// A text; an empty one counts as not given, as an empty variable does.
    Text,
    /// A path; an empty one is a path too.
    Path,
    /// A whole number from 0 to this.
    Whole(u64),
}

/// What a setting is when nothing gives it.
#[derive(Debug, Clone, Copy)]
pub enum Fallback {
    /// Nothing: it is required, off, or shown as its absence.
    None,
    /// This value (a function: some are the library's constants).
    Value(fn() -> String),
    /// Worked out from other settings, as this says.
    Derived(&'static str),
}

/// `value` given to `flag` as a whole number from 0 to `max`, in argh's
/// words where it is not one.
pub fn whole(flag: &str, value: &str, max: u64) -> Result<u64, String> {
    let number = value.parse::<u64>().map_err(|e| e.to_string());
    number
        .and_then(|n| match n <= max {
            true => Ok(n),
            false => Err("number too large to fit in target type".to_owned()),
        })
        .map_err(|why| format!("Error parsing option '{flag}' with value '{value}': {why}"))
}

/// Declares each setting as a constant and [`SETTINGS`] as all of them,
/// in the order `doctor` lists them: one entry, one place.
macro_rules! table {
    ($($(#[$doc:meta])* $id:ident = $setting:expr;)*) => {
        $($(#[$doc])* pub const $id: &Setting = &$setting;)*
        /// Every setting, in the order `doctor`, `--help` and the README
        /// list them.
        pub const SETTINGS: &[&Setting] = &[$($id),*];
    };
}

table! {
    /// The bucket holding the log: required.
    BUCKET = Setting {
        name: "bucket",
        flag: Some(Flag {
            name: "--bucket",
            form: Form::Text,
            help: "bucket holding the log",
            seed: true,
            also: &[],
        }),
        env: &["AWS_BUCKET_NAME"],
        profile: None,
        default: Fallback::None,
    };
    /// The log's folder in the bucket: required.
    PREFIX = Setting {
        name: "prefix",
        flag: Some(Flag {
            name: "--prefix",
            form: Form::Text,
            help: "folder of the log in the bucket",
            seed: true,
            also: &[],
        }),
        env: &["AWS_PREFIX"],
        profile: None,
        default: Fallback::None,
    };
    /// As aws CLI (v2) and the SDKs: `AWS_REGION`, then botocore's
    /// `AWS_DEFAULT_REGION`, then the profile's `region`.
    REGION = Setting {
        name: "region",
        flag: Some(Flag {
            name: "--region",
            form: Form::Text,
            help: "signing region",
            seed: true,
            also: &[],
        }),
        env: &["AWS_REGION", "AWS_DEFAULT_REGION"],
        profile: Some("region"),
        default: Fallback::Value(|| "us-east-1".to_owned()),
    };
    /// A custom endpoint; without one, AWS's for the region.
    ENDPOINT = Setting {
        name: "endpoint",
        flag: Some(Flag {
            name: "--endpoint",
            form: Form::Text,
            help: "S3 endpoint URL for MinIO, Ceph and the like",
            seed: false,
            also: &["--endpoint-url"],
        }),
        env: &["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"],
        profile: Some("endpoint_url"),
        default: Fallback::None,
    };
    /// AWS's FIPS endpoint; shown only when asked for.
    FIPS = Setting {
        name: "FIPS endpoint",
        flag: None,
        env: &["AWS_USE_FIPS_ENDPOINT"],
        profile: Some("use_fips_endpoint"),
        default: Fallback::None,
    };
    /// AWS's dual-stack endpoint; shown only when asked for.
    DUALSTACK = Setting {
        name: "dual-stack endpoint",
        flag: None,
        env: &["AWS_USE_DUALSTACK_ENDPOINT"],
        profile: Some("use_dualstack_endpoint"),
        default: Fallback::None,
    };
    /// Path-style or virtual-hosted addressing.
    ADDRESSING = Setting {
        name: "addressing",
        flag: Some(Flag {
            name: "--path-style",
            form: Form::Switch,
            help: "address buckets as endpoint/bucket (the default for non-AWS endpoints)",
            seed: false,
            also: &[],
        }),
        env: &[],
        profile: None,
        default: Fallback::None,
    };
    /// The keys: the credentials module reads these three together, never
    /// one from another layer, and after them the other providers.
    CREDENTIALS = Setting {
        name: "credentials",
        flag: None,
        env: &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"],
        profile: None,
        default: Fallback::None,
    };
    /// The profile every profile key is read from.
    PROFILE = Setting {
        name: "profile",
        flag: Some(Flag {
            name: "--profile",
            form: Form::Text,
            help: "profile of ~/.aws/credentials and ~/.aws/config to use",
            seed: false,
            also: &[],
        }),
        env: &["AWS_PROFILE"],
        profile: None,
        default: Fallback::Value(|| "default".to_owned()),
    };
    /// The CAs an HTTPS endpoint is verified with.
    CA_BUNDLE = Setting {
        name: "CA bundle",
        flag: Some(Flag {
            name: "--ca-bundle",
            form: Form::Path,
            help: "PEM bundle of the CAs to trust for an HTTPS endpoint, instead of the system's",
            seed: false,
            also: &[],
        }),
        env: &["AWS_CA_BUNDLE"],
        profile: Some("ca_bundle"),
        default: Fallback::None,
    };
    /// The proxy: `proxy_for` picks among these by the endpoint's scheme
    /// (and their lower-case spellings), `NO_PROXY` exempting hosts.
    PROXY = Setting {
        name: "proxy",
        flag: None,
        env: &["HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY"],
        profile: None,
        default: Fallback::None,
    };
    /// The folder of the local lock, tail hint and remembered region.
    LOCK_DIR = Setting {
        name: "lock folder",
        flag: Some(Flag {
            name: "--lock-dir",
            form: Form::Path,
            help: "folder of the local append locks",
            seed: false,
            also: &[],
        }),
        env: &["S3WAL_LOCK_DIR"],
        profile: None,
        default: Fallback::Derived("~/.local/state/s3wal/locks"),
    };
    /// How often a failing request is retried.
    RETRIES = Setting {
        name: "retries",
        flag: Some(Flag {
            name: "--retries",
            form: Form::Whole(u32::MAX as u64),
            help: "retries of a request that failed for a transient reason",
            seed: false,
            also: &[],
        }),
        env: &[],
        profile: None,
        default: Fallback::Value(|| RetryPolicy::default().retries.to_string()),
    };
    /// How long a connection may be silent, and a request retried.
    TIMEOUT = Setting {
        name: "timeout",
        flag: Some(Flag {
            name: "--timeout",
            form: Form::Whole(u64::MAX),
            help: "longest a connection may make no progress, in seconds, and how long a \
                   failing request is retried; a slow transfer that keeps moving is never cut off",
            seed: false,
            also: &[],
        }),
        env: &[],
        profile: None,
        default: Fallback::Value(|| RetryPolicy::default().timeout.as_secs().to_string()),
    };
    /// How many GETs `dump` and `verify` keep in flight.
    PARALLEL = Setting {
        name: "parallel",
        flag: Some(Flag {
            name: "--parallel",
            form: Form::Whole(usize::MAX as u64),
            help: "GETs in flight at most while dump and verify read records, 1 to 256",
            seed: false,
            also: &[],
        }),
        env: &[],
        profile: None,
        default: Fallback::Value(|| DEFAULT_PARALLEL.to_string()),
    };
    /// Append where the store ignores `If-None-Match`; `doctor` does not
    /// list it (its conditional PUT check says what it means).
    UNSAFE_STORE = Setting {
        name: "unsafe store",
        flag: Some(Flag {
            name: "--allow-unsafe-store",
            form: Form::Switch,
            help: "append even if the store ignores If-None-Match (see doctor): concurrent \
                   appenders can then overwrite each other",
            seed: false,
            also: &[],
        }),
        env: &[],
        profile: None,
        default: Fallback::None,
    };
    /// The lease fences are held by.
    LEASE = Setting {
        name: "lease",
        flag: Some(Flag {
            name: "--lease",
            form: Form::Whole(u64::MAX),
            help: "seconds a truncate or trim holds its fence between renewals, and after which \
                   a dead machine's fence is taken over, 2 to 3600",
            seed: false,
            also: &[],
        }),
        env: &["S3WAL_LEASE"],
        profile: None,
        default: Fallback::Value(|| crate::DEFAULT_LEASE.as_secs().to_string()),
    };
    /// Take over dead machines' fences where the store does not refuse
    /// expired requests.
    UNSAFE_TAKEOVER = Setting {
        name: "unsafe takeover",
        flag: Some(Flag {
            name: "--allow-unsafe-takeover",
            form: Form::Switch,
            help: "take over a dead machine's fence even on a store that does not refuse expired \
                   requests (see doctor): unsafe if it is only paused",
            seed: false,
            also: &[],
        }),
        env: &["S3WAL_ALLOW_UNSAFE_TAKEOVER"],
        profile: None,
        default: Fallback::None,
    };
}

/// Settings given on the command line, as typed (a switch as `true`).
#[derive(Debug, Clone, Default)]
pub struct Flags {
    given: Vec<(&'static str, String)>,
}

impl Flags {
    /// These flags and `setting` given as `value`: how a library gives
    /// what the command line would.
    pub fn with(mut self, setting: &'static Setting, value: &str) -> Flags {
        self.given.push((setting.name, value.to_owned()));
        self
    }

    /// Reads `arg` if it is the flag of a setting, and its value from
    /// `rest`: `Ok(false)` if it is none; an error in argh's words if the
    /// value is missing, malformed or given twice.
    pub fn take<'a>(
        &mut self,
        arg: &str,
        rest: &mut impl Iterator<Item = &'a str>,
    ) -> Result<bool, String> {
        let Some((setting, flag)) = SETTINGS
            .iter()
            .find_map(|s| Some((s, s.flag.as_ref().filter(|f| f.answers_to(arg))?)))
        else {
            return Ok(false);
        };
        let value = match flag.form {
            Form::Switch => "true".to_owned(),
            form => {
                let value = rest
                    .next()
                    .ok_or_else(|| format!("No value provided for option '{arg}'."))?;
                if self.given(setting).is_some() {
                    return Err(format!(
                        "Error parsing option '{arg}' with value '{value}': duplicate values provided"
                    ));
                }
                match form {
                    Form::Whole(max) => whole(arg, value, max)?.to_string(),
                    _ => value.to_owned(),
                }
            }
        };
        self.given.push((setting.name, value));
        Ok(true)
    }

    /// What the command line gave `setting`, as typed.
    pub fn given(&self, setting: &Setting) -> Option<&str> {
        let found = self.given.iter().find(|(name, _)| *name == setting.name);
        found.map(|(_, value)| value.as_str())
    }
}

/// Each flag and its help line, in the table's order: the line ends with
/// the variables, profile key and default that stand in for the flag.
pub fn help_lines() -> impl Iterator<Item = (&'static Flag, String)> {
    SETTINGS.iter().filter_map(|setting| {
        let flag = setting.flag.as_ref()?;
        let env = setting.env.iter().map(|name| match flag.form {
            Form::Switch => format!("{name}=true"),
            _ => (*name).to_owned(),
        });
        let env: Vec<String> = env.collect();
        let mut notes: Vec<String> = flag.also.iter().map(|name| format!("or {name}")).collect();
        if !env.is_empty() {
            notes.push(format!("env {}", env.join(", ")));
        }
        notes.extend(setting.profile.map(|key| format!("profile key {key}")));
        match setting.default {
            Fallback::None => {}
            Fallback::Value(value) => notes.push(format!("default {}", value())),
            Fallback::Derived(text) => notes.push(format!("default {text}")),
        }
        let line = match notes.is_empty() {
            true => flag.help.to_owned(),
            false => format!("{} ({})", flag.help, notes.join("; ")),
        };
        Some((flag, line))
    })
}

/// Every environment variable of the table, in its order.
pub fn variables() -> impl Iterator<Item = &'static str> {
    SETTINGS
        .iter()
        .flat_map(|setting| setting.env.iter().copied())
}

/// `--name` as the Go seed also spelled it, `-name`, if it did.
pub fn seed_flag(arg: &str) -> Option<&'static str> {
    SETTINGS.iter().find_map(|setting| {
        let flag = setting.flag.as_ref().filter(|f| f.seed)?;
        (flag.name.strip_prefix('-') == Some(arg)).then_some(flag.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_flags_are_unique() {
        for (i, a) in SETTINGS.iter().enumerate() {
            for b in &SETTINGS[i + 1..] {
                assert_ne!(a.name, b.name);
                let flag = |s: &Setting| s.flag.as_ref().map(|f| f.name);
                assert!(flag(a).is_none() || flag(a) != flag(b), "{}", a.name);
            }
        }
    }

    /// The cells of the README's settings table: name, flag, variables,
    /// profile key (the default is prose).
    fn readme_rows() -> Vec<[String; 4]> {
        let readme = include_str!("../../README.md");
        let table = readme
            .split("## Configuration")
            .nth(1)
            .expect("a Configuration section");
        let ticked = |cell: &str| -> Vec<String> {
            cell.split('`')
                .skip(1)
                .step_by(2)
                .filter(|word| {
                    word.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
                })
                .map(str::to_owned)
                .collect()
        };
        let code = |cell: &str| match cell.contains('`') {
            true => cell.trim_matches('`').to_owned(),
            false => String::new(),
        };
        table
            .lines()
            .skip_while(|line| !line.starts_with("| setting |"))
            .skip(2)
            .take_while(|line| line.starts_with('|'))
            .map(|line| {
                let cells: Vec<&str> = line.split('|').skip(1).map(str::trim).collect();
                [
                    cells[0].to_owned(),
                    code(cells[1]),
                    ticked(cells[2]).join(" "),
                    code(cells[3]),
                ]
            })
            .collect()
    }

    #[test]
    fn the_readme_lists_every_setting_as_the_table_does() {
        let expected: Vec<[String; 4]> = SETTINGS
            .iter()
            .map(|s| {
                [
                    s.name.to_owned(),
                    s.flag.as_ref().map_or("", |f| f.name).to_owned(),
                    s.env.join(" "),
                    s.profile.unwrap_or_default().to_owned(),
                ]
            })
            .collect();
        assert_eq!(readme_rows(), expected);
    }
}
