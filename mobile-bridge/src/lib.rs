//! The mobile bridge: a browser cannot speak QUIC, so it opens a WebSocket to the bridge, which
//! dials the host over iroh on ALPN `peer/bridge/1` and pumps opaque bytes both ways. The Noise
//! channel runs between browser and host; the bridge never holds a key.
//!
//! Nothing here yet: see `README.md`.
