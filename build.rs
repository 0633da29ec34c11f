//! Names the build for `s3wal --version`: `S3WAL_COMMIT`, the commit the
//! source is from, and `S3WAL_TARGET`, the target it is built for.
//!
//! The commit comes from the `COMMIT` file that `make dist` puts in the
//! vendored source tarball (which has no `.git`), else from git, else it is
//! `unknown`: a build never fails for want of either.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=COMMIT");
    let commit = match std::fs::read_to_string("COMMIT") {
        Ok(text) => Some(text.trim().to_owned()),
        Err(_) => from_git(),
    };
    let commit = commit.filter(|c| !c.is_empty());
    println!(
        "cargo:rustc-env=S3WAL_COMMIT={}",
        commit.as_deref().unwrap_or("unknown")
    );
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=S3WAL_TARGET={target}");
}

/// The short hash of HEAD, and the files to watch for a new one (a
/// worktree's HEAD lives outside the checkout: git names where).
fn from_git() -> Option<String> {
    let git = |args: &[&str]| -> Option<String> {
        let out = Command::new("git").args(args).output().ok()?;
        let text = String::from_utf8(out.stdout).ok()?;
        out.status.success().then(|| text.trim().to_owned())
    };
    for watched in ["HEAD", "logs/HEAD"] {
        let path = git(&["rev-parse", "--git-path", watched])?;
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    git(&["rev-parse", "--short=7", "HEAD"])
}
