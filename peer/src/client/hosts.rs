//! The hosts this client has paired with (`hosts.json` in the client's state directory).

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use iroh::RelayUrl;
use peer_pairing::RelayToken;
use serde::{Deserialize, Serialize};

use crate::net::RelayAuth;
use crate::paths::write_private_file;
use crate::proto::{HostRoutes, Role};

/// Most relays a device keeps for a host (the pairing payload carries four).
const MAX_RELAYS: usize = 4;
/// Most direct addresses a device keeps for a host.
const MAX_DIRECT: usize = 8;

/// A paired host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownHost {
    /// Name to refer to it by (unique in the file).
    pub name: String,
    /// Its iroh endpoint id.
    pub endpoint_id: String,
    /// Its Noise static key, hex.
    pub noise_key: String,
    /// Relays it uses.
    pub relay_urls: Vec<String>,
    /// Its direct addresses when paired.
    pub direct_addrs: Vec<SocketAddr>,
    /// The role this client has there.
    pub role: Role,
    /// Unix seconds of pairing.
    pub paired_at: u64,
    /// The token its relays want (relays in token mode), from the pairing payload. A secret:
    /// the file is private (0600) and `Debug` does not show it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "token_text")]
    pub relay_token: Option<RelayToken>,
    /// SHA-256 of its relays' TLS certificate (64 hex digits), from the pairing payload: the
    /// only certificate trusted for them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay_cert_sha256: Option<String>,
    /// The relays and addresses above were set by hand (a tunnel, a port forward the host does
    /// not know of): keep them instead of taking the routes the host tells on each connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_routes: bool,
}

impl KnownHost {
    /// How to get into this host's relays: its token and certificate pin.
    pub fn relay_auth(&self) -> Result<RelayAuth, String> {
        self.routes().relay_auth()
    }

    /// Where the host is and how to get into its relays, as this record knows it.
    pub fn routes(&self) -> Routes {
        Routes {
            relay_urls: self.relay_urls.clone(),
            direct_addrs: self.direct_addrs.clone(),
            relay_token: self.relay_token.clone(),
            relay_cert_sha256: self.relay_cert_sha256.clone(),
        }
    }

    fn set_routes(&mut self, r: &Routes) {
        self.relay_urls.clone_from(&r.relay_urls);
        self.direct_addrs.clone_from(&r.direct_addrs);
        self.relay_token.clone_from(&r.relay_token);
        self.relay_cert_sha256.clone_from(&r.relay_cert_sha256);
    }
}

/// The part of a host record the host keeps current: its relays, direct addresses, relay
/// token and relay certificate pin. Learned at pairing, replaced by the [`HostRoutes`] the host
/// sends on every connection. `Debug` does not show the token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    /// Relay URLs.
    pub relay_urls: Vec<String>,
    /// Direct socket addresses.
    pub direct_addrs: Vec<SocketAddr>,
    /// The token its relays want.
    pub relay_token: Option<RelayToken>,
    /// SHA-256 of its relays' certificate, 64 hex digits.
    pub relay_cert_sha256: Option<String>,
}

impl Routes {
    /// How to get into the relays: the token and certificate pin.
    pub fn relay_auth(&self) -> Result<RelayAuth, String> {
        let pin = self
            .relay_cert_sha256
            .as_deref()
            .map(peer_relay::pin::Fingerprint::parse)
            .transpose()
            .map_err(|e| format!("relay certificate pin: {e}"))?;
        Ok(RelayAuth {
            token: self.relay_token.clone(),
            pin,
            ..RelayAuth::default()
        })
    }

    /// The relays (those that parse) and direct addresses to dial.
    pub fn dial_parts(&self) -> (Vec<RelayUrl>, Vec<SocketAddr>) {
        let relays = self
            .relay_urls
            .iter()
            .filter_map(|u| u.parse::<RelayUrl>().ok())
            .collect();
        (relays, self.direct_addrs.clone())
    }

    /// What the host told, checked, as routes; `None` when it changes nothing or leaves no way
    /// to reach the host. Relay URLs must be `http://` or `https://` URLs and addresses socket
    /// addresses; anything else is dropped, and a token that is not a valid relay token leaves
    /// the known token in place.
    pub fn updated(&self, told: &HostRoutes) -> Option<Routes> {
        let relay_urls: Vec<String> = told
            .relay_urls
            .iter()
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .filter(|u| u.parse::<RelayUrl>().is_ok())
            .take(MAX_RELAYS)
            .cloned()
            .collect();
        let direct_addrs: Vec<SocketAddr> = told
            .direct_addrs
            .iter()
            .filter_map(|a| a.parse::<SocketAddr>().ok())
            .filter(|a| !a.ip().is_unspecified() && a.port() != 0)
            .take(MAX_DIRECT)
            .collect();
        if relay_urls.is_empty() && direct_addrs.is_empty() {
            return None;
        }
        let relay_token = match &told.relay_token {
            None => None,
            Some(t) => match RelayToken::new(t) {
                Ok(t) => Some(t),
                Err(_) => self.relay_token.clone(),
            },
        };
        let next = Routes {
            relay_urls,
            direct_addrs,
            relay_token,
            relay_cert_sha256: told.relay_cert_sha256.map(hex::encode),
        };
        (next != *self).then_some(next)
    }
}

/// `Option<RelayToken>` as an optional JSON string.
mod token_text {
    use peer_pairing::RelayToken;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        token: &Option<RelayToken>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match token {
            Some(t) => s.serialize_str(t.as_str()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<RelayToken>, D::Error> {
        let text = Option::<String>::deserialize(d)?.map(zeroize::Zeroizing::new);
        text.map(|t| RelayToken::new(t.as_str()).map_err(serde::de::Error::custom))
            .transpose()
    }
}

/// Why the hosts file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum HostsError {
    /// Read or write failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("{0} is damaged: {1}")]
    Corrupt(PathBuf, String),
    /// No host matches.
    #[error("no paired host matches {0:?}; `peer hosts` lists them")]
    NotFound(String),
    /// No host is paired.
    #[error("no host is paired yet; run `peer pair URL` with the URL `peer host` shows")]
    None,
    /// Several hosts and none named.
    #[error("several hosts are paired ({0}); name one")]
    Ambiguous(String),
}

/// The file of known hosts.
#[derive(Debug)]
pub struct KnownHosts {
    path: PathBuf,
    /// The hosts.
    pub hosts: Vec<KnownHost>,
}

impl KnownHosts {
    /// Loads the file (missing = empty).
    pub fn load(path: PathBuf) -> Result<KnownHosts, HostsError> {
        let hosts = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| HostsError::Corrupt(path.clone(), e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => return Err(HostsError::Io { path, source }),
        };
        Ok(KnownHosts { path, hosts })
    }

    /// Writes the file.
    pub fn save(&self) -> Result<(), HostsError> {
        let bytes = serde_json::to_vec_pretty(&self.hosts)
            .map_err(|e| HostsError::Corrupt(self.path.clone(), e.to_string()))?;
        write_private_file(&self.path, &bytes).map_err(|source| HostsError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Replaces the routes of the host `endpoint_id` in the file at `path`, under a lock (so
    /// that two `peer` processes updating it at once lose neither change) and atomically (a
    /// crash leaves the old or the new file). A host no longer in the file is left out.
    pub fn update_routes(
        path: PathBuf,
        endpoint_id: &str,
        routes: &Routes,
    ) -> Result<(), HostsError> {
        let io = |source| HostsError::Io {
            path: path.clone(),
            source,
        };
        let dir = path.parent().unwrap_or(std::path::Path::new("."));
        crate::paths::ensure_private_dir(dir).map_err(io)?;
        let lock_path = path.with_extension("json.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io)?;
        // Released when `lock_file` is closed, at the end of this function.
        lock_file.lock().map_err(io)?;
        let mut hosts = KnownHosts::load(path.clone())?;
        let Some(host) = hosts
            .hosts
            .iter_mut()
            .find(|h| h.endpoint_id == endpoint_id)
        else {
            return Ok(());
        };
        if host.keep_routes || host.routes() == *routes {
            return Ok(());
        }
        host.set_routes(routes);
        hosts.save()
    }

    /// Adds or replaces (same endpoint id) a host, keeping names unique. Returns its name.
    pub fn upsert(&mut self, mut host: KnownHost) -> String {
        self.hosts.retain(|h| h.endpoint_id != host.endpoint_id);
        let base = host.name.clone();
        let mut n = 2;
        while self.hosts.iter().any(|h| h.name == host.name) {
            host.name = format!("{base}-{n}");
            n += 1;
        }
        let name = host.name.clone();
        self.hosts.push(host);
        name
    }

    /// Finds a host by exact name or endpoint id prefix; with no query, the only host.
    pub fn find(&self, query: Option<&str>) -> Result<&KnownHost, HostsError> {
        match query {
            None => match self.hosts.as_slice() {
                [] => Err(HostsError::None),
                [one] => Ok(one),
                many => Err(HostsError::Ambiguous(
                    many.iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                )),
            },
            Some(q) => {
                if let Some(h) = self.hosts.iter().find(|h| h.name == q) {
                    return Ok(h);
                }
                let hits: Vec<_> = self
                    .hosts
                    .iter()
                    .filter(|h| !q.is_empty() && h.endpoint_id.starts_with(q))
                    .collect();
                match hits.as_slice() {
                    [one] => Ok(one),
                    [] => Err(HostsError::NotFound(q.into())),
                    many => Err(HostsError::Ambiguous(
                        many.iter()
                            .map(|h| h.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    )),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(name: &str, id: &str) -> KnownHost {
        KnownHost {
            name: name.into(),
            endpoint_id: id.into(),
            noise_key: String::new(),
            relay_urls: vec![],
            direct_addrs: vec![],
            role: Role::Operator,
            paired_at: 0,
            relay_token: None,
            relay_cert_sha256: None,
            keep_routes: false,
        }
    }

    #[test]
    fn relay_token_and_pin_are_stored_privately_and_never_debug_printed() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("hosts.json");
        let mut k = KnownHosts::load(path.clone()).expect("load");
        let mut h = host("box", "aaaa");
        h.relay_token = Some(RelayToken::new("secret-relay-token-123").expect("token"));
        h.relay_cert_sha256 = Some("ab".repeat(32));
        assert!(!format!("{h:?}").contains("secret-relay-token"));
        k.upsert(h.clone());
        k.save().expect("save");
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\"relay_token\": \"secret-relay-token-123\""));
        let again = KnownHosts::load(path.clone()).expect("reload");
        assert_eq!(again.hosts, vec![h.clone()]);
        let auth = h.relay_auth().expect("auth");
        assert_eq!(auth.pin.map(|p| p.0), Some([0xab; 32]));
        // Files written before these fields existed still load.
        std::fs::write(&path, text.replace("\"relay_token\"", "\"ignored\"")).expect("write");
        assert!(KnownHosts::load(path.clone()).is_ok());
        std::fs::write(
            &path,
            r#"[{"name":"a","endpoint_id":"x","noise_key":"","relay_urls":[],"direct_addrs":[],
               "role":"Operator","paired_at":0,"relay_token":"short"}]"#,
        )
        .expect("write");
        assert!(matches!(
            KnownHosts::load(path),
            Err(HostsError::Corrupt(..))
        ));
    }

    #[test]
    fn routes_from_the_host_are_checked_and_saved_under_a_lock() {
        let mut h = host("box", "aaaa");
        h.relay_urls = vec!["http://10.0.0.1:3340/".into()];
        h.direct_addrs = vec!["10.0.0.1:4000".parse().expect("addr")];
        h.relay_token = Some(RelayToken::new("old-token-0123456789").expect("token"));
        let known = h.routes();
        let told = |relays: &[&str], direct: &[&str], token: Option<&str>| HostRoutes {
            relay_urls: relays.iter().map(|s| s.to_string()).collect(),
            direct_addrs: direct.iter().map(|s| s.to_string()).collect(),
            relay_cert_sha256: None,
            relay_token: token.map(str::to_owned),
        };
        // Nothing new, or nothing usable: no change.
        let same = told(
            &["http://10.0.0.1:3340/"],
            &["10.0.0.1:4000"],
            Some("old-token-0123456789"),
        );
        assert_eq!(known.updated(&same), None);
        assert_eq!(
            known.updated(&told(
                &["ftp://x/", "not a url"],
                &["0.0.0.0:1", "nope"],
                None
            )),
            None
        );
        // New addresses and relays, junk dropped; a bad token keeps the old one.
        let next = known
            .updated(&told(
                &[
                    "https://relay.example.org/",
                    "javascript:alert(1)",
                    "http://10.0.0.2:3340/",
                ],
                &["10.0.0.1:4001", "[fd00::1]:4001", "[::]:1"],
                Some("short"),
            ))
            .expect("changed");
        assert_eq!(
            next.relay_urls,
            ["https://relay.example.org/", "http://10.0.0.2:3340/"]
        );
        assert_eq!(next.direct_addrs.len(), 2);
        assert_eq!(next.relay_token, known.relay_token);
        // A host without a token now: the device drops it.
        let none = known
            .updated(&told(&["http://10.0.0.1:3340/"], &["10.0.0.1:4000"], None))
            .expect("changed");
        assert_eq!(none.relay_token, None);

        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("client/hosts.json");
        let mut k = KnownHosts::load(path.clone()).expect("load");
        k.upsert(h.clone());
        k.upsert(host("other", "bbbb"));
        k.save().expect("save");
        KnownHosts::update_routes(path.clone(), "aaaa", &next).expect("update");
        // A host forgotten meanwhile stays forgotten.
        KnownHosts::update_routes(path.clone(), "cccc", &next).expect("update");
        let again = KnownHosts::load(path).expect("reload");
        assert_eq!(again.hosts.len(), 2);
        assert_eq!(again.hosts[0].routes(), next);
        assert_eq!(again.hosts[1], host("other", "bbbb"));
    }

    #[test]
    fn names_stay_unique_and_lookup_works() {
        let t = tempfile::tempdir().expect("tempdir");
        let mut k = KnownHosts::load(t.path().join("hosts.json")).expect("load");
        assert!(matches!(k.find(None), Err(HostsError::None)));
        assert_eq!(k.upsert(host("box", "aaaa")), "box");
        assert_eq!(k.find(None).expect("one").endpoint_id, "aaaa");
        assert_eq!(k.upsert(host("box", "bbbb")), "box-2");
        assert!(matches!(k.find(None), Err(HostsError::Ambiguous(_))));
        assert_eq!(k.find(Some("bb")).expect("prefix").name, "box-2");
        assert_eq!(k.upsert(host("box", "aaaa")), "box");
        assert_eq!(k.hosts.len(), 2);
        k.save().expect("save");
        let k2 = KnownHosts::load(t.path().join("hosts.json")).expect("reload");
        assert_eq!(k2.hosts, k.hosts);
        assert!(matches!(k2.find(Some("zz")), Err(HostsError::NotFound(_))));
    }
}
