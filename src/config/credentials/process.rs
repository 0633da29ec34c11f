//! `credential_process`: a command (aws-vault, `aws configure
//! export-credentials`, a vault helper) that prints credentials as JSON.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Fetched, from_json};

/// The words of a command line, split as a POSIX shell splits them
/// (quotes and backslashes; no variables, globs or pipes: the command is
/// run without a shell).
pub(super) fn split(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => words.extend(word.take()),
            '\'' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("an unclosed ' in credential_process".into()),
                    }
                }
            }
            '"' => {
                let word = word.get_or_insert_with(String::new);
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => word.extend(['\\', c]),
                            None => return Err("an unclosed \" in credential_process".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("an unclosed \" in credential_process".into()),
                    }
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(c) => word.get_or_insert_with(String::new).push(c),
                None => return Err("a trailing \\ in credential_process".into()),
            },
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    match words.is_empty() {
        true => Err("credential_process is empty".into()),
        false => Ok(words),
    }
}

/// The last line of the command's stderr, cut short and without any
/// word that looks like a key or token: it explains a failure, but may
/// hold a secret, so it is never shown whole.
fn last_words(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    // A run of 16 key-like characters anywhere in a word hides it whole:
    // `"wJalr…"`, `{"SecretAccessKey":"…"}` and `token='…'` alike.
    let secret_like = |word: &str| {
        word.split(|c: char| !(c.is_ascii_alphanumeric() || "+/=_-.".contains(c)))
            .any(|run| run.len() >= 16)
    };
    let words: Vec<&str> = line
        .split_whitespace()
        .map(|word| if secret_like(word) { "[hidden]" } else { word })
        .collect();
    let short: String = words.join(" ").chars().take(200).collect();
    match short.is_empty() {
        true => String::new(),
        false => format!(": {short}"),
    }
}

/// The most output read from a credential process, each stream.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// Runs `command` (split with [`split`]), waiting at most `timeout`, and
/// reads its credentials.
pub(super) fn fetch(command: &str, timeout: Duration) -> Result<Fetched, String> {
    let words = split(command)?;
    let program = &words[0];
    let mut child = Command::new(program)
        .args(&words[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    // Read on threads of their own, at most MAX_OUTPUT bytes each, and
    // handed over a channel: a helper that leaves a background process
    // holding its pipes open must not hold s3wal past --timeout.
    let (sender, received) = std::sync::mpsc::channel();
    let reader = |which: bool, pipe: Box<dyn Read + Send>| {
        let sender = sender.clone();
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.take(MAX_OUTPUT).read_to_end(&mut bytes);
            let _ = sender.send((which, bytes));
        });
    };
    if let Some(pipe) = child.stdout.take() {
        reader(true, Box::new(pipe));
    }
    if let Some(pipe) = child.stderr.take() {
        reader(false, Box::new(pipe));
    }
    drop(sender);
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{program} did not finish within {} s (--timeout)",
                    timeout.as_secs()
                ));
            }
            Err(e) => return Err(format!("cannot wait for {program}: {e}")),
        }
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let left = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(100));
        match received.recv_timeout(left) {
            Ok((true, bytes)) => stdout = bytes,
            Ok((false, bytes)) => stderr = bytes,
            Err(_) => break,
        }
    }
    if !status.success() {
        return Err(format!(
            "{program} failed ({status}){}",
            last_words(&stderr)
        ));
    }
    let json = super::json::parse(&stdout).map_err(|e| format!("{program} printed {e}"))?;
    match json.get("Version") {
        Some(super::json::Json::Number(version)) if version == "1" => {}
        _ => return Err(format!("{program} printed no \"Version\": 1")),
    }
    from_json(&stdout, "SessionToken").map_err(|e| format!("{program} printed {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_a_shell_does() {
        let cases: &[(&str, &[&str])] = &[
            (
                "aws-vault export --format=json dev",
                &["aws-vault", "export", "--format=json", "dev"],
            ),
            (
                "'/opt/my tools/get' \"a b\" c\\ d",
                &["/opt/my tools/get", "a b", "c d"],
            ),
            ("x \"q\\\"q\" 'it''s'", &["x", "q\"q", "its"]),
            ("  spaced\t\tout  ", &["spaced", "out"]),
            ("e ''", &["e", ""]),
        ];
        for (line, words) in cases {
            assert_eq!(split(line).unwrap(), *words, "{line}");
        }
        assert!(split("a 'open").is_err());
        assert!(split("   ").is_err());
    }

    #[test]
    fn stderr_is_cut_to_its_last_line() {
        assert_eq!(last_words(b"noise\nreal reason\n\n"), ": real reason");
        assert_eq!(last_words(b""), "");
        assert_eq!(
            last_words(b"bad key wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            ": bad key [hidden]"
        );
    }

    #[test]
    fn a_secret_inside_quotes_or_json_is_hidden_too() {
        let key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        for line in [
            format!("\"{key}\""),
            format!("{{\"SecretAccessKey\":\"{key}\"}}"),
            format!("secret:{key}"),
            format!("token='{key}'"),
        ] {
            let shown = last_words(line.as_bytes());
            assert!(!shown.contains("wJalr"), "{shown}");
        }
    }

    #[test]
    fn a_helper_that_leaves_its_pipes_open_is_not_waited_for() {
        // The shell exits at once; its background sleep keeps stdout open.
        let started = Instant::now();
        let error = fetch("sh -c 'sleep 30 & exit 1'", Duration::from_secs(1)).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(error.contains("failed"), "{error}");
    }
}
