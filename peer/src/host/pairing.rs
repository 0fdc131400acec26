//! One-time pairing codes and the host side of the pairing handshake (ALPN `peer/pair/1`).
//!
//! Wire (one bi stream opened by the client; every message is `u16 BE length | bytes`):
//! 1. client → host: Noise message 1, payload `0x01 | pairing id (16 bytes)`.
//! 2. host → client: `0x00 | Noise message 2` (payload: host name), or a refusal
//!    `code (1..) | UTF-8 reason` (see [`Refusal`]).
//! 3. client → host: Noise transport message carrying [`PairConfirm`] (postcard).
//! 4. host → client: Noise transport message carrying [`PairOutcome`] (postcard).

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::{Mutex, MutexGuard};
use peer_pairing::{
    NoiseKeypair, PairingSecret, Responder, pairing_prologue, parse_hello_payload, short_code,
};
use tokio::io::{AsyncRead, AsyncWrite};

use super::devices::Devices;
use super::door::AuditBudget;
use crate::proto::{PairConfirm, PairOutcome, Refusal, Role, StreamMessage, confirm_message};
use crate::util::now_secs;

/// The longest a pairing code may stay valid.
pub const MAX_TTL_SECS: u64 = 24 * 3600;
/// Failed confirmations after which a code is burnt.
const MAX_FAILURES: u8 = 3;
/// How long the host waits for each pairing message.
const STEP_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug)]
struct Pending {
    secret: PairingSecret,
    role: Role,
    expires_at: u64,
    used: bool,
    failures: u8,
    /// The device the code paired, once it did.
    paired: Option<PairedDevice>,
}

/// A device a code paired, as `peer pair` on the host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairedDevice {
    /// Its name.
    pub name: String,
    /// Its id, hex.
    pub device: String,
    /// Its role.
    pub role: Role,
    /// The short code both sides showed.
    pub code: String,
}

/// The host's outstanding pairing codes.
#[derive(Debug)]
pub struct Pairings {
    pending: Mutex<HashMap<[u8; 16], Pending>>,
    /// Bumped whenever a code pairs a device.
    paired: tokio::sync::watch::Sender<u64>,
    /// Failed pairings audited this minute.
    failed_audits: AuditBudget,
}

/// Most failed pairings audited one by one per minute: a flood of bad attempts must not fill
/// the database. Past it one row says more were not recorded.
pub(crate) const FAILED_AUDITS_PER_MINUTE: u32 = 30;

impl Default for Pairings {
    fn default() -> Self {
        Pairings {
            pending: Mutex::new(HashMap::new()),
            paired: tokio::sync::watch::Sender::new(0),
            failed_audits: AuditBudget::new(
                FAILED_AUDITS_PER_MINUTE,
                "more failed pairings this minute were not recorded",
            ),
        }
    }
}

impl Pairings {
    /// Audits a failed pairing attempt (`detail`: where it came from and why; never the code),
    /// within [`FAILED_AUDITS_PER_MINUTE`].
    pub(crate) async fn audit_failure(&self, devices: &Devices, detail: String) {
        if let Some(row) = self.failed_audits.row(now_secs() / 60, detail) {
            devices.audit(None, "pair.failed", row).await;
        }
    }
}

/// Why waiting for a pairing ended without a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    /// No such code.
    #[error("no pairing code with this id is outstanding")]
    Unknown,
    /// The code expired unused.
    #[error("the pairing code expired before a device used it")]
    Expired,
    /// The code was locked after failed attempts.
    #[error("the pairing code was locked after failed attempts")]
    Locked,
    /// Waited long enough.
    #[error("no device paired in time")]
    TimedOut,
}

impl Pairings {
    fn table(&self) -> MutexGuard<'_, HashMap<[u8; 16], Pending>> {
        self.pending.lock()
    }

    /// Issues a new code valid for `ttl`.
    pub fn issue(&self, role: Role, ttl: Duration) -> (PairingSecret, u64) {
        let secret = PairingSecret::generate();
        let expires_at = now_secs() + ttl.as_secs().clamp(1, MAX_TTL_SECS);
        let mut t = self.table();
        // Forget codes that ended more than an hour ago.
        let horizon = now_secs().saturating_sub(3600);
        t.retain(|_, p| p.expires_at > horizon);
        t.insert(
            secret.pairing_id(),
            Pending {
                secret: secret.clone(),
                role,
                expires_at,
                used: false,
                failures: 0,
                paired: None,
            },
        );
        (secret, expires_at)
    }

    /// Records the device a code paired and wakes whoever waits for it.
    pub(crate) fn record(&self, id: &[u8; 16], device: PairedDevice) {
        if let Some(p) = self.table().get_mut(id) {
            p.paired = Some(device);
        }
        self.paired.send_modify(|n| *n += 1);
    }

    /// Waits until the code `id` pairs a device, it expires or locks, or `timeout` passes.
    pub async fn wait(&self, id: &[u8; 16], timeout: Duration) -> Result<PairedDevice, WaitError> {
        let mut changed = self.paired.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let expires_at = {
                let t = self.table();
                let p = t.get(id).ok_or(WaitError::Unknown)?;
                if let Some(d) = &p.paired {
                    return Ok(d.clone());
                }
                if p.failures >= MAX_FAILURES {
                    return Err(WaitError::Locked);
                }
                p.expires_at
            };
            let now = now_secs();
            if now >= expires_at {
                return Err(WaitError::Expired);
            }
            let expiry = tokio::time::Instant::now() + Duration::from_secs(expires_at - now);
            tokio::select! {
                _ = changed.changed() => {}
                // Failures and expiry are not announced: look again now and then.
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = tokio::time::sleep_until(deadline.min(expiry)) => {
                    if tokio::time::Instant::now() >= deadline {
                        return Err(WaitError::TimedOut);
                    }
                }
            }
        }
    }

    pub(crate) fn lookup(&self, id: &[u8; 16]) -> Result<(PairingSecret, Role), Refusal> {
        let t = self.table();
        let p = t.get(id).ok_or(Refusal::Unknown)?;
        if p.used {
            return Err(Refusal::Used);
        }
        if p.failures >= MAX_FAILURES {
            return Err(Refusal::Locked);
        }
        if now_secs() >= p.expires_at {
            return Err(Refusal::Expired);
        }
        Ok((p.secret.clone(), p.role))
    }

    /// Marks a code used; fails if another device got there first.
    pub(crate) fn consume(&self, id: &[u8; 16]) -> Result<(), Refusal> {
        let mut t = self.table();
        let p = t.get_mut(id).ok_or(Refusal::Unknown)?;
        if p.used {
            return Err(Refusal::Used);
        }
        if now_secs() >= p.expires_at {
            return Err(Refusal::Expired);
        }
        p.used = true;
        Ok(())
    }

    pub(crate) fn fail(&self, id: &[u8; 16]) {
        if let Some(p) = self.table().get_mut(id) {
            p.failures = p.failures.saturating_add(1);
        }
    }
}

/// A device that completed pairing.
#[derive(Debug, Clone)]
pub struct Paired {
    /// The code's pairing id.
    pub pairing_id: [u8; 16],
    /// Device key.
    pub device: [u8; 32],
    /// Its name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The short code both sides show.
    pub code: String,
}

/// Why a pairing attempt ended without a device.
#[derive(Debug, thiserror::Error)]
pub enum PairError {
    /// The stream failed or timed out.
    #[error("pairing stream: {0}")]
    Io(#[from] std::io::Error),
    /// Refused before the handshake completed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The client did not prove knowledge of the code, or sent garbage.
    #[error("pairing failed: {0}")]
    Failed(&'static str),
    /// The device could not be stored.
    #[error(transparent)]
    Store(#[from] super::devices::DeviceError),
}

/// Everything the pairing handler needs.
#[derive(Debug)]
pub struct PairContext<'a> {
    /// The host's Noise key.
    pub noise: &'a NoiseKeypair,
    /// The host's endpoint id (bound into the prologue).
    pub host_id: [u8; 32],
    /// The host's name.
    pub host_name: &'a str,
    /// Outstanding codes.
    pub pairings: &'a Pairings,
    /// Device table.
    pub devices: &'a Devices,
    /// The host's limits: an attempt that names a live code spends a token of the total.
    pub(crate) door: &'a super::door::Door,
}

/// Reads one `u16 BE length | bytes` message within [`STEP_TIMEOUT`].
pub(crate) async fn read_msg<R: AsyncRead + Unpin>(r: &mut R) -> std::io::Result<Vec<u8>> {
    match tokio::time::timeout(STEP_TIMEOUT, crate::proto::read_message(r)).await {
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )),
        Ok(Ok(Some(StreamMessage::Message(m)))) => Ok(m),
        Ok(Ok(_)) => Err(std::io::ErrorKind::UnexpectedEof.into()),
        Ok(Err(e)) => Err(e),
    }
}

/// Sends refusal `r` in message 2's place.
pub(crate) async fn refuse<W: AsyncWrite + Unpin>(w: &mut W, r: Refusal) -> PairError {
    let _ = crate::proto::write_message(w, &r.encode()).await;
    PairError::Refused(r)
}

/// Runs the host side of one pairing on a stream.
pub async fn serve<R, W>(
    ctx: PairContext<'_>,
    recv: &mut R,
    send: &mut W,
) -> Result<Paired, PairError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let msg1 = read_msg(recv).await?;
    let prologue = pairing_prologue(&ctx.host_id);
    let (responder, payload) = match Responder::read_first(ctx.noise, &prologue, &msg1) {
        Ok(x) => x,
        Err(_) => return Err(refuse(send, Refusal::Handshake).await),
    };
    let Some(id) = parse_hello_payload(&payload) else {
        return Err(refuse(send, Refusal::Handshake).await);
    };
    let (secret, role) = match ctx.pairings.lookup(&id) {
        Ok(_) if !ctx.door.pairing_on_code() => {
            return Err(refuse(send, Refusal::RateLimited).await);
        }
        Ok(x) => x,
        Err(r) => return Err(refuse(send, r).await),
    };
    let (mut transport, msg2) = responder
        .respond(secret.as_bytes(), ctx.host_name.as_bytes())
        .map_err(|_| PairError::Failed("handshake"))?;
    crate::proto::write_message(send, &crate::proto::refusal::accept(&msg2)).await?;

    // Only a client that knew the secret can produce a message we can decrypt.
    let confirm = read_msg(recv).await?;
    let Ok(plain) = transport.decrypt(&confirm) else {
        ctx.pairings.fail(&id);
        return Err(PairError::Failed(
            "the client does not know the pairing secret",
        ));
    };
    let outcome = async {
        let confirm: PairConfirm = postcard::from_bytes(&plain)
            .map_err(|_| PairError::Failed("malformed confirmation"))?;
        let name = clean_name(&confirm.name).ok_or(PairError::Failed("bad device name"))?;
        let key = iroh::PublicKey::from_bytes(&confirm.device)
            .map_err(|_| PairError::Failed("bad device key"))?;
        let sig_bytes: [u8; 64] = confirm
            .signature
            .as_slice()
            .try_into()
            .map_err(|_| PairError::Failed("bad signature"))?;
        let msg = confirm_message(&transport.handshake_hash());
        key.verify(&msg, &iroh::Signature::from_bytes(&sig_bytes))
            .map_err(|_| PairError::Failed("device signature does not verify"))?;
        ctx.pairings.consume(&id)?;
        ctx.devices.add(confirm.device, name.clone(), role).await?;
        Ok::<_, PairError>((confirm.device, name))
    }
    .await;
    let reply = match &outcome {
        Ok(_) => PairOutcome::Paired {
            role,
            host_name: ctx.host_name.to_owned(),
        },
        Err(e) => PairOutcome::Refused(e.to_string()),
    };
    if let Ok(ct) = postcard::to_stdvec(&reply)
        .map_err(|_| ())
        .and_then(|bytes| transport.encrypt(&bytes).map_err(|_| ()))
    {
        crate::proto::write_message(send, &ct).await?;
    }
    let (device, name) = outcome?;
    Ok(Paired {
        pairing_id: id,
        device,
        name,
        role,
        code: short_code(&transport.handshake_hash()),
    })
}

/// A device name as stored: trimmed, 1..=64 bytes, no control characters.
pub fn clean_name(name: &str) -> Option<String> {
    let n = name.trim();
    (!n.is_empty() && n.len() <= 64 && !n.chars().any(char::is_control)).then(|| n.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_pairings_are_audited_within_a_budget_per_minute() {
        let p = Pairings::default();
        let rows: Vec<Option<String>> = (0..FAILED_AUDITS_PER_MINUTE + 5)
            .map(|i| p.failed_audits.row(7, format!("attempt {i}")))
            .collect();
        let n = FAILED_AUDITS_PER_MINUTE as usize;
        assert!(rows[..n].iter().all(Option::is_some));
        assert_eq!(
            rows[n].as_deref(),
            Some("more failed pairings this minute were not recorded")
        );
        assert!(rows[n + 1..].iter().all(Option::is_none));
    }

    #[test]
    fn codes_expire_get_used_and_lock() {
        let p = Pairings::default();
        let (s, _) = p.issue(Role::Operator, Duration::from_secs(60));
        let id = s.pairing_id();
        assert!(p.lookup(&id).is_ok());
        assert_eq!(p.lookup(&[0; 16]).err(), Some(Refusal::Unknown));
        p.consume(&id).expect("first use");
        assert_eq!(p.consume(&id).err(), Some(Refusal::Used));
        assert_eq!(p.lookup(&id).err(), Some(Refusal::Used));

        let (s, _) = p.issue(Role::Viewer, Duration::from_secs(60));
        for _ in 0..MAX_FAILURES {
            p.fail(&s.pairing_id());
        }
        assert_eq!(p.lookup(&s.pairing_id()).err(), Some(Refusal::Locked));

        let (s, _) = p.issue(Role::Viewer, Duration::from_secs(60));
        p.table()
            .get_mut(&s.pairing_id())
            .expect("pending")
            .expires_at = now_secs();
        assert_eq!(p.lookup(&s.pairing_id()).err(), Some(Refusal::Expired));
    }

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_name("  phone "), Some("phone".into()));
        assert_eq!(clean_name(""), None);
        assert_eq!(clean_name("a\u{7}b"), None);
        assert_eq!(clean_name(&"x".repeat(65)), None);
    }
}
