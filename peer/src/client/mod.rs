//! The client side: paired hosts, pairing, connecting (with resume) and attaching.

mod attach;
mod conn;
mod device;
mod dialer;
mod display;
mod escape;
mod hosts;
mod local;
mod pair;
mod predict;
pub mod sanitize;
mod stream;
pub mod transcript;

pub use attach::{AttachEnd, AttachIo, Attacher};
pub use conn::{ClientError, HostConn, Streams};
pub use device::load_device_key;
pub use dialer::Dialer;
pub use display::{Display, RESET, Repainted};
pub use escape::{EscapeAction, EscapeFilter};
pub use hosts::{KnownHost, KnownHosts, Routes};
pub use local::local_request;
pub use pair::{PairError, PairResult, pair};
pub use predict::{Overlay, PredictMode, Predictor, Stats as PredictStats, View};
pub use stream::{StreamRecv, StreamSend};
