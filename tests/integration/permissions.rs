//! Credentials that lack an IAM permission: every error and `doctor`
//! finding names the permission, on a real Ceph RGW whose bucket policy
//! grants a second user only some of them.

use crate::common;

use std::process::Command;
use std::time::Duration;

use rusty_s3::{Bucket, Credentials, Map, Method, S3Action, UrlStyle};

use common::{Server, TestLog};

/// A log on a fresh RGW bucket of its own, reached as a fresh user to
/// whom the bucket's policy grants only `actions`.
fn log_allowed(name: &str, actions: &[&str]) -> TestLog {
    let owner = TestLog::new(Server::rgw(), name);
    let unique = owner.workdir.file_name().unwrap().to_str().unwrap();
    let (user, bucket) = (format!("u-{unique}"), format!("b-{unique}").to_lowercase());
    let (key, secret) = (format!("ak-{unique}"), format!("sk-{unique}"));
    let conf =
        std::env::var("S3WAL_TEST_RGW_CONF").expect("S3WAL_TEST_RGW_CONF: run under make test");
    let created = Command::new("radosgw-admin")
        .args([
            "--conf",
            &conf,
            "user",
            "create",
            "--uid",
            &user,
            "--display-name",
            &user,
        ])
        .args(["--access-key", &key, "--secret-key", &secret])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );

    let endpoint = owner.server.endpoint.parse().unwrap();
    let as_owner = Credentials::new(&owner.server.access_key, &owner.server.secret_key);
    let on = Bucket::new(endpoint, UrlStyle::Path, bucket.clone(), "us-east-1").unwrap();
    let url = on.create_bucket(&as_owner).sign(Duration::from_secs(600));
    assert_eq!(ureq::put(url.as_str()).send_empty().unwrap().status(), 200);

    let mut query = Map::new();
    query.insert("policy", "");
    let url = rusty_s3::signing::sign(
        &jiff::Timestamp::now(),
        Method::Put,
        on.base_url().clone(),
        as_owner.key(),
        as_owner.secret(),
        None,
        "us-east-1",
        600,
        query.iter(),
        Map::new().iter(),
    );
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow",
        "Principal":{{"AWS":["arn:aws:iam:::user/{user}"]}},"Action":{actions:?},
        "Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"]}}]}}"#
    );
    let answer = ureq::put(url.as_str()).send(policy.as_bytes()).unwrap();
    assert!(
        answer.status().is_success(),
        "PutBucketPolicy: {}",
        answer.status()
    );

    TestLog {
        server: Server {
            bucket,
            access_key: key,
            secret_key: secret,
            ..owner.server.clone()
        },
        ..owner
    }
}

const ALL: [&str; 4] = [
    "s3:ListBucket",
    "s3:PutObject",
    "s3:GetObject",
    "s3:DeleteObject",
];

fn all_but(missing: &str) -> Vec<&'static str> {
    ALL.into_iter().filter(|a| *a != missing).collect()
}

/// The same log, as the bucket's owner.
fn as_owner(log: &TestLog) -> TestLog {
    let owner = Server::rgw();
    TestLog {
        server: Server {
            access_key: owner.access_key,
            secret_key: owner.secret_key,
            ..log.server.clone()
        },
        ..log.clone()
    }
}

/// RGW lets a user read the objects it wrote whatever the bucket policy
/// says (its object ACL), so the record the append checks is the owner's,
/// as it would be another writer's on AWS. An append after one this
/// machine saw stand reads nothing (a PUT and a LIST); one after a tail
/// that `recover` found checks that record with a HEAD.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_without_read_permission_names_s3_get_object() {
    let log = log_allowed("no-get", &all_but("s3:GetObject"));
    as_owner(&log).run(&["append", "first"]).ok();
    log.run(&["append", "second"]).ok();
    as_owner(&log).run(&["append", "third"]).ok();
    as_owner(&log).run(&["recover"]).ok();
    log.run(&["append", "fourth"]).fails(
        1,
        "no reason given (a HEAD answer has no body): if the credentials are right, they lack \
         the s3:GetObject permission on this bucket and prefix",
    );
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn append_without_put_permission_names_s3_put_object() {
    let log = log_allowed("no-put", &all_but("s3:PutObject"));
    log.run(&["append", "x"])
        .fails(1, "lack the s3:PutObject permission");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn recover_without_list_permission_names_s3_list_bucket() {
    let log = log_allowed("no-list", &all_but("s3:ListBucket"));
    log.run(&["recover"])
        .fails(1, "lack the s3:ListBucket permission");
}

/// Not s3:GetObject: doctor reads back the scratch key it wrote, which
/// RGW lets its writer read (see above); the proxy test in doctor.rs
/// covers that finding.
#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn doctor_names_each_missing_permission() {
    for missing in ["s3:ListBucket", "s3:PutObject", "s3:DeleteObject"] {
        let log = log_allowed("doctor-perm", &all_but(missing));
        let run = log.run(&["doctor"]);
        assert_eq!(run.code, 1, "{missing}: {}", run.out());
        let out = run.out();
        let problems: Vec<&str> = out
            .lines()
            .filter(|line| line.contains(": PROBLEM: "))
            .map(|line| line.split(": ").next().unwrap())
            .collect();
        assert_eq!(problems.len(), 1, "{missing}: {}", run.out());
        assert!(problems[0].contains(missing), "{missing}: {}", run.out());
    }
}
