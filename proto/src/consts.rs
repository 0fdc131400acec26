//! Names and numbers both ends agree on: ALPNs, the protocol version, the device proof.

/// Pairing: a Noise handshake with the one-time secret as psk.
pub const ALPN_PAIR: &[u8] = b"peer/pair/1";
/// Sessions: the control stream plus one stream per attachment.
pub const ALPN_SESSION: &[u8] = b"peer/session/1";
/// The browser bridge: a remote mobile bridge relaying a browser's Noise channel.
pub const ALPN_BRIDGE: &[u8] = b"peer/bridge/1";

/// Version of the session protocol, in [`crate::ClientHello`] and [`crate::HostHello`] and
/// the browser channel's hello. Compared, not negotiated: both sides speak exactly this one.
pub const PROTOCOL_VERSION: u16 = 3;

/// How far past a client's last [`crate::FrameType::Received`] the host sends output on an
/// attachment (bytes). A client that sends `Received` sends it before this much arrived
/// unacknowledged (the web app: every quarter of it); one that never sends it is not limited.
pub const OUTPUT_WINDOW: u64 = 2 * 1024 * 1024;

/// TLS exporter label of the device proof in [`crate::ClientHello`].
pub const PROOF_LABEL: &[u8] = b"peer/session/1 device proof";
/// Domain-separation prefix of the signed proof message.
pub const PROOF_PREFIX: &[u8] = b"peer device proof v1:";
/// Prefix of the message a device signs when confirming a pairing ([`crate::PairConfirm`]).
pub const CONFIRM_PREFIX: &[u8] = b"peer pair confirm v1:";

/// The message a device signs on a session connection: [`PROOF_PREFIX`] followed by the 32
/// bytes exported from the connection's TLS session.
pub fn proof_message(material: &[u8; 32]) -> Vec<u8> {
    let mut m = PROOF_PREFIX.to_vec();
    m.extend_from_slice(material);
    m
}

/// The message a device signs to confirm a pairing: [`CONFIRM_PREFIX`] followed by the Noise
/// handshake hash.
pub fn confirm_message(handshake_hash: &[u8]) -> Vec<u8> {
    let mut m = CONFIRM_PREFIX.to_vec();
    m.extend_from_slice(handshake_hash);
    m
}
