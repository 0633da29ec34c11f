//! The one `ureq::Agent` a client keeps for its whole life, so that its
//! connections (and their TLS sessions) serve request after request.

use std::time::Duration;

use ureq::tls::TlsConfig;
use ureq::unversioned::transport::DefaultConnector;
use ureq::{Agent, Proxy};

use super::resolver::MarkingResolver;
use crate::error::{Error, Result};

/// The longest wait for a connection (TCP and TLS) under stall limits,
/// however long the idle time allowed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes of each connection's input and of its output buffer.
const CONNECTION_BUFFER: usize = 16 * 1024;

/// How long an agent's exchanges may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limits {
    /// Each request sets a limit for its whole exchange
    /// ([`ureq::RequestBuilder::config`]): the credential endpoints, whose
    /// answers are small and whose callers each have their own patience.
    PerRequest,
    /// No network operation may make no progress for longer than `idle`
    /// (`--timeout`), and `connections` stay open between requests: the
    /// store, whose transfers may be long but must keep moving.
    Stall {
        /// The longest a network operation may make no progress.
        idle: Duration,
        /// Idle connections kept, as many as requests run at once.
        connections: usize,
    },
}

/// What an agent is set up with.
#[derive(Debug)]
pub(crate) struct Setup {
    /// The certificate authorities HTTPS hosts are checked against.
    pub(crate) tls: TlsConfig,
    /// The proxy to go through, or `None` to go direct.
    pub(crate) proxy: Option<Proxy>,
    /// How long exchanges may take.
    pub(crate) limits: Limits,
}

/// The agent for `setup`.
///
/// Error statuses are answers to map (a 412, a 404), not failures. A
/// redirect is never followed: it would send a presigned request or a
/// token to another host (S3 answers a request to the wrong region with a
/// 301 worth showing). The resolver marks names that do not resolve, so
/// that the failure is told by its type (see [`super::judge`]).
pub(crate) fn agent(setup: Setup) -> Agent {
    let config = Agent::config_builder()
        .proxy(setup.proxy)
        .tls_config(setup.tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        // Every connection, busy or idle, keeps its buffers: ureq's
        // 128 KiB each way would cost 16 MiB at 64 connections. 16 KiB
        // holds any request head (the output buffer must) and is a TLS
        // record; a bigger answer head makes the input one grow.
        .input_buffer_size(CONNECTION_BUFFER)
        .output_buffer_size(CONNECTION_BUFFER);
    let config = match setup.limits {
        Limits::PerRequest => config,
        // The limit is on how long the exchange may make no progress,
        // never on how long it may take: an upload or a download that
        // keeps moving is not cut off, one that stalls fails in time.
        Limits::Stall { idle, connections } => config
            .timeout_resolve(Some(idle))
            .timeout_connect(Some(CONNECT_TIMEOUT.min(idle)))
            .timeout_per_read(Some(idle))
            .timeout_per_write(Some(idle))
            .max_idle_connections(connections)
            .max_idle_connections_per_host(connections),
    };
    Agent::with_parts(
        config.build(),
        DefaultConnector::new(),
        MarkingResolver::default(),
    )
}

/// The proxy at `url`, if any. s3wal decides on the proxy itself (with
/// `.env` and `NO_PROXY`), so ureq's own reading of the environment is
/// replaced, not added to.
pub(crate) fn proxy(url: Option<&str>) -> Result<Option<Proxy>> {
    url.map(|url| {
        Proxy::new(url).map_err(|_| {
            Error::Config(
                "the proxy URL (HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) is not valid".into(),
            )
        })
    })
    .transpose()
}
