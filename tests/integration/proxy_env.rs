//! `HTTP_PROXY` / `HTTPS_PROXY` / `ALL_PROXY` and `NO_PROXY`, honoured the
//! way curl and aws CLI honour them.

use crate::common;

use common::proxy::{Fault, FaultProxy};
use common::{Run, Server, TestLog};

/// A forward proxy in front of the log's server, and a run through it.
fn run_with_proxy_env(log: &TestLog, env: &[(&str, &str)], args: &[&str]) -> (Run, FaultProxy) {
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| Fault::Forward);
    let mut command = log.command();
    for (name, value) in env {
        command.env(name, value.replace("{proxy}", &proxy.endpoint));
    }
    (Run::of(command.args(args)), proxy)
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn http_proxy_carries_every_request_to_an_http_endpoint() {
    let log = TestLog::new(Server::s3s(), "http-proxy");
    let (run, proxy) =
        run_with_proxy_env(&log, &[("HTTP_PROXY", "{proxy}")], &["append", "via proxy"]);
    assert_eq!(run.ok(), "Appended record at offset: 1, data: via proxy\n");
    let seen = proxy.seen();
    // Every request went through a tunnel the proxy opened to the server.
    let tunnels = seen.iter().filter(|s| s.method == "CONNECT").count();
    assert_eq!(tunnels * 2, seen.len(), "{seen:?}");
    assert!(seen.iter().any(|s| s.method == "PUT"), "{seen:?}");
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn all_proxy_is_the_fallback() {
    let log = TestLog::new(Server::s3s(), "all-proxy");
    let (run, proxy) = run_with_proxy_env(&log, &[("all_proxy", "{proxy}")], &["recover"]);
    assert_eq!(run.ok(), "Last offset: 0\n");
    assert!(!proxy.seen().is_empty());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn https_proxy_is_not_used_for_an_http_endpoint() {
    let log = TestLog::new(Server::s3s(), "https-proxy-unused");
    let (run, proxy) = run_with_proxy_env(&log, &[("HTTPS_PROXY", "{proxy}")], &["recover"]);
    assert_eq!(run.ok(), "Last offset: 0\n");
    assert!(proxy.seen().is_empty());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn no_proxy_sends_the_named_host_direct() {
    let log = TestLog::new(Server::s3s(), "no-proxy");
    let env = [
        ("HTTP_PROXY", "{proxy}"),
        ("NO_PROXY", "localhost,127.0.0.1"),
    ];
    let (run, proxy) = run_with_proxy_env(&log, &env, &["recover"]);
    assert_eq!(run.ok(), "Last offset: 0\n");
    assert!(proxy.seen().is_empty());
}

#[test]
#[ignore = "needs the S3 servers that `make test` starts"]
fn proxy_from_dotenv_is_honoured_too() {
    let log = TestLog::new(Server::s3s(), "dotenv-proxy");
    let proxy = FaultProxy::start(&log.server.endpoint, |_, _| Fault::Forward);
    std::fs::write(
        log.workdir.join(".env"),
        format!("HTTP_PROXY={}\n", proxy.endpoint),
    )
    .unwrap();
    assert_eq!(log.run(&["recover"]).ok(), "Last offset: 0\n");
    assert!(!proxy.seen().is_empty());
}
