//! The `push_subscriptions` table: one Web Push subscription per device, with the VAPID key
//! its requests are signed with and the kinds it gets. Revoking a device deletes its row
//! (`host/devices.rs`, in the same transaction).

use rusqlite::params;
use zeroize::Zeroizing;

use crate::db::{Db, DbError};
use crate::host::devices::DeviceKey;
use crate::proto::NoticeKind;
use crate::util::now_secs;

/// A stored subscription, as the device sent it.
#[derive(Clone)]
pub struct Row {
    /// The device.
    pub device: DeviceKey,
    /// The push endpoint.
    pub endpoint: String,
    /// The subscription's public key, 65 bytes.
    pub p256dh: Vec<u8>,
    /// The subscription's secret, 16 bytes.
    pub auth: Zeroizing<Vec<u8>>,
    /// The VAPID private key.
    pub vapid_private: Zeroizing<[u8; 32]>,
    /// The VAPID public key, 65 bytes.
    pub vapid_public: Vec<u8>,
    /// The kinds it gets.
    pub kinds: Vec<NoticeKind>,
}

impl std::fmt::Debug for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Row")
            .field("device", &hex::encode(&self.device[..4]))
            .field("kinds", &self.kinds)
            .finish_non_exhaustive()
    }
}

/// Kinds as stored: snake_case names, comma-separated.
pub fn kinds_text(kinds: &[NoticeKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses [`kinds_text`] (unknown names, from a newer peer, are skipped).
pub fn parse_kinds(s: &str) -> Vec<NoticeKind> {
    s.split(',').filter_map(NoticeKind::parse).collect()
}

/// Every stored subscription.
pub async fn load(db: &Db) -> Result<Vec<Row>, DbError> {
    db.call(|c| {
        let mut stmt = c.prepare(
            "SELECT device, endpoint, p256dh, auth, vapid_private, vapid_public, kinds
             FROM push_subscriptions",
        )?;
        let rows = stmt.query_map([], |r| {
            let device: Vec<u8> = r.get(0)?;
            let private: Vec<u8> = r.get(4)?;
            let kinds: String = r.get(6)?;
            Ok((
                device,
                private,
                Row {
                    device: [0; 32],
                    endpoint: r.get(1)?,
                    p256dh: r.get(2)?,
                    auth: Zeroizing::new(r.get(3)?),
                    vapid_private: Zeroizing::new([0; 32]),
                    vapid_public: r.get(5)?,
                    kinds: parse_kinds(&kinds),
                },
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (device, private, mut row) = row?;
            let private = Zeroizing::new(private);
            let (Ok(device), Ok(private)) = (
                <[u8; 32]>::try_from(device.as_slice()),
                <[u8; 32]>::try_from(private.as_slice()),
            ) else {
                tracing::warn!("skipping a damaged push subscription row");
                continue;
            };
            row.device = device;
            row.vapid_private = Zeroizing::new(private);
            out.push(row);
        }
        Ok(out)
    })
    .await
}

/// Stores (or replaces) a device's subscription.
pub async fn save(db: &Db, row: Row) -> Result<(), DbError> {
    let now = now_secs();
    db.write(move |c| {
        c.execute(
            "INSERT INTO push_subscriptions
                 (device, endpoint, p256dh, auth, vapid_private, vapid_public, kinds, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(device) DO UPDATE SET endpoint = ?2, p256dh = ?3, auth = ?4,
                 vapid_private = ?5, vapid_public = ?6, kinds = ?7, created_at = ?8",
            params![
                row.device.as_slice(),
                row.endpoint,
                row.p256dh,
                row.auth.as_slice(),
                row.vapid_private.as_slice(),
                row.vapid_public,
                kinds_text(&row.kinds),
                now
            ],
        )?;
        Ok(())
    })
    .await
}

/// Changes the kinds of a device's subscription.
pub async fn set_kinds(db: &Db, device: DeviceKey, kinds: &[NoticeKind]) -> Result<(), DbError> {
    let text = kinds_text(kinds);
    db.write(move |c| {
        c.execute(
            "UPDATE push_subscriptions SET kinds = ?1 WHERE device = ?2",
            params![text, device.as_slice()],
        )?;
        Ok(())
    })
    .await
}

/// Deletes a device's subscription.
pub async fn delete(db: &Db, device: DeviceKey) -> Result<(), DbError> {
    db.write(move |c| {
        c.execute(
            "DELETE FROM push_subscriptions WHERE device = ?1",
            params![device.as_slice()],
        )?;
        Ok(())
    })
    .await
}

/// Queues the deletion of a device's subscription (returns once queued).
pub async fn queue_delete(db: &Db, device: DeviceKey) -> Result<(), DbError> {
    db.queue(
        move |c| {
            c.execute(
                "DELETE FROM push_subscriptions WHERE device = ?1",
                params![device.as_slice()],
            )?;
            Ok(())
        },
        None,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::devices::Devices;
    use crate::proto::Role;

    fn row(device: DeviceKey) -> Row {
        Row {
            device,
            endpoint: "https://push.example.com/1".into(),
            p256dh: vec![4; 65],
            auth: Zeroizing::new(vec![1; 16]),
            vapid_private: Zeroizing::new([7; 32]),
            vapid_public: vec![4; 65],
            kinds: vec![NoticeKind::Approval, NoticeKind::TurnEnd],
        }
    }

    #[tokio::test]
    async fn rows_round_trip_and_a_revocation_deletes_them() {
        let t = tempfile::tempdir().expect("tempdir");
        let path = t.path().join("peer.db");
        let db = Db::open(&path).expect("open");
        let devices = Devices::load(db.clone()).await.expect("devices");
        devices
            .add([1; 32], "phone".into(), Role::Operator)
            .await
            .expect("add");
        save(&db, row([1; 32])).await.expect("save");
        save(&db, row([2; 32])).await.expect("save");
        set_kinds(&db, [2; 32], &[NoticeKind::SessionEnded])
            .await
            .expect("kinds");
        drop(db);
        let db = Db::open(&path).expect("reopen");
        let mut rows = load(&db).await.expect("load");
        rows.sort_by_key(|r| r.device);
        assert_eq!(rows.len(), 2);
        assert_eq!(*rows[0].vapid_private, [7; 32]);
        assert_eq!(
            rows[0].kinds,
            vec![NoticeKind::Approval, NoticeKind::TurnEnd]
        );
        assert_eq!(rows[1].kinds, vec![NoticeKind::SessionEnded]);
        assert!(!format!("{:?}", rows[0]).contains("7, 7"));
        let devices = Devices::load(db.clone()).await.expect("devices");
        let mut revoked = devices.revocations();
        devices
            .revoke(&hex::encode([1u8; 32]))
            .await
            .expect("revoke");
        assert_eq!(revoked.recv().await.expect("revoked"), [1; 32]);
        let rows = load(&db).await.expect("load");
        assert_eq!(
            rows.iter().map(|r| r.device).collect::<Vec<_>>(),
            vec![[2; 32]]
        );
        delete(&db, [2; 32]).await.expect("delete");
        assert!(load(&db).await.expect("load").is_empty());
        assert_eq!(
            parse_kinds("approval,nope,bell"),
            vec![NoticeKind::Approval, NoticeKind::Bell]
        );
    }
}
