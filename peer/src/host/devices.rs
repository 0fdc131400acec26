//! Paired devices: stored in SQLite, cached in memory for the hot path, and tracked with their
//! live connections so a revocation can close them at once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, params};
use tokio_util::sync::CancellationToken;

use crate::proto::{DeviceInfo, Role};

/// A device's long-term public key.
pub type DeviceKey = [u8; 32];

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The database failed.
    #[error("device database: {0}")]
    Db(#[from] rusqlite::Error),
    /// No device matches.
    #[error("no paired device matches {0:?}")]
    NotFound(String),
    /// More than one device matches a prefix.
    #[error("{0:?} matches more than one device; give more of its id")]
    Ambiguous(String),
    /// The blocking task failed.
    #[error("device database task failed")]
    Task,
}

#[derive(Debug, Clone)]
struct Device {
    name: String,
    role: Role,
    /// Browsers: the pre-shared key of their later Noise handshakes. Native devices: none.
    psk: Option<zeroize::Zeroizing<[u8; 32]>>,
    paired_at: u64,
    last_seen: Option<u64>,
    revoked_at: Option<u64>,
}

/// The device table, with live connections.
#[derive(Debug, Clone)]
pub struct Devices {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Mutex<Connection>,
    cache: Mutex<HashMap<DeviceKey, Device>>,
    live: Mutex<HashMap<DeviceKey, Vec<(u64, CancellationToken)>>>,
    next_conn: std::sync::atomic::AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    id         BLOB PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    paired_at  INTEGER NOT NULL,
    last_seen  INTEGER,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS audit (
    id     INTEGER PRIMARY KEY,
    at     INTEGER NOT NULL,
    device BLOB,
    event  TEXT NOT NULL,
    detail TEXT NOT NULL
);
";

/// Adds what later versions added to a database made by an earlier one.
fn migrate(db: &Connection) -> Result<(), rusqlite::Error> {
    let has_psk = db
        .prepare("SELECT 1 FROM pragma_table_info('devices') WHERE name = 'psk'")?
        .exists([])?;
    if !has_psk {
        db.execute_batch("ALTER TABLE devices ADD COLUMN psk BLOB")?;
    }
    Ok(())
}

/// Unix seconds now.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Devices {
    /// Opens (and migrates) the database at `path`.
    pub fn open(path: &Path) -> Result<Devices, DeviceError> {
        let db = Connection::open(path)?;
        {
            use std::os::unix::fs::PermissionsExt;
            // Device records and the audit log are private; SQLite creates files per umask.
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
        db.pragma_update(None, "journal_mode", "WAL")?;
        db.pragma_update(None, "synchronous", "NORMAL")?;
        // The agent store writes to the same file from its own connection.
        db.busy_timeout(std::time::Duration::from_secs(5))?;
        db.execute_batch(SCHEMA)?;
        migrate(&db)?;
        let mut cache = HashMap::new();
        {
            let mut stmt = db.prepare(
                "SELECT id, name, role, paired_at, last_seen, revoked_at, psk FROM devices",
            )?;
            let rows = stmt.query_map([], |r| {
                let id: Vec<u8> = r.get(0)?;
                let role: String = r.get(2)?;
                let psk: Option<Vec<u8>> = r.get(6)?;
                Ok((
                    id,
                    Device {
                        name: r.get(1)?,
                        role: role.parse().unwrap_or(Role::Viewer),
                        paired_at: r.get(3)?,
                        last_seen: r.get(4)?,
                        revoked_at: r.get(5)?,
                        psk: psk
                            .and_then(|p| <[u8; 32]>::try_from(p.as_slice()).ok())
                            .map(zeroize::Zeroizing::new),
                    },
                ))
            })?;
            for row in rows {
                let (id, dev) = row?;
                if let Ok(key) = <DeviceKey>::try_from(id.as_slice()) {
                    cache.insert(key, dev);
                }
            }
        }
        Ok(Devices {
            inner: Arc::new(Inner {
                db: Mutex::new(db),
                cache: Mutex::new(cache),
                live: Mutex::new(HashMap::new()),
                next_conn: std::sync::atomic::AtomicU64::new(1),
            }),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, DeviceError> + Send + 'static,
    ) -> Result<T, DeviceError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&lock(&inner.db)))
            .await
            .map_err(|_| DeviceError::Task)?
    }

    /// Records a newly paired native device (re-pairing a revoked key un-revokes it).
    pub async fn add(&self, key: DeviceKey, name: String, role: Role) -> Result<(), DeviceError> {
        self.insert(key, name, role, None).await
    }

    /// Records a newly paired browser with the pre-shared key of its later handshakes.
    pub async fn add_browser(
        &self,
        key: DeviceKey,
        name: String,
        role: Role,
        psk: [u8; 32],
    ) -> Result<(), DeviceError> {
        self.insert(key, name, role, Some(psk)).await
    }

    async fn insert(
        &self,
        key: DeviceKey,
        name: String,
        role: Role,
        psk: Option<[u8; 32]>,
    ) -> Result<(), DeviceError> {
        let now = now_secs();
        let (n, r) = (name.clone(), role);
        let stored = psk.map(|p| p.to_vec());
        self.blocking(move |db| {
            db.execute(
                "INSERT INTO devices (id, name, role, paired_at, revoked_at, psk) VALUES (?1, ?2, ?3, ?4, NULL, ?5)
                 ON CONFLICT(id) DO UPDATE SET name = ?2, role = ?3, paired_at = ?4, revoked_at = NULL, psk = ?5",
                params![key.as_slice(), n, r.as_str(), now, stored],
            )?;
            db.execute(
                "INSERT INTO audit (at, device, event, detail) VALUES (?1, ?2, 'pair', ?3)",
                params![now, key.as_slice(), format!("{n} as {}", r.as_str())],
            )?;
            Ok(())
        })
        .await?;
        lock(&self.inner.cache).insert(
            key,
            Device {
                name,
                role,
                psk: psk.map(zeroize::Zeroizing::new),
                paired_at: now,
                last_seen: None,
                revoked_at: None,
            },
        );
        Ok(())
    }

    /// The name, role and pre-shared key of a paired, unrevoked browser.
    pub fn browser(&self, key: &DeviceKey) -> Option<(String, Role, zeroize::Zeroizing<[u8; 32]>)> {
        lock(&self.inner.cache)
            .get(key)
            .filter(|d| d.revoked_at.is_none())
            .and_then(|d| Some((d.name.clone(), d.role, d.psk.clone()?)))
    }

    /// The role of a paired, unrevoked native device.
    pub fn authorize(&self, key: &DeviceKey) -> Option<(String, Role)> {
        lock(&self.inner.cache)
            .get(key)
            .filter(|d| d.revoked_at.is_none() && d.psk.is_none())
            .map(|d| (d.name.clone(), d.role))
    }

    /// Whether the device was paired once and later revoked.
    pub fn is_revoked(&self, key: &DeviceKey) -> bool {
        lock(&self.inner.cache)
            .get(key)
            .is_some_and(|d| d.revoked_at.is_some())
    }

    /// Registers a live connection of `key`; the returned guard unregisters it. The token is
    /// cancelled when the device is revoked.
    pub async fn connect(&self, key: DeviceKey, token: CancellationToken) -> LiveGuard {
        let id = self
            .inner
            .next_conn
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.inner.live)
            .entry(key)
            .or_default()
            .push((id, token));
        let guard = LiveGuard {
            devices: self.clone(),
            key,
            id,
        };
        let now = now_secs();
        if let Some(d) = lock(&self.inner.cache).get_mut(&key) {
            d.last_seen = Some(now);
        }
        let res = self
            .blocking(move |db| {
                db.execute(
                    "UPDATE devices SET last_seen = ?1 WHERE id = ?2",
                    params![now, key.as_slice()],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = res {
            // last_seen is informational; the connection goes on.
            tracing::warn!("recording last_seen: {e}");
        }
        guard
    }

    /// Number of live connections.
    pub fn live_count(&self) -> u32 {
        lock(&self.inner.live)
            .values()
            .map(|v| v.len() as u32)
            .sum()
    }

    /// All devices, newest first.
    pub fn list(&self) -> Vec<DeviceInfo> {
        let live = lock(&self.inner.live);
        let mut out: Vec<DeviceInfo> = lock(&self.inner.cache)
            .iter()
            .map(|(k, d)| DeviceInfo {
                id: hex::encode(k),
                name: d.name.clone(),
                role: d.role,
                paired_at: d.paired_at,
                last_seen: d.last_seen,
                revoked_at: d.revoked_at,
                connections: live.get(k).map_or(0, |v| v.len() as u32),
                browser: d.psk.is_some(),
            })
            .collect();
        out.sort_by(|a, b| b.paired_at.cmp(&a.paired_at).then(a.id.cmp(&b.id)));
        out
    }

    /// Revokes the device whose hex id starts with `prefix` and closes its connections.
    pub async fn revoke(&self, prefix: &str) -> Result<(DeviceInfo, u32), DeviceError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let key = {
            let cache = lock(&self.inner.cache);
            let mut hits = cache
                .keys()
                .filter(|k| !prefix.is_empty() && hex::encode(k).starts_with(&prefix));
            let key = *hits
                .next()
                .ok_or_else(|| DeviceError::NotFound(prefix.clone()))?;
            if hits.next().is_some() {
                return Err(DeviceError::Ambiguous(prefix));
            }
            key
        };
        let now = now_secs();
        self.blocking(move |db| {
            db.execute(
                "UPDATE devices SET revoked_at = ?1 WHERE id = ?2",
                params![now, key.as_slice()],
            )?;
            db.execute(
                "INSERT INTO audit (at, device, event, detail) VALUES (?1, ?2, 'revoke', '')",
                params![now, key.as_slice()],
            )?;
            Ok(())
        })
        .await?;
        if let Some(d) = lock(&self.inner.cache).get_mut(&key) {
            d.revoked_at = Some(now);
        }
        let closed = lock(&self.inner.live).remove(&key).unwrap_or_default();
        for (_, token) in &closed {
            token.cancel();
        }
        let info = self
            .list()
            .into_iter()
            .find(|d| d.id == hex::encode(key))
            .ok_or_else(|| DeviceError::NotFound(prefix))?;
        Ok((info, closed.len() as u32))
    }

    /// Appends to the audit log (best effort; failures are logged, never fatal).
    pub async fn audit(&self, device: Option<DeviceKey>, event: &'static str, detail: String) {
        let res = self
            .blocking(move |db| {
                db.execute(
                    "INSERT INTO audit (at, device, event, detail) VALUES (?1, ?2, ?3, ?4)",
                    params![now_secs(), device.map(|d| d.to_vec()), event, detail],
                )?;
                Ok(())
            })
            .await;
        if let Err(e) = res {
            tracing::warn!("audit log: {e}");
        }
    }

    /// The newest audit rows, for tests and `peer audit` later.
    pub async fn audit_events(&self, limit: u32) -> Result<Vec<(String, String)>, DeviceError> {
        self.blocking(move |db| {
            let mut stmt =
                db.prepare("SELECT event, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
            let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// The newest audit rows with device ids and names, newest first (`peer audit`).
    pub async fn audit_rows(&self, limit: u32) -> Result<Vec<crate::proto::AuditRow>, DeviceError> {
        let mut rows = self
            .blocking(move |db| {
                let mut stmt = db.prepare(
                    "SELECT at, device, event, detail FROM audit ORDER BY id DESC LIMIT ?1",
                )?;
                let rows = stmt.query_map([limit], |r| {
                    let dev: Option<Vec<u8>> = r.get(1)?;
                    Ok(crate::proto::AuditRow {
                        at: r.get(0)?,
                        device: dev.map(hex::encode),
                        device_name: None,
                        event: r.get(2)?,
                        detail: r.get(3)?,
                    })
                })?;
                Ok(rows.collect::<Result<Vec<_>, _>>()?)
            })
            .await?;
        let cache = lock(&self.inner.cache);
        for row in &mut rows {
            let key = row
                .device
                .as_ref()
                .and_then(|d| hex::decode(d).ok())
                .and_then(|b| <DeviceKey>::try_from(b.as_slice()).ok());
            row.device_name = key.and_then(|k| cache.get(&k).map(|d| d.name.clone()));
        }
        Ok(rows)
    }

    /// Looks a device up by exact key (for tests and listings).
    pub fn get_name(&self, key: &DeviceKey) -> Option<String> {
        lock(&self.inner.cache).get(key).map(|d| d.name.clone())
    }
}

/// Unregisters a live connection on drop.
#[derive(Debug)]
pub struct LiveGuard {
    devices: Devices,
    key: DeviceKey,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        let mut live = lock(&self.devices.inner.live);
        if let Some(v) = live.get_mut(&self.key) {
            v.retain(|(id, _)| *id != self.id);
            if v.is_empty() {
                live.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pair_list_revoke_and_reload() {
        let t = tempfile::tempdir().expect("tempdir");
        let db = t.path().join("peer.db");
        let d = Devices::open(&db).expect("open");
        d.add([1; 32], "phone".into(), Role::Operator)
            .await
            .expect("add");
        d.add([2; 32], "laptop".into(), Role::Viewer)
            .await
            .expect("add");
        assert_eq!(d.authorize(&[1; 32]).map(|x| x.1), Some(Role::Operator));
        assert!(d.authorize(&[3; 32]).is_none());

        let token = CancellationToken::new();
        let guard = d.connect([1; 32], token.clone()).await;
        assert_eq!(d.live_count(), 1);
        assert!(matches!(d.revoke("").await, Err(DeviceError::NotFound(_))));
        let (info, closed) = d
            .revoke(&hex::encode([1u8; 32])[..6])
            .await
            .expect("revoke");
        assert_eq!((info.name.as_str(), closed), ("phone", 1));
        assert!(token.is_cancelled());
        assert!(d.authorize(&[1; 32]).is_none());
        assert!(d.is_revoked(&[1; 32]));
        drop(guard);
        assert_eq!(d.live_count(), 0);

        drop(d);
        let d = Devices::open(&db).expect("reopen");
        assert!(d.is_revoked(&[1; 32]));
        assert_eq!(d.authorize(&[2; 32]).map(|x| x.1), Some(Role::Viewer));
        let events = d.audit_events(10).await.expect("audit");
        assert!(events.iter().any(|(e, _)| e == "revoke"));
    }
}
