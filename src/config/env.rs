//! The environment in two layers: the process's variables over those of
//! `./.env`, each value found with the layer it came from.

use std::collections::HashMap;
use std::path::Path;

use super::Source;
use crate::error::{Error, Result};

/// Environment variables in two layers: the process's, then `./.env`'s.
#[derive(Clone, Default)]
pub struct Env {
    /// Process first: a `.env` value never overrides a variable that is
    /// already set, as in the seed.
    layers: [HashMap<String, String>; 2],
}

/// The names only: values hold secrets and session tokens.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.layers.iter().flat_map(HashMap::keys).collect();
        names.sort_unstable();
        names.dedup();
        f.debug_struct("Env").field("names", &names).finish()
    }
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
        self.layers.iter().find_map(|layer| non_empty(layer, name))
    }

    /// The value of the first of `names` that is set, and where it was
    /// set, looking through the whole process environment before `.env`:
    /// an exported `AWS_ENDPOINT_URL` beats `AWS_ENDPOINT_URL_S3` from
    /// `.env`.
    pub(super) fn first_of(&self, names: &[&'static str]) -> Option<(&str, Source)> {
        self.layers.iter().zip(LAYERS).find_map(|(layer, source)| {
            names
                .iter()
                .find_map(|name| Some((non_empty(layer, name)?, source(name))))
        })
    }

    /// The variables of the one layer that sets `name`, and that
    /// variable's source: settings that go together (an access key, its
    /// secret and its token) are taken from one layer, never mixed.
    pub(super) fn layer_setting<'a>(
        &'a self,
        name: &'static str,
    ) -> Option<(impl Fn(&str) -> Option<&'a str> + 'a, Source)> {
        let (layer, source) = self
            .layers
            .iter()
            .zip(LAYERS)
            .find(|(layer, _)| non_empty(layer, name).is_some())?;
        Some((move |key: &str| non_empty(layer, key), source(name)))
    }
}

/// How each layer names where its values came from.
const LAYERS: [fn(&'static str) -> Source; 2] = [Source::Env, Source::DotEnv];

/// A layer's value of `name`; an empty value counts as unset.
fn non_empty<'a>(layer: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    layer
        .get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_never_overrides_the_process_environment() {
        let env = Env::new(
            [("AWS_REGION".to_owned(), "eu-west-1".to_owned())],
            parse_dotenv("AWS_REGION=us-west-2\nAWS_PREFIX=wal\n"),
        );
        assert_eq!(env.get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(
            env.first_of(&["AWS_PREFIX"]),
            Some(("wal", Source::DotEnv("AWS_PREFIX")))
        );
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
}
