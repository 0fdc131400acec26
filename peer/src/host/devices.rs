//! Paired devices: stored in SQLite, cached in memory for the hot path, and tracked with their
//! live connections so a revocation can close them at once.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rusqlite::params;
use tokio_util::sync::CancellationToken;

use crate::db::{Db, DbError};
use crate::proto::{DeviceInfo, Role};
use crate::util::now_secs;

/// A device's long-term public key.
pub type DeviceKey = [u8; 32];

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The database failed.
    #[error("device database: {0}")]
    Db(#[from] DbError),
    /// No device matches.
    #[error("no paired device matches {0:?}")]
    NotFound(String),
    /// More than one device matches a prefix.
    #[error("{0:?} matches more than one device; give more of its id")]
    Ambiguous(String),
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
    db: Db,
    cache: Mutex<HashMap<DeviceKey, Device>>,
    live: Mutex<HashMap<DeviceKey, Vec<(u64, CancellationToken)>>>,
    next_conn: std::sync::atomic::AtomicU64,
    /// Devices revoked from now on ([`Devices::revocations`]).
    revoked: tokio::sync::broadcast::Sender<DeviceKey>,
}

impl Devices {
    /// The devices of the host's database, read into memory.
    pub async fn load(db: Db) -> Result<Devices, DeviceError> {
        let rows = db
            .call(|c| {
                let mut stmt = c.prepare(
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
                rows.collect::<rusqlite::Result<Vec<_>>>()
            })
            .await?;
        let cache = rows
            .into_iter()
            .filter_map(|(id, dev)| Some((<DeviceKey>::try_from(id.as_slice()).ok()?, dev)))
            .collect();
        Ok(Devices {
            inner: Arc::new(Inner {
                db,
                cache: Mutex::new(cache),
                live: Mutex::new(HashMap::new()),
                next_conn: std::sync::atomic::AtomicU64::new(1),
                revoked: tokio::sync::broadcast::channel(64).0,
            }),
        })
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
        self.inner.db.write(move |db| {
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
        self.inner.cache.lock().insert(
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
        self.inner
            .cache
            .lock()
            .get(key)
            .filter(|d| d.revoked_at.is_none())
            .and_then(|d| Some((d.name.clone(), d.role, d.psk.clone()?)))
    }

    /// The role of a paired, unrevoked native device.
    pub fn authorize(&self, key: &DeviceKey) -> Option<(String, Role)> {
        self.inner
            .cache
            .lock()
            .get(key)
            .filter(|d| d.revoked_at.is_none() && d.psk.is_none())
            .map(|d| (d.name.clone(), d.role))
    }

    /// Whether the device was paired once and later revoked.
    pub fn is_revoked(&self, key: &DeviceKey) -> bool {
        self.inner
            .cache
            .lock()
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
        self.inner
            .live
            .lock()
            .entry(key)
            .or_default()
            .push((id, token));
        let guard = LiveGuard {
            devices: self.clone(),
            key,
            id,
        };
        let now = now_secs();
        if let Some(d) = self.inner.cache.lock().get_mut(&key) {
            d.last_seen = Some(now);
        }
        // last_seen is informational: queued, not waited for (failures are logged).
        let res = self
            .inner
            .db
            .queue(
                move |db| {
                    db.execute(
                        "UPDATE devices SET last_seen = ?1 WHERE id = ?2",
                        params![now, key.as_slice()],
                    )?;
                    Ok(())
                },
                None,
            )
            .await;
        if let Err(e) = res {
            tracing::warn!("recording last_seen: {e}");
        }
        guard
    }

    /// Number of live connections.
    pub fn live_count(&self) -> u32 {
        self.inner
            .live
            .lock()
            .values()
            .map(|v| v.len() as u32)
            .sum()
    }

    /// All devices, newest first.
    pub fn list(&self) -> Vec<DeviceInfo> {
        let live = self.inner.live.lock();
        let mut out: Vec<DeviceInfo> = self
            .inner
            .cache
            .lock()
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

    /// Devices revoked from now on (their push subscriptions are already deleted).
    pub fn revocations(&self) -> tokio::sync::broadcast::Receiver<DeviceKey> {
        self.inner.revoked.subscribe()
    }

    /// Revokes the device whose hex id starts with `prefix`, deletes its push subscription and
    /// closes its connections.
    pub async fn revoke(&self, prefix: &str) -> Result<(DeviceInfo, u32), DeviceError> {
        let prefix = prefix.trim().to_ascii_lowercase();
        let key = {
            let cache = self.inner.cache.lock();
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
        self.inner
            .db
            .write(move |db| {
                db.execute(
                    "UPDATE devices SET revoked_at = ?1 WHERE id = ?2",
                    params![now, key.as_slice()],
                )?;
                db.execute(
                    "INSERT INTO audit (at, device, event, detail) VALUES (?1, ?2, 'revoke', '')",
                    params![now, key.as_slice()],
                )?;
                // A revoked device gets no more notifications.
                db.execute(
                    "DELETE FROM push_subscriptions WHERE device = ?1",
                    params![key.as_slice()],
                )?;
                Ok(())
            })
            .await?;
        if let Some(d) = self.inner.cache.lock().get_mut(&key) {
            d.revoked_at = Some(now);
        }
        let _ = self.inner.revoked.send(key);
        let closed = self.inner.live.lock().remove(&key).unwrap_or_default();
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
            .inner
            .db
            .write(move |db| {
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
        Ok(self
            .inner
            .db
            .call(move |db| {
                let mut stmt =
                    db.prepare("SELECT event, detail FROM audit ORDER BY id DESC LIMIT ?1")?;
                let rows = stmt.query_map([limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<Vec<_>, _>>()
            })
            .await?)
    }

    /// The newest audit rows with device ids and names, newest first (`peer audit`).
    pub async fn audit_rows(&self, limit: u32) -> Result<Vec<crate::proto::AuditRow>, DeviceError> {
        let mut rows = self
            .inner
            .db
            .call(move |db| {
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
                rows.collect::<Result<Vec<_>, _>>()
            })
            .await?;
        let cache = self.inner.cache.lock();
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
        self.inner.cache.lock().get(key).map(|d| d.name.clone())
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
        let mut live = self.devices.inner.live.lock();
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
        let d = Devices::load(Db::open(&db).expect("open"))
            .await
            .expect("load");
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
        let d = Devices::load(Db::open(&db).expect("reopen"))
            .await
            .expect("load");
        assert!(d.is_revoked(&[1; 32]));
        assert_eq!(d.authorize(&[2; 32]).map(|x| x.1), Some(Role::Viewer));
        let events = d.audit_events(10).await.expect("audit");
        assert!(events.iter().any(|(e, _)| e == "revoke"));
    }
}
