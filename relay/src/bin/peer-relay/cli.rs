//! The command line: flags, their help, and how they become [`Overrides`].

use std::path::PathBuf;

use clap::Parser;
use peer_relay::{
    AccessMode, MetricsExposure,
    config::{Listen, Overrides, Secret},
};

/// Relay for peer: forwards the end-to-end encrypted traffic between a peer host and its
/// devices when they cannot reach each other directly. It only ever sees ciphertext.
#[derive(Debug, Parser)]
#[command(
    name = "peer-relay",
    version,
    after_help = "Run `peer-relay --help` for examples and details.",
    after_long_help = AFTER_LONG_HELP
)]
pub(crate) struct Args {
    /// Configuration file (TOML; every key is documented in peer-relay.example.toml).
    #[arg(long, short = 'c', value_name = "PATH", env = "PEER_RELAY_CONFIG")]
    pub(crate) config: Option<PathBuf>,

    /// Plain-HTTP listener, or "off" [default: 0.0.0.0:3340 unless HTTPS is configured].
    #[arg(long, value_name = "ADDR:PORT", env = "PEER_RELAY_HTTP_BIND")]
    http_bind: Option<Listen>,

    /// UDP address of the QUIC address-discovery service, which tells iroh endpoints their
    /// public address (needs HTTPS: it uses the same certificate) [default: 0.0.0.0:7842 when
    /// HTTPS is configured]; "off" disables it.
    #[arg(long, value_name = "ADDR:PORT", env = "PEER_RELAY_QUIC_BIND")]
    pub(crate) quic_bind: Option<String>,

    /// HTTPS listener, or "off" [default: 0.0.0.0:443 with --cert, 0.0.0.0:3443 with
    /// --dev-tls].
    #[arg(long, value_name = "ADDR:PORT", env = "PEER_RELAY_HTTPS_BIND")]
    https_bind: Option<Listen>,

    /// TLS certificate chain, PEM (e.g. /etc/letsencrypt/live/DOMAIN/fullchain.pem).
    #[arg(long, value_name = "PEM", env = "PEER_RELAY_CERT", requires = "key")]
    cert: Option<PathBuf>,

    /// TLS private key, PEM (e.g. /etc/letsencrypt/live/DOMAIN/privkey.pem).
    #[arg(long, value_name = "PEM", env = "PEER_RELAY_KEY", requires = "cert")]
    key: Option<PathBuf>,

    /// Serve HTTPS with a self-signed certificate and print its SHA-256 fingerprint (clients
    /// must pin or trust it; for development and LANs).
    #[arg(long, env = "PEER_RELAY_DEV_TLS", conflicts_with_all = ["cert", "key"])]
    dev_tls: bool,

    /// Keep the --dev-tls certificate in this directory so its fingerprint survives restarts.
    #[arg(long, value_name = "DIR", env = "PEER_RELAY_DEV_TLS_DIR")]
    dev_tls_dir: Option<PathBuf>,

    /// Host name or IP clients reach this relay at; used to print the relay URLs (and named
    /// in the --dev-tls certificate).
    #[arg(
        long,
        alias = "advertise-ip",
        value_name = "HOST",
        env = "PEER_RELAY_ADVERTISE"
    )]
    advertise: Option<String>,

    /// Serve the static files of this directory for all other paths, instead of the web app
    /// built into this binary.
    #[arg(long, value_name = "DIR", env = "PEER_RELAY_WEB_ROOT")]
    web_root: Option<PathBuf>,

    /// Serve no web app at all (neither the built-in one nor --web-root): all other paths are
    /// 404, e.g. when devices load the app from an origin of its own.
    #[arg(long, env = "PEER_RELAY_NO_WEB_APP", conflicts_with = "web_root")]
    no_web_app: bool,

    /// Who may use the relay: open, allowlist (only --allow'ed endpoint ids) or token
    /// (--allow'ed ids plus clients presenting a relay token) [default: open].
    #[arg(long, value_name = "MODE", env = "PEER_RELAY_ACCESS")]
    access: Option<AccessMode>,

    /// An endpoint id admitted without a token (repeatable; comma-separated in the
    /// environment). Hosts *and* the devices that dial them need one in allowlist mode.
    #[arg(
        long = "allow",
        value_name = "ENDPOINT_ID",
        env = "PEER_RELAY_ALLOW",
        value_delimiter = ','
    )]
    allow: Vec<String>,

    /// File with relay tokens, one per line (token mode).
    #[arg(long, value_name = "PATH", env = "PEER_RELAY_TOKENS_FILE")]
    tokens_file: Option<PathBuf>,

    /// Who may read /metrics: public, loopback or off [default: loopback].
    #[arg(long, value_name = "WHO", env = "PEER_RELAY_METRICS")]
    metrics: Option<MetricsExposure>,

    /// New TCP connections per second per client IP; 0 = unlimited [default: 20].
    #[arg(long, value_name = "PER_SEC", env = "PEER_RELAY_CONN_RATE")]
    conn_rate: Option<f64>,

    /// Burst of new TCP connections per client IP [default: 100].
    #[arg(long, value_name = "N", env = "PEER_RELAY_CONN_BURST")]
    conn_burst: Option<u32>,

    /// Open TCP connections in total; 0 = unlimited [default: 10000].
    #[arg(long, value_name = "N", env = "PEER_RELAY_MAX_CONNS")]
    max_conns: Option<usize>,

    /// Open TCP connections per client IP; 0 = unlimited [default: 256].
    #[arg(long, value_name = "N", env = "PEER_RELAY_MAX_CONNS_PER_IP")]
    max_conns_per_ip: Option<usize>,

    /// Run even as root (not recommended: use the systemd unit, which grants only the right to
    /// bind ports below 1024).
    #[arg(long, env = "PEER_RELAY_ALLOW_ROOT")]
    pub(crate) allow_root: bool,

    /// Print a new random relay token and exit.
    #[arg(long, exclusive = true)]
    pub(crate) generate_token: bool,

    /// Check the configuration (and load the certificate and tokens) and exit.
    #[arg(long)]
    pub(crate) check: bool,
}

const AFTER_LONG_HELP: &str = "\
What it serves (on each listener):
  /relay, /ping     the iroh relay (only ciphertext passes through)
  /healthz          200 \"ok\" for load balancers and monitoring
  /metrics          Prometheus metrics (loopback clients only by default)
  everything else   the web app built into this binary (or the files of --web-root)

Examples:
  Try it (plain HTTP on port 3340):
    peer-relay
  On a server, with a certificate from certbot (see docs/relay.md and peer-relay.service):
    peer-relay --cert /etc/letsencrypt/live/relay.example.org/fullchain.pem \\
               --key /etc/letsencrypt/live/relay.example.org/privkey.pem \\
               --advertise relay.example.org
  HTTPS with a self-signed certificate (prints the fingerprint to pin):
    peer-relay --dev-tls --dev-tls-dir ./dev-tls --advertise 192.168.1.10
  Admit only your own devices:
    peer-relay --access allowlist --allow <host id> --allow <phone id>

Configuration: flags win over PEER_RELAY_* environment variables, which win over the --config
file. Relay tokens are never taken from the command line: use access.tokens_file in the file,
--tokens-file, or PEER_RELAY_TOKENS (comma-separated). `peer-relay --generate-token` makes one.

Signals: SIGTERM and SIGINT stop gracefully (relay clients are disconnected); SIGHUP re-reads
the access settings, the tokens file and the certificate files (listeners, web root and limits
need a restart).

Logs go to stderr; RUST_LOG sets the verbosity (default: info).
It refuses to run as root unless --allow-root is given.";

impl Args {
    pub(crate) fn overrides(&self) -> Overrides {
        let tokens = std::env::var("PEER_RELAY_TOKENS").ok().map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(Secret::new)
                .collect()
        });
        let mut overrides = Overrides::default();
        overrides.http_bind = self.http_bind;
        overrides.https_bind = self.https_bind;
        overrides.cert = self.cert.clone();
        overrides.key = self.key.clone();
        overrides.dev_tls = self.dev_tls;
        overrides.dev_tls_dir = self.dev_tls_dir.clone();
        overrides.advertise = self.advertise.clone();
        overrides.web_root = self.web_root.clone();
        overrides.no_web_app = self.no_web_app;
        overrides.metrics = self.metrics;
        overrides.access = self.access;
        overrides.allow = (!self.allow.is_empty()).then(|| self.allow.clone());
        overrides.tokens = tokens;
        overrides.tokens_file = self.tokens_file.clone();
        overrides.conn_rate = self.conn_rate;
        overrides.conn_burst = self.conn_burst;
        overrides.max_conns = self.max_conns;
        overrides.max_conns_per_ip = self.max_conns_per_ip;
        overrides
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn flags_become_overrides() -> Result<(), clap::Error> {
        let args = Args::try_parse_from([
            "peer-relay",
            "--https-bind",
            "127.0.0.1:8443",
            "--http-bind",
            "off",
            "--dev-tls",
            "--access",
            "allowlist",
            "--allow",
            "a",
            "--allow",
            "b",
            "--conn-rate",
            "2.5",
            "--max-conns-per-ip",
            "7",
            "--advertise-ip",
            "10.0.0.1",
        ])?;
        let overrides = args.overrides();
        assert_eq!(overrides.http_bind, Some(Listen::Off));
        assert!(overrides.dev_tls);
        assert_eq!(overrides.access, Some(AccessMode::Allowlist));
        assert_eq!(overrides.allow, Some(vec!["a".to_owned(), "b".to_owned()]));
        assert_eq!(overrides.conn_rate, Some(2.5));
        assert_eq!(overrides.max_conns_per_ip, Some(7));
        assert_eq!(overrides.advertise.as_deref(), Some("10.0.0.1"));
        Ok(())
    }

    #[test]
    fn bad_flags_are_refused() {
        for argv in [
            &["peer-relay", "--access", "closed"][..],
            &["peer-relay", "--cert", "c.pem"],
            &["peer-relay", "--cert", "c", "--key", "k", "--dev-tls"],
            &["peer-relay", "--http-bind", "localhost"],
            &["peer-relay", "--metrics", "all"],
            &["peer-relay", "--no-web-app", "--web-root", "/srv/web"],
        ] {
            assert!(Args::try_parse_from(argv).is_err(), "{argv:?}");
        }
    }
}
