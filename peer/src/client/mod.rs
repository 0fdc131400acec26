//! The client side: paired hosts, pairing, connecting (with resume) and attaching.

mod attach;
mod conn;
mod device;
mod dialer;
mod escape;
mod hosts;
mod local;
mod pair;

pub use attach::{AttachEnd, AttachIo, Attacher};
pub use conn::{ClientError, HostConn};
pub use device::load_device_key;
pub use dialer::Dialer;
pub use escape::{EscapeAction, EscapeFilter};
pub use hosts::{KnownHost, KnownHosts, Routes};
pub use local::local_request;
pub use pair::{PairResult, pair};
