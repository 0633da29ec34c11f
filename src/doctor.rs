//! `doctor`: can this machine use this log safely?
//!
//! First the configuration, each setting with where it came from (the
//! answer to "why is it talking to that endpoint?"); then three checks,
//! in the order a user would fix them: the credentials and the bucket
//! (one listing), the clock (the listing's `Date`), and whether the store
//! honours `If-None-Match: *` (two conditional PUTs of a scratch key,
//! then a delete).

use std::time::Duration;

use crate::config::Origin;
use crate::config::settings::REGION;
use crate::error::{Error, ProtocolKind, Result};
use crate::local::Conditional;
use crate::log::wal::Wal;
use crate::s3::Client;
use crate::store::Store;

/// How far the local clock may drift before doctor calls it a problem.
/// S3 refuses signatures more than 15 minutes off.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What was checked.
    pub check: &'static str,
    /// Whether it passed.
    pub ok: bool,
    /// What was seen.
    pub detail: String,
}

/// How far `local` is from `server` (seconds since the Unix epoch), as a
/// finding.
pub fn judge_clock(local: i64, server: Option<i64>) -> Finding {
    let Some(server) = server else {
        return Finding {
            check: "clock",
            ok: true,
            detail: "the store sent no Date header; not checked".into(),
        };
    };
    let skew = (local - server).unsigned_abs();
    let direction = if local > server { "ahead of" } else { "behind" };
    let ok = skew <= MAX_CLOCK_SKEW.as_secs();
    Finding {
        check: "clock",
        ok,
        detail: format!(
            "{skew} s {direction} the store's clock (to the second){}",
            if ok {
                ""
            } else {
                "; S3 refuses requests signed over 15 minutes off"
            }
        ),
    }
}

/// The local clock, in seconds since the Unix epoch.
fn unix_now() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A finding for `check` from what it found or the error it met.
fn finding(check: &'static str, outcome: Result<String>) -> Finding {
    match outcome {
        Ok(detail) => Finding {
            check,
            ok: true,
            detail,
        },
        Err(error) => Finding {
            check,
            ok: false,
            detail: error.to_string(),
        },
    }
}

/// The settings the log was opened with, each with its source (a flag,
/// an environment variable, `.env`, a profile or the default), in the
/// order of the settings' table; never a secret.
pub fn configuration(origins: &[Origin]) -> Finding {
    let shown: Vec<String> = origins.iter().map(Origin::to_string).collect();
    Finding {
        check: "configuration",
        ok: true,
        detail: shown.join(", "),
    }
}

/// The configuration `origins`, then every check against the log; the
/// checks stop after the first when the store cannot be reached at all.
/// Last, the region S3 named for the bucket, if it is not the one
/// configured.
pub fn diagnose(wal: &Wal<Client>, origins: &[Origin]) -> Vec<Finding> {
    let mut findings = vec![configuration(origins)];
    findings.extend(check(wal));
    let configured = origins.iter().find(|o| o.setting == REGION.name);
    findings.extend(configured.and_then(|o| judge_region(&o.value, &wal.store().region())));
    findings
}

/// A finding if the checks ended up signing for another region than the
/// `configured` one: S3 said the bucket is there.
pub fn judge_region(configured: &str, used: &str) -> Option<Finding> {
    (configured != used).then(|| Finding {
        check: "region",
        ok: true,
        detail: format!(
            "S3 said the bucket is in {used}, not {configured}: requests went there, and \
             will from now on (remembered beside the lock)"
        ),
    })
}

/// The checks against the store.
fn check(wal: &Wal<Client>) -> Vec<Finding> {
    let list_prefix = wal.prefix().list_prefix();
    let bucket = wal.store().bucket().to_owned();
    let credentials = || {
        let expiry = match wal.store().credentials_expire() {
            Some(expires) => format!("; the credentials expire at {expires} (renewed before)"),
            None => String::new(),
        };
        finding(
            "credentials and bucket",
            Ok(format!("bucket {bucket}{expiry}")),
        )
    };
    let mut findings = match wal.store().server_time(&list_prefix) {
        Ok(server_time) => vec![
            credentials(),
            judge_clock(unix_now(), server_time),
            finding(LIST, Ok(format!("listed {bucket}/{list_prefix}"))),
        ],
        // Signed too far from the store's time: the clock is the problem,
        // and the credentials cannot be judged until it is fixed.
        Err(error) if error.s3_code() == Some("RequestTimeTooSkewed") => {
            return vec![Finding {
                check: "clock",
                ok: false,
                detail: format!("the store refused the request's time: {error}"),
            }];
        }
        // The signature was accepted, only listing is not allowed: the
        // other permissions are still worth checking one by one.
        Err(error) if error.s3_code() == Some("AccessDenied") => {
            vec![credentials(), finding(LIST, Err(error))]
        }
        Err(error) => return vec![finding("credentials and bucket", Err(error))],
    };
    findings.extend(scratch_key_checks(wal));
    // Without put or delete, the probe could tell nothing the checks above
    // have not said.
    if findings.iter().all(|f| f.ok || f.check == LIST) {
        findings.push(judge_expiry(wal.probe_expiry()));
    }
    // A listing refused here was named by the listing check already.
    if let Ok(running) = wal.running_fence() {
        findings.push(Finding {
            check: "fences",
            ok: true,
            detail: match running {
                Some(fence) => format!("running: {fence}"),
                None => "none running".to_owned(),
            },
        });
    }
    findings
}

/// The finding of the presigned-expiry probe: whether the store enforces
/// the leases of fences.
fn judge_expiry(verdict: Result<Conditional>) -> Finding {
    match verdict {
        Ok(Conditional::Enforced) => Finding {
            check: "presigned expiry",
            ok: true,
            detail: "the store refused a delete signed to have expired by its clock: a \
                     paused machine's fence can be taken over safely"
                .into(),
        },
        Ok(Conditional::Ignored) => Finding {
            check: "presigned expiry",
            ok: false,
            detail: "the store carried out a delete signed to have expired (or sends no \
                     Date): a dead machine's fence is not taken over unless \
                     --allow-unsafe-takeover"
                .into(),
        },
        Err(error) => finding("presigned expiry", Err(error)),
    }
}

/// The check of listing, named by its IAM permission.
const LIST: &str = "list (s3:ListBucket)";

/// Writes, reads back and deletes a scratch key: one finding per IAM
/// permission an appender and a reader need, and whether the store
/// honours `If-None-Match: *`. Each check runs even when an earlier one
/// failed, so one run names every missing permission.
fn scratch_key_checks(wal: &Wal<Client>) -> Vec<Finding> {
    let store = wal.store();
    let key = wal.new_scratch_key();
    let (put, conditional) = match wal.put_twice(&key) {
        Ok(conditional) => (
            Ok(format!("wrote the scratch key {key}")),
            Some(conditional),
        ),
        Err(error) => (Err(error), None),
    };
    let written = conditional.is_some();
    let mut findings = vec![finding("put (s3:PutObject)", put)];
    findings.extend(conditional.map(judge_conditional));
    let read = store
        .head(&key)
        .and_then(|head| Ok((head.is_some(), store.get(&key)?.is_some())));
    findings.push(finding(
        "get (s3:GetObject)",
        match read {
            Ok((true, true)) => Ok("read the scratch key back (HEAD and GET)".into()),
            Ok(_) if !written => Ok("HEAD and GET were allowed (nothing to read back)".into()),
            Ok(_) => Err(Error::Protocol {
                request: format!("GetObject {key}"),
                host: None,
                kind: ProtocolKind::ScratchKeyMissing,
                source: None,
            }),
            Err(error) => Err(error),
        },
    ));
    findings.push(finding(
        "delete (s3:DeleteObject)",
        store
            .delete(std::slice::from_ref(&key))
            .map(|()| "deleted the scratch key".into()),
    ));
    findings
}

/// The finding of the `If-None-Match: *` probe.
fn judge_conditional(conditional: Conditional) -> Finding {
    match conditional {
        Conditional::Enforced => Finding {
            check: "conditional PUT",
            ok: true,
            detail: "a second If-None-Match: * PUT of a scratch key got 412".into(),
        },
        Conditional::Ignored => Finding {
            check: "conditional PUT",
            ok: false,
            detail: "the store overwrote a scratch key despite If-None-Match: *; appends \
                     are refused unless --allow-unsafe-store"
                .into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> i64 {
        seconds
    }

    #[test]
    fn small_skew_is_fine() {
        let finding = judge_clock(at(1_000_000), Some(at(1_000_002)));
        assert!(finding.ok);
        assert_eq!(
            finding.detail,
            "2 s behind the store's clock (to the second)"
        );
    }

    #[test]
    fn skew_over_five_minutes_is_a_problem() {
        let finding = judge_clock(at(1_000_400), Some(at(1_000_000)));
        assert!(!finding.ok);
        assert!(
            finding.detail.starts_with("400 s ahead of"),
            "{}",
            finding.detail
        );
    }

    #[test]
    fn no_date_header_is_not_a_problem() {
        assert!(judge_clock(at(0), None).ok);
    }

    #[test]
    fn a_region_s3_named_is_a_finding_only_when_it_is_another() {
        assert_eq!(judge_region("us-east-1", "us-east-1"), None);
        let moved = judge_region("us-east-1", "eu-west-1").unwrap();
        assert!(moved.ok);
        assert!(
            moved
                .detail
                .starts_with("S3 said the bucket is in eu-west-1, not us-east-1")
        );
    }

    #[test]
    fn configuration_names_each_setting_and_its_source() {
        use crate::config::Source;
        let origins = [
            Origin {
                setting: "bucket",
                value: "logs".into(),
                source: Source::Flag("--bucket"),
            },
            Origin {
                setting: "region",
                value: "eu-west-1".into(),
                source: Source::Profile("onprem".into()),
            },
        ];
        let finding = configuration(&origins);
        assert!(finding.ok);
        assert_eq!(
            finding.detail,
            "bucket logs (--bucket), region eu-west-1 (profile onprem)"
        );
    }
}
