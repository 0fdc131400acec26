//! TLS for the front server: certificates from PEM files (e.g. certbot's), reloadable without a
//! restart, and self-signed development certificates with a SHA-256 fingerprint to pin.
//!
//! Everything here reads or writes files synchronously: call it before starting the runtime or
//! from `tokio::task::spawn_blocking`.

use std::{
    fmt, fs,
    io::Write as _,
    net::IpAddr,
    path::{Path, PathBuf},
    sync::{Arc, PoisonError, RwLock},
};

use rustls::{
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// Errors loading or creating certificates.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read or written.
    #[error("cannot access {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is missing or malformed.
        what: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("unusable certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
    /// A self-signed certificate could not be generated.
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
}

/// A certificate chain (leaf first) and its private key.
///
/// `Debug` shows the leaf's fingerprint, never the key.
#[derive(Clone)]
pub struct TlsIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certificates", &self.chain.len())
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    fs::read(path).map_err(|source| TlsError::Io {
        path: path.to_owned(),
        source,
    })
}

impl TlsIdentity {
    /// Reads a PEM certificate chain (e.g. certbot's `fullchain.pem`) and a PEM private key
    /// (`privkey.pem`; PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|err| TlsError::Pem {
                path: cert.to_owned(),
                what: format!("malformed PEM: {err}"),
            })?;
        if chain.is_empty() {
            return Err(TlsError::Pem {
                path: cert.to_owned(),
                what: "no CERTIFICATE block".to_owned(),
            });
        }
        let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|err| TlsError::Pem {
            path: key.to_owned(),
            what: format!("no usable private key: {err}"),
        })?;
        let identity = Self {
            chain,
            key: Arc::new(key_der),
        };
        // Refuse a key that does not belong to the certificate now, not at the first client.
        identity.certified_key()?;
        Ok(identity)
    }

    /// A new self-signed certificate for `names` (DNS names or IP addresses).
    pub fn self_signed(names: &[String]) -> Result<Self, TlsError> {
        let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
        let key =
            PrivateKeyDer::try_from(generated.signing_key.serialize_der()).map_err(|what| {
                TlsError::Pem {
                    path: PathBuf::new(),
                    what: what.to_owned(),
                }
            })?;
        Ok(Self {
            chain: vec![generated.cert.der().clone()],
            key: Arc::new(key),
        })
    }

    /// A development certificate for `names`: loaded from `dir` (`cert.pem`, `key.pem`) when
    /// both files exist there, otherwise generated and, if `dir` is given, saved there (the key
    /// readable by the owner only) so that its fingerprint survives restarts.
    ///
    /// Delete the files to get a new certificate (e.g. for other names).
    pub fn dev(dir: Option<&Path>, names: &[String]) -> Result<Self, TlsError> {
        let Some(dir) = dir else {
            return Self::self_signed(names);
        };
        let cert_path = dir.join("cert.pem");
        let key_path = dir.join("key.pem");
        if cert_path.exists() && key_path.exists() {
            return Self::from_pem_files(&cert_path, &key_path);
        }
        let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| TlsError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        write_private(&key_path, generated.signing_key.serialize_pem().as_bytes())
            .map_err(io(&key_path))?;
        fs::write(&cert_path, generated.cert.pem()).map_err(io(&cert_path))?;
        Self::from_pem_files(&cert_path, &key_path)
    }

    /// The leaf certificate.
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The SHA-256 fingerprint of the leaf certificate, as `AB:CD:…` (what
    /// `openssl x509 -fingerprint -sha256` prints).
    pub fn fingerprint(&self) -> String {
        fingerprint(self.certificate())
    }

    fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        Ok(CertifiedKey::from_der(
            self.chain.clone(),
            self.key.clone_key(),
            &provider(),
        )?)
    }
}

/// The SHA-256 fingerprint of a DER certificate, as `AB:CD:…`.
pub fn fingerprint(certificate: &CertificateDer<'_>) -> String {
    crate::pin::Fingerprint::of(certificate).to_string()
}

/// Names for a development certificate: `localhost`, the loopback addresses, and `extra`
/// (deduplicated; unspecified addresses are skipped).
pub fn dev_names(extra: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    for name in extra {
        let name = name.trim().trim_start_matches('[').trim_end_matches(']');
        let unspecified = name.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
        if !name.is_empty() && !unspecified && !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// A certificate resolver whose certificate can be replaced while the server runs (e.g. after
/// certbot renewed it). New handshakes use the new certificate; open connections keep theirs.
#[derive(Debug)]
pub struct CertResolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// A resolver serving `identity`.
    pub fn new(identity: &TlsIdentity) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self {
            current: RwLock::new(Arc::new(identity.certified_key()?)),
        }))
    }

    /// Serves `identity` from now on.
    pub fn replace(&self, identity: &TlsIdentity) -> Result<(), TlsError> {
        let key = Arc::new(identity.certified_key()?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = key;
        Ok(())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }
}

/// A rustls server configuration for the front server: TLS 1.2 and 1.3 with the ring provider,
/// ALPN `http/1.1`, certificates from `resolver`.
pub fn server_config(resolver: Arc<CertResolver>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_roundtrip_through_pem_files() -> Result<(), TlsError> {
        let dir = tempfile::tempdir().map_err(|source| TlsError::Io {
            path: PathBuf::new(),
            source,
        })?;
        let names = dev_names(["relay.test".to_owned(), "0.0.0.0".to_owned()]);
        assert_eq!(names, ["localhost", "127.0.0.1", "::1", "relay.test"]);
        let first = TlsIdentity::dev(Some(dir.path()), &names)?;
        let again = TlsIdentity::dev(Some(dir.path()), &names)?;
        assert_eq!(
            first.fingerprint(),
            again.fingerprint(),
            "kept across restarts"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(dir.path().join("key.pem"))
                .map_err(|source| TlsError::Io {
                    path: PathBuf::new(),
                    source,
                })?
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "key is private: {mode:o}");
        }
        let fp = first.fingerprint();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|b| b.len() == 2));
        assert!(!format!("{first:?}").contains("PRIVATE"));
        let resolver = CertResolver::new(&first)?;
        server_config(resolver.clone())?;
        resolver.replace(&TlsIdentity::self_signed(&names)?)?;
        Ok(())
    }

    #[test]
    fn mismatched_key_is_refused() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let a = rcgen::generate_simple_self_signed(vec!["a.test".to_owned()])?;
        let b = rcgen::generate_simple_self_signed(vec!["b.test".to_owned()])?;
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        fs::write(&cert, a.cert.pem())?;
        fs::write(&key, b.signing_key.serialize_pem())?;
        assert!(TlsIdentity::from_pem_files(&cert, &key).is_err());
        fs::write(&key, "not a key")?;
        assert!(TlsIdentity::from_pem_files(&cert, &key).is_err());
        fs::write(&cert, "")?;
        assert!(TlsIdentity::from_pem_files(&cert, &key).is_err());
        Ok(())
    }
}
