//! The `peer-relay` configuration: a TOML file ([`ConfigFile`]), overridden by command-line
//! flags and `PEER_RELAY_*` environment variables ([`Overrides`]), resolved and checked into
//! [`Settings`].
//!
//! `relay/peer-relay.example.toml` documents every key. Loading reads files synchronously.

use std::{
    fmt,
    net::SocketAddr,
    num::NonZeroU32,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::Duration,
};

use iroh_base::EndpointId;
use serde::Deserialize;

use crate::{
    AccessMode, AccessPolicy, FrontConfig, InvalidRelayToken, Limits, MetricsExposure, RateLimit,
    RelayToken, WebApp,
};

/// Default plain-HTTP listener when no HTTPS listener is configured.
pub const DEFAULT_HTTP_BIND: &str = "0.0.0.0:3340";
/// Default HTTPS listener with certificate files.
pub const DEFAULT_HTTPS_BIND: &str = "0.0.0.0:443";
/// Default HTTPS listener with a development certificate (no privileges needed).
pub const DEFAULT_DEV_HTTPS_BIND: &str = "0.0.0.0:3443";

/// Errors in the configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file (or the tokens file) could not be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configuration file is not valid TOML or has unknown keys or wrong types.
    #[error("{}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A value is out of range or options contradict each other.
    #[error("{0}")]
    Invalid(String),
}

/// A listener setting: an address, or `"off"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// Do not listen.
    Off,
    /// Listen on this address.
    On(SocketAddr),
}

impl FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("off") || s.is_empty() {
            return Ok(Self::Off);
        }
        s.parse()
            .map(Self::On)
            .map_err(|_| format!("{s:?} is neither \"off\" nor an address like 0.0.0.0:443"))
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A secret string as read from the file or the environment (a relay token, not checked yet)
/// whose `Debug` output is redacted. [`Settings::resolve`] turns it into a [`RelayToken`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The configuration file. Every key is optional; see `relay/peer-relay.example.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ConfigFile {
    /// Plain-HTTP listener, or `"off"`. Default: [`DEFAULT_HTTP_BIND`] without HTTPS, else off.
    pub http_bind: Option<Listen>,
    /// HTTPS listener, or `"off"`. Default: [`DEFAULT_HTTPS_BIND`] when `cert`/`key` are set,
    /// [`DEFAULT_DEV_HTTPS_BIND`] with `dev_tls`, else off.
    pub https_bind: Option<Listen>,
    /// PEM certificate chain (e.g. certbot's `fullchain.pem`).
    pub cert: Option<PathBuf>,
    /// PEM private key (e.g. certbot's `privkey.pem`).
    pub key: Option<PathBuf>,
    /// Serve HTTPS with a self-signed certificate (development, or pinning by fingerprint).
    pub dev_tls: bool,
    /// Where the development certificate is kept across restarts. Default: regenerated on
    /// every start.
    pub dev_tls_dir: Option<PathBuf>,
    /// Extra DNS names or IPs for the development certificate.
    pub dev_tls_names: Vec<String>,
    /// Host name or IP clients use to reach the relay; used to print the relay URLs.
    pub advertise: Option<String>,
    /// Directory of static files (the web app) served instead of the one built in.
    pub web_root: Option<PathBuf>,
    /// Serve the web app built into the binary when no `web_root` is set. Default: true.
    pub web_app: Option<bool>,
    /// `Cache-Control: max-age` of static assets, in seconds. Default: 300.
    pub static_max_age_secs: Option<u64>,
    /// Who may read `/metrics`: `"public"`, `"loopback"` (default) or `"off"`.
    pub metrics: Option<MetricsExposure>,
    /// `[access]`: who may use the relay.
    pub access: AccessSection,
    /// `[limits]`: connection limits and timeouts.
    pub limits: LimitsSection,
}

/// The `[access]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AccessSection {
    /// `"open"` (default), `"allowlist"` or `"token"`.
    pub mode: Option<AccessMode>,
    /// Endpoint ids (64 hex characters) admitted without a token.
    pub endpoints: Vec<String>,
    /// Relay tokens, inline. Prefer `tokens_file`.
    pub tokens: Vec<Secret>,
    /// A file with one relay token per line (`#` comments and blank lines are ignored).
    pub tokens_file: Option<PathBuf>,
}

/// The `[limits]` section. `0` means unlimited.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsSection {
    /// New TCP connections per second per client IP. Default: 20.
    pub new_connections_per_second: Option<f64>,
    /// Burst of new TCP connections per client IP. Default: 100.
    pub new_connections_burst: Option<u32>,
    /// Open TCP connections in total. Default: 10000.
    pub max_connections: Option<usize>,
    /// Open TCP connections per client IP. Default: 256.
    pub max_connections_per_ip: Option<usize>,
    /// Bytes per second each relay client may send. Default: 0 (unlimited).
    pub relay_client_bytes_per_second: Option<u32>,
    /// Seconds to send request headers; also the keep-alive idle timeout. Default: 15.
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds to finish the TLS handshake. Default: 10.
    pub tls_handshake_timeout_secs: Option<u64>,
    /// Seconds for a relay client to be admitted after the WebSocket upgrade. Default: 20.
    pub relay_handshake_timeout_secs: Option<u64>,
    /// File descriptors kept free below the process's limit for health checks, metrics and
    /// the process itself. Default: 64.
    pub fd_reserve: Option<usize>,
}

impl ConfigFile {
    /// Parses TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|err| ConfigError::Parse {
            path: origin.to_owned(),
            message: err.to_string(),
        })
    }

    /// Reads and parses a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, path)
    }
}

/// Values from the command line or the environment; each one set replaces the file's.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Overrides {
    /// `--http-bind` / `PEER_RELAY_HTTP_BIND`.
    pub http_bind: Option<Listen>,
    /// `--https-bind` / `PEER_RELAY_HTTPS_BIND`.
    pub https_bind: Option<Listen>,
    /// `--cert` / `PEER_RELAY_CERT`.
    pub cert: Option<PathBuf>,
    /// `--key` / `PEER_RELAY_KEY`.
    pub key: Option<PathBuf>,
    /// `--dev-tls` / `PEER_RELAY_DEV_TLS` (only `true` overrides).
    pub dev_tls: bool,
    /// `--dev-tls-dir` / `PEER_RELAY_DEV_TLS_DIR`.
    pub dev_tls_dir: Option<PathBuf>,
    /// `--advertise` / `PEER_RELAY_ADVERTISE`.
    pub advertise: Option<String>,
    /// `--web-root` / `PEER_RELAY_WEB_ROOT`.
    pub web_root: Option<PathBuf>,
    /// `--no-web-app` / `PEER_RELAY_NO_WEB_APP`: no web app at all, neither the built-in one
    /// nor a web root (only `true` overrides).
    pub no_web_app: bool,
    /// `--metrics` / `PEER_RELAY_METRICS`.
    pub metrics: Option<MetricsExposure>,
    /// `--access` / `PEER_RELAY_ACCESS`.
    pub access: Option<AccessMode>,
    /// `--allow` / `PEER_RELAY_ALLOW` (replaces the file's `endpoints`).
    pub allow: Option<Vec<String>>,
    /// `PEER_RELAY_TOKENS` (replaces the file's inline `tokens`).
    pub tokens: Option<Vec<Secret>>,
    /// `--tokens-file` / `PEER_RELAY_TOKENS_FILE`.
    pub tokens_file: Option<PathBuf>,
    /// `--conn-rate` / `PEER_RELAY_CONN_RATE`.
    pub conn_rate: Option<f64>,
    /// `--conn-burst` / `PEER_RELAY_CONN_BURST`.
    pub conn_burst: Option<u32>,
    /// `--max-conns` / `PEER_RELAY_MAX_CONNS`.
    pub max_conns: Option<usize>,
    /// `--max-conns-per-ip` / `PEER_RELAY_MAX_CONNS_PER_IP`.
    pub max_conns_per_ip: Option<usize>,
}

/// Where the HTTPS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertSource {
    /// PEM files, re-read on reload.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
    /// A self-signed development certificate.
    Dev {
        /// Where it is kept (`None`: a new one every start).
        dir: Option<PathBuf>,
        /// Extra names besides localhost, the loopback IPs and the advertised host.
        names: Vec<String>,
    },
}

/// The resolved configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Plain-HTTP listener.
    pub http_bind: Option<SocketAddr>,
    /// HTTPS listener and its certificate.
    pub https: Option<(SocketAddr, CertSource)>,
    /// Host name or IP for printed URLs.
    pub advertise: Option<String>,
    /// What is served for the paths the relay does not use itself.
    pub web_app: WebApp,
    /// `Cache-Control: max-age` of static assets.
    pub static_max_age: Duration,
    /// Who may read `/metrics`.
    pub metrics: MetricsExposure,
    /// Access mode.
    pub access: AccessMode,
    /// Endpoints admitted without a token.
    pub endpoints: Vec<EndpointId>,
    /// Inline relay tokens (checked).
    pub tokens: Vec<RelayToken>,
    /// File of relay tokens.
    pub tokens_file: Option<PathBuf>,
    /// Connection limits.
    pub limits: Limits,
}

fn parse_endpoint(text: &str) -> Result<EndpointId, ConfigError> {
    let trimmed = text.trim();
    // iroh's parser wants lowercase hex (or base32, which is case-insensitive).
    trimmed.to_ascii_lowercase().parse().map_err(|_| {
        ConfigError::Invalid(format!(
            "{trimmed:?} is not an endpoint id (64 hex characters, as `peer` prints them)"
        ))
    })
}

fn nonzero(value: usize) -> Option<usize> {
    (value > 0).then_some(value)
}

fn seconds(value: Option<u64>, default: Duration) -> Duration {
    value.map_or(default, Duration::from_secs)
}

impl Settings {
    /// Combines the file and the overrides, applies defaults, and checks consistency.
    pub fn resolve(file: ConfigFile, overrides: Overrides) -> Result<Self, ConfigError> {
        let cert = overrides.cert.or(file.cert);
        let key = overrides.key.or(file.key);
        let dev_tls = overrides.dev_tls || file.dev_tls;
        let dev_tls_dir = overrides.dev_tls_dir.or(file.dev_tls_dir);

        let cert_source = match (cert, key, dev_tls) {
            (Some(_), _, true) | (_, Some(_), true) => {
                return Err(ConfigError::Invalid(
                    "choose either cert/key files or dev_tls, not both".to_owned(),
                ));
            }
            (Some(cert), Some(key), false) => Some(CertSource::Files { cert, key }),
            (Some(_), None, false) | (None, Some(_), false) => {
                return Err(ConfigError::Invalid(
                    "cert and key must be given together".to_owned(),
                ));
            }
            (None, None, true) => Some(CertSource::Dev {
                dir: dev_tls_dir,
                names: file.dev_tls_names,
            }),
            (None, None, false) => None,
        };
        let default_https = match &cert_source {
            Some(CertSource::Files { .. }) => Listen::On(parse_default(DEFAULT_HTTPS_BIND)?),
            Some(CertSource::Dev { .. }) => Listen::On(parse_default(DEFAULT_DEV_HTTPS_BIND)?),
            None => Listen::Off,
        };
        let https_bind = match overrides.https_bind.or(file.https_bind) {
            Some(listen) => listen,
            None => default_https,
        };
        let https = match (https_bind, cert_source) {
            (Listen::On(addr), Some(source)) => Some((addr, source)),
            (Listen::On(addr), None) => {
                return Err(ConfigError::Invalid(format!(
                    "HTTPS on {addr} needs a certificate: set cert and key, or dev_tls"
                )));
            }
            (Listen::Off, _) => None,
        };
        let default_http = if https.is_some() {
            Listen::Off
        } else {
            Listen::On(parse_default(DEFAULT_HTTP_BIND)?)
        };
        let http_bind = match overrides.http_bind.or(file.http_bind) {
            Some(Listen::On(addr)) => Some(addr),
            Some(Listen::Off) => None,
            None => match default_http {
                Listen::On(addr) => Some(addr),
                Listen::Off => None,
            },
        };
        if http_bind.is_none() && https.is_none() {
            return Err(ConfigError::Invalid(
                "both listeners are off: nothing to serve".to_owned(),
            ));
        }

        let access = overrides
            .access
            .or(file.access.mode)
            .unwrap_or(AccessMode::Open);
        let endpoints = overrides
            .allow
            .unwrap_or(file.access.endpoints)
            .iter()
            .filter(|e| !e.trim().is_empty())
            .map(|e| parse_endpoint(e))
            .collect::<Result<Vec<_>, _>>()?;
        let tokens = overrides
            .tokens
            .unwrap_or(file.access.tokens)
            .iter()
            .enumerate()
            .map(|(i, t)| {
                RelayToken::new(t.expose()).map_err(|err| {
                    ConfigError::Invalid(format!("access.tokens (token {}): {err}", i + 1))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let tokens_file = overrides.tokens_file.or(file.access.tokens_file);
        match access {
            AccessMode::Allowlist if endpoints.is_empty() => {
                return Err(ConfigError::Invalid(
                    "access mode \"allowlist\" with no endpoints would refuse everyone; \
                     list endpoint ids in access.endpoints (or --allow)"
                        .to_owned(),
                ));
            }
            AccessMode::Token if tokens.is_empty() && tokens_file.is_none() => {
                return Err(ConfigError::Invalid(
                    "access mode \"token\" needs tokens: set access.tokens_file \
                     (or --tokens-file, PEER_RELAY_TOKENS)"
                        .to_owned(),
                ));
            }
            _ => {}
        }

        let limits_file = file.limits;
        let defaults = Limits::default();
        let default_rate = defaults.new_connections_per_ip.unwrap_or(RateLimit {
            per_second: 20.0,
            burst: 100,
        });
        let per_second = overrides
            .conn_rate
            .or(limits_file.new_connections_per_second)
            .unwrap_or(default_rate.per_second);
        if !per_second.is_finite() || per_second < 0.0 {
            return Err(ConfigError::Invalid(format!(
                "new_connections_per_second must be a number >= 0, not {per_second}"
            )));
        }
        let burst = overrides
            .conn_burst
            .or(limits_file.new_connections_burst)
            .unwrap_or(default_rate.burst);
        let limits = Limits {
            new_connections_per_ip: (per_second > 0.0).then_some(RateLimit {
                per_second,
                burst: burst.max(1),
            }),
            max_connections: match overrides.max_conns.or(limits_file.max_connections) {
                Some(n) => nonzero(n),
                None => defaults.max_connections,
            },
            max_connections_per_ip: match overrides
                .max_conns_per_ip
                .or(limits_file.max_connections_per_ip)
            {
                Some(n) => nonzero(n),
                None => defaults.max_connections_per_ip,
            },
            relay_client_rx_bytes_per_second: limits_file
                .relay_client_bytes_per_second
                .and_then(NonZeroU32::new),
            header_read_timeout: seconds(
                limits_file.header_read_timeout_secs,
                defaults.header_read_timeout,
            ),
            tls_handshake_timeout: seconds(
                limits_file.tls_handshake_timeout_secs,
                defaults.tls_handshake_timeout,
            ),
            relay_handshake_timeout: seconds(
                limits_file.relay_handshake_timeout_secs,
                defaults.relay_handshake_timeout,
            ),
            shutdown_grace: defaults.shutdown_grace,
            fd_reserve: limits_file.fd_reserve.unwrap_or(defaults.fd_reserve),
        };
        for (name, value) in [
            ("header_read_timeout_secs", limits.header_read_timeout),
            ("tls_handshake_timeout_secs", limits.tls_handshake_timeout),
            (
                "relay_handshake_timeout_secs",
                limits.relay_handshake_timeout,
            ),
        ] {
            if value.is_zero() {
                return Err(ConfigError::Invalid(format!("limits.{name} must be > 0")));
            }
        }

        Ok(Self {
            http_bind,
            https,
            advertise: overrides
                .advertise
                .or(file.advertise)
                .filter(|a| !a.trim().is_empty()),
            web_app: match overrides.web_root.or(file.web_root) {
                _ if overrides.no_web_app => WebApp::Off,
                Some(dir) => WebApp::Dir(dir),
                None if file.web_app == Some(false) => WebApp::Off,
                None => WebApp::BuiltIn,
            },
            static_max_age: Duration::from_secs(file.static_max_age_secs.unwrap_or(300)),
            metrics: overrides.metrics.or(file.metrics).unwrap_or_default(),
            access,
            endpoints,
            tokens,
            tokens_file,
            limits,
        })
    }

    /// The access policy, reading the tokens file if one is configured.
    pub fn access_policy(&self) -> Result<AccessPolicy, ConfigError> {
        let endpoints = self.endpoints.iter().copied();
        match self.access {
            AccessMode::Open => Ok(AccessPolicy::open()),
            AccessMode::Allowlist => Ok(AccessPolicy::allowlist(endpoints)),
            AccessMode::Token => {
                let mut tokens = self.tokens.clone();
                if let Some(path) = &self.tokens_file {
                    tokens.extend(read_tokens_file(path)?);
                }
                if tokens.is_empty() && self.endpoints.is_empty() {
                    return Err(ConfigError::Invalid(
                        "access mode \"token\" but no token is configured".to_owned(),
                    ));
                }
                Ok(AccessPolicy::token(tokens, endpoints))
            }
        }
    }

    /// The front server configuration for these settings, given the HTTPS server config (if
    /// HTTPS is on) and the access policy.
    pub fn front_config(
        &self,
        tls: Option<Arc<rustls::ServerConfig>>,
        policy: AccessPolicy,
    ) -> FrontConfig {
        let mut config = FrontConfig::new()
            .access(policy)
            .limits(self.limits.clone())
            .metrics(self.metrics)
            .static_max_age(self.static_max_age);
        if let Some(addr) = self.http_bind {
            config = config.with_http(addr);
        }
        if let (Some((addr, _)), Some(tls)) = (&self.https, tls) {
            config = config.with_https(*addr, tls);
        }
        config.web_app(self.web_app.clone())
    }
}

fn parse_default(addr: &str) -> Result<SocketAddr, ConfigError> {
    addr.parse()
        .map_err(|_| ConfigError::Invalid(format!("bad built-in default address {addr}")))
}

/// Reads a tokens file: one token per line; `#` starts a comment line; blank lines ignored.
pub fn read_tokens_file(path: &Path) -> Result<Vec<RelayToken>, ConfigError> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
        ConfigError::Read {
            path: path.to_owned(),
            source,
        }
    })?);
    parse_tokens(&text).map_err(|(line, err)| {
        ConfigError::Invalid(format!("{} line {line}: {err}", path.display()))
    })
}

fn parse_tokens(text: &str) -> Result<Vec<RelayToken>, (usize, InvalidRelayToken)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(n, line)| RelayToken::new(line).map_err(|err| (n, err)))
        .collect()
}

#[cfg(test)]
mod tests;
