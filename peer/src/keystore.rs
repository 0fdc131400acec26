//! Long-term secret keys: the OS keyring where one is available, else a 0600 file.
//!
//! Order of preference when loading: an existing key file (so a key never silently changes
//! store), then the OS keyring, then a new key in the keyring, then a new key in a file.
//! `PEER_KEY_STORE=file` skips the keyring altogether. A key that went into the keyring leaves
//! a `NAME.in-keyring` marker, so an unreachable keyring later is an error, never a new identity.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::paths::write_private_file;

/// Where a key is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyStore {
    /// The OS keyring (Secret Service, Keychain, Credential Manager).
    Keyring,
    /// A file readable only by this user, and why the keyring was not used.
    File {
        /// The file.
        path: PathBuf,
        /// Why not the keyring.
        why: String,
    },
}

impl std::fmt::Display for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyStore::Keyring => f.write_str("OS keyring"),
            KeyStore::File { path, why } => write!(f, "file {} ({why})", path.display()),
        }
    }
}

/// Why a key could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The key file could not be read or written.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The key lives in the OS keyring, which cannot be reached now. Making a new key would
    /// change this machine's identity, so this is an error.
    #[error(
        "the key is kept in the OS keyring, which is not available ({0}); unlock it, or delete the .in-keyring marker in the state directory to start over with a new identity"
    )]
    KeyringUnavailable(String),
    /// The stored key does not decode.
    #[error("the key in {0} is damaged: {1}")]
    Corrupt(String, String),
}

/// Loads the key named `name` for the peer home whose directory is `dir`, or creates one with
/// `generate`. `decode` validates stored bytes. Blocking (keyring calls may use D-Bus): run it
/// off the async runtime.
pub fn load_or_create<T>(
    dir: &Path,
    name: &str,
    file_only: bool,
    generate: impl FnOnce() -> (T, Zeroizing<Vec<u8>>),
    decode: impl Fn(&[u8]) -> Result<T, String>,
) -> Result<(T, KeyStore), KeyStoreError> {
    let path = dir.join(format!("{name}.key"));
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            let key = decode(&bytes)
                .map_err(|e| KeyStoreError::Corrupt(path.display().to_string(), e))?;
            return Ok((
                key,
                KeyStore::File {
                    path,
                    why: "key file exists".into(),
                },
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => return Err(KeyStoreError::Io { path, source }),
    }

    // Written when a key goes into the keyring: a later start that cannot reach the keyring
    // must fail instead of quietly becoming a different identity.
    let marker = dir.join(format!("{name}.in-keyring"));
    let in_keyring = marker.exists();
    let account = format!("{name}@{}", dir.display());
    let why = if file_only || std::env::var("PEER_KEY_STORE").as_deref() == Ok("file") {
        if in_keyring {
            return Err(KeyStoreError::KeyringUnavailable(
                "a file store was requested".into(),
            ));
        }
        "file store requested".to_string()
    } else {
        match keyring::Entry::new("peer", &account) {
            Err(e) => format!("no OS keyring: {e}"),
            Ok(entry) => match entry.get_secret() {
                Ok(bytes) => {
                    let bytes = Zeroizing::new(bytes);
                    let key = decode(&bytes)
                        .map_err(|e| KeyStoreError::Corrupt(format!("keyring {account}"), e))?;
                    return Ok((key, KeyStore::Keyring));
                }
                Err(keyring::Error::NoEntry) if in_keyring => {
                    return Err(KeyStoreError::KeyringUnavailable(format!(
                        "the keyring has no entry {account}"
                    )));
                }
                Err(keyring::Error::NoEntry) => {
                    let (key, bytes) = generate();
                    match entry.set_secret(&bytes) {
                        Ok(()) => {
                            write_private_file(&marker, b"the key is in the OS keyring\n")
                                .map_err(|source| KeyStoreError::Io {
                                    path: marker.clone(),
                                    source,
                                })?;
                            return Ok((key, KeyStore::Keyring));
                        }
                        Err(e) => {
                            let why = format!("OS keyring refused the key: {e}");
                            return store_file(path, key, &bytes, why);
                        }
                    }
                }
                Err(e) => format!("OS keyring unavailable: {e}"),
            },
        }
    };
    if in_keyring {
        return Err(KeyStoreError::KeyringUnavailable(why));
    }
    let (key, bytes) = generate();
    store_file(path, key, &bytes, why)
}

fn store_file<T>(
    path: PathBuf,
    key: T,
    bytes: &[u8],
    why: String,
) -> Result<(T, KeyStore), KeyStoreError> {
    write_private_file(&path, bytes).map_err(|source| KeyStoreError::Io {
        path: path.clone(),
        source,
    })?;
    Ok((key, KeyStore::File { path, why }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_and_detects_damage() {
        let t = tempfile::tempdir().expect("tempdir");
        let gen_key = || (7u8, Zeroizing::new(vec![7u8; 4]));
        let dec = |b: &[u8]| {
            if b.len() == 4 {
                Ok(b[0])
            } else {
                Err("wrong length".to_string())
            }
        };
        std::fs::write(t.path().join("k.key"), [9u8; 4]).expect("write");
        let (k, store) = load_or_create(t.path(), "k", true, gen_key, dec).expect("load");
        assert_eq!(k, 9);
        assert!(matches!(store, KeyStore::File { .. }));
        std::fs::write(t.path().join("k.key"), [9u8; 3]).expect("write");
        assert!(matches!(
            load_or_create(t.path(), "k", true, gen_key, dec),
            Err(KeyStoreError::Corrupt(..))
        ));
        // A key once put in the keyring is never silently replaced by a new file key.
        std::fs::write(t.path().join("m.in-keyring"), b"").expect("write");
        assert!(matches!(
            load_or_create(t.path(), "m", true, gen_key, dec),
            Err(KeyStoreError::KeyringUnavailable(_))
        ));
        assert!(!t.path().join("m.key").exists());
    }
}
