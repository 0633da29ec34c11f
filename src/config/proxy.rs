//! The proxy for the endpoint, chosen from the environment as curl and
//! aws CLI choose it.

use url::Url;

use super::{Env, Source};

/// The proxy for `endpoint` and the variable that named it: `HTTPS_PROXY`
/// for an HTTPS endpoint, `HTTP_PROXY` for plain HTTP, `ALL_PROXY` for
/// either (lower-case names too), unless `NO_PROXY` names the host.
pub fn proxy_for(endpoint: &Url, env: &Env) -> Option<(String, Source)> {
    let names: &[&str] = match endpoint.scheme() {
        "https" => &["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"],
        _ => &["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"],
    };
    let (proxy, source) = env.first_of(names)?;
    let host = endpoint
        .host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']');
    let bypass = env
        .first_of(&["NO_PROXY", "no_proxy"])
        .map_or("", |(value, _)| value);
    let bypassed = bypass.split(',').map(str::trim).any(|entry| {
        let entry = entry.trim_start_matches("*.").trim_start_matches('.');
        entry == "*"
            || (!entry.is_empty() && (host == entry || host.ends_with(&format!(".{entry}"))))
    });
    (!bypassed).then(|| (proxy.to_owned(), source))
}

/// A proxy URL as it may be shown: without the user name and password
/// it may carry (`http://user:pass@proxy:3128` is `proxy:3128`).
pub(super) fn shown(proxy: &str) -> &str {
    let rest = proxy.split_once("://").map_or(proxy, |(_, rest)| rest);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    rest.trim_end_matches('/')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::env;

    fn proxy(url: &str, env: &Env) -> Option<String> {
        proxy_for(&url.parse().unwrap(), env).map(|(proxy, _)| proxy)
    }

    #[test]
    fn proxy_is_chosen_by_the_endpoint_scheme() {
        let env = env(&[
            ("HTTPS_PROXY", "http://tls-proxy:3128"),
            ("HTTP_PROXY", "http://plain:3128"),
        ]);
        assert_eq!(
            proxy_for(&"https://s3.example.com".parse().unwrap(), &env),
            Some(("http://tls-proxy:3128".into(), Source::Env("HTTPS_PROXY")))
        );
        assert_eq!(
            proxy("http://minio.local:9000", &env).as_deref(),
            Some("http://plain:3128")
        );
    }

    #[test]
    fn no_proxy_names_hosts_and_domains_that_go_direct() {
        let with = |no_proxy: &str, url: &str| {
            proxy(
                url,
                &env(&[("ALL_PROXY", "http://p:1"), ("NO_PROXY", no_proxy)]),
            )
        };
        assert_eq!(
            with("localhost, .internal", "http://ceph.internal:8080"),
            None
        );
        assert_eq!(with("*.internal", "http://a.b.internal"), None);
        assert_eq!(with("127.0.0.1", "http://127.0.0.1:9000"), None);
        assert_eq!(with("*", "https://anything"), None);
        assert!(with("internal", "http://notinternal").is_some());
        assert!(with("", "http://h").is_some());
    }

    #[test]
    fn a_proxy_is_shown_without_its_password() {
        assert_eq!(shown("http://user:p@ss@proxy:3128/"), "proxy:3128");
        assert_eq!(shown("proxy:3128"), "proxy:3128");
    }
}
