//! The client side: paired hosts, pairing, connecting (with resume) and attaching.

mod attach;
mod conn;
mod device;
mod display;
mod escape;
mod hosts;
mod local;
mod pair;
mod predict;
pub mod sanitize;
pub mod transcript;

pub use attach::{AttachEnd, AttachIo, Attacher};
pub use conn::{ClientError, Dialer, HostConn};
pub use device::load_device_key;
pub use display::{Display, RESET, Repainted};
pub use escape::{EscapeAction, EscapeFilter};
pub use hosts::{KnownHost, KnownHosts};
pub use local::local_request;
pub use pair::{PairResult, pair};
pub use predict::{Overlay, PredictMode, Predictor, Stats as PredictStats, View};
