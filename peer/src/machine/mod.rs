//! What the host machine has for agents besides repositories: model servers it can reach
//! ([`models`], probed over a minimal HTTP client, [`http`]) and GPUs ([`gpu`]).

pub mod gpu;
pub mod http;
pub mod models;
