//! How connections end, and why: QUIC application close codes on native connections, and the
//! WebSocket close codes a browser sees.

/// QUIC application close codes on `peer/session/1` and `peer/pair/1` connections. The reason
/// bytes are text for people.
pub mod quic {
    /// Normal close (the client is done).
    pub const DONE: u32 = 0;
    /// The host is shutting down; reconnect later.
    pub const SHUTTING_DOWN: u32 = 1;
    /// The device was revoked; do not reconnect.
    pub const REVOKED: u32 = 2;
    /// The device is not paired with this host.
    pub const NOT_PAIRED: u32 = 3;
    /// The peer broke the protocol.
    pub const PROTOCOL: u32 = 4;
    /// This ALPN is recognised but not served by this host.
    pub const UNSUPPORTED: u32 = 5;
    /// Too many failed connection attempts from this address or key, or in total: the host
    /// refuses failing ones for a moment. A device that authenticates is never refused so.
    pub const RATE_LIMITED: u32 = 6;
}

/// WebSocket close codes a browser's socket ends with.
///
/// `1000`–`1011` are the standard ones (RFC 6455 §7.4.1). `4001`–`4008` come from the mobile
/// bridge about its own part of the path (it cannot read the channel). `4100`–`4199` come
/// from the host; a remote bridge passes them on unchanged. A close code is a hint that anyone
/// on the path could forge: before closing for one of the host's reasons, the host also sends
/// [`crate::Frame::Close`] inside the encrypted channel, which is the word to trust.
pub mod ws {
    /// The host finished the channel normally.
    pub const NORMAL: u16 = 1000;
    /// The bridge itself is shutting down.
    pub const GOING_AWAY: u16 = 1001;
    /// The socket sent a message larger than allowed (the WebSocket layer's own limit).
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// The path to the host failed after it had answered (stream reset, connection lost).
    pub const HOST_ERROR: u16 = 1011;

    /// Bridge: the host is unreachable or offline.
    pub const HOST_UNREACHABLE: u16 = 4001;
    /// Bridge: the browser sent a text message or a message over 65535 bytes.
    pub const BAD_MESSAGE: u16 = 4002;
    /// Bridge: no message either way for the bridge's idle timeout.
    pub const IDLE_TIMEOUT: u16 = 4003;
    /// Bridge: the host refused the bridge ALPN or closed the connection before answering.
    pub const HOST_REFUSED: u16 = 4004;
    /// Bridge: too many sockets (refused after the upgrade).
    pub const TOO_MANY: u16 = 4008;

    /// Host: this device was revoked on the host. Do not reconnect; offer to pair again.
    pub const REVOKED: u16 = 4100;
    /// Host: the handshake was refused (the refusal code came in message 2's place).
    pub const REFUSED: u16 = 4101;
    /// Host: the channel broke the protocol (a bad envelope, a frame that is not allowed on
    /// channel 0, a message that does not decrypt). Reconnecting with the same app will not help.
    pub const PROTOCOL: u16 = 4102;
    /// Host: a message larger than the channel allows.
    pub const TOO_LARGE: u16 = 4103;
    /// Host: the host is shutting down. Reconnect with backoff.
    pub const SHUTTING_DOWN: u16 = 4104;
    /// Host: no sign of life from the browser within the liveness timeout. Reconnect.
    pub const TIMEOUT: u16 = 4105;

    /// Whether a browser should reconnect after a socket closed with `code`: everything but a
    /// revocation, a refusal and a protocol error is worth another try.
    pub fn is_retryable(code: u16) -> bool {
        !matches!(code, REVOKED | REFUSED | PROTOCOL)
    }
}
