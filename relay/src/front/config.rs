//! What a front server serves and how: [`FrontConfig`] and [`MetricsExposure`] (the limits are
//! in `limits`).

use std::{fmt, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use iroh_relay::http::{RELAY_PATH, RELAY_PROBE_PATH};

use super::{limits::Limits, route::RouteHandler};
use crate::access::AccessPolicy;

/// Paths the front server answers itself; routes cannot take them.
const RESERVED: [&str; 5] = [
    RELAY_PATH,
    RELAY_PROBE_PATH,
    "/generate_204",
    "/healthz",
    "/metrics",
];

/// Who may read `GET /metrics`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum MetricsExposure {
    /// Anyone.
    Public,
    /// Clients connecting from a loopback address (a local Prometheus, `curl` on the box).
    #[default]
    Loopback,
    /// Nobody: `/metrics` answers 404.
    Off,
}

impl std::str::FromStr for MetricsExposure {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "public" => Ok(Self::Public),
            "loopback" => Ok(Self::Loopback),
            "off" => Ok(Self::Off),
            other => Err(format!(
                "unknown metrics exposure {other:?} (expected public, loopback or off)"
            )),
        }
    }
}

/// What the front server answers for the paths that are not its own (`/relay`, `/healthz`, …)
/// or a plugged-in route's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebApp {
    /// Nothing: `404`.
    #[default]
    Off,
    /// The web app built into this binary (see [`crate::built_in_web_app`]); a binary built
    /// without it serves a page that says how to get it.
    BuiltIn,
    /// The files of a directory (a web root).
    Dir(PathBuf),
}

/// What a front server serves, and where.
///
/// Built with [`FrontConfig::http`] or [`FrontConfig::new`] and the methods below; started
/// with [`crate::EmbeddedRelay::spawn_with`]. The HTTP and HTTPS listeners share one relay:
/// clients on either can reach each other.
#[derive(Clone, Default)]
pub struct FrontConfig {
    pub(crate) http_bind: Option<SocketAddr>,
    pub(crate) https: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    pub(crate) web_app: WebApp,
    pub(crate) static_max_age: Option<Duration>,
    pub(crate) routes: Vec<(&'static str, Arc<dyn RouteHandler>)>,
    pub(crate) access: AccessPolicy,
    pub(crate) limits: Limits,
    pub(crate) metrics: MetricsExposure,
}

impl fmt::Debug for FrontConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontConfig")
            .field("http_bind", &self.http_bind)
            .field("https_bind", &self.https.as_ref().map(|(addr, _)| addr))
            .field("web_app", &self.web_app)
            .field("static_max_age", &self.static_max_age)
            .field(
                "routes",
                &self.routes.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            )
            .field("access", &self.access)
            .field("limits", &self.limits)
            .field("metrics", &self.metrics)
            .finish()
    }
}

impl FrontConfig {
    /// Nothing to serve yet: add a listener with [`Self::with_http`] or [`Self::with_https`].
    ///
    /// Defaults: open access, [`Limits::default`], metrics for loopback clients only, no web
    /// app (everything but the built-in paths and routes is a 404).
    pub fn new() -> Self {
        Self::default()
    }

    /// A plain-HTTP listener on `bind` (port 0 picks a free port), otherwise as [`Self::new`].
    pub fn http(bind: SocketAddr) -> Self {
        Self::new().with_http(bind)
    }

    /// Serves plain HTTP on `bind`.
    pub fn with_http(mut self, bind: SocketAddr) -> Self {
        self.http_bind = Some(bind);
        self
    }

    /// Serves HTTPS on `bind` with `tls` (see [`crate::tls`] to build one from PEM files or a
    /// self-signed certificate). If `tls` announces no ALPN protocols, `http/1.1` is set.
    pub fn with_https(mut self, bind: SocketAddr, tls: Arc<rustls::ServerConfig>) -> Self {
        self.https = Some((bind, tls));
        self
    }

    /// Serves static files from `dir` (see the crate docs for the rules); the same as
    /// `web_app(WebApp::Dir(dir))`.
    pub fn web_root(mut self, dir: impl Into<PathBuf>) -> Self {
        self.web_app = WebApp::Dir(dir.into());
        self
    }

    /// What to serve for the paths that are not the server's own or a route's. Default:
    /// [`WebApp::Off`].
    pub fn web_app(mut self, app: WebApp) -> Self {
        self.web_app = app;
        self
    }

    /// `Cache-Control: max-age` of static files other than HTML, web manifests and service
    /// workers (those are always `no-cache`). Default: 5 minutes.
    pub fn static_max_age(mut self, max_age: Duration) -> Self {
        self.static_max_age = Some(max_age);
        self
    }

    /// Hands every request for `prefix` or a path below it (`{prefix}/…`) to `handler`.
    ///
    /// `prefix` must start with `/`, must not end with `/`, must not be `/` or one of the
    /// server's own paths (`/relay`, `/ping`, `/generate_204`, `/healthz`, `/metrics`) or lie
    /// below them. Checked when the server starts. The longest matching prefix wins.
    pub fn route(mut self, prefix: &'static str, handler: Arc<dyn RouteHandler>) -> Self {
        self.routes.push((prefix, handler));
        self
    }

    /// Who may use the relay. Default: [`AccessPolicy::open`].
    pub fn access(mut self, policy: AccessPolicy) -> Self {
        self.access = policy;
        self
    }

    /// Connection limits and timeouts. Default: [`Limits::default`].
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Who may read `/metrics`. Default: [`MetricsExposure::Loopback`].
    pub fn metrics(mut self, exposure: MetricsExposure) -> Self {
        self.metrics = exposure;
        self
    }
}

pub(crate) fn validate_prefix(prefix: &str) -> Result<(), String> {
    let valid_chars = prefix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~'));
    if !prefix.starts_with('/') || prefix.len() < 2 || prefix.ends_with('/') || !valid_chars {
        return Err(format!(
            "route prefix {prefix:?} must look like \"/name\" (no trailing slash)"
        ));
    }
    if prefix.split('/').any(|s| s == "." || s == "..") || prefix.contains("//") {
        return Err(format!("route prefix {prefix:?} has empty or dot segments"));
    }
    for reserved in RESERVED {
        if prefix == reserved || prefix.starts_with(&format!("{reserved}/")) {
            return Err(format!(
                "route prefix {prefix:?} collides with the server's own {reserved}"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_prefixes_are_validated() {
        for good in ["/bridge", "/a/b", "/x-y_z.1"] {
            assert_eq!(validate_prefix(good), Ok(()), "{good}");
        }
        for bad in [
            "", "/", "bridge", "/bridge/", "/relay", "/relay/x", "/metrics", "/healthz", "/ping",
            "/a//b", "/a/../b", "/a b", "/a?b",
        ] {
            assert!(validate_prefix(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn metrics_exposure_parses() {
        assert_eq!("public".parse(), Ok(MetricsExposure::Public));
        assert_eq!("Loopback".parse(), Ok(MetricsExposure::Loopback));
        assert_eq!("off".parse(), Ok(MetricsExposure::Off));
        assert!("everyone".parse::<MetricsExposure>().is_err());
    }
}
