//! The local control socket: the CLI on the host machine talking to the running host.

use serde::{Deserialize, Serialize};

use crate::*;

/// One audit log row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    /// Unix seconds.
    pub at: u64,
    /// Device id (hex), if a device did it.
    pub device: Option<String>,
    /// The device's name then, if known.
    pub device_name: Option<String>,
    /// What happened (`pair`, `connect`, `agent.prompt`, `agent.answer`, …).
    pub event: String,
    /// Details, secrets redacted.
    pub detail: String,
}

/// Requests from the CLI on the host machine over the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalRequest {
    /// Make a new one-time pairing code.
    NewPairing {
        /// Role the paired device gets.
        role: Role,
        /// Seconds the code stays valid.
        ttl_secs: u64,
    },
    /// List paired devices.
    ListDevices,
    /// Revoke a device by id or unique id prefix; closes its connections.
    RevokeDevice {
        /// Device id (hex) or a unique prefix of it.
        id: String,
    },
    /// Host status.
    Status,
    /// The newest audit log rows, newest first.
    Audit {
        /// At most this many rows.
        limit: u32,
    },
    /// Wait until the code with this pairing id pairs a device (or `timeout_secs` pass, or
    /// the code expires).
    AwaitPairing {
        /// The code's pairing id.
        pairing_id: [u8; 16],
        /// How long to wait at most.
        timeout_secs: u32,
    },
    /// Audit log rows that match a filter, newest first.
    AuditQuery(AuditQuery),
    /// Make this connection a session's control stream (docs/protocol.md section 13.1): the
    /// reply is [`LocalReply::Session`], then `Request`s are answered with `Response`s as on a
    /// session connection's control stream. The local user is the owner (an operator).
    OpenSession,
}

/// Which audit rows [`LocalRequest::AuditQuery`] asks for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AuditQuery {
    /// At most this many rows (at most 10000 are sent).
    pub limit: u32,
    /// Only rows at or after this time, unix seconds.
    pub since: Option<u64>,
    /// Only rows of this device: its name, or a prefix of its id (hex).
    pub device: Option<String>,
    /// Only rows whose event is this one or starts with it and a dot (`agent` matches
    /// `agent.prompt`).
    pub kind: Option<String>,
}

/// Replies over the control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LocalReply {
    /// A new pairing code.
    Pairing {
        /// The URL to open or scan.
        url: String,
        /// Unix seconds when it expires.
        expires_at: u64,
    },
    /// Paired devices.
    Devices(Vec<DeviceInfo>),
    /// A device was revoked.
    Revoked {
        /// The device.
        device: DeviceInfo,
        /// Connections closed.
        closed: u32,
    },
    /// Host status.
    Status(HostStatus),
    /// The request failed.
    Error(WireError),
    /// Audit log rows.
    Audit(Vec<AuditRow>),
    /// Answer to [`LocalRequest::AwaitPairing`]: a device paired with the code.
    Paired {
        /// The device's name.
        name: String,
        /// Its id, hex.
        device: String,
        /// The role given.
        role: Role,
        /// The short code both sides showed.
        code: String,
    },
    /// The answer to [`LocalRequest::OpenSession`]: what a session connection's `HostHello`
    /// says.
    Session(HostHello),
}

/// A paired device as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device id: hex of the device's public key.
    pub id: String,
    /// Name given at pairing.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Unix seconds of pairing.
    pub paired_at: u64,
    /// Unix seconds of the last connection, if any.
    pub last_seen: Option<u64>,
    /// Unix seconds of revocation, if revoked.
    pub revoked_at: Option<u64>,
    /// Live connections now.
    pub connections: u32,
    /// A browser (paired through the mobile bridge) rather than a native client.
    pub browser: bool,
}

/// What `peer status` shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStatus {
    /// Host name.
    pub host_name: String,
    /// The host's endpoint id.
    pub endpoint_id: String,
    /// Relay URLs in use.
    pub relay_urls: Vec<String>,
    /// Direct addresses.
    pub direct_addrs: Vec<String>,
    /// Where the host key is kept.
    pub key_store: String,
    /// Sessions.
    pub sessions: u32,
    /// Live client connections.
    pub connections: u32,
    /// GPUs (empty without `nvidia-smi`).
    pub gpus: Vec<GpuInfo>,
}
