//! The HTTP(S) front server: one hyper server per listening port, routing to iroh's relay
//! service, health and metrics endpoints, plugged-in routes and static files.
//!
//! Files by concern, each depending only on those listed before it (and on `crate::access`,
//! the policy, which depends on nothing here):
//!
//! - `limits`: [`Limits`] on connections and slow clients;
//! - `buckets`: token buckets per key ([`RateBuckets`]) and per-address keys ([`IpKey`]);
//! - `fds`: the descriptor reserve kept below the process's limit;
//! - `conn`: admission of TCP connections and a handle (`Slot`) on each;
//! - `metrics`: counters and their Prometheus text;
//! - `route`: the [`RouteHandler`] plug-in interface and body helpers;
//! - `statics`: static files, from a directory or (`web_app`) built into the binary;
//! - `config`: what to serve ([`FrontConfig`], [`MetricsExposure`]);
//! - `relay_access`: iroh-relay's access-control hook, applying [`crate::AccessPolicy`];
//! - `shared`: the state the accept loop and all connections share;
//! - `service`: one connection and the dispatch of its requests;
//! - `lifecycle`: spawning, the accept loop, stopping.

mod buckets;
mod config;
mod conn;
mod fds;
mod lifecycle;
mod limits;
mod metrics;
mod relay_access;
mod route;
mod service;
mod shared;
mod statics;
mod web_app;

pub use self::buckets::{IpKey, RateBuckets};
pub use self::config::{FrontConfig, MetricsExposure, WebApp};
pub(crate) use self::lifecycle::Front;
pub use self::limits::{Limits, RateLimit};
pub use self::route::{
    BoxError, FrontBody, RequestContext, RouteFuture, RouteHandler, empty_body, full_body,
};
pub use self::statics::CSP;
pub use self::web_app::built_in_web_app;
