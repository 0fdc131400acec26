//! Tests of the configuration: parsing, defaults, overrides, tokens.

use std::net::Ipv4Addr;

use iroh_base::SecretKey;

use super::*;

fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
    ConfigFile::parse(text, Path::new("test.toml"))
}

fn resolve(text: &str, overrides: Overrides) -> Result<Settings, ConfigError> {
    Settings::resolve(parse(text)?, overrides)
}

fn endpoint_hex(n: u8) -> String {
    SecretKey::from_bytes(&[n; 32]).public().to_string()
}

#[test]
fn empty_file_gives_defaults() -> Result<(), ConfigError> {
    let settings = resolve("", Overrides::default())?;
    assert_eq!(
        settings.http_bind,
        Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 3340)))
    );
    assert!(settings.https.is_none());
    assert_eq!(settings.access, AccessMode::Open);
    assert_eq!(settings.metrics, MetricsExposure::Loopback);
    assert_eq!(settings.limits, Limits::default());
    assert_eq!(settings.static_max_age, Duration::from_secs(300));
    assert_eq!(settings.web_app, WebApp::BuiltIn);
    assert!(settings.access_policy()?.endpoints().is_empty());
    Ok(())
}

#[test]
fn web_root_replaces_the_built_in_app_and_no_web_app_turns_both_off() -> Result<(), ConfigError> {
    let settings = resolve("web_root = \"/srv/web\"", Overrides::default())?;
    assert_eq!(settings.web_app, WebApp::Dir("/srv/web".into()));
    let settings = resolve("web_app = false", Overrides::default())?;
    assert_eq!(settings.web_app, WebApp::Off);
    // A web root wins over `web_app = false`, which is about the built-in app only.
    let settings = resolve(
        "web_app = false\nweb_root = \"/srv/web\"",
        Overrides::default(),
    )?;
    assert_eq!(settings.web_app, WebApp::Dir("/srv/web".into()));
    let mut overrides = Overrides {
        web_root: Some("/opt/web".into()),
        ..Overrides::default()
    };
    let settings = resolve("web_root = \"/srv/web\"", overrides.clone())?;
    assert_eq!(settings.web_app, WebApp::Dir("/opt/web".into()));
    overrides.no_web_app = true;
    let settings = resolve("web_root = \"/srv/web\"", overrides)?;
    assert_eq!(settings.web_app, WebApp::Off);
    Ok(())
}

#[test]
fn example_file_parses() -> Result<(), ConfigError> {
    let text = include_str!("../../peer-relay.example.toml");
    let file = parse(text)?;
    // The example sets every key; resolving it must work as written.
    let settings = Settings::resolve(file, Overrides::default())?;
    assert!(settings.https.is_some());
    Ok(())
}

#[test]
fn https_with_files_turns_http_off_and_defaults_to_443() -> Result<(), ConfigError> {
    let settings = resolve(
        "cert = \"/etc/c.pem\"\nkey = \"/etc/k.pem\"\n",
        Overrides::default(),
    )?;
    assert_eq!(settings.http_bind, None);
    let (addr, source) = settings
        .https
        .ok_or(ConfigError::Invalid("no https".into()))?;
    assert_eq!(addr.port(), 443);
    assert_eq!(
        source,
        CertSource::Files {
            cert: "/etc/c.pem".into(),
            key: "/etc/k.pem".into()
        }
    );
    // Both listeners when asked for.
    let settings = resolve(
        "http_bind = \"127.0.0.1:80\"\ncert = \"c\"\nkey = \"k\"\nhttps_bind = \"[::]:8443\"",
        Overrides::default(),
    )?;
    assert_eq!(settings.http_bind.map(|a| a.port()), Some(80));
    assert_eq!(settings.https.map(|(a, _)| a.port()), Some(8443));
    Ok(())
}

#[test]
fn dev_tls_defaults_to_an_unprivileged_port() -> Result<(), ConfigError> {
    let overrides = Overrides {
        dev_tls: true,
        ..Overrides::default()
    };
    let settings = resolve("", overrides)?;
    assert_eq!(settings.https.map(|(a, _)| a.port()), Some(3443));
    Ok(())
}

#[test]
fn contradictions_are_refused() {
    for (text, overrides) in [
        ("https_bind = \"0.0.0.0:443\"", Overrides::default()),
        ("cert = \"c\"", Overrides::default()),
        (
            "cert = \"c\"\nkey = \"k\"\ndev_tls = true",
            Overrides::default(),
        ),
        ("http_bind = \"off\"", Overrides::default()),
        ("[access]\nmode = \"allowlist\"", Overrides::default()),
        ("[access]\nmode = \"token\"", Overrides::default()),
        (
            "[access]\nmode = \"allowlist\"\nendpoints = [\"nope\"]",
            Overrides::default(),
        ),
        (
            "[access]\nmode = \"token\"\ntokens = [\"short\"]",
            Overrides::default(),
        ),
        (
            "[limits]\nnew_connections_per_second = -1.0",
            Overrides::default(),
        ),
        (
            "[limits]\nheader_read_timeout_secs = 0",
            Overrides::default(),
        ),
    ] {
        assert!(resolve(text, overrides).is_err(), "{text} must be refused");
    }
}

#[test]
fn unknown_keys_and_bad_values_are_parse_errors() {
    for text in [
        "htp_bind = \"0.0.0.0:1\"",
        "http_bind = \"nowhere\"",
        "[access]\nmode = \"closed\"",
        "metrics = \"everyone\"",
        "[limits]\nmax_connections = \"many\"",
    ] {
        assert!(
            matches!(parse(text), Err(ConfigError::Parse { .. })),
            "{text}"
        );
    }
}

#[test]
fn overrides_win_over_the_file() -> Result<(), ConfigError> {
    let file = format!(
        "http_bind = \"0.0.0.0:1000\"\nmetrics = \"off\"\n[access]\nmode = \"allowlist\"\n\
         endpoints = [\"{}\"]\n[limits]\nmax_connections = 5\n",
        endpoint_hex(1)
    );
    let overrides = Overrides {
        http_bind: Some(Listen::On(SocketAddr::from((Ipv4Addr::LOCALHOST, 2000)))),
        metrics: Some(MetricsExposure::Public),
        allow: Some(vec![endpoint_hex(2).to_uppercase(), endpoint_hex(3)]),
        max_conns: Some(0),
        conn_rate: Some(0.0),
        ..Overrides::default()
    };
    let settings = resolve(&file, overrides)?;
    assert_eq!(settings.http_bind.map(|a| a.port()), Some(2000));
    assert_eq!(settings.metrics, MetricsExposure::Public);
    assert_eq!(settings.access, AccessMode::Allowlist);
    assert_eq!(settings.endpoints.len(), 2, "uppercase hex is accepted");
    assert_eq!(settings.limits.max_connections, None, "0 = unlimited");
    assert_eq!(settings.limits.new_connections_per_ip, None);
    let policy = settings.access_policy()?;
    assert!(policy.admits(&SecretKey::from_bytes(&[2; 32]).public(), None));
    assert!(!policy.admits(&SecretKey::from_bytes(&[1; 32]).public(), None));
    Ok(())
}

#[test]
fn tokens_file_is_read_and_secrets_stay_out_of_debug() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("tokens");
    std::fs::write(
        &path,
        "# relay tokens\n\nfile-token-0123456789abcdef\n  second-token-0123456789  \n",
    )?;
    let text = format!(
        "[access]\nmode = \"token\"\ntokens = [\"inline-token-0123456789\"]\ntokens_file = {:?}\n",
        path.display().to_string()
    );
    let settings = resolve(&text, Overrides::default())?;
    let policy = settings.access_policy()?;
    assert_eq!(policy.token_count(), 3);
    let stranger = SecretKey::from_bytes(&[9; 32]).public();
    assert!(policy.admits(&stranger, Some("second-token-0123456789")));
    assert!(policy.admits(&stranger, Some("inline-token-0123456789")));
    assert!(!policy.admits(&stranger, None));
    let printed = format!("{settings:?} {policy:?}");
    assert!(!printed.contains("inline-token"), "{printed}");

    std::fs::write(&path, "ok-token-0123456789abc\nbad token\n")?;
    let err = settings.access_policy().err().map(|e| e.to_string());
    assert!(err.is_some_and(|e| e.contains("line 2")));
    Ok(())
}

#[test]
fn listen_parses() {
    assert_eq!("off".parse(), Ok(Listen::Off));
    assert_eq!("OFF".parse(), Ok(Listen::Off));
    assert_eq!(
        "127.0.0.1:80".parse(),
        Ok(Listen::On(SocketAddr::from((Ipv4Addr::LOCALHOST, 80))))
    );
    assert!("127.0.0.1".parse::<Listen>().is_err());
}
